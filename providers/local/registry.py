"""A filesystem registry: content-addressed blobs, numbered versions and aliases.

Layout under ``root``::

    blobs/ab/<sha256>                                 file contents, stored once
    trees/<sha256>.json                               a directory: {relpath: sha256}
    <env>/<section>/<name>.json                       {"object": description, labels,
                                                      owner, aliases, current version;
                                                      "versions": {n: fingerprint,
                                                      content, tags}}

(mlx 0.1 kept ``<name>/object.json`` and ``<name>/versions/<n>.json``: still read, and
rewritten in the new layout on the next write. One file per object keeps an apply of
10,000 resources at one file write each.)

Blobs are shared by all environments (promoting staging's model to prod copies
nothing); objects and their version numbers belong to one environment, as
separate registries would. Versions are content-addressed: registering bytes
that an earlier version already holds returns that version instead of minting
a new one. Deleting an object retires it: its versions and blobs stay, so a
rollback can bring one back and registering the name again adopts it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from providers.files import FileHasher


def _write_json(path: Path, data: Any) -> None:
    """Write atomically (a temporary file, then rename); the directory is made only when
    missing: asking first costs a syscall per write, and an apply writes thousands.

    Compact JSON: with ``indent`` the json module falls back from its C encoder to the
    pure-Python one, which cost 2 s of an apply of 10,000 resources."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    try:
        tmp.write_text(text)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
    os.replace(tmp, path)


def _create_json(path: Path, data: Any) -> None:
    """Write the first record of a new object: created in place (``O_EXCL``), not through a
    temporary file and a rename, which cost three times as much here while SQLite syncs
    its log. A crash mid-write leaves a torn file that reads as no object (``_read_json``),
    as before the write: the next write replaces it atomically. A file already there
    (someone else's, or torn) is never written in place."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        try:
            fd = os.open(path, flags, 0o666)
        except FileNotFoundError:  # the section's first object: make its directory once
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags, 0o666)
    except FileExistsError:
        _write_json(path, data)
        return
    with open(fd, "wb") as out:
        out.write(text)


def _narrow(path: Path, mode: int) -> None:
    """Take away any permission bit ``mode`` lacks: a copy is never more readable than its
    source (``/etc/shadow``, 0640, must not become a 0644 blob). Never widens."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)
    except OSError:
        pass  # not ours to change (another user's blob): leave it


