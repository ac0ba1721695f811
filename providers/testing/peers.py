"""``FakePeers``: every method of ``contract.Peers``, in memory.

The engine hands a provider a ``Peers`` to reach *other* resources (a gate
loads its subject's artifact, a rollout moves an alias, a monitor sends an
alert). In the conformance kit, and in a plugin's own tests, this stands in for
the engine: declare specs, register versions, record state, and read back what
the provider did through ``calls``::

    peers = FakePeers(tmp_path)
    peers.declare("models.fraud", {"artifact": "model.bin", "owner": "t"})
    outputs = peers.register("models.fraud", tmp_path / "model.bin", version=1)
    ... Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=peers) ...
    assert ("set_alias", "models.fraud") in peers.calls

``broken()`` makes every call fail (``ProviderError``), for a provider whose
only backend is its peers (a rollout).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract import AlertMessage, Gate, Prior, ProviderError, Released, Serving, VersionRef

#: Calls that change something outside the caller (what a gate must never make).
WRITES = frozenset({"set_alias", "notify"})


@dataclass
class FakePeers:
    root: Path
    specs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    records: dict[str, Prior] = field(default_factory=dict)
    #: address -> fingerprint -> stored copy of that version's content
    versions: dict[str, dict[str, Path]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    releases: dict[str, Released] = field(default_factory=dict)
    endpoints: dict[str, tuple[Prior, Serving]] = field(default_factory=dict)
    gates: dict[str, Gate] = field(default_factory=dict)
    #: (gate, subject fingerprint) -> that gate's latest passed verdict (``passed_verdict``)
    verdicts: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    notifications: list[tuple[str, AlertMessage]] = field(default_factory=list)
    #: ``(method, address)`` of every call, in order.
    calls: list[tuple[str, str]] = field(default_factory=list)
    _broken: bool = False

    # -- arranging a test -----------------------------------------------------------------
    def declare(self, address: str, spec: Mapping[str, Any]) -> None:
        """A resource declared in this run, with its resolved spec."""
        self.specs[address] = dict(spec)

    def record(self, prior: Prior) -> None:
        """A resource as the state recorded it."""
        self.records[prior.address] = prior

    def register(self, address: str, content: Path | bytes, version: int) -> dict[str, Any]:
        """Store ``content`` as a registered version of ``address``; returns its outputs."""
        data = content if isinstance(content, bytes) else content.read_bytes()
        fingerprint = "sha256:" + hashlib.sha256(data).hexdigest()
        stored = self.root / ".fake-peers" / address / f"{version}.bin"
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(data)
        self.versions.setdefault(address, {})[fingerprint] = stored
        key = "revision" if address.startswith("datasets.") else "version"
        return {key: version, "fingerprint": fingerprint, "uri": f"fake://{address}/{version}"}

    @contextlib.contextmanager
    def broken(self) -> Iterator[None]:
        """Every call fails while the block runs (the engine's registry unreachable)."""
        self._broken = True
        try:
            yield
        finally:
            self._broken = False

    def _call(self, method: str, address: str) -> None:
        self.calls.append((method, address))
        if self._broken:
            raise ProviderError(f"{address}: injected fault: {method} failed")

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in WRITES]

    # -- the Peers protocol ---------------------------------------------------------------
    def recorded(self, address: str) -> Prior | None:
        self._call("recorded", address)
        return self.records.get(address)

    def spec(self, address: str) -> Mapping[str, Any] | None:
        self._call("spec", address)
        return self.specs.get(address)

    def has_version(self, address: str, outputs: Mapping[str, Any]) -> bool:
        self._call("has_version", address)
        return str(outputs.get("fingerprint")) in self.versions.get(address, {})

    def materialize(self, address: str, outputs: Mapping[str, Any] | None, target: Path) -> Path:
        self._call("materialize", address)
        if outputs is None:
            spec = self.specs.get(address)
            if spec is None:
                raise ProviderError(f"{address} is not declared in the spec")
            template = spec.get("template")
            value = spec.get("artifact") or spec.get("uri")
            if value is None and isinstance(template, Mapping):
                value = template.get("file")
            path = Path(str(value))
            path = path if path.is_absolute() else self.root / path
            if not path.exists():
                raise ProviderError(f"{address}: {path} does not exist")
            return path
        stored = self.versions.get(address, {}).get(str(outputs.get("fingerprint")))
        if stored is None:
            raise ProviderError(f"{address}: version {outputs.get('version')} is not stored")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stored, target)
        return target

    def get_alias(self, address: str, alias: str) -> dict[str, Any] | None:
        self._call("get_alias", address)
        found = self.aliases.get((address, alias))
        return dict(found) if found is not None else None

    def set_alias(self, address: str, alias: str, outputs: Mapping[str, Any]) -> None:
        self._call("set_alias", address)
        if not VersionRef.of(outputs).known:
            self.aliases.pop((address, alias), None)
        else:
            self.aliases[(address, alias)] = dict(outputs)

    def notify(self, channel: str, message: AlertMessage) -> None:
        self._call("notify", channel)
        self.notifications.append((channel, message))

    def released(self, subject: str, gate: str | None = None) -> Released | None:
        self._call("released", subject)
        return self.releases.get(subject)

    def serving(self, endpoint: str) -> tuple[Prior, Serving]:
        self._call("serving", endpoint)
        found = self.endpoints.get(endpoint)
        if found is None:
            raise ProviderError(f"endpoint {endpoint} has not been applied yet")
        return found

    def gate(self, address: str) -> Gate:
        self._call("gate", address)
        found = self.gates.get(address)
        if found is None:
            raise ProviderError(f"{address} has no gate provider here")
        return found

    def passed_verdict(self, gate: str, subject_fingerprint: str) -> Mapping[str, Any] | None:
        self._call("passed_verdict", gate)
        return self.verdicts.get((gate, subject_fingerprint))
