"""The database plumbing the state and the inference log share: a URL, its engine, its schema.

Both keep their rows in SQLite (embedded, WAL) or PostgreSQL (psycopg 3), possibly in one
PostgreSQL database, each with its own tables and its own schema-version table. What differs
between them is data, given by each store: the word its messages use, the SQLite pragmas it
needs, its migrations, its version table and its advisory lock (``state.store``,
``state.migrations``, ``inference.store``, ``inference.schema``).

* URLs: ``check_url`` (what mlx can use, or one line saying why not), ``normalize_url``
  (a relative SQLite path is relative to the spec directory; ``postgresql://`` means psycopg 3),
  ``redact_url`` (for messages: never a password), ``sqlite_path`` and ``in_memory``.
* ``make_engine``: an engine with the store's SQLite pragmas run on every new connection.
* ``migrate``: one runner of numbered migrations for both stores. It records each step in the
  store's version table, refuses a database written by a newer mlx, and is safe when two
  processes open a fresh database at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


#: URL schemes mlx accepts, and the backend each names.
SCHEMES = {
    "sqlite": Backend.SQLITE,
    "sqlite+pysqlite": Backend.SQLITE,
    "postgresql": Backend.POSTGRESQL,
    "postgres": Backend.POSTGRESQL,
    "postgresql+psycopg": Backend.POSTGRESQL,
}
_USE = "use sqlite:///PATH or postgresql://…"


# -- URLs ---------------------------------------------------------------------------------
def check_url(url: str, *, what: str, error: type[Exception]) -> Backend:
    """The backend ``url`` names, or ``error`` saying what is wrong with it (one line, the
    password hidden); ``what`` is the store's word in the message ("state")."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise error(f"invalid {what} URL {redact_url(url)!r}: {_USE}")
    backend = SCHEMES.get(scheme.lower())
    if backend is None:
        raise error(f"unsupported {what} URL scheme '{scheme}': {_USE}")
    if backend is Backend.SQLITE:
        if rest and not rest.startswith("/"):
            raise error(
                f"invalid {what} URL {url}: write sqlite:///relative/path.db (three slashes) "
                "or sqlite:////absolute/path.db (four)"
            )
        return backend
    from urllib.parse import urlsplit

    try:
        urlsplit(url).port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise error(
            f"invalid {what} URL {redact_url(url)}: the port must be a number from 1 to 65535"
        ) from None
    return backend


def normalize_url(url: str, base: Path, *, what: str, error: type[Exception]) -> str:
    """``url`` checked (``check_url``), a relative SQLite path resolved against ``base`` (the
    spec dir, whose parent directories of the file are created if ``base`` exists), and
    ``postgresql://`` spelled for psycopg 3."""
    check_url(url, what=what, error=error)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel, mark, query = url[len("sqlite:///") :].partition("?")
        if rel and rel != ":memory:":
            path = (base / rel).resolve()
            if base.is_dir():  # never create a spec dir that is not there
                path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{path}{mark}{query}"
    return psycopg_url(url)


def psycopg_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` as SQLAlchemy's psycopg 3 dialect; others as is."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``; works on URLs that do not parse."""
    scheme, sep, rest = url.partition("://")
    at = rest.partition("?")[0].rfind("@")
    if not sep or at < 0:
        return url
    user, colon, _password = rest[:at].partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{rest[at + 1 :]}"


def in_memory(url: str) -> bool:
    """An in-memory SQLite database: no other process can reach it."""
    return url in ("sqlite://", "sqlite:///:memory:")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, absolute (None: not SQLite, or in memory)."""
    if not url.startswith("sqlite:///") or in_memory(url):
        return None
    return Path(url[len("sqlite:///") :].split("?", 1)[0]).absolute()


# -- engines ------------------------------------------------------------------------------
#: WAL: readers never block the writer, and a committed transaction survives the process
#: being killed (with synchronous=NORMAL only a power loss can take the last commits); a
#: writer waits up to 30 s for another's lock before "database is locked".
WAL_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000")


def _is_sqlite(url: str) -> bool:
    return url.partition("://")[0].lower().startswith("sqlite")


def make_engine(url: str, *, pragmas: Sequence[str] = WAL_PRAGMAS) -> Engine:
    """An engine for ``url`` (checked by the caller): SQLite shared across threads with each
    of ``pragmas`` run on every new connection, in order; PostgreSQL with connections tested
    before use (a server restart is not an error on the next call)."""
    if not _is_sqlite(url):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    statements = tuple(f"PRAGMA {p}" for p in pragmas)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        for statement in statements:
            cur.execute(statement)
        cur.close()

    return engine


# -- migrations ---------------------------------------------------------------------------
class Migration(NamedTuple):
    """One schema step: never edited once released; a change is a new one appended."""

    version: int
    description: str
    step: Callable[[Connection], None]


class SchemaTooNew(Exception):
    """The database was migrated by a newer mlx than this one."""


@dataclass(frozen=True)
class Schema:
    """One store's numbered migrations and where it records them.

    ``table`` has the columns ``version`` (primary key), ``applied_at`` and ``description``;
    each store keeps its own (on disk since its first release: the names never change).
    ``advisory_key`` serialises the store's migrations on PostgreSQL.
    """

    what: str
    table: Table
    migrations: tuple[Migration, ...]
    advisory_key: int

    def __post_init__(self) -> None:
        numbers = [m.version for m in self.migrations]
        if not numbers or numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"{self.what} migrations must be numbered 1, 2, …: {numbers}")

    @property
    def current(self) -> int:
        return self.migrations[-1].version


def current_version(conn: Connection, table: Table) -> int:
    """The newest step recorded in ``table`` (0: none, or no table yet)."""
    if not inspect(conn).has_table(table.name):
        return 0
    return max(conn.execute(select(table.c.version)).scalars().all(), default=0)


def migrate(engine: Engine, schema: Schema) -> int:
    """Bring ``schema`` to its current version in one transaction; ``SchemaTooNew`` if the
    database is newer. Safe when two processes race: PostgreSQL takes the store's advisory
    lock; on SQLite the loser's "already exists" or "locked" is retried (it then finds the
    steps done). Any other error is raised at once (an unreachable server is not retried)."""
    last: Exception | None = None
    for _attempt in range(3):
        try:
            with engine.begin() as conn:
                return _migrate(conn, schema)
        except (IntegrityError, ProgrammingError) as exc:
            last = exc
        except OperationalError as exc:
            if not _is_race(exc):
                raise
            last = exc
    assert last is not None
    raise last


def _migrate(conn: Connection, schema: Schema) -> int:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({schema.advisory_key})")
    have = current_version(conn, schema.table)
    if have > schema.current:
        raise SchemaTooNew(
            f"this {schema.what} uses schema version {have}, newer than this mlx "
            f"understands ({schema.current}); upgrade mlx"
        )
    if have == schema.current:
        return have
    schema.table.metadata.create_all(conn, tables=[schema.table])
    for migration in schema.migrations:
        if migration.version > have:
            migration.step(conn)
            conn.execute(
                schema.table.insert().values(
                    version=migration.version,
                    applied_at=datetime.now(UTC),
                    description=migration.description,
                )
            )
    return schema.current


def _is_race(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "already exists" in text or "locked" in text
