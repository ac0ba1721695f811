"""The ``monitor`` provider: ``monitors.*`` of the types in ``RUNNERS``.

For drift types ``create``/``update`` profile the reference once per fingerprint
(``.reference``) and record where the profile is kept; ``delete`` forgets the monitor
(profiles are keyed by the reference's fingerprint and may serve other monitors, so they
stay). A run (``watch``) of a drift type counts its window into that profile's bins; the
other types are run by the module ``RUNNERS`` names, imported when a run needs it. A type
with no runner is not built: ``check`` refuses it (and ``engine.load.availability`` leaves it
out before).

What every run returns (``contract.Watcher``; ``engine.monitors.run`` relies on it):
``state`` (ok, firing, no_data, insufficient_data, error), ``reason``, ``window`` (what was
read: ``endpoint``/``since``/``until``, or ``dataset``, or ``subject``) and ``slices``: one per
(variant, version) that served in the window (a batch run is the one slice with both None),
each ``{variant, version, requests, breach: bool, findings: [str], metrics: [...]}`` where a
finding is one line naming what crossed which threshold with the values; ``whole`` is the
window as one slice (or None). The metric monitors (``metrics``, ``performance``) add
``unjudged``: the slices that had requests but no figure (no price, too few labels) — never ok,
so kept out of ``slices``, whose every entry is observed as ok or breach for its version — and
a performance slice of an input column's value carries ``segment`` (``"country=fr"``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.durations import parse_duration
from contract import Change, Desired, Prior, Problem, Provider, ProviderError, Result, Watcher
from inference.drift_bins import Bins, Slice, SliceCounts, bins_from_profile
from providers.monitor.judge import error, judge_run
from providers.monitor.reference import (
    ReferenceError,
    ensure_profile,
    load_profile,
    stored_profile,
)
from specs.monitors import Monitor

#: A live monitor's window when its spec names none.
DEFAULT_WINDOW = "1h"

#: The monitor types run by another module: type -> "module:function", called as
#: ``function(provider, spec, prior, now) -> dict`` (the run, as described above).
RUNNERS: dict[str, str] = {
    "latency": "providers.monitor.metrics:run",
    "error_rate": "providers.monitor.metrics:run",
    "cost": "providers.monitor.metrics:run",
    "performance": "providers.monitor.performance:run",
    "eval": "providers.monitor.scheduled_eval:run",
}

#: Drift types: a reference profile, counted and judged here. ``data_drift`` counts what the
#: model was asked (the log's ``inputs``), ``prediction_drift`` what it answered (``outputs``).
DRIFT_TYPES = frozenset({"data_drift", "prediction_drift"})

#: The column(s) a prediction-drift monitor compares when its spec names none.
PREDICTION_FEATURES = ("prediction",)

#: The monitor types this provider runs.
TYPES = DRIFT_TYPES | frozenset(RUNNERS)


class MonitorProvider(Provider, Watcher):
    sections = frozenset({"monitors"})
    resource_types = TYPES

    def check(self, desired: Desired) -> list[Problem]:
        try:
            spec = Monitor.model_validate(desired.spec)
        except ValidationError as exc:
            return [Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        if spec.type not in TYPES:
            return [Problem(("type",), f"monitors of type {spec.type} are not available yet")]
        if spec.type == "eval" and spec.gate is not None:
            return self._check_gate(_address(spec.gate))
        return []

    def _check_gate(self, gate: str) -> list[Problem]:
        """A gate judging a predictions file has no released behaviour to re-run: said at
        plan time rather than as an error on every scheduled run."""
        peers = self.context.peers
        declared = peers.spec(gate) if peers is not None else None
        if declared is not None and declared.get("predictions") is not None:
            return [
                Problem(
                    ("gate",),
                    f"{gate} judges a predictions file, not its subject: a scheduled eval "
                    "has no released behaviour to re-run",
                )
            ]
        return []

    def plan_inputs(self) -> list[str] | None:
        return None

    def fingerprint(self, desired: Desired) -> str | None:
        """The reference's fingerprint: a new reference content updates the monitor (its
        profile is built again); a new ``current`` dataset does not (a run reads it). A type
        without a reference has no fingerprint of its own."""
        reference = desired.spec.get("reference")
        if not isinstance(reference, str):
            return None
        value = (desired.inputs.get(_address(reference)) or {}).get("fingerprint")
        return str(value) if value else None

    def create(self, desired: Desired) -> Result:
        return Result(outputs=self._profile(desired))

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        return Result(outputs=self._profile(desired))

    def delete(self, prior: Prior) -> None:
        return None

    # -- the reference ----------------------------------------------------------------------
    def _profile(self, desired: Desired) -> dict[str, Any]:
        spec = Monitor.model_validate(desired.spec)
        if spec.type not in TYPES:
            raise ProviderError(f"{desired.address}: monitors of type {spec.type} are not built")
        if spec.type not in DRIFT_TYPES:
            return {"type": spec.type}
        reference = _address(str(spec.reference))
        fingerprint = (desired.inputs.get(reference) or {}).get("fingerprint")
        if not fingerprint:
            raise ProviderError(f"{desired.address}: {reference} has no recorded fingerprint")
        features = features_of(spec)
        target = stored_profile(self.context.data_dir, str(fingerprint), features)
        built = False
        if not target.is_file():
            target, built = self._build(desired.address, reference, str(fingerprint), features)
        self.context.log(
            f"{desired.address}: reference profile "
            f"{'built' if built else 'reused'} ({reference} {str(fingerprint)[:19]})"
        )
        return {
            "type": spec.type,
            "reference": reference,
            "reference_fingerprint": fingerprint,
            "profile": str(target.relative_to(self.context.data_dir)),
            "features": features,
        }

    def _build(
        self, address: str, reference: str, fingerprint: str, features: list[str]
    ) -> tuple[Path, bool]:
        peers = self.context.peers
        if peers is None:
            raise ProviderError("monitors need the engine's peers (run them through mlx)")
        ext = _extension(reference, dict(peers.spec(reference) or {}))
        with tempfile.TemporaryDirectory(dir=self.context.data_dir) as tmp:
            path = peers.materialize(reference, None, Path(tmp) / f"reference.{ext}")
            try:
                return ensure_profile(
                    self.context.data_dir, fingerprint, path, features, source=reference
                )
            except ReferenceError as exc:
                raise ProviderError(f"{address}: {exc}") from None

    # -- a run --------------------------------------------------------------------------------
    def watch(self, prior: Prior, now: float) -> dict[str, Any]:
        """One run of a recorded monitor: count the window (the endpoint's log over ``window``,
        or the ``current`` dataset) into the stored profile's bins and judge it."""
        try:
            spec = Monitor.model_validate(prior.attributes)
        except ValidationError as exc:
            return error(f"the recorded spec is not a monitor: {exc.errors()[0]['msg']}").as_dict()
        if spec.type in RUNNERS:
            return _runner(spec.type)(self, spec, prior, now)
        if spec.type not in DRIFT_TYPES:
            return error(f"monitors of type {spec.type} are not built").as_dict()
        try:
            profile = load_profile(self.context.data_dir / str(prior.outputs.get("profile", "")))
        except ReferenceError as exc:
            return error(str(exc)).as_dict()
        bins = bins_from_profile(profile.as_dict())
        try:
            if spec.current is not None:
                window, where = self._dataset_window(spec.current, bins)
            else:
                column = "outputs" if spec.type == "prediction_drift" else "inputs"
                window, where = self._log_window(str(spec.target), spec.window, bins, now, column)
        except (ProviderError, ReferenceError, OSError, ValueError) as exc:
            return error(f"cannot count the window: {exc}").as_dict()
        except Exception as exc:  # a database driver's own error (sqlalchemy, duckdb)
            return error(f"cannot count the window: {type(exc).__name__}: {exc}").as_dict()
        result = judge_run(window, profile, method=spec.method or "auto", threshold=spec.threshold)
        return {**result.as_dict(), "window": where}

    def _dataset_window(
        self, current: str, bins: list[Bins]
    ) -> tuple[dict[Slice, SliceCounts], dict[str, Any]]:
        from inference.drift_files import file_counts

        peers = self._peers()
        current = _address(current)
        ext = _extension(current, dict(peers.spec(current) or {}))
        with tempfile.TemporaryDirectory(dir=self.context.data_dir) as tmp:
            path = peers.materialize(current, None, Path(tmp) / f"current.{ext}")
            return file_counts(path, bins), {"dataset": current}

    def _log_window(
        self,
        target: str,
        window: str | None,
        bins: list[Bins],
        now: float,
        column: str = "inputs",
    ) -> tuple[dict[Slice, SliceCounts], dict[str, Any]]:
        """The endpoint's log over ``window``: its logged ``column`` (``inputs`` or
        ``outputs``) counted in the store."""
        from inference.drift_counts import Payload, window_counts
        from inference.store import open_log

        endpoint = self._endpoint(target)
        if not self.context.log_url:
            raise ProviderError("no inference log is configured for this run")
        span = parse_duration(window or DEFAULT_WINDOW)
        since = now - span
        store = open_log(self.context.log_url)
        try:
            counts = window_counts(
                store, endpoint, bins, since=since, until=now,
                environment=self.context.environment, column=Payload(column),
            )  # fmt: skip
        finally:
            store.close()
        return counts, {"endpoint": endpoint, "since": since, "until": now}

    def _endpoint(self, target: str) -> str:
        address = _address(target)
        if address.startswith("rollouts."):
            rollout = self._peers().spec(address) or {}
            endpoint = rollout.get("endpoint")
            if not endpoint:
                raise ProviderError(f"{address} drives no endpoint: there is no log to read")
            address = _address(str(endpoint))
        return address.split(".", 1)[1]

    def _peers(self) -> Any:
        if self.context.peers is None:
            raise ProviderError("monitors need the engine's peers (run them through mlx)")
        return self.context.peers


def features_of(spec: Monitor) -> list[str]:
    """The reference columns a drift monitor compares: its ``features``; a prediction-drift
    monitor that names none compares the column ``prediction`` (a data-drift one: every
    column, decided when the reference is read)."""
    if spec.features or spec.type != "prediction_drift":
        return list(spec.features)
    return list(PREDICTION_FEATURES)


def _runner(kind: str) -> Any:
    from importlib import import_module

    module, _, function = RUNNERS[kind].partition(":")
    return getattr(import_module(module), function)


def _address(ref: str) -> str:
    """``datasets.x`` from ``${datasets.x}`` or ``datasets.x``."""
    text = ref.strip()
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


def _extension(address: str, declared: dict[str, Any]) -> str:
    ext = declared.get("format") or Path(str(declared.get("uri", ""))).suffix.lstrip(".")
    if ext not in ("csv", "tsv", "parquet"):
        raise ProviderError(f"{address}: drift data is CSV or Parquet, not {ext or 'unknown'!r}")
    return str(ext)
