"""Group commit for the state writer: every write is durable before anything depends on
it, but writes that arrive together share one transaction (as databases group-commit
their log).

An apply runs providers on several threads; each finished resource must be recorded
before anything that depends on it starts (an apply killed with SIGKILL converges on the
next one). Committing each in its own transaction serialises the threads on the
database, and making each thread wait for its commit keeps batches as small as the
thread count; here one thread commits everything queued meanwhile — one transaction,
statements batched with ``executemany`` — and completes each write's future.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

#: One write: (a statement key, its parameters). Writes with the same key in a row run
#: as one ``executemany``; the statement is built once per key.
Write = tuple[str, dict[str, Any]]
Statements = Callable[[Connection, str, Sequence[dict[str, Any]]], None]


#: How long a write nobody waits for may wait for others to share its transaction, and
#: how many make a transaction worth committing at once. An apply's dependents start
#: only once their dependencies' records are durable, so this is what a dependency
#: chain can lose per step; 10,000 resources committed one by one cost ~10k small
#: transactions (SQLite rewrites its index pages each time).
LINGER = 0.02
BATCH = 256


@dataclass
class _Ticket:
    writes: list[Write]
    queued: float
    urgent: bool
    future: Future[None] = field(default_factory=Future)


class GroupCommit:
    """Writes are queued and committed by one thread, in the order they arrived; whatever
    queued while a transaction ran goes into the next one.

    ``write`` returns once its writes are durable. ``submit`` returns at once with a future
    that completes then: the applier hands over a resource's record and goes on with the
    next resource, and lets the resource's dependents start only when the future is done.
    """

    def __init__(self, engine: Engine, run: Statements):
        self.engine = engine
        self._run = run
        self._ready = threading.Condition()
        self._queue: list[_Ticket] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        #: transactions committed and writes in them (for tests and the benchmark)
        self.commits = 0
        self.writes = 0

    def write(self, writes: list[Write]) -> None:
        """Commit ``writes`` (one resource's: its row and its event) durably, then return."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a commit callback cannot wait for another commit")
        self.submit(writes, urgent=True).result()

    def submit(self, writes: list[Write], *, urgent: bool = False) -> Future[None]:
        """Queue ``writes``; the future completes when they are durable (or failed).

        Unless ``urgent`` (someone waits for it), a write may linger up to ``LINGER``
        seconds for others to share its transaction."""
        ticket = _Ticket(writes, time.monotonic(), urgent)
        with self._ready:
            if self._closing:
                raise RuntimeError("the state writer is closed")
            self._queue.append(ticket)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._commit_loop, name="mlx-state-commit", daemon=True
                )
                self._thread.start()
            if urgent or len(self._queue) in (1, BATCH):  # else it wakes when it must anyway
                self._ready.notify()
        return ticket.future

    def _due(self) -> bool:
        """Whether to commit now: something waits for it, enough is queued, the oldest
        write has lingered long enough, or the writer is closing."""
        if self._closing or len(self._queue) >= BATCH or any(t.urgent for t in self._queue):
            return True
        return bool(self._queue) and self._linger_left() == 0.0

    def _linger_left(self) -> float | None:
        if not self._queue:
            return None
        return max(0.0, self._queue[0].queued + LINGER - time.monotonic())

    def flush(self) -> None:
        """Return once everything queued so far is committed (or failed): an empty write
        someone waits for, queued behind them (the queue is committed in order)."""
        if self._thread is not None:
            self.write([])

    def close(self) -> None:
        """Commit what is queued, then stop the committing thread."""
        with self._ready:
            self._closing = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _commit_loop(self) -> None:
        while True:
            with self._ready:
                while not self._due():
                    self._ready.wait(self._linger_left())
                batch = _one_write_set_each(self._queue)
                self._queue = self._queue[len(batch) :]
            if not batch:
                return  # closing, and nothing left
            self._commit(batch)

    def _commit(self, batch: list[_Ticket]) -> None:
        try:
            self._transaction([w for t in batch for w in t.writes])
        except Exception:
            # one bad write must not fail the others: commit each on its own
            for ticket in batch:
                try:
                    self._transaction(ticket.writes)
                except Exception as exc:
                    ticket.future.set_exception(exc)
                else:
                    ticket.future.set_result(None)
            return
        for ticket in batch:
            ticket.future.set_result(None)

    def _transaction(self, writes: list[Write]) -> None:
        """All writes in one transaction, one ``executemany`` per statement key.

        Grouping by key reorders writes of *different* resources only (a batch holds at
        most one write set per resource: ``_one_write_set_each``), which nothing depends on.
        """
        if not writes:  # a flush's marker
            return
        grouped: dict[str, list[dict[str, Any]]] = {}
        for key, params in writes:
            grouped.setdefault(key, []).append(params)
        with self.engine.begin() as conn:
            for key, rows in grouped.items():
                self._run(conn, key, rows)
        self.commits += 1
        self.writes += len(writes)


def _one_write_set_each(queue: list[_Ticket]) -> list[_Ticket]:
    """The longest head of ``queue`` in which no resource has two tickets, so that grouping
    a batch's statements by key never reorders two writes of one resource."""
    seen: set[Any] = set()
    for i, ticket in enumerate(queue):
        mine = {p.get("address", p.get("addr")) for _, p in ticket.writes}
        if i and not seen.isdisjoint(mine):
            return queue[:i]
        seen |= mine
    return queue
