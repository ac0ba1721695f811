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
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event


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
