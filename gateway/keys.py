"""The LLM upstream's API key of a prompt endpoint, resolved by this replica.

The route document holds no secret. Each replica resolves the endpoint's ``client.api_key``
(``${env.OPENAI_API_KEY}``) from the spec directory it serves (``mlx serve -C DIR``) with its
own environment, through the engine's resolver, exactly as a plan would. An endpoint the spec
does not declare (or declares without ``api_key``) gets no key: a local upstream (vLLM, Ollama)
needs none. The spec is read again whenever a route moves, so a key added to the spec is used
from the next route change on; a spec an edit broke keeps the keys read before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("mlx.gateway")

SpecLookup = Callable[[str], Any]


class KeyResolver:
    def __init__(self, root: Path, environment: str | None, environ: dict[str, str] | None = None):
        self.root = root
        self.environment = environment
        self.environ = environ
        self._lookup: SpecLookup | None = None
        self._problem: str | None = None
        self._fresh = False

    def begin_round(self) -> None:
        """Read the spec again at the next lookup (called before a round of route reloads)."""
        self._fresh = False

    def _spec(self) -> SpecLookup | None:
        if not self._fresh:
            self._fresh = True
            from engine.diagnostics import MlxError
            from engine.load.resolve import declared_specs
            from engine.session import Options, Session

            extra: dict[str, Any] = {} if self.environ is None else {"environ": self.environ}
            options = Options(chdir=self.root, environment=self.environment, **extra)
            try:
                session = Session(options)
                session.spec  # noqa: B018 - load now, so that a broken spec is reported once here
                self._lookup = declared_specs(session, lambda _address: None)
                self._problem = None
            except MlxError as exc:  # an edit broke the spec: keep the keys read before
                self._problem = f"the spec in {self.root} does not load: {_first_line(exc)}"
                log.warning("mlx serve: %s (keeping the keys read before)", self._problem)
        return self._lookup

    def resolve(self, address: str) -> tuple[str | None, str | None]:
        """``(api_key, problem)`` for the endpoint at ``address``."""
        from engine.diagnostics import MlxError

        lookup = self._spec()
        if lookup is None:
            return None, self._problem
        try:
            spec = lookup(address)
        except MlxError as exc:
            return None, f"{address}.client.api_key: {_first_line(exc)}"
        if not isinstance(spec, dict):
            return None, None
        client = spec.get("client")
        key = client.get("api_key") if isinstance(client, dict) else None
        return (str(key) if key else None), None


def _first_line(exc: Exception) -> str:
    render = getattr(exc, "render", None)
    text = render() if callable(render) else str(exc)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
