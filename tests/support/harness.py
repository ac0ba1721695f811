"""The engine in-process, for tests that apply many times: a spec dir, its state, its registry.

Faster than running the ``mlx`` command for every step, and the same code path
behind it (``engine.operations`` / ``engine.workflows.release``); the CLI itself keeps a
few smoke tests.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.diagnostics import MlxError
from engine import operations
from engine.apply.applier import ApplyReport
from engine.plan.model import Plan, PlanOptions
from engine.session import Options, Session
from engine.workflows import release as release
from tests.support.registry_rows import find_record


@dataclass
class Workspace:
    root: Path
    environ: dict[str, str] = field(default_factory=dict)
    environment: str | None = None
    #: every line the last operation printed
    lines: list[str] = field(default_factory=list)

    # -- files -------------------------------------------------------------------------
    def write(self, files: Mapping[str, str]) -> Workspace:
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return self

    def remove(self, *names: str) -> None:
        for name in names:
            (self.root / name).unlink()

    # -- operations ----------------------------------------------------------------------
    def session(self) -> Session:
        import os

        environ = {**os.environ, "MLX_ACTOR": "tester", **self.environ}
        environ.pop("MLX_ENV", None)
        environ.pop("MLX_STATE", None)
        return Session(Options(chdir=self.root, environment=self.environment, environ=environ))

    def _delivery(self, out_file: Path | None = None) -> release.Delivery:
        self.lines = []
        return release.Delivery(self.lines.append, None, 2, out_file)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def plan(self, **options: Any) -> Plan:
        session = self.session()
        try:
            opts = PlanOptions(environment=session.workspace, **options)
            # with the records around the changes, so every plan here renders as JSON too
            return operations.plan(session, opts, with_values=True)
        finally:
            session.close()

    def plan_text(self, **options: Any) -> str:
        from engine.render.text import render_plan

        return render_plan(self.plan(**options))

    def apply(self, **options: Any) -> ApplyReport | None:
        session = self.session()
        try:
            opts = PlanOptions(environment=session.workspace, **options)
            return operations.apply(session, self._delivery(), opts)
        finally:
            session.close()

    def save_plan(self, path: Path, **options: Any) -> Plan:
        plan = self.plan(**options)
        release.save_plan(plan, path)
        return plan

    def apply_saved(self, path: Path) -> ApplyReport | None:
        session = self.session()
        try:
            return release.apply_saved(session, path, self._delivery())
        finally:
            session.close()

    def rollback(self, to: int | None = None, **options: Any) -> ApplyReport | None:
        session = self.session()
        try:
            return release.rollback(session, to, self._delivery(), **options)
        finally:
            session.close()

    def refresh(self) -> list[Any]:
        session = self.session()
        self.lines = []
        try:
            return list(operations.refresh(session, echo=self.lines.append).drift)
        finally:
            session.close()

    def error(self, call: Any, *args: Any, **kwargs: Any) -> str:
        """The message of the MlxError ``call`` raises (fails if it raises none)."""
        try:
            call(*args, **kwargs)
        except MlxError as exc:
            return str(exc)
        raise AssertionError(f"{call.__name__} raised no error")

    # -- what state and the registry hold ---------------------------------------------------
    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.root / ".mlx" / "state.db") as conn:
            return conn.execute(query, params).fetchall()

    def statuses(self) -> dict[str, str]:
        return dict(self.sql("SELECT address, status FROM mlx_resources"))

    def outputs(self, address: str) -> dict[str, Any]:
        rows = self.sql("SELECT outputs FROM mlx_resources WHERE address = ?", address)
        assert rows, f"{address} is not recorded"
        return dict(json.loads(rows[0][0]))

    def registry_file(self, section: str, name: str, env: str = "default") -> dict[str, Any] | None:
        """The local registry's record of one object: ``{"object": …, "versions": …}``."""
        return find_record(self.root / ".mlx" / "registry", section, name, env)

    def registry_object(
        self, section: str, name: str, env: str = "default"
    ) -> dict[str, Any] | None:
        data = self.registry_file(section, name, env)
        return data["object"] if data else None

    def registry_versions(self, section: str, name: str, env: str = "default") -> list[int]:
        data = self.registry_file(section, name, env)
        return sorted(int(k) for k in data["versions"]) if data else []

    def gate_calls(self, calls: str = "gate-calls.jsonl") -> list[dict[str, Any]]:
        path = self.root / calls
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]
