"""The whole spec: which sections exist and what each holds.

Resource sections come from the registered kinds (``specs.kinds``): nothing
here names them, so a kind added by a plugin is a section like any other.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, create_model

from specs.base import NAME_PATTERN, SpecModel
from specs.kinds import kinds
from specs.providers import BUILTIN_PROVIDER_CONFIGS, ProviderConfig
from specs.settings import Environment, Settings, Variable

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

#: Top-level keys that are not resources (SPEC.md, fixed).
SETTING_SECTIONS: tuple[str, ...] = ("mlx", "variables", "environments", "providers")


def resource_sections() -> tuple[str, ...]:
    """Resource sections in the order a human reads them (and plans are printed)."""
    return tuple(kinds())


def sections() -> tuple[str, ...]:
    """Every top-level key a spec file may hold."""
    return (*SETTING_SECTIONS, *resource_sections())


def resource_types() -> dict[str, Any]:
    """Section → the model (or union) validating one of its entries."""
    return {section: kind.model for section, kind in kinds().items()}


@cache
def spec_document() -> type[BaseModel]:
    """One spec file (or all of them merged): every section is optional."""
    fields: dict[str, Any] = {
        "mlx": (Settings | None, None),
        "variables": (dict[Name, Variable], Field(default_factory=dict)),
        "environments": (dict[Name, Environment], Field(default_factory=dict)),
        "providers": (dict[Name, ProviderConfig], Field(default_factory=dict)),
    }
    for section, model in resource_types().items():
        fields[section] = (dict[Name, model], Field(default_factory=dict))  # type: ignore[valid-type]
    return create_model("SpecDocument", __base__=SpecModel, **fields)


def json_schema() -> dict[str, Any]:
    """JSON Schema of one spec file, for editors' YAML language servers."""
    schema = spec_document().model_json_schema(by_alias=True)
    # a plugin's `type` is any name but a built-in one, so that exactly one branch of the
    # providers union matches (pydantic picks the branch in code; editors need the schema)
    plugin = schema["$defs"]["PluginProviderConfig"]["properties"]["type"]
    plugin["not"] = {"enum": sorted(BUILTIN_PROVIDER_CONFIGS)}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlx spec file"
    return schema
