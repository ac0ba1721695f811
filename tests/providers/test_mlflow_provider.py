"""The MLflow provider against a serverless store (``sqlite:///…``): conformance and behaviour."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contract import Change, Context, Desired, MissingExtra, Prior, Provider
from providers.mlflow.provider import MlflowProvider  # imports mlflow only when used
from providers.testing import RegistryConformance
from providers.testing.faults import inject
from tests.conftest import require_extra

require_extra("mlflow", "mlflow")
# mlflow's SQLAlchemy store uses a loader strategy SQLAlchemy deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WEIGHTS = {"v2": b"weights-v2", "v3": b"weights-v3"}
TEMPLATES = {"v2": "Explain {{x}}", "v3": "Translate {{x}}"}


def make(tmp_path: Path, tracking_uri: str, peers: Any = None, **config: Any) -> MlflowProvider:
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=peers)
    return MlflowProvider({"type": "mlflow", "tracking_uri": tracking_uri, **config}, ctx)


def model_spec(tmp_path: Path, variant: str = "v1", name: str = "fraud") -> Desired:
    artifact = tmp_path / f"{name}.bin"
    artifact.write_bytes(WEIGHTS.get(variant, b"weights-v1"))
    spec = {
        "artifact": "ftp://elsewhere/m.bin" if variant == "bad" else artifact.name,
        "flavor": "sklearn",
        "owner": "team-ml",
        "description": "changed" if variant == "meta" else "fraud model",
        "labels": {"tier": "gold"} if variant == "meta" else {"tier": "silver"},
        "lineage": {
            "code": {"repo": "github.com/acme/fraud", "commit": "3f2a9c1"},
            "params": {"C": 1.0},
            "environment": {"requirements": "scikit-learn>=1.4"},
        },
    }
    inputs = {"datasets.train": {"fingerprint": "sha256:aa", "revision": 3, "snapshot": "aa"}}
    return Desired(f"models.{name}", "models", name, spec, inputs=inputs)


def prompt_spec(tmp_path: Path, variant: str = "v1", name: str = "summary") -> Desired:
    (tmp_path / f"{name}.txt").write_text(TEMPLATES.get(variant, "Summarise {{x}}"))
    spec: dict[str, Any] = {
        "template": {"file": "missing.txt" if variant == "bad" else f"{name}.txt"},
        "owner": "team-llm",
        "system": "Be brief.",
        "model": "gpt-4o-mini",
        "params": {"temperature": 0.1, "max_tokens": 300, "seed": 7},
    }
    if variant == "meta":
        spec["labels"] = {"tier": "gold"}
        spec["description"] = "now described"
    return Desired(f"prompts.{name}", "prompts", name, spec)


def applied(provider: Provider, desired: Desired) -> Prior:
    desired = replace(desired, fingerprint=provider.fingerprint(desired))
    result = provider.create(desired)
    return Prior(
        desired.address,
        desired.section,
        desired.name,
        dict(desired.spec),
        result.outputs,
        desired.fingerprint,
    )


def client(provider: MlflowProvider) -> Any:
    """A separate client: 'somebody else' changing the registry by hand."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=provider.tracking_uri)


# -- the conformance kit ------------------------------------------------------------------
def stored(provider: Provider, desired: Desired) -> list[str]:
    """Every version's fingerprint tag, read by 'somebody else' (a separate client)."""
    assert isinstance(provider, MlflowProvider)
    mlflow = client(provider)
    if desired.section == "models":
        found = mlflow.search_model_versions(f"name = '{desired.name}'")
    else:
        found = mlflow.search_prompt_versions(desired.name)
    return [str((v.tags or {}).get("mlx.fingerprint")) for v in found]


class MlflowServerlessSuite(RegistryConformance):
    @pytest.fixture(autouse=True)
    def _store(self, mlflow_db: str) -> None:
        self.uri = mlflow_db

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.uri, peers=self.peers)

    def stored_fingerprints(self, provider: Provider, desired: Desired) -> list[str]:
        return stored(provider, desired)

    def broken(self, provider: Provider, after: int) -> contextlib.AbstractContextManager[Any]:
        assert isinstance(provider, MlflowProvider)
        provider.client  # noqa: B018 - connect first: the fault is in the calls, not the connect
        return inject(provider, "_client", after)


