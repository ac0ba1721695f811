"""``mlx rollout status``: the data — what ``kubectl argo rollouts get rollout`` shows: step
n/m, desired vs live weights, each analysis with its numbers, what comes next and when.

It reads the state; the live split is asked of whoever can reach the endpoint's router —
the caller passes ``live`` (the CLI asks the endpoint's provider), so this module only
reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from common.diagnostics import MlxError, did_you_mean
from controller.state import Phase
from readmodels.queries import merged_events
from state.store import Record, StateReader

#: The split an endpoint's router has now, given the endpoint's record: the traffic as a dict
#: (``contract.Traffic.as_dict``), ``{"error": why}`` when it cannot be read, or None.
LiveTraffic = Callable[[Record], dict[str, Any] | None]


def status_of(reader: StateReader, name: str, live: LiveTraffic) -> dict[str, Any]:
    address = name if name.startswith("rollouts.") else f"rollouts.{name}"
    rec = reader.record(address)
    if rec is None:
        known = [a for a, r in reader.index().items() if r.section == "rollouts"]
        raise MlxError(f"no rollout {address} in the state{did_you_mean(address, known)}")
    out = dict(rec.outputs)
    data: dict[str, Any] = {
        "address": address,
        "status": rec.status,
        "strategy": out.get("strategy", rec.attributes.get("strategy", "direct")),
        "subject": out.get("subject", rec.attributes.get("subject")),
        "endpoint": out.get("endpoint"),
        "phase": out.get("phase"),
        "waiting": out.get("waiting"),
        "step": (out.get("step") or 0) + 1 if out.get("steps") else None,
        "steps": out.get("steps"),
        "stable": out.get("released") or out.get("stable"),
        "candidate": out.get("candidate"),
        "desired": {"weight": out.get("weight", 0), "mirror": out.get("mirror", 0)},
        "message": out.get("message"),
        "looks": out.get("looks") or [],
        "tally": out.get("tally") or {},
        "next_in_s": _next_in(out),
        "started_at": out.get("started_at"),
        "deadline": out.get("deadline"),
    }
    data["live"] = _live(reader, out.get("endpoint"), live)
    data["history"] = [
        {
            "serial": e["serial"],
            "action": e["action"],
            "status": e["status"],
            "at": e["created_at"],
            "note": e["error"],
        }
        for e in merged_events(reader.events(address=address))
    ]
    return data


def _next_in(out: dict[str, Any]) -> float | None:
    if out.get("phase") != Phase.PROGRESSING:
        return None
    times = [t for t in (out.get("pause_until"), out.get("next_look_at")) if t]
    return max(0.0, min(times) - time.time()) if times else None


def _live(reader: StateReader, endpoint: str | None, live: LiveTraffic) -> dict[str, Any] | None:
    if not endpoint:
        return None
    rec = reader.record(endpoint)
    if rec is None:
        return None
    return live(rec)
