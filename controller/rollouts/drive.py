"""A rollout as a controller of the pass harness (``controller.harness``): it observes
the endpoint's traffic, takes the pure step (``controller.reconcile``), and carries the
outcome out — deploy, split traffic, retire, move the alias, alert — through the
endpoint's ``Serving`` capability, the subject's ``Registry`` and the channel's
``Notifier`` (reached through the ``World`` the engine hands it).

Level-triggered: every outcome carries the traffic the recorded state wants, so a
controller killed between recording a step and setting its weights converges on its next
pass. Works on every Serving provider (the embedded gateway, SageMaker).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from analysis.base import AnalysisError
from analysis.canary import VariantStats
from analysis.shadow import Pair
from contract import (
    AlertMessage,
    Completion,
    Prior,
    ProviderError,
    Result,
    Serving,
    Variant,
    version_outputs,
)
from controller import reconcile
from controller.harness import Decision, World
from controller.rollouts.strategy import strategy_of
from controller.state import Phase, RolloutState, variant_name
from specs.rollouts import Rollout

Clock = Callable[[], float]  # epoch seconds


class RolloutController:
    """One pass over one rollout: ``start`` a candidate, or ``resume`` what is recorded."""

    def __init__(
        self,
        address: str,
        spec: Rollout,
        world: World,
        step: Callable[[RolloutController], reconcile.Outcome],
        clock: Clock = time.time,
    ):
        self.address, self.spec, self.world, self.clock = address, spec, world, clock
        self.endpoint = spec.endpoint
        self._step = step

    @classmethod
    def start(
        cls,
        address: str,
        spec: Rollout,
        world: World,
        candidate: Mapping[str, Any],
        previous: RolloutState | None,
        rollback: bool = False,
        clock: Clock = time.time,
    ) -> RolloutController:
        """Start releasing ``candidate`` (superseding a candidate still in flight);
        ``rollback``: ``mlx rollback`` is going back to what was released before."""

        def step(self: RolloutController) -> reconcile.Outcome:
            stable = self._stable_now(previous)
            return reconcile.start(
                address, spec, stable, dict(candidate), self.clock(), previous, rollback
            )

        return cls(address, spec, world, step, clock)

    @classmethod
    def resume(
        cls,
        address: str,
        spec: Rollout,
        world: World,
        state: RolloutState,
        clock: Clock = time.time,
    ) -> RolloutController:
        """A pass over a rollout as recorded: requests (promote, abort, retry), the clock,
        due analyses (a settled one only re-asserts its recorded traffic and alias)."""

        def step(self: RolloutController) -> reconcile.Outcome:
            now = self.clock()
            return reconcile.advance(spec, state, self._observe(state, now))

        return cls(address, spec, world, step, clock)

    # -- the harness's controller -------------------------------------------------------
    def decide(self) -> Decision[reconcile.Outcome]:
        outcome = self._step(self)
        state = outcome.state
        return Decision(state.to_outputs(), outcome.events, outcome.done, outcome)

    def carry_out(self, decision: Decision[reconcile.Outcome]) -> list[str]:
        outcome, state = decision.outcome, decision.outcome.state
        failed: list[str] = []
        if self.endpoint is not None:
            endpoint, serving = self._serving()
            if outcome.deploy and state.candidate is not None:
                name = variant_name(state.candidate)
                assert name is not None
                spec = self.world.spec(state.subject) or {}
                serving.deploy(endpoint, Variant(name, state.subject, state.candidate, spec))
            wanted = outcome.traffic  # every outcome carries the recorded split: re-asserted
            if wanted is not None:
                live = serving.traffic(endpoint)
                if live != wanted:
                    serving.set_traffic(endpoint, wanted)
            for variant in outcome.retire:
                try:
                    serving.retire(endpoint, variant)
                except ProviderError as exc:  # a variant already gone is no reason to stop
                    failed.append(f"could not retire {variant}: {exc}")
        if outcome.alias is not None and self.spec.alias:
            self.world.set_alias(state.subject, self.spec.alias, outcome.alias)
        if outcome.alert is not None:
            not_sent = self._alert(outcome.alert)
            if not_sent:
                failed.append(not_sent)
        return failed

    def result(self, decision: Decision[reconcile.Outcome]) -> Result:
        state = decision.outcome.state
        return Result(
            state.to_outputs() | {"events": decision.events},
            completion=Completion.DONE if decision.done else Completion.IN_PROGRESS,
            next_step=state.message or None,
            touched=(self.endpoint,) if self.endpoint else (),
        )

    # -- the world ---------------------------------------------------------------------
    def _serving(self) -> tuple[Prior, Serving]:
        assert self.endpoint is not None
        return self.world.serving(self.endpoint)

    def _stable_now(self, previous: RolloutState | None) -> dict[str, Any] | None:
        """What users get now: the endpoint's live stable variant (or the registry's)."""
        if previous is not None and previous.stable:
            return dict(previous.stable)
        if self.endpoint is None:
            return None
        endpoint, serving = self._serving()
        live = serving.traffic(endpoint)
        if live is None:
            return None
        variants = endpoint.outputs.get("variants") or {}
        known = variants.get(live.stable)
        if not isinstance(known, Mapping):
            return None
        return version_outputs(known)

    def _observe(self, state: RolloutState, now: float) -> reconcile.Observation:
        due = (state.next_look_at is not None and now >= state.next_look_at) or (
            state.pause_until is not None and now >= state.pause_until
        )
        if not due or self.endpoint is None or state.phase is not Phase.PROGRESSING:
            return reconcile.Observation(now)  # nothing to judge (a paused one waits for a person)
        endpoint, serving = self._serving()
        # an A/B test's sequential test takes the counts since it began; canary and shadow
        # analyses judge the window since the last look
        strategy = strategy_of(self.spec)
        since = strategy.window_from(state)
        try:
            by_role = serving.variant_metrics(endpoint, since, now)
            metrics = {str(role): VariantStats.from_metrics(m) for role, m in by_role.items()}
            pairs = (
                [Pair(**p) for p in serving.shadow_pairs(endpoint, since, now)]
                if strategy.reads_pairs
                else None
            )
        except (ProviderError, OSError, AnalysisError) as exc:
            # a look that could not be taken: an error (counted toward
            # consecutive_error_limit), never a pass
            return reconcile.Observation(now, error=str(exc))
        return reconcile.Observation(now, metrics=metrics, pairs=pairs)

    def _alert(self, message: AlertMessage) -> str | None:
        """Send the alert to the rollout's channel; what went wrong, if it could not."""
        channel = self.spec.alert
        if not channel:
            return None
        try:
            self.world.notify(channel, message)
        except (ProviderError, OSError) as exc:
            return f"could not alert {channel}: {exc}"
        return None
