"""The planner's decision for one resource: a pure function of facts, tested from a table.

``Facts`` is everything the planner knows about a resource (its record's
status, which hashes moved, what the gate evidence says, whether its release
is pending); ``decide`` turns them into an action and its reasons. No I/O here:
the planner gathers the facts, ``decide`` decides, the planner adds details.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.plan.model import Action, Reason
from state.status import Status


@dataclass(frozen=True)
class Facts:
    #: The record's status, or ``None`` when the resource is not recorded (new).
    status: Status | None
    is_gate: bool = False
    #: A registry (models, prompts, datasets): a replacement re-registers, never deletes.
    keeps_history: bool = False
    #: A tainted record that holds no outputs: the create never finished.
    created: bool = True
    replace_requested: bool = False
    provider_changed: bool = False
    #: Behaviour fields differ from the record (or are not known until apply).
    behaviour: bool = False
    unknown_inputs: bool = False
    content: bool = False
    meta: bool = False
    #: Rollback/promotion: the content is pinned to a recorded version.
    restoring: bool = False
    #: Restoring: the content lives in a local file that holds other bytes, and mlx cannot
    #: rewrite the user's files (it restores only what its registry records).
    unrestorable: bool = False
    #: Dependencies whose behaviour changes in this plan.
    upstream: tuple[str, ...] = ()
    #: Re-applied when a dependency changes (a rollout follows its subject).
    follows_upstream: bool = False
    #: Gates: a passed verdict exists for exactly what the gate would judge now.
    evidence_passed: bool = False
    #: Gates: the record already holds that verdict.
    evidence_recorded: bool = False
    #: Gates: the latest verdict for exactly this binding failed.
    evidence_failed: bool = False
    rerun_gates: bool = False
    #: Releases: what users get differs from what the spec and the evidence say they should.
    release_pending: bool = False


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[Reason, ...] = ()
    #: For updates: whether dependents should treat this as a new version of their input.
    behaviour_changed: bool = False
    #: No-ops worth a look because a dependency changes.
    flagged_by: tuple[str, ...] = ()


NOOP = Decision(Action.NOOP)


def decide(f: Facts) -> Decision:
    if f.is_gate:
        return _gate(f)
    return _by_status(f) or _by_change(f)


def _by_status(f: Facts) -> Decision | None:
    """What the record's status or a request decides before any hash is compared."""
    if f.status is None:
        return Decision(Action.CREATE, (Reason.NEW,))
    if f.status is Status.TAINTED:
        # a registry adopts what a half-finished create left; nothing is deleted first
        if f.keeps_history or not f.created:
            return Decision(Action.CREATE, (Reason.TAINTED,))
        return Decision(Action.REPLACE, (Reason.TAINTED,))
    if f.status is Status.MISSING:
        return Decision(Action.CREATE, (Reason.DELETED_OUTSIDE,))
    if f.status is Status.DRIFTED and not f.content:
        if f.unrestorable:
            # the registry already records this version and the drifted bytes are a local
            # file's: nothing to do that mlx could do (the plan says so); the drift stays
            return NOOP
        # restored to what was recorded: dependents see the same version and are not re-run
        return Decision(Action.UPDATE, (Reason.DRIFTED,))
    if f.replace_requested:
        return Decision(Action.REPLACE, (Reason.REQUESTED,))
    if f.provider_changed:
        return Decision(Action.REPLACE, (Reason.PROVIDER_CHANGED,))
    return None


def _by_change(f: Facts) -> Decision:
    """Which hashes moved, what changed upstream, whether a release is pending."""
    reasons: list[Reason] = []
    behaviour = f.behaviour
    if f.status is Status.IN_PROGRESS:
        reasons.append(Reason.IN_PROGRESS)
    if f.behaviour:
        reasons.append(Reason.UNKNOWN_INPUTS if f.unknown_inputs else Reason.SPEC_CHANGED)
    if f.content:
        reasons.append(Reason.RESTORED if f.restoring else Reason.CONTENT_CHANGED)
    if f.meta:
        reasons.append(Reason.METADATA_CHANGED)
    if f.release_pending:
        reasons.append(Reason.RELEASE_PENDING)
        behaviour = True
    elif f.upstream and f.follows_upstream:
        reasons.append(Reason.UPSTREAM_CHANGED)
        behaviour = True
    if not reasons:
        return Decision(Action.NOOP, flagged_by=f.upstream)
    flagged = () if f.follows_upstream else f.upstream
    return Decision(Action.UPDATE, tuple(reasons), behaviour or f.content, flagged)


def _gate(f: Facts) -> Decision:
    """A gate runs unless a passed verdict covers exactly what it would judge now."""
    if f.status is None:
        if f.evidence_passed and not f.rerun_gates:
            return Decision(Action.CREATE, (Reason.EVIDENCE_REUSED,))
        return Decision(Action.RUN, (Reason.NEW,))
    if f.status in (Status.TAINTED, Status.MISSING):
        return Decision(Action.RUN, (Reason.TAINTED,))
    if f.replace_requested:
        return Decision(Action.RUN, (Reason.REQUESTED,))
    if f.rerun_gates:
        return Decision(Action.RUN, (Reason.RERUN_REQUESTED,))
    if f.evidence_passed:
        if f.evidence_recorded and f.status is Status.OK:
            return Decision(Action.UPDATE, (Reason.METADATA_CHANGED,)) if f.meta else NOOP
        return Decision(Action.UPDATE, (Reason.EVIDENCE_REUSED,))
    if f.behaviour or f.content:
        return Decision(Action.RUN, (Reason.SPEC_CHANGED,))
    if f.upstream:
        return Decision(Action.RUN, (Reason.GATE_INPUTS_CHANGED,))
    if f.evidence_failed or f.status is Status.FAILED:
        return Decision(Action.RUN, (Reason.GATE_NOT_PASSED,))
    return Decision(Action.RUN, (Reason.NOT_JUDGED,))
