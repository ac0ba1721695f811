"""The pure decisions of the metric monitors, one table row per branch: a figure against a
ceiling or a floor, the run's state from its slices, each type's figures and findings, the
metric names, and the spec's refusals."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from inference.buckets import Bin, bucket_of
from inference.monitor_window import Figures
from providers.monitor.metric_judge import (
    Direction,
    Judged,
    Row,
    State,
    Verdict,
    decide,
    judge_value,
    number,
)
from providers.monitor.metrics import canonical_metric, judge_figures
from specs.monitors import Monitor

C, F = Direction.CEILING, Direction.FLOOR


@pytest.mark.parametrize(
    ("value", "threshold", "direction", "requests", "expected"),
    [
        (300.0, 250.0, C, 10, Verdict.BREACH),  # above a ceiling
        (250.0, 250.0, C, 10, Verdict.OK),  # on it: within
        (100.0, 250.0, C, 10, Verdict.OK),
        (0.7, 0.8, F, 10, Verdict.BREACH),  # below a floor
        (0.8, 0.8, F, 10, Verdict.OK),  # on it: within
        (0.9, 0.8, F, 10, Verdict.OK),
        (None, 0.8, F, 10, Verdict.INSUFFICIENT_DATA),  # requests, no figure
        (None, 250.0, C, 0, Verdict.NO_DATA),  # no request
        (0.0, 250.0, C, 0, Verdict.NO_DATA),  # a value without requests is still no data
    ],
)
def test_judge_value(
    value: float | None, threshold: float, direction: Direction, requests: int, expected: Verdict
) -> None:
    assert judge_value(value, threshold, direction, requests=requests) is expected


def _j(verdict: Verdict, variant: str | None = "stable", version: str | None = "1") -> Judged:
    return Judged(variant, version, 10, [Row("m", 1.0, 1.0, verdict)], f"m {verdict.value}")


OK, BR, INS, NOD = Verdict.OK, Verdict.BREACH, Verdict.INSUFFICIENT_DATA, Verdict.NO_DATA


@pytest.mark.parametrize(
    ("whole", "parts", "state", "judged", "unjudged"),
    [
        (None, [], State.NO_DATA, 0, 0),  # no slice at all
        (NOD, [NOD], State.NO_DATA, 0, 1),  # only abandoned requests
        (BR, [BR, OK], State.FIRING, 2, 0),
        (OK, [OK, BR], State.FIRING, 2, 0),  # a slice breaches, the whole does not
        (BR, [INS, INS], State.FIRING, 1, 2),  # the whole breaches, no slice judged: the
        (BR, [OK, INS], State.FIRING, 2, 1),  # whole is a slice (no version) of its own
        (INS, [INS, NOD], State.INSUFFICIENT_DATA, 0, 2),  # nothing judged
        (INS, [OK, INS], State.OK, 1, 1),  # a judged slice: ok, the other not judged
        (OK, [OK, INS], State.OK, 1, 1),
        (OK, [OK, OK], State.OK, 2, 0),
    ],
)
def test_decide(
    whole: Verdict | None, parts: list[Verdict], state: State, judged: int, unjudged: int
) -> None:
    slices = [_j(v, f"v{i}", str(i)) for i, v in enumerate(parts)]
    run = decide(None if whole is None else _j(whole, None, None), slices)
    assert run.state is state
    assert (len(run.slices), len(run.unjudged)) == (judged, unjudged)
    # a slice without a figure is never among the slices observed as ok or breach
    assert all(s.verdict in (OK, BR) for s in run.slices)
    out = run.as_dict()
    assert out["state"] == state.value
    if state is State.OK and unjudged:
        assert "not judged (too little data): variant v" in run.reason
    if state is State.FIRING:
        assert run.reason == "m breach"
        assert any(s["breach"] for s in out["slices"])  # an alert fires for some version
        assert all(s["breach"] == (s["verdict"] == "breach") for s in out["slices"])


def test_breached_versions_are_named_once() -> None:
    a = _j(BR, "canary", "2")
    seg = Judged("canary", "2", 5, [Row("m", 1.0, 1.0, BR)], "m", segment="country=fr")
    run = decide(_j(BR, None, None), [a, seg, _j(OK)])
    assert run.as_dict()["drifted_slices"] == [["canary", "2"]]
    assert seg.label == "variant canary version 2 country=fr"


def _figures(latencies: list[float], **kw: Any) -> Figures:
    bins: dict[int, Bin] = {}
    for x in latencies:
        b = bucket_of(x)
        old = bins.get(b)
        bins[b] = Bin(b, 1, x, x) if old is None else Bin(b, old.count + 1, min(old.low, x),
                                                          max(old.high, x))  # fmt: skip
    return Figures(requests=len(latencies), bins=tuple(bins[k] for k in sorted(bins)), **kw)


LAT = [10.0] * 90 + [412.0] * 10  # p95 = 412 (nearest rank 95 of 100)


@pytest.mark.parametrize(
    ("kind", "metric", "threshold", "figures", "verdict", "finding"),
    [
        ("latency", "latency_p95_ms", 250.0, _figures(LAT), BR,
         "latency p95 412 ms > 250 ms (100 requests)"),
        ("latency", "latency_p50_ms", 250.0, _figures(LAT), OK,
         "latency p50 10 ms <= 250 ms (100 requests)"),
        ("latency", "latency_p99_ms", 250.0, Figures(abandoned=3), NOD,
         "latency p99: no requests"),
        ("error_rate", "error_rate", 0.05, _figures(LAT, server_errors=6), BR,
         "error rate 0.06 > 0.05 (6 server errors in 100 requests)"),
        ("error_rate", "error_rate", 0.05, _figures(LAT, server_errors=5), OK,
         "error rate 0.05 <= 0.05 (5 server errors in 100 requests)"),
        ("cost", "cost_per_request", 0.01, _figures(LAT, cost_usd=1.5, priced=50), BR,
         "cost per request $0.03 > $0.01 (100 requests, 50 priced: coverage 50%)"),
        ("cost", "cost_per_request", 0.01, _figures(LAT), INS,
         "cost per request: unknown, no priced request (100 requests, 0 priced: coverage 0%)"),
        ("cost", "cost_per_success", 0.1, _figures(LAT, cost_usd=1.0, priced=100), INS,
         "cost per success: unknown, no successful outcome (100 requests, 100 priced: "
         "coverage 100%, 0 successful outcomes)"),
        ("cost", "cost_per_success", 0.1, _figures(LAT, cost_usd=1.0, priced=100, successes=20),
         OK, "cost per success $0.05 <= $0.1 (100 requests, 100 priced: coverage 100%, "
         "20 successful outcomes)"),
    ],
)  # fmt: skip
def test_judge_figures(
    kind: str, metric: str, threshold: float, figures: Figures, verdict: Verdict, finding: str
) -> None:
    j = judge_figures(kind, metric, threshold, ("stable", "1"), figures)
    assert j.verdict is verdict
    assert j.finding == finding
    first = j.rows[0]
    assert (first.metric, first.threshold, first.verdict) == (metric, threshold, verdict)
    names = [r.metric for r in j.rows]
    assert len(names) == len(set(names)) and "requests" in names
    if kind == "cost":  # coverage is a figure of its own; an unpriced row is never 0
        coverage = next(r for r in j.rows if r.metric == "cost_coverage")
        assert coverage.value == (figures.priced / figures.rows if figures.rows else None)
    out = j.as_dict()
    assert out["findings"] == ([finding] if verdict is BR else [])


@pytest.mark.parametrize(
    ("kind", "metric", "expected"),
    [
        ("latency", None, "latency_p95_ms"),
        ("latency", "p50", "latency_p50_ms"),
        ("latency", "latency_p95_ms", "latency_p95_ms"),
        ("latency", "p99", "latency_p99_ms"),
        ("error_rate", None, "error_rate"),
        ("cost", None, "cost_per_request"),
        ("cost", "cost_per_success", "cost_per_success"),
    ],
)
def test_canonical_metric(kind: str, metric: str | None, expected: str) -> None:
    assert canonical_metric(kind, metric) == expected


def test_an_unknown_metric_names_the_choices() -> None:
    with pytest.raises(ValueError, match="p50, p95, p99, not 'p90'"):
        canonical_metric("latency", "p90")


BASE = {"owner": "team-ml", "target": "${endpoints.fraud}"}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"type": "latency"}, "a monitor of type latency needs `threshold` (for p95, a ceiling"),
        ({"type": "cost", "metric": "cost_per_success"},
         "a monitor of type cost needs `threshold` (for cost_per_success, a ceiling"),
        ({"type": "error_rate"}, "a monitor of type error_rate needs `threshold`"),
        ({"type": "performance"}, "needs `threshold` (for accuracy, a floor: it fires below"),
        ({"type": "latency", "threshold": 250.0, "metric": "p90"},
         "a latency monitor's `metric` is one of p95, p50, p99"),
        ({"type": "performance", "threshold": 0.8, "metric": "f1"}, "not 'f1'"),
        ({"type": "error_rate", "threshold": 5.0}, "error_rate is a share from 0 to 1"),
        ({"type": "performance", "threshold": 80.0}, "accuracy is a share from 0 to 1"),
        ({"type": "cost", "threshold": 0.1, "slices": {"by": ["country"]}},
         "`slices` cuts performance by an input column; a cost monitor is sliced by variant"),
        ({"type": "latency", "threshold": 250.0, "min_labels": 3},
         "`min_labels` belongs to performance monitors"),
    ],
)  # fmt: skip
def test_the_spec_refuses(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace("$", r"\$")):
        Monitor.model_validate({**BASE, **spec})


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "latency", "threshold": 250.0, "metric": "latency_p99_ms"},
        {"type": "error_rate", "threshold": 0.05},
        {"type": "cost", "threshold": 0.02},
        {"type": "performance", "threshold": 0.8, "min_labels": 50, "metric": "success_rate"},
        {"type": "performance", "threshold": 3.5, "metric": "mean_score"},  # not a share
        {"type": "performance", "threshold": 0.8, "slices": {"by": ["country"], "min_rows": 5}},
    ],
)
def test_the_spec_takes(spec: dict[str, Any]) -> None:
    Monitor.model_validate({**BASE, **spec})


@pytest.mark.parametrize(
    ("x", "text"),
    [(1204.0, "1,204"), (412.0, "412"), (0.0625, "0.0625"), (12345.6, "12,346"), (0.5, "0.5")],
)
def test_number(x: float, text: str) -> None:
    assert number(x) == text
