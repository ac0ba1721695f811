"""The log's database: SQLite (WAL) embedded, PostgreSQL (psycopg 3) for several replicas.

One SQLAlchemy-core code path for both; only the JSON functions of ``inference.query`` are
spelled per dialect. ``LogStore.write`` inserts a batch in one transaction. Reads are the
functions of ``inference.query``, also reachable as methods.

A SQLite log remembers which file it opened (device and inode): ``check()`` (before every
batch, and on the writer's idle ticks) raises ``LogGone`` once the path no longer names that
file — deleted or replaced — so records are never written into a file nobody can read again.
``probe()`` is a real write (``mlx serve`` runs it before it binds): a log the process cannot
write, a read-only file or directory or WAL index (``-shm``) among them, is refused at start,
not discovered while answering.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from common import db
from common.db import redact_url
from inference import schema
from inference.buckets import bucket_of
from inference.records import FIELDS, Feedback, InferenceRecord

if TYPE_CHECKING:
    from inference import query

DEFAULT_URL = "sqlite:///.mlx/inference.db"


class LogError(Exception):
    """The log cannot be opened or read; the message is one line for the user."""


class LogGone(LogError):
    """The SQLite file the log was writing vanished (deleted or replaced) under it."""


#: ``common.db``'s WAL pragmas, and no memory-mapped I/O of the database file: a file truncated
#: or a disk filled under a mapping is a SIGBUS that kills the process; read()/write() return
#: errors.
PRAGMAS = (*db.WAL_PRAGMAS, "mmap_size=0")


def open_log(url: str = DEFAULT_URL) -> LogStore:
    """Open (creating or migrating its tables) the log at ``url``.

    A relative SQLite path is relative to the current directory; ``engine.log_location.log_url``
    resolves it against the spec dir.
    """
    url = db.psycopg_url(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    try:
        return LogStore(url)
    except db.SchemaTooNew as exc:
        raise LogError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise LogError(
            f"cannot open the inference log at {redact_url(url)}: {_reason(exc)}"
        ) from exc


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"


class LogStore:
    """One log database. Thread-safe: SQLAlchemy's pool hands each thread its own connection."""

    def __init__(self, url: str):
        self.url = url
        self.engine = db.make_engine(url, pragmas=PRAGMAS)
        self.dialect: str = self.engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise LogError(f"the inference log supports SQLite and PostgreSQL, not {self.dialect}")
        schema.migrate(self.engine)
        self._insert_records = insert_records_sql(self.engine.dialect.paramstyle)
        self._writes = 0
        self.path = db.sqlite_path(url)
        self._identity = _identity(self.path) if self.path is not None else None

    def check(self) -> None:
        """Raise ``LogGone`` if the SQLite file this log opened is no longer at its path."""
        if self.path is None or self._identity is None:
            return
        now = _identity(self.path)
        if now != self._identity:
            what = "deleted" if now is None else "replaced by another file"
            raise LogGone(f"the log database {self.path} was {what} while the gateway wrote to it")

    def probe(self) -> None:
        """Write (and delete) a row, and check what SQLite will need to write later; a
        ``LogError`` naming what is wrong if the log cannot be written."""
        if self.path is not None:
            _writable_files(self.path)
        marker = f"probe-{uuid.uuid4().hex}"
        batches = schema.batches
        try:
            with self.engine.begin() as conn:
                conn.execute(batches.insert().values(batch_id=marker, ts=time.time(), records=0))
                conn.execute(batches.delete().where(batches.c.batch_id == marker))
        except SQLAlchemyError as exc:
            raise LogError(
                f"cannot write the inference log at {redact_url(self.url)}: {_reason(exc)}"
            ) from None

    def answered(self, endpoint: str, request_id: str, environment: str) -> bool:
        """Whether the log holds a record of ``request_id`` at ``endpoint`` (by its index)."""
        t = schema.inference
        query = (
            select(t.c.id)
            .where(
                t.c.request_id == request_id,
                t.c.endpoint == endpoint,
                t.c.environment == environment,
            )
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def write(
        self,
        records: Sequence[InferenceRecord],
        feedback: Sequence[Feedback] = (),
        *,
        batch_id: str | None = None,
    ) -> bool:
        """Insert a batch in one transaction; False if ``batch_id`` was already committed.

        Writing the same ``batch_id`` twice inserts it once: the writer retries a batch whose
        commit may or may not have happened (the connection dropped during COMMIT).
        """
        self.check()
        rows = [record_values(r) for r in records]
        fb_rows = [feedback_row(f) for f in feedback]
        batches = schema.batches
        with self.engine.begin() as conn:
            if batch_id is not None and not self._claim_batch(conn, batch_id, rows, fb_rows):
                return False
            if rows:
                conn.exec_driver_sql(self._insert_records, rows)
            if fb_rows:
                conn.execute(schema.feedback.insert(), fb_rows)
            self._writes += 1
            if batch_id is not None and self._writes % _PRUNE_EVERY == 1:
                conn.execute(batches.delete().where(batches.c.ts < time.time() - _BATCH_MEMORY_S))
        return True

    def _claim_batch(
        self, conn: Any, batch_id: str, rows: Sequence[Any], fb_rows: Sequence[Any]
    ) -> bool:
        """Record ``batch_id`` in this transaction; False if it is already committed.

        ``INSERT … ON CONFLICT DO NOTHING``: when the first attempt's transaction is still
        committing (its COMMIT's answer was lost, the server not yet done), PostgreSQL makes
        this insert wait for it and then skips the row; a SELECT first would have seen nothing
        and the insert then failed on the key, and the batch been written again row by row.
        """
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(schema.batches)
            .values(batch_id=batch_id, ts=time.time(), records=len(rows) + len(fb_rows))
            .on_conflict_do_nothing(index_elements=["batch_id"])
            .returning(schema.batches.c.batch_id)
        )
        return conn.execute(stmt).first() is not None

    def close(self) -> None:
        self.engine.dispose()

    # -- reads (inference.query) -------------------------------------------------------
    def tail(self, endpoint: str, **kw: Any) -> list[query.Logged]:
        from inference import query

        return query.tail(self, endpoint, **kw)

    def variant_summary(self, endpoint: str, **kw: Any) -> dict[str, query.VariantSummary]:
        from inference import query

        return query.variant_summary(self, endpoint, **kw)

    def spend(self, **kw: Any) -> query.Spend:
        from inference import query

        return query.spend(self, **kw)

    def pairs(self, endpoint: str, **kw: Any) -> list[query.Pair]:
        from inference import query

        return query.pairs(self, endpoint, **kw)

    def endpoints(self, **kw: Any) -> list[str]:
        from inference import query

        return query.endpoints(self, **kw)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _writable_files(path: Path) -> None:
    """What SQLite writes besides the database: its directory (the ``-wal`` and ``-shm`` are
    created there) and those files if they exist. With any of them read-only every write would
    fail later (SQLite 3.40 answers "attempt to write a readonly database"; the issue that asked
    for this saw a SIGBUS from a read-only ``-shm`` elsewhere): refused up front, named."""
    for target in (path.parent, path, path.with_name(path.name + "-wal"),
                   path.with_name(path.name + "-shm")):  # fmt: skip
        if target.exists() and not os.access(target, os.W_OK):
            kind = "directory" if target.is_dir() else "file"
            raise LogError(f"cannot write the inference log: the {kind} {target} is read-only")


