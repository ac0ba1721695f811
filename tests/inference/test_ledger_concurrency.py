"""The ledger under replicas racing for one budget: 8 real processes against a $1 limit, on
PostgreSQL and on one SQLite file; and a crashed replica's reservation expiring.

The bound being tested: a reserve succeeds only if spent + reserved + worst <= limit. After
the last successful reserve no new money is held, and each call in flight at that moment
then adds (actual - worst) to spent + reserved. So with actual <= worst spend never exceeds
the limit, and with a bad estimate (actual = worst + excess) it exceeds it by at most
(calls in flight) x excess, one call per process. The first is a free race; the second runs
in lockstep rounds (all reserve, then all settle) so the calls in flight, and the overshoot,
are known exactly.

A naive check-then-add is not compared here: whether it overshoots depends on scheduling,
and a test must not pass or fail by luck (the issue's measured 1.0 % is bench material).
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from inference.ledger import Closing, Refused, Reservation, Status, open_ledger
from tests.inference import ledger_child
from tests.inference.ledger_child import BUDGET, PERIOD

PROCS = 8
LIMIT = 1_000_000  # $1 in micro-dollars
WORST = 9_973  # a prime: ~100 to 200 calls reach the limit, never evenly


def _race(url: str) -> list[tuple[int, int]]:
    open_ledger(url).close()  # migrate once, before the replicas start
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(PROCS), ctx.Queue()
    procs = [
        ctx.Process(
            target=ledger_child.spend_until_refused,
            args=(url, seed, WORST, LIMIT, barrier, out),
        )
        for seed in range(PROCS)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'inference.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_eight_replicas_never_overshoot_a_hard_limit(shared_url: str) -> None:
    results = _race(shared_url)
    ledger = open_ledger(shared_url)
    status = ledger.status(BUDGET, PERIOD)
    ledger.close()
    spent = sum(s for _, s in results)
    assert status == Status(spent, 0, 0, 0, 0)  # every settle counted once, nothing held
    assert status.spent_micro <= LIMIT  # no overshoot at all
    # and the limit was reached, up to what the other replicas held when the last one stopped
    assert status.spent_micro > LIMIT - PROCS * WORST


def _lockstep_expected(worst: int, excess: int) -> tuple[int, int]:
    """Spend after lockstep rounds, and the calls in flight at the last successful reserve,
    worked out without a database: each round, as many of the replicas as fit reserve."""
    spent, last_round = 0, 0
    while True:
        fit = min(PROCS, max(0, (LIMIT - spent) // worst))
        if fit == 0:
            return spent, last_round
        spent += fit * (worst + excess)
        last_round = fit


def test_a_bad_estimate_overshoots_by_no_more_than_the_excess_in_flight(shared_url: str) -> None:
    """Lockstep rounds: all replicas reserve, then all settle 5,000 above the reservation.
    Rounds 1-8 take 8 calls each (958,272); in round 9 four more fit: 1,018,164 spent, 18,164
    over the limit, within the 4 x 5,000 of the four calls in flight."""
    excess = 5_000
    spent, in_flight = _lockstep_expected(WORST, excess)
    assert (spent, in_flight) == (1_018_164, 4)
    open_ledger(shared_url).close()
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(PROCS), ctx.Queue()
    refused = ctx.Array("b", PROCS)
    procs = [
        ctx.Process(
            target=ledger_child.lockstep,
            args=(shared_url, slot, WORST, excess, LIMIT, barrier, refused, out),
        )
        for slot in range(PROCS)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    ledger = open_ledger(shared_url)
    status = ledger.status(BUDGET, PERIOD)
    ledger.close()
    assert status == Status(sum(s for _, s in results), 0, 0, 0, 0)
    assert status.spent_micro == spent  # no reservation was lost or doubled under contention
    assert 0 < status.spent_micro - LIMIT <= in_flight * excess


def test_a_crashed_replicas_reservation_is_released_after_its_ttl(log_url: str) -> None:
    open_ledger(log_url).close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    t0, ttl = 1_767_226_000.0, 30.0
    child = ctx.Process(target=ledger_child.reserve_and_crash, args=(log_url, 5_000, ttl, t0, out))
    child.start()
    rid = out.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    ledger = open_ledger(log_url)  # a surviving replica
    assert ledger.status(BUDGET, PERIOD) == Status(0, 5_000, 0, 0, 1)
    held = ledger.reserve(BUDGET, PERIOD, 996_000, 0, LIMIT, None, ttl, t0 + 1)
    assert isinstance(held, Refused)  # the crashed call's 5,000 still count
    assert ledger.expire(t0 + ttl - 1) == 0
    assert ledger.expire(t0 + ttl) == 1
    assert ledger.status(BUDGET, PERIOD) == Status(0, 0, 0, 0, 0)
    fits = ledger.reserve(BUDGET, PERIOD, LIMIT, 0, LIMIT, None, ttl, t0 + ttl)
    assert isinstance(fits, Reservation)  # the whole limit is free again
    assert ledger.settle(fits, LIMIT, 0, t0 + ttl) is Closing.ON_TIME
    assert ledger.release(rid) is Closing.AFTER_EXPIRY  # nothing left to release
    assert ledger.status(BUDGET, PERIOD) == Status(LIMIT, 0, 0, 0, 0)
    ledger.close()
