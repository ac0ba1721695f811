"""Reading and writing release evidence (``mlx_evidence``): gate verdicts bound to fingerprints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from state.tables import Evidence

_T = Evidence.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Verdict:
    """One recorded gate verdict."""

    key: str
    gate: str
    subject: str
    subject_fingerprint: str | None
    subject_version: str | None
    dataset: str | None
    dataset_fingerprint: str | None
    definition: str
    passed: bool
    serial: int
    created_at: datetime
    message: str | None
    subject_outputs: dict[str, Any]
    outputs: dict[str, Any]


def _verdict(row: Any) -> Verdict:
    return Verdict(
        row["key"],
        row["gate"],
        row["subject"],
        row["subject_fingerprint"],
        row["subject_version"],
        row["dataset"],
        row["dataset_fingerprint"],
        row["definition"],
        bool(row["passed"]),
        row["serial"],
        row["created_at"],
        row["message"],
        json.loads(row["subject_outputs"] or "{}"),
        json.loads(row["outputs"] or "{}"),
    )


class EvidenceLog:
    """The evidence of one workspace. Reads are cached per key for the log's lifetime."""

    def __init__(self, engine: Engine, workspace_id: int | None):
        self.engine, self.workspace_id = engine, workspace_id
        self._passed: dict[str, Verdict | None] = {}

    def _select(self) -> Any:
        return select(_T).where(_T.c.workspace_id == self.workspace_id)

    def passed(self, key: str) -> Verdict | None:
        """The latest *passed* verdict for exactly ``key``, if any."""
        if self.workspace_id is None:
            return None
        if key not in self._passed:
            query = self._select().where(_T.c.key == key, _T.c.passed.is_(True))
            with self.engine.connect() as conn:
                row = conn.execute(query.order_by(_T.c.id.desc()).limit(1)).mappings().first()
            self._passed[key] = _verdict(row) if row else None
        return self._passed[key]

    def latest(self, key: str) -> Verdict | None:
        """The latest verdict (passed or not) for exactly ``key``."""
        if self.workspace_id is None:
            return None
        query = self._select().where(_T.c.key == key).order_by(_T.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _verdict(row) if row else None

    def last_passed(self, subject: str, gates: list[str] | None = None) -> Verdict | None:
        """The newest version of ``subject`` that a gate (one of ``gates``) passed."""
        if self.workspace_id is None:
            return None
        query = self._select().where(_T.c.subject == subject, _T.c.passed.is_(True))
        if gates:
            query = query.where(_T.c.gate.in_(gates))
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(_T.c.id.desc()).limit(1)).mappings().first()
        return _verdict(row) if row else None

    def history(self, subject: str | None = None, gate: str | None = None) -> list[Verdict]:
        if self.workspace_id is None:
            return []
        query = self._select()
        if subject is not None:
            query = query.where(_T.c.subject == subject)
        if gate is not None:
            query = query.where(_T.c.gate == gate)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_T.c.id)).mappings().all()
        return [_verdict(r) for r in rows]

    def add(self, verdict: Verdict) -> None:
        assert self.workspace_id is not None
        with self.engine.begin() as conn:
            conn.execute(
                insert(_T).values(
                    workspace_id=self.workspace_id,
                    key=verdict.key,
                    gate=verdict.gate,
                    subject=verdict.subject,
                    subject_fingerprint=verdict.subject_fingerprint,
                    subject_version=verdict.subject_version,
                    dataset=verdict.dataset,
                    dataset_fingerprint=verdict.dataset_fingerprint,
                    definition=verdict.definition,
                    passed=verdict.passed,
                    serial=verdict.serial,
                    created_at=verdict.created_at,
                    message=verdict.message,
                    subject_outputs=json.dumps(verdict.subject_outputs, sort_keys=True),
                    outputs=json.dumps(verdict.outputs, sort_keys=True),
                )
            )
        if verdict.passed:
            self._passed[verdict.key] = verdict


def now() -> datetime:
    return datetime.now(UTC)
