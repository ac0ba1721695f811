"""Name the rollout step that served each slice of a live monitor's run.

A slice is a (variant, version) of the endpoint's log; when a rollout drives that endpoint,
the steps its candidate went through during the window (``controller.step_spans``, from the
rollout's recorded events) are added to the slices of that version as ``rollout_steps`` —
so "drift in variant candidate version 7" becomes "… during rollouts.web step 2/3 at 50 %".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.step_spans import StepSpan, during, spans
from state.store import StateReader


def _short(ref: Any) -> str:
    text = str(ref or "").strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    return text.removeprefix("endpoints.")


def _epoch(at: Any) -> float:
    if isinstance(at, datetime):
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    return float(at)


def rollout_spans(reader: StateReader, endpoint: str) -> list[StepSpan]:
    """Every step of every rollout recorded on ``endpoint`` (its short name)."""
    out: list[StepSpan] = []
    rollouts = [a for a, row in reader.index().items() if row.section == "rollouts"]
    for address, rec in reader.records(rollouts).items():  # only the rollouts' JSON is read
        if _short(rec.outputs.get("endpoint") or rec.attributes.get("endpoint")) != endpoint:
            continue
        history = [
            (_epoch(e["created_at"]), e["outputs"])
            for e in reader.events(address=address)
            if e["outputs"]
        ]
        out.extend(spans(address, history))
    return out


def attribute(reader: StateReader, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with ``rollout_steps`` on each slice a rollout's candidate served."""
    window = result.get("window") or {}
    endpoint, since, until = window.get("endpoint"), window.get("since"), window.get("until")
    if not endpoint or not isinstance(since, int | float) or not isinstance(until, int | float):
        return result
    found = during(rollout_spans(reader, str(endpoint)), float(since), float(until))
    if not found:
        return result
    slices = []
    for s in result.get("slices") or []:
        mine = [span for span in found if span.version == s.get("version")]
        slices.append(
            {**s, "rollout_steps": [{**span.as_dict(), "label": span.label()} for span in mine]}
            if mine
            else s
        )
    return {**result, "slices": slices}
