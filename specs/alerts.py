"""``alerts``: channels that receive alerts (file, webhook, Slack, SNS)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from specs.base import Resource, replace_field

Severity = Literal["info", "warning", "critical"]


class AlertBase(Resource):
    section: ClassVar[str] = "alerts"
    computed: ClassVar[tuple[str, ...]] = ("channel_id",)

    severity: Severity = "warning"


class FileAlert(AlertBase):
    type: Literal["file"] = replace_field(...)
    path: str = Field(..., min_length=1, description="JSON-lines file alerts are appended to.")


class WebhookAlert(AlertBase):
    type: Literal["webhook"] = replace_field(...)
    url: str = Field(..., min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(10, gt=0)


class SlackAlert(AlertBase):
    type: Literal["slack"] = replace_field(...)
    url: str = Field(..., min_length=1, description="Slack incoming-webhook URL.")
    channel: str | None = None
    timeout_s: float = Field(10, gt=0)


class SnsAlert(AlertBase):
    type: Literal["sns"] = replace_field(...)
    topic_arn: str | None = None
    topic: str | None = Field(None, description="Topic name to create when no ARN is given.")
    region: str | None = None
    endpoint_url: str | None = None


Alert = Annotated[FileAlert | WebhookAlert | SlackAlert | SnsAlert, Field(discriminator="type")]
ALERT_TYPES = {"file": FileAlert, "webhook": WebhookAlert, "slack": SlackAlert, "sns": SnsAlert}
