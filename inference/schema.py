"""The log's tables (SQLAlchemy core) and their numbered migrations.

They may share a PostgreSQL database with mlx's state, so every name starts with
``mlx_inference`` or ``mlx_feedback`` and the log keeps its own schema-version table
(``mlx_inference_schema``); migrations (run by ``common.db.migrate``, as the state's are) take
their own advisory lock.

Indexes, each for a query of ``inference.query`` (each one costs 15-20 % of the write rate,
so there are few; see bench/README.md):

* ``(environment, endpoint, ts, …)``: time windows of one endpoint (summaries, pairs,
  ``--since``). It also holds every column ``variant_summary`` reads (variant, latency bucket,
  status, latency, cost, tokens, cache hit, request id), so a summary never touches the table:
  1.5-1.8 times faster on a 10^6-row window for about 10 % of the insert rate and 70 bytes a
  row
* ``(environment, endpoint, id)``: ``mlx logs`` tails and ``--follow`` cursors
* ``(environment, ts)``: spend of a whole environment, or of one subject (budgets)
* ``(request_id)`` (schema version 2): whether a request id was answered — the gateway's
  404 for feedback on an id it never answered, when the id is not among the ones the
  process remembers (``gateway.ids``). The ids the gateway makes start with the time
  (``gateway.http.new_request_id``), so they land at the index's end like the row ids do and
  cost nothing measurable; ids callers choose are random, and a B-tree over random keys
  roughly halves SQLite's insert rate (bench/inference_log.py: 2*10^5 to 5*10^5 rows, still
  ~20,000 rows/s, several times what one gateway process answers). Version 1 had no index on
  ``request_id`` for that reason; refusing feedback for unknown ids needs one.
* feedback ``(request_id, endpoint, environment)``: the feedback of the requests in a window
  (probed once per request of the window), and ``(environment, endpoint, ts)``: whether an
  endpoint has any feedback since a time (most model endpoints never get any, and their
  summaries then skip the join)

Queries that join on request id (shadow pairs, feedback) are bounded by a window and join
within it.

The budget ledger (schema version 4, ``inference.ledger``) lives here too, because the log's
database is what gateway replicas share: ``mlx_inference_budgets`` holds one row per
(environment, budget, period start) with spend and reservations in integer micro-dollars and
tokens; ``mlx_inference_reservations`` one row per reservation not yet settled, indexed on
``expires_at`` for the sweep of a crashed replica's reservations.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)

from common import db
from common.db import Migration

metadata = MetaData()

_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite: an alias of the rowid

inference = Table(
    "mlx_inference",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("environment", String, nullable=False),
    Column("endpoint", String, nullable=False),
    Column("request_id", String, nullable=False),
    Column("variant", String, nullable=False),
    Column("ts", Double, nullable=False),
    Column("subject", String),
    Column("version", String),
    Column("fingerprint", String),
    Column("prompt_version", String),
    Column("retrieval_version", String),
    Column("status", Integer, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("latency_bucket", SmallInteger, nullable=False),  # inference.buckets
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cost_usd", Double),
    Column("cache_hit", Boolean, nullable=False),
    Column("key_hash", String),
    Column("inputs", Text),  # JSON text, or NULL when the request's payload was not sampled
    Column("outputs", Text),
    Column("error", Text),
    Column("client_request_id", String),  # the caller's x-request-id when it was already used
    Column("ttft_ms", Double),  # time to the first token of a streamed answer (schema 3)
    # an LLM answer's raw usage and price (schema 5): what `mlx logs --reprice` prices again
    Column("cached_input_tokens", Integer),
    Column("price_source", String),
    Column("price_input_per_1m", Double),
    Column("price_output_per_1m", Double),
    Column("price_cached_input_per_1m", Double),
    Column("model", String),
    Column("requested_model", String),
    Index(
        "ix_mlx_inference_window",
        "environment",
        "endpoint",
        "ts",
        # covering: a window's summary and its feedback join read the index alone
        *("variant", "latency_bucket", "status", "latency_ms", "cost_usd", "input_tokens"),
        *("output_tokens", "cache_hit", "request_id"),
    ),
    Index("ix_mlx_inference_cursor", "environment", "endpoint", "id"),
    Index("ix_mlx_inference_env_ts", "environment", "ts"),
    Index("ix_mlx_inference_request", "request_id"),
)

feedback = Table(
    "mlx_feedback",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("environment", String, nullable=False),
    Column("endpoint", String, nullable=False),
    Column("request_id", String, nullable=False),
    Column("ts", Double, nullable=False),
    Column("label", Text),  # JSON text of what was sent
    Column("outcome", Text),
    Column("value", Text),
    Column("score", Double),  # records.score_of
    Index("ix_mlx_feedback_request", "request_id", "endpoint", "environment"),
    Index("ix_mlx_feedback_window", "environment", "endpoint", "ts"),
)

#: One row per batch the writer committed: a batch retried after a commit whose answer was lost
#: (the connection dropped during COMMIT) is recognised and not inserted twice.
batches = Table(
    "mlx_inference_batches",
    metadata,
    Column("batch_id", String, primary_key=True),
    Column("ts", Double, nullable=False),
    Column("records", Integer, nullable=False),
)


def _budget_tables(meta: MetaData) -> tuple[Table, Table]:
    """The ledger's tables, as schema version 4 creates them (``inference.ledger``)."""
    budgets = Table(
        "mlx_inference_budgets",
        meta,
        Column("environment", String, nullable=False),
        Column("budget", String, nullable=False),
        Column("period_start", BigInteger, nullable=False),  # epoch seconds (inference.periods)
        Column("spent_micro", BigInteger, nullable=False, server_default="0"),
        Column("reserved_micro", BigInteger, nullable=False, server_default="0"),
        Column("spent_tokens", BigInteger, nullable=False, server_default="0"),
        Column("reserved_tokens", BigInteger, nullable=False, server_default="0"),
        Column("updated_at", Double),
        PrimaryKeyConstraint("environment", "budget", "period_start"),
    )
    reservations = Table(
        "mlx_inference_reservations",
        meta,
        Column("id", String, primary_key=True),
        Column("environment", String, nullable=False),
        Column("budget", String, nullable=False),
        Column("period_start", BigInteger, nullable=False),
        Column("amount_micro", BigInteger, nullable=False),
        Column("tokens", BigInteger, nullable=False),
        Column("state", String, nullable=False),  # inference.ledger.Held
        Column("created_at", Double, nullable=False),
        Column("expires_at", Double, nullable=False),
        Index("ix_mlx_inference_reservations_expiry", "expires_at"),
    )
    return budgets, reservations


