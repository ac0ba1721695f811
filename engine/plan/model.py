"""The plan is a value: JSON first, every view rendered from it (OpenTofu's plans package).

Values inside a plan are JSON-safe: a secret is ``{"$sensitive": "<digest>"}``
and a value only known after apply is ``{"$unknown": true}``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.field_diff import FieldChange


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    RUN = "run"  # a gate that will execute
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def verb(self) -> str:
        return _VERBS[self]


_SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.RUN: ">",
    Action.NOOP: " ",
}
_VERBS = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be destroyed",
    Action.RUN: "will run",
    Action.NOOP: "has no changes",
}


class Reason(StrEnum):
    NEW = "new in the spec"
    SPEC_CHANGED = "spec changed"
    METADATA_CHANGED = "metadata changed"
    CONTENT_CHANGED = "content changed outside the spec"
    REPLACE_FIELD = "a field that cannot be updated in place changed"
    PROVIDER_CHANGED = "its provider changed"
    TAINTED = "tainted by a failed apply"
    REMOVED = "removed from the spec"
    UPSTREAM_CHANGED = "a dependency changed"
    GATE_INPUTS_CHANGED = "gate re-runs because its inputs changed"
    GATE_NOT_PASSED = "gate has not passed yet"
    NOT_JUDGED = "gate has not judged the version it guards"
    EVIDENCE_REUSED = "passed before for exactly these fingerprints: the verdict is reused"
    RELEASE_PENDING = "users do not get the version the spec and the evidence say they should"
    IN_PROGRESS = "continues an operation in progress"
    REQUESTED = "replacement requested with --replace"
    RERUN_REQUESTED = "re-run requested with --rerun-gates"
    UNKNOWN_INPUTS = "depends on values known only after apply"
    RESTORED = "restores a recorded version"
    DRIFTED = "changed outside mlx: restoring it"
    DELETED_OUTSIDE = "deleted outside mlx: creating it again"


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ResourceChange(BaseModel):
    model_config = _FROZEN

    address: str
    section: str
    name: str
    provider: str
    action: Action
    reasons: list[Reason] = Field(default_factory=list)
    #: Free-text specifics: which file's bytes changed, which field forces a replacement.
    details: list[str] = Field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    fields: list[FieldChange] = Field(default_factory=list)
    #: Addresses of changed dependencies that make this resource worth a look.
    flagged_by: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    spec_hash: str | None = None
    meta_hash: str | None = None
    content_hash: str | None = None
    prior_serial: int | None = None
    warnings: list[str] = Field(default_factory=list)
    #: ``mlx plan --run-evals``: the gate's outcome ({"passed", "report", "evidence"}).
    gate: dict[str, Any] | None = None
    #: Rollback/promotion: outputs of the recorded version the provider must bring back.
    restore: dict[str, Any] | None = None
    #: Gates: what the gate judges (``judged``: subject, dataset and definition
    #: fingerprints) and the passed verdict reused for exactly them (``reused``), if any.
    evidence: dict[str, Any] | None = None

    @property
    def symbol(self) -> str:
        """Terraform's symbol; a replacement says which half comes first, if any is deleted."""
        if self.action is Action.REPLACE:
            from specs.introspect import kind_info

            info = kind_info(self.section)
            if info.keeps_history:
                return "+"
            if info.create_before_destroy:
                return "+/-"
        return self.action.symbol

    @property
    def verb(self) -> str:
        if self.action is Action.REPLACE:
            from specs.introspect import kind_info

            info = kind_info(self.section)
            if info.keeps_history:
                return "will be registered again"
            if info.create_before_destroy:
                return "must be replaced (the new one first, then the old one is destroyed)"
        return self.action.verb

    @property
    def changes_behaviour(self) -> bool:
        """True when dependents should treat this as a new version of their input."""
        return self.action in (Action.CREATE, Action.REPLACE, Action.RUN) or (
            self.action is Action.UPDATE
            and any(r not in (Reason.METADATA_CHANGED,) for r in self.reasons)
        )


