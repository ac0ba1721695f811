"""Endpoints on SageMaker (``type: sagemaker``, boto3): one production variant per version.

An mlx endpoint is a SageMaker endpoint named ``<name_prefix><name>``. Each
version it serves is a SageMaker *model* (the version's artifact as
``model.tar.gz`` on S3, run by ``image`` as ``role_arn``) behind a *production
variant* named ``v<version>``. Traffic is split by variant weights:

* ``deploy`` adds a variant at weight 0 — a new endpoint config holding the
  current variants (with their live weights) plus the new one, then
  ``UpdateEndpoint``;
* ``set_traffic`` moves weights with ``UpdateEndpointWeightsAndCapacities``
  (no redeploy) and records the roles (stable, candidate, weight) as tags on
  the endpoint, so ``traffic()`` reads the split back from SageMaker alone;
* ``retire`` switches to a config without the variant, then deletes its model;
* ``variant_metrics`` reads CloudWatch (``providers.aws.sagemaker_metrics``).

``create`` makes model, config and endpoint; ``update`` to a new version is
create-before-destroy through the three calls above, so some variant always
takes the requests. Shadow traffic (``Traffic.mirror``) is refused: SageMaker's
shadow variants cannot be tested against moto, so they are not mapped.

**Waiting.** Every change waits for the endpoint to be ``InService`` again
(boto3's waiter, bounded by ``wait_timeout_s``, default 30 minutes; moto is
InService at once, AWS takes minutes per ``UpdateEndpoint``). Operations
therefore finish within the call (``Completion.DONE``); a timeout is a
``ProviderError``, and re-applying continues: every step finds what an
interrupted run already made (deterministic names, idempotent steps).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from contract import (
    Change,
    Context,
    Desired,
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
from providers.aws import sagemaker_artifacts as artifacts
from providers.aws import sagemaker_names as names
from providers.aws import sagemaker_traffic as traffic_rules
from providers.aws.sagemaker_live import (
    TAG_ADDRESS,
    TAG_CANDIDATE,
    TAG_ENDPOINT,
    TAG_FINGERPRINT,
    TAG_LABEL,
    TAG_OWNER,
    TAG_SUBJECT,
    TAG_VERSION,
    TAG_WEIGHT,
    UNHEALTHY,
    LiveEndpoint,
    LiveVariant,
    describe,
    fail,
    is_missing,
    list_tags,
    tag_value,
    wait_for,
)
from providers.aws.sagemaker_metrics import variant_metrics, window
from providers.aws.session import make_client, settings
from specs.providers import SageMakerProviderConfig


class SageMakerProvider(Provider, Serving):
    sections = frozenset({"endpoints"})
    config_model = SageMakerProviderConfig
    type_name = "sagemaker"

    def __init__(self, config: Mapping[str, Any], context: Context):
        super().__init__(config, context)
        self.settings: SageMakerProviderConfig
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        #: model name -> {version, fingerprint}, for the models this run made or read
        self._models: dict[str, dict[str, Any]] = {}

    def _validated_settings(self) -> Any:
        """The config, or one line naming every bad field (pydantic's text spans lines)."""
        try:
            return SageMakerProviderConfig.model_validate({"type": "sagemaker", **self.config})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ProviderError(f"invalid sagemaker provider config: {problems}") from exc

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = make_client(
                    service, **settings(self.settings.model_dump())
                )
            return self._clients[service]

    @property
    def sagemaker(self) -> Any:
        return self._client("sagemaker")

    def close(self) -> None:
        with self._lock:
            self._clients.clear()

    # -- planning ---------------------------------------------------------------------
    def plan_inputs(self) -> list[str] | None:
        return []  # planning an endpoint reads nothing but its spec

    def check(self, desired: Desired) -> list[Problem]:
        spec, problems = desired.spec, []
        serves = spec.get("serves")
        if not (isinstance(serves, str) and serves.startswith("models.")):
            problems.append(
                Problem(
                    ("serves",),
                    f"the sagemaker provider serves models (a container runs the artifact), "
                    f"not {serves}",
                )
            )
        if spec.get("client"):
            problems.append(
                Problem(("client",), "`client` is for prompt endpoints; sagemaker serves models")
            )
        if spec.get("cache"):
            problems.append(Problem(("cache",), "the sagemaker provider has no response cache"))
        payloads = (spec.get("log") or {}).get("payloads") or 0
        if float(payloads) > 0:
            problems.append(
                Problem(
                    ("log", "payloads"),
                    "the sagemaker provider keeps no payloads (SageMaker data capture is not "
                    "mapped); set it to 0",
                )
            )
        return problems

    def planned_outputs(self, desired: Desired) -> dict[str, Any]:
        out = super().planned_outputs(desired)
        out["endpoint_name"] = self._endpoint_name(desired)
        serves = desired.spec.get("serves")
        outputs = desired.inputs.get(serves) if isinstance(serves, str) else None
        version = VersionRef.of(outputs).version if isinstance(outputs, Mapping) else None
        if isinstance(version, int | str) and not isinstance(version, bool):
            out["stable_version"] = version
        return out

    # -- applying ---------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        name = self._endpoint_name(desired)
        live = describe(self.sagemaker, name)
        if live is not None:
            owner = live.tags.get(TAG_ADDRESS)
            if owner != desired.address:
                raise ProviderError(
                    f"{desired.address}: SageMaker endpoint {name} already exists and is not "
                    f"mlx's {desired.address} (its {TAG_ADDRESS} tag is {owner!r})"
                )
            # made by a run that was interrupted before it recorded anything: adopt it
            return Result(self._converge(live, desired, self._ref(desired, name)))
        variant = self._served(desired, name, taken={})
        model = self._ensure_model(name, variant, desired.address)
        config = self._ensure_config(
            name,
            [self._production_variant(variant.name, model, 1.0)],
            desired.address,
        )
        tags = {**self._endpoint_tags(desired), **traffic_rules.role_tags(Traffic(variant.name))}
        try:
            self.sagemaker.create_endpoint(
                EndpointName=name,
                EndpointConfigName=config,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        except Exception as exc:
            raise fail(exc, f"{desired.address}: cannot create SageMaker endpoint {name}") from exc
        return Result(self._outputs(self._wait(name), variant.subject, {}))

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        name = self._endpoint_name(prior)
        live = describe(self.sagemaker, name)
        if live is None:
            return self.create(desired)  # deleted behind mlx's back: make it again
        metadata_only = change.metadata and not (change.behaviour or change.content)
        ref = self._ref(desired, name, prior.outputs)
        if metadata_only and self._serving_variant(live, desired) is not None:
            self._set_tags(live, self._endpoint_tags(desired))
            return Result(
                self._outputs(self._read_live(name), self._subject(desired), prior.outputs)
            )
        return Result(self._converge(live, desired, ref))

    def _converge(self, live: LiveEndpoint, desired: Desired, ref: Prior) -> dict[str, Any]:
        """Serve ``desired``'s version on ``live``: create-before-destroy, or repair the split.

        Same version as the stable variant: weights edited outside mlx go back to
        the split mlx last set (a rollout's candidate keeps its share). A new
        version: deploy it, move every request to it, then retire the others.
        """
        current = self._serving_variant(live, desired)
        tagged = live.tagged_traffic()
        if current is not None and tagged is not None and tagged.stable == current.name:
            if live.percents() != traffic_rules.expected_percents(live, tagged):
                self.set_traffic(ref, tagged)
        else:
            taken = {v.name: v.model_name or "" for v in live.variants}
            variant = self._served(desired, live.name, taken)
            if current is not None:
                variant = Variant(current.name, variant.subject, variant.outputs, variant.spec)
            self.deploy(ref, variant)
            self.set_traffic(ref, Traffic(variant.name))
            for old in live.names:
                if old != variant.name:
                    self.retire(ref, old)
        live = self._read_live(live.name)
        self._set_tags(live, self._endpoint_tags(desired))
        return self._outputs(live, self._subject(desired), ref.outputs)

    def delete(self, prior: Prior) -> None:
        """Endpoint, its configs, its models and the artifacts mlx uploaded; gone is fine."""
        name = self._endpoint_name(prior)
        client = self.sagemaker
        live = describe(client, name)
        configs: set[str] = set()
        models = {
            str(v["model_name"])
            for v in (prior.outputs.get("variants") or {}).values()
            if isinstance(v, Mapping) and v.get("model_name")
        }
        if live is not None:
            configs.add(live.config_name)
            models |= {v.model_name for v in live.variants if v.model_name}
            self._call(
                f"{prior.address}: cannot delete SageMaker endpoint {name}",
                client.delete_endpoint,
                EndpointName=name,
            )
            self._wait_deleted(name)
        configs |= self._leftover_configs(name)
        for config in sorted(configs):
            models |= self._config_models(config)
            self._call(
                f"{prior.address}: cannot delete endpoint config {config}",
                client.delete_endpoint_config,
                EndpointConfigName=config,
            )
        for model in sorted(models):
            self._call(
                f"{prior.address}: cannot delete SageMaker model {model}",
                client.delete_model,
                ModelName=model,
            )
        artifacts.delete_all(
            self._client("s3"),
            self.settings.bucket,
            f"{self.settings.prefix}{name}/",
            prior.address,
        )

    def read(self, prior: Prior) -> Observed | None:
        live = describe(self.sagemaker, self._endpoint_name(prior))
        if live is None:
            return None
        subject = live.tags.get(TAG_SUBJECT) or str(prior.outputs.get("subject") or "")
        outputs = self._outputs(live, subject, prior.outputs)
        notes: list[str] = []
        if live.status in UNHEALTHY:
            reason = f": {live.failure_reason}" if live.failure_reason else ""
            notes.append(f"SageMaker endpoint {live.name} is {live.status}{reason}")
        if live.config_missing:
            notes.append(f"endpoint config {live.config_name} was deleted outside mlx")
        return Observed(outputs, outputs.get("fingerprint"), tuple(notes))

    # -- serving ----------------------------------------------------------------------
    def deploy(self, endpoint: Prior, variant: Variant) -> None:
        """Add ``variant`` at weight 0 (already there with the same model: nothing to do)."""
        name = self._endpoint_name(endpoint)
        if not names.valid(variant.name):
            raise ProviderError(
                f"{endpoint.address}: {variant.name!r} cannot name a SageMaker variant "
                "(letters, digits and hyphens, at most 63)"
            )
        live = self._ready(endpoint, name)
        model = names.model_name(name, variant.version, _fingerprint(variant, endpoint.address))
        existing = live.variant(variant.name)
        if existing is not None:
            if existing.model_name == model:
                return
            raise ProviderError(
                f"{endpoint.address}: variant {variant.name} of {name} already runs "
                f"{existing.model_name}, not {model}"
            )
        if live.config_missing:
            raise ProviderError(
                f"{endpoint.address}: endpoint config {live.config_name} of {name} was deleted "
                "outside mlx, so its variants cannot be carried over; re-apply the endpoint"
            )
        self._ensure_model(name, variant, endpoint.address)
        variants = [self._carried(v) for v in live.variants]
        variants.append(self._production_variant(variant.name, model, 0.0))
        self._switch(live, variants, endpoint.address)

    def set_traffic(self, endpoint: Prior, traffic: Traffic) -> None:
        name = self._endpoint_name(endpoint)
        traffic_rules.validate(endpoint.address, traffic)
        live = self._ready(endpoint, name)
        missing = [n for n in (traffic.stable, traffic.candidate) if n and not live.variant(n)]
        if missing:
            raise ProviderError(
                f"{endpoint.address}: variant {', '.join(missing)} is not deployed on SageMaker "
                f"endpoint {name} (deployed: {', '.join(live.names)})"
            )
        want = traffic_rules.expected_percents(live, traffic)
        if live.percents() != want:
            desired = []
            for v in live.variants:
                entry: dict[str, Any] = {
                    "VariantName": v.name,
                    "DesiredWeight": float(want[v.name]),
                }
                if v.instance_count is not None:
                    entry["DesiredInstanceCount"] = v.instance_count
                desired.append(entry)
            try:
                self.sagemaker.update_endpoint_weights_and_capacities(
                    EndpointName=name, DesiredWeightsAndCapacities=desired
                )
            except Exception as exc:
                raise fail(exc, f"{endpoint.address}: cannot set the weights of {name}") from exc
            live = self._wait(name)
        self._set_tags(live, traffic_rules.role_tags(traffic))

    def traffic(self, endpoint: Prior) -> Traffic | None:
        live = describe(self.sagemaker, self._endpoint_name(endpoint))
        if live is None:
            return None
        return live.traffic(traffic_rules.recorded(endpoint.outputs))

    def variant_metrics(
        self, endpoint: Prior, since: float, until: float
    ) -> Mapping[Role, VariantMetrics]:
        """Per role, from CloudWatch; roles as the split is *now* (see ``sagemaker_metrics``)."""
        split = self.traffic(endpoint)
        if split is None:
            return {}
        name = self._endpoint_name(endpoint)
        win = window(since, until, time.time())
        roles = {Role.STABLE: split.stable}
        if split.candidate:
            roles[Role.CANDIDATE] = split.candidate
        client = self._client("cloudwatch")
        try:
            return {
                role: variant_metrics(client, name, variant, win, self.context.log)
                for role, variant in roles.items()
            }
        except Exception as exc:
            raise fail(
                exc, f"{endpoint.address}: cannot read CloudWatch metrics of {name}"
            ) from exc

    def retire(self, endpoint: Prior, variant: str) -> None:
        """Remove a variant that takes no requests, then its model (not there: nothing to do)."""
        name = self._endpoint_name(endpoint)
        live = self._ready(endpoint, name)
        gone = live.variant(variant)
        if gone is None:
            return
        share = live.percents()[variant]
        tagged = live.tagged_traffic()
        if tagged is not None and tagged.stable == variant:
            raise ProviderError(
                f"{endpoint.address}: cannot retire {variant}, the stable variant of {name}; "
                "make another variant stable first"
            )
        if share > 0:
            raise ProviderError(
                f"{endpoint.address}: cannot retire variant {variant} of {name}: it takes "
                f"{share}% of requests; move traffic off it first"
            )
        if len(live.variants) == 1:
            raise ProviderError(
                f"{endpoint.address}: cannot retire {variant}, the only variant of {name}"
            )
        self._switch(
            live, [self._carried(v) for v in live.variants if v.name != variant], endpoint.address
        )
        still_used = any(v.model_name == gone.model_name for v in live.variants if v is not gone)
        if gone.model_name and not still_used:
            self._call(
                f"{endpoint.address}: cannot delete SageMaker model {gone.model_name}",
                self.sagemaker.delete_model,
                ModelName=gone.model_name,
            )
        if live.tags.get(TAG_CANDIDATE) == variant:
            self._set_tags(self._read_live(name), {TAG_CANDIDATE: "", TAG_WEIGHT: "0"})

    # -- endpoint configs ---------------------------------------------------------------
    def _production_variant(
        self,
        variant: str,
        model: str,
        weight: float,
        count: int | None = None,
        instance_type: str | None = None,
    ) -> dict[str, Any]:
        return {
            "VariantName": variant,
            "ModelName": model,
            "InstanceType": instance_type or self.settings.instance_type,
            "InitialInstanceCount": count or self.settings.initial_instance_count,
            "InitialVariantWeight": float(weight),
        }

    def _carried(self, v: LiveVariant) -> dict[str, Any]:
        """A live variant into the next config, keeping its live weight and capacity."""
        assert v.model_name is not None
        return self._production_variant(
            v.name, v.model_name, v.weight, v.instance_count, v.instance_type
        )

    def _ensure_config(self, endpoint: str, variants: list[dict[str, Any]], address: str) -> str:
        config = names.config_name(endpoint, variants)
        client = self.sagemaker
        try:
            client.describe_endpoint_config(EndpointConfigName=config)
            return config  # same variants, same name: made by an earlier, interrupted run
        except Exception as exc:
            if not is_missing(exc):
                raise fail(exc, f"{address}: cannot describe endpoint config {config}") from exc
        try:
            client.create_endpoint_config(
                EndpointConfigName=config,
                ProductionVariants=variants,
                Tags=[{"Key": TAG_ENDPOINT, "Value": tag_value(address)}],
            )
        except Exception as exc:
            raise fail(exc, f"{address}: cannot create endpoint config {config}") from exc
        return config

    def _switch(self, live: LiveEndpoint, variants: list[dict[str, Any]], address: str) -> None:
        """Move ``live`` to a config of exactly ``variants`` and drop the config it leaves."""
        config = self._ensure_config(live.name, variants, address)
        try:
            self.sagemaker.update_endpoint(EndpointName=live.name, EndpointConfigName=config)
        except Exception as exc:
            raise fail(exc, f"{address}: cannot update SageMaker endpoint {live.name}") from exc
        self._wait(live.name)
        if live.config_name != config:
            try:
                self._call(
                    "", self.sagemaker.delete_endpoint_config, EndpointConfigName=live.config_name
                )
            except ProviderError as exc:  # the switch happened: a leftover config is no failure
                self.context.log(f"{address}: left endpoint config {live.config_name}: {exc}")

    def _leftover_configs(self, endpoint: str) -> set[str]:
        """Configs an interrupted run left behind (names only ``config_name`` gives this one)."""
        pattern, found, token = names.config_pattern(endpoint), set(), None
        try:
            while True:
                page = self.sagemaker.list_endpoint_configs(
                    NameContains=names.config_base(endpoint),
                    **({"NextToken": token} if token else {}),
                )
                found |= {
                    c["EndpointConfigName"]
                    for c in page.get("EndpointConfigs", [])
                    if pattern.match(c["EndpointConfigName"])
                }
                token = page.get("NextToken")
                if not token:
                    return found
        except Exception as exc:
            raise fail(exc, f"cannot list the endpoint configs of {endpoint}") from exc

    def _config_models(self, config: str) -> set[str]:
        try:
            found = self.sagemaker.describe_endpoint_config(EndpointConfigName=config)
        except Exception as exc:
            if is_missing(exc):
                return set()
            raise fail(exc, f"cannot describe endpoint config {config}") from exc
        return {str(v["ModelName"]) for v in found.get("ProductionVariants", [])}

    # -- models and artifacts -----------------------------------------------------------
    def _ensure_model(self, endpoint: str, variant: Variant, address: str) -> str:
        """The SageMaker model of ``variant``'s version: artifact uploaded, model created."""
        fingerprint = _fingerprint(variant, address)
        model = names.model_name(endpoint, variant.version, fingerprint)
        client = self.sagemaker
        try:
            client.describe_model(ModelName=model)
            exists = True
        except Exception as exc:
            if not is_missing(exc):
                raise fail(exc, f"{address}: cannot describe SageMaker model {model}") from exc
            exists = False
        if not exists:
            peers = self.context.peers
            if peers is None:
                raise ProviderError(f"{address}: endpoints need the engine's peers (run via mlx)")
            where = artifacts.location(
                self.settings.bucket, self.settings.prefix, endpoint, fingerprint
            )
            uri = artifacts.upload(self._client("s3"), where, peers, variant, address)
            container: dict[str, Any] = {"Image": self.settings.image, "ModelDataUrl": uri}
            if self.settings.environment:
                container["Environment"] = dict(self.settings.environment)
            tags = {
                TAG_ENDPOINT: address,
                TAG_SUBJECT: variant.subject,
                TAG_VERSION: str(variant.version),
                TAG_FINGERPRINT: fingerprint,
            }
            try:
                client.create_model(
                    ModelName=model,
                    ExecutionRoleArn=self.settings.role_arn,
                    PrimaryContainer=container,
                    Tags=[{"Key": k, "Value": tag_value(v)} for k, v in tags.items()],
                )
            except Exception as exc:
                raise fail(exc, f"{address}: cannot create SageMaker model {model}") from exc
        self._models[model] = {"version": variant.version, "fingerprint": fingerprint}
        return model

    def _variant_info(self, v: LiveVariant, recorded: Mapping[str, Any]) -> dict[str, Any]:
        """Version and fingerprint behind a live variant: from this run, the record, or tags."""
        model = v.model_name
        info: dict[str, Any] = {"version": None, "fingerprint": None, "model_name": model}
        if model is None:
            return info
        if model in self._models:
            return {**self._models[model], "model_name": model}
        for entry in (recorded.get("variants") or {}).values():
            if isinstance(entry, Mapping) and entry.get("model_name") == model:
                return {
                    "version": entry.get("version"),
                    "fingerprint": entry.get("fingerprint"),
                    "model_name": model,
                }
        try:
            arn = self.sagemaker.describe_model(ModelName=model)["ModelArn"]
        except Exception as exc:
            if is_missing(exc):
                return info  # its model was deleted outside mlx
            raise fail(exc, f"cannot describe SageMaker model {model}") from exc
        tags = list_tags(self.sagemaker, arn)
        version = tags.get(TAG_VERSION)
        info["version"] = int(version) if version and version.isdigit() else version
        info["fingerprint"] = tags.get(TAG_FINGERPRINT)
        self._models[model] = {"version": info["version"], "fingerprint": info["fingerprint"]}
        return info

    # -- helpers ------------------------------------------------------------------------
    def _endpoint_name(self, resource: Desired | Prior) -> str:
        if isinstance(resource, Prior) and resource.outputs.get("endpoint_name"):
            return str(resource.outputs["endpoint_name"])
        return names.endpoint_name(self.settings.name_prefix, resource.name)

    @staticmethod
    def _ref(desired: Desired, name: str, outputs: Mapping[str, Any] | None = None) -> Prior:
        """The endpoint as the Serving calls take it, during its own create/update."""
        return Prior(
            desired.address,
            desired.section,
            desired.name,
            dict(desired.spec),
            {**(outputs or {}), "endpoint_name": name},
        )

    @staticmethod
    def _subject(desired: Desired) -> str:
        return str(desired.spec.get("serves") or "")

    def _served(self, desired: Desired, endpoint: str, taken: Mapping[str, str]) -> Variant:
        """The version ``desired`` serves, as a variant named for the endpoint's other ones."""
        subject = self._subject(desired)
        outputs = desired.inputs.get(subject)
        if not outputs:
            raise ProviderError(f"{desired.address}: {subject} has no registered version yet")
        peers = self.context.peers
        spec = (peers.spec(subject) if peers is not None else None) or {}
        probe = Variant("v", subject, dict(outputs), dict(spec))
        model = names.model_name(endpoint, probe.version, _fingerprint(probe, desired.address))
        return Variant(
            names.variant_name(probe.version, dict(taken), model),
            subject,
            dict(outputs),
            dict(spec),
        )

    def _serving_variant(self, live: LiveEndpoint, desired: Desired) -> LiveVariant | None:
        """The live variant that runs ``desired``'s version already, if any."""
        subject = self._subject(desired)
        outputs = desired.inputs.get(subject)
        if not outputs:
            raise ProviderError(f"{desired.address}: {subject} has no registered version yet")
        probe = Variant("v", subject, dict(outputs))
        model = names.model_name(live.name, probe.version, _fingerprint(probe, desired.address))
        return next((v for v in live.variants if v.model_name == model), None)

    def _endpoint_tags(self, desired: Desired) -> dict[str, str]:
        spec = desired.spec
        tags = {TAG_ADDRESS: desired.address, TAG_SUBJECT: self._subject(desired)}
        if spec.get("owner"):
            tags[TAG_OWNER] = str(spec["owner"])
        for key, value in sorted((spec.get("labels") or {}).items()):
            tags[tag_value(f"{TAG_LABEL}{key}")[:128]] = str(value)
        return {k: tag_value(v) for k, v in tags.items()}

    def _set_tags(self, live: LiveEndpoint, tags: Mapping[str, str]) -> None:
        """Write ``tags``; labels (``mlx:label:*``) no longer in a full tag set are removed."""
        client = self.sagemaker
        try:
            client.add_tags(
                ResourceArn=live.arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
            if TAG_ADDRESS in tags:
                stale = [k for k in live.tags if k.startswith(TAG_LABEL) and k not in tags]
                if stale:
                    client.delete_tags(ResourceArn=live.arn, TagKeys=stale)
        except Exception as exc:
            raise fail(exc, f"cannot tag SageMaker endpoint {live.name}") from exc

    def _outputs(
        self, live: LiveEndpoint, subject: str, recorded: Mapping[str, Any]
    ) -> dict[str, Any]:
        split = live.traffic(traffic_rules.recorded(recorded))
        variants = {v.name: self._variant_info(v, recorded) for v in live.variants}
        stable = variants[split.stable]
        return {
            "endpoint_name": live.name,
            "endpoint_arn": live.arn,
            "url": self._url(live.name),
            "subject": subject,
            "stable_version": stable["version"],
            "fingerprint": stable["fingerprint"],
            "variants": variants,
            "traffic": split.as_dict(),
            "weights": live.percents(),
        }

    def _url(self, name: str) -> str:
        """The runtime's invocation URL (``runtime.sagemaker.<region>…``; moto: its own URL)."""
        base = str(self.sagemaker.meta.endpoint_url).rstrip("/")
        base = base.replace("://api.sagemaker.", "://runtime.sagemaker.", 1)
        return f"{base}/endpoints/{name}/invocations"

    def _read_live(self, name: str) -> LiveEndpoint:
        live = describe(self.sagemaker, name)
        if live is None:
            raise ProviderError(f"SageMaker endpoint {name} disappeared while mlx was changing it")
        return live

    def _ready(self, endpoint: Prior, name: str) -> LiveEndpoint:
        """The endpoint, once InService (a change is refused while another is in progress)."""
        return self._wait(name, endpoint.address)

    def _wait(self, name: str, address: str = "") -> LiveEndpoint:
        """The endpoint once InService (waiting at most ``wait_timeout_s``)."""
        wait_for(self.sagemaker, "endpoint_in_service", name, self.settings.wait_timeout_s, address)
        return self._read_live(name)

    def _wait_deleted(self, name: str) -> None:
        wait_for(self.sagemaker, "endpoint_deleted", name, self.settings.wait_timeout_s)

    @staticmethod
    def _call(what: str, method: Any, **kwargs: Any) -> None:
        """A delete-like call where "already gone" is success."""
        try:
            method(**kwargs)
        except Exception as exc:
            if not is_missing(exc):
                raise fail(exc, what or "SageMaker call failed") from exc


def _fingerprint(variant: Variant, address: str) -> str:
    fingerprint = variant.fingerprint
    if not fingerprint:
        raise ProviderError(
            f"{address}: version {variant.version!r} of {variant.subject} has no fingerprint"
        )
    return fingerprint
