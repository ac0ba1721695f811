"""`make demo`'s serving half works on a fresh copy of the quickstart: it serves the model,
answers a request, retrains, walks the canary to completion on generated traffic, and drives
monitors.tumor_inputs through ok, firing (one alert), still firing (none) and resolved (one),
then the scheduled eval monitors.tumor_release_nightly (ok on the released version)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MLX, REPO, run_mlx

pytestmark = pytest.mark.slow


def _demo(demo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(demo / "demo.py"), "--mlx", str(MLX), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "MLX_ACTOR": "demo"},
    )


def _monitor_alerts(demo: Path) -> list[dict[str, Any]]:
    """The lines monitors.tumor_inputs appended to the quickstart's file channel."""
    path = demo / ".mlx" / "alerts.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [a for a in lines if a["source"] == "monitors.tumor_inputs"]


def _trend(demo: Path) -> list[str]:
    shown = run_mlx(["show", "monitors.tumor_inputs", "--json"], demo)
    assert shown.code == 0, shown
    return [t["state"] for t in json.loads(shown.out)["monitor"]["trend"]]


def test_the_demo_serves_and_walks_the_canary(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(REPO / "examples" / "quickstart", demo)
    subprocess.run([sys.executable, "train.py"], cwd=demo, check=True, capture_output=True)
    assert run_mlx(["apply", "--yes"], demo).code == 0
    result = _demo(demo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "POST /endpoints/tumor_classifier/invocations -> {'predictions': [" in result.stdout
    # the same biopsies as MLflow's CSV at the root and as KServe V2 tensors
    assert "the same predictions in all three protocols: True" in result.stdout, result.stdout
    assert "completed: v2 serves everything" in result.stdout
    assert "requests answered, by version" in result.stdout
    # the monitor: ok, then the shift fires it once, then resolved — the file channel agrees
    assert "monitors.tumor_inputs: ok (no drift)" in result.stdout
    assert (
        "monitors.tumor_inputs: firing (drift in mean_radius) in variant stable version 2"
        in result.stdout
    )
    alerts = _monitor_alerts(demo)
    assert [(a["alert"]["status"], a["alert"]["labels"]["version"]) for a in alerts] == [
        ("firing", "2"),
        ("resolved", "2"),
    ], alerts
    assert "mean_radius: ks" in alerts[0]["text"]
    assert _trend(demo) == ["ok", "firing", "firing", "ok"]
    # the scheduled eval: the release gate re-run on version 2 (what the endpoint serves) on
    # the data pinned when it passed — the scores recorded then, so ok and no alert
    nightly = run_mlx(["show", "monitors.tumor_release_nightly", "--json"], demo)
    assert nightly.code == 0, nightly
    run = json.loads(nightly.out)["outputs"]["last_run"]
    assert run["state"] == "ok", run
    assert str(run["window"]["version"]) == "2", run
    rows = {m["metric"]: m for m in run["whole"]["metrics"]}
    assert set(rows) == {"roc_auc", "recall", "brier"}, rows
    for m in rows.values():
        assert m["value"] == pytest.approx(m["recorded"], abs=1e-12), m  # same model, same data
    assert "monitors.tumor_release_nightly: ok (models.tumor_classifier version 2" in result.stdout
    every = (demo / ".mlx" / "alerts.jsonl").read_text()
    assert "tumor_release_nightly" not in every

    # the README's tour, step 2: retrain a good one, apply (the canary starts and waits),
    # then `demo.py --walk` walks *that* canary instead of retraining over it
    subprocess.run(
        [sys.executable, "train.py", "--C", "0.7"], cwd=demo, check=True, capture_output=True
    )
    applied = run_mlx(["apply", "--yes"], demo)
    assert applied.code == 0, applied
    assert "[version=3]" in applied.out, applied
    walked = _demo(demo, "--walk")
    assert walked.returncode == 0, walked.stdout + walked.stderr
    assert "retrain" not in walked.stdout
    assert "completed: v3 serves everything" in walked.stdout, walked.stdout
    assert "withdrawn" not in walked.stdout
    # the same monitor again, now on version 3: its own alert, fired once and resolved
    alerts = _monitor_alerts(demo)[2:]
    assert [(a["alert"]["status"], a["alert"]["labels"]["version"]) for a in alerts] == [
        ("firing", "3"),
        ("resolved", "3"),
    ], alerts
