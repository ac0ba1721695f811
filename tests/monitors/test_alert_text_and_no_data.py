"""Two bugs found by test_live_serve, fixed: a monitor-wide no_data alert resolved by the first
run with data (engine/monitors/run.py), and a p-value finding that names the p-value it
compared with its threshold (providers/monitor/judge.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from tests.monitors.test_refresh_live import _log, _spec


def test_a_no_data_alert_resolves_once_the_window_has_data(tmp_path: Path, mlx_m: Any) -> None:
    spec = _spec(tmp_path, "1h")
    monitors = (spec / "monitors.yaml").read_text()
    (spec / "monitors.yaml").write_text(
        monitors.replace("owner: team-ml", "owner: team-ml\n    alert: ${alerts.oncall}")
    )
    assert mlx_m(["apply", "--yes"], spec).code == 0
    first = mlx_m(["refresh", "--monitor", "live", "--json"], spec)
    assert json.loads(first.out)["monitors"][0]["state"] == "no_data", first
    _log(spec, "stable", "1", 0.0, 400, 2)
    second = mlx_m(["refresh", "--monitor", "live", "--json"], spec)
    assert json.loads(second.out)["monitors"][0]["state"] == "ok", second
    listed = mlx_m(["alerts", "--json"], spec)
    assert listed.code == 0, listed
    assert json.loads(listed.out)["firing"] == [], listed.out


def test_a_ks_finding_names_the_p_value_it_compared_with_the_threshold() -> None:
    from analysis.drift import build_reference, count, judge_dataset, judge_feature
    from providers.monitor.judge import SliceResult

    rng = random.Random(1)
    reference = build_reference("fp", {"x": [rng.gauss(0, 1) for _ in range(400)]})
    feature = reference.features["x"]
    verdict = judge_feature(feature, count([rng.gauss(1, 1) for _ in range(200)], feature))
    assert verdict.method == "ks" and verdict.drifted and verdict.p_value is not None
    judged = SliceResult("v", "1", 1, 200, judge_dataset({"x": [verdict]}), {"x": [verdict]})
    (finding,) = judged.findings()
    assert f"p {verdict.p_value:.4g} < 0.05" in finding, finding
