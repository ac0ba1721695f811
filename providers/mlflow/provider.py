"""``type: mlflow``: models and prompts in an MLflow registry (a server, or ``sqlite:///…``).

* models — a registered model per resource; a new version only for a new
  content fingerprint; lineage as version tags; description, labels, owner and
  card updated in place. Artifacts: a local file or directory (logged into a
  run, registered from ``runs:/…``), an ``s3://`` object (registered as is,
  fingerprinted by its ETag) or a ``runs:/`` URI.
* prompts — MLflow's prompt registry; a new version only for a new document.
* aliases (``production``, ``champion``) are moved by rollouts and rollbacks
  through ``set_alias``; mlx remembers each one it set (``mlx.alias.*`` tags)
  so that ``read()`` reports an alias moved by hand and the next apply moves it back.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from common.model_inputs import SchemaConflict, SchemaMemo
from contract import (
    Change,
    Context,
    Desired,
    MissingExtra,
    Observed,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Registry,
    Result,
)
from providers.files import PathRefused, confined, hasher_for
from providers.local.provider import prompt_document
from providers.mlflow.client import (
    as_int,
    connect,
    is_mlflow_error,
    is_serverless,
    mlflow_error,
    resolve_uri,
)
from providers.mlflow.models import ModelRegistry
from providers.mlflow.prompts import PromptRegistry
from specs.providers import MlflowProviderConfig


def _remote(value: str) -> bool:
    return "://" in value or value.startswith("runs:/")


class MlflowProvider(Provider, Registry):
    sections = frozenset({"models", "prompts"})
    config_model = MlflowProviderConfig
    type_name = "mlflow"

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__(config, context)
        if importlib.util.find_spec("mlflow") is None:  # finds without importing it
            raise MissingExtra("mlflow", "mlflow")
        self.tracking_uri = resolve_uri(self.settings.tracking_uri, context.root)
        registry = self.settings.registry_uri
        self.registry_uri = resolve_uri(registry, context.root) if registry else None
        self.hasher = hasher_for(context.data_dir)
        self._client: Any = None
        self._experiment: str | None = None
        self._s3: Any = None
        self._lock = threading.RLock()
        #: what check()/fingerprint() looked at: local files, or (None) an S3 object
        self._looked_at: set[str] | None = set()
        self._schemas = SchemaMemo()  # models' input schemas, by content
        # one writer at a time on a database opened in this process (SQLite locks otherwise)
        serverless = is_serverless(self.registry_uri or self.tracking_uri)
        self._write_lock = threading.RLock() if serverless else contextlib.nullcontext()

    # -- connection ----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                for uri in (self.tracking_uri, self.registry_uri):
                    if uri and uri.startswith("sqlite:///"):
                        Path(uri.removeprefix("sqlite:///")).parent.mkdir(
                            parents=True, exist_ok=True
                        )
                self._client = connect(self.tracking_uri, self.registry_uri)
            return self._client

    def _experiment_id(self) -> str:
        with self._lock:
            if self._experiment is None:
                self._experiment = self._ensure_experiment()
            return self._experiment

    def _ensure_experiment(self) -> str:
        name = self.settings.experiment
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return str(found.experiment_id)
        location = self.settings.artifact_location
        if location is None and self.tracking_uri.startswith("sqlite:///"):
            # keep a serverless registry's files next to its database, not in the cwd
            db = Path(self.tracking_uri.removeprefix("sqlite:///"))
            location = (db.parent / "mlartifacts").as_uri()
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except Exception:
            found = self.client.get_experiment_by_name(name)  # created meanwhile
            if found is None:
                raise
            return str(found.experiment_id)

    @property
    def models(self) -> ModelRegistry:
        return ModelRegistry(self.client, self._experiment_id)

    @property
    def prompts(self) -> PromptRegistry:
        return PromptRegistry(self.client)

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """Serialise serverless writes; turn MLflow's exceptions into ``ProviderError``."""
        with self._write_lock:
            try:
                yield
            except ProviderError:
                raise
            except Exception as exc:
                if is_mlflow_error(exc) or isinstance(exc, OSError):
                    raise mlflow_error(exc, f"{what} (MLflow at {self.tracking_uri})") from exc
                raise

    # -- planning --------------------------------------------------------------------------
    def _artifact(self, desired: Desired) -> Path | str:
        value = str(desired.spec.get("artifact", ""))
        return value if _remote(value) else desired.path(self.context.root, value)

    def _template_file(self, desired: Desired) -> Path | None:
        template = desired.spec.get("template")
        if isinstance(template, Mapping):
            return desired.path(self.context.root, str(template["file"]))
        return None

    def _saw(self, source: Path | str | None) -> None:
        with self._lock:
            if isinstance(source, Path) and self._looked_at is not None:
                self._looked_at.add(str(source))
            elif isinstance(source, str) and source.startswith("s3://"):
                self._looked_at = None  # an answer from S3: ask again next plan

    def plan_inputs(self) -> list[str] | None:
        # planning reads only local files (and S3 objects); the registry is consulted at apply
        looked = self._looked_at
        return None if looked is None else sorted(looked | self.hasher.touched)

    def check(self, desired: Desired) -> list[Problem]:
        ctx = self.context
        if desired.section == "prompts":
            path = self._template_file(desired)
            self._saw(path)
            if path is not None:
                template = desired.spec["template"]
                try:  # inside the spec dir or mlx.paths, and a regular file
                    confined(
                        ctx.root, str(template["file"]), ctx.allowed_paths, what="template file"
                    )
                except PathRefused as exc:
                    return [Problem(("template", "file"), str(exc))]
            if path is not None and not path.is_file():
                return [Problem(("template", "file"), f"template file not found: {path}")]
            return []
        source = self._artifact(desired)
        self._saw(source)
        if isinstance(source, Path):
            value = str(desired.spec.get("artifact", ""))
            try:  # a file or a directory of them, inside the spec dir or mlx.paths
                confined(ctx.root, value, ctx.allowed_paths, what="artifact")
            except PathRefused as exc:
                return [Problem(("artifact",), str(exc))]
            if not source.exists():
                return [Problem(("artifact",), f"artifact not found: {source}")]
            problem = self._schemas.problem(desired.spec, source)
            return [Problem(("inputs",), problem)] if problem else []
        if not source.startswith(("s3://", "runs:/")):
            return [
                Problem(
                    ("artifact",),
                    f"the mlflow provider registers local files, s3:// objects or runs:/ URIs, "
                    f"not {source!r}",
                )
            ]
        if source.startswith("s3://"):
            try:
                if self._s3_head(source) is None:
                    return [Problem(("artifact",), f"no object at {source}")]
            except ProviderError as exc:
                return [Problem(("artifact",), str(exc))]
        return []

    def fingerprint(self, desired: Desired) -> str | None:
        if desired.section == "prompts":
            path = self._template_file(desired)
            return self.hasher.digest(path) if path is not None and path.is_file() else None
        source = self._artifact(desired)
        if isinstance(source, Path):
            return self.hasher.digest(source) if source.exists() else None
        if source.startswith("s3://"):
            info = self._s3_head(source)
            return info.fingerprint if info else None
        return f"uri:{source}"  # a run's artifacts do not change once logged

    def planned_outputs(self, desired: Desired) -> dict[str, Any]:
        # a prompt's fingerprint covers its resolved document: known after apply
        if desired.section == "prompts":
            return {}
        out = super().planned_outputs(desired)
        if desired.restore is None:
            with contextlib.suppress(SchemaConflict):  # check() reported it
                out["input_schema"] = self._input_schema(desired)
        return out

    def _input_schema(self, desired: Desired) -> dict[str, Any] | None:
        """``inputs:``, else what a local artifact says (a remote one is not read)."""
        source = self._artifact(desired)
        path = source if isinstance(source, Path) and source.exists() else None
        return self._schemas.of(desired.spec, path, desired.fingerprint)

    # -- applying --------------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        with self._calling(f"{desired.address}: cannot register"):
            return Result(self._register(desired))

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        with self._calling(f"{desired.address}: cannot update"):
            if change.behaviour or change.content or desired.restore is not None:
                return Result(self._register(desired))
            # metadata only (or nothing): the same version, its tags and the model's updated
            registry = self.models if desired.section == "models" else self.prompts
            found = registry.find(desired.name, prior.outputs)
            if found is None or as_int(found.version) != as_int(prior.outputs.get("version")):
                return Result(self._register(desired))  # the version is gone: register again
            if desired.section == "models":
                self.models.sync_metadata(desired, prior.outputs.get("version"))
            else:
                self.prompts.sync_metadata(desired)
            return Result(dict(prior.outputs))

    def _register(self, desired: Desired) -> dict[str, Any]:
        if desired.restore is not None:
            registry = self.models if desired.section == "models" else self.prompts
            return registry.restore(desired, desired.restore)
        if desired.section == "prompts":
            path = self._template_file(desired)
            text = path.read_text() if path is not None else str(desired.spec["template"])
            return self.prompts.register(desired, prompt_document(desired.spec, text))
        source = self._artifact(desired)
        fingerprint = desired.fingerprint or self.fingerprint(desired)
        if fingerprint is None:
            raise ProviderError(f"{desired.address}: {source} does not exist")
        try:  # read before anything is written: a contradicted schema registers nothing
            schema = self._input_schema(desired)
        except SchemaConflict as exc:
            raise ProviderError(f"{desired.address}: {exc}") from None
        return self.models.register(desired, source, fingerprint, schema)

    def delete(self, prior: Prior) -> None:
        with self._calling(f"{prior.address}: cannot delete"):
            if prior.section == "models":
                self.models.delete(prior.name)
            else:
                self.prompts.delete(prior.name)

    def read(self, prior: Prior) -> Observed | None:
        with self._calling(f"{prior.address}: cannot read"):
            if prior.section == "models":
                return self.models.read(prior)
            return self.prompts.read(prior)

    # -- registry capabilities -------------------------------------------------------------
    def has_version(self, section: str, name: str, outputs: Mapping[str, Any]) -> bool:
        with self._calling(f"{section}.{name}: cannot look up a version"):
            if section == "models":
                return self.models.has_version(f"{section}.{name}", name, outputs)
            return self.prompts.find(name, outputs) is not None

    def materialize(
        self, section: str, name: str, outputs: Mapping[str, Any], target: Path
    ) -> Path:
        with self._calling(f"{section}.{name}: cannot download version {outputs.get('version')}"):
            if section == "prompts":
                return self.prompts.materialize(name, outputs, target)
            mv = self.models.find(name, outputs)
            if mv is not None and str(mv.source).startswith("s3://"):
                return self._s3_download(str(mv.source), target)
            return self.models.materialize(f"{section}.{name}", name, outputs, target)

    def materialize_declared(self, desired: Desired, target: Path) -> Path:
        source = self._artifact(desired) if desired.section == "models" else None
        if isinstance(source, str) and source.startswith("s3://"):
            return self._s3_download(source, target)
        return super().materialize_declared(desired, target)

    def get_alias(self, section: str, name: str, alias: str) -> dict[str, Any] | None:
        with self._calling(f"{section}.{name}: cannot read alias {alias!r}"):
            if section == "models":
                mv = self.models.by_alias(name, alias)
                return None if mv is None else self.models.outputs(name, mv, _fp(mv))
            pv = self.prompts.by_alias(name, alias)
            return None if pv is None else self.prompts.outputs(name, pv.version, _fp(pv))

    def set_alias(self, section: str, name: str, alias: str, outputs: Mapping[str, Any]) -> None:
        with self._calling(f"{section}.{name}: cannot move alias {alias!r}"):
            if section == "models":
                self.models.set_alias(name, alias, outputs)
            else:
                self.prompts.set_alias(name, alias, outputs)

    # -- s3:// artifacts (boto3's usual chain; AWS_ENDPOINT_URL_S3 for a compatible store) ----
    def _s3_client(self) -> Any:
        from providers.aws.session import make_client

        with self._lock:
            if self._s3 is None:
                self._s3 = make_client("s3")
            return self._s3

    def _s3_head(self, uri: str) -> Any:
        from providers.aws import objects

        return objects.head(self._s3_client(), objects.S3Location.parse(uri))

    def _s3_download(self, uri: str, target: Path) -> Path:
        from providers.aws import objects

        location = objects.S3Location.parse(uri)
        return objects.download(self._s3_client(), location, target, location.version_id)

    def close(self) -> None:
        self.hasher.save()


def _fp(version: Any) -> str | None:
    from providers.mlflow.tags import FINGERPRINT

    return (version.tags or {}).get(FINGERPRINT)
