"""The state's numbered schema migrations. Old state keeps loading; newer state is refused.

Add a migration by appending ``Migration(N, description, function)`` to ``MIGRATIONS`` and
a test that a state at version N-1 opens (tests/unit/test_state.py builds each older
version from these steps). The runner is ``common.db.migrate``, shared with the inference
log; the state records its steps in ``mlx_schema_version``.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

from common import db
from common.db import Migration
from state import tables


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


def _v4(conn: Connection) -> None:
    SQLModel.metadata.create_all(
        conn,
        tables=[
            tables.AlertRow.__table__,  # type: ignore[attr-defined]
            tables.OutboxRow.__table__,  # type: ignore[attr-defined]
            tables.SilenceRow.__table__,  # type: ignore[attr-defined]
        ],
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "workspaces, state versions, resources, resource events, locks", _v1),
    Migration(2, "release evidence bound to fingerprints", _v2),
    Migration(3, "embedded gateway routes", _v3),
    Migration(4, "alerts, their delivery outbox and silences", _v4),
)
#: PostgreSQL: the state's migrations hold this advisory lock (the inference log's: 7243101).
SCHEMA = db.Schema(
    "state",
    tables.SchemaVersion.__table__,  # type: ignore[attr-defined]
    MIGRATIONS,
    advisory_key=7243100,
)
CURRENT = SCHEMA.current


def current_version(conn: Connection) -> int:
    return db.current_version(conn, SCHEMA.table)


def migrate(engine: Engine) -> int:
    """Bring the state's schema to ``CURRENT`` (``common.db.SchemaTooNew`` if it is newer)."""
    return db.migrate(engine, SCHEMA)
