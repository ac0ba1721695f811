"""Plan → JSON shaped like Terraform's JSON plan representation (``terraform show -json``).

Policy tooling written for Terraform plans (OPA/conftest rules over
``resource_changes[].change.actions``) works on it unchanged. Differences,
documented in docs/plan-json.md and checked by docs/plan-json.schema.json:

* a gate that will run has ``actions: ["read"]`` (it changes nothing) and
  ``mlx_action: "run"``;
* sensitive values are never present: they are ``null`` in ``before``/``after``
  and ``true`` in ``before_sensitive``/``after_sensitive`` (Terraform prints
  them in clear; mlx does not);
* unchanged resources appear as ``["no-op"]`` with ``before``/``after`` null;
* mlx's own facts (gates, drift, flagged dependents, warnings) are under ``mlx``.
"""

from __future__ import annotations

from typing import Any

import engine
from engine.plan.model import Action, Plan, Reason, ResourceChange
from state.status import DriftStatus

FORMAT_VERSION = "1.2"

ACTIONS = {
    Action.CREATE: ["create"],
    Action.UPDATE: ["update"],
    Action.REPLACE: ["delete", "create"],
    Action.DELETE: ["delete"],
    Action.RUN: ["read"],
    Action.NOOP: ["no-op"],
}
#: Terraform's action_reason words where one fits, mlx's own otherwise.
REASONS = {
    Reason.TAINTED: "replace_because_tainted",
    Reason.REPLACE_FIELD: "replace_because_cannot_update",
    Reason.PROVIDER_CHANGED: "replace_because_cannot_update",
    Reason.REQUESTED: "replace_by_request",
    Reason.REMOVED: "delete_because_no_resource_config",
    Reason.NEW: "create_because_new",
    Reason.SPEC_CHANGED: "update_because_spec_changed",
    Reason.METADATA_CHANGED: "update_because_metadata_changed",
    Reason.CONTENT_CHANGED: "update_because_content_changed_outside_spec",
    Reason.UPSTREAM_CHANGED: "dependency_changed",
    Reason.GATE_INPUTS_CHANGED: "gate_inputs_changed",
    Reason.GATE_NOT_PASSED: "gate_not_passed",
    Reason.UNKNOWN_INPUTS: "update_because_inputs_unknown",
    Reason.RESTORED: "update_because_restoring_recorded_version",
    Reason.NOT_JUDGED: "gate_not_judged",
    Reason.EVIDENCE_REUSED: "gate_verdict_reused",
    Reason.RELEASE_PENDING: "release_pending",
    Reason.IN_PROGRESS: "in_progress",
    Reason.RERUN_REQUESTED: "gate_rerun_by_request",
    Reason.DRIFTED: "update_because_drifted",
    Reason.DELETED_OUTSIDE: "create_because_deleted_outside",
}


def _actions(change: ResourceChange) -> list[str]:
    """Terraform's action list; a replacement's order and halves depend on the kind."""
    if change.action is Action.REPLACE:
        from specs.introspect import kind_info

        info = kind_info(change.section)
        if info.keeps_history:
            return ["create"]  # a registry re-registers: nothing is deleted
        if info.create_before_destroy:
            return ["create", "delete"]
    return ACTIONS[change.action]


def _split(value: Any) -> tuple[Any, Any, Any]:
    """(value without markers, unknown mask, sensitive mask) — Terraform's three views."""
    if isinstance(value, dict):
        if len(value) == 1 and "$unknown" in value:
            return None, True, False
        if len(value) == 1 and "$sensitive" in value:
            return None, False, True
        plain, unknown, sensitive = {}, {}, {}
        for k, v in value.items():
            p, u, s = _split(v)
            plain[k] = p
            if u:
                unknown[k] = u
            if s:
                sensitive[k] = s
        return plain, unknown or False, sensitive or False
    if isinstance(value, list):
        parts = [_split(v) for v in value]
        unknown_list = [u or False for _, u, _ in parts]
        sensitive_list = [s or False for _, _, s in parts]
        return (
            [p for p, _, _ in parts],
            unknown_list if any(unknown_list) else False,
            sensitive_list if any(sensitive_list) else False,
        )
    return value, False, False


