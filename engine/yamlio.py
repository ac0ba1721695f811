"""Fast YAML parsing with libyaml, YAML 1.2 scalars, and duplicate-key detection.

Why libyaml through PyYAML and not ruamel.yaml here: on 10k resources (4.3 MB)
PyYAML's C loader parses in 1.4 s where ruamel's C-backed safe loader needs
3.5 s and its round-trip loader far more. We go further: libyaml composes the
node tree and a small builder turns nodes into values, about twice as fast as
PyYAML's own constructor (bench/plan_scale.py reports both). Line numbers are
not tracked on this hot path at all: ``engine.positions`` finds them only
when an error needs one.

Scalars follow YAML 1.2's core schema (as ruamel.yaml does): ``on``/``yes``/
``no`` stay strings and dates stay strings (pydantic parses them where a field
is typed as a date), so what users write is what the spec holds.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from engine.diagnostics import Diagnostic, Source

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKey(Exception):
    def __init__(self, key: str, first: yaml.Mark, second: yaml.Mark):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class SpecLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """libyaml loader with YAML 1.2 core-schema scalars and no silent duplicate keys."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


def _add(tag: str, regexp: str, first: str) -> None:
    SpecLoader.add_implicit_resolver(tag, re.compile(regexp, re.X), list(first))


_add("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_add(
    "tag:yaml.org,2002:int",
    r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
    "-+0123456789",
)
_add(
    "tag:yaml.org,2002:float",
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    "-+0123456789.",
)
_add("tag:yaml.org,2002:merge", r"^(?:<<)$", "<")
_add("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""])  # type: ignore[arg-type]


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class UnsupportedTag(Exception):
    def __init__(self, node: yaml.Node):
        super().__init__(node.tag)
        self.node = node


def _int(value: str) -> int:
    text = value.replace("_", "")
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 16) if text.startswith("0x") else int(text)


def _float(value: str) -> float:
    low = value.lower()
    if low.endswith(".inf"):
        return float("-inf") if low.startswith("-") else float("inf")
    if low == ".nan":
        return float("nan")
    return float(value)


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag == _INT:
        return _int(node.value)
    if tag == _FLOAT:
        return _float(node.value)
    if tag == _BOOL:
        return node.value.lower() == "true"
    if tag == _NULL:
        return None
    raise UnsupportedTag(node)


class _Builder:
    """Composed nodes → Python values: much faster than PyYAML's generic constructor.

    Detects duplicate keys on the way (YAML loaders silently keep the last one)
    and supports merge keys (``<<: *base``).
    """

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}

    def build(self, node: yaml.Node) -> Any:
        cls = node.__class__
        if cls is yaml.ScalarNode:
            return _scalar(node)  # type: ignore[arg-type]
        key = id(node)
        if key in self.memo:  # an alias of an anchored collection
            return self.memo[key]
        if cls is yaml.SequenceNode:
            if node.tag != _SEQ:
                raise UnsupportedTag(node)
            out_list: list[Any] = []
            self.memo[key] = out_list
            out_list.extend(self.build(item) for item in node.value)
            return out_list
        if node.tag != _MAP:
            raise UnsupportedTag(node)
        out: dict[Any, Any] = {}
        self.memo[key] = out
        seen: dict[Any, yaml.Node] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = (
                    value_node.value if value_node.__class__ is yaml.SequenceNode else [value_node]
                )
                for source in sources:
                    value = self.build(source)
                    if isinstance(value, dict):
                        merged.update({k: v for k, v in value.items() if k not in merged})
                continue
            k = self.build(key_node)
            if k in seen:
                raise DuplicateKey(str(k), seen[k].start_mark, key_node.start_mark)
            seen[k] = key_node
            out[k] = self.build(value_node)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out


def load(text: str) -> Any:
    """Compose with libyaml, then build values. The collector pauses meanwhile: composing
    10k resources creates ~10^6 objects and generational GC passes would triple the time."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        node = yaml.compose(text, Loader=SpecLoader)
        return None if node is None else _Builder().build(node)
    finally:
        if enabled:
            gc.enable()


_FLOW_REF = re.compile(r"[\[{][^\"']*\$\{")


def parse(text: str, file: str, root: str | None = None) -> tuple[Any, list[Diagnostic]]:
    """Parse one file. Returns (data, diagnostics); data is None on error."""
    try:
        return load(text), []
    except DuplicateKey as dup:
        first = Source(file, dup.first.line + 1, dup.first.column + 1, root=root)
        second = Source(file, dup.second.line + 1, dup.second.column + 1, root=root)
        return None, [
            Diagnostic(
                f'"{dup.key}" is defined twice in {file}',
                second,
                related=(("first defined", first),),
            )
        ]
    except UnsupportedTag as exc:
        mark = exc.node.start_mark
        return None, [
            Diagnostic(
                f"unsupported YAML tag {exc.node.tag!r}: mlx specs hold plain maps, lists "
                "and scalars",
                Source(file, mark.line + 1, mark.column + 1, root=root),
            )
        ]
    except yaml.MarkedYAMLError as err:
        return None, [_syntax_error(err, text, file, root)]
    except yaml.YAMLError as err:  # pragma: no cover - libyaml always marks errors
        return None, [Diagnostic(f"invalid YAML in {file}: {err}", Source(file))]


def _syntax_error(err: yaml.MarkedYAMLError, text: str, file: str, root: str | None) -> Diagnostic:
    mark = err.problem_mark or err.context_mark
    source = Source(file, mark.line + 1, mark.column + 1, root=root) if mark else Source(file)
    problem = err.problem or "invalid YAML"
    summary = f"invalid YAML: {problem}" + (f" ({err.context})" if err.context else "")
    detail = None
    lines = text.splitlines()
    marks = [m for m in (err.context_mark, err.problem_mark) if m is not None]
    if any(0 <= m.line < len(lines) and _FLOW_REF.search(lines[m.line]) for m in marks):
        detail = (
            "A ${…} reference cannot stand unquoted inside a flow collection ([…] or {…}).\n"
            'Quote it — data: ["${datasets.x}"] — or write a block list:\n'
            "  data:\n    - ${datasets.x}"
        )
        summary = "invalid YAML: unquoted ${…} reference inside a flow collection; quote it"
    return Diagnostic(summary, source, detail=detail)
