"""common.db: the URL rules and the engines of the state and the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import db
from common.db import Backend


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