def _copy(source: Path, target: Path, mode: int) -> None:
    """Copy ``source`` into ``target``, created with ``mode`` (less the umask) from the
    start: a copy of a private file is never readable by others, not even while copying."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode & 0o666)
    with open(fd, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    _narrow(target, mode)  # a file that was there already kept its own bits


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class LocalRegistry:
    def __init__(self, root: Path, hasher: FileHasher, namespace: str = "default"):
        self.root, self.hasher, self.namespace = root, hasher, namespace
        #: read-modify-write of one object file at a time (a rollout moving an alias
        #: while another registers a version)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    # -- blobs ----------------------------------------------------------------------
    def blob_path(self, sha: str) -> Path:
        return self.root / "blobs" / sha[:2] / sha

    def put_file(self, source: Path) -> str:
        """Store one file's bytes; the blob keeps the source's permission bits or fewer."""
        sha = self.hasher.digest(source).removeprefix("sha256:")
        mode = stat.S_IMODE(os.stat(source).st_mode)
        target = self.blob_path(sha)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp")
            _copy(source, tmp, mode)
            os.replace(tmp, target)
        else:  # the same bytes from a narrower source narrow the shared blob
            _narrow(target, mode)
        return sha

    def put_bytes(self, data: bytes) -> str:
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        target = self.blob_path(sha)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return sha

    def put_tree(self, directory: Path) -> str:
        manifest = {rel: self.put_file(directory / rel) for rel in self.hasher.manifest(directory)}
        sha = self.hasher.digest(directory).removeprefix("sha256:")
        _write_json(self.root / "trees" / f"{sha}.json", manifest)
        return sha

    def put(self, source: Path) -> dict[str, str]:
        """Store a file or directory; returns ``{"blob": sha}`` or ``{"tree": sha}``."""
        if source.is_dir():
            return {"tree": self.put_tree(source)}
        return {"blob": self.put_file(source)}

    def stored(self, content: dict[str, str]) -> bool:
        if "blob" in content:
            return self.blob_path(content["blob"]).exists()
        manifest = _read_json(self.root / "trees" / f"{content.get('tree')}.json")
        return manifest is not None and all(self.blob_path(s).exists() for s in manifest.values())

    def materialize(self, content: dict[str, str], target: Path) -> Path:
        """Copy stored content back out (used to load a version's artifact)."""
        if "blob" in content:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy_out(content["blob"], target)
            return target
        manifest = _read_json(self.root / "trees" / f"{content['tree']}.json") or {}
        for rel, sha in manifest.items():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            self._copy_out(sha, target / rel)
        return target

    def _copy_out(self, sha: str, target: Path) -> None:
        blob = self.blob_path(sha)
        _copy(blob, target, stat.S_IMODE(os.stat(blob).st_mode))

    # -- objects and versions -------------------------------------------------------
    def object_file(self, section: str, name: str) -> Path:
        """One file per object: its description, labels, aliases and every version."""
        return self.root / self.namespace / section / f"{name}.json"

    def object_dir(self, section: str, name: str) -> Path:
        """Where an object lived before mlx 0.2 (``object.json`` + ``versions/<n>.json``)."""
        return self.root / self.namespace / section / name

    def _lock(self, section: str, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault((section, name), threading.Lock())

    def _load(self, section: str, name: str) -> dict[str, Any] | None:
        """The whole record ``{"object": …, "versions": {"1": …}}``, from either layout."""
        data = _read_json(self.object_file(section, name))
        if isinstance(data, dict) and "object" in data:
            return data
        old = self.object_dir(section, name)
        obj = _read_json(old / "object.json")
        if obj is None:
            return None
        versions = {}
        if (old / "versions").is_dir():
            for path in (old / "versions").glob("*.json"):
                record = _read_json(path)
                if record is not None:
                    versions[path.stem] = record
        return {"object": obj, "versions": versions}

    def _save(self, section: str, name: str, data: dict[str, Any], *, new: bool = False) -> None:
        """``new``: ``_load`` found no record in either layout (the first write)."""
        write = _create_json if new else _write_json
        write(self.object_file(section, name), data)

    def get_object(self, section: str, name: str) -> dict[str, Any] | None:
        """The live object; ``None`` when there is none or mlx retired it (``delete_object``)."""
        data = self._load(section, name)
        obj = data["object"] if data else None
        if obj is None or obj.get("retired"):
            return None
        return dict(obj)

    def put_object(self, section: str, name: str, obj: dict[str, Any]) -> None:
        with self._lock(section, name):
            found = self._load(section, name)
            data = found or {"versions": {}}
            data["object"] = obj
            self._save(section, name, data, new=found is None)

    def versions(self, section: str, name: str) -> dict[int, dict[str, Any]]:
        data = self._load(section, name)
        return {int(k): v for k, v in (data or {}).get("versions", {}).items()}

    def get_version(self, section: str, name: str, version: int) -> dict[str, Any] | None:
        data = self._load(section, name)
        found = (data or {}).get("versions", {}).get(str(version))
        return dict(found) if found is not None else None

    def register(
        self,
        section: str,
        name: str,
        fingerprint: str,
        content: dict[str, str],
        tags: dict[str, Any],
        obj: dict[str, Any] | None = None,
    ) -> tuple[int, bool]:
        """The version holding ``fingerprint``: an existing one, or a new one. (version, new?)

        ``obj``: the object's new description/labels/aliases, written in the same write
        (``current`` is set to the version), so a registration is one file write.
        """
        with self._lock(section, name):
            found = self._load(section, name)
            data = found or {"object": {"aliases": {}}, "versions": {}}
            existing = {int(k): v for k, v in data["versions"].items()}
            number, new = None, True
            for n, record in sorted(existing.items()):
                if record.get("fingerprint") == fingerprint and self.stored(
                    record.get("content", {})
                ):
                    record["tags"] = tags
                    number, new = n, False
                    break
            if number is None:
                number = max(existing, default=0) + 1
                data["versions"][str(number)] = {
                    "version": number,
                    "fingerprint": fingerprint,
                    "content": content,
                    "tags": tags,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            if obj is not None:
                current = dict(data.get("object") or {})
                current.update(obj)
                current.pop("retired", None)
                current.pop("retired_at", None)
                current["current"] = number
                data["object"] = current
            self._save(section, name, data, new=found is None)
        return number, new

    def set_tags(self, section: str, name: str, version: int, tags: dict[str, Any]) -> None:
        with self._lock(section, name):
            data = self._load(section, name)
            record = (data or {}).get("versions", {}).get(str(version))
            if data is not None and record is not None:
                record["tags"] = tags
                self._save(section, name, data)

    def delete_object(self, section: str, name: str) -> None:
        """Retire the object: its aliases go, every version record and blob stays.

        A rollback across the delete can restore any version, and registering the same
        name again adopts the object: ``put_object`` writes a live one (numbering goes
        on from the kept versions, and known content lands on its old version).
        """
        with self._lock(section, name):
            data = self._load(section, name)
            if data is None or data["object"].get("retired"):
                return
            data["object"].update(
                retired=True,
                retired_at=datetime.now(UTC).isoformat(timespec="seconds"),
                aliases={},
            )
            self._save(section, name, data)
