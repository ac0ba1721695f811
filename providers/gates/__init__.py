"""Eval gates (``evals.*``): the ``gate`` provider, ML metric gates and LLM case gates.

``provider`` is the entry point; ``ml`` and ``llm`` hold the two kinds of gate;
``testing_server`` is an OpenAI-compatible stub for tests, benchmarks and demos.
"""
