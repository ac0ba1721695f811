"""Issue 10, point 4: hit rate, cost per request and cost per successful outcome (from
feedback) per variant come from the log — real records and feedback written to the store,
read back through ``variant_summary``, on SQLite and PostgreSQL, against values computed by
hand from the tables below."""

from __future__ import annotations

from typing import Any

import pytest

from inference import query
from inference.records import Feedback, InferenceRecord
from inference.store import LogStore
from tests.inference.conftest import T0, rec

SINCE, UNTIL = T0, T0 + 100
ENDPOINT = "support"


def _call(
    request_id: str, i: int, variant: str, cost: float | None, hit: bool, **kw: Any
) -> InferenceRecord:
    return rec(
        request_id,
        ts=T0 + i,
        endpoint=ENDPOINT,
        variant=variant,
        subject="prompts.support",
        version="1" if variant == "stable" else "2",
        cost_usd=cost,
        cache_hit=hit,
        **kw,
    )


Row = tuple[str, float | None, bool, list[dict[str, Any]]]
# request id, cost, cache hit, the feedback given to it (in order): successes are marked
STABLE: list[Row] = [
    ("s0", 0.03, False, [{"outcome": True}]),  # success
    ("s1", 0.03, False, [{"outcome": False}]),
    ("s2", 0.00, True, [{"value": 0}, {"value": 1}]),  # success: a later feedback scores > 0
    ("s3", 0.04, False, [{"label": "meh"}]),  # no score: kept, not a success
    ("s4", 0.00, True, [{"value": 0.5}]),  # success
    ("s5", 0.05, False, []),  # no feedback
    ("s6", 0.02, False, [{"value": -1}]),
    ("s7", None, False, []),  # the upstream failed (502): no cost
    ("s8", 0.03, False, [{"label": 1}]),  # success: a numeric label scores
    ("s9", 0.00, True, []),
]
# every feedback a failure or without a score: zero successes
CANDIDATE: list[Row] = [
    ("c0", 0.02, False, [{"outcome": False}]),
    ("c1", 0.00, True, [{"value": 0}]),
    ("c2", 0.03, False, []),
    ("c3", 0.01, False, [{"label": "bad"}]),
]


def _fill(store: LogStore) -> None:
    records: list[InferenceRecord] = []
    feedback: list[Feedback] = []
    for variant, table in (("stable", STABLE), ("candidate", CANDIDATE)):
        for i, (rid, cost, hit, given) in enumerate(table):
            status = 502 if cost is None else 200
            records.append(_call(rid, i, variant, cost, hit, status=status))
            feedback += [
                Feedback(request_id=rid, endpoint=ENDPOINT, ts=T0 + 200 + j, **kinds)
                for j, kinds in enumerate(given)
            ]
    # shadow copies of s0 and s1 (same request ids): s0's success is the caller's answer's
    records += [_call(r, i, "shadow", 0.01, False) for i, r in enumerate(("s0", "s1"))]
    # noise that must not count: outside the window, another endpoint, another environment
    records += [
        _call("early", -10, "stable", 1.0, False),
        _call("late", 100, "stable", 1.0, True),
        rec("f0", ts=T0 + 1, endpoint="fraud", cost_usd=9.0),
        rec("p0", ts=T0 + 1, endpoint=ENDPOINT, environment="prod", cost_usd=9.0),
    ]
    feedback += [
        Feedback(request_id="early", endpoint=ENDPOINT, value=1, ts=T0 + 200),
        Feedback(request_id="late", endpoint=ENDPOINT, value=1, ts=T0 + 200),
        Feedback(request_id="s5", endpoint="fraud", value=1, ts=T0 + 200),
        Feedback(request_id="c2", endpoint=ENDPOINT, environment="prod", value=1, ts=T0 + 200),
    ]
    # the requests first, their feedback in later batches (as callers send it)
    store.write(records[:7])
    store.write(records[7:])
    store.write((), feedback[:5])
    store.write((), feedback[5:])


@pytest.fixture
def summary(store: LogStore) -> dict[str, query.VariantSummary]:
    _fill(store)
    return store.variant_summary(ENDPOINT, since=SINCE, until=UNTIL)


