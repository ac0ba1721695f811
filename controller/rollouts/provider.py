"""Rollouts (``type: rollout``, the default for ``rollouts``): the rollout controller's
adapter, mlx's own code found through ``controller.ADAPTERS`` (not an entry point).

``strategy: direct`` with only an ``alias`` is a release through the registry: point
the alias (``production``, ``champion``) at the subject's version. With an ``endpoint``
a rollout drives the endpoint's traffic through its provider's ``Serving`` capability —
direct (at once), canary, shadow or A/B — one controller pass per call
(``controller.rollouts.drive``): ``create``/``update`` start it, ``update`` with
``Change.resume`` continues it, and the result says ``IN_PROGRESS`` until it completed
or aborted. The engine applies a rollout only once every gate it requires has passed
for exactly the released version (``engine.policy.evidence``).
"""

from __future__ import annotations

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
)


def _version(outputs: Mapping[str, Any]) -> Any:
    return outputs.get("version", outputs.get("revision"))


class RolloutProvider(Provider):
    sections = frozenset({"rollouts"})

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
        if _version(outputs) is not None:
            out["released_version"] = _version(outputs)
        if outputs.get("fingerprint"):
            out["fingerprint"] = outputs["fingerprint"]
        return out

    def _peers(self) -> Peers:
        if self.context.peers is None:
            raise ProviderError("rollouts need the engine's peers (run them through mlx)")
        return self.context.peers

    def _drive(self, desired: Desired) -> Any:
        from controller.rollouts.drive import Drive
        from specs.rollouts import Rollout

        try:
            spec = Rollout.model_validate(desired.spec)
        except ValidationError as exc:
            raise ProviderError(f"{desired.address}: {exc.errors()[0]['msg']}") from None
        return Drive(desired.address, spec, self._peers())

    @staticmethod
    def _candidate(desired: Desired) -> Mapping[str, Any]:
        subject = str(desired.spec["subject"])
        outputs = desired.inputs.get(subject)
        if not outputs:
            raise ProviderError(f"{desired.address}: {subject} has no registered version yet")
        return outputs

    # -- a registry alias only ----------------------------------------------------------
    def _move_alias(self, desired: Desired) -> Result:
        subject = str(desired.spec["subject"])
        outputs = self._candidate(desired)
        alias = str(desired.spec["alias"])
        self._peers().set_alias(subject, alias, outputs)
        return Result(
            {
                "subject": subject,
                "alias": alias,
                "strategy": "direct",
                "released_version": _version(outputs),
                "fingerprint": outputs.get("fingerprint"),
                "released": {
                    k: outputs[k]
                    for k in ("version", "revision", "fingerprint", "uri")
                    if k in outputs
                },
                "phase": "completed",
                "weight": 100,
            }
        )

    # -- CRUD ---------------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        if not desired.spec.get("endpoint"):
            return self._move_alias(desired)
        return self._drive(desired).begin(self._candidate(desired), None)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        old_alias = prior.outputs.get("alias")
        if old_alias and old_alias != desired.spec.get("alias"):
            self._peers().set_alias(str(prior.outputs["subject"]), str(old_alias), {})
        if not desired.spec.get("endpoint"):
            return self._move_alias(desired)
        from controller.state import Phase, RolloutState

        drive = self._drive(desired)
        candidate = self._candidate(desired)
        state = (
            RolloutState.from_outputs(dict(prior.outputs)) if "address" in prior.outputs else None
        )
        if state is None:
            return drive.begin(candidate, None)
        fingerprint = candidate.get("fingerprint")
        in_flight = state.phase in (Phase.PROGRESSING, Phase.PAUSED)
        if in_flight and (state.candidate or {}).get("fingerprint") == fingerprint:
            return drive.resume(state)
        if fingerprint == (state.stable or {}).get("fingerprint") and not in_flight:
            return drive.resume(state)  # released already: nothing new (a metadata edit)
        if fingerprint == state.aborted_fingerprint and not in_flight:
            return drive.resume(state)  # aborted: stays out until `mlx rollout retry`
        return drive.begin(candidate, state, rollback=change.rollback)

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
        return Observed(
            {"released_version": _version(behind), "fingerprint": behind.get("fingerprint")}
        )
