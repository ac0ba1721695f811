"""The SageMaker serving provider against moto's server on 127.0.0.1 (real HTTP, real boto3).

moto 5.2.5 has no ``UpdateEndpoint``; ``tests/providers/moto_sagemaker.py`` runs
moto's own server with it added (as AWS documents it). Everything else —
models, endpoint configs, endpoints, weights, tags, S3, CloudWatch — is moto.
The provider runs the shared ``ServingConformance`` suite plus its own cases.
"""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contract import (
    Change,
    Context,
    Desired,
    Prior,
    ProviderError,
    Role,
    Traffic,
    Variant,
)
from providers.aws import sagemaker_archive as archive
from providers.aws import sagemaker_names as names
from providers.aws.sagemaker import SageMakerProvider
from providers.aws.sagemaker_metrics import summarize_latency, window
from providers.aws.session import make_client
from providers.testing.serving import (
    ENDPOINT,
    SUBJECT,
    FakePeers,
    LatencyAccuracy,
    ServingConformance,
    tree_digest,
)
from tests.providers.conftest import SAGEMAKER_IMAGE as IMAGE
from tests.providers.conftest import SAGEMAKER_ROLE as ROLE
from tests.providers.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("aws_env")]


@functools.cache
def aws(service: str, endpoint: str) -> Any:
    """'Somebody else' using the same AWS account (an operator, the console)."""
    return make_client(service, region="us-east-1", endpoint_url=endpoint)


def new_bucket(endpoint: str) -> str:
    name = f"mlx-{uuid.uuid4().hex[:12]}"
    aws("s3", endpoint).create_bucket(Bucket=name)
    return name


def make(
    tmp_path: Path, endpoint: str, peers: FakePeers | None = None, **config: Any
) -> SageMakerProvider:
    logs: list[str] = []
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=peers, log=logs.append)
    settings = {
        "type": "sagemaker",
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "role_arn": ROLE,
        "image": IMAGE,
        "bucket": config.pop("bucket", None) or new_bucket(endpoint),
        # every test its own names: moto's server (and its CloudWatch) is shared
        "name_prefix": f"t{uuid.uuid4().hex[:6]}-",
        **config,
    }
    provider = SageMakerProvider(settings, ctx)
    provider.logs = logs  # type: ignore[attr-defined]
    return provider


def put_traffic(
    endpoint_url: str,
    name: str,
    variant: str,
    requests: int,
    errors: int,
    latencies_ms: Sequence[float],
    refused: int = 0,
) -> None:
    """What SageMaker publishes for a variant: invocations, 5XX and 4XX errors, latency
    in µs."""
    dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": variant}]
    now = datetime.now(UTC)
    data: list[dict[str, Any]] = [
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now, "Value": requests},
        {
            "MetricName": "Invocation5XXErrors",
            "Dimensions": dims,
            "Timestamp": now,
            "Value": errors,
        },
        {
            "MetricName": "Invocation4XXErrors",
            "Dimensions": dims,
            "Timestamp": now,
            "Value": refused,
        },
    ]
    micros = [ms * 1000 for ms in latencies_ms]
    for start in range(0, len(micros), 150):  # at most 150 values per datum
        data.append(
            {
                "MetricName": "ModelLatency",
                "Dimensions": dims,
                "Timestamp": now,
                "Values": micros[start : start + 150],
                "Unit": "Microseconds",
            }
        )
    aws("cloudwatch", endpoint_url).put_metric_data(Namespace="AWS/SageMaker", MetricData=data)


