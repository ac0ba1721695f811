"""One run of mlx: the options, the spec dir, its state and its providers.

Everything the CLI can do goes through a ``Session``, so Python code can do the
same (``Session(Options(chdir=...)).plan()``), as dbt's ``dbtRunner`` allows.
Expensive parts (loading the spec, opening state) happen on first use.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from common.diagnostics import MlxError

if TYPE_CHECKING:  # kept out of the import path: `mlx plan` starts parsing before these load
    from contract import Context
    from engine.load.graph import SpecGraph
    from engine.load.resolve import Inputs
    from engine.load.spec_set import PendingLoad, SpecSet
    from state.store import StateReader, StateStore, StateWriter

DEFAULT_STATE = "sqlite:///.mlx/state.db"
DATA_DIR = ".mlx"


@dataclass(frozen=True)
class Options:
    chdir: Path = Path(".")
    state_url: str | None = None
    environment: str | None = None
    lock_timeout: float = 0.0
    actor: str | None = None
    use_cache: bool = True
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)


class Session:
    def __init__(self, options: Options, spec: SpecSet | None = None):
        self.options = options
        self.root = options.chdir.resolve()
        self.data_dir = self.root / DATA_DIR
        env = options.environment or options.environ.get("MLX_ENV") or None
        self.environment: str | None = env
        self.workspace = env or "default"
        self._pending: PendingLoad | None = None
        if spec is not None:  # a spec from state (rollback, promotion), not from the files
            self.__dict__["spec"] = spec

    def start_loading(self) -> None:
        """Start parsing the spec files in the background (``engine.load.spec_set.PendingLoad``)."""
        if "spec" in self.__dict__ or self._pending is not None:
            return
        from engine.load import spec_set as loader

        self._pending = loader.begin(self.root, self._cache_dir())

    def _cache_dir(self) -> Path | None:
        return self.data_dir / "cache" / "parse" if self.options.use_cache else None

    def with_spec(self, spec: SpecSet, environment: str | None = None) -> Session:
        """The same run against another spec (and maybe another environment)."""
        from dataclasses import replace

        options = self.options
        if environment is not None:
            options = replace(options, environment=environment)
        other = Session(options, spec)
        if environment is None or environment == self.environment:
            other.__dict__["store"] = self.store
        return other

    # -- spec ---------------------------------------------------------------------
    @cached_property
    def spec(self) -> SpecSet:
        self.start_loading()
        assert self._pending is not None
        return self._pending.result()

    @cached_property
    def graph(self) -> SpecGraph:
        from engine.load import graph

        return graph.build(self.spec)

    @cached_property
    def inputs(self) -> Inputs:
        from engine.load.resolve import variable_values

        return variable_values(self.spec, self.environment, self.options.environ)

    @property
    def parallelism(self) -> int:
        """``mlx.parallelism`` from the spec, else 10 (``--parallelism`` overrides it)."""
        return int(self.spec.settings.get("parallelism") or 10)

    @property
    def protected(self) -> bool:
        if self.environment is None:
            return False
        return bool(self.spec.environments.get(self.environment, {}).get("protected"))

    # -- state --------------------------------------------------------------------
    def state_url(self) -> str:
        from state.store import normalize_url

        try:
            envs = self.spec.environments
        except MlxError:
            envs = {}
        env_cfg = envs.get(self.environment, {}) if self.environment else {}
        trusted = self.options.state_url or self.options.environ.get("MLX_STATE")
        from_spec = env_cfg.get("state") or self._settings_state()
        if not trusted and from_spec:
            self._confine_state(str(from_spec))  # before normalizing creates any directory
        return normalize_url(trusted or from_spec or DEFAULT_STATE, self.root)

    def _confine_state(self, url: str) -> None:
        """A state file named *by the spec* (a pull request) stays inside the spec dir or
        ``mlx.paths``; ``--state`` and ``MLX_STATE`` (the operator's) may point anywhere."""
        if not url.startswith("sqlite:///"):
            return
        path = Path(os.path.realpath(self.root / url.removeprefix("sqlite:///")))
        try:
            allowed = [Path(os.path.realpath(self.root))] + [
                Path(os.path.realpath(self.root / str(p)))
                for p in (self.spec.settings.get("paths") or ())
            ]
        except MlxError:
            allowed = [Path(os.path.realpath(self.root))]
        if not any(path == a or a in path.parents for a in allowed):
            raise MlxError(
                f"mlx.state names {path}, outside the spec directory: a spec may keep its state "
                "only inside it or a directory listed in mlx.paths (use --state or MLX_STATE "
                "for anything else)"
            )

    def _settings_state(self) -> str | None:
        try:
            return self.spec.settings.get("state")
        except MlxError:
            return None

    @cached_property
    def store(self) -> StateStore:
        from sqlalchemy.exc import SQLAlchemyError

        from state.store import StateStore, redact_url

        url = self.state_url()  # a URL mlx cannot use raises StateError (an MlxError) here
        try:
            return StateStore(url)
        except SQLAlchemyError as exc:
            reason = str(exc.orig if hasattr(exc, "orig") else exc).strip()
            reason = "; ".join(line.strip() for line in reason.splitlines() if line.strip())
            raise MlxError(
                f"cannot open state at {redact_url(url)}: {exc.__class__.__name__}: {reason}"
            ) from exc
        except Exception as exc:
            if exc.__class__.__name__ == "SchemaTooNew":
                raise MlxError(str(exc)) from exc
            raise

    def reader(self) -> StateReader:
        """Read-only state: the planner takes this type, so mypy rejects a write there."""
        return self.store.reader(self.workspace)

    def writer(self, operation: str) -> StateWriter:
        from state.locks import LockHeld

        try:
            return self.store.writer(
                self.workspace,
                who=self.actor,
                operation=operation,
                lock_timeout=self.options.lock_timeout,
            )
        except LockHeld as exc:
            raise MlxError(str(exc)) from exc

    # -- providers ------------------------------------------------------------------
    def provider_context(self) -> Context:
        """Where providers run; ``allowed_paths``: the spec's ``mlx.paths``, made absolute."""
        from contract import Context

        paths = self.spec.settings.get("paths") or ()
        allowed = tuple(Path(os.path.normpath(self.root / str(p))) for p in paths)
        from engine.log_location import log_url

        return Context(
            root=self.root,
            data_dir=self.data_dir,
            environment=self.workspace,
            allowed_paths=allowed,
            state_url=self.state_url(),
            log_url=log_url(self),
        )

    # -- who and what -----------------------------------------------------------------
    @cached_property
    def actor(self) -> str:
        if self.options.actor:
            return self.options.actor
        env = self.options.environ
        if env.get("MLX_ACTOR"):
            return env["MLX_ACTOR"]
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return f"{user}@{socket.gethostname()}"

    @cached_property
    def git_sha(self) -> str | None:
        """The commit the spec dir is at, with ``-dirty`` if it has local changes."""
        try:
            sha = subprocess.run(
                ["git", "-C", str(self.root), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(self.root), "status", "--porcelain", "--", "."],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        return f"{sha}-dirty" if dirty else sha

    @cached_property
    def plan_salt(self) -> str:
        """Salt for secret digests: the state's own, or a fresh one before the first apply."""
        return self.reader().salt or secrets.token_hex(16)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
