"""End to end with the real `mlx`: a live data_drift monitor on an endpoint reads the endpoint's
SQLite inference log (written through the real LogWriter, as `mlx serve` writes it); the traffic
of one variant shifts and the drift is attributed to that variant and version; a window with no
traffic is no_data (exit 0 with --detailed-exitcode: no data is not drift)."""

from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path
from typing import Any

from inference.records import InferenceRecord
from inference.store import open_log
from inference.writer import LogWriter
from tests.conftest import BASIC, write_spec


def _spec(tmp_path: Path, window: str) -> Path:
    spec = write_spec(
        tmp_path / "spec",
        {
            **BASIC,
            "serve.yaml": """
                datasets:
                  ref: {uri: data/ref.csv, owner: team-data, description: reference}
                endpoints:
                  fraud: {serves: "${models.fraud}", owner: team-ml, log: {payloads: 1.0}}
            """,
            "monitors.yaml": f"""
                monitors:
                  live:
                    type: data_drift
                    target: ${{endpoints.fraud}}
                    reference: ${{datasets.ref}}
                    window: {window}
                    schedule: "0 * * * *"
                    owner: team-ml
            """,
        },
    )
    rng = random.Random(1)
    with (spec / "data" / "ref.csv").open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["amount", "country"])
        for _ in range(2000):
            w.writerow([round(rng.gauss(100, 10), 3), rng.choice(["fr", "de", "es"])])
    return spec


def _log(spec: Path, variant: str, version: str, shift: float, n: int, seed: int) -> None:
    rng = random.Random(seed)
    store = open_log(f"sqlite:///{spec / '.mlx' / 'inference.db'}")
    writer = LogWriter(store, flush_interval=0.01)
    start = time.time() - 120
    for i in range(n):
        row = {"amount": rng.gauss(100 + shift, 10), "country": rng.choice(["fr", "de", "es"])}
        assert (
            writer.submit(
                InferenceRecord(
                    request_id=f"{variant}-{i}",
                    ts=start + i * 0.01,
                    endpoint="fraud",
                    variant=variant,
                    subject="models.fraud",
                    version=version,
                    status=200,
                    latency_ms=4.0,
                    inputs={"dataframe_records": [row]},
                )
            )
            > 0
        )
    assert writer.close()
    store.close()


def test_drift_of_one_variant_is_attributed_to_it(tmp_path: Path, mlx_m: Any) -> None:
    spec = _spec(tmp_path, "1h")
    applied = mlx_m(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    _log(spec, "stable", "1", 0.0, 800, 2)
    _log(spec, "canary", "2", 15.0, 400, 3)

    run = mlx_m(["refresh", "--detailed-exitcode"], spec)  # never run: due at once
    assert run.code == 2, run
    assert "monitors.live: firing (drift in amount) in variant canary version 2" in run.out, run

    shown = json.loads(mlx_m(["show", "monitors.live", "--json"], spec).out)["monitor"]
    slices = {(s["variant"], s["version"]): s for s in shown["latest"]["slices"]}
    assert slices[("canary", "2")]["drifted_features"] == ["amount"]
    assert slices[("canary", "2")]["requests"] == 400
    assert slices[("stable", "1")]["drifted_features"] == []
    assert slices[("stable", "1")]["requests"] == 800

    again = mlx_m(["refresh", "--detailed-exitcode", "--json"], spec)  # not due before :00
    if time.gmtime().tm_min != 0:
        assert json.loads(again.out)["monitors"] == [], again


def test_window_without_traffic_is_no_data(tmp_path: Path, mlx_m: Any) -> None:
    spec = _spec(tmp_path, "1h")
    assert mlx_m(["apply", "--yes"], spec).code == 0
    run = mlx_m(["refresh", "--monitor", "live", "--detailed-exitcode", "--json"], spec)
    assert run.code == 0, run
    assert json.loads(run.out)["monitors"][0]["state"] == "no_data", run
