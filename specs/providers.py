"""``providers``: named provider configurations, discriminated by ``type``.

Built-in types are typed here; any other ``type`` is a third-party plugin
(found through the ``mlx.providers`` entry-point group), whose own config
model validates the remaining keys when the plugin is loaded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag

from specs.base import SpecModel


class LocalProviderConfig(SpecModel):
    """The embedded registry: content-addressed versions under ``root``."""

    type: Literal["local"]
    root: str = ".mlx/registry"


class FileProviderConfig(SpecModel):
    type: Literal["file"]


class MlflowProviderConfig(SpecModel):
    """An MLflow tracking server (``http://…``) or a serverless store (``sqlite:///…``).

    A relative ``sqlite:///path`` is relative to the spec directory. Artifacts are
    logged into runs of ``experiment``; where a run's files go is the server's
    business (its ``--artifacts-destination``), or ``artifact_location`` for a new
    experiment (serverless default: ``mlartifacts/`` next to the database).
    """

    type: Literal["mlflow"]
    tracking_uri: str = Field(..., min_length=1)
    registry_uri: str | None = Field(None, description="Default: the tracking URI.")
    experiment: str = Field("mlx", min_length=1, description="Experiment artifacts are logged to.")
    artifact_location: str | None = Field(
        None, description="Artifact root of the experiment when mlx creates it."
    )


class S3ProviderConfig(SpecModel):
    """S3 objects: credentials and region from boto3's chain unless set here."""

    type: Literal["s3"]
    bucket: str | None = Field(None, description="Bucket for uploads of local artifacts.")
    prefix: str = Field("mlx/", description="Key prefix of uploads (keep the trailing slash).")
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None


class SnsProviderConfig(SpecModel):
    type: Literal["sns"]
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None


class SageMakerProviderConfig(SpecModel):
    """SageMaker real-time endpoints: one production variant per served model version.

    Credentials and region come from boto3's chain unless set here. Artifacts are
    uploaded as ``s3://<bucket>/<prefix><endpoint>/<fingerprint>/model.tar.gz``.
    """

    type: Literal["sagemaker"]
    role_arn: str = Field(
        ...,
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$",
        description="Execution role SageMaker runs the models as (arn:aws:iam::ACCOUNT:role/NAME).",
    )
    image: str = Field(..., min_length=1, description="Inference container image URI (ECR).")
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
    initial_instance_count: int = Field(1, ge=1, description="Instances per variant.")
    bucket: str = Field(..., min_length=3, description="Bucket model artifacts are uploaded to.")
    prefix: str = Field(
        "mlx/sagemaker/",
        pattern=r"^(|.*/)$",
        description="Key prefix of uploaded artifacts (empty, or ending with a slash).",
    )
    name_prefix: str = Field(
        "mlx-",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,19}$",
        description="Prefix of SageMaker endpoint and model names (letters, digits, hyphens).",
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Environment of the inference container (not secret: SageMaker shows it).",
    )
    wait_timeout_s: float = Field(
        1800, gt=0, description="How long one endpoint change may take to be InService."
    )
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None


class GatewayProviderConfig(SpecModel):
    """The embedded gateway (``mlx serve``): route documents in the state database.

    Served model versions are copied, content-addressed, under ``artifacts_dir``; every
    ``mlx serve`` replica loads them from that path, so replicas on other hosts need it
    on a shared volume.
    """

    type: Literal["gateway"]
    artifacts_dir: str | None = Field(
        None,
        min_length=1,
        description="Where served versions are materialized (default: <data dir>/gateway/"
        "artifacts); a relative path is relative to the spec directory.",
    )
    base_url: str = Field(
        "http://127.0.0.1:8080",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="Where `mlx serve` is reached: endpoints' `url` output is "
        "<base_url>/endpoints/<name> (default: mlx serve's default bind).",
    )


class WebhookProviderConfig(SpecModel):
    """Defaults for the webhook/slack alerts that name this provider (theirs win)."""

    type: Literal["webhook", "slack"]
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(10, gt=0)


class PythonProviderConfig(SpecModel):
    """A provider class in your own code, without packaging it: ``module:Class``."""

    type: Literal["python"]
    factory: str = Field(..., pattern=r"^[\w.]+:[\w.]+$")
    config: dict[str, Any] = Field(default_factory=dict)


class PluginProviderConfig(SpecModel):
    """A third-party provider: its plugin validates the other keys."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str = Field(..., pattern=r"^[a-z][a-z0-9_.-]*$")


BUILTIN_PROVIDER_CONFIGS: dict[str, type[SpecModel]] = {
    "local": LocalProviderConfig,
    "file": FileProviderConfig,
    "mlflow": MlflowProviderConfig,
    "s3": S3ProviderConfig,
    "sns": SnsProviderConfig,
    "sagemaker": SageMakerProviderConfig,
    "gateway": GatewayProviderConfig,
    "webhook": WebhookProviderConfig,
    "slack": WebhookProviderConfig,
    "python": PythonProviderConfig,
}


def _provider_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in ("webhook", "slack"):
        return "webhook"
    return kind if kind in BUILTIN_PROVIDER_CONFIGS else "plugin"


ProviderConfig = Annotated[
    Annotated[LocalProviderConfig, Tag("local")]
    | Annotated[FileProviderConfig, Tag("file")]
    | Annotated[MlflowProviderConfig, Tag("mlflow")]
    | Annotated[S3ProviderConfig, Tag("s3")]
    | Annotated[SnsProviderConfig, Tag("sns")]
    | Annotated[SageMakerProviderConfig, Tag("sagemaker")]
    | Annotated[GatewayProviderConfig, Tag("gateway")]
    | Annotated[WebhookProviderConfig, Tag("webhook")]
    | Annotated[PythonProviderConfig, Tag("python")]
    | Annotated[PluginProviderConfig, Tag("plugin")],
    Discriminator(_provider_tag),
]
