"""``alerts``: channels that receive alerts (file, webhook, Slack, SNS, PagerDuty).

Every channel takes the lifecycle's fields (SPEC.md, ``alerts``): ``repeat_interval``
(default 4h: how long a firing alert stays quiet) and ``send_resolved`` (default true).
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from specs.base import Duration, Resource, replace_field
from specs.kinds import Kind

Severity = Literal["info", "warning", "critical"]
#: a secret field's only accepted form: the whole value is one environment variable
_ENV_ONLY = re.compile(r"^\$\{env\.[A-Za-z_][A-Za-z0-9_]*\}$")


class AlertBase(Resource):
    section: ClassVar[str] = "alerts"
    computed: ClassVar[tuple[str, ...]] = ("channel_id",)

    severity: Severity = "warning"
    repeat_interval: Duration = Field(
        "4h", description="A firing alert notifies again after this long (default 4h)."
    )
    send_resolved: bool = Field(True, description="Notify once when a firing alert recovers.")


class FileAlert(AlertBase):
    type: Literal["file"] = replace_field(...)
    path: str = Field(..., min_length=1, description="JSON-lines file alerts are appended to.")


class WebhookAlert(AlertBase):
    """POSTs each alert as JSON. ``url``/``headers``/``timeout_s`` may come from the provider."""

    type: Literal["webhook"] = replace_field(...)
    url: str | None = Field(
        None, min_length=1, description="Endpoint; optional when the named provider holds it."
    )
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float | None = Field(None, gt=0, description="Default: the provider's (10 s).")


class SlackAlert(AlertBase):
    """POSTs Slack's incoming-webhook payload ``{"text": …}``."""

    type: Literal["slack"] = replace_field(...)
    url: str | None = Field(
        None,
        min_length=1,
        description="Slack incoming-webhook URL; optional when the named provider holds it.",
    )
    channel: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float | None = Field(None, gt=0, description="Default: the provider's (10 s).")


class SnsAlert(AlertBase):
    """Publishes to an SNS topic: an existing one (``topic_arn``) or one mlx creates (``topic``)."""

    type: Literal["sns"] = replace_field(...)
    topic_arn: str | None = Field(None, description="An existing topic (never changed by mlx).")
    topic: str | None = Field(None, description="Topic name to create when no ARN is given.")
    region: str | None = None
    endpoint_url: str | None = None


class PagerDutyAlert(AlertBase):
    """PagerDuty Events API v2: ``trigger`` when an alert fires, ``resolve`` when it recovers,
    ``dedup_key`` = the alert key. ``routing_key`` is a secret: write ``${env.X}``."""

    type: Literal["pagerduty"] = replace_field(...)
    routing_key: str = Field(
        ...,
        min_length=1,
        description="The integration key: a secret, written as `${env.X}` only.",
    )
    url: str | None = Field(
        None,
        min_length=1,
        description="Events API base URL (default https://events.pagerduty.com).",
    )
    timeout_s: float | None = Field(None, gt=0, description="Default 10 s.")

    @field_validator("routing_key")
    @classmethod
    def _secret(cls, value: str) -> str:
        if not _ENV_ONLY.match(value):
            # its own error type: the error message must not repeat the value (a secret)
            raise PydanticCustomError(
                "secret_in_clear",
                "routing_key is a secret: write it as ${env.NAME} (never in clear in the spec)",
            )
        return value


Alert = Annotated[
    FileAlert | WebhookAlert | SlackAlert | SnsAlert | PagerDutyAlert,
    Field(discriminator="type"),
]


KIND = Kind("alerts", Alert, order=90)
