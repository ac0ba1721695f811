"""Shared fixtures: spec directories, running the real `mlx` command, PostgreSQL."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
MLX = Path(sys.executable).parent / "mlx"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run_mlx(
    args: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 120,
) -> Run:
    """Run the installed `mlx` console script as a subprocess."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "MLX_ACTOR": "tester"}
    full_env.pop("MLX_ENV", None)
    full_env.pop("MLX_STATE", None)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [str(MLX), *args],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def write_spec(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return directory


BASIC = {
    "data.yaml": """
        datasets:
          train:
            uri: data/train.csv
            owner: team-data
            description: training data
    """,
    "models.yaml": """
        models:
          fraud:
            artifact: model.bin
            owner: team-ml
            description: fraud model
            lineage:
              data: ["${datasets.train}"]
    """,
    "alerts.yaml": """
        alerts:
          oncall:
            type: file
            path: alerts.jsonl
            owner: team-ml
    """,
    "data/train.csv": "a,b\n1,2\n",
    "model.bin": "weights-v1",
}


def secret_spec(directory: Path, variable: str) -> Path:
    """BASIC, with a webhook alert channel whose URL holds ``${env.<variable>}`` (a secret)."""
    alerts = f"""
        alerts:
          oncall:
            type: webhook
            url: "https://hooks.example.com/services/${{env.{variable}}}"
            owner: team-ml
    """
    return write_spec(directory, {**BASIC, "alerts.yaml": alerts})


@pytest.fixture
def basic_spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec", BASIC)


@pytest.fixture
def mlx() -> Callable[..., Run]:
    return run_mlx


# -- PostgreSQL -------------------------------------------------------------------------
#: Set by CI (.ci/run): a test whose optional dependency is missing fails instead of skipping.
REQUIRE_EXTRAS = "MLX_TEST_REQUIRE_EXTRAS"


def require_extra(module: str, extra: str) -> Any:
    """``pytest.importorskip(module)``, except that with ``MLX_TEST_REQUIRE_EXTRAS`` set a
    missing extra is a failure: CI must not pass by skipping what it never ran."""
    if not os.environ.get(REQUIRE_EXTRAS):
        return pytest.importorskip(module, reason=f"the {extra} extra is not installed")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(
            f"{module} is required here ({REQUIRE_EXTRAS} is set): "
            f"pip install 'mlxctl[{extra}]' ({exc})",
            pytrace=False,
        )


def missing_extra(reason: str) -> None:
    """Skip — or, with ``MLX_TEST_REQUIRE_EXTRAS`` set, fail — for a missing tool."""
    if os.environ.get(REQUIRE_EXTRAS):
        pytest.fail(f"{reason} ({REQUIRE_EXTRAS} is set)", pytrace=False)
    pytest.skip(reason)


PG_URL = os.environ.get("MLX_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'mlxctl[postgres]')"
    try:
        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return None
    except Exception as exc:
        return f"no PostgreSQL at {PG_URL}: {exc}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server; dropped afterwards."""
    problem = _pg_reachable()
    if problem:
        if os.environ.get("MLX_TEST_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL is required here (MLX_TEST_REQUIRE_PG is set): {problem}")
        pytest.skip(problem)
    import psycopg

    name = f"mlx_test_{uuid.uuid4().hex[:10]}"
    admin = PG_URL.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
