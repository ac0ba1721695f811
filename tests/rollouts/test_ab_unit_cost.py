"""An A/B decided on cost per successful outcome with a success-rate guard, driven through
the controller on a real workspace: the inference log (SQLite) holds each answer's price and
feedback as the gateway writes them; each pass runs ``rollouts.step``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.workflows import rollouts
from tests.rollouts.conftest import traffic
from tests.rollouts.test_shadow_ab import BASE, ENDPOINT, _drive, _route, _start
from tests.support.harness import Workspace

UNIT_COST = (
    ENDPOINT
    + """
    rollouts:
      m:
        subject: ${models.m}
        endpoint: ${endpoints.m}
        requires: ["${evals.g}"]
        strategy: ab
        steps: [{weight: 50}]
        decision:
          metric: cost_per_success
          guard: {success_rate: {max_drop: 0.1}}
          min_samples: 300
        analysis: {interval: 0.05s, min_requests: 0}
        owner: team-ml
"""
)
BIG, SMALL = 0.010, 0.004  # $ an answer: stable on a large model, the candidate on a small one


def _feed(
    ws: Workspace, stable: tuple[float | None, int], candidate: tuple[float | None, int]
) -> None:
    """40 answers an arm a pass: (price of an answer, how many succeeded)."""
    traffic(ws, "stable", 40, cost_usd=stable[0], converted=stable[1])
    traffic(ws, "candidate", 40, cost_usd=candidate[0], converted=candidate[1])


@pytest.mark.parametrize(
    ("stable", "candidate", "phase", "words"),
    [
        ((BIG, 36), (SMALL, 36), "completed", "cheaper per success and its quality holds"),
        ((BIG, 36), (SMALL, 20), "aborted", "quality guard failed"),
        ((SMALL, 36), (BIG, 36), "aborted", "costs more per success"),
    ],
    ids=["cheaper-same-quality-promoted", "cheaper-worse-quality-kept", "costlier-kept"],
)
def test_an_ab_on_unit_cost_ends_by_its_rules(
    tmp_path: Path, stable: tuple[float, int], candidate: tuple[float, int], phase: str, words: str
) -> None:
    ws = _start(tmp_path, UNIT_COST)
    assert _route(ws)["traffic"]["weight"] == 50
    result = _drive(ws, lambda _i: _feed(ws, stable, candidate))
    assert result.phase == phase and words in result.message, result
    look = ws.outputs("rollouts.m")["looks"][-1]["ab"]
    assert look["metric"] == "cost_per_success"
    assert look["a"]["trials"] >= 300 and look["b"]["trials"] >= 300
    expected = (stable[0] / (stable[1] / 40), candidate[0] / (candidate[1] / 40))
    assert look["a"]["cost_per_success"] == pytest.approx(expected[0])
    assert look["b"]["cost_per_success"] == pytest.approx(expected[1])
    assert look["guard"]["max_drop"] == 0.1
    assert _route(ws)["traffic"]["stable"] == ("v2" if phase == "completed" else "v1")


def test_an_unpriced_candidate_is_never_decided_on_cost(tmp_path: Path) -> None:
    ws = _start(tmp_path, UNIT_COST)
    result = _drive(ws, lambda _i: _feed(ws, (BIG, 36), (None, 36)))
    assert result.phase == "paused" and result.waiting == "inconclusive", result
    assert "the candidate's spend is $0" in result.message, result
    look = ws.outputs("rollouts.m")["looks"][-1]["ab"]
    assert "answers are unpriced" in look["reason"] and look["b"]["cost_per_success"] is None


def test_no_success_keeps_collecting_never_a_zero_cost(tmp_path: Path) -> None:
    ws = _start(tmp_path, UNIT_COST)
    session = ws.session()
    try:
        for _ in range(10):  # 400 answers each, the candidate never succeeded
            _feed(ws, (BIG, 36), (SMALL, 0))
        result = rollouts.step(session, "m")
        time.sleep(0.06)  # past the 0.05s interval: the next pass looks
        result = rollouts.step(session, "m")
    finally:
        session.close()
    assert result.phase == "progressing", result
    look = ws.outputs("rollouts.m")["looks"][-1]["ab"]
    assert "cost per success is undefined" in look["reason"]
    assert look["b"]["cost_per_success"] is None


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (
            "{metric: cost_per_success, min_samples: 300}",
            "metric cost_per_success needs a quality floor",
        ),
        (
            "{metric: conversion, guard: {success_rate: {max_drop: 0.02}}}",
            "`guard` belongs to metric cost_per_success",
        ),
        (
            "{metric: cost_per_success, guard: {success_rate: {max_drop: 1.5}}}",
            "max_drop",
        ),
        (
            "{metric: cost_per_success, higher_is_better: true, "
            "guard: {success_rate: {max_drop: 0.02}}}",
            "lower is better",
        ),
    ],
    ids=["no-guard", "guard-on-conversion", "drop-above-1", "higher-is-better"],
)
def test_a_decision_that_does_not_fit_is_refused_with_where(
    tmp_path: Path, decision: str, message: str
) -> None:
    rollout = UNIT_COST.replace(
        """        decision:
          metric: cost_per_success
          guard: {success_rate: {max_drop: 0.1}}
          min_samples: 300
""",
        f"        decision: {decision}\n",
    )
    assert rollout != UNIT_COST
    ws = Workspace(tmp_path / "spec").write({**BASE, "rollout.yaml": rollout})
    error = ws.error(ws.plan)
    assert message in error and "rollouts.m" in error, error


def test_a_sample_ratio_mismatch_pauses_as_the_conversion_ab_does(tmp_path: Path) -> None:
    ws = _start(tmp_path, UNIT_COST)

    def feed(_i: int) -> None:  # a 50/50 split that the log shows as 70/30
        traffic(ws, "stable", 70, cost_usd=BIG, converted=63)
        traffic(ws, "candidate", 30, cost_usd=SMALL, converted=27)

    result = _drive(ws, feed)
    assert result.phase == "paused" and result.waiting == "inconclusive", result
    assert "sample ratio mismatch" in result.message, result
