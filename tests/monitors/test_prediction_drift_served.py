"""Prediction drift over a real `mlx serve` log: the quickstart's classifier is applied and
served, its answers are logged by the gateway itself (the list of predictions), and a
``prediction_drift`` monitor compares their class balance with the evaluation set's labels.
Traffic like the evaluation set is ok; traffic of one kind of biopsy only shifts the
predicted balance, and the monitor fires naming the version that served it."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.gateway.support import Served
from tests.support.monitor_entry import monitor_env

pytestmark = pytest.mark.slow

MONITOR = """
monitors:
  tumor_predictions:
    type: prediction_drift
    target: ${endpoints.tumor_classifier}
    reference: ${datasets.cancer_eval}
    features: [malignant]       # scalar predictions are the one feature: the label's balance
    window: 1h
    owner: team-ml
"""
URL = "/endpoints/tumor_classifier/invocations"


def answered(spec: Path) -> int:
    with sqlite3.connect(spec / ".mlx" / "inference.db") as conn:
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM mlx_inference WHERE outputs IS NOT NULL"
        ).fetchone()
    return int(n)


def send(server: Served, spec: Path, rows: list[dict[str, Any]], before: int) -> int:
    """``rows`` in requests of ten; waits until the gateway logged every answer."""
    requests = 0
    for i in range(0, len(rows), 10):
        reply = server.post(URL, {"dataframe_records": rows[i : i + 10]})
        assert reply.status == 200, reply.body
        requests += 1
    server.wait_for(lambda: answered(spec) >= before + requests, what="the logged answers")
    return before + requests


def test_a_served_models_class_balance_shift_fires(tmp_path: Path, mlx_m: Any) -> None:
    spec = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", spec)
    subprocess.run([sys.executable, "train.py"], cwd=spec, check=True, capture_output=True)
    rollouts = spec / "rollouts.yaml"
    rollouts.write_text(rollouts.read_text().replace("payloads: 0.1", "payloads: 1.0"))
    (spec / "monitors.yaml").write_text(MONITOR)
    applied = mlx_m(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    assert "monitors.tumor_predictions" in applied.out, applied

    with (spec / "data" / "eval.csv").open() as fh:
        table = list(csv.DictReader(fh))
    rows = [{k: float(v) for k, v in r.items() if k not in ("site", "malignant")} for r in table]
    ones = [row for row, r in zip(rows, table, strict=True) if r["malignant"] == "1"]

    server = Served(spec, env=monitor_env()).wait_ready()
    try:
        logged = send(server, spec, rows, 0)  # the evaluation set itself: its balance
        same = mlx_m(
            ["refresh", "--monitor", "tumor_predictions", "--detailed-exitcode", "--json"], spec
        )
        assert same.code == 0, same
        assert json.loads(same.out)["monitors"][0]["state"] == "ok", same

        total = send(server, spec, ones * 2, logged)  # then one kind of biopsy only
    finally:
        server.stop()
    shifted = mlx_m(["refresh", "--monitor", "tumor_predictions", "--detailed-exitcode"], spec)
    assert shifted.code == 2, shifted
    assert "monitors.tumor_predictions: firing (drift in malignant)" in shifted.out, shifted
    shown = json.loads(mlx_m(["show", "monitors.tumor_predictions", "--json"], spec).out)
    (served,) = shown["monitor"]["latest"]["slices"]
    assert served["drifted_features"] == ["malignant"], served
    assert served["version"] == "1" and served["requests"] == total, served
