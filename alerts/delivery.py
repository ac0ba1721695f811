"""What the outbox decides without I/O: the retry schedule, the idempotency key, and the
message one notification sends (labels, status, the command to investigate).

* ``backoff``: 30 s after the first failed attempt, doubling up to an hour; a channel's
  ``Retry-After`` wins when it asks for longer. An alert is never dropped: a delivery that
  keeps failing keeps its hourly attempts and is listed by ``mlx alerts`` as undelivered.
* ``idempotency_key``: one per (alert, notification, channel) — the same on every retry of
  that delivery, different for the next notification.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from alerts.lifecycle import AlertKey, AlertRecord, Notify
from contract import AlertMessage

BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 3600.0
#: how long a claimed delivery is held before another run may try it (a crashed run's)
LEASE_S = 300.0


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
    wait = min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S)
    if retry_after is not None and retry_after > wait:
        return min(retry_after, 24 * 3600.0)
    return wait


def idempotency_key(key: AlertKey, notify: Notify | str, at: float, channel: str) -> str:
    """Stable across retries of one delivery; a new one for each notification."""
    text = f"{key}|{notify}|{at!r}|{channel}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ChannelPolicy:
    """A channel's part of the lifecycle (its spec's ``repeat_interval``, ``send_resolved``)."""

    repeat_interval_s: float = 4 * 3600.0
    send_resolved: bool = True


def labels(key: AlertKey, message: AlertMessage) -> dict[str, str]:
    """Alertmanager's labels: what identifies the alert (and routes it)."""
    out = {
        "alertname": key.signal,
        "resource": key.resource,
        "signal": key.signal,
        "severity": message.severity,
    }
    if key.version is not None:
        out["version"] = key.version
    if message.owner:
        out["owner"] = message.owner
    return out


def notification(
    key: AlertKey,
    message: AlertMessage,
    record: AlertRecord,
    notify: Notify,
    now: float,
    *,
    since: float | None,
) -> AlertMessage:
    """The message this notification sends: the producer's text with the lifecycle's facts."""
    resolved = notify is Notify.RESOLVED
    title = f"RESOLVED: {message.title}" if resolved else message.title
    text = message.text
    if resolved:
        text = f"Resolved: {message.text}"
    elif since is not None and notify is Notify.REPEAT:
        text = f"Still firing ({record.streak} runs). {message.text}"
    return replace(
        message,
        title=title,
        text=text,
        key=str(key),
        status="resolved" if resolved else "firing",
        starts_at=since,
        ends_at=now if resolved else None,
        labels=labels(key, message),
    )
