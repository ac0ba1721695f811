"""A served version (``Variant``) into its route-document entry.

Models: the artifact, materialized through the engine's peers into the content-addressed
cache, the digest of its bytes (``mlx serve`` loads nothing else), the model's ``flavor``
(how ``mlx serve`` loads it) and the version's recorded ``input_schema`` (what it checks
requests against). Prompts: what an upstream
call is made of — template, system, model, params, variables, routing — read from the
registered version (the prompt document a registry stores, ``prompt_document`` in
``providers/local/provider.py``), so a served version is exactly the one registered, whatever
the spec files hold now.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract import Peers, ProviderError, Variant
from providers.gateway.artifacts import ArtifactCache, Installed
from providers.gateway.routes import kind_of

_OUTPUT_KEYS = ("version", "revision", "fingerprint", "uri")
PROMPT_FILE = "prompt.json"


class EntryBuilder:
    def __init__(self, peers: Peers | None, cache: ArtifactCache):
        self.peers = peers
        self.cache = cache

    def _peers(self, address: str) -> Peers:
        if self.peers is None:
            raise ProviderError(f"{address}: serving needs the engine's peers (run it via mlx)")
        return self.peers

    def entry(self, variant: Variant, address: str, digest: str | None = None) -> dict[str, Any]:
        """The document entry of ``variant`` (materializing its content if need be; a copy
        whose bytes are not ``digest``, when one was recorded, is fetched again)."""
        fingerprint = variant.fingerprint
        if not fingerprint:
            raise ProviderError(
                f"{address}: version {variant.version!r} of {variant.subject} has no fingerprint"
            )
        entry: dict[str, Any] = {
            "name": variant.name,
            "version": variant.version,
            "fingerprint": fingerprint,
            "outputs": {k: variant.outputs[k] for k in _OUTPUT_KEYS if k in variant.outputs},
        }
        spec = self._spec(variant, address)
        if kind_of(variant.subject) == "model":
            installed = self._artifact(variant, spec, address, digest)
            entry["flavor"] = spec.get("flavor") or _default_flavor()
            entry["artifact"] = str(installed.path.resolve())
            entry["digest"] = installed.digest  # what mlx serve checks the bytes against
            schema = variant.outputs.get("input_schema")
            if schema is not None:
                entry["input_schema"] = schema  # what it checks requests against
        else:
            entry["prompt"] = self._prompt(variant, spec, address)
        entry["deployed_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return entry

    def _spec(self, variant: Variant, address: str) -> Mapping[str, Any]:
        if variant.spec:
            return variant.spec
        return self._peers(address).spec(variant.subject) or {}

    def _fetch(
        self, variant: Variant, address: str, name: str, digest: str | None = None
    ) -> Installed:
        peers = self._peers(address)
        fingerprint = str(variant.fingerprint)

        def fetch(target: Path) -> Path:
            return peers.materialize(variant.subject, variant.outputs, target)

        try:
            return self.cache.ensure(fingerprint, name, fetch, digest)
        except OSError as exc:
            raise ProviderError(
                f"{address}: cannot copy version {variant.version} of {variant.subject} into "
                f"{self.cache.root}: {exc.strerror or exc}"
            ) from exc

    def _artifact(
        self, variant: Variant, spec: Mapping[str, Any], address: str, digest: str | None
    ) -> Installed:
        declared = spec.get("artifact")
        # the declared file's name (``model.joblib``); the cache keeps only its last part
        name = str(declared) if isinstance(declared, str) and declared else "model"
        return self._fetch(variant, address, name, digest)

    def _prompt(self, variant: Variant, spec: Mapping[str, Any], address: str) -> dict[str, Any]:
        path = self._fetch(variant, address, PROMPT_FILE).path
        if not path.is_file():
            raise ProviderError(
                f"{address}: version {variant.version} of {variant.subject} is not a prompt "
                f"document (its registry gave a directory)"
            )
        text = path.read_text(encoding="utf-8")
        stored = _document(text)
        # a registry that hands out the template file itself: the rest comes from the spec
        source: Mapping[str, Any] = stored if stored is not None else {**spec, "template": text}
        template = source.get("template")
        if not isinstance(template, str):
            raise ProviderError(f"{address}: {variant.subject} has no template text")
        variables = source.get("variables") or []
        return {
            "template": template,
            "system": source.get("system"),
            "model": source.get("model"),
            "params": dict(source.get("params") or {}),
            "allow_params": dict(source.get("allow_params") or {}),
            "variables": list(variables),  # a {name: description} map: its names
            "routing": _routing(source.get("routing")),
            "retrieval_version": self._retrieval_version(source.get("retrieval")),
        }

    def _retrieval_version(self, retrieval: Any) -> str | None:
        """The corpus's recorded fingerprint (what the log's ``retrieval_version`` says)."""
        if not isinstance(retrieval, Mapping) or self.peers is None:
            return None
        corpus = retrieval.get("corpus")
        if not isinstance(corpus, str):
            return None
        prior = self.peers.recorded(corpus)
        value = prior.outputs.get("fingerprint") if prior is not None else None
        return str(value) if value else None


def _default_flavor() -> str:
    """The spec's default flavor: resolved specs leave out values equal to their default."""
    from specs.models import Model

    return str(Model.model_fields["flavor"].default)


def _document(text: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("template"), str) else None


def _routing(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    rules = [
        {"when": rule.get("when"), "model": rule.get("model")}
        for rule in value.get("rules") or []
        if isinstance(rule, Mapping)
    ]
    return {"rules": rules, "default": value.get("default")}
