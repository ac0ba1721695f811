"""LLM gates: cases → rendered prompt → answers (cached, retried) → assertions → pass rate."""
