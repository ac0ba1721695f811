"""``prompts``: versioned LLM prompts; version = fingerprint of what changes behaviour."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Discriminator, Field, Tag

from specs.base import OwnedResource, SpecModel
from specs.kinds import Kind

#: What a caller of a prompt endpoint may always send, whatever ``allow_params`` says.
CALLER_ALWAYS = ("messages", "variables", "user", "stream", "stream_options")
#: Sent by OpenAI clients with every request and ignored: the model is part of the version.
CALLER_IGNORED = ("model",)


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


class ParamCap(SpecModel):
    """A cap on a parameter a caller may set: a number at most ``max``."""

    max: float = Field(..., gt=0, description="The largest value a caller may send.")


def _allow_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "any"
    return "cap" if isinstance(value, dict | ParamCap) else None


def _settable(name: str) -> str:
    if name in CALLER_ALWAYS:
        raise ValueError(f"{name} is always allowed (remove it from allow_params)")
    if name in CALLER_IGNORED:
        raise ValueError(f"{name} is part of the prompt version: a caller cannot choose it")
    return name


#: A parameter a caller could be allowed to set.
SettableParam = Annotated[str, AfterValidator(_settable)]
#: One ``allow_params`` entry: ``true`` (any value), ``false`` (not allowed) or a cap.
AllowParam = Annotated[
    Annotated[bool, Tag("any")] | Annotated[ParamCap, Tag("cap")],
    Discriminator(
        _allow_kind,
        custom_error_type="allow_param",
        custom_error_message="expected true, false or a cap such as {max: 512}",
    ),
]


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
    allow_params: dict[SettableParam, AllowParam] = Field(
        default_factory=dict,
        description="What a caller may set per request: {temperature: true, "
        "max_tokens: {max: 512}}. Anything else a caller sends is a 400.",
    )
    variables: list[str] | dict[str, str] = Field(default_factory=list)
    retrieval: Retrieval | None = None
    routing: Routing | None = None


KIND = Kind("prompts", Prompt, default_provider="local", order=30, version_output="version")
