"""Drift: objects changed behind mlx's back (an alias moved by hand, a version deleted).

``mlx refresh`` reads every recorded object through its provider — in
parallel, bounded — and compares it with what mlx recorded
(``Observed.differences``). What drifted is recorded in state (status
``drifted`` or ``missing``, in a state version of its own, written only when
something drifted) so that every later plan shows it and plans the repair,
and the owners are alerted through ``mlx.drift_alerts``: one alert per drifted resource
(``ADDRESS/drift``) through the alert lifecycle (``engine.alerting``: notified when it
starts, again after the channel's ``repeat_interval``, once resolved when the drift is
gone; delivered through the outbox). ``mlx plan --refresh``
does the same reads without recording anything.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from alerts import AlertKey, AlertState, Condition, Notify
from contract import AlertMessage, Prior, ProviderError
from engine.alerting import Alerting
from engine.plugins import ProviderSet, prior_of
from state.status import DriftStatus, Status, VersionStatus
from state.store import Record, StateReader, StateWriter

READ_PARALLELISM = 8


@dataclass(frozen=True)
class Drift:
    address: str
    status: str  # a DriftStatus
    differences: list[str] = field(default_factory=list)
    owner: str | None = None

    @property
    def summary(self) -> str:
        if self.status == DriftStatus.MISSING:
            return "deleted outside mlx"
        if self.status == DriftStatus.UNREADABLE:
            return "could not be read: " + "; ".join(self.differences)
        return "changed outside mlx: " + "; ".join(self.differences)

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "status": self.status,
            "differences": self.differences,
            "owner": self.owner,
        }


def _prior(rec: Record) -> Prior:
    return prior_of(rec)


def detect(
    records: dict[str, Record], providers: ProviderSet, parallelism: int = READ_PARALLELISM
) -> list[Drift]:
    """Read every healthy recorded object; what differs from the record."""

    def one(rec: Record) -> Drift | None:
        try:
            provider = providers.get(rec.provider, rec.address)
            observed = provider.read(_prior(rec))
        except (ProviderError, OSError) as exc:
            return Drift(
                rec.address, DriftStatus.UNREADABLE, [str(exc)], rec.attributes.get("owner")
            )
        owner = rec.attributes.get("owner")
        if observed is None:
            return Drift(rec.address, DriftStatus.MISSING, [], owner)
        differences = observed.differences(rec.outputs, rec.content_hash)
        return Drift(rec.address, DriftStatus.DRIFTED, differences, owner) if differences else None

    healthy = [r for r in records.values() if r.status == Status.OK]
    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="mlx-read") as pool:
        found = list(pool.map(one, healthy))
    return sorted((d for d in found if d is not None), key=lambda d: d.address)


def recorded(reader: StateReader, index: dict[str, Any]) -> list[Drift]:
    """Drift recorded by the last refresh (resources whose status says so)."""
    out = []
    for address, row in sorted(index.items()):
        if row.status not in (Status.DRIFTED, Status.MISSING):
            continue
        events = reader.events(address=address)
        last = next((e for e in reversed(events) if e["action"] == "refresh"), None)
        detail = (last or {}).get("error") or ""
        out.append(Drift(address, row.status, [d for d in detail.split("; ") if d]))
    return out


def record(writer: StateWriter, drifts: list[Drift], actor: str, git_sha: str | None) -> int:
    """A state version of operation "refresh" marking what drifted."""
    serial = writer.begin("refresh", actor=actor, git_sha=git_sha)
    for d in drifts:
        if d.status in (DriftStatus.DRIFTED, DriftStatus.MISSING):
            writer.mark(d.address, d.status, "; ".join(d.differences) or d.summary)
    drifted = sum(1 for d in drifts if d.status != DriftStatus.UNREADABLE)
    writer.finish(VersionStatus.COMPLETE, {"drifted": drifted})
    return serial


#: the signal of a refresh drift alert: one alert per resource, ``ADDRESS/drift``
SIGNAL = "drift"


def alert_key(address: str) -> AlertKey:
    return AlertKey(address, SIGNAL)


def observe(
    alerting: Alerting,
    drifts: list[Drift],
    channels: list[str],
    owners: dict[str, str | None],
    now: float | None = None,
) -> list[tuple[AlertKey, Notify]]:
    """One refresh's drift alerts: each drifted resource's alert is breached (``unreadable``:
    an error, never healthy), each drift alert of a resource that no longer drifts observes
    ok — resolved once. Messages are enqueued in the outbox (``Alerting.deliver`` sends)."""
    now = alerting.clock() if now is None else now
    out: list[tuple[AlertKey, Notify]] = []
    current = {d.address: d for d in drifts}
    for d in drifts:
        owner = d.owner or owners.get(d.address)
        condition = Condition.ERROR if d.status == DriftStatus.UNREADABLE else Condition.BREACH
        taken = alerting.observe(
            alert_key(d.address), condition, _message(d, owner), channels, now=now
        )
        if taken.notify is not None:
            out.append((alert_key(d.address), taken.notify))
    for row in alerting.store.alerts():
        if row["signal"] != SIGNAL or row["state"] == AlertState.INACTIVE:
            continue
        if row["resource"] in current:
            continue
        gone = Drift(row["resource"], DriftStatus.DRIFTED, [], owners.get(row["resource"]))
        key = alert_key(row["resource"])
        taken = alerting.observe(
            key, Condition.OK, _message(gone, gone.owner, resolved=True), channels, now=now
        )
        if taken.notify is not None:
            out.append((key, taken.notify))
    return out


def _message(d: Drift, owner: str | None, *, resolved: bool = False) -> AlertMessage:
    if resolved:
        return AlertMessage(
            title=f"{d.address} matches what mlx recorded again",
            text=f"{d.address}: no drift any more (repaired by an apply, or put back by hand).",
            severity="warning",
            source=d.address,
            owner=owner,
            investigate=f"mlx show {d.address}",
        )
    what = d.summary.split(":")[0]
    return AlertMessage(
        title=f"{d.address} {what}",
        text=f"{d.address}: {d.summary}. Owner: {owner or 'none declared'}. `mlx plan` shows the "
        "repair; `mlx apply` restores what the spec says.",
        severity="warning",
        source=d.address,
        owner=owner,
        details={"differences": d.differences, "status": d.status},
        investigate=f"mlx plan --target {d.address}",
    )
