"""boto3 clients and errors shared by the AWS providers.

Credentials and region come from boto3's usual chain (env, profile, instance
role); ``endpoint_url`` points at an S3/SNS-compatible server (MinIO, moto).
boto3 is imported here, inside functions: ``mlx --help`` never loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from contract import ProviderError

_lock = threading.Lock()

#: Attempts per request, the first included, unless ``AWS_MAX_ATTEMPTS`` (or ``max_attempts``
#: in the profile) says otherwise. botocore's ``standard`` mode — unless ``AWS_RETRY_MODE``
#: picks another — retries refused, dropped and timed-out connections, HTTP 429, 500, 502,
#: 503, 504 and throttling errors, waiting a random 0-1 s, then 0-2 s: a few seconds at most.
ATTEMPTS = 3
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60


def make_client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
) -> Any:
    """A boto3 client with bounded retries and timeouts (a hung endpoint must not hang mlx)."""
    import boto3
    import botocore.session
    from botocore.config import Config

    # sessions read shared config files: not thread-safe to create concurrently
    with _lock:
        core = botocore.session.Session(profile=profile)
        return boto3.Session(botocore_session=core).client(
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                retries=retry_config(core),
            ),
        )


def retry_config(core: Any) -> dict[str, Any]:
    """mlx's retry defaults, for what the environment and the profile leave unset."""
    configured = ("env", "config")
    retries: dict[str, Any] = {}
    if core.get_config_variable("retry_mode", methods=configured) is None:
        retries["mode"] = "standard"
    if core.get_config_variable("max_attempts", methods=configured) is None:
        retries["total_max_attempts"] = ATTEMPTS
    return retries


def settings(*layers: Mapping[str, Any]) -> dict[str, str | None]:
    """``region``/``endpoint_url``/``profile``: the first layer that sets each one wins."""
    out: dict[str, str | None] = {}
    for key in ("region", "endpoint_url", "profile"):
        out[key] = next((str(layer[key]) for layer in layers if layer.get(key)), None)
    return out


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def status_code(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def aws_error(exc: BaseException, what: str) -> ProviderError:
    """A ``ProviderError`` a user can act on, from any botocore failure."""
    from botocore.exceptions import (
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )

    if isinstance(exc, NoCredentialsError):
        hint = "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/SECRET)"
    elif isinstance(exc, NoRegionError):
        hint = "no AWS region set (set `region:` on the provider or AWS_DEFAULT_REGION)"
    elif isinstance(exc, ProfileNotFound):
        hint = str(exc)
    elif isinstance(exc, (ConnectionError, HTTPClientError)):
        hint = _unreachable(exc)  # refused, dropped or timed out, after botocore's retries
    elif (status_code(exc) or 0) >= 500 or status_code(exc) == 429:
        tries = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("RetryAttempts")
        hint = f"cannot reach the endpoint: it answered HTTP {status_code(exc)}" + (
            f" ({int(tries) + 1} attempts)" if isinstance(tries, int) else ""
        )
    elif error_code(exc):
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        hint = f"{error_code(exc)}{': ' + message if message else ''}"
    else:
        hint = str(exc)
    return ProviderError(f"{what}: {hint}")


def _unreachable(exc: BaseException) -> str:
    from urllib.parse import urlsplit

    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    url = str((getattr(exc, "kwargs", None) or {}).get("endpoint_url") or "")
    parts = urlsplit(url)
    where = f" {parts.scheme}://{parts.netloc}" if parts.netloc else ""
    if isinstance(exc, ReadTimeoutError):
        why = f"no answer within {READ_TIMEOUT_S}s"
    elif isinstance(exc, ConnectTimeoutError):
        why = f"no connection within {CONNECT_TIMEOUT_S}s"
    elif isinstance(exc, ConnectionClosedError):
        why = "the connection was dropped"
    elif isinstance(exc, EndpointConnectionError):
        why = "could not connect (is it running?)"
    else:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"cannot reach the endpoint{where}: {why}"
