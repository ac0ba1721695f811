"""providers.files: content fingerprints with a stat cache that cannot be fooled."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from providers.files import FileHasher


def test_digest_of_file_and_directory(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    hasher = FileHasher(tmp_path / "cache.json")
    assert hasher.digest(f) == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "w.bin").write_bytes(b"w")
    first = hasher.digest(d)
    (d / "sub" / "extra").write_bytes(b"")
    assert hasher.digest(d) != first


def test_same_size_same_mtime_other_bytes_is_noticed(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    cache = tmp_path / "cache.json"
    os.utime(data, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    first = FileHasher(cache)
    old = first.digest(data)
    first.save()
    twin = tmp_path / "twin"
    twin.write_text("a,b\n9,9\n")
    shutil.copystat(data, twin)  # what cp -p / rsync -t do
    os.replace(twin, data)
    assert FileHasher(cache).digest(data) != old


def test_cache_is_used_for_old_unchanged_files(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x")
    cache = tmp_path / "cache.json"
    hasher = FileHasher(cache)
    real = hasher.digest(data)
    # poison the cached digest and pretend the file was hashed long after it last changed
    key = os.path.abspath(data)
    hasher._cache[key][4] = "0" * 64
    hasher._cache[key][5] = data.stat().st_ctime_ns + 10 * 10**9
    assert hasher.digest(data) == "sha256:" + "0" * 64  # trusted: stamp matches, not racy
    hasher._cache[key][5] = data.stat().st_ctime_ns  # racily clean: hashed again
    assert hasher.digest(data) == real
