"""``--since`` values: a duration back from now (``common.durations``: ``90s``, ``10m``,
``2h``, ``1d``, ``1h30m``) or an ISO-8601 time (``2026-01-31``, ``2026-01-31T12:00``, ``…Z``,
``…+02:00``; without an offset it is UTC). No ISO-8601 time is a duration: a duration ends
with a unit, a time with a digit or ``Z``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from common.durations import DurationError, parse_duration


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds for a ``--since`` value; ``ValueError`` with a one-line reason."""
    try:
        seconds = parse_duration(text)
    except DurationError:
        pass
    else:
        return (time.time() if now is None else now) - seconds
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO-8601 time "
            "(2026-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
