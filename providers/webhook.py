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
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from contract import (
    AlertMessage,
    Change,
    DeliveryError,
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
from specs.providers import WebhookProviderConfig

_FORMATS = ("webhook", "slack")


class WebhookProvider(Provider, Notifier):
    sections = frozenset({"alerts"})
    config_model = WebhookProviderConfig
    type_name = "webhook"
    #: a webhook URL usually carries its token; headers carry API keys
    secret_fields = {"alerts": ("url", "headers.*")}

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
        headers = self._headers(spec)
        # a message with an idempotency key comes from the outbox, which retries on later
        # runs: one attempt here, and the receiver can drop a repeat by the key
        attempts = ATTEMPTS
        if message.idempotency_key:
            headers["Idempotency-Key"] = message.idempotency_key
            attempts = 1
        post_json(url, payload, headers, self._timeout(spec), channel.address, attempts=attempts)

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
            if message.investigate:
                body["text"] += f"\nInvestigate: `{message.investigate}`"
            if spec.get("channel"):
                body["channel"] = spec["channel"]
            return body
        return alertmanager_v4(channel.address, message)


#: Alertmanager's "no end time yet" (Go's zero time), what its webhook sends while firing
_ZERO_TIME = "0001-01-01T00:00:00Z"


def alertmanager_v4(receiver: str, message: AlertMessage) -> dict[str, Any]:
    """Alertmanager's version-4 webhook payload for one alert, plus mlx's fields (``title``,
    ``text``, ``source``, ``owner``, ``details``, ``alert``: the lineage) at the top level."""
    import hashlib

    key = message.key or f"{message.source or receiver}/{message.title}"
    labels = dict(message.labels) or {
        "alertname": message.title,
        "severity": message.severity,
        **({"resource": message.source} if message.source else {}),
        **({"owner": message.owner} if message.owner else {}),
    }
    annotations = {"summary": message.title, "description": message.text}
    if message.investigate:
        annotations["investigate"] = message.investigate
    alert = {
        "status": message.status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(message.starts_at) or message.record(receiver)["at"],
        "endsAt": iso(message.ends_at) or _ZERO_TIME,
        "generatorURL": "",
        "fingerprint": hashlib.sha256(key.encode()).hexdigest()[:16],
    }
    return {
        **message.record(receiver),
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
        "status": message.status,
        "receiver": receiver,
        "groupLabels": {"alertname": labels.get("alertname", message.title)},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [alert],
    }


class SlackProvider(WebhookProvider):
    """``type: slack``: the same channels; a provider config holding a Slack webhook URL."""

    type_name = "slack"


#: Attempts per alert, the first included. Between them: 0 s, then 0.5 s, 1 s, … — or what a
#: 429/503's ``Retry-After`` asks, up to ``RETRY_AFTER_MAX_S``. Only refused, dropped and
#: timed-out connections and these statuses are retried; any other 4xx fails at once.
ATTEMPTS = 4
BACKOFF_S = 0.5
RETRY_AFTER_MAX_S = 10.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def post_json(
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
    who: str,
    *,
    attempts: int = ATTEMPTS,
    what: str = "the webhook",
) -> None:
    """POST ``payload``, retrying transient failures up to ``attempts`` times; a failure is
    a ``DeliveryError`` (retryable or not, with a 429/503's ``Retry-After``) that names the
    host, never the URL (which usually holds the token)."""
    import urllib3

    parts = urlsplit(url)
    host = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    data = json.dumps(payload, sort_keys=True, default=str).encode()
    retry = _retry(attempts)
    pool = urllib3.PoolManager(
        retries=retry, timeout=urllib3.Timeout(connect=timeout, read=timeout)
    )
    try:
        response = pool.request("POST", url, body=data, headers=headers, redirect=False)
    except urllib3.exceptions.MaxRetryError as exc:
        why = _unreachable(host, exc.reason, timeout, attempts, what)
        raise DeliveryError(f"{who}: {why}", retryable=True) from exc
    except urllib3.exceptions.HTTPError as exc:
        why = _unreachable(host, exc, timeout, attempts, what)
        raise DeliveryError(f"{who}: {why}", retryable=True) from exc
    finally:
        pool.clear()
    if response.status >= 300:
        detail = response.data[:300].decode("utf-8", "replace").strip().splitlines()
        tries = len(response.retries.history) + 1 if response.retries else 1
        after = f" ({tries} attempts)" if tries > 1 else ""
        wait = response.headers.get("Retry-After")
        retry_after: float | None = None
        if wait:
            try:
                # in full (the in-run wait is capped): the outbox waits as long as asked
                retry_after = float(urllib3.util.Retry.parse_retry_after(retry, wait))
            except Exception:  # an unreadable Retry-After: the outbox's own backoff
                retry_after = None
        raise DeliveryError(
            f"{who}: {what} at {host} answered HTTP {response.status}{after}"
            + (f": {detail[0]}" if detail else ""),
            retryable=response.status == 429 or response.status >= 500,
            retry_after=retry_after,
        )


class _HidePaths(logging.Filter):
    """urllib3 logs requests and retries with their path, which holds a webhook's token."""

    _PATH = re.compile(r"(?<![\w:/])/[^\s'\")]+")

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._PATH.sub("/…", record.getMessage())
        record.args = ()
        return True


_hide_paths = _HidePaths()
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager")


def _retry(attempts: int = ATTEMPTS) -> Any:
    from urllib3.util import Retry

    for name in _URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if _hide_paths not in logger.filters:
            logger.addFilter(_hide_paths)

    class CappedRetry(Retry):
        """urllib3's Retry, with Retry-After capped (urllib3 < 2.7 has no retry_after_max)."""

        def parse_retry_after(self, retry_after: str) -> float:
            return min(super().parse_retry_after(retry_after), RETRY_AFTER_MAX_S)

    return CappedRetry(
        total=attempts - 1,
        redirect=0,
        allowed_methods=None,  # POST too: a duplicate alert beats a lost one
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_S,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def _unreachable(
    host: str,
    reason: BaseException | None,
    timeout: float,
    tries: int = ATTEMPTS,
    what: str = "the webhook",
) -> str:
    from urllib3.exceptions import NewConnectionError, ProtocolError, TimeoutError

    attempts = f"{tries} attempts" if tries > 1 else "1 attempt"
    if isinstance(reason, NewConnectionError):  # before TimeoutError: it subclasses it
        why = str(reason).rsplit(": ", 1)[-1]
        return f"cannot reach {what} at {host}: {why} ({attempts})"
    if isinstance(reason, TimeoutError):
        return f"{what} at {host} did not answer within {timeout:g}s (timeout_s; {attempts})"
    if isinstance(reason, ProtocolError):
        return f"cannot reach {what} at {host}: the connection was dropped ({attempts})"
    return f"cannot reach {what} at {host}: {type(reason).__name__} ({attempts})"
