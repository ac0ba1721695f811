"""Building blocks shared by every section of the spec.

Two pieces of field metadata drive the engine without it knowing any kind:

* ``metadata_field(...)`` marks a field whose change never alters behaviour
  (description, labels, owner, a model card): the planner hashes these apart,
  so editing them is an in-place update that never re-runs a gate or creates
  a registry version (SQLMesh's data hash vs metadata hash).
* ``ref_field(kinds=...)`` marks a field that must hold a ``${section.name}``
  reference to one of the given sections; the resolver checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from common.durations import JSON_PATTERN, NOT_A_DURATION, DurationError, parse_duration

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
NAME_RE = re.compile(NAME_PATTERN)

#: Keys used in ``json_schema_extra`` to mark fields; read by ``specs.introspect``.
META_KEY = "x-mlx-metadata"
REF_KEY = "x-mlx-ref"
REPLACE_KEY = "x-mlx-replace"


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        defer_build=True,
    )


def _marked(key: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    extra[key] = value
    return Field(*args, json_schema_extra=extra, **kwargs)


def metadata_field(*args: Any, **kwargs: Any) -> Any:
    """A field whose changes are metadata-only (updated in place, no new version)."""
    return _marked(META_KEY, True, args, kwargs)


def ref_field(*args: Any, kinds: tuple[str, ...], **kwargs: Any) -> Any:
    """A field that must hold a whole-resource reference to one of ``kinds``."""
    return _marked(REF_KEY, list(kinds), args, kwargs)


def replace_field(*args: Any, **kwargs: Any) -> Any:
    """A field that cannot be updated in place: changing it replaces the object."""
    return _marked(REPLACE_KEY, True, args, kwargs)


Address = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]+\.[a-z][a-z0-9_-]{0,62}$"),
]


def _duration(text: str) -> str:
    """The text as written (its spec hash is the user's text); refused if it is no duration."""
    try:
        parse_duration(text)
    except DurationError:
        raise PydanticCustomError("duration", NOT_A_DURATION) from None
    return text


#: A duration in ``common.durations``' grammar (``500ms``, ``10m``, ``1h30m``, ``2d``), kept
#: as the text the user wrote; readers parse it with ``common.durations.parse_duration``.
Duration = Annotated[
    str,
    AfterValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": JSON_PATTERN}),
]


class Lifecycle(SpecModel):
    """Terraform's lifecycle block."""

    prevent_destroy: bool = False
    ignore_changes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Exclusive:
    """Fields whose values together name a target only one resource of a kind may drive."""

    fields: tuple[str, ...]
    #: The rule, as users read it: "an endpoint has at most one rollout".
    rule: str
    #: How the target is named in the error, from the fields' values in order.
    shown: str = "{0}"
    #: What to do instead, when there is something to say.
    hint: str | None = None


class Resource(SpecModel):
    """Fields every resource has (SPEC.md, "Fields every resource has")."""

    #: Sections this kind lives in; set by subclasses.
    section: ClassVar[str] = ""
    #: Attributes known only after apply (``${models.x.version}``).
    computed: ClassVar[tuple[str, ...]] = ()
    #: Re-applied whenever a resource it references changes behaviour (a rollout moves
    #: its alias to the subject's new version); other kinds are only flagged.
    follows_upstream: ClassVar[bool] = False
    #: A gate: it "runs" (and blocks its dependents) instead of being created or updated.
    is_gate: ClassVar[bool] = False
    #: The computed outputs a plan shows moving (``version = 3 -> (known after apply)``).
    plan_outputs: ClassVar[tuple[str, ...]] = ()
    #: Dotted path of the field naming the content its provider fingerprints.
    content_field: ClassVar[str | None] = None
    #: The field naming what this kind releases to users (a rollout's ``subject``, an
    #: endpoint's ``serves``): such a resource is applied only when every gate it requires
    #: has passed for exactly that version's fingerprints (``engine.policy.evidence``).
    release_field: ClassVar[str | None] = None
    #: Registries keep history: a forced replacement creates (adopting the existing
    #: object and its versions) and never deletes first; nothing is ever lost.
    keeps_history: ClassVar[bool] = False
    #: Replace by creating the new object before deleting the old (an endpoint must
    #: never be down between the two): Terraform's ``create_before_destroy``.
    create_before_destroy: ClassVar[bool] = False
    #: What only one resource of this kind may drive, and the rule users are told: each
    #: entry's fields, all set, name one target (a rollout's ``endpoint``; its ``subject`` and
    #: ``alias``). Two resources naming the same target would fight over it (one reports
    #: "completed" while the other's weights serve), so the spec refuses the second.
    exclusive: ClassVar[tuple[Exclusive, ...]] = ()

    owner: str | None = metadata_field(None, description="Team or person who answers for it.")
    description: str | None = metadata_field(None)
    labels: dict[str, str] = metadata_field(default_factory=dict)
    depends_on: list[Address] = metadata_field(
        default_factory=list, description="Extra dependencies (addresses)."
    )
    provider: str | None = replace_field(
        None, description="Name of an entry under `providers:`; default: the embedded provider."
    )
    lifecycle: Lifecycle = metadata_field(default_factory=Lifecycle)


class OwnedResource(Resource):
    """A resource whose ``owner`` is required (SPEC.md, fixed)."""

    owner: str = metadata_field(..., min_length=1, description="Team or person who answers for it.")
