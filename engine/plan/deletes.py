"""Deletes (recorded resources the spec no longer declares) and ``lifecycle.prevent_destroy``,
which makes a plan that would destroy or replace its resource fail."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from common.diagnostics import Diagnostic, MlxError, Source
from engine.plan.model import Action, Reason, ResourceChange
from engine.plan.planned import Planned
from state.store import IndexRow, Record


def deletes(
    index: Mapping[str, IndexRow],
    declared: Mapping[str, Any],
    scope: set[str] | None,
    record: Callable[[str], Record | None],
    prefetch: Callable[[Iterable[str]], None] = lambda _addresses: None,
) -> list[ResourceChange]:
    """A ``delete`` for each recorded address not ``declared`` (within ``scope``), in the
    order the state lists them (the plan sorts every change by address)."""
    gone = [a for a in index if a not in declared]
    if scope is not None:
        gone = [a for a in gone if a in scope]
    prefetch(gone)
    out = []
    for address in gone:
        rec = record(address)
        row = index[address]
        before = rec.attributes if rec else None
        out.append(
            ResourceChange(
                address=address,
                section=row.section,
                name=address.split(".", 1)[1],
                provider=row.provider,
                action=Action.DELETE,
                reasons=[Reason.REMOVED],
                before=before,
                after=None,
                fields=[],
                depends_on=rec.dependencies if rec else [],
                prior_serial=row.serial,
            )
        )
    return out


def check_prevent_destroy(
    removed: Iterable[ResourceChange],
    planned: Iterable[Planned],
    source: Callable[..., Source],
) -> None:
    """Refuse the plan (every offender at once) if it destroys or replaces a resource whose
    ``lifecycle.prevent_destroy`` is set. ``source`` places a diagnostic in the spec."""
    diags = []
    for change in removed:
        life = (change.before or {}).get("lifecycle") or {}
        if life.get("prevent_destroy"):
            diags.append(
                Diagnostic(
                    f"{change.address} has lifecycle.prevent_destroy set, but this plan would "
                    "destroy it (it was removed from the spec)",
                    detail="Put it back, or first apply with prevent_destroy: false, "
                    "then remove it.",
                )
            )
    for p in planned:
        if p.action is Action.REPLACE and (p.body.get("lifecycle") or {}).get("prevent_destroy"):
            diags.append(
                Diagnostic(
                    f"{p.address} has lifecycle.prevent_destroy set, but this plan must "
                    f"replace it ({', '.join(r.value for r in p.reasons)})",
                    source(p.address, "lifecycle", "prevent_destroy"),
                )
            )
    if diags:
        raise MlxError(diags)
