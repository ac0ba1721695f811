"""SNS alert channels against moto's server on 127.0.0.1: topics, tags, publish, drift."""

from __future__ import annotations

import contextlib
import functools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contract import AlertMessage, Context, Desired, Prior, Provider, ProviderError
from providers.aws.session import make_client
from providers.aws.sns import SnsProvider
from providers.testing import FlakyProxy, NotifierConformance

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("aws_env")]


@functools.cache
def aws(service: str, endpoint: str) -> Any:
    return make_client(service, region="us-east-1", endpoint_url=endpoint)


def make(tmp_path: Path, endpoint: str, peers: Any = None) -> SnsProvider:
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=peers)
    return SnsProvider({"type": "sns", "endpoint_url": endpoint, "region": "us-east-1"}, ctx)


def channel(topic: str, **extra: Any) -> Desired:
    spec = {"type": "sns", "topic": topic, "severity": "critical", "owner": "team-ml", **extra}
    return Desired("alerts.oncall", "alerts", "oncall", spec)


def created(provider: Provider, desired: Desired) -> Prior:
    assert provider.check(desired) == []
    out = provider.create(desired).outputs
    return Prior(desired.address, "alerts", desired.name, dict(desired.spec), out)


def subscribe(endpoint: str, topic_arn: str) -> str:
    """An SQS queue receiving what the topic publishes; its URL."""
    sqs = aws("sqs", endpoint)
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    aws("sns", endpoint).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn["QueueArn"])
    return str(queue)


def received(endpoint: str, queue: str) -> list[dict[str, Any]]:
    sqs = aws("sqs", endpoint)
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    out = []
    for message in got.get("Messages", []):
        out.append(json.loads(message["Body"]))
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return out


class TestSnsChannels(NotifierConformance):
    """Through a ``FlakyProxy`` in front of moto; what is published lands in an SQS queue."""

    section = "alerts"
    version_key = None
    replace_fields = ("topic",)

    @pytest.fixture(autouse=True)
    def _names(
        self, aws_env: None, moto_proxy: FlakyProxy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.proxy = moto_proxy
        self.endpoint = moto_proxy.url
        self.topic = f"mlx-{uuid.uuid4().hex[:10]}"
        self.queues: dict[str, str] = {}
        self.inbox: dict[str, list[Any]] = {}
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # retries have tests of their own

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.endpoint, self.peers)

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        if variant == "v2":
            return channel(self.topic, severity="warning")
        if variant == "replace":
            return channel(self.topic + "-renamed")
        if variant == "meta":
            return channel(self.topic, description="the on-call topic")
        if variant == "bad":
            return channel(self.topic, topic_arn="arn:aws:sns:us-east-1:123456789012:x")
        return channel(self.topic)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        aws("sns", self.endpoint).tag_resource(
            ResourceArn=prior.outputs["topic_arn"], Tags=[{"Key": "mlx:severity", "Value": "info"}]
        )

    def delivered(self, provider: Provider, channel: Prior) -> list[Any]:
        arn = str(channel.outputs["topic_arn"])
        if arn not in self.queues:
            self.queues[arn] = subscribe(self.endpoint, arn)
            self.inbox[arn] = []
        while got := received(self.endpoint, self.queues[arn]):  # moto delivers synchronously
            self.inbox[arn].extend(json.loads(m["Message"]) for m in got)
        return self.inbox[arn]

    @contextlib.contextmanager
    def broken(self, provider: Provider, after: int) -> Iterator[None]:
        self.proxy.go_down(after)
        try:
            yield
        finally:
            self.proxy.come_up()


def test_topic_deleted_by_hand_is_gone(tmp_path: Path, moto_endpoint: str) -> None:
    provider = make(tmp_path, moto_endpoint)
    prior = created(provider, channel(f"mlx-{uuid.uuid4().hex[:10]}"))
    aws("sns", moto_endpoint).delete_topic(TopicArn=prior.outputs["topic_arn"])
    assert provider.read(prior) is None


def test_display_name_edited_by_hand_is_drift(tmp_path: Path, moto_endpoint: str) -> None:
    provider = make(tmp_path, moto_endpoint)
    prior = created(provider, channel(f"mlx-{uuid.uuid4().hex[:10]}"))
    aws("sns", moto_endpoint).set_topic_attributes(
        TopicArn=prior.outputs["topic_arn"], AttributeName="DisplayName", AttributeValue="x"
    )
    assert provider.read(prior).differences(prior.outputs) == ["display_name: 'oncall' -> 'x'"]


