"""The embedded registry provider for models, prompts and datasets (``type: local``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.model_inputs import SchemaConflict, SchemaMemo
from contract import (
    Change,
    Context,
    Desired,
    Observed,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Registry,
    Result,
    VersionRef,
)
from providers.files import PathGuard, PathRefused, hasher_for
from providers.local.registry import LocalRegistry

_PATH_FIELD = {"models": "artifact", "datasets": "uri"}
_WHAT = {"models": "artifact", "datasets": "dataset file", "prompts": "template file"}
_META = ("description", "labels", "owner")


def contains_unknown(value: Any) -> bool:
    """A value still ``(known after apply)`` (the planner's marker) somewhere in ``value``."""
    if isinstance(value, dict):
        return value.get("$unknown") is True or any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return type(value).__name__ == "Unknown"


def _is_uri(value: str) -> bool:
    return "://" in value or value.startswith(("runs:/", "models:/"))


def prompt_document(spec: Any, template_text: str) -> dict[str, Any]:
    """What a prompt version is: everything that changes its behaviour."""
    keys = ("system", "model", "params", "allow_params", "variables", "retrieval", "routing")
    doc = {k: spec.get(k) for k in keys if spec.get(k) not in (None, {}, [])}
    doc["template"] = template_text
    return doc


class LocalRegistryProvider(Provider, Registry):
    sections = frozenset({"models", "prompts", "datasets"})
    max_parallel = 1  # Python and small local writes: threads would only contend for the GIL

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__(config, context)
        root = Path(self.config.get("root", ".mlx/registry"))
        self.root = root if root.is_absolute() else context.root / root
        self._root_str = str(context.root)
        self._checked: set[str] = set()
        self._documents: dict[str, bytes] = {}  # prompt documents built, by compact dump
        self.hasher = hasher_for(context.data_dir)
        self.registry = LocalRegistry(self.root, self.hasher, context.environment)
        #: every local path a spec names resolves inside the spec dir or ``mlx.paths``
        self._guard = PathGuard(context.root, context.allowed_paths)
        self._real: dict[str, str] = {}  # spec value -> real path, as check() found it
        self._root_refused: str | None = None
        self._schemas = SchemaMemo()  # models' input schemas, by content

    # -- planning -----------------------------------------------------------------
    def _source(self, desired: Desired) -> str | None:
        """The local file a spec points at (artifact, dataset, template), or None for a URI.

        Plain strings, no Path objects: this runs once per resource on every plan.
        """
        if desired.section == "prompts":
            template = desired.spec.get("template")
            value = template.get("file") if isinstance(template, dict) else None
        else:
            value = desired.spec.get(_PATH_FIELD[desired.section])
        if not isinstance(value, str) or _is_uri(value):
            return None
        real = self._real.get(value)
        if real is None:  # not checked in this run (a restore, an apply of a saved plan)
            real = self._real[value] = self._guard.real(value, _WHAT[desired.section])
        return real

    def _root_problems(self) -> list[Problem]:
        """The registry's own ``root`` is written to: inside the spec dir, `.mlx` or mlx.paths."""
        if self._root_refused is None:
            ctx = self.context
            guard = PathGuard(ctx.root, ctx.allowed_paths, data_dir=ctx.data_dir)
            value = str(self.config.get("root", ".mlx/registry"))
            try:
                guard.confine(value, "registry root", contents=False)
                self._root_refused = ""
            except PathRefused as exc:
                self._root_refused = str(exc)
        return [Problem(("provider",), self._root_refused)] if self._root_refused else []

    def _confine(self, value: str, what: str) -> str:
        real = self._real[value] = self._guard.real(value, what)
        return real

    def check(self, desired: Desired) -> list[Problem]:
        if problems := self._root_problems():
            return problems
        if desired.section == "prompts":
            template = desired.spec.get("template")
            value = template.get("file") if isinstance(template, dict) else None
            if not isinstance(value, str) or _is_uri(value):
                return []
            source = value if value.startswith("/") else f"{self._root_str}/{value}"
            self._checked.add(source)
            try:
                real = self._confine(value, "template file")
            except PathRefused as exc:
                return [Problem(("template", "file"), str(exc))]
            if not os.path.isfile(real):
                return [Problem(("template", "file"), f"template file not found: {source}")]
            return []
        field = _PATH_FIELD[desired.section]
        value = desired.spec.get(field, "")
        if _is_uri(value):
            return [
                Problem(
                    (field,),
                    f"the embedded local registry reads local paths, not {value!r}: "
                    "name a provider that can read it (e.g. `provider: <an s3 provider>`)",
                )
            ]
        # plain concatenation: os.path.join costs more than the rest of a no-op plan here
        source = value if value.startswith("/") else f"{self._root_str}/{value}"
        self._checked.add(source)
        what = _WHAT[desired.section]
        try:
            real = self._confine(value, what)
        except PathRefused as exc:
            return [Problem((field,), str(exc))]
        if not os.path.exists(real):
            return [Problem((field,), f"{what} not found: {source}")]
        if desired.section == "models":
            problem = self._schemas.problem(desired.spec, Path(real))
            if problem:
                return [Problem(("inputs",), problem)]
        return []

    def fingerprint(self, desired: Desired) -> str | None:
        source = self._source(desired)
        if source is None:
            return None
        try:
            return self.hasher.digest(source)
        except FileNotFoundError:
            return None

    def plan_inputs(self) -> list[str] | None:
        return sorted(self._checked | self.hasher.touched)

    def planned_outputs(self, desired: Desired) -> dict[str, Any]:
        """A prompt's fingerprint covers its whole document: computed now, as ``_register`` will.
        A model's input schema is read now too (declared, or from the artifact, never run)."""
        if desired.restore is not None or desired.section not in ("prompts", "models"):
            return super().planned_outputs(desired)
        if desired.section == "models":
            out = super().planned_outputs(desired)
            with contextlib.suppress(SchemaConflict):  # check() reported it: known once fixed
                out["input_schema"] = self._input_schema(desired)
            return out
        blob = self._prompt_blob(desired)
        return {} if blob is None else {"fingerprint": "sha256:" + hashlib.sha256(blob).hexdigest()}

    def _prompt_blob(self, desired: Desired) -> bytes | None:
        source = self._source(desired)
        if source is not None and not os.path.isfile(source):
            return None
        text = Path(source).read_text() if source is not None else str(desired.spec["template"])
        if contains_unknown(desired.spec):
            return None
        doc = prompt_document(desired.spec, text)
        # The stored document is indented (its sha256 is the prompt's fingerprint, so its
        # bytes cannot change), and ``indent`` makes json use its pure-Python encoder: a
        # plan and the apply after it build each prompt's document twice, so remember it
        # under its compact dump (C encoder, cheap).
        key = json.dumps(doc, sort_keys=True)
        blob = self._documents.get(key)
        if blob is None:
            blob = self._documents[key] = json.dumps(doc, sort_keys=True, indent=2).encode()
        return blob

    # -- applying -----------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        return self._register(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        recorded = VersionRef.of(prior.outputs)
        if change.behaviour or change.content or not recorded.version:
            return self._register(desired)
        # metadata only: same version, new description/labels/tags
        version = recorded.number
        self._write_object(desired, version)
        self.registry.set_tags(desired.section, desired.name, version, self._tags(desired))
        return Result(dict(prior.outputs))

    def delete(self, prior: Prior) -> None:
        self.registry.delete_object(prior.section, prior.name)

    def read(self, prior: Prior) -> Observed | None:
        obj = self.registry.get_object(prior.section, prior.name)
        if obj is None:
            return None
        version = obj.get("current")
        data = (
            self.registry.get_version(prior.section, prior.name, int(version)) if version else None
        )
        notes = []
        if data is None:
            notes.append(f"version {version} was deleted from the registry")
        elif not self.registry.stored(data.get("content", {})):
            notes.append(f"the stored content of version {version} is missing")
        number_key = "revision" if prior.section == "datasets" else "version"
        uri_key = "uri_resolved" if prior.section == "datasets" else "uri"
        outputs = {
            number_key: version if data is not None else None,
            "fingerprint": data.get("fingerprint") if data else None,
            uri_key: self._uri(prior.section, prior.name, version),
            "aliases": obj.get("aliases", {}),
        }
        notes.extend(self._local_bytes_moved(prior))
        # a prompt version's fingerprint covers its whole document, not just the template
        # file the plan fingerprints, so only models and datasets compare content here
        content = None if prior.section == "prompts" else outputs["fingerprint"]
        return Observed(outputs, content, tuple(notes))

    def _local_bytes_moved(self, prior: Prior) -> list[str]:
        """For local content the object *is* the bytes at the path: did they change?"""
        desired = Desired(prior.address, prior.section, prior.name, prior.attributes)
        source = self._source(desired)
        if source is None or prior.fingerprint is None:
            return []
        shown = source.removeprefix(self._root_str + "/")
        try:
            now = self.hasher.digest(source)
        except FileNotFoundError:
            return [f"{shown} was deleted"]
        except OSError as exc:
            return [f"{shown} cannot be read: {exc.strerror or exc}"]
        if now == prior.fingerprint:
            return []
        return [f"bytes at {shown} changed: {prior.fingerprint[:19]}… -> {now[:19]}…"]

    # -- registry capabilities ----------------------------------------------------------
    def _version_data(self, section: str, name: str, outputs: Mapping[str, Any]) -> Any:
        ref = VersionRef.of(outputs)
        if not ref.known:
            return None
        data = self.registry.get_version(section, name, ref.number)
        if data is None or data.get("fingerprint") != outputs.get("fingerprint"):
            # the object was deleted (or re-created): find the version by content
            want = outputs.get("fingerprint")
            data = next(
                (
                    d
                    for d in self.registry.versions(section, name).values()
                    if d.get("fingerprint") == want
                ),
                None,
            )
        return data

    def _stored_content(
        self, section: str, name: str, outputs: Mapping[str, Any]
    ) -> dict[str, str]:
        """Where the content of a recorded version lives, for restoring it."""
        data = self._version_data(section, name, outputs)
        content = data.get("content") if data else None
        if content is None:
            sha = str(outputs.get("fingerprint") or "").removeprefix("sha256:")
            tree = (self.root / "trees" / f"{sha}.json").exists()
            content = {"tree": sha} if tree else {"blob": sha}
        if not self.registry.stored(content):
            raise ProviderError(
                f"{section}.{name}: cannot restore version {VersionRef.of(outputs).version} "
                f"({outputs.get('fingerprint')}): its content is no longer in the registry"
            )
        return content

    def has_version(self, section: str, name: str, outputs: Mapping[str, Any]) -> bool:
        data = self._version_data(section, name, outputs)
        if data is not None:
            return self.registry.stored(data.get("content", {}))
        # deleted objects keep their blobs: a version can come back from its fingerprint
        fp = str(outputs.get("fingerprint") or "")
        return fp.startswith("sha256:") and (
            self.registry.has_blob(fp.removeprefix("sha256:"))
            or (self.root / "trees" / f"{fp.removeprefix('sha256:')}.json").exists()
        )

    def materialize(
        self, section: str, name: str, outputs: Mapping[str, Any], target: Path
    ) -> Path:
        return self.registry.materialize(self._stored_content(section, name, outputs), target)

    def get_alias(self, section: str, name: str, alias: str) -> dict[str, Any] | None:
        obj = self.registry.get_object(section, name) or {}
        number = (obj.get("aliases") or {}).get(alias)
        if number is None:
            return None
        data = self.registry.get_version(section, name, int(number))
        if data is None:
            return None
        key = "revision" if section == "datasets" else "version"
        return {
            key: number,
            "fingerprint": data.get("fingerprint"),
            "uri": self._uri(section, name, number),
        }

    def set_alias(self, section: str, name: str, alias: str, outputs: Mapping[str, Any]) -> None:
        obj = self.registry.get_object(section, name)
        if obj is None:
            raise ProviderError(f"{section}.{name} is not in the local registry")
        aliases = dict(obj.get("aliases") or {})
        ref = VersionRef.of(outputs)
        if not ref.known:
            aliases.pop(alias, None)
        else:
            aliases[alias] = ref.number
        obj["aliases"] = aliases
        self.registry.put_object(section, name, obj)

    # -- helpers --------------------------------------------------------------------
    def _input_schema(self, desired: Desired) -> dict[str, Any] | None:
        """The model version's input schema: ``inputs:``, else read from its artifact."""
        source = self._source(desired)
        path = Path(source) if source is not None and os.path.exists(source) else None
        return self._schemas.of(desired.spec, path, desired.fingerprint)

    def _register(self, desired: Desired) -> Result:
        section, name = desired.section, desired.name
        # read before anything is written: a schema the spec contradicts registers nothing
        schema = self._recorded_schema(desired) if section == "models" else None
        if desired.restore is not None:
            fingerprint = str(desired.restore.get("fingerprint"))
            content = self._stored_content(section, name, desired.restore)
        elif section == "prompts":
            blob = self._prompt_blob(desired)
            if blob is None:
                raise ProviderError(f"{desired.address}: its template file does not exist")
            sha = self.registry.put_bytes(blob)
            content, fingerprint = {"blob": sha}, f"sha256:{sha}"
        else:
            source = self._source(desired)
            if source is None or not os.path.exists(source):
                raise ProviderError(f"{desired.address}: {source} does not exist")
            content = self.registry.put(Path(source))
            fingerprint = desired.fingerprint or self.hasher.digest(source)
        meta = {key: desired.spec.get(key) for key in _META}
        version, _new = self.registry.register(
            section, name, fingerprint, content, self._tags(desired), obj=meta
        )
        outputs: dict[str, Any] = {"fingerprint": fingerprint}
        if section == "datasets":
            # `version` is the dataset's own pinned version (a spec field): the registry's
            # counter is its `revision`, and `snapshot` the stored bytes' digest.
            outputs["revision"] = version
            outputs["snapshot"] = next(iter(content.values()))
            outputs["uri_resolved"] = self._uri(section, name, version)
        else:
            outputs["version"] = version
            outputs["uri"] = self._uri(section, name, version)
        if section == "models":
            outputs["input_schema"] = schema
        return Result(outputs)

    def _recorded_schema(self, desired: Desired) -> dict[str, Any] | None:
        """What a version records as its input schema (a restored one: what it recorded)."""
        if desired.restore is not None:
            schema = desired.restore.get("input_schema")
            return dict(schema) if isinstance(schema, Mapping) else None
        try:
            return self._input_schema(desired)
        except SchemaConflict as exc:
            raise ProviderError(f"{desired.address}: {exc}") from None

    def _write_object(self, desired: Desired, version: int) -> None:
        obj = self.registry.get_object(desired.section, desired.name) or {"aliases": {}}
        for key in _META:
            obj[key] = desired.spec.get(key)
        obj["current"] = version
        self.registry.put_object(desired.section, desired.name, obj)

    def _tags(self, desired: Desired) -> dict[str, Any]:
        tags: dict[str, Any] = {"mlx.address": desired.address}
        for key in ("lineage", "card", "flavor", "format", "schema", "provenance", "labeling"):
            if desired.spec.get(key) is not None:
                tags[key] = desired.spec[key]
        snapshots = {
            addr: {k: out.get(k) for k in ("revision", "fingerprint", "snapshot") if k in out}
            for addr, out in desired.inputs.items()
            if addr.startswith("datasets.")
        }
        if snapshots:
            tags["data_snapshots"] = snapshots
        return tags

    def _uri(self, section: str, name: str, version: Any) -> str:
        return f"local://{section}/{name}/{version}"

    def close(self) -> None:
        self.hasher.save()
        self.registry.close()
