"""Content-addressed copies of served versions: ``<root>/<fingerprint hex>/<name>``.

A version is fetched (``peers.materialize``) once per fingerprint into a scratch directory,
described by a manifest (``.mlx-artifact.json``: the file name and the SHA-256 of every file)
and renamed into place, so a directory under its final name is always complete. The next
deploy of that fingerprint — another endpoint, a roll back — re-uses it after checking the
bytes against the manifest; a copy that fails the check (edited, truncated) is replaced.
Copies are never removed by mlx: retiring a variant keeps its artifact for a fast roll back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from providers.contract import ProviderError

MANIFEST = ".mlx-artifact.json"
_CHUNK = 1 << 20


def token(fingerprint: str) -> str:
    """The directory name of a fingerprint: its hex digest (``sha256:ab…`` → ``ab…``)."""
    value = fingerprint.removeprefix("sha256:")
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", value).strip("-")
    if not safe:
        raise ProviderError(f"fingerprint {fingerprint!r} cannot name an artifact directory")
    return safe


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(path: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of a file (key ``.``) or of every file under a directory."""
    if path.is_file():
        return {".": _sha256(path)}
    return {
        item.relative_to(path).as_posix(): _sha256(item)
        for item in sorted(path.rglob("*"))
        if item.is_file()
    }


class ArtifactCache:
    def __init__(self, root: Path):
        self.root = root

    def home(self, fingerprint: str) -> Path:
        return self.root / token(fingerprint)

    def find(self, fingerprint: str) -> Path | None:
        """The intact copy of ``fingerprint``, if there is one."""
        return _intact(self.home(fingerprint))

    def ensure(self, fingerprint: str, name: str, fetch: Callable[[Path], Path]) -> Path:
        """The copy of ``fingerprint``, fetched with ``fetch(target)`` unless already there.

        ``fetch`` writes the content at ``target`` (a file or a directory) and returns where
        it is (``target``, or a file of its own that is then copied).
        """
        found = self.find(fingerprint)
        if found is not None:
            return found
        home = self.home(fingerprint)
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{home.name}.", dir=self.root))
        try:
            target = scratch / _safe_name(name)
            got = Path(fetch(target))
            if got != target:
                _copy(got, target)
            if not target.exists():
                raise ProviderError(f"fetching {fingerprint} produced nothing at {target}")
            record = {"fingerprint": fingerprint, "name": target.name, "files": manifest(target)}
            (scratch / MANIFEST).write_text(json.dumps(record, sort_keys=True, indent=2))
            return self._install(scratch, home) / target.name
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _install(self, scratch: Path, home: Path) -> Path:
        try:
            os.rename(scratch, home)
            return home
        except OSError:
            pass
        if _intact(home) is not None:  # another process installed it meanwhile
            return home
        aside = self.root / f".{home.name}.stale-{uuid.uuid4().hex[:8]}"
        os.rename(home, aside)
        try:
            os.rename(scratch, home)
        finally:
            shutil.rmtree(aside, ignore_errors=True)
        return home


def _intact(home: Path) -> Path | None:
    """``home``'s content if its files are exactly those its manifest lists, else None."""
    try:
        record = json.loads((home / MANIFEST).read_text())
        name = str(record["name"])
        files = dict(record["files"])
        path = home / name
        return path if path.exists() and manifest(path) == files else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _safe_name(name: str) -> str:
    base = name.strip().rstrip("/").rsplit("/", 1)[-1]
    return base if base not in ("", ".", "..") and base != MANIFEST else "model"


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    elif source.is_file():
        shutil.copyfile(source, target)
    else:
        raise ProviderError(f"{source} does not exist")