class TestMlflowModels(MlflowServerlessSuite):
    section = "models"

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        return model_spec(tmp_path, variant)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        assert isinstance(provider, MlflowProvider)
        client(provider).delete_model_version("fraud", str(prior.outputs["version"]))


class TestMlflowPrompts(MlflowServerlessSuite):
    section = "prompts"

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        return prompt_spec(tmp_path, variant)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        # a rollout released this version; then somebody moved the alias by hand
        assert isinstance(provider, MlflowProvider)
        provider.set_alias("prompts", "summary", "production", prior.outputs)
        mlflow = client(provider)
        other = mlflow.create_prompt_version("summary", "hand-made {{x}}")
        mlflow.set_prompt_alias("summary", "production", int(other.version))


# -- models -------------------------------------------------------------------------------
def test_versions_are_ints_with_models_uri_and_run(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, model_spec(tmp_path))
    out = prior.outputs
    assert out["version"] == 1 and isinstance(out["version"], int)
    assert out["uri"] == "models:/fraud/1"
    assert out["fingerprint"] == prior.fingerprint and out["fingerprint"].startswith("sha256:")
    run = client(provider).get_run(out["run_id"])
    assert run.data.tags["mlx.fingerprint"] == out["fingerprint"]


def test_version_tags_carry_lineage(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, model_spec(tmp_path))
    tags = client(provider).get_model_version("fraud", "1").tags
    assert tags["mlx.fingerprint"] == prior.fingerprint
    assert tags["mlx.code.commit"] == "3f2a9c1"
    assert tags["mlx.code.repo"] == "github.com/acme/fraud"
    assert tags["mlx.params"] == '{"C": 1.0}'
    assert tags["mlx.owner"] == "team-ml"
    assert '"snapshot": "aa"' in tags["mlx.data.train"]
    assert "scikit-learn" in tags["mlx.environment"]


def test_metadata_update_in_place(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, model_spec(tmp_path))
    meta = replace(model_spec(tmp_path, "meta"), fingerprint=prior.fingerprint)
    result = provider.update(prior, meta, Change(metadata=True, fields=("description",)))
    assert result.outputs["version"] == prior.outputs["version"]
    mlflow = client(provider)
    model = mlflow.get_registered_model("fraud")
    assert model.description == "changed"
    assert model.tags["tier"] == "gold"
    assert len(mlflow.search_model_versions("name = 'fraud'")) == 1


def test_removed_label_is_removed(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, model_spec(tmp_path))
    desired = model_spec(tmp_path)
    spec = {k: v for k, v in desired.spec.items() if k != "labels"}
    provider.update(prior, replace(desired, spec=spec), Change(metadata=True))
    assert "tier" not in client(provider).get_registered_model("fraud").tags


def test_same_content_again_is_the_same_version(tmp_path: Path, mlflow_db: str) -> None:
    """Rolling back to earlier bytes lands on the earlier version, not a third one."""
    provider = make(tmp_path, mlflow_db)
    v1 = applied(provider, model_spec(tmp_path, "v1"))
    d2 = model_spec(tmp_path, "v2")
    v2 = provider.update(v1, replace(d2, fingerprint=provider.fingerprint(d2)), Change(True))
    assert v2.outputs["version"] == 2
    d1 = model_spec(tmp_path, "v1")
    again = provider.update(v1, replace(d1, fingerprint=provider.fingerprint(d1)), Change(True))
    assert again.outputs["version"] == 1


