"""Rollouts (``type: rollout``, the default for ``rollouts``).

``strategy: direct`` with an ``alias`` is a release through the registry:
point the alias (``production``, ``champion``) at the subject's version. The
engine applies a rollout only once every gate it requires has passed for
exactly that version (``engine.evidence``); rollbacks move the alias back the
same way. Endpoint strategies (shadow, canary, A/B) need the serving gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.contract import (
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
        if spec.get("endpoint") and spec.get("strategy", "direct") != "direct":
            return []  # reported at apply time: the serving gateway is not there yet
        if not spec.get("alias"):
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

    def _release(self, desired: Desired) -> Result:
        spec = desired.spec
        strategy = spec.get("strategy", "direct")
        if strategy != "direct" or spec.get("endpoint"):
            raise ProviderError(
                f"{desired.address}: strategy {strategy!r} with an endpoint needs the serving "
                "gateway, which is not yet supported by this provider"
            )
        subject = str(spec["subject"])
        outputs = desired.inputs.get(subject)
        if not outputs:
            raise ProviderError(f"{desired.address}: {subject} has no registered version yet")
        alias = str(spec["alias"])
        self._peers().set_alias(subject, alias, outputs)
        return Result(
            {
                "subject": subject,
                "alias": alias,
                "released_version": _version(outputs),
                "fingerprint": outputs.get("fingerprint"),
                "released": {
                    k: outputs[k]
                    for k in ("version", "revision", "fingerprint", "uri")
                    if k in outputs
                },
                "phase": "released",
                "weight": 100,
            }
        )

    def create(self, desired: Desired) -> Result:
        return self._release(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        old_alias = prior.outputs.get("alias")
        if old_alias and old_alias != desired.spec.get("alias"):
            self._peers().set_alias(str(prior.outputs["subject"]), str(old_alias), {})
        return self._release(desired)

    def delete(self, prior: Prior) -> None:
        subject, alias = prior.outputs.get("subject"), prior.outputs.get("alias")
        if subject and alias:
            self._peers().set_alias(str(subject), str(alias), {})

    def read(self, prior: Prior) -> Observed | None:
        subject, alias = prior.outputs.get("subject"), prior.outputs.get("alias")
        if not subject or not alias:
            return None
        behind = self._peers().get_alias(str(subject), str(alias))
        if behind is None:
            return Observed({"released_version": None}, notes=(f"alias {alias!r} was removed",))
        return Observed(
            {"released_version": _version(behind), "fingerprint": behind.get("fingerprint")}
        )
