"""examples/plugin: its entry point is declared right, the engine loads it, it passes the kit.

Fast tests read the entry point the package declares in its pyproject, load it
as ``importlib.metadata`` does for an installed distribution (an ``EntryPoint``),
hand it to mlx's plugin loader, and run the plugin's own conformance tests here.
One slow test does the real thing: ``pip install --target`` (about 2 s; no
throwaway venv needed) and ``mlx apply`` with that directory on PYTHONPATH.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from contract import Provider

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "plugin"
sys.path.insert(0, str(PLUGIN / "src"))  # as `pip install -e examples/plugin` would


def _declared() -> dict[str, str]:
    meta = tomllib.loads((PLUGIN / "pyproject.toml").read_text())
    return dict(meta["project"]["entry-points"]["mlx.providers"])


def test_entry_point_is_declared_and_loads_a_provider() -> None:
    declared = _declared()
    assert declared == {"dirstore": "mlx_dirstore:DirStoreProvider"}
    cls = EntryPoint("dirstore", declared["dirstore"], "mlx.providers").load()
    assert isinstance(cls, type) and issubclass(cls, Provider)
    assert cls.sections == frozenset({"models", "datasets"})


def test_mlx_plugin_loader_finds_it_by_type(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import plugins

    entry = EntryPoint("dirstore", _declared()["dirstore"], plugins.GROUP)
    monkeypatch.setattr(plugins, "available_types", lambda: {"dirstore": entry})
    cls = plugins.load_class("dirstore")
    assert cls.__module__ == "mlx_dirstore.provider"


def test_its_package_builds_only_what_it_declares() -> None:
    meta = tomllib.loads((PLUGIN / "pyproject.toml").read_text())
    assert meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/mlx_dirstore"]
    assert "mlxctl>=0.1" in meta["project"]["dependencies"]


def _plugin_tests() -> object:
    spec = importlib.util.spec_from_file_location(
        "mlx_dirstore_conformance", PLUGIN / "tests" / "test_conformance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the plugin's own suite (the conformance kit included), collected here too
_suite = _plugin_tests()
TestDirStoreModels = _suite.TestDirStoreModels  # type: ignore[attr-defined]
test_dirstore_config_is_validated = _suite.test_config_is_validated  # type: ignore[attr-defined]


@pytest.mark.slow
def test_pip_installed_plugin_is_discovered_by_mlx(tmp_path: Path) -> None:
    """The real thing: pip installs the package (into a target dir), mlx finds it by type."""
    import subprocess

    from tests.conftest import REPO, run_mlx, write_spec

    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run(
        [*pip, "--target", str(target), str(PLUGIN)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    spec = write_spec(
        tmp_path / "spec",
        {
            "mlx.yaml": """
                providers:
                  shelf: {type: dirstore, root: shelf}
                models:
                  fraud: {provider: shelf, artifact: model.bin, owner: team-ml}
            """,
            "model.bin": "weights",
        },
    )
    env = {"PYTHONPATH": os.pathsep.join([str(target), str(REPO)])}
    run = run_mlx(["apply", "--yes"], spec, env=env)
    assert run.code == 0, run
    assert (spec / "shelf" / "models" / "fraud" / "1" / "content").read_text() == "weights"
    assert run_mlx(["plan", "--detailed-exitcode"], spec, env=env).code == 0