def _with_outputs(values: dict[str, Any] | None, change: ResourceChange, side: str) -> Any:
    """Attributes plus the computed outputs (version, uri, …) the plan expects to move."""
    if values is None and not change.fields:
        return None
    out = dict(values or {})
    for f in change.fields:
        if "." not in f.path and "[" not in f.path and f.path not in out:
            value = f.before if side == "before" else f.after
            if value is not None:
                out[f.path] = value
    return out if (values is not None or out) else None


def resource_change(change: ResourceChange) -> dict[str, Any]:
    before = (
        None if change.action is Action.CREATE else _with_outputs(change.before, change, "before")
    )
    after = None if change.action is Action.DELETE else _with_outputs(change.after, change, "after")
    b_plain, _b_unknown, b_sensitive = _split(before)
    a_plain, a_unknown, a_sensitive = _split(after)
    entry: dict[str, Any] = {
        "address": change.address,
        "mode": "managed",
        "type": change.section,
        "name": change.name,
        "provider_name": change.provider,
        "change": {
            "actions": _actions(change),
            "before": b_plain,
            "after": a_plain,
            "after_unknown": a_unknown or {},
            "before_sensitive": b_sensitive or False,
            "after_sensitive": a_sensitive or False,
        },
        "mlx_action": change.action.value,
        "mlx_reasons": [r.value for r in change.reasons],
    }
    if change.reasons:
        entry["action_reason"] = REASONS.get(change.reasons[0], "other")
    if change.evidence is not None:
        entry["mlx_evidence"] = change.evidence
    return entry


def _noop(address: str) -> dict[str, Any]:
    section, name = address.split(".", 1)
    return {
        "address": address,
        "mode": "managed",
        "type": section,
        "name": name,
        "provider_name": None,
        "change": {
            "actions": ["no-op"],
            "before": None,
            "after": None,
            "after_unknown": {},
            "before_sensitive": False,
            "after_sensitive": False,
        },
        "mlx_action": "no-op",
        "mlx_reasons": [],
    }


def _drift(item: dict[str, Any]) -> dict[str, Any]:
    section, name = item["address"].split(".", 1)
    actions = ["delete"] if item["status"] == DriftStatus.MISSING else ["update"]
    return {
        "address": item["address"],
        "mode": "managed",
        "type": section,
        "name": name,
        "provider_name": None,
        "change": {
            "actions": actions,
            "before": None,
            "after": None,
            "after_unknown": {},
            "before_sensitive": False,
            "after_sensitive": False,
        },
        "mlx_action": "no-op",
        "mlx_reasons": item.get("differences", []),
    }


def render_json(plan: Plan) -> dict[str, Any]:
    changes = [resource_change(c) for c in plan.changes]
    changes += [_noop(a) for a in plan.unchanged]
    changes.sort(key=lambda c: c["address"])
    counts = plan.counts()
    return {
        "format_version": FORMAT_VERSION,
        "mlx_version": engine.__version__,
        "resource_changes": changes,
        "resource_drift": [_drift(d) for d in plan.drift],
        "mlx": {
            "workspace": plan.workspace,
            "lineage": plan.lineage,
            "prior_serial": plan.prior_serial,
            "spec_digest": plan.spec_digest,
            "operation": plan.options.operation,
            "summary": counts,
            "has_changes": plan.has_changes,
            "gates": [
                {
                    "address": c.address,
                    "reasons": [r.value for r in c.reasons],
                    "details": c.details,
                    "outcome": c.gate,
                }
                for c in plan.changes
                if c.action is Action.RUN
            ],
            "flagged": [
                {"address": c.address, "depends_on_changed": c.flagged_by}
                for c in plan.changes
                if c.flagged_by
            ],
            "drift": plan.drift,
            "warnings": plan.warnings
            + [f"{c.address}: {w}" for c in plan.changes for w in c.warnings],
        },
    }
