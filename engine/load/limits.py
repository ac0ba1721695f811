"""Bounds on what one spec file may make mlx do.

A plan runs on every pull request, so the spec is untrusted input: without these
a 1 KB "alias bomb" runs for minutes in gigabytes, and deep nesting overflows
Python's recursion. Kept apart from ``engine.load.yaml_parse`` so the loader can check a
file's size without importing the YAML parser (a warm plan never parses).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from common.diagnostics import Diagnostic, MlxError, Source

#: Environment variables that override each limit (see docs/spec.md, "Files and limits").
LIMIT_VARIABLES = {
    "file_bytes": "MLX_MAX_SPEC_FILE_BYTES",
    "depth": "MLX_MAX_SPEC_DEPTH",
    "aliases": "MLX_MAX_SPEC_ALIASES",
    "alias_nodes": "MLX_MAX_SPEC_ALIAS_NODES",
}


@dataclass(frozen=True)
class Limits:
    """Bounds on one spec file: a plan runs on every pull request, so the spec is untrusted.

    A legitimate 10,000-resource spec (bench/plan_scale.py: 6.6 MB in 30 files, depth 7,
    no aliases) is far inside all of them. ``aliases`` counts alias uses (``*name``);
    ``alias_nodes`` counts the nodes those uses repeat (what an "alias bomb" multiplies);
    the text aliases repeat may not exceed ``file_bytes`` either.
    """

    file_bytes: int = 64 * 1024 * 1024
    depth: int = 64
    aliases: int = 100_000
    alias_nodes: int = 1_000_000

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, variable in LIMIT_VARIABLES.items():
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[name] = int(raw.replace("_", ""))
            except ValueError:
                values[name] = 0
            if values[name] < 1:
                raise MlxError(f"{variable} must be a positive integer, not {raw!r}")
        return cls(**values)

    @property
    def key(self) -> str:
        """Part of the parse cache's key: a file accepted under other limits is parsed again."""
        return f"{self.file_bytes}.{self.depth}.{self.aliases}.{self.alias_nodes}"


def too_big(file: str, size: int, limits: Limits, root: str | None = None) -> Diagnostic:
    """A spec file over ``limits.file_bytes`` (the loader checks bytes before decoding)."""
    return Diagnostic(
        f"{file} is {size:,} bytes, more than the limit of {limits.file_bytes:,} for one spec file",
        Source(file, root=root),
        detail=f"Split it into several files, or raise {LIMIT_VARIABLES['file_bytes']}.",
    )