def test_send_publishes_to_subscribers(tmp_path: Path, moto_endpoint: str) -> None:
    provider = make(tmp_path, moto_endpoint)
    prior = created(provider, channel(f"mlx-{uuid.uuid4().hex[:10]}"))
    sqs = aws("sqs", moto_endpoint)
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws("sns", moto_endpoint).subscribe(
        TopicArn=prior.outputs["topic_arn"], Protocol="sqs", Endpoint=queue_arn
    )
    message = AlertMessage(
        title="Drift on fraud",
        text="PSI 0.31 on amount",
        severity="critical",
        source="monitors.fraud_drift",
        owner="team-ml",
        details={"psi": 0.31},
    )
    provider.send(prior, message)
    [received] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"]
    envelope = json.loads(received["Body"])
    assert envelope["Subject"] == "[critical] Drift on fraud"
    body = json.loads(envelope["Message"])
    assert body["text"] == "PSI 0.31 on amount" and body["details"] == {"psi": 0.31}
    assert body["channel"] == "alerts.oncall" and body["source"] == "monitors.fraud_drift"


def test_existing_topic_by_arn_is_never_changed(tmp_path: Path, moto_endpoint: str) -> None:
    arn = aws("sns", moto_endpoint).create_topic(Name=f"ops-{uuid.uuid4().hex[:8]}")["TopicArn"]
    provider = make(tmp_path, moto_endpoint)
    desired = Desired("alerts.ops", "alerts", "ops", {"type": "sns", "topic_arn": arn})
    prior = created(provider, desired)
    assert prior.outputs == {"channel_id": arn, "topic_arn": arn, "managed": False}
    assert aws("sns", moto_endpoint).list_tags_for_resource(ResourceArn=arn)["Tags"] == []
    provider.delete(prior)
    assert provider.read(prior) is not None  # somebody else's topic survives


def test_missing_topic_arn_and_bad_specs(tmp_path: Path, moto_endpoint: str) -> None:
    provider = make(tmp_path, moto_endpoint)
    arn = "arn:aws:sns:us-east-1:123456789012:does-not-exist"
    with pytest.raises(ProviderError, match="does not exist"):
        provider.create(Desired("alerts.x", "alerts", "x", {"type": "sns", "topic_arn": arn}))
    both = Desired("alerts.x", "alerts", "x", {"type": "sns", "topic": "t", "topic_arn": arn})
    assert provider.check(both)[0].message.startswith("set exactly one of")
    neither = Desired("alerts.x", "alerts", "x", {"type": "sns"})
    assert provider.check(neither)[0].path == ("topic",)


def test_renaming_the_topic_replaces_it(tmp_path: Path, moto_endpoint: str) -> None:
    provider = make(tmp_path, moto_endpoint)
    prior = created(provider, channel("old-" + uuid.uuid4().hex[:8]))
    assert provider.diff(prior, channel("new-x")).replace_fields == ("topic",)


UNAVAILABLE = (
    b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
    b"<Message>try again</Message></Error><RequestId>r</RequestId></ErrorResponse>"
)


def test_publish_is_retried_through_transient_errors(
    tmp_path: Path, moto_proxy: FlakyProxy
) -> None:
    provider = make(tmp_path, moto_proxy.url)
    prior = created(provider, channel(f"mlx-{uuid.uuid4().hex[:10]}"))
    queue = subscribe(moto_proxy.url, prior.outputs["topic_arn"])
    # SNS answers errors in XML; botocore does not retry a 5xx whose body it cannot parse
    moto_proxy.fail(1, status=503, body=UNAVAILABLE)
    moto_proxy.drop(1)
    before = moto_proxy.received
    provider.send(prior, AlertMessage("retried", "after a 503 and a dropped connection"))
    assert moto_proxy.received - before == 3
    [envelope] = received(moto_proxy.url, queue)
    assert json.loads(envelope["Message"])["title"] == "retried"


def test_a_dead_endpoint_is_one_clear_line(tmp_path: Path, moto_proxy: FlakyProxy) -> None:
    provider = make(tmp_path, moto_proxy.url)
    prior = created(provider, channel(f"mlx-{uuid.uuid4().hex[:10]}"))
    moto_proxy.go_down()
    before = moto_proxy.received
    with pytest.raises(ProviderError) as err:
        provider.send(prior, AlertMessage("lost", "nobody listens"))
    assert moto_proxy.received - before == 3
    assert str(err.value) == (
        f"alerts.oncall: cannot publish to {prior.outputs['topic_arn']}: "
        f"cannot reach the endpoint {moto_proxy.url}: the connection was dropped"
    )
