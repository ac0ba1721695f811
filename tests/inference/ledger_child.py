"""Replica stand-ins for the ledger's concurrency tests: real separate processes (spawned).

* ``spend_until_refused``: reserve the worst case, settle an actual cost at or below it,
  repeat until the ledger refuses; put (settled calls, their actual spend) on the queue.
* ``lockstep``: rounds in which every replica reserves, then (once all have) settles with a
  bad estimate; rounds go on until every replica of a round was refused. The calls of a round
  are all in flight together, so the overshoot is deterministic.
* ``reserve_and_crash``: reserve, then die without settling (``os._exit``), as a replica
  killed mid-call.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from inference.ledger import Refused, Reservation, open_ledger

BUDGET = "one-dollar"
PERIOD = 1_767_225_600  # 2026-01-01T00:00:00Z


def spend_until_refused(
    url: str, seed: int, worst: int, limit: int, barrier: Any, out: Any
) -> None:
    ledger = open_ledger(url)
    rng = random.Random(seed)
    calls = spent = 0
    barrier.wait()  # every replica starts at once: the most contention
    while True:
        got = ledger.reserve(BUDGET, PERIOD, worst, 0, limit, None, 600.0, time.time())
        if isinstance(got, Refused):
            break
        actual = rng.randint(worst // 2, worst)  # a good estimate: at most the worst case
        ledger.settle(got, actual, 0, time.time())
        calls += 1
        spent += actual
    ledger.close()
    out.put((calls, spent))


def lockstep(
    url: str, slot: int, worst: int, excess: int, limit: int, barrier: Any, refused: Any, out: Any
) -> None:
    ledger = open_ledger(url)
    calls = spent = 0
    while True:
        got = ledger.reserve(BUDGET, PERIOD, worst, 0, limit, None, 600.0, time.time())
        refused[slot] = isinstance(got, Refused)
        barrier.wait()  # every reservation of the round is held
        if isinstance(got, Reservation):
            ledger.settle(got, worst + excess, 0, time.time())
            calls += 1
            spent += worst + excess
        barrier.wait()  # every settle of the round is done, every slot written
        done = all(refused[:])
        barrier.wait()  # every replica has read the slots before the next round writes them
        if done:
            break
    ledger.close()
    out.put((calls, spent))


def reserve_and_crash(url: str, amount: int, ttl_s: float, now: float, out: Any) -> None:
    ledger = open_ledger(url)
    got = ledger.reserve(BUDGET, PERIOD, amount, 0, None, None, ttl_s, now)
    assert isinstance(got, Reservation)
    out.put(got.id)
    out.close()
    out.join_thread()  # the id reaches the parent before the crash
    os._exit(0)
