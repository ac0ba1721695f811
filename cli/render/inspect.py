"""Rendering `mlx history`, `mlx show` and `mlx diff` (the data: ``readmodels.queries``)."""

from __future__ import annotations

import json
from typing import Any

from engine.render.table import table
from readmodels.queries import describe_changes
from state.status import Status


def render_history(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No state versions yet: run `mlx apply`.\n"
    header = ("SERIAL", "TIME (UTC)", "ACTOR", "GIT", "OPERATION", "STATUS", "CHANGES")
    return table(
        header,
        [
            (
                str(r["serial"]),
                (r["created_at"] or "")[:19].replace("T", " "),
                r["actor"],
                (r["git_sha"] or "-")[:12],
                r["operation"],
                r["status"],
                r["changes"],
            )
            for r in rows
        ],
    )


def render_diff(data: dict[str, Any]) -> str:
    from engine.render.text import value

    if not data["resources"]:
        return f"No differences between state versions {data['from']} and {data['to']}.\n"
    lines = [f"Differences from state version {data['from']} to {data['to']}:", ""]
    for r in data["resources"]:
        if r["change"] != "changed":
            sym = "+" if r["change"] == "added" else "-"
            lines.append(f"  {sym} {r['address']} ({r['change']})")
            continue
        lines.append(f"  ~ {r['address']}")
        for f in r["fields"]:
            if f["kind"] == "add":
                lines.append(f"      + {f['path']} = {value(f['after'])}")
            elif f["kind"] == "remove":
                lines.append(f"      - {f['path']} = {value(f['before'])}")
            else:
                lines.append(f"      ~ {f['path']} = {value(f['before'])} -> {value(f['after'])}")
    return "\n".join(lines) + "\n"


def render_show(data: dict[str, Any]) -> str:
    """`mlx show`: the whole state, one state version, or one resource with its story."""
    render = {"state": _show_state, "version": _show_version}.get(data["kind"], _show_resource)
    return "\n".join(render(data)) + "\n"


def _show_state(data: dict[str, Any]) -> list[str]:
    lines = [f"Workspace {data['workspace']}: lineage {data['lineage']}, serial {data['serial']}"]
    if not data["resources"]:
        lines.append("The state is empty.")
    for r in data["resources"]:
        version = f"  version {r['version']}" if r["version"] is not None else ""
        status = "" if r["status"] == Status.OK else f"  ({r['status']})"
        lines.append(f"  {r['address']}{version}{status}  [serial {r['serial']}]")
    return lines


def _show_version(data: dict[str, Any]) -> list[str]:
    lines = [
        f"State version {data['serial']}: {data['operation']} ({data['status']})",
        f"  by {data['actor']} at {data['created_at']}, git {data.get('git_sha') or '-'}",
    ]
    if data.get("message"):
        lines.append(f"  message: {data['message']}")
    lines.append(f"  changes: {describe_changes(data.get('summary') or {})}")
    for e in data["events"]:
        err = f" — {e['error']}" if e["error"] else ""
        lines.append(f"    {e['action']:<8} {e['address']} ({e['status']}){err}")
    return lines


def _show_resource(data: dict[str, Any]) -> list[str]:
    monitor = data.get("monitor")
    outputs = dict(data.get("outputs") or {})
    if monitor is not None:
        from cli.render.monitors import render_view

        outputs.pop("last_run", None)  # shown below, as a table
    return [
        *_provenance(data),
        *_outputs_lines(outputs),
        *(render_view(monitor) if monitor is not None else []),
        "  attributes:",
        *(f"    {k} = {_json(v)}" for k, v in sorted((data.get("attributes") or {}).items())),
        *_evidence_lines(data.get("evidence") or []),
        "  history:",
        *(_history_line(h) for h in data["history"]),
    ]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _provenance(data: dict[str, Any]) -> list[str]:
    """Who set it, where it came from: owner, code, parameters, runtime, data snapshots."""
    intro = data["introduced_by"]
    lines = [
        f"# {data['address']}  ({data['status']})",
        f"  current value from serial {intro['serial']} ({intro['operation']}) "
        f"by {intro['actor']} at {intro['created_at']}, git {intro['git_sha'] or '-'}",
        f"  owner: {data.get('owner') or '-'}",
        f"  environment: {data['environment']}",
        f"  provider: {data['provider']}",
    ]
    code = data.get("code") or {}
    if code:
        lines.append(f"  code: {code.get('repo', '-')} @ {code.get('commit', '-')}")
    if data.get("parameters"):
        lines.append(f"  parameters: {json.dumps(data['parameters'], sort_keys=True)}")
    if data.get("runtime"):
        lines.append(f"  runtime: {json.dumps(data['runtime'], sort_keys=True)}")
    for snap in data.get("data_snapshots") or []:
        rev = f" revision {snap['revision']}" if snap.get("revision") is not None else ""
        lines.append(f"  data: {snap['address']}{rev} {snap.get('fingerprint') or '-'}")
    lines.extend(f"  {key}: {data[key]}" for key in ("spec_hash", "content_hash") if data.get(key))
    return lines


def _brief(value: Any) -> Any:
    """A value for reading: an input schema, wherever it is nested (a version's outputs, the
    versions a rollout holds), is one line naming its first columns (``--json`` has it all)."""
    if isinstance(value, dict):
        return {
            k: _schema_line(v) if k == "input_schema" and isinstance(v, dict) else _brief(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_brief(v) for v in value]
    return value


def _schema_line(schema: dict[str, Any]) -> str:
    columns = [c for c in schema.get("columns") or [] if isinstance(c, dict)]
    shown = ", ".join(f"{c.get('name')} {c.get('type')}" for c in columns[:3])
    more = ", ..." if len(columns) > 3 else ""
    return f"{len(columns)} column(s): {shown}{more}"


def _outputs_lines(outputs: dict[str, Any]) -> list[str]:
    lines = ["  outputs:"]
    lines.extend(
        f"    {k} = {_json(_brief(v) if k != 'input_schema' else v)}"
        for k, v in sorted(outputs.items())
        if k not in ("report", "evidence")  # a gate's report is printed as written, below
    )
    if isinstance(outputs.get("report"), str):
        lines.append("  report:")
        lines.extend(f"    {line}" for line in outputs["report"].splitlines())
    if outputs.get("evidence") is not None:
        lines.append("  evidence: (mlx show --json for the full record)")
    return lines


def _evidence_lines(verdicts: list[dict[str, Any]]) -> list[str]:
    if not verdicts:
        return []
    lines = ["  evidence (the gate verdicts behind this release):"]
    for v in verdicts:
        verdict = "passed" if v["passed"] else "failed"
        lines.append(
            f"    {v['gate']} {verdict} for v{v['version']} at serial {v['serial']} "
            f"({v['at']}): {v['message'] or ''}".rstrip(": ")
        )
    return lines


def _history_line(h: dict[str, Any]) -> str:
    ver = f" version {h['version']}" if h["version"] is not None else ""
    err = f" — {h['error']}" if h["error"] else ""
    who = f" by {h['actor']}" if h.get("actor") else ""
    when = f" at {h['at'][:19]}" if h.get("at") else ""
    return f"    serial {h['serial']}{when}{who}: {h['action']} ({h['status']}){ver}{err}"
