"""Content-addressed copies of served versions: ``<root>/<fingerprint hex>/<name>``.

A version is fetched (``peers.materialize``) once per fingerprint into a scratch directory,
described by a manifest (``.mlx-artifact.json``: the file name and the SHA-256 of every file)
and renamed into place, so a directory under its final name is always complete. The next
deploy of that fingerprint — another endpoint, a roll back — re-uses it after checking the
bytes against the manifest (and the manifest against the digest recorded for the version); a
copy that fails the check (edited, truncated, swapped) is replaced. Copies are never removed
by mlx: retiring a variant keeps its artifact for a fast roll back.

A copy's *digest* (``common.digests``: the sha256 of a file, or of a directory's manifest,
as the registries fingerprint content) goes into the route document, and ``mlx serve`` loads
only bytes with that digest. A single file fetched for a ``sha256:`` fingerprint must hash to
exactly that fingerprint: a registry that hands out other bytes than it fingerprinted is an
error here, before anything is served.
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
from dataclasses import dataclass
from pathlib import Path

from common.digests import manifest_digest
from contract import ProviderError

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


@dataclass(frozen=True)
class Installed:
    """A copy in place: where it is, and the digest of its bytes."""

    path: Path
    digest: str


class ArtifactCache:
    def __init__(self, root: Path):
        self.root = root

    def home(self, fingerprint: str) -> Path:
        return self.root / token(fingerprint)

    def find(self, fingerprint: str, digest: str | None = None) -> Installed | None:
        """The intact copy of ``fingerprint`` (whose bytes have ``digest``, if given)."""
        found = _intact(self.home(fingerprint))
        return found if found is not None and digest in (None, found.digest) else None

    def ensure(
        self,
        fingerprint: str,
        name: str,
        fetch: Callable[[Path], Path],
        digest: str | None = None,
    ) -> Installed:
        """The copy of ``fingerprint``, fetched with ``fetch(target)`` unless already there
        (with ``digest``, when one was recorded before: a copy with other bytes is replaced).

        ``fetch`` writes the content at ``target`` (a file or a directory) and returns where
        it is (``target``, or a file of its own that is then copied).
        """
        found = self.find(fingerprint, digest)
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
            files = manifest(target)
            _check_fetched(fingerprint, files)
            record = {"fingerprint": fingerprint, "name": target.name, "files": files}
            (scratch / MANIFEST).write_text(json.dumps(record, sort_keys=True, indent=2))
            digest = manifest_digest(files)
            return Installed(self._install(scratch, home, digest) / target.name, digest)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _install(self, scratch: Path, home: Path, digest: str) -> Path:
        try:
            os.rename(scratch, home)
            return home
        except OSError:
            pass
        there = _intact(home)
        if there is not None and there.digest == digest:  # another process installed it
            return home
        aside = self.root / f".{home.name}.stale-{uuid.uuid4().hex[:8]}"
        os.rename(home, aside)
        try:
            os.rename(scratch, home)
        finally:
            shutil.rmtree(aside, ignore_errors=True)
        return home


def _check_fetched(fingerprint: str, files: dict[str, str]) -> None:
    """A file fetched for a ``sha256:`` fingerprint is exactly the fingerprinted bytes."""
    if fingerprint.startswith("sha256:") and set(files) == {"."}:
        got = manifest_digest(files)
        if got != fingerprint:
            raise ProviderError(
                f"the registry gave other bytes than version {fingerprint} holds (they hash to "
                f"{got}): refusing to serve them"
            )


def _intact(home: Path) -> Installed | None:
    """``home``'s content if its files are exactly those its manifest lists, else None."""
    try:
        record = json.loads((home / MANIFEST).read_text())
        name = str(record["name"])
        files = dict(record["files"])
        path = home / name
        if not (path.exists() and manifest(path) == files):
            return None
        return Installed(path, manifest_digest(files))
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
