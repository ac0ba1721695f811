"""The alerting service: every producer's alerts go through it (refresh drift, rollouts,
and — next — monitors and budgets).

``observe`` runs one alert's lifecycle step (``alerts.lifecycle.step``) and persists it with
the deliveries it decided in one compare-and-set transaction (``state.alerting``): two
overlapping runs that read the same row never notify twice. A notification of a silenced
alert is recorded as ``suppressed``, not sent. ``deliver`` sends the outbox's due rows
through the channels' providers (``peers.notify``), one attempt each: a retryable failure
(``DeliveryError.retryable``; any other provider error too) waits ``alerts.delivery.backoff``
for a later run, a final one (a 4xx other than 429) is kept as ``failed`` — nothing is
dropped, ``mlx alerts`` lists both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from alerts import AlertKey, AlertRecord, AlertState, Condition, Notify, Rule, Step, step
from alerts.delivery import (
    LEASE_S,
    ChannelPolicy,
    backoff,
    idempotency_key,
    notification,
)
from common.diagnostics import MlxError
from common.durations import DurationError, parse_duration
from contract import AlertMessage, DeliveryError, Peers, ProviderError, iso
from state.alerting import AlertStore, Delivery, DeliveryStatus, Outbox, Silence

Clock = Callable[[], float]


class AlertingError(MlxError):
    pass


@dataclass
class DeliveryReport:
    delivered: list[Outbox] = field(default_factory=list)
    retrying: list[tuple[Outbox, str]] = field(default_factory=list)
    failed: list[tuple[Outbox, str]] = field(default_factory=list)


def message_json(message: AlertMessage) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(message):
        value = getattr(message, f.name)
        out[f.name] = dict(value) if f.name in ("details", "labels") else value
    return out


def message_of(payload: dict[str, Any]) -> AlertMessage:
    known = {f.name for f in fields(AlertMessage)}
    return AlertMessage(**{k: v for k, v in payload.items() if k in known})


def channel_policy(spec: Any) -> ChannelPolicy:
    """A channel's ``repeat_interval`` / ``send_resolved`` from its resolved spec."""
    if not spec:
        return ChannelPolicy()
    try:
        repeat = parse_duration(str(spec.get("repeat_interval") or "4h"))
    except DurationError:
        repeat = 4 * 3600.0
    return ChannelPolicy(repeat, bool(spec.get("send_resolved", True)))


