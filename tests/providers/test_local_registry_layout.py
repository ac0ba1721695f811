"""The local registry reads the layout mlx 0.1 wrote (object.json + versions/<n>.json) and
rewrites it as one file per object on the next write, losing nothing."""

from __future__ import annotations

import json
from pathlib import Path

from providers.files import FileHasher
from providers.local.registry import LocalRegistry


def test_an_old_layout_object_is_read_and_migrated_on_write(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "reg", FileHasher())
    old = registry.object_dir("models", "fraud")
    (old / "versions").mkdir(parents=True)
    (old / "object.json").write_text(json.dumps({"aliases": {"production": 1}, "current": 2}))
    blob = registry.put_bytes(b"weights-v1")
    for n in (1, 2):
        record = {"version": n, "fingerprint": f"sha256:{n}", "content": {"blob": blob}}
        (old / "versions" / f"{n}.json").write_text(json.dumps(record))
    assert registry.get_object("models", "fraud") == {"aliases": {"production": 1}, "current": 2}
    assert sorted(registry.versions("models", "fraud")) == [1, 2]
    number, new = registry.register("models", "fraud", "sha256:3", {"blob": blob}, {}, obj={})
    assert (number, new) == (3, True)
    data = json.loads(registry.object_file("models", "fraud").read_text())
    assert sorted(data["versions"]) == ["1", "2", "3"]
    assert data["object"]["aliases"] == {"production": 1} and data["object"]["current"] == 3
    # known content lands on its version again
    assert registry.register("models", "fraud", "sha256:1", {"blob": blob}, {}) == (1, False)


def test_a_torn_first_write_reads_as_no_object_and_is_replaced_whole(tmp_path: Path) -> None:
    """A new object's first record is created in place; a crash mid-write leaves a torn
    file. It must read as "no object" (never as a half record), and the next
    registration must replace it with a whole one rather than fail on the file."""
    registry = LocalRegistry(tmp_path / "reg", FileHasher())
    blob = registry.put_bytes(b"weights-v1")
    path = registry.object_file("models", "fraud")
    path.parent.mkdir(parents=True)
    path.write_text('{"object": {"aliases": {}, "cur')  # cut mid-write
    assert registry.get_object("models", "fraud") is None
    assert registry.register("models", "fraud", "sha256:1", {"blob": blob}, {}, obj={}) == (1, True)
    data = json.loads(path.read_text())
    assert data["object"]["current"] == 1 and sorted(data["versions"]) == ["1"]
    assert not list(path.parent.glob(".*.tmp")), "no temporary file is left behind"


def test_a_first_write_creates_its_directory(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "reg", FileHasher())
    registry.put_object("prompts", "answer", {"aliases": {}, "description": "d"})
    assert registry.get_object("prompts", "answer") == {"aliases": {}, "description": "d"}
    registry.put_object("prompts", "answer", {"aliases": {}, "description": "e"})
    assert registry.get_object("prompts", "answer") == {"aliases": {}, "description": "e"}
