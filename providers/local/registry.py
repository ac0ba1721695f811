"""A filesystem registry: content-addressed blobs, numbered versions and aliases.

Layout under ``root``::

    blobs/ab/<sha256>                                 file contents, stored once
    trees/<sha256>.json                               a directory: {relpath: sha256}
    objects.db                                        SQLite (WAL): bytes made in memory
                                                      (prompt documents) by sha256, and
                                                      one row per object,
                                                      (env, section, name) → {"object":
                                                      description, labels, owner, aliases,
                                                      current version; "versions": {n:
                                                      fingerprint, content, tags}}

Objects are rows of one database, not files: an apply of 10,000 resources created
10,000 files, and a file create costs 0.03 to 0.4 ms here depending on what the
filesystem's journal is doing, far more than a row. (mlx 0.2 kept one file per object,
``<env>/<section>/<name>.json``, and mlx 0.1 ``<name>/object.json`` with
``<name>/versions/<n>.json``: both are still read, and an object's next write moves it
into the database, losing nothing.)

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
import sqlite3
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract import ProviderError
from providers.files import FileHasher


def _write_json(path: Path, data: Any) -> None:
    """Write atomically (a temporary file, then rename); the directory is made only when
    missing (asking first costs a syscall per write).

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
        self._objects = ObjectTable(root / "objects.db")
        #: read-modify-write of one object's row at a time (a rollout moving an alias
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
        """Store bytes made in memory (a prompt's document): a row of the objects database,
        not a file of their own (a create + rename per prompt was most of an apply's I/O)."""
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        if not os.path.exists(self.blob_path(sha)):
            self._objects.put_blob(sha, data)
        return sha

    def has_blob(self, sha: str) -> bool:
        return os.path.exists(self.blob_path(sha)) or self._objects.has_blob(sha)

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
            return self.has_blob(content["blob"])
        manifest = _read_json(self.root / "trees" / f"{content.get('tree')}.json")
        return manifest is not None and all(self.has_blob(s) for s in manifest.values())

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
        if os.path.exists(blob):
            _copy(blob, target, stat.S_IMODE(os.stat(blob).st_mode))
            return
        data = self._objects.get_blob(sha)
        if data is None:
            raise FileNotFoundError(f"blob {sha} is not in the registry at {self.root}")
        target.write_bytes(data)

    # -- objects and versions -------------------------------------------------------
    def object_file(self, section: str, name: str) -> Path:
        """Where an object lived in mlx 0.2 (one file per object): read, never written."""
        return self.root / self.namespace / section / f"{name}.json"

    def object_dir(self, section: str, name: str) -> Path:
        """Where an object lived in mlx 0.1 (``object.json`` + ``versions/<n>.json``)."""
        return self.root / self.namespace / section / name

    def _lock(self, section: str, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault((section, name), threading.Lock())

    def _load(self, section: str, name: str) -> dict[str, Any] | None:
        """The whole record ``{"object": …, "versions": {"1": …}}``, from the database or
        from a file an earlier mlx wrote."""
        data = self._objects.get(self.namespace, section, name)
        if data is not None:
            return data
        if not os.path.isdir(self.root / self.namespace):
            return None  # no earlier mlx wrote here: no files to look for
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

    def _save(self, section: str, name: str, data: dict[str, Any]) -> None:
        self._objects.put(self.namespace, section, name, data)

    def close(self) -> None:
        self._objects.close()

    def get_object(self, section: str, name: str) -> dict[str, Any] | None:
        """The live object; ``None`` when there is none or mlx retired it (``delete_object``)."""
        data = self._load(section, name)
        obj = data["object"] if data else None
        if obj is None or obj.get("retired"):
            return None
        return dict(obj)

    def put_object(self, section: str, name: str, obj: dict[str, Any]) -> None:
        with self._lock(section, name):
            data = self._load(section, name) or {"versions": {}}
            data["object"] = obj
            self._save(section, name, data)

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
        (``current`` is set to the version), so a registration is one row written.
        """
        with self._lock(section, name):
            data = self._load(section, name) or {"object": {"aliases": {}}, "versions": {}}
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
            self._save(section, name, data)
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


class ObjectTable:
    """The registry's objects: one SQLite database (WAL), one row per object.

    One connection per process, shared by its threads under a lock (each statement takes
    microseconds); opened on first use, so that reading a registry that was never
    written creates nothing.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if not create and not self.path.exists():
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # what the state promises too: a commit survives SIGKILL, not a power cut
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS objects (namespace TEXT NOT NULL, section TEXT NOT NULL,"
            " name TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (namespace, section, name))"
            " WITHOUT ROWID"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS blobs (sha TEXT PRIMARY KEY, data BLOB NOT NULL)")
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _one(self, sql: str, params: tuple[Any, ...], *, write: bool = False) -> Any:
        """Run one statement; its first row (reads). A registry never written reads as
        empty, and SQLite's errors (a damaged file, a lock held past the timeout) are
        one line naming the database."""
        try:
            with self._lock:
                conn = self._connect(create=write)
                if conn is None:
                    return None
                return conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise ProviderError(f"the local registry's database {self.path}: {exc}") from exc

    def get(self, namespace: str, section: str, name: str) -> dict[str, Any] | None:
        row = self._one(
            "SELECT data FROM objects WHERE namespace = ? AND section = ? AND name = ?",
            (namespace, section, name),
        )
        if row is None:
            return None
        data = json.loads(row[0])
        return data if isinstance(data, dict) else None

    def put(self, namespace: str, section: str, name: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        self._one(
            "INSERT OR REPLACE INTO objects (namespace, section, name, data) VALUES (?, ?, ?, ?)",
            (namespace, section, name, text),
            write=True,
        )

    def put_blob(self, sha: str, data: bytes) -> None:
        self._one("INSERT OR IGNORE INTO blobs (sha, data) VALUES (?, ?)", (sha, data), write=True)

    def get_blob(self, sha: str) -> bytes | None:
        row = self._one("SELECT data FROM blobs WHERE sha = ?", (sha,))
        return None if row is None else bytes(row[0])

    def has_blob(self, sha: str) -> bool:
        return self._one("SELECT 1 FROM blobs WHERE sha = ?", (sha,)) is not None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
