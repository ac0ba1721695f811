"""Numbered schema migrations. Old state keeps loading; newer state is refused.

Add a migration by appending ``(N, description, function)`` to ``MIGRATIONS``
and a fixture of the old schema to ``tests/fixtures/state/`` (dbt keeps one
per state schema version, so should we).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlmodel import SQLModel

from state import tables

Migration = tuple[int, str, Callable[[Connection], None]]


def _v1(conn: Connection) -> None:
    SQLModel.metadata.create_all(
        conn,
        tables=[
            tables.Workspace.__table__,  # type: ignore[attr-defined]
            tables.StateVersion.__table__,  # type: ignore[attr-defined]
            tables.ResourceRecord.__table__,  # type: ignore[attr-defined]
            tables.ResourceEvent.__table__,  # type: ignore[attr-defined]
            tables.LockRecord.__table__,  # type: ignore[attr-defined]
        ],
    )


def _v2(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=[tables.Evidence.__table__])  # type: ignore[attr-defined]


def _v3(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=[tables.GatewayRoute.__table__])  # type: ignore[attr-defined]


MIGRATIONS: list[Migration] = [
    (1, "workspaces, state versions, resources, resource events, locks", _v1),
    (2, "release evidence bound to fingerprints", _v2),
    (3, "embedded gateway routes", _v3),
]
CURRENT = MIGRATIONS[-1][0]


class SchemaTooNew(Exception):
    pass


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(tables.SchemaVersion.__tablename__):
        return 0
    rows = conn.execute(select(tables.SchemaVersion.version)).scalars().all()  # type: ignore[call-overload]
    return max(rows, default=0)


def migrate(engine: object) -> int:
    """Bring the schema to ``CURRENT``; safe when two processes race to do it."""
    from sqlalchemy import Engine

    assert isinstance(engine, Engine)
    last: Exception | None = None
    for _attempt in range(3):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7243100)")
                SQLModel.metadata.create_all(
                    conn,
                    tables=[tables.SchemaVersion.__table__],  # type: ignore[attr-defined]
                )
                have = current_version(conn)
                if have > CURRENT:
                    raise SchemaTooNew(
                        f"this state uses schema version {have}, newer than this mlx "
                        f"understands ({CURRENT}); upgrade mlx"
                    )
                for version, description, step in MIGRATIONS:
                    if version > have:
                        step(conn)
                        conn.execute(
                            tables.SchemaVersion.__table__.insert().values(  # type: ignore[attr-defined]
                                version=version,
                                applied_at=datetime.now(UTC),
                                description=description,
                            )
                        )
                return CURRENT
        except (IntegrityError, OperationalError, ProgrammingError) as exc:
            # another process created the tables at the same moment: look again
            last = exc
    assert last is not None
    raise last
