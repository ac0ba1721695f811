"""Where mlx keeps an alert channel's settings when no server holds them (file, webhook).

``read()`` of such a channel compares this record with what mlx recorded in
state, so a record edited or removed behind mlx's back shows up as drift and is
rewritten by the next apply. Only non-secret settings are kept here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class ChannelRecords:
    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def write(self, name: str, config: dict[str, Any]) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(config, sort_keys=True, indent=2))
        os.replace(tmp, path)

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(name).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
