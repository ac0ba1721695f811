"""Plan → human text in Terraform's idiom. Renders; never decides."""

from __future__ import annotations

import json
from typing import Any

from engine.plan.model import Action, FieldChange, Plan, ResourceChange
from state.status import DriftStatus


def value(v: Any) -> str:
    if isinstance(v, dict) and v.get("$unknown") is True and len(v) == 1:
        return "(known after apply)"
    if isinstance(v, dict) and "$sensitive" in v and len(v) == 1:
        return "(sensitive)"
    if _has_marker(v):
        return _marked(v)
    if v is None:
        return "null"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def _has_marker(v: Any) -> bool:
    if isinstance(v, dict):
        if ("$sensitive" in v or "$unknown" in v) and len(v) == 1:
            return True
        return any(_has_marker(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_marker(x) for x in v)
    return False


def _marked(v: Any) -> str:
    if isinstance(v, dict):
        if len(v) == 1 and "$sensitive" in v:
            return "(sensitive)"
        if len(v) == 1 and "$unknown" in v:
            return "(known after apply)"
        return "{" + ", ".join(f"{k}: {_marked(x)}" for k, x in sorted(v.items())) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_marked(x) for x in v) + "]"
    return value(v)


def _field_line(f: FieldChange, width: int) -> str:
    name = f.path.ljust(width)
    if f.kind == "add":
        return f"      + {name} = {value(f.after)}"
    if f.kind == "remove":
        return f"      - {name} = {value(f.before)} -> null"
    return f"      ~ {name} = {value(f.before)} -> {value(f.after)}"


def _header(c: ResourceChange) -> list[str]:
    why = ", ".join(r.value for r in c.reasons)
    lines = [f"  # {c.address} {c.verb}" + (f" ({why})" if why else "")]
    lines.extend(f"  # {d}" for d in c.details)
    lines.extend(f"  # Warning: {w}" for w in c.warnings)
    return lines


def render_change(c: ResourceChange) -> list[str]:
    lines = _header(c)
    lines.append(f"  {c.symbol} {c.address} {{")
    fields = c.fields
    if c.action is Action.DELETE:
        shown = sorted((c.before or {}).items())
        width = max((len(k) for k, _ in shown), default=0)
        lines.extend(f"      - {k.ljust(width)} = {value(v)}" for k, v in shown)
    else:
        width = max((len(f.path) for f in fields), default=0)
        lines.extend(_field_line(f, width) for f in fields)
        if c.before is not None and c.after is not None:
            touched = {f.path.split(".")[0].split("[")[0] for f in fields}
            hidden = len([k for k in c.after if k not in touched])
            if hidden:
                plural = "s" if hidden != 1 else ""
                lines.append(f"        # ({hidden} unchanged attribute{plural} hidden)")
    lines.append("    }")
    if c.gate is not None:
        verdict = "PASSES" if c.gate.get("passed") else "FAILS"
        lines.append(f"    # gate outcome (--run-evals): {verdict}")
        for line in str(c.gate.get("report") or c.gate.get("message") or "").splitlines():
            lines.append(f"    #   {line}")
    return lines


def summary_line(plan: Plan) -> str:
    n = plan.counts()
    line = f"Plan: {n['add']} to add, {n['change']} to change, {n['destroy']} to destroy"
    if n["run"]:
        line += f", {n['run']} gate{'s' if n['run'] != 1 else ''} to run"
    return line + "."


def render_drift(items: list[dict[str, Any]], *, live: bool) -> list[str]:
    """Terraform's "Objects have changed outside of Terraform" section."""
    if not items:
        return []
    source = "" if live else " (found by the last `mlx refresh`)"
    lines = [f"Note: Objects have changed outside of mlx{source}", ""]
    for d in items:
        if d["status"] == DriftStatus.MISSING:
            lines.append(f"  # {d['address']} has been deleted outside mlx")
        elif d["status"] == DriftStatus.UNREADABLE:
            lines.append(f"  # {d['address']} could not be read: {'; '.join(d['differences'])}")
        else:
            lines.append(f"  # {d['address']} has changed outside mlx")
            lines.extend(f"      ~ {line}" for line in d["differences"])
    lines += [
        "",
        "Unless the spec says otherwise, `mlx apply` restores what mlx recorded, except local",
        "files, which it cannot rewrite: their new bytes are registered as a new version.",
        "",
    ]
    return lines


def render_plan(plan: Plan) -> str:
    out: list[str] = render_drift(plan.drift, live=bool(plan.options.drift))
    for w in plan.warnings:
        out.append(f"Warning: {w}")
    if out:
        out.append("")
    actionable = plan.actionable()
    if not actionable:
        out.append("No changes. Your models, prompts and datasets match the spec.")
        flagged = [c for c in plan.changes if c.flagged_by]
        return "\n".join(out + _flag_notes(flagged)) + "\n"
    out.append("mlx will perform the following actions:")
    out.append("")
    for c in actionable:
        out.extend(render_change(c))
        out.append("")
    out.extend(_flag_notes([c for c in plan.changes if c.flagged_by]))
    out.append(summary_line(plan))
    return "\n".join(out) + "\n"


def _flag_notes(flagged: list[ResourceChange]) -> list[str]:
    if not flagged:
        return []
    lines = ["Note: these resources depend on something that changes in this plan:"]
    for c in flagged:
        deps = ", ".join(c.flagged_by)
        what = "unchanged itself" if c.action is Action.NOOP else c.verb
        lines.append(f"  ! {c.address} (depends on {deps}; {what})")
    lines.append("")
    return lines


def render_apply_summary(summary: dict[str, Any], ok: bool) -> str:
    head = "Apply complete!" if ok else "Apply failed."
    line = (
        f"{head} Resources: {summary['added']} added, {summary['changed']} changed, "
        f"{summary['destroyed']} destroyed."
    )
    extra = []
    if summary.get("gates_passed"):
        extra.append(f"{summary['gates_passed']} gate(s) passed")
    if summary.get("gates_failed"):
        extra.append(f"{summary['gates_failed']} gate(s) failed")
    if summary.get("errors"):
        extra.append(f"{summary['errors']} error(s)")
    if summary.get("skipped"):
        extra.append(f"{summary['skipped']} skipped")
    if summary.get("in_progress"):
        extra.append(
            f"{summary['in_progress']} in progress (`mlx rollout run` or the next apply "
            "continues it; `mlx apply --wait` waits)"
        )
    return line + (" " + ", ".join(extra) + "." if extra else "")