#: Batch ids are remembered for a day (a retry comes within seconds; a day is generous) and
#: forgotten by every 1000th write.
_BATCH_MEMORY_S = 86_400.0
_PRUNE_EVERY = 1000


# -- records → rows -------------------------------------------------------------------------
#: The record columns ``record_values`` fills, in its order (every column but ``id``): the
#: spec's fields after ``environment``, with the latency's bucket beside the latency.
_AFTER_LATENCY = FIELDS.index("latency_ms") + 1
RECORD_COLUMNS: tuple[str, ...] = (
    "environment",
    *FIELDS[:_AFTER_LATENCY],
    "latency_bucket",
    *FIELDS[_AFTER_LATENCY:],
)


def record_values(r: InferenceRecord) -> tuple[Any, ...]:
    """A record's row, in ``RECORD_COLUMNS`` order: what the writer's INSERT binds."""
    return (
        _text(r.environment),
        _text(r.request_id),
        float(r.ts),
        _text(r.endpoint),
        _text(r.variant),
        _text(r.subject),
        None if r.version is None else _text(str(r.version)),
        _text(r.fingerprint),
        None if r.prompt_version is None else _text(str(r.prompt_version)),
        None if r.retrieval_version is None else _text(str(r.retrieval_version)),
        int(r.status),
        float(r.latency_ms),
        bucket_of(r.latency_ms),
        r.input_tokens,
        r.output_tokens,
        r.cost_usd,
        bool(r.cache_hit),
        _text(r.key_hash),
        payload_json(r.inputs),
        payload_json(r.outputs),
        _text(r.error),
        _text(r.client_request_id),
        None if r.ttft_ms is None else float(r.ttft_ms),
        r.cached_input_tokens,
        _text(r.price_source),
        r.price_input_per_1m,
        r.price_output_per_1m,
        r.price_cached_input_per_1m,
        _text(r.model),
        _text(r.requested_model),
    )


