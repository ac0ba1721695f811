"""Golden plan outputs, kept as data: ``tests/cases/<case>/``.

A case holds ``spec/`` (the spec to plan), optionally ``before/`` (a spec
applied first, so the plan runs against real state), ``args`` (extra plan
flags, one per line), ``env`` (KEY=VALUE lines), ``expected_plan.txt`` and
``expected_plan.json`` (``mlx plan --json`` with the same flags but ``--markdown``; what
differs from run to run, the time and the lineage, masked). Every JSON plan is validated
against the published contract, docs/plan-json.schema.json, before it is compared.
Run with ``UPDATE_GOLDEN=1`` to rewrite the expected files after a deliberate
change — the rewritten cases still fail that run (a file is never compared with
itself); read the diff, then run again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO, run_mlx

CASES = Path(__file__).parent / "cases"
SCHEMA = json.loads((REPO / "docs" / "plan-json.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


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
    _compare(expected_file, actual)

    json_args = [a for a in args if a != "--markdown"]
    as_json = run_mlx(["plan", "--json", *json_args], work, env=env)
    if result.code != 0:  # a plan that fails prints no JSON either
        assert as_json.code == result.code and as_json.out == "", as_json
        return
    assert as_json.code == 0, as_json
    doc = json.loads(as_json.out)
    VALIDATOR.validate(doc)
    _compare(case / "expected_plan.json", _masked(doc, work))


def _masked(doc: dict[str, Any], work: Path) -> str:
    """The document with what differs between runs replaced by a placeholder."""
    assert isinstance(doc["timestamp"], str)
    doc["timestamp"] = "<timestamp>"
    if doc["mlx"]["lineage"] is not None:
        doc["mlx"]["lineage"] = "<lineage>"
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    return text.replace(str(work), "<spec>")


def _compare(expected_file: Path, actual: str) -> None:
    """``actual`` against the file; ``UPDATE_GOLDEN=1`` rewrites a file that differs."""
    expected = expected_file.read_text() if expected_file.exists() else None
    if os.environ.get("UPDATE_GOLDEN") and actual != expected:
        expected_file.write_text(actual)
        pytest.fail(f"UPDATE_GOLDEN rewrote {expected_file}: review the diff, then run again")
    assert actual == expected
