"""What `mlx history`, `mlx show` and `mlx diff` tell: the data, read from state.

Rendering is apart (``cli.render.inspect``); ``--json`` prints this data as is.
"""

from __future__ import annotations

from typing import Any

from common.canonical import digest
from common.diagnostics import MlxError, did_you_mean
from contract import VersionRef
from state.store import StateReader

#: The action of a step recorded before it is taken (``engine.apply.recording.checkpoint``).
CHECKPOINT = "step"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


def describe_changes(summary: dict[str, Any]) -> str:
    if not summary:
        return ""
    if summary.get("rollout"):  # one controller pass of a rollout
        events = "; ".join(summary.get("events") or []) or str(summary.get("phase") or "")
        text = f"{summary['rollout']}: {events}"
        return text if len(text) <= 140 else text[:139] + "…"
    parts = []
    for key, sym in (("added", "+"), ("changed", "~"), ("destroyed", "-")):
        if summary.get(key):
            parts.append(f"{sym}{summary[key]}")
    for key, label in (
        ("gates_passed", "gates passed"),
        ("gates_failed", "gates failed"),
        ("errors", "errors"),
        ("forgotten", "forgotten"),
        ("drifted", "drifted"),
        ("monitors", "monitors run"),
        ("firing", "firing"),
    ):
        if summary.get(key) and key not in ("gates_passed", "gates_failed"):
            parts.append(f"{summary[key]} {label}")
    gates = summary.get("gates") or {}
    parts += [f"{address} {verdict}" for address, verdict in sorted(gates.items())]
    if not gates:  # older versions recorded only counts
        for key, label in (("gates_passed", "gates passed"), ("gates_failed", "gates failed")):
            if summary.get(key):
                parts.append(f"{summary[key]} {label}")
    return " ".join(parts) or "no changes"


def history_rows(reader: StateReader) -> list[dict[str, Any]]:
    rows = []
    for v in reader.versions():
        rows.append(
            {
                "serial": v["serial"],
                "operation": v["operation"],
                "status": v["status"],
                "created_at": _iso(v["created_at"]),
                "finished_at": _iso(v.get("finished_at")),
                "actor": v["actor"],
                "git_sha": v.get("git_sha"),
                "plan_hash": v.get("plan_hash"),
                "summary": v.get("summary") or {},
                "changes": describe_changes(v.get("summary") or {}),
                "message": v.get("message"),
            }
        )
    return rows


def show_data(reader: StateReader, address: str | None, serial: int | None) -> dict[str, Any]:
    if address is None and serial is None:
        index = reader.index()
        records = reader.records()
        return {
            "kind": "state",
            "workspace": reader.workspace,
            "lineage": reader.lineage,
            "serial": reader.serial,
            "resources": [
                {
                    "address": a,
                    "status": index[a].status,
                    "version": VersionRef.of(rec.outputs).version,
                    "serial": rec.serial,
                    "provider": rec.provider,
                }
                for a, rec in records.items()
            ],
        }
    if address is None:
        assert serial is not None
        version = reader.version(serial, with_spec=False)
        if version is None:
            raise MlxError(f"no state version {serial} (latest is {reader.serial})")
        events = reader.events(serial=serial)
        return {
            "kind": "version",
            **{k: _iso(v) if k.endswith("_at") else v for k, v in version.items()},
            "events": [
                {
                    "address": e["address"],
                    "action": e["action"],
                    "status": e["status"],
                    "error": e["error"],
                }
                for e in events
            ],
        }
    data = _resource(reader, address, serial)
    if address.startswith("monitors."):
        from readmodels.monitors import monitor_view, runs_of

        data["monitor"] = monitor_view(address, runs_of(reader, address, serial))
    return data


