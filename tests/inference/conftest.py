"""Fixtures for the inference log: a fresh log on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inference.records import InferenceRecord
from inference.store import LogStore, open_log

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def rec(request_id: str, **kw: Any) -> InferenceRecord:
    """A record with plausible defaults; override any field."""
    values: dict[str, Any] = {
        "ts": T0,
        "endpoint": "fraud",
        "variant": "stable",
        "subject": "models.fraud",
        "version": "1",
        "status": 200,
        "latency_ms": 10.0,
    }
    values.update(kw)
    return InferenceRecord(request_id=request_id, **values)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log' / 'inference.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log' / 'inference.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(log_url: str) -> Iterator[LogStore]:
    s = open_log(log_url)
    yield s
    s.close()
