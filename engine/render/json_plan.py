"""Plan → JSON shaped like Terraform's JSON plan representation (``terraform show -json``).

Policy tooling written for Terraform plans (OPA/conftest rules over
``resource_changes[].change.actions``) works on it unchanged. Differences,
documented in docs/plan-json.md and checked by docs/plan-json.schema.json:

* a gate that will run has ``actions: ["read"]`` (it changes nothing) and
  ``mlx_action: "run"``;
* sensitive values are never present: they are ``null`` in ``before``/``after``
  and ``true`` in ``before_sensitive``/``after_sensitive`` (Terraform prints
  them in clear; mlx does not);
* mlx's own facts (gates, drift, flagged dependents, warnings) are under ``mlx``.

An unchanged resource is ``["no-op"]`` with its whole recorded object in both ``before`` and
``after``, as Terraform's is. ``prior_state``, ``planned_values`` and ``configuration``
(engine.render.json_values) need the plan's ``values``: a plan made for JSON
(``with_values``) has them.
"""

from __future__ import annotations

from typing import Any

import engine
from engine.plan.model import Action, Plan, PlanValues, Reason, ResourceChange
from engine.render import json_values
from engine.render.json_values import recorded_object, split
from state.status import DriftStatus

#: Terraform's 1.2 plus prior_state, planned_values, configuration, timestamp, applyable,
#: complete and errored, and no-ops with their objects: added fields only, so a minor step.
FORMAT_VERSION = "1.3"

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


def _output_fields(change: ResourceChange, side: str) -> dict[str, Any]:
    """The computed outputs (version, uri, …) the plan expects to move, on one side."""
    out = {}
    for f in change.fields:
        if "." not in f.path and "[" not in f.path:
            value = f.before if side == "before" else f.after
            if value is not None:
                out[f.path] = value
    return out


def _before(change: ResourceChange, prior: dict[str, Any] | None) -> dict[str, Any] | None:
    if change.action is Action.CREATE:
        return None
    if change.action is Action.NOOP or change.before is None:
        return recorded_object(prior) if prior is not None else change.before
    recorded = prior["outputs"] if prior is not None else {}
    return {**recorded, **_output_fields(change, "before"), **change.before}


def _after(change: ResourceChange, prior: dict[str, Any] | None) -> dict[str, Any] | None:
    if change.action is Action.DELETE:
        return None
    if change.action is Action.NOOP or change.after is None:
        return recorded_object(prior) if prior is not None else change.after
    # outputs stay as recorded unless the change makes a new version of the resource
    kept = prior["outputs"] if prior is not None and not change.changes_behaviour else {}
    return {**kept, **_output_fields(change, "after"), **change.after}


def _entry(
    address: str,
    provider: str | None,
    actions: list[str],
    before: Any,
    after: Any,
) -> dict[str, Any]:
    section, name = address.split(".", 1)
    b_plain, _b_unknown, b_sensitive = split(before)
    a_plain, a_unknown, a_sensitive = split(after)
    return {
        "address": address,
        "mode": "managed",
        "type": section,
        "name": name,
        "provider_name": provider,
        "change": {
            "actions": actions,
            "before": b_plain,
            "after": a_plain,
            "after_unknown": a_unknown or {},
            "before_sensitive": b_sensitive or False,
            "after_sensitive": a_sensitive or False,
        },
    }


def resource_change(change: ResourceChange, prior: dict[str, Any] | None) -> dict[str, Any]:
    """One ``resource_changes`` entry; ``prior``: the resource's record (``PlanValues``)."""
    entry = _entry(
        change.address,
        change.provider,
        _actions(change),
        _before(change, prior),
        _after(change, prior),
    )
    entry["mlx_action"] = change.action.value
    entry["mlx_reasons"] = [r.value for r in change.reasons]
    if change.reasons:
        entry["action_reason"] = REASONS.get(change.reasons[0], "other")
    if change.evidence is not None:
        entry["mlx_evidence"] = change.evidence
    return entry


def _noop(address: str, prior: dict[str, Any] | None) -> dict[str, Any]:
    """A converged resource: its recorded object on both sides."""
    obj = recorded_object(prior) if prior is not None else None
    entry = _entry(address, prior["provider"] if prior else None, ["no-op"], obj, obj)
    entry["mlx_action"] = "no-op"
    entry["mlx_reasons"] = []
    return entry


def _drift(item: dict[str, Any]) -> dict[str, Any]:
    actions = ["delete"] if item["status"] == DriftStatus.MISSING else ["update"]
    entry = _entry(item["address"], None, actions, None, None)
    entry["mlx_action"] = "no-op"
    entry["mlx_reasons"] = item.get("differences", [])
    return entry


def _planned(plan: Plan, values: PlanValues) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """Every resource once applied, with its markers: a change's ``after``, a no-op's and
    an out-of-scope (``--target``) resource's record; deleted resources are not there."""
    after: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for address, prior in values.prior.items():
        after[address] = (prior["provider"], recorded_object(prior))
    for change in plan.changes:
        value = _after(change, values.prior.get(change.address))
        if value is None:
            after.pop(change.address, None)
        else:
            after[change.address] = (change.provider, value)
    return after


def render_json(plan: Plan) -> dict[str, Any]:
    """The JSON plan. ``plan`` must carry its ``values`` (built ``with_values``)."""
    if plan.values is None:
        raise ValueError(
            "this plan was made without the records the JSON plan shows: "
            "build it with with_values=True (mlx plan --json and -o do)"
        )
    values = plan.values
    prior = values.prior
    changes = [resource_change(c, prior.get(c.address)) for c in plan.changes]
    changes += [_noop(a, prior.get(a)) for a in plan.unchanged]
    changes.sort(key=lambda c: c["address"])
    counts = plan.counts()
    return {
        "format_version": FORMAT_VERSION,
        "mlx_version": engine.__version__,
        "timestamp": plan.timestamp,
        # mlx renders no plan with errors: those stop before a plan exists
        "errored": False,
        "applyable": plan.has_changes,
        "complete": not plan.options.targets,
        "prior_state": json_values.prior_state(values, engine.__version__, plan.prior_serial),
        "planned_values": json_values.planned_values(_planned(plan, values)),
        "configuration": json_values.configuration(values),
        "resource_changes": changes,
        "resource_drift": [_drift(d) for d in plan.drift],
        "mlx": _mlx(plan, counts),
    }


def _mlx(plan: Plan, counts: dict[str, int]) -> dict[str, Any]:
    """mlx's own facts: gates, flagged dependents, drift, warnings."""
    return {
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
        "warnings": plan.warnings + [f"{c.address}: {w}" for c in plan.changes for w in c.warnings],
    }
