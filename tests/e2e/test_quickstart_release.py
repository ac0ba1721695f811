"""Issue 8's reproductions on the quickstart, through the real `mlx` command and the real
ML gate: a failing candidate never reaches `production`, and a release interrupted by
Ctrl-C after its gate passed is completed by the next apply."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MLX, REPO, run_mlx
from tests.support.registry_rows import production

pytestmark = pytest.mark.slow


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    spec = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", spec)
    _train(spec)
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    assert _production(spec) == 1
    return spec


def _train(spec: Path, c: float | None = None) -> None:
    args = [sys.executable, "train.py"] + ([] if c is None else ["--C", str(c)])
    subprocess.run(args, cwd=spec, check=True, capture_output=True)


def _production(spec: Path) -> int | None:
    return production(spec, "models", "tumor_classifier")


def test_a_failing_candidate_cannot_reach_production_through_target(quickstart: Path) -> None:
    _train(quickstart, 0.05)  # the tour's candidate: it fails on site=east
    targeted = run_mlx(["apply", "--yes", "--target", "models.tumor_classifier"], quickstart)
    assert targeted.code == 0, targeted
    plan = run_mlx(["plan"], quickstart)
    assert "evals.tumor_release has not judged models.tumor_classifier v2" in plan.out, plan
    assert "No changes." not in plan.out
    rollouts = (quickstart / "rollouts.yaml").read_text()
    (quickstart / "rollouts.yaml").write_text(
        rollouts.replace("Serve the newest gated version", "Serve the newest gated model")
    )
    applied = run_mlx(["apply", "--yes"], quickstart)
    assert applied.code == 1, applied
    assert "evals.tumor_release: Gate FAILED" in applied.out
    assert "recall on site=east" in applied.out
    # what held the release back is the gate, not the unchanged endpoint in between
    skipped = "rollouts.tumor_classifier: skipped: depends on evals.tumor_release, which did"
    assert f"{skipped} not apply" in applied.out, applied
    assert _production(quickstart) == 1
    evaluated = run_mlx(["eval", "tumor_release"], quickstart)
    assert evaluated.code == 1, evaluated  # the candidate fails on its own, too


def _interrupt_at_the_gate(spec: Path) -> str:
    """``mlx apply`` with Ctrl-C pressed as the gate starts; the status of its version."""
    _train(spec, 0.9)  # a good candidate: v2
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLX_ACTOR": "tester"}
    proc = subprocess.Popen(
        [str(MLX), "apply", "--yes"],
        cwd=spec,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the gate is running, then press Ctrl-C
        if "evals.tumor_release: Running gate..." in line:
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert _production(spec) == 1
    versions = json.loads(run_mlx(["history", "--json"], spec).out)
    return str(versions[-1]["status"])


def test_ctrl_c_after_the_gate_passed_leaves_a_release_that_the_next_apply_completes(
    quickstart: Path, tmp_path: Path
) -> None:
    # On a loaded machine this test can read the gate's line only after the apply has
    # finished, and the Ctrl-C then lands in its exit: the version is complete, the canary
    # started (mlx did right, but the interrupted path was not exercised). Then the case is
    # set up again, at most twice more; it must be exercised once.
    for attempt in range(3):
        status = _interrupt_at_the_gate(quickstart)
        if status != "complete":
            break
        quickstart = tmp_path / f"again-{attempt}"
        shutil.copytree(REPO / "examples" / "quickstart", quickstart)
        _train(quickstart)
        assert run_mlx(["apply", "--yes"], quickstart).code == 0
    assert status == "interrupted", status
    plan = run_mlx(["plan"], quickstart)
    assert "~ released_version = 1 -> 2" in plan.out, plan
    assert "releases models.tumor_classifier v2 (users get v1 now)" in plan.out
    applied = run_mlx(["apply", "--yes"], quickstart)
    assert applied.code == 0, applied
    # the release is made: the canary starts (the alias moves when it completes)
    assert "rollouts.tumor_classifier: In progress" in applied.out, applied
    status = json.loads(
        run_mlx(["rollout", "status", "tumor_classifier", "--json"], quickstart).out
    )
    assert status["phase"] == "progressing" and status["candidate"]["version"] == 2
    assert _production(quickstart) == 1
    promoted = run_mlx(["rollout", "promote", "tumor_classifier", "--full"], quickstart)
    assert promoted.code == 0, promoted
    assert _production(quickstart) == 2
    again = run_mlx(["plan", "--detailed-exitcode"], quickstart)
    assert again.code == 0, again
