"""Prompt templates: ``{{name}}`` replaced by a variable, the same in an eval gate and in the
gateway, so a prompt renders in production exactly as it rendered when it was judged.

``{{name}}`` (spaces allowed inside the braces; ``a.b`` reaches into a dict) is replaced by the
variable's value — a string as is, anything else as JSON. A variable the template needs but
was not given is an error (``MissingVariables``), never an empty string; the error carries
the names, and each caller says it in its own words (the gate's default text, the gateway's
"the prompt needs variable(s)").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w]*(?:\.[\w]+)*)\s*\}\}")


class MissingVariables(ValueError):
    """``render`` was not given variables the template needs: ``names``, sorted, unique."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        super().__init__(self.say("the template needs var(s)"))

    def say(self, lead: str) -> str:
        """``<lead> a, b``: the names after the caller's own words."""
        return f"{lead} {', '.join(self.names)}"


def _lookup(variables: Mapping[str, Any], name: str) -> Any:
    node: Any = variables
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(name)
        node = node[part]
    return node


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(template: str, variables: Mapping[str, Any]) -> str:
    """``template`` with every ``{{name}}`` replaced; ``MissingVariables`` names those absent."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        try:
            return _text(_lookup(variables, match.group(1)))
        except KeyError:
            missing.append(match.group(1))
            return match.group(0)

    text = _PLACEHOLDER.sub(sub, template)
    if missing:
        raise MissingVariables(tuple(sorted(set(missing))))
    return text
