"""``Planned``: the planner's working view of one resource while a plan is built.

Every part of the planner reads it (lookups, gate facts, details, the plan's values); it is
never part of the plan value itself (``engine.plan.model``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract import Desired, Provider
from engine.plan.model import Action, Reason
from engine.policy import evidence


@dataclass
class Planned:
    """The planner's working view of one resource (not part of the plan value)."""

    address: str
    section: str
    name: str
    provider_key: str
    provider: Provider
    body: dict[str, Any]  # resolved, secrets as Secret
    desired: Desired
    redacted: dict[str, Any]
    spec_hash: str | None
    meta_hash: str
    content_hash: str | None
    action: Action = Action.NOOP
    reasons: list[Reason] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    flagged_by: list[str] = field(default_factory=list)
    behaviour_changed: bool = False
    warnings: list[str] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    #: Gates: what the gate would judge now; the passed verdict reused, if any.
    judged: evidence.Judged | None = None
    reused: dict[str, Any] | None = None
    #: A restore whose local file holds other bytes, which mlx cannot rewrite: why.
    unrestorable: str | None = None

    @property
    def changes_behaviour(self) -> bool:
        return self.action in (Action.CREATE, Action.REPLACE, Action.RUN) or (
            self.action is Action.UPDATE and self.behaviour_changed
        )
