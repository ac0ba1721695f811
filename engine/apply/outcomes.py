"""What an apply reports: each change's outcome, the version's summary, and the lines that
say so as it goes (Terraform's words, byte for byte: tests/e2e and the golden files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.plan.model import Action, Reason, ResourceChange
from specs.introspect import kind_info

#: What a heartbeat says while a resource's action runs long (Terraform's words).
_STILL = {
    Action.CREATE: "Still creating",
    Action.UPDATE: "Still modifying",
    Action.REPLACE: "Still replacing",
    Action.DELETE: "Still destroying",
    Action.RUN: "Still running",
}

_ING = {
    Action.CREATE: ("Creating...", "Creation complete"),
    Action.UPDATE: ("Modifying...", "Modifications complete"),
    Action.REPLACE: ("Replacing...", "Replacement complete"),
    Action.DELETE: ("Destroying...", "Destruction complete"),
    Action.RUN: ("Running gate...", "Gate passed"),
}


class OutcomeStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # a gate that ran and did not pass
    ERROR = "error"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"
    IN_PROGRESS = "in_progress"  # an operation that finishes later (a rollout step)


@dataclass
class Outcome:
    address: str
    action: Action
    status: OutcomeStatus
    message: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ApplyReport:
    serial: int | None
    outcomes: list[Outcome]

    def count(self, status: OutcomeStatus, *actions: Action) -> int:
        return sum(
            1 for o in self.outcomes if o.status == status and (not actions or o.action in actions)
        )

    @property
    def ok(self) -> bool:
        return not any(
            o.status in (OutcomeStatus.FAILED, OutcomeStatus.ERROR) for o in self.outcomes
        )

    def summary(self) -> dict[str, Any]:
        ok = OutcomeStatus.OK
        return {
            "added": self.count(ok, Action.CREATE, Action.REPLACE),
            "changed": self.count(ok, Action.UPDATE),
            "destroyed": self.count(ok, Action.DELETE)
            + sum(
                1
                for o in self.outcomes
                if o.status == ok
                and o.action is Action.REPLACE
                and not kind_info(o.address.split(".", 1)[0]).keeps_history
            ),
            "gates_passed": self.count(ok, Action.RUN),
            "gates_failed": self.count(OutcomeStatus.FAILED),
            "errors": self.count(OutcomeStatus.ERROR),
            "skipped": self.count(OutcomeStatus.SKIPPED),
            "in_progress": self.count(OutcomeStatus.IN_PROGRESS),
            # which evaluation justified (or stopped) this version: shown by `mlx history`
            "gates": {
                o.address: "passed" if o.status == ok else str(o.status)
                for o in self.outcomes
                if o.action is Action.RUN
                and o.status in (ok, OutcomeStatus.FAILED, OutcomeStatus.ERROR)
            },
        }


def begin_line(change: ResourceChange) -> str:
    """The line that says a change starts."""
    begin, _ = _ING.get(change.action, ("", ""))
    return f"{change.address}: {begin}"


def still_doing(action: Action) -> str | None:
    """What a heartbeat says while ``action`` runs long."""
    return _STILL.get(action)


def outcome_line(change: ResourceChange, outcome: Outcome, elapsed: float) -> str:
    """The line that says how a change ended (after its record is durable)."""
    at = f"{change.address}:"
    if outcome.status is OutcomeStatus.OK:
        done = _ING[change.action][1]
        if Reason.EVIDENCE_REUSED in change.reasons:
            done = "Verdict reused"
        said = f": {outcome.message}" if outcome.message else ""
        return f"{at} {done} after {elapsed:.1f}s{_brief(outcome.outputs)}{said}"
    if outcome.status is OutcomeStatus.UNCHANGED:
        return f"{at} no changes after all (its inputs resolved to the same values)"
    if outcome.status is OutcomeStatus.IN_PROGRESS:
        return f"{at} In progress after {elapsed:.1f}s: {outcome.message}"
    if outcome.status is OutcomeStatus.FAILED:
        return f"{at} Gate FAILED after {elapsed:.1f}s: {outcome.message}"
    return f"{at} Error after {elapsed:.1f}s: {outcome.message}"


def _brief(outputs: dict[str, Any]) -> str:
    shown = [f"{k}={outputs[k]}" for k in ("version", "revision", "passed") if k in outputs]
    return f" [{', '.join(shown)}]" if shown else ""
