"""Rendering ``mlx rollout status`` (the data: ``readmodels.rollout``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return str(ts)
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def render_status(d: dict[str, Any]) -> str:
    lines = [f"{d['address']}  ({d['strategy']}, {d['status']})"]
    stable, cand = d.get("stable") or {}, d.get("candidate") or {}
    lines.append(f"  subject:   {d['subject']}")
    if d.get("endpoint"):
        lines.append(f"  endpoint:  {d['endpoint']}")
    lines.append(
        f"  phase:     {d['phase']}" + (f" (waiting: {d['waiting']})" if d["waiting"] else "")
    )
    if d.get("steps"):
        lines.append(f"  step:      {d['step']}/{d['steps']}")
    lines.append(f"  stable:    v{stable.get('version', '?')}  {stable.get('fingerprint', '')}")
    if cand and cand.get("fingerprint") != stable.get("fingerprint"):
        lines.append(f"  candidate: v{cand.get('version', '?')}  {cand.get('fingerprint', '')}")
    desired, live = d["desired"], d.get("live")
    lines.append(
        f"  weights:   desired candidate {desired['weight']}%, mirror {desired['mirror']}%"
    )
    if live:
        if "error" in live:
            lines.append(f"             live: could not be read ({live['error']})")
        else:
            candidate = (
                f"candidate {live['candidate']} {live['weight']}%, mirror {live['mirror']}%"
                if live.get("candidate")
                else "no candidate"
            )
            lines.append(f"             live: stable {live['stable'] or '-'}, {candidate}")
    if d.get("message"):
        lines.append(f"  now:       {d['message']}")
    if d.get("next_in_s") is not None:
        lines.append(f"  next:      in {d['next_in_s']:.0f}s")
    tally = d.get("tally") or {}
    if tally:
        lines.append(
            "  analyses:  "
            + ", ".join(f"{k} {v}" for k, v in sorted(tally.items()) if k != "consecutive_errors")
        )
    for look in d.get("looks", [])[-5:]:
        lines.append(f"    {_when(look.get('at'))}  step {look.get('step')}: {look.get('verdict')}")
        for m in look.get("measurements") or []:
            lines.append(f"      {m['metric']}: {m['verdict']}  {m.get('reason', '')}")
        if look.get("ab"):
            ab = look["ab"]
            lines.append(f"      decision: {ab['verdict']}  {ab['reason']}")
    return "\n".join(lines) + "\n"
