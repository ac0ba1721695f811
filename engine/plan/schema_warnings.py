"""A new model version whose input schema differs from the released one's: what its callers
would feel, in words for the reviewer (``engine.plan.schema_change`` compares; this finds
the two schemas to compare)."""

from __future__ import annotations

from typing import Any

from engine.plan.lookups import Lookups
from engine.plan.planned import Planned
from engine.plan.schema_change import changes as schema_changes
from specs.introspect import kind_info


def input_schema_warnings(p: Planned, lookups: Lookups) -> list[str]:
    """For a kind with an ``input_schema`` output (models) whose behaviour changes."""
    if "input_schema" not in kind_info(p.section).computed or not p.changes_behaviour:
        return []
    now = lookups.outputs_now(p.address) or {}
    if "input_schema" not in now:
        return []  # not known before apply (this provider does not read it at plan time)
    return schema_changes(released_schema(p.address, lookups), now["input_schema"])


def released_schema(address: str, lookups: Lookups) -> Any:
    """The input schema of the version users get now: behind its release, else the
    version recorded last (None: nothing recorded, or it recorded none)."""
    from engine.policy.released import released_finder

    rec = lookups.record(address)
    if rec is None:
        return None
    released = released_finder(lookups.reader, lookups.record)(address, None)
    fingerprint = released.outputs.get("fingerprint") if released is not None else None
    if fingerprint is None or fingerprint == rec.outputs.get("fingerprint"):
        return rec.outputs.get("input_schema")
    for event in reversed(lookups.reader.events(address=address)):
        outputs = event.get("outputs") or {}
        if outputs.get("fingerprint") == fingerprint and "input_schema" in outputs:
            return outputs["input_schema"]
    return rec.outputs.get("input_schema")
