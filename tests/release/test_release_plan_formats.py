"""Issue 8, point 2: plans say what a release releases (``released_version = 1 -> 2``), in
text, Markdown and JSON — for a rollout (an alias move) and for an endpoint moving to a new
version — and applying that plan moves the alias and the endpoint.

The spec is the release tests' (a model, its gate, a rollout to ``production``) plus an
endpoint serving the model. State is set up in-process; the plans are read through the real
``mlx plan`` command in each format.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.plan.model import Action, Reason
from engine.render.json_plan import render_json
from engine.render.markdown import render_markdown
from engine.render.text import render_plan
from tests.conftest import REPO, run_mlx
from tests.release.test_endpoints import ENDPOINT
from tests.release.test_release_safety import SPEC
from tests.support.harness import Workspace

SCHEMA = json.loads((REPO / "docs" / "plan-json.schema.json").read_text())
#: the field of each releasing resource that says which version users get
RELEASES = {"rollouts.m": "released_version", "endpoints.m": "stable_version"}
PASSING_V2 = {"model.txt": "score=0.96"}  # passes min 0.9 and max_drop 0.01 against v1's 0.95


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "spec").write({**SPEC, "endpoints.yaml": ENDPOINT})
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    assert _production(ws) == 1 and _serving(ws) == "v1"
    return ws


def _production(ws: Workspace) -> int | None:
    obj = ws.registry_object("models", "m") or {}
    return (obj.get("aliases") or {}).get("production")


def _serving(ws: Workspace) -> str:
    with sqlite3.connect(ws.root / ".mlx" / "state.db") as conn:
        (doc,) = conn.execute("SELECT doc FROM mlx_gateway_routes WHERE endpoint = 'm'").fetchone()
    return str(json.loads(doc)["traffic"]["stable"])


def _text_block(text: str, address: str) -> list[str]:
    """The lines of one resource's block in a text plan (its ``# …`` header to its ``}``)."""
    lines = text.splitlines()
    opening = next(i for i, line in enumerate(lines) if line.endswith(f" {address} {{"))
    start = opening
    while start > 0 and lines[start - 1].startswith("  # "):
        start -= 1
    end = lines.index("    }", opening)
    return lines[start : end + 1]


def _markdown_block(markdown: str, address: str) -> str:
    """One resource's ``<details>`` section of a Markdown plan."""
    for section in markdown.split("<details>")[1:]:
        head = section.split("</summary>", 1)[0]
        if f" {address}</code>" in head:
            return section.split("</details>", 1)[0]
    raise AssertionError(f"no <details> for {address} in:\n{markdown}")


def _json_change(doc: dict[str, Any], address: str) -> dict[str, Any]:
    (entry,) = [rc for rc in doc["resource_changes"] if rc["address"] == address]
    return dict(entry)


def _check_json(doc: dict[str, Any], address: str, before: Any, after: Any) -> dict[str, Any]:
    import jsonschema

    jsonschema.validate(doc, SCHEMA)
    entry = _json_change(doc, address)
    field = RELEASES[address]
    change = entry["change"]
    assert change["actions"] == ["update"], entry
    assert change["before"][field] == before, entry
    assert change["after"][field] == after, entry
    assert entry["action_reason"] == "release_pending", entry
    assert Reason.RELEASE_PENDING.value in entry["mlx_reasons"], entry
    return change


