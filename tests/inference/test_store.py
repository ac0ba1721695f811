"""The log's tables on SQLite and PostgreSQL: round trips, idempotent batches, migrations."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from inference import query, schema
from inference.records import Feedback
from inference.store import RECORD_COLUMNS, LogError, LogStore, insert_records_sql, open_log
from tests.inference.conftest import T0, rec


def test_round_trip_keeps_every_field(store: LogStore) -> None:
    full = rec(
        "r-full",
        ts=T0 + 0.125,
        endpoint="support",
        variant="canary",
        subject="prompts.support_answer",
        version="7",
        fingerprint="sha256:abc",
        prompt_version="3",
        retrieval_version="idx-2",
        status=502,
        latency_ms=1234.5,
        input_tokens=120,
        output_tokens=40,
        cost_usd=0.00123,
        cache_hit=True,
        key_hash="k1",
        inputs={"messages": [{"role": "user", "content": "héllo"}], "n": 1.5},
        outputs=[1, "two", None, True],
        error="upstream timed out",
        environment="prod",
    )
    bare = rec("r-bare", endpoint="support", environment="prod", ts=T0 + 1)
    assert store.write([full, bare])
    got = [x.record for x in query.tail(store, "support", environment="prod")]
    assert got == [full, bare]
    assert query.tail(store, "support") == []  # environment "default" has none


def test_the_batch_insert_writes_every_column_of_the_table() -> None:
    """The writer binds positional rows: a column added to the table must be added there."""
    table = [c.name for c in schema.inference.columns if c.name != "id"]
    assert sorted(RECORD_COLUMNS) == sorted(table) and len(set(RECORD_COLUMNS)) == len(table)
    assert insert_records_sql("qmark").count("?") == len(table)
    assert insert_records_sql("pyformat").count("%s") == len(table)
    with pytest.raises(LogError, match="'numeric' driver"):
        insert_records_sql("numeric")


def test_values_a_database_cannot_hold_are_cleaned_not_refused(store: LogStore) -> None:
    odd = rec(
        "r\x00nul",
        inputs={"x": math.nan, "y": math.inf, "s": "a\x00b"},
        outputs={"when": Path("/tmp")},
        error="bad\x00byte",
    )
    store.write([odd])
    (got,) = query.tail(store, "fraud")
    assert got.record.request_id == "rnul" and got.record.error == "badbyte"
    assert got.record.inputs == {"x": None, "y": None, "s": "ab"}
    assert got.record.outputs == {"when": "/tmp"}


def test_a_batch_written_twice_is_stored_once(store: LogStore) -> None:
    batch = [rec(f"r{i}", ts=T0 + i) for i in range(5)]
    fb = [Feedback(request_id="r1", endpoint="fraud", value=1, ts=T0 + 10)]
    assert store.write(batch, fb, batch_id="b-1") is True
    assert store.write(batch, fb, batch_id="b-1") is False  # the retry of a lost commit
    assert store.write(batch[:1], batch_id="b-2") is True
    with store.engine.connect() as conn:
        n = conn.execute(text("SELECT COUNT(*) FROM mlx_inference")).scalar()
        f = conn.execute(text("SELECT COUNT(*) FROM mlx_feedback")).scalar()
    assert (n, f) == (6, 1)


def test_feedback_is_stored_with_its_score(store: LogStore) -> None:
    store.write(
        [],
        [
            Feedback(request_id="a", endpoint="fraud", label="spam", ts=T0),
            Feedback(request_id="b", endpoint="fraud", outcome=True, ts=T0),
            Feedback(request_id="c", endpoint="fraud", value={"stars": 4}, ts=T0),
        ],
    )
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                schema.feedback.c.request_id,
                schema.feedback.c.label,
                schema.feedback.c.outcome,
                schema.feedback.c.value,
                schema.feedback.c.score,
            ).order_by(schema.feedback.c.request_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("a", '"spam"', None, None, None),
        ("b", None, "true", None, 1.0),
        ("c", None, None, '{"stars":4}', None),
    ]


def test_sqlite_is_in_wal_mode(sqlite_url: str) -> None:
    s = open_log(sqlite_url)
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert Path(sqlite_url[len("sqlite:///") :]).exists()


def test_migrations_are_numbered_and_reopening_is_a_no_op(log_url: str) -> None:
    open_log(log_url).close()
    s = open_log(log_url)
    with s.engine.connect() as conn:
        rows = conn.execute(select(schema.schema_version.c.version)).scalars().all()
        names = set(inspect(conn).get_table_names())
    assert rows == [version for version, _, _ in schema.MIGRATIONS] == [1, 2, 3, 4, 5]
    assert schema.CURRENT == 5
    assert {"mlx_inference", "mlx_feedback", "mlx_inference_schema"} <= names
    assert {"mlx_inference_budgets", "mlx_inference_reservations"} <= names


def test_a_version_1_log_is_migrated_and_keeps_its_records(log_url: str) -> None:
    """A log written by an mlx before ``client_request_id`` (schema 1) opens, keeps its rows,
    and gets the column and the index on ``request_id``."""
    from sqlalchemy import create_engine

    from common.db import psycopg_url, sqlite_path

    path = sqlite_path(log_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(psycopg_url(log_url))
    with engine.begin() as conn:
        schema.metadata.create_all(conn, tables=[schema.schema_version])
        step = schema.MIGRATIONS[0][2]
        step(conn)
        conn.execute(
            schema.schema_version.insert().values(
                version=1, applied_at=datetime.now(UTC), description="v1"
            )
        )
        conn.exec_driver_sql(
            "INSERT INTO mlx_inference (environment, endpoint, request_id, variant, ts, status,"
            " latency_ms, latency_bucket, cache_hit) VALUES"
            " ('default', 'fraud', 'old-1', 'stable', 1.0, 200, 5.0, 0, false)"
        )
    engine.dispose()
    s = open_log(log_url)
    s.write([rec("new-1", client_request_id="mine")])
    got = {x.record.request_id: x.record for x in query.tail(s, "fraud", limit=None)}
    assert set(got) == {"old-1", "new-1"}
    assert got["old-1"].client_request_id is None and got["new-1"].client_request_id == "mine"
    with s.engine.connect() as conn:
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("mlx_inference")}
    assert "ix_mlx_inference_request" in indexes
    assert s.answered("fraud", "old-1", "default") and not s.answered("fraud", "x", "default")
    s.close()


def test_a_version_2_log_gets_ttft_ms_and_keeps_its_records(log_url: str) -> None:
    """A log written before ``ttft_ms`` (schema 2) opens, keeps its rows (their ``ttft_ms``
    null, as an answer that was not streamed), and stores the field for new records."""
    from sqlalchemy import create_engine

    from common.db import psycopg_url, sqlite_path

    path = sqlite_path(log_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(psycopg_url(log_url))
    with engine.begin() as conn:
        schema.metadata.create_all(conn, tables=[schema.schema_version])
        for version, description, step in schema.MIGRATIONS[:2]:
            step(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=version, applied_at=datetime.now(UTC), description=description
                )
            )
        conn.exec_driver_sql(
            "INSERT INTO mlx_inference (environment, endpoint, request_id, variant, ts, status,"
            " latency_ms, latency_bucket, cache_hit) VALUES"
            " ('default', 'fraud', 'old-2', 'stable', 1.0, 200, 5.0, 0, false)"
        )
    engine.dispose()
    s = open_log(log_url)
    s.write([rec("streamed", ttft_ms=12.5, latency_ms=80.0), rec("whole")])
    got = {x.record.request_id: x.record for x in query.tail(s, "fraud", limit=None)}
    assert got["old-2"].ttft_ms is None and got["whole"].ttft_ms is None
    assert got["streamed"].ttft_ms == 12.5 and got["streamed"].latency_ms == 80.0
    with s.engine.connect() as conn:
        versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    assert versions == [1, 2, 3, 4, 5]
    s.close()


def test_a_version_3_log_gets_the_budget_ledger_and_keeps_its_records(log_url: str) -> None:
    """A log written before the ledger (schema 3) opens, keeps its rows, and a budget can be
    reserved and settled in it."""
    from sqlalchemy import create_engine

    from common.db import psycopg_url, sqlite_path
    from inference.ledger import Closing, Ledger, Reservation, Status

    path = sqlite_path(log_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(psycopg_url(log_url))
    with engine.begin() as conn:
        schema.metadata.create_all(conn, tables=[schema.schema_version])
        for version, description, step in schema.MIGRATIONS[:3]:
            step(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=version, applied_at=datetime.now(UTC), description=description
                )
            )
        conn.exec_driver_sql(
            "INSERT INTO mlx_inference (environment, endpoint, request_id, variant, ts, status,"
            " latency_ms, latency_bucket, cache_hit) VALUES"
            " ('default', 'fraud', 'old-3', 'stable', 1.0, 200, 5.0, 0, false)"
        )
        assert not inspect(conn).has_table("mlx_inference_budgets")
    engine.dispose()
    s = open_log(log_url)
    assert [x.record.request_id for x in query.tail(s, "fraud")] == ["old-3"]
    ledger = Ledger(s.engine)
    r = ledger.reserve("b", 0, 10, 1, 100, None, 60.0, 1.0)
    assert isinstance(r, Reservation)
    assert ledger.settle(r, 7, 1, 2.0) is Closing.ON_TIME
    assert ledger.status("b", 0) == Status(7, 0, 1, 0, 0)
    s.close()


def test_a_version_3_log_gets_the_usage_and_price_columns_and_keeps_its_records(
    log_url: str,
) -> None:
    """A log written before the raw usage and price were kept (schema 3) opens, keeps its rows
    (their new fields null), and stores every new field for new records."""
    from sqlalchemy import create_engine

    from common.db import psycopg_url, sqlite_path

    path = sqlite_path(log_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(psycopg_url(log_url))
    with engine.begin() as conn:
        schema.metadata.create_all(conn, tables=[schema.schema_version])
        for version, description, step in schema.MIGRATIONS[:3]:
            step(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=version, applied_at=datetime.now(UTC), description=description
                )
            )
        conn.exec_driver_sql(
            "INSERT INTO mlx_inference (environment, endpoint, request_id, variant, ts, status,"
            " latency_ms, latency_bucket, cache_hit, input_tokens, output_tokens, cost_usd)"
            " VALUES ('default', 'fraud', 'old-3', 'stable', 1.0, 200, 5.0, 0, false, 10, 5, 0.5)"
        )
    engine.dispose()
    s = open_log(log_url)
    priced = {
        "cached_input_tokens": 400,
        "price_source": "genai-prices 0.2.5",
        "price_input_per_1m": 0.15,
        "price_output_per_1m": 0.6,
        "price_cached_input_per_1m": 0.075,
        "model": "gpt-4o-mini-2024-07-18",
        "requested_model": "gpt-4o-mini",
    }
    s.write([rec("new-5", input_tokens=1000, output_tokens=100, cost_usd=0.00018, **priced)])
    got = {x.record.request_id: x.record for x in query.tail(s, "fraud", limit=None)}
    old, new = got["old-3"], got["new-5"]
    assert (old.input_tokens, old.cost_usd) == (10, 0.5)
    assert all(getattr(old, name) is None for name in priced)
    assert {name: getattr(new, name) for name in priced} == priced
    s.close()


def test_a_log_from_a_newer_mlx_is_refused(sqlite_url: str) -> None:
    s = open_log(sqlite_url)
    with s.engine.begin() as conn:
        conn.execute(
            schema.schema_version.insert().values(
                version=schema.CURRENT + 1, applied_at=datetime.now(UTC), description="x"
            )
        )
    s.close()
    with pytest.raises(LogError, match="newer than this mlx understands"):
        open_log(sqlite_url)


def test_shares_a_postgresql_database_with_the_state(pg_url: str) -> None:
    from state.store import StateStore, normalize_url

    state = StateStore(normalize_url(pg_url, Path(".")))
    log = open_log(pg_url)
    log.write([rec("r1")])
    with log.engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    assert {"mlx_schema_version", "mlx_inference_schema", "mlx_inference"} <= names
    state.close()
    state = StateStore(normalize_url(pg_url, Path(".")))  # the state still opens and migrates
    assert state.reader("default").serial == 0
    assert [x.record.request_id for x in query.tail(open_log(pg_url), "fraud")] == ["r1"]


def test_an_unreachable_database_is_one_clear_error() -> None:
    with pytest.raises(LogError) as err:
        open_log("postgresql://nobody@127.0.0.1:1/none")
    message = str(err.value)
    assert message.startswith("cannot open the inference log at postgresql+psycopg://nobody@")
    assert "\n" not in message


def test_sqlite_log_pragmas(sqlite_url: str) -> None:
    """The state's pragmas, and no memory-mapped I/O (a truncated file under a map is SIGBUS)."""
    s = open_log(sqlite_url)
    with s.engine.connect() as conn:
        got = {
            p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
            for p in ("journal_mode", "synchronous", "busy_timeout", "mmap_size")
        }
    assert got == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30000, "mmap_size": 0}
    s.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # '@' in the password
        ("postgresql://u:secret@h:notaport/db", "postgresql://u:***@h:notaport/db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),  # shown as written, not %3A-quoted
        ("postgresql+psycopg://u:p@h:5432/db?sslmode=require",
         "postgresql+psycopg://u:***@h:5432/db?sslmode=require"),
    ],
)  # fmt: skip
def test_the_log_url_in_messages_never_shows_its_password(url: str, shown: str) -> None:
    """The log's messages (``mlx serve``'s start line, ``mlx logs``' errors) redact as the
    state's do: a URL SQLAlchemy cannot parse kept its password, one with '@' in it its tail."""
    from common.db import redact_url

    assert redact_url(url) == shown
