"""Endpoints on the embedded gateway (``type: gateway``, the default provider of ``endpoints``).

The control plane of ``mlx serve``: an endpoint is one *route document*
(``docs/gateway.md``) in the state database's route table (``dataplane.table``), keyed by
environment and endpoint name. Every ``mlx serve`` replica polls the table and serves what
the documents say; nothing here talks to a replica.

* ``create`` deploys the served version as variant ``v<version>`` with every request on it;
* ``deploy`` adds a variant taking no traffic, ``set_traffic`` moves the split, ``retire``
  drops a variant that takes none: each is one document write, atomic for the replicas;
* ``update`` to a new version is create-before-destroy through those three, so every
  document written names a deployed stable variant; the same version repairs a split edited
  behind mlx's back (back to the recorded one) and rewrites the settings;
* ``variant_metrics`` reads the inference log (``Context.log_url``) per role.

A model's artifact is copied once per fingerprint under ``<data dir>/gateway/artifacts``
(``artifacts``) and the document names its absolute path; a prompt's variant carries its
template, system text, model and params. The document never holds a secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contract import (
    Change,
    Context,
    Desired,
    LogSource,
    Observed,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Result,
    Role,
    Serving,
    Traffic,
    Variant,
    VariantMetrics,
    VersionRef,
)
from providers.gateway import routes
from providers.gateway import settings as endpoint_settings
from providers.gateway.artifacts import ArtifactCache
from providers.gateway.stores import Stores, guarded
from providers.gateway.variants import EntryBuilder
from specs.providers import GatewayProviderConfig

if TYPE_CHECKING:
    from dataplane.table import Route


class GatewayProvider(Provider, Serving, LogSource):
    sections = frozenset({"endpoints"})
    config_model = GatewayProviderConfig
    type_name = "gateway"
    #: The upstream key of a prompt endpoint; never written to the route document (its
    #: reference is: ``settings.key_ref``).
    secret_fields = {"endpoints": ("client.api_key",)}

    def __init__(self, config: Mapping[str, Any], context: Context):
        super().__init__(config, context)
        self.settings: GatewayProviderConfig
        self.stores = Stores(context)
        self._root_problem: str | None = None
        self.artifacts = ArtifactCache(self._artifacts_root())
        self._entries = EntryBuilder(context.peers, self.artifacts)

    def _validated_settings(self) -> Any:
        """The config, or one line naming every bad field (pydantic's text spans lines)."""
        try:
            return GatewayProviderConfig.model_validate({"type": "gateway", **self.config})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ProviderError(f"invalid gateway provider config: {problems}") from exc

    def _artifacts_root(self) -> Path:
        value = self.settings.artifacts_dir
        if value is None:
            return (self.context.data_dir / "gateway" / "artifacts").absolute()
        path = Path(value)
        return (path if path.is_absolute() else self.context.root / path).absolute()

    # -- the route table --------------------------------------------------------------
    def _get(self, endpoint: Prior | Desired) -> Route | None:
        return self.stores.get(endpoint.address, endpoint.name)

    def _put(self, endpoint: Prior | Desired, doc: dict[str, Any]) -> int:
        return self.stores.put(endpoint.address, endpoint.name, doc)

    def _live(self, endpoint: Prior, doing: str) -> Route:
        route = self._get(endpoint)
        if route is None:
            raise ProviderError(
                f"{endpoint.address}: cannot {doing}: the gateway has no route for "
                f"{endpoint.name} (environment {self.context.environment}); apply it first"
            )
        if not routes.well_formed(route.doc):
            raise ProviderError(
                f"{endpoint.address}: cannot {doing}: its route document was not written by "
                "mlx (or by another version of it); apply the endpoint to rewrite it"
            )
        return route

    def close(self) -> None:
        self.stores.close()

    # -- planning ---------------------------------------------------------------------
    def plan_inputs(self) -> list[str] | None:
        return []  # planning an endpoint reads nothing but its spec

    def check(self, desired: Desired) -> list[Problem]:
        spec, problems = desired.spec, list(self._root_problems())
        serves = spec.get("serves")
        if not (isinstance(serves, str) and serves.startswith(("models.", "prompts."))):
            problems.append(
                Problem(("serves",), f"an endpoint serves a model or a prompt, not {serves!r}")
            )
            return problems
        if routes.kind_of(serves) == "prompt":
            if not spec.get("client"):
                problems.append(
                    Problem(
                        ("client",),
                        f"a prompt endpoint needs its LLM upstream: add `client: {{type: openai, "
                        f'base_url: …, api_key: "${{env.OPENAI_API_KEY}}"}}` ({serves})',
                    )
                )
        else:
            for key in ("client", "cache"):
                if spec.get(key):
                    problems.append(
                        Problem(
                            (key,),
                            f"`{key}` is for prompt endpoints; {desired.address} serves the "
                            f"model {serves}",
                        )
                    )
        payloads = (spec.get("log") or {}).get("payloads", 0)
        if isinstance(payloads, int | float) and not 0 <= payloads <= 1:
            problems.append(
                Problem(("log", "payloads"), f"a share of requests in 0..1, not {payloads}")
            )
        return problems

    def _root_problems(self) -> list[Problem]:
        """A configured ``artifacts_dir`` is written to: the spec dir, `.mlx` or mlx.paths."""
        value = self.settings.artifacts_dir
        if value is None:
            return []
        if self._root_problem is None:
            from providers.files import PathGuard, PathRefused

            ctx = self.context
            guard = PathGuard(ctx.root, ctx.allowed_paths, data_dir=ctx.data_dir)
            try:
                guard.confine(value, "gateway artifacts_dir", contents=False)
                self._root_problem = ""
            except PathRefused as exc:
                self._root_problem = str(exc)
        return [Problem(("provider",), self._root_problem)] if self._root_problem else []

    def planned_outputs(self, desired: Desired) -> dict[str, Any]:
        out = super().planned_outputs(desired)
        out["url"] = self._url(desired.name)
        serves = desired.spec.get("serves")
        outputs = desired.inputs.get(serves) if isinstance(serves, str) else None
        version = VersionRef.of(outputs).version if isinstance(outputs, Mapping) else None
        if isinstance(version, int | str) and not isinstance(version, bool):
            out["stable_version"] = version
        return out

    # -- applying ---------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        """A fresh route serving the desired version (over whatever an interrupted run left)."""
        self.stores.routes(desired.address)  # no state database: say so before fetching
        doc = self._fresh(desired, deployment=uuid.uuid4().hex[:16])
        return Result(self._outputs(doc, self._put(desired, doc)))

    def _fresh(self, desired: Desired, deployment: str) -> dict[str, Any]:
        variant = self._served(desired, taken={})
        return routes.document(
            endpoint=desired.name,
            address=desired.address,
            environment=self.context.environment,
            subject=variant.subject,
            deployment=deployment,
            variants={variant.name: self._entries.entry(variant, desired.address)},
            traffic=Traffic(variant.name),
            settings=self._settings(desired),
        )

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        route = self._get(desired)
        if route is None:
            return self.create(desired)  # deleted behind mlx's back: make it again
        doc = route.doc
        subject, outputs = self._target(desired)
        deployment = doc.get("deployment") if isinstance(doc, Mapping) else None
        if not routes.well_formed(doc) or doc.get("subject") != subject:
            # another subject (or a document mlx cannot read): one write, never unserved
            fresh = self._fresh(desired, str(deployment or uuid.uuid4().hex[:16]))
            return Result(self._outputs(fresh, self._put(desired, fresh)))
        wanted = self._settings(desired)
        current = routes.served_by(doc, outputs.get("fingerprint"), VersionRef.of(outputs).version)
        split = routes.traffic_of(doc)
        metadata_only = change.metadata and not (change.behaviour or change.content)
        if current is not None and (metadata_only or split.stable == current):
            # same version: settings only; a behaviour update also restores the recorded split
            new = routes.with_settings(doc, wanted)
            if not metadata_only:
                new = routes.with_traffic(new, self._recorded_split(prior, new, current))
                new = self._refetched(desired, new)
                new = routes.with_input_schema(new, current, outputs)
            generation = self._put(desired, new) if new != doc else route.generation
            return Result(self._outputs(new, generation))
        # a new version: create-before-destroy, one document write per step
        if routes.with_settings(doc, wanted) != doc:
            self._put(desired, routes.with_settings(doc, wanted))
        variant = self._served(desired, taken=doc["variants"])
        if current is not None:
            variant = Variant(current, variant.subject, variant.outputs, variant.spec)
        self.deploy(prior, variant)
        self.set_traffic(prior, Traffic(variant.name))
        for old in sorted(doc["variants"]):
            if old != variant.name:
                self.retire(prior, old)
        final = self._live(prior, "read back the route")
        return Result(self._outputs(final.doc, final.generation))

    def _recorded_split(self, prior: Prior, doc: Mapping[str, Any], stable: str) -> Traffic:
        """The split mlx recorded, if it still fits ``doc`` with ``stable``; else the live one."""
        recorded = prior.outputs.get("traffic")
        if isinstance(recorded, Mapping):
            try:
                split = routes.checked_traffic(doc, Traffic.from_dict(recorded))
            except (routes.TrafficError, KeyError, TypeError, ValueError):
                split = None
            if split is not None and split.stable == stable:
                return split
        return routes.traffic_of(doc)

    def _refetched(self, desired: Desired, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` with every variant whose artifact copy is gone, or is not the recorded
        bytes, fetched again (the copy is replaced; its digest stays the recorded one)."""
        broken = [*routes.missing_artifacts(doc), *routes.unverified_artifacts(doc)]
        for name in sorted(set(broken)):
            entry = doc["variants"][name]
            outputs = {
                "version": entry.get("version"),
                "fingerprint": entry.get("fingerprint"),
                **(entry.get("outputs") or {}),
            }
            if "input_schema" in entry:
                outputs["input_schema"] = entry["input_schema"]
            variant = self._variant(name, str(doc["subject"]), outputs)
            fresh = self._entries.entry(variant, desired.address, routes.expected_digest(entry))
            doc = routes.with_variant(doc, fresh)
        return doc

    def delete(self, prior: Prior) -> None:
        """Remove the route; gone is fine. A route a later create made is not this record's."""
        route = self._get(prior)
        if route is None:
            return
        mine = prior.outputs.get("deployment")
        live = route.doc.get("deployment") if isinstance(route.doc, Mapping) else None
        if mine and live and mine != live:
            self.context.log(
                f"{prior.address}: kept the route of {prior.name}: it was deployed again since "
                f"(deployment {live}, this record's {mine})"
            )
            return
        self.stores.delete(prior.address, prior.name)

    def read(self, prior: Prior) -> Observed | None:
        route = self._get(prior)
        if route is None:
            return None
        doc = route.doc
        if not routes.well_formed(doc):
            return Observed(
                {"subject": doc.get("subject") if isinstance(doc, Mapping) else None},
                notes=("the route document was rewritten outside mlx: it no longer serves",),
            )
        outputs = self._outputs(doc, route.generation)
        # the generation rises with every write (a rollout step too): a fact, not drift
        outputs.pop("generation")
        notes = [
            f"the artifact of {name} is gone: {doc['variants'][name]['artifact']}"
            for name in routes.missing_artifacts(doc)
        ]
        notes += [
            f"the served copy of {name} (version {doc['variants'][name].get('version')}) is not "
            f"the gated bytes: {doc['variants'][name]['artifact']}: {why} (mlx serve refuses "
            "to load it; `mlx apply` fetches it again)"
            for name, why in routes.unverified_artifacts(doc).items()
        ]
        edited = endpoint_settings.edited(doc, prior.attributes)
        if edited:
            notes.append(f"route settings changed outside mlx: {', '.join(edited)}")
        return Observed(outputs, notes=tuple(notes))

    # -- serving ----------------------------------------------------------------------
    def deploy(self, endpoint: Prior, variant: Variant) -> None:
        """Add ``variant`` taking no traffic (already there with the same content: nothing)."""
        route = self._live(endpoint, f"deploy {variant.name}")
        doc = route.doc
        if doc.get("subject") != variant.subject:
            raise ProviderError(
                f"{endpoint.address}: cannot deploy {variant.subject} on {endpoint.name}: it "
                f"serves {doc.get('subject')}"
            )
        existing = doc["variants"].get(variant.name)
        if existing is not None:
            if existing.get("fingerprint") == variant.fingerprint:
                return
            raise ProviderError(
                f"{endpoint.address}: variant {variant.name} of {endpoint.name} already serves "
                f"{existing.get('fingerprint')}, not {variant.fingerprint}"
            )
        entry = self._entries.entry(variant, endpoint.address)
        self._put(endpoint, routes.with_variant(doc, entry))

    def set_traffic(self, endpoint: Prior, traffic: Traffic) -> None:
        route = self._live(endpoint, "move traffic")
        try:
            split = routes.checked_traffic(route.doc, traffic)
        except routes.TrafficError as exc:
            raise ProviderError(f"{endpoint.address}: {exc}") from None
        if split != routes.traffic_of(route.doc):
            self._put(endpoint, routes.with_traffic(route.doc, split))

    def traffic(self, endpoint: Prior) -> Traffic | None:
        route = self._get(endpoint)
        if route is None or not routes.well_formed(route.doc):
            return None
        return routes.traffic_of(route.doc)

    def retire(self, endpoint: Prior, variant: str) -> None:
        """Drop ``variant``; refused while it is stable or takes traffic; gone is fine."""
        route = self._get(endpoint)
        if route is None:
            return
        if not routes.well_formed(route.doc):
            route = self._live(endpoint, f"retire {variant}")  # raises, saying why
        if variant not in route.doc["variants"]:
            return
        why = routes.retirable(route.doc, variant)
        if why is not None:
            raise ProviderError(f"{endpoint.address}: cannot retire {why}")
        self._put(endpoint, routes.without_variant(route.doc, variant))

    def variant_metrics(
        self, endpoint: Prior, since: float, until: float
    ) -> Mapping[Role, VariantMetrics]:
        from providers.gateway.metrics import role_metrics

        store = self.stores.log(endpoint.address)
        if store is None:
            return {role: VariantMetrics() for role in Role}
        env = self.context.environment
        return guarded(
            endpoint.address,
            "read the inference log",
            lambda: role_metrics(store, endpoint.name, env, since, until),
        )

    def log_url(self, endpoint: Prior) -> str | None:
        """Every endpoint this provider serves logs to the one inference log of the run."""
        return self.stores.log_url()

    def shadow_pairs(self, endpoint: Prior, since: float, until: float) -> list[dict[str, Any]]:
        """Each mirrored request with the caller's answer (the inference log's pairs)."""
        from inference.query import pairs

        store = self.stores.log(endpoint.address)
        if store is None:
            return []
        env = self.context.environment
        found = guarded(
            endpoint.address,
            "read the inference log",
            lambda: pairs(store, endpoint.name, since=since, until=until, environment=env),
        )
        return [
            {
                "primary_status": p.primary.status,
                "shadow_status": p.shadow.status,
                "primary_latency_ms": p.primary.latency_ms,
                "shadow_latency_ms": p.shadow.latency_ms,
                "primary_label": _label(p.primary.outputs),
                "shadow_label": _label(p.shadow.outputs),
            }
            for p in found
        ]

    # -- helpers ----------------------------------------------------------------------
    def _url(self, name: str) -> str:
        return f"{self.settings.base_url.rstrip('/')}/endpoints/{name}"

    def _outputs(self, doc: Mapping[str, Any], generation: int) -> dict[str, Any]:
        return {**routes.outputs(doc, self._url(str(doc["endpoint"]))), "generation": generation}

    @staticmethod
    def _target(desired: Desired) -> tuple[str, Mapping[str, Any]]:
        subject = str(desired.spec.get("serves") or "")
        outputs = desired.inputs.get(subject)
        if not outputs:
            raise ProviderError(f"{desired.address}: {subject} has no registered version yet")
        return subject, outputs

    def _served(self, desired: Desired, taken: Mapping[str, Mapping[str, Any]]) -> Variant:
        """The version ``desired`` serves, as a variant named apart from ``taken``."""
        subject, outputs = self._target(desired)
        ref = VersionRef.of(outputs)
        if not ref.fingerprint:
            raise ProviderError(
                f"{desired.address}: version {ref.version!r} of {subject} has no fingerprint"
            )
        name = routes.variant_name(ref.version, str(ref.fingerprint), taken)
        return self._variant(name, subject, outputs)

    def _variant(self, name: str, subject: str, outputs: Mapping[str, Any]) -> Variant:
        peers = self.context.peers
        spec = (peers.spec(subject) if peers is not None else None) or {}
        return Variant(name, subject, dict(outputs), dict(spec))

    @staticmethod
    def _settings(desired: Desired) -> dict[str, Any]:
        try:
            return endpoint_settings.settings(desired.spec, desired.env_refs)
        except endpoint_settings.SettingsError as exc:
            raise ProviderError(f"{desired.address}: {exc}") from None


def _label(outputs: Any) -> Any:
    """A classifier's answer for agreement: the first prediction, if the payload was kept."""
    if isinstance(outputs, dict) and isinstance(outputs.get("predictions"), list):
        predictions = outputs["predictions"]
        return predictions[0] if len(predictions) == 1 else tuple(map(str, predictions))
    return None
