"""Shadow rollouts (never expose the candidate, judge its copies) and A/B rollouts (a
sequential decision on the outcome metric, with a sample-ratio check)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from engine.workflows import rollouts
from tests.release.test_release_safety import SPEC
from tests.rollouts.conftest import traffic
from tests.support.harness import Workspace

BASE = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
ENDPOINT = """
    endpoints:
      m: {serves: "${models.m}", owner: team-ml, log: {payloads: 1.0}}
"""
SHADOW = (
    ENDPOINT
    + """
    rollouts:
      m:
        subject: ${models.m}
        endpoint: ${endpoints.m}
        requires: ["${evals.g}"]
        strategy: shadow
        mirror: {percent: 100}
        steps: [{pause: 0.2s}]
        analysis:
          error_rate: {max: 0.05}
          metrics: {agreement: {min: 0.9}}
          min_requests: 20
        owner: team-ml
"""
)
AB = (
    ENDPOINT
    + """
    rollouts:
      m:
        subject: ${models.m}
        endpoint: ${endpoints.m}
        requires: ["${evals.g}"]
        strategy: ab
        steps: [{weight: 50}]
        decision: {metric: conversion, min_samples: 300}
        analysis: {interval: 0.05s, min_requests: 0}
        owner: team-ml
"""
)


def _start(tmp_path: Path, rollout: str) -> Workspace:
    ws = Workspace(tmp_path / "spec").write({**BASE, "rollout.yaml": rollout})
    assert ws.apply() is not None
    ws.write({"model.txt": "score=0.97"})
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    return ws


def _route(ws: Workspace) -> dict:
    (doc,) = ws.sql("SELECT doc FROM mlx_gateway_routes WHERE endpoint = 'm'")[0]
    return dict(json.loads(doc))


def _drive(ws: Workspace, feed: Callable[[int], None], passes: int = 200) -> rollouts.PassResult:
    session = ws.session()
    try:
        for i in range(passes):
            feed(i)
            result = rollouts.step(session, "m")
            if result.done or result.waiting:
                return result
            time.sleep(0.03)
    finally:
        session.close()
    raise AssertionError(f"no end after {passes} passes: {result}")


def test_a_shadow_mirrors_never_exposes_and_cuts_over_when_it_agrees(tmp_path: Path) -> None:
    ws = _start(tmp_path, SHADOW)
    route = _route(ws)
    assert route["traffic"] == {"stable": "v1", "candidate": "v2", "weight": 0, "mirror": 100}
    result = _drive(ws, lambda _i: traffic(ws, "stable", 25, shadow="ok"))
    assert result.phase == "completed", result
    assert _route(ws)["traffic"]["stable"] == "v2"


def test_a_shadow_that_disagrees_is_aborted(tmp_path: Path) -> None:
    ws = _start(tmp_path, SHADOW)
    result = _drive(ws, lambda _i: traffic(ws, "stable", 25, shadow="ok", labels=("0", "1")))
    assert result.phase == "aborted" and "agreement" in result.message, result
    assert _route(ws)["traffic"] == {"stable": "v1", "candidate": None, "weight": 0, "mirror": 0}


def test_an_ab_test_decides_for_a_better_candidate(tmp_path: Path) -> None:
    ws = _start(tmp_path, AB)
    assert _route(ws)["traffic"]["weight"] == 50

    def feed(_i: int) -> None:  # 10% conversion on stable, 25% on the candidate
        traffic(ws, "stable", 40, converted=4)
        traffic(ws, "candidate", 40, converted=10)

    result = _drive(ws, feed)
    assert result.phase == "completed", result
    assert "A/B decided for the candidate" in result.message and "interval" in result.message
    look = ws.outputs("rollouts.m")["looks"][-1]
    assert look["ab"]["verdict"] == "b_better" and look["ab"]["effect"] > 0
    assert look["ab"]["a"]["trials"] >= 300 and look["ab"]["b"]["trials"] >= 300


def test_an_ab_test_keeps_stable_when_the_candidate_is_worse(tmp_path: Path) -> None:
    ws = _start(tmp_path, AB)

    def feed(_i: int) -> None:
        traffic(ws, "stable", 40, converted=12)
        traffic(ws, "candidate", 40, converted=3)

    result = _drive(ws, feed)
    assert result.phase == "aborted" and "decided for stable" in result.message, result
    assert _route(ws)["traffic"]["stable"] == "v1"


def test_a_sample_ratio_mismatch_is_never_decided_on(tmp_path: Path) -> None:
    ws = _start(tmp_path, AB)

    def feed(_i: int) -> None:  # a 50/50 split that the log shows as 70/30: something is off
        traffic(ws, "stable", 70, converted=7)
        traffic(ws, "candidate", 30, converted=9)

    result = _drive(ws, feed)
    assert result.phase == "paused" and result.waiting == "inconclusive", result
