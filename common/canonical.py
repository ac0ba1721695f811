"""Canonical JSON and its digest: what spec hashes (``engine.plan.hashes``) and the read
models' short digests of long outputs are made of. Pure; keys sorted, no spaces, UTF-8."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()
