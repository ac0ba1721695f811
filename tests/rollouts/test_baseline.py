"""Issue 18, item 9: what "released" means after a canary, and the baseline the next gate
compares with (``baseline: previous`` is the version users get now — never a candidate a
gate or a canary rejected, never the last one judged)."""

from __future__ import annotations

import time
from pathlib import Path

from engine.workflows import rollouts
from tests.release.test_release_safety import SPEC
from tests.rollouts.conftest import traffic
from tests.support.harness import Workspace

SECOND_GATE = """
    evals:
      g2:
        provider: scripted
        subject: ${models.m}
        dataset: ${datasets.eval}
        label: y
        metrics: {accuracy: {min: 0.955}}
"""


def _abort_the_canary(ws: Workspace) -> rollouts.PassResult:
    """Drive the rollout on failing candidate traffic until it aborts."""
    session = ws.session()
    try:
        for _ in range(200):
            traffic(ws, "stable", 30)
            traffic(ws, "candidate", 30, errors=20)
            result = rollouts.step(session, "m")
            if result.done or result.waiting:
                return result
            time.sleep(0.05)
    finally:
        session.close()
    raise AssertionError("the rollout never ended")


def _last_gate_call(ws: Workspace, gate: str = "evals.g") -> dict[str, object]:
    calls = [c for c in ws.gate_calls() if c.get("gate") == gate]
    return calls[-1]


def test_after_an_aborted_canary_the_stable_version_stays_released(canary: Workspace) -> None:
    canary.write({"model.txt": "score=0.97"})
    report = canary.apply()
    assert report is not None and report.ok, canary.output
    # in flight: users get v1, the record says so
    assert canary.outputs("rollouts.m")["released_version"] == 1
    aborted = _abort_the_canary(canary)
    assert aborted.phase == "aborted", aborted
    out = canary.outputs("rollouts.m")
    assert out["released_version"] == 1 and out["released"]["version"] == 1
    assert out["candidate_version"] == 2
    # v3 is 0.015 below v1 but far above v2's 0.97 - 0.05: judged against v1, it fails
    canary.write({"model.txt": "score=0.935"})
    report = canary.apply()
    assert report is not None and not report.ok
    call = _last_gate_call(canary)
    assert (call["version"], call["baseline_version"]) == (3, 1), call


def test_while_a_canary_is_in_flight_the_baseline_is_the_stable_version(
    canary: Workspace,
) -> None:
    canary.write({"model.txt": "score=0.97"})
    assert canary.apply() is not None
    assert canary.statuses()["rollouts.m"] == "in_progress"
    canary.write({"model.txt": "score=0.96"})
    report = canary.apply()
    assert report is not None
    call = _last_gate_call(canary)
    assert (call["version"], call["baseline_version"]) == (3, 1), call


def test_without_a_rollout_a_rejected_candidate_is_never_the_baseline(tmp_path: Path) -> None:
    files = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
    ws = Workspace(tmp_path / "spec").write(files)
    assert (report := ws.apply()) is not None and report.ok, ws.output
    ws.write({"model.txt": "score=0.50"})  # v2: judged, rejected
    assert (report := ws.apply()) is not None and not report.ok
    ws.write({"model.txt": "score=0.945"})  # v3: 0.005 below v1, far above v2
    assert (report := ws.apply()) is not None and report.ok, ws.output
    call = _last_gate_call(ws)
    assert (call["version"], call["baseline_version"]) == (3, 1), call


def test_a_version_another_gate_rejected_is_never_the_baseline(tmp_path: Path) -> None:
    """v2 passes g but fails g2: nothing releases it. The next version's g compares with
    v1 (the last version every gate passed), not with v2, the last one g judged."""
    files = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
    ws = Workspace(tmp_path / "spec").write({**files, "gate2.yaml": SECOND_GATE})
    ws.write({"model.txt": "score=0.96"})
    assert (report := ws.apply()) is not None and report.ok, ws.output
    ws.write({"model.txt": "score=0.95"})  # v2: passes g (drop 0.01), fails g2 (< 0.955)
    assert (report := ws.apply()) is not None and not report.ok
    assert "evals.g2: Gate FAILED" in ws.output
    ws.write({"model.txt": "score=0.9595"})  # v3: 0.0005 below v1, above v2
    ws.apply()
    call = _last_gate_call(ws)
    assert (call["version"], call["baseline_version"]) == (3, 1), call
