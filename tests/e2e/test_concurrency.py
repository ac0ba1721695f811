"""Two writers at once, and an apply killed with SIGKILL half-way through."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import MLX, REPO, run_mlx, write_spec


def slow_spec(directory: Path, n: int = 5, delay: float = 0.6) -> Path:
    datasets = "\n".join(
        f"  d{i}:\n    uri: d{i}.csv\n    owner: team\n    provider: slow" for i in range(n)
    )
    return write_spec(
        directory,
        {
            "main.yaml": (
                "providers:\n  slow:\n    type: python\n"
                "    factory: tests.support.fake_providers:SlowProvider\n"
                f"    config: {{delay: {delay}}}\n"
                f"datasets:\n{datasets}\n"
            ),
            **{f"d{i}.csv": f"x\n{i}\n" for i in range(n)},
        },
    )


def start_mlx(args: list[str], cwd: Path, state: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLX_ACTOR": "first-writer"}
    if state:
        env["MLX_STATE"] = state
    return subprocess.Popen(
        [str(MLX), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def sqlite_count(spec: Path, sql: str) -> int:
    db = spec / ".mlx" / "state.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_second_apply_fails_naming_the_holder(tmp_path: Path) -> None:
    spec = slow_spec(tmp_path / "spec")
    first = start_mlx(["apply", "--yes", "--parallelism", "1"], spec)
    try:
        wait_for(lambda: sqlite_count(spec, "SELECT count(*) FROM mlx_locks") == 1, "the lock")
        second = run_mlx(["apply", "--yes"], spec)
        assert second.code == 1, second
        assert "is locked: held by first-writer (apply, pid" in second.err, second
        assert f"pid {first.pid} on" in second.err
        assert "mlx state unlock" in second.err
    finally:
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert sqlite_count(spec, "SELECT count(*) FROM mlx_state_versions") == 1
    assert sqlite_count(spec, "SELECT count(*) FROM mlx_resources") == 5


def test_second_apply_waits_with_lock_timeout_and_no_version_is_lost(tmp_path: Path) -> None:
    spec = slow_spec(tmp_path / "spec", n=3, delay=0.4)
    first = start_mlx(["apply", "--yes", "--parallelism", "1"], spec)
    wait_for(lambda: sqlite_count(spec, "SELECT count(*) FROM mlx_locks") == 1, "the lock")
    # while the first apply runs (its spec already read), the spec gains a resource
    (spec / "extra.csv").write_text("y\n1\n")
    write_spec(spec, {"extra.yaml": "datasets:\n  extra:\n    uri: extra.csv\n    owner: team\n"})
    second = run_mlx(["apply", "--yes", "--lock-timeout", "120"], spec)
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert second.code == 0, second
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        versions = conn.execute(
            "SELECT serial, status FROM mlx_state_versions ORDER BY serial"
        ).fetchall()
    assert versions == [(1, "complete"), (2, "complete")]
    assert sqlite_count(spec, "SELECT count(*) FROM mlx_resources") == 4


def test_apply_killed_half_way_leaves_readable_state_and_converges(tmp_path: Path) -> None:
    spec = slow_spec(tmp_path / "spec", n=5, delay=0.6)
    proc = start_mlx(["apply", "--yes", "--parallelism", "1"], spec)
    wait_for(lambda: sqlite_count(spec, "SELECT count(*) FROM mlx_resources") >= 2, "2 resources")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = sqlite_count(spec, "SELECT count(*) FROM mlx_resources")
    assert 2 <= done < 5

    plan = run_mlx(["plan"], spec)
    assert plan.code == 0, plan
    assert f"Plan: {5 - done} to add, 0 to change, 0 to destroy." in plan.out, plan

    again = run_mlx(["apply", "--yes"], spec)
    assert again.code == 0, again
    assert "broke a stale lock left by pid" in again.out
    assert run_mlx(["plan", "--detailed-exitcode"], spec).code == 0
    history = run_mlx(["history"], spec)
    assert "interrupted" in history.out and "complete" in history.out, history


@pytest.mark.postgres
def test_postgres_lock_is_an_advisory_lock_held_across_processes(
    tmp_path: Path, pg_url: str
) -> None:
    import psycopg

    spec = slow_spec(tmp_path / "spec", n=4, delay=0.6)
    first = start_mlx(["apply", "--yes", "--parallelism", "1"], spec, state=pg_url)
    try:
        with psycopg.connect(pg_url) as conn:

            def locked() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                ).fetchone()
                return bool(row and row[0] >= 1)

            wait_for(locked, "an advisory lock")
        second = run_mlx(["apply", "--yes"], spec, env={"MLX_STATE": pg_url})
        assert second.code == 1, second
        assert "held by first-writer (apply" in second.err, second
    finally:
        first.communicate(timeout=120)
    assert first.returncode == 0
    assert run_mlx(["plan", "--detailed-exitcode"], spec, env={"MLX_STATE": pg_url}).code == 0


@pytest.mark.postgres
def test_postgres_lock_dies_with_a_killed_holder(tmp_path: Path, pg_url: str) -> None:
    spec = slow_spec(tmp_path / "spec", n=4, delay=0.6)
    first = start_mlx(["apply", "--yes", "--parallelism", "1"], spec, state=pg_url)
    import psycopg

    def committed() -> bool:
        with psycopg.connect(pg_url) as conn:
            try:
                row = conn.execute("SELECT count(*) FROM mlx_resources").fetchone()
            except psycopg.errors.UndefinedTable:
                return False
            return bool(row and row[0] >= 1)

    wait_for(committed, "a committed resource")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    # the advisory lock went with the killed process's connection: no unlock needed
    again = run_mlx(["apply", "--yes"], spec, env={"MLX_STATE": pg_url})
    assert again.code == 0, again
    assert run_mlx(["plan", "--detailed-exitcode"], spec, env={"MLX_STATE": pg_url}).code == 0


@pytest.mark.postgres
def test_postgres_force_unlock_ends_the_holders_session(tmp_path: Path, pg_url: str) -> None:
    spec = slow_spec(tmp_path / "spec", n=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, pg_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert holder.stdout is not None
    lock_id = holder.stdout.readline().strip()
    assert lock_id, holder.stderr.read() if holder.stderr else ""
    blocked = run_mlx(["apply", "--yes"], spec, env={"MLX_STATE": pg_url})
    assert blocked.code == 1 and lock_id in blocked.err, blocked
    unlocked = run_mlx(["state", "unlock", lock_id], spec, env={"MLX_STATE": pg_url})
    assert unlocked.code == 0, unlocked
    holder.kill()
    holder.wait()
    assert run_mlx(["apply", "--yes"], spec, env={"MLX_STATE": pg_url}).code == 0


HOLD_LOCK = """
import sys, time
from state.store import StateStore
store = StateStore(sys.argv[1].replace("postgresql://", "postgresql+psycopg://"))
writer = store.writer("default", who="stuck-job", operation="apply")
print(writer.lock.lock_id, flush=True)
time.sleep(600)
"""
