"""What a plan knows about an address while it is built: its record as this plan read it,
or — for a resource that changes in this plan — the values known at plan time.

The resolver's attribute lookups (``${x.y.version}``), the dependency outputs a provider
sees, and the fingerprint and version a gate or a release compares all answer from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from contract import VersionRef
from engine.load.graph import SpecGraph
from engine.plan.planned import Planned
from engine.values import UNKNOWN
from specs.introspect import kind_info
from state.store import IndexRow, Record, StateReader


class LazyOutputs(Mapping[str, Any]):
    """``{address: outputs}``, computed only when a key is looked up.

    ``outputs`` answers for one address: as recorded, or (for a dependency that
    changes in this plan) the outputs known at plan time.
    """

    def __init__(self, addresses: list[str], outputs: Callable[[str], Mapping[str, Any] | None]):
        self._addresses = addresses
        self._outputs = outputs

    def __getitem__(self, address: str) -> Any:
        if address not in self._addresses:
            raise KeyError(address)
        found = self._outputs(address)
        if found is None:
            raise KeyError(address)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._addresses)

    def __len__(self) -> int:
        return len(self._addresses)


def field_default(section: str, attr: str) -> Any:
    """The default of a kind's field ``attr`` (as spelled in a spec), or None."""
    for variant in kind_info(section).variants:
        for name, f in variant.model_fields.items():
            if (f.alias or name) == attr and not f.is_required():
                return f.get_default(call_default_factory=True)
    return None


class Lookups:
    """Records as read (``index``: every recorded address) and the resources planned so far."""

    def __init__(self, reader: StateReader, graph: SpecGraph, planned: dict[str, Planned]):
        self.reader = reader
        self.graph = graph
        self.planned = planned
        self.index: dict[str, IndexRow] = {}

    def read_index(self) -> None:
        self.index = self.reader.index()

    def record(self, address: str) -> Record | None:
        return self.reader.record(address) if address in self.index else None

    def prefetch(self, addresses: Iterable[str]) -> None:
        self.reader.remember(a for a in addresses if a in self.index)

    def lookup(self, address: str, attr: str) -> Any:
        """``${address.attr}`` for the resolver: a field as written, else an output."""
        p = self.planned.get(address)
        if p is None:  # outside a --target scope: take the recorded value
            rec = self.record(address)
            if rec is None:
                return UNKNOWN
            return rec.outputs.get(attr, rec.attributes.get(attr))
        if attr in kind_info(p.section).field_names:
            if attr in p.body:
                return p.body[attr]
            return field_default(p.section, attr)
        if p.changes_behaviour:
            known = p.provider.planned_outputs(p.desired)
            return known.get(attr, UNKNOWN)
        rec = self.record(address)
        return rec.outputs.get(attr) if rec else UNKNOWN

    def inputs(self, address: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        """Outputs of dependencies: as they will be (where known), and as recorded.

        Lazy: most providers never look at them while planning, and fetching them
        for every resource would cost a query each.
        """
        deps = list(self.graph.graph.predecessors(address))
        recorded = [d for d in deps if d in self.index]
        return (
            LazyOutputs(deps, self.outputs_now),
            LazyOutputs(recorded, self.recorded_outputs),
        )

    def recorded_outputs(self, address: str) -> Mapping[str, Any] | None:
        rec = self.record(address)
        return rec.outputs if rec else None

    def outputs_now(self, address: str) -> Mapping[str, Any] | None:
        """A dependency's outputs as they will be: recorded, or known at plan time if it changes."""
        p = self.planned.get(address)
        if p is not None and p.changes_behaviour:
            if p.desired.restore is not None:
                return dict(p.desired.restore)
            return p.provider.planned_outputs(p.desired)
        return self.recorded_outputs(address)

    def fingerprint_now(self, address: str) -> str | None:
        """The fingerprint ``address`` will have once this plan is applied (None: unknown)."""
        p = self.planned.get(address)
        if p is not None and p.changes_behaviour:
            if p.desired.restore is not None:
                value = p.desired.restore.get("fingerprint")
            else:
                value = p.provider.planned_outputs(p.desired).get("fingerprint")
            return value if isinstance(value, str) else None
        rec = self.record(address)
        if rec is None:
            return None
        value = rec.outputs.get("fingerprint") or rec.content_hash
        return value if isinstance(value, str) else None

    def version_now(self, address: str) -> Any:
        p = self.planned.get(address)
        if p is not None and p.changes_behaviour:
            if p.desired.restore is not None:
                return VersionRef.of(p.desired.restore).version
            return VersionRef.of(p.provider.planned_outputs(p.desired)).version
        rec = self.record(address)
        return VersionRef.of(rec.outputs).version if rec else None

    def attribute_targets(self) -> set[str]:
        """Resources whose attributes other resources reference (``${x.y.version}``)."""
        from engine.load.references import Ref

        out = set()
        for templates in self.graph.templates.values():
            for parts in templates.values():
                for part in parts:
                    if isinstance(part, Ref) and part.is_resource and part.attr:
                        out.add(part.address)
        return out
