"""The real `mlx` with the built-in ``monitor`` provider (tests.support.monitor_entry), and a
webhook receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.conftest import Channel, free_port
from tests.conftest import Run, run_mlx
from tests.support.monitor_entry import monitor_env


@pytest.fixture
def channel() -> Iterator[Channel]:
    """A webhook receiver on 127.0.0.1 (tests.alerts.conftest)."""
    ch = Channel(free_port())
    ch.up()
    yield ch
    ch.down()


@pytest.fixture
def mlx_m() -> Any:
    def run(args: list[str], cwd: Path, **kw: Any) -> Run:
        return run_mlx(args, cwd, env={**monitor_env(), **kw.pop("env", {})}, **kw)

    return run
