"""Providers: the contract (``contract``), embedded defaults and the conformance kit."""
