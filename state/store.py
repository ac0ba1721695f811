"""State access: ``StateReader`` reads, ``StateWriter`` (holding the lock) writes.

The planner only ever gets a reader (SQLMesh's StateReader/StateSync split).
A writer commits each resource as it completes — one small transaction per
resource, never a rewrite of the whole state — so an apply killed half-way
leaves every finished resource recorded.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, bindparam, event, insert, select, update
from sqlalchemy import delete as sa_delete

from common import db
from common.db import redact_url
from common.diagnostics import MlxError
from state import locks, migrations
from state.commits import GroupCommit
from state.status import Status, VersionStatus

if TYPE_CHECKING:
    from state.evidence import EvidenceLog
from state.tables import ResourceEvent, ResourceRecord, StateVersion, Workspace
from state.writes import RecordWrite

_W = Workspace.__table__  # type: ignore[attr-defined]
_V = StateVersion.__table__  # type: ignore[attr-defined]
_R = ResourceRecord.__table__  # type: ignore[attr-defined]
_E = ResourceEvent.__table__  # type: ignore[attr-defined]


#: Statuses a refresh (or a failed apply) gives a resource while its value stays recorded.
_KEEPS_VALUE = (Status.TAINTED, Status.DRIFTED, Status.MISSING)


def now() -> datetime:
    return datetime.now(UTC)


class StateError(MlxError):
    """The state cannot be used as it is — a bad URL, a read-only or damaged database.

    Its message says what is wrong and what to do, on one line; the CLI shows it as is
    (an ``MlxError``), never as "a bug in mlx" with SQL in it.
    """


def normalize_url(url: str, base: Path) -> str:
    """Relative SQLite paths are relative to the spec dir; ``postgresql://`` uses psycopg 3.

    Raises ``StateError`` for a URL mlx cannot use (``mysql://``, a bad port).
    """
    return db.normalize_url(url, base, what="state", error=StateError)


def _where(engine: Engine) -> str:
    """The state's place for messages: the SQLite file, or the server URL (no password)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def _state_errors(ctx: Any) -> None:
    """``handle_error`` hook: database conditions the user must fix become a ``StateError``.

    Without it a read-only state surfaced as SQLAlchemy's error with the SQL statement and
    its parameters, under "this is a bug in mlx".
    """
    exc = ctx.original_exception
    code = str(getattr(exc, "sqlite_errorname", "") or "")
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    where = _where(ctx.engine) if ctx.engine is not None else "?"
    if code.startswith("SQLITE_READONLY") or "readonly database" in text or sqlstate == "25006":
        raise StateError(
            f"state at {where} is read-only ({text}): make the database and its directory "
            "writable by this user, or point --state (or MLX_STATE) at a writable one"
        )
    if code in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text:
        raise StateError(
            f"state at {where} is damaged or not a state database ({text}): restore it from "
            "a backup, or point --state at the right file"
        )


def make_engine(url: str) -> Engine:
    """The state's engine (``common.db``'s WAL pragmas on SQLite); ``StateError`` for a URL
    mlx cannot use, and (``_state_errors``) for a database the user must fix."""
    from sqlalchemy.exc import ArgumentError

    backend = db.check_url(url, what="state", error=StateError)
    if backend is db.Backend.POSTGRESQL:
        import importlib.util

        if importlib.util.find_spec("psycopg") is None:
            raise StateError("PostgreSQL state needs psycopg 3: pip install 'mlxctl[postgres]'")
    try:
        engine = db.make_engine(url, pragmas=db.WAL_PRAGMAS)
    except (ArgumentError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StateError(f"invalid state URL {redact_url(url)}: {reason}") from None
    event.listen(engine, "handle_error", _state_errors)
    return engine


@dataclass(frozen=True)
class IndexRow:
    """The light part of a resource row: enough to decide "no changes"."""

    address: str
    section: str
    provider: str
    status: str
    spec_hash: str | None
    meta_hash: str | None
    content_hash: str | None
    serial: int


@dataclass(frozen=True)
class Record:
    address: str
    section: str
    name: str
    provider: str
    status: str
    spec_hash: str | None
    meta_hash: str | None
    content_hash: str | None
    attributes: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]
    serial: int
    updated_at: datetime


def _decode(text: Any, what: str, column: str, fix: str) -> Any:
    """A JSON column's value, or ``StateError`` naming the row, the column and a way out."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not text"
        raise StateError(
            f"{what} is damaged: its `{column}` column is not valid JSON ({reason}); {fix}"
        ) from None


_VERSION_FIX = "restore the state database from a backup (history is append-only)"


def _record_fix(address: str) -> str:
    return (
        f"run `mlx state rm {address}` to forget it (the next apply creates it again), "
        "or restore the state database from a backup"
    )


def _record(row: Any) -> Record:
    address = row["address"]
    what, fix = f"the state record of {address}", _record_fix(address)
    return Record(
        address,
        row["section"],
        row["name"],
        row["provider"],
        row["status"],
        row["spec_hash"],
        row["meta_hash"],
        row["content_hash"],
        _decode(row["attributes"], what, "attributes", fix),
        _decode(row["outputs"], what, "outputs", fix),
        _decode(row["dependencies"], what, "dependencies", fix),
        row["serial"],
        row["updated_at"],
    )


class StateStore:
    """One state database (it may hold several workspaces: one per environment)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        migrations.migrate(self.engine)

    def reader(self, workspace: str) -> StateReader:
        return StateReader(self.engine, workspace)

    def writer(
        self, workspace: str, *, who: str, operation: str, lock_timeout: float = 0.0
    ) -> StateWriter:
        lock = locks.Lock(self.engine, workspace, who, operation).acquire(lock_timeout)
        return StateWriter(self.engine, workspace, lock)

    def force_unlock(self, workspace: str, lock_id: str) -> locks.LockInfo:
        return locks.force_unlock(self.engine, workspace, lock_id)

    def close(self) -> None:
        self.engine.dispose()


class StateReader:
    def __init__(self, engine: Engine, workspace: str):
        self.engine, self.workspace = engine, workspace
        self._ws: dict[str, Any] | None = None
        self._memo: dict[str, Record | None] = {}
        self._evidence: EvidenceLog | None = None

    def record(self, address: str) -> Record | None:
        """One resource's record, remembered for this reader's lifetime (a run's snapshot)."""
        if address not in self._memo:
            self._memo[address] = self.records([address]).get(address)
        return self._memo[address]

    def remember(self, addresses: Iterable[str]) -> None:
        """Read these records now, in batches, so later ``record`` calls see this moment."""
        wanted = [a for a in addresses if a not in self._memo]
        found = self.records(wanted)
        for address in wanted:
            self._memo[address] = found.get(address)

    def _workspace(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_W).where(_W.c.name == self.workspace)).mappings().first()
        self._ws = dict(row) if row else None
        return self._ws

    @property
    def lineage(self) -> str | None:
        ws = self._workspace()
        return ws["lineage"] if ws else None

    @property
    def serial(self) -> int:
        ws = self._workspace()
        return ws["serial"] if ws else 0

    @property
    def salt(self) -> str | None:
        ws = self._ws if self._ws is not None else self._workspace()
        return ws["salt"] if ws else None

    def _ws_id(self) -> int | None:
        ws = self._ws if self._ws is not None else self._workspace()
        return ws["id"] if ws else None

    def evidence(self) -> EvidenceLog:
        """Gate verdicts of this workspace, bound to the fingerprints they judged."""
        from state.evidence import EvidenceLog

        if self._evidence is None:
            self._evidence = EvidenceLog(self.engine, self._ws_id())
        return self._evidence

    def index(self) -> dict[str, IndexRow]:
        """Hashes and status of every resource, without their JSON (fast)."""
        ws_id = self._ws_id()
        if ws_id is None:
            return {}
        cols = (
            _R.c.address,
            _R.c.section,
            _R.c.provider,
            _R.c.status,
            _R.c.spec_hash,
            _R.c.meta_hash,
            _R.c.content_hash,
            _R.c.serial,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(_R.c.workspace_id == ws_id)).all()
        return {r[0]: IndexRow(*r) for r in rows}

    def records(self, addresses: Iterable[str] | None = None) -> dict[str, Record]:
        ws_id = self._ws_id()
        if ws_id is None:
            return {}
        query = select(_R).where(_R.c.workspace_id == ws_id)
        if addresses is not None:
            wanted = list(addresses)
            if not wanted:
                return {}
            out: dict[str, Record] = {}
            with self.engine.connect() as conn:
                for i in range(0, len(wanted), 500):
                    chunk = query.where(_R.c.address.in_(wanted[i : i + 500]))
                    for row in conn.execute(chunk).mappings():
                        out[row["address"]] = _record(row)
            return out
        with self.engine.connect() as conn:
            return {
                row["address"]: _record(row)
                for row in conn.execute(query.order_by(_R.c.address)).mappings()
            }

    def versions(self) -> list[dict[str, Any]]:
        ws_id = self._ws_id()
        if ws_id is None:
            return []
        cols = [c for c in _V.c if c.name != "spec"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*cols).where(_V.c.workspace_id == ws_id).order_by(_V.c.serial)
            ).mappings()
            return [_version(dict(r)) for r in rows]

    def version(self, serial: int, *, with_spec: bool = True) -> dict[str, Any] | None:
        ws_id = self._ws_id()
        if ws_id is None:
            return None
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(_V).where(_V.c.workspace_id == ws_id, _V.c.serial == serial))
                .mappings()
                .first()
            )
        if row is None:
            return None
        out = _version(dict(row))
        if with_spec:
            what = f"state version {serial}"
            out["spec"] = _decode(row["spec"], what, "spec", _VERSION_FIX)
        else:
            out.pop("spec", None)
        return out

    def events(
        self, *, serial: int | None = None, address: str | None = None, upto: int | None = None
    ) -> list[dict[str, Any]]:
        ws_id = self._ws_id()
        if ws_id is None:
            return []
        query = select(_E).where(_E.c.workspace_id == ws_id)
        if serial is not None:
            query = query.where(_E.c.serial == serial)
        if upto is not None:
            query = query.where(_E.c.serial <= upto)
        if address is not None:
            query = query.where(_E.c.address == address)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_E.c.id)).mappings().all()
        out = []
        for r in rows:
            item = dict(r)
            what = f"the state event of {item['address']} in version {item['serial']}"
            for key in ("attributes", "outputs"):
                item[key] = _decode(item[key], what, key, _VERSION_FIX) if item[key] else None
            out.append(item)
        return out

    def snapshot(self, serial: int) -> dict[str, dict[str, Any]]:
        """Every resource as it stood after state version ``serial`` (from the events)."""
        resources: dict[str, dict[str, Any]] = {}
        for ev in self.events(upto=serial):
            if ev["action"] in ("delete", "forget"):
                resources.pop(ev["address"], None)
            elif ev["status"] == Status.OK and ev["attributes"] is not None:
                resources[ev["address"]] = ev
            elif ev["address"] in resources and ev["status"] in _KEEPS_VALUE:
                resources[ev["address"]] = {**resources[ev["address"]], "status": ev["status"]}
        return resources


