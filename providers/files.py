"""Local files a spec names: where they may be (``confined``) and their content fingerprints.

A plan runs on every pull request, so a spec may name ``/etc/shadow``, a path
with ``../``, a symlink out of the spec directory or a FIFO. ``PathGuard``
resolves every such path (symlinks included) and accepts it only inside the
spec directory or a directory listed in ``mlx.paths`` (``Context.allowed_paths``),
and only if it is a regular file or a directory (of regular files and links
that stay inside): never a FIFO, socket or device, which are refused after a
``stat`` and never opened.

Hashing a 100 MB dataset on every plan would dominate a no-op plan, so each
file's digest is cached under (size, mtime, ctime, inode), the way git's index
does, including git's care for "racily clean" files. Directories hash as a
sorted manifest of their files' digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from contract import ProviderError

_CHUNK = 1 << 20
#: A file changed less than this before it was hashed may change again within the
#: same timestamp tick without its stamp changing ("racily clean", as git calls it):
#: such entries are never trusted, the file is hashed again.
_RACY_NS = 2_000_000_000


class PathRefused(ProviderError):
    """A local path mlx will not read or write: outside the allowed directories, or special."""


_SPECIAL = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _kind(mode: int) -> str:
    return _SPECIAL.get(stat.S_IFMT(mode), "not a regular file")


def _special(shown: str, mode: int) -> PathRefused:
    return PathRefused(
        f"{shown} is {_kind(mode)}, not a regular file or directory: mlx reads only those"
    )


class PathGuard:
    """Resolves the local paths of one spec directory and refuses those it must not touch.

    ``root`` is the spec directory (relative paths are relative to it); ``allowed`` the
    directories ``mlx.paths`` lists, already absolute. Directories' real paths are
    remembered, so a plan over 10k resources resolves each directory once.
    """

    def __init__(self, root: Path, allowed: Iterable[Path] = (), *, data_dir: Path | None = None):
        self.root = str(root)
        self.allowed = tuple(str(a) for a in allowed)
        #: mlx's own directory (``.mlx``), for what mlx writes (the registry, alert files)
        self.data_dir = None if data_dir is None else str(data_dir)
        dirs = (self.root, *self.allowed, *([self.data_dir] if self.data_dir else []))
        self._roots = tuple(dict.fromkeys(os.path.realpath(r) for r in dirs))
        self._prefixes = tuple(r.rstrip(os.sep) + os.sep for r in self._roots)
        self._dirs: dict[str, str] = {}

    def inside(self, real: str) -> bool:
        """Whether the real path ``real`` is one of the allowed directories or under one."""
        return real in self._roots or real.startswith(self._prefixes)

    def _realpath(self, path: str) -> tuple[str, os.stat_result | None]:
        """``os.path.realpath(path)``, resolving each directory once; and the path's stat
        when the lookup already made it (a plain file: one ``lstat`` is all it costs)."""
        head, tail = os.path.split(path)
        real_head = self._dirs.get(head)
        if real_head is None:
            real_head = self._dirs[head] = os.path.realpath(head)
        if tail in ("", ".", ".."):
            return os.path.realpath(path), None
        candidate = os.path.join(real_head, tail)
        try:
            st = os.lstat(candidate)
        except OSError:
            return candidate, None  # not there (yet): the caller says "not found"
        if stat.S_ISLNK(st.st_mode):
            return os.path.realpath(candidate), None
        return candidate, st

    def confine(self, value: str, what: str = "path", *, contents: bool = True) -> Path:
        """The real path of ``value``, if mlx may use it; else ``PathRefused`` saying why.

        A path that does not exist is returned as is (the caller reports it missing). A
        directory is walked when ``contents``: it may hold only regular files,
        directories and symlinks that stay inside. ``what`` names the field in messages.
        """
        return Path(self.real(value, what, contents=contents))

    def real(self, value: str, what: str = "path", *, contents: bool = True) -> str:
        """``confine`` as a plain string (no ``Path``: this runs per resource on every plan)."""
        path = value if value.startswith("/") else f"{self.root}/{value}"
        real, st = self._realpath(path)  # not normpath first: "link/.." is not "."
        if not self.inside(real):
            raise self._outside(what, value, os.path.normpath(path), real)
        if st is None:
            try:
                st = os.stat(real)
            except OSError:
                return real
        if stat.S_ISDIR(st.st_mode):
            if contents:
                self._walk(real, f"{what} {value}", value)
        elif not stat.S_ISREG(st.st_mode):
            raise _special(f"{what} {value}", st.st_mode)
        return real

    def _outside(self, what: str, value: str, path: str, real: str) -> PathRefused:
        places = [f"the spec directory {self.root}"]
        if self.data_dir:
            places.append(os.path.basename(self.data_dir) + "/")
        if self.allowed:
            places.append("the directories in mlx.paths")
        where = places[0] if len(places) == 1 else ", ".join(places[:-1]) + " and " + places[-1]
        how = (
            "to allow it, list its directory under `mlx.paths` in the `mlx` settings "
            "(mlx: {paths: [DIR]})"
        )
        if real == path:
            return PathRefused(f"{what} {value} is outside {where}: {how}")
        return PathRefused(f"{what} {value} resolves to {real}, outside {where}: {how}")

    def _walk(self, top: str, label: str, shown: str) -> None:
        """Every entry under ``top`` is a file, a directory or a link that stays inside."""
        stack = [top]
        while stack:
            current = stack.pop()
            with os.scandir(current) as entries:
                for entry in entries:
                    rel = os.path.relpath(entry.path, top)
                    name = f"{label}: {os.path.join(shown, rel)}"
                    if entry.is_symlink():
                        target = os.path.realpath(entry.path)
                        if not self.inside(target):
                            raise PathRefused(
                                f"{name} resolves to {target}, outside the spec directory: "
                                "mlx does not follow links out of it"
                            )
                        try:
                            mode = os.stat(target).st_mode
                        except OSError:
                            continue  # a dangling link: nothing to read
                        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                            raise _special(name, mode)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif not entry.is_file(follow_symlinks=False):
                        raise _special(name, entry.stat(follow_symlinks=False).st_mode)


def confined(
    root: Path,
    value: str,
    allowed: Iterable[Path] = (),
    *,
    what: str = "path",
    contents: bool = True,
) -> Path:
    """The real path of ``value`` (relative to ``root``), if it lies inside ``root`` or one
    of ``allowed`` and is a regular file or a directory (or does not exist yet); else
    ``PathRefused`` naming the path and how to allow its directory. See ``PathGuard``."""
    return PathGuard(root, allowed).confine(value, what, contents=contents)


class FileHasher:
    def __init__(self, cache_file: Path | None = None):
        self.cache_file = cache_file
        self._lock = threading.Lock()
        self._dirty = False
        #: Every file and directory this hasher looked at (for the plan memo).
        self.touched: set[str] = set()
        self._cache: dict[str, list[Any]] = {}
        if cache_file is not None:
            try:
                self._cache = json.loads(cache_file.read_text())
            except (OSError, ValueError):
                self._cache = {}

    def digest(self, path: str | os.PathLike[str]) -> str:
        """``sha256:<hex>`` of a file, or of a directory's manifest."""
        st = os.stat(path)
        self.touched.add(os.path.abspath(path))
        if stat.S_ISDIR(st.st_mode):
            manifest = self.manifest(Path(path))
            blob = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
            return "sha256:" + hashlib.sha256(blob).hexdigest()
        if not stat.S_ISREG(st.st_mode):
            raise _special(str(path), st.st_mode)  # never open a FIFO: it would block
        return "sha256:" + self._file(path, st)

    def manifest(self, directory: Path) -> dict[str, str]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames.sort()
            self.touched.add(os.path.abspath(dirpath))
            for name in sorted(filenames):
                full = Path(dirpath) / name
                st = full.stat()
                if not stat.S_ISREG(st.st_mode):
                    raise _special(str(full), st.st_mode)
                out[full.relative_to(directory).as_posix()] = self._file(full, st)
                self.touched.add(os.path.abspath(full))
        return out

    def _file(self, path: str | os.PathLike[str], st: os.stat_result) -> str:
        key = os.path.abspath(path)  # no resolve(): it costs syscalls per call
        # ctime is in the stamp because tools that copy a file may also copy its mtime
        # (shutil.copy2, cp -p, rsync -t), while nobody can set ctime.
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[:4] == stamp and hit[5] - st.st_ctime_ns > _RACY_NS:
            return str(hit[4])
        h = hashlib.sha256()
        # O_NONBLOCK: should a FIFO replace the file since its stat, opening it won't block
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _special(str(path), os.fstat(fd).st_mode)
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        hexd = h.hexdigest()
        with self._lock:
            self._cache[key] = [*stamp, hexd, time.time_ns()]
            self._dirty = True
        return hexd

    def save(self) -> None:
        if self.cache_file is None or not self._dirty:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_file.with_suffix(f".{os.getpid()}.tmp")
            with self._lock:
                tmp.write_text(json.dumps(self._cache))
                self._dirty = False
            os.replace(tmp, self.cache_file)
        except OSError:
            pass


_shared: dict[Path, FileHasher] = {}
_shared_lock = threading.Lock()


def hasher_for(data_dir: Path) -> FileHasher:
    """One hasher per mlx data dir and process, shared by the providers that hash files."""
    with _shared_lock:
        if data_dir not in _shared:
            _shared[data_dir] = FileHasher(data_dir / "cache" / "fingerprints.json")
        return _shared[data_dir]
