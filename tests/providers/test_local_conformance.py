"""The embedded providers pass the conformance kit."""

from __future__ import annotations

import json
from pathlib import Path

from providers.contract import Context, Desired, Prior, Provider
from providers.file_alert import FileAlertProvider
from providers.local.provider import LocalRegistryProvider
from providers.testing import ProviderConformance


def _ctx(tmp_path: Path) -> Context:
    return Context(root=tmp_path, data_dir=tmp_path / ".mlx")


class TestLocalModels(ProviderConformance):
    section = "models"

    def make_provider(self, tmp_path: Path) -> Provider:
        return LocalRegistryProvider({"type": "local"}, _ctx(tmp_path))

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        artifact = tmp_path / f"model-{variant}.bin"
        artifact.write_bytes(b"weights-v2" if variant == "v2" else b"weights-v1")
        spec = {
            "artifact": artifact.name,
            "owner": "team-ml",
            "description": "changed" if variant == "meta" else "fraud model",
        }
        return Desired("models.fraud", "models", "fraud", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, LocalRegistryProvider)
        version = prior.outputs["version"]
        path = provider.registry.object_dir("models", "fraud") / "versions" / f"{version}.json"
        path.unlink()  # somebody deleted the version by hand


class TestLocalDatasets(ProviderConformance):
    section = "datasets"
    version_key = "revision"

    def make_provider(self, tmp_path: Path) -> Provider:
        return LocalRegistryProvider({"type": "local"}, _ctx(tmp_path))

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        data = tmp_path / "data.csv"
        data.write_text("a,b\n1,2\n" if variant != "v2" else "a,b\n1,3\n")
        spec = {"uri": "data.csv", "owner": "team-data"}
        if variant == "meta":
            spec["description"] = "now described"
        return Desired("datasets.train", "datasets", "train", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, LocalRegistryProvider)
        obj = provider.registry.object_dir("datasets", "train") / "object.json"
        data = json.loads(obj.read_text())
        data["current"] = 99  # moved to a version that does not exist
        obj.write_text(json.dumps(data))


class TestLocalPrompts(ProviderConformance):
    section = "prompts"

    def make_provider(self, tmp_path: Path) -> Provider:
        return LocalRegistryProvider({"type": "local"}, _ctx(tmp_path))

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "t.txt").write_text("Summarise {{x}}" if variant != "v2" else "Explain {{x}}")
        spec = {"template": {"file": "t.txt"}, "owner": "team-llm", "model": "gpt-4o-mini"}
        if variant == "meta":
            spec["labels"] = {"tier": "gold"}
        return Desired("prompts.summary", "prompts", "summary", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, LocalRegistryProvider)
        import shutil

        shutil.rmtree(provider.registry.object_dir("prompts", "summary"))


class TestFileAlerts(ProviderConformance):
    section = "alerts"
    version_key = None

    def make_provider(self, tmp_path: Path) -> Provider:
        return FileAlertProvider({"type": "file"}, _ctx(tmp_path))

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        spec = {"type": "file", "path": "alerts.jsonl", "severity": "warning"}
        if variant == "v2":
            spec["path"] = "other.jsonl"
        if variant == "meta":
            spec["description"] = "the on-call log"
        return Desired("alerts.oncall", "alerts", "oncall", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, FileAlertProvider)
        reg = provider.context.data_dir / "alerts" / "oncall.json"
        config = json.loads(reg.read_text())
        config["severity"] = "info"  # somebody edited the channel
        reg.write_text(json.dumps(config))
