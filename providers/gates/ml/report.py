"""The human report of an ML gate, rendered from its evidence (render never decides)."""

from __future__ import annotations

from typing import Any

from providers.gates.common import short
from providers.gates.ml.judge import OVERALL, fmt


def _bounds(check: dict[str, Any]) -> str:
    parts = [f"{k} {check[k]:g}" for k in ("min", "max", "max_drop") if check.get(k) is not None]
    return ", ".join(parts) or "-"


def _change(value: Any, baseline: Any) -> str:
    if value is None or baseline is None:
        return "-"
    return f"{value - baseline:+.4f}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def render(ev: dict[str, Any]) -> str:
    lines = [f"{ev.get('gate', 'gate')}: {'PASSED' if ev['passed'] else 'FAILED'}"]
    subject = ev["subject"]
    version = f" v{subject['version']}" if subject.get("version") is not None else ""
    lines.append(
        f"  subject   {subject['address']}{version}  {short(subject.get('fingerprint'))}"
        f"  ({subject['source']})"
    )
    if "dataset" in ev:
        ds = ev["dataset"]
        rev = f" rev {ds['revision']}" if ds.get("revision") is not None else ""
        lines.append(
            f"  dataset   {ds['address']}{rev}  {short(ds.get('fingerprint'))}  {ds['rows']} rows"
        )
    if "predictions" in ev:
        pr = ev["predictions"]
        lines.append(
            f"  predictions {pr['path']}  {short(pr.get('fingerprint'))}  {pr['rows']} rows"
        )
    task = f"  task      {ev['task']}, label {ev['label']}"
    if ev["task"] == "binary":
        task += f" (positive {ev['positive_label']}), decision threshold {ev['decision_threshold']}"
    lines.append(task)
    base = ev["baseline"]
    lines.append(f"  baseline  {base['name']}" + (f": {base['note']}" if base.get("note") else ""))
    if base.get("source"):
        lines.append(f"            {base['source']}")

    checks = ev["checks"]
    overall = {c["metric"]: c for c in checks if c["scope"] == OVERALL}
    base_metrics = base.get("metrics") or {}
    rows = [["metric", "value", "baseline", "change", "bounds", "result"]]
    for metric, check in overall.items():
        value, bval = check["value"], base_metrics.get(metric)
        rows.append(
            [metric, fmt(value), fmt(bval) if base_metrics else "-", _change(value, bval),
             _bounds(check), "ok" if check["passed"] else "FAIL"]
        )  # fmt: skip
    lines.append("")
    lines.extend(_table(rows))
    extra = [f"{m} {fmt(v)}" for m, v in ev["metrics"].items() if m not in overall]
    if extra:
        lines.append("  also measured: " + ", ".join(extra))

    if ev["slices"]:
        lines.extend(_slices(ev, checks))
    if ev["failures"]:
        lines.append("")
        lines.append("  why it failed:")
        lines.extend(f"    - {reason}" for reason in ev["failures"])
    return "\n".join(lines) + "\n"


def _slices(ev: dict[str, Any], checks: list[dict[str, Any]]) -> list[str]:
    by_scope: dict[str, list[dict[str, Any]]] = {}
    for c in checks:
        if c["scope"] != OVERALL:
            by_scope.setdefault(c["scope"], []).append(c)
    metrics = list(ev["slices"][0]["metrics"])
    columns = sorted({s["column"] for s in ev["slices"]})
    min_rows = ev.get("slice_min_rows")
    lines = ["", f"  slices by {', '.join(columns)} (min_rows {min_rows})"]
    rows = [["slice", "rows", *metrics, "result"]]
    for s in ev["slices"]:
        scoped = by_scope.get(s["slice"], [])
        if not s["judged"]:
            result = f"not judged (< {min_rows} rows)"
        elif any(not c["passed"] for c in scoped):
            result = "FAIL"
        else:
            result = "ok"
        rows.append([s["slice"], str(s["rows"]), *(fmt(s["metrics"][m]) for m in metrics), result])
    lines.extend(_table(rows))
    return lines
