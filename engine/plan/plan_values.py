"""``PlanValues``: the records and declarations around a plan's changes, for the JSON plan
(``prior_state``, ``planned_values``, ``configuration`` and the objects of its no-ops)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.load.spec_set import SpecSet
from engine.plan.model import PlanValues
from engine.plan.planned import Planned
from state.store import IndexRow, Record


def plan_values(
    spec: SpecSet,
    index: Mapping[str, IndexRow],
    planned: Mapping[str, Planned],
    record: Callable[[str], Record | None],
    prefetch: Callable[[list[str]], None],
) -> PlanValues:
    """Every recorded resource (read in batches) and every declared one, by address."""
    addresses = sorted(index)
    prefetch(addresses)
    prior = {}
    for address in addresses:
        rec = record(address)
        if rec is not None:
            prior[address] = {
                "provider": rec.provider,
                "status": rec.status,
                "attributes": rec.attributes,
                "outputs": rec.outputs,
                "dependencies": rec.dependencies,
            }
    configuration = {}
    for address, decl in sorted(spec.decls.items()):
        p = planned.get(address)
        row = index.get(address)
        provider = p.provider_key if p else (row.provider if row else None)
        configuration[address] = {"provider": provider, "body": decl.body}
    return PlanValues(prior=prior, configuration=configuration)
