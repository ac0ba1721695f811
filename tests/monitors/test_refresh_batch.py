"""End to end with the real `mlx`: a batch data_drift monitor over CSVs is applied (its
reference profiled once), run by `mlx refresh --monitor`, fires (exit 2 with
--detailed-exitcode) naming the shifted features, alerts a webhook on 127.0.0.1 once across two
runs and resolves once when the shift is gone; `mlx show monitors.x --json`; an unreadable
reference is `error`; types without a runner stay refused; a latency monitor without
threshold is refused at its line."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from tests.alerts.conftest import Channel
from tests.conftest import write_spec

FEATURES = ["a", "b", "c", "d", "e"]


def write_csv(path: Path, seed: int, shift: dict[str, float], rows: int = 2000) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(FEATURES)
        for _ in range(rows):
            w.writerow([round(rng.gauss(shift.get(f, 0.0), 1.0), 6) for f in FEATURES])


def make_spec(tmp_path: Path, channel: Channel, extra: str = "") -> Path:
    spec = write_spec(
        tmp_path / "spec",
        {
            "data.yaml": """
                datasets:
                  ref: {uri: data/ref.csv, owner: team-data, description: reference}
                  cur: {uri: data/cur.csv, owner: team-data, description: scored today}
            """,
            "hook.yaml": f"""
                alerts:
                  hook: {{type: webhook, url: "{channel.url}", timeout_s: 2, owner: team-ml}}
            """,
            "monitors.yaml": """
                monitors:
                  batch:
                    type: data_drift
                    reference: ${datasets.ref}
                    current: ${datasets.cur}
                    alert: ${alerts.hook}
                    owner: team-ml
"""
            + extra,
        },
    )
    (spec / "data").mkdir(exist_ok=True)
    write_csv(spec / "data" / "ref.csv", 1, {})
    write_csv(spec / "data" / "cur.csv", 2, {"a": 1.0, "c": 1.0})
    return spec


def refresh(mlx_m: Any, spec: Path) -> tuple[int, dict[str, Any]]:
    run = mlx_m(["refresh", "--monitor", "batch", "--detailed-exitcode", "--json"], spec)
    assert run.code in (0, 2), run
    return run.code, json.loads(run.out)


def test_batch_monitor_fires_alerts_once_and_resolves_once(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    spec = make_spec(tmp_path, channel)
    applied = mlx_m(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    assert "monitors.batch" in applied.out, applied
    profiles = list((spec / ".mlx" / "monitors" / "profiles").glob("*.json"))
    assert len(profiles) == 1, "the reference is profiled once, at apply"

    text = mlx_m(["refresh", "--monitor", "batch", "--detailed-exitcode"], spec)
    assert text.code == 2, text
    assert "monitors.batch: firing (drift in a, c)" in text.out, text
    assert len(channel.delivered) == 1
    body = channel.delivered[0]["json"]
    assert "a: wasserstein" in json.dumps(body) and "c: wasserstein" in json.dumps(body)
    assert "team-ml" in json.dumps(body) and "mlx show monitors.batch" in json.dumps(body)

    code, again = refresh(mlx_m, spec)  # still firing: not sent twice
    assert code == 2 and again["monitors"][0]["state"] == "firing"
    assert len(channel.delivered) == 1

    write_csv(spec / "data" / "cur.csv", 3, {})  # the shift is gone
    _, ok = refresh(mlx_m, spec)
    assert ok["monitors"][0]["state"] == "ok", ok
    assert len(channel.delivered) == 2
    assert channel.delivered[1]["json"]["status"] == "resolved"
    _, still = refresh(mlx_m, spec)
    assert still["monitors"][0]["state"] == "ok" and len(channel.delivered) == 2
    assert list((spec / ".mlx" / "monitors" / "profiles").glob("*.json")) == profiles

    shown = mlx_m(["show", "monitors.batch", "--json"], spec)
    assert shown.code == 0, shown
    view = json.loads(shown.out)["monitor"]
    assert [t["state"] for t in view["trend"]] == ["firing", "firing", "ok", "ok"]
    assert view["trend"][0]["drifted_features"] == ["a", "c"]
    latest = {(f["feature"], f["signal"]): f for f in view["latest"]["features"]}
    assert latest[("a", "wasserstein")]["verdict"] == "ok"
    assert latest[("a", "wasserstein")]["threshold"] == 0.1
    assert latest[("a", "missing_rate")]["statistic"] == 0.0
    history = mlx_m(["history"], spec)
    assert "monitor    complete  1 monitors run 1 firing" in history.out, history
    human = mlx_m(["show", "monitors.batch"], spec)
    assert "trend (oldest first)" in human.out and "wasserstein" in human.out, human


def test_unreadable_reference_profile_is_error_never_ok(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    spec = make_spec(tmp_path, channel)
    assert mlx_m(["apply", "--yes"], spec).code == 0
    for profile in (spec / ".mlx" / "monitors" / "profiles").glob("*.json"):
        profile.write_text("{not json")
    code, run = refresh(mlx_m, spec)
    assert code == 0  # error is not drift; it alerts as such (after `for:`)
    assert run["monitors"][0]["state"] == "error", run
    assert "cannot read the reference profile" in run["monitors"][0]["reason"]
    assert len(channel.delivered) == 1  # error alerts (for: 1), never "resolved"
    body = json.dumps(channel.delivered[0]["json"])
    assert "monitors.batch: error" in body and "cannot read the reference profile" in body
    assert channel.delivered[0]["json"]["status"] == "firing"


def test_for_two_runs_alerts_on_the_second(tmp_path: Path, channel: Channel, mlx_m: Any) -> None:
    spec = make_spec(tmp_path, channel, "                    for: 2\n")
    assert mlx_m(["apply", "--yes"], spec).code == 0
    first, _ = refresh(mlx_m, spec)
    assert first == 2 and channel.delivered == []  # firing, pending its second run
    refresh(mlx_m, spec)
    assert len(channel.delivered) == 1


def test_a_metric_monitor_without_threshold_is_refused_at_its_line(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    extra = """
                  slow:
                    type: latency
                    target: ${endpoints.x}
                    owner: team-ml
    """
    spec = make_spec(tmp_path, channel, extra.replace("${endpoints.x}", "${datasets.cur}"))
    result = mlx_m(["validate"], spec)
    assert result.code == 1, result
    assert "monitors.slow: a monitor of type latency needs `threshold`" in result.err, result
    assert "--> monitors.yaml:9:3" in result.err, result
    assert "monitors.batch" not in result.err, result
