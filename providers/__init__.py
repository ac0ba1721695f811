"""Providers: the contract (``providers.contract``), embedded defaults and the conformance kit."""
