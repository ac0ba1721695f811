"""``model.tar.gz`` as SageMaker wants it, byte-for-byte reproducible.

SageMaker downloads a model's ``ModelDataUrl`` and unpacks it into
``/opt/ml/model``. A file artifact becomes the archive's only member (under
its declared name); a directory's contents sit at the archive's root. The
archive is deterministic — members sorted, times zeroed, owners and modes
normalized, gzip without a name or time — so the same content always gives
the same bytes and is uploaded once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

ARCHIVE_NAME = "model.tar.gz"


def _info(name: str, path: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if path.is_dir():
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = path.stat().st_size
        info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
    return info


def _members(source: Path, arcname: str) -> list[tuple[str, Path]]:
    if source.is_file():
        return [(arcname, source)]
    found = sorted(source.rglob("*"), key=lambda p: p.relative_to(source).as_posix())
    return [(p.relative_to(source).as_posix(), p) for p in found if p.is_dir() or p.is_file()]


def build(source: Path, target: Path, arcname: str | None = None) -> str:
    """Write ``source`` (a file or a directory) as a tar.gz at ``target``; its sha256 (hex)."""
    if not source.exists():
        raise FileNotFoundError(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, path in _members(source, arcname or source.name):
            info = _info(name, path)
            if info.isdir():
                tar.addfile(info)
            else:
                with path.open("rb") as body:
                    tar.addfile(info, body)
    digest = hashlib.sha256()
    with target.open("rb") as done:
        for chunk in iter(lambda: done.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def members(data: bytes) -> dict[str, bytes | None]:
    """An archive's members: name -> bytes (``None`` for a directory). For tests and checks."""
    out: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isfile() else None
            out[info.name] = handle.read() if handle else None
    return out
