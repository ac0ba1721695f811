"""One ``mlx refresh``'s monitor runs: pick the due (or named) monitors, run each through its
provider's ``Watcher`` capability, record each run as an event of the monitor (action
``monitor``; the run is the record's ``last_run`` output, so ``mlx history`` and
``mlx show`` read it), and observe its alerts.

Alerts (``engine.alerting``): the key is (``monitors.NAME``, version, the monitor's ``type``).
A live monitor observes one alert per version that served in the window — breach when a slice
of that version breached (``slices[].breach``), ok otherwise — so the drift or the latency of a
canary is its own alert, resolved on its own. A batch monitor has one alert (version ``None``).
A window without traffic (``no_data``), too few labels (``insufficient_data``) or a run that
could not read its inputs (``error``) is observed on each alert of the monitor that is not
inactive (else on its version-less key): never ok, never resolved.

Every monitor type's run has the same outer shape (``contract.Watcher``): ``state``,
``reason``, ``window`` and ``slices`` — each ``{variant, version, requests, breach,
findings}`` plus the type's own figures — so this module, ``mlx show`` and the alert text
treat all types alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from alerts import AlertKey, AlertState, Condition
from common.diagnostics import MlxError, did_you_mean
from common.durations import format_duration
from contract import AlertMessage, Watcher
from engine.alerting import Alerting
from engine.monitors.attribution import attribute
from engine.monitors.schedule import due
from engine.plugins import ProviderSet, prior_of
from state.status import VersionStatus
from state.store import Record, StateWriter
from state.writes import RecordWrite

ACTION = "monitor"
_CONDITION = {
    "no_data": Condition.NO_DATA,
    "insufficient_data": Condition.NO_DATA,
    "error": Condition.ERROR,
}
#: How an alert names what a monitor of each type watches.
WATCHES = {
    "data_drift": "data drift",
    "prediction_drift": "prediction drift",
    "performance": "performance",
    "latency": "latency",
    "error_rate": "error rate",
    "cost": "cost",
    "eval": "eval score",
}


#: How an alert names a slice of no variant (a batch dataset, a re-run gate, a whole window).
_WHOLE = {"data_drift": "data", "prediction_drift": "data", "eval": "scores"}


def signal_of(rec: Record) -> str:
    """The alert signal of a monitor: its type (``data_drift`` when unrecorded)."""
    return str(rec.attributes.get("type") or "data_drift")


@dataclass
class MonitorRun:
    address: str
    state: str
    reason: str
    result: dict[str, Any]
    notified: list[str] = field(default_factory=list)


def select(records: dict[str, Record], names: Sequence[str], now: float) -> list[Record]:
    """The named monitors (each must be recorded), else every monitor that is due."""
    monitors = {a: r for a, r in records.items() if r.section == "monitors"}
    if names:
        out = []
        for name in names:
            address = name if name.startswith("monitors.") else f"monitors.{name}"
            if address not in monitors:
                raise MlxError(
                    f"no applied monitor {address}{did_you_mean(address, list(monitors))} "
                    "(`mlx apply` creates it)"
                )
            out.append(monitors[address])
        return out
    return [
        r
        for r in monitors.values()
        if due(r.attributes.get("schedule"), (r.outputs.get("last_run") or {}).get("at"), now)
    ]


def run_all(
    writer: StateWriter,
    providers: ProviderSet,
    alerting: Alerting,
    monitors: Iterable[Record],
    *,
    now: float,
    actor: str,
    git_sha: str | None,
) -> list[MonitorRun]:
    """Run ``monitors``; one state version of operation ``monitor`` records them all."""
    chosen = list(monitors)
    if not chosen:
        return []
    runs: list[MonitorRun] = []
    writer.begin(ACTION, actor=actor, git_sha=git_sha)
    try:
        for rec in chosen:
            runs.append(_run_one(writer, providers, alerting, rec, now))
    finally:
        firing = sum(1 for r in runs if r.state == "firing")
        writer.finish(VersionStatus.COMPLETE, {"monitors": len(runs), "firing": firing})
    return runs


def _run_one(
    writer: StateWriter, providers: ProviderSet, alerting: Alerting, rec: Record, now: float
) -> MonitorRun:
    provider = providers.get(rec.provider, rec.address)
    if not isinstance(provider, Watcher):
        result: dict[str, Any] = {
            "state": "error",
            "reason": f"its provider ({rec.provider}) cannot run monitors",
        }
    else:
        result = provider.watch(prior_of(rec), now)
    result = attribute(writer, {**result, "at": now})
    state, reason = str(result.get("state")), str(result.get("reason", ""))
    writer.put(
        replace(
            RecordWrite.of(rec, ACTION),
            outputs={**rec.outputs, "last_run": result},
            error=f"{state}: {reason}",
        )
    )
    run = MonitorRun(rec.address, state, reason, result)
    run.notified = observe(alerting, rec, result, now)
    return run


def observe(alerting: Alerting, rec: Record, result: dict[str, Any], now: float) -> list[str]:
    """The run's alert observations; returns the keys that notified."""
    spec = rec.attributes
    channels = [_address(str(spec["alert"]))] if spec.get("alert") else []
    for_runs = int(spec.get("for") or 1)
    notified: list[str] = []

    def see(key: AlertKey, condition: Condition, message: AlertMessage) -> None:
        taken = alerting.observe(key, condition, message, channels, for_runs=for_runs, now=now)
        if taken.notify is not None:
            notified.append(str(key))

    signal = signal_of(rec)
    state = result.get("state")
    if state in _CONDITION:
        active = [
            AlertKey(rec.address, signal, row["version"])
            for row in alerting.store.alerts()
            if row["resource"] == rec.address
            and row["signal"] == signal
            and row["state"] != AlertState.INACTIVE
        ]
        for key in active or [AlertKey(rec.address, signal, None)]:
            see(key, _CONDITION[str(state)], _message(rec, result, key.version))
        return notified
    judged = versions(result)
    for version, breached in judged.items():
        key = AlertKey(rec.address, signal, version)
        see(key, Condition.BREACH if breached else Condition.OK, _message(rec, result, version))
    if None not in judged and _active(alerting, rec.address, signal, None):
        # a run with data ends the monitor-wide no_data / error alert of earlier runs
        see(AlertKey(rec.address, signal, None), Condition.OK, _message(rec, result, None))
    return notified


