"""The alert lifecycle with its outbox, against a real HTTP channel on 127.0.0.1 that fails
on purpose, on SQLite and PostgreSQL: kept, retried on later runs, delivered once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from alerts import AlertKey, AlertState, Condition, Notify
from alerts.delivery import BACKOFF_BASE_S
from contract import AlertMessage
from engine.alerting import Alerting
from state.alerting import AlertStore, DeliveryStatus
from tests.alerts.conftest import Channel, webhook_peers

KEY = AlertKey("monitors.fraud_drift", "data_drift", "3")
MESSAGE = AlertMessage(
    title="monitors.fraud_drift: data drift on models.fraud v3",
    text="amount: PSI 0.31 > 0.25 (alert) since the last run",
    severity="critical",
    source="monitors.fraud_drift",
    owner="team-fraud",
    details={"feature": "amount", "psi": 0.31, "threshold": 0.25},
    investigate="mlx show monitors.fraud_drift",
)
T0 = 1_800_000_000.0
ONCALL = ["alerts.oncall"]


def alerting(tmp_path: Path, store: AlertStore, channel: Channel, **spec: Any) -> Alerting:
    return Alerting(store, webhook_peers(tmp_path, channel, **spec), clock=lambda: T0)


@pytest.mark.parametrize(
    ("failure", "wait"),
    [
        ("down", BACKOFF_BASE_S),
        (500, BACKOFF_BASE_S),
        ("429:120", 120.0),  # Retry-After beyond the backoff wins
        ("slow", BACKOFF_BASE_S),
    ],
)
def test_a_failed_delivery_is_kept_retried_later_and_delivered_once(
    tmp_path: Path, store: AlertStore, channel: Channel, failure: Any, wait: float
) -> None:
    service = alerting(tmp_path, store, channel)
    taken = service.observe(KEY, Condition.BREACH, MESSAGE, ONCALL, now=T0)
    assert taken.notify is Notify.FIRING and taken.record.state is AlertState.FIRING
    if failure == "down":
        channel.down()
    else:
        channel.modes = [failure]

    first = service.deliver(T0)
    assert first.delivered == [] and len(first.retrying) == 1
    [row] = store.outbox()
    assert row.status == DeliveryStatus.PENDING and row.attempts == 1
    assert row.next_attempt_at == T0 + wait and row.last_error
    assert "secret-token" not in row.last_error  # the URL's token never reaches state

    # an earlier run than the backoff allows sends nothing
    assert service.deliver(T0 + wait - 1).delivered == []
    if failure == "down":
        channel.up()
    again = service.deliver(T0 + wait)
    assert [r.id for r in again.delivered] == [row.id]
    assert service.deliver(T0 + 10 * wait).delivered == []  # delivered once, never again

    assert len(channel.delivered) == 1
    sent = channel.delivered[0]
    tried = [r["headers"]["Idempotency-Key"] for r in channel.requests]
    assert set(tried) == {row.idempotency_key}  # the same key on every attempt
    body = sent["json"]
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["alerts"][0]["labels"] == {
        "alertname": "data_drift",
        "resource": "monitors.fraud_drift",
        "signal": "data_drift",
        "version": "3",
        "severity": "critical",
        "owner": "team-fraud",
    }
    [done] = store.outbox()
    assert done.status == DeliveryStatus.DELIVERED and done.delivered_at == T0 + wait
    assert done.attempts == 2


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_client_error_is_final_but_kept(
    tmp_path: Path, store: AlertStore, channel: Channel, status: int
) -> None:
    service = alerting(tmp_path, store, channel)
    service.observe(KEY, Condition.BREACH, MESSAGE, ONCALL, now=T0)
    channel.modes = [status]
    report = service.deliver(T0)
    assert len(report.failed) == 1 and report.retrying == []
    [row] = store.outbox()
    assert row.status == DeliveryStatus.FAILED and f"HTTP {status}" in (row.last_error or "")
    assert service.deliver(T0 + 86400).failed == []  # not retried: a 4xx will not heal
    assert len(channel.requests) == 1


def test_for_repeat_and_one_resolved_message(
    tmp_path: Path, store: AlertStore, channel: Channel
) -> None:
    service = alerting(tmp_path, store, channel, repeat_interval="1h")
    hour = 3600.0
    seen = []
    for i, condition in enumerate(
        [Condition.BREACH, Condition.BREACH, Condition.BREACH, Condition.BREACH, Condition.OK]
    ):
        now = T0 + i * 0.5 * hour
        seen.append(service.observe(KEY, condition, MESSAGE, ONCALL, for_runs=2, now=now).notify)
        service.deliver(now)
    # pending, firing, quiet (30 min < 1h), repeat (1h after firing), resolved
    assert seen == [None, Notify.FIRING, None, Notify.REPEAT, Notify.RESOLVED]
    service.observe(KEY, Condition.OK, MESSAGE, ONCALL, now=T0 + 3 * hour)
    service.deliver(T0 + 3 * hour)
    bodies = [r["json"] for r in channel.delivered]
    assert [b["status"] for b in bodies] == ["firing", "firing", "resolved"]
    resolved = bodies[-1]["alerts"][0]
    assert resolved["status"] == "resolved"
    assert resolved["startsAt"] == "2027-01-15T08:00:00Z"  # the first run that failed (T0)
    assert resolved["endsAt"] == "2027-01-15T10:00:00Z"
    assert bodies[-1]["title"].startswith("RESOLVED: ")
    assert {b["alerts"][0]["fingerprint"] for b in bodies} == {
        bodies[0]["alerts"][0]["fingerprint"]
    }  # one alert, one fingerprint
    assert len({r["headers"]["Idempotency-Key"] for r in channel.delivered}) == 3


def test_send_resolved_false_sends_no_resolution(
    tmp_path: Path, store: AlertStore, channel: Channel
) -> None:
    service = alerting(tmp_path, store, channel, send_resolved=False)
    service.observe(KEY, Condition.BREACH, MESSAGE, ONCALL, now=T0)
    assert service.observe(KEY, Condition.OK, MESSAGE, ONCALL, now=T0 + 60).notify is None
    service.deliver(T0 + 60)
    assert [r["json"]["status"] for r in channel.delivered] == ["firing"]


def test_a_silence_suppresses_and_expires(
    tmp_path: Path, store: AlertStore, channel: Channel
) -> None:
    service = alerting(tmp_path, store, channel, repeat_interval="1h")
    store.silence("monitors.fraud_drift*", T0 + 2 * 3600, "known: backfill running", "alice")
    service.observe(KEY, Condition.BREACH, MESSAGE, ONCALL, now=T0)
    assert service.deliver(T0).delivered == []
    [row] = store.outbox()
    assert row.status == DeliveryStatus.SUPPRESSED  # recorded, not sent
    service.observe(KEY, Condition.BREACH, MESSAGE, ONCALL, now=T0 + 3600)  # repeat: silenced
    service.observe(KEY, Condition.BREACH, MESSAGE, ONCALL, now=T0 + 2 * 3600)  # expired
    service.deliver(T0 + 2 * 3600)
    assert [r.status for r in store.outbox()] == [
        DeliveryStatus.SUPPRESSED,
        DeliveryStatus.SUPPRESSED,
        DeliveryStatus.DELIVERED,
    ]
    assert len(channel.delivered) == 1
    assert store.silences(T0 + 2 * 3600) == [] and len(store.silences()) == 1


class _Racing(AlertStore):
    """Both runs read the row before either writes: the worst interleaving, every time."""

    def __init__(self, store: AlertStore, barrier: threading.Barrier):
        super().__init__(store.engine, store.workspace)
        self.barrier = barrier
        self.first = True

    def get(self, key: str) -> dict[str, Any] | None:
        row = super().get(key)
        if self.first:
            self.first = False
            self.barrier.wait(timeout=10)
        return row


@pytest.mark.parametrize("start", ["inactive", "firing"])
def test_two_overlapping_runs_notify_once(
    tmp_path: Path, store: AlertStore, channel: Channel, start: str
) -> None:
    peers = webhook_peers(tmp_path, channel, repeat_interval="1h")
    if start == "firing":  # both runs see a firing alert whose repeat is due
        Alerting(store, peers).observe(KEY, Condition.BREACH, MESSAGE, ONCALL, now=T0 - 3600)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def run(now: float) -> None:
        service = Alerting(_Racing(store, barrier), peers)
        results.append(service.observe(KEY, Condition.BREACH, MESSAGE, ONCALL, now=now))

    threads = [threading.Thread(target=run, args=(T0 + d,)) for d in (0.0, 0.5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2
    assert sum(r.notify is not None for r in results) == 1
    expected = 1 if start == "inactive" else 2
    assert len(store.outbox()) == expected
    # two delivery runs at once: each row claimed by one of them
    reports: list[Any] = []
    go = threading.Barrier(2)

    def deliver() -> None:
        go.wait(timeout=10)
        reports.append(Alerting(store, peers).deliver(T0 + 1))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(len(r.delivered) for r in reports) == expected
    assert len(channel.delivered) == expected
