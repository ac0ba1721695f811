"""S3 objects as mlx sees them: where one is, what it holds, without downloading it.

An object's *fingerprint* is ``sha256:…`` when mlx uploaded it (stored in the
object's metadata) and ``etag:…`` otherwise: S3's ETag changes whenever the
bytes do, and reading it is one HEAD request. Its *snapshot* is the version id
in a versioned bucket (restorable later), else the ETag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from contract import ProviderError
from providers.aws.session import aws_error, error_code, status_code

#: Object metadata key holding the sha256 of an object mlx uploaded.
SHA_META = "mlx-sha256"
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchVersion", "NoSuchBucket"}


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str
    version_id: str | None = None

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """``s3://bucket/key`` (optionally ``?versionId=…``)."""
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3:// URI: {uri!r}")
        version = parse_qs(parts.query).get("versionId", [None])[0]
        return cls(parts.netloc, parts.path.lstrip("/"), version)

    def uri(self, version_id: str | None = None) -> str:
        version = version_id or self.version_id
        base = f"s3://{self.bucket}/{self.key}"
        return f"{base}?versionId={version}" if version else base


@dataclass(frozen=True)
class ObjectInfo:
    location: S3Location
    etag: str
    size: int
    version_id: str | None
    sha256: str | None

    @property
    def fingerprint(self) -> str:
        return f"sha256:{self.sha256}" if self.sha256 else f"etag:{self.etag}"

    @property
    def snapshot(self) -> str:
        return self.version_id or self.etag

    def outputs(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "etag": self.etag,
            "version_id": self.version_id,
            "size": self.size,
        }


def is_missing(exc: BaseException) -> bool:
    return error_code(exc) in _MISSING or status_code(exc) == 404


def head(client: Any, location: S3Location, version_id: str | None = None) -> ObjectInfo | None:
    """The object (that version, if given), or ``None`` if there is none."""
    from botocore.exceptions import BotoCoreError, ClientError

    version = version_id or location.version_id
    kwargs: dict[str, Any] = {"Bucket": location.bucket, "Key": location.key}
    if version:
        kwargs["VersionId"] = version
    try:
        response = client.head_object(**kwargs)
    except ClientError as exc:
        # S3 answers HEAD of a bad version id with 400, not 404
        if is_missing(exc) or (version and status_code(exc) == 400):
            return None
        raise aws_error(exc, f"cannot read {location.uri(version)}") from exc
    except BotoCoreError as exc:
        raise aws_error(exc, f"cannot read {location.uri(version)}") from exc
    version_id = response.get("VersionId")
    return ObjectInfo(
        location=S3Location(location.bucket, location.key),
        etag=str(response.get("ETag", "")).strip('"'),
        size=int(response.get("ContentLength", 0)),
        version_id=None if version_id in (None, "null") else version_id,
        sha256=(response.get("Metadata") or {}).get(SHA_META),
    )


def upload(client: Any, source: Path, location: S3Location, sha256: str) -> ObjectInfo:
    """Upload ``source`` unless the key already holds exactly these bytes (by sha256)."""
    from botocore.exceptions import BotoCoreError, ClientError

    current = head(client, location)
    if current is not None and current.sha256 == sha256 and current.size == source.stat().st_size:
        return current
    try:
        with source.open("rb") as body:
            client.put_object(
                Bucket=location.bucket,
                Key=location.key,
                Body=body,
                Metadata={SHA_META: sha256},
            )
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, f"cannot upload {source} to {location.uri()}") from exc
    info = head(client, location)
    if info is None:
        raise ProviderError(f"{location.uri()} is missing right after its upload")
    return info


def download(client: Any, location: S3Location, target: Path, version_id: str | None) -> Path:
    from botocore.exceptions import BotoCoreError, ClientError

    target.parent.mkdir(parents=True, exist_ok=True)
    extra = {"VersionId": version_id} if version_id else None
    try:
        client.download_file(location.bucket, location.key, str(target), ExtraArgs=extra)
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, f"cannot download {location.uri(version_id)}") from exc
    return target


def delete(client: Any, location: S3Location) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.delete_object(Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        if not is_missing(exc):
            raise aws_error(exc, f"cannot delete {location.uri()}") from exc
    except BotoCoreError as exc:
        raise aws_error(exc, f"cannot delete {location.uri()}") from exc
