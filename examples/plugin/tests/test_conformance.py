"""mlx-dirstore passes mlx's provider conformance kit (run: pytest examples/plugin/tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlx_dirstore import DirStoreProvider

from providers.contract import Context, Desired, Prior, Provider, ProviderError
from providers.testing import ProviderConformance


class TestDirStoreModels(ProviderConformance):
    section = "models"

    def make_provider(self, tmp_path: Path) -> Provider:
        context = Context(root=tmp_path, data_dir=tmp_path / ".mlx")
        return DirStoreProvider({"type": "dirstore", "root": "store"}, context)

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "model.bin").write_bytes(b"weights-v2" if variant == "v2" else b"weights-v1")
        spec = {"artifact": "model.bin", "owner": "team-ml"}
        if variant == "meta":
            spec["description"] = "now described"
        return Desired("models.fraud", "models", "fraud", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        # somebody moved the current version by hand
        path = tmp_root(provider) / "models" / "fraud" / "object.json"
        obj = json.loads(path.read_text())
        obj["current"] = 42
        path.write_text(json.dumps(obj))


def tmp_root(provider: Provider) -> Path:
    assert isinstance(provider, DirStoreProvider)
    return provider.root


def test_config_is_validated(tmp_path: Path) -> None:
    context = Context(root=tmp_path, data_dir=tmp_path / ".mlx")
    with pytest.raises(ProviderError, match="invalid dirstore provider config"):
        DirStoreProvider({"type": "dirstore", "rot": "typo"}, context)
