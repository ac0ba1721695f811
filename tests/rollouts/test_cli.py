"""Rollouts through the real `mlx` command: apply --wait, rollout run after a SIGKILL,
status, promote, and the story history tells."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import MLX, REPO, run_mlx, write_spec
from tests.release.test_release_safety import SPEC
from tests.support.registry_rows import production

pytestmark = pytest.mark.slow

PAUSED = """
    endpoints:
      m: {serves: "${models.m}", owner: team-ml}
    rollouts:
      m:
        subject: ${models.m}
        endpoint: ${endpoints.m}
        alias: production
        requires: ["${evals.g}"]
        strategy: canary
        steps: [{weight: 10, pause: %s}, {weight: 50, pause: %s}, {weight: 100}]
        owner: team-ml
"""


def _spec(tmp_path: Path, first: str, second: str) -> Path:
    files = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
    spec = write_spec(tmp_path / "spec", {**files, "rollout.yaml": PAUSED % (first, second)})
    assert run_mlx(["apply", "--yes"], spec).code == 0
    (spec / "model.txt").write_text("score=0.97")
    return spec


def _production(spec: Path) -> int | None:
    return production(spec, "models", "m")


def test_apply_wait_walks_the_rollout_to_completion(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "0.3s", "0.3s")
    applied = run_mlx(["apply", "--yes", "--wait"], spec)
    assert applied.code == 0, applied
    assert "Waiting for rollouts in progress" in applied.out
    assert "rollouts.m: completed" in applied.out
    assert _production(spec) == 2
    status = run_mlx(["rollout", "status", "m", "--json"], spec)
    data = json.loads(status.out)
    assert data["phase"] == "completed" and data["live"]["stable"] == "v2"
    show = run_mlx(["show", "rollouts.m"], spec)
    assert "evals.g passed for v2" in show.out, show.out
    assert "step 2/3: weight 50" in show.out
    history = run_mlx(["history"], spec)
    assert "rollout" in history.out and "step 2/3: weight 50" in history.out


def test_a_controller_killed_mid_pause_resumes_and_finishes(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "1s", "0.2s")
    assert run_mlx(["apply", "--yes"], spec).code == 0  # starts the rollout: step 1
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLX_ACTOR": "controller"}
    proc = subprocess.Popen([str(MLX), "rollout", "run", "m"], cwd=spec, env=env)
    time.sleep(0.4)  # inside step 1's pause (the kill lands mid-pause; no timing is asserted)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    status = json.loads(run_mlx(["rollout", "status", "m", "--json"], spec).out)
    assert status["phase"] == "progressing" and status["step"] in (1, 2), status
    assert _production(spec) == 1
    resumed = run_mlx(["rollout", "run", "m"], spec, env={"MLX_ACTOR": "controller"})
    assert resumed.code == 0, resumed
    assert "rollouts.m: completed" in resumed.out
    assert _production(spec) == 2


def test_a_manual_pause_waits_for_promote(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "manual", "0.1s")
    applied = run_mlx(["apply", "--yes", "--wait"], spec)
    assert applied.code == 1, applied
    assert "waits for a person (promote): mlx rollout promote m" in applied.err
    status = run_mlx(["rollout", "status", "m"], spec)
    assert "waiting: promote" in status.out and "step:      1/3" in status.out, status.out
    assert "live: stable v1, candidate v2 " in status.out, status.out
    promoted = run_mlx(["rollout", "promote", "m"], spec, env={"MLX_ACTOR": "alice"})
    assert promoted.code == 0, promoted
    assert run_mlx(["rollout", "run", "m"], spec).code == 0
    assert _production(spec) == 2
    done = run_mlx(["rollout", "status", "m"], spec).out
    assert "live: stable v2, no candidate" in done, done
    versions = json.loads(run_mlx(["history", "--json"], spec).out)
    assert any(v["operation"] == "rollout-promote" and v["actor"] == "alice" for v in versions)
