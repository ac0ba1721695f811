"""Golden plan outputs, kept as data: ``tests/cases/<case>/``.

A case holds ``spec/`` (the spec to plan), optionally ``before/`` (a spec
applied first, so the plan runs against real state), ``args`` (extra plan
flags, one per line), ``env`` (KEY=VALUE lines) and ``expected_plan.txt``.
Run with ``UPDATE_GOLDEN=1`` to rewrite the expected files after a deliberate
change — the rewritten cases still fail that run (a file is never compared with
itself); read the diff, then run again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_mlx

CASES = Path(__file__).parent / "cases"


def _copy(src: Path, dst: Path) -> None:
    for old in dst.glob("*.y*ml"):
        old.unlink()
    shutil.copytree(src, dst, dirs_exist_ok=True)


def _env(case: Path) -> dict[str, str]:
    path = case / "env"
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_golden_plan(name: str, tmp_path: Path) -> None:
    case = CASES / name
    work = tmp_path / "work"
    work.mkdir()
    env = _env(case)
    if (case / "before").is_dir():
        _copy(case / "before", work)
        applied = run_mlx(["apply", "--yes"], work, env=env)
        assert applied.code == 0, applied
    _copy(case / "spec", work)
    args = (case / "args").read_text().split() if (case / "args").exists() else []
    result = run_mlx(["plan", *args], work, env=env)
    expected_file = case / "expected_plan.txt"
    actual = f"exit {result.code}\n{result.out}{result.err}".replace(str(work), "<spec>")
    expected = expected_file.read_text() if expected_file.exists() else None
    if os.environ.get("UPDATE_GOLDEN") and actual != expected:
        expected_file.write_text(actual)
        pytest.fail(f"UPDATE_GOLDEN rewrote {expected_file}: review the diff, then run again")
    assert actual == expected
