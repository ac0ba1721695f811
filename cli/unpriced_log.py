"""``mlx refresh``'s reader of unpriced answers: the inference log opened here, in the
composition root, so that the engine never imports the log (``engine.unpriced``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def unpriced_since(session: Any, since: float) -> Sequence[Any]:
    """The unpriced answers of the session's workspace since ``since``; no log yet (nothing
    served): none, and reading never creates one."""
    from common.db import sqlite_path
    from common.diagnostics import MlxError
    from engine.log_location import log_url
    from inference.store import LogError, open_log
    from inference.unpriced import unpriced

    url = log_url(session)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return []
    try:
        store = open_log(url)
    except LogError as exc:
        raise MlxError(f"mlx refresh: cannot read the inference log: {exc}") from None
    try:
        return unpriced(store, since=since, environment=session.workspace)
    finally:
        store.close()
