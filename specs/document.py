"""The whole spec: which sections exist and what each holds."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from specs.alerts import Alert
from specs.base import NAME_PATTERN, SpecModel
from specs.budgets import Budget
from specs.datasets import Dataset
from specs.evals import Eval
from specs.models import Model
from specs.monitors import Monitor
from specs.prompts import Prompt
from specs.providers import BUILTIN_PROVIDER_CONFIGS, ProviderConfig
from specs.rollouts import Rollout
from specs.settings import Environment, Settings, Variable

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

#: Resource sections in the order a human reads them (and plans are printed).
RESOURCE_SECTIONS: tuple[str, ...] = (
    "datasets",
    "models",
    "prompts",
    "evals",
    "rollouts",
    "monitors",
    "budgets",
    "alerts",
)
#: Every top-level key a spec file may hold (SPEC.md, fixed).
SECTIONS: tuple[str, ...] = ("mlx", "variables", "environments", "providers", *RESOURCE_SECTIONS)
#: Sections whose entries are resources with addresses.
RESOURCE_TYPES = {
    "datasets": Dataset,
    "models": Model,
    "prompts": Prompt,
    "evals": Eval,
    "rollouts": Rollout,
    "monitors": Monitor,
    "budgets": Budget,
    "alerts": Alert,
}


class SpecDocument(SpecModel):
    """One spec file (or all of them merged): every section is optional."""

    mlx: Settings | None = None
    variables: dict[Name, Variable] = Field(default_factory=dict)
    environments: dict[Name, Environment] = Field(default_factory=dict)
    providers: dict[Name, ProviderConfig] = Field(default_factory=dict)
    datasets: dict[Name, Dataset] = Field(default_factory=dict)
    models: dict[Name, Model] = Field(default_factory=dict)
    prompts: dict[Name, Prompt] = Field(default_factory=dict)
    evals: dict[Name, Eval] = Field(default_factory=dict)
    rollouts: dict[Name, Rollout] = Field(default_factory=dict)
    monitors: dict[Name, Monitor] = Field(default_factory=dict)
    budgets: dict[Name, Budget] = Field(default_factory=dict)
    alerts: dict[Name, Alert] = Field(default_factory=dict)


def json_schema() -> dict:
    """JSON Schema of one spec file, for editors' YAML language servers."""
    schema = SpecDocument.model_json_schema(by_alias=True)
    # a plugin's `type` is any name but a built-in one, so that exactly one branch of the
    # providers union matches (pydantic picks the branch in code; editors need the schema)
    plugin = schema["$defs"]["PluginProviderConfig"]["properties"]["type"]
    plugin["not"] = {"enum": sorted(BUILTIN_PROVIDER_CONFIGS)}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlx spec file"
    return schema
