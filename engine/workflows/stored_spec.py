"""A spec recorded in state, brought back to life: for rollback, promotion and saved plans.

Each state version stores the spec it applied: every resource's body as
written (references unresolved, so secrets are re-read from the environment,
never from state), where it came from, its content fingerprint and provider,
plus the variables, environments and provider configs. That is enough to plan
it again against today's state — with every content fingerprint pinned to the
recorded version (``Pin``), because the files on disk may hold newer bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from common.diagnostics import MlxError
from engine.load.spec_set import Decl, SpecSet
from engine.plan.model import Pin
from specs.introspect import kind_info
from state.status import Status


def spec_from_state(root: Path, stored: dict[str, Any], label: str) -> SpecSet:
    """A ``SpecSet`` equal to the one a state version applied."""
    resources = stored.get("resources")
    if not isinstance(resources, dict) or not resources:
        raise MlxError(f"{label} holds no spec to plan (it recorded no resources)")
    digest = hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()
    spec = SpecSet(
        root=root,
        files=[(f"<{label}>", digest)],
        settings=stored.get("settings") or {},
        variables=stored.get("variable_decls") or {},
        environments=stored.get("environments") or {},
        providers=stored.get("providers") or {},
    )
    from engine.load.references import find_templates
    from engine.plan.hashes import static_hashes

    for address, item in sorted(resources.items()):
        section, name = address.split(".", 1)
        body = item["body"]
        refs = find_templates(body)
        spec.decls[address] = Decl(
            address,
            section,
            name,
            item.get("file") or f"<{label}>",
            body,
            refs,
            static_hashes(section, body, refs),
        )
        spec.origins[address] = item.get("file") or f"<{label}>"
    for section in ("variables", "environments", "providers"):
        for name in getattr(spec, section):
            spec.origins[f"{section}.{name}"] = f"<{label}>"
    return spec


def pins_from(records: dict[str, dict[str, Any]]) -> dict[str, Pin]:
    """Pins for every resource whose content a registry holds (kinds that keep history).

    ``records`` maps address to a recorded row (``content_hash``, ``outputs``, ``status``).
    """
    pins = {}
    for address, row in records.items():
        if not kind_info(address.split(".", 1)[0]).keeps_history:
            continue
        outputs = row.get("outputs") or {}
        if row.get("status", Status.OK) == Status.OK and outputs.get("fingerprint"):
            pins[address] = Pin(content_hash=row.get("content_hash"), outputs=dict(outputs))
    return pins
