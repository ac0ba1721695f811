"""A kind that exists only in the tests: ``features`` (a feature-store table), with its
provider — registered by entry points (the dist-info next to this package), touching no
file of mlx. It proves that adding a kind is a spec module, a provider and entry points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from contract import Change, Desired, Observed, Prior, Problem, Provider, Result
from specs.base import OwnedResource
from specs.kinds import Kind


class Feature(OwnedResource):
    section: ClassVar[str] = "features"
    computed: ClassVar[tuple[str, ...]] = ("table_id",)

    table: str = Field(..., min_length=1)
    columns: list[str] = Field(..., min_length=1)


KIND = Kind("features", Feature, default_provider="featurestore", order=35)


class FeatureStoreProvider(Provider):
    """Keeps each feature table as a JSON file under .mlx/features/."""

    sections = frozenset({"features"})

    def plan_inputs(self) -> list[str] | None:
        return []

    def _path(self, name: str) -> Path:
        return self.context.data_dir / "features" / f"{name}.json"

    def check(self, desired: Desired) -> list[Problem]:
        columns = desired.spec.get("columns") or []
        if len(set(columns)) != len(columns):
            return [Problem(("columns",), "columns repeat")]
        return []

    def _write(self, desired: Desired) -> Result:
        path = self._path(desired.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"table": desired.spec["table"], "columns": list(desired.spec["columns"])}
        path.write_text(json.dumps(doc))
        return Result({"table_id": f"fs:{desired.spec['table']}"})

    def create(self, desired: Desired) -> Result:
        return self._write(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        return self._write(desired)

    def delete(self, prior: Prior) -> None:
        self._path(prior.name).unlink(missing_ok=True)

    def read(self, prior: Prior) -> Observed | None:
        path = self._path(prior.name)
        return Observed(dict(prior.outputs)) if path.exists() else None
