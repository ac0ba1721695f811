"""``RecordWrite``: what one ``StateWriter.put`` writes — a resource's new value and the
event that says which action produced it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from state.status import Status

if TYPE_CHECKING:
    from state.store import Record


@dataclass(frozen=True, kw_only=True)
class RecordWrite:
    """A resource's record as it is to be written, and the event of the write.

    ``action`` and ``error`` go to the event only (history: ``mlx diff``, ``show --serial``);
    the rest is the resource's row, which the event repeats. Change one field of a write
    with ``dataclasses.replace``.
    """

    address: str
    section: str
    name: str
    provider: str
    action: str
    status: str = Status.OK
    spec_hash: str | None
    meta_hash: str | None
    content_hash: str | None
    attributes: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]
    error: str | None = None

    @classmethod
    def of(cls, rec: Record, action: str) -> RecordWrite:
        """``rec`` written again as it is, under ``action`` (replace what changes)."""
        return cls(
            address=rec.address,
            section=rec.section,
            name=rec.name,
            provider=rec.provider,
            action=action,
            status=rec.status,
            spec_hash=rec.spec_hash,
            meta_hash=rec.meta_hash,
            content_hash=rec.content_hash,
            attributes=dict(rec.attributes),
            outputs=dict(rec.outputs),
            dependencies=list(rec.dependencies),
        )

    def rows(
        self, workspace_id: int | None, serial: int, at: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        """The writer's statements for this write: the resource's row, then its event."""
        attrs = json.dumps(self.attributes, sort_keys=True)
        outs = json.dumps(self.outputs, sort_keys=True)
        status = str(self.status)
        row = {
            "workspace_id": workspace_id,
            "address": self.address,
            "section": self.section,
            "name": self.name,
            "provider": self.provider,
            "status": status,
            "spec_hash": self.spec_hash,
            "meta_hash": self.meta_hash,
            "content_hash": self.content_hash,
            "attributes": attrs,
            "outputs": outs,
            "dependencies": json.dumps(sorted(self.dependencies)),
            "serial": serial,
            "updated_at": at,
        }
        event = {
            "workspace_id": workspace_id,
            "serial": serial,
            "address": self.address,
            "action": self.action,
            "status": status,
            "provider": self.provider,
            "spec_hash": self.spec_hash,
            "meta_hash": self.meta_hash,
            "content_hash": self.content_hash,
            "attributes": attrs,
            "outputs": outs,
            "error": self.error,
            "created_at": at,
        }
        return [("resource", row), ("event", event)]
