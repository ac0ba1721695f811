"""Running the real `mlx` with the built-in ``monitor`` provider.

It is registered in pyproject.toml's ``mlx.providers`` entry points; an editable install made
before that line existed does not list it until it is reinstalled. Then (only then) these tests
put a one-line distribution on PYTHONPATH declaring the same entry point, as a plugin would —
what runs is still this checkout's ``providers.monitor``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.conftest import Channel, free_port
from tests.conftest import REPO, Run, run_mlx


@pytest.fixture
def channel() -> Iterator[Channel]:
    """A webhook receiver on 127.0.0.1 (tests.alerts.conftest)."""
    ch = Channel(free_port())
    ch.up()
    yield ch
    ch.down()


def _shim(root: Path) -> str:
    info = root / "mlx_monitor_entry-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlx-monitor-entry\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[mlx.providers]\nmonitor = providers.monitor.provider:MonitorProvider\n"
    )
    return str(root)


@pytest.fixture(scope="session")
def monitor_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if any(ep.name == "monitor" for ep in entry_points(group="mlx.providers")):
        return {}
    shim = _shim(tmp_path_factory.mktemp("monitor-entry"))
    return {"PYTHONPATH": f"{REPO}{os.pathsep}{shim}"}


@pytest.fixture
def mlx_m(monitor_env: dict[str, str]) -> Any:
    def run(args: list[str], cwd: Path, **kw: Any) -> Run:
        return run_mlx(args, cwd, env={**monitor_env, **kw.pop("env", {})}, **kw)

    return run
