"""controller.step_spans: which step of a rollout served a version during a window."""

from __future__ import annotations

from typing import Any

import pytest

from controller.step_spans import during, spans


def _out(version: str | None, step: int, steps: int, weight: int, at: float) -> dict[str, Any]:
    return {"candidate_version": version, "step": step, "steps": steps, "weight": weight,
            "step_started_at": at}  # fmt: skip


HISTORY = [
    _out("7", 0, 2, 25, 100.0),
    _out("7", 0, 2, 25, 100.0),  # a later pass of the same step
    _out("7", 1, 2, 100, 200.0),
    _out(None, 0, 0, 0, 0.0),  # completed: no candidate
    _out("8", 0, 2, 25, 500.0),
]


def test_spans_merge_passes_of_one_step_and_end_at_the_next() -> None:
    got = [(s.version, s.step, s.steps, s.weight, s.start, s.end) for s in spans("r", HISTORY)]
    assert got == [
        ("7", 1, 2, 25, 100.0, 200.0),
        ("7", 2, 2, 100, 200.0, 500.0),
        ("8", 1, 2, 25, 500.0, None),
    ]


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (0.0, 50.0, []),  # before the rollout
        (120.0, 150.0, [("7", 1)]),  # inside step 1
        (150.0, 250.0, [("7", 1), ("7", 2)]),  # across the step change
        (200.0, 201.0, [("7", 2)]),  # a step starting at since overlaps; one ending there not
        (600.0, 700.0, [("8", 1)]),  # the current step, open-ended
    ],
)
def test_during_a_window(since: float, until: float, expected: list[tuple[str, int]]) -> None:
    got = [(s.version, s.step) for s in during(spans("r", HISTORY), since, until)]
    assert got == expected


def test_label_names_rollout_step_and_weight() -> None:
    assert spans("rollouts.web", HISTORY)[0].label() == "rollouts.web step 1/2 at 25 %"
