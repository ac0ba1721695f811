"""Fast YAML parsing with libyaml, YAML 1.2 scalars, and duplicate-key detection.

Why PyYAML's C loader and not ruamel.yaml here: on 10k resources (4.3 MB) it
parses in 1.4 s where ruamel's C-backed safe loader needs 3.5 s and its
round-trip loader far more (see bench/plan_scale.py). Line numbers are not
tracked on this hot path at all: ``engine.positions`` finds them only when an
error needs one.

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


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    value = loader.construct_scalar(node)
    if value.startswith("0o"):
        return int(value[2:], 8)
    return int(value, 0) if value.startswith("0x") else int(value)


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = key_node.value
            if key in seen and key != "<<":
                raise DuplicateKey(str(key), seen[key].start_mark, key_node.start_mark)
            seen[key] = key_node
    loader.flatten_mapping(node)
    return {
        loader.construct_object(k, deep=True): loader.construct_object(v, deep=True)
        for k, v in node.value
    }


SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
SpecLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


_FLOW_REF = re.compile(r"[\[{][^\"']*\$\{")


def parse(text: str, file: str, root: str | None = None) -> tuple[Any, list[Diagnostic]]:
    """Parse one file. Returns (data, diagnostics); data is None on error."""
    try:
        return yaml.load(text, Loader=SpecLoader), []
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
