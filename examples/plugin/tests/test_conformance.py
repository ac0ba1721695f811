"""mlx-dirstore passes mlx's provider conformance kit (run: pytest examples/plugin/tests).

A registry subclasses ``RegistryConformance``: the CRUD cases and the registry ones (versions
kept through deletes, re-creates and failures half-way). Its hooks say how to read the store
behind the provider's back, and how to make it fail.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import mlx_dirstore.provider as dirstore
import pytest
from mlx_dirstore import DirStoreProvider

from contract import Context, Desired, Prior, Provider, ProviderError
from providers.testing import RegistryConformance
from providers.testing.faults import inject

WEIGHTS = {"v1": b"weights-v1", "v2": b"weights-v2", "v3": b"weights-v3"}


class TestDirStoreModels(RegistryConformance):
    section = "models"

    def make_provider(self, tmp_path: Path) -> Provider:
        return DirStoreProvider({"type": "dirstore", "root": "store"}, self.context(tmp_path))

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "model.bin").write_bytes(WEIGHTS.get(variant, WEIGHTS["v1"]))
        spec = {"artifact": "missing.bin" if variant == "bad" else "model.bin", "owner": "team-ml"}
        if variant == "meta":
            spec["description"] = "now described"
        return Desired("models.fraud", "models", "fraud", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        # somebody moved the current version by hand
        path = tmp_root(provider) / "models" / "fraud" / "object.json"
        obj = json.loads(path.read_text())
        obj["current"] = 42
        path.write_text(json.dumps(obj))

    def stored_fingerprints(self, provider: Provider, desired: Desired) -> list[str]:
        base = tmp_root(provider) / desired.section / desired.name
        found = sorted(base.glob("*/version.json"), key=lambda p: int(p.parent.name))
        return [json.loads(p.read_text())["fingerprint"] for p in found]

    def broken(self, provider: Provider, after: int) -> contextlib.AbstractContextManager[Any]:
        # the store's writes fail from the `after`-th on (a full disk, a lost mount)
        return inject(dirstore, "_save", after, lambda: OSError(28, "No space left on device"))


def tmp_root(provider: Provider) -> Path:
    assert isinstance(provider, DirStoreProvider)
    return provider.root


def test_config_is_validated(tmp_path: Path) -> None:
    context = Context(root=tmp_path, data_dir=tmp_path / ".mlx")
    with pytest.raises(ProviderError, match="invalid dirstore provider config"):
        DirStoreProvider({"type": "dirstore", "rot": "typo"}, context)
