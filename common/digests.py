"""Serve exactly the gated bytes: an artifact is read once, hashed, and used only if it matches.

A variant's *digest* is what mlx recorded for its bytes: ``sha256:<hex>`` of a file, or of a
directory's manifest — ``{relative posix path: sha256 hex of the file}`` as compact JSON with
sorted keys — exactly what the registries' ``FileHasher.digest`` computes as a fingerprint
(``providers/files.py``). ``read_verified`` reads every byte into memory, hashes what it
read, and returns those very bytes: nothing is opened again between the check and the
load, so a file swapped after the check is never what runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class Mismatch(Exception):
    """The bytes on disk are not the recorded ones; ``got`` is their digest."""

    def __init__(self, expected: str, got: str):
        super().__init__(f"expected {expected}, found {got}")
        self.expected, self.got = expected, got


@dataclass(frozen=True)
class Verified:
    """An artifact's bytes as checked: ``files`` by relative path (``"."`` for a lone file)."""

    files: Mapping[str, bytes]
    is_dir: bool

    def one(self) -> bytes:
        return self.files["."]


def manifest_digest(files: Mapping[str, str]) -> str:
    """The digest of a manifest ``{relative path: sha256 hex}`` (``{".": hex}``: a file)."""
    if set(files) == {"."}:
        return "sha256:" + files["."]
    blob = json.dumps(dict(files), sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def read_tree(path: Path) -> dict[str, bytes]:
    """Every regular file under ``path`` by relative posix path (links are not followed)."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            out[full.relative_to(path).as_posix()] = full.read_bytes()
    return out


def digest_of(files: Mapping[str, bytes], is_dir: bool) -> str:
    hexes = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    return manifest_digest(hexes if is_dir else {".": hexes["."]})


def read_verified(path: Path, expected: str) -> Verified:
    """The bytes at ``path`` (a file or a directory), if their digest is ``expected``;
    ``Mismatch`` if not. ``OSError`` if they cannot be read."""
    is_dir = path.is_dir()
    files = read_tree(path) if is_dir else {".": path.read_bytes()}
    got = digest_of(files, is_dir)
    if got != expected:
        raise Mismatch(expected, got)
    return Verified(files, is_dir)


def digest_path(path: Path) -> str:
    """The digest of what is at ``path`` now, streamed (``OSError`` if it cannot be read)."""
    if not path.is_dir():
        return manifest_digest({".": _file_hex(path)})
    hexes: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            hexes[full.relative_to(path).as_posix()] = _file_hex(full)
    return manifest_digest(hexes)


def _file_hex(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