def test_hit_rate_cost_per_request_and_cost_per_success(
    summary: dict[str, query.VariantSummary],
) -> None:
    assert sorted(summary) == ["candidate", "shadow", "stable"]
    stable = summary["stable"]
    # 10 requests, 3 answered from the cache, $0.20 spent, 4 successful outcomes
    assert (stable.requests, stable.cache_hits, stable.successes) == (10, 3, 4)
    assert stable.hit_rate == pytest.approx(0.3)
    assert stable.cost_per_request == pytest.approx(0.02)
    assert stable.cost_per_success == pytest.approx(0.05)

    candidate = summary["candidate"]
    # 4 requests, 1 cache hit, $0.06; three feedbacks, none a success
    assert (candidate.requests, candidate.cache_hits, candidate.feedback) == (4, 1, 3)
    assert candidate.hit_rate == pytest.approx(0.25)
    assert candidate.cost_per_request == pytest.approx(0.015)
    assert candidate.successes == 0
    assert candidate.cost_per_success is None

    # feedback goes to the caller's answer, never to its shadow copy
    shadow = summary["shadow"]
    assert (shadow.requests, shadow.hit_rate, shadow.successes) == (2, 0.0, 0)
    assert shadow.cost_per_request == pytest.approx(0.01)
    assert shadow.cost_per_success is None


def test_the_json_form_carries_the_derived_values(
    summary: dict[str, query.VariantSummary],
) -> None:
    stable = summary["stable"].to_json()
    assert stable["hit_rate"] == pytest.approx(0.3)
    assert stable["cost_per_request"] == pytest.approx(0.02)
    assert stable["cost_per_success"] == pytest.approx(0.05)
    candidate = summary["candidate"].to_json()
    assert "cost_per_success" in candidate and candidate["cost_per_success"] is None


def test_the_whole_log_counts_what_the_window_left_out(store: LogStore) -> None:
    _fill(store)
    stable = store.variant_summary(ENDPOINT)["stable"]
    # "early" and "late" join: 12 requests, 4 hits, $2.20, 6 successes
    assert (stable.requests, stable.cache_hits, stable.successes) == (12, 4, 6)
    assert stable.hit_rate == pytest.approx(4 / 12)
    assert stable.cost_per_request == pytest.approx(2.20 / 12)
    assert stable.cost_per_success == pytest.approx(2.20 / 6)
    prod = store.variant_summary(ENDPOINT, environment="prod")["stable"]
    assert (prod.requests, prod.successes, prod.cost_per_success) == (1, 0, None)


def test_an_endpoint_without_any_feedback_has_no_cost_per_success(store: LogStore) -> None:
    store.write([rec(f"r{i}", ts=T0 + i, cost_usd=0.5, cache_hit=i == 0) for i in range(4)])
    (fraud,) = query.variant_summary(store, "fraud").values()
    assert (fraud.requests, fraud.feedback, fraud.successes) == (4, 0, 0)
    assert fraud.hit_rate == pytest.approx(0.25)
    assert fraud.cost_per_request == pytest.approx(0.5)
    assert fraud.cost_per_success is None


def test_successes_that_cost_nothing_cost_zero_per_success(store: LogStore) -> None:
    """Zero is a cost (everything came from the cache), unlike None (nothing succeeded)."""
    store.write(
        [rec(f"h{i}", ts=T0 + i, cost_usd=0.0, cache_hit=True) for i in range(3)],
        [Feedback(request_id="h1", endpoint="fraud", outcome=True, ts=T0 + 10)],
    )
    (fraud,) = query.variant_summary(store, "fraud").values()
    assert (fraud.hit_rate, fraud.successes) == (1.0, 1)
    assert fraud.cost_per_success == 0.0 and fraud.cost_per_success is not None


def test_no_requests_means_no_rates() -> None:
    empty = query.VariantSummary(
        variant="stable",
        requests=0,
        server_errors=0,
        client_errors=0,
        latency_p50_ms=None,
        latency_p95_ms=None,
        latency_p99_ms=None,
        cost_usd=0.0,
        input_tokens=0,
        output_tokens=0,
        cache_hits=0,
    )
    assert (empty.hit_rate, empty.cost_per_request, empty.cost_per_success) == (None, None, None)
