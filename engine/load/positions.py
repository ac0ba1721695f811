"""Source positions, found only when an error needs one.

The hot path never tracks line numbers: ruamel.yaml's round-trip loader, which
keeps a position for every key and item, costs 27 s on 10k resources. Here it
reads just the one file a diagnostic points into, once, and the path is walked
through its ``.lc`` positions. A file ruamel cannot read (it is stricter about
some things than libyaml) falls back to libyaml's node marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from common.diagnostics import Source

PathItem = str | int


#: Files above this size get libyaml's marks instead: ruamel's pure-Python loader needs
#: ~6 s per MB, and a spec file may be 64 MiB (``engine.load.limits``).
ROUND_TRIP_BYTES = 2_000_000


@lru_cache(maxsize=64)
def _round_trip(path: str, mtime_ns: int) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        if Path(path).stat().st_size > ROUND_TRIP_BYTES:
            return None
        return YAML(typ="rt", pure=True).load(Path(path).read_text(encoding="utf-8"))
    except (OSError, YAMLError, ValueError, RecursionError):  # deep nesting: use libyaml's
        return None


def _walk_round_trip(data: Any, path: Sequence[PathItem], key: bool) -> tuple[int, int] | None:
    """(line, column), 0-based, of the deepest existing prefix of ``path``."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    where: tuple[int, int] | None = (0, 0)
    node = data
    for item in path:
        if isinstance(node, CommentedMap) and item in node:
            where = node.lc.key(item) if key else node.lc.value(item)
            node = node[item]
        elif isinstance(node, CommentedSeq) and isinstance(item, int) and 0 <= item < len(node):
            where = node.lc.item(item)
            node = node[item]
        else:
            break
    return where


@lru_cache(maxsize=64)
def _compose(path: str, mtime_ns: int) -> Any:
    import yaml

    from engine.load.yaml_parse import SpecLoader

    try:
        return yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=SpecLoader)
    except (OSError, yaml.YAMLError):
        return None


def _walk_nodes(node: Any, path: Sequence[PathItem], key: bool) -> tuple[int, int]:
    import yaml

    mark = node.start_mark
    for item in path:
        found = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(item):
                    found = (k, v)
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(item, int)
            and 0 <= item < len(node.value)
        ):
            found = (node.value[item], node.value[item])
        if found is None:
            break
        key_node, node = found
        mark = key_node.start_mark if key else node.start_mark
    return mark.line, mark.column


def locate(root: Path, file: str, path: Sequence[PathItem], *, key: bool = True) -> Source:
    """The position of ``path`` in ``file``; the deepest existing prefix if it is absent.

    ``key=True`` points at the mapping key (``artifact:``), else at its value.
    """
    full = root / file
    try:
        stamp = full.stat().st_mtime_ns
    except OSError:
        return Source(file, root=str(root))
    data = _round_trip(str(full), stamp)
    where = _walk_round_trip(data, path, key) if data is not None else None
    if where is None:
        node = _compose(str(full), stamp)
        if node is None:
            return Source(file, root=str(root))
        where = _walk_nodes(node, path, key)
    line, column = where
    return Source(file, line + 1, column + 1, root=str(root))