budgets, reservations = _budget_tables(metadata)

schema_version = Table(
    "mlx_inference_schema",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("description", String, nullable=False),
)

#: Migrations take this advisory lock on PostgreSQL (mlx's state uses 7243100).
_ADVISORY_KEY = 7243101


def _v1_tables() -> list[Table]:
    """The tables as schema version 1 created them (frozen: step 1 must never change)."""
    v1 = MetaData()
    records = Table(
        "mlx_inference",
        v1,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("environment", String, nullable=False),
        Column("endpoint", String, nullable=False),
        Column("request_id", String, nullable=False),
        Column("variant", String, nullable=False),
        Column("ts", Double, nullable=False),
        Column("subject", String),
        Column("version", String),
        Column("fingerprint", String),
        Column("prompt_version", String),
        Column("retrieval_version", String),
        Column("status", Integer, nullable=False),
        Column("latency_ms", Double, nullable=False),
        Column("latency_bucket", SmallInteger, nullable=False),
        Column("input_tokens", Integer),
        Column("output_tokens", Integer),
        Column("cost_usd", Double),
        Column("cache_hit", Boolean, nullable=False),
        Column("key_hash", String),
        Column("inputs", Text),
        Column("outputs", Text),
        Column("error", Text),
        Index(
            "ix_mlx_inference_window",
            "environment",
            "endpoint",
            "ts",
            *("variant", "latency_bucket", "status", "latency_ms", "cost_usd", "input_tokens"),
            *("output_tokens", "cache_hit", "request_id"),
        ),
        Index("ix_mlx_inference_cursor", "environment", "endpoint", "id"),
        Index("ix_mlx_inference_env_ts", "environment", "ts"),
    )
    given = Table(
        "mlx_feedback",
        v1,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("environment", String, nullable=False),
        Column("endpoint", String, nullable=False),
        Column("request_id", String, nullable=False),
        Column("ts", Double, nullable=False),
        Column("label", Text),
        Column("outcome", Text),
        Column("value", Text),
        Column("score", Double),
        Index("ix_mlx_feedback_request", "request_id", "endpoint", "environment"),
        Index("ix_mlx_feedback_window", "environment", "endpoint", "ts"),
    )
    done = Table(
        "mlx_inference_batches",
        v1,
        Column("batch_id", String, primary_key=True),
        Column("ts", Double, nullable=False),
        Column("records", Integer, nullable=False),
    )
    return [records, given, done]