@pytest.mark.parametrize(
    "stopped_after",
    [
        # the gate ran and passed, then the apply stopped before the release (Ctrl-C, a CI
        # timeout): the issue's case
        "evals.g",
        # only the model was applied (--target): v2 is registered but not judged yet
        "models.m",
    ],
)
def test_a_pending_release_says_1_to_2_in_text_markdown_and_json(
    ws: Workspace, stopped_after: str
) -> None:
    ws.write(PASSING_V2)
    report = ws.apply(targets=[stopped_after])
    assert report is not None and report.ok, ws.output
    assert ws.registry_versions("models", "m") == [1, 2]
    assert _production(ws) == 1 and _serving(ws) == "v1", "nothing is released yet"
    gated = stopped_after == "models.m"  # the gate still has to pass before the release

    text = run_mlx(["plan", "--no-color"], ws.root)
    assert text.code == 0, text
    markdown = run_mlx(["plan", "--markdown"], ws.root)
    assert markdown.code == 0, markdown
    as_json = run_mlx(["plan", "--json"], ws.root)
    assert as_json.code == 0, as_json
    doc = json.loads(as_json.out)

    for address, field in RELEASES.items():
        block = _text_block(text.out, address)
        assert f"  ~ {address} {{" in block, block
        assert f"      ~ {field} = 1 -> 2" in block, block
        assert "  # releases models.m v2 (users get v1 now)" in block, block
        assert ("  # released only if evals.g passes first" in block) is gated, block

        section = _markdown_block(markdown.out, address)
        assert f"! {field} = 1 -> 2" in section.splitlines(), section
        assert "- releases models.m v2 (users get v1 now)" in section, section

        change = _check_json(doc, address, 1, 2)
        assert field not in change["after_unknown"], change
    assert "| `~` | `rollouts.m` | update |" in markdown.out
    assert "| `~` | `endpoints.m` | update |" in markdown.out
    gates = [g["address"] for g in doc["mlx"]["gates"]]
    assert gates == (["evals.g"] if gated else []), doc["mlx"]["gates"]

    applied = run_mlx(["apply", "--yes", "--no-color"], ws.root)
    assert applied.code == 0, applied
    assert _production(ws) == 2, "the alias moved to v2"
    assert _serving(ws) == "v2", "the endpoint serves v2"
    assert ws.outputs("rollouts.m")["released_version"] == 2
    assert ws.outputs("endpoints.m")["stable_version"] == 2
    assert not ws.plan().has_changes, ws.plan_text()


def test_a_release_of_a_version_this_plan_registers(ws: Workspace) -> None:
    """One plan retrains, gates and releases: the version number is the registry's to give,
    so the release reads ``1 -> (known after apply)`` in every format, and the apply moves
    the alias and the endpoint to the version it registered."""
    ws.write(PASSING_V2)
    plan = ws.plan()
    by_address = {c.address: c for c in plan.changes}
    assert by_address["evals.g"].action is Action.RUN
    text, markdown, doc = render_plan(plan), render_markdown(plan), render_json(plan)
    for address, field in RELEASES.items():
        assert by_address[address].action is Action.UPDATE
        block = _text_block(text, address)
        assert f"      ~ {field} = 1 -> (known after apply)" in block, block
        assert "  # released only if evals.g passes first" in block, block
        assert any(
            line.startswith("  # releases models.m a new version (sha256:")
            and line.endswith("(users get v1 now)")
            for line in block
        ), block
        section = _markdown_block(markdown, address)
        assert f"! {field} = 1 -> (known after apply)" in section.splitlines(), section
        change = _check_json(doc, address, 1, None)
        assert change["after_unknown"] == {field: True}, change

    report = ws.apply()
    assert report is not None and report.ok, ws.output
    assert ws.registry_versions("models", "m") == [1, 2]
    assert _production(ws) == 2 and _serving(ws) == "v2"
    assert not ws.plan().has_changes, ws.plan_text()


def test_a_release_the_gate_rejects_is_planned_but_never_applied(ws: Workspace) -> None:
    """The plan still says what would be released; the failing gate keeps users on v1."""
    ws.write({"model.txt": "score=0.50"})
    assert ws.apply(targets=["models.m"]) is not None
    plan = ws.plan()
    doc = render_json(plan)
    for address in RELEASES:
        _check_json(doc, address, 1, 2)
        assert "released only if evals.g passes first" in _markdown_block(
            render_markdown(plan), address
        )
    report = ws.apply()
    assert report is not None and not report.ok
    assert _production(ws) == 1 and _serving(ws) == "v1"
    assert ws.outputs("rollouts.m")["released_version"] == 1
    assert ws.outputs("endpoints.m")["stable_version"] == 1
