"""What both kinds of gate share: where they run, and the verdict they hand back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract import Context, Desired, Peers, ProviderError
from providers.files import FileHasher


@dataclass
class GateEnv:
    """A gate's view of the world for one evaluation."""

    context: Context
    hasher: FileHasher
    workdir: Path  # scratch space for materialized artifacts; removed afterwards
    #: A re-run's recorded versions (``Gate.rerun``): these addresses are read at the version
    #: their outputs describe wherever the gate would read the spec's declared content.
    pinned: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def peers(self) -> Peers:
        if self.context.peers is None:
            raise ProviderError("this gate needs other resources, but no peers were provided")
        return self.context.peers

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.context.root / p

    def materialize(self, address: str, outputs: Mapping[str, Any] | None, name: str) -> Path:
        if outputs is None and address in self.pinned:
            outputs = self.pinned[address]
        return self.peers.materialize(address, outputs, self.workdir / name)

    def fingerprint_of(self, desired: Desired, address: str, path: Path | None) -> str | None:
        """The fingerprint the registry recorded in this run, else the content's own digest."""
        recorded = (desired.inputs.get(address) or {}).get("fingerprint")
        if recorded:
            return str(recorded)
        if path is not None and path.exists():
            return self.hasher.digest(path)
        return None


@dataclass
class Verdict:
    passed: bool
    message: str
    report: str
    evidence: dict[str, Any] = field(default_factory=dict)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def short(fingerprint: Any) -> str:
    text = str(fingerprint or "-")
    return text[:19] + "…" if len(text) > 20 else text
