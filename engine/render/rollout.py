"""A rollout in flight in words: what it waits for, and until when (``mlx apply`` and
``mlx rollout`` print it; ``mlx rollout status`` is rendered by ``cli.render.rollout``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from controller.state import Phase

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
    if phase not in (Phase.PROGRESSING, Phase.PAUSED):
        return None
    name = str(outputs.get("address", "")).split(".", 1)[-1]
    step = f"step {int(outputs.get('step') or 0) + 1}/{outputs.get('steps') or '?'}"
    mirror, weight = outputs.get("mirror") or 0, outputs.get("weight") or 0
    where = f"{step} ({f'mirror {mirror}%' if mirror else f'weight {weight}'})"
    if phase == Phase.PAUSED:
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
