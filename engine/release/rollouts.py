"""Driving rollouts after ``mlx apply`` started them: ``mlx rollout run``, ``apply --wait``,
and the ``promote``/``abort``/``retry`` requests.

A pass takes the state lock (two controllers never advance the same rollout), reads the
rollout as it was applied (its record: the spec and versions ``mlx apply`` released, not
the spec files, which belong to the next apply), and asks its provider for one step.
Each pass that changes something is a state version (operation ``rollout``, or the
request's name) with the actor and the step; a pass that only waits writes nothing.
Safe to run from a schedule: every step is level-triggered and recorded before and after
it is taken, so a controller killed at any moment resumes from the recorded step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.apply.recording import base_of, checkpoint, record_touched
from engine.diagnostics import MlxError, did_you_mean
from engine.plugins import ProviderSet, prior_of
from engine.session import Session
from providers.contract import Change, Completion, Desired, Prior, ProviderError
from state.status import Status, VersionStatus
from state.store import Record, StateWriter

Echo = Callable[[str], None]
#: Longest sleep between passes while waiting (a due time usually comes sooner).
MAX_NAP_S = 5.0


@dataclass
class PassResult:
    address: str
    phase: str
    message: str
    done: bool
    #: waiting for a person (a manual step, inconclusive, failure, timeout)
    waiting: str | None = None
    events: list[str] = field(default_factory=list)
    changed: bool = False
    due_at: float | None = None


def _address(name: str) -> str:
    return name if name.startswith("rollouts.") else f"rollouts.{name}"


def in_progress(session: Session) -> list[str]:
    index = session.reader().index()
    return sorted(a for a, row in index.items() if row.status == Status.IN_PROGRESS)


def _record(writer: StateWriter, address: str) -> Record:
    rec = writer.records([address]).get(address)
    if rec is None or rec.section != "rollouts":
        known = [a for a, r in writer.index().items() if r.section == "rollouts"]
        raise MlxError(f"no rollout {address} in the state{did_you_mean(address, known)}")
    return rec


def _desired(writer: StateWriter, rec: Record) -> Desired:
    """The rollout as applied: its recorded attributes, its inputs as recorded now."""
    inputs = {}
    for dep in rec.dependencies:
        dep_rec = writer.records([dep]).get(dep)
        if dep_rec is not None:
            inputs[dep] = dict(dep_rec.outputs)
    subject = rec.attributes.get("subject")
    candidate = rec.outputs.get("candidate")
    if subject and candidate and rec.status == Status.IN_PROGRESS:
        inputs[str(subject)] = dict(candidate)  # the version this rollout is releasing
    return Desired(rec.address, rec.section, rec.name, rec.attributes, rec.content_hash, inputs)


def _prior(rec: Record, outputs: dict[str, Any] | None = None) -> Prior:
    return prior_of(rec, outputs)


def step(
    session: Session,
    name: str,
    *,
    operation: str = "rollout",
    request: str | None = None,
    echo: Echo = lambda _line: None,
) -> PassResult:
    """One pass over one rollout, under the lock; ``request``: promote, promote-full, abort,
    retry (recorded with the actor in their own state version)."""
    address = _address(name)
    with session.writer(operation) as writer:
        rec = _record(writer, address)
        if request is None and rec.status != Status.IN_PROGRESS:
            out = rec.outputs
            return PassResult(address, str(out.get("phase")), str(out.get("message") or ""), True)
        providers = ProviderSet.for_session(session, writer.record)
        try:
            return _pass(session, writer, providers, rec, operation, request, echo)
        finally:
            providers.close()


def _with_request(rec: Record, request: str | None) -> dict[str, Any]:
    """The rollout's outputs, carrying ``request`` for the controller (or refusing it)."""
    from controller.state import Phase, RolloutState

    outputs = dict(rec.outputs)
    if request is None:
        return outputs
    if "address" not in outputs:
        raise MlxError(f"{rec.address} does not drive an endpoint: nothing to {request}")
    phase = RolloutState.from_outputs(outputs).phase
    if request == "retry":
        if phase not in (Phase.ABORTED, Phase.PAUSED):
            raise MlxError(f"{rec.address} is {phase}: only an aborted or paused one is retried")
    elif phase in (Phase.COMPLETED, Phase.ABORTED):
        raise MlxError(f"{rec.address} is {phase}: nothing to {request}")
    else:
        outputs["requested"] = request
    return outputs


