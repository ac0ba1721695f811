"""The ``monitor`` provider: ``monitors.*`` of ``type: data_drift``.

``create``/``update`` profile the reference once per fingerprint (``.reference``) and record
where the profile is kept; ``delete`` forgets the monitor (profiles are keyed by the
reference's fingerprint and may serve other monitors, so they stay). Other monitor types are
not built: ``check`` refuses them (and ``engine.load.availability`` leaves them out before).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contract import Change, Desired, Prior, Problem, Provider, ProviderError, Result
from providers.monitor.reference import ReferenceError, ensure_profile, stored_profile
from specs.monitors import Monitor

#: The monitor types this provider runs.
TYPES = frozenset({"data_drift"})


class MonitorProvider(Provider):
    sections = frozenset({"monitors"})

    def check(self, desired: Desired) -> list[Problem]:
        try:
            spec = Monitor.model_validate(desired.spec)
        except ValidationError as exc:
            return [Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        if spec.type not in TYPES:
            return [Problem(("type",), f"monitors of type {spec.type} are not available yet")]
        return []

    def plan_inputs(self) -> list[str] | None:
        return None

    def create(self, desired: Desired) -> Result:
        return Result(outputs=self._profile(desired))

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        return Result(outputs=self._profile(desired))

    def delete(self, prior: Prior) -> None:
        return None

    # -- the reference ----------------------------------------------------------------------
    def _profile(self, desired: Desired) -> dict[str, Any]:
        spec = Monitor.model_validate(desired.spec)
        if spec.type not in TYPES:
            raise ProviderError(f"{desired.address}: monitors of type {spec.type} are not built")
        reference = str(spec.reference)
        fingerprint = (desired.inputs.get(reference) or {}).get("fingerprint")
        if not fingerprint:
            raise ProviderError(f"{desired.address}: {reference} has no recorded fingerprint")
        target = stored_profile(self.context.data_dir, str(fingerprint), spec.features)
        built = False
        if not target.is_file():
            target, built = self._build(reference, str(fingerprint), spec.features)
        self.context.log(
            f"{desired.address}: reference profile "
            f"{'built' if built else 'reused'} ({reference} {str(fingerprint)[:19]})"
        )
        return {
            "type": spec.type,
            "reference": reference,
            "reference_fingerprint": fingerprint,
            "profile": str(target.relative_to(self.context.data_dir)),
            "features": list(spec.features),
        }

    def _build(self, reference: str, fingerprint: str, features: list[str]) -> tuple[Path, bool]:
        peers = self.context.peers
        if peers is None:
            raise ProviderError("monitors need the engine's peers (run them through mlx)")
        declared = peers.spec(reference) or {}
        ext = declared.get("format") or Path(str(declared.get("uri", ""))).suffix.lstrip(".")
        if ext not in ("csv", "tsv", "parquet"):
            raise ProviderError(f"{reference}: a drift reference is CSV or Parquet, not {ext!r}")
        with tempfile.TemporaryDirectory(dir=self.context.data_dir) as tmp:
            path = peers.materialize(reference, None, Path(tmp) / f"reference.{ext}")
            try:
                return ensure_profile(self.context.data_dir, fingerprint, path, features)
            except ReferenceError as exc:
                raise ProviderError(str(exc)) from None
