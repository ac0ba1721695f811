"""Budget periods: the instant a day, ISO week or month starts in a time zone.

A budget's spend is kept per (budget, period start), so every replica must compute the same
start for the same instant: a pure function of the period, the timestamp and the zone.

* ``day``: 00:00 local; ``week``: 00:00 local on the Monday (ISO 8601 weeks); ``month``:
  00:00 local on the 1st. Periods are UTC unless the spec names a zone (issue 22).
* In a zone with daylight saving time, a day is 23 or 25 hours long around a change. Where
  the change happens at midnight (America/Santiago, the start of September), 00:00 does not
  exist: the day starts at the instant of the change (01:00 local), which is what
  ``zoneinfo`` gives for the non-existent wall time with ``fold=0``; the returned datetime
  shows the real wall time of that instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def zone(tz: str) -> tzinfo:
    """The zone named ``tz`` (``UTC`` without a lookup), or ``ValueError`` naming it."""
    if tz.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


def _period(period: Period | str) -> Period:
    try:
        return Period(period)
    except ValueError:
        raise ValueError(
            f"unknown budget period {period!r}: use one of {', '.join(p.value for p in Period)}"
        ) from None


def _first_day(period: Period, day: date) -> date:
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())  # Monday is 0
    return day.replace(day=1)


def _next_first_day(period: Period, first: date) -> date:
    if period is Period.DAY:
        return first + timedelta(days=1)
    if period is Period.WEEK:
        return first + timedelta(days=7)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _midnight(day: date, where: tzinfo) -> datetime:
    """The first instant of ``day`` in ``where``, shown at its real wall time."""
    naive = datetime(day.year, day.month, day.day, tzinfo=where)  # fold=0: see the module doc
    return datetime.fromtimestamp(naive.timestamp(), where)


def _instant(ts: float | datetime) -> float:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError(f"a naive datetime ({ts.isoformat()}) is ambiguous: give a time zone")
        return ts.timestamp()
    return float(ts)


def period_start(period: Period | str, ts: float | datetime, tz: str = "UTC") -> datetime:
    """The start of the ``period`` holding ``ts`` (epoch seconds or an aware datetime) in
    ``tz``, as an aware datetime in ``tz``."""
    kind, where = _period(period), zone(tz)
    local = datetime.fromtimestamp(_instant(ts), where)
    return _midnight(_first_day(kind, local.date()), where)


def period_end(period: Period | str, ts: float | datetime, tz: str = "UTC") -> datetime:
    """When the ``period`` holding ``ts`` ends: the start of the next one (when it resets)."""
    kind, where = _period(period), zone(tz)
    start = period_start(kind, ts, tz)
    return _midnight(_next_first_day(kind, _first_day(kind, start.date())), where)


def epoch(start: datetime) -> int:
    """A period start as whole epoch seconds: the ledger's key (every zone's midnight is a
    whole second)."""
    return int(start.timestamp())
