"""``inference.monitor_window`` on SQLite and PostgreSQL: requests, server errors, latency
percentiles, spend and priced rows, feedback successes per (variant, version), against values
computed here from the rows written; and the labelled requests the performance monitor reads."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inference import buckets
from inference.monitor_window import labelled, merged, total, window_figures
from inference.records import Feedback, InferenceRecord
from inference.store import LogStore, open_log
from tests.inference.conftest import T0, rec

SINCE, UNTIL = T0, T0 + 1000


def _rows(seed: int) -> list[InferenceRecord]:
    """stable v1, canary v2 and a shadow v2 copy: random latencies, statuses and costs."""
    rng = random.Random(seed)
    out = []
    for variant, version, n, slow in (("stable", "1", 300, 1.0), ("canary", "2", 120, 3.0)):
        for i in range(n):
            status = rng.choice([200] * 12 + [500, 503, 404, 499])
            cost = None if rng.random() < 0.2 else round(rng.uniform(0.001, 0.01), 6)
            out.append(
                rec(
                    f"{variant}-{i}",
                    ts=T0 + i,
                    variant=variant,
                    version=version,
                    status=status,
                    latency_ms=round(rng.lognormvariate(3, 0.8) * slow, 3),
                    cost_usd=cost,
                    outputs={"predictions": [i % 2]},
                    inputs={"dataframe_records": [{"country": ["fr", "de"][i % 2]}]},
                )
            )
    out += [
        rec("stable-0", ts=T0, variant="shadow", version="2", latency_ms=7.0, cost_usd=0.5),
        # noise: outside the window, another endpoint, another environment
        rec("early", ts=T0 - 1, latency_ms=1e6, cost_usd=9.0),
        rec("late", ts=UNTIL, latency_ms=1e6, cost_usd=9.0),
        rec("other", ts=T0 + 1, endpoint="other", cost_usd=9.0),
        rec("prod", ts=T0 + 1, environment="prod", cost_usd=9.0),
    ]
    return out


def _feedback(records: list[InferenceRecord]) -> list[Feedback]:
    out = []
    for r in records:
        if r.variant == "shadow" or r.endpoint != "fraud" or r.request_id[-1] not in "02468":
            continue
        n = int(r.request_id.rsplit("-", 1)[-1])
        # an older feedback first, then the newest: only the newest counts
        out.append(Feedback(request_id=r.request_id, endpoint="fraud", ts=T0 + 2000, value=1))
        out.append(
            Feedback(
                request_id=r.request_id, endpoint="fraud", ts=T0 + 2001, label=n % 3 % 2,
                value=1 if n % 4 == 0 else 0,
            )
        )  # fmt: skip
    return out


def _nearest_rank(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[max(1, math.ceil(q * len(s))) - 1]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    """A fresh log on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log' / 'inference.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    s = open_log(url)
    yield s
    s.close()


@pytest.fixture
def filled(store: LogStore) -> tuple[LogStore, list[InferenceRecord], list[Feedback]]:
    records = _rows(7)
    fb = _feedback(records)
    store.write(records[:200])
    store.write(records[200:])
    store.write((), fb)
    return store, records, fb


def test_figures_per_slice_equal_the_rows(filled: Any) -> None:
    store, records, fb = filled
    got = window_figures(store, "fraud", since=SINCE, until=UNTIL)
    assert sorted(got, key=str) == [("canary", "2"), ("shadow", "2"), ("stable", "1")]
    newest = {f.request_id: f for f in fb}  # later ones overwrite: the newest
    for (variant, version), figs in got.items():
        mine = [
            r
            for r in records
            if (r.variant, r.version) == (variant, version)
            and r.endpoint == "fraud"
            and r.environment == "default"
            and SINCE <= r.ts < UNTIL
        ]
        judged = [r for r in mine if r.status != 499]
        assert figs.requests == len(judged)
        assert figs.abandoned == len(mine) - len(judged)
        assert figs.server_errors == sum(1 for r in judged if r.status >= 500)
        assert figs.error_rate == figs.server_errors / len(judged)  # exact
        priced = [r.cost_usd for r in mine if r.cost_usd is not None]
        assert figs.priced == len(priced)
        assert figs.cost_usd == pytest.approx(sum(priced))
        assert figs.cost_per_request == pytest.approx(sum(priced) / len(priced))
        assert figs.cost_coverage == len(priced) / len(mine)
        lat = [r.latency_ms for r in judged]
        for q in (0.5, 0.95, 0.99):
            exact = _nearest_rank(lat, q)
            got_q = figs.latency(q)
            assert got_q is not None
            # within the bucket bound of the exact nearest-rank value
            assert abs(got_q - exact) <= buckets.ALPHA * exact + 1e-9, (variant, q)
        outcomes = [newest[r.request_id] for r in judged if r.request_id in newest]
        if variant == "shadow":
            assert (figs.feedback, figs.successes, figs.cost_per_success) == (0, 0, None)
        else:
            assert figs.feedback == len(outcomes) > 0
            assert figs.successes == sum(1 for f in outcomes if (f.score or 0) > 0)
            assert figs.cost_per_success == pytest.approx(sum(priced) / figs.successes)


def test_the_whole_is_the_slices_added(filled: Any) -> None:
    store, records, _ = filled
    got = window_figures(store, "fraud", since=SINCE, until=UNTIL)
    whole = total(got)
    window = [
        r
        for r in records
        if r.endpoint == "fraud" and r.environment == "default" and SINCE <= r.ts < UNTIL
    ]
    judged = [r for r in window if r.status != 499]
    assert whole.requests == len(judged)
    assert whole.server_errors == sum(1 for r in judged if r.status >= 500)
    for q in (0.5, 0.95, 0.99):
        exact = _nearest_rank([r.latency_ms for r in judged], q)
        assert abs((whole.latency(q) or 0) - exact) <= buckets.ALPHA * exact + 1e-9
    # merging bins of one bucket keeps one bin per bucket
    assert len({b.bucket for b in whole.bins}) == len(whole.bins)
    assert merged([]).requests == 0 and merged([]).latency(0.5) is None


def test_without_outcomes_the_feedback_is_not_read(filled: Any) -> None:
    store, _, _ = filled
    full = window_figures(store, "fraud", since=SINCE, until=UNTIL)
    bare = window_figures(store, "fraud", since=SINCE, until=UNTIL, outcomes=False)
    assert full.keys() == bare.keys()
    for key, figs in bare.items():
        assert (figs.feedback, figs.successes) == (0, 0)
        assert figs.requests == full[key].requests and figs.bins == full[key].bins


def test_an_empty_window_has_no_slice(store: LogStore) -> None:
    assert window_figures(store, "fraud", since=SINCE, until=UNTIL) == {}


def test_labelled_requests_carry_their_newest_feedback_and_payloads(filled: Any) -> None:
    store, records, fb = filled
    got = labelled(store, "fraud", since=SINCE, until=UNTIL)
    newest = {f.request_id: f for f in fb}
    judged = {
        r.request_id: r
        for r in records
        if r.variant != "shadow" and r.status != 499 and r.endpoint == "fraud"
        and r.environment == "default" and SINCE <= r.ts < UNTIL
    }  # fmt: skip
    assert sorted(x.request_id for x in got) == sorted(set(newest) & set(judged))
    for x in got:
        f, r = newest[x.request_id], judged[x.request_id]
        assert (x.label, x.score, x.variant, x.version) == (f.label, f.score, r.variant, r.version)
        assert x.outputs == r.outputs and x.inputs == r.inputs
