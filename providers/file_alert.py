"""The embedded ``file`` alert channel: alerts appended as JSON lines to a file."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from contract import (
    AlertMessage,
    Change,
    Desired,
    Notifier,
    Observed,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Result,
)
from providers.channels import ChannelRecords
from providers.files import PathGuard, PathRefused

_CONFIG_KEYS = ("path", "severity", "owner")
_lock = threading.Lock()


class FileAlertProvider(Provider, Notifier):
    sections = frozenset({"alerts"})

    def _records(self) -> ChannelRecords:
        return ChannelRecords(self.context.data_dir / "alerts")

    def _target(self, spec: Any) -> Path:
        """Where alerts go: inside the spec dir, `.mlx/` or `mlx.paths` (this file is written)."""
        ctx = self.context
        guard = PathGuard(ctx.root, ctx.allowed_paths, data_dir=ctx.data_dir)
        target = guard.confine(str(spec["path"]), "alert file", contents=False)
        if target.is_dir():
            raise PathRefused(f"alert file {spec['path']} is a directory")
        return target

    def plan_inputs(self) -> list[str] | None:
        return []  # planning a file channel looks at nothing but its spec

    def check(self, desired: Desired) -> list[Problem]:
        if desired.spec.get("type") != "file":
            return [Problem(("type",), "the file provider only serves `type: file` channels")]
        if isinstance(desired.spec.get("path"), str):
            try:
                self._target(desired.spec)
            except PathRefused as exc:
                return [Problem(("path",), str(exc))]
        return []

    def create(self, desired: Desired) -> Result:
        return self._write(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        return self._write(desired)

    def _write(self, desired: Desired) -> Result:
        target = self._target(desired.spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=True)
        config = {k: desired.spec.get(k) for k in _CONFIG_KEYS}
        self._records().write(desired.name, config)
        return Result({"channel_id": f"file:{desired.name}", "path": str(target), "config": config})

    def delete(self, prior: Prior) -> None:
        self._records().delete(prior.name)

    def read(self, prior: Prior) -> Observed | None:
        config = self._records().read(prior.name)
        return None if config is None else Observed({**prior.outputs, "config": config})

    def send(self, channel: Prior, message: AlertMessage) -> None:
        target = Path(str(channel.outputs["path"]))
        record = message.record(channel.address)
        try:
            with _lock, target.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ProviderError(f"{channel.address}: cannot append to {target}: {reason}") from exc
