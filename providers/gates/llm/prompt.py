"""The prompt under test: its template, system text, model and params, and rendering.

``{{name}}`` (spaces allowed, ``a.b`` reaches into a dict) is replaced by the
case's var; a var the template needs but the case lacks is an error, never an
empty string. A model subject (no template) sends the case's ``input`` var.
Rendering is ``common.templates``, which the gateway uses too: a prompt renders the
same when it is judged and when it serves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.templates import MissingVariables, render
from contract import ProviderError


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
        """The chat messages for one case; ``ProviderError`` names the vars it lacks."""
        out = []
        try:
            if self.system:
                out.append({"role": "system", "content": render(self.system, variables)})
            out.append({"role": "user", "content": render(self.template, variables)})
        except MissingVariables as exc:
            raise ProviderError(str(exc)) from None
        return out


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