# -- the shared serving suite --------------------------------------------------------------
class TestSageMakerServing(ServingConformance):
    #: SageMaker shadow variants are not mapped (moto ignores ShadowProductionVariants).
    supports_mirror = False
    #: moto's CloudWatch computes no percentiles: the provider falls back to mean/maximum.
    latency_accuracy = LatencyAccuracy.BOUNDS

    @pytest.fixture(autouse=True)
    def _server(self, sagemaker_moto: str) -> None:
        self.endpoint = sagemaker_moto

    def make_provider(self, tmp_path: Path, peers: FakePeers) -> SageMakerProvider:
        return make(tmp_path, self.endpoint, peers)

    def record_traffic(
        self,
        provider: Any,
        endpoint: Prior,
        role: Role,
        variant: str,
        requests: int,
        errors: int,
        latencies_ms: Sequence[float],
    ) -> None:
        name = endpoint.outputs["endpoint_name"]
        put_traffic(self.endpoint, name, variant, requests, errors, latencies_ms)

    def edit_weights(self, provider: Any, endpoint: Prior, weights: Mapping[str, float]) -> None:
        aws("sagemaker", self.endpoint).update_endpoint_weights_and_capacities(
            EndpointName=endpoint.outputs["endpoint_name"],
            DesiredWeightsAndCapacities=[
                {"VariantName": k, "DesiredWeight": float(v), "DesiredInstanceCount": 1}
                for k, v in weights.items()
            ],
        )


# -- SageMaker's own cases -----------------------------------------------------------------
class Setup:
    """A provider, fake peers holding versions of ``models.fraud``, and helpers."""

    def __init__(self, tmp_path: Path, endpoint: str, **config: Any):
        self.tmp_path, self.endpoint = tmp_path, endpoint
        self.peers = FakePeers()
        self.peers.specs[SUBJECT] = {"artifact": "models/fraud.joblib", "owner": "team-ml"}
        self.provider = make(tmp_path, endpoint, self.peers, **config)

    def version(self, n: int, body: bytes | None = None) -> dict[str, Any]:
        path = self.tmp_path / "artifacts" / f"v{n}" / "fraud.joblib"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body if body is not None else f"weights {n}".encode())
        return self.peers.register(SUBJECT, n, path)

    def desired(self, outputs: Mapping[str, Any], name: str = "fraud", **spec: Any) -> Desired:
        body = {"serves": SUBJECT, "owner": "team-ml", **spec}
        return Desired(f"endpoints.{name}", "endpoints", name, body, inputs={SUBJECT: outputs})

    def create(self, desired: Desired) -> Prior:
        assert self.provider.check(desired) == []
        out = self.provider.create(desired).outputs
        return Prior(desired.address, "endpoints", desired.name, dict(desired.spec), out)

    @property
    def sagemaker(self) -> Any:
        return aws("sagemaker", self.endpoint)


@pytest.fixture
def setup(tmp_path: Path, sagemaker_moto: str) -> Setup:
    return Setup(tmp_path, sagemaker_moto)


def test_outputs_name_the_endpoint_its_variant_and_url(setup: Setup) -> None:
    v1 = setup.version(1)
    out = setup.create(setup.desired(v1)).outputs
    name = out["endpoint_name"]
    assert name == f"{setup.provider.settings.name_prefix}fraud"
    assert out["url"] == f"{setup.endpoint}/endpoints/{name}/invocations"
    assert out["endpoint_arn"] == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
    model = names.model_name(name, 1, v1["fingerprint"])
    assert out["variants"] == {
        "v1": {"version": 1, "fingerprint": v1["fingerprint"], "model_name": model}
    }
    assert out["traffic"] == Traffic("v1").as_dict()
    assert (out["stable_version"], out["fingerprint"], out["subject"]) == (
        1,
        v1["fingerprint"],
        SUBJECT,
    )
    tags = {
        t["Key"]: t["Value"]
        for t in setup.sagemaker.list_tags(ResourceArn=out["endpoint_arn"])["Tags"]
    }
    assert tags["mlx:address"] == ENDPOINT and tags["mlx:owner"] == "team-ml"


def test_runtime_url_on_aws(tmp_path: Path) -> None:
    provider = SageMakerProvider(
        {"role_arn": ROLE, "image": IMAGE, "bucket": "b-x", "region": "eu-west-1"},
        Context(root=tmp_path, data_dir=tmp_path),
    )
    assert provider._url("mlx-fraud") == (
        "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/mlx-fraud/invocations"
    )


