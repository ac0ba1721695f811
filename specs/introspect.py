"""What the engine needs to know about each kind, read from field metadata.

The engine never hard-codes "description is metadata" or "evals.subject must
point at a model": it asks this module, which reads the markers set with
``specs.base.metadata_field`` / ``ref_field`` / ``replace_field``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, TypeAdapter

from specs.base import META_KEY, REF_KEY, REPLACE_KEY, Exclusive, OwnedResource, Resource
from specs.kinds import kind as registered_kind


@dataclass(frozen=True)
class KindInfo:
    section: str
    adapter: TypeAdapter[Any]
    variants: tuple[type[Resource], ...]
    metadata_fields: frozenset[str]
    replace_fields: frozenset[str]
    ref_fields: dict[str, tuple[str, ...]]
    attributes: frozenset[str]
    computed: tuple[str, ...]
    field_names: frozenset[str]
    follows_upstream: bool = False
    is_gate: bool = False
    plan_outputs: tuple[str, ...] = ()
    content_field: str | None = None
    #: ``owner`` is required (SPEC.md: models, prompts, datasets, rollouts, monitors, budgets)
    owner_required: bool = False
    release_field: str | None = None
    keeps_history: bool = False
    create_before_destroy: bool = False
    #: what only one resource of this kind may drive (``specs.base.Exclusive``)
    exclusive: tuple[Exclusive, ...] = ()
    #: from the kind's registration (``specs.kinds.Kind``)
    default_provider: str | None = None
    version_output: str | None = None
    reviewed: bool = False
    data: bool = False

    def validate(self, raw: Any) -> BaseModel:
        return self.adapter.validate_python(raw)


def _variants(tp: Any) -> tuple[type[Resource], ...]:
    if isinstance(tp, type) and issubclass(tp, Resource):
        return (tp,)
    found: list[type[Resource]] = []
    for arg in get_args(tp):
        found.extend(_variants(arg))
    return tuple(found)


@cache
def kind_info(section: str) -> KindInfo:
    declared = registered_kind(section)
    tp = declared.model
    variants = _variants(tp)
    meta: set[str] = set()
    replace: set[str] = set()
    refs: dict[str, tuple[str, ...]] = {}
    names: set[str] = set()
    computed: tuple[str, ...] = ()
    follows = False
    first = variants[0]
    for variant in variants:
        computed = variant.computed
        follows = follows or variant.follows_upstream
        for name, field in variant.model_fields.items():
            key = field.alias or name
            names.add(key)
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if extra.get(META_KEY):
                meta.add(key)
            if extra.get(REPLACE_KEY):
                replace.add(key)
            if REF_KEY in extra:
                refs[key] = tuple(str(k) for k in extra[REF_KEY])  # type: ignore[union-attr]
    return KindInfo(
        section=section,
        adapter=TypeAdapter(tp),
        variants=variants,
        metadata_fields=frozenset(meta),
        replace_fields=frozenset(replace),
        ref_fields=refs,
        attributes=frozenset(names | set(computed) | {"name", "address"}),
        computed=computed,
        field_names=frozenset(names),
        follows_upstream=follows,
        is_gate=first.is_gate,
        plan_outputs=first.plan_outputs,
        content_field=first.content_field,
        owner_required=all(issubclass(v, OwnedResource) for v in variants),
        release_field=first.release_field,
        keeps_history=first.keeps_history,
        create_before_destroy=first.create_before_destroy,
        exclusive=first.exclusive,
        default_provider=declared.default_provider,
        version_output=declared.version_output,
        reviewed=declared.reviewed,
        data=declared.data,
    )
