"""What a state version stores of the spec: enough for rollback, diff and show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plan.planned import Planned
from engine.session import Session
from engine.values import redact


def resolved_spec(session: Session, planned: Mapping[str, Planned]) -> dict[str, Any]:
    spec = session.spec
    resources = {}
    for address, decl in spec.decls.items():
        p = planned.get(address)
        resources[address] = {
            "section": decl.section,
            "file": decl.file,
            "body": decl.body,
            "resolved": p.redacted if p else None,
            "content_hash": p.content_hash if p else None,
            "provider": p.provider_key if p else None,
        }
    return {
        "format": 1,
        "environment": session.workspace,
        "variable_decls": spec.variables,
        "environments": spec.environments,
        "variables": redact(
            {
                k: v
                for k, v in session.inputs.variables.items()
                if k not in session.inputs.sensitive_vars
            }
        ),
        "providers": spec.providers,
        "settings": spec.settings,
        "resources": resources,
    }
