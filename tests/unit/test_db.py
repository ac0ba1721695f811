"""common.db: the URL rules, the engines and the one migration runner of the state and the log."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.exc import OperationalError

from common import db
from common.db import Backend, Migration, Schema, SchemaTooNew


class Refused(Exception):
    pass


def _check(url: str) -> Backend:
    return db.check_url(url, what="state", error=Refused)


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite:///x.db", Backend.SQLITE),
        ("sqlite:////abs/x.db", Backend.SQLITE),
        ("sqlite://", Backend.SQLITE),
        ("SQLite+pysqlite:///x.db", Backend.SQLITE),
        ("postgresql://u@h/db", Backend.POSTGRESQL),
        ("postgres://u:p@h:5432/db", Backend.POSTGRESQL),
        ("postgresql+psycopg://h/db", Backend.POSTGRESQL),
    ],
)
def test_urls_mlx_can_use(url: str, backend: Backend) -> None:
    assert _check(url) is backend


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("state.db", "invalid state URL 'state.db': use sqlite:///PATH or postgresql://…"),
        ("mysql://u@h/db", "unsupported state URL scheme 'mysql': use sqlite:///PATH or "),
        ("sqlite://state.db", "invalid state URL sqlite://state.db: write sqlite:///relative"),
        (
            "postgresql://u:secret@h:notaport/db",
            "invalid state URL postgresql://u:***@h:notaport/db: the port must be a number",
        ),
        ("postgresql://h:99999/db", "the port must be a number from 1 to 65535"),
    ],
)
def test_urls_mlx_cannot_use_say_why_in_one_line(url: str, message: str) -> None:
    with pytest.raises(Refused) as err:
        _check(url)
    assert message in str(err.value) and "secret" not in str(err.value)
    assert "\n" not in str(err.value)


def test_the_store_names_itself_in_the_message() -> None:
    with pytest.raises(Refused, match="unsupported inference log URL scheme 'x'"):
        db.check_url("x://y", what="inference log", error=Refused)


def test_normalize_resolves_relative_sqlite_against_the_base(tmp_path: Path) -> None:
    def norm(url: str, base: Path = tmp_path) -> str:
        return db.normalize_url(url, base, what="state", error=Refused)

    assert norm("sqlite:///.mlx/state.db") == f"sqlite:///{tmp_path}/.mlx/state.db"
    assert (tmp_path / ".mlx").is_dir()  # the file's directory is made
    assert norm("sqlite:///s.db?mode=ro") == f"sqlite:///{tmp_path}/s.db?mode=ro"
    assert norm("sqlite:////abs/s.db") == "sqlite:////abs/s.db"
    assert norm("sqlite:///:memory:") == "sqlite:///:memory:"
    assert norm("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert norm("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    missing = tmp_path / "nowhere"
    assert norm("sqlite:///a/s.db", missing) == f"sqlite:///{missing}/a/s.db"
    assert not missing.exists()  # a spec dir that is not there is never created
    with pytest.raises(Refused):
        norm("mysql://h/db")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss@h/db?x=a@b", "postgresql://u:***@h/db?x=a@b"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("not a url", "not a url"),
    ],
)
def test_redaction(url: str, shown: str) -> None:
    assert db.redact_url(url) == shown


def test_sqlite_paths_and_memory() -> None:
    assert db.sqlite_path("sqlite:////a/b.db?mode=ro") == Path("/a/b.db")
    assert db.sqlite_path("sqlite:///b.db") == Path("b.db").absolute()
    assert db.sqlite_path("sqlite:///:memory:") is None
    assert db.sqlite_path("postgresql+psycopg://h/db") is None
    assert db.in_memory("sqlite://") and db.in_memory("sqlite:///:memory:")
    assert not db.in_memory("sqlite:///x.db")


def test_each_new_sqlite_connection_runs_the_pragmas_in_order(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/x.db", pragmas=("user_version=7",))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == 7
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    engine.dispose()
    engine = db.make_engine(f"sqlite:///{tmp_path}/y.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


# -- the migration runner ---------------------------------------------------------------
def _version_table() -> Table:
    return Table(
        "toy_schema",
        MetaData(),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("applied_at", DateTime(timezone=True), nullable=False),
        Column("description", String, nullable=False),
    )


def _schema(steps: int, calls: list[int], table: Table | None = None) -> Schema:
    def step(n: int) -> Migration:
        def run(conn: Connection) -> None:
            calls.append(n)
            conn.exec_driver_sql(f"CREATE TABLE toy_{n} (x INTEGER)")

        return Migration(n, f"step {n}", run)

    table = _version_table() if table is None else table
    return Schema("toy", table, tuple(step(n) for n in range(1, steps + 1)), 1)


def _recorded(url: str, table: Table) -> list[int]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        got = list(conn.execute(select(table.c.version).order_by(table.c.version)).scalars())
    engine.dispose()
    return got


def test_a_fresh_database_runs_every_step_once_and_reopening_runs_none(tmp_path: Path) -> None:
    url, calls, table = f"sqlite:///{tmp_path}/m.db", [], _version_table()
    engine = db.make_engine(url)
    assert db.migrate(engine, _schema(2, calls, table)) == 2
    assert db.migrate(engine, _schema(2, calls, table)) == 2
    assert calls == [1, 2]
    assert _recorded(url, table) == [1, 2]
    engine.dispose()


def test_an_older_database_runs_only_the_new_steps(tmp_path: Path) -> None:
    url, calls, table = f"sqlite:///{tmp_path}/m.db", [], _version_table()
    engine = db.make_engine(url)
    db.migrate(engine, _schema(1, calls, table))
    assert db.migrate(engine, _schema(3, calls, table)) == 3
    assert calls == [1, 2, 3]
    with engine.connect() as conn:
        assert db.current_version(conn, table) == 3
    engine.dispose()


def test_a_database_from_a_newer_mlx_is_refused_untouched(tmp_path: Path) -> None:
    url, calls, table = f"sqlite:///{tmp_path}/m.db", [], _version_table()
    engine = db.make_engine(url)
    db.migrate(engine, _schema(3, calls, table))
    with pytest.raises(SchemaTooNew) as err:
        db.migrate(engine, _schema(2, calls, table))
    assert str(err.value) == (
        "this toy uses schema version 3, newer than this mlx understands (2); upgrade mlx"
    )
    assert calls == [1, 2, 3]
    engine.dispose()


def test_no_version_table_is_version_0(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/m.db")
    with engine.connect() as conn:
        assert db.current_version(conn, _version_table()) == 0
    engine.dispose()


@pytest.mark.parametrize("numbers", [(2,), (1, 3), (1, 1), ()])
def test_migrations_are_numbered_from_one_without_gaps(numbers: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="numbered 1, 2"):
        Schema("toy", _version_table(), tuple(Migration(n, "", print) for n in numbers), 1)


class _Race(Exception):
    pass


@pytest.mark.parametrize(
    ("message", "attempts"),
    [("table toy_1 already exists", 2), ("database is locked", 2), ("disk I/O error", 1)],
)
def test_a_lost_race_is_retried_any_other_error_raised_at_once(
    tmp_path: Path, message: str, attempts: int
) -> None:
    """Two processes opening a fresh SQLite database: the loser's step fails on what the winner
    created, and the next attempt finds the steps done. A real failure is not retried."""
    tries: list[int] = []

    def step(conn: Connection) -> None:
        tries.append(1)
        if len(tries) == 1:
            raise OperationalError("CREATE TABLE toy_1", {}, _Race(message))

    schema = Schema("toy", _version_table(), (Migration(1, "one", step),), 1)
    engine = db.make_engine(f"sqlite:///{tmp_path}/m.db")
    if attempts == 1:
        with pytest.raises(OperationalError, match="disk I/O error"):
            db.migrate(engine, schema)
    else:
        assert db.migrate(engine, schema) == 1
    assert len(tries) == attempts
    engine.dispose()


def test_the_state_and_the_log_keep_their_own_version_tables_and_locks() -> None:
    """On disk since their first release: these names never change."""
    from inference import schema as log_schema
    from state import migrations

    assert (migrations.SCHEMA.table.name, migrations.SCHEMA.advisory_key) == (
        "mlx_schema_version",
        7243100,
    )
    assert (log_schema.SCHEMA.table.name, log_schema.SCHEMA.advisory_key) == (
        "mlx_inference_schema",
        7243101,
    )