def _v1(conn: Connection) -> None:
    tables = _v1_tables()
    tables[0].metadata.create_all(conn, tables=tables)


def _v2(conn: Connection) -> None:
    """``client_request_id``, and the index on ``request_id`` that feedback checks need."""
    conn.exec_driver_sql(f"ALTER TABLE {inference.name} ADD COLUMN client_request_id VARCHAR")
    conn.exec_driver_sql(f"CREATE INDEX ix_mlx_inference_request ON {inference.name} (request_id)")


def _v3(conn: Connection) -> None:
    """``ttft_ms``: time to the first token of a streamed answer (NULL for the rows before,
    as for every answer that was not streamed)."""
    conn.exec_driver_sql(f"ALTER TABLE {inference.name} ADD COLUMN ttft_ms DOUBLE PRECISION")


def _v4(conn: Connection) -> None:
    """The budget ledger's tables (frozen: a later change is a new step)."""
    tables = _budget_tables(MetaData())
    tables[0].metadata.create_all(conn, tables=list(tables))


def _v5(conn: Connection) -> None:
    """An LLM answer's raw usage and the price it was charged at: ``cached_input_tokens``,
    ``price_source``, the rates applied, the model that answered and the one requested (NULL
    for the rows before: ``mlx logs --reprice`` leaves a row without a model alone)."""
    columns = (
        ("cached_input_tokens", "INTEGER"),
        ("price_source", "VARCHAR"),
        ("price_input_per_1m", "DOUBLE PRECISION"),
        ("price_output_per_1m", "DOUBLE PRECISION"),
        ("price_cached_input_per_1m", "DOUBLE PRECISION"),
        ("model", "VARCHAR"),
        ("requested_model", "VARCHAR"),
    )
    for name, kind in columns:
        conn.exec_driver_sql(f"ALTER TABLE {inference.name} ADD COLUMN {name} {kind}")


#: Append ``Migration(N, description, step)`` to change the schema; never edit a released step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "inference records and feedback", _v1),
    Migration(2, "client_request_id; index on request_id", _v2),
    Migration(3, "ttft_ms (time to first token of a streamed answer)", _v3),
    Migration(4, "budget ledger: spend per period and reservations", _v4),
    Migration(5, "raw usage and price of LLM answers (cached tokens, price source, rates)", _v5),
)
SCHEMA = db.Schema("inference log", schema_version, MIGRATIONS, advisory_key=_ADVISORY_KEY)
CURRENT = SCHEMA.current


def current_version(conn: Connection) -> int:
    return db.current_version(conn, schema_version)


def migrate(engine: Engine) -> int:
    """Bring the log's tables to ``CURRENT`` (``common.db.SchemaTooNew`` if they are newer)."""
    return db.migrate(engine, SCHEMA)
