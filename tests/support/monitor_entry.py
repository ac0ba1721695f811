"""The environment under which the real `mlx` finds the built-in ``monitor`` provider.

It is registered in pyproject.toml's ``mlx.providers`` entry points; an editable install made
before that line existed does not list it until it is reinstalled. Then (only then) tests put a
one-line distribution on PYTHONPATH declaring the same entry point, as a plugin would: what
runs is still this checkout's ``providers.monitor``. Installed as it should be: no change."""

from __future__ import annotations

import os
import tempfile
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


@cache
def monitor_env() -> dict[str, str]:
    if any(ep.name == "monitor" for ep in entry_points(group="mlx.providers")):
        return {}
    root = Path(tempfile.mkdtemp(prefix="mlx-monitor-entry-"))
    info = root / "mlx_monitor_entry-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlx-monitor-entry\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[mlx.providers]\nmonitor = providers.monitor.provider:MonitorProvider\n"
    )
    return {"PYTHONPATH": f"{REPO}{os.pathsep}{root}"}
