"""An endpoint's spec into the route document's settings: log, cache, client, prices, limits.

The spec a provider receives holds what the user wrote (no defaults filled), so each block is
validated by its spec model here, defaults included. ``client.api_key`` is never written:
the document holds no secret. It holds the key's *reference* instead (``dataplane.route.KeyRef``):
``{"env": NAME}`` where the spec writes ``${env.NAME}``, which each ``mlx serve`` replica
reads from its own environment; ``{"spec": true}`` where the spec writes it another way;
null where it declares none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from common.durations import DurationError, parse_duration

#: The keys of the document these functions fill (a metadata-only change rewrites them).
SETTING_KEYS = ("log", "cache", "client", "pricing", "timeout_s", "max_body_bytes")
#: What of the upstream client the gateway needs: never ``api_key`` (its reference is added).
_CLIENT_KEYS = ("type", "base_url", "timeout_s", "backoff_s", "model", "params")
#: Where a replica finds the upstream key: written by this release on, absent from documents
#: written before (``ClientDoc.key_written``); how the spec writes the key, not drift.
_KEY_REF = "api_key"
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


def key_ref(declared: Any, env_name: str | None) -> dict[str, Any] | None:
    """The reference the document holds for a ``client.api_key`` the spec declares as
    ``declared`` (opened), written as exactly ``${env.env_name}`` when ``env_name`` is given."""
    if env_name:
        return {"env": env_name}
    if declared is None or declared == "":
        return None
    return {"spec": True}


def settings(spec: Mapping[str, Any], env_refs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The document's settings for an endpoint ``spec`` (``SettingsError`` if a block is bad);
    ``env_refs``: ``Desired.env_refs``, where the key's reference comes from."""
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
        env_name = (env_refs or {}).get("client.api_key")
        client[_KEY_REF] = key_ref(client_spec.get("api_key"), env_name)
    pricing_spec = spec.get("pricing") or {}
    if not isinstance(pricing_spec, Mapping):
        raise SettingsError("pricing: expected a mapping of model name to prices", ("pricing",))
    pricing = {
        str(name): _validated(Price, price, f"pricing.{name}").model_dump(exclude_none=True)
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
    wanted = {**wanted, "client": _without_key_ref(wanted["client"])}
    return [key for key in SETTING_KEYS if live.get(key) != wanted[key]]


def _client_with_defaults(client: Any) -> Any:
    """A document's client with the keys added since it was written at their defaults, and
    without the key's reference (``spec`` here is the recorded one, whose key is redacted: it
    cannot say how the key was written)."""
    if not isinstance(client, Mapping):
        return client
    from specs.endpoints import EndpointClient

    fields = EndpointClient.model_fields
    return _without_key_ref({**{k: fields[k].default for k in _CLIENT_ADDED}, **client})


def _without_key_ref(client: Any) -> Any:
    if not isinstance(client, Mapping):
        return client
    return {k: v for k, v in client.items() if k != _KEY_REF}
