"""Webhook and Slack-compatible alert channels (``type: webhook`` / ``type: slack``).

The channel's ``type`` picks the payload: ``webhook`` POSTs the alert as JSON
(title, text, severity, source, owner, details), ``slack`` POSTs Slack's
incoming-webhook shape ``{"text": …}``. The URL and headers may sit on the
alert or on a named provider (``providers: {oncall: {type: webhook, url: …}}``);
the alert's own values win.

URLs and header values are often secrets (``${env.SLACK_WEBHOOK_URL}``): they
are never written to outputs (state). ``send`` takes them from this run's
resolved spec and provider config.

A webhook has no server-side object mlx could read back, so ``create`` keeps
the channel's non-secret settings under ``.mlx/channels/`` and ``read()``
compares that record: a channel whose record was removed or edited outside mlx
is reported as drift and rewritten by the next apply (as the ``file`` channel does).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from providers.channels import ChannelRecords
from providers.contract import (
    AlertMessage,
    Change,
    Desired,
    Notifier,
    Observed,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Result,
)
from specs.providers import WebhookProviderConfig

_FORMATS = ("webhook", "slack")


class WebhookProvider(Provider, Notifier):
    sections = frozenset({"alerts"})
    config_model = WebhookProviderConfig
    type_name = "webhook"

    # -- settings: the alert's own values over the provider's -----------------------------
    def _url(self, spec: Any) -> str | None:
        url = spec.get("url") or self.settings.url
        return str(url) if isinstance(url, str) and url else None

    def _headers(self, spec: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "mlx-alerts"}
        headers.update(self.settings.headers)
        headers.update(spec.get("headers") or {})
        return headers

    def _timeout(self, spec: Any) -> float:
        return float(spec.get("timeout_s") or self.settings.timeout_s)

    def _config(self, desired: Desired) -> dict[str, Any]:
        """The channel's settings without secrets: what state and the registration hold."""
        spec = desired.spec
        url = urlsplit(self._url(spec) or "")
        return {
            "format": spec.get("type"),
            "endpoint": f"{url.scheme}://{url.hostname}" + (f":{url.port}" if url.port else ""),
            "header_names": sorted(k for k in self._headers(spec) if k != "User-Agent"),
            "timeout_s": self._timeout(spec),
            "severity": spec.get("severity"),
            "owner": spec.get("owner"),
            "channel": spec.get("channel"),
        }

    # -- planning ---------------------------------------------------------------------
    def plan_inputs(self) -> list[str] | None:
        return []  # planning a channel looks at nothing but its spec and provider config

    def check(self, desired: Desired) -> list[Problem]:
        kind = desired.spec.get("type")
        if kind not in _FORMATS:
            return [Problem(("type",), f"the {self.type_name} provider serves webhook and slack")]
        url = self._url(desired.spec)
        if url is None:
            return [
                Problem(
                    ("url",),
                    "no URL: set `url:` on the alert or on the provider it names",
                )
            ]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # never echo the URL: it is usually a secret
            return [Problem(("url",), "the webhook URL must be an http:// or https:// URL")]
        return []

    # -- applying ---------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        return self._register(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        return self._register(desired)

    def delete(self, prior: Prior) -> None:
        self._records().delete(prior.name)

    def read(self, prior: Prior) -> Observed | None:
        config = self._records().read(prior.name)
        return None if config is None else Observed({**prior.outputs, "config": config})

    def _records(self) -> ChannelRecords:
        return ChannelRecords(self.context.data_dir / "channels")

    def _register(self, desired: Desired) -> Result:
        config = self._config(desired)
        self._records().write(desired.name, config)
        return Result({"channel_id": f"{config['format']}:{desired.name}", "config": config})

    # -- alerts -------------------------------------------------------------------------
    def send(self, channel: Prior, message: AlertMessage) -> None:
        # state holds no secrets: take the URL from this run's resolved spec when there is one
        peers = self.context.peers
        spec = (peers.spec(channel.address) if peers else None) or channel.attributes
        url = self._url(spec)
        if url is None or urlsplit(url).scheme not in ("http", "https"):
            raise ProviderError(
                f"{channel.address}: the webhook URL is not available in this run "
                "(is the channel still declared, and its ${env.…} variable set?)"
            )
        payload = self.payload(str(spec.get("type") or self.type_name), channel, spec, message)
        post_json(url, payload, self._headers(spec), self._timeout(spec), channel.address)

    @staticmethod
    def payload(kind: str, channel: Prior, spec: Any, message: AlertMessage) -> dict[str, Any]:
        if kind == "slack":
            facts = " · ".join(
                f"{label}: {value}"
                for label, value in (("source", message.source), ("owner", message.owner))
                if value
            )
            lines = [f"*[{message.severity.upper()}] {message.title}*", message.text, facts]
            body: dict[str, Any] = {"text": "\n".join(line for line in lines if line)}
            if spec.get("channel"):
                body["channel"] = spec["channel"]
            return body
        return message.record(channel.address)


class SlackProvider(WebhookProvider):
    """``type: slack``: the same channels; a provider config holding a Slack webhook URL."""

    type_name = "slack"


def post_json(
    url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float, who: str
) -> None:
    """POST ``payload``; any failure is a ``ProviderError`` that names the host, not the URL."""
    parts = urlsplit(url)
    host = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    data = json.dumps(payload, sort_keys=True, default=str).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        raise ProviderError(
            f"{who}: the webhook at {host} answered HTTP {exc.code}"
            + (f": {detail}" if detail else "")
        ) from exc
    except TimeoutError as exc:
        raise ProviderError(f"{who}: {_too_slow(host, timeout)}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ProviderError(f"{who}: {_too_slow(host, timeout)}") from exc
        raise ProviderError(f"{who}: cannot reach the webhook at {host}: {exc.reason}") from exc
    except OSError as exc:
        raise ProviderError(f"{who}: cannot reach the webhook at {host}: {exc}") from exc


def _too_slow(host: str, timeout: float) -> str:
    return f"the webhook at {host} did not answer within {timeout:g}s (timeout_s)"