def _resource(reader: StateReader, address: str, serial: int | None) -> dict[str, Any]:
    current: dict[str, Any]
    if serial is None:
        rec = reader.records([address]).get(address)
        if rec is None:
            raise MlxError(f"{address} is not in the state{did_you_mean(address, reader.index())}")
        current = {
            "status": rec.status,
            "provider": rec.provider,
            "attributes": rec.attributes,
            "outputs": rec.outputs,
            "spec_hash": rec.spec_hash,
            "meta_hash": rec.meta_hash,
            "content_hash": rec.content_hash,
            "dependencies": rec.dependencies,
            "serial": rec.serial,
        }
    else:
        snap = reader.snapshot(serial).get(address)
        if snap is None:
            raise MlxError(f"{address} was not in the state at serial {serial}")
        current = {
            k: snap.get(k)
            for k in (
                "status",
                "provider",
                "attributes",
                "outputs",
                "spec_hash",
                "meta_hash",
                "content_hash",
                "serial",
            )
        }
    introduced = reader.version(current["serial"], with_spec=False) or {}
    events = merged_events(reader.events(address=address))
    actors = {v["serial"]: v["actor"] for v in reader.versions()}
    attributes = current.get("attributes") or {}
    lineage = attributes.get("lineage") or {}
    data = [d for d in lineage.get("data", []) if isinstance(d, str)]
    at = reader.snapshot(current["serial"]) if data else {}
    snapshots = [
        {
            "address": d,
            "fingerprint": (at.get(d) or {}).get("content_hash"),
            "revision": VersionRef.of((at.get(d) or {}).get("outputs")).version,
            "version": (at.get(d, {}).get("attributes") or {}).get("version"),
        }
        for d in data
    ]
    return {
        "kind": "resource",
        "address": address,
        **current,
        "introduced_by": {
            "serial": current["serial"],
            "operation": introduced.get("operation"),
            "actor": introduced.get("actor"),
            "created_at": _iso(introduced.get("created_at")),
            "git_sha": introduced.get("git_sha"),
        },
        "owner": attributes.get("owner"),
        "environment": reader.workspace,
        "lineage": attributes.get("lineage"),
        "code": lineage.get("code"),
        "parameters": lineage.get("params"),
        "runtime": lineage.get("environment"),
        "data_snapshots": snapshots,
        "history": [
            {
                "serial": e["serial"],
                "at": _iso(e["created_at"]),
                "actor": actors.get(e["serial"]),
                "action": e["action"],
                "status": e["status"],
                # a model's or prompt's version only: a dataset's history never showed one
                "version": (e["outputs"] or {}).get("version"),
                "weight": (e["outputs"] or {}).get("weight"),
                "error": e["error"],
            }
            for e in events
        ],
        "evidence": _evidence_for(reader, current.get("outputs") or {}),
    }


def merged_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per thing that happened: a step recorded before it was taken (a
    checkpoint, action ``step``) and the record written once it was taken are one event.

    Both are kept in state — the checkpoint is what a controller killed mid-step resumes
    from — but history shows the step once: the later record, carrying the checkpoint's
    note when it has none of its own. A checkpoint with nothing after it (a controller
    killed mid-step) is shown as it is.
    """
    out: list[dict[str, Any]] = []
    for event in events:
        before = out[-1] if out else None
        if (
            before is not None
            and before["action"] == CHECKPOINT
            and before["address"] == event["address"]
            and before["serial"] == event["serial"]
        ):
            out[-1] = {**event, "error": event.get("error") or before.get("error")}
            continue
        out.append(event)
    return out


def _evidence_for(reader: StateReader, outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The gate verdicts that allowed a release: for the versions it released or is releasing."""
    subject = outputs.get("subject")
    if not subject:
        return []
    fingerprints = {
        fp
        for fp in (
            outputs.get("fingerprint"),
            (outputs.get("candidate") or {}).get("fingerprint"),
        )
        if fp
    }
    return [
        {
            "gate": v.gate,
            "version": v.subject_version,
            "fingerprint": v.subject_fingerprint,
            "dataset": v.dataset,
            "passed": v.passed,
            "serial": v.serial,
            "at": _iso(v.created_at),
            "message": v.message,
        }
        for v in reader.evidence().history(subject=str(subject))
        if v.subject_fingerprint in fingerprints
    ]


def diff_data(reader: StateReader, a: int, b: int) -> dict[str, Any]:
    """Field-level differences of every resource between state versions ``a`` and ``b``."""
    from common.field_diff import field_changes

    for serial in (a, b):
        if reader.version(serial, with_spec=False) is None:
            raise MlxError(f"no state version {serial} (latest is {reader.serial})")
    left, right = reader.snapshot(a), reader.snapshot(b)
    resources: list[dict[str, Any]] = []
    for address in sorted(set(left) | set(right)):
        before, after = left.get(address), right.get(address)
        if before is None or after is None:
            kind = "added" if before is None else "removed"
            resources.append({"address": address, "change": kind, "fields": []})
            continue
        old = {**(before.get("attributes") or {}), **_outputs(before)}
        new = {**(after.get("attributes") or {}), **_outputs(after)}
        fields = field_changes(old, new)
        if fields or before.get("status") != after.get("status"):
            resources.append(
                {
                    "address": address,
                    "change": "changed",
                    "fields": [f.model_dump() for f in fields],
                    "status": [before.get("status"), after.get("status")],
                }
            )
    return {"kind": "diff", "from": a, "to": b, "resources": resources}


def _outputs(row: dict[str, Any]) -> dict[str, Any]:
    """Recorded outputs, prefixed so they never collide with spec fields.

    A gate's evidence and report are long documents: a diff names them as changed
    (with a short digest) rather than listing every number in them.
    """
    out = {}
    for k, v in (row.get("outputs") or {}).items():
        if k in ("evidence", "report") and v is not None:
            v = f"<{k} {digest(v)[:12]}>"
        out[f"outputs.{k}"] = v
    return out
