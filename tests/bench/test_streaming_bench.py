"""A smoke run of bench/streaming.py (``--quick --json``): its output's structure, never its
timings (the benchmark prints figures of a shared machine; nothing here judges them).

It runs the real thing: the streaming stub, the bare proxy and ``mlx serve`` (this tree's
code: ``PYTHONPATH`` is the repository) as processes on 127.0.0.1, the httpx client.
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

PATHS = ("direct", "bare", "mlx")
FIGURES = ("ttft_p50_ms", "ttft_p95_ms", "total_p50_ms", "total_p95_ms", "chunks_per_s")


@pytest.fixture(scope="module")
def output() -> dict[str, Any]:
    for module in ("starlette", "uvicorn", "httpx", "orjson"):
        require_extra(module, "serve")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "streaming.py"), "--quick", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    doc: dict[str, Any] = json.loads(last)
    doc["_text"] = done.stdout
    return doc


def test_every_stream_of_every_path_arrived_whole_and_the_gateway_stopped_cleanly(
    output: dict[str, Any],
) -> None:
    assert output["bad"] == 0, output["_text"]
    assert output["exit"] == 0
    assert "ANOMALY" not in output["_text"]


def test_every_stream_that_came_whole_through_mlx_was_logged_once(output: dict[str, Any]) -> None:
    log = output["log"]
    assert set(log["streamed"]) == {"fast", "slow"}
    assert all(n > 0 for n in log["streamed"].values())
    assert log["logged"] == log["streamed"]


def test_each_shape_and_concurrency_has_the_figures_of_all_three_paths(
    output: dict[str, Any],
) -> None:
    config = output["config"]
    assert config["quick"] is True and config["repeat"] == 1
    shapes = {s["name"]: s for s in config["shapes"]}
    assert set(shapes) == {"fast", "slow"} and shapes["slow"]["delay_ms"] > 0
    counts = [str(c) for c in config["concurrency"]]
    assert set(output["results"]) == set(shapes)
    for name, shape in shapes.items():
        assert list(output["results"][name]) == counts
        for c in counts:
            per = output["results"][name][c]
            assert set(per) == set(PATHS)
            for path in PATHS:
                figures = per[path]
                assert all(math.isfinite(figures[f]) and figures[f] > 0 for f in FIGURES)
                assert figures["ttft_p50_ms"] <= figures["total_p50_ms"]
                # each path ran at least the shape's streams once (and at least one per client)
                assert figures["streams"] >= max(shape["streams"], int(c))
                # CPU is the process between client and stub: none on the direct path
                assert (figures["cpu_ms_per_stream"] is None) == (path == "direct")
            assert len(output["runs"][name][c]["mlx"]) == config["repeat"]


def test_the_ratios_and_the_no_buffering_check_are_reported(output: dict[str, Any]) -> None:
    counts = [str(c) for c in output["config"]["concurrency"]]
    for name in ("fast", "slow"):
        for c in counts:
            ratios = output["ratios"][name][c]
            for base in ("bare", "direct"):
                for figure in ("ttft_p50_ms", "total_p50_ms", "chunks_per_s"):
                    assert ratios[f"mlx/{base} {figure}"] > 0
            assert "mlx/bare cpu_ms_per_stream" in ratios
    for c in counts:
        check = output["no_buffering"][c]
        assert set(check) == {
            "mlx_ttft_p50_ms",
            "mlx_total_p50_ms",
            "direct_ttft_p50_ms",
            "ttft_share_of_total",
            "buffered",
        }
        assert isinstance(check["buffered"], bool)
    assert "no buffering," in output["_text"]
