"""The whole action table, applied: data-driven cases in ``tests/actions/<case>/steps.yaml``.

Each case starts from the spec in ``tests/actions/_base/`` (a dataset feeding a model, a
gate on it, a rollout moving the ``production`` alias, an alert channel), applied once.
Then every step may edit files (``write``, ``remove``), plans with options, compares the
plan text with ``NN.plan.txt`` and the JSON plan with the published schema, applies it
(``apply: fresh | saved | rollback | interrupted``), and checks what the apply left in
state and in the registry (``expect``). The engine runs in-process (tests/support/harness).

``UPDATE_GOLDEN=1`` rewrites the plan files that differ — and those cases fail that run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.render.json_plan import render_json
from engine.render.text import render_plan
from tests.conftest import REPO
from tests.support.harness import Workspace

CASES = Path(__file__).parent / "actions"
SCHEMA = json.loads((REPO / "docs" / "plan-json.schema.json").read_text())
BASE_FILES = {
    "data/train.csv": "a,b\n1,2\n",
    "data/eval.csv": "x,y\n1,0\n2,1\n",
    "model.txt": "score=0.95",
}


_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00)?")


def _cases() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if p.is_dir() and not p.name.startswith("_"))


def _workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "spec"
    shutil.copytree(CASES / "_base", root)
    ws = Workspace(root).write(BASE_FILES)
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    return ws


def _edit(ws: Workspace, step: dict[str, Any]) -> None:
    for name, text in (step.get("write") or {}).items():
        path = ws.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name in step.get("remove") or []:
        (ws.root / name).unlink()


def _golden(case: Path, index: int, text: str, ws: Workspace) -> list[str]:
    actual = _TIME.sub("<time>", text.replace(str(ws.root), "<spec>"))
    path = case / f"{index:02d}.plan.txt"
    expected = path.read_text() if path.exists() else None
    if actual == expected:
        return []
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual)
        return [f"UPDATE_GOLDEN rewrote {path.name}: review the diff, then run again"]
    return [f"{path.name} differs:\n--- expected\n{expected}\n--- actual\n{actual}"]


def _apply(ws: Workspace, how: str, options: dict[str, Any], tmp: Path) -> Any:
    if how == "fresh":
        return ws.apply(**options)
    if how == "saved":
        saved = tmp / "plan.bin"
        ws.save_plan(saved, **options)
        return ws.apply_saved(saved)
    if how == "rollback":
        return ws.rollback(**options)
    if how == "interrupted":
        with pytest.raises(KeyboardInterrupt):
            ws.apply(**options)
        return None
    raise AssertionError(f"unknown apply mode {how!r}")


def _check(ws: Workspace, expect: dict[str, Any], report: Any) -> None:
    statuses = ws.statuses()
    for address, status in (expect.get("statuses") or {}).items():
        assert statuses.get(address) == status, (address, statuses)
    for address in expect.get("absent") or []:
        assert address not in statuses, (address, statuses)
    for address, versions in (expect.get("versions") or {}).items():
        section, name = address.split(".", 1)
        assert ws.registry_versions(section, name) == versions, address
    for address, aliases in (expect.get("aliases") or {}).items():
        section, name = address.split(".", 1)
        obj = ws.registry_object(section, name) or {}
        assert obj.get("aliases", {}) == aliases, (address, obj)
    for address, outputs in (expect.get("outputs") or {}).items():
        recorded = ws.outputs(address)
        for key, value in outputs.items():
            assert recorded.get(key) == value, (address, key, recorded)
    if "gate_runs" in expect:
        assert len(ws.gate_calls()) == expect["gate_runs"], ws.gate_calls()
    if "report" in expect:
        want = dict(expect["report"])
        ok = want.pop("ok", None)
        assert report is not None, "the apply changed nothing"
        if ok is not None:
            assert report.ok is ok, ws.output
        summary = report.summary()
        for key, value in want.items():
            assert summary[key] == value, (key, summary)
    for text in expect.get("output") or []:
        assert text in ws.output, ws.output
    if expect.get("converged"):
        assert not ws.plan().has_changes, ws.plan_text()


@pytest.mark.parametrize("name", _cases())
def test_action(name: str, tmp_path: Path) -> None:
    import jsonschema

    case = CASES / name
    doc = yaml.safe_load((case / "steps.yaml").read_text())
    ws = _workspace(tmp_path)
    problems: list[str] = []
    for index, step in enumerate(doc["steps"], start=1):
        _edit(ws, step)
        options = dict(step.get("options") or {})
        if step.get("apply") != "rollback":
            plan = ws.plan(**options)
            problems += _golden(case, index, render_plan(plan), ws)
            jsonschema.validate(render_json(plan), SCHEMA)
        if step.get("apply"):
            report = _apply(ws, step["apply"], options, tmp_path)
            if step["apply"] == "rollback":  # its plan is what it printed before applying
                printed = ws.output.split("\nPlan: ", 1)
                shown = printed[0] + "\nPlan: " + printed[1].split("\n", 1)[0] + "\n"
                problems += _golden(case, index, shown, ws)
            _check(ws, step.get("expect") or {}, report)
    assert not problems, "\n".join(problems)
