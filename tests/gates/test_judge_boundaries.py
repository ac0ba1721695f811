"""Exact boundaries of the ML gate's comparisons (docs/evals.md): a value equal to ``min``
or ``max`` passes, a drop equal to ``max_drop`` passes; a hair beyond fails. Each case
would catch the comparison moved across its boundary."""

from __future__ import annotations

import pytest

from providers.gates.ml.judge import judge
from specs.evals import Threshold

HAIR = 1e-9  # far above the float tolerance (1e-12), far below any real difference


@pytest.mark.parametrize(
    ("value", "bounds", "baseline", "passed"),
    [
        (0.90, Threshold(min=0.90), None, True),
        (0.90 - HAIR, Threshold(min=0.90), None, False),
        (0.10, Threshold(max=0.10), None, True),
        (0.10 + HAIR, Threshold(max=0.10), None, False),
        # higher is better (roc_auc): a fall equal to max_drop passes
        (0.94, Threshold(max_drop=0.01), 0.95, True),
        (0.94 - HAIR, Threshold(max_drop=0.01), 0.95, False),
        (0.99, Threshold(max_drop=0.01), 0.95, True),
    ],
)
def test_roc_auc_boundaries(value: float, bounds: Threshold, baseline: float | None, passed: bool):
    check = judge("roc_auc", "overall", value, bounds, baseline, "previous v1")
    assert check.passed is passed, check.reasons


@pytest.mark.parametrize(
    ("value", "baseline", "passed"),
    [
        (0.11, 0.10, True),  # a loss: a rise equal to max_drop passes
        (0.11 + HAIR, 0.10, False),
        (0.05, 0.10, True),  # a fall of a loss is an improvement, whatever its size
    ],
)
def test_a_loss_counts_a_rise_as_worse(value: float, baseline: float, passed: bool) -> None:
    check = judge("brier", "overall", value, Threshold(max_drop=0.01), baseline, "previous v1")
    assert check.passed is passed, check.reasons
