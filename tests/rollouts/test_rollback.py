"""Issue 18, item 10: a rollback is a rollback. On the quickstart, through the `mlx`
command and a real `mlx serve`: going back to a version that served the endpoint before
moves all traffic at once (no new canary), and `mlx rollout abort` returns everything to
stable in one pass — with the gateway running, or applied by the next one that starts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_mlx
from tests.gateway.support import Served
from tests.support.registry_rows import production

pytestmark = pytest.mark.slow

NAME = "tumor_classifier"
PATH = f"/endpoints/{NAME}/invocations"


def _train(spec: Path, c: float | None = None) -> None:
    args = [sys.executable, "train.py"] + ([] if c is None else ["--C", str(c)])
    subprocess.run(args, cwd=spec, check=True, capture_output=True)


def _request(spec: Path) -> dict[str, object]:
    return dict(json.loads((spec / "request.json").read_text()))


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[Path, Served]]:
    spec = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", spec)
    _train(spec)
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    gateway = Served(spec, poll=0.1).wait_ready()
    try:
        yield spec, gateway
    finally:
        gateway.stop()


def _versions(gateway: Served, spec: Path, n: int = 20) -> set[str]:
    """The versions that answered ``n`` requests, each with its own sticky key."""
    seen = set()
    for i in range(n):
        reply = gateway.post(PATH, _request(spec), headers={"x-mlx-key": f"caller-{i}"})
        assert reply.status == 200, reply
        seen.add(reply.headers["x-mlx-version"])
    return seen


def _serves_only(gateway: Served, spec: Path, version: str) -> None:
    """Wait until the gateway's route poll applied what the state records."""
    gateway.wait_for(lambda: _versions(gateway, spec) == {version}, what=f"v{version} only")


def _start_canary(spec: Path, gateway: Served) -> None:
    _train(spec, 0.9)
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    assert f"rollouts.{NAME}: In progress" in applied.out
    gateway.wait_for(lambda: _versions(gateway, spec, 40) == {"1", "2"}, what="the canary split")


def test_rollback_after_a_completed_canary_moves_all_traffic_at_once(
    quickstart: tuple[Path, Served],
) -> None:
    spec, gateway = quickstart
    _start_canary(spec, gateway)
    promoted = run_mlx(["rollout", "promote", NAME, "--full"], spec)
    assert promoted.code == 0, promoted
    _serves_only(gateway, spec, "2")
    assert production(spec, "models", NAME) == 2

    rolled = run_mlx(["rollback", "--yes"], spec)
    assert rolled.code == 0, rolled
    # the plan says what will happen; the apply says it happened — once, in one pass
    assert "rolls back to v1: all traffic at once, v1 served before (serial" in rolled.out
    said = "completed: v1 serves everything (rolled back: all traffic at once, v1 served this"
    assert rolled.out.count(said) == 1, rolled.out
    (line,) = [x for x in rolled.out.splitlines() if said in x]
    assert line.startswith(f"rollouts.{NAME}: Modifications complete after"), line
    assert "step 1/2" not in rolled.out and "In progress" not in rolled.out, rolled.out
    _serves_only(gateway, spec, "1")
    assert production(spec, "models", NAME) == 1

    status = run_mlx(["rollout", "status", NAME], spec)
    assert "phase:     completed" in status.out and "rolled back" in status.out, status.out
    assert "live: stable v1, no candidate" in status.out, status.out
    data = json.loads(run_mlx(["rollout", "status", NAME, "--json"], spec).out)
    assert data["stable"]["version"] == 1 and data["live"]["stable"] == "v1"
    # the spec files still hold v2: the next apply releases it through the canary again,
    # never to everyone at once
    plan = run_mlx(["plan"], spec)
    assert "rolls back" not in plan.out and "all traffic at once" not in plan.out, plan.out


def test_abort_returns_everything_to_stable_with_the_gateway_running(
    quickstart: tuple[Path, Served],
) -> None:
    spec, gateway = quickstart
    _start_canary(spec, gateway)
    aborted = run_mlx(["rollout", "abort", NAME, "--reason", "support tickets doubled"], spec)
    assert aborted.code == 0, aborted
    assert aborted.out.splitlines() == [
        f"rollouts.{NAME}: aborted by tester: support tickets doubled",
        f"rollouts.{NAME}: aborted: requested by tester: support tickets doubled",
    ], aborted.out
    _serves_only(gateway, spec, "1")
    status = json.loads(run_mlx(["rollout", "status", NAME, "--json"], spec).out)
    assert status["phase"] == "aborted" and status["live"]["candidate"] is None


def test_abort_without_a_gateway_is_applied_by_the_next_one(
    quickstart: tuple[Path, Served],
) -> None:
    spec, gateway = quickstart
    _start_canary(spec, gateway)
    assert gateway.stop() == 0
    aborted = run_mlx(["rollout", "abort", NAME], spec)
    assert aborted.code == 0, aborted
    status = json.loads(run_mlx(["rollout", "status", NAME, "--json"], spec).out)
    assert status["live"] == {"stable": "v1", "candidate": None, "weight": 0, "mirror": 0}
    fresh = Served(spec, poll=0.1).wait_ready()
    try:
        assert _versions(fresh, spec, 40) == {"1"}  # from its first answer on
    finally:
        fresh.stop()
