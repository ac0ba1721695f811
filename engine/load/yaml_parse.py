"""Fast YAML parsing with libyaml, YAML 1.2 scalars, and duplicate-key detection.

Why libyaml through PyYAML and not ruamel.yaml here: on 10k resources (4.3 MB)
PyYAML's C loader parses in 1.4 s where ruamel's C-backed safe loader needs
3.5 s and its round-trip loader far more. We go further: libyaml composes the
node tree and a small builder turns nodes into values, about twice as fast as
PyYAML's own constructor (bench/plan_scale.py reports both). Line numbers are
not tracked on this hot path at all: ``engine.load.positions`` finds them only
when an error needs one.

Scalars follow YAML 1.2's core schema (as ruamel.yaml does): ``on``/``yes``/
``no`` stay strings and dates stay strings (pydantic parses them where a field
is typed as a date), so what users write is what the spec holds.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from common.diagnostics import Diagnostic, Source
from engine.load.limits import LIMIT_VARIABLES, Limits, too_big

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKey(Exception):
    def __init__(self, key: str, first: yaml.Mark, second: yaml.Mark):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class SpecLoader(_BaseLoader):
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


class ComplexKey(Exception):
    """A list or map used as a mapping key (``? [a, b]: 1``): Python cannot hold it."""

    def __init__(self, node: yaml.Node):
        super().__init__("complex key")
        self.node = node


class LimitExceeded(Exception):
    """The document crosses one of ``Limits``: at ``mark``, or at the ``alias``-th alias."""

    def __init__(
        self,
        summary: str,
        detail: str,
        mark: yaml.Mark | None = None,
        alias: int | None = None,
    ):
        super().__init__(summary)
        self.summary, self.detail, self.mark, self.alias = summary, detail, mark, alias


def _too_deep(
    limits: Limits, mark: yaml.Mark | None = None, alias: int | None = None
) -> LimitExceeded:
    return LimitExceeded(
        f"the YAML here is nested deeper than {limits.depth} levels",
        "mlx specs are maps and lists a few levels deep; the limit protects every plan\n"
        f"from hostile input (raise it with {LIMIT_VARIABLES['depth']} if you must).",
        mark,
        alias,
    )


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

    Detects duplicate keys on the way (YAML loaders silently keep the last one),
    supports merge keys (``<<: *base``) and refuses nesting deeper than the limit
    (which also keeps this recursion, and everything downstream, far from Python's).
    """

    def __init__(self, limits: Limits) -> None:
        self.memo: dict[int, Any] = {}
        self.limits = limits
        self.max_depth = limits.depth
        self.depth = 0

    def build(self, node: yaml.Node) -> Any:
        if node.__class__ is yaml.ScalarNode:
            return _scalar(node)
        return self._collection(node)

    def _collection(self, node: yaml.Node) -> Any:
        key = id(node)
        if key in self.memo:  # an alias of an anchored collection
            return self.memo[key]
        self.depth += 1
        if self.depth > self.max_depth:
            raise _too_deep(self.limits, node.start_mark)
        if node.__class__ is yaml.SequenceNode:
            if node.tag != _SEQ:
                raise UnsupportedTag(node)
            out_list: list[Any] = []
            self.memo[key] = out_list
            build = self.build
            for item in node.value:
                out_list.append(build(item))
            self.depth -= 1
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
            try:
                duplicate = k in seen
            except TypeError:  # a list or map as a key
                raise ComplexKey(key_node) from None
            if duplicate:
                raise DuplicateKey(str(k), seen[k].start_mark, key_node.start_mark)
            seen[k] = key_node
            out[k] = self.build(value_node)
        for k, v in merged.items():
            out.setdefault(k, v)
        self.depth -= 1
        return out


