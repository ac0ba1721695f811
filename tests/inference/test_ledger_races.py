"""A settle and a sweep racing for one reservation on PostgreSQL, in both orders, made
deterministic: the test holds the budget row's lock, lets the first operation take the
reservation row and queue behind it, starts the second (which queues behind the first), then
lets go. Whatever the order, the reservation is unreserved once and its spend counted once.

On SQLite the writers are serialised by the database lock, so there is no interleaving to
test beyond the sequential cases of test_ledger.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from inference.ledger import Closing, Ledger, Reservation, Status, open_ledger

JAN = 1_767_225_600
T0 = float(JAN)


def _waiting(url: str, count: int) -> None:
    """Return once ``count`` sessions wait for a lock (bounded: fails after 60 s)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(6000):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] >= count:
                return
            time.sleep(0.01)
    pytest.fail(f"{count} session(s) never waited for a lock")


@contextmanager
def budget_row_locked(url: str) -> Iterator[None]:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT 1 FROM mlx_inference_budgets FOR UPDATE").fetchall()
        yield
        conn.rollback()


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


@pytest.fixture
def pg(pg_url: str) -> Iterator[tuple[str, Ledger, Reservation]]:
    ledger = open_ledger(pg_url)
    r = ledger.reserve("b", JAN, 1_000, 10, 5_000, None, 30.0, T0)
    assert isinstance(r, Reservation)
    yield pg_url, ledger, r
    ledger.close()


def test_a_sweep_that_locks_first_leaves_the_settle_only_the_spend(
    pg: tuple[str, Ledger, Reservation],
) -> None:
    url, ledger, r = pg
    with budget_row_locked(url):
        sweep, swept = _in_thread(lambda: ledger.expire(T0 + 60))
        _waiting(url, 1)  # the sweep marked the reservation, waits for the budget row
        settle, settled = _in_thread(lambda: ledger.settle(r, 800, 8, T0 + 61))
        _waiting(url, 2)  # the settle waits for the sweep's reservation row
    sweep.join(60)
    settle.join(60)
    assert swept == [1] and settled == [Closing.AFTER_EXPIRY]
    assert ledger.status("b", JAN) == Status(800, 0, 8, 0, 0)


def test_a_settle_that_locks_first_leaves_the_sweep_nothing(
    pg: tuple[str, Ledger, Reservation],
) -> None:
    url, ledger, r = pg
    with budget_row_locked(url):
        settle, settled = _in_thread(lambda: ledger.settle(r, 800, 8, T0 + 61))
        _waiting(url, 1)  # the settle deleted the reservation, waits for the budget row
        sweep, swept = _in_thread(lambda: ledger.expire(T0 + 60))
        _waiting(url, 2)  # the sweep waits for the deleted reservation row
    settle.join(60)
    sweep.join(60)
    assert settled == [Closing.ON_TIME] and swept == [0]
    assert ledger.status("b", JAN) == Status(800, 0, 8, 0, 0)


def test_two_settles_of_one_reservation_count_it_once(
    pg: tuple[str, Ledger, Reservation],
) -> None:
    url, ledger, r = pg
    with budget_row_locked(url):
        first, one = _in_thread(lambda: ledger.settle(r, 800, 8, T0 + 1))
        _waiting(url, 1)
        second, two = _in_thread(lambda: ledger.settle(r, 800, 8, T0 + 1))
        _waiting(url, 2)
    first.join(60)
    second.join(60)
    assert sorted([*one, *two]) == sorted([Closing.ON_TIME, Closing.ALREADY])
    assert ledger.status("b", JAN) == Status(800, 0, 8, 0, 0)
