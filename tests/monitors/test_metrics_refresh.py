"""End to end with the real `mlx`: latency, error_rate and cost monitors over an endpoint's
SQLite inference log (written with the log's own store, as `mlx serve` writes it). Per type: a
firing case (exit 2 with --detailed-exitcode; the webhook on 127.0.0.1 got one alert naming the
version and the value), an ok case (exit 0, nothing sent), a window without traffic (no_data,
exit 0); a cost window without prices is insufficient_data; `mlx show monitors.NAME --json`
carries the metric rows."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inference.records import Feedback, InferenceRecord
from inference.store import open_log
from tests.alerts.conftest import Channel
from tests.conftest import BASIC, write_spec


def make_spec(tmp_path: Path, channel: Channel, monitor: str) -> Path:
    return write_spec(
        tmp_path / "spec",
        {
            **BASIC,
            "serve.yaml": """
                endpoints:
                  fraud: {serves: "${models.fraud}", owner: team-ml}
            """,
            "hook.yaml": f"""
                alerts:
                  hook: {{type: webhook, url: "{channel.url}", timeout_s: 2, owner: team-ml}}
            """,
            "monitors.yaml": """
                monitors:
                  watch:
                    target: ${endpoints.fraud}
                    alert: ${alerts.hook}
                    owner: team-ml
                    window: 1h
