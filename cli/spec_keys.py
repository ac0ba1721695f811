"""The upstream keys only the spec can resolve, for ``mlx serve`` (``gateway.keys.SpecKeys``).

A route document says where a prompt endpoint's key is (``dataplane.route.KeyRef``); the
gateway resolves ``{"env": NAME}`` itself. Two kinds of document need the spec: ``{"spec":
true}`` (the spec writes the key other than as exactly ``${env.NAME}``: literal text, a
variable, text around ``${env.X}``) and a document an earlier release wrote (no reference).
For those the composition root gives the gateway this: the spec directory it serves (``mlx
serve -C DIR``) resolved with this process's environment through the engine's resolver,
exactly as a plan would. An endpoint the spec does not declare (or declares without
``api_key``) gets no key. The spec is read again whenever a route moves, so a key added to the
spec is used from the next route change on; a spec an edit broke keeps the keys read before.

A declared key this replica cannot resolve — ``${env.X}`` with ``X`` unset (or empty) — is
refused as ``gateway.keys`` refuses one (``refused``: 503, degraded, a line on stderr).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gateway.keys import UpstreamKey, refused

log = logging.getLogger("mlx.gateway")

SpecLookup = Callable[[str], Any]
_KEY_PATH = ("client", "api_key")


class SpecDirectoryKeys:
    """``gateway.keys.SpecKeys`` over the spec directory ``root`` (environment ``environment``)."""

    def __init__(self, root: Path, environment: str | None, environ: dict[str, str] | None = None):
        self.root = root
        self.environment = environment
        self.environ = environ
        self._lookup: SpecLookup | None = None
        self._session: Any = None
        self._problem: str | None = None
        self._fresh = False

    def begin_round(self) -> None:
        """Read the spec again at the next lookup (called before a round of route reloads)."""
        self._fresh = False

    def _spec(self) -> SpecLookup | None:
        if not self._fresh:
            self._fresh = True
            from common.diagnostics import MlxError
            from engine.load.resolve import declared_specs
            from engine.session import Options, Session

            extra: dict[str, Any] = {} if self.environ is None else {"environ": self.environ}
            options = Options(chdir=self.root, environment=self.environment, **extra)
            try:
                session = Session(options)
                session.spec  # noqa: B018 - load now, so that a broken spec is reported once here
                self._lookup = declared_specs(session, lambda _address: None)
                self._session = session
                self._problem = None
            except MlxError as exc:  # an edit broke the spec: keep the keys read before
                self._problem = f"the spec in {self.root} does not load: {_first_line(exc)}"
                log.warning("mlx serve: %s (keeping the keys read before)", self._problem)
        return self._lookup

    def resolve(self, address: str) -> UpstreamKey:
        """The upstream key of the endpoint at ``address`` (``endpoints.NAME``)."""
        from common.diagnostics import MlxError

        lookup = self._spec()
        if lookup is None:
            return UpstreamKey(problem=self._problem)
        unset = self._unset(address)
        if unset:
            return refused(address, unset)
        try:
            spec = lookup(address)
        except MlxError as exc:
            problem = f"{address}.client.api_key: {_first_line(exc)}"
            if self._declares_key(address):
                return refused(address, (), problem)
            return UpstreamKey(problem=problem)
        if not isinstance(spec, dict):
            return UpstreamKey()
        client = spec.get("client")
        key = client.get("api_key") if isinstance(client, dict) else None
        return UpstreamKey(value=str(key) if key else None)

    def _declares_key(self, address: str) -> bool:
        decl = self._session.spec.decls.get(address) if self._session is not None else None
        client = decl.body.get("client") if decl is not None else None
        return isinstance(client, Mapping) and client.get("api_key") not in (None, "")

    def _unset(self, address: str) -> tuple[str, ...]:
        """The ``${env.X}`` names ``client.api_key`` needs that this process lacks (or has
        empty), in the order written."""
        if self._session is None:
            return ()
        templates = self._session.graph.templates.get(address) or {}
        parts = templates.get(_KEY_PATH) or ()
        environ: Mapping[str, str] = self._session.inputs.environ
        names = [
            p.name
            for p in parts
            if getattr(p, "namespace", None) == "env" and not environ.get(p.name)
        ]
        return tuple(dict.fromkeys(names))


def _first_line(exc: Exception) -> str:
    render = getattr(exc, "render", None)
    text = render() if callable(render) else str(exc)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
