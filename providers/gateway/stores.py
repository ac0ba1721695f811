"""Where the gateway provider reads and writes: the route table and the inference log.

Both are opened on first use (SQLAlchemy is imported then, not when ``mlx --help`` loads the
plugin list) and shared by the provider's threads. Database failures become one-line
``ProviderError``s naming the endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from contract import Context, ProviderError

if TYPE_CHECKING:
    from dataplane.table import Route, RouteStore
    from inference.store import LogStore

T = TypeVar("T")
#: Where ``mlx logs`` and ``mlx serve`` look when nothing says otherwise (``engine.log_location``).
DEFAULT_LOG = "sqlite:///.mlx/inference.db"


def guarded(address: str, what: str, call: Callable[[], T]) -> T:
    """``call()``, a database failure turned into one line: ``<address>: cannot <what>: …``."""
    from sqlalchemy.exc import SQLAlchemyError

    from state.store import StateError

    try:
        return call()
    except (StateError, SQLAlchemyError) as exc:
        reason = getattr(exc, "orig", None) or exc
        text = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
        raise ProviderError(f"{address}: cannot {what}: {text}") from exc


class Stores:
    def __init__(self, context: Context):
        self.context = context
        self._lock = threading.Lock()
        self._routes: RouteStore | None = None
        self._log: LogStore | None = None

    # -- the route table (the state database) --------------------------------------------
    def routes(self, address: str) -> RouteStore:
        with self._lock:
            if self._routes is None:
                url = self.context.state_url
                if not url:
                    raise ProviderError(
                        f"{address}: the gateway keeps its routes in the state database, and "
                        "this run names none"
                    )
                from dataplane.table import RouteStore
                from state.store import normalize_url

                root = self.context.root
                self._routes = guarded(
                    address,
                    "open the gateway route table",
                    lambda: RouteStore.open(normalize_url(url, root)),
                )
            return self._routes

    def get(self, address: str, endpoint: str) -> Route | None:
        store, env = self.routes(address), self.context.environment
        return guarded(address, "read its gateway route", lambda: store.get(env, endpoint))

    def put(self, address: str, endpoint: str, doc: dict[str, Any]) -> int:
        """Write ``endpoint``'s document (one transaction); its new generation."""
        store, env = self.routes(address), self.context.environment
        return guarded(address, "write its gateway route", lambda: store.put(env, endpoint, doc))

    def delete(self, address: str, endpoint: str) -> None:
        store, env = self.routes(address), self.context.environment
        guarded(address, "delete its gateway route", lambda: store.delete(env, endpoint))

    # -- the inference log --------------------------------------------------------------
    def log_url(self) -> str:
        """The inference log's URL, normalized (a relative SQLite path: the spec directory's)."""
        from state.store import normalize_url

        return normalize_url(self.context.log_url or DEFAULT_LOG, self.context.root)

    def log(self, address: str) -> LogStore | None:
        """The inference log, or None while nothing was ever logged (no SQLite file yet)."""
        with self._lock:
            if self._log is None:
                from inference.store import LogError, open_log

                url = self.log_url()
                if url.startswith("sqlite:///"):
                    path = url[len("sqlite:///") :].partition("?")[0]
                    if path != ":memory:" and not Path(path).exists():
                        return None
                try:
                    self._log = open_log(url)
                except LogError as exc:
                    raise ProviderError(f"{address}: {exc}") from exc
            return self._log

    def close(self) -> None:
        with self._lock:
            for store in (self._routes, self._log):
                if store is not None:
                    store.engine.dispose()
            self._routes = self._log = None
