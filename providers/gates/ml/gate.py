"""An ML gate, start to end: load rows and models, measure, compare, judge, report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract import Desired, ProviderError, VersionRef
from providers.gates.common import GateEnv, Verdict, now
from providers.gates.ml import predict
from providers.gates.ml.baselines import BaselinePlan, plan_baseline
from providers.gates.ml.judge import OVERALL, Check, judge
from providers.gates.ml.labels import Truth, encode, infer_task, key
from providers.gates.ml.metrics import PROBABILISTIC, Options, Scored, applicable
from providers.gates.ml.report import render
from providers.gates.ml.slices import Measured, Slice, make_slices, measure
from providers.gates.ml.table import Table, read_table
from specs.evals import Eval, Threshold


@dataclass
class Rows:
    table: Table
    evidence: dict[str, Any]  # dataset / predictions provenance


def run(spec: Eval, desired: Desired, env: GateEnv) -> Verdict:
    started = time.monotonic()
    rows = _load_rows(spec, desired, env)
    table = rows.table
    model, model_path = None, None
    if spec.predictions is None:
        model_path = env.materialize(spec.subject, None, "candidate")
        model = predict.load_model(model_path)
    candidate_fp = env.fingerprint_of(desired, spec.subject, model_path or _declared(spec, env))
    truth = _truth(spec, table, model)
    slices = make_slices(table, spec.slices.by) if spec.slices else []
    opts = _options(spec)
    features = _Features(spec, table)

    if model is not None:
        x = features.matrix_for(model)
        candidate = predict.score_model(model, x, truth, spec.decision_threshold, spec.subject)
    else:
        assert spec.predictions is not None
        candidate = predict.score_predictions(
            table, truth, spec.decision_threshold, spec.predictions
        )
    overall_names = _reported(spec, candidate)
    slice_names = list(_slice_thresholds(spec))
    cand = _measure(candidate, overall_names, slices, slice_names, opts)

    plan = plan_baseline(spec.baseline, desired, spec.subject, candidate_fp, env.context.peers)
    base = _baseline(plan, cand, spec, env, truth, features, slices, overall_names, opts)
    checks = _judge(spec, cand, base, plan, slices)
    failures = [reason for c in checks for reason in c.reasons]
    passed = not failures

    subject_outputs = desired.inputs.get(spec.subject) or {}
    evidence: dict[str, Any] = {
        "kind": "ml",
        "gate": desired.address,
        "evaluated_at": now(),
        "duration_s": round(time.monotonic() - started, 3),
        "passed": passed,
        "task": truth.task,
        "rows": table.rows,
        "label": spec.label,
        "subject": {
            "address": spec.subject,
            "version": VersionRef.of(subject_outputs).version,
            "fingerprint": candidate_fp,
            "source": "predictions" if spec.predictions else "artifact",
        },
        **rows.evidence,
        "baseline": {
            **plan.evidence(),
            "metrics": base.overall if base else None,
        },
        "metrics": cand.overall,
        "slices": _slice_evidence(spec, slices, cand, base),
        "slice_min_rows": spec.slices.min_rows if spec.slices else None,
        "checks": [c.as_dict() for c in checks],
        "failures": failures,
    }
    if truth.task == "binary":
        evidence["positive_label"] = truth.positive
        evidence["decision_threshold"] = spec.decision_threshold
    elif truth.task == "multiclass":
        evidence["classes"] = list(truth.classes)
    return Verdict(
        passed, _message(passed, failures, checks, plan, table), render(evidence), evidence
    )


# -- rows -----------------------------------------------------------------------------------------
def _load_rows(spec: Eval, desired: Desired, env: GateEnv) -> Rows:
    evidence: dict[str, Any] = {}
    table: Table | None = None
    if spec.dataset is not None:
        address = spec.dataset
        declared = env.peers.spec(address) or {}
        recorded = desired.inputs.get(address) or desired.prior_inputs.get(address)
        try:
            path = env.materialize(address, None, "dataset")
        except ProviderError as exc:
            if not recorded:
                raise ProviderError(f"dataset {address} cannot be read: {exc}") from exc
            path = env.materialize(address, recorded, "dataset")
        table = read_table(path, declared.get("format"))
        evidence["dataset"] = {
            "address": address,
            "revision": VersionRef.of(desired.inputs.get(address)).version,
            "fingerprint": env.fingerprint_of(desired, address, path),
            "rows": table.rows,
        }
    if spec.predictions is not None:
        path = env.path(spec.predictions)
        predictions = read_table(path)
        evidence["predictions"] = {
            "path": spec.predictions,
            "fingerprint": env.hasher.digest(path),
            "rows": predictions.rows,
        }
        table = predictions if table is None else table.merged(predictions)
    assert table is not None
    if table.rows == 0:
        raise ProviderError(f"{table.source} has no rows to evaluate")
    return Rows(table, evidence)


def _declared(spec: Eval, env: GateEnv) -> Path | None:
    """The subject's declared artifact, for its fingerprint when only predictions are used."""
    declared = (env.context.peers.spec(spec.subject) if env.context.peers else None) or {}
    artifact = declared.get("artifact")
    if isinstance(artifact, str) and "://" not in artifact:
        return env.path(artifact)
    return None


