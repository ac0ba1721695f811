"""Who may call the gateway: loopback binds, and bearer tokens for everything else.

``mlx serve`` binds 127.0.0.1 by default. Any other address (``0.0.0.0``, a LAN address)
needs a bearer token, from ``MLX_GATEWAY_TOKEN`` or the spec's ``mlx.gateway.token`` (which
must be a ``${env.NAME}`` secret); without one the command refuses to start. With a token,
every route but ``/healthz`` needs ``Authorization: Bearer <token>``; a missing or wrong one
gets 401 and nothing is logged as served.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

TOKEN_ENV = "MLX_GATEWAY_TOKEN"
_ENV_REF = re.compile(r"^\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}$")


class AuthConfigError(ValueError):
    """The token setting cannot be used; one line."""


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def configured_token(environ: Mapping[str, str], setting: Any) -> str | None:
    """The token from ``MLX_GATEWAY_TOKEN``, else from ``mlx.gateway.token`` (``${env.NAME}``)."""
    token = environ.get(TOKEN_ENV)
    if token:
        return token
    if setting is None:
        return None
    m = _ENV_REF.match(str(setting))
    if m is None:
        raise AuthConfigError(
            "mlx.gateway.token must be a secret reference like ${env.MLX_TOKEN}, not a literal"
        )
    value = environ.get(m.group(1))
    if not value:
        raise AuthConfigError(
            f"mlx.gateway.token is ${{env.{m.group(1)}}}, but {m.group(1)} is not set: export it"
        )
    return value


class Bearer:
    """Checks ``Authorization`` headers against one token (constant-time comparison)."""

    def __init__(self, token: str | None):
        self._expected = token.encode() if token else None

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def allows(self, header: str | None) -> bool:
        if self._expected is None:
            return True
        if header is None:
            return False
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), self._expected)
