"""`on_failure: pause` on real parts: `mlx serve` answers real HTTP requests, a candidate
that fails every prediction is judged on the traffic the gateway logged, and the rollout
pauses — weights held, the owner alerted, the reason recorded, the alias untouched — until
a person aborts it (`mlx rollout abort --reason`), which takes the candidate to 0."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_mlx
from tests.gateway.slow_models import Crashy
from tests.gateway.support import Served
from tests.rollouts.test_gateway_canary import (
    ROWS,
    SPEC,
    Traffic,
    _drive,
    _train,
    wait_until_only,
)
from tests.support.harness import Workspace

pytestmark = pytest.mark.slow

PAUSING = {
    **SPEC,
    "serving.yaml": SPEC["serving.yaml"].replace(
        "alert: ${alerts.oncall}", "alert: ${alerts.oncall}\n            on_failure: pause"
    ),
}


def _route(ws: Workspace) -> dict[str, Any]:
    (doc,) = ws.sql("SELECT doc FROM mlx_gateway_routes WHERE endpoint = 'm'")[0]
    return dict(json.loads(doc))


def _alerts(ws: Workspace) -> list[dict[str, Any]]:
    lines = (ws.root / ".mlx/alerts.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def served(tmp_path: Path) -> Any:
    ws = Workspace(tmp_path / "spec").write(PAUSING)
    assert "on_failure: pause" in (ws.root / "serving.yaml").read_text()
    _train(ws.root / "model.joblib", seed=1)
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    gateway = Served(ws.root, poll=0.1).wait_ready()
    try:
        yield ws, gateway
    finally:
        gateway.stop()


def test_a_failing_candidate_pauses_holding_its_weight_until_aborted(served: Any) -> None:
    ws, gateway = served
    with (ws.root / "model.joblib").open("wb") as fh:
        pickle.dump(Crashy(width=4), fh)  # loads, then fails every prediction
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    held = {"stable": "v1", "candidate": "v2", "weight": 40, "mirror": 0}
    assert _route(ws)["traffic"] == held
    with Traffic(gateway) as traffic:
        result = _drive(ws)
    assert any(s >= 500 and r == "candidate" for s, r, _ in traffic.replies)

    # paused, for a person, on the failed analysis
    assert result.phase == "paused" and result.waiting == "failure", result
    assert result.message.startswith("paused: analysis fail") and "error_rate" in result.message
    # the weights held: the route the gateway reads, and what the gateway does with it
    assert _route(ws)["traffic"] == held
    assert set(_route(ws)["variants"]) == {"v1", "v2"}, "the candidate is not retired"
    status = json.loads(run_mlx(["rollout", "status", "m", "--json"], ws.root).out)
    assert status["phase"] == "paused" and status["waiting"] == "failure"
    assert status["desired"]["weight"] == 40
    assert status["live"] == held
    replies = [gateway.post("/endpoints/m/invocations", {"instances": ROWS[:1]}) for _ in range(60)]
    candidate = [r for r in replies if r.headers.get("x-mlx-variant") == "candidate"]
    assert candidate and all(r.headers.get("x-mlx-version") == "2" for r in candidate)
    assert all(r.status >= 500 for r in candidate), "the candidate still answers (and fails)"
    # the alias stays where it was
    assert (ws.registry_object("models", "m") or {})["aliases"]["production"] == 1
    # the owner was alerted: what failed, its values, and where to look closer
    alert = _alerts(ws)[-1]
    assert alert["source"] == "rollouts.m" and alert["owner"] == "team-ml"
    assert alert["severity"] == "warning" and "paused" in alert["title"]
    assert "error_rate" in alert["text"] and "Owner: team-ml" in alert["text"]
    assert "`mlx rollout status m`" in alert["text"] and "`mlx logs m" in alert["text"]
    for then in ("`mlx rollout promote m`", "`mlx rollout abort m`", "`mlx rollout retry m`"):
        assert then in alert["text"], alert["text"]  # what to do next, paused
    (failed,) = [m for m in alert["details"]["look"]["measurements"] if m["verdict"] == "fail"]
    assert failed["metric"] == "error_rate" and failed["candidate"] == 1.0
    assert failed["stable"] == 0.0 and failed["threshold"]["max"] == 0.05
    # the reason is in state: the rollout's record and the version that paused it
    assert ws.statuses()["rollouts.m"] == "in_progress"
    assert ws.outputs("rollouts.m")["message"] == result.message
    (summary,) = ws.sql(
        "SELECT summary FROM mlx_state_versions WHERE operation = 'rollout' "
        "ORDER BY serial DESC LIMIT 1"
    )[0]
    assert result.message in json.loads(summary)["events"]

    # a person decides: abort, with why — the candidate goes to 0, stable serves all
    why = "candidate raises on every request"
    aborted = run_mlx(["rollout", "abort", "m", "--reason", why], ws.root, env={"MLX_ACTOR": "ops"})
    assert aborted.code == 0, aborted
    assert _route(ws)["traffic"] == {"stable": "v1", "candidate": None, "weight": 0, "mirror": 0}
    assert set(_route(ws)["variants"]) == {"v1"}
    wait_until_only(gateway, "1")
    assert (ws.registry_object("models", "m") or {})["aliases"]["production"] == 1
    history = run_mlx(["history"], ws.root).out
    assert f"aborted by ops: {why}" in history, history
    status = json.loads(run_mlx(["rollout", "status", "m", "--json"], ws.root).out)
    assert status["phase"] == "aborted" and status["desired"]["weight"] == 0
    assert any(h["action"] == "abort" and why in (h["note"] or "") for h in status["history"])
