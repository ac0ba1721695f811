"""One controller pass over a rollout: pure — state, spec, clock and traffic in; the next
state and what to do out. No I/O here (``controller.rollouts.drive`` does it, through the
pass harness).

Canary (Argo Rollouts' steps): each step sets the candidate's weight, then pauses; a
pause with a duration ends with an analysis of the candidate against stable over the
same window (and looks every ``analysis.interval`` meanwhile), a pause without one
waits for ``mlx rollout promote``. A step without a pause moves on at once. The last
step (or a weight of 100) completes: the candidate becomes stable, the old version is
retired, the alias moves. Shadow mirrors instead of weighting and judges the shadow
answers; A/B splits by sticky key and ends on a sequential decision (docs/statistics.md).
What sets the strategies apart — their steps, what a look measures, the sequential test —
is in ``controller.rollouts`` (``strategy``, ``canary``, ``shadow``, ``ab``); this is the
state machine that walks them all.

"No data" is never "pass": an analysis below ``min_requests`` per variant is
inconclusive, and inconclusive runs past ``inconclusive_limit`` pause the rollout for a
person. Failed runs past ``failure_limit`` abort it (``on_failure: rollback``: the
candidate's weight goes to 0 at once) or pause it (``on_failure: pause``). Past
``timeout`` a rollout pauses and alerts — never left spinning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from alerts import AlertKey
from analysis import Limits, Tally, Verdict, decide, run_verdict
from analysis.base import AnalysisError, Measurement
from analysis.canary import VariantStats
from analysis.runs import Action
from common.durations import parse_duration
from contract import AlertMessage, Traffic, VersionRef
from controller.rollouts import ab
from controller.rollouts.strategy import strategy_of
from controller.state import (
    KEEP_RELEASED,
    Phase,
    RolloutState,
    Waiting,
    same_version,
    variant_name,
)
from specs.rollouts import Rollout, Step

#: How many looks a state keeps for `mlx rollout status` (history keeps every one).
KEEP_LOOKS = 20
#: A look's verdict when it could not be taken (besides ``analysis.Verdict``'s): never a pass.
LOOK_ERROR = "error"
#: The phases of a rollout still in flight (a candidate takes part in the traffic).
IN_FLIGHT = (Phase.PROGRESSING, Phase.PAUSED)


@dataclass(frozen=True)
class Observation:
    """What the controller sees this pass."""

    now: float
    #: per role (stable/candidate/shadow) over ``state.window_from .. now``; ``None`` when
    #: the metrics could not be read (``error`` says why)
    metrics: Mapping[str, VariantStats] | None = None
    error: str | None = None
    #: shadow comparisons over the window: ``analysis.shadow.Pair``s
    pairs: Sequence[Any] | None = None


@dataclass
class Outcome:
    """The next state, and what to do to the world to reach it (in this order)."""

    state: RolloutState
    #: deploy the candidate (it takes no traffic yet)
    deploy: bool = False
    traffic: Traffic | None = None
    retire: list[str] = field(default_factory=list)
    #: move the registry alias to these outputs
    alias: dict[str, Any] | None = None
    #: the alert to raise to the rollout's channel (``spec.alert``), if any
    alert: AlertMessage | None = None
    #: what happened in this pass, for history (empty: nothing changed)
    events: list[str] = field(default_factory=list)
    #: when the next pass has something to do (None: waiting for a person, or done)
    due_at: float | None = None

    @property
    def done(self) -> bool:
        return self.state.phase in (Phase.COMPLETED, Phase.ABORTED)


def seconds(duration: str | None) -> float | None:
    """Seconds in a spec duration (``common.durations``' grammar); None stays None."""
    return None if duration is None else parse_duration(duration)


def steps_of(spec: Rollout) -> list[Step]:
    """The steps a strategy walks (direct: one step to 100)."""
    return strategy_of(spec).steps(spec)


# -- entry points ----------------------------------------------------------------------
def start(
    address: str,
    spec: Rollout,
    stable: dict[str, Any] | None,
    candidate: dict[str, Any],
    now: float,
    previous: RolloutState | None = None,
    rollback: bool = False,
) -> Outcome:
    """Begin releasing ``candidate`` (the gates passed: the engine checked them).

    Three cases end at once, without steps: a first release (nothing serves yet), the
    stable version itself (a candidate in flight withdrawn by going back to the stable
    bytes), and — in a ``rollback`` (``mlx rollback``) — a version this rollout made
    stable before: all traffic moves in one pass, create-before-destroy (Argo Rollouts'
    fast-track rollback). Anywhere else a version that served before walks the steps
    again: after a rollback from v2, the next apply of v2's bytes is a canary, not v2 for
    everyone at once."""
    return _with_traffic(_start(address, spec, stable, candidate, now, previous, rollback))


def _start(
    address: str,
    spec: Rollout,
    stable: dict[str, Any] | None,
    candidate: dict[str, Any],
    now: float,
    previous: RolloutState | None,
    rollback: bool,
) -> Outcome:
    steps = steps_of(spec)
    timeout = seconds(spec.timeout)
    state = RolloutState(
        address=address,
        subject=spec.subject,
        strategy=spec.strategy,
        endpoint=spec.endpoint,
        alias=spec.alias,
        stable=stable,
        candidate=candidate,
        steps=len(steps),
        started_at=now,
        deadline=now + timeout if timeout else None,
        tally=Tally().to_dict(),
        released_before=list(previous.released_before) if previous is not None else [],
    )
    events = []
    retire: list[str] = []
    superseded = None
    if previous is not None and previous.candidate and previous.phase in IN_FLIGHT:
        old = previous.candidate_variant
        if old and old != variant_name(candidate):
            superseded = old
            retire.append(old)
            events.append(f"candidate {old} superseded by {variant_name(candidate)}: retired")
    if stable is None:
        out = _complete(
            state, spec, now, "first release: nothing served before, no traffic to split"
        )
    elif variant_name(stable) == variant_name(candidate):
        if superseded:
            why = f"candidate {superseded} withdrawn: the subject is back to the stable version"
        elif previous is None:  # the endpoint, created with this rollout, serves it already
            why = "first release: the endpoint serves it already, no traffic to split"
        else:
            why = "it is the stable version already"
        out = _complete(state, spec, now, why)
    elif rollback and served_before(state, candidate):
        name = variant_name(candidate)
        out = _complete(
            state,
            spec,
            now,
            f"rolled back: all traffic at once, {name} served this endpoint before",
        )
        out.deploy = True  # create before destroy: the old version is back before stable goes
    else:
        out = _enter(state, spec, 0, now, events)
        out.deploy = True
        out.retire = retire
        return out
    out.retire = retire + [v for v in out.retire if v not in retire]
    out.events = events + out.events
    return out


def served_before(state: RolloutState, candidate: dict[str, Any]) -> bool:
    """Whether this rollout made ``candidate`` stable before (going back to it is a rollback)."""
    return any(same_version(old, candidate) for old in state.released_before)


def advance(spec: Rollout, state: RolloutState, obs: Observation) -> Outcome:
    """One pass: act on requests (promote, abort, retry), the deadline, due analyses and
    ended pauses.

    Every outcome carries the traffic the recorded state wants (``Outcome.traffic``), so a
    controller killed between recording a step and setting its weights converges on its
    next pass, whatever that pass decides."""
    return _with_traffic(_advance(spec, state, obs))


def _advance(spec: Rollout, state: RolloutState, obs: Observation) -> Outcome:
    if state.requested == "retry":  # an aborted (or paused) one starts again
        return retry(spec, replace(state, requested=None, requested_by=None), obs.now)
    if state.phase in (Phase.COMPLETED, Phase.ABORTED):
        # settled: re-assert what the record says (the alias too, when it completed)
        done = state.phase is Phase.COMPLETED and spec.alias and state.stable
        return Outcome(state, alias=dict(state.stable or {}) if done else None)
    state = replace(state, looks=list(state.looks), tally=dict(state.tally))
    now = obs.now
    asked = f"requested by {state.requested_by or 'a request'}"
    if state.requested == "abort":
        state = replace(state, requested=None, requested_by=None)
        return _abort(state, spec, now, asked, "info")
    if state.requested in ("promote", "promote-full"):
        full = state.requested == "promote-full"
        state = replace(
            state, requested=None, requested_by=None, phase=Phase.PROGRESSING, waiting=None
        )
        if state.deadline is not None and now >= state.deadline:
            # a person took over a rollout past its timeout: it no longer bounds the rest
            state = replace(state, deadline=None)
        if full:
            return _complete(state, spec, now, f"promoted to 100% (--full), {asked}")
        return _next_step(state, spec, now, f"promoted, {asked}")
    if state.phase is Phase.PAUSED:
        return Outcome(state)  # waits for a person, whatever the clock says
    if state.deadline is not None and now >= state.deadline:
        return _pause(state, spec, now, Waiting.TIMEOUT, f"past its timeout ({spec.timeout})")
    if state.pause_until is not None and now >= state.pause_until:
        # the end of a pause moves on only on a passed analysis (when there is one); it
        # comes first, so an interval look due at the same moment does not pre-empt it
        if spec.analysis is not None or strategy_of(spec).sequential:
            return _look(state, spec, obs, end_of_pause=True)
        return _next_step(state, spec, now, "pause ended")
    if state.next_look_at is not None and now >= state.next_look_at:
        return _look(state, spec, obs)
    return Outcome(state, due_at=_due(state))


def promote(state: RolloutState, full: bool) -> RolloutState:
    return replace(state, requested="promote-full" if full else "promote")


def abort(state: RolloutState) -> RolloutState:
    return replace(state, requested="abort")


def retry(spec: Rollout, state: RolloutState, now: float) -> Outcome:
    """Start an aborted (or paused) rollout again from its first step."""
    candidate = state.candidate
    if candidate is None or state.phase is Phase.COMPLETED:
        raise ValueError("nothing to retry: this rollout has no candidate in flight")
    stable = state.stable if state.phase is not Phase.COMPLETED else None
    # what the request records ("retried by carol: …") says it was retried
    return start(state.address, spec, stable, candidate, now, previous=state)


# -- steps -----------------------------------------------------------------------------
def _enter(
    state: RolloutState, spec: Rollout, index: int, now: float, events: list[str]
) -> Outcome:
    steps = steps_of(spec)
    step = steps[index]
    if step.weight == 100:
        return _complete(state, spec, now, f"step {index + 1}/{len(steps)}: weight 100", events)
    weight, mirror = step.weight or 0, step.mirror or 0
    duration = seconds(step.duration)
    interval = seconds(spec.analysis.interval) if spec.analysis else None
    state = replace(
        state,
        phase=Phase.PROGRESSING,
        waiting=None,
        step=index,
        step_started_at=now,
        window_from=now,
        pause_until=now + duration if duration is not None else None,
        next_look_at=now + interval if interval and duration and interval < duration else None,
        weight=weight,
        mirror=mirror,
    )
    what = f"mirror {mirror}%" if mirror else f"weight {weight}"
    label = f"step {index + 1}/{len(steps)}: {what}"
    if step.manual:
        state = replace(state, phase=Phase.PAUSED, waiting=Waiting.PROMOTE)
        label += ", paused until `mlx rollout promote`"
    elif duration is not None:
        label += f", pause {step.duration}"
    sequential = strategy_of(spec).sequential
    if sequential:  # the split holds until the sequential test decides
        every = interval or 60.0
        state = replace(state, pause_until=None, next_look_at=now + every)
        label += f", deciding on {spec.decision.metric if spec.decision else 'the outcome'}"
    state.message = label
    out = Outcome(state, traffic=traffic_of(state), events=[*events, label])
    if not step.manual and duration is None and not sequential:
        # no pause: straight on (this step's traffic is set first)
        nxt = _next_step(state, spec, now, "no pause")
        nxt.traffic = nxt.traffic or out.traffic
        nxt.events = out.events + nxt.events
        nxt.deploy = out.deploy or nxt.deploy
        return nxt
    out.due_at = _due(state)
    return out


def _next_step(state: RolloutState, spec: Rollout, now: float, why: str) -> Outcome:
    index = state.step + 1
    if index >= len(steps_of(spec)):
        return _complete(state, spec, now, why)
    return _enter(state, spec, index, now, [])


def _complete(
    state: RolloutState, spec: Rollout, now: float, why: str, events: list[str] | None = None
) -> Outcome:
    old = state.stable_variant
    new = state.candidate_variant
    assert new is not None
    done = replace(
        state,
        released_before=_released_before(state),
        step=max(0, state.steps - 1),
        phase=Phase.COMPLETED,
        waiting=None,
        stable=state.candidate,
        weight=0,
        mirror=0,
        pause_until=None,
        next_look_at=None,
        message=f"completed: {new} serves everything ({why})",
    )
    return Outcome(
        done,
        retire=[old] if state.endpoint and old and old != new else [],
        alias=dict(state.candidate or {}) if spec.alias else None,
        events=[*(events or []), done.message],
    )


def _released_before(state: RolloutState) -> list[dict[str, Any]]:
    """The versions made stable before, once the candidate becomes stable (newest last)."""
    earlier = [dict(old) for old in state.released_before]
    if state.stable and not same_version(state.stable, state.candidate):
        earlier = [old for old in earlier if not same_version(old, state.stable)]
        earlier.append(dict(state.stable))
    return [old for old in earlier if not same_version(old, state.candidate)][-KEEP_RELEASED:]


def _abort(state: RolloutState, spec: Rollout, now: float, why: str, severity: str) -> Outcome:
    stable = state.stable_variant
    out = replace(
        state,
        phase=Phase.ABORTED,
        waiting=None,
        weight=0,
        mirror=0,
        pause_until=None,
        next_look_at=None,
        aborted_fingerprint=(state.candidate or {}).get("fingerprint"),
        message=f"aborted: {why}",
    )
    candidate = state.candidate_variant
    return Outcome(
        out,
        retire=[candidate] if candidate and candidate != stable else [],
        alert=_alert(out, spec, "aborted", why, severity),
        events=[out.message],
    )


def _pause(state: RolloutState, spec: Rollout, now: float, waiting: Waiting, why: str) -> Outcome:
    out = replace(state, phase=Phase.PAUSED, waiting=waiting, message=f"paused: {why}")
    return Outcome(
        out,
        alert=_alert(out, spec, "paused", why, "warning"),
        events=[out.message],
    )


# -- analysis --------------------------------------------------------------------------
def _look(
    state: RolloutState, spec: Rollout, obs: Observation, end_of_pause: bool = False
) -> Outcome:
    now = obs.now
    strategy = strategy_of(spec)
    limits = Limits.of(spec.analysis) if spec.analysis else Limits()
    tally = Tally.from_dict(state.tally) if state.tally else Tally()
    look: dict[str, Any] = {"at": now, "from": state.window_from, "step": state.step + 1}
    if obs.metrics is None:
        tally = tally.record_error()
        look.update(verdict=LOOK_ERROR, reason=obs.error or "metrics could not be read")
        measurements: list[Measurement] = []
    else:
        try:
            measurements = strategy.measure(spec, obs.metrics, obs.pairs)
        except AnalysisError as exc:
            measurements = []
            tally = tally.record_error()
            look.update(verdict=LOOK_ERROR, reason=str(exc))
        else:
            if measurements or not strategy.sequential:
                verdict = run_verdict(measurements)  # none taken: inconclusive, never a pass
            else:
                verdict = Verdict.PASS  # an A/B without guardrails: the sequential test decides
            if not measurements:
                look["reason"] = "nothing could be measured in the window"
            if strategy.sequential and verdict is not Verdict.FAIL:  # guardrails first
                verdict, decided = ab.decide(spec, state, dict(obs.metrics), look)
                if decided is not None:
                    state = replace(state, ab=decided.state.to_dict())
                    return _ab_ends(state, spec, now, decided, look)
            tally = tally.record(verdict)
            look.update(verdict=str(verdict), requests=_requests(obs))
        look["measurements"] = [m.as_dict() for m in measurements]
    looks = [*state.looks, look][-KEEP_LOOKS:]
    state = replace(state, tally=tally.to_dict(), looks=looks, window_from=now)
    decision = decide(tally, limits)
    summary = _summary(look)
    if decision.action is Action.ABORT:
        if spec.on_failure == "pause":
            return _pause(state, spec, now, Waiting.FAILURE, f"{summary} ({decision.reason})")
        return _abort(state, spec, now, f"{summary} ({decision.reason})", "critical")
    if decision.action is Action.PAUSE:
        return _pause(state, spec, now, Waiting.INCONCLUSIVE, f"{summary} ({decision.reason})")
    interval = seconds(spec.analysis.interval) if spec.analysis else None
    if end_of_pause and look["verdict"] == str(Verdict.PASS) and not strategy.sequential:
        out = _next_step(state, spec, now, "analysis passed")
        out.events.insert(0, f"step {state.step + 1}: {summary}")
        return out
    if end_of_pause and not strategy.sequential:
        # inconclusive within its limit, or an error: look again after the same pause
        step = steps_of(spec)[state.step]
        again = seconds(step.duration) or interval or 60.0
        state = replace(state, pause_until=now + again)
    nxt = now + interval if interval else None
    if strategy.sequential and nxt is None:
        nxt = now + (seconds(steps_of(spec)[0].duration) or 60.0)
    state = replace(state, next_look_at=nxt)
    return Outcome(state, events=[f"step {state.step + 1}: {summary}"], due_at=_due(state))


def _ab_ends(
    state: RolloutState, spec: Rollout, now: float, result: Any, look: dict[str, Any]
) -> Outcome:
    """The sequential test decided: the candidate wins (completed) or stable does (aborted)."""
    effect = ab.effect(look)
    looks = [*state.looks, {**look, "verdict": str(result.verdict)}][-KEEP_LOOKS:]
    state = replace(state, looks=looks)
    if ab.candidate_won(result):
        out = _complete(state, spec, now, f"A/B decided for the candidate: {effect}")
        out.alert = _alert(out.state, spec, "decided", f"the candidate wins: {effect}", "info")
        return out
    return _abort(state, spec, now, f"A/B decided for stable: {effect}", "info")


# -- helpers ---------------------------------------------------------------------------
def traffic_of(state: RolloutState) -> Traffic | None:
    """The traffic ``state`` records: stable alone once settled, else the step's split."""
    stable = state.stable_variant
    if stable is None or state.endpoint is None:
        return None
    if state.phase in (Phase.COMPLETED, Phase.ABORTED):
        return Traffic(stable)
    return Traffic(stable, state.candidate_variant, state.weight, state.mirror)


def _with_traffic(out: Outcome) -> Outcome:
    """``out``, its traffic set to what its state records (every pass re-asserts it)."""
    out.traffic = traffic_of(out.state)
    return out


def _due(state: RolloutState) -> float | None:
    times = [t for t in (state.pause_until, state.next_look_at, state.deadline) if t]
    if state.phase is Phase.PAUSED:
        return None
    return min(times) if times else None


def _requests(obs: Observation) -> dict[str, int]:
    return {role: stats.requests for role, stats in (obs.metrics or {}).items()}


def _summary(look: dict[str, Any]) -> str:
    """A look in one line: its verdict, and each metric's value against its bound."""
    if look.get("verdict") == LOOK_ERROR:
        return f"analysis could not be taken: {look.get('reason')}"
    parts = [m["reason"] for m in look.get("measurements", []) if m.get("reason")]
    if not parts and look.get("reason"):
        parts = [str(look["reason"])]
    ab = look.get("ab")
    if ab and look.get("verdict") == str(Verdict.INCONCLUSIVE):
        parts.append(str(ab["reason"]))  # why the A/B cannot decide: a mismatch, no price
    head = f"analysis {look['verdict']}"
    return head + (" (" + "; ".join(parts) + ")" if parts else "")


def _alert(state: RolloutState, spec: Rollout, what: str, why: str, severity: str) -> AlertMessage:
    subject = state.subject
    label = VersionRef.of(state.candidate).label
    name = f"{subject} {label}" if label is not None else subject
    address = state.address
    look = state.looks[-1] if state.looks else None
    detail = ""
    if look and look.get("measurements"):
        failed = [m for m in look["measurements"] if m.get("verdict") != Verdict.PASS]
        detail = " ".join(f"{m['metric']}: {m['reason']}." for m in failed)
    endpoint = (state.endpoint or "").split(".", 1)[-1]
    look_closer = f"`mlx rollout status {address.split('.', 1)[-1]}`" + (
        f", `mlx logs {endpoint} --since 1h`" if endpoint else ""
    )
    short = address.split(".", 1)[-1]
    then = (
        f" Then: `mlx rollout promote {short}` to go on, `mlx rollout abort {short}` to send "
        f"all traffic back to the stable version, or `mlx rollout retry {short}`."
        if state.phase is Phase.PAUSED
        else ""
    )
    text = (
        f"The rollout of {name} was {what}: {why}. {detail} Owner: {spec.owner}. "
        f"Look closer: {look_closer}.{then}"
    ).replace("  ", " ")
    key = AlertKey(address, f"rollout_{what}", label)
    return AlertMessage(
        title=f"{address} {what}: {name}",
        text=text,
        severity=severity,
        source=address,
        owner=spec.owner,
        details={"phase": str(state.phase), "look": look, "owner": spec.owner},
        # the alert lifecycle's key: the engine sends it through the outbox (retried, kept)
        key=str(key),
        labels={
            "alertname": key.signal,
            "resource": address,
            "signal": key.signal,
            "severity": severity,
            **({"version": label} if label is not None else {}),
            **({"owner": spec.owner} if spec.owner else {}),
        },
        investigate=f"mlx rollout status {short}",
    )
