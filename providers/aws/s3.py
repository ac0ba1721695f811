"""Datasets and model artifacts on S3 (``type: s3``).

Two ways to use it:

* ``uri: s3://bucket/key`` (datasets) / ``artifact: s3://…`` (models) *refers*
  to an object somebody else writes. mlx fingerprints it with one HEAD request
  (never downloading it), records its version id (versioned buckets) or ETag as
  the snapshot, and never writes or deletes it. A dataset's ``version:`` pins an
  S3 version id: the plan then reads that version, whatever the key holds now.
* a local path *uploads* the file to ``s3://<bucket>/<prefix><section>/<name>/<sha256>``
  (content-addressed: the same bytes are uploaded once). mlx owns these objects
  and never deletes one: ``delete`` forgets the resource (and its aliases), every
  uploaded version stays restorable, and a later create finds it again by content.

``read()`` re-reads the object (the pinned version, or the key's current one)
and reports a different ETag, version id or fingerprint as drift.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from providers.aws import objects
from providers.aws.objects import ObjectInfo, S3Location
from providers.aws.session import aws_error, make_client, settings
from providers.files import PathRefused, confined, hasher_for
from specs.providers import S3ProviderConfig

_FIELD = {"models": "artifact", "datasets": "uri"}


@dataclass(frozen=True)
class _Source:
    """What a spec points at: an S3 object it refers to, or a local file to upload."""

    remote: S3Location | None = None
    local: Path | None = None
    pinned: str | None = None


class S3Provider(Provider, Registry):
    sections = frozenset({"datasets", "models"})
    config_model = S3ProviderConfig
    type_name = "s3"

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__(config, context)
        self.hasher = hasher_for(context.data_dir)
        self._client: Any = None
        self._lock = threading.Lock()
        #: check()'s HEAD result, for the fingerprint() of the very same Desired that follows
        #: it in a plan (one request per object); per thread, as plans may run in parallel
        self._memo = threading.local()
        #: local files check() looked at; None once an answer came from S3
        self._looked_at: set[str] | None = set()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = make_client("s3", **settings(self.settings.model_dump()))
            return self._client

    # -- planning ---------------------------------------------------------------------
    def _source(self, desired: Desired | Prior) -> _Source:
        spec = desired.spec if isinstance(desired, Desired) else desired.attributes
        value = str(spec.get(_FIELD[desired.section], ""))
        pinned = spec.get("version") if desired.section == "datasets" else None
        if value.startswith("s3://"):
            return _Source(remote=S3Location.parse(value), pinned=pinned)
        if "://" in value:
            raise ValueError(f"the s3 provider reads s3:// URIs or local files, not {value!r}")
        local = Path(value)
        return _Source(local=local if local.is_absolute() else self.context.root / local)

    def plan_inputs(self) -> list[str] | None:
        looked = self._looked_at
        return None if looked is None else sorted(looked | self.hasher.touched)

    def check(self, desired: Desired) -> list[Problem]:
        field = _FIELD[desired.section]
        try:
            source = self._source(desired)
        except ValueError as exc:
            return [Problem((field,), str(exc))]
        if source.remote is not None:
            with self._lock:
                self._looked_at = None  # S3 answered: a plan memo must ask it again
            return self._check_remote(desired, field, source)
        assert source.local is not None
        with self._lock:
            if self._looked_at is not None:
                self._looked_at.add(str(source.local))
        if source.pinned:
            return [Problem(("version",), "`version` pins an S3 version id: it needs an s3:// uri")]
        if not self.settings.bucket:
            return [
                Problem(
                    (field,),
                    f"{source.local.name} is a local file: set `bucket:` on the s3 provider "
                    "to upload it, or name an s3:// object",
                )
            ]
        try:  # an upload publishes the bytes: the file must be the spec's to name
            confined(self.context.root, str(source.local), self.context.allowed_paths, what="file")
        except PathRefused as exc:
            return [Problem((field,), str(exc))]
        if not source.local.exists():
            return [Problem((field,), f"file not found: {source.local}")]
        if source.local.is_dir():
            return [Problem((field,), "the s3 provider uploads files, not directories")]
        return []

    def _check_remote(self, desired: Desired, field: str, source: _Source) -> list[Problem]:
        location = source.remote
        assert location is not None
        if not location.key or location.key.endswith("/"):
            return [Problem((field,), f"{location.uri()} names a prefix, not an object")]
        try:
            info = objects.head(self.client, location, source.pinned)
        except ProviderError as exc:
            return [Problem((field,), str(exc))]
        self._memo.entry = (desired, info)
        if info is None:
            if source.pinned:
                return [Problem(("version",), f"{location.uri(source.pinned)} does not exist")]
            return [Problem((field,), f"no object at {location.uri()}")]
        return []

    def fingerprint(self, desired: Desired) -> str | None:
        try:
            source = self._source(desired)
        except ValueError:
            return None
        if source.remote is not None:
            entry = getattr(self._memo, "entry", None)
            self._memo.entry = None
            if entry is not None and entry[0] is desired:
                info = entry[1]
            else:
                info = objects.head(self.client, source.remote, source.pinned)
            return info.fingerprint if info else None
        assert source.local is not None
        return self.hasher.digest(source.local) if source.local.is_file() else None

    # -- applying ---------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        return Result(self._outputs(desired.section, self._put(desired)))

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        # idempotent: an unchanged local file is not uploaded again, a referenced object is
        # only re-read; a metadata edit therefore keeps the version
        return Result(self._outputs(desired.section, self._put(desired)))

    def _put(self, desired: Desired) -> ObjectInfo:
        try:
            source = self._source(desired)
        except ValueError as exc:
            raise ProviderError(f"{desired.address}: {exc}") from exc
        if desired.restore is not None:
            # a rollback: the recorded version, whatever the spec's file or key holds now
            restored = self._version_info(desired.restore)
            if restored is None:
                raise ProviderError(
                    f"{desired.address}: cannot restore "
                    f"{desired.restore.get('uri') or desired.restore.get('uri_resolved')}: "
                    "it is no longer in S3"
                )
            return restored
        if source.remote is not None:
            info = objects.head(self.client, source.remote, source.pinned)
            if info is None:
                raise ProviderError(
                    f"{desired.address}: {source.remote.uri(source.pinned)} does not exist"
                )
            return info
        assert source.local is not None
        if not self.settings.bucket:
            raise ProviderError(f"{desired.address}: no `bucket:` to upload {source.local} to")
        if not source.local.is_file():
            raise ProviderError(f"{desired.address}: {source.local} does not exist")
        sha = self.hasher.digest(source.local).removeprefix("sha256:")
        key = f"{self.settings.prefix}{desired.section}/{desired.name}/{sha}{source.local.suffix}"
        return objects.upload(self.client, source.local, S3Location(self.settings.bucket, key), sha)

    def delete(self, prior: Prior) -> None:
        """Forget the object, never delete it: an upload is a version mlx registered (a rollback
        across the delete may need it), a referenced object is the user's data. Only the
        aliases mlx keeps for it go."""
        if self.settings.bucket:
            objects.delete(self.client, self._alias_location(prior.section, prior.name))

    def read(self, prior: Prior) -> Observed | None:
        location = self._recorded_location(prior.outputs)
        if location is None:
            return None
        pinned = None if self._uploaded(prior) else prior.attributes.get("version")
        # the pinned version, or whatever the key holds now (an upload or an unpinned reference)
        info = objects.head(self.client, S3Location(location.bucket, location.key), pinned)
        if info is None:
            return None
        return Observed(self._outputs(prior.section, info), info.fingerprint)

    def _uploaded(self, prior: Prior) -> bool:
        return not str(prior.attributes.get(_FIELD[prior.section], "")).startswith("s3://")

    # -- registry capabilities --------------------------------------------------------------
    def _version_info(self, outputs: Any) -> ObjectInfo | None:
        location = self._recorded_location(outputs)
        if location is None:
            return None
        info = objects.head(self.client, location, outputs.get("version_id"))
        if info is None or (outputs.get("etag") and info.etag != outputs.get("etag")):
            return None  # gone, or overwritten in an unversioned bucket
        return info

    def has_version(self, section: str, name: str, outputs: Any) -> bool:
        return self._version_info(outputs) is not None

    def materialize(self, section: str, name: str, outputs: Any, target: Path) -> Path:
        info = self._version_info(outputs)
        if info is None:
            raise ProviderError(
                f"{section}.{name}: {outputs.get('uri') or outputs.get('uri_resolved')} "
                "is no longer in S3 (deleted, or overwritten in an unversioned bucket)"
            )
        return objects.download(self.client, info.location, target, info.version_id)

    def materialize_declared(self, desired: Desired, target: Path) -> Path:
        source = self._source(desired)
        if source.remote is None:
            return super().materialize_declared(desired, target)
        return objects.download(self.client, source.remote, target, source.pinned)

    def get_alias(self, section: str, name: str, alias: str) -> dict[str, Any] | None:
        found = self._aliases(section, name).get(alias)
        return dict(found) if found else None

    def set_alias(self, section: str, name: str, alias: str, outputs: Any) -> None:
        aliases = self._aliases(section, name)
        if not VersionRef.of(outputs).known:
            aliases.pop(alias, None)
        else:
            keep: tuple[str, ...] = ("version", "revision", "snapshot", "uri", "uri_resolved")
            keep += ("fingerprint", "etag", "version_id")
            aliases[alias] = {k: outputs[k] for k in keep if k in outputs}
        location = self._alias_location(section, name)
        try:
            self.client.put_object(
                Bucket=location.bucket,
                Key=location.key,
                Body=json.dumps(aliases, sort_keys=True, indent=2).encode(),
                ContentType="application/json",
            )
        except Exception as exc:
            raise aws_error(exc, f"cannot write {location.uri()}") from exc

    # -- helpers ------------------------------------------------------------------------
    def _alias_location(self, section: str, name: str) -> S3Location:
        if not self.settings.bucket:
            raise ProviderError(f"{section}.{name}: aliases on S3 need `bucket:` on the provider")
        return S3Location(self.settings.bucket, f"{self.settings.prefix}aliases/{section}/{name}")

    def _aliases(self, section: str, name: str) -> dict[str, Any]:
        location = self._alias_location(section, name)
        try:
            body = self.client.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
        except Exception as exc:
            if objects.is_missing(exc):
                return {}
            raise aws_error(exc, f"cannot read {location.uri()}") from exc
        return dict(json.loads(body))

    @staticmethod
    def _recorded_location(outputs: Any) -> S3Location | None:
        uri = outputs.get("uri") or outputs.get("uri_resolved")
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            return None
        return S3Location.parse(uri)

    @staticmethod
    def _outputs(section: str, info: ObjectInfo) -> dict[str, Any]:
        uri = info.location.uri(info.version_id)
        if section == "datasets":
            # `version` is the dataset's own (pinned) spec field: the object's identity is
            # its `snapshot` (version id or ETag), also given as `revision` like other registries
            return {
                **info.outputs(),
                "snapshot": info.snapshot,
                "revision": info.snapshot,
                "uri_resolved": uri,
            }
        return {**info.outputs(), "version": info.snapshot, "uri": uri}
