"""Local paths a spec names stay inside the spec directory (or `mlx.paths`), and are files.

A plan runs on every pull request: a spec must not be able to make mlx read
/etc/shadow into its registry, follow a symlink out, or hang on a FIFO.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from common.diagnostics import MlxError
from contract import Context, Desired, Problem
from engine.load import spec_set as loader
from providers.file_alert import FileAlertProvider
from providers.files import FileHasher, PathRefused, confined
from providers.gates.provider import GateProvider
from providers.local.provider import LocalRegistryProvider
from providers.local.registry import LocalRegistry


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    root = tmp_path / "spec"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s3cr3t\n")
    return root


# -- the helper ---------------------------------------------------------------------------
def test_paths_inside_the_spec_dir_resolve(spec: Path) -> None:
    assert confined(spec, "data/train.csv") == (spec / "data" / "train.csv").resolve()
    assert confined(spec, str(spec / "data" / "train.csv")) == confined(spec, "data/train.csv")
    assert confined(spec, "data/../data/train.csv") == confined(spec, "data/train.csv")
    # a path that does not exist yet is confined too (the caller says "not found")
    assert confined(spec, "data/new.csv") == (spec / "data" / "new.csv").resolve()


@pytest.mark.parametrize("value", ["/etc/passwd", "../outside/secret.txt", "data/../../outside"])
def test_paths_outside_the_spec_dir_are_refused(spec: Path, value: str) -> None:
    with pytest.raises(PathRefused) as err:
        confined(spec, value, what="artifact")
    message = str(err.value)
    assert message.startswith(f"artifact {value} ")
    assert "outside the spec directory" in message and "mlx.paths" in message


def test_a_symlink_out_is_refused_and_one_within_is_fine(spec: Path) -> None:
    (spec / "data" / "link.csv").symlink_to(spec.parent / "outside" / "secret.txt")
    (spec / "data" / "alias.csv").symlink_to(spec / "data" / "train.csv")
    with pytest.raises(PathRefused, match=r"resolves to .*outside/secret\.txt, outside"):
        confined(spec, "data/link.csv")
    assert confined(spec, "data/alias.csv") == (spec / "data" / "train.csv").resolve()


def test_directories_listed_in_mlx_paths_are_allowed(spec: Path) -> None:
    outside = (spec.parent / "outside").resolve()
    assert confined(spec, "../outside/secret.txt", [outside]) == outside / "secret.txt"
    with pytest.raises(PathRefused):
        confined(spec, "/etc/passwd", [outside])
    # a sibling whose name merely starts with the allowed one is not inside it
    (spec.parent / "outside-2").mkdir()
    with pytest.raises(PathRefused):
        confined(spec, "../outside-2/x", [outside])


def test_a_fifo_is_refused_without_being_opened(spec: Path) -> None:
    os.mkfifo(spec / "data" / "pipe.csv")  # opening it for reading would block forever
    with pytest.raises(PathRefused, match="is a FIFO"):
        confined(spec, "data/pipe.csv", what="dataset file")


def test_devices_and_sockets_are_refused(spec: Path) -> None:
    with pytest.raises(PathRefused, match="is a character device"):
        confined(spec, "/dev/null", [Path("/dev")])
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(spec / "data" / "s.sock"))
        with pytest.raises(PathRefused, match="is a socket"):
            confined(spec, "data/s.sock")
    finally:
        sock.close()


def test_a_directory_holding_a_fifo_or_a_symlink_out_is_refused(spec: Path) -> None:
    model = spec / "model"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "weights.bin").write_bytes(b"w")
    assert confined(spec, "model") == model.resolve()
    (model / "sub" / "leak").symlink_to(spec.parent / "outside" / "secret.txt")
    with pytest.raises(PathRefused, match=r"model/sub/leak.*outside the spec directory"):
        confined(spec, "model")
    (model / "sub" / "leak").unlink()
    os.mkfifo(model / "sub" / "pipe")
    with pytest.raises(PathRefused, match=r"model/sub/pipe is a FIFO"):
        confined(spec, "model")


def test_the_hasher_never_opens_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(PathRefused, match="is a FIFO"):
        FileHasher().digest(tmp_path / "pipe")


def test_spec_files_linked_out_of_the_spec_dir_are_refused(spec: Path) -> None:
    secret = spec.parent / "outside" / "secret.yaml"
    secret.write_text("root:$6$hash:19000:0:99999:7:::\n")  # its lines would be quoted
    (spec / "ok.yaml").write_text("variables:\n  a: {default: 1}\n")
    (spec / "data" / "b.yml").write_text("variables:\n  b: {default: 2}\n")
    (spec / "linked.yaml").symlink_to(spec / "data" / "b.yml")  # a link inside is fine
    assert set(loader.load(spec).variables) == {"a", "b"}
    (spec / "evil.yaml").symlink_to(secret)
    os.mkfifo(spec / "pipe.yaml")
    with pytest.raises(MlxError) as err:
        loader.load(spec)
    summaries = [d.summary for d in err.value.diagnostics]
    assert summaries == [
        f"evil.yaml is a symlink to {secret.resolve()}, outside the spec directory: "
        "mlx reads spec files only from inside it",
        "pipe.yaml is not a regular file",
    ]
    assert "19000" not in err.value.render()


# -- the registry keeps permissions -------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_registry_blobs_are_never_wider_than_their_source(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$...\n")
    secret.chmod(0o640)
    registry = LocalRegistry(tmp_path / "registry", FileHasher())
    sha = registry.put(secret)["blob"]
    assert _mode(registry.blob_path(sha)) & ~0o640 == 0
    # the same bytes from a narrower source narrow the shared blob
    narrow = tmp_path / "narrow"
    narrow.write_text(secret.read_text())
    narrow.chmod(0o600)
    registry.put(narrow)
    assert _mode(registry.blob_path(sha)) & ~0o600 == 0
    # ... and a wider one never widens it
    wide = tmp_path / "wide"
    wide.write_text(secret.read_text())
    wide.chmod(0o644)
    registry.put(wide)
    assert _mode(registry.blob_path(sha)) & ~0o600 == 0


def test_registry_trees_keep_each_file_s_permissions(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "private.bin").write_bytes(b"p")
    (model / "private.bin").chmod(0o600)
    (model / "public.json").write_text("{}")
    (model / "public.json").chmod(0o644)
    registry = LocalRegistry(tmp_path / "registry", FileHasher())
    registry.put(model)
    hasher = FileHasher()
    private = registry.blob_path(hasher.digest(model / "private.bin").removeprefix("sha256:"))
    assert _mode(private) & ~0o600 == 0
    out = registry.materialize(registry.put(model), tmp_path / "out")
    assert _mode(out / "private.bin") & ~0o600 == 0


# -- providers report escapes as problems at the field ------------------------------------
def _ctx(root: Path, *allowed: Path) -> Context:
    return Context(root=root, data_dir=root / ".mlx", allowed_paths=tuple(allowed))


def _local(root: Path, section: str, spec: dict[str, Any], *allowed: Path) -> list[Problem]:
    provider = LocalRegistryProvider({"type": "local"}, _ctx(root, *allowed))
    return provider.check(Desired(f"{section}.x", section, "x", {"owner": "t", **spec}))


def test_local_registry_checks_every_path_field(spec: Path) -> None:
    assert _local(spec, "datasets", {"uri": "data/train.csv"}) == []
    (problem,) = _local(spec, "models", {"artifact": "/etc/passwd"})
    assert problem.path == ("artifact",) and "outside the spec directory" in problem.message
    (problem,) = _local(spec, "datasets", {"uri": "../outside/secret.txt"})
    assert problem.path == ("uri",) and "dataset file ../outside/secret.txt" in problem.message
    template = {"template": {"file": "../../../etc/hostname"}}
    (problem,) = _local(spec, "prompts", template)
    assert problem.path == ("template", "file") and "outside" in problem.message
    os.mkfifo(spec / "data" / "pipe.csv")
    (problem,) = _local(spec, "datasets", {"uri": "data/pipe.csv"})
    assert "is a FIFO" in problem.message
    allowed = (spec.parent / "outside").resolve()
    assert _local(spec, "datasets", {"uri": "../outside/secret.txt"}, allowed) == []


def test_local_registry_root_must_stay_inside(spec: Path) -> None:
    provider = LocalRegistryProvider({"type": "local", "root": "/tmp/elsewhere"}, _ctx(spec))
    desired = Desired("datasets.x", "datasets", "x", {"uri": "data/train.csv", "owner": "t"})
    (problem,) = provider.check(desired)
    assert problem.path == ("provider",)
    assert "registry root /tmp/elsewhere" in problem.message and "mlx.paths" in problem.message


def test_file_alert_channels_write_only_inside(spec: Path) -> None:
    provider = FileAlertProvider({"type": "file"}, _ctx(spec))

    def check(path: str) -> list[Problem]:
        return provider.check(Desired("alerts.a", "alerts", "a", {"type": "file", "path": path}))

    assert check("alerts.jsonl") == [] and check(".mlx/alerts.jsonl") == []
    (problem,) = check("../../etc/cron.d/evil")
    assert problem.path == ("path",) and "alert file" in problem.message
    assert check("/etc/motd")[0].path == ("path",)


def test_gate_files_stay_inside(spec: Path) -> None:
    provider = GateProvider({"type": "gate"}, _ctx(spec))
    gate = {"subject": "prompts.p", "cases": "../outside/secret.txt", "assert": []}
    problems = provider.check(Desired("evals.g", "evals", "g", gate))
    assert [p.path for p in problems] == [("cases",)]
    assert "outside the spec directory" in problems[0].message
    ml = {"subject": "models.m", "predictions": "/etc/passwd", "label": "y"}
    problems = provider.check(Desired("evals.g", "evals", "g", ml))
    assert [p.path for p in problems] == [("predictions",)]


def test_mlflow_local_artifacts_stay_inside(spec: Path) -> None:
    from providers.mlflow.provider import MlflowProvider

    provider = MlflowProvider({"type": "mlflow", "tracking_uri": "sqlite:///m.db"}, _ctx(spec))
    model = {"artifact": "../outside/secret.txt", "owner": "t"}
    (problem,) = provider.check(Desired("models.m", "models", "m", model))
    assert problem.path == ("artifact",) and "outside the spec directory" in problem.message
    prompt = {"template": {"file": "/etc/hostname"}, "owner": "t"}
    (problem,) = provider.check(Desired("prompts.p", "prompts", "p", prompt))
    assert problem.path == ("template", "file")
