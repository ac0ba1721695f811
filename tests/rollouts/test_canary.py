"""Canary rollouts: walked step by step, judged against stable on the log, aborted on
failure, paused on too little traffic, resumed after a kill."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.workflows import rollouts
from tests.rollouts.conftest import traffic
from tests.support.harness import Workspace


def only(variant: str) -> dict[str, object]:
    """The traffic of an endpoint whose stable variant serves everything."""
    return {"stable": variant, "candidate": None, "weight": 0, "mirror": 0}


def _production(ws: Workspace) -> int | None:
    obj = ws.registry_object("models", "m") or {}
    return (obj.get("aliases") or {}).get("production")


def _route(ws: Workspace) -> dict:
    (doc,) = ws.sql("SELECT doc FROM mlx_gateway_routes WHERE endpoint = 'm'")[0]
    return dict(json.loads(doc))


def _drive_until(ws: Workspace, *, healthy: bool, errors: int = 0) -> list[rollouts.PassResult]:
    """Drive the rollout, feeding the log as it goes (what real traffic would do)."""
    session = ws.session()
    results: list[rollouts.PassResult] = []
    try:
        for _ in range(200):
            traffic(ws, "stable", 30)
            traffic(ws, "candidate", 30, errors=errors if not healthy else 0)
            result = rollouts.step(session, "m")
            results.append(result)
            if result.done or result.waiting:
                return results
            time.sleep(0.05)
    finally:
        session.close()
    raise AssertionError(f"the rollout never finished: {results[-1]}")


def test_the_first_release_completes_at_once(canary: Workspace) -> None:
    out = canary.outputs("rollouts.m")
    assert out["phase"] == "completed" and out["released_version"] == 1
    assert _production(canary) == 1
    assert canary.statuses()["rollouts.m"] == "ok"


def test_a_healthy_canary_walks_every_step_and_moves_the_alias(canary: Workspace) -> None:
    canary.write({"model.txt": "score=0.97"})
    report = canary.apply()
    assert report is not None and report.ok, canary.output
    assert canary.statuses()["rollouts.m"] == "in_progress"
    route = _route(canary)
    assert route["traffic"] == {"stable": "v1", "candidate": "v2", "weight": 10, "mirror": 0}
    assert _production(canary) == 1, "the alias moves only when the rollout completes"
    # the plan says it is in progress, and what comes next
    plan = canary.plan_text()
    assert "rollouts.m will be updated in place (continues an operation in progress)" in plan
    assert "step 1/3: weight 10" in plan
    results = _drive_until(canary, healthy=True)
    assert results[-1].phase == "completed", results[-1]
    assert _route(canary)["traffic"] == only("v2")
    assert set(_route(canary)["variants"]) == {"v2"}
    assert _production(canary) == 2
    events = [e for r in results for e in r.events]
    assert any("step 2/3: weight 50" in e for e in events), events
    assert any("step 1: analysis pass (error_rate" in e for e in events), events
    # the endpoint's record follows what the rollout did: nothing looks like drift
    assert canary.outputs("endpoints.m")["stable_version"] == 2
    assert canary.refresh() == []
    assert not canary.plan().has_changes


def test_a_failing_canary_aborts_at_the_first_analysis(canary: Workspace) -> None:
    canary.write({"model.txt": "score=0.97"})
    assert canary.apply() is not None
    results = _drive_until(canary, healthy=False, errors=20)
    last = results[-1]
    assert last.phase == "aborted", last
    assert "error_rate" in last.message
    assert _route(canary)["traffic"] == only("v1")
    assert _production(canary) == 1
    alerts = [json.loads(x) for x in (canary.root / ".mlx/alerts.jsonl").read_text().splitlines()]
    assert alerts[-1]["source"] == "rollouts.m" and alerts[-1]["owner"] == "team-ml"
    assert "error_rate" in alerts[-1]["text"] and "mlx rollout status m" in alerts[-1]["text"]
    # aborted stays aborted: the plan does not restart it, and says how to
    plan = canary.plan()
    assert not plan.has_changes
    assert any("mlx rollout retry m" in w for w in plan.warnings), plan.warnings


def test_too_little_traffic_is_inconclusive_and_pauses(canary: Workspace) -> None:
    canary.write({"model.txt": "score=0.97"})
    assert canary.apply() is not None
    session = canary.session()
    try:
        for _ in range(100):
            traffic(canary, "stable", 2)
            traffic(canary, "candidate", 2)  # far below min_requests: 20
            result = rollouts.step(session, "m")
            if result.waiting or result.done:
                break
            time.sleep(0.05)
    finally:
        session.close()
    assert result.phase == "paused" and result.waiting == "inconclusive", result
    assert "inconclusive" in result.message
    assert _route(canary)["traffic"]["weight"] == 10, "a pause holds the weights"
    # a person decides: promote goes on to the next step
    session = canary.session()
    try:
        promoted = rollouts.step(session, "m", operation="rollout-promote", request="promote")
    finally:
        session.close()
    assert promoted.phase == "progressing" and _route(canary)["traffic"]["weight"] == 50


def test_abort_and_promote_full_mid_analysis(canary: Workspace) -> None:
    canary.write({"model.txt": "score=0.97"})
    assert canary.apply() is not None
    session = canary.session()
    try:
        full = rollouts.step(session, "m", operation="rollout-promote", request="promote-full")
    finally:
        session.close()
    assert full.phase == "completed" and _production(canary) == 2
    canary.write({"model.txt": "score=0.98"})
    assert canary.apply() is not None
    session = canary.session()
    try:
        aborted = rollouts.step(session, "m", operation="rollout-abort", request="abort")
    finally:
        session.close()
    assert aborted.phase == "aborted" and _route(canary)["traffic"]["stable"] == "v2"
    history = canary.sql(
        "SELECT operation, actor FROM mlx_state_versions WHERE operation LIKE 'rollout%'"
    )
    assert ("rollout-promote", "tester") in history and ("rollout-abort", "tester") in history


def test_a_rollout_past_its_timeout_pauses_and_alerts(tmp_path: Path) -> None:
    from tests.release.test_release_safety import SPEC
    from tests.rollouts.conftest import ROLLOUT

    slow = ROLLOUT.replace("pause: 0.2s}, {weight: 50", "pause: 1h}, {weight: 50").replace(
        "alert: ${alerts.oncall}", "alert: ${alerts.oncall}\n        timeout: 0.2s"
    )
    files = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
    ws = Workspace(tmp_path / "spec").write({**files, "rollout.yaml": slow})
    assert ws.apply() is not None
    ws.write({"model.txt": "score=0.97"})
    assert ws.apply() is not None
    time.sleep(0.3)  # past the rollout's deadline (the controller reads the clock)
    session = ws.session()
    try:
        result = rollouts.step(session, "m")
    finally:
        session.close()
    assert result.phase == "paused" and result.waiting == "timeout", result
    alerts = [json.loads(x) for x in (ws.root / ".mlx/alerts.jsonl").read_text().splitlines()]
    assert "past its timeout" in alerts[-1]["text"] and alerts[-1]["owner"] == "team-ml"
    assert _route(ws)["traffic"]["weight"] == 10, "a timed-out rollout holds, it does not spin"


def test_a_completion_recorded_before_its_traffic_moved_is_settled_by_the_next_pass(
    canary: Workspace,
) -> None:
    """Issue 18, item 6: a controller killed after recording "completed" (the checkpoint)
    but before moving traffic, the alias and the record's status: the next pass re-asserts
    what the record says and settles the record."""
    from controller import reconcile
    from controller.state import RolloutState
    from engine.apply.recording import checkpoint
    from specs.rollouts import Rollout
    from state.status import VersionStatus
    from state.writes import RecordWrite

    canary.write({"model.txt": "score=0.97"})
    assert canary.apply() is not None
    assert _route(canary)["traffic"]["weight"] == 10
    session = canary.session()
    try:
        with session.writer("rollout") as writer:
            rec = writer.records(["rollouts.m"])["rollouts.m"]
            spec = Rollout.model_validate(rec.attributes)
            state = RolloutState.from_outputs(dict(rec.outputs))
            done = reconcile.advance(spec, reconcile.promote(state, True), reconcile.Observation(0))
            assert done.state.phase == "completed"
            writer.begin("rollout", actor="controller")
            checkpoint(
                writer, RecordWrite.of(rec, "step"), done.state.to_outputs(), done.events[-1]
            )
            writer.finish(VersionStatus.INTERRUPTED, {}, "killed")  # the process died here
        assert canary.statuses()["rollouts.m"] == "in_progress"
        assert _route(canary)["traffic"]["weight"] == 10 and _production(canary) == 1
        result = rollouts.step(session, "m")
    finally:
        session.close()
    assert result.done and result.phase == "completed"
    assert _route(canary)["traffic"] == only("v2")
    assert _production(canary) == 2
    assert canary.statuses()["rollouts.m"] == "ok"


def test_a_pass_killed_between_recording_a_step_and_taking_it_resumes(
    canary: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness records a step before it is taken: `mlx rollout promote --full` whose
    traffic move fails (a kill at that moment leaves the same record) has recorded the
    completion; the next plain pass takes it — traffic, alias — and settles the record."""
    from common.diagnostics import MlxError
    from contract import ProviderError
    from providers.gateway.provider import GatewayProvider

    canary.write({"model.txt": "score=0.97"})
    assert canary.apply() is not None
    assert _route(canary)["traffic"]["weight"] == 10
    real = GatewayProvider.set_traffic

    def killed(self: GatewayProvider, endpoint: object, traffic: object) -> None:
        raise ProviderError("killed while moving traffic")

    session = canary.session()
    try:
        monkeypatch.setattr(GatewayProvider, "set_traffic", killed)
        with pytest.raises(MlxError, match="killed while moving traffic"):
            rollouts.step(session, "m", operation="rollout-promote", request="promote-full")
        monkeypatch.setattr(GatewayProvider, "set_traffic", real)
        assert canary.statuses()["rollouts.m"] == "in_progress"
        assert canary.outputs("rollouts.m")["phase"] == "completed", "recorded before taken"
        assert _route(canary)["traffic"]["weight"] == 10 and _production(canary) == 1
        result = rollouts.step(session, "m")
    finally:
        session.close()
    assert result.done and result.phase == "completed"
    assert _route(canary)["traffic"] == only("v2") and _production(canary) == 2
    assert canary.statuses()["rollouts.m"] == "ok"
