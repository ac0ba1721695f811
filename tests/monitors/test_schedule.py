"""When a monitor is due: cron matching (UTC) table-driven, and the (last run, now] rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.monitors.schedule import due, matches

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC).timestamp()  # a Monday


@pytest.mark.parametrize(
    ("expr", "at", "expected"),
    [
        ("0 * * * *", datetime(2026, 1, 1, 3, 0, tzinfo=UTC), True),
        ("0 * * * *", datetime(2026, 1, 1, 3, 1, tzinfo=UTC), False),
        ("*/15 9-17 * * mon-fri", datetime(2026, 1, 5, 9, 30, tzinfo=UTC), True),
        ("*/15 9-17 * * mon-fri", datetime(2026, 1, 4, 9, 30, tzinfo=UTC), False),  # Sunday
        ("*/15 9-17 * * mon-fri", datetime(2026, 1, 5, 18, 0, tzinfo=UTC), False),
        ("5/20 * * * *", datetime(2026, 1, 5, 9, 45, tzinfo=UTC), True),  # 5, 25, 45
        ("5/20 * * * *", datetime(2026, 1, 5, 9, 40, tzinfo=UTC), False),
        ("0 0 * * 7", datetime(2026, 1, 4, 0, 0, tzinfo=UTC), True),  # 7 is Sunday too
        ("0 0 1 * mon", datetime(2026, 1, 5, 0, 0, tzinfo=UTC), True),  # dom OR dow
        ("0 0 1 * mon", datetime(2026, 1, 1, 0, 0, tzinfo=UTC), True),
        ("0 0 1 * mon", datetime(2026, 1, 2, 0, 0, tzinfo=UTC), False),
        ("@daily", datetime(2026, 1, 2, 0, 0, tzinfo=UTC), True),
        ("@hourly", datetime(2026, 1, 2, 5, 1, tzinfo=UTC), False),
        ("1,2 * * jan *", datetime(2026, 1, 2, 5, 2, tzinfo=UTC), True),
        ("1,2 * * feb *", datetime(2026, 1, 2, 5, 2, tzinfo=UTC), False),
    ],
)
def test_matches(expr: str, at: datetime, expected: bool) -> None:
    assert matches(expr, at) is expected


@pytest.mark.parametrize(
    ("schedule", "last", "now", "expected"),
    [
        (None, None, T0, False),  # no schedule: only when named
        ("0 * * * *", None, T0, True),  # never run: due at once
        ("0 * * * *", T0, T0 + 29 * 60, False),  # 9:30 -> 9:59
        ("0 * * * *", T0, T0 + 30 * 60, True),  # 10:00 has come
        ("0 * * * *", T0 - 30 * 60, T0, False),  # ran at 9:00, the minute 9:00 is not after it
        ("0 0 1 1 *", T0, T0 + 400 * 86400, True),  # missed past the horizon
    ],
)
def test_due(schedule: str | None, last: float | None, now: float, expected: bool) -> None:
    assert due(schedule, last, now) is expected
