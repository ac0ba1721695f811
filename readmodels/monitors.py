"""A monitor's runs as ``mlx show monitors.NAME`` reads them: the latest run (per feature:
statistic, threshold, effect, verdict; for the other types each metric's value, threshold and
verdict; per slice: what breached) and the trend of the last runs, from the monitor's
``monitor`` events in the state (each carries the run as the
record's ``last_run`` output)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from state.store import StateReader

#: Runs shown in the trend.
TREND = 10


def runs_of(reader: StateReader, address: str, upto: int | None = None) -> list[dict[str, Any]]:
    """The recorded runs of a monitor, oldest first."""
    return [
        e["outputs"]["last_run"]
        for e in reader.events(address=address, upto=upto)
        if e["action"] == "monitor" and (e["outputs"] or {}).get("last_run")
    ]


def monitor_view(address: str, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``runs``: the ``last_run`` of each recorded run, oldest first."""
    latest = runs[-1] if runs else None
    return {
        "address": address,
        "latest": _latest(latest) if latest is not None else None,
        "trend": [_trend_row(r) for r in runs[-TREND:]],
    }


def _latest(run: dict[str, Any]) -> dict[str, Any]:
    whole = run.get("whole") or {}
    return {
        "at": _iso(run.get("at")),
        "state": run.get("state"),
        "reason": run.get("reason"),
        "window": run.get("window"),
        "dataset": whole.get("dataset"),
        "features": [
            {
                "feature": name,
                "signal": v["method"],
                "statistic": v["statistic"],
                "threshold": v["threshold"],
                "effect": v["effect"],
                "effect_name": v["effect_name"],
                "verdict": v["state"],
            }
            for name, signals in (whole.get("features") or {}).items()
            for v in signals
        ],
        "metrics": list(whole.get("metrics") or []),
        "slices": [_slice(s) for s in run.get("slices") or []],
        # slices with traffic but no figure to judge (no priced row, too few labels): shown,
        # never counted as ok
        "unjudged": [_slice(s) for s in run.get("unjudged") or []],
    }


def _slice(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "variant": s.get("variant"),
        "version": s.get("version"),
        "segment": s.get("segment"),
        "requests": s.get("requests"),
        "verdict": s.get("verdict"),
        "breach": bool(s.get("breach")),
        "findings": list(s.get("findings") or []),
        "summary": s.get("summary"),
        "metrics": list(s.get("metrics") or []),
        "rollout_steps": [step.get("label") for step in s.get("rollout_steps") or []],
        "drifted_features": (s.get("dataset") or {}).get("drifted_features", []),
    }


def _trend_row(run: dict[str, Any]) -> dict[str, Any]:
    whole = run.get("whole") or {}
    dataset = whole.get("dataset") or {}
    metrics = whole.get("metrics") or []
    return {
        "at": _iso(run.get("at")),
        "state": run.get("state"),
        "share": dataset.get("share"),
        "drifted_features": dataset.get("drifted_features", []),
        # a metric monitor's first figure (latency p95, error rate, a score…)
        "metric": metrics[0]["metric"] if metrics else None,
        "value": metrics[0]["value"] if metrics else None,
    }


def _iso(ts: Any) -> str | None:
    if not isinstance(ts, int | float):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
