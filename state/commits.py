"""Group commit for the state writer: every write is durable before it returns, but
writes that arrive together share one transaction (as databases group-commit their log).

An apply runs providers on several threads; each finished resource must be recorded
before the apply moves on from it (an apply killed with SIGKILL converges on the next
one). Committing each in its own transaction serialises the threads on the database;
here the first thread to arrive commits what every waiting thread queued meanwhile —
one transaction, statements batched with ``executemany`` — and wakes them all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

#: One write: (a statement key, its parameters). Writes with the same key in a row run
#: as one ``executemany``; the statement is built once per key.
Write = tuple[str, dict[str, Any]]
Statements = Callable[[Connection, str, Sequence[dict[str, Any]]], None]


@dataclass
class _Ticket:
    writes: list[Write]
    done: bool = False
    error: BaseException | None = None
    event: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    def __init__(self, engine: Engine, run: Statements):
        self.engine = engine
        self._run = run
        self._lock = threading.Lock()
        self._queue: list[_Ticket] = []
        self._leader = False
        #: transactions committed and writes in them (for tests and the benchmark)
        self.commits = 0
        self.writes = 0

    def write(self, writes: list[Write]) -> None:
        """Commit ``writes`` (one resource's: its row and its event) durably, then return."""
        ticket = _Ticket(writes)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._leader
            if lead:
                self._leader = True
        if lead:
            self._lead()
        ticket.event.wait()
        if ticket.error is not None:
            raise ticket.error

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._leader = False
                    return
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
                    ticket.error = exc
        for ticket in batch:
            ticket.done = True
            ticket.event.set()

    def _transaction(self, writes: list[Write]) -> None:
        """All writes in one transaction, one ``executemany`` per statement key.

        Grouping by key reorders writes of *different* resources only (a batch holds at
        most one write set per resource), which nothing depends on.
        """
        grouped: dict[str, list[dict[str, Any]]] = {}
        for key, params in writes:
            grouped.setdefault(key, []).append(params)
        with self.engine.begin() as conn:
            for key, rows in grouped.items():
                self._run(conn, key, rows)
        self.commits += 1
        self.writes += len(writes)
