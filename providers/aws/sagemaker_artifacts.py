"""A served version's ``model.tar.gz`` on S3, where SageMaker models read it.

Archives live at ``s3://<bucket>/<prefix><endpoint>/<fingerprint>/model.tar.gz``:
addressed by the version's fingerprint, so a version is fetched from its
registry and uploaded once (rolling back to it finds the archive there).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from contract import Peers, ProviderError, Variant
from providers.aws import objects
from providers.aws import sagemaker_archive as archive
from providers.aws import sagemaker_names as names
from providers.aws.objects import S3Location
from providers.aws.sagemaker_live import fail


def location(bucket: str, prefix: str, endpoint: str, fingerprint: str) -> S3Location:
    token = names.fingerprint_token(fingerprint)
    return S3Location(bucket, f"{prefix}{endpoint}/{token}/{archive.ARCHIVE_NAME}")


def artifact_name(spec: Mapping[str, Any]) -> str:
    """The name a file artifact keeps inside ``model.tar.gz`` (the declared file's name)."""
    value = spec.get("artifact")
    if isinstance(value, str) and value.strip("/"):
        name = PurePosixPath(value.split("?", 1)[0].rstrip("/")).name
        if name and name != archive.ARCHIVE_NAME:
            return name
    return "model"


def upload(s3: Any, where: S3Location, peers: Peers, variant: Variant, address: str) -> str:
    """Fetch ``variant``'s content, pack it, upload it to ``where`` (unless there); its URI."""
    found = objects.head(s3, where)
    if found is not None and found.sha256:
        return where.uri()  # uploaded before, by mlx (a rollback, an interrupted run)
    arcname = artifact_name(variant.spec)
    with tempfile.TemporaryDirectory(prefix="mlx-sagemaker-") as tmp:
        (Path(tmp) / "in").mkdir()
        source = peers.materialize(variant.subject, variant.outputs, Path(tmp) / "in" / arcname)
        packed = Path(tmp) / archive.ARCHIVE_NAME
        try:
            sha = archive.build(source, packed, arcname)
        except OSError as exc:
            raise ProviderError(f"{address}: cannot pack {source}: {exc}") from exc
        objects.upload(s3, packed, where, sha)
    return where.uri()


def delete_all(s3: Any, bucket: str, prefix: str, address: str) -> None:
    """Every archive under ``prefix`` (an endpoint's own ``…/<endpoint>/``)."""
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                objects.delete(s3, S3Location(bucket, item["Key"]))
    except ProviderError:
        raise
    except Exception as exc:
        if objects.is_missing(exc):
            return
        raise fail(exc, f"{address}: cannot delete s3://{bucket}/{prefix}") from exc
