"""``type: dirstore``: models and datasets kept as numbered versions in a directory.

Layout under ``root``::

    <section>/<name>/object.json      description, labels, owner, current version, aliases
    <section>/<name>/<n>/content      the file, as registered
    <section>/<name>/<n>/version.json its fingerprint

It uses nothing of mlx but ``contract`` (and ``providers.testing``
in its tests), which is all a third-party provider should need.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from contract import (
    Change,
    Context,
    Desired,
    Observed,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Registry,
    Result,
)

_FIELD = {"models": "artifact", "datasets": "uri"}


class DirStoreConfig(BaseModel):
    """The provider's block under ``providers:`` (mlx passes it through unvalidated)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["dirstore"] = "dirstore"
    root: str


class DirStoreProvider(Provider, Registry):
    sections = frozenset({"models", "datasets"})
    config_model = DirStoreConfig
    type_name = "dirstore"

    def __init__(self, config: Mapping[str, Any], context: Context):
        super().__init__(config, context)
        root = Path(self.settings.root)  # validated by the base class (config_model)
        self.root = root if root.is_absolute() else context.root / root

    # -- planning: pure, no side effects ----------------------------------------------------
    def _source(self, desired: Desired) -> Path:
        return desired.path(self.context.root, str(desired.spec.get(_FIELD[desired.section])))

    def check(self, desired: Desired) -> list[Problem]:
        field = _FIELD[desired.section]
        if not self._source(desired).is_file():
            return [Problem((field,), f"file not found: {desired.spec.get(field)}")]
        return []

    def fingerprint(self, desired: Desired) -> str | None:
        source = self._source(desired)
        if not source.is_file():
            return None
        return "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()

    def plan_inputs(self) -> list[str] | None:
        return None  # keep it simple: always asked at plan time

    # -- applying -----------------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        with _store_errors(desired.address):
            return Result(self._register(desired))

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        rerun = change.behaviour or change.content or desired.restore is not None
        with _store_errors(desired.address):
            if rerun or prior.outputs.get("version") is None:
                return Result(self._register(desired))
            self._write_object(desired, int(prior.outputs["version"]))  # metadata only
        return Result(dict(prior.outputs))

    def delete(self, prior: Prior) -> None:
        """Retire, never remove: versions stay restorable, and a later create adopts them."""
        path = self._dir(prior.section, prior.name) / "object.json"
        obj = _load(path)
        if obj is not None:
            _save(path, {**obj, "retired": True, "aliases": {}})

    def read(self, prior: Prior) -> Observed | None:
        obj = _load(self._dir(prior.section, prior.name) / "object.json")
        if obj is None or obj.get("retired"):
            return None
        version = obj["current"]
        meta = _load(self._dir(prior.section, prior.name) / str(version) / "version.json")
        notes = () if meta else (f"version {version} was deleted outside mlx",)
        fingerprint = meta["fingerprint"] if meta else None
        outputs = {"version": version if meta else None, "fingerprint": fingerprint}
        return Observed(outputs, fingerprint, notes)

    # -- registry capabilities ------------------------------------------------------------------
    def has_version(self, section: str, name: str, outputs: Mapping[str, Any]) -> bool:
        return self._find(section, name, outputs) is not None

    def materialize(
        self, section: str, name: str, outputs: Mapping[str, Any], target: Path
    ) -> Path:
        found = self._find(section, name, outputs)
        if found is None:
            raise ProviderError(f"{section}.{name}: version {outputs.get('version')} is gone")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found / "content", target)
        return target

    def get_alias(self, section: str, name: str, alias: str) -> dict[str, Any] | None:
        obj = _load(self._dir(section, name) / "object.json") or {}
        version = obj.get("aliases", {}).get(alias)
        meta = _load(self._dir(section, name) / str(version) / "version.json")
        return {"version": version, "fingerprint": meta["fingerprint"]} if meta else None

    def set_alias(self, section: str, name: str, alias: str, outputs: Mapping[str, Any]) -> None:
        path = self._dir(section, name) / "object.json"
        obj = _load(path)
        if obj is None:
            raise ProviderError(f"{section}.{name} is not in the store")
        if outputs.get("version") is None:
            obj["aliases"].pop(alias, None)
        else:
            obj["aliases"][alias] = int(outputs["version"])
        _save(path, obj)

    # -- helpers --------------------------------------------------------------------------------
    def _dir(self, section: str, name: str) -> Path:
        return self.root / section / name

    def _find(self, section: str, name: str, outputs: Mapping[str, Any]) -> Path | None:
        version_dir = self._dir(section, name) / str(outputs.get("version"))
        meta = _load(version_dir / "version.json")
        if meta and meta["fingerprint"] == outputs.get("fingerprint"):
            return version_dir
        return None

    def _register(self, desired: Desired) -> dict[str, Any]:
        """A new version only for new content: the same bytes give the same version."""
        if desired.restore is not None:  # a rollback: that version, whatever the file holds
            found = self._find(desired.section, desired.name, desired.restore)
            if found is None:
                raise ProviderError(f"{desired.address}: that version is no longer stored")
            self._write_object(desired, int(found.name))
            return {"version": int(found.name), "fingerprint": desired.restore["fingerprint"]}
        fingerprint = desired.fingerprint or self.fingerprint(desired)
        if fingerprint is None:
            raise ProviderError(f"{desired.address}: {self._source(desired)} does not exist")
        base = self._dir(desired.section, desired.name)
        versions = sorted(int(p.name) for p in base.glob("*") if p.name.isdigit())
        for number in versions:
            meta = _load(base / str(number) / "version.json")
            if meta and meta["fingerprint"] == fingerprint:
                break
        else:
            number = (versions[-1] if versions else 0) + 1
            (base / str(number)).mkdir(parents=True)
            shutil.copyfile(self._source(desired), base / str(number) / "content")
            _save(base / str(number) / "version.json", {"fingerprint": fingerprint})
        self._write_object(desired, number)
        return {"version": number, "fingerprint": fingerprint}

    def _write_object(self, desired: Desired, version: int) -> None:
        path = self._dir(desired.section, desired.name) / "object.json"
        obj = _load(path) or {"aliases": {}}
        obj.update({k: desired.spec.get(k) for k in ("description", "labels", "owner")})
        obj["current"] = version
        obj.pop("retired", None)  # created again: adopted
        _save(path, obj)


@contextlib.contextmanager
def _store_errors(address: str) -> Iterator[None]:
    """A disk error is something the user can act on: a ProviderError, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise ProviderError(f"{address}: cannot write the store: {exc}") from exc


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _save(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
