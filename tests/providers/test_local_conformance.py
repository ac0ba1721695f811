"""The embedded providers pass the conformance kit: the local registry (Registry suite) and
the file channel (Notifier suite)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contract import Desired, Prior, Provider, ProviderError
from providers.file_alert import FileAlertProvider
from providers.local.provider import LocalRegistryProvider
from providers.testing import NotifierConformance, RegistryConformance
from providers.testing.faults import inject
from tests.support.registry_rows import drop_record, read_record, write_record

CONTENT = {"v1": b"weights-v1", "v2": b"weights-v2", "v3": b"weights-v3"}


class LocalRegistrySuite(RegistryConformance):
    def make_provider(self, tmp_path: Path) -> Provider:
        return LocalRegistryProvider({"type": "local"}, self.context(tmp_path))

    def stored_fingerprints(self, provider: Provider, desired: Desired) -> list[str]:
        assert isinstance(provider, LocalRegistryProvider)
        versions = provider.registry.versions(desired.section, desired.name)
        return [str(v["fingerprint"]) for _n, v in sorted(versions.items())]

    def broken(self, provider: Provider, after: int) -> contextlib.AbstractContextManager[Any]:
        # the registry's storage fails half-way; the local provider passes ProviderError on
        # (an OSError from the disk would escape it: reported to the lead)
        return inject(
            provider, "registry", after, lambda: ProviderError("injected fault: disk went away")
        )


class TestLocalModels(LocalRegistrySuite):
    section = "models"

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "model.bin").write_bytes(CONTENT.get(variant, CONTENT["v1"]))
        spec: dict[str, Any] = {
            "artifact": "missing.bin" if variant == "bad" else "model.bin",
            "owner": "team-ml",
            "description": "changed" if variant == "meta" else "fraud model",
        }
        return Desired("models.fraud", "models", "fraud", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, LocalRegistryProvider)
        version = prior.outputs["version"]
        data = read_record(provider.root, "models", "fraud")
        del data["versions"][str(version)]  # somebody deleted the version by hand
        write_record(provider.root, "models", "fraud", data)


class TestLocalDatasets(LocalRegistrySuite):
    section = "datasets"
    version_key = "revision"

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        rows = {"v2": "a,b\n1,3\n", "v3": "a,b\n1,4\n"}.get(variant, "a,b\n1,2\n")
        (tmp_path / "data.csv").write_text(rows)
        spec: dict[str, Any] = {"uri": "data.csv", "owner": "team-data"}
        if variant == "meta":
            spec["description"] = "now described"
        if variant == "bad":
            spec["uri"] = "s3://bucket/data.csv"  # the embedded registry reads local paths
        return Desired("datasets.train", "datasets", "train", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, LocalRegistryProvider)
        data = read_record(provider.root, "datasets", "train")
        data["object"]["current"] = 99  # moved to a version that does not exist
        write_record(provider.root, "datasets", "train", data)


class TestLocalPrompts(LocalRegistrySuite):
    section = "prompts"

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        text = {"v2": "Explain {{x}}", "v3": "Translate {{x}}"}.get(variant, "Summarise {{x}}")
        (tmp_path / "t.txt").write_text(text)
        spec: dict[str, Any] = {
            "template": {"file": "nope.txt" if variant == "bad" else "t.txt"},
            "owner": "team-llm",
            "model": "gpt-4o-mini",
        }
        if variant == "meta":
            spec["labels"] = {"tier": "gold"}
        return Desired("prompts.summary", "prompts", "summary", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, LocalRegistryProvider)
        drop_record(provider.root, "prompts", "summary")


class TestFileAlerts(NotifierConformance):
    section = "alerts"
    version_key = None

    def make_provider(self, tmp_path: Path) -> Provider:
        return FileAlertProvider({"type": "file"}, self.context(tmp_path))

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        spec: dict[str, Any] = {"type": "file", "path": "alerts.jsonl", "severity": "warning"}
        if variant == "v2":
            spec["path"] = "other.jsonl"
        if variant == "meta":
            spec["description"] = "the on-call log"
        if variant == "bad":
            spec["type"] = "webhook"
        return Desired("alerts.oncall", "alerts", "oncall", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, FileAlertProvider)
        reg = provider.context.data_dir / "alerts" / "oncall.json"
        config = json.loads(reg.read_text())
        config["severity"] = "info"  # somebody edited the channel
        reg.write_text(json.dumps(config))

    def delivered(self, provider: Provider, channel: Prior) -> list[Any]:
        path = Path(str(channel.outputs["path"]))
        lines = path.read_text().splitlines() if path.is_file() else []
        return [json.loads(line) for line in lines]

    @contextlib.contextmanager
    def broken(self, provider: Provider, after: int) -> Iterator[None]:
        """The alert file cannot be appended to: a directory stands where it was."""
        target = provider.context.root / "alerts.jsonl"
        aside = target.with_suffix(".aside")
        target.rename(aside)
        target.mkdir()
        try:
            yield
        finally:
            target.rmdir()
            aside.rename(target)
