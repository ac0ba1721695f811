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


# -- issue 18, item 26: every line said once, and a pause says what it waits for -------------
DONE = "rollouts.m: completed: v2 serves everything (step 3/3: weight 100)"


def _repeated(text: str) -> list[str]:
    """The rollout lines said more than once."""
    lines = [line for line in text.splitlines() if line.startswith("rollouts.m:")]
    return sorted({line for line in lines if lines.count(line) > 1})


def test_apply_wait_says_each_step_once(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "0.3s", "0.3s")
    applied = run_mlx(["apply", "--yes", "--wait"], spec)
    assert applied.code == 0, applied
    assert _repeated(applied.out) == [], applied.out
    done = [line for line in applied.out.splitlines() if "completed: v2 serves everything" in line]
    assert done == ["rollouts.m: completed: v2 serves everything (step 3/3: weight 100)"], (
        applied.out
    )
    assert applied.out.count("step 2/3: weight 50") == 1


def test_rollout_run_says_what_a_pause_waits_for_and_until_when(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    spec = _spec(tmp_path, "1h", "0.2s")
    assert run_mlx(["apply", "--yes"], spec).code == 0
    once = run_mlx(["rollout", "run", "m", "--once"], spec)
    assert once.code == 0, once
    recorded = _outputs(spec)
    assert (recorded["phase"], recorded["step"]) == ("progressing", 0)
    pause_until = float(recorded["pause_until"])  # type: ignore[arg-type]
    clock = datetime.fromtimestamp(pause_until, UTC).strftime("%H:%M:%S UTC")
    assert once.out.splitlines() == [
        f"rollouts.m: paused at step 1/3 (weight 10) until {clock}; then the next step"
    ], once.out
    # promoted to step 2 (a short pause), `rollout run` says each line once and how it ended
    assert run_mlx(["rollout", "promote", "m"], spec).code == 0
    ran = run_mlx(["rollout", "run", "m"], spec)
    assert ran.code == 0, ran
    assert _repeated(ran.out) == [], ran.out
    assert (
        ran.out.splitlines()[-1]
        == "rollouts.m: completed: v2 serves everything (step 3/3: weight 100)"
    )


def _outputs(spec: Path) -> dict[str, object]:
    import sqlite3

    with sqlite3.connect(spec / ".mlx" / "state.db") as db:
        (doc,) = db.execute(
            "SELECT outputs FROM mlx_resources WHERE address = 'rollouts.m'"
        ).fetchone()
    return dict(json.loads(doc))


def test_promote_and_a_manual_pause_say_each_line_once(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "manual", "5s")
    assert run_mlx(["apply", "--yes"], spec).code == 0
    ran = run_mlx(["rollout", "run", "m"], spec)
    assert ran.code == 0, ran
    assert ran.out.splitlines() == [
        "rollouts.m: paused at step 1/3 (weight 10) for a manual step: waiting for "
        "`mlx rollout promote m` (or `mlx rollout abort m`)"
    ], ran.out
    promoted = run_mlx(["rollout", "promote", "m"], spec, env={"MLX_ACTOR": "alice"})
    assert promoted.code == 0, promoted
    lines = promoted.out.splitlines()
    assert lines[:2] == [
        "rollouts.m: promoted by alice",
        "rollouts.m: step 2/3: weight 50, pause 5s",
    ]
    assert len(lines) == 3 and lines[2].startswith("rollouts.m: paused at step 2/3 (weight 50)")
    full = run_mlx(["rollout", "promote", "m", "--full"], spec, env={"MLX_ACTOR": "alice"})
    assert full.out.splitlines() == [
        "rollouts.m: promoted to 100% (--full) by alice",
        "rollouts.m: completed: v2 serves everything (promoted to 100% (--full), "
        "requested by alice)",
    ], full.out


def test_show_lists_each_step_once(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "0.2s", "0.2s")
    assert run_mlx(["apply", "--yes", "--wait"], spec).code == 0
    show = run_mlx(["show", "rollouts.m"], spec)
    history = show.out.split("  history:\n", 1)[1].splitlines()
    notes = [line.split(": ", 1)[1] for line in history]
    assert _repeated("\n".join(notes)) == [], show.out
    assert sum("step 2/3: weight 50" in line for line in history) == 1, show.out
    assert sum("completed: v2 serves everything" in line for line in history) == 1, show.out
    # every serial of the rollout is one line
    serials = [line.split(" at ")[0] for line in history]
    assert len(serials) == len(set(serials)), show.out


def test_a_candidate_withdrawn_for_the_stable_bytes_is_not_a_first_release(
    tmp_path: Path,
) -> None:
    spec = _spec(tmp_path, "manual", "5s")
    assert run_mlx(["apply", "--yes"], spec).code == 0  # v2 in flight at 10%
    (spec / "model.txt").write_text(SPEC["model.txt"])  # back to v1's bytes
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    assert "first release" not in applied.out
    assert (
        "completed: v1 serves everything (candidate v2 withdrawn: the subject is back to the "
        "stable version)" in applied.out
    ), applied.out
    status = json.loads(run_mlx(["rollout", "status", "m", "--json"], spec).out)
    assert status["live"] == {"stable": "v1", "candidate": None, "weight": 0, "mirror": 0}
