"""One spec file → validated, normalized entries (or diagnostics pointing at lines).

The output of this module is what the parse cache stores, so it is plain JSON:
each resource's normalized body (aliases, defaults dropped) and the places in
it that hold ``${…}`` templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from common.diagnostics import Diagnostic, did_you_mean
from engine.load.positions import locate
from engine.load.references import RefSyntaxError, encode, find_templates, parse_template
from engine.plan.hashes import static_hashes
from specs.base import NAME_PATTERN, NAME_RE
from specs.document import resource_sections, resource_types, sections
from specs.introspect import kind_info
from specs.providers import ProviderConfig
from specs.settings import Environment, Settings, Variable

_SETTING_SECTIONS: dict[str, Any] = {
    "variables": Variable,
    "environments": Environment,
    "providers": ProviderConfig,
}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _adapter(section: str) -> TypeAdapter[Any]:
    if section not in _ADAPTERS:
        _ADAPTERS[section] = TypeAdapter(_SETTING_SECTIONS[section])
    return _ADAPTERS[section]


class FileCompiler:
    """Validates one file's data; collects diagnostics with positions."""

    def __init__(self, root: Path, rel: str):
        self.root, self.rel = root, rel
        self.diags: list[Diagnostic] = []

    def error(self, summary: str, path: Sequence[str | int], detail: str | None = None) -> None:
        self.diags.append(Diagnostic(summary, locate(self.root, self.rel, path), detail=detail))

    def compile(self, data: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"settings": None, "resources": []}
        for section in _SETTING_SECTIONS:
            out[section] = {}
        if data is None:
            return out
        if not isinstance(data, dict):
            self.error("a spec file must be a mapping of sections (datasets:, models:, …)", [])
            return out
        for section, entries in data.items():
            if section not in sections():
                known = sections()
                self.error(
                    f'unknown top-level key "{section}"{did_you_mean(str(section), known)}',
                    [section],
                    detail="Top-level keys are: " + ", ".join(known),
                )
                continue
            if entries is None:
                continue
            if not isinstance(entries, dict):
                self.error(f'"{section}" must be a mapping of names to definitions', [section])
                continue
            if section == "mlx":
                out["settings"] = self._validate(Settings, entries, [section], "mlx settings")
                continue
            for name, body in entries.items():
                if not isinstance(name, str) or not NAME_RE.match(name):
                    self.error(
                        f'invalid name "{name}" in {section}: names match {NAME_PATTERN}',
                        [section, name],
                    )
                    continue
                if section in resource_sections():
                    entry = self._resource(section, name, body)
                    if entry is not None:
                        out["resources"].append(entry)
                else:
                    value = self._validate_adapter(
                        _adapter(section),
                        body,
                        [section, name],
                        f"{section}.{name}",
                        _SETTING_SECTIONS[section],
                    )
                    if value is not None:
                        out[section][name] = value
        return out

    def _resource(self, section: str, name: str, body: Any) -> list[Any] | None:
        address = f"{section}.{name}"
        info = kind_info(section)
        if not isinstance(body, dict):
            self.error(f"{address} must be a mapping of fields", [section, name])
            return None
        if info.owner_required and not body.get("owner"):
            self.error(
                f"{address} has no owner: every {section[:-1]} needs `owner` "
                "(the team or person who answers for it)",
                [section, name],
            )
            return None
        normalized = self._validate_adapter(
            info.adapter, body, [section, name], address, resource_types()[section]
        )
        if normalized is None:
            return None
        refs = list(find_templates(normalized))
        hashes = static_hashes(section, normalized, refs)
        return [section, name, normalized, [[list(p), s, _parsed(s)] for p, s in refs], hashes]

    def _validate(self, model: type[BaseModel], body: Any, path: list[Any], what: str) -> Any:
        return self._validate_adapter(TypeAdapter(model), body, path, what, model)

    def _validate_adapter(
        self, adapter: TypeAdapter[Any], body: Any, path: list[Any], what: str, tp: Any
    ) -> dict[str, Any] | None:
        try:
            value = adapter.validate_python(body)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                self._report(err, body, path, what, tp)
            return None
        return adapter.dump_python(value, mode="json", by_alias=True, exclude_defaults=True)

    def _report(self, err: Any, body: Any, base: list[Any], what: str, tp: Any) -> None:
        loc = _real_path(body, err["loc"])
        where = ".".join(str(p) for p in loc)
        label = f"{what}.{where}" if where else what
        kind = err["type"]
        if kind == "extra_forbidden":
            parent_fields = _fields_at(tp, body, loc[:-1])
            key = str(loc[-1])
            self.error(
                f'unknown field "{key}" in {what}{did_you_mean(key, parent_fields)}',
                [*base, *loc],
                detail=("Fields here: " + ", ".join(sorted(parent_fields)))
                if parent_fields
                else None,
            )
        elif kind == "missing":
            self.error(f'{what}: missing required field "{where}"', [*base, *loc[:-1]])
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            self.error(f"{label}: {err['msg']}", [*base, *loc, "type"])
        else:
            got = err.get("input")
            # a secret written in clear is not repeated (the error may land in a CI log)
            hidden = isinstance(got, dict | list) or kind == "secret_in_clear"
            shown = "" if hidden else f" (got {got!r})"
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            self.error(
                f"{label}: {msg}{shown}",
                [*base, *loc],
            )


