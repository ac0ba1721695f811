"""Workspace locks: a lock row on SQLite, a real advisory lock on PostgreSQL.

SQLite: inserting the row *is* the lock (the primary key makes it atomic). A
row left by a process that died on this host is broken with a warning, so a
``kill -9`` never needs manual surgery; anything else needs
``mlx state unlock ID``.

PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection that is not
pooled, so the lock lives exactly as long as that connection (DESIGN.md: a
session lock survives a connection's return to SQLAlchemy's pool). The row
only tells a blocked user who holds it. ``unlock`` terminates the holder's
backend, which releases its advisory lock.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from state.tables import LockRecord

_T = LockRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LockInfo:
    lock_id: str
    who: str
    operation: str
    host: str
    pid: int
    created_at: datetime
    backend_pid: int | None = None

    def describe(self) -> str:
        when = self.created_at.replace(tzinfo=self.created_at.tzinfo or UTC)
        return (
            f"held by {self.who} ({self.operation}, pid {self.pid} on {self.host}) "
            f"since {when.isoformat(timespec='seconds')}, lock ID {self.lock_id}"
        )


class LockHeld(Exception):
    def __init__(self, workspace: str, info: LockInfo | None):
        self.workspace, self.info = workspace, info
        holder = info.describe() if info else "held by another process"
        super().__init__(
            f'the state of "{workspace}" is locked: {holder}.\n'
            "Wait for it to finish, pass --lock-timeout to wait, or — if that process is "
            f"gone — run: mlx state unlock {info.lock_id if info else 'ID'}"
        )


def read_info(engine: Engine, workspace: str) -> LockInfo | None:
    with engine.connect() as conn:
        row = conn.execute(select(_T).where(_T.c.workspace == workspace)).mappings().first()
    if row is None:
        return None
    return LockInfo(
        row["lock_id"],
        row["who"],
        row["operation"],
        row["host"],
        row["pid"],
        row["created_at"],
        row["backend_pid"],
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def advisory_key(workspace: str) -> int:
    digest = hashlib.sha256(f"mlx:{workspace}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Lock:
    """Held for the duration of a write operation; release() is idempotent."""

    def __init__(self, engine: Engine, workspace: str, who: str, operation: str):
        self.engine, self.workspace = engine, workspace
        self.who, self.operation = who, operation
        self.lock_id = str(uuid.uuid4())
        self.warnings: list[str] = []
        self._conn: Any = None
        self._held = False

    def _row(self, backend_pid: int | None = None) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "lock_id": self.lock_id,
            "who": self.who,
            "operation": self.operation,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "backend_pid": backend_pid,
            "created_at": datetime.now(UTC),
        }

    def acquire(self, timeout: float = 0.0, poll: float = 0.2) -> Lock:
        deadline = time.monotonic() + timeout
        while True:
            if self._try():
                self._held = True
                return self
            if time.monotonic() >= deadline:
                raise LockHeld(self.workspace, read_info(self.engine, self.workspace))
            time.sleep(poll)

    def _try(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            return self._try_pg()
        return self._try_row()

    def _try_row(self) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(_T).values(**self._row()))
            return True
        except IntegrityError:
            pass
        info = read_info(self.engine, self.workspace)
        if info and info.host == socket.gethostname() and not _pid_alive(info.pid):
            with self.engine.begin() as conn:
                gone = conn.execute(
                    delete(_T).where(_T.c.workspace == self.workspace, _T.c.lock_id == info.lock_id)
                ).rowcount
            if gone:
                self.warnings.append(
                    f"broke a stale lock left by pid {info.pid} ({info.operation} by {info.who}, "
                    f"since {info.created_at}), which is no longer running"
                )
            return self._try_row_once()
        return False

    def _try_row_once(self) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(_T).values(**self._row()))
            return True
        except IntegrityError:
            return False

    def _try_pg(self) -> bool:
        if self._conn is None:
            # a raw DBAPI connection of its own: never returned to a pool while locked
            self._conn = self.engine.raw_connection()
            self._conn.autocommit = True
        cur = self._conn.cursor()
        cur.execute(
            "SELECT pg_try_advisory_lock(%s), pg_backend_pid()", (advisory_key(self.workspace),)
        )
        got, backend = cur.fetchone()
        cur.close()
        if not got:
            return False
        with self.engine.begin() as conn:
            conn.execute(delete(_T).where(_T.c.workspace == self.workspace))
            conn.execute(insert(_T).values(**self._row(backend)))
        return True

    def release(self) -> None:
        if not self._held:
            self._close()
            return
        self._held = False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(_T).where(_T.c.workspace == self.workspace, _T.c.lock_id == self.lock_id)
                )
        finally:
            if self._conn is not None:
                cur = self._conn.cursor()
                cur.execute("SELECT pg_advisory_unlock(%s)", (advisory_key(self.workspace),))
                cur.close()
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def force_unlock(engine: Engine, workspace: str, lock_id: str) -> LockInfo:
    """Remove a lock by ID (``mlx state unlock``). On PostgreSQL, end the holder's session."""
    info = read_info(engine, workspace)
    if info is None or info.lock_id != lock_id:
        current = f" (current lock ID: {info.lock_id})" if info else " (it is not locked)"
        raise LookupError(f'no lock with ID {lock_id} on "{workspace}"{current}')
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql" and info.backend_pid:
            held = conn.exec_driver_sql(
                "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = %(pid)s AND granted",
                {"pid": info.backend_pid},
            ).first()
            if held:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(%(pid)s)", {"pid": info.backend_pid}
                )
        conn.execute(delete(_T).where(_T.c.workspace == workspace, _T.c.lock_id == lock_id))
    return info
