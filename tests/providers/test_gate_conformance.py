"""The gate provider passes the kit's Gate suite: an LLM gate, its prompt reached through the
kit's fake Peers, the model behind a real OpenAI-compatible stub on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract import Desired, Provider
from providers.gates.provider import GateProvider
from providers.gates.testing_server import OpenAIStub
from providers.testing import GateConformance

PROMPT = "prompts.support"
CASES = [
    {
        "id": "warehouse",
        "vars": {"question": "Where is the warehouse?", "context": "Our warehouse is in Leeds."},
        "assert": [{"type": "icontains", "value": "Leeds"}],
    },
    {
        "id": "refunds",
        "vars": {
            "question": "How long do refunds take?",
            "context": "Refunds are paid within 5 business days.",
        },
        "assert": [{"type": "icontains", "value": "5 business days"}],
    },
]


class TestGateProvider(GateConformance):
    section = "evals"

    @pytest.fixture(autouse=True)
    def _stub(self) -> Iterator[None]:
        with OpenAIStub() as stub:
            self.stub = stub
            yield

    def make_provider(self, tmp_path: Path) -> Provider:
        return GateProvider({"type": "gate"}, self.context(tmp_path))

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "support.txt").write_text("Context: {{context}}\nQuestion: {{question}}\n")
        self.peers.declare(
            PROMPT,
            {"template": {"file": "support.txt"}, "model": "stub-model", "owner": "team-llm"},
        )
        cases: list[dict[str, Any]] = [dict(c) for c in CASES]
        if variant == "v2":  # different cases (a different fingerprint), still passing
            cases = cases[:1]
        if variant == "fail":
            cases[0] = {**cases[0], "assert": [{"type": "icontains", "value": "Manchester"}]}
        (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases))
        spec: dict[str, Any] = {
            "subject": PROMPT,
            "cases": "cases.yaml",
            "client": {
                "type": "openai",
                "base_url": self.stub.base_url,
                "api_key": "sk-kit-very-secret",
                "backoff_s": 0.001,
                "timeout_s": 5,
            },
            "cache": False,
            "owner": "team-llm",
        }
        if variant == "meta":
            spec["description"] = "the support bot answers from its context"
        if variant == "bad":
            spec["assert"] = [{"type": "contains_maybe", "value": "x"}]
        return Desired("evals.support", "evals", "support", spec)

    def test_the_endpoint_was_really_asked(self, provider: Provider, tmp_path: Path) -> None:
        """Not part of the kit: the verdict above came from the stub, not from a cache."""
        self.create(provider, tmp_path, "v1")
        assert self.stub.calls == len(CASES)
