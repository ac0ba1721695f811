"""The S3 provider against moto's server on 127.0.0.1 (a real HTTP endpoint, not a mock).

Covers both modes: local files uploaded to a bucket (mlx owns those objects)
and ``s3://`` objects somebody else writes (mlx only reads them), in versioned
and unversioned buckets, pinned versions, and objects changed behind mlx's back.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contract import Change, Context, Desired, Prior, Provider, ProviderError
from providers.aws.s3 import S3Provider
from providers.aws.session import make_client
from providers.testing import FlakyProxy, RegistryConformance

BODIES = {"v1": b"weights-v1", "v2": b"weights-v2", "v3": b"weights-v3"}
CSV = {"v1": b"a,b\n1,2\n", "v2": b"a,b\n1,3\n", "v3": b"a,b\n1,4\n"}

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


def make(tmp_path: Path, endpoint: str, peers: Any = None, **config: Any) -> S3Provider:
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=peers)
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


def versions_under(endpoint: str, bucket: str, prefix: str) -> list[dict[str, Any]]:
    listed = s3(endpoint).list_object_versions(Bucket=bucket, Prefix=prefix)
    return sorted(listed.get("Versions", []), key=lambda v: v["LastModified"])


# -- conformance ----------------------------------------------------------------------------
class S3Suite(RegistryConformance):
    """Through a ``FlakyProxy`` in front of moto: ``broken`` is the endpoint going away."""

    #: delete forgets: uploads are versions mlx keeps, referenced objects the user's data
    delete_keeps_object = True
    versioned = True

    @pytest.fixture(autouse=True)
    def _bucket(
        self, aws_env: None, moto_proxy: FlakyProxy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.proxy = moto_proxy
        self.endpoint = moto_proxy.url
        self.bucket = new_bucket(moto_proxy.url, versioned=self.versioned)
        # one attempt per request: every cut point of the sweep is one request
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    @contextlib.contextmanager
    def broken(self, provider: Provider, after: int) -> Iterator[None]:
        self.proxy.go_down(after)
        try:
            yield
        finally:
            self.proxy.come_up()


class TestS3UploadedModels(S3Suite):
    section = "models"

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.endpoint, self.peers, bucket=self.bucket, prefix="models-store/")

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "model.bin").write_bytes(BODIES.get(variant, BODIES["v1"]))
        spec = {"artifact": "missing.bin" if variant == "bad" else "model.bin", "owner": "team-ml"}
        if variant == "meta":
            spec["description"] = "now described"
        return Desired("models.fraud", "models", "fraud", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        key = prior.outputs["uri"].split("/", 3)[3].split("?")[0]
        s3(self.endpoint).put_object(Bucket=self.bucket, Key=key, Body=b"replaced by hand")

    def stored_fingerprints(self, provider: Provider, desired: Desired) -> list[str]:
        """One entry per object version mlx uploaded (a second upload would show twice)."""
        prefix = f"{provider.settings.prefix}{desired.section}/{desired.name}/"  # type: ignore[attr-defined]
        found = versions_under(self.endpoint, self.bucket, prefix)
        return ["sha256:" + Path(v["Key"]).stem for v in found]


class TestS3UploadedDatasetsUnversioned(TestS3UploadedModels):
    section = "datasets"
    version_key = "revision"
    versioned = False

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        (tmp_path / "train.csv").write_bytes(CSV.get(variant, CSV["v1"]))
        spec = {"uri": "missing.csv" if variant == "bad" else "train.csv", "owner": "team-data"}
        spec["format"] = "csv"
        if variant == "meta":
            spec["description"] = "now described"
        return Desired("datasets.train", "datasets", "train", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        key = prior.outputs["uri_resolved"].split("/", 3)[3].split("?")[0]
        s3(self.endpoint).delete_object(Bucket=self.bucket, Key=key)


class TestS3ReferencedDatasets(S3Suite):
    """``s3://`` objects somebody else writes; mlx only reads them.

    Each variant's bytes are written once, by 'somebody else'. Every write of a
    versioned key is a new S3 version, so asking for a variant again pins the version
    it was written as (``version:``): that is how a spec goes back to old data.
    """

    section = "datasets"
    version_key = "snapshot"

    @pytest.fixture(autouse=True)
    def _written(self) -> None:
        self.written: dict[bytes, str | None] = {}

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.endpoint, self.peers, bucket=self.bucket)  # for aliases

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        body = CSV.get(variant, CSV["v1"])
        spec: dict[str, Any] = {"uri": f"s3://{self.bucket}/raw/train.csv", "owner": "team-data"}
        if body in self.written:
            spec["version"] = self.written[body]
        else:
            self.written[body] = put(self.endpoint, self.bucket, "raw/train.csv", body)
        if variant == "meta":
            spec["labels"] = {"pii": "false"}
        if variant == "bad":
            spec = {"uri": f"s3://{self.bucket}/raw/missing.csv", "owner": "team-data"}
        return Desired("datasets.train", "datasets", "train", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        s3(self.endpoint).put_object(Bucket=self.bucket, Key="raw/train.csv", Body=b"a,b\n9,9\n")

    def stored_fingerprints(self, provider: Provider, desired: Desired) -> list[str]:
        found = versions_under(self.endpoint, self.bucket, "raw/train.csv")
        return ["etag:" + v["ETag"].strip('"') for v in found]


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
    assert "cannot reach the endpoint" in problem.message and "\n" not in problem.message


# -- delete never loses a version ------------------------------------------------------------
def test_delete_keeps_every_uploaded_version(tmp_path: Path, moto_endpoint: str) -> None:
    bucket = new_bucket(moto_endpoint, versioned=True)
    provider = make(tmp_path, moto_endpoint, bucket=bucket)
    (tmp_path / "m.bin").write_bytes(b"w1")
    desired = Desired("models.m", "models", "m", {"artifact": "m.bin", "owner": "o"})
    v1 = prior_of(provider, desired)
    (tmp_path / "m.bin").write_bytes(b"w2")
    v2 = prior_of(provider, desired)
    provider.set_alias("models", "m", "production", v2.outputs)
    provider.delete(v2)
    keys = [v["Key"] for v in versions_under(moto_endpoint, bucket, "mlx/models/m/")]
    assert len(keys) == 2  # both uploads, no delete marker
    listed = s3(moto_endpoint).list_object_versions(Bucket=bucket, Prefix="mlx/models/m/")
    assert not listed.get("DeleteMarkers")
    assert provider.has_version("models", "m", v1.outputs)
    assert provider.materialize("models", "m", v1.outputs, tmp_path / "v1").read_bytes() == b"w1"
    assert provider.get_alias("models", "m", "production") is None


# -- transient errors are retried (botocore's standard mode), a dead endpoint fails clearly ----
def _referenced(proxy: FlakyProxy, tmp_path: Path) -> tuple[S3Provider, Prior, int]:
    bucket = new_bucket(proxy.url, versioned=True)
    put(proxy.url, bucket, "d.csv", b"x\n1\n")
    provider = make(tmp_path, proxy.url)
    desired = Desired("datasets.d", "datasets", "d", {"uri": f"s3://{bucket}/d.csv", "owner": "o"})
    prior = prior_of(provider, desired)
    before = proxy.received
    assert provider.read(prior) is not None
    return provider, prior, proxy.received - before


@pytest.mark.parametrize("fault", ["503", "500", "429", "drop"])
def test_transient_errors_are_retried(tmp_path: Path, moto_proxy: FlakyProxy, fault: str) -> None:
    provider, prior, requests = _referenced(moto_proxy, tmp_path)
    if fault == "drop":
        moto_proxy.drop(2)
    else:
        moto_proxy.fail(2, status=int(fault))
    before = moto_proxy.received
    assert provider.read(prior) is not None
    assert moto_proxy.received - before == requests + 2


def test_other_client_errors_are_not_retried(tmp_path: Path, moto_proxy: FlakyProxy) -> None:
    bucket = new_bucket(moto_proxy.url, versioned=True)
    provider = make(tmp_path, moto_proxy.url, bucket=bucket)
    moto_proxy.fail(1, status=403)
    before = moto_proxy.received
    with pytest.raises(ProviderError) as err:
        provider.get_alias("models", "m", "production")
    assert moto_proxy.received - before == 1
    assert "\n" not in str(err.value) and "403" in str(err.value)


@pytest.mark.parametrize(
    ("down", "reason"),
    [
        ("drop", "cannot reach the endpoint {url}: the connection was dropped"),
        ("503", "cannot reach the endpoint: it answered HTTP 503 (3 attempts)"),
    ],
)
def test_a_dead_endpoint_fails_within_bounded_attempts(
    tmp_path: Path, moto_proxy: FlakyProxy, down: str, reason: str
) -> None:
    provider, prior, _requests = _referenced(moto_proxy, tmp_path)
    if down == "drop":
        moto_proxy.go_down()
    else:
        moto_proxy.fail(1000, status=503)
    before = moto_proxy.received
    with pytest.raises(ProviderError) as err:
        provider.read(prior)
    assert moto_proxy.received - before == 3  # one request, retried twice; no more
    where = prior.outputs["uri_resolved"].split("?")[0]
    assert str(err.value) == f"cannot read {where}: {reason.format(url=moto_proxy.url)}"


def test_retries_are_overridable(
    tmp_path: Path, moto_proxy: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    provider, prior, _requests = _referenced(moto_proxy, tmp_path)
    moto_proxy.fail(1, status=503)
    before = moto_proxy.received
    with pytest.raises(ProviderError, match=r"HTTP 503 \(1 attempts\)"):
        provider.read(prior)
    assert moto_proxy.received - before == 1


def test_a_local_file_outside_the_spec_dir_is_never_uploaded(
    tmp_path: Path, moto_endpoint: str
) -> None:
    bucket = new_bucket(moto_endpoint, versioned=True)
    spec = tmp_path / "spec"
    spec.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("private\n")
    provider = make(spec, moto_endpoint, bucket=bucket)
    desired = Desired("models.m", "models", "m", {"owner": "o", "artifact": str(secret)})
    [problem] = provider.check(desired)
    assert problem.path == ("artifact",) and "outside" in problem.message
    escaping = Desired("models.m", "models", "m", {"owner": "o", "artifact": "../secret.txt"})
    assert "outside" in provider.check(escaping)[0].message
