"""An endpoint's spec into the route document's settings: log, cache, client, prices, limits.

The spec a provider receives holds what the user wrote (no defaults filled), so each block is
validated by its spec model here, defaults included. ``client.api_key`` is dropped before
anything else: the document holds no secret (each ``mlx serve`` replica resolves the key
from its own environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from common.durations import DurationError, parse_duration

#: The keys of the document these functions fill (a metadata-only change rewrites them).
SETTING_KEYS = ("log", "cache", "client", "pricing", "timeout_s", "max_body_bytes")
#: What of the upstream client the gateway needs: never ``api_key``.
_CLIENT_KEYS = ("type", "base_url", "timeout_s", "backoff_s", "model", "params")
#: Client keys added since the first documents were written: a document without one reads as
#: its default (the gateway's too), so it is not reported as changed outside mlx.
_CLIENT_ADDED = ("max_response_bytes",)


class SettingsError(ValueError):
    """A block of the endpoint spec is invalid; the message is one line naming the field."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.path = path


def duration_s(text: str) -> float:
    """Seconds in a spec ``Duration`` (``common.durations``: ``500ms``, ``10m``, ``1h30m``)."""
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise SettingsError(f"cache.ttl: {exc}", ("cache", "ttl")) from None


def _validated(model: Any, value: Any, where: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in (*where.split('.'), *err['loc']))}: {err['msg']}"
            for err in errors
        )
        first = (*where.split("."), *errors[0]["loc"]) if errors else tuple(where.split("."))
        raise SettingsError(problems, first) from None


def settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The document's settings for an endpoint ``spec`` (``SettingsError`` if a block is bad)."""
    from specs.endpoints import Endpoint, EndpointCache, EndpointClient, EndpointLog
    from specs.evals import Price

    log = _validated(EndpointLog, spec.get("log") or {}, "log")
    cache_spec = spec.get("cache")
    cache = None
    if cache_spec:
        ttl = _validated(EndpointCache, cache_spec, "cache").ttl
        cache = {"ttl_s": duration_s(ttl)}
    client_spec = spec.get("client")
    client = None
    if client_spec:
        if not isinstance(client_spec, Mapping):
            raise SettingsError("client: expected a mapping (type, base_url, …)", ("client",))
        public = {k: v for k, v in client_spec.items() if k != "api_key"}
        model = _validated(EndpointClient, public, "client")
        client = {key: getattr(model, key) for key in (*_CLIENT_KEYS, *_CLIENT_ADDED)}
        client["params"] = dict(client["params"])
    pricing_spec = spec.get("pricing") or {}
    if not isinstance(pricing_spec, Mapping):
        raise SettingsError("pricing: expected a mapping of model name to prices", ("pricing",))
    pricing = {
        str(name): _validated(Price, price, f"pricing.{name}").model_dump()
        for name, price in sorted(pricing_spec.items())
    }
    fields = Endpoint.model_fields
    return {
        "log": {"payloads": float(log.payloads)},
        "cache": cache,
        "client": client,
        "pricing": pricing,
        "timeout_s": _positive(spec, "timeout_s", fields["timeout_s"].default, float),
        "max_body_bytes": _positive(spec, "max_body_bytes", fields["max_body_bytes"].default, int),
    }


def _positive(spec: Mapping[str, Any], key: str, default: Any, kind: type) -> Any:
    value = spec.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise SettingsError(f"{key}: must be a number > 0, not {value!r}", (key,))
    if kind is int and int(value) != value:
        raise SettingsError(f"{key}: must be a whole number of bytes, not {value!r}", (key,))
    return kind(value)


def of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a route document holds now."""
    return {key: doc.get(key) for key in SETTING_KEYS}


def edited(live: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """Which settings of ``live`` differ from those ``spec`` asks for ([] if ``spec`` is bad)."""
    try:
        wanted = settings(spec)
    except SettingsError:
        return []
    live = {**live, "client": _client_with_defaults(live.get("client"))}
    return [key for key in SETTING_KEYS if live.get(key) != wanted[key]]


def _client_with_defaults(client: Any) -> Any:
    """A document's client with the keys added since it was written at their defaults."""
    if not isinstance(client, Mapping):
        return client
    from specs.endpoints import EndpointClient

    fields = EndpointClient.model_fields
    return {**{k: fields[k].default for k in _CLIENT_ADDED}, **client}