"""
            + monitor,
        },
    )


@dataclass(frozen=True)
class Traffic:
    """``n`` requests of one variant: every ``every``-th one slow / failed / a success."""

    variant: str
    version: str
    n: int
    latency_ms: float = 10.0
    slow_ms: float | None = None  # the latency of every 10th request
    errors: int = 0  # the first ``errors`` requests answer 503
    cost: float | None = 0.002
    successes: int = 0  # the first ``successes`` requests get feedback value 1


def write_log(spec: Path, traffic: list[Traffic], url: str | None = None) -> None:
    store = open_log(url or f"sqlite:///{spec / '.mlx' / 'inference.db'}")
    start = time.time() - 600
    records, feedback = [], []
    for t in traffic:
        for i in range(t.n):
            rid = f"{t.variant}-{i}"
            slow = t.slow_ms is not None and i % 10 == 9
            records.append(
                InferenceRecord(
                    request_id=rid,
                    ts=start + i * 0.1,
                    endpoint="fraud",
                    variant=t.variant,
                    subject="models.fraud",
                    version=t.version,
                    status=503 if i < t.errors else 200,
                    latency_ms=float(t.slow_ms if slow and t.slow_ms else t.latency_ms),
                    cost_usd=t.cost,
                )
            )
            value = 1 if i < t.successes else 0
            feedback.append(Feedback(request_id=rid, endpoint="fraud", ts=start + 300, value=value))
    store.write(records, feedback)
    store.close()


STABLE = Traffic("stable", "1", 200)
CASES: list[tuple[str, str, list[Traffic], int, str, list[str]]] = [
    # id, the monitor's type fields, the traffic, exit code, state, what the alert says
    (
        "latency-firing",
        "type: latency\nthreshold: 250\n",
        [STABLE, Traffic("canary", "2", 100, slow_ms=412.0)],
        2,
        "firing",
        ["version 2", "latency p95 412 ms > 250 ms (100 requests)"],
    ),
    ("latency-ok", "type: latency\nthreshold: 250\nmetric: p99\n", [STABLE], 0, "ok", []),
    (
        "error-rate-firing",
        "type: error_rate\nthreshold: 0.05\n",
        [STABLE, Traffic("canary", "2", 100, errors=12)],
        2,
        "firing",
        ["version 2", "error rate 0.12 > 0.05 (12 server errors in 100 requests)"],
    ),
    (
        "error-rate-ok",
        "type: error_rate\nthreshold: 0.05\n",
        [Traffic("stable", "1", 200, errors=10)],
        0,
        "ok",
        [],
    ),
    (
        "cost-firing",
        "type: cost\nthreshold: 0.005\n",
        [STABLE, Traffic("canary", "2", 100, cost=0.008)],
        2,
        "firing",
        ["version 2", "cost per request $0.008 > $0.005 (100 requests, 100 priced: coverage"],
    ),
    (
        "cost-per-success-firing",
        "type: cost\nthreshold: 0.01\nmetric: cost_per_success\n",
        [Traffic("stable", "1", 200, successes=100), Traffic("canary", "2", 100, successes=10)],
        2,
        "firing",
        ["version 2", "cost per success $0.02 > $0.01"],
    ),
    ("cost-ok", "type: cost\nthreshold: 0.005\n", [STABLE], 0, "ok", []),
    (
        "cost-unpriced",
        "type: cost\nthreshold: 0.005\n",
        [Traffic("stable", "1", 50, cost=None)],
        0,
        "insufficient_data",
        [],
    ),
]


def _indent(fields: str) -> str:
    return "".join(f"                    {line}\n" for line in fields.splitlines())


@pytest.mark.parametrize(
    ("fields", "traffic", "code", "state", "alert"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_a_metric_monitor_run(
    tmp_path: Path,
    channel: Channel,
    mlx_m: Any,
    fields: str,
    traffic: list[Traffic],
    code: int,
    state: str,
    alert: list[str],
) -> None:
    spec = make_spec(tmp_path, channel, _indent(fields))
    applied = mlx_m(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    write_log(spec, traffic)

    run = mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode", "--json"], spec)
    assert run.code == code, run
    got = json.loads(run.out)["monitors"][0]
    assert got["state"] == state, got
    if alert:
        assert len(channel.delivered) == 1, channel.requests
        body = json.dumps(channel.delivered[0]["json"])
        for text in alert:
            assert text in body, body
        assert "mlx show monitors.watch" in body and "mlx logs fraud --since 1h" in body
    elif state == "ok":
        assert channel.requests == []
    else:  # insufficient_data: alerted as no data (for: 1), never as ok
        assert len(channel.delivered) == 1
        assert "insufficient_data" in json.dumps(channel.delivered[0]["json"])

    shown = mlx_m(["show", "monitors.watch", "--json"], spec)
    assert shown.code == 0, shown
    latest = json.loads(shown.out)["monitor"]["latest"]
    assert latest["state"] == state
    judged = latest["metrics"][0]
    assert judged["threshold"] == float(fields.split("threshold: ")[1].split("\n")[0])
    want = "breach" if state == "firing" else "ok" if state == "ok" else state
    if len(traffic) == 1:  # the whole is the one slice
        assert judged["verdict"] == want
    human = mlx_m(["show", "monitors.watch"], spec)
    assert judged["metric"] in human.out, human


def test_the_rows_of_a_latency_run(tmp_path: Path, channel: Channel, mlx_m: Any) -> None:
    """Every figure is a metric row; each version is a slice of its own."""
    spec = make_spec(tmp_path, channel, _indent("type: latency\nthreshold: 250\n"))
    assert mlx_m(["apply", "--yes"], spec).code == 0
    write_log(spec, [STABLE, Traffic("canary", "2", 100, slow_ms=412.0)])
    assert mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode"], spec).code == 2
    latest = json.loads(mlx_m(["show", "monitors.watch", "--json"], spec).out)["monitor"]["latest"]
    slices = {(s["variant"], s["version"]): s for s in latest["slices"]}
    canary = {m["metric"]: m for m in slices[("canary", "2")]["metrics"]}
    assert canary["latency_p95_ms"] == {
        "metric": "latency_p95_ms",
        "value": 412.0,
        "threshold": 250.0,
        "verdict": "breach",
    }
    assert canary["latency_p50_ms"]["value"] == 10.0 and canary["requests"]["value"] == 100
    stable = {m["metric"]: m for m in slices[("stable", "1")]["metrics"]}
    assert stable["latency_p95_ms"]["verdict"] == "ok" and stable["requests"]["value"] == 200
    assert slices[("canary", "2")]["breach"] and not slices[("stable", "1")]["breach"]
    # the whole window: 300 requests, p95 at rank 285 = 10 ms (only 10 are slow)
    whole = {m["metric"]: m for m in latest["metrics"]}
    assert whole["requests"]["value"] == 300 and whole["latency_p95_ms"]["verdict"] == "ok"


@pytest.mark.parametrize("kind", ["latency", "error_rate", "cost"])
def test_a_window_without_traffic_is_no_data(
    tmp_path: Path, channel: Channel, mlx_m: Any, kind: str
) -> None:
    spec = make_spec(tmp_path, channel, _indent(f"type: {kind}\nthreshold: 0.5\n"))
    assert mlx_m(["apply", "--yes"], spec).code == 0
    write_log(spec, [])  # the log exists, the window is empty
    run = mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode", "--json"], spec)
    assert run.code == 0, run
    got = json.loads(run.out)["monitors"][0]
    assert got["state"] == "no_data" and got["reason"] == "no requests in the window", got


@dataclass(frozen=True)
class Labels:
    """``n`` requests of one variant, the first ``labelled`` of them labelled later, of which
    the first ``right`` were predicted right; ``country`` of every request alternates fr/de
    unless ``only`` names one."""

    variant: str
    version: str
    n: int
    labelled: int
    right: int
    only: str | None = None
    wrong_de: int = 0  # else: the first ``wrong_de`` labelled "de" requests are wrong, no other


def write_labelled(spec: Path, traffic: list[Labels]) -> None:
    store = open_log(f"sqlite:///{spec / '.mlx' / 'inference.db'}")
    start = time.time() - 600
    records, feedback = [], []
    for t in traffic:
        de_wrong = 0
        for i in range(t.n):
            rid = f"{t.variant}-{i}"
            country = t.only or ("fr", "de")[i % 2]
            records.append(
                InferenceRecord(
                    request_id=rid,
                    ts=start + i * 0.1,
                    endpoint="fraud",
                    variant=t.variant,
                    subject="models.fraud",
                    version=t.version,
                    status=200,
                    latency_ms=5.0,
                    inputs={"dataframe_records": [{"amount": i, "country": country}]},
                    outputs={"predictions": [1]},
                )
            )
            if i < t.labelled:  # the label arrives later
                label = 1 if i < t.right else 0
                if t.wrong_de:
                    label = 0 if country == "de" and de_wrong < t.wrong_de else 1
                    de_wrong += country == "de"
                feedback.append(
                    Feedback(request_id=rid, endpoint="fraud", ts=start + 400, label=label)
                )
    store.write(records)
    store.write((), feedback)
    store.close()


PERFORMANCE = "type: performance\nthreshold: 0.8\nmin_labels: 10\n"


@pytest.mark.parametrize(
    ("traffic", "code", "state", "alert"),
    [
        (
            [Labels("stable", "1", 100, 60, 54), Labels("canary", "2", 50, 30, 15)],
            2,
            "firing",
            ["version 2", "accuracy 0.5 < 0.8 (30 labelled of 50 requests: coverage 60%)"],
        ),
        ([Labels("stable", "1", 100, 60, 54)], 0, "ok", []),
        ([], 0, "no_data", ["no_data"]),  # alerted as no data (for: 1), never ok
        ([Labels("stable", "1", 100, 5, 0)], 0, "insufficient_data", ["insufficient_data"]),
    ],
    ids=["firing", "ok", "no-traffic", "below-min-labels"],
)
def test_a_performance_monitor_run(
    tmp_path: Path,
    channel: Channel,
    mlx_m: Any,
    traffic: list[Labels],
    code: int,
    state: str,
    alert: list[str],
) -> None:
    spec = make_spec(tmp_path, channel, _indent(PERFORMANCE))
    assert mlx_m(["apply", "--yes"], spec).code == 0
    write_labelled(spec, traffic)
    run = mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode", "--json"], spec)
    assert run.code == code, run
    got = json.loads(run.out)["monitors"][0]
    assert got["state"] == state, got
    if alert:
        assert len(channel.delivered) == 1, channel.requests
        body = json.dumps(channel.delivered[0]["json"])
        for text in alert:
            assert text in body, body
    else:
        assert channel.requests == []
    if state == "insufficient_data":
        assert "accuracy: 5 labels < min_labels 10" in got["reason"], got
    shown = json.loads(mlx_m(["show", "monitors.watch", "--json"], spec).out)["monitor"]
    metrics = {m["metric"]: m for m in shown["latest"]["metrics"]}
    if traffic:
        assert metrics["accuracy"]["threshold"] == 0.8
        labelled = sum(t.labelled for t in traffic)
        requests = sum(t.n for t in traffic)
        assert metrics["labelled"]["value"] == labelled
        assert metrics["label_coverage"]["value"] == pytest.approx(labelled / requests)
    else:
        assert shown["latest"]["metrics"] == []


def test_performance_by_segment_names_the_segment(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    """``slices: {by: [country]}`` from the logged inputs: the de segment of version 1 falls
    below the floor while the version as a whole does not."""
    fields = PERFORMANCE + "slices: {by: [country], min_rows: 10}\n"
    spec = make_spec(tmp_path, channel, _indent(fields))
    assert mlx_m(["apply", "--yes"], spec).code == 0
    # 80 labelled: fr 40, all right; de 40, 26 right (0.65); version 1 as a whole 66/80 = 0.825
    write_labelled(spec, [Labels("stable", "1", 120, 80, 0, wrong_de=14)])
    run = mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode", "--json"], spec)
    assert run.code == 2, run
    body = json.dumps(channel.delivered[0]["json"])
    assert "variant stable version 1: country=de: accuracy 0.65 < 0.8 (40 labelled)" in body
    shown = json.loads(mlx_m(["show", "monitors.watch", "--json"], spec).out)["monitor"]
    breached = [s for s in shown["latest"]["slices"] if s["breach"]]
    assert [(s["version"], s["findings"]) for s in breached] == [
        ("1", ["country=de: accuracy 0.65 < 0.8 (40 labelled)"])
    ]
    assert len(shown["latest"]["slices"]) == 3  # version 1, its fr and de segments
    whole = {m["metric"]: m["value"] for m in shown["latest"]["metrics"]}
    assert whole["accuracy"] == pytest.approx(66 / 80)


def test_a_latency_alert_fires_once_and_resolves_once(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    spec = make_spec(tmp_path, channel, _indent("type: latency\nthreshold: 250\n"))
    assert mlx_m(["apply", "--yes"], spec).code == 0
    write_log(spec, [STABLE, Traffic("canary", "2", 100, slow_ms=412.0)])
    for _ in range(2):  # still firing: sent once
        run = mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode"], spec)
        assert run.code == 2, run
    assert len(channel.delivered) == 1
    assert "monitors.watch: firing (latency p95 412 ms > 250 ms" in run.out, run
    assert "in variant canary version 2" in run.out, run

    (spec / ".mlx" / "inference.db").unlink()  # the slow canary is gone: a fast one serves
    write_log(spec, [STABLE, Traffic("canary", "2", 100)])
    run = mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode", "--json"], spec)
    assert run.code == 0 and json.loads(run.out)["monitors"][0]["state"] == "ok", run
    assert len(channel.delivered) == 2
    resolved = channel.delivered[1]["json"]
    assert resolved["status"] == "resolved"
    assert "latency back within its threshold on endpoint fraud version 2" in json.dumps(resolved)
    trend = json.loads(mlx_m(["show", "monitors.watch", "--json"], spec).out)["monitor"]["trend"]
    assert [(t["state"], t["metric"]) for t in trend] == [
        ("firing", "latency_p95_ms"), ("firing", "latency_p95_ms"), ("ok", "latency_p95_ms")
    ]  # fmt: skip


def test_only_the_whole_breaching_alerts_without_a_version(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    """A shadow's spend has no success of its own (feedback goes to the caller's answer): its
    slice is not judged, yet it raises the endpoint's cost per success past the ceiling."""
    fields = "type: cost\nthreshold: 0.005\nmetric: cost_per_success\n"
    spec = make_spec(tmp_path, channel, _indent(fields))
    assert mlx_m(["apply", "--yes"], spec).code == 0
    # stable: $0.4 for 100 successes = $0.004; with the shadow's $0.4: $0.008 per success
    write_log(spec, [Traffic("stable", "1", 200, successes=100), Traffic("shadow", "3", 200)])
    run = mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode", "--json"], spec)
    assert run.code == 2, run
    assert len(channel.delivered) == 1
    alert = channel.delivered[0]["json"]
    assert alert["alerts"][0]["labels"].get("version") in (None, ""), alert
    assert "cost per success $0.008 > $0.005" in json.dumps(alert)
    latest = json.loads(mlx_m(["show", "monitors.watch", "--json"], spec).out)["monitor"]["latest"]
    assert [s["version"] for s in latest["slices"]] == ["1", None]


def test_an_error_rate_monitor_over_a_postgresql_log(
    tmp_path: Path, channel: Channel, mlx_m: Any, pg_url: str
) -> None:
    """The same run where several gateway replicas share the log (``MLX_LOG``)."""
    spec = make_spec(tmp_path, channel, _indent("type: error_rate\nthreshold: 0.05\n"))
    env = {"MLX_LOG": pg_url}
    assert mlx_m(["apply", "--yes"], spec, env=env).code == 0
    write_log(spec, [STABLE, Traffic("canary", "2", 100, errors=12)], url=pg_url)
    run = mlx_m(["refresh", "--monitor", "watch", "--detailed-exitcode"], spec, env=env)
    assert run.code == 2, run
    assert "error rate 0.12 > 0.05 (12 server errors in 100 requests)" in run.out, run
    assert "in variant canary version 2" in run.out, run
    assert not (spec / ".mlx" / "inference.db").exists()  # nothing read from a SQLite log