def test_alias_set_get_and_moved_by_hand(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    v1 = applied(provider, model_spec(tmp_path, "v1"))
    d2 = model_spec(tmp_path, "v2")
    d2 = replace(d2, fingerprint=provider.fingerprint(d2))
    v2 = Prior(
        v1.address,
        "models",
        "fraud",
        d2.spec,
        provider.update(v1, d2, Change(True)).outputs,
        d2.fingerprint,
    )

    provider.set_alias("models", "fraud", "production", v2.outputs)  # a rollout releases v2
    got = provider.get_alias("models", "fraud", "production")
    assert got is not None and got["version"] == 2 and got["fingerprint"] == v2.fingerprint
    assert provider.read(v2).differences(v2.outputs, v2.fingerprint) == []

    client(provider).set_registered_model_alias("fraud", "production", "1")  # by hand
    drift = provider.read(v2).differences(v2.outputs, v2.fingerprint)
    assert drift == ["alias 'production' moved outside mlx: version 2 -> 1"]

    provider.update(v2, d2, Change())  # the next apply puts it back
    assert provider.get_alias("models", "fraud", "production")["version"] == 2
    assert provider.read(v2).differences(v2.outputs, v2.fingerprint) == []


def test_rollback_moves_alias_to_older_version(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    v1 = applied(provider, model_spec(tmp_path, "v1"))
    d2 = model_spec(tmp_path, "v2")
    v2 = provider.update(v1, replace(d2, fingerprint=provider.fingerprint(d2)), Change(True))
    provider.set_alias("models", "fraud", "champion", v2.outputs)
    assert provider.has_version("models", "fraud", v1.outputs)
    provider.set_alias("models", "fraud", "champion", v1.outputs)  # what a rollback does
    assert provider.get_alias("models", "fraud", "champion")["version"] == 1
    provider.set_alias("models", "fraud", "champion", {"version": None})
    assert provider.get_alias("models", "fraud", "champion") is None


def test_description_edited_by_hand_is_drift(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, model_spec(tmp_path))
    client(provider).update_registered_model("fraud", description="edited in the UI")
    drift = provider.read(prior).differences(prior.outputs, prior.fingerprint)
    assert drift == ["description edited outside mlx: 'fraud model' -> 'edited in the UI'"]


def test_deleted_version_comes_back_from_its_run(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, model_spec(tmp_path))
    mlflow = client(provider)
    mlflow.delete_model_version("fraud", "1")
    assert provider.has_version("models", "fraud", prior.outputs)  # the run still holds it
    observed = provider.read(prior)
    assert "version 1 was deleted from MLflow outside mlx" in observed.notes
    result = provider.update(
        prior, replace(model_spec(tmp_path), fingerprint=prior.fingerprint), Change(True)
    )
    assert result.outputs["version"] == 2
    assert result.outputs["run_id"] == prior.outputs["run_id"]  # not uploaded again
    assert len(mlflow.search_runs([provider._experiment_id()])) == 1


def test_materialize_single_file_and_directory(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, model_spec(tmp_path))
    path = provider.materialize("models", "fraud", prior.outputs, tmp_path / "out" / "baseline")
    assert path.read_bytes() == b"weights-v1"

    tree = tmp_path / "model_dir"
    (tree / "sub").mkdir(parents=True)
    (tree / "MLmodel").write_text("flavors: {}\n")
    (tree / "sub" / "w.bin").write_bytes(b"w")
    desired = Desired("models.tree", "models", "tree", {"artifact": "model_dir", "owner": "x"})
    tree_prior = applied(provider, desired)
    got = provider.materialize("models", "tree", tree_prior.outputs, tmp_path / "out" / "tree")
    assert (got / "MLmodel").read_text() == "flavors: {}\n"
    assert (got / "sub" / "w.bin").read_bytes() == b"w"


def test_check_reports_missing_artifact_and_bad_uri(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    missing = Desired("models.x", "models", "x", {"artifact": "nope.bin", "owner": "o"})
    assert "artifact not found" in provider.check(missing)[0].message
    ftp = Desired("models.x", "models", "x", {"artifact": "ftp://h/m.bin", "owner": "o"})
    assert provider.check(ftp)[0].path == ("artifact",)


def test_relative_sqlite_uri_is_relative_to_the_spec_dir(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, "sqlite:///.mlx/reg/mlflow.db")
    assert provider.tracking_uri == f"sqlite:///{(tmp_path / '.mlx/reg/mlflow.db').resolve()}"


def test_missing_mlflow_is_a_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(MissingExtra, match=r"pip install 'mlxctl\[mlflow\]'"):
        make(tmp_path, "sqlite:///x.db")


def test_importing_the_provider_does_not_import_mlflow() -> None:
    import subprocess

    code = (
        "import sys; import providers.mlflow.provider, providers.aws.s3, providers.aws.sns, "
        "providers.webhook; print(sorted(m for m in ('mlflow', 'boto3', 'botocore') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- prompts ------------------------------------------------------------------------------
def test_prompt_versions_only_on_change(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    p1 = applied(provider, prompt_spec(tmp_path, "v1"))
    mlflow = client(provider)
    same = provider.update(p1, prompt_spec(tmp_path, "v1"), Change(behaviour=True))
    assert same.outputs["version"] == 1
    meta = provider.update(p1, prompt_spec(tmp_path, "meta"), Change(metadata=True))
    assert meta.outputs["version"] == 1
    assert mlflow.get_prompt("summary").tags["tier"] == "gold"
    changed = provider.update(p1, prompt_spec(tmp_path, "v2"), Change(behaviour=True))
    assert changed.outputs["version"] == 2
    versions = list(mlflow.search_prompt_versions("summary"))
    assert sorted(int(v.version) for v in versions) == [1, 2]


def test_prompt_version_holds_the_behaviour(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, prompt_spec(tmp_path))
    pv = client(provider).get_prompt_version("summary", 1)
    assert pv.template == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarise {{x}}"},
    ]
    assert pv.model_config["model_name"] == "gpt-4o-mini"
    assert pv.model_config["extra_params"] == {"seed": 7}
    doc_path = provider.materialize("prompts", "summary", prior.outputs, tmp_path / "p.json")
    import json

    doc = json.loads(doc_path.read_text())
    assert doc["template"] == "Summarise {{x}}" and doc["system"] == "Be brief."


def test_prompt_fingerprint_matches_the_local_registry(tmp_path: Path, mlflow_db: str) -> None:
    """The same prompt has the same fingerprint in either registry (moving keeps identity)."""
    from providers.local.provider import LocalRegistryProvider

    mlflow_out = applied(make(tmp_path, mlflow_db), prompt_spec(tmp_path)).outputs
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx")
    local_out = applied(
        LocalRegistryProvider({"type": "local"}, ctx), prompt_spec(tmp_path)
    ).outputs
    assert mlflow_out["fingerprint"] == local_out["fingerprint"]


def test_prompt_alias_and_deleted_prompt(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    prior = applied(provider, prompt_spec(tmp_path))
    provider.set_alias("prompts", "summary", "production", prior.outputs)
    got = provider.get_alias("prompts", "summary", "production")
    assert got == {**prior.outputs}
    client(provider).delete_prompt("summary")  # by hand, versions and all
    assert provider.read(prior) is None
    assert not provider.has_version("prompts", "summary", prior.outputs)


# -- delete retires: a registry never loses a version ----------------------------------------
def test_delete_retires_the_model_and_keeps_versions_runs_and_tags(
    tmp_path: Path, mlflow_db: str
) -> None:
    """Issue 8: deleting (or replacing) a model must not take its versions with it."""
    provider = make(tmp_path, mlflow_db)
    v1 = applied(provider, model_spec(tmp_path, "v1"))
    d2 = model_spec(tmp_path, "v2")
    v2 = provider.update(v1, replace(d2, fingerprint=provider.fingerprint(d2)), Change(True))
    provider.set_alias("models", "fraud", "production", v2.outputs)
    mlflow = client(provider)
    mlflow.set_registered_model_alias("fraud", "by-hand", "1")  # not mlx's: left alone
    provider.delete(v1)

    model = mlflow.get_registered_model("fraud")
    assert model.tags["mlx.retired"] == "true" and model.tags["mlx.retired_at"]
    assert "mlx.alias.production" not in model.tags
    versions = {int(mv.version): mv for mv in mlflow.search_model_versions("name = 'fraud'")}
    assert sorted(versions) == [1, 2]
    assert versions[1].tags["mlx.code.commit"] == "3f2a9c1"
    assert mlflow.get_run(v1.outputs["run_id"]).info.lifecycle_stage == "active"
    assert provider.get_alias("models", "fraud", "production") is None
    assert int(mlflow.get_model_version_by_alias("fraud", "by-hand").version) == 1
    assert provider.read(v1) is None  # gone, as far as mlx is concerned
    assert provider.has_version("models", "fraud", v1.outputs)

    again = applied(provider, model_spec(tmp_path, "v2"))  # created again: adopted
    assert again.outputs["version"] == 2
    assert "mlx.retired" not in mlflow.get_registered_model("fraud").tags
    assert len(mlflow.search_model_versions("name = 'fraud'")) == 2


def test_delete_retires_the_prompt_and_keeps_its_versions(tmp_path: Path, mlflow_db: str) -> None:
    provider = make(tmp_path, mlflow_db)
    p1 = applied(provider, prompt_spec(tmp_path, "v1"))
    provider.update(p1, prompt_spec(tmp_path, "v2"), Change(behaviour=True))
    provider.set_alias("prompts", "summary", "production", p1.outputs)
    provider.delete(p1)
    provider.delete(p1)  # idempotent: retired already
    mlflow = client(provider)
    assert mlflow.get_prompt("summary").tags["mlx.retired"] == "true"
    assert sorted(int(v.version) for v in mlflow.search_prompt_versions("summary")) == [1, 2]
    assert provider.get_alias("prompts", "summary", "production") is None
    assert provider.read(p1) is None
    back = applied(provider, prompt_spec(tmp_path, "v1"))
    assert back.outputs["version"] == 1
    assert "mlx.retired" not in mlflow.get_prompt("summary").tags


def test_restore_registers_a_deleted_version_again_from_its_run(
    tmp_path: Path, mlflow_db: str
) -> None:
    """A rollback to a version deleted by hand: its run still holds the bytes."""
    provider = make(tmp_path, mlflow_db)
    v1 = applied(provider, model_spec(tmp_path, "v1"))
    d2 = model_spec(tmp_path, "v2")
    d2 = replace(d2, fingerprint=provider.fingerprint(d2))
    v2 = Prior(
        v1.address, "models", "fraud", d2.spec, provider.update(v1, d2, Change(True)).outputs
    )
    client(provider).delete_model_version("fraud", "1")
    back = replace(d2, restore=dict(v1.outputs), fingerprint=v1.outputs["fingerprint"])
    out = provider.update(v2, back, Change(behaviour=True)).outputs
    assert out["version"] == 3 and out["fingerprint"] == v1.outputs["fingerprint"]
    assert out["run_id"] == v1.outputs["run_id"]
    got = provider.materialize("models", "fraud", out, tmp_path / "restored.bin")
    assert got.read_bytes() == b"weights-v1"
    tags = client(provider).get_model_version("fraud", "3").tags
    assert tags["mlx.fingerprint"] == v1.outputs["fingerprint"]


def test_restore_of_a_version_gone_for_good_is_a_clear_error(
    tmp_path: Path, mlflow_db: str
) -> None:
    from contract import ProviderError

    provider = make(tmp_path, mlflow_db)
    v1 = applied(provider, prompt_spec(tmp_path, "v1"))
    client(provider).delete_prompt_version("summary", "1")
    back = replace(prompt_spec(tmp_path, "v2"), restore=dict(v1.outputs))
    with pytest.raises(ProviderError, match=r"cannot restore version 1 .*no longer in MLflow"):
        provider.update(v1, back, Change(behaviour=True))


@pytest.mark.slow
def test_s3_artifact_is_registered_as_is(
    tmp_path: Path,
    mlflow_db: str,
    moto_endpoint: str,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`artifact: s3://…`: fingerprinted by ETag (no download), registered with that source."""
    import hashlib
    import uuid

    from providers.aws.session import make_client

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)  # boto3's own variable
    s3 = make_client("s3", region="us-east-1", endpoint_url=moto_endpoint)
    bucket = f"mlx-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="models/fraud.bin", Body=b"weights-on-s3")
    provider = make(tmp_path, mlflow_db)
    desired = Desired(
        "models.fraud", "models", "fraud", {"artifact": f"s3://{bucket}/models/fraud.bin"}
    )
    assert provider.check(desired) == []
    assert provider.fingerprint(desired) == "etag:" + hashlib.md5(b"weights-on-s3").hexdigest()
    prior = applied(provider, desired)
    assert prior.outputs["run_id"] is None
    mv = client(provider).get_model_version("fraud", "1")
    assert mv.source == f"s3://{bucket}/models/fraud.bin"
    got = provider.materialize("models", "fraud", prior.outputs, tmp_path / "dl" / "m.bin")
    assert got.read_bytes() == b"weights-on-s3"
    missing = Desired("models.x", "models", "x", {"artifact": f"s3://{bucket}/nope.bin"})
    assert provider.check(missing)[0].message == f"no object at s3://{bucket}/nope.bin"


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    from contract import ProviderError
    from tests.providers.conftest import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    provider = make(tmp_path, uri)
    prior = Prior("models.fraud", "models", "fraud", {}, {"version": 1})
    with pytest.raises(ProviderError) as err:
        provider.read(prior)
    assert str(err.value) == (
        f"models.fraud: cannot read (MLflow at {uri}): cannot reach the server (is it running?)"
    )
