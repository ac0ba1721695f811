"""One run of one alert, decided without I/O (``step``): the state it moves to and whether
it notifies.

The rules (Alertmanager's, with Grafana's "no data is its own state"):

* a run whose condition is not ``ok`` counts towards ``Rule.for_runs``; the alert is
  ``pending`` until that many consecutive runs were not ok, then ``firing`` — and notifies;
* while firing it notifies again only when ``Rule.repeat_interval_s`` passed since the last
  notification, or when the condition changed (a breach that became ``no_data`` is news:
  the signal can no longer be read);
* one ``ok`` run ends it: a firing alert notifies ``resolved`` once (``Rule.send_resolved``),
  a pending one goes back to ``inactive`` silently;
* the same state never notifies twice: a run given a record it already decided on (the
  same ``now`` or earlier, e.g. two overlapping refresh runs that read the same record)
  changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Condition(StrEnum):
    """What a run observed of a signal."""

    OK = "ok"
    BREACH = "breach"  # a threshold was crossed
    NO_DATA = "no_data"  # nothing to judge in the window: never "healthy"
    ERROR = "error"  # the signal could not be read (a reference, a log)


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"  # not ok, for fewer than ``for_runs`` consecutive runs
    FIRING = "firing"


class Notify(StrEnum):
    """The message a run sends, if any."""

    FIRING = "firing"  # it started firing, or its condition changed while firing
    REPEAT = "repeat"  # still firing, ``repeat_interval`` after the last message
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertKey:
    """Which alert: stable across runs (and the ``dedup_key`` / idempotency key sent)."""

    resource: str  # monitors.fraud_drift, budgets.llm_monthly, rollouts.fraud
    signal: str  # data_drift, latency_p95, cost, ...
    version: str | None = None  # the version the signal was measured on

    def __str__(self) -> str:
        at = f"@{self.version}" if self.version is not None else ""
        return f"{self.resource}{at}/{self.signal}"


@dataclass(frozen=True)
class Rule:
    """How an alert behaves (a monitor's or budget's ``for``, the channel's intervals)."""

    for_runs: int = 1
    repeat_interval_s: float = 4 * 3600.0
    send_resolved: bool = True

    def __post_init__(self) -> None:
        if self.for_runs < 1:
            raise ValueError(f"for must be at least 1 run, got {self.for_runs}")
        if self.repeat_interval_s <= 0:
            raise ValueError(f"repeat_interval must be positive, got {self.repeat_interval_s}")


@dataclass(frozen=True)
class AlertRecord:
    """What is kept of one alert between runs."""

    state: AlertState = AlertState.INACTIVE
    condition: Condition = Condition.OK
    #: consecutive runs that were not ok (0 while inactive)
    streak: int = 0
    #: when the current not-ok streak began (epoch s), None while inactive
    since: float | None = None
    #: when the last message was sent (None: never in this streak)
    notified_at: float | None = None
    #: the ``now`` of the last run decided on this record
    decided_at: float | None = None


@dataclass(frozen=True)
class Step:
    record: AlertRecord
    notify: Notify | None = None


def step(record: AlertRecord, condition: Condition, now: float, rule: Rule) -> Step:
    """The alert after one run that observed ``condition`` at ``now``."""
    if record.decided_at is not None and now <= record.decided_at:
        return Step(record)  # already decided: an overlapping or replayed run
    if condition is Condition.OK:
        return _recovered(record, now, rule)
    streak = record.streak + 1
    since = record.since if record.since is not None else now
    base = replace(record, condition=condition, streak=streak, since=since, decided_at=now)
    if record.state is AlertState.FIRING:
        return _still_firing(record, base, condition, now, rule)
    if streak < rule.for_runs:
        return Step(replace(base, state=AlertState.PENDING))
    return Step(replace(base, state=AlertState.FIRING, notified_at=now), Notify.FIRING)


def _still_firing(
    record: AlertRecord, base: AlertRecord, condition: Condition, now: float, rule: Rule
) -> Step:
    if condition is not record.condition:
        return Step(replace(base, notified_at=now), Notify.FIRING)
    if record.notified_at is None or now - record.notified_at >= rule.repeat_interval_s:
        return Step(replace(base, notified_at=now), Notify.REPEAT)
    return Step(base)


def _recovered(record: AlertRecord, now: float, rule: Rule) -> Step:
    quiet = AlertRecord(decided_at=now)
    if record.state is AlertState.FIRING and rule.send_resolved:
        return Step(replace(quiet, notified_at=now), Notify.RESOLVED)
    return Step(quiet)
