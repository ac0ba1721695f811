"""The alerts' rows in the state database: lifecycle records, the delivery outbox, silences.

Plain rows in, plain rows out: the lifecycle (``alerts.lifecycle``) is decided above this
module, by ``engine.alerting``, which reads a row, runs ``step`` and hands the outcome back
to ``transition``. Two promises are kept here, in SQL:

* **compare-and-set**: ``transition`` writes an alert's new state only if its ``rev`` is
  still the one that was read (an ``UPDATE … WHERE rev = :read``; a first row is an
  ``INSERT`` the primary key refuses twice), and inserts the deliveries in the same
  transaction — so two overlapping runs that read the same row never both notify;
* **claim before send**: ``claim`` takes a due delivery by moving its ``next_attempt_at``
  forward conditionally, so two delivery runs never send one row twice at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from state.tables import AlertRow, OutboxRow, SilenceRow

_A = AlertRow.__table__  # type: ignore[attr-defined]
_O = OutboxRow.__table__  # type: ignore[attr-defined]
_S = SilenceRow.__table__  # type: ignore[attr-defined]

#: the lifecycle fields of a row, as ``alerts.AlertRecord`` names them
RECORD_FIELDS = ("state", "condition", "streak", "since", "notified_at", "decided_at")


class DeliveryStatus:
    PENDING = "pending"  # to send (again, at next_attempt_at)
    DELIVERED = "delivered"
    FAILED = "failed"  # final (a 4xx other than 429): kept and shown, never dropped
    SUPPRESSED = "suppressed"  # silenced: recorded, not sent


@dataclass(frozen=True)
class Delivery:
    """One outbox row to insert with a transition."""

    channel: str
    kind: str
    payload: dict[str, Any]
    idempotency_key: str
    status: str = DeliveryStatus.PENDING


@dataclass(frozen=True)
class Outbox:
    """One outbox row as read."""

    id: int
    alert_key: str
    channel: str
    kind: str
    status: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    delivered_at: float | None


@dataclass(frozen=True)
class Silence:
    id: int
    matcher: str
    until: float
    reason: str | None
    who: str
    created_at: float

    def matches(self, key: str) -> bool:
        if self.matcher.endswith("*"):
            return key.startswith(self.matcher[:-1])
        return key == self.matcher


class AlertStore:
    """The alert tables of one workspace; ``engine`` is the state's (migrated)."""

    def __init__(self, engine: Engine, workspace: str):
        self.engine = engine
        self.workspace = workspace

    # -- alerts ---------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(_A).where(_A.c.workspace == self.workspace, _A.c.key == key))
                .mappings()
                .first()
            )
        return _alert(row) if row else None

    def alerts(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(_A).where(_A.c.workspace == self.workspace).order_by(_A.c.key))
                .mappings()
                .all()
            )
        return [_alert(r) for r in rows]

    def transition(
        self,
        key: str,
        ident: dict[str, str | None],
        read_rev: int | None,
        record: dict[str, Any],
        message: dict[str, Any],
        deliveries: list[Delivery],
        now: float,
    ) -> bool:
        """Write the alert's new ``record`` and its ``deliveries`` in one transaction, only if
        the row is still at ``read_rev`` (``None``: there was no row); the deliveries are due
        at ``now`` (the run's time). False: another run
        moved it first — read it again and decide again."""
        values = {f: record[f] for f in RECORD_FIELDS}
        values |= {"message": json.dumps(message, sort_keys=True, default=str)}
        values |= {"updated_at": datetime.now(UTC)}
        try:
            with self.engine.begin() as conn:
                if read_rev is None:
                    conn.execute(
                        insert(_A).values(
                            workspace=self.workspace, key=key, rev=1, **ident, **values
                        )
                    )
                else:
                    moved = conn.execute(
                        update(_A)
                        .where(
                            _A.c.workspace == self.workspace,
                            _A.c.key == key,
                            _A.c.rev == read_rev,
                        )
                        .values(rev=read_rev + 1, **values)
                    ).rowcount
                    if moved != 1:
                        raise _Lost
                for d in deliveries:
                    conn.execute(self._outbox_row(key, d, now))
        except (_Lost, IntegrityError):
            return False
        return True

    def _outbox_row(self, key: str, delivery: Delivery, now: float) -> Any:
        """The INSERT of one delivery, due now."""
        return insert(_O).values(
            workspace=self.workspace,
            alert_key=key,
            channel=delivery.channel,
            kind=delivery.kind,
            status=delivery.status,
            payload=json.dumps(delivery.payload, sort_keys=True, default=str),
            idempotency_key=delivery.idempotency_key,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )

    def enqueue(self, key: str, delivery: Delivery, now: float) -> bool:
        """One delivery outside a transition (a test message, a one-shot event). False if a
        row with its idempotency key exists already (it was enqueued before)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(self._outbox_row(key, delivery, now))
        except IntegrityError:
            return False
        return True

    # -- the outbox -----------------------------------------------------------------------
    def outbox(self, *statuses: str) -> list[Outbox]:
        query = select(_O).where(_O.c.workspace == self.workspace)
        if statuses:
            query = query.where(_O.c.status.in_(statuses))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_O.c.id)).mappings().all()
        return [_outbox(r) for r in rows]

    def due(self, now: float) -> list[Outbox]:
        query = select(_O).where(
            _O.c.workspace == self.workspace,
            _O.c.status == DeliveryStatus.PENDING,
            _O.c.next_attempt_at <= now,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_O.c.id)).mappings().all()
        return [_outbox(r) for r in rows]

    def claim(self, row: Outbox, now: float, lease_s: float) -> bool:
        """Take ``row`` for one attempt: only one of two overlapping delivery runs gets it."""
        with self.engine.begin() as conn:
            took = conn.execute(
                update(_O)
                .where(
                    _O.c.id == row.id,
                    _O.c.status == DeliveryStatus.PENDING,
                    _O.c.attempts == row.attempts,
                    _O.c.next_attempt_at <= now,
                )
                .values(attempts=row.attempts + 1, next_attempt_at=now + lease_s)
            ).rowcount
        return took == 1

    def settle(
        self,
        row_id: int,
        status: str,
        *,
        now: float,
        next_attempt_at: float | None = None,
        error: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error}
        if status == DeliveryStatus.DELIVERED:
            values["delivered_at"] = now
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        with self.engine.begin() as conn:
            conn.execute(update(_O).where(_O.c.id == row_id).values(**values))

    # -- silences -------------------------------------------------------------------------
    def silence(self, matcher: str, until: float, reason: str | None, who: str) -> Silence:
        now = _now()
        with self.engine.begin() as conn:
            new_id = conn.execute(
                insert(_S)
                .values(
                    workspace=self.workspace,
                    matcher=matcher,
                    until=until,
                    reason=reason,
                    who=who,
                    created_at=now,
                )
                .returning(_S.c.id)
            ).scalar_one()
        return Silence(int(new_id), matcher, until, reason, who, now)

    def silences(self, now: float | None = None) -> list[Silence]:
        """Silences in force at ``now`` (all of them when ``now`` is None)."""
        query = select(_S).where(_S.c.workspace == self.workspace)
        if now is not None:
            query = query.where(_S.c.until > now)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_S.c.id)).mappings().all()
        return [
            Silence(int(r["id"]), r["matcher"], r["until"], r["reason"], r["who"], r["created_at"])
            for r in rows
        ]


class _Lost(Exception):
    """The compare-and-set found the row moved."""


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _alert(row: Any) -> dict[str, Any]:
    out = {k: row[k] for k in ("key", "resource", "version", "signal", "rev", *RECORD_FIELDS)}
    out["message"] = json.loads(row["message"] or "{}")
    return out


def _outbox(row: Any) -> Outbox:
    return Outbox(
        id=int(row["id"]),
        alert_key=row["alert_key"],
        channel=row["channel"],
        kind=row["kind"],
        status=row["status"],
        payload=json.loads(row["payload"] or "{}"),
        idempotency_key=row["idempotency_key"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=row["last_error"],
        created_at=float(row["created_at"]),
        delivered_at=row["delivered_at"],
    )
