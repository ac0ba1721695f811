"""The MLflow provider through a real ``mlflow server`` process (REST, not serverless).

Over REST, versions come back as strings and ``create_model_version`` refuses
local paths: these tests show that mlx behaves exactly as it does serverless.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from contract import Change, Desired, Prior, Provider, ProviderError
from providers.mlflow.provider import MlflowProvider
from providers.testing import FlakyProxy, RegistryConformance
from tests.conftest import REPO, run_mlx
from tests.providers.test_mlflow_provider import (
    applied,
    client,
    make,
    model_spec,
    prompt_spec,
    stored,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class MlflowServerSuite(RegistryConformance):
    """Through a ``FlakyProxy``: ``broken`` is the network going down half-way."""

    @pytest.fixture(autouse=True)
    def _server(self, mlflow_proxy: FlakyProxy) -> None:
        self.proxy = mlflow_proxy

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.proxy.url, peers=self.peers)

    def stored_fingerprints(self, provider: Provider, desired: Desired) -> list[str]:
        return stored(provider, desired)

    @contextlib.contextmanager
    def broken(self, provider: Provider, after: int) -> Iterator[None]:
        # no retries while it is down: each cut point is one request, and the sweep fast
        saved = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        self.proxy.go_down(after)
        try:
            yield
        finally:
            self.proxy.come_up()
            if saved is None:
                del os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
            else:
                os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = saved


class TestServerModels(MlflowServerSuite):
    section = "models"

    @pytest.fixture(autouse=True)
    def _name(self) -> None:
        self.name = unique("fraud")

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        return model_spec(tmp_path, variant, self.name)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        # released by a rollout, then moved by hand to a version somebody registered
        assert isinstance(provider, MlflowProvider)
        provider.set_alias("models", self.name, "production", prior.outputs)
        mlflow = client(provider)
        run_id = prior.outputs["run_id"]
        mv = mlflow.create_model_version(self.name, f"runs:/{run_id}/model", run_id=run_id)
        mlflow.set_registered_model_alias(self.name, "production", mv.version)


class TestServerPrompts(MlflowServerSuite):
    section = "prompts"

    @pytest.fixture(autouse=True)
    def _name(self) -> None:
        self.name = unique("summary")

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        return prompt_spec(tmp_path, variant, self.name)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, MlflowProvider)
        client(provider).delete_prompt_version(self.name, str(prior.outputs["version"]))


# -- transient errors are retried, a dead server fails fast and clearly ------------------------
@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's retries as mlx sets them, minus the waits (these tests count attempts)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")


def _read_through(proxy: FlakyProxy, tmp_path: Path) -> tuple[Provider, Prior, int]:
    """A model applied through the proxy, and how many requests one ``read()`` makes."""
    provider = make(tmp_path, proxy.url)
    prior = applied(provider, model_spec(tmp_path, "v1", unique("fraud")))
    before = proxy.received
    assert provider.read(prior) is not None
    return provider, prior, proxy.received - before


@pytest.mark.parametrize(
    "fault",
    ["503", "500", "429", "drop"],
)
@pytest.mark.usefixtures("no_backoff")
def test_transient_errors_are_retried(tmp_path: Path, mlflow_proxy: FlakyProxy, fault: str) -> None:
    provider, prior, requests = _read_through(mlflow_proxy, tmp_path)
    if fault == "drop":
        mlflow_proxy.drop(2)
    else:  # a Retry-After of an hour: not honoured by default, the call stays short
        mlflow_proxy.fail(2, status=int(fault), retry_after="3600")
    before = mlflow_proxy.received
    assert provider.read(prior) is not None
    assert mlflow_proxy.received - before == requests + 2


@pytest.mark.usefixtures("no_backoff")
def test_other_client_errors_are_not_retried(tmp_path: Path, mlflow_proxy: FlakyProxy) -> None:
    provider, prior, _requests = _read_through(mlflow_proxy, tmp_path)
    mlflow_proxy.fail(1, status=400)
    before = mlflow_proxy.received
    with pytest.raises(ProviderError) as err:
        provider.read(prior)
    assert mlflow_proxy.received - before == 1
    assert "\n" not in str(err.value) and "error code 400" in str(err.value)


@pytest.mark.parametrize(
    ("down", "reason"),
    [
        ("drop", "cannot reach the server: the connection was dropped (3 attempts)"),
        ("503", "cannot reach the server: it answered HTTP 503 (3 attempts)"),
    ],
)
@pytest.mark.usefixtures("no_backoff")
def test_a_dead_server_fails_within_bounded_attempts(
    tmp_path: Path, mlflow_proxy: FlakyProxy, down: str, reason: str
) -> None:
    provider, prior, _requests = _read_through(mlflow_proxy, tmp_path)
    if down == "drop":
        mlflow_proxy.go_down()
    else:
        mlflow_proxy.fail(1000, status=503)
    before = mlflow_proxy.received
    with pytest.raises(ProviderError) as err:
        provider.read(prior)
    assert mlflow_proxy.received - before == 3  # the first request, retried twice; no more
    assert (
        str(err.value) == f"{prior.address}: cannot read (MLflow at {mlflow_proxy.url}): {reason}"
    )


@pytest.mark.usefixtures("no_backoff")
def test_retries_are_overridable(
    tmp_path: Path, mlflow_proxy: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, prior, _requests = _read_through(mlflow_proxy, tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow_proxy.fail(1, status=503)
    before = mlflow_proxy.received
    with pytest.raises(ProviderError, match=r"HTTP 503 \(1 attempt\)$"):
        provider.read(prior)
    assert mlflow_proxy.received - before == 1


def test_an_update_cut_by_the_network_then_retried_keeps_every_version(
    tmp_path: Path, mlflow_proxy: FlakyProxy
) -> None:
    """Issue 8, item 4, at the provider: v1 and v2 applied; an apply while the server is
    unreachable fails cleanly and changes nothing; the next apply registers v3 once."""
    provider = make(tmp_path, mlflow_proxy.url)
    name = unique("fraud")
    v1 = applied(provider, model_spec(tmp_path, "v1", name))
    d2 = model_spec(tmp_path, "v2", name)
    d2 = replace(d2, fingerprint=provider.fingerprint(d2))
    v2 = Prior(
        v1.address, "models", name, dict(d2.spec), provider.update(v1, d2, Change(True)).outputs
    )
    d3 = model_spec(tmp_path, "v3", name)
    d3 = replace(d3, fingerprint=provider.fingerprint(d3))
    mlflow_proxy.go_down()
    with pytest.raises(ProviderError, match="cannot reach the server"):
        provider.update(v2, d3, Change(behaviour=True, content=True))
    mlflow_proxy.come_up()
    assert sorted(
        int(mv.version) for mv in client(provider).search_model_versions(f"name = '{name}'")
    ) == [1, 2]
    out = provider.update(v2, d3, Change(behaviour=True, content=True)).outputs
    assert out["version"] == 3
    versions = client(provider).search_model_versions(f"name = '{name}'")
    assert sorted(int(mv.version) for mv in versions) == [1, 2, 3]


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
