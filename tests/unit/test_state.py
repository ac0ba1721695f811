"""state.store, state.locks, state.migrations — on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from common.db import SchemaTooNew
from state import locks, migrations
from state.store import StateStore
from state.tables import LockRecord, SchemaVersion
from state.writes import RecordWrite


def _put(writer, address: str, value: str, action: str = "create") -> None:  # type: ignore[no-untyped-def]
    writer.put(
        RecordWrite(
            address=address,
            section=address.split(".")[0],
            name=address.split(".")[1],
            provider="default:local",
            action=action,
            spec_hash=value,
            meta_hash="m",
            content_hash=f"c-{value}",
            attributes={"v": value},
            outputs={"version": value},
            dependencies=[],
        )
    )


def _exercise(store: StateStore) -> None:
    reader = store.reader("default")
    assert reader.lineage is None and reader.serial == 0 and reader.index() == {}
    with store.writer("default", who="alice", operation="apply") as w:
        assert w.begin("apply", actor="alice", spec={"resources": {}}) == 1
        _put(w, "models.a", "1")
        _put(w, "models.b", "1")
        w.finish("complete", {"added": 2})
    with store.writer("default", who="bob", operation="apply") as w:
        assert w.begin("apply", actor="bob") == 2
        _put(w, "models.a", "2", "update")
        w.remove("models.b")
        w.finish("complete", {"changed": 1, "destroyed": 1})
    reader = store.reader("default")
    assert reader.serial == 2 and reader.lineage
    assert set(reader.index()) == {"models.a"}
    assert reader.records()["models.a"].outputs == {"version": "2"}
    assert [v["actor"] for v in reader.versions()] == ["alice", "bob"]
    assert set(reader.snapshot(1)) == {"models.a", "models.b"}
    assert reader.snapshot(1)["models.a"]["outputs"] == {"version": "1"}
    assert set(reader.snapshot(2)) == {"models.a"}
    assert store.reader("staging").serial == 0  # another environment, another lineage


def test_sqlite_state_versions_records_and_snapshots(tmp_path: Path) -> None:
    _exercise(StateStore(f"sqlite:///{tmp_path}/state.db"))


@pytest.mark.postgres
def test_postgres_state_versions_records_and_snapshots(pg_url: str) -> None:
    _exercise(StateStore(pg_url.replace("postgresql://", "postgresql+psycopg://")))


def test_lock_names_the_holder_and_unlock_by_id(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    first = store.writer("default", who="alice", operation="apply")
    with pytest.raises(locks.LockHeld) as err:
        store.writer("default", who="bob", operation="apply")
    assert "held by alice (apply" in str(err.value)
    assert first.lock.lock_id in str(err.value)
    with pytest.raises(LookupError):
        store.force_unlock("default", "not-the-id")
    store.force_unlock("default", first.lock.lock_id)
    store.writer("default", who="bob", operation="apply").close()


def test_stale_lock_of_a_dead_process_is_broken(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    with store.engine.begin() as conn:
        conn.execute(
            insert(LockRecord.__table__).values(  # type: ignore[attr-defined]
                workspace="default",
                lock_id="old",
                who="ghost",
                operation="apply",
                host=socket.gethostname(),
                pid=2**22 + 12345,
                created_at=datetime.now(UTC),
            )
        )
    writer = store.writer("default", who="me", operation="apply")
    assert any("broke a stale lock" in w for w in writer.lock.warnings)
    writer.close()


def test_a_live_holder_is_never_broken(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    with store.engine.begin() as conn:
        conn.execute(
            insert(LockRecord.__table__).values(  # type: ignore[attr-defined]
                workspace="default",
                lock_id="live",
                who="me-too",
                operation="apply",
                host=socket.gethostname(),
                pid=os.getppid(),
                created_at=datetime.now(UTC),
            )
        )
    with pytest.raises(locks.LockHeld):
        store.writer("default", who="me", operation="apply", lock_timeout=0.3)


def test_schema_version_is_recorded_and_newer_state_refused(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.CURRENT
    with store.engine.begin() as conn:
        conn.execute(
            insert(SchemaVersion.__table__).values(  # type: ignore[attr-defined]
                version=migrations.CURRENT + 1, applied_at=datetime.now(UTC), description="x"
            )
        )
    with pytest.raises(SchemaTooNew, match="this state uses schema version 5, newer than this mlx"):
        StateStore(f"sqlite:///{tmp_path}/state.db")


def test_interrupted_versions_are_closed_by_the_next_writer(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    w = store.writer("default", who="a", operation="apply")
    w.begin("apply", actor="a")
    _put(w, "models.a", "1")
    w.lock.release()  # the process "died" without finishing
    store.writer("default", who="b", operation="apply").close()
    assert store.reader("default").versions()[0]["status"] == "interrupted"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_state_written_at_each_older_schema_version_opens_and_keeps_its_rows(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """State left by an older mlx (each schema version before ``CURRENT``) is migrated on open,
    keeps what it held, and records every step once."""
    from sqlalchemy import create_engine, select

    for have in range(1, migrations.CURRENT):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/state-v{have}.db"
        else:
            url = str(request.getfixturevalue("pg_url")).replace(
                "postgresql://", "postgresql+psycopg://"
            )
            from sqlalchemy import text

            with create_engine(url).begin() as conn:  # a fresh database for each version
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        old = create_engine(url)
        with old.begin() as conn:
            SchemaVersion.__table__.create(conn)  # type: ignore[attr-defined]
            for version, description, step in migrations.MIGRATIONS[:have]:
                step(conn)
                conn.execute(
                    insert(SchemaVersion.__table__).values(  # type: ignore[attr-defined]
                        version=version, applied_at=datetime.now(UTC), description=description
                    )
                )
        old.dispose()
        store = StateStore(url)
        with store.writer("default", who="a", operation="apply") as w:
            w.begin("apply", actor="a")
            _put(w, "models.a", "1")
            w.finish("complete", {})
        store.close()
        store = StateStore(url)  # and opens again, unchanged
        with store.engine.connect() as conn:
            versions = conn.execute(select(SchemaVersion.version)).scalars().all()  # type: ignore[call-overload]
        assert sorted(versions) == [v for v, _, _ in migrations.MIGRATIONS]
        assert store.reader("default").records()["models.a"].outputs == {"version": "1"}
        store.close()


def test_sqlite_state_pragmas(tmp_path: Path) -> None:
    """WAL (readers never block the writer), synchronous NORMAL, a 30 s busy timeout."""
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    with store.engine.connect() as conn:
        got = {
            p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
            for p in ("journal_mode", "synchronous", "busy_timeout")
        }
    assert got == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30000}
    store.close()
