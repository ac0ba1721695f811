"""``--target``: the addresses a plan looks at (each target and what it depends on)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from common.diagnostics import MlxError, did_you_mean


def scope(
    targets: Iterable[str],
    declared: Mapping[str, Any],
    graph: nx.DiGraph,
    recorded: Mapping[str, Any],
) -> set[str] | None:
    """None without targets (everything); a target only recorded is its own deletion."""
    targets = list(targets)
    if not targets:
        return None
    out: set[str] = set()
    for target in targets:
        if target in declared:
            out.add(target)
            out |= nx.ancestors(graph, target)
        elif target in recorded:
            out.add(target)  # a resource removed from the spec: target its deletion
        else:
            known = list(declared) + list(recorded)
            raise MlxError(f"--target {target}: no such resource{did_you_mean(target, known)}")
    return out
