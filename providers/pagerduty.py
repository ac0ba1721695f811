"""PagerDuty alert channels (``type: pagerduty``): Events API v2.

An alert that starts firing (or repeats) is an ``event_action: trigger``, its resolution a
``resolve``; ``dedup_key`` is the alert key (``resource@version/signal``), so PagerDuty
keeps one incident per alert and the resolve closes it. ``routing_key`` (the integration
key) is a secret: write it as ``${env.X}``; it never reaches state. ``url`` (default
``https://events.pagerduty.com``) lets tests point at a local server. PagerDuty asks to
retry only on 429 and 5xx: any other answer is final (``DeliveryError.retryable``).

Like a webhook there is nothing to read back: the channel's non-secret settings are kept
under ``.mlx/channels/`` and compared by ``read()``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from contract import (
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
    iso,
)
from providers.channels import ChannelRecords
from providers.webhook import ATTEMPTS, post_json

DEFAULT_URL = "https://events.pagerduty.com"
SUMMARY_MAX = 1024  # PagerDuty truncates (or refuses) longer summaries
#: mlx's severities → PagerDuty's (critical, error, warning, info)
SEVERITY = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}


class PagerDutyProvider(Provider, Notifier):
    sections = frozenset({"alerts"})
    type_name = "pagerduty"
    secret_fields = {"alerts": ("routing_key",)}

    def _url(self, spec: Any) -> str:
        base = str(spec.get("url") or self.config.get("url") or DEFAULT_URL).rstrip("/")
        return f"{base}/v2/enqueue"

    def _timeout(self, spec: Any) -> float:
        return float(spec.get("timeout_s") or self.config.get("timeout_s") or 10.0)

    def _records(self) -> ChannelRecords:
        return ChannelRecords(self.context.data_dir / "channels")

    def plan_inputs(self) -> list[str] | None:
        return []

    def check(self, desired: Desired) -> list[Problem]:
        spec = desired.spec
        if spec.get("type") != "pagerduty":
            return [Problem(("type",), "the pagerduty provider only serves `type: pagerduty`")]
        if not spec.get("routing_key"):
            return [Problem(("routing_key",), "set `routing_key: ${env.PAGERDUTY_ROUTING_KEY}`")]
        parts = urlsplit(self._url(spec))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return [Problem(("url",), "the Events API URL must be an http:// or https:// URL")]
        return []

    def _config(self, desired: Desired) -> dict[str, Any]:
        parts = urlsplit(self._url(desired.spec))
        return {
            "format": "pagerduty",
            "endpoint": f"{parts.scheme}://{parts.netloc}",
            "timeout_s": self._timeout(desired.spec),
            "severity": desired.spec.get("severity"),
            "owner": desired.spec.get("owner"),
        }

    def create(self, desired: Desired) -> Result:
        return self._register(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        return self._register(desired)

    def _register(self, desired: Desired) -> Result:
        config = self._config(desired)
        self._records().write(desired.name, config)
        return Result({"channel_id": f"pagerduty:{desired.name}", "config": config})

    def delete(self, prior: Prior) -> None:
        self._records().delete(prior.name)

    def read(self, prior: Prior) -> Observed | None:
        config = self._records().read(prior.name)
        return None if config is None else Observed({**prior.outputs, "config": config})

    def send(self, channel: Prior, message: AlertMessage) -> None:
        peers = self.context.peers
        spec = (peers.spec(channel.address) if peers else None) or channel.attributes
        if not spec.get("routing_key"):
            raise ProviderError(
                f"{channel.address}: the routing key is not available in this run "
                "(is its ${env.…} variable set?)"
            )
        # from the outbox (an idempotency key): one attempt, the outbox retries later
        attempts = 1 if message.idempotency_key else ATTEMPTS
        post_json(
            self._url(spec),
            event(str(spec["routing_key"]), channel.address, message),
            {"Content-Type": "application/json", "User-Agent": "mlx-alerts"},
            self._timeout(spec),
            channel.address,
            attempts=attempts,
            what="PagerDuty",
        )


def event(routing_key: str, channel: str, message: AlertMessage) -> dict[str, Any]:
    """The Events API v2 body of ``message``."""
    dedup_key = message.key or f"{message.source or channel}/{message.title}"
    if message.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    details: dict[str, Any] = {
        "text": message.text,
        "owner": message.owner,
        "investigate": message.investigate,
        "since": iso(message.starts_at),
        "labels": dict(message.labels),
        **dict(message.details),
    }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "mlx",
        "payload": {
            "summary": message.title[:SUMMARY_MAX],
            "source": message.source or channel,
            "severity": SEVERITY.get(message.severity, "warning"),
            "timestamp": iso(message.starts_at),
            "component": message.labels.get("resource") or message.source,
            "group": message.owner,
            "class": message.labels.get("signal"),
            "custom_details": {k: v for k, v in details.items() if v not in (None, {}, "")},
        },
    }