def _version(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("id", None)
    row.pop("workspace_id", None)
    what = f"state version {row.get('serial')}"
    row["summary"] = (
        _decode(row["summary"], what, "summary", _VERSION_FIX) if row.get("summary") else {}
    )
    return row


_EVENT_DEFAULTS: dict[str, Any] = {
    "provider": None,
    "spec_hash": None,
    "meta_hash": None,
    "content_hash": None,
    "attributes": None,
    "outputs": None,
    "error": None,
}


@cache
def _upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE of a resource row, built once per dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_R)
    keep = {c.name: stmt.excluded[c.name] for c in _R.c if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=["workspace_id", "address"], set_=keep)


def _statements(conn: Connection, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """The writer's statements, each run once for all ``rows`` (``executemany``)."""
    if key == "event":
        conn.execute(insert(_E), list(rows))
    elif key == "resource":
        conn.execute(_upsert(conn.dialect.name), list(rows))
    elif key == "status":
        conn.execute(
            update(_R)
            .where(_R.c.workspace_id == bindparam("ws"), _R.c.address == bindparam("addr"))
            .values(
                status=bindparam("status"), serial=bindparam("serial"), updated_at=bindparam("at")
            ),
            list(rows),
        )
    elif key == "remove":
        conn.execute(
            sa_delete(_R).where(
                _R.c.workspace_id == bindparam("ws"), _R.c.address == bindparam("addr")
            ),
            list(rows),
        )
    else:  # pragma: no cover - a programming error
        raise ValueError(f"unknown state write {key!r}")


class StateWriter(StateReader):
    """Holds the workspace lock; commits each change as it happens."""

    def __init__(self, engine: Engine, workspace: str, lock: locks.Lock):
        super().__init__(engine, workspace)
        self.lock = lock
        self.current_serial: int | None = None
        self._mutex = threading.Lock()  # one SQLite writer at a time across apply threads
        #: resource rows and events: durable on return, committed in groups across threads
        self._commits = GroupCommit(engine, _statements)
        self._ensure_workspace()
        self._close_interrupted()

    def _ensure_workspace(self) -> None:
        if self._workspace() is not None:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(_W).values(
                    name=self.workspace,
                    lineage=str(uuid.uuid4()),
                    serial=0,
                    salt=secrets.token_hex(16),
                    created_at=now(),
                )
            )
        self._workspace()

    def _close_interrupted(self) -> None:
        """Versions left "running" by a writer that died: we hold the lock now."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_V)
                .where(_V.c.workspace_id == self._ws_id())
                .where(_V.c.status == VersionStatus.RUNNING.value)
                .values(status=VersionStatus.INTERRUPTED.value, finished_at=now())
            )

    def begin(
        self,
        operation: str,
        *,
        actor: str,
        spec: dict[str, Any] | None = None,
        plan_hash: str | None = None,
        spec_digest: str | None = None,
        git_sha: str | None = None,
    ) -> int:
        ws_id = self._ws_id()
        with self._mutex, self.engine.begin() as conn:
            serial = conn.execute(select(_W.c.serial).where(_W.c.id == ws_id)).scalar_one() + 1
            conn.execute(update(_W).where(_W.c.id == ws_id).values(serial=serial))
            conn.execute(
                insert(_V).values(
                    workspace_id=ws_id,
                    serial=serial,
                    operation=operation,
                    status=VersionStatus.RUNNING.value,
                    actor=actor,
                    git_sha=git_sha,
                    created_at=now(),
                    plan_hash=plan_hash,
                    spec_digest=spec_digest,
                    spec=json.dumps(spec or {}, sort_keys=True),
                    summary="{}",
                )
            )
        self.current_serial = serial
        self._ws = None
        return serial

    def put(self, write: RecordWrite, *, wait: bool = True) -> Future[None]:
        """Record one resource's new value and its event (``write``): durable when this
        returns, or (``wait=False``) when the returned future completes."""
        serial = self._serial_or_fail()
        rows = write.rows(self._ws_id(), serial, now())
        pending = self._commits.submit(rows, urgent=wait)
        if wait:
            pending.result()
        return pending

    def taint(self, address: str, error: str, action: str) -> None:
        """Mark an existing resource as tainted after a failed update (keeps its last value)."""
        self._set_status(address, "tainted", action, error)

    def note(self, address: str, action: str, error: str) -> None:
        """Record that an operation on ``address`` failed, leaving its record as it was."""
        self._commits.write([("event", self._event(address, action, "error", error))])

    def mark(self, address: str, status: str, note: str) -> None:
        """Record that ``address`` drifted (``drifted``/``missing``), keeping its value."""
        self._set_status(address, status, "refresh", note)

    def _event(self, address: str, action: str, status: str, error: str | None) -> dict[str, Any]:
        return {
            **_EVENT_DEFAULTS,
            "workspace_id": self._ws_id(),
            "serial": self._serial_or_fail(),
            "address": address,
            "action": action,
            "status": str(status),
            "error": error,
            "created_at": now(),
        }

    def _set_status(self, address: str, status: str, action: str, note: str) -> None:
        change = {
            "ws": self._ws_id(),
            "addr": address,
            "status": str(status),
            "serial": self._serial_or_fail(),
            "at": now(),
        }
        event = self._event(address, action, status, note)
        self._commits.write([("status", change), ("event", event)])

    def remove(self, address: str, *, action: str = "delete", error: str | None = None) -> None:
        gone = {"ws": self._ws_id(), "addr": address}
        self._commits.write(
            [("remove", gone), ("event", self._event(address, action, "ok", error))]
        )

    def finish(self, status: str, summary: dict[str, Any], message: str | None = None) -> None:
        serial = self._serial_or_fail()
        self._commits.flush()  # the version ends after every write queued in it
        with self._mutex, self.engine.begin() as conn:
            conn.execute(
                update(_V)
                .where(_V.c.workspace_id == self._ws_id(), _V.c.serial == serial)
                .values(
                    status=status,
                    finished_at=now(),
                    summary=json.dumps(summary, sort_keys=True),
                    message=message,
                )
            )

    def _serial_or_fail(self) -> int:
        if self.current_serial is None:
            raise RuntimeError("begin() a state version before writing to it")
        return self.current_serial

    def close(self) -> None:
        try:
            self._commits.close()
        finally:
            self.lock.release()

    def __enter__(self) -> StateWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
