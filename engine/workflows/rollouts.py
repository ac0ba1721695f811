"""Driving rollouts after ``mlx apply`` started them: ``mlx rollout run``, ``apply --wait``,
and the ``promote``/``abort``/``retry`` requests.

A pass takes the state lock (two controllers never advance the same rollout), reads the
rollout as it was applied (its record: the spec and versions ``mlx apply`` released, not
the spec files, which belong to the next apply), and runs one pass of its controller — the
pass harness (``controller.harness``), reached through the provider's ``Controlled``
capability, with a ledger (``engine.apply.recording.StepLedger``) that writes the record.
Each pass that changes something is a state version (operation ``rollout``, or the
request's name) with the actor and the step; a pass that only waits writes nothing.
Safe to run from a schedule: every step is level-triggered and recorded before and after
it is taken, so a controller killed at any moment resumes from the recorded step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from common.diagnostics import MlxError, did_you_mean
from contract import Completion, ProviderError, capability
from engine.apply.recording import StepLedger
from engine.plugins import ProviderSet, prior_of
from engine.session import Session
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
    #: a request's recorded reason (``--reason``, or "promoted by <actor>")
    reason: str | None = None
    #: in flight: what it waits for, and until when (``engine.render.rollout.wait_line``)
    waiting_for: str | None = None

    @property
    def said(self) -> bool:
        """Whether its events already told where it ended (its message is one of them)."""
        return bool(self.message) and self.message in self.events

    def closing_line(self) -> str | None:
        """The one line that ends a report on this rollout, when its events did not say it:
        what a person must do, where it stands, or how it ended before this run."""
        if self.waiting or not self.done:
            return f"{self.address}: {self.waiting_for}" if self.waiting_for else None
        if self.said:
            return None
        return f"{self.address}: {self.message or self.phase}"


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


#: how a request reads in history: "promoted by alice", "aborted by bob: …"
_DONE = {
    "promote": "promoted",
    "promote-full": "promoted to 100% (--full)",
    "abort": "aborted",
    "retry": "retried",
}


@dataclass(frozen=True)
class Request:
    """A person's ``promote``/``promote-full``/``abort``/``retry``: who, and why."""

    name: str
    actor: str
    #: as given (``--reason``); ``None``: the default, :attr:`reason`
    given: str | None = None

    @property
    def by(self) -> str:
        """Who asked, and why: ``bob: p95 doubled`` (``bob``)."""
        return f"{self.actor}: {self.given}" if self.given else self.actor

    @property
    def line(self) -> str:
        """The request in history: ``aborted by bob: p95 doubled`` (``aborted by bob``)."""
        return f"{_DONE.get(self.name, self.name)} by {self.by}"

    @property
    def reason(self) -> str:
        """What is recorded as the reason: the one given, or ``promoted by alice``."""
        return self.given or self.line

    def summary(self) -> dict[str, Any]:
        return {"request": self.name, "actor": self.actor, "reason": self.reason}


def step(
    session: Session,
    name: str,
    *,
    operation: str = "rollout",
    request: str | None = None,
    reason: str | None = None,
    echo: Echo = lambda _line: None,
) -> PassResult:
    """One pass over one rollout, under the lock; ``request``: promote, promote-full, abort,
    retry — recorded in its own state version with the actor and ``reason`` (default:
    "promoted by <actor>"): in the version's message and summary, and first among the
    rollout's events (what `mlx history`, `mlx show` and `mlx rollout status` list)."""
    address = _address(name)
    asked = None
    if request is not None:
        given = (reason or "").strip() or None
        asked = Request(request, session.actor, given)
    with session.writer(operation) as writer:
        rec = _record(writer, address)
        if asked is None and rec.status != Status.IN_PROGRESS:
            out = rec.outputs
            return PassResult(address, str(out.get("phase")), str(out.get("message") or ""), True)
        providers = ProviderSet.for_session(session, writer.record)
        try:
            return _pass(session, writer, providers, rec, operation, asked, echo)
        finally:
            providers.close()


def _with_request(rec: Record, asked: Request | None) -> dict[str, Any]:
    """The rollout's outputs, carrying ``request`` for the controller's pure step (or
    refusing it): promote, promote-full, abort, retry."""
    from controller.state import Phase, RolloutState

    outputs = dict(rec.outputs)
    if asked is None:
        return outputs
    request = asked.name
    if "address" not in outputs:
        raise MlxError(f"{rec.address} does not drive an endpoint: nothing to {request}")
    phase = RolloutState.from_outputs(outputs).phase
    if request == "retry":
        if phase not in (Phase.ABORTED, Phase.PAUSED):
            raise MlxError(f"{rec.address} is {phase}: only an aborted or paused one is retried")
    elif phase in (Phase.COMPLETED, Phase.ABORTED):
        raise MlxError(f"{rec.address} is {phase}: nothing to {request}")
    outputs["requested"] = request
    outputs["requested_by"] = asked.by
    return outputs


