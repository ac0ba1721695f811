"""Webhook and Slack channels, delivering to a real HTTP server on 127.0.0.1 (in a thread)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from providers.contract import AlertMessage, Context, Desired, Prior, Provider, ProviderError
from providers.testing import ProviderConformance
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


class TestWebhookChannels(ProviderConformance):
    section = "alerts"
    version_key = None

    def make_provider(self, tmp_path: Path) -> Provider:
        return make(tmp_path, url="https://hooks.example.com/services/T0/B0/xyz")

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        spec: dict[str, Any] = {"type": "webhook", "severity": "critical", "owner": "team-ml"}
        if variant == "v2":
            spec["timeout_s"] = 3
        if variant == "meta":
            spec["description"] = "pages the on-call"
        return Desired("alerts.oncall", "alerts", "oncall", spec)

    def tamper(self, provider: Provider, prior: Prior) -> None:
        path = provider.context.data_dir / "channels" / "oncall.json"
        config = json.loads(path.read_text())
        config["severity"] = "info"
        path.write_text(json.dumps(config))


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


def test_timeout_is_a_clear_provider_error(tmp_path: Path, webhook_receiver: Receiver) -> None:
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
        "did not answer within 0.2s (timeout_s)"
    )
    assert "secret" not in str(err.value)


def test_http_error_is_reported_with_status(tmp_path: Path, webhook_receiver: Receiver) -> None:
    webhook_receiver.status = 404
    desired = Desired("alerts.x", "alerts", "x", {"type": "slack", "url": webhook_receiver.url})
    provider = make(tmp_path, SlackProvider)
    with pytest.raises(ProviderError, match=r"answered HTTP 404: no_service"):
        provider.send(recorded(provider, desired), MESSAGE)


def test_check_needs_an_http_url(tmp_path: Path) -> None:
    provider = make(tmp_path)
    none = Desired("alerts.x", "alerts", "x", {"type": "webhook"})
    assert provider.check(none)[0].message.startswith("no URL")
    bad = Desired("alerts.x", "alerts", "x", {"type": "webhook", "url": "ftp://h/secret"})
    [problem] = provider.check(bad)
    assert problem.path == ("url",) and "secret" not in problem.message
    assert provider.check(Desired("alerts.x", "alerts", "x", {"type": "file"}))


def test_unreachable_host(tmp_path: Path) -> None:
    from tests.providers.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/hook"
    desired = Desired("alerts.x", "alerts", "x", {"type": "webhook", "url": url})
    provider = make(tmp_path)
    with pytest.raises(ProviderError, match=r"cannot reach the webhook at http://127\.0\.0\.1"):
        provider.send(recorded(provider, desired), MESSAGE)


def test_alert_spec_accepts_a_provider_held_url() -> None:
    from pydantic import TypeAdapter

    from specs.alerts import Alert

    alert = TypeAdapter(Alert).validate_python({"type": "slack", "provider": "oncall"})
    assert alert.url is None and alert.timeout_s is None
