"""What ``mlx refresh`` prints of its monitor runs, and ``mlx show monitors.NAME``'s monitor
view (``readmodels.monitors``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def render_monitor_runs(runs: Iterable[Any]) -> list[str]:
    out = []
    for r in runs:
        line = f"{r.address}: {r.state} ({r.reason})"
        drifted = (r.result.get("drifted_slices") or []) if r.state == "firing" else []
        named = [f"variant {v} version {ver}" for v, ver in drifted if v is not None]
        if named:
            line += " in " + ", ".join(named)
        if r.notified:
            line += "; alerted: " + ", ".join(r.notified)
        out.append(line)
    return out


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, int | float) else "-"


def render_view(view: dict[str, Any]) -> list[str]:
    out = [view["address"]]
    latest = view["latest"]
    if latest is None:
        return [*out, "  not run yet: `mlx refresh --monitor NAME` runs it now"]
    out.append(f"  latest run {latest['at']}: {latest['state']} ({latest['reason']})")
    dataset = latest.get("dataset")
    if dataset:
        out.append(
            f"  drifted features: {len(dataset['drifted_features'])} of {dataset['features']}"
            f" (share {_num(dataset['share'])}, dataset verdict {dataset['state']})"
        )
    if latest["features"]:
        out.append(
            f"  {'feature':<16} {'signal':<14} {'statistic':>10} {'threshold':>10} "
            f"{'effect':>10}  verdict"
        )
        for f in latest["features"]:
            out.append(
                f"  {f['feature']:<16} {f['signal']:<14} {_num(f['statistic']):>10} "
                f"{_num(f['threshold']):>10} {_num(f['effect']):>10}  {f['verdict']}"
            )
    out.extend(_metric_rows(latest.get("metrics") or []))
    for s in latest["slices"]:
        if s["variant"] is None and not s.get("segment"):
            continue
        if dataset:
            out.append(
                f"{_slice_head(s)}: {s['requests']} requests, drifted: "
                f"{', '.join(s['drifted_features']) or 'none'}"
            )
        else:
            said = "; ".join(s["findings"]) or s.get("summary") or "within thresholds"
            out.append(f"{_slice_head(s)}: {said}")
    for s in latest.get("unjudged") or []:
        out.append(f"{_slice_head(s)}: not judged ({s.get('summary') or s.get('verdict')})")
    out.append("  trend (oldest first):")
    for t in view["trend"]:
        if t.get("metric") is not None:
            out.append(f"    {t['at']}  {t['state']:<10} {t['metric']} {_num(t['value'])}")
        else:
            out.append(
                f"    {t['at']}  {t['state']:<10} share {_num(t['share'])}  "
                f"{', '.join(t['drifted_features']) or '-'}"
            )
    return out


def _slice_head(s: dict[str, Any]) -> str:
    head = f"  slice variant {s['variant']} version {s['version']}" if s["variant"] else "  window"
    if s.get("segment"):
        head += f" {s['segment']}"
    if s.get("rollout_steps"):
        head += f" (during {', '.join(s['rollout_steps'])})"
    return head


def _metric_rows(metrics: list[dict[str, Any]]) -> list[str]:
    """A metric monitor's figures: each ``{metric, value, threshold, verdict}`` (``threshold``
    may be None when the metric is shown, not judged)."""
    if not metrics:
        return []
    recorded = any("recorded" in m for m in metrics)  # a scheduled eval's released scores
    head = f"  {'metric':<22} {'value':>12} {'threshold':>10}"
    out = [head + (f" {'released':>10}" if recorded else "") + "  verdict"]
    for m in metrics:
        line = f"  {m['metric']:<22} {_num(m['value']):>12} {_num(m.get('threshold')):>10}"
        if recorded:
            line += f" {_num(m.get('recorded')):>10}"
        out.append(f"{line}  {m.get('verdict') or '-'}")
    return out
