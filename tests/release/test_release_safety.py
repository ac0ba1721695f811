"""Issue 8, broken promises 1-3 and 6: a version reaches users only after every gate it
requires passed for exactly its fingerprints — whatever --target, an interruption, a
rejected candidate or a rollback left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.plan.model import Action, Reason
from tests.support.harness import Workspace

SPEC = {
    "data.yaml": """
        datasets:
          eval:
            uri: data/eval.csv
            owner: team-data
    """,
    "data/eval.csv": "x,y\n1,0\n2,1\n",
    "models.yaml": """
        models:
          m:
            artifact: model.txt
            owner: team-ml
            description: the model
    """,
    "model.txt": "score=0.95",
    "gates.yaml": """
        providers:
          scripted:
            type: python
            factory: tests.support.fake_providers:ScriptedGate
        evals:
          g:
            provider: scripted
            subject: ${models.m}
            dataset: ${datasets.eval}
            label: y
            metrics: {accuracy: {min: 0.9, max_drop: 0.01}}
    """,
    "rollouts.yaml": """
        rollouts:
          m:
            subject: ${models.m}
            alias: production
            requires: ["${evals.g}"]
            owner: team-ml
            description: release the gated model
    """,
}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "spec").write(SPEC)
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    assert _production(ws) == 1
    return ws


def _production(ws: Workspace) -> int | None:
    obj = ws.registry_object("models", "m") or {}
    return (obj.get("aliases") or {}).get("production")


def _change(plan: object, address: str) -> object:
    return next(c for c in plan.changes if c.address == address)  # type: ignore[attr-defined]


def test_target_registers_a_candidate_but_nothing_releases_it_ungated(ws: Workspace) -> None:
    ws.write({"model.txt": "score=0.50"})  # a candidate that fails its gate
    report = ws.apply(targets=["models.m"])
    assert report is not None and report.ok
    assert ws.registry_versions("models", "m") == [1, 2]
    assert _production(ws) == 1
    # the gate has not judged v2: the plan says so, whatever --target left behind
    plan = ws.plan()
    gate = _change(plan, "evals.g")
    assert gate.action is Action.RUN and Reason.NOT_JUDGED in gate.reasons
    assert any("evals.g has not judged models.m v2" in d for d in gate.details), gate.details
    rollout = _change(plan, "rollouts.m")
    assert Reason.RELEASE_PENDING in rollout.reasons
    assert any("released only if evals.g passes" in d for d in rollout.details), rollout.details
    # an unrelated edit of the rollout cannot carry v2 out: the gate runs, fails, blocks it
    ws.write({"rollouts.yaml": SPEC["rollouts.yaml"].replace("release the gated", "ship the")})
    report = ws.apply()
    assert report is not None and not report.ok
    assert "evals.g: Gate FAILED" in ws.output
    assert "rollouts.m: skipped: depends on evals.g" in ws.output
    assert _production(ws) == 1
    assert ws.outputs("rollouts.m")["released_version"] == 1


def test_the_applier_refuses_a_release_the_plan_forgot_to_gate(ws: Workspace) -> None:
    """Even a plan without the gate (a planner bug, a hand-edited plan) cannot release v2."""
    from engine import operations
    from engine.plan.model import PlanOptions
    from engine.workflows.release import Delivery, plan_and_apply

    ws.write({"model.txt": "score=0.50"})
    assert ws.apply(targets=["models.m"]) is not None
    session = ws.session()
    plan = ws.plan()
    assert _change(plan, "evals.g").action is Action.RUN
    without_gate = plan.model_copy(
        update={"changes": [c for c in plan.changes if c.address != "evals.g"]}
    )
    lines: list[str] = []
    with session.writer("apply") as writer:
        from engine.apply.applier import Applier
        from engine.plugins import ProviderSet

        providers = ProviderSet.for_session(session)
        try:
            report = Applier(session, without_gate, providers, writer, lines.append).run()
        finally:
            providers.close()
    assert not report.ok
    text = "\n".join(lines)
    assert "refusing to release models.m v2: evals.g has not passed for exactly models.m v2" in text
    assert _production(ws) == 1
    del operations, PlanOptions, Delivery, plan_and_apply


def test_a_release_interrupted_after_its_gate_passed_is_completed(ws: Workspace) -> None:
    ws.write({"model.txt": "score=0.96"})
    # the gate runs and passes, then the apply stops before the release (as Ctrl-C would)
    report = ws.apply(targets=["evals.g"])
    assert report is not None and report.ok
    assert _production(ws) == 1
    plan = ws.plan()
    rollout = _change(plan, "rollouts.m")
    assert rollout.action is Action.UPDATE and Reason.RELEASE_PENDING in rollout.reasons
    moved = {f.path: (f.before, f.after) for f in rollout.fields}
    assert moved["released_version"] == (1, 2)
    assert "releases models.m v2 (users get v1 now)" in rollout.details
    assert "evals.g" in plan.unchanged  # its verdict covers v2 already
    text = ws.plan_text()
    assert "~ released_version = 1 -> 2" in text
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    assert _production(ws) == 2
    assert not ws.plan().has_changes


def test_a_rejected_candidate_never_becomes_the_baseline(ws: Workspace) -> None:
    ws.write({"model.txt": "score=0.50"})  # v2: clearly bad, rejected
    report = ws.apply()
    assert report is not None and not report.ok
    assert _production(ws) == 1
    # v3 is 0.012 below v1 (users get v1): with max_drop 0.01 it must fail, though it is
    # far better than the rejected v2
    ws.write({"model.txt": "score=0.938"})
    report = ws.apply()
    assert report is not None and not report.ok
    calls = ws.gate_calls()
    assert calls[-1]["version"] == 3 and calls[-1]["baseline_version"] == 1, calls
    assert "below the released 0.95" in ws.output
    assert _production(ws) == 1


def test_a_metadata_edit_releases_nothing_new_and_runs_no_gate(ws: Workspace) -> None:
    runs = len(ws.gate_calls())
    ws.write({"models.yaml": SPEC["models.yaml"].replace("the model", "the model, v1")})
    report = ws.apply()
    assert report is not None and report.ok
    assert len(ws.gate_calls()) == runs
    assert ws.registry_versions("models", "m") == [1]
    assert not ws.plan().has_changes


def test_rollback_reuses_the_recorded_verdict_and_rerun_gates_runs_it(ws: Workspace) -> None:
    # v2 within max_drop of v1 (a re-run judges v1 against what users get then: v2)
    ws.write({"model.txt": "score=0.955"})
    report = ws.apply()
    assert report is not None and report.ok and _production(ws) == 2
    runs = len(ws.gate_calls())
    report = ws.rollback()
    assert report is not None and report.ok, ws.output
    assert _production(ws) == 1
    assert len(ws.gate_calls()) == runs, "an emergency rollback must not wait on a gate"
    assert "passed for exactly models.m v1" in ws.output
    assert "evals.g: Verdict reused" in ws.output
    # forward again, then back with --rerun-gates: the gate runs this time
    assert ws.apply() is not None and _production(ws) == 2
    runs = len(ws.gate_calls())
    report = ws.rollback(rerun_gates=True)
    assert report is not None and report.ok
    assert len(ws.gate_calls()) == runs + 1
    assert _production(ws) == 1


def test_a_verdict_is_bound_to_the_dataset_and_the_gate_definition(ws: Workspace) -> None:
    runs = len(ws.gate_calls())
    ws.write({"data/eval.csv": "x,y\n1,0\n2,1\n3,1\n"})  # new eval bytes, same spec
    plan = ws.plan()
    assert _change(plan, "evals.g").action is Action.RUN
    assert ws.apply() is not None and len(ws.gate_calls()) == runs + 1
    ws.write({"gates.yaml": SPEC["gates.yaml"].replace("min: 0.9", "min: 0.91")})
    assert _change(ws.plan(), "evals.g").action is Action.RUN
    assert ws.apply() is not None and len(ws.gate_calls()) == runs + 2


def test_a_release_without_requires_waits_for_every_gate_on_its_subject(tmp_path: Path) -> None:
    spec = dict(SPEC)
    spec["rollouts.yaml"] = "\n".join(
        line for line in SPEC["rollouts.yaml"].splitlines() if "requires:" not in line
    )
    ws = Workspace(tmp_path / "spec").write(spec)
    assert ws.apply() is not None and _production(ws) == 1
    ws.write({"model.txt": "score=0.10"})
    report = ws.apply()
    assert report is not None and not report.ok
    assert "rollouts.m: skipped: depends on evals.g" in ws.output
    assert _production(ws) == 1