def test_artifact_is_a_deterministic_tar_gz_on_s3(setup: Setup) -> None:
    v1 = setup.version(1, b"the fraud model")
    out = setup.create(setup.desired(v1)).outputs
    model = setup.sagemaker.describe_model(ModelName=out["variants"]["v1"]["model_name"])
    bucket, prefix = setup.provider.settings.bucket, setup.provider.settings.prefix
    token = v1["fingerprint"].replace(":", "-")
    key = f"{prefix}{out['endpoint_name']}/{token}/model.tar.gz"
    assert model["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/{key}"}
    assert model["ExecutionRoleArn"] == ROLE
    body = aws("s3", setup.endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    # the declared file's name, the version's bytes, nothing else
    assert archive.members(body) == {"fraud.joblib": b"the fraud model"}
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        [info] = tar.getmembers()
        assert (info.mtime, info.uid, info.gid, info.uname, info.mode) == (0, 0, 0, "", 0o644)
    # the same content packs to the same bytes, whenever and wherever it is packed
    again = setup.tmp_path / "again.tar.gz"
    source = setup.tmp_path / "elsewhere" / "fraud.joblib"
    source.parent.mkdir()
    source.write_bytes(b"the fraud model")
    assert archive.build(source, again) == hashlib.sha256(body).hexdigest()


def test_directory_artifact_sits_at_the_archive_root(tmp_path: Path) -> None:
    model_dir = tmp_path / "mlflow-model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "model.pkl").write_bytes(b"\x80\x04pickle")
    (model_dir / "code" / "serve.py").write_text("print('hi')\n")
    (model_dir / "code" / "serve.py").chmod(0o755)
    first = archive.build(model_dir, tmp_path / "a.tar.gz")
    (model_dir / "MLmodel").touch()  # a newer mtime changes nothing
    assert archive.build(model_dir, tmp_path / "b.tar.gz") == first
    data = (tmp_path / "a.tar.gz").read_bytes()
    assert archive.members(data) == {
        "MLmodel": b"flavors: {}\n",
        "code": None,
        "code/serve.py": b"print('hi')\n",
        "model.pkl": b"\x80\x04pickle",
    }
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getmember("code/serve.py").mode == 0o755


def test_names_fit_sagemaker_limits() -> None:
    long = "fraud_" + "x" * 57  # the longest mlx name (63 characters)
    endpoint = names.endpoint_name("team-risk-prod-", long)
    other = names.endpoint_name("team-risk-prod-", long[:-1] + "y")
    assert endpoint != other
    variants = [
        {
            "VariantName": "v3",
            "ModelName": "m",
            "InitialVariantWeight": 1.0,
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
        }
    ]
    s3_version = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY.null"
    made = [
        endpoint,
        names.config_name(endpoint, variants),
        names.model_name(endpoint, 3, "sha256:" + "ab" * 32),
        names.model_name(endpoint, s3_version, "etag:9b2cf535f27731c974343645a3985328"),
        names.variant_name(s3_version, {}, "m"),
    ]
    for name in made:
        assert len(name) <= 63 and names.valid(name), name
    assert names.config_pattern(endpoint).match(made[1])
    assert not names.config_pattern(other).match(made[1])  # delete never takes another's
    assert names.endpoint_name("mlx-", "fraud_v2") == "mlx-fraud-v2"
    assert names.model_name("mlx-fraud", 3, "sha256:1a2b3c4d5e") == "mlx-fraud-v3-1a2b3c4d"
    # v3 taken by another model on the endpoint: the new variant gets a distinct name
    assert names.variant_name(3, {"v3": "other"}, "mine") != "v3"


def test_longest_names_are_served(tmp_path: Path, sagemaker_moto: str) -> None:
    setup = Setup(tmp_path, sagemaker_moto, name_prefix="team-risk-prod-eu1-")
    long = "fraud_" + "x" * 57
    prior = setup.create(setup.desired(setup.version(1), name=long))
    name = prior.outputs["endpoint_name"]
    live = setup.sagemaker.describe_endpoint(EndpointName=name)
    config = setup.sagemaker.describe_endpoint_config(EndpointConfigName=live["EndpointConfigName"])
    made = [name, live["EndpointConfigName"], config["ProductionVariants"][0]["ModelName"]]
    assert all(len(n) <= 63 and names.valid(n) for n in made), made


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    ctx = Context(root=tmp_path, data_dir=tmp_path)
    with pytest.raises(ProviderError) as missing:
        SageMakerProvider({"type": "sagemaker"}, ctx)
    message = str(missing.value)
    assert "\n" not in message and message.startswith("invalid sagemaker provider config:")
    assert all(field in message for field in ("role_arn", "image", "bucket"))
    bad = {"role_arn": "mlx-role", "image": IMAGE, "bucket": "b-x", "name_prefix": "_x"}
    with pytest.raises(ProviderError) as wrong:
        SageMakerProvider(bad, ctx)
    assert "\n" not in str(wrong.value)
    assert "role_arn" in str(wrong.value) and "name_prefix" in str(wrong.value)
    with pytest.raises(ProviderError, match="prefix"):
        SageMakerProvider({**bad, "role_arn": ROLE, "name_prefix": "mlx-", "prefix": "x"}, ctx)


def test_aws_error_is_one_line(tmp_path: Path, sagemaker_moto: str) -> None:
    setup = Setup(tmp_path, sagemaker_moto, instance_type="ml.bogus.large")
    with pytest.raises(ProviderError) as refused:
        setup.provider.create(setup.desired(setup.version(1)))
    message = str(refused.value)
    assert message.startswith("endpoints.fraud: cannot create endpoint config ")
    assert "ValidationException" in message and "ml.bogus.large" in message
    assert "\n" not in message and len(message) <= 300


def test_missing_bucket_is_a_clear_error(tmp_path: Path, sagemaker_moto: str) -> None:
    setup = Setup(tmp_path, sagemaker_moto, bucket="no-such-bucket-mlx")
    with pytest.raises(ProviderError, match=r"cannot upload .* NoSuchBucket"):
        setup.provider.create(setup.desired(setup.version(1)))


def test_unreachable_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    provider = make(tmp_path, dead, FakePeers(), bucket="b-x")
    desired = Desired(ENDPOINT, "endpoints", "fraud", {"serves": SUBJECT, "owner": "o"})
    with pytest.raises(ProviderError, match=r"cannot describe SageMaker endpoint .* cannot reach"):
        provider.create(desired)


def test_check_problems(setup: Setup) -> None:
    def problems(**spec: Any) -> list[tuple[tuple[Any, ...], str]]:
        found = setup.provider.check(setup.desired({}, **spec))
        return [(p.path, p.message) for p in found]

    assert problems() == []
    [(path, message)] = problems(serves="prompts.support")
    assert path == ("serves",) and "serves models" in message
    assert problems(log={"payloads": 0.1})[0][0] == ("log", "payloads")
    assert problems(cache={"ttl": "10m"})[0][0] == ("cache",)


def test_endpoint_of_someone_else_is_refused(setup: Setup) -> None:
    theirs = f"{setup.provider.settings.name_prefix}fraud"
    sm = setup.sagemaker
    sm.create_model(
        ModelName=f"{theirs}-m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE}
    )
    sm.create_endpoint_config(
        EndpointConfigName=f"{theirs}-c",
        ProductionVariants=[
            {
                "VariantName": "prod",
                "ModelName": f"{theirs}-m",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=theirs, EndpointConfigName=f"{theirs}-c")
    with pytest.raises(ProviderError, match=f"{theirs} already exists and is not mlx's"):
        setup.provider.create(setup.desired(setup.version(1)))
    assert sm.describe_endpoint(EndpointName=theirs)["EndpointConfigName"] == f"{theirs}-c"


def test_interrupted_create_is_adopted(setup: Setup) -> None:
    desired = setup.desired(setup.version(1))
    first = setup.create(desired)
    again = setup.provider.create(desired)  # the record was lost: the endpoint is ours
    assert again.outputs == first.outputs


def test_metadata_change_only_retags(setup: Setup) -> None:
    desired = setup.desired(setup.version(1), labels={"tier": "gold"})
    prior = setup.create(desired)
    name = prior.outputs["endpoint_name"]
    config = setup.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    relabeled = replace(desired, spec={**desired.spec, "owner": "team-risk", "labels": {}})
    out = setup.provider.update(prior, relabeled, Change(metadata=True)).outputs
    assert out == prior.outputs
    assert setup.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"] == config
    tags = {
        t["Key"]: t["Value"]
        for t in setup.sagemaker.list_tags(ResourceArn=out["endpoint_arn"])["Tags"]
    }
    assert tags["mlx:owner"] == "team-risk" and "mlx:label:tier" not in tags


def test_update_moves_every_request_to_a_new_variant(setup: Setup) -> None:
    v1, v2 = setup.version(1), setup.version(2)
    prior = setup.create(setup.desired(v1))
    result = setup.provider.update(prior, setup.desired(v2), Change(behaviour=True))
    out = result.outputs
    assert out["weights"] == {"v2": 100} and out["stable_version"] == 2
    # the retired version's model is gone, its artifact stays for a fast roll back
    with pytest.raises(Exception, match="Could not find model"):
        setup.sagemaker.describe_model(ModelName=prior.outputs["variants"]["v1"]["model_name"])
    # back to v1: its model again, from the artifact already on S3 (not fetched again)
    back = setup.provider.update(
        replace(prior, outputs=out), setup.desired(v1), Change(behaviour=True)
    ).outputs
    assert back["variants"] == prior.outputs["variants"] and back["weights"] == {"v1": 100}
    assert [f for _a, f in setup.peers.fetched] == [v1["fingerprint"], v2["fingerprint"]]


def test_delete_removes_configs_models_and_artifacts(setup: Setup) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    out = setup.provider.update(prior, setup.desired(setup.version(2)), Change(behaviour=True))
    prior = replace(prior, outputs=out.outputs)
    name = prior.outputs["endpoint_name"]
    setup.provider.delete(prior)
    sm = setup.sagemaker
    # (moto ignores NameContains: filter here)
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    models = [m["ModelName"] for m in sm.list_models()["Models"]]
    assert [n for n in configs + models if n.startswith(name)] == []
    listed = aws("s3", setup.endpoint).list_objects_v2(Bucket=setup.provider.settings.bucket)
    assert listed.get("KeyCount", 0) == 0
    setup.provider.delete(prior)
    with pytest.raises(ProviderError, match=f"endpoints.fraud: SageMaker endpoint {name} does not"):
        setup.provider.set_traffic(prior, Traffic("v2"))


def test_traffic_comes_from_sagemaker_not_the_record(setup: Setup) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    setup.provider.deploy(prior, _variant(setup, 2))
    setup.provider.set_traffic(prior, Traffic("v1", "v2", 25))
    # another process (a fresh provider, the record as it was at create) sees the same split
    fresh = make(
        setup.tmp_path,
        setup.endpoint,
        setup.peers,
        bucket=setup.provider.settings.bucket,
        name_prefix=setup.provider.settings.name_prefix,
    )
    assert fresh.traffic(prior) == Traffic("v1", "v2", 25)
    observed = fresh.read(prior)
    assert observed is not None and observed.outputs["weights"] == {"v1": 75, "v2": 25}
    assert observed.outputs["variants"]["v2"]["version"] == 2  # from the model's tags


def test_the_stable_variant_is_never_retired(setup: Setup) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    setup.provider.deploy(prior, _variant(setup, 2))
    setup.provider.set_traffic(prior, Traffic("v1", "v2", 100))  # v1 takes nothing now
    with pytest.raises(ProviderError, match="cannot retire v1, the stable variant"):
        setup.provider.retire(prior, "v1")
    setup.provider.set_traffic(prior, Traffic("v2"))
    setup.provider.retire(prior, "v1")
    assert setup.provider.traffic(prior) == Traffic("v2")


def test_latency_fallback_is_the_mean_and_the_maximum(setup: Setup) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    name = prior.outputs["endpoint_name"]
    put_traffic(setup.endpoint, name, "v1", 4, 1, [10.0, 20.0, 30.0, 100.0], refused=2)
    now = datetime.now(UTC).timestamp()
    got = setup.provider.variant_metrics(prior, now - 60, now + 60)[Role.STABLE]
    assert (got.requests, got.server_errors, got.client_errors) == (4, 1, 2)
    assert (got.latency_p50_ms, got.latency_p95_ms, got.latency_p99_ms) == (40.0, 100.0, 100.0)
    assert any("no ModelLatency percentiles" in line for line in setup.provider.logs)  # type: ignore[attr-defined]


def test_cloudwatch_percentiles_are_used_when_given() -> None:
    """The shape real CloudWatch returns (moto cannot produce it): µs percentiles -> ms."""
    one = {
        "SampleCount": 10.0,
        "Average": 5e3,
        "Maximum": 9e4,
        "ExtendedStatistics": {"p50": 4e3, "p95": 8e3, "p99": 8.5e4},
    }
    assert summarize_latency([one]) == summarize_latency([one])
    exact = summarize_latency([one])
    assert (exact.p50_ms, exact.p95_ms, exact.p99_ms, exact.approximate) == (4.0, 8.0, 85.0, False)
    two = {
        "SampleCount": 30.0,
        "Average": 7e3,
        "Maximum": 2e4,
        "ExtendedStatistics": {"p50": 6e3, "p95": 1.2e4, "p99": 1.9e4},
    }
    split = summarize_latency([one, two])  # CloudWatch split the window: bounds
    assert (split.p50_ms, split.p95_ms, split.p99_ms) == (5.5, 12.0, 85.0)
    assert summarize_latency([]).p50_ms is None


def test_metrics_window_follows_cloudwatch_resolution() -> None:
    now = 1_800_000_000.0
    recent = window(now - 90, now - 10.5, now)
    assert recent.period == 60  # the finest SageMaker's metrics have, not one period spanning it
    assert recent.start.timestamp() == now - 90 and recent.end.timestamp() == now - 10
    assert window(now - 20 * 86400, now - 19 * 86400, now).period == 300
    assert window(now - 70 * 86400, now - 69 * 86400, now).period == 3600
    assert window(now - 3 * 86400, now, now).period == 180  # at most 1,440 points a call


def test_fingerprint_of_a_directory_version_names_its_model(setup: Setup) -> None:
    model_dir = setup.tmp_path / "mlflow-model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    outputs = setup.peers.register(SUBJECT, 7, model_dir)
    assert outputs["fingerprint"] == tree_digest(model_dir)
    out = setup.create(setup.desired(outputs)).outputs
    key = out["variants"]["v7"]["model_name"]
    data_url = setup.sagemaker.describe_model(ModelName=key)["PrimaryContainer"]["ModelDataUrl"]
    bucket, path = data_url.removeprefix("s3://").split("/", 1)
    body = aws("s3", setup.endpoint).get_object(Bucket=bucket, Key=path)["Body"].read()
    assert archive.members(body) == {"MLmodel": b"flavors: {}\n"}


def _variant(setup: Setup, n: int) -> Variant:
    return Variant(f"v{n}", SUBJECT, setup.version(n), dict(setup.peers.specs[SUBJECT]))
