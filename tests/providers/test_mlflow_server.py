"""The MLflow provider through a real ``mlflow server`` process (REST, not serverless).

Over REST, versions come back as strings and ``create_model_version`` refuses
local paths: these tests show that mlx behaves exactly as it does serverless.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from providers.contract import Change, Desired, Prior, Provider
from providers.testing import ProviderConformance
from tests.conftest import REPO, run_mlx
from tests.providers.test_mlflow_provider import applied, client, make, model_spec, prompt_spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class TestServerModels(ProviderConformance):
    section = "models"

    @pytest.fixture(autouse=True)
    def _server(self, mlflow_server: str) -> None:
        self.uri, self.name = mlflow_server, unique("fraud")

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.uri)

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        return model_spec(tmp_path, variant, self.name)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        # released by a rollout, then moved by hand to a version somebody registered
        provider.set_alias("models", self.name, "production", prior.outputs)
        mlflow = client(provider)
        run_id = prior.outputs["run_id"]
        mv = mlflow.create_model_version(self.name, f"runs:/{run_id}/model", run_id=run_id)
        mlflow.set_registered_model_alias(self.name, "production", mv.version)


class TestServerPrompts(ProviderConformance):
    section = "prompts"

    @pytest.fixture(autouse=True)
    def _server(self, mlflow_server: str) -> None:
        self.uri, self.name = mlflow_server, unique("summary")

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.uri)

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        return prompt_spec(tmp_path, variant, self.name)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        client(provider).delete_prompt_version(self.name, str(prior.outputs["version"]))


def test_rest_versions_are_ints_and_artifacts_go_through_a_run(
    tmp_path: Path, mlflow_server: str
) -> None:
    provider = make(tmp_path, mlflow_server)
    name = unique("fraud")
    prior = applied(provider, model_spec(tmp_path, "v1", name))
    assert prior.outputs["version"] == 1 and isinstance(prior.outputs["version"], int)
    mv = client(provider).get_model_version(name, "1")
    assert mv.version == "1"  # what REST hands back, and mlx normalised
    assert mv.source == f"runs:/{prior.outputs['run_id']}/model"
    got = provider.materialize("models", name, prior.outputs, tmp_path / "dl" / "model")
    assert got.read_bytes() == b"weights-v1"


def test_alias_moves_by_rollout_rollback_and_by_hand(tmp_path: Path, mlflow_server: str) -> None:
    provider = make(tmp_path, mlflow_server)
    name = unique("fraud")
    v1 = applied(provider, model_spec(tmp_path, "v1", name))
    d2 = model_spec(tmp_path, "v2", name)
    d2 = replace(d2, fingerprint=provider.fingerprint(d2))
    out2 = provider.update(v1, d2, Change(behaviour=True, content=True)).outputs
    v2 = Prior(v1.address, "models", name, dict(d2.spec), out2, d2.fingerprint)
    assert out2["version"] == 2

    provider.set_alias("models", name, "production", v2.outputs)  # rollout releases v2
    assert provider.get_alias("models", name, "production")["version"] == 2
    provider.set_alias("models", name, "production", v1.outputs)  # rollback to v1
    assert provider.get_alias("models", name, "production")["version"] == 1
    assert provider.read(v2).differences(v2.outputs, v2.fingerprint) == []

    client(provider).set_registered_model_alias(name, "production", "2")  # by hand
    assert provider.read(v2).differences(v2.outputs, v2.fingerprint) == [
        "alias 'production' moved outside mlx: version 1 -> 2"
    ]
    provider.update(v2, d2, Change(metadata=True))  # apply repairs it
    assert provider.get_alias("models", name, "production")["version"] == 1


def test_prompt_versions_only_on_change_over_rest(tmp_path: Path, mlflow_server: str) -> None:
    provider = make(tmp_path, mlflow_server)
    name = unique("summary")
    p1 = applied(provider, prompt_spec(tmp_path, "v1", name))
    assert provider.update(p1, prompt_spec(tmp_path, "v1", name), Change(True)).outputs == (
        p1.outputs
    )
    p2 = provider.update(p1, prompt_spec(tmp_path, "v2", name), Change(True)).outputs
    assert p2["version"] == 2
    back = provider.update(p1, prompt_spec(tmp_path, "v1", name), Change(True)).outputs
    assert back["version"] == 1  # a rollback lands on the old version, not a third one
    assert len(list(client(provider).search_prompt_versions(name))) == 2


def test_quickstart_against_the_server(tmp_path: Path, mlflow_server: str) -> None:
    """examples/mlflow end to end through `mlx`: apply, no-op plan, a retrained model released
    by its rollout (alias), the alias moved by hand (refresh reports it, apply repairs it),
    and a rollback that moves the alias back to version 1 without registering a third."""
    import subprocess

    from mlflow import MlflowClient

    spec = tmp_path / "mlflow"
    shutil.copytree(
        REPO / "examples" / "mlflow", spec, ignore=shutil.ignore_patterns(".mlx", "artifacts")
    )
    env = {"MLX_VAR_mlflow_tracking_uri": mlflow_server}
    registry = MlflowClient(tracking_uri=mlflow_server)

    def production() -> int:
        return int(registry.get_model_version_by_alias("tumor_classifier", "production").version)

    train = [sys.executable, str(REPO / "examples" / "quickstart" / "train.py"), "--out", "."]
    subprocess.run(train, cwd=spec, check=True, capture_output=True)
    run = run_mlx(["apply", "--yes"], spec, env=env)
    assert run.code == 0, run
    assert "models.tumor_classifier: Creation complete" in run.out
    assert production() == 1
    again = run_mlx(["plan", "--detailed-exitcode"], spec, env=env)
    assert again.code == 0, again

    subprocess.run([*train, "--C", "0.5"], cwd=spec, check=True, capture_output=True)
    changed = run_mlx(["apply", "--yes"], spec, env=env)
    assert changed.code == 0, changed
    assert "[version=2]" in changed.out
    assert production() == 2  # the rollout released it

    registry.set_registered_model_alias("tumor_classifier", "production", "1")  # by hand
    drift = run_mlx(["refresh", "--detailed-exitcode"], spec, env=env)
    assert drift.code == 2, drift
    assert "alias 'production' moved outside mlx: version 2 -> 1" in drift.out
    repaired = run_mlx(["apply", "--yes"], spec, env=env)
    assert repaired.code == 0, repaired
    assert production() == 2
    assert run_mlx(["refresh", "--detailed-exitcode"], spec, env=env).code == 0

    back = run_mlx(["rollback", "--to", "1", "--yes"], spec, env=env)
    assert back.code == 0, back
    assert production() == 1
    versions = registry.search_model_versions("name = 'tumor_classifier'")
    assert sorted(int(mv.version) for mv in versions) == [1, 2]
    assert registry.get_prompt("report_summary") is not None
