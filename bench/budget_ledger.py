"""Benchmark of the budget ledger's round trip: reserve + settle against a bare ``SELECT 1``.

Run: ``.venv/bin/python bench/budget_ledger.py [--iterations 2000] [--pg URL]``.

For SQLite (a WAL file in a temporary directory) and PostgreSQL (a fresh database on the
server at ``--pg``, dropped afterwards; skipped with a note if none answers), one process
times, in the same loop so that drift hits all three alike:

* ``SELECT 1`` in a transaction of the ledger's engine (pool checkout, BEGIN, the query,
  COMMIT): the floor any ledger operation pays;
* ``reserve`` (one conditional ``UPDATE … RETURNING`` and the reservation's ``INSERT``) and
  ``settle`` (``DELETE … RETURNING`` and one ``UPDATE``), each its own transaction.

It prints the median and p99 of each, in ms, and reserve + settle (the pair a gateway call
adds) over two ``SELECT 1`` (the same number of transactions) as the ratio. Nothing is
asserted.

A ``SELECT 1`` commits nothing; a reserve or settle waits for its WAL record to reach the disk
(``synchronous_commit = on``, PostgreSQL's default, which the ledger keeps: a reservation lost
in a server crash would make its settle count nothing). PostgreSQL is therefore measured a
second time with ``synchronous_commit = off`` set on the bench's sessions, which separates the
statements' cost from the disk's flush.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.db import make_engine, psycopg_url  # noqa: E402
from inference.ledger import Ledger, Reservation, open_ledger  # noqa: E402

PERIOD = 1_767_225_600
LIMIT = 10**15  # never reached: every reserve succeeds


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(ledger: Ledger, iterations: int, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"select 1": [], "reserve": [], "settle": []}
    clock = time.perf_counter
    for i in range(warmup + iterations):
        now = time.time()
        t0 = clock()
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()
        t1 = clock()
        got = ledger.reserve("bench", PERIOD, 12_345, 300, LIMIT, None, 600.0, now)
        t2 = clock()
        assert isinstance(got, Reservation)
        ledger.settle(got, 10_000, 250, now)
        t3 = clock()
        if i >= warmup:
            times["select 1"].append(t1 - t0)
            times["reserve"].append(t2 - t1)
            times["settle"].append(t3 - t2)
    return times


def report(name: str, times: dict[str, list[float]]) -> None:
    pair = [r + s for r, s in zip(times["reserve"], times["settle"], strict=True)]
    rows = {**times, "reserve+settle": pair}
    print(f"\n{name} ({len(pair)} round trips)")
    print(f"  {'':16} {'median ms':>10} {'p99 ms':>10}")
    for label, values in rows.items():
        ms = [v * 1000 for v in values]
        print(f"  {label:16} {statistics.median(ms):>10.3f} {quantile(ms, 0.99):>10.3f}")
    ratio = statistics.median(pair) / (2 * statistics.median(times["select 1"]))
    print(f"  reserve+settle / (2 x SELECT 1), medians: {ratio:.2f}")


@contextmanager
def pg_database(url: str) -> Iterator[str | None]:
    """A fresh database on the server at ``url``, dropped afterwards (None: no server)."""
    try:
        import psycopg

        admin = url.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            name = f"mlx_bench_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # any reason: report it and go on
        print(f"\nPostgreSQL skipped: {type(exc).__name__}: {exc}")
        yield None
        return
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def async_commit_engine(url: str) -> Engine:
    """An engine on ``url`` whose sessions do not wait for the WAL flush at commit."""
    from sqlalchemy import event

    engine = make_engine(psycopg_url(url))

    @event.listens_for(engine, "connect")
    def _async(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET synchronous_commit TO off")
        dbapi_conn.commit()

    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    import sqlite3

    print(f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        ledger = open_ledger(f"sqlite:///{tmp}/inference.db")
        report("SQLite (WAL file)", measure(ledger, args.iterations, args.warmup))
        ledger.close()
    with pg_database(args.pg) as url:
        if url is not None:
            ledger = open_ledger(url)
            with ledger.engine.connect() as conn:
                version = conn.exec_driver_sql("SHOW server_version").scalar()
            name = f"PostgreSQL {version} (127.0.0.1)"
            report(name, measure(ledger, args.iterations, args.warmup))
            ledger.close()
            ledger = Ledger(async_commit_engine(url))
            name += ", synchronous_commit = off"
            report(name, measure(ledger, args.iterations, args.warmup))
            ledger.engine.dispose()


if __name__ == "__main__":
    main()
