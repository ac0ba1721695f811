"""SageMaker names for mlx's endpoints, configs, models and variants.

SageMaker names (endpoint, endpoint config, model, production variant) match
``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``: letters, digits and hyphens, at most 63
characters, no leading or trailing hyphen. mlx names allow underscores and
are up to 63 characters before any prefix, so names are *fitted*: underscores
become hyphens and a name too long keeps its start plus an 8-hex digest of the
whole, so two long names never collide. Every name is a pure function of its
inputs: a re-run after an interruption finds what the first run made.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

MAX_LEN = 63
NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9-]+")
_HEX = re.compile(r"[^0-9a-f]")
#: The suffix of an endpoint config name: ``-c`` and an 8-hex digest of its variants.
CONFIG_SUFFIX_LEN = 10


def digest8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def sanitize(text: str) -> str:
    """Letters, digits and single hyphens, no hyphen at either end."""
    cleaned = _NOT_ALLOWED.sub("-", text)
    return re.sub(r"-{2,}", "-", cleaned).strip("-")


def fit(base: str, suffix: str = "") -> str:
    """``base + suffix`` within 63 characters: a long base is cut and gets a digest."""
    base = sanitize(base)
    if len(base) + len(suffix) <= MAX_LEN:
        return base + suffix
    keep = MAX_LEN - len(suffix) - 9
    return f"{base[:keep].rstrip('-')}-{digest8(base)}{suffix}"


def endpoint_name(name_prefix: str, name: str) -> str:
    """``mlx-fraud`` for ``endpoints.fraud`` (``name_prefix`` + the mlx name)."""
    return fit(name_prefix + name)


def config_base(endpoint: str) -> str:
    """What every endpoint config of ``endpoint`` starts with (before ``-c<digest>``)."""
    return fit(endpoint, "x" * CONFIG_SUFFIX_LEN)[:-CONFIG_SUFFIX_LEN]


def config_name(endpoint: str, variants: list[dict[str, Any]]) -> str:
    """One endpoint config per set of variants (model, weight, capacity): same set, same name."""
    key = "|".join(
        f"{v['VariantName']}={v['ModelName']}:{v['InitialVariantWeight']}:"
        f"{v['InstanceType']}:{v['InitialInstanceCount']}"
        for v in sorted(variants, key=lambda v: str(v["VariantName"]))
    )
    return f"{config_base(endpoint)}-c{digest8(key)}"


def config_pattern(endpoint: str) -> re.Pattern[str]:
    """Matches the names ``config_name`` gives ``endpoint``'s configs, and no other endpoint's."""
    return re.compile(rf"^{re.escape(config_base(endpoint))}-c[0-9a-f]{{8}}$")


def short_fingerprint(fingerprint: str) -> str:
    """8 hex characters of a ``sha256:…``/``etag:…`` fingerprint (its own, when it has them)."""
    own = _HEX.sub("", fingerprint.split(":", 1)[-1].lower())
    return own[:8] if len(own) >= 8 else digest8(fingerprint)


def version_part(version: Any) -> str:
    """``v3`` for version 3; an S3 version id is sanitized and cut to 20 characters."""
    return "v" + (sanitize(str(version))[:20].rstrip("-") or digest8(str(version)))


def model_name(endpoint: str, version: Any, fingerprint: str) -> str:
    """``mlx-fraud-v3-1a2b3c4d``: one SageMaker model per (endpoint, version, content)."""
    return fit(endpoint, f"-{version_part(version)}-{short_fingerprint(fingerprint)}")


def variant_name(version: Any, taken: dict[str, str], model: str) -> str:
    """``v<version>``, unless that name serves another model on the endpoint already.

    ``taken`` maps the endpoint's variant names to their model names.
    """
    name = fit("v" + str(version))
    if taken.get(name, model) == model:
        return name
    return fit(name, f"-{digest8(model)}")


def valid(name: str) -> bool:
    return bool(NAME_RE.match(name))


def fingerprint_token(fingerprint: str) -> str:
    """A fingerprint as one S3 key segment: ``sha256:ab…`` -> ``sha256-ab…``."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", fingerprint)
