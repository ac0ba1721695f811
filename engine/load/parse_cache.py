"""On-disk cache of compiled spec files, keyed by file content and mlx's own code.

A warm no-op plan then reads JSON instead of parsing YAML and re-validating
(see DESIGN.md: parsing dominates). The key includes a fingerprint of the code
that produces the entry, so upgrading mlx (or editing it) never serves a
stale entry. Writing is best-effort: a read-only spec dir simply isn't cached.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import engine

_CODE_FILES = (
    "specs",
    "common",
    "engine/load/validate_file.py",
    "engine/load/yaml_parse.py",
    "engine/load/limits.py",
    "engine/load/references.py",
    "engine/plan/hashes.py",
    "engine/values.py",
)


@cache
def code_fingerprint() -> str:
    """Changes whenever the code that builds cache entries changes."""
    base = Path(engine.__file__).resolve().parent.parent
    h = hashlib.sha256(engine.__version__.encode())
    for name in _CODE_FILES:
        p = base / name
        files = sorted(p.glob("*.py")) if p.is_dir() else [p]
        for f in files:
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


class ParseCache:
    """``variant`` joins the key: what else decides an entry (the spec limits in force)."""

    def __init__(self, directory: Path | None, variant: str = ""):
        self.directory = directory
        self.variant = variant

    def _path(self, key: str) -> Path | None:
        if self.directory is None:
            return None
        code = code_fingerprint()
        if self.variant:
            code = hashlib.sha256(f"{code}:{self.variant}".encode()).hexdigest()[:16]
        return self.directory / f"{key}-{code}.json"

    def get(self, key: str) -> Any | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            return json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: Any) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(value, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass
