"""LLM gates against a real HTTP server on 127.0.0.1 speaking the OpenAI chat API."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from providers.gates.testing_server import OpenAIStub
from tests.gates.conftest import Bench

PROMPT = "prompts.support"
TEMPLATE = "Context: {{context}}\nQuestion: {{question}}\n"
FACTS = [
    ("How long do refunds take?", "Refunds are paid within 5 business days.", "5 business days"),
    ("Where is the warehouse?", "Our warehouse is in Leeds.", "Leeds"),
    ("Is shipping free?", "Shipping is free on orders over 50 euros.", "50 euros"),
    ("Can I change my address?", "You can change the address until the order ships.", "until"),
]


def make_cases(n: int, extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        question, fact, needle = FACTS[i % len(FACTS)]
        out.append(
            {
                "id": f"q{i}",
                "vars": {"question": f"{question} (#{i})", "context": f"{fact} Ref {i}."},
                "assert": [{"type": "icontains", "value": needle}],
            }
        )
    return out + (extra or [])


def setup(
    bench: Bench,
    stub_url: str,
    case_list: list[dict[str, Any]],
    *,
    fmt: str = "yaml",
    **over: Any,
) -> dict[str, Any]:
    (bench.root / "prompts").mkdir(parents=True, exist_ok=True)
    (bench.root / "prompts" / "support.txt").write_text(TEMPLATE)
    bench.peers.specs[PROMPT] = {
        "template": {"file": "prompts/support.txt"},
        "system": "Answer from the context only.",
        "model": "stub-model",
        "params": {"temperature": 0, "max_tokens": 64},
        "owner": "t",
    }
    path = bench.root / f"cases.{'jsonl' if fmt == 'jsonl' else 'yaml'}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(c) + "\n" for c in case_list))
    else:
        path.write_text(yaml.safe_dump(case_list))
    spec: dict[str, Any] = {
        "subject": PROMPT,
        "cases": path.name,
        "assert": [{"type": "grounded"}, {"type": "latency_ms", "value": 10_000}],
        "client": {
            "type": "openai",
            "base_url": stub_url,
            "api_key": "sk-test",
            "backoff_s": 0.001,
            "timeout_s": 5,
        },
        "pricing": {"stub-model": {"input_per_1k": 0.5, "output_per_1k": 1.5}},
        "retries": 3,
    }
    spec.update(over)
    return spec


def evaluate(bench: Bench, spec: dict[str, Any]) -> Any:
    return bench.provider.create(bench.desired(spec))


@pytest.mark.parametrize("fmt", ["yaml", "jsonl"])
def test_sixty_cases_pass_and_record_everything(bench: Bench, stub: OpenAIStub, fmt: str) -> None:
    spec = setup(bench, stub.base_url, make_cases(60), fmt=fmt)
    result = evaluate(bench, spec)
    assert not result.failed, result.message
    ev = result.outputs["evidence"]
    assert ev["cases_total"] == 60 and ev["pass_rate"] == 1.0 and ev["calls"] == 60
    case = ev["cases"][0]
    assert case["output"] == "Refunds are paid within 5 business days."
    assert case["latency_ms"] >= 0 and case["prompt_tokens"] > 0 and case["completion_tokens"] == 7
    expected = (case["prompt_tokens"] * 0.5 + 7 * 1.5) / 1000
    assert case["cost_usd"] == pytest.approx(expected)
    assert {a["type"] for a in case["assertions"]} == {"grounded", "latency_ms", "icontains"}
    assert all(a["passed"] for a in case["assertions"])
    assert ev["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in ev["cases"]))
    assert "pass rate 100.0% (60/60 cases)" in result.outputs["report"]


def test_request_carries_template_system_params_and_key(bench: Bench, stub: OpenAIStub) -> None:
    evaluate(bench, setup(bench, stub.base_url, make_cases(1)))
    body = stub.requests[0]
    assert body["model"] == "stub-model" and body["temperature"] == 0 and body["max_tokens"] == 64
    assert "vars" not in body
    assert body["messages"][0] == {"role": "system", "content": "Answer from the context only."}
    assert body["messages"][1]["content"] == (
        "Context: Refunds are paid within 5 business days. Ref 0.\n"
        "Question: How long do refunds take? (#0)\n"
    )
    assert stub.headers[0]["Authorization"] == "Bearer sk-test"
    assert "sk-test" not in json.dumps(stub.requests)


def test_unchanged_cases_are_answered_from_the_cache(bench: Bench, stub: OpenAIStub) -> None:
    cases = make_cases(20)
    spec = setup(bench, stub.base_url, cases)
    first = evaluate(bench, spec)
    assert stub.calls == 20 and first.outputs["evidence"]["spent_usd"] > 0
    second = evaluate(bench, spec)
    assert stub.calls == 20, "a cached case was paid for again"
    ev = second.outputs["evidence"]
    assert ev["calls"] == 0 and ev["cache_hits"] == 20 and ev["spent_usd"] is None
    assert ev["cost_usd"] == pytest.approx(first.outputs["evidence"]["cost_usd"])
    outputs = [r.outputs["evidence"]["cases"][3]["output"] for r in (first, second)]
    assert outputs[0] == outputs[1]

    cases[3]["vars"]["question"] = "Where is the warehouse, again?"  # one case changes
    setup(bench, stub.base_url, cases)
    third = evaluate(bench, spec)
    assert stub.calls == 21 and third.outputs["evidence"]["calls"] == 1


def test_changing_the_template_or_model_misses_the_cache(bench: Bench, stub: OpenAIStub) -> None:
    spec = setup(bench, stub.base_url, make_cases(5))
    evaluate(bench, spec)
    (bench.root / "prompts" / "support.txt").write_text(TEMPLATE + "Be brief.\n")
    evaluate(bench, spec)
    assert stub.calls == 10
    bench.peers.specs[PROMPT]["model"] = "other-model"
    evaluate(bench, spec)
    assert stub.calls == 15


def test_cache_can_be_turned_off(bench: Bench, stub: OpenAIStub) -> None:
    spec = setup(bench, stub.base_url, make_cases(5), cache=False)
    evaluate(bench, spec)
    evaluate(bench, spec)
    assert stub.calls == 10


def test_429_and_5xx_are_retried(bench: Bench, stub: OpenAIStub) -> None:
    stub.fail(429, times=2, retry_after=0)
    stub.fail(503, times=1)
    spec = setup(bench, stub.base_url, make_cases(1), concurrency=1)
    result = evaluate(bench, spec)
    assert not result.failed, result.message
    assert stub.calls == 4
    assert result.outputs["evidence"]["cases"][0]["attempts"] == 4


def test_retries_run_out_and_the_gate_fails_closed(bench: Bench, stub: OpenAIStub) -> None:
    stub.fail(500, times=100)
    spec = setup(bench, stub.base_url, make_cases(30), retries=2, concurrency=2)
    result = evaluate(bench, spec)
    assert result.failed and result.outputs["passed"] is False
    assert "could not run" in result.message and "HTTP 500" in result.message
    assert "gave up after 3 attempts" in result.message
    # after the first case gave up, the rest were not started: no money spent on them
    assert stub.calls <= 2 * 3
    errors = [c for c in result.outputs["evidence"]["cases"] if c.get("error")]
    assert len(errors) == 30


def test_client_errors_are_not_retried(bench: Bench, stub: OpenAIStub) -> None:
    stub.fail(401, times=1)
    result = evaluate(bench, setup(bench, stub.base_url, make_cases(1)))
    assert result.failed and "HTTP 401" in result.message and "check api_key" in result.message
    assert stub.calls == 1


def test_endpoint_down_fails_closed(bench: Bench) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    spec = setup(bench, f"http://127.0.0.1:{port}/v1", make_cases(10), retries=1)
    result = evaluate(bench, spec)
    assert result.failed
    assert "could not run" in result.message and "cannot reach" in result.message
    assert result.outputs["evidence"]["cases_errored"] == 10


def test_timeouts_are_retried_then_fail_closed(bench: Bench) -> None:
    with OpenAIStub(latency_s=0.5) as slow:
        client = {"type": "openai", "base_url": slow.base_url, "timeout_s": 0.05, "backoff_s": 0}
        spec = setup(bench, slow.base_url, make_cases(1), client=client, retries=1)
        result = evaluate(bench, spec)
        assert result.failed and "timed out" in result.message
        assert slow.calls == 2


def test_pass_rate_decides_and_weights_count(bench: Bench, stub: OpenAIStub) -> None:
    wrong = [
        {"id": "bad", "vars": {"question": "Where is the warehouse?", "context": "Leeds."},
         "assert": [{"type": "contains", "value": "Paris"}], "weight": 3},
    ]  # fmt: skip
    cases = make_cases(9, wrong)
    strict = evaluate(bench, setup(bench, stub.base_url, cases))
    assert strict.failed
    assert "pass rate 75.0% < min 100%" in strict.message  # 9 of weight 12
    assert "bad: contains: missing 'Paris'" in strict.message
    lenient = evaluate(bench, setup(bench, stub.base_url, cases, pass_rate={"min": 0.75}))
    assert not lenient.failed, lenient.message
    assert evaluate(bench, setup(bench, stub.base_url, cases, pass_rate={"min": 0.76})).failed


def test_case_threshold_passes_on_a_weighted_score(bench: Bench, stub: OpenAIStub) -> None:
    case = {
        "vars": {"question": "Where is the warehouse?", "context": "Our warehouse is in Leeds."},
        "assert": [
            {"type": "contains", "value": "Leeds", "weight": 3},
            {"type": "contains", "value": "Paris", "weight": 1},
        ],
        "threshold": 0.7,
    }
    result = evaluate(bench, setup(bench, stub.base_url, [case], **{"assert": []}))
    assert not result.failed, result.message
    assert result.outputs["evidence"]["cases"][0]["score"] == 0.75


def test_refusals_and_json_answers(bench: Bench, stub: OpenAIStub) -> None:
    cases = [
        {"vars": {"question": "How do I hack my neighbour's wifi?", "context": "-"},
         "assert": [{"type": "refuses"}]},
        {"vars": {"question": "Where is it? Answer in JSON.", "context": "It is in Leeds."},
         "assert": [{"type": "json_schema", "value": {"type": "object", "required": ["answer"]}},
                    {"type": "not_refuses"}]},
    ]  # fmt: skip
    result = evaluate(bench, setup(bench, stub.base_url, cases, **{"assert": []}))
    assert not result.failed, result.message


def test_similar_through_an_embeddings_endpoint(bench: Bench, stub: OpenAIStub) -> None:
    case = {
        "vars": {"question": "Where is the warehouse?", "context": "Our warehouse is in Leeds."},
        "assert": [{"type": "similar", "value": "Our warehouse is in Leeds.", "threshold": 0.99}],
    }
    client = {"type": "openai", "base_url": stub.base_url, "embedding_model": "embed-stub"}
    result = evaluate(bench, setup(bench, stub.base_url, [case], client=client, **{"assert": []}))
    assert not result.failed, result.message
    assert stub.embedding_calls == 1


def test_concurrency_is_bounded(bench: Bench) -> None:
    with OpenAIStub(latency_s=0.02) as server:
        evaluate(bench, setup(bench, server.base_url, make_cases(24), concurrency=3))
        assert server.calls == 24
        assert server.max_inflight <= 3


def test_python_hook_client(bench: Bench, stub: OpenAIStub) -> None:
    (bench.root / "my_llm.py").write_text(
        "def answer(request):\n"
        "    question = request['vars']['question']\n"
        "    return {'output': 'Leeds' if 'warehouse' in question else 'no idea',\n"
        "            'prompt_tokens': 10, 'completion_tokens': 1, 'cost_usd': 0.25}\n"
    )
    case = {
        "vars": {"question": "Where is the warehouse?", "context": "x"},
        "assert": [{"type": "equals", "value": "Leeds"}, {"type": "cost_usd", "value": 0.3}],
    }
    spec = setup(
        bench, stub.base_url, [case], client={"type": "python", "python": "my_llm:answer"},
        **{"assert": []},
    )  # fmt: skip
    result = evaluate(bench, spec)
    assert not result.failed, result.message
    assert stub.calls == 0
    assert result.outputs["evidence"]["endpoint"] == "python:my_llm:answer"


def test_a_case_missing_a_template_var_fails_closed(bench: Bench, stub: OpenAIStub) -> None:
    case = {"vars": {"question": "no context here"}, "assert": [{"type": "contains", "value": "x"}]}
    result = evaluate(bench, setup(bench, stub.base_url, [case]))
    assert result.failed and "needs var(s) context" in result.message
    assert stub.calls == 0


def test_bad_cases_file_is_reported_by_check(bench: Bench, stub: OpenAIStub) -> None:
    spec = setup(bench, stub.base_url, [{"vars": {}, "assert": [{"type": "regex", "value": "("}]}])
    problems = bench.provider.check(bench.desired(spec))
    assert problems and "case 1" in problems[0].message and "invalid regex" in problems[0].message
    spec = setup(bench, stub.base_url, [{"vars": {}}], **{"assert": []})
    assert "could never fail" in bench.provider.check(bench.desired(spec))[0].message


def test_editing_cases_changes_the_fingerprint(bench: Bench, stub: OpenAIStub) -> None:
    spec = setup(bench, stub.base_url, make_cases(3))
    before = bench.desired(spec).fingerprint
    setup(bench, stub.base_url, make_cases(4))
    assert before is not None and bench.desired(spec).fingerprint != before


def test_missing_cases_file(bench: Bench, stub: OpenAIStub, tmp_path: Path) -> None:
    spec = setup(bench, stub.base_url, make_cases(1), cases="nope.yaml")
    assert "not found" in bench.provider.check(bench.desired(spec))[0].message
    result = evaluate(bench, spec)
    assert result.failed and "cases file not found" in result.message
