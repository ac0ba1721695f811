"""Webhook and Slack channels, delivering to a real HTTP server on 127.0.0.1 (in a thread)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from contract import AlertMessage, Context, Desired, Prior, Provider, ProviderError
from providers import webhook
from providers.testing import FlakyProxy, NotifierConformance
from providers.webhook import SlackProvider, WebhookProvider
from tests.providers.conftest import Receiver

MESSAGE = AlertMessage(
    title="Budget 80% spent",
    text="prompts.summary spent $80 of $100 this month",
    severity="warning",
    source="budgets.llm",
    owner="team-llm",
    details={"spent_usd": 80.0},
)


class _Peers:
    """The engine's view of this run: resolved specs, secrets opened."""

    def __init__(self, specs: dict[str, dict[str, Any]]):
        self.specs = specs

    def spec(self, address: str) -> dict[str, Any] | None:
        return self.specs.get(address)


def make(
    tmp_path: Path, cls: type[WebhookProvider] = WebhookProvider, peers: Any = None, **config: Any
) -> WebhookProvider:
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=peers)
    return cls({"type": cls.type_name, **config}, ctx)


def recorded(provider: Provider, desired: Desired) -> Prior:
    assert provider.check(desired) == []
    out = provider.create(desired).outputs
    return Prior(desired.address, "alerts", desired.name, dict(desired.spec), out)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retries as configured, minus the waits between them (tests count attempts)."""
    monkeypatch.setattr(webhook, "BACKOFF_S", 0.0)


class TestWebhookChannels(NotifierConformance):
    """Delivering through a ``FlakyProxy`` to a receiver on 127.0.0.1."""

    section = "alerts"
    version_key = None
    kind = "webhook"
    provider_class: type[WebhookProvider] = WebhookProvider

    @pytest.fixture(autouse=True)
    def _receiver(self, webhook_receiver: Receiver, no_backoff: None) -> Iterator[None]:
        self.receiver = webhook_receiver
        with FlakyProxy(webhook_receiver.url.split("/hooks")[0]) as proxy:
            self.proxy = proxy
            yield

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, self.provider_class, peers=self.peers)

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        spec: dict[str, Any] = {
            "type": self.kind,
            "url": f"{self.proxy.url}/hooks/T000/B000/very-secret-token",
            "headers": {"X-Token": "header-secret-value"},
            "severity": "critical",
            "owner": "team-ml",
        }
        if variant == "v2":
            spec["timeout_s"] = 3
        if variant == "meta":
            spec["description"] = "pages the on-call"
        if variant == "bad":
            del spec["url"]
        return Desired("alerts.oncall", "alerts", "oncall", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        path = provider.context.data_dir / "channels" / "oncall.json"
        config = json.loads(path.read_text())
        config["severity"] = "info"
        path.write_text(json.dumps(config))

    def delivered(self, provider: Provider, channel: Prior) -> list[Any]:
        return [r["json"] for r in self.receiver.requests]

    @contextlib.contextmanager
    def broken(self, provider: Provider, after: int) -> Iterator[None]:
        self.proxy.go_down(after)
        try:
            yield
        finally:
            self.proxy.come_up()


class TestSlackChannels(TestWebhookChannels):
    kind = "slack"
    provider_class = SlackProvider


def test_webhook_posts_the_alert_as_json(tmp_path: Path, webhook_receiver: Receiver) -> None:
    desired = Desired(
        "alerts.oncall",
        "alerts",
        "oncall",
        {"type": "webhook", "url": webhook_receiver.url, "headers": {"X-Token": "s3cr3t"}},
    )
    provider = make(tmp_path, peers=_Peers({"alerts.oncall": dict(desired.spec)}))
    prior = recorded(provider, desired)
    provider.send(prior, MESSAGE)
    [request] = webhook_receiver.requests
    assert request["path"] == "/hooks/T000/B000/secret"
    assert request["headers"]["X-Token"] == "s3cr3t"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["json"]
    assert body["title"] == MESSAGE.title and body["details"] == {"spent_usd": 80.0}
    assert body["channel"] == "alerts.oncall" and body["severity"] == "warning"


def test_slack_payload_and_url_from_the_provider(
    tmp_path: Path, webhook_receiver: Receiver
) -> None:
    """`providers: {oncall: {type: webhook, url: …}}` + an alert `type: slack` naming it."""
    desired = Desired("alerts.team", "alerts", "team", {"type": "slack", "channel": "#ml-alerts"})
    provider = make(tmp_path, url=webhook_receiver.url)
    provider.send(recorded(provider, desired), MESSAGE)
    [request] = webhook_receiver.requests
    assert request["json"] == {
        "channel": "#ml-alerts",
        "text": "*[WARNING] Budget 80% spent*\n"
        "prompts.summary spent $80 of $100 this month\n"
        "source: budgets.llm · owner: team-llm",
    }


def test_secrets_never_reach_outputs(tmp_path: Path) -> None:
    url = "https://user:pw@hooks.slack.com/services/T0/B0/very-secret"
    desired = Desired(
        "alerts.x", "alerts", "x", {"type": "slack", "url": url, "headers": {"Authorization": "k"}}
    )
    provider = make(tmp_path, SlackProvider)
    prior = recorded(provider, desired)
    text = json.dumps(prior.outputs) + (tmp_path / ".mlx/channels/x.json").read_text()
    assert "very-secret" not in text and "pw" not in text and '"k"' not in text
    assert prior.outputs["config"]["endpoint"] == "https://hooks.slack.com"
    assert prior.outputs["config"]["header_names"] == ["Authorization", "Content-Type"]


@pytest.mark.usefixtures("no_backoff")
def test_timeout_is_retried_then_a_clear_provider_error(
    tmp_path: Path, webhook_receiver: Receiver
) -> None:
    webhook_receiver.delay = 5
    desired = Desired(
        "alerts.slow", "alerts", "slow", {"type": "webhook", "url": webhook_receiver.url}
    )
    provider = make(tmp_path, timeout_s=0.2)
    prior = recorded(provider, desired)
    with pytest.raises(ProviderError) as err:
        provider.send(prior, MESSAGE)
    port = urlsplit(webhook_receiver.url).port
    assert str(err.value) == (
        f"alerts.slow: the webhook at http://127.0.0.1:{port} "
        "did not answer within 0.2s (timeout_s; 4 attempts)"
    )
    assert len(webhook_receiver.requests) == 4
    assert "secret" not in str(err.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_other_client_errors_are_not_retried(
    tmp_path: Path, webhook_receiver: Receiver, status: int
) -> None:
    webhook_receiver.status = status
    desired = Desired("alerts.x", "alerts", "x", {"type": "slack", "url": webhook_receiver.url})
    provider = make(tmp_path, SlackProvider)
    with pytest.raises(ProviderError) as err:
        provider.send(recorded(provider, desired), MESSAGE)
    assert str(err.value).endswith(f"answered HTTP {status}: no_service")
    assert len(webhook_receiver.requests) == 1


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize("fault", ["503", "500", "502", "504", "429", "drop"])
def test_transient_errors_are_retried(
    tmp_path: Path, webhook_receiver: Receiver, fault: str
) -> None:
    with FlakyProxy(webhook_receiver.url.split("/hooks")[0]) as proxy:
        url = f"{proxy.url}/hooks/T000/B000/secret"
        if fault == "drop":
            proxy.drop(2)
        else:
            proxy.fail(2, status=int(fault), retry_after="0")
        desired = Desired("alerts.x", "alerts", "x", {"type": "webhook", "url": url})
        provider = make(tmp_path)
        provider.send(recorded(provider, desired), MESSAGE)
        assert proxy.received == 3
    [request] = webhook_receiver.requests
    assert request["json"]["title"] == MESSAGE.title


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("drop", "cannot reach the webhook at {host}: the connection was dropped (4 attempts)"),
        ("503", "the webhook at {host} answered HTTP 503 (4 attempts): injected HTTP 503"),
        ("429", "the webhook at {host} answered HTTP 429 (4 attempts): injected HTTP 429"),
    ],
)
def test_a_dead_webhook_fails_within_bounded_attempts(
    tmp_path: Path, webhook_receiver: Receiver, fault: str, reason: str
) -> None:
    with FlakyProxy(webhook_receiver.url.split("/hooks")[0]) as proxy:
        if fault == "drop":
            proxy.go_down()
        else:
            proxy.fail(1000, status=int(fault), retry_after="0")
        url = f"{proxy.url}/hooks/T000/B000/secret"
        desired = Desired("alerts.x", "alerts", "x", {"type": "webhook", "url": url})
        provider = make(tmp_path)
        with pytest.raises(ProviderError) as err:
            provider.send(recorded(provider, desired), MESSAGE)
        assert proxy.received == 4  # the first attempt and three retries; no more
        assert str(err.value) == "alerts.x: " + reason.format(host=proxy.url)
    assert webhook_receiver.requests == []


def test_retry_after_is_honoured_within_a_cap() -> None:
    """A 429/503's Retry-After sets the wait, but never beyond RETRY_AFTER_MAX_S."""
    from urllib3 import HTTPResponse

    retry = webhook._retry()

    def wait(value: str) -> float | None:
        answer = HTTPResponse(status=429, headers={"Retry-After": value})
        return retry.get_retry_after(answer)

    assert wait("2") == 2
    assert wait("3600") == webhook.RETRY_AFTER_MAX_S
    assert retry.is_retry("POST", 429, has_retry_after=True)
    assert retry.is_retry("POST", 503, has_retry_after=False)
    assert not retry.is_retry("POST", 404, has_retry_after=False)
    assert retry.new().parse_retry_after("99") == webhook.RETRY_AFTER_MAX_S  # kept on retries


