"""``${…}`` references: parsing, and finding them in a resource body.

Forms (SPEC.md, fixed): ``${section.name}`` (the resource itself),
``${section.name.attr}`` (one attribute), ``${var.NAME}``, ``${env.NAME}``
(sensitive). ``$${`` escapes a literal ``${``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_ADDR = re.compile(r"^([a-z]+)\.([a-z][a-z0-9_-]{0,62})(?:\.([A-Za-z_][A-Za-z0-9_]*))?$")
_VAR = re.compile(r"^(var|env)\.([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True, slots=True)
class Ref:
    namespace: str  # "var", "env", or a resource section
    name: str
    attr: str | None = None

    @property
    def address(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def is_resource(self) -> bool:
        return self.namespace not in ("var", "env")

    def __str__(self) -> str:
        tail = f".{self.attr}" if self.attr else ""
        return "${" + f"{self.namespace}.{self.name}{tail}" + "}"


class RefSyntaxError(ValueError):
    pass


def parse_ref(inner: str) -> Ref:
    text = inner.strip()
    m = _VAR.match(text)
    if m:
        return Ref(m.group(1), m.group(2))
    m = _ADDR.match(text)
    if m:
        return Ref(m.group(1), m.group(2), m.group(3))
    raise RefSyntaxError(
        f'"${{{inner}}}" is not a reference: expected ${{section.name}}, '
        "${section.name.attr}, ${var.NAME} or ${env.NAME}"
    )


Part = str | Ref


def parse_template(text: str) -> list[Part]:
    """Split a string into literal parts and references."""
    parts: list[Part] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        if m.group(0) == "$${":
            parts.append("${")
        else:
            parts.append(parse_ref(m.group(1)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    # merge adjacent literals (escapes split them)
    merged: list[Part] = []
    for p in parts:
        if merged and isinstance(p, str) and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return merged


def encode(parts: list[Part]) -> list[Any]:
    """Parts as JSON (for the parse cache): literals stay strings, refs become lists."""
    return [p if isinstance(p, str) else [p.namespace, p.name, p.attr] for p in parts]


def decode(parts: list[Any]) -> list[Part]:
    return [p if isinstance(p, str) else Ref(p[0], p[1], p[2]) for p in parts]


PathT = tuple[str | int, ...]


def find_templates(value: Any, path: PathT = ()) -> list[tuple[PathT, str]]:
    """Every string under ``value`` that holds ``${``, with its path."""
    found: list[tuple[PathT, str]] = []
    _collect(value, path, found)
    return found


def _collect(value: Any, path: PathT, found: list[tuple[PathT, str]]) -> None:
    # plain recursion into a list: nested generators cost 3x more on 10k resources
    cls = value.__class__
    if cls is str:
        if "${" in value:
            found.append((path, value))
    elif cls is dict:
        for k, v in value.items():
            if v.__class__ is not str or "${" in v:
                _collect(v, (*path, k), found)
    elif cls is list:
        for i, v in enumerate(value):
            _collect(v, (*path, i), found)
