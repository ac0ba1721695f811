"""The queries against hand-computed expectations, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from inference import query
from inference.buckets import ALPHA
from inference.records import Feedback, InferenceRecord
from inference.store import LogStore
from tests.inference.conftest import T0, rec

SINCE, UNTIL = T0, T0 + 100


def _stable(i: int) -> InferenceRecord:
    status = {0: 500, 1: 503, 2: 502, 3: 404, 4: 429}.get(i, 200)
    inputs: Any = None
    if 20 <= i < 30:
        inputs = [{"amount": i - 20, "country": "DE" if i % 2 else "FR"}]
    elif i == 30:
        inputs = {"amount": "n/a"}  # one record, not a list; not a number
    elif i == 31:
        inputs = [{"country": None}]
    return rec(
        f"s{i}",
        ts=T0 + i * 0.5,
        latency_ms=float(i + 1),  # 1 … 100 ms
        status=status,
        cost_usd=0.001,
        input_tokens=10,
        output_tokens=5,
        cache_hit=i % 10 == 0,
        inputs=inputs,
        error="boom" if status >= 500 else None,
    )


def _canary(i: int) -> InferenceRecord:
    latency = 10.0 if i < 10 else 20.0 if i < 19 else 100.0
    return rec(
        f"c{i}", ts=T0 + 60 + i, variant="canary", version="2", latency_ms=latency,
        status=500 if i == 7 else 200,
    )  # fmt: skip


def _fill(store: LogStore) -> None:
    records = [_stable(i) for i in range(100)] + [_canary(i) for i in range(20)]
    records += [
        rec(f"s{i}", ts=T0 + i * 0.5, variant="shadow", version="2", latency_ms=50.0,
            cost_usd=0.002, outputs={"p": i / 10})
        for i in range(5)
    ]  # fmt: skip
    records += [rec("early", ts=T0 - 1, cost_usd=5.0), rec("late", ts=UNTIL, cost_usd=5.0)]
    records += [rec(f"p{i}", environment="prod", ts=T0 + i, cost_usd=1.0) for i in range(7)]
    records += [
        rec(f"u{i}", endpoint="support", subject="prompts.x", ts=T0 + i, cost_usd=0.01,
            input_tokens=100, output_tokens=50)
        for i in range(3)
    ]  # fmt: skip
    feedback = [
        Feedback(request_id="s10", endpoint="fraud", value=1, ts=T0 + 200),
        Feedback(request_id="s11", endpoint="fraud", outcome=True, ts=T0 + 200),
        Feedback(request_id="s11", endpoint="fraud", value=0, ts=T0 + 201),
        Feedback(request_id="s12", endpoint="fraud", label="meh", ts=T0 + 200),
        Feedback(request_id="s0", endpoint="fraud", value=2, ts=T0 + 200),  # has a shadow too
        Feedback(request_id="s0", endpoint="support", value=9, ts=T0 + 200),  # other endpoint
        Feedback(request_id="c0", endpoint="fraud", value=0.5, ts=T0 + 200),
        Feedback(request_id="early", endpoint="fraud", value=1, ts=T0 + 200),  # outside
    ]
    for i in range(0, len(records), 50):  # several batches, feedback in the last
        last = i + 50 >= len(records)
        store.write(records[i : i + 50], feedback if last else ())


@pytest.fixture
def filled(store: LogStore) -> LogStore:
    _fill(store)
    return store


def test_variant_summary(filled: LogStore) -> None:
    summary = query.variant_summary(filled, "fraud", since=SINCE, until=UNTIL)
    assert list(summary) == ["canary", "shadow", "stable"]
    stable, canary, shadow = summary["stable"], summary["canary"], summary["shadow"]

    assert (stable.requests, stable.server_errors, stable.client_errors) == (100, 3, 2)
    assert stable.error_rate == 0.03
    assert stable.cost_usd == pytest.approx(0.1) and stable.cost_per_request == pytest.approx(0.001)
    assert (stable.input_tokens, stable.output_tokens, stable.cache_hits) == (1000, 500, 10)
    for got, exact in ((stable.latency_p50_ms, 50), (stable.latency_p95_ms, 95),
                       (stable.latency_p99_ms, 99)):  # fmt: skip
        assert got is not None and abs(got - exact) / exact <= ALPHA
    # one outcome per request, the newest: s10 → 1, s11 → 0 (its 1 came first), s12 → "meh"
    # (no score), s0 → 2; s0's shadow and the feedback for another endpoint do not count
    assert (stable.feedback, stable.mean_score, stable.successes) == (4, 1.0, 2)

    assert (canary.requests, canary.server_errors, canary.error_rate) == (20, 1, 0.05)
    # 10 ms ten times, 20 ms nine times, 100 ms once: each percentile is on a bin's edge: exact
    assert (canary.latency_p50_ms, canary.latency_p95_ms, canary.latency_p99_ms) == (10, 20, 100)
    assert (canary.cost_usd, canary.cost_per_request, canary.input_tokens) == (0.0, 0.0, 0)
    assert (canary.feedback, canary.mean_score, canary.successes) == (1, 0.5, 1)

    assert (shadow.requests, shadow.latency_p50_ms, shadow.feedback) == (5, 50.0, 0)
    assert shadow.mean_score is None and shadow.to_json()["error_rate"] == 0.0


def test_variant_summary_windows_and_environments(filled: LogStore) -> None:
    everything = query.variant_summary(filled, "fraud")
    assert everything["stable"].requests == 102  # "early" and "late" too
    assert everything["stable"].feedback == 5  # and early's feedback
    assert (
        query.variant_summary(filled, "fraud", since=T0 + 60, until=T0 + 70)["canary"].requests
        == 10
    )
    prod = query.variant_summary(filled, "fraud", environment="prod")
    assert list(prod) == ["stable"] and prod["stable"].requests == 7
    assert query.variant_summary(filled, "nothing") == {}


def test_a_caller_who_gave_up_is_none_of_the_variants_figures(store: LogStore) -> None:
    """499 (the caller hung up, or sent its body too slowly) is neither a server error nor a
    client error of the variant, nor a request its rates divide by, nor a latency it had."""
    records = [rec(f"ok{i}", variant="candidate", latency_ms=10.0) for i in range(8)]
    records += [rec("bad", variant="candidate", status=500, latency_ms=10.0)]
    records += [rec("refused", variant="candidate", status=400, latency_ms=10.0)]
    records += [
        rec(f"gone{i}", variant="candidate", status=499, latency_ms=30_000.0, cost_usd=0.5)
        for i in range(5)
    ]
    store.write(records)
    got = query.variant_summary(store, "fraud")["candidate"]
    assert (got.requests, got.server_errors, got.client_errors, got.abandoned) == (10, 1, 1, 5)
    assert got.error_rate == 0.1
    assert got.latency_p99_ms == 10.0  # the abandoned ones' 30 s is the caller's wait
    assert got.cost_usd == pytest.approx(2.5)  # what they cost is still spent
    assert got.to_json()["abandoned"] == 5


def test_one_outcome_per_request_the_newest(store: LogStore) -> None:
    """Feedback is last-write-wins: a request's newest feedback is its outcome, once."""
    store.write([rec("r1"), rec("r2")])
    store.write(
        [],
        [
            Feedback(request_id="r1", endpoint="fraud", value=1, ts=T0 + 1),
            Feedback(request_id="r1", endpoint="fraud", value=1, ts=T0 + 2),
            Feedback(request_id="r1", endpoint="fraud", value=0, ts=T0 + 3),  # the outcome
            Feedback(request_id="r2", endpoint="fraud", value=0, ts=T0 + 5),
            Feedback(request_id="r2", endpoint="fraud", value=1, ts=T0 + 6),  # the outcome
        ],
    )
    got = query.variant_summary(store, "fraud")["stable"]
    assert (got.requests, got.feedback, got.successes, got.mean_score) == (2, 2, 1, 0.5)


