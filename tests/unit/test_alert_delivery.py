"""alerts.delivery: the retry schedule, idempotency keys and a notification's message, as
tables."""

from __future__ import annotations

import pytest

from alerts import AlertKey, AlertRecord, AlertState, Condition, Notify
from alerts.delivery import BACKOFF_MAX_S, backoff, idempotency_key, labels, notification
from contract import AlertMessage

KEY = AlertKey("monitors.m", "data_drift", "3")
MESSAGE = AlertMessage("m drifted", "amount: PSI 0.3 > 0.25", "critical", "monitors.m", "team")


@pytest.mark.parametrize(
    ("attempts", "retry_after", "wait"),
    [
        (1, None, 30.0),
        (2, None, 60.0),
        (3, None, 120.0),
        (8, None, 3600.0),  # capped at an hour
        (50, None, BACKOFF_MAX_S),
        (1, 120.0, 120.0),  # Retry-After longer than the backoff wins
        (3, 5.0, 120.0),  # shorter: the backoff
        (1, 10 * 86400.0, 86400.0),  # an absurd Retry-After is bounded by a day
    ],
)
def test_backoff(attempts: int, retry_after: float | None, wait: float) -> None:
    assert backoff(attempts, retry_after) == wait


def test_idempotency_keys_are_stable_per_delivery_and_distinct_otherwise() -> None:
    one = idempotency_key(KEY, Notify.FIRING, 100.0, "alerts.a")
    assert one == idempotency_key(KEY, Notify.FIRING, 100.0, "alerts.a")
    others = {
        idempotency_key(KEY, Notify.REPEAT, 100.0, "alerts.a"),
        idempotency_key(KEY, Notify.FIRING, 101.0, "alerts.a"),
        idempotency_key(KEY, Notify.FIRING, 100.0, "alerts.b"),
        idempotency_key(
            AlertKey("monitors.m", "data_drift", "4"), Notify.FIRING, 100.0, "alerts.a"
        ),
    }
    assert one not in others and len(others) == 4


def test_labels_name_the_alert() -> None:
    assert labels(KEY, MESSAGE) == {
        "alertname": "data_drift",
        "resource": "monitors.m",
        "signal": "data_drift",
        "version": "3",
        "severity": "critical",
        "owner": "team",
    }
    bare = labels(AlertKey("budgets.b", "cost"), AlertMessage("t", "x"))
    assert "version" not in bare and "owner" not in bare


FIRING = AlertRecord(AlertState.FIRING, Condition.BREACH, 3, 10.0, 50.0, 50.0)


@pytest.mark.parametrize(
    ("notify", "since", "status", "title", "text_starts", "ends_at"),
    [
        (Notify.FIRING, 10.0, "firing", "m drifted", "amount", None),
        (Notify.REPEAT, 10.0, "firing", "m drifted", "Still firing (3 runs)", None),
        (Notify.RESOLVED, 10.0, "resolved", "RESOLVED: m drifted", "Resolved: ", 99.0),
    ],
)
def test_notification(
    notify: Notify,
    since: float,
    status: str,
    title: str,
    text_starts: str,
    ends_at: float | None,
) -> None:
    sent = notification(KEY, MESSAGE, FIRING, notify, 99.0, since=since)
    assert (sent.status, sent.title, sent.ends_at) == (status, title, ends_at)
    assert sent.text.startswith(text_starts) and sent.starts_at == since
    assert sent.key == "monitors.m@3/data_drift" and sent.labels["resource"] == "monitors.m"