def record_row(r: InferenceRecord) -> dict[str, Any]:
    return dict(zip(RECORD_COLUMNS, record_values(r), strict=True))


def insert_records_sql(paramstyle: str) -> str:
    """The INSERT of a batch of records, as the driver takes it: SQLAlchemy's own executemany
    builds a dict and runs bind processors per row, about half the writer thread's CPU (and its
    hold on the interpreter lock) per record; positional tuples go to the driver as they are
    (measured with 500-record batches, 2026-12-02: SQLite 44 → 34 µs of the writer thread's
    CPU a record, most of the rest inside SQLite with the lock released; PostgreSQL 36 → 19)."""
    marks_of = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # sqlite3; psycopg
    if paramstyle not in marks_of:
        raise LogError(f"the inference log cannot write through a {paramstyle!r} driver")
    mark = marks_of[paramstyle]
    marks = ", ".join([mark] * len(RECORD_COLUMNS))
    return f"INSERT INTO {schema.inference.name} ({', '.join(RECORD_COLUMNS)}) VALUES ({marks})"


def feedback_row(f: Feedback) -> dict[str, Any]:
    return {
        "environment": _text(f.environment),
        "endpoint": _text(f.endpoint),
        "request_id": _text(f.request_id),
        "ts": float(f.ts),
        "label": dump_json(f.label),
        "outcome": dump_json(f.outcome),
        "value": dump_json(f.value),
        "score": f.score,
    }


def _text(value: str | None) -> str | None:
    # PostgreSQL refuses NUL in text; a caller's request id or an upstream's error may hold one
    if value is not None and "\x00" in value:
        return value.replace("\x00", "")
    return value


def dump_json(value: Any) -> str | None:
    """Compact JSON text, or None. Never fails: NaN/inf become null, unknown types their str,
    and NUL characters are removed (PostgreSQL's jsonb refuses ``\\u0000``)."""
    if value is None:
        return None
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(_clean(value), separators=(",", ":"), ensure_ascii=False)
    if "\\u0000" in text:
        text = json.dumps(_clean(value), separators=(",", ":"), ensure_ascii=False)
    return text


#: The most of one payload field (``inputs``, ``outputs``) a record keeps, as JSON text (UTF-8).
PAYLOAD_LIMIT_BYTES = 64 * 1024


def payload_json(value: Any, limit: int = PAYLOAD_LIMIT_BYTES) -> str | None:
    """A record's ``inputs`` or ``outputs`` as the log keeps it: ``dump_json``'s text, or, when
    that is over ``limit`` bytes, a marker saying so and how large it was —
    ``{"$truncated": true, "bytes": N, "limit": L}`` (a prefix of JSON is not JSON; a
    marker cannot be mistaken for a payload). One answer of a model or an LLM can be
    megabytes: the log is for judging and auditing traffic, not a copy of every byte."""
    text = dump_json(value)
    if text is None or len(text) <= limit // 4:  # at most 4 bytes a character: fits
        return text
    size = len(text.encode("utf-8"))
    if size <= limit:
        return text
    return json.dumps({"$truncated": True, "bytes": size, "limit": limit}, separators=(",", ":"))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return str(value).replace("\x00", "")


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
