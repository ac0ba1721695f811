"""``--since`` values: a duration back from now (``90s``, ``10m``, ``2h``, ``1d``, ``1h30m``)
or an ISO-8601 time (``2026-01-31``, ``2026-01-31T12:00``, ``…Z``, ``…+02:00``; without an
offset it is UTC)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float | None:
    """Seconds in ``text`` (``10m``, ``1h30m``), or None if it is not a duration."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds for a ``--since`` value; ``ValueError`` with a one-line reason."""
    seconds = parse_duration(text)
    if seconds is not None:
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