def test_spend(filled: LogStore) -> None:
    fraud = query.spend(filled, since=SINCE, until=UNTIL, endpoint="fraud")
    assert fraud.usd == pytest.approx(0.1 + 0.01) and fraud.requests == 125
    assert (fraud.input_tokens, fraud.output_tokens, fraud.tokens) == (1000, 500, 1500)
    support = query.spend(filled, subject="prompts.x")
    assert support.usd == pytest.approx(0.03) and support.tokens == 450
    assert query.spend(filled).usd == pytest.approx(0.11 + 10.0 + 0.03)
    assert query.spend(filled, environment="prod").usd == pytest.approx(7.0)
    nothing = query.spend(filled, since=T0 + 10_000)
    assert (nothing.usd, nothing.tokens, nothing.requests) == (0.0, 0, 0)


def test_pairs(filled: LogStore) -> None:
    pairs = query.pairs(filled, "fraud", since=SINCE, until=UNTIL)
    assert [p.request_id for p in pairs] == ["s0", "s1", "s2", "s3", "s4"]
    first = pairs[0]
    assert (first.primary.variant, first.primary.version, first.primary.status) == (
        "stable",
        "1",
        500,
    )
    assert (first.primary.latency_ms, first.primary.error, first.primary.outputs) == (
        1.0,
        "boom",
        None,
    )
    assert (first.shadow.variant, first.shadow.version, first.shadow.status) == ("shadow", "2", 200)
    assert first.shadow.outputs == {"p": 0.0} and pairs[3].shadow.outputs == {"p": 0.3}
    assert first.ts == T0
    assert query.pairs(filled, "fraud", since=T0 + 1) == pairs[2:]
    assert len(query.pairs(filled, "fraud", limit=2)) == 2
    assert query.pairs(filled, "support") == []


