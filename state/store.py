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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, select, update
from sqlalchemy import delete as sa_delete

from state import locks, migrations
from state.tables import ResourceEvent, ResourceRecord, StateVersion, Workspace

_W = Workspace.__table__  # type: ignore[attr-defined]
_V = StateVersion.__table__  # type: ignore[attr-defined]
_R = ResourceRecord.__table__  # type: ignore[attr-defined]
_E = ResourceEvent.__table__  # type: ignore[attr-defined]


def now() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str, base: Path) -> str:
    """Relative SQLite paths are relative to the spec dir; ``postgresql://`` uses psycopg 3."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and rel != ":memory:":
            path = (base / rel).resolve()
            if base.is_dir():  # never create a spec dir that is not there
                path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{path}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


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


def _record(row: Any) -> Record:
    return Record(
        row["address"],
        row["section"],
        row["name"],
        row["provider"],
        row["status"],
        row["spec_hash"],
        row["meta_hash"],
        row["content_hash"],
        json.loads(row["attributes"]),
        json.loads(row["outputs"]),
        json.loads(row["dependencies"]),
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
            out["spec"] = json.loads(row["spec"])
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
            for key in ("attributes", "outputs"):
                item[key] = json.loads(item[key]) if item[key] else None
            out.append(item)
        return out

    def snapshot(self, serial: int) -> dict[str, dict[str, Any]]:
        """Every resource as it stood after state version ``serial`` (from the events)."""
        resources: dict[str, dict[str, Any]] = {}
        for ev in self.events(upto=serial):
            if ev["action"] in ("delete", "forget"):
                resources.pop(ev["address"], None)
            elif ev["status"] == "ok" and ev["attributes"] is not None:
                resources[ev["address"]] = ev
            elif ev["address"] in resources and ev["status"] in ("tainted", "drifted", "missing"):
                resources[ev["address"]] = {**resources[ev["address"]], "status": ev["status"]}
        return resources


def _version(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("id", None)
    row.pop("workspace_id", None)
    row["summary"] = json.loads(row["summary"]) if row.get("summary") else {}
    return row


class StateWriter(StateReader):
    """Holds the workspace lock; commits each change as it happens."""

    def __init__(self, engine: Engine, workspace: str, lock: locks.Lock):
        super().__init__(engine, workspace)
        self.lock = lock
        self.current_serial: int | None = None
        self._mutex = threading.Lock()  # one SQLite writer at a time across apply threads
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
                .where(_V.c.workspace_id == self._ws_id(), _V.c.status == "running")
                .values(status="interrupted", finished_at=now())
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
                    status="running",
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

    def put(
        self,
        *,
        address: str,
        section: str,
        name: str,
        provider: str,
        action: str,
        status: str = "ok",
        spec_hash: str | None,
        meta_hash: str | None,
        content_hash: str | None,
        attributes: dict[str, Any],
        outputs: dict[str, Any],
        dependencies: list[str],
        error: str | None = None,
    ) -> None:
        """Record one resource's new value (and the event) in one transaction."""
        serial = self._serial_or_fail()
        ws_id = self._ws_id()
        values = {
            "section": section,
            "name": name,
            "provider": provider,
            "status": status,
            "spec_hash": spec_hash,
            "meta_hash": meta_hash,
            "content_hash": content_hash,
            "attributes": json.dumps(attributes, sort_keys=True),
            "outputs": json.dumps(outputs, sort_keys=True),
            "dependencies": json.dumps(sorted(dependencies)),
            "serial": serial,
            "updated_at": now(),
        }
        with self._mutex, self.engine.begin() as conn:
            done = conn.execute(
                update(_R)
                .where(_R.c.workspace_id == ws_id, _R.c.address == address)
                .values(**values)
            ).rowcount
            if not done:
                conn.execute(insert(_R).values(workspace_id=ws_id, address=address, **values))
            conn.execute(
                insert(_E).values(
                    workspace_id=ws_id,
                    serial=serial,
                    address=address,
                    action=action,
                    status=status,
                    provider=provider,
                    spec_hash=spec_hash,
                    meta_hash=meta_hash,
                    content_hash=content_hash,
                    attributes=values["attributes"],
                    outputs=values["outputs"],
                    error=error,
                    created_at=now(),
                )
            )

    def taint(self, address: str, error: str, action: str) -> None:
        """Mark an existing resource as tainted after a failed update (keeps its last value)."""
        self._set_status(address, "tainted", action, error)

    def mark(self, address: str, status: str, note: str) -> None:
        """Record that ``address`` drifted (``drifted``/``missing``), keeping its value."""
        self._set_status(address, status, "refresh", note)

    def _set_status(self, address: str, status: str, action: str, note: str) -> None:
        serial = self._serial_or_fail()
        ws_id = self._ws_id()
        with self._mutex, self.engine.begin() as conn:
            conn.execute(
                update(_R)
                .where(_R.c.workspace_id == ws_id, _R.c.address == address)
                .values(status=status, serial=serial, updated_at=now())
            )
            conn.execute(
                insert(_E).values(
                    workspace_id=ws_id,
                    serial=serial,
                    address=address,
                    action=action,
                    status=status,
                    error=note,
                    created_at=now(),
                )
            )

    def remove(self, address: str, *, action: str = "delete", error: str | None = None) -> None:
        serial = self._serial_or_fail()
        ws_id = self._ws_id()
        with self._mutex, self.engine.begin() as conn:
            conn.execute(sa_delete(_R).where(_R.c.workspace_id == ws_id, _R.c.address == address))
            conn.execute(
                insert(_E).values(
                    workspace_id=ws_id,
                    serial=serial,
                    address=address,
                    action=action,
                    status="ok",
                    error=error,
                    created_at=now(),
                )
            )

    def finish(self, status: str, summary: dict[str, Any], message: str | None = None) -> None:
        serial = self._serial_or_fail()
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
        self.lock.release()

    def __enter__(self) -> StateWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