def _parsed(text: str) -> list[Any] | None:
    """The template already parsed (the graph reuses it), or None to report it later."""
    try:
        return encode(parse_template(text))
    except RefSyntaxError:
        return None


def _real_path(body: Any, loc: Sequence[Any]) -> list[Any]:
    """Drop the union tags and validator names pydantic inserts into ``loc``."""
    out: list[Any] = []
    node = body
    items = list(loc)
    i = 0
    while i < len(items):
        item = items[i]
        if (isinstance(node, dict) and item in node) or (
            isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node)
        ):
            out.append(item)
            node = node[item]
        elif i + 1 < len(items) and isinstance(node, dict | list) and _has(node, items[i + 1]):
            pass  # a tag: skip it
        elif (
            i == len(items) - 1
            and isinstance(node, dict)  # a missing key; under a scalar it is a union's tag
            and isinstance(item, str)
            and not item.startswith(("function-", "tagged-union["))
        ):
            out.append(item)  # a missing key
        i += 1
    return out


def _has(node: Any, item: Any) -> bool:
    if isinstance(node, dict):
        return item in node
    return isinstance(item, int) and 0 <= item < len(node)


def _expand(tp: Any) -> list[Any]:
    """Flatten unions and ``Annotated`` wrappers; containers stay as they are."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _expand(get_args(tp)[0])
    if origin in (Union, UnionType):
        return [x for arg in get_args(tp) for x in _expand(arg)]
    return [tp]


def _step(tp: Any, item: Any) -> list[Any]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if (field.alias or name) == item:
                return [field.annotation]
        return []
    origin, args = get_origin(tp), get_args(tp)
    if origin is list and args and isinstance(item, int):
        return [args[0]]
    if origin is dict and len(args) == 2:
        return [args[1]]
    return []


def _fields_at(tp: Any, body: Any, path: Sequence[Any]) -> set[str]:
    """Field names accepted at ``path`` inside a value of type ``tp`` (for "did you mean")."""
    types = _expand(tp)
    for item in path:
        types = [x for t in types for s in _step(t, item) for x in _expand(s)]
        body = _child(body, item)
    models = _models_of(types, body)
    return {f.alias or n for m in models for n, f in m.model_fields.items()}


def _child(body: Any, item: Any) -> Any:
    """``body[item]`` of a dict or a list, None where there is none."""
    if isinstance(body, dict):
        return body.get(item)
    if isinstance(body, list) and isinstance(item, int) and 0 <= item < len(body):
        return body[item]
    return None


def _models_of(types: list[Any], body: Any) -> list[type[BaseModel]]:
    """The models among ``types``; of a union of variants, the one ``body["type"]`` names."""
    models = [t for t in types if isinstance(t, type) and issubclass(t, BaseModel)]
    if len(models) > 1 and isinstance(body, dict) and "type" in body:
        models = [m for m in models if _literal_type(m) == body["type"]] or models
    return models


def _literal_type(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    if field is None:
        return None
    args = get_args(field.annotation)
    return args[0] if len(args) == 1 else None
