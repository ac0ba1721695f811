"""Each LLM assertion, its negation, and the local text measures behind them."""

from __future__ import annotations

from typing import Any

import pytest

from contract import ProviderError
from providers.gates.llm import text
from providers.gates.llm.assertions import Answer, check
from specs.evals import Assertion


def run(kind: str, output: str, value: Any = None, **kw: Any) -> Any:
    a = Assertion(type=kind, value=value, **kw)
    answer = Answer(output, 120.0, 0.002)
    sim = lambda x, y: text.cosine_sparse(text.lexical_vector(x), text.lexical_vector(y))  # noqa: E731
    return check(a, answer, {"context": CONTEXT, "docs": ["Shipping is free over $50."]}, sim)


CONTEXT = (
    "Refunds are available within 30 days of purchase. "
    "Orders ship within 2 business days from our warehouse in Leeds."
)


@pytest.mark.parametrize(
    ("kind", "output", "value", "expected"),
    [
        ("equals", "  Paris\n", "Paris", True),
        ("equals", "Paris.", "Paris", False),
        ("equals", '{"a": 1, "b": [2]}', {"b": [2], "a": 1}, True),
        ("contains", "The refund window is 30 days.", "30 days", True),
        ("contains", "The refund window is 30 Days.", "30 days", False),
        ("contains", "30 days, receipt needed", ["30 days", "receipt"], True),
        ("contains", "30 days", ["30 days", "receipt"], False),
        ("icontains", "The Refund Window", "refund window", True),
        ("regex", "Order #12345 shipped", r"#\d{5}\b", True),
        ("regex", "Order #123 shipped", r"#\d{5}\b", False),
        ("is_json", '{"answer": "yes"}', None, True),
        ("is_json", "answer: yes", None, False),
        ("refuses", "I'm sorry, but I can't help with that request.", None, True),
        ("refuses", "I cannot assist with hacking accounts.", None, True),
        ("refuses", "Refunds are available within 30 days.", None, False),
        ("latency_ms", "x", 200, True),
        ("latency_ms", "x", 100, False),
        ("cost_usd", "x", 0.01, True),
        ("cost_usd", "x", 0.001, False),
    ],
)
def test_assertion_and_its_negation(kind: str, output: str, value: Any, expected: bool) -> None:
    assert run(kind, output, value).passed is expected
    negated = run(f"not_{kind}", output, value)
    assert negated.passed is (not expected)
    assert negated.reason.startswith("negated: ")


def test_json_schema_reports_the_violation() -> None:
    schema = {
        "type": "object",
        "required": ["answer", "confidence"],
        "properties": {"confidence": {"type": "number", "maximum": 1}},
    }
    assert run("json_schema", '{"answer": "x", "confidence": 0.5}', schema).passed
    bad = run("json_schema", '{"answer": "x", "confidence": 3}', schema)
    assert not bad.passed and "confidence" in bad.reason and "maximum" in bad.reason
    assert not run("json_schema", "not json", schema).passed
    assert not run("is_json", '{"answer": "x"}', schema).passed  # is_json with a schema


def test_invalid_schema_is_a_configuration_error() -> None:
    with pytest.raises(ProviderError, match="invalid JSON Schema"):
        run("json_schema", "{}", {"type": "no-such-type"})


def test_similar_uses_the_default_threshold_and_reports_the_score() -> None:
    same = run("similar", "Refunds are possible within 30 days.", "Refunds possible within 30 days")
    assert same.passed and same.score is not None and same.score >= 0.75
    other = run("similar", "Our warehouse is in Leeds.", "Refunds possible within 30 days")
    assert not other.passed and other.score is not None and other.score < 0.3
    assert "< 0.75" in other.reason
    loose = run("similar", "Our warehouse is in Leeds.", "Refunds in 30 days", threshold=0.0)
    assert loose.passed


def test_similar_takes_the_best_of_several_references() -> None:
    refs = ["The warehouse is in Leeds", "Refunds within 30 days"]
    assert run("similar", "Refunds are accepted within 30 days", refs).passed


def test_lexical_similarity_is_symmetric_and_bounded() -> None:
    a, b = "refund window thirty days", "thirty day refund windows"
    va, vb = text.lexical_vector(a), text.lexical_vector(b)
    assert text.cosine_sparse(va, vb) == pytest.approx(text.cosine_sparse(vb, va))
    assert text.cosine_sparse(va, va) == pytest.approx(1.0)
    assert 0.75 < text.cosine_sparse(va, vb) <= 1.0  # stems and trigrams meet plural forms


def test_grounded_accepts_claims_from_the_context() -> None:
    answer = "Refunds are available within 30 days of purchase. Orders ship within 2 days."
    result = run("grounded", answer)
    assert result.passed and result.score == 1.0


def test_grounded_rejects_a_hallucinated_number_and_made_up_claims() -> None:
    wrong_number = run("grounded", "Refunds are available within 60 days of purchase.")
    assert not wrong_number.passed and "60 days" in wrong_number.reason
    invented = run(
        "grounded",
        "Refunds are available within 30 days. We also offer lifetime warranties "
        "on every gadget and free gift wrapping worldwide.",
    )
    assert not invented.passed and invented.score == pytest.approx(0.5)


def test_grounded_reads_the_named_var_and_fails_without_it() -> None:
    assert run("grounded", "Shipping is free over $50.", "docs").passed
    missing = run("grounded", "Anything at all here.", "nowhere")
    assert not missing.passed and "no var 'nowhere'" in missing.reason


def test_grounded_threshold_allows_some_unsupported_claims() -> None:
    answer = "Refunds are available within 30 days. Gift wrapping is free worldwide."
    assert not run("grounded", answer).passed
    assert run("grounded", answer, threshold=0.5).passed


def test_claims_skip_questions_and_filler() -> None:
    found = text.claims("Sure! Refunds take 30 days. Anything else I can do? Thanks.")
    assert found == ["Refunds take 30 days."]


def test_refusal_must_come_first() -> None:
    long_answer = "Here are the steps. " * 30 + "I'm sorry, but I can't help with more."
    assert not text.is_refusal(long_answer)


def test_unknown_cost_fails_cost_usd_with_the_reason() -> None:
    a = Assertion(type="cost_usd", value=1.0)
    result = check(a, Answer("x", 1.0, None, "no `pricing` entry for model 'm'"), {}, lambda *_: 0)
    assert not result.passed and "pricing" in result.reason


def test_assertion_values_are_validated_in_the_spec() -> None:
    with pytest.raises(ValueError, match="invalid regex"):
        Assertion(type="regex", value="(unclosed")
    with pytest.raises(ValueError, match="needs `value`"):
        Assertion(type="contains")
    with pytest.raises(ValueError, match="JSON Schema object"):
        Assertion(type="json_schema", value="{}")
    with pytest.raises(ValueError):
        Assertion(type="not_a_real_type", value="x")
