"""What sets one rollout strategy apart from another, for the state machine that walks
them all (``controller.reconcile``) and the pass that observes them
(``controller.rollouts.drive``): the steps it walks, what a look measures, and the window
a look reads.

* ``direct`` and ``canary`` (``controller.rollouts.canary``): timed steps of weight,
  each judged on the candidate's traffic against stable's;
* ``shadow`` (``controller.rollouts.shadow``): steps of mirrored traffic, judged on the
  pairs of answers (the candidate's are never returned), then cut over;
* ``ab`` (``controller.rollouts.ab``): one split held until a sequential test decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from analysis.base import Measurement
from analysis.canary import VariantStats
from controller.state import RolloutState
from specs.rollouts import Rollout, Step


class Strategy(Protocol):
    @property
    def sequential(self) -> bool:
        """The split holds, looked at every interval, until a sequential test ends it (A/B)."""
        ...

    @property
    def reads_pairs(self) -> bool:
        """A look reads the pairs of answers stable and the shadow gave (shadow)."""
        ...

    def steps(self, spec: Rollout) -> list[Step]:
        """The steps it walks; the last one gives the candidate everything."""
        ...

    def measure(
        self,
        spec: Rollout,
        metrics: Mapping[str, VariantStats],
        pairs: Sequence[Any] | None,
    ) -> list[Measurement]:
        """A look's measurements over its window (none: nothing could be measured)."""
        ...

    def window_from(self, state: RolloutState) -> float:
        """Where the window of the next look starts."""
        ...


def strategy_of(spec: Rollout) -> Strategy:
    from controller.rollouts import ab, canary, shadow

    strategies: dict[str, Strategy] = {
        "direct": canary.DIRECT,
        "canary": canary.CANARY,
        "shadow": shadow.SHADOW,
        "ab": ab.AB_TEST,
    }
    return strategies[spec.strategy]