def _active(alerting: Alerting, address: str, signal: str, version: str | None) -> bool:
    return any(
        row["resource"] == address
        and row["signal"] == signal
        and row["version"] == version
        and row["state"] != AlertState.INACTIVE
        for row in alerting.store.alerts()
    )


def versions(result: dict[str, Any]) -> dict[str | None, bool]:
    """Each version judged in the run, and whether a slice of it breached."""
    slices = result.get("slices") or []
    if all(s.get("version") is None for s in slices):
        return {None: result.get("state") == "firing"}
    out: dict[str | None, bool] = {}
    for s in slices:
        v = s.get("version")
        out[v] = out.get(v, False) or bool(s.get("breach"))
    return out


def _message(rec: Record, result: dict[str, Any], version: str | None) -> AlertMessage:
    spec = rec.attributes
    owner = spec.get("owner")
    state = str(result.get("state"))
    window = result.get("window") or {}
    investigate = _investigate(rec.address, window)
    title = _title(
        rec,
        state,
        f"{_where(spec, window)}" + (f" version {version}" if version is not None else ""),
    )
    lines: list[str] = []
    if state == "firing":
        lines = _breaches(rec, result, version)
    elif state in _CONDITION:
        lines = [str(result.get("reason", ""))]
    text = " ".join(
        [
            f"{title}. Owner: {owner or 'none declared'}.",
            *filter(None, lines),
            f"Look: {investigate}",
        ]
    )
    return AlertMessage(
        title=title,
        text=text,
        severity="warning",
        source=rec.address,
        owner=owner,
        details={"state": state, "version": version, "window": window, "findings": lines},
        investigate=investigate,
    )


def _investigate(address: str, window: dict[str, Any]) -> str:
    """The commands to look with: the monitor, and the log's window when it read one."""
    show = f"mlx show {address}"
    endpoint = window.get("endpoint")
    if not endpoint:
        return show
    span = format_duration(float(window["until"]) - float(window["since"]))
    return f"{show}; mlx logs {endpoint} --since {span}"


def _where(spec: Any, window: dict[str, Any]) -> str:
    """What the run read: an endpoint, a subject (a scheduled eval) or a dataset."""
    if window.get("endpoint"):
        return f"endpoint {window['endpoint']}"
    if window.get("subject"):
        return str(window["subject"])
    if window.get("dataset"):
        return f"dataset {window['dataset']}"
    # a run that could not start: name what it watches
    return str(spec.get("gate") or spec.get("target") or spec.get("current") or "?")


def _title(rec: Record, state: str, where: str) -> str:
    watches = WATCHES.get(signal_of(rec), signal_of(rec))
    if state == "firing":
        return f"{rec.address}: {watches} on {where}"
    if state in _CONDITION:
        return f"{rec.address}: {state} on {where}"
    if signal_of(rec).endswith("_drift"):
        return f"{rec.address}: no drift on {where} any more"
    return f"{rec.address}: {watches} back within its threshold on {where}"


def _breaches(rec: Record, result: dict[str, Any], version: str | None) -> list[str]:
    """One line per breached slice of ``version``: who served it (and in which rollout step),
    then its findings."""
    lines = []
    for s in result.get("slices") or []:
        if s.get("version") != version or not s.get("breach"):
            continue
        if s["variant"]:
            label = f"variant {s['variant']} version {s['version']}"
        else:
            label = _WHOLE.get(signal_of(rec), "the window")
        steps = [step["label"] for step in s.get("rollout_steps") or []]
        if steps:
            label += f" (during {', '.join(steps)})"
        lines.append(f"{label}: " + "; ".join(s.get("findings") or []))
    return lines


def _address(ref: str) -> str:
    text = ref.strip()
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text