def _truth(spec: Eval, table: Table, model: Any) -> Truth:
    assert spec.label is not None
    labels = table.column(spec.label, "label")
    classes = predict.model_classes(model) if model is not None else None
    if model is None:
        classes = predict.classes_of_predictions(table)
        if classes is None and predict.PREDICTION in table.columns and spec.task != "regression":
            seen = {key(v) for v in labels} | {key(v) for v in table.columns[predict.PREDICTION]}
            classes = sorted(seen)
    task = infer_task(spec.task, spec.metrics, classes, labels)
    return encode(
        task,
        labels,
        classes=None if task == "regression" else classes,
        positive_label=spec.positive_label,
        source=table.source,
    )


class _Features:
    """Feature matrices by column list: each model may name its own features."""

    def __init__(self, spec: Eval, table: Table):
        self.spec, self.table = spec, table
        self.exclude = {spec.label or "", *(spec.slices.by if spec.slices else [])}
        self._cache: dict[tuple[str, ...], Any] = {}

    def matrix_for(self, model: Any) -> Any:
        names = tuple(predict.feature_columns(model, self.spec.features, self.table, self.exclude))
        if names not in self._cache:
            self._cache[names] = predict.matrix(self.table, names)
        return self._cache[names]


# -- metrics --------------------------------------------------------------------------------------
def _options(spec: Eval) -> Options:
    cm = spec.cost_matrix
    cost = (cm.fp, cm.fn, cm.tp, cm.tn) if cm else (1.0, 1.0, 0.0, 0.0)
    return Options(average=spec.average, cost=cost)


def _reported(spec: Eval, scored: Scored) -> list[str]:
    """The gated metrics, then every other metric the task and the predictions allow."""
    names = list(spec.metrics)
    for m in applicable(scored.task):
        if m in names or (m in PROBABILISTIC and scored.proba is None):
            continue
        if m == "cost" and spec.cost_matrix is None:
            continue
        names.append(m)
    return names


def _slice_thresholds(spec: Eval) -> dict[str, Threshold]:
    if spec.slices is None:
        return {}
    return dict(spec.slices.metrics) if spec.slices.metrics is not None else dict(spec.metrics)


def _measure(
    scored: Scored, names: list[str], slices: list[Slice], slice_names: list[str], opts: Options
) -> Measured:
    try:
        return measure(scored, names, slices, slice_names, opts)
    except ValueError as exc:
        raise ProviderError(str(exc)) from None


def _baseline(
    plan: BaselinePlan,
    cand: Measured,
    spec: Eval,
    env: GateEnv,
    truth: Truth,
    features: _Features,
    slices: list[Slice],
    names: list[str],
    opts: Options,
) -> Measured | None:
    if plan.status in ("none", "absent"):
        return None
    if plan.status == "same":
        return cand
    if plan.heuristic is not None:
        scored = predict.heuristic(plan.heuristic, plan.value, truth)
    else:
        assert plan.address is not None
        outputs = None if plan.declared else plan.outputs
        try:
            path = env.materialize(plan.address, outputs, "baseline")
        except ProviderError as exc:
            raise ProviderError(f"baseline {plan.name} cannot be loaded: {exc}") from exc
        model = predict.load_model(path)
        try:
            x = features.matrix_for(model)
        except ProviderError as exc:
            raise ProviderError(
                f"baseline {plan.name} needs feature columns in the eval rows: {exc}"
            ) from exc
        scored = predict.score_model(model, x, truth, spec.decision_threshold, plan.name)
    # a model-free or hard-label baseline may lack probabilities: compare what it has
    usable = [m for m in names if not (m in PROBABILISTIC and scored.proba is None)]
    slice_names = [m for m in _slice_thresholds(spec) if m in usable]
    return _measure(scored, usable, slices, slice_names, opts)


# -- judging --------------------------------------------------------------------------------------
def _judge(
    spec: Eval, cand: Measured, base: Measured | None, plan: BaselinePlan, slices: list[Slice]
) -> list[Check]:
    name = plan.short if base is not None else None
    other = plan.status == "compare"  # not worth naming when the baseline is the candidate
    checks = [
        judge(m, OVERALL, cand.overall.get(m), bounds, _get(base, None, m), name, other)
        for m, bounds in spec.metrics.items()
    ]
    min_rows = spec.slices.min_rows if spec.slices else 0
    for s in slices:
        if s.rows < min_rows:
            continue
        for m, bounds in _slice_thresholds(spec).items():
            value = cand.slices[s.name].get(m)
            baseline = _get(base, s.name, m)
            checks.append(judge(m, s.name, value, bounds, baseline, name, other))
    return checks


def _get(measured: Measured | None, slice_name: str | None, metric: str) -> Any:
    if measured is None:
        return None
    values = measured.overall if slice_name is None else measured.slices.get(slice_name, {})
    return values.get(metric)


def _slice_evidence(
    spec: Eval, slices: list[Slice], cand: Measured, base: Measured | None
) -> list[dict[str, Any]]:
    min_rows = spec.slices.min_rows if spec.slices else 0
    return [
        {
            "slice": s.name,
            "column": s.column,
            "value": s.value,
            "rows": s.rows,
            "judged": s.rows >= min_rows,
            "metrics": cand.slices[s.name],
            "baseline_metrics": base.slices.get(s.name) if base else None,
        }
        for s in slices
    ]


def _message(
    passed: bool, failures: list[str], checks: list[Check], plan: BaselinePlan, table: Table
) -> str:
    if not passed:
        more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
        return "; ".join(failures[:3]) + more
    judged = sum(1 for c in checks if c.judged)
    against = plan.note or f"baseline {plan.name}"
    return f"passed {judged} checks on {table.rows} rows; {against}"
