"""The quickstart, served: its model has named columns, so a client whose JSON encoder sorts
keys (Go's, many others) gets the same answers as one that sends the trained order, and a
misspelled column is refused — the issue's reproduction (15 of 40 wrong answers with 200)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_mlx
from tests.gateway.support import Served

pytestmark = pytest.mark.slow


def test_the_quickstart_takes_columns_by_name_in_any_order(tmp_path: Path) -> None:
    spec = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", spec)
    subprocess.run([sys.executable, "train.py"], cwd=spec, check=True, capture_output=True)
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    with (spec / "data" / "eval.csv").open() as fh:
        rows = list(csv.DictReader(fh))[:40]
    trained = [
        {k: float(v) for k, v in row.items() if k not in ("site", "malignant")} for row in rows
    ]
    sorted_keys = [dict(sorted(r.items())) for r in trained]
    server = Served(spec).wait_ready()
    try:
        url = "/endpoints/tumor_classifier/invocations"
        want = server.post(url, {"dataframe_records": trained})
        got = server.post(url, {"dataframe_records": sorted_keys})
        assert want.status == 200 and got.status == 200, (want.body, got.body)
        assert got.json()["predictions"] == want.json()["predictions"]
        assert len(set(want.json()["predictions"])) == 2  # both classes among the 40
        typo = [{("mean_radus" if k == "mean_radius" else k): v for k, v in trained[0].items()}]
        refused = server.post(url, {"dataframe_records": typo})
        assert refused.status == 400
        assert (
            "unknown column 'mean_radus' (did you mean 'mean_radius'?)" in refused.json()["message"]
        )
    finally:
        server.stop()