class _Version:
    """The state version a pass writes, begun only when the pass changes something."""

    def __init__(self, session: Session, writer: StateWriter, operation: str):
        self.session, self.writer, self.operation = session, writer, operation
        self.serial: int | None = None

    def begin(self) -> None:
        if self.serial is None:
            self.serial = self.writer.begin(
                self.operation, actor=self.session.actor, git_sha=self.session.git_sha
            )


def _pass(
    session: Session,
    writer: StateWriter,
    providers: ProviderSet,
    rec: Record,
    operation: str,
    asked: Request | None,
    echo: Echo,
) -> PassResult:
    """One pass of the rollout's controller through the harness (``controller.harness``),
    recording through a ledger of its own state version (``StepLedger.for_pass``)."""
    from controller.harness import Controlled
    from controller.state import RolloutState

    request = asked.name if asked else None
    outputs = _with_request(rec, asked)
    try:
        provider = providers.get(rec.provider, rec.address)
        controlled = capability(provider, Controlled, f"drive {rec.address}")
    except ProviderError as exc:
        raise MlxError(f"{rec.address}: {exc}") from exc
    version = _Version(session, writer, operation)
    ledger = StepLedger.for_pass(
        writer,
        providers,
        rec,
        request or "step",
        opening=version.begin,
        request=asked.line if asked else None,
    )
    if asked is not None:
        version.begin()
    try:
        result = controlled.resume(prior_of(rec, outputs), ledger)
    except (ProviderError, OSError, ValueError) as exc:
        if version.serial is not None:
            summary: dict[str, Any] = {"rollout": rec.address}
            if asked is not None:
                summary.update(asked.summary(), events=[asked.line])
            writer.note(rec.address, operation, str(exc))
            writer.finish(VersionStatus.FAILED, summary, str(exc))
        raise MlxError(f"{rec.address}: {exc}") from exc
    new = {k: v for k, v in result.outputs.items() if k != "events"}
    events = ledger.lines(list(result.outputs.get("events") or []))
    done = result.completion is Completion.DONE
    changed = ledger.written is not None
    if changed:
        summary = {"rollout": rec.address, "phase": new.get("phase"), "events": events}
        message = new.get("message")
        if asked is not None:
            summary.update(asked.summary())
            message = f"{asked.line}; {message}" if message else asked.line
        writer.finish(VersionStatus.COMPLETE, summary, message)
        for event in events:
            echo(f"{rec.address}: {event}")
    from engine.render.rollout import wait_line

    state = RolloutState.from_outputs(new)
    analysed = bool(rec.attributes.get("analysis")) or state.strategy == "ab"
    return PassResult(
        rec.address,
        str(state.phase),
        state.message,
        done,
        waiting=str(state.waiting) if state.waiting else None,
        events=events,
        changed=changed,
        due_at=_due(state),
        reason=asked.reason if asked else None,
        waiting_for=wait_line(new, analysed=analysed),
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
    person. ``names``: these rollouts (default: every rollout in progress).

    Every line is said once: each step as it is taken, what a rollout waits for (and until
    when) whenever that changes, and how one ended when no step said it. What a person must
    do next is the caller's to say (``PassResult.closing_line``). The results carry every
    event of the run."""
    targets = [_address(n) for n in names] if names else in_progress(session)
    drive = _Drive(session, echo, stop_when_paused)
    passes = 0
    while targets:
        drive.one_pass(targets)
        passes += 1
        if not targets or (max_passes is not None and passes >= max_passes):
            break
        due = [r.due_at for a, r in drive.last.items() if a in targets and r.due_at]
        nap = min(due) - clock() if due else MAX_NAP_S
        sleep(max(0.02, min(MAX_NAP_S, nap)))
    for result in drive.last.values():
        if result.done and not result.said:
            echo(f"{result.address}: {result.message or result.phase}")
    return list(drive.last.values())


class _Drive:
    """What ``run`` remembers between passes: each rollout's last result (carrying every
    event so far) and the wait line last said for it."""

    def __init__(self, session: Session, echo: Echo, stop_when_paused: bool):
        self.session, self.echo, self.stop_when_paused = session, echo, stop_when_paused
        self.last: dict[str, PassResult] = {}
        self.events: dict[str, list[str]] = {}
        self.waits: dict[str, str | None] = {}

    def one_pass(self, targets: list[str]) -> None:
        """One step of each target; drops from ``targets`` each that is done or paused."""
        for address in list(targets):
            result = step(self.session, address, echo=self.echo)
            self.events.setdefault(address, []).extend(result.events)
            self.last[address] = replace(result, events=list(self.events[address]))
            if result.done or (self.stop_when_paused and result.waiting):
                targets.remove(address)
            elif result.waiting_for != self.waits.get(address) and not result.waiting:
                self.waits[address] = result.waiting_for
                if result.waiting_for:
                    self.echo(f"{address}: {result.waiting_for}")
