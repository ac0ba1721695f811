"""Doing what one controller pass decided: deploy, split traffic, retire, move the alias,
alert — through the endpoint's ``Serving`` capability and the engine's peers.

Level-triggered: each pass first re-asserts the traffic the recorded state wants (a
controller killed between recording a step and setting its weights converges on the
next pass), then records the step it is about to take (``Peers.checkpoint``), then
takes it. Works on every Serving provider (the embedded gateway, SageMaker).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from analysis.base import AnalysisError
from analysis.canary import VariantStats
from analysis.shadow import Pair
from contract import (
    AlertMessage,
    Completion,
    Peers,
    Prior,
    ProviderError,
    Result,
    Serving,
    Traffic,
    Variant,
)
from controller import reconcile
from controller.state import Phase, RolloutState, variant_name
from specs.rollouts import Rollout

Clock = Any  # a callable returning epoch seconds


class Drive:
    def __init__(self, address: str, spec: Rollout, peers: Peers, clock: Clock = time.time):
        self.address, self.spec, self.peers, self.clock = address, spec, peers, clock
        self.endpoint = spec.endpoint

    # -- entry points ------------------------------------------------------------------
    def begin(
        self, candidate: Mapping[str, Any], previous: RolloutState | None, rollback: bool = False
    ) -> Result:
        """Start releasing ``candidate`` (superseding a candidate still in flight);
        ``rollback``: ``mlx rollback`` is going back to what was released before."""
        stable = self._stable_now(previous)
        outcome = reconcile.start(
            self.address, self.spec, stable, dict(candidate), self.clock(), previous, rollback
        )
        return self._carry_out(outcome, previous)

    def resume(self, state: RolloutState) -> Result:
        """One pass over a rollout (a settled one only re-asserts its recorded traffic)."""
        now = self.clock()
        outcome = reconcile.advance(self.spec, state, self._observe(state, now))
        return self._carry_out(outcome, state)

    def retry(self, state: RolloutState) -> Result:
        outcome = reconcile.retry(self.spec, state, self.clock())
        return self._carry_out(outcome, state)

    # -- the world ---------------------------------------------------------------------
    def _serving(self) -> tuple[Prior, Serving]:
        assert self.endpoint is not None
        return self.peers.serving(self.endpoint)

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
        return {k: known[k] for k in ("version", "revision", "fingerprint", "uri") if k in known}

    def _observe(self, state: RolloutState, now: float) -> reconcile.Observation:
        due = (state.next_look_at is not None and now >= state.next_look_at) or (
            state.pause_until is not None and now >= state.pause_until
        )
        if not due or self.endpoint is None or state.phase is not Phase.PROGRESSING:
            return reconcile.Observation(now)  # nothing to judge (a paused one waits for a person)
        endpoint, serving = self._serving()
        # an A/B test's sequential test takes the counts since it began; canary and shadow
        # analyses judge the window since the last look
        since = state.step_started_at if self.spec.strategy == "ab" else state.window_from
        try:
            by_role = serving.variant_metrics(endpoint, since, now)
            metrics = {str(role): _stats(m) for role, m in by_role.items()}
            pairs = (
                [Pair(**p) for p in serving.shadow_pairs(endpoint, since, now)]
                if self.spec.strategy == "shadow"
                else None
            )
        except (ProviderError, OSError, AnalysisError) as exc:
            # a look that could not be taken: an error (counted toward
            # consecutive_error_limit), never a pass
            return reconcile.Observation(now, error=str(exc))
        return reconcile.Observation(now, metrics=metrics, pairs=pairs)

    def _carry_out(self, outcome: reconcile.Outcome, before: RolloutState | None) -> Result:
        state = outcome.state
        if outcome.events:  # recorded before it is taken; a kill now resumes from here
            self.peers.checkpoint(self.address, state.to_outputs(), "; ".join(outcome.events))
        if self.endpoint is not None:
            endpoint, serving = self._serving()
            if outcome.deploy and state.candidate is not None:
                name = variant_name(state.candidate)
                assert name is not None
                spec = self.peers.spec(state.subject) or {}
                serving.deploy(endpoint, Variant(name, state.subject, state.candidate, spec))
            wanted = outcome.traffic  # every outcome carries the recorded split: re-asserted
            if wanted is not None:
                live = serving.traffic(endpoint)
                target = Traffic(wanted.stable, wanted.candidate, wanted.weight, wanted.mirror)
                if live != target:
                    serving.set_traffic(endpoint, target)
            for variant in outcome.retire:
                try:
                    serving.retire(endpoint, variant)
                except ProviderError as exc:  # a variant already gone is no reason to stop
                    outcome.events.append(f"could not retire {variant}: {exc}")
        if outcome.alias is not None and self.spec.alias:
            self.peers.set_alias(state.subject, self.spec.alias, outcome.alias)
        if outcome.alert is not None:
            failed = self._alert(outcome.alert)
            if failed:
                outcome.events.append(failed)
        return self._result(state, outcome.events)

    def _alert(self, alert: reconcile.Alert) -> str | None:
        """Send the alert to the rollout's channel; what went wrong, if it could not."""
        channel = self.spec.alert
        if not channel:
            return None
        message = AlertMessage(
            title=alert.title,
            text=alert.text,
            severity=alert.severity,
            source=self.address,
            owner=self.spec.owner,
            details=alert.details,
        )
        try:
            self.peers.notify(channel, message)
        except (ProviderError, OSError) as exc:
            return f"could not alert {channel}: {exc}"
        return None

    def _result(self, state: RolloutState, events: list[str]) -> Result:
        done = state.phase in (Phase.COMPLETED, Phase.ABORTED)
        return Result(
            state.to_outputs() | {"events": events},
            completion=Completion.DONE if done else Completion.IN_PROGRESS,
            next_step=state.message or None,
            touched=(self.endpoint,) if self.endpoint else (),
        )


def _stats(m: Any) -> VariantStats:
    return VariantStats(
        requests=m.requests,
        server_errors=m.server_errors,
        client_errors=m.client_errors,
        latency_p50_ms=m.latency_p50_ms,
        latency_p95_ms=m.latency_p95_ms,
        latency_p99_ms=m.latency_p99_ms,
        cost_usd=m.cost_usd,
        feedback_count=m.feedback_count,
        feedback_mean=m.feedback_mean,
    )