def _keeps_history(section: str) -> bool:
    from specs.introspect import kind_info

    return kind_info(section).keeps_history


class Pin(BaseModel):
    """A resource's content fixed to a recorded version (rollback, promotion)."""

    model_config = _FROZEN

    content_hash: str | None
    outputs: dict[str, Any]


class PlanOptions(BaseModel):
    model_config = _FROZEN

    targets: list[str] = Field(default_factory=list)
    replace: list[str] = Field(default_factory=list)
    environment: str = "default"
    #: apply | rollback | promote: recorded as the state version's operation.
    operation: str = "apply"
    #: Rollback's target serial, or promotion's source environment and serial.
    source: dict[str, Any] = Field(default_factory=dict)
    pins: dict[str, Pin] = Field(default_factory=dict)
    #: ``--run-evals``: run the gates this plan would run and attach their outcome.
    run_evals: bool = False
    #: ``--refresh``: drift found by live reads, by address ("drifted" | "missing").
    drift: dict[str, str] = Field(default_factory=dict)
    #: ``--rerun-gates``: run every gate in scope even where a passed verdict would be reused.
    rerun_gates: bool = False
    #: ``--strict-prices``: a model a served prompt names that cannot be priced is an error.
    strict_prices: bool = False


class PlanValues(BaseModel):
    """What the JSON plan shows around the changes (``mlx plan --json`` and saved plans):
    every recorded resource as this plan read it, and every declared one as written.

    Read only when asked for: an ordinary plan never reads the records of its no-ops."""

    model_config = _FROZEN

    #: address → {"provider", "status", "attributes", "outputs", "dependencies"}, as recorded
    #: at ``prior_serial`` (secrets as digests, as the state holds them).
    prior: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: address → {"provider", "body"}: the body as written (``${…}`` unresolved).
    configuration: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Plan(BaseModel):
    model_config = _FROZEN

    format_version: str = "1"
    workspace: str
    lineage: str | None
    prior_serial: int
    spec_digest: str
    #: Every resource with something to show: actions, and no-ops flagged by a dependency.
    changes: list[ResourceChange]
    #: Addresses planned and found converged (kept apart: 10k no-op objects cost time).
    unchanged: list[str] = Field(default_factory=list)
    options: PlanOptions = Field(default_factory=PlanOptions)
    warnings: list[str] = Field(default_factory=list)
    #: The resolved spec (secrets as digests) recorded with the state version.
    resolved_spec: dict[str, Any] = Field(default_factory=dict)
    #: Objects changed outside mlx: [{"address", "status", "differences", "owner"}].
    drift: list[dict[str, Any]] = Field(default_factory=list)
    #: Key of the secret digests in this plan (the state's, or a fresh one before the first
    #: apply): lets ``apply FILE`` recompute the plan and compare.
    salt: str | None = None
    #: When the plan was made (RFC 3339, UTC); a saved plan keeps its own.
    timestamp: str | None = None
    #: ``mlx plan --json``/``-o``: the records and declarations around the changes.
    values: PlanValues | None = None

    def actionable(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

    def counts(self) -> dict[str, int]:
        out = {"add": 0, "change": 0, "destroy": 0, "run": 0}
        for c in self.changes:
            if c.action is Action.CREATE:
                out["add"] += 1
            elif c.action is Action.UPDATE:
                out["change"] += 1
            elif c.action is Action.DELETE:
                out["destroy"] += 1
            elif c.action is Action.REPLACE:
                out["add"] += 1
                if not _keeps_history(c.section):  # a registry re-registers, deletes nothing
                    out["destroy"] += 1
            elif c.action is Action.RUN:
                out["run"] += 1
        return out

    def digest(self) -> str:
        """What this plan does, as a sha256 (recorded with the state version it made).

        pydantic's own JSON (fields in declaration order, dicts as built), not a
        key-sorted dump: the same plan gives the same bytes, at a tenth of the cost."""
        import hashlib

        # when it was made and what it read are not what it does
        exclude = {"resolved_spec", "timestamp", "values"}
        return hashlib.sha256(self.model_dump_json(exclude=exclude).encode()).hexdigest()
