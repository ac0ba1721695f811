"""A release through the registry alone (``strategy: direct`` with only an ``alias``): one
pass of the harness that points the alias (``production``, ``champion``) at the subject's
version and is done. There is no step to record before it is taken: moving an alias
again is harmless, and a pass killed before it returns is simply applied again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract import Result, VersionRef, version_outputs
from controller.harness import Decision, World


class AliasRelease:
    """Point ``alias`` of ``subject`` at the version in ``outputs``."""

    def __init__(self, subject: str, alias: str, outputs: Mapping[str, Any], world: World):
        self.subject, self.alias, self.version, self.world = subject, alias, outputs, world

    def decide(self) -> Decision[None]:
        outputs = self.version
        released = version_outputs(outputs)
        record = {
            "subject": self.subject,
            "alias": self.alias,
            "strategy": "direct",
            "released_version": VersionRef.of(outputs).version,
            "fingerprint": outputs.get("fingerprint"),
            "released": released,
            "phase": "completed",
            "weight": 100,
        }
        return Decision(record, [], True, None)

    def carry_out(self, decision: Decision[None]) -> list[str]:
        self.world.set_alias(self.subject, self.alias, self.version)
        return []

    def result(self, decision: Decision[None]) -> Result:
        return Result(dict(decision.outputs))
