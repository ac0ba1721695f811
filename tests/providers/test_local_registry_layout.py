"""The local registry keeps its objects (and prompt documents) as rows of one SQLite
database. It still reads the files earlier versions wrote — mlx 0.1's object.json +
versions/<n>.json and mlx 0.2's one file per object — and moves an object into the
database on its next write, losing nothing."""

from __future__ import annotations

import json
from pathlib import Path

from providers.files import FileHasher
from providers.local.registry import LocalRegistry
from tests.support.registry_rows import read_record


def test_an_mlx_01_object_is_read_and_moved_into_the_database_on_write(tmp_path: Path) -> None:
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
    data = read_record(tmp_path / "reg", "models", "fraud")
    assert sorted(data["versions"]) == ["1", "2", "3"]
    assert data["object"]["aliases"] == {"production": 1} and data["object"]["current"] == 3
    # known content lands on its version again
    assert registry.register("models", "fraud", "sha256:1", {"blob": blob}, {}) == (1, False)


def _mlx_02_file(tmp_path: Path, text: str | None = None) -> tuple[LocalRegistry, str]:
    """A registry holding models.fraud as mlx 0.2 wrote it (``text``: what the file says)."""
    registry = LocalRegistry(tmp_path / "reg", FileHasher())
    blob = registry.put_bytes(b"weights-v1")
    path = registry.object_file("models", "fraud")
    path.parent.mkdir(parents=True)
    version = {"version": 1, "fingerprint": "sha256:1", "content": {"blob": blob}}
    whole = {"object": {"aliases": {"production": 1}, "current": 1}, "versions": {"1": version}}
    path.write_text(json.dumps(whole) if text is None else text)
    return registry, blob


def test_an_mlx_02_object_file_is_read_and_the_database_wins_after_a_write(
    tmp_path: Path,
) -> None:
    registry, blob = _mlx_02_file(tmp_path)
    assert registry.get_object("models", "fraud") == {"aliases": {"production": 1}, "current": 1}
    assert registry.register("models", "fraud", "sha256:2", {"blob": blob}, {}, obj={}) == (2, True)
    reopened = LocalRegistry(tmp_path / "reg", FileHasher())
    assert sorted(reopened.versions("models", "fraud")) == [1, 2]
    assert reopened.get_object("models", "fraud")["current"] == 2  # type: ignore[index]
    assert reopened.get_object("models", "fraud")["aliases"] == {"production": 1}  # type: ignore[index]


def test_a_torn_mlx_02_file_reads_as_no_object_and_registering_replaces_it(
    tmp_path: Path,
) -> None:
    """A crash in mlx 0.2's first write could leave a torn file: it is no object."""
    registry, blob = _mlx_02_file(tmp_path, '{"object": {"aliases": {}, "cur')  # cut mid-write
    assert registry.get_object("models", "fraud") is None
    assert registry.register("models", "fraud", "sha256:1", {"blob": blob}, {}, obj={}) == (1, True)
    data = read_record(tmp_path / "reg", "models", "fraud")
    assert data["object"]["current"] == 1 and sorted(data["versions"]) == ["1"]


def test_reading_a_registry_never_written_creates_nothing(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "reg", FileHasher())
    assert registry.get_object("models", "fraud") is None
    assert registry.versions("models", "fraud") == {}
    assert not registry.has_blob("0" * 64)
    assert not (tmp_path / "reg").exists()


def test_a_first_write_creates_the_database_and_its_directory(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "deep" / "reg", FileHasher())
    registry.put_object("prompts", "answer", {"aliases": {}, "description": "d"})
    assert registry.get_object("prompts", "answer") == {"aliases": {}, "description": "d"}
    registry.put_object("prompts", "answer", {"aliases": {}, "description": "e"})
    assert registry.get_object("prompts", "answer") == {"aliases": {}, "description": "e"}
    assert (tmp_path / "deep" / "reg" / "objects.db").is_file()


def test_prompt_documents_are_rows_and_come_back_out_byte_for_byte(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "reg", FileHasher())
    doc = json.dumps({"template": "Summarise {{x}}", "system": "Be brief"}, indent=2).encode()
    sha = registry.put_bytes(doc)
    assert registry.put_bytes(doc) == sha  # stored once
    assert not registry.blob_path(sha).exists(), "no file per prompt document"
    assert registry.stored({"blob": sha})
    out = registry.materialize({"blob": sha}, tmp_path / "out" / "prompt.json")
    assert out.read_bytes() == doc
    other = LocalRegistry(tmp_path / "reg", FileHasher(), namespace="prod")
    assert other.stored({"blob": sha}), "bytes are shared by every environment"


def test_environments_keep_their_own_objects_in_one_database(tmp_path: Path) -> None:
    staging = LocalRegistry(tmp_path / "reg", FileHasher(), namespace="staging")
    prod = LocalRegistry(tmp_path / "reg", FileHasher(), namespace="prod")
    blob = staging.put_bytes(b"w")
    assert staging.register("models", "m", "sha256:a", {"blob": blob}, {}, obj={}) == (1, True)
    assert prod.get_object("models", "m") is None
    assert prod.register("models", "m", "sha256:b", {"blob": blob}, {}, obj={}) == (1, True)
    assert staging.get_version("models", "m", 1)["fingerprint"] == "sha256:a"  # type: ignore[index]
    assert prod.get_version("models", "m", 1)["fingerprint"] == "sha256:b"  # type: ignore[index]
