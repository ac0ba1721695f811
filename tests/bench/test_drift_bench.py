"""A smoke run of bench/drift.py (``--quick --no-evidently --json``): its output's structure and
mlx's verdicts on the known shifts, never its timings (figures of a shared machine).

It runs the real thing: seeded Parquet files, the mlx process (this tree's code:
``PYTHONPATH`` is the repository) profiling the reference in DuckDB, counting the current
file and judging it. Evidently is never needed here: its environment is the benchmark's own
(``make bench``), so ``--no-evidently``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import REPO, require_extra

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def output() -> dict[str, Any]:
    for module in ("duckdb", "pyarrow"):
        require_extra(module, "bench")
    require_extra("numpy", "ml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "drift.py"), "--quick", "--no-evidently", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    doc["_text"] = done.stdout
    return doc


def test_mlx_finds_exactly_the_four_real_shifts_at_both_sizes(output: dict[str, Any]) -> None:
    config = output["config"]
    assert config["quick"] is True and 0 < config["rows"] < config["big_rows"]
    compare = output["compare"]
    features = compare["features"]
    assert len(features) == 20
    drifted = {n for n, f in features.items() if f["mlx"]}
    assert drifted == {"f00", "f05", "f10", "f12"}
    assert compare["mlx_wrong"] == []
    # the small real shift (f16) stays under the effect threshold, as every unshifted one
    assert all(f["mlx_score"] < 0.1 for n, f in features.items() if n not in drifted)
    assert all(f["mlx_score"] > 0.3 for n, f in features.items() if n in drifted)
    big = output["big"]
    assert {n for n, d in big["drifted"].items() if d} == drifted
    assert big["rows"] == [config["big_rows"], config["big_rows"]]


def test_each_mlx_process_reports_its_times_memory_and_the_method(
    output: dict[str, Any],
) -> None:
    for run, rows in ((output["compare"]["mlx"], output["config"]["rows"]), (output["big"], None)):
        assert run["methods"] == ["wasserstein"]  # auto on a reference over 1000 rows
        for figure in ("import_s", "profile_s", "run_s", "total_s", "wall_s", "peak_mb"):
            assert math.isfinite(run[figure]) and run[figure] > 0, figure
        assert run["total_s"] == pytest.approx(run["profile_s"] + run["run_s"])
        if rows is not None:
            assert run["rows"] == [rows, rows]


def test_without_evidently_it_says_so_and_compares_nothing(output: dict[str, Any]) -> None:
    compare = output["compare"]
    assert compare["evidently"] is None and compare["disagree"] == []
    assert all(f["evidently"] is None for f in compare["features"].values())
    assert "evidently  skipped: --no-evidently" in output["_text"]
    assert "peak RSS at 100,000 rows" in output["_text"]
