"""controller.step_spans: which step of a rollout served a version during a window."""

from __future__ import annotations

from typing import Any

import pytest

from controller.step_spans import during, spans


def _ev(
    at: float, version: str | None, step: int, weight: int, phase: str = "progressing"
) -> tuple[float, dict[str, Any]]:
    return at, {"candidate_version": version, "step": step, "steps": 2, "weight": weight,
                "step_started_at": at, "phase": phase}  # fmt: skip


HISTORY = [
    _ev(100.0, "7", 0, 25),
    (150.0, {**_ev(100.0, "7", 0, 25)[1], "weight": 30}),  # a later pass of the same step
    _ev(200.0, "7", 1, 100),
    _ev(300.0, None, 0, 0, "completed"),  # completed: no candidate any more
    _ev(500.0, "8", 0, 25),
    _ev(600.0, "8", 0, 25, "paused"),  # paused waits with its traffic
    _ev(700.0, "8", 0, 0, "aborted"),  # aborted: the candidate is out
]


def test_spans_merge_passes_of_one_step_and_end_at_the_next_or_at_the_end() -> None:
    got = [(s.version, s.step, s.steps, s.weight, s.start, s.end) for s in spans("r", HISTORY)]
    assert got == [
        ("7", 1, 2, 30, 100.0, 200.0),
        ("7", 2, 2, 100, 200.0, 300.0),
        ("8", 1, 2, 25, 500.0, 700.0),
    ]


def test_a_first_release_that_completed_at_once_spans_nothing_after() -> None:
    # a first version released straight to 100 %, then completed in the next pass
    history = [_ev(10.0, "1", 1, 100), _ev(10.5, None, 0, 0, "completed")]
    (only,) = spans("r", history)
    assert (only.start, only.end) == (10.0, 10.5)
    assert during(spans("r", history), 20.0, 30.0) == []


def test_a_current_step_is_open_ended() -> None:
    (only,) = spans("r", [_ev(10.0, "2", 0, 50)])
    assert only.end is None
    assert [s.version for s in during([only], 1000.0, 2000.0)] == ["2"]


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (0.0, 50.0, []),  # before the rollout
        (120.0, 150.0, [("7", 1)]),  # inside step 1
        (150.0, 250.0, [("7", 1), ("7", 2)]),  # across the step change
        (200.0, 201.0, [("7", 2)]),  # a step starting at since overlaps; one ending there not
        (350.0, 450.0, []),  # between rollouts
        (650.0, 800.0, [("8", 1)]),  # paused, then aborted inside the window
    ],
)
def test_during_a_window(since: float, until: float, expected: list[tuple[str, int]]) -> None:
    got = [(s.version, s.step) for s in during(spans("r", HISTORY), since, until)]
    assert got == expected


def test_label_names_rollout_step_and_weight() -> None:
    assert spans("rollouts.web", HISTORY)[0].label() == "rollouts.web step 1/2 at 30 %"
