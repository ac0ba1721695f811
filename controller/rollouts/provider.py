"""The ``rollout`` provider type: the thin adapter through which plans and applies reach
the rollout controller (``type: rollout``, the default for ``rollouts``).

Plans and the ``Kind`` machinery need a provider for every section: this one checks a
rollout, says what it will release, reads an alias back, and translates an apply's
``Desired``/``Prior`` into one pass of the harness (``controller.harness``) — start a
candidate, or continue the one in flight. It is mlx's own code, not a plugin: the engine
finds it through ``controller.ADAPTERS``.

``strategy: direct`` with only an ``alias`` is a release through the registry: point the
alias at the subject's version (``controller.rollouts.alias``). With an ``endpoint`` a
rollout drives the endpoint's traffic through its provider's ``Serving`` capability —
direct (at once), canary, shadow or A/B — one pass per call (``controller.rollouts.drive``);
the result says ``IN_PROGRESS`` until it completed or aborted. The engine applies a
rollout only once every gate it requires has passed for exactly the released version
(``engine.policy.evidence``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from contract import (
    Change,
    Desired,
    Observed,
    Peers,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Result,
    VersionRef,
)
from controller.harness import UNRECORDED, Controlled, Controller, Ledger, run_pass
from controller.rollouts.alias import AliasRelease
from controller.rollouts.drive import RolloutController
from controller.state import Phase, RolloutState
from specs.rollouts import Rollout


class RolloutProvider(Provider, Controlled):
    sections = frozenset({"rollouts"})

    #: where this provider's passes are recorded (``recording_to``); on its own: nowhere
    _ledger: Ledger = UNRECORDED

    def recording_to(self, ledger: Ledger) -> Provider:
        bound = copy.copy(self)
        bound._ledger = ledger
        return bound

    def plan_inputs(self) -> list[str] | None:
        return []

    def check(self, desired: Desired) -> list[Problem]:
        spec = desired.spec
        if not spec.get("endpoint") and not spec.get("alias"):
            return [Problem(("alias",), "a direct rollout needs an `alias` to move")]
        return []

    def planned_outputs(self, desired: Desired) -> dict[str, Any]:
        """What this rollout will release: the subject's version, when it is known already."""
        subject = str(desired.spec.get("subject"))
        outputs = desired.inputs.get(subject) or {}
        out: dict[str, Any] = {}
        ref = VersionRef.of(outputs)
        if ref.known:
            out["released_version"] = ref.version
        if outputs.get("fingerprint"):
            out["fingerprint"] = outputs["fingerprint"]
        return out

    def _peers(self) -> Peers:
        if self.context.peers is None:
            raise ProviderError("rollouts need the engine's peers (run them through mlx)")
        return self.context.peers

    @staticmethod
    def _spec(address: str, body: Mapping[str, Any]) -> Rollout:
        try:
            return Rollout.model_validate(body)
        except ValidationError as exc:
            raise ProviderError(f"{address}: {exc.errors()[0]['msg']}") from None

    @staticmethod
    def _candidate(desired: Desired) -> Mapping[str, Any]:
        subject = str(desired.spec["subject"])
        outputs = desired.inputs.get(subject)
        if not outputs:
            raise ProviderError(f"{desired.address}: {subject} has no registered version yet")
        return outputs

    def _pass(self, controller: Controller[Any]) -> Result:
        return run_pass(controller, self._ledger)

    # -- a registry alias only ----------------------------------------------------------
    def _move_alias(self, desired: Desired) -> Result:
        subject = str(desired.spec["subject"])
        alias = str(desired.spec["alias"])
        return self._pass(AliasRelease(subject, alias, self._candidate(desired), self._peers()))

    # -- CRUD: one pass each ----------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        if not desired.spec.get("endpoint"):
            return self._move_alias(desired)
        spec = self._spec(desired.address, desired.spec)
        candidate = self._candidate(desired)
        return self._pass(
            RolloutController.start(desired.address, spec, self._peers(), candidate, None)
        )

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        old_alias = prior.outputs.get("alias")
        if old_alias and old_alias != desired.spec.get("alias"):
            self._peers().set_alias(str(prior.outputs["subject"]), str(old_alias), {})
        if not desired.spec.get("endpoint"):
            return self._move_alias(desired)
        spec = self._spec(desired.address, desired.spec)
        candidate = self._candidate(desired)
        state = (
            RolloutState.from_outputs(dict(prior.outputs)) if "address" in prior.outputs else None
        )
        world = self._peers()
        if state is not None and _continues(state, candidate):
            return self._pass(RolloutController.resume(desired.address, spec, world, state))
        return self._pass(
            RolloutController.start(
                desired.address, spec, world, candidate, state, rollback=change.rollback
            )
        )

    def resume(self, prior: Prior, ledger: Ledger) -> Result:
        if "address" not in prior.outputs:
            raise ProviderError(f"{prior.address} does not drive an endpoint: nothing to resume")
        spec = self._spec(prior.address, prior.attributes)
        state = RolloutState.from_outputs(dict(prior.outputs))
        controller = RolloutController.resume(prior.address, spec, self._peers(), state)
        return run_pass(controller, ledger)

    def delete(self, prior: Prior) -> None:
        subject, alias = prior.outputs.get("subject"), prior.outputs.get("alias")
        if subject and alias:
            self._peers().set_alias(str(subject), str(alias), {})

    def read(self, prior: Prior) -> Observed | None:
        subject, alias = prior.outputs.get("subject"), prior.outputs.get("alias")
        if prior.outputs.get("endpoint") or not alias:
            return Observed(dict(prior.outputs))  # the endpoint's own read reports its traffic
        behind = self._peers().get_alias(str(subject), str(alias))
        if behind is None:
            return Observed({"released_version": None}, notes=(f"alias {alias!r} was removed",))
        ref = VersionRef.of(behind)
        return Observed({"released_version": ref.version, "fingerprint": ref.fingerprint})


def _continues(state: RolloutState, candidate: Mapping[str, Any]) -> bool:
    """Whether an apply continues the recorded rollout rather than starting ``candidate``:
    the same candidate in flight, the version released already (a metadata edit), or the
    candidate this rollout aborted (it stays out until `mlx rollout retry`)."""
    fingerprint = candidate.get("fingerprint")
    in_flight = state.phase in (Phase.PROGRESSING, Phase.PAUSED)
    if in_flight:
        return (state.candidate or {}).get("fingerprint") == fingerprint
    return fingerprint in ((state.stable or {}).get("fingerprint"), state.aborted_fingerprint)
