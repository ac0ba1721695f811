"""SNS alert channels (``type: sns``).

``topic: NAME`` creates (and owns) a topic, tagged with the channel's address,
owner and severity; ``topic_arn:`` uses an existing topic, which mlx only
checks and never changes or deletes. ``send`` publishes one message.

``read()`` re-reads the topic: gone, or (for a topic mlx created) its tags or
display name edited outside mlx, is drift; the next apply writes them back.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from contract import (
    AlertMessage,
    Change,
    Context,
    Desired,
    DiffResult,
    Notifier,
    Observed,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Result,
)
from providers.aws.session import aws_error, error_code, make_client, settings
from specs.providers import SnsProviderConfig

_SUBJECT_MAX = 100  # SNS refuses longer subjects
_GONE = {"NotFound", "NotFoundException", "ResourceNotFoundException"}


class SnsProvider(Provider, Notifier):
    sections = frozenset({"alerts"})
    config_model = SnsProviderConfig
    type_name = "sns"

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__(config, context)
        self._clients: dict[tuple[str | None, ...], Any] = {}
        self._lock = threading.Lock()

    def _client(self, spec: Any) -> Any:
        """A client for the alert's region/endpoint, else the provider's, else boto3's chain."""
        where = settings(spec, self.settings.model_dump())
        key = (where["region"], where["endpoint_url"], where["profile"])
        with self._lock:
            if key not in self._clients:
                self._clients[key] = make_client("sns", **where)
            return self._clients[key]

    # -- planning ---------------------------------------------------------------------
    def plan_inputs(self) -> list[str] | None:
        return []  # planning a channel looks at nothing but its spec (AWS is read at apply)

    def check(self, desired: Desired) -> list[Problem]:
        spec = desired.spec
        if spec.get("type") != "sns":
            return [Problem(("type",), "the sns provider only serves `type: sns` channels")]
        if bool(spec.get("topic_arn")) == bool(spec.get("topic")):
            return [Problem(("topic",), "set exactly one of `topic` (created) or `topic_arn`")]
        arn = spec.get("topic_arn")
        if arn and not str(arn).startswith("arn:"):
            return [Problem(("topic_arn",), f"{arn!r} is not an ARN (arn:aws:sns:REGION:…)")]
        return []

    def diff(self, prior: Prior, desired: Desired) -> DiffResult:
        moved = [
            k for k in ("topic", "topic_arn") if prior.attributes.get(k) != desired.spec.get(k)
        ]
        return DiffResult(tuple(moved))

    # -- applying ---------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        return Result(self._ensure(desired))

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        outputs = self._ensure(desired)
        if prior.outputs.get("managed") and prior.outputs.get("topic_arn") != outputs["topic_arn"]:
            self.delete(prior)  # the topic was renamed: the old one is no longer ours
        return Result(outputs)

    def _ensure(self, desired: Desired) -> dict[str, Any]:
        spec, client = desired.spec, self._client(desired.spec)
        tags = self._tags(desired)
        if spec.get("topic"):
            try:
                # idempotent: returns the existing topic's ARN
                arn = client.create_topic(Name=spec["topic"])["TopicArn"]
                client.set_topic_attributes(
                    TopicArn=arn, AttributeName="DisplayName", AttributeValue=desired.name
                )
                client.tag_resource(
                    ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
                )
                stale = set(self._look(client, arn)["tags"]) - set(tags)
                if stale:
                    client.untag_resource(ResourceArn=arn, TagKeys=sorted(stale))
            except ProviderError:
                raise
            except Exception as exc:
                what = f"{desired.address}: cannot create topic {spec['topic']}"
                raise aws_error(exc, what) from exc
            return {"channel_id": arn, "topic_arn": arn, "managed": True, **self._look(client, arn)}
        arn = str(spec["topic_arn"])
        looked = self._read_topic(client, arn)
        if looked is None:
            raise ProviderError(f"{desired.address}: SNS topic {arn} does not exist")
        return {"channel_id": arn, "topic_arn": arn, "managed": False}

    def delete(self, prior: Prior) -> None:
        if not prior.outputs.get("managed"):
            return  # a topic given by ARN belongs to somebody else
        client = self._client(prior.attributes)
        try:
            client.delete_topic(TopicArn=prior.outputs["topic_arn"])
        except Exception as exc:
            if error_code(exc) not in _GONE:
                raise aws_error(exc, f"{prior.address}: cannot delete the topic") from exc

    def read(self, prior: Prior) -> Observed | None:
        client = self._client(prior.attributes)
        arn = str(prior.outputs.get("topic_arn"))
        looked = self._read_topic(client, arn)
        if looked is None:
            return None
        outputs: dict[str, Any] = {
            "channel_id": arn,
            "topic_arn": arn,
            "managed": bool(prior.outputs.get("managed")),
        }
        if prior.outputs.get("managed"):
            outputs.update(looked)
        return Observed(outputs)

    # -- alerts -------------------------------------------------------------------------
    def send(self, channel: Prior, message: AlertMessage) -> None:
        client = self._client(channel.attributes)
        arn = str(channel.outputs["topic_arn"])
        subject = f"[{message.severity}] {message.title}"
        # SNS subjects: ASCII printable, no newlines, at most 100 characters
        subject = "".join(c if 32 <= ord(c) < 127 else " " for c in subject)[:_SUBJECT_MAX]
        body = message.record(channel.address)
        try:
            client.publish(
                TopicArn=arn,
                Subject=subject,
                Message=json.dumps(body, sort_keys=True, default=str),
                MessageAttributes={
                    "severity": {"DataType": "String", "StringValue": message.severity}
                },
            )
        except Exception as exc:
            raise aws_error(exc, f"{channel.address}: cannot publish to {arn}") from exc

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _tags(desired: Desired) -> dict[str, str]:
        tags = {"mlx:address": desired.address, "mlx:severity": str(desired.spec.get("severity"))}
        if desired.spec.get("owner"):
            tags["mlx:owner"] = str(desired.spec["owner"])
        return tags

    def _read_topic(self, client: Any, arn: str) -> dict[str, Any] | None:
        """``_look`` at the topic, or ``None`` if it does not exist."""
        try:
            return self._look(client, arn)
        except ProviderError as exc:
            if error_code(exc.__cause__ or exc) in _GONE:
                return None
            raise

    @staticmethod
    def _look(client: Any, arn: str) -> dict[str, Any]:
        """What mlx sets on a topic it owns: the display name and the ``mlx:`` tags."""
        try:
            attrs = client.get_topic_attributes(TopicArn=arn)["Attributes"]
            tags = client.list_tags_for_resource(ResourceArn=arn).get("Tags", [])
        except Exception as exc:
            raise aws_error(exc, f"cannot read SNS topic {arn}") from exc
        return {
            "display_name": attrs.get("DisplayName", ""),
            "tags": {t["Key"]: t["Value"] for t in tags if t["Key"].startswith("mlx:")},
        }
