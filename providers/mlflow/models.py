"""Models in the MLflow model registry: registered model, versions, aliases.

A version is made only for new content: ``register`` first looks for a version
whose ``mlx.fingerprint`` tag holds the fingerprint. New content is logged into
a run of the configured experiment and registered from ``runs:/<run>/model`` —
a tracking server refuses local paths as sources, and serverless stores behave
the same way this way. A run already holding the fingerprint is reused, so a
version deleted by hand comes back without uploading the artifact again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from contract import Desired, Observed, Prior, ProviderError
from providers.mlflow import tags as T
from providers.mlflow.aliases import AliasedRegistry
from providers.mlflow.client import as_int, is_not_found

ARTIFACT_PATH = "model"
#: Run tag naming the file of a single-file artifact (under ``model/``).
FILE_TAG = "mlx.artifact_file"


class ModelRegistry(AliasedRegistry):
    kind = "models"

    def __init__(self, client: Any, experiment_id: Callable[[], str]):
        super().__init__(client)
        self.experiment_id = experiment_id

    # -- registering -------------------------------------------------------------------
    def register(
        self,
        desired: Desired,
        source: Path | str,
        fingerprint: str,
        input_schema: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The version holding ``fingerprint`` (made if need be); its outputs record
        ``input_schema`` (``common.model_inputs``: what the gateway checks requests by)."""
        name = desired.name
        self._ensure_model(desired)
        mv = self._by_fingerprint(name, fingerprint)
        if mv is None:
            uri, run_id = self._source(desired, source, fingerprint)
            mv = self.client.create_model_version(
                name, uri, run_id=run_id, tags=T.lineage_tags(desired, fingerprint)
            )
        self.sync_metadata(desired, as_int(mv.version))
        out = self.outputs(name, mv, fingerprint)
        out["input_schema"] = dict(input_schema) if input_schema is not None else None
        return out

    def restore(self, desired: Desired, restore: Mapping[str, Any]) -> dict[str, Any]:
        """A rollback to the version ``restore`` describes — by number or content, else
        registered again from the run that logged it. Its lineage tags are its own."""
        name, fingerprint = desired.name, str(restore.get("fingerprint") or "")
        self._ensure_model(desired)
        mv = self.find(name, restore)
        if mv is None:
            run_id = self._run_with(desired.address, fingerprint) if fingerprint else None
            if run_id is None:
                raise ProviderError(
                    f"{desired.address}: cannot restore version {restore.get('version')} "
                    f"({fingerprint}): it is no longer in MLflow"
                )
            mv = self.client.create_model_version(
                name,
                f"runs:/{run_id}/{ARTIFACT_PATH}",
                run_id=run_id,
                tags=T.lineage_tags(desired, fingerprint),
            )
        self.sync_metadata(desired, None)
        out = self.outputs(name, mv, fingerprint)
        schema = restore.get("input_schema")  # what the version recorded when it was made
        out["input_schema"] = dict(schema) if isinstance(schema, Mapping) else None
        return out

    def _ensure_model(self, desired: Desired) -> None:
        """The registered model, created — or adopted, when it exists (retired or not)."""
        try:
            model = self.client.get_registered_model(desired.name)
        except Exception as exc:
            if not is_not_found(exc):
                raise
        else:
            self.unretire(desired.name, dict(model.tags or {}))
            return
        try:
            self.client.create_registered_model(
                desired.name,
                tags=T.object_tags(desired),
                description=desired.spec.get("description") or "",
            )
        except Exception as again:  # created meanwhile by a parallel apply
            if "ALREADY_EXISTS" not in str(getattr(again, "error_code", "")):
                raise

    def _source(self, desired: Desired, source: Path | str, fp: str) -> tuple[str, str | None]:
        """The version's source URI and run: an uploaded local artifact, or a remote URI."""
        if isinstance(source, str):
            run_id = source.split("/")[1] if source.startswith("runs:/") else None
            return source, run_id
        run_id = self._run_with(desired.address, fp)
        if run_id is None:
            run_id = self._log(desired, source, fp)
        return f"runs:/{run_id}/{ARTIFACT_PATH}", run_id

    def _run_with(self, address: str, fingerprint: str) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id()],
            filter_string=(
                f"tags.`{T.FINGERPRINT}` = '{fingerprint}' and tags.`{T.ADDRESS}` = '{address}'"
                " and attributes.status = 'FINISHED'"
            ),
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def _log(self, desired: Desired, source: Path, fingerprint: str) -> str:
        run_tags = {T.ADDRESS: desired.address, T.FINGERPRINT: fingerprint}
        if source.is_file():
            run_tags[FILE_TAG] = source.name
        run = self.client.create_run(
            self.experiment_id(),
            tags=run_tags,
            run_name=f"{desired.name}-{fingerprint.split(':')[-1][:12]}",
        )
        run_id = run.info.run_id
        try:
            if source.is_dir():
                self.client.log_artifacts(run_id, str(source), ARTIFACT_PATH)
            else:
                self.client.log_artifact(run_id, str(source), ARTIFACT_PATH)
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        return run_id

    # -- metadata (in place, no new version) ---------------------------------------------
    def sync_metadata(self, desired: Desired, version: int | None) -> None:
        name = desired.name
        model = self.client.get_registered_model(name)
        description = desired.spec.get("description") or ""
        if (model.description or "") != description:
            self.client.update_registered_model(name, description=description)
        wanted = T.object_tags(desired)
        current = dict(model.tags or {})
        for key, value in wanted.items():
            if current.get(key) != value:
                self.client.set_registered_model_tag(name, key, value)
        for key in T.stale(current, wanted, keep=()):
            self.client.delete_registered_model_tag(name, key)
        if version is not None:
            mv = self.client.get_model_version(name, str(version))
            fingerprint = (mv.tags or {}).get(T.FINGERPRINT, "")
            want = T.lineage_tags(desired, fingerprint)
            have = dict(mv.tags or {})
            for key, value in want.items():
                if have.get(key) != value:
                    self.client.set_model_version_tag(name, str(version), key, value)
            for key in T.stale(have, want, keep=(FILE_TAG,)):
                self.client.delete_model_version_tag(name, str(version), key)
        self.restore_aliases(name)

    # -- reading -----------------------------------------------------------------------
    def read(self, prior: Prior) -> Observed | None:
        name = prior.name
        try:
            model = self.client.get_registered_model(name)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        if self.retired(dict(model.tags or {})):
            return None  # deleted by mlx: kept, with every version, for a later create
        notes: list[str] = []
        version = as_int(prior.outputs.get("version"))
        mv = self._version(name, version)
        if mv is None:
            notes.append(f"version {version} was deleted from MLflow outside mlx")
            outputs: dict[str, Any] = {"version": None, "fingerprint": None, "uri": None}
        else:
            fp = (mv.tags or {}).get(T.FINGERPRINT)
            outputs = self.outputs(name, mv, fp)
        description = prior.attributes.get("description") or ""
        if (model.description or "") != description:
            notes.append(
                f"description edited outside mlx: {description!r} -> {model.description or ''!r}"
            )
        aliases, moved = self.alias_drift(name, dict(model.tags or {}))
        outputs["aliases"] = aliases
        return Observed(outputs, outputs.get("fingerprint"), tuple(notes + moved))

    # -- the client calls AliasedRegistry needs ----------------------------------------
    def _get_version(self, name: str, version: int) -> Any:
        return self.client.get_model_version(name, str(version))

    def _get_by_alias(self, name: str, alias: str) -> Any:
        return self.client.get_model_version_by_alias(name, alias)

    def _point_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def _drop_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)

    def _set_tag(self, name: str, key: str, value: str) -> None:
        self.client.set_registered_model_tag(name, key, value)

    def _drop_tag(self, name: str, key: str) -> None:
        self.client.delete_registered_model_tag(name, key)

    def _object_tags(self, name: str) -> dict[str, str] | None:
        try:
            return dict(self.client.get_registered_model(name).tags or {})
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def _by_fingerprint(self, name: str, fingerprint: str | None) -> Any:
        if not fingerprint:
            return None
        found = self.client.search_model_versions(
            f"name = '{name}' and tags.`{T.FINGERPRINT}` = '{fingerprint}'"
        )
        ready = [mv for mv in found if str(mv.status) in ("READY", "ModelVersionStatus.READY")]
        return min(ready or list(found), key=lambda mv: as_int(mv.version) or 0, default=None)

    def has_version(self, address: str, name: str, outputs: Mapping[str, Any]) -> bool:
        if self.find(name, outputs) is not None:
            return True
        fingerprint = outputs.get("fingerprint")
        return bool(fingerprint) and self._run_with(address, str(fingerprint)) is not None

    def materialize(
        self, address: str, name: str, outputs: Mapping[str, Any], target: Path
    ) -> Path:
        mv = self.find(name, outputs)
        if mv is not None:
            source, run_id = str(mv.source), mv.run_id
        else:
            run_id = self._run_with(address, str(outputs.get("fingerprint") or ""))
            if run_id is None:
                raise ProviderError(
                    f"{address}: version {outputs.get('version')} is no longer in MLflow"
                )
            source = f"runs:/{run_id}/{ARTIFACT_PATH}"
        if not source.startswith("runs:/") or not run_id:
            raise ProviderError(f"{address}: cannot fetch {source} (not logged by mlx)")
        path = source.split("/", 2)[2] if source.count("/") >= 2 else ARTIFACT_PATH
        run = self.client.get_run(run_id)
        single = run.data.tags.get(FILE_TAG)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            local = Path(self.client.download_artifacts(run_id, path, str(scratch)))
            got = local / single if single and (local / single).is_file() else local
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(got, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return target

    def delete(self, name: str) -> None:
        """Never ``delete_registered_model``: that would take every version with it."""
        self.retire(name)

    @staticmethod
    def outputs(name: str, mv: Any, fingerprint: str | None) -> dict[str, Any]:
        version = as_int(mv.version)
        return {
            "version": version,
            "uri": f"models:/{name}/{version}",
            "fingerprint": fingerprint,
            "run_id": mv.run_id or None,
        }
