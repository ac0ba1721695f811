"""Plan → a pull-request comment in Markdown. Renders; never decides."""

from __future__ import annotations

from engine.plan.model import Action, FieldChange, Plan, ResourceChange
from engine.render.text import summary_line, value
from state.status import DriftStatus


def _row(c: ResourceChange) -> str:
    why = "; ".join(r.value for r in c.reasons) or "-"
    return f"| `{c.symbol.strip() or '·'}` | `{c.address}` | {c.action.value} | {why} |"


def _details(c: ResourceChange) -> list[str]:
    why = ", ".join(r.value for r in c.reasons)
    lines = [_diff_line(f) for f in c.fields]
    if c.action is Action.DELETE:
        lines = [f"- {k} = {value(v)}" for k, v in sorted((c.before or {}).items())]
    return [
        "<details>",
        f"<summary><code>{c.symbol.strip()} {c.address}</code> {c.verb}"
        + (f" ({why})" if why else "")
        + "</summary>",
        "",
        *([f"- {d}" for d in c.details] + ([""] if c.details else [])),
        "```diff",
        *(lines or ["  (no attribute changes)"]),
        "```",
        "</details>",
        "",
    ]


def _diff_line(f: FieldChange) -> str:
    """``+``/``-``/``!`` in the first column, so GitHub colours the diff."""
    if f.kind == "add":
        return f"+ {f.path} = {value(f.after)}"
    if f.kind == "remove":
        return f"- {f.path} = {value(f.before)}"
    return f"! {f.path} = {value(f.before)} -> {value(f.after)}"


def render_markdown(plan: Plan) -> str:
    actionable = plan.actionable()
    title = summary_line(plan).removeprefix("Plan: ").rstrip(".") if actionable else "No changes"
    env = f" — `{plan.workspace}`" if plan.workspace != "default" else ""
    out = [f"### mlx plan{env}: {title}", ""]
    out += _drift(plan)
    if not actionable:
        out.append("The spec matches what is deployed.")
        return "\n".join(out) + "\n"
    out += ["| | Resource | Action | Why |", "|---|---|---|---|"]
    out += [_row(c) for c in actionable]
    out.append("")
    gates = [c for c in actionable if c.action is Action.RUN]
    out += _gates(gates)
    out += _warnings(plan)
    for c in actionable:
        out += _details(c)
    out += _reports(gates)
    return "\n".join(out).rstrip() + "\n"


def _drift(plan: Plan) -> list[str]:
    """Objects changed outside mlx (a caution block), or nothing."""
    if not plan.drift:
        return []
    out = ["> [!CAUTION]", "> **Objects changed outside mlx** — `mlx apply` restores them:"]
    for d in plan.drift:
        what = "deleted" if d["status"] == DriftStatus.MISSING else "; ".join(d["differences"])
        out.append(f"> - `{d['address']}`: {what}")
    out.append("")
    return out


def _gates(gates: list[ResourceChange]) -> list[str]:
    """The gates that run, each with its outcome when ``--run-evals`` ran it."""
    if not gates:
        return []
    out = ["**Gates that will run before anything depending on them ships:**"]
    for g in gates:
        extra = f" — {'; '.join(g.details)}" if g.details else ""
        outcome = ""
        if g.gate is not None:
            outcome = " — **passes**" if g.gate.get("passed") else " — **FAILS**"
        out.append(f"- `{g.address}` ({', '.join(r.value for r in g.reasons)}){extra}{outcome}")
    out.append("")
    return out


def _warnings(plan: Plan) -> list[str]:
    """The plan's and each change's warnings, and what is flagged (a warning block)."""
    warnings = list(plan.warnings) + [
        f"`{c.address}`: {w}" for c in plan.changes for w in c.warnings
    ]
    flagged = [c for c in plan.changes if c.flagged_by]
    if not (warnings or flagged):
        return []
    out = ["> [!WARNING]"]
    out += [f"> - {w}" for w in warnings]
    out += [
        f"> - `{c.address}` depends on {', '.join(f'`{d}`' for d in c.flagged_by)}, "
        "which changes in this plan"
        for c in flagged
    ]
    out.append("")
    return out


def _reports(gates: list[ResourceChange]) -> list[str]:
    """The report of each gate ``--run-evals`` ran, folded."""
    out: list[str] = []
    for g in gates:
        if g.gate is not None and g.gate.get("report"):
            out += [
                f"<details><summary>Gate report: <code>{g.address}</code></summary>",
                "",
                "```",
                str(g.gate["report"]).rstrip(),
                "```",
                "</details>",
                "",
            ]
    return out
