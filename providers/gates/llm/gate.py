"""An LLM gate, start to end: cases, prompt, client, run, pass rate, evidence."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from contract import Desired, ProviderError, VersionRef
from providers.gates.common import GateEnv, Verdict, now
from providers.gates.llm import text
from providers.gates.llm.assertions import Similarity
from providers.gates.llm.cache import ResponseCache
from providers.gates.llm.cases import load_cases
from providers.gates.llm.client import CallError, Chat, OpenAIChat, PythonHook
from providers.gates.llm.prompt import PromptUnderTest, from_spec
from providers.gates.llm.report import render
from providers.gates.llm.runner import CaseResult, Runner
from specs.evals import Eval, OpenAIClient, PythonClient

_EPS = 1e-12


def run(
    spec: Eval, desired: Desired, env: GateEnv, sleep: Callable[[float], None] = time.sleep
) -> Verdict:
    started = time.monotonic()
    assert spec.cases is not None
    cases_path = env.path(spec.cases)
    cases = load_cases(cases_path, list(spec.assert_))
    prompt = from_spec(
        spec.subject, env.peers.spec(spec.subject), lambda rel: env.path(rel).read_text()
    )
    chat, model, params = _client(spec, prompt, env, sleep)
    runner = Runner(
        prompt,
        chat,
        model,
        params,
        ResponseCache(env.context.data_dir / "cache" / "llm") if spec.cache else None,
        spec.pricing,
        _similarity(spec.client, chat),
        spec.concurrency,
    )
    results = runner.run(cases)

    need = spec.pass_rate.min if spec.pass_rate else 1.0
    total_weight = sum(r.weight for r in results)
    rate = sum(r.weight for r in results if r.passed) / total_weight if total_weight else 0.0
    errors = [r for r in results if r.error]
    passed = not errors and rate >= need - _EPS
    replies = [r for r in results if r.reply is not None]
    fresh = [r for r in replies if not r.cached]
    evidence: dict[str, Any] = {
        "kind": "llm",
        "gate": desired.address,
        "evaluated_at": now(),
        "duration_s": round(time.monotonic() - started, 3),
        "passed": passed,
        "subject": {
            "address": spec.subject,
            "version": VersionRef.of(desired.inputs.get(spec.subject)).version,
            "fingerprint": (desired.inputs.get(spec.subject) or {}).get("fingerprint"),
            "prompt_fingerprint": prompt.fingerprint,
        },
        "cases_file": {
            "path": spec.cases,
            "fingerprint": env.hasher.digest(cases_path),
            "cases": len(cases),
        },
        "model": model,
        "endpoint": chat.endpoint,
        "params": params,
        "pass_rate": round(rate, 6),
        "pass_rate_min": need,
        "cases_total": len(results),
        "cases_passed": sum(1 for r in results if r.passed),
        "cases_errored": len(errors),
        "calls": runner.calls,
        "cache_hits": sum(1 for r in replies if r.cached),
        "tokens": {
            "prompt": sum(r.reply.prompt_tokens or 0 for r in replies if r.reply),
            "completion": sum(r.reply.completion_tokens or 0 for r in replies if r.reply),
        },
        "cost_usd": _sum(r.cost_usd for r in replies),
        "spent_usd": _sum(r.cost_usd for r in fresh),
        "latency_ms": _latency([r.reply.latency_ms for r in replies if r.reply]),
        "assertions": _by_type(results),
        "cases": [r.as_dict() for r in results],
    }
    return Verdict(
        passed, _message(passed, rate, need, results, errors), render(evidence), evidence
    )


def _client(
    spec: Eval, prompt: PromptUnderTest, env: GateEnv, sleep: Callable[[float], None]
) -> tuple[Chat, str | None, dict[str, Any]]:
    config = spec.client or OpenAIClient()
    if isinstance(config, PythonClient):
        return PythonHook(config, env.context.root), prompt.model, dict(prompt.params)
    model = prompt.model or config.model
    if not model:
        raise ProviderError(
            f"no LLM model to call: set `model` on {spec.subject} or `client.model` on the gate"
        )
    return OpenAIChat(config, spec.retries, sleep), model, {**config.params, **prompt.params}


def _similarity(config: OpenAIClient | PythonClient | None, chat: Chat) -> Similarity:
    """Cosine of embeddings from the endpoint when configured, else of local lexical vectors."""
    if isinstance(config, OpenAIClient) and config.embedding_model and isinstance(chat, OpenAIChat):
        vectors: dict[str, list[float]] = {}
        lock = threading.Lock()

        def embedded(a: str, b: str) -> float:
            with lock:
                todo = [t for t in dict.fromkeys((a, b)) if t not in vectors]
            if todo:
                try:
                    got = chat.embed(todo)
                except CallError as exc:
                    raise ProviderError(f"`similar` needs embeddings, and {exc}") from exc
                with lock:
                    vectors.update(zip(todo, got, strict=True))
            return text.cosine_dense(vectors[a], vectors[b])

        return embedded
    local: dict[str, dict[str, float]] = {}

    def lexical(a: str, b: str) -> float:
        for t in (a, b):
            if t not in local:
                local[t] = text.lexical_vector(t)
        return text.cosine_sparse(local[a], local[b])

    return lexical


def _sum(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 8) if known else None


def _latency(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": pct(0.5), "p95": pct(0.95), "max": round(ordered[-1], 1)}


def _by_type(results: list[CaseResult]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in results:
        for c in r.checks:
            row = out.setdefault(c.type, {"passed": 0, "total": 0})
            row["total"] += 1
            row["passed"] += int(c.passed)
    return out


def _message(
    passed: bool, rate: float, need: float, results: list[CaseResult], errors: list[CaseResult]
) -> str:
    n = len(results)
    if errors:
        first = next((r for r in errors if not r.error or "not run" not in r.error), errors[0])
        return f"could not run {len(errors)} of {n} cases (fails closed): {first.id}: {first.error}"
    failed = [r for r in results if not r.passed]
    if not passed:
        example = failed[0]
        why = next((c for c in example.checks if not c.passed), None)
        detail = f"; e.g. {example.id}: {why.type}: {why.reason}" if why else ""
        return f"pass rate {rate:.1%} < min {need:.0%} ({len(failed)} of {n} cases failed{detail})"
    return f"pass rate {rate:.1%} >= min {need:.0%} over {n} cases"
