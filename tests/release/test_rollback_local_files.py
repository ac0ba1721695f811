"""Issue 18, item 26: a rollback cannot rewrite a local file, and says so.

It printed "datasets.x will be updated in place (changed outside mlx: restoring it)" and
"Modifications complete" while data/x.csv kept the bytes it had, and the drift vanished
from the next plan. Through the `mlx` command.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Run, run_mlx, write_spec

A, B, C = "a,b\n1,2\n", "a,b\n9,9\n", "a,b\n5,5\n"


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _ok(run: Run) -> Run:
    assert run.code == 0, run
    return run


def _status(spec: Path) -> str:
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        (status,) = conn.execute(
            "SELECT status FROM mlx_resources WHERE address = 'datasets.x'"
        ).fetchone()
    return str(status)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """Serial 1 applies A, serial 2 applies B."""
    root = write_spec(
        tmp_path / "spec",
        {"data.yaml": "datasets:\n  x: {uri: data/x.csv, owner: team-data}\n", "data/x.csv": A},
    )
    _ok(run_mlx(["apply", "--yes"], root))
    (root / "data" / "x.csv").write_text(B)
    _ok(run_mlx(["apply", "--yes"], root))
    return root


def test_a_rollback_claims_no_restore_of_drifted_local_bytes_and_keeps_the_drift(
    spec: Path,
) -> None:
    (spec / "data" / "x.csv").write_text(C)  # changed behind mlx's back
    _ok(run_mlx(["refresh"], spec))
    assert _status(spec) == "drifted"

    rollback = _ok(run_mlx(["rollback", "--to", "2", "--yes"], spec))
    said = rollback.out + rollback.err
    assert (
        "datasets.x: its bytes at data/x.csv changed outside mlx; mlx cannot restore local "
        f"files: restore data/x.csv yourself (recorded {_sha(B)})"
    ) in said, rollback
    assert "restoring it" not in said and "Modifications complete" not in said, rollback
    assert (spec / "data" / "x.csv").read_text() == C, "mlx never writes the user's files"

    assert _status(spec) == "drifted"
    plan = _ok(run_mlx(["plan"], spec))
    assert "Note: Objects have changed outside of mlx" in plan.out, plan
    assert "# datasets.x has changed outside mlx" in plan.out, plan


def test_a_rollback_to_older_bytes_says_the_local_file_still_holds_newer_ones(
    spec: Path,
) -> None:
    rollback = _ok(run_mlx(["rollback", "--yes"], spec))  # back to serial 1: A
    assert (
        f"# Warning: data/x.csv holds other bytes than version 1 ({_sha(B)[:19]}…); mlx "
        f"cannot restore local files: restore data/x.csv yourself (recorded {_sha(A)})"
    ) in rollback.out, rollback
    assert "datasets.x: Modifications complete" in rollback.out  # the registry went back
    assert (spec / "data" / "x.csv").read_text() == B

    plan = _ok(run_mlx(["plan"], spec))
    assert "bytes changed under an unchanged spec — data/x.csv" in plan.out, plan

    (spec / "data" / "x.csv").write_text(A)  # the user restores it, as told
    assert "No changes." in _ok(run_mlx(["plan"], spec)).out


def test_a_rollback_says_a_local_file_is_gone(spec: Path) -> None:
    (spec / "data" / "x.csv").unlink()
    rollback = _ok(run_mlx(["rollback", "--to", "2", "--yes"], spec))
    assert (
        "datasets.x: data/x.csv is missing or unreadable; mlx cannot restore local files: "
        f"restore data/x.csv yourself (recorded {_sha(B)})"
    ) in rollback.out + rollback.err, rollback
    assert not (spec / "data" / "x.csv").exists()
