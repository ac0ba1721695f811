"""Loading the cases of an LLM gate from YAML or JSONL, validated like the spec.

A YAML file holds a list of cases (or ``{cases: [...]}``); a JSONL file one
case per line. Every case gets the gate's default ``assert`` list before its
own; a case left with no assertion is an error, so no case passes vacuously.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from contract import ProviderError
from specs.base import SpecModel
from specs.evals import Assertion


class Case(SpecModel):
    id: str | None = None
    description: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    assert_: list[Assertion] = Field(default_factory=list, alias="assert")
    weight: float = Field(1.0, ge=0, description="Weight of the case in the pass rate.")
    threshold: float | None = Field(
        None, ge=0, le=1, description="Pass on a weighted assertion score, not on all passing."
    )


def _raw_cases(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ProviderError(f"{path.name}:{n}: invalid JSON: {exc.msg}") from None
        return out
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ProviderError(f"{path.name}: invalid YAML: {exc}") from None
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
    if not isinstance(data, list):
        raise ProviderError(f"{path.name}: expected a list of cases (or a `cases:` list)")
    return data


def load_cases(path: Path, defaults: list[Assertion]) -> list[Case]:
    if not path.is_file():
        raise ProviderError(f"cases file not found: {path}")
    cases: list[Case] = []
    seen: set[str] = set()
    for i, raw in enumerate(_raw_cases(path), 1):
        try:
            case = Case.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ProviderError(
                f"{path.name}: case {i}: {where + ': ' if where else ''}{first['msg']}"
            ) from None
        case_id = case.id or f"case-{i}"
        if case_id in seen:
            raise ProviderError(f"{path.name}: case {i}: id {case_id!r} is used twice")
        seen.add(case_id)
        assertions = [*defaults, *case.assert_]
        if not assertions:
            raise ProviderError(
                f"{path.name}: case {case_id} has no assertion and the gate has no default "
                "`assert`: it could never fail"
            )
        cases.append(case.model_copy(update={"id": case_id, "assert_": assertions}))
    if not cases:
        raise ProviderError(f"{path.name} holds no cases")
    return cases
