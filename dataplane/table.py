"""The embedded gateway's route table (``mlx_gateway_routes``), in the state database.

The control plane (the ``gateway`` provider, during ``mlx apply`` or a rollout
step) writes one JSON *route document* per endpoint; the data plane (every
``mlx serve`` replica) polls ``generations()`` — one small query — and reloads
only the documents whose generation moved. The request path never touches
this table. The document's shape is described in ``docs/gateway.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, literal, select, update
from sqlalchemy import text as text_sql

from state.tables import GatewayRoute

_T = GatewayRoute.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Route:
    endpoint: str
    generation: int
    doc: dict[str, Any]
    updated_at: datetime


class RouteStore:
    """Routes of one state database (all workspaces); ``engine`` is the state's."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> RouteStore:
        """Open (and migrate) the state database at ``url`` for its routes."""
        from state.store import StateStore

        return cls(StateStore(url).engine)

    def put(self, workspace: str, endpoint: str, doc: dict[str, Any]) -> int:
        """Write ``endpoint``'s route; returns its new generation.

        One transaction; two writers (an apply and a rollout step) never write the same
        generation: PostgreSQL serialises them on an advisory lock per workspace, SQLite
        by making the first statement a write (which takes the database's write lock).
        """
        text = json.dumps(doc, sort_keys=True)
        at = datetime.now(UTC)
        key = (_T.c.workspace == workspace) & (_T.c.endpoint == endpoint)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text_sql("SELECT pg_advisory_xact_lock(hashtext(:w))"), {"w": workspace}
                )
            top = (
                select(func.coalesce(func.max(_T.c.generation), 0) + 1)
                .where(_T.c.workspace == workspace)
                .scalar_subquery()
            )
            done = conn.execute(
                update(_T).where(key).values(generation=top, doc=text, updated_at=at)
            ).rowcount
            if not done:
                conn.execute(
                    insert(_T).from_select(
                        ["workspace", "endpoint", "generation", "doc", "updated_at"],
                        select(
                            literal(workspace),
                            literal(endpoint),
                            func.coalesce(func.max(_T.c.generation), 0) + 1,
                            literal(text),
                            literal(at, type_=_T.c.updated_at.type),
                        ).where(_T.c.workspace == workspace),
                    )
                )
            generation = conn.execute(select(_T.c.generation).where(key)).scalar_one()
        return int(generation)

    def get(self, workspace: str, endpoint: str) -> Route | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(_T).where(_T.c.workspace == workspace, _T.c.endpoint == endpoint)
                )
                .mappings()
                .first()
            )
        return _route(row) if row else None

    def all(self, workspace: str) -> dict[str, Route]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(_T).where(_T.c.workspace == workspace)).mappings().all()
        return {r["endpoint"]: _route(r) for r in rows}

    def generations(self, workspace: str) -> dict[str, int]:
        """``{endpoint: generation}``: what a replica polls to see what moved."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_T.c.endpoint, _T.c.generation).where(_T.c.workspace == workspace)
            ).all()
        return {str(e): int(g) for e, g in rows}

    def delete(self, workspace: str, endpoint: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                delete(_T).where(_T.c.workspace == workspace, _T.c.endpoint == endpoint)
            ).rowcount
        return bool(done)


def _route(row: Any) -> Route:
    return Route(row["endpoint"], int(row["generation"]), json.loads(row["doc"]), row["updated_at"])
