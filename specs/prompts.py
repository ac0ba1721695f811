"""``prompts``: versioned LLM prompts; version = fingerprint of what changes behaviour."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from specs.base import OwnedResource, SpecModel
from specs.kinds import Kind


class TemplateFile(SpecModel):
    file: str = Field(..., min_length=1)


class Chunking(SpecModel):
    size: int = Field(..., gt=0)
    overlap: int = Field(0, ge=0)


class Retrieval(SpecModel):
    corpus: str | None = Field(None, description="${datasets.kb}")
    chunking: Chunking | None = None
    embedding_model: str | None = None
    reranker: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    top_k: int = Field(5, gt=0)


class RoutingRule(SpecModel):
    when: str | dict[str, Any] = Field(..., description="Condition, e.g. 'input_tokens < 200'.")
    model: str


class Routing(SpecModel):
    rules: list[RoutingRule] = Field(default_factory=list)
    default: str | None = None


class Prompt(OwnedResource):
    section: ClassVar[str] = "prompts"
    computed: ClassVar[tuple[str, ...]] = ("version", "uri", "fingerprint")
    plan_outputs: ClassVar[tuple[str, ...]] = ("version", "uri", "fingerprint")
    content_field: ClassVar[str | None] = "template.file"
    keeps_history: ClassVar[bool] = True

    template: str | TemplateFile
    system: str | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    variables: list[str] | dict[str, str] = Field(default_factory=list)
    retrieval: Retrieval | None = None
    routing: Routing | None = None


KIND = Kind("prompts", Prompt, default_provider="local", order=30, version_output="version")
