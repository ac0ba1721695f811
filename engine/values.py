"""Value markers that flow through resolution, hashing and rendering."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any


class Unknown:
    """A value only known after apply (a registry version number)."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN = Unknown()


@dataclass(frozen=True, slots=True)
class Secret:
    """A sensitive value (``${env.X}``): never printed, never stored in clear."""

    value: Any

    def __repr__(self) -> str:
        return "(sensitive)"

    def __str__(self) -> str:
        return "(sensitive)"

    def digest(self, salt: str) -> str:
        """A keyed digest that tells a changed secret from an unchanged one."""
        mac = hmac.new(salt.encode(), json.dumps(self.value).encode(), hashlib.sha256)
        return "hmac-sha256:" + mac.hexdigest()[:32]


def contains(value: Any, marker: type) -> bool:
    if isinstance(value, marker):
        return True
    if isinstance(value, dict):
        return any(contains(v, marker) for v in value.values())
    if isinstance(value, list):
        return any(contains(v, marker) for v in value)
    return False


def secret_paths(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where secrets sit in a resolved body (dict keys and list indexes)."""
    if isinstance(value, Secret):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in secret_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in secret_paths(v, (*path, i))]
    return []


def path_allowed(path: tuple[str | int, ...], patterns: tuple[str, ...]) -> bool:
    """Whether a dotted ``pattern`` (``*`` = any one key or index) covers ``path``."""
    for pattern in patterns:
        parts = pattern.split(".")
        if len(parts) != len(path):
            continue
        if all(want == "*" or want == str(got) for want, got in zip(parts, path, strict=True)):
            return True
    return False


def redact(value: Any, salt: str | None = None) -> Any:
    """JSON-safe copy: secrets become their digest (or a placeholder), unknowns a marker."""
    if isinstance(value, Secret):
        return {"$sensitive": value.digest(salt) if salt else True}
    if isinstance(value, Unknown):
        return {"$unknown": True}
    if isinstance(value, dict):
        return {k: redact(v, salt) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, salt) for v in value]
    return value


def reveal(value: Any) -> Any:
    """The plain value, secrets opened: only for handing to a provider."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value
