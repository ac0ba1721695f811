"""Which database a spec directory's inference log lives in (``mlx logs`` and ``mlx serve``).

In order: an explicit URL (``mlx logs --log URL``), ``MLX_LOG``, the spec's ``mlx.log``, the
state's database when the state is PostgreSQL (the same database, separate tables: several
gateway replicas then share one log), else ``sqlite:///.mlx/inference.db``. A relative SQLite
path is relative to the spec directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.session import Session

DEFAULT_LOG = "sqlite:///.mlx/inference.db"


def log_url(session: Session, override: str | None = None) -> str:
    """The log URL for ``session``, normalized."""
    from common import db
    from common.diagnostics import MlxError

    url = override or session.options.environ.get("MLX_LOG") or _setting(session)
    if not url:
        state = session.state_url()
        url = state if state.startswith("postgresql") else DEFAULT_LOG
    return db.normalize_url(url, session.root, what="inference log", error=MlxError)


def _setting(session: Session) -> str | None:
    from common.diagnostics import MlxError

    try:
        value = session.spec.settings.get("log")
    except MlxError:
        return None
    return str(value) if value else None