def _pass(
    session: Session,
    writer: StateWriter,
    providers: ProviderSet,
    rec: Record,
    operation: str,
    request: str | None,
    echo: Echo,
) -> PassResult:
    from controller.state import RolloutState

    outputs = _with_request(rec, request)
    provider = providers.get(rec.provider, rec.address)
    serial: int | None = None

    def begin() -> None:
        nonlocal serial
        if serial is None:
            serial = writer.begin(operation, actor=session.actor, git_sha=session.git_sha)

    base = base_of(rec)
    peers = providers.context.peers
    if peers is not None and hasattr(peers, "on_checkpoint"):

        def on_checkpoint(address: str, outs: Any, note: str) -> None:
            if address == rec.address:
                begin()
                checkpoint(writer, base, outs, note)

        peers.on_checkpoint = on_checkpoint
    if request is not None:
        begin()
    try:
        if request == "retry":
            from controller.drive import Drive
            from specs.rollouts import Rollout

            spec = Rollout.model_validate(rec.attributes)
            assert peers is not None
            result = Drive(rec.address, spec, peers).retry(RolloutState.from_outputs(outputs))
        else:
            result = provider.update(
                _prior(rec, outputs), _desired(writer, rec), Change(resume=True)
            )
    except (ProviderError, OSError, ValueError) as exc:
        if serial is not None:
            writer.note(rec.address, operation, str(exc))
            writer.finish(VersionStatus.FAILED, {"rollout": rec.address}, str(exc))
        raise MlxError(f"{rec.address}: {exc}") from exc
    new = dict(result.outputs)
    events = list(new.pop("events", []) or [])
    done = result.completion is Completion.DONE
    changed = bool(events) or request is not None
    if changed:
        begin()
        writer.put(
            **base,
            action=request or "step",
            status=Status.OK if done else Status.IN_PROGRESS,
            outputs=new,
            error="; ".join(events) or None,
        )
        if result.touched:
            record_touched(writer, providers, result.touched)
        writer.finish(
            VersionStatus.COMPLETE,
            {"rollout": rec.address, "phase": new.get("phase"), "events": events},
            new.get("message"),
        )
        for event in events:
            echo(f"{rec.address}: {event}")
    state = RolloutState.from_outputs(new)
    return PassResult(
        rec.address,
        str(state.phase),
        state.message,
        done,
        waiting=str(state.waiting) if state.waiting else None,
        events=events,
        changed=changed,
        due_at=_due(state),
    )


def _due(state: Any) -> float | None:
    times = [t for t in (state.pause_until, state.next_look_at, state.deadline) if t]
    return min(times) if times else None


def run(
    session: Session,
    names: list[str] | None,
    echo: Echo,
    *,
    stop_when_paused: bool = True,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    max_passes: int | None = None,
) -> list[PassResult]:
    """Drive rollouts until each completes, aborts, or (``stop_when_paused``) waits for a
    person. ``names``: these rollouts (default: every rollout in progress)."""
    targets = [_address(n) for n in names] if names else in_progress(session)
    last: dict[str, PassResult] = {}
    passes = 0
    while targets:
        for address in list(targets):
            result = step(session, address, echo=echo)
            last[address] = result
            if result.done or (stop_when_paused and result.waiting):
                targets.remove(address)
        passes += 1
        if not targets or (max_passes is not None and passes >= max_passes):
            break
        due = [r.due_at for a, r in last.items() if a in targets and r.due_at]
        nap = min(due) - clock() if due else MAX_NAP_S
        sleep(max(0.02, min(MAX_NAP_S, nap)))
    return list(last.values())
