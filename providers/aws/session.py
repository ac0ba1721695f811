"""boto3 clients and errors shared by the AWS providers.

Credentials and region come from boto3's usual chain (env, profile, instance
role); ``endpoint_url`` points at an S3/SNS-compatible server (MinIO, moto).
boto3 is imported here, inside functions: ``mlx --help`` never loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from providers.contract import ProviderError

_lock = threading.Lock()


def make_client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
) -> Any:
    """A boto3 client with bounded retries and timeouts (a hung endpoint must not hang mlx)."""
    import boto3
    from botocore.config import Config

    # boto3.Session() reads shared config files: not thread-safe to create concurrently
    with _lock:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        return session.client(
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=10,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )


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
        EndpointConnectionError,
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
    elif isinstance(exc, EndpointConnectionError):
        hint = f"cannot reach the endpoint: {exc}"
    elif error_code(exc):
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        hint = f"{error_code(exc)}{': ' + message if message else ''}"
    else:
        hint = str(exc)
    return ProviderError(f"{what}: {hint}")
