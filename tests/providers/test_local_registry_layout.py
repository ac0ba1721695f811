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
