"""A model version records its input schema at registration — the local registry and MLflow
alike: the spec's ``inputs:`` wins, else the artifact's own (read without running it); an
``inputs:`` the artifact contradicts is a plan-time problem at the field and registers nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contract import Context, Desired, Provider, ProviderError
from providers.local.provider import LocalRegistryProvider
from tests.gateway.conftest import train

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mlflow's SQLAlchemy use

FLOATS = [{"name": n, "type": "float", "nullable": False} for n in ("amount", "age", "hour")]


def _local(tmp_path: Path, _request: Any) -> Provider:
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx")
    return LocalRegistryProvider({"type": "local"}, ctx)


def _mlflow(tmp_path: Path, request: Any) -> Provider:
    pytest.importorskip("mlflow")
    from providers.mlflow.provider import MlflowProvider

    db = request.getfixturevalue("mlflow_db")
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx")
    return MlflowProvider({"type": "mlflow", "tracking_uri": db}, ctx)


PROVIDERS = pytest.mark.parametrize("make", [_local, _mlflow], ids=["local", "mlflow"])


def _desired(provider: Provider, tmp_path: Path, **extra: Any) -> Desired:
    spec = {"artifact": "model.joblib", "flavor": "sklearn", "owner": "team-ml", **extra}
    desired = Desired("models.fraud", "models", "fraud", spec)
    return replace(desired, fingerprint=provider.fingerprint(desired))


@PROVIDERS
def test_the_artifacts_schema_is_known_at_plan_time_and_recorded(
    tmp_path: Path, request: Any, make: Callable[[Path, Any], Provider]
) -> None:
    train(tmp_path / "model.joblib")
    provider = make(tmp_path, request)
    try:
        desired = _desired(provider, tmp_path)
        assert provider.check(desired) == []
        expected = {"source": "sklearn", "columns": FLOATS}
        assert provider.planned_outputs(desired)["input_schema"] == expected
        assert provider.create(desired).outputs["input_schema"] == expected
    finally:
        provider.close()


@PROVIDERS
def test_the_specs_inputs_win_and_a_contradiction_registers_nothing(
    tmp_path: Path, request: Any, make: Callable[[Path, Any], Provider]
) -> None:
    train(tmp_path / "model.joblib")
    provider = make(tmp_path, request)
    try:
        inputs = [
            {"name": "amount", "type": "float"},
            {"name": "age", "type": "int"},
            {"name": "hour", "type": "int", "nullable": True},
        ]
        desired = _desired(provider, tmp_path, inputs=inputs)
        recorded = provider.create(desired).outputs["input_schema"]
        assert recorded["source"] == "spec"
        assert [(c["name"], c["type"], c["nullable"]) for c in recorded["columns"]] == [
            ("amount", "float", False),
            ("age", "int", False),
            ("hour", "int", True),
        ]
        train(tmp_path / "model.joblib", seed=4)  # new bytes: registering would make version 2
        wrong = _desired(provider, tmp_path, inputs=list(reversed(inputs)))
        [problem] = provider.check(wrong)
        assert problem.path == ("inputs",)
        assert "declares [hour, age, amount], but the artifact was fitted on" in problem.message
        assert _versions(provider) == 1
        with pytest.raises(ProviderError, match="but the artifact was fitted on"):
            provider.create(wrong)
        assert _versions(provider) == 1  # nothing half-written
    finally:
        provider.close()


def _versions(provider: Provider) -> int:
    if isinstance(provider, LocalRegistryProvider):
        return len(provider.registry.versions("models", "fraud"))
    found = provider.client.search_model_versions("name = 'fraud'")  # type: ignore[attr-defined]
    return len(found)
