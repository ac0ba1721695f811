"""The plan's ``ResourceChange`` of one planned resource: its decision, its field-level
changes, and the computed attributes (version, uri, fingerprint) it expects to move."""

from __future__ import annotations

from typing import Any

from common.field_diff import field_changes, flatten
from engine.plan.model import Action, FieldChange, ResourceChange
from engine.plan.planned import Planned
from specs.introspect import kind_info
from state.store import IndexRow, Record


def change(
    p: Planned, depends_on: list[str], row: IndexRow | None, rec: Record | None
) -> ResourceChange:
    """``row``/``rec``: the resource's index row and record as the plan read them (for a
    no-op, ``rec`` is never looked at: the caller may pass None without reading it)."""
    base: dict[str, Any] = dict(
        address=p.address,
        section=p.section,
        name=p.name,
        provider=p.provider_key,
        action=p.action,
        reasons=p.reasons,
        details=p.details,
        flagged_by=p.flagged_by,
        depends_on=depends_on,
        spec_hash=p.spec_hash,
        meta_hash=p.meta_hash,
        content_hash=p.content_hash,
        prior_serial=row.serial if row else None,
        warnings=p.warnings,
        restore=dict(p.desired.restore) if p.desired.restore is not None else None,
        gate=p.gate,
        evidence=(
            {"judged": p.judged.as_dict(), "reused": p.reused} if p.judged is not None else None
        ),
    )
    if p.action is Action.NOOP:
        return ResourceChange.model_construct(**base, before=None, after=None, fields=[])
    before = dict(rec.attributes) if rec else None
    after = dict(p.redacted)
    fields = (
        field_changes(before, after)
        if before is not None
        else [
            FieldChange.model_construct(path=k, before=None, after=v, kind="add")
            for k, v in sorted(flatten(after))
        ]
    )
    fields += output_changes(p, rec)
    # built from the planner's own typed values: validating 10,000 changes and their
    # fields again cost a second of a large plan
    return ResourceChange.model_construct(**base, before=before, after=after, fields=fields)


def output_changes(p: Planned, rec: Record | None) -> list[FieldChange]:
    """Computed attributes (version, uri, fingerprint) as the plan expects them to move."""
    if not (p.changes_behaviour or rec is None):
        return []
    known = {"passed": True} if p.reused else p.provider.planned_outputs(p.desired)
    old = rec.outputs if rec else {}
    out = []
    for name in kind_info(p.section).plan_outputs:
        new = known.get(name, {"$unknown": True})
        if rec is not None and old.get(name) == new:
            continue
        out.append(
            FieldChange.model_construct(
                path=name,
                before=old.get(name),
                after=new,
                kind="add" if rec is None else "change",
            )
        )
    return out
