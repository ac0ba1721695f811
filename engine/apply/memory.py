"""What one apply knows about resources: as recorded when it started, and as applied so far.

Every part of an apply reads through this — a body to resolve a reference, a dependency's
outputs, a subject's fingerprint for a gate or a release — so "as recorded before this
run" never sees what the run itself writes, and a value applied in this run wins over it.
"""

from __future__ import annotations

import threading
from collections.abc import Container, Mapping
from typing import Any, Protocol

from engine.load.resolve import Lookup
from specs.introspect import kind_info
from state.store import Record


class Records(Protocol):
    """Records as they were when the run started (``StateReader.record``: a snapshot)."""

    def record(self, address: str) -> Record | None: ...


class Resolves(Protocol):
    """A resource's body with its references resolved (``engine.load.resolve.Resolver``)."""

    def resolve(self, address: str, lookup: Lookup) -> dict[str, Any]: ...


class RunMemory:
    def __init__(
        self,
        start: Records,
        records: Mapping[str, Record],
        resolver: Resolves,
        declared: Container[str],
    ):
        #: state as it was when the run started (for "previous version" lookups)
        self.start = start
        #: the records of the planned changes, read at the start in one batch
        self.records = dict(records)
        self.resolver, self.declared = resolver, declared
        self.outputs: dict[str, dict[str, Any]] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        #: hashes applied in this run, by address (a gate's definition for the release check)
        self.hashes: dict[str, tuple[str | None, str | None]] = {}
        self._lock = threading.Lock()

    def recorded(self, address: str) -> Record | None:
        """``address``'s record when this run started."""
        return self.records.get(address) or self.start.record(address)

    def remember(self, address: str, body: dict[str, Any], outputs: dict[str, Any]) -> None:
        """What applying ``address`` resolved and produced."""
        with self._lock:
            self.bodies[address] = body
            self.outputs[address] = outputs

    def applied_hashes(self, address: str, spec_hash: str | None, fingerprint: str | None) -> None:
        with self._lock:
            self.hashes[address] = (spec_hash, fingerprint)

    def recorded_outputs(self, address: str) -> dict[str, Any]:
        """Outputs as recorded when this run started."""
        rec = self.recorded(address)
        return dict(rec.outputs) if rec else {}

    def outputs_of(self, address: str) -> dict[str, Any]:
        """Outputs as applied in this run, else as recorded when it started."""
        return self.outputs.get(address) or self.recorded_outputs(address)

    def fingerprint(self, address: str) -> str | None:
        """What ``address``'s content is now: applied in this run, else recorded."""
        value = self.outputs_of(address).get("fingerprint")
        if value is None and address not in self.outputs:
            rec = self.recorded(address)
            value = rec.content_hash if rec else None
        return value if isinstance(value, str) else None

    def body_of(self, address: str) -> dict[str, Any] | None:
        """``address``'s body as applied in this run, else resolved now (``None``: not in
        the spec)."""
        if address in self.bodies:
            return self.bodies[address]
        if address in self.declared:
            return self.resolver.resolve(address, self.lookup)
        return None

    def lookup(self, address: str, attr: str) -> Any:
        """``${address.attr}``: a field of its body, else one of its outputs."""
        section = address.split(".", 1)[0]
        if attr in kind_info(section).field_names:
            body = self.bodies.get(address)
            if body is None:
                body = self.resolver.resolve(address, self.lookup)
            return body.get(attr)
        if address in self.outputs:
            return self.outputs[address].get(attr)
        return self.recorded_outputs(address).get(attr)
