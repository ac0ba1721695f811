"""Hostile input, end to end: paths out of the spec dir, FIFOs, bad state URLs, damaged state.

A plan runs on every pull request. Each case runs the real `mlx` command and
checks: exit code 1, one message naming what and where, no traceback, and the
state left as it was (or not created). Spec-language cases (alias bombs, deep
nesting, escaping paths, variable defaults) are in test_bad_input.py.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.conftest import BASIC, Run, run_mlx, write_spec

BUG = "this is a bug in mlx"


def _clean_failure(result: Run, *fragments: str) -> None:
    assert result.code == 1, result
    assert "Traceback" not in result.err and BUG not in result.err, result
    for fragment in fragments:
        assert fragment in result.err, f"expected {fragment!r}\n{result}"


def _rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        rows: list[tuple[object, ...]] = []
        for table in ("mlx_workspaces", "mlx_state_versions", "mlx_resources", "mlx_locks"):
            rows.extend(conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
        return rows


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    spec = write_spec(tmp_path / "spec", BASIC)
    first = run_mlx(["apply", "--yes"], spec)
    assert first.code == 0, first
    return spec


# -- paths ------------------------------------------------------------------------------------
def test_a_fifo_as_artifact_is_refused_without_hanging(applied: Path) -> None:
    before = _rows(applied / ".mlx" / "state.db")
    os.mkfifo(applied / "pipe.bin")
    write_spec(applied, {"models.yaml": BASIC["models.yaml"].replace("model.bin", "pipe.bin")})
    result = run_mlx(["plan"], applied, timeout=60)
    _clean_failure(result, "models.yaml:3:", "is a FIFO")
    assert _rows(applied / ".mlx" / "state.db") == before


def test_mlx_paths_lets_a_spec_read_a_directory_outside_it(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "weights.bin").write_bytes(b"private weights")
    (shared / "weights.bin").chmod(0o640)
    models = BASIC["models.yaml"].replace("model.bin", "../shared/weights.bin")
    spec = write_spec(tmp_path / "spec", {**BASIC, "models.yaml": models})
    refused = run_mlx(["plan"], spec)
    _clean_failure(refused, "models.yaml:3:", "outside the spec directory", "mlx.paths")
    db = spec / ".mlx" / "state.db"
    assert not db.exists() or _rows(db) == []  # a plan never writes state

    write_spec(spec, {"mlx.yaml": "mlx:\n  paths: [../shared]\n"})
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    blobs = [p for p in (spec / ".mlx" / "registry" / "blobs").rglob("*") if p.is_file()]
    private = [b for b in blobs if b.read_bytes() == b"private weights"]
    assert len(private) == 1
    assert stat.S_IMODE(private[0].stat().st_mode) & ~0o640 == 0  # never wider than its source


# -- state URLs and the state database ------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        (
            "mysql://root:hunter2@127.0.0.1/mlx",
            ["unsupported state URL scheme 'mysql': use sqlite:///PATH or postgresql://"],
        ),
        (
            "postgresql://postgres:hunter2@127.0.0.1:notaport/test",
            ["invalid state URL postgresql://postgres:***@127.0.0.1:notaport/test", "port"],
        ),
        ("sqlite://state.db", ["invalid state URL sqlite://state.db", "sqlite:///"]),
    ],
)
def test_bad_state_urls_are_one_line(basic_spec: Path, url: str, fragments: list[str]) -> None:
    result = run_mlx(["plan", "--state", url], basic_spec)
    _clean_failure(result, *fragments)
    assert "hunter2" not in result.err
    assert len(result.err.strip().splitlines()) == 1, result
    assert not (basic_spec / ".mlx" / "state.db").exists()


def _unprivileged() -> list[str]:
    """A prefix that makes root respect file modes, as every other user does."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root: setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def test_a_read_only_state_database(applied: Path) -> None:
    import subprocess

    from tests.conftest import MLX, REPO

    db = applied / ".mlx" / "state.db"
    write_spec(applied, {"models.yaml": BASIC["models.yaml"].replace("fraud model", "v2")})
    before = db.read_bytes()
    db.chmod(0o444)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLX_ACTOR": "tester"}
    proc = subprocess.run(
        [*_unprivileged(), str(MLX), "apply", "--yes"],
        cwd=applied,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = Run(proc.returncode, proc.stdout, proc.stderr)
    _clean_failure(result, f"state at {db.resolve()} is read-only")
    assert "INSERT" not in result.err and "[SQL" not in result.err, result
    assert db.read_bytes() == before


def test_a_damaged_state_row_names_the_resource(applied: Path) -> None:
    db = applied / ".mlx" / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE mlx_resources SET outputs = '{\"version\": 1' WHERE address = 'models.fraud'"
        )
    before = _rows(db)
    write_spec(applied, {"models.yaml": BASIC["models.yaml"].replace("fraud model", "v2")})
    result = run_mlx(["plan"], applied)
    _clean_failure(result, "models.fraud", "outputs", "mlx state rm models.fraud", "backup")
    assert len(result.err.strip().splitlines()) == 1, result
    assert _rows(db) == before


def test_a_spec_cannot_put_its_state_outside_its_directory(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    spec = write_spec(
        tmp_path / "spec",
        {**BASIC, "mlx.yaml": "mlx:\n  state: sqlite:///../elsewhere/state.db\n"},
    )
    _clean_failure(run_mlx(["plan"], spec), "mlx.state names", "outside the spec directory")
    assert not outside.exists()
    # the operator's own flag may point anywhere
    outside.mkdir()
    flag = run_mlx(["plan", "--state", f"sqlite:///{outside}/state.db"], spec)
    assert flag.code == 0, flag


def test_a_damaged_registry_database_is_one_line_naming_it_and_loses_nothing(
    applied: Path,
) -> None:
    """The local registry's rows live in objects.db: a damaged file is an error that
    names it, on the resource that needed it, and the state keeps what it had."""
    registry = applied / ".mlx" / "registry" / "objects.db"
    for extra in ("-wal", "-shm"):
        Path(f"{registry}{extra}").unlink(missing_ok=True)
    registry.write_bytes(b"this is not a database" * 200)
    db = applied / ".mlx" / "state.db"

    def resources() -> list[tuple[object, ...]]:
        with sqlite3.connect(db) as conn:
            return list(conn.execute("SELECT * FROM mlx_resources ORDER BY address"))

    before = resources()
    write_spec(applied, {"model.bin": "weights-v2"})  # a new version to register
    result = run_mlx(["apply", "--yes"], applied)
    _clean_failure(result, f"the local registry's database {registry}", "file is not a database")
    assert resources() == before, "a failed update keeps every record as it was"
