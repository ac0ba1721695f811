"""The conformance kit itself: it catches broken providers, its fakes are complete, and it
says what to install when pytest is missing."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contract import Change, Desired, Peers, Provider, Result
from providers.local.provider import LocalRegistryProvider
from providers.testing import FakePeers, ProviderConformance
from providers.testing.crud import CrudConformance
from providers.testing.faults import FaultBudget, inject
from tests.providers import test_local_conformance as local  # not collected again here
from tests.support.registry_rows import drop_record, read_record, write_record


def run_case(suite: type[Any], case: str, tmp_path: Path) -> None:
    """One case of a suite, outside pytest's collection (fixtures done by hand)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    instance = suite()
    instance.peers = FakePeers(tmp_path)
    provider = instance.make_provider(tmp_path)
    method = getattr(instance, case)
    try:
        if "provider" in inspect.signature(method).parameters:
            method(provider, tmp_path)
        else:
            method(tmp_path, instance.peers)
    finally:
        provider.close()


class DeletesVersions(LocalRegistryProvider):
    """What the MLflow provider did before issue 8: delete took every version with it."""

    def delete(self, prior: Any) -> None:
        drop_record(self.root, prior.section, prior.name)


class VersionsEveryWrite(LocalRegistryProvider):
    """Registers a new version on every call, known content or not (a retry duplicates)."""

    def _register(self, desired: Desired) -> Result:
        result = super()._register(desired)
        section, name = desired.section, desired.name
        versions = self.registry.versions(section, name)
        duplicate = {**versions[max(versions)], "version": max(versions) + 1}
        data = read_record(self.root, section, name)
        data["versions"][str(max(versions) + 1)] = duplicate
        write_record(self.root, section, name, data)
        return result


class ForgetsInputs(LocalRegistryProvider):
    def plan_inputs(self) -> list[str] | None:
        return []  # "nothing local": a lie, it hashed the artifact


class BumpsOnMetadata(LocalRegistryProvider):
    """A description edit makes a new version."""

    def update(self, prior: Any, desired: Desired, change: Change) -> Result:
        if not change.metadata:
            return super().update(prior, desired, change)
        number, _new = self.registry.register(
            desired.section, desired.name, f"{desired.fingerprint}+meta", {"blob": "0"}, {}
        )
        return Result({**prior.outputs, "version": number})


class RetiresHalfway(LocalRegistryProvider):
    """Adopting on create forgets the aliases mlx set (a forced replacement loses the release)."""

    def create(self, desired: Desired) -> Result:
        obj = self.registry.get_object(desired.section, desired.name)
        if obj is not None:
            obj["aliases"] = {}
            self.registry.put_object(desired.section, desired.name, obj)
        return super().create(desired)


def mutant(base: type[Any], provider: type[Provider]) -> type[Any]:
    class Suite(base):  # type: ignore[misc, valid-type]
        def make_provider(self, tmp_path: Path) -> Provider:
            return provider({"type": "local"}, self.context(tmp_path))

    return Suite


@pytest.mark.parametrize(
    ("provider", "case"),
    [
        (DeletesVersions, "test_delete_keeps_every_version"),
        (VersionsEveryWrite, "test_failed_update_then_retry_loses_nothing"),
        (VersionsEveryWrite, "test_create_adopts_an_existing_object"),
        (ForgetsInputs, "test_plan_inputs_are_honest"),
        (BumpsOnMetadata, "test_metadata_update_keeps_version"),
        (RetiresHalfway, "test_create_adopts_an_existing_object"),
    ],
)
def test_the_kit_catches_a_broken_provider(
    tmp_path: Path, provider: type[Provider], case: str
) -> None:
    suite = mutant(local.TestLocalModels, provider)
    run_case(local.TestLocalModels, case, tmp_path / "good")  # the real provider passes
    with pytest.raises(AssertionError):
        run_case(suite, case, tmp_path / "broken")


def test_plan_inputs_honesty_sees_a_content_edit_under_the_same_spec(tmp_path: Path) -> None:
    """Datasets keep one file name across variants: the memo half of the check runs."""
    run_case(local.TestLocalDatasets, "test_plan_inputs_are_honest", tmp_path / "good")
    with pytest.raises(AssertionError, match="plan_inputs"):
        run_case(
            mutant(local.TestLocalDatasets, ForgetsInputs),
            "test_plan_inputs_are_honest",
            tmp_path / "bad",
        )


def test_fake_peers_implements_every_method_of_peers() -> None:
    wanted = {n for n, v in vars(Peers).items() if callable(v) and not n.startswith("_")}
    for name in wanted:
        ours = getattr(FakePeers, name, None)
        assert callable(ours), f"FakePeers lacks {name}"
        theirs = inspect.signature(getattr(Peers, name))
        assert list(inspect.signature(ours).parameters)[: len(theirs.parameters)] == list(
            theirs.parameters
        ), name


def test_faults_fail_from_the_chosen_call() -> None:
    budget = FaultBudget(2)
    budget.spend()
    budget.spend()
    with pytest.raises(ConnectionResetError):
        budget.spend()
    box = type("Box", (), {"value": 1, "get": lambda self: self.value})()
    with inject(box, "get", after=1):
        assert box.get() == 1
        with pytest.raises(ConnectionResetError):
            box.get()
    assert box.get() == 1  # restored


def test_the_old_name_is_the_crud_suite() -> None:
    assert ProviderConformance is CrudConformance


def test_the_kit_without_pytest_names_the_extra() -> None:
    code = "import sys; sys.modules['pytest'] = None; import providers.testing"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1
    assert (
        "ImportError: providers.testing (the provider conformance kit) needs pytest: "
        "pip install 'mlxctl[testing]'"
    ) in run.stderr


def test_pytest_is_a_testing_extra_not_a_runtime_dependency() -> None:
    import tomllib

    from tests.conftest import REPO

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("pytest") for d in meta["dependencies"])
    assert meta["optional-dependencies"]["testing"] == ["pytest>=8.0"]
    assert any("testing" in d for d in meta["optional-dependencies"]["dev"])
