"""Content fingerprints of local files and directories, with a stat cache.

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
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
#: A file changed less than this before it was hashed may change again within the
#: same timestamp tick without its stamp changing ("racily clean", as git calls it):
#: such entries are never trusted, the file is hashed again.
_RACY_NS = 2_000_000_000


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
        return "sha256:" + self._file(path, st)

    def manifest(self, directory: Path) -> dict[str, str]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames.sort()
            self.touched.add(os.path.abspath(dirpath))
            for name in sorted(filenames):
                full = Path(dirpath) / name
                out[full.relative_to(directory).as_posix()] = self._file(full, full.stat())
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
        with open(path, "rb") as fh:
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
