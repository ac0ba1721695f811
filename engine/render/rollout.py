"""Rendering ``mlx rollout status`` (the data: ``readmodels.rollout``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

#: Why a paused rollout waits, in words (``controller.state.Waiting``).
_PAUSED_FOR = {
    "promote": "a manual step",
    "inconclusive": "too little evidence to judge",
    "failure": "a failed analysis (on_failure: pause)",
    "timeout": "past its timeout",
    "decision": "an A/B test without a decision",
}


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def wait_line(outputs: Mapping[str, Any], *, analysed: bool) -> str | None:
    """What a rollout in flight waits for, and until when (``None``: settled).

    ``paused at step 2/3 (weight 50) until 12:04:10 UTC; analysis at the end of the
    pause`` / ``paused at step 1/3 (weight 10) for a manual step: waiting for `mlx rollout
    promote m` (or `mlx rollout abort m`)``.
    """
    phase = outputs.get("phase")
    if phase not in ("progressing", "paused"):
        return None
    name = str(outputs.get("address", "")).split(".", 1)[-1]
    step = f"step {int(outputs.get('step') or 0) + 1}/{outputs.get('steps') or '?'}"
    mirror, weight = outputs.get("mirror") or 0, outputs.get("weight") or 0
    where = f"{step} ({f'mirror {mirror}%' if mirror else f'weight {weight}'})"
    if phase == "paused":
        why = _PAUSED_FOR.get(str(outputs.get("waiting")), "a person")
        return (
            f"paused at {where} for {why}: waiting for `mlx rollout promote {name}` "
            f"(or `mlx rollout abort {name}`)"
        )
    pause_until, look_at = outputs.get("pause_until"), outputs.get("next_look_at")
    if outputs.get("strategy") == "ab":
        then = f"; next look at {_clock(look_at)}" if look_at else ""
        return f"at {where}: A/B split until the test decides{then}"
    if pause_until:
        then = "analysis at the end of the pause" if analysed else "then the next step"
        line = f"paused at {where} until {_clock(pause_until)}; {then}"
        if look_at and look_at < pause_until:
            line += f" (next look at {_clock(look_at)})"
        return line
    if look_at:
        return f"at {where}: next look at {_clock(look_at)}"
    return f"at {where}"


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
