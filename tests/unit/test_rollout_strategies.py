"""What sets each rollout strategy apart (controller/rollouts/{canary,shadow,ab}.py): the
steps it walks, what a look measures, and where a look's window starts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from analysis.base import Verdict
from analysis.canary import VariantStats
from controller.rollouts.strategy import strategy_of
from controller.state import RolloutState
from specs.rollouts import Rollout


def spec(strategy: str, **over: Any) -> Rollout:
    body: dict[str, Any] = {
        "owner": "t",
        "subject": "models.m",
        "endpoint": "endpoints.m",
        "strategy": strategy,
    }
    body.update(over)
    return Rollout.model_validate(body)


MIRROR = {"mirror": {"percent": 20}}
AB = {"decision": {"metric": "converted"}}
STEPS = [
    # (id, spec, steps as (weight, mirror, pause))
    ("direct", spec("direct"), [(100, None, None)]),
    (
        "canary ends at 100",
        spec("canary", steps=[{"weight": 10, "pause": "5m"}]),
        [(10, None, "5m"), (100, None, None)],
    ),
    (
        "canary already at 100",
        spec("canary", steps=[{"weight": 10, "pause": "5m"}, {"weight": 100}]),
        [(10, None, "5m"), (100, None, None)],
    ),
    ("shadow: one window", spec("shadow", **MIRROR), [(0, 20, "10m"), (100, None, None)]),
    (
        "shadow window from the analysis interval",
        spec("shadow", **MIRROR, analysis={"interval": "2m"}),
        [(0, 20, "2m"), (100, None, None)],
    ),
    (
        "shadow steps keep their own mirror",
        spec("shadow", **MIRROR, steps=[{"mirror": 5, "pause": "1m"}, {"pause": "1m"}]),
        [(0, 5, "1m"), (0, 20, "1m"), (100, None, None)],
    ),
    ("ab splits 50/50 by default", spec("ab", **AB), [(50, None, None)]),
    ("ab takes the first weight", spec("ab", **AB, steps=[{"weight": 20}]), [(20, None, None)]),
]  # fmt: skip


@pytest.mark.parametrize(("rollout", "expected"), [r[1:] for r in STEPS], ids=[r[0] for r in STEPS])
def test_the_steps_each_strategy_walks(rollout: Rollout, expected: list[tuple[Any, ...]]) -> None:
    steps = strategy_of(rollout).steps(rollout)
    assert [(s.weight, s.mirror, s.duration) for s in steps] == expected


def test_only_ab_decides_sequentially_and_only_shadow_reads_pairs() -> None:
    kinds = {"direct": {}, "canary": {"steps": [{"weight": 10}]}, "shadow": MIRROR, "ab": AB}
    flags = {k: strategy_of(spec(k, **v)) for k, v in kinds.items()}
    assert {k for k, s in flags.items() if s.sequential} == {"ab"}
    assert {k for k, s in flags.items() if s.reads_pairs} == {"shadow"}


def test_an_ab_look_reads_since_the_split_began_the_others_since_the_last_look() -> None:
    state = replace(
        RolloutState("rollouts.m", "models.m", "canary"), step_started_at=100.0, window_from=160.0
    )
    assert strategy_of(spec("ab", **AB)).window_from(state) == 100.0
    for kind, extra in (("canary", {"steps": [{"weight": 10}]}), ("shadow", MIRROR)):
        assert strategy_of(spec(kind, **extra)).window_from(state) == 160.0


def test_without_an_analysis_a_look_measures_nothing() -> None:
    metrics = {"stable": VariantStats(100, 0), "candidate": VariantStats(100, 50)}
    for kind, extra in (("canary", {"steps": [{"weight": 10}]}), ("shadow", MIRROR)):
        rollout = spec(kind, **extra)
        assert strategy_of(rollout).measure(rollout, metrics, []) == []
    judged = spec("canary", steps=[{"weight": 10}], analysis={"error_rate": {"max": 0.1}})
    found = strategy_of(judged).measure(judged, metrics, None)
    assert any(m.metric == "error_rate" and m.verdict is Verdict.FAIL for m in found)
