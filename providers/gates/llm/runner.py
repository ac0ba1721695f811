"""Running the cases: bounded concurrency, the cache, and per-case verdicts.

Cases run on ``concurrency`` threads. The first case whose call fails for good
(after its retries) stops the others from starting: the gate will fail closed
anyway, so the rest would only spend money.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from contract import ProviderError
from providers.gates.llm.assertions import Answer, Checked, Similarity, check
from providers.gates.llm.cache import ResponseCache, cache_key
from providers.gates.llm.cases import Case
from providers.gates.llm.client import CallError, Chat, Reply
from providers.gates.llm.prompt import PromptUnderTest
from specs.evals import Price

#: Outputs longer than this are cut in the evidence (the cache keeps them whole).
EVIDENCE_OUTPUT_CHARS = 2000


@dataclass
class CaseResult:
    id: str
    description: str | None
    weight: float
    passed: bool = False
    score: float = 0.0
    reply: Reply | None = None
    cached: bool = False
    cost_usd: float | None = None
    checks: list[Checked] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "passed": self.passed, "score": round(self.score, 4)}
        if self.description:
            out["description"] = self.description
        if self.weight != 1.0:
            out["weight"] = self.weight
        if self.error:
            out["error"] = self.error
        if self.reply is not None:
            text = self.reply.output
            if len(text) > EVIDENCE_OUTPUT_CHARS:
                text = text[:EVIDENCE_OUTPUT_CHARS] + f"… [{len(self.reply.output)} chars]"
            out.update(
                output=text,
                latency_ms=round(self.reply.latency_ms, 1),
                prompt_tokens=self.reply.prompt_tokens,
                completion_tokens=self.reply.completion_tokens,
                cost_usd=self.cost_usd,
                cached=self.cached,
                attempts=self.reply.attempts,
            )
        out["assertions"] = [c.as_dict() for c in self.checks]
        return out


@dataclass
class Runner:
    prompt: PromptUnderTest
    chat: Chat
    model: str | None
    params: Mapping[str, Any]
    cache: ResponseCache | None
    pricing: Mapping[str, Price]
    similarity: Similarity
    concurrency: int = 8
    calls: int = 0
    _abort: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, cases: Sequence[Case]) -> list[CaseResult]:
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="mlx-llm-gate") as pool:
            return list(pool.map(self._one, cases))

    def _cost(self, reply: Reply) -> tuple[float | None, str]:
        if reply.cost_usd is not None:
            return float(reply.cost_usd), ""
        price = self.pricing.get(self.model or "")
        if price is None:
            return None, f"no `pricing` entry for model {self.model!r}"
        if reply.prompt_tokens is None or reply.completion_tokens is None:
            return None, "the endpoint reported no token usage"
        cost = (
            reply.prompt_tokens * price.input_per_1k + reply.completion_tokens * price.output_per_1k
        ) / 1000.0
        return cost, ""

    def _one(self, case: Case) -> CaseResult:
        assert case.id is not None
        result = CaseResult(case.id, case.description, case.weight)
        if self._abort.is_set():
            result.error = "not run: an earlier case could not get an answer"
            return result
        try:
            messages = self.prompt.messages(case.vars)
        except ProviderError as exc:
            result.error = str(exc)
            return result
        key = cache_key(
            self.prompt.fingerprint, case.vars, self.model, self.params, self.chat.endpoint
        )
        reply = self.cache.get(key) if self.cache else None
        result.cached = reply is not None
        if reply is None:
            request = {
                "model": self.model,
                "messages": messages,
                "params": dict(self.params),
                "vars": case.vars,  # for Python hooks; the HTTP client sends no vars
            }
            with self._lock:
                self.calls += 1
            try:
                reply = self.chat.complete(request)
            except CallError as exc:
                self._abort.set()
                result.error = str(exc)
                return result
            if self.cache:
                self.cache.put(key, reply)
        result.reply = reply
        result.cost_usd, note = self._cost(reply)
        answer = Answer(reply.output, reply.latency_ms, result.cost_usd, note)
        result.checks = [check(a, answer, case.vars, self.similarity) for a in case.assert_]
        _score(result, case)
        return result


def _score(result: CaseResult, case: Case) -> None:
    """Weighted share of passed assertions; the case passes on ``threshold`` or all passing."""
    total = sum(c.weight for c in result.checks)
    got = sum(c.weight for c in result.checks if c.passed)
    result.score = got / total if total else 1.0
    if case.threshold is not None:
        result.passed = result.score >= case.threshold
    else:
        result.passed = all(c.passed for c in result.checks if c.weight > 0)
