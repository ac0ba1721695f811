"""The prompt under test: its template, system text, model and params, and rendering.

``{{name}}`` (spaces allowed, ``a.b`` reaches into a dict) is replaced by the
case's var; a var the template needs but the case lacks is an error, never an
empty string. A model subject (no template) sends the case's ``input`` var.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contract import ProviderError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w]*(?:\.[\w]+)*)\s*\}\}")


@dataclass(frozen=True)
class PromptUnderTest:
    address: str
    template: str
    system: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """What the answer depends on besides vars, model and params."""
        doc = json.dumps({"template": self.template, "system": self.system}, sort_keys=True)
        return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()

    def messages(self, variables: Mapping[str, Any]) -> list[dict[str, str]]:
        out = []
        if self.system:
            out.append({"role": "system", "content": render(self.system, variables)})
        out.append({"role": "user", "content": render(self.template, variables)})
        return out


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
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        try:
            return _text(_lookup(variables, match.group(1)))
        except KeyError:
            missing.append(match.group(1))
            return match.group(0)

    text = _PLACEHOLDER.sub(sub, template)
    if missing:
        raise ProviderError(f"the template needs var(s) {', '.join(sorted(set(missing)))}")
    return text


def from_spec(address: str, spec: Mapping[str, Any] | None, read_file: Any) -> PromptUnderTest:
    """Build from a prompt's resolved spec; ``read_file(relpath) -> str`` opens template files."""
    if spec is None:
        raise ProviderError(f"{address} is not declared in this spec")
    if not address.startswith("prompts."):
        return PromptUnderTest(address, "{{input}}", params={})
    template = spec.get("template")
    if isinstance(template, Mapping):
        text = read_file(str(template.get("file")))
    elif isinstance(template, str):
        text = template
    else:
        raise ProviderError(f"{address} has no template")
    return PromptUnderTest(
        address,
        text,
        spec.get("system"),
        spec.get("model"),
        dict(spec.get("params") or {}),
    )
