"""The response cache: an unchanged case is not paid for twice.

Key: SHA-256 of the prompt's fingerprint (template and system text), the
case's vars, the model, the params and the endpoint. One JSON file per answer
under ``<spec dir>/.mlx/cache/llm/``; written atomically, so concurrent cases
and interrupted runs never leave a half-written entry. Only successful
answers are stored. With ``temperature > 0`` a cached answer is one sample:
set ``cache: false`` on the gate to draw fresh ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from providers.gates.llm.client import Reply


def cache_key(
    prompt_fingerprint: str,
    variables: Mapping[str, Any],
    model: str | None,
    params: Mapping[str, Any],
    endpoint: str,
) -> str:
    doc = {
        "prompt": prompt_fingerprint,
        "vars": variables,
        "model": model,
        "params": params,
        "endpoint": endpoint,
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Reply | None:
        try:
            data = json.loads(self._path(key).read_text())
            return Reply(**{k: data[k] for k in Reply.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError):
            return None

    def put(self, key: str, reply: Reply) -> None:
        path = self._path(key)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(asdict(reply)))
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache that cannot write only costs money
