"""Source positions, found only when an error needs one.

The hot path never tracks line numbers (that is what made ruamel's round-trip
loader cost 27 s on 10k resources). When a diagnostic needs a place, the file
is composed once more with libyaml (nodes carry marks) and the path walked.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import yaml

from engine.diagnostics import Source
from engine.yamlio import SpecLoader

PathItem = str | int


@lru_cache(maxsize=64)
def _compose(path: str, mtime_ns: int) -> yaml.Node | None:
    try:
        text = Path(path).read_text(encoding="utf-8")
        return yaml.compose(text, Loader=SpecLoader)
    except (OSError, yaml.YAMLError):
        return None


def locate(root: Path, file: str, path: Sequence[PathItem], *, key: bool = True) -> Source:
    """The position of ``path`` in ``file``; the deepest existing prefix if it is absent.

    ``key=True`` points at the mapping key (``artifact:``), else at its value.
    """
    full = root / file
    try:
        node = _compose(str(full), full.stat().st_mtime_ns)
    except OSError:
        node = None
    if node is None:
        return Source(file, root=str(root))
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
    return Source(file, mark.line + 1, mark.column + 1, root=str(root))
