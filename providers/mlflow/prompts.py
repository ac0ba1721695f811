"""Prompts in MLflow's prompt registry.

Every registration adds a version, so mlx registers only a new *document*
(template plus everything that changes behaviour: system, model, params,
retrieval, routing — the same document, and so the same fingerprint, as the
local registry's). A version whose ``mlx.fingerprint`` tag already holds it is
reused, which also makes a rollback land on the old version number.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contract import Desired, Observed, Prior, ProviderError
from providers.mlflow import tags as T
from providers.mlflow.aliases import AliasedRegistry
from providers.mlflow.client import as_int, is_not_found

#: Version tag holding the document without its template (the template is the version's).
DOCUMENT_TAG = "mlx.prompt"
_MODEL_CONFIG_KEYS = (
    "temperature",
    "max_tokens",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "stop_sequences",
)


def document_fingerprint(doc: Mapping[str, Any]) -> str:
    blob = json.dumps(doc, sort_keys=True, indent=2).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


class PromptRegistry(AliasedRegistry):
    kind = "prompts"

    # -- registering -------------------------------------------------------------------
    def register(self, desired: Desired, doc: dict[str, Any]) -> dict[str, Any]:
        name, fingerprint = desired.name, document_fingerprint(doc)
        self._ensure_prompt(desired)
        pv = self._by_fingerprint(name, fingerprint)
        if pv is None:
            rest = {k: v for k, v in doc.items() if k != "template"}
            pv = self.client.create_prompt_version(
                name,
                _template(doc),
                description=f"{desired.address} via mlx",
                tags={
                    T.ADDRESS: desired.address,
                    T.FINGERPRINT: fingerprint,
                    DOCUMENT_TAG: json.dumps(rest, sort_keys=True),
                },
                model_config=_model_config(doc),
            )
        self.sync_metadata(desired)
        return self.outputs(name, pv.version, fingerprint)

    def restore(self, desired: Desired, restore: Mapping[str, Any]) -> dict[str, Any]:
        """A rollback to the version ``restore`` describes (by number or by document)."""
        self._ensure_prompt(desired)
        pv = self.find(desired.name, restore)
        if pv is None:
            raise ProviderError(
                f"{desired.address}: cannot restore version {restore.get('version')} "
                f"({restore.get('fingerprint')}): it is no longer in MLflow"
            )
        self.sync_metadata(desired)
        return self.outputs(desired.name, pv.version, (pv.tags or {}).get(T.FINGERPRINT))

    def _ensure_prompt(self, desired: Desired) -> None:
        """The prompt, created — or adopted, when it exists (retired or not)."""
        prompt = self.client.get_prompt(desired.name)
        if prompt is not None:
            self.unretire(desired.name, dict(prompt.tags or {}))
            return
        self.client.create_prompt(
            desired.name,
            description=desired.spec.get("description") or None,
            tags=T.object_tags(desired),
        )

    def sync_metadata(self, desired: Desired) -> None:
        name = desired.name
        prompt = self.client.get_prompt(name)
        current = dict(prompt.tags or {}) if prompt is not None else {}
        wanted = T.object_tags(desired)
        for key, value in wanted.items():
            if current.get(key) != value:
                self.client.set_prompt_tag(name, key, value)
        for key in T.stale(current, wanted, keep=()):
            self.client.delete_prompt_tag(name, key)
        self.restore_aliases(name)

    # -- reading -----------------------------------------------------------------------
    def read(self, prior: Prior) -> Observed | None:
        name = prior.name
        prompt = self.client.get_prompt(name)
        if prompt is None or self.retired(dict(prompt.tags or {})):
            return None  # gone, or deleted by mlx (kept, with every version)
        version = as_int(prior.outputs.get("version"))
        pv = self._version(name, version)
        notes = []
        if pv is None:
            notes.append(f"version {version} was deleted from MLflow outside mlx")
            outputs: dict[str, Any] = {"version": None, "fingerprint": None, "uri": None}
        else:
            outputs = self.outputs(name, pv.version, (pv.tags or {}).get(T.FINGERPRINT))
        aliases, moved = self.alias_drift(name, dict(prompt.tags or {}))
        outputs["aliases"] = aliases
        # a prompt's fingerprint covers its whole document, not only the template file
        # the plan fingerprints: compared through the outputs, not as content
        return Observed(outputs, None, tuple(notes + moved))

    # -- the client calls AliasedRegistry needs ----------------------------------------
    def _get_version(self, name: str, version: int) -> Any:
        return self.client.get_prompt_version(name, version)

    def _get_by_alias(self, name: str, alias: str) -> Any:
        return self.client.get_prompt_version_by_alias(name, alias)

    def _point_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_prompt_alias(name, alias, version)

    def _drop_alias(self, name: str, alias: str) -> None:
        self.client.delete_prompt_alias(name, alias)

    def _set_tag(self, name: str, key: str, value: str) -> None:
        self.client.set_prompt_tag(name, key, value)

    def _drop_tag(self, name: str, key: str) -> None:
        self.client.delete_prompt_tag(name, key)

    def _object_tags(self, name: str) -> dict[str, str] | None:
        prompt = self.client.get_prompt(name)
        return None if prompt is None else dict(prompt.tags or {})

    def _versions(self, name: str) -> list[Any]:
        out: list[Any] = []
        token = None
        while True:
            try:
                page = self.client.search_prompt_versions(name, page_token=token)
            except Exception as exc:
                if is_not_found(exc):
                    return []
                raise
            out.extend(page)
            token = getattr(page, "token", None)
            if not token:
                return out

    def _by_fingerprint(self, name: str, fingerprint: str | None) -> Any:
        if not fingerprint:
            return None
        found = [pv for pv in self._versions(name) if pv.tags.get(T.FINGERPRINT) == fingerprint]
        return min(found, key=lambda pv: as_int(pv.version) or 0, default=None)

    def document(self, name: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """The document of a registered version (what ``materialize`` hands to gates)."""
        pv = self.find(name, outputs)
        if pv is None:
            raise ProviderError(
                f"prompts.{name}: version {outputs.get('version')} is not in MLflow any more"
            )
        doc = json.loads(pv.tags.get(DOCUMENT_TAG) or "{}")
        template = pv.template
        if isinstance(template, list):  # a chat prompt: the user turn is the template
            template = next((m["content"] for m in reversed(template) if m["role"] == "user"), "")
        doc["template"] = template
        return doc

    def materialize(self, name: str, outputs: Mapping[str, Any], target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.document(name, outputs), sort_keys=True, indent=2))
        return target

    def delete(self, name: str) -> None:
        """Never ``delete_prompt`` (nor a version): retire it, every version kept."""
        self.retire(name)

    @staticmethod
    def outputs(name: str, version: Any, fingerprint: str | None) -> dict[str, Any]:
        number = as_int(version)
        return {"version": number, "uri": f"prompts:/{name}/{number}", "fingerprint": fingerprint}


def _template(doc: Mapping[str, Any]) -> str | list[dict[str, str]]:
    if doc.get("system"):
        return [
            {"role": "system", "content": str(doc["system"])},
            {"role": "user", "content": str(doc["template"])},
        ]
    return str(doc["template"])


def _model_config(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """MLflow's own model settings of a prompt version, so its UI shows them."""
    params = dict(doc.get("params") or {})
    if not doc.get("model") and not params:
        return None
    config: dict[str, Any] = {k: params.pop(k) for k in _MODEL_CONFIG_KEYS if k in params}
    if doc.get("model"):
        config["model_name"] = str(doc["model"])
    if params:
        config["extra_params"] = params
    from mlflow.entities.model_registry.prompt_version import PromptModelConfig

    try:
        PromptModelConfig(**config)
    except (TypeError, ValueError):
        return None  # settings MLflow cannot type: they are in the document tag all the same
    return config