class Alerting:
    """One workspace's alerts: its rows in ``store``, its channels reached through ``peers``."""

    def __init__(
        self,
        store: AlertStore,
        peers: Peers | None,
        *,
        clock: Clock = time.time,
        policy: Callable[[str], ChannelPolicy] | None = None,
    ):
        self.store = store
        self.peers = peers
        self.clock = clock
        self._policy = policy

    def policy(self, channel: str) -> ChannelPolicy:
        if self._policy is not None:
            return self._policy(channel)
        return channel_policy(self.peers.spec(channel) if self.peers else None)

    # -- the lifecycle --------------------------------------------------------------------
    def observe(
        self,
        key: AlertKey,
        condition: Condition,
        message: AlertMessage,
        channels: Sequence[str],
        *,
        for_runs: int = 1,
        now: float | None = None,
    ) -> Step:
        """One run's observation of ``key``: the step taken (and persisted), and what it
        enqueued for ``channels``. Safe against a concurrent run doing the same."""
        now = self.clock() if now is None else now
        policies = {c: self.policy(c) for c in channels}
        rule = Rule(
            for_runs=for_runs,
            repeat_interval_s=min(
                (p.repeat_interval_s for p in policies.values()), default=4 * 3600.0
            ),
            send_resolved=any(p.send_resolved for p in policies.values()) if policies else True,
        )
        for _attempt in range(8):
            row = self.store.get(str(key))
            record = _record(row)
            taken = step(record, condition, now, rule)
            if taken.record == record:
                return taken
            deliveries = self._deliveries(key, message, record, taken, now, policies)
            stored = message_json(message) if condition is not Condition.OK else _last(row)
            ident = {"resource": key.resource, "version": key.version, "signal": key.signal}
            if self.store.transition(
                str(key),
                ident,
                None if row is None else int(row["rev"]),
                _fields(taken.record),
                stored,
                deliveries,
                now,
            ):
                return taken
        raise AlertingError(f"alert {key}: too many concurrent updates; try again")

    def _deliveries(
        self,
        key: AlertKey,
        message: AlertMessage,
        before: AlertRecord,
        taken: Step,
        now: float,
        policies: dict[str, ChannelPolicy],
    ) -> list[Delivery]:
        if taken.notify is None:
            return []
        resolved = taken.notify is Notify.RESOLVED
        since = before.since if resolved else taken.record.since
        sent = notification(key, message, taken.record, taken.notify, now, since=since)
        silenced = any(s.matches(str(key)) for s in self.store.silences(now))
        status = DeliveryStatus.SUPPRESSED if silenced else DeliveryStatus.PENDING
        out = []
        for channel, policy in policies.items():
            if resolved and not policy.send_resolved:
                continue
            ik = idempotency_key(key, taken.notify, now, channel)
            payload = message_json(replace(sent, idempotency_key=ik))
            out.append(Delivery(channel, str(taken.notify), payload, ik, status))
        return out

    def event(
        self, key: AlertKey, message: AlertMessage, channels: Sequence[str], *, at: float
    ) -> int:
        """A one-shot notification (a rollout aborted at ``at``): enqueued once per channel —
        ``at`` makes it the same delivery when a pass is replayed. How many were new."""
        sent = replace(
            message,
            key=str(key),
            starts_at=at,
            labels={"alertname": key.signal, "resource": key.resource, "signal": key.signal}
            | ({"version": key.version} if key.version else {})
            | {"severity": message.severity}
            | ({"owner": message.owner} if message.owner else {}),
        )
        silenced = any(s.matches(str(key)) for s in self.store.silences(self.clock()))
        status = DeliveryStatus.SUPPRESSED if silenced else DeliveryStatus.PENDING
        new = 0
        for channel in channels:
            ik = idempotency_key(key, "event", at, channel)
            payload = message_json(replace(sent, idempotency_key=ik))
            delivery = Delivery(channel, "event", payload, ik, status)
            new += self.store.enqueue(str(key), delivery, at)
        return new

    # -- delivery -------------------------------------------------------------------------
    def deliver(self, now: float | None = None) -> DeliveryReport:
        """Send what is due; each row once per run, claimed so a concurrent run skips it."""
        now = self.clock() if now is None else now
        report = DeliveryReport()
        for row in self.store.due(now):
            if not self.store.claim(row, now, LEASE_S):
                continue
            attempts = row.attempts + 1
            try:
                if self.peers is None:
                    raise ProviderError("no providers in this run")
                self.peers.notify(row.channel, message_of(row.payload))
            except DeliveryError as exc:
                if exc.retryable:
                    self._retry_later(row, now, backoff(attempts, exc.retry_after), exc, report)
                else:
                    self.store.settle(row.id, DeliveryStatus.FAILED, now=now, error=str(exc))
                    report.failed.append((row, str(exc)))
            except (ProviderError, OSError) as exc:
                self._retry_later(row, now, backoff(attempts), exc, report)
            else:
                self.store.settle(row.id, DeliveryStatus.DELIVERED, now=now)
                report.delivered.append(row)
        return report

    def _retry_later(
        self, row: Outbox, now: float, wait: float, exc: Exception, report: DeliveryReport
    ) -> None:
        """Keep a delivery that failed in a way a later run may not: due again after ``wait``."""
        self.store.settle(
            row.id, DeliveryStatus.PENDING, now=now, next_attempt_at=now + wait, error=str(exc)
        )
        report.retrying.append((row, str(exc)))

    def test(self, channel: str) -> None:
        """Send a test message to ``channel`` now (not through the outbox): raises if it fails."""
        if self.peers is None:
            raise ProviderError("no providers in this run")
        now = self.clock()
        key = AlertKey(channel, "test")
        message = AlertMessage(
            title=f"mlx test message to {channel}",
            text=f"A test of the alert channel {channel} (`mlx alerts test`). Nothing is wrong.",
            severity="info",
            source=channel,
            investigate="mlx alerts",
        )
        sent = replace(
            message,
            key=str(key),
            starts_at=now,
            labels={"alertname": "test", "resource": channel, "signal": "test", "severity": "info"},
            idempotency_key=idempotency_key(key, "test", now, channel),
        )
        self.peers.notify(channel, sent)


def _record(row: dict[str, Any] | None) -> AlertRecord:
    if row is None:
        return AlertRecord()
    return AlertRecord(
        state=AlertState(row["state"]),
        condition=Condition(row["condition"]),
        streak=int(row["streak"]),
        since=row["since"],
        notified_at=row["notified_at"],
        decided_at=row["decided_at"],
    )