class _AliasBuilder(_Builder):
    """The builder for documents with anchors: every alias use is counted and bounded.

    The values an alias produces are shared, so building stays cheap; but validating,
    hashing and caching them walks every repetition, so an "alias bomb" (aliases of
    aliases, exponentially) would cost minutes and gigabytes downstream. Each use adds
    the size of what it repeats (nodes, text, height), measured once per anchored node.
    Alias uses are numbered in document order, which is the order they are built in, so
    an error can find the alias's own line again (``_alias_mark``).
    """

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self.scalars: set[int] = set()
        self.building: set[int] = set()
        self.extents: dict[int, tuple[int, int, int]] = {}
        self.aliases = 0
        self.alias_nodes = 0
        self.alias_chars = 0

    def build(self, node: yaml.Node) -> Any:
        key = id(node)
        if node.__class__ is yaml.ScalarNode:
            if key in self.scalars:
                self._use(0, 1, len(node.value))
            else:
                self.scalars.add(key)
            return _scalar(node)
        if key in self.memo:
            if key in self.building:
                raise LimitExceeded(
                    "a YAML alias refers to itself (a recursive structure)",
                    "An alias (*name) inside the node its anchor (&name) names repeats it\n"
                    "forever; mlx specs hold finite maps and lists.",
                    alias=self.aliases + 1,
                )
            self._use(*self._extent(node))
            return self.memo[key]
        self.building.add(key)
        value = self._collection(node)
        self.building.discard(key)
        return value

    def _use(self, height: int, nodes: int, chars: int) -> None:
        """One alias use, repeating ``nodes`` nodes holding ``chars`` characters."""
        limits = self.limits
        self.aliases += 1
        self.alias_nodes += nodes
        self.alias_chars += chars
        if self.aliases > limits.aliases:
            raise LimitExceeded(
                f"more than {limits.aliases:,} aliases (*name) in one file",
                f"Write the values out, or raise {LIMIT_VARIABLES['aliases']}.",
                alias=self.aliases,
            )
        if self.alias_nodes > limits.alias_nodes:
            raise LimitExceeded(
                f"YAML aliases expand to more than {limits.alias_nodes:,} nodes",
                "Each alias (*name) repeats what its anchor (&name) holds, aliases of aliases\n"
                'multiply (an "alias bomb"). Write the values out, or raise\n'
                f"{LIMIT_VARIABLES['alias_nodes']}.",
                alias=self.aliases,
            )
        if self.alias_chars > limits.file_bytes:
            raise LimitExceeded(
                f"YAML aliases expand to more than {limits.file_bytes:,} characters of text",
                "Each alias (*name) repeats the text its anchor (&name) holds. Write the\n"
                f"values out, or raise {LIMIT_VARIABLES['file_bytes']}.",
                alias=self.aliases,
            )
        if self.depth + height > self.max_depth:
            raise _too_deep(limits, alias=self.aliases)

    def _extent(self, node: yaml.Node) -> tuple[int, int, int]:
        """(height, nodes, characters) of ``node`` with every alias inside it expanded.

        Only called for a node that was built whole, so within the depth limit: the
        recursion here is as shallow as that.
        """
        key = id(node)
        hit = self.extents.get(key)
        if hit is not None:
            return hit
        if node.__class__ is yaml.ScalarNode:
            found = (0, 1, len(node.value))
        else:
            children = (
                node.value
                if node.__class__ is yaml.SequenceNode
                else [n for pair in node.value for n in pair]
            )
            height, nodes, chars = 0, 1, 0
            for child in children:
                h, n, c = self._extent(child)
                height, nodes, chars = max(height, h), nodes + n, chars + c
            found = (height + 1, nodes, chars)
        self.extents[key] = found
        return found


def load(text: str, limits: Limits | None = None) -> Any:
    """Compose with libyaml, then build values. The collector pauses meanwhile: composing
    10k resources creates ~10^6 objects and generational GC passes would triple the time.

    libyaml itself refuses nesting beyond 1,000 levels; the builder applies ``limits``.
    Without an ``&`` in the text there are no anchors, hence no aliases to count.
    """
    import gc

    limits = limits or Limits()
    enabled = gc.isenabled()
    gc.disable()
    try:
        node = yaml.compose(text, Loader=SpecLoader)
        if node is None:
            return None
        builder = _AliasBuilder(limits) if "&" in text else _Builder(limits)
        return builder.build(node)
    finally:
        if enabled:
            gc.enable()


def unquoted_flow_reference(line: str) -> bool:
    """Whether ``line`` has a ``[`` or ``{`` followed, with no quote between, by ``${``.

    Linear time: a regex for this (``[\\[{][^"']*\\$\\{``) backtracks from every
    bracket, and a line of 100,000 brackets took minutes.
    """
    for segment in re.split("[\"']", line):
        brackets = [i for i in (segment.find("["), segment.find("{")) if i >= 0]
        if brackets and segment.find("${", min(brackets) + 1) >= 0:
            return True
    return False


def _alias_mark(text: str, number: int) -> Any:
    """Where the ``number``-th alias (1-based, document order) is written."""
    seen = 0
    try:
        for event in yaml.parse(text, Loader=SpecLoader):
            if isinstance(event, yaml.AliasEvent):
                seen += 1
                if seen == number:
                    return event.start_mark
    except yaml.YAMLError:
        return None
    return None


def _mark_source(mark: yaml.Mark | None, file: str, root: str | None) -> Source:
    if mark is None:
        return Source(file, root=root)
    return Source(file, mark.line + 1, mark.column + 1, root=root)


def parse(
    text: str, file: str, root: str | None = None, limits: Limits | None = None
) -> tuple[Any, list[Diagnostic]]:
    """Parse one file. Returns (data, diagnostics); data is None on error."""
    limits = limits or Limits.from_environ()
    if len(text) > limits.file_bytes:
        return None, [too_big(file, len(text), limits, root)]
    try:
        return load(text, limits), []
    except LimitExceeded as exc:
        mark = exc.mark if exc.alias is None else _alias_mark(text, exc.alias)
        return None, [Diagnostic(exc.summary, _mark_source(mark, file, root), detail=exc.detail)]
    except RecursionError:  # pragma: no cover - the depth limit keeps far from it
        return None, [Diagnostic(_too_deep(limits).summary, Source(file, root=root))]
    except ComplexKey as exc:
        return None, [
            Diagnostic(
                "a mapping key must be a plain scalar, not a list or a map",
                _mark_source(exc.node.start_mark, file, root),
            )
        ]
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
        if err.problem == "exceeded maximum nesting depth":  # libyaml's own limit, 1,000
            deep = _too_deep(limits, err.problem_mark)
            return None, [
                Diagnostic(deep.summary, _mark_source(deep.mark, file, root), deep.detail)
            ]
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
    if any(0 <= m.line < len(lines) and unquoted_flow_reference(lines[m.line]) for m in marks):
        detail = (
            "A ${…} reference cannot stand unquoted inside a flow collection ([…] or {…}).\n"
            'Quote it — data: ["${datasets.x}"] — or write a block list:\n'
            "  data:\n    - ${datasets.x}"
        )
        summary = "invalid YAML: unquoted ${…} reference inside a flow collection; quote it"
    return Diagnostic(summary, source, detail=detail)
