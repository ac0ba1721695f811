"""When a monitor is due: a minute its cron ``schedule`` (UTC) names has come since its last
run. A monitor never run is due at once; one without a schedule runs only when named
(``mlx refresh --monitor NAME``)."""

from __future__ import annotations

from datetime import UTC, datetime

from specs.cron import expand

#: How far back a schedule is searched: a monitor missed for longer is due anyway.
_HORIZON_MINUTES = 366 * 24 * 60


def matches(expression: str, at: datetime) -> bool:
    """Whether the minute ``at`` (UTC) is one the schedule names."""
    return _matches(expand(expression), at)


def _matches(fields: tuple[list[frozenset[int]], bool, bool], at: datetime) -> bool:
    (minute, hour, dom, month, dow), dom_set, dow_set = fields
    weekday = (at.weekday() + 1) % 7  # cron: Sunday is 0
    day_ok = at.day in dom and weekday in dow
    if dom_set and dow_set:
        day_ok = at.day in dom or weekday in dow
    return at.minute in minute and at.hour in hour and at.month in month and day_ok


def due(schedule: str | None, last_run: float | None, now: float) -> bool:
    """Whether a scheduled minute lies in ``(last_run, now]``."""
    if schedule is None:
        return False
    if last_run is None:
        return True
    start = int(last_run // 60) + 1
    end = int(now // 60)
    if end - start > _HORIZON_MINUTES:
        return True
    fields = expand(schedule)
    return any(_matches(fields, datetime.fromtimestamp(m * 60, UTC)) for m in range(start, end + 1))
