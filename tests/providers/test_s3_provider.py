"""The S3 provider against moto's server on 127.0.0.1 (a real HTTP endpoint, not a mock).

Covers both modes: local files uploaded to a bucket (mlx owns those objects)
and ``s3://`` objects somebody else writes (mlx only reads them), in versioned
and unversioned buckets, pinned versions, and objects changed behind mlx's back.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from providers.aws.s3 import S3Provider
from providers.aws.session import make_client
from providers.contract import Change, Context, Desired, Prior, Provider, ProviderError
from providers.testing import ProviderConformance

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("aws_env")]


@functools.cache
def s3(endpoint: str) -> Any:
    """'Somebody else' writing to the bucket (one client per server: they take ~0.2 s)."""
    return make_client("s3", region="us-east-1", endpoint_url=endpoint)


def new_bucket(endpoint: str, versioned: bool) -> str:
    name = f"mlx-{uuid.uuid4().hex[:12]}"
    client = s3(endpoint)
    client.create_bucket(Bucket=name)
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def put(endpoint: str, bucket: str, key: str, body: bytes) -> str | None:
    """Write ``body`` unless the key already holds it (so a no-op stays a no-op)."""
    client = s3(endpoint)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        if head["ETag"].strip('"') == hashlib.md5(body).hexdigest():
            return head.get("VersionId")
    except Exception:
        pass
    return client.put_object(Bucket=bucket, Key=key, Body=body).get("VersionId")


def make(tmp_path: Path, endpoint: str, **config: Any) -> S3Provider:
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx")
    return S3Provider(
        {"type": "s3", "endpoint_url": endpoint, "region": "us-east-1", **config}, ctx
    )


def prior_of(provider: Provider, desired: Desired) -> Prior:
    desired = replace(desired, fingerprint=provider.fingerprint(desired))
    assert provider.check(desired) == []
    out = provider.create(desired).outputs
    return Prior(
        desired.address, desired.section, desired.name, dict(desired.spec), out, desired.fingerprint
    )


# -- conformance: uploads (mlx owns the objects) ----------------------------------------------
class TestS3UploadedModels(ProviderConformance):
    section = "models"

    @pytest.fixture(autouse=True)
    def _bucket(self, aws_env: None, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint
        self.bucket = new_bucket(moto_endpoint, versioned=True)

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.endpoint, bucket=self.bucket, prefix="models-store/")

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "model.bin").write_bytes(b"weights-v2" if variant == "v2" else b"weights-v1")
        spec = {"artifact": "model.bin", "owner": "team-ml"}
        if variant == "meta":
            spec["description"] = "now described"
        return Desired("models.fraud", "models", "fraud", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        key = prior.outputs["uri"].split("/", 3)[3].split("?")[0]
        s3(self.endpoint).put_object(Bucket=self.bucket, Key=key, Body=b"replaced by hand")


class TestS3UploadedDatasetsUnversioned(TestS3UploadedModels):
    section = "datasets"
    version_key = "revision"

    @pytest.fixture(autouse=True)
    def _bucket(self, aws_env: None, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint
        self.bucket = new_bucket(moto_endpoint, versioned=False)

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "train.csv").write_text("a,b\n1,3\n" if variant == "v2" else "a,b\n1,2\n")
        spec = {"uri": "train.csv", "owner": "team-data", "format": "csv"}
        if variant == "meta":
            spec["description"] = "now described"
        return Desired("datasets.train", "datasets", "train", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        key = prior.outputs["uri_resolved"].split("/", 3)[3].split("?")[0]
        s3(self.endpoint).delete_object(Bucket=self.bucket, Key=key)


# -- conformance: referenced objects (the user's data) --------------------------------------
class TestS3ReferencedDatasets(ProviderConformance):
    section = "datasets"
    version_key = "snapshot"

    @pytest.fixture(autouse=True)
    def _bucket(self, aws_env: None, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint
        self.bucket = new_bucket(moto_endpoint, versioned=True)

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.endpoint)

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        body = b"a,b\n1,3\n" if variant == "v2" else b"a,b\n1,2\n"
        put(self.endpoint, self.bucket, "raw/train.csv", body)
        spec = {"uri": f"s3://{self.bucket}/raw/train.csv", "owner": "team-data"}
        if variant == "meta":
            spec["labels"] = {"pii": "false"}
        return Desired("datasets.train", "datasets", "train", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        s3(self.endpoint).put_object(Bucket=self.bucket, Key="raw/train.csv", Body=b"a,b\n9,9\n")

    def test_delete_then_read_is_none(self, provider: Provider, tmp_path: Path) -> None:
        """Overrides the kit: a referenced object is the user's data, so delete leaves it.

        mlx only forgets it (the engine drops the record); the object must survive.
        """
        prior = self._create(provider, tmp_path)
        provider.delete(prior)
        observed = provider.read(prior)
        assert observed is not None
        assert observed.differences(prior.outputs, prior.fingerprint) == []


# -- fingerprints without downloading -------------------------------------------------------
def test_fingerprint_is_the_etag_and_snapshot_the_version(
    tmp_path: Path, moto_endpoint: str
) -> None:
    bucket = new_bucket(moto_endpoint, versioned=True)
    vid = put(moto_endpoint, bucket, "d.csv", b"x,y\n1,2\n")
    provider = make(tmp_path, moto_endpoint)
    desired = Desired("datasets.d", "datasets", "d", {"uri": f"s3://{bucket}/d.csv", "owner": "o"})
    assert provider.fingerprint(desired) == "etag:" + hashlib.md5(b"x,y\n1,2\n").hexdigest()
    out = prior_of(provider, desired).outputs
    assert out["snapshot"] == vid and out["version_id"] == vid
    assert out["uri_resolved"] == f"s3://{bucket}/d.csv?versionId={vid}"


def test_object_changed_behind_mlx_back_unversioned(tmp_path: Path, moto_endpoint: str) -> None:
    bucket = new_bucket(moto_endpoint, versioned=False)
    put(moto_endpoint, bucket, "d.csv", b"x\n1\n")
    provider = make(tmp_path, moto_endpoint)
    desired = Desired("datasets.d", "datasets", "d", {"uri": f"s3://{bucket}/d.csv", "owner": "o"})
    prior = prior_of(provider, desired)
    assert prior.outputs["version_id"] is None  # unversioned: the ETag is the snapshot
    s3(moto_endpoint).put_object(Bucket=bucket, Key="d.csv", Body=b"x\n2\n")
    drift = provider.read(prior).differences(prior.outputs, prior.fingerprint)
    assert any(line.startswith("fingerprint:") for line in drift)
    assert any(line.startswith("etag:") for line in drift)
    # the plan sees it too: the fingerprint moved under an unchanged spec
    assert provider.fingerprint(desired) != prior.fingerprint
    assert not provider.has_version("datasets", "d", prior.outputs)  # overwritten for good


def test_pinned_version_ignores_newer_writes(tmp_path: Path, moto_endpoint: str) -> None:
    bucket = new_bucket(moto_endpoint, versioned=True)
    old = put(moto_endpoint, bucket, "d.csv", b"old\n")
    put(moto_endpoint, bucket, "d.csv", b"new\n")
    provider = make(tmp_path, moto_endpoint)
    spec = {"uri": f"s3://{bucket}/d.csv", "version": old, "owner": "o"}
    desired = Desired("datasets.d", "datasets", "d", spec)
    assert provider.fingerprint(desired) == "etag:" + hashlib.md5(b"old\n").hexdigest()
    prior = prior_of(provider, desired)
    assert prior.outputs["snapshot"] == old
    put(moto_endpoint, bucket, "d.csv", b"newer\n")
    assert provider.read(prior).differences(prior.outputs, prior.fingerprint) == []
    got = provider.materialize("datasets", "d", prior.outputs, tmp_path / "d.csv")
    assert got.read_bytes() == b"old\n"


def test_old_version_of_versioned_object_stays_restorable(
    tmp_path: Path, moto_endpoint: str
) -> None:
    bucket = new_bucket(moto_endpoint, versioned=True)
    put(moto_endpoint, bucket, "m.bin", b"v1")
    provider = make(tmp_path, moto_endpoint)
    desired = Desired("models.m", "models", "m", {"artifact": f"s3://{bucket}/m.bin", "owner": "o"})
    v1 = prior_of(provider, desired)
    put(moto_endpoint, bucket, "m.bin", b"v2")
    v2 = prior_of(provider, desired)
    assert v2.outputs["version"] != v1.outputs["version"]
    assert provider.has_version("models", "m", v1.outputs)
    assert provider.materialize("models", "m", v1.outputs, tmp_path / "v1").read_bytes() == b"v1"


def test_upload_is_content_addressed(tmp_path: Path, moto_endpoint: str) -> None:
    bucket = new_bucket(moto_endpoint, versioned=True)
    provider = make(tmp_path, moto_endpoint, bucket=bucket)
    (tmp_path / "m.bin").write_bytes(b"weights")
    desired = Desired("models.m", "models", "m", {"artifact": "m.bin", "owner": "o"})
    first = prior_of(provider, desired)
    sha = hashlib.sha256(b"weights").hexdigest()
    assert first.outputs["uri"].startswith(f"s3://{bucket}/mlx/models/m/{sha}.bin?versionId=")
    assert first.outputs["fingerprint"] == f"sha256:{sha}"
    again = provider.update(first, replace(desired, fingerprint=first.fingerprint), Change())
    assert again.outputs == first.outputs  # same bytes: no second upload, same version id
    listed = s3(moto_endpoint).list_object_versions(Bucket=bucket)["Versions"]
    assert len(listed) == 1


def test_check_problems(tmp_path: Path, moto_endpoint: str) -> None:
    bucket = new_bucket(moto_endpoint, versioned=True)
    provider = make(tmp_path, moto_endpoint)

    def problems(spec: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
        desired = Desired("datasets.d", "datasets", "d", {"owner": "o", **spec})
        return [(p.path, p.message) for p in provider.check(desired)]

    (tmp_path / "local.csv").write_text("a\n")
    assert problems({"uri": f"s3://{bucket}/missing.csv"}) == [
        (("uri",), f"no object at s3://{bucket}/missing.csv")
    ]
    put(moto_endpoint, bucket, "d.csv", b"a\n")
    [(path, message)] = problems({"uri": f"s3://{bucket}/d.csv", "version": "nope"})
    assert path == ("version",) and "does not exist" in message
    assert problems({"uri": f"s3://{bucket}/dir/"})[0][1].endswith("names a prefix, not an object")
    assert "set `bucket:`" in problems({"uri": "local.csv"})[0][1]
    assert "not 'gs://b/k'" in problems({"uri": "gs://b/k"})[0][1]


def test_aliases_live_in_the_bucket(tmp_path: Path, moto_endpoint: str) -> None:
    bucket = new_bucket(moto_endpoint, versioned=True)
    provider = make(tmp_path, moto_endpoint, bucket=bucket)
    (tmp_path / "m.bin").write_bytes(b"w1")
    prior = prior_of(
        provider, Desired("models.m", "models", "m", {"artifact": "m.bin", "owner": "o"})
    )
    assert provider.get_alias("models", "m", "production") is None
    provider.set_alias("models", "m", "production", prior.outputs)
    assert provider.get_alias("models", "m", "production")["version"] == prior.outputs["version"]
    provider.set_alias("models", "m", "production", {"version": None})
    assert provider.get_alias("models", "m", "production") is None


def test_unreachable_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    from tests.providers.conftest import free_port

    provider = make(tmp_path, f"http://127.0.0.1:{free_port()}")
    desired = Desired("datasets.d", "datasets", "d", {"uri": "s3://b/k.csv", "owner": "o"})
    [problem] = provider.check(desired)
    assert "cannot read s3://b/k.csv" in problem.message
    with pytest.raises(ProviderError, match=r"cannot read s3://b/k\.csv"):
        provider.create(desired)