def _fields(record: AlertRecord) -> dict[str, Any]:
    return {
        "state": str(record.state),
        "condition": str(record.condition),
        "streak": record.streak,
        "since": record.since,
        "notified_at": record.notified_at,
        "decided_at": record.decided_at,
    }


def _last(row: dict[str, Any] | None) -> dict[str, Any]:
    return dict(row["message"]) if row else {}


# -- what `mlx alerts` shows and does ------------------------------------------------------
def overview(store: AlertStore, now: float) -> dict[str, Any]:
    """Firing, pending, undelivered (queued, retrying or failed for good) and silenced."""
    rows = store.alerts()

    def alert(row: dict[str, Any]) -> dict[str, Any]:
        message = row["message"] or {}
        return {
            "key": row["key"],
            "resource": row["resource"],
            "version": row["version"],
            "signal": row["signal"],
            "state": row["state"],
            "condition": row["condition"],
            "streak": row["streak"],
            "since": iso(row["since"]),
            "notified_at": iso(row["notified_at"]),
            "title": message.get("title"),
            "owner": message.get("owner"),
            "investigate": message.get("investigate"),
            "silenced": any(s.matches(row["key"]) for s in active),
        }

    active = store.silences(now)
    undelivered = [
        {
            "id": o.id,
            "key": o.alert_key,
            "channel": o.channel,
            "kind": o.kind,
            "status": "undeliverable"
            if o.status == DeliveryStatus.FAILED
            else "retrying"
            if o.attempts
            else "queued",
            "attempts": o.attempts,
            "next_attempt_at": None
            if o.status == DeliveryStatus.FAILED
            else iso(o.next_attempt_at),
            "last_error": o.last_error,
            "created_at": iso(o.created_at),
        }
        for o in store.outbox(DeliveryStatus.PENDING, DeliveryStatus.FAILED)
    ]
    return {
        "firing": [alert(r) for r in rows if r["state"] == AlertState.FIRING],
        "pending": [alert(r) for r in rows if r["state"] == AlertState.PENDING],
        "undelivered": undelivered,
        "silenced": [
            {
                "matcher": s.matcher,
                "until": iso(s.until),
                "reason": s.reason,
                "who": s.who,
                "created_at": iso(s.created_at),
            }
            for s in active
        ],
    }


_KEY = re.compile(r"^[a-z][a-z0-9_-]*\.[A-Za-z0-9_.-]+(@[^/\s]+)?(/[A-Za-z0-9_.-]+)?\*?$")


def silence(
    store: AlertStore, matcher: str, duration: str, reason: str | None, who: str, now: float
) -> tuple[Silence, int]:
    """Silence alerts matching ``matcher`` (a key, or a prefix ending in ``*``) for
    ``duration``; also how many known alerts it matches now."""
    if not _KEY.match(matcher):
        raise AlertingError(
            f"{matcher!r} is not an alert key: write RESOURCE[@VERSION]/SIGNAL "
            "(`mlx alerts` lists them), or a prefix ending in * (monitors.fraud*)"
        )
    try:
        seconds = parse_duration(duration)
    except DurationError as exc:
        raise AlertingError(f"--for {duration!r}: {exc}") from None
    if seconds <= 0:
        raise AlertingError(f"--for {duration!r}: a silence must last longer than 0s")
    made = store.silence(matcher, now + seconds, reason, who)
    return made, sum(made.matches(r["key"]) for r in store.alerts())


def through_outbox(engine: Any, workspace: str) -> Callable[[Any, str, AlertMessage], None]:
    """``EnginePeers.outbox``: a one-shot alert with a key (a rollout aborted or paused) is
    enqueued once, then what is due is delivered; if its own delivery failed, the
    ``ProviderError`` says so — and that it is kept and retried by a later run."""

    def send(peers: Any, channel: str, message: AlertMessage) -> None:
        alerting = Alerting(AlertStore(engine, workspace), peers)
        labels = message.labels
        key = AlertKey(
            labels.get("resource") or message.source or channel,
            labels.get("signal") or "alert",
            labels.get("version"),
        )
        alerting.event(key, message, [channel], at=alerting.clock())
        report = alerting.deliver()
        for row, why in [*report.retrying, *report.failed]:
            if row.alert_key == str(key) and row.channel == channel:
                raise ProviderError(f"{why} (kept in the outbox: `mlx alerts` lists it)")

    return send
