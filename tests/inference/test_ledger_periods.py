"""Budget periods and micro-dollars: pure functions, one table row per branch."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from inference.money import Rounding, to_micro, to_usd
from inference.periods import Period, epoch, period_end, period_start


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (period, instant in UTC, zone, start in UTC, end in UTC): the expected instants were worked
# out by hand from each zone's offsets, not by the code under test.
PERIODS = [
    # month ends and rollover at the exact boundary
    ("day", "2026-01-31T23:59:59", "UTC", "2026-01-31T00:00", "2026-02-01T00:00"),
    ("month", "2026-01-31T23:59:59", "UTC", "2026-01-01T00:00", "2026-02-01T00:00"),
    ("month", "2026-02-01T00:00:00", "UTC", "2026-02-01T00:00", "2026-03-01T00:00"),
    ("month", "2026-04-30T23:59:59", "UTC", "2026-04-01T00:00", "2026-05-01T00:00"),
    ("month", "2026-12-31T23:59:59", "UTC", "2026-12-01T00:00", "2027-01-01T00:00"),
    ("day", "2027-01-01T00:00:00", "UTC", "2027-01-01T00:00", "2027-01-02T00:00"),
    # leap day
    ("month", "2024-02-29T12:00:00", "UTC", "2024-02-01T00:00", "2024-03-01T00:00"),
    ("day", "2024-02-29T23:59:59", "UTC", "2024-02-29T00:00", "2024-03-01T00:00"),
    ("month", "2026-02-28T23:59:59", "UTC", "2026-02-01T00:00", "2026-03-01T00:00"),
    # ISO weeks start on Monday, across a month and a year end
    ("week", "2024-02-29T12:00:00", "UTC", "2024-02-26T00:00", "2024-03-04T00:00"),
    ("week", "2026-01-01T00:00:00", "UTC", "2025-12-29T00:00", "2026-01-05T00:00"),
    ("week", "2026-01-04T23:59:59", "UTC", "2025-12-29T00:00", "2026-01-05T00:00"),
    ("week", "2026-01-05T00:00:00", "UTC", "2026-01-05T00:00", "2026-01-12T00:00"),
    # DST: New York springs forward (a 23 h day), Berlin falls back (a 25 h day)
    ("day", "2026-03-08T12:00:00", "America/New_York", "2026-03-08T05:00", "2026-03-09T04:00"),
    ("day", "2026-10-25T12:00:00", "Europe/Berlin", "2026-10-24T22:00", "2026-10-25T23:00"),
    ("week", "2026-03-08T12:00:00", "America/New_York", "2026-03-02T05:00", "2026-03-09T04:00"),
    # a month in a zone: Feb 28 23:59:59 EST is still February
    ("month", "2026-03-01T04:59:59", "America/New_York", "2026-02-01T05:00", "2026-03-01T05:00"),
    ("month", "2026-03-01T05:00:00", "America/New_York", "2026-03-01T05:00", "2026-04-01T04:00"),
    ("month", "2026-01-31T15:00:00", "Asia/Tokyo", "2026-01-31T15:00", "2026-02-28T15:00"),
    # Santiago skips 00:00 on 2026-09-06 (-04 -> -03): that day starts at the change
    ("day", "2026-09-06T04:30:00", "America/Santiago", "2026-09-06T04:00", "2026-09-07T03:00"),
    ("day", "2026-09-06T03:59:59", "America/Santiago", "2026-09-05T04:00", "2026-09-06T04:00"),
]


@pytest.mark.parametrize(("period", "ts", "tz", "start", "end"), PERIODS)
def test_period_boundaries(period: str, ts: str, tz: str, start: str, end: str) -> None:
    instant = _utc(ts).timestamp()
    got = period_start(period, instant, tz)
    assert got == _utc(start) and got.utcoffset() is not None
    assert period_end(period, instant, tz) == _utc(end)
    assert period_start(period, _utc(ts), tz) == got  # an aware datetime is the same instant
    assert epoch(got) == int(_utc(start).timestamp())
    # the end is the next period's start: rollover
    assert period_start(period, _utc(end).timestamp(), tz) == _utc(end)
    assert period_start(period, _utc(end).timestamp() - 1, tz) == got


def test_the_start_is_shown_in_the_zone_at_its_real_wall_time() -> None:
    start = period_start(Period.DAY, _utc("2026-09-06T12:00:00").timestamp(), "America/Santiago")
    assert start.isoformat() == "2026-09-06T01:00:00-03:00"  # 00:00 did not exist that day
    assert period_start("day", 0, "Europe/Paris").isoformat() == "1970-01-01T00:00:00+01:00"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: period_start("year", 0.0), "unknown budget period 'year': use one of day, week"),
        (lambda: period_start("day", 0.0, "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (lambda: period_end("day", 0.0, "../etc"), "unknown time zone '../etc'"),
        (lambda: period_start("day", datetime(2026, 1, 1)), "naive datetime"),
    ],
)
def test_bad_periods_are_clear_errors(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()  # type: ignore[operator]


MONEY = [
    # value, rounding, micro-dollars
    (0.1, Rounding.ACTUAL, 100_000),  # through repr: not 100000.0000000000055
    (0.1 + 0.2, Rounding.ACTUAL, 300_000),
    (0.1 + 0.2, Rounding.RESERVE, 300_001),  # 0.30000000000000004: a worst case rounds up
    (0.1 + 0.2, Rounding.LIMIT, 300_000),
    (Decimal("0.0000005"), Rounding.ACTUAL, 1),  # half up
    (Decimal("0.0000005"), Rounding.LIMIT, 0),
    (Decimal("0.0000004"), Rounding.ACTUAL, 0),
    (Decimal("0.0000004"), Rounding.RESERVE, 1),  # never under-reserved
    (Decimal("0.0000015"), Rounding.ACTUAL, 2),  # half up, not to even
    (1e-7, Rounding.RESERVE, 1),
    (1e-7, Rounding.ACTUAL, 0),
    (1, Rounding.LIMIT, 1_000_000),
    ("2.5", Rounding.RESERVE, 2_500_000),
    (0, Rounding.RESERVE, 0),
    (Decimal("1234.5678901"), Rounding.LIMIT, 1_234_567_890),
]


@pytest.mark.parametrize(("usd", "rounding", "micro"), MONEY)
def test_usd_to_micro_dollars(usd: object, rounding: Rounding, micro: int) -> None:
    got = to_micro(usd, rounding)  # type: ignore[arg-type]
    assert got == micro and type(got) is int


@pytest.mark.parametrize(
    ("usd", "message"),
    [
        (-0.01, "cannot be negative"),
        (Decimal("-1"), "cannot be negative"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("abc", "must be an amount in USD, not 'abc'"),
        (True, "must be an amount in USD"),
        (Decimal("1e30"), "too large"),
    ],
)
def test_bad_amounts_are_refused(usd: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        to_micro(usd, Rounding.ACTUAL, what="cost_usd")  # type: ignore[arg-type]
    assert str(err.value).startswith("cost_usd ")


def test_micro_dollars_back_to_usd_exactly() -> None:
    assert to_usd(1_500_000) == Decimal("1.5")
    assert to_usd(1) == Decimal("0.000001")
    assert to_usd(to_micro("0.123456", Rounding.ACTUAL)) == Decimal("0.123456")
