"""Endpoints applied end to end through the engine and the embedded gateway's provider:
an endpoint serves only a version every gate on its subject passed for exactly, moves to a
new one create-before-destroy, and shows hand-edited routing as drift."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.plan.model import Action, Reason
from tests.release.test_release_safety import SPEC
from tests.support.harness import Workspace

ENDPOINT = """
    endpoints:
      m:
        serves: ${models.m}
        owner: team-ml
        log: {payloads: 0.5}
"""


def _route(ws: Workspace, name: str = "m") -> dict[str, Any]:
    with sqlite3.connect(ws.root / ".mlx" / "state.db") as conn:
        (doc,) = conn.execute(
            "SELECT doc FROM mlx_gateway_routes WHERE endpoint = ?", (name,)
        ).fetchone()
    return dict(json.loads(doc))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    files = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
    ws = Workspace(tmp_path / "spec").write({**files, "endpoints.yaml": ENDPOINT})
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    return ws


def test_an_endpoint_serves_the_gated_version(ws: Workspace) -> None:
    route = _route(ws)
    assert route["traffic"]["stable"] == "v1" and route["log"] == {"payloads": 0.5}
    assert ws.outputs("endpoints.m")["stable_version"] == 1
    assert not ws.plan().has_changes


def test_a_new_version_moves_the_endpoint_only_after_its_gate(ws: Workspace) -> None:
    ws.write({"model.txt": "score=0.97"})
    plan = ws.plan()
    endpoint = next(c for c in plan.changes if c.address == "endpoints.m")
    assert Reason.RELEASE_PENDING in endpoint.reasons
    assert any("released only if evals.g passes" in d for d in endpoint.details)
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    route = _route(ws)
    assert route["traffic"]["stable"] == "v2"
    assert set(route["variants"]) == {"v2"}, "the old version is retired once v2 serves"
    assert ws.outputs("endpoints.m")["stable_version"] == 2


def test_a_failing_candidate_never_reaches_the_endpoint(ws: Workspace) -> None:
    ws.write({"model.txt": "score=0.10"})
    report = ws.apply()
    assert report is not None and not report.ok
    assert "endpoints.m: skipped: depends on evals.g" in ws.output
    assert _route(ws)["traffic"]["stable"] == "v1"


def test_weights_edited_by_hand_are_drift_and_repaired(ws: Workspace) -> None:
    with sqlite3.connect(ws.root / ".mlx" / "state.db") as conn:
        (doc,) = conn.execute("SELECT doc FROM mlx_gateway_routes").fetchone()
        edited = json.loads(doc)
        edited["traffic"]["stable"] = "v9"  # somebody pointed it elsewhere
        conn.execute("UPDATE mlx_gateway_routes SET doc = ?", (json.dumps(edited),))
    found = ws.refresh()
    assert [d.address for d in found] == ["endpoints.m"]
    plan = ws.plan()
    change = next(c for c in plan.changes if c.address == "endpoints.m")
    assert change.action is Action.UPDATE and Reason.DRIFTED in change.reasons
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    assert _route(ws)["traffic"]["stable"] == "v1"
    assert ws.refresh() == []


def test_removing_an_endpoint_removes_its_route(ws: Workspace) -> None:
    ws.remove("endpoints.yaml")
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    with sqlite3.connect(ws.root / ".mlx" / "state.db") as conn:
        assert conn.execute("SELECT count(*) FROM mlx_gateway_routes").fetchone() == (0,)
