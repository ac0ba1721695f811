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
    | Annotated[WebhookProviderConfig, Tag("webhook")]
    | Annotated[PythonProviderConfig, Tag("python")]
    | Annotated[PluginProviderConfig, Tag("plugin")],
    Discriminator(_provider_tag),
]
