"""Connecting to MLflow, and the few facts about its API the registries rely on.

* Versions come back as strings over REST and as ints serverless: ``as_int``.
* "Not found" is ``RESOURCE_DOES_NOT_EXIST``, but a missing alias is
  ``INVALID_PARAMETER_VALUE`` ("alias … not found"): ``is_not_found`` knows both.
* The client prints run URLs to stdout when a run ends (that would corrupt
  ``mlx plan --json``) and logs database migrations at INFO: both are silenced.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from contract import MissingExtra, ProviderError

#: How mlx calls a tracking server, unless these variables are set already. MLflow retries
#: (urllib3, every method) refused and dropped connections, read timeouts and HTTP 408, 429,
#: 500, 502, 503 and 504; its own defaults (7 retries, factor 2, Retry-After honoured without
#: a cap) keep a dead server busy for minutes. Here: 3 attempts, waits of 0 s then 2 s (+ up
#: to 0.5 s jitter), Retry-After not honoured, so a call fails within a few seconds.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def http_setting(name: str) -> str:
    """A retry setting as MLflow will read it (the environment, else mlx's default)."""
    return os.environ.get(name) or HTTP_DEFAULTS[name]


def import_mlflow() -> Any:
    """The ``mlflow`` module, or ``MissingExtra`` naming the extra to install."""
    try:
        import mlflow
    except ImportError as exc:
        raise MissingExtra("mlflow", "mlflow") from exc
    return mlflow


def resolve_uri(uri: str, root: Path) -> str:
    """``sqlite:///relative.db`` is relative to the spec dir, not to wherever mlx runs."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = Path(uri.removeprefix(prefix))
        if not path.is_absolute() and str(path) != ":memory:":
            return prefix + str((root / path).resolve())
    return uri


def is_serverless(uri: str) -> bool:
    """A database MLflow opens in this process (no server in between)."""
    return uri.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql", "mssql")


def connect(tracking_uri: str, registry_uri: str | None) -> Any:
    import_mlflow()
    # no telemetry from mlx's use of mlflow, and no run URLs printed on our stdout
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # MLflow's defaults retry a dead server for minutes per call: fail within seconds
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow import MlflowClient

    try:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
    except Exception as exc:
        raise ProviderError(f"cannot open the MLflow registry at {tracking_uri}: {exc}") from exc


def as_int(version: Any) -> int | None:
    if version is None or version == "":
        return None
    return int(version)


def error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", "") or "")


def is_not_found(exc: BaseException) -> bool:
    code = error_code(exc)
    if code == "RESOURCE_DOES_NOT_EXIST":
        return True
    return code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc).lower()


def is_mlflow_error(exc: BaseException) -> bool:
    try:
        from mlflow.exceptions import MlflowException
    except ImportError:
        return False
    return isinstance(exc, MlflowException)


def mlflow_error(exc: BaseException, what: str) -> ProviderError:
    """One line a user can act on; transport failures (after MLflow's retries) say so."""
    text = str(exc).strip()
    reason = unreachable(text)
    if reason is not None:
        return ProviderError(f"{what}: {reason}")
    message = text.splitlines()[0] if text else type(exc).__name__
    return ProviderError(f"{what}: {message}")


#: MLflow up to 3.17 raised urllib3's "too many 503 error responses" once its retries were
#: spent; 3.18 answers with the last response instead: "… failed with error code 503 != 200"
#: (only a status it retries — 429 and 5xx — is the server being unreachable).
_STATUS = re.compile(r"too many (\d{3}) error responses|failed with error code (429|5\d\d) != 200")


def unreachable(text: str) -> str | None:
    """Why a request got no usable answer, from MLflow's error text; ``None``: it did."""
    attempts = _attempts()
    if "NewConnectionError" in text or "Connection refused" in text:
        return "cannot reach the server (is it running?)"
    status = _STATUS.search(text)
    if status:
        code = status.group(1) or status.group(2)
        return f"cannot reach the server: it answered HTTP {code} {attempts}"
    if "timeout exception" in text or "Read timed out" in text:
        limit = http_setting("MLFLOW_HTTP_REQUEST_TIMEOUT")
        return (
            f"cannot reach the server: no answer within {limit}s {attempts} "
            "(MLFLOW_HTTP_REQUEST_TIMEOUT)"
        )
    if "Max retries exceeded" in text or "Connection aborted" in text:
        return f"cannot reach the server: the connection was dropped {attempts}"
    return None


def _attempts() -> str:
    try:
        n = int(http_setting("MLFLOW_HTTP_REQUEST_MAX_RETRIES")) + 1
    except ValueError:
        return ""
    return "(1 attempt)" if n == 1 else f"({n} attempts)"


def ignore_missing(call: Any, *args: Any) -> None:
    """Run a delete-like call; a thing already gone is fine."""
    try:
        call(*args)
    except Exception as exc:
        if not is_not_found(exc):
            raise
