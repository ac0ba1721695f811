"""The planner's decision, from a table of facts (engine/decide.py is a pure function)."""

from __future__ import annotations

import pytest

from engine.plan.decide import Facts, decide
from engine.plan.model import Action, Reason
from state.status import Status

OK = Status.OK
R = Reason

TABLE = [
    # (facts, action, reasons, behaviour_changed)
    (Facts(None), Action.CREATE, (R.NEW,), False),
    (Facts(OK), Action.NOOP, (), False),
    (Facts(OK, meta=True), Action.UPDATE, (R.METADATA_CHANGED,), False),
    (Facts(OK, behaviour=True), Action.UPDATE, (R.SPEC_CHANGED,), True),
    (Facts(OK, behaviour=True, unknown_inputs=True), Action.UPDATE, (R.UNKNOWN_INPUTS,), True),
    (Facts(OK, content=True), Action.UPDATE, (R.CONTENT_CHANGED,), True),
    (Facts(OK, content=True, restoring=True), Action.UPDATE, (R.RESTORED,), True),
    (Facts(OK, replace_requested=True), Action.REPLACE, (R.REQUESTED,), False),
    (Facts(OK, provider_changed=True), Action.REPLACE, (R.PROVIDER_CHANGED,), False),
    # a failed create: a registry creates again (adopting), others are replaced
    (Facts(Status.TAINTED, keeps_history=True), Action.CREATE, (R.TAINTED,), False),
    (Facts(Status.TAINTED, created=False), Action.CREATE, (R.TAINTED,), False),
    (Facts(Status.TAINTED), Action.REPLACE, (R.TAINTED,), False),
    (Facts(Status.MISSING), Action.CREATE, (R.DELETED_OUTSIDE,), False),
    (Facts(Status.DRIFTED), Action.UPDATE, (R.DRIFTED,), False),
    # a rollback to the recorded version of bytes a local file no longer holds: mlx cannot
    # rewrite the file, so it claims nothing (the plan says so) and the drift stays recorded
    (Facts(Status.DRIFTED, restoring=True, unrestorable=True), Action.NOOP, (), False),
    # ... while a rollback to an older version still moves the registry back
    (
        Facts(OK, content=True, restoring=True, unrestorable=True),
        Action.UPDATE,
        (R.RESTORED,),
        True,
    ),
    # local bytes that drifted are a content change: dependents re-run
    (Facts(Status.DRIFTED, content=True), Action.UPDATE, (R.CONTENT_CHANGED,), True),
    (Facts(Status.IN_PROGRESS), Action.UPDATE, (R.IN_PROGRESS,), False),
    # a release follows its subject, and a pending release is made
    (
        Facts(OK, upstream=("models.m",), follows_upstream=True),
        Action.UPDATE,
        (R.UPSTREAM_CHANGED,),
        True,
    ),
    (Facts(OK, release_pending=True), Action.UPDATE, (R.RELEASE_PENDING,), True),
    # other kinds are only flagged by a changing dependency
    (Facts(OK, upstream=("datasets.d",)), Action.NOOP, (), False),
    # gates: the evidence decides
    (Facts(None, is_gate=True), Action.RUN, (R.NEW,), False),
    (Facts(None, is_gate=True, evidence_passed=True), Action.CREATE, (R.EVIDENCE_REUSED,), False),
    (Facts(OK, is_gate=True, evidence_passed=True, evidence_recorded=True), Action.NOOP, (), False),
    (
        Facts(OK, is_gate=True, evidence_passed=True, evidence_recorded=True, meta=True),
        Action.UPDATE,
        (R.METADATA_CHANGED,),
        False,
    ),
    (Facts(OK, is_gate=True, evidence_passed=True), Action.UPDATE, (R.EVIDENCE_REUSED,), False),
    (
        Facts(OK, is_gate=True, evidence_passed=True, rerun_gates=True),
        Action.RUN,
        (R.RERUN_REQUESTED,),
        False,
    ),
    (Facts(OK, is_gate=True, behaviour=True), Action.RUN, (R.SPEC_CHANGED,), False),
    (Facts(OK, is_gate=True, upstream=("models.m",)), Action.RUN, (R.GATE_INPUTS_CHANGED,), False),
    (Facts(OK, is_gate=True, evidence_failed=True), Action.RUN, (R.GATE_NOT_PASSED,), False),
    (Facts(Status.FAILED, is_gate=True), Action.RUN, (R.GATE_NOT_PASSED,), False),
    # nothing changed in this plan, yet no verdict covers what the gate guards now
    (Facts(OK, is_gate=True), Action.RUN, (R.NOT_JUDGED,), False),
]


@pytest.mark.parametrize(("facts", "action", "reasons", "behaviour"), TABLE)
def test_decide(facts: Facts, action: Action, reasons: tuple[Reason, ...], behaviour: bool):
    decision = decide(facts)
    assert (decision.action, decision.reasons) == (action, reasons)
    assert decision.behaviour_changed is behaviour


def test_a_dependent_is_flagged_not_changed() -> None:
    decision = decide(Facts(OK, upstream=("datasets.d",)))
    assert decision.flagged_by == ("datasets.d",)