def test_endpoints_and_environments(filled: LogStore) -> None:
    assert query.endpoints(filled) == ["fraud", "support"]
    assert query.endpoints(filled, environment="prod") == ["fraud"]
    assert query.endpoints(filled, environment="nope") == []
    assert query.environments(filled) == ["default", "prod"]


def test_tail(filled: LogStore) -> None:
    last = query.tail(filled, "fraud", limit=3)
    assert [x.record.request_id for x in last] == ["c18", "c19", "late"]  # by ts, oldest first
    since = query.tail(filled, "fraud", since=T0 + 78, limit=None)
    assert [x.record.request_id for x in since] == ["c18", "c19", "late"]
    after = query.tail(filled, "fraud", after_id=last[0].id, limit=None)
    assert [x.id for x in after] == sorted(x.id for x in after)  # by storage order
    assert all(x.id > last[0].id for x in after)
    assert query.tail(filled, "fraud", environment="prod", limit=1)[0].record.request_id == "p6"


def test_follower_prints_each_new_record_once(store: LogStore) -> None:
    store.write([rec(f"old{i}", ts=T0 + i) for i in range(5)])
    follower = query.Follower(store, "fraud")
    assert [x.record.request_id for x in follower.first(since=T0 + 3, limit=None)] == [
        "old3",
        "old4",
    ]
    assert follower.poll() == []
    store.write([rec("new1", ts=T0 - 100), rec("other", endpoint="support")])  # ts is old
    assert [x.record.request_id for x in follower.poll()] == ["new1"]
    store.write([rec("new2")])
    assert [x.record.request_id for x in follower.poll()] == ["new2"]
    assert follower.poll() == []


def test_follower_with_an_overlap_skips_what_it_showed(store: LogStore) -> None:
    follower = query.Follower(store, "fraud", overlap_s=60.0)
    assert follower.first(since=None, limit=10) == []
    store.write([rec("a"), rec("b")])
    assert [x.record.request_id for x in follower.poll()] == ["a", "b"]
    store.write([rec("c")])
    assert [x.record.request_id for x in follower.poll()] == ["c"]  # a, b re-read, not re-shown
    assert follower.poll() == []
    store.write([rec(f"d{i}") for i in range(5)])
    assert [x.record.request_id for x in follower.poll(page=2)] == [f"d{i}" for i in range(5)]


def test_feature_counts(filled: LogStore) -> None:
    amount = query.feature_counts(filled, "fraud", "amount", edges=[2, 5], since=SINCE, until=UNTIL)
    # amounts 0…9: below 2 → 2, [2, 5) → 3, 5 and up → 5; "n/a" and a missing one → None
    assert amount == {0: 2, 1: 3, 2: 5, None: 2}
    country = query.feature_counts(filled, "fraud", "country")
    assert country == {"DE": 5, "FR": 5, None: 2}
    assert query.feature_counts(filled, "fraud", "amount", edges=[2], variant="canary") == {}


def test_feedback_finds_each_request_by_its_id_not_by_reading_the_window(tmp_path: Any) -> None:
    """With feedback, the window was read once per feedback row (SQLite scanned the ranked
    feedback per request, then the window index per feedback row): 30 s for 100k requests
    and 2k feedback rows. The feedback query must look each request up by its id."""
    from sqlalchemy import event

    from inference.store import open_log

    store = open_log(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        _fill(store)
        seen: list[tuple[str, Any]] = []
        listen = event.listens_for(store.engine, "before_cursor_execute")
        listen(lambda _c, _cur, sql, params, _ctx, _many: seen.append((sql, params)))
        summary = query.variant_summary(store, "fraud", since=SINCE, until=UNTIL)
        assert summary["stable"].feedback == 4
        (sql, params), *_ = [s for s in seen if "mlx_feedback" in s[0] and "GROUP BY" in s[0]]
        with store.engine.connect() as conn:
            plan = " | ".join(
                row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
        assert "mlx_inference USING INDEX ix_mlx_inference_request" in plan, plan
        assert "ix_mlx_inference_window" not in plan, plan
    finally:
        store.close()
