"""State tables. JSON is stored as text so SQLite and PostgreSQL share one code path.

Schema changes go through ``state.migrations``; never edit a table here
without adding a migration.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "mlx_schema_version"

    version: int = Field(primary_key=True)
    applied_at: datetime
    description: str


class Workspace(SQLModel, table=True):
    """One state lineage: a spec directory's state in one environment."""

    __tablename__ = "mlx_workspaces"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    lineage: str
    serial: int = 0
    salt: str
    created_at: datetime


class StateVersion(SQLModel, table=True):
    """Append-only: one row per apply, rollback, refresh or state surgery."""

    __tablename__ = "mlx_state_versions"
    __table_args__ = (UniqueConstraint("workspace_id", "serial"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(index=True)
    serial: int
    operation: str
    status: str
    actor: str
    git_sha: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    plan_hash: str | None = None
    spec_digest: str | None = None
    spec: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    summary: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    message: str | None = Field(default=None, sa_column=Column(Text))


class ResourceRecord(SQLModel, table=True):
    """The current value of one resource; rewritten only when that resource changes."""

    __tablename__ = "mlx_resources"

    workspace_id: int = Field(primary_key=True)
    address: str = Field(primary_key=True)
    section: str
    name: str
    provider: str
    status: str = "ok"
    spec_hash: str | None = None
    meta_hash: str | None = None
    content_hash: str | None = None
    attributes: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    outputs: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    dependencies: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    serial: int
    updated_at: datetime


class ResourceEvent(SQLModel, table=True):
    """What happened to one resource in one state version (for diff, show and history)."""

    __tablename__ = "mlx_resource_events"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(index=True)
    serial: int = Field(index=True)
    address: str = Field(index=True)
    action: str
    status: str
    provider: str | None = None
    spec_hash: str | None = None
    meta_hash: str | None = None
    content_hash: str | None = None
    attributes: str | None = Field(default=None, sa_column=Column(Text))
    outputs: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime


class Evidence(SQLModel, table=True):
    """Release evidence: one row per gate verdict, bound to the exact fingerprints it judged.

    A version is released (an alias moved, endpoint traffic given) only if every gate it
    requires has a *passed* row whose ``key`` covers exactly the gate's definition, the
    subject's fingerprint and the dataset's fingerprint (``engine.policy.evidence``).
    """

    __tablename__ = "mlx_evidence"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(index=True)
    key: str = Field(index=True)
    gate: str
    subject: str = Field(index=True)
    subject_fingerprint: str | None = None
    subject_version: str | None = None
    dataset: str | None = None
    dataset_fingerprint: str | None = None
    definition: str
    passed: bool
    serial: int
    created_at: datetime
    message: str | None = Field(default=None, sa_column=Column(Text))
    #: The subject version's outputs (version, fingerprint, uri): a baseline can load it.
    subject_outputs: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    #: The gate's outputs (verdict, evidence, report) as recorded.
    outputs: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class GatewayRoute(SQLModel, table=True):
    """The embedded gateway's live routing for one endpoint: written by the ``gateway``
    provider, read by every ``mlx serve`` replica (``dataplane.table``)."""

    __tablename__ = "mlx_gateway_routes"

    workspace: str = Field(primary_key=True)
    endpoint: str = Field(primary_key=True)
    #: Rises with every write of this endpoint's route; replicas reload what moved.
    generation: int
    doc: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    updated_at: datetime


class LockRecord(SQLModel, table=True):
    """Who holds a workspace's lock. On PostgreSQL the lock itself is an advisory lock."""

    __tablename__ = "mlx_locks"

    workspace: str = Field(primary_key=True)
    lock_id: str
    who: str
    operation: str
    host: str
    pid: int
    backend_pid: int | None = None
    created_at: datetime


class AlertRow(SQLModel, table=True):
    """One alert's lifecycle between runs (``alerts.lifecycle.AlertRecord``), keyed by
    (resource, version, signal) as ``AlertKey`` prints it.

    ``rev`` rises with every write: a run writes its transition only if the row is still
    the one it read (compare-and-set), so two overlapping runs never notify twice.
    """

    __tablename__ = "mlx_alerts"

    workspace: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    resource: str = Field(index=True)
    version: str | None = None
    signal: str
    rev: int = 1
    state: str
    condition: str
    streak: int = 0
    since: float | None = None
    notified_at: float | None = None
    decided_at: float | None = None
    #: the last message (title, text, severity, owner, details) as JSON: what `mlx alerts` shows
    message: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    updated_at: datetime


class OutboxRow(SQLModel, table=True):
    """One delivery of one alert message to one channel: kept until delivered — and after,
    as the record that it was (``delivered_at``); a final failure stays, never dropped."""

    __tablename__ = "mlx_alert_outbox"

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    alert_key: str = Field(index=True)
    channel: str
    kind: str  # firing | repeat | resolved | test
    #: what was decided: "pending" (to send), "delivered", "failed" (final: a 4xx), "suppressed"
    status: str = Field(index=True)
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    idempotency_key: str = Field(unique=True)
    attempts: int = 0
    next_attempt_at: float
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: float
    delivered_at: float | None = None


class SilenceRow(SQLModel, table=True):
    """A silence: notifications of matching alerts are recorded as suppressed until ``until``.

    ``matcher`` is an alert key, or a prefix of one ending in ``*`` (``monitors.fraud*``).
    """

    __tablename__ = "mlx_alert_silences"

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    matcher: str
    until: float
    reason: str | None = Field(default=None, sa_column=Column(Text))
    who: str
    created_at: float