def test_check_needs_an_http_url(tmp_path: Path) -> None:
    provider = make(tmp_path)
    none = Desired("alerts.x", "alerts", "x", {"type": "webhook"})
    assert provider.check(none)[0].message.startswith("no URL")
    bad = Desired("alerts.x", "alerts", "x", {"type": "webhook", "url": "ftp://h/secret"})
    [problem] = provider.check(bad)
    assert problem.path == ("url",) and "secret" not in problem.message
    assert provider.check(Desired("alerts.x", "alerts", "x", {"type": "file"}))


@pytest.mark.usefixtures("no_backoff")
def test_unreachable_host(tmp_path: Path) -> None:
    from tests.providers.conftest import free_port

    port = free_port()
    desired = Desired(
        "alerts.x", "alerts", "x", {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook"}
    )
    provider = make(tmp_path)
    with pytest.raises(ProviderError) as err:
        provider.send(recorded(provider, desired), MESSAGE)
    assert str(err.value) == (
        f"alerts.x: cannot reach the webhook at http://127.0.0.1:{port}: "
        "[Errno 111] Connection refused (4 attempts)"
    )


def test_alert_spec_accepts_a_provider_held_url() -> None:
    from pydantic import TypeAdapter

    from specs.alerts import Alert

    alert = TypeAdapter(Alert).validate_python({"type": "slack", "provider": "oncall"})
    assert alert.url is None and alert.timeout_s is None


@pytest.mark.usefixtures("no_backoff")
def test_retry_warnings_do_not_log_the_url(
    tmp_path: Path, webhook_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with FlakyProxy(webhook_receiver.url.split("/hooks")[0]) as proxy:
        proxy.drop(1)
        url = f"{proxy.url}/hooks/T000/B000/very-secret-token"
        desired = Desired("alerts.x", "alerts", "x", {"type": "webhook", "url": url})
        provider = make(tmp_path)
        with caplog.at_level("DEBUG", logger="urllib3"):
            provider.send(recorded(provider, desired), MESSAGE)
    assert any("Retrying" in r.getMessage() for r in caplog.records)
    assert not any("very-secret-token" in r.getMessage() for r in caplog.records)
