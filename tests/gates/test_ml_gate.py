"""ML gates through the provider: thresholds, slices, baselines, fail-closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contract import Change, Prior
from tests.gates.conftest import Bench, CancerData, train_cancer, write_csv

SUBJECT = "models.clf"


def gate(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "subject": SUBJECT,
        "dataset": "datasets.eval",
        "label": "malignant",
        "metrics": {"roc_auc": {"min": 0.9, "max_drop": 0.01}, "recall": {"min": 0.8}},
    }
    spec.update(over)
    return spec


def release(bench: Bench, cancer: CancerData, *, previous: bool | None, candidate: bool) -> tuple:
    """Declare the candidate (strong/weak) and, optionally, a registered previous version."""
    cand = train_cancer(cancer, bench.root / "artifacts" / "model.joblib", strong=candidate)
    bench.declare_model(SUBJECT, "artifacts/model.joblib")
    prior: dict[str, Any] = {}
    if previous is not None:
        old = train_cancer(cancer, bench.root / "old" / "model.joblib", strong=previous)
        prior = {SUBJECT: bench.register(SUBJECT, old, 1)}
    inputs = {SUBJECT: bench.register(SUBJECT, cand, 2 if prior else 1)}
    return inputs, prior


def test_first_release_judges_absolute_thresholds_only(bench: Bench, cancer: CancerData) -> None:
    inputs, prior = release(bench, cancer, previous=None, candidate=True)
    result = bench.provider.create(bench.desired(gate(), inputs, prior))
    assert not result.failed, result.message
    ev = result.outputs["evidence"]
    assert ev["baseline"]["status"] == "absent"
    assert "first release" in result.outputs["report"]
    assert result.outputs["passed"] is True
    roc = next(c for c in ev["checks"] if c["metric"] == "roc_auc" and c["scope"] == "overall")
    assert roc["baseline"] is None and "max_drop not judged" in roc["notes"][0]


def test_worse_than_previous_by_more_than_max_drop_is_refused(
    bench: Bench, cancer: CancerData
) -> None:
    inputs, prior = release(bench, cancer, previous=True, candidate=False)
    result = bench.provider.create(bench.desired(gate(metrics={"roc_auc": {"min": 0.5}}), inputs))
    assert not result.failed, "the weak model clears the absolute bar on its own"

    spec = gate(metrics={"roc_auc": {"min": 0.5, "max_drop": 0.01}})
    result = bench.provider.create(bench.desired(spec, inputs, prior))
    assert result.failed and result.outputs["passed"] is False
    assert "roc_auc" in result.message and "fell" in result.message
    assert "previous v1" in result.message and "max_drop 0.01" in result.message
    ev = result.outputs["evidence"]
    assert ev["baseline"]["status"] == "compare" and ev["baseline"]["version"] == 1
    assert ev["baseline"]["metrics"]["roc_auc"] > ev["metrics"]["roc_auc"] + 0.01
    # the previous version was loaded from the registry, not from the declared file
    assert (SUBJECT, prior[SUBJECT]) in bench.peers.materialized


def test_generous_max_drop_lets_a_slightly_worse_model_pass(
    bench: Bench, cancer: CancerData
) -> None:
    inputs, prior = release(bench, cancer, previous=True, candidate=False)
    spec = gate(metrics={"roc_auc": {"min": 0.5, "max_drop": 0.5}})
    result = bench.provider.create(bench.desired(spec, inputs, prior))
    assert not result.failed, result.message


def test_better_candidate_passes_max_drop(bench: Bench, cancer: CancerData) -> None:
    inputs, prior = release(bench, cancer, previous=False, candidate=True)
    spec = gate(metrics={"roc_auc": {"max_drop": 0.0}, "log_loss": {"max_drop": 0.0}})
    result = bench.provider.create(bench.desired(spec, inputs, prior))
    assert not result.failed, result.message


def test_max_drop_on_a_loss_counts_a_rise_as_worse(bench: Bench, cancer: CancerData) -> None:
    inputs, prior = release(bench, cancer, previous=True, candidate=False)
    spec = gate(metrics={"log_loss": {"max_drop": 0.05}})
    result = bench.provider.create(bench.desired(spec, inputs, prior))
    assert result.failed
    assert "log_loss" in result.message and "rose" in result.message


def test_unchanged_subject_compares_with_itself(bench: Bench, cancer: CancerData) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    result = bench.provider.create(bench.desired(gate(), inputs, prior_inputs=dict(inputs)))
    assert not result.failed
    base = result.outputs["evidence"]["baseline"]
    assert base["status"] == "same"
    assert base["metrics"] == result.outputs["evidence"]["metrics"]


def test_slices_judge_large_ones_and_only_report_small_ones(
    bench: Bench, cancer: CancerData
) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    spec = gate(
        metrics={"accuracy": {"min": 0.5}},
        slices={"by": ["site"], "min_rows": 30},
        baseline="none",
    )
    result = bench.provider.create(bench.desired(spec, inputs))
    ev = result.outputs["evidence"]
    by_name = {s["slice"]: s for s in ev["slices"]}
    assert set(by_name) == {"site=north", "site=south", "site=east", "site=tiny"}
    assert by_name["site=tiny"]["rows"] == 5 and by_name["site=tiny"]["judged"] is False
    assert not any(c["scope"] == "site=tiny" for c in ev["checks"])
    assert sum(s["rows"] for s in ev["slices"]) == ev["rows"]
    assert "not judged (< 30 rows)" in result.outputs["report"]
    # each slice's value is the metric on that slice's rows
    import numpy as np
    from sklearn.metrics import accuracy_score

    x = np.asarray(cancer.x_eval)
    import joblib

    model = joblib.load(bench.root / "artifacts" / "model.joblib")
    pred = model.predict(x)
    idx = np.array([i for i in range(len(x)) if i >= 5 and i % 3 == 0])
    assert by_name["site=north"]["metrics"]["accuracy"] == pytest.approx(
        accuracy_score(cancer.y_eval[idx], pred[idx]), abs=1e-12
    )


def test_a_failing_slice_fails_the_gate_and_names_the_slice(
    bench: Bench, cancer: CancerData
) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    spec = gate(
        metrics={"accuracy": {"min": 0.5}},
        slices={"by": ["site"], "min_rows": 30, "metrics": {"accuracy": {"min": 0.9999}}},
        baseline="none",
    )
    result = bench.provider.create(bench.desired(spec, inputs))
    failing = [c for c in result.outputs["evidence"]["checks"] if not c["passed"]]
    assert failing and result.failed
    assert f"accuracy on {failing[0]['scope']}" in result.message
    assert "< min 0.9999" in result.message


def test_small_slice_below_min_rows_does_not_fail_the_gate(
    bench: Bench, cancer: CancerData
) -> None:
    # predictions that are right everywhere except on the 5 rows of the tiny site
    scores = [[float(1 - y if i < 5 else y)] for i, y in enumerate(cancer.y_eval)]
    write_csv(bench.root / "preds.csv", ["score"], scores)
    bench.declare_model(SUBJECT, "none.joblib")
    spec = gate(
        predictions="preds.csv",
        metrics={"accuracy": {"min": 0.5}},
        slices={"by": ["site"], "min_rows": 30},
        baseline="none",
    )
    result = bench.provider.create(bench.desired(spec))
    assert not result.failed, result.message
    tiny = next(s for s in result.outputs["evidence"]["slices"] if s["slice"] == "site=tiny")
    assert tiny["metrics"]["accuracy"] == 0.0 and tiny["judged"] is False
    spec["slices"]["min_rows"] = 5  # now the tiny slice is judged, and fails
    result = bench.provider.create(bench.desired(spec))
    assert result.failed and "accuracy on site=tiny 0.0000 < min 0.5" in result.message


def test_alias_baseline_compares_with_the_version_behind_it(
    bench: Bench, cancer: CancerData
) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=False)
    spec = gate(metrics={"roc_auc": {"max_drop": 0.01}}, baseline={"alias": "production"})
    result = bench.provider.create(bench.desired(spec, inputs))
    assert not result.failed and "alias 'production'" in result.outputs["report"]

    prod = train_cancer(cancer, bench.root / "prod" / "m.joblib", strong=True)
    bench.peers.aliases[(SUBJECT, "production")] = bench.register(SUBJECT, prod, 7)
    result = bench.provider.create(bench.desired(spec, inputs))
    assert result.failed and "production v7" in result.message


def test_model_baseline_compares_with_another_model(bench: Bench, cancer: CancerData) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=False)
    train_cancer(cancer, bench.root / "other.joblib", strong=True)
    bench.declare_model("models.champion", "other.joblib")
    spec = gate(metrics={"roc_auc": {"max_drop": 0.01}}, baseline={"model": "models.champion"})
    result = bench.provider.create(bench.desired(spec, inputs))
    assert result.failed and "models.champion" in result.message


def test_heuristic_majority_baseline(bench: Bench, cancer: CancerData) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    spec = gate(
        metrics={"accuracy": {"max_drop": 0.0}, "roc_auc": {"max_drop": 0.0}},
        baseline={"heuristic": "majority"},
    )
    result = bench.provider.create(bench.desired(spec, inputs))
    assert not result.failed, result.message
    base = result.outputs["evidence"]["baseline"]["metrics"]
    majority = max(cancer.y_eval.mean(), 1 - cancer.y_eval.mean())
    assert base["accuracy"] == pytest.approx(majority)
    assert base["roc_auc"] == 0.5  # a constant score ranks nothing


def test_predictions_file_gives_the_same_metrics_as_the_model(
    bench: Bench, cancer: CancerData
) -> None:
    import joblib

    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    from_model = bench.provider.create(bench.desired(gate(baseline="none"), inputs))
    model = joblib.load(bench.root / "artifacts" / "model.joblib")
    scores = model.predict_proba(cancer.x_eval)[:, 1]
    write_csv(bench.root / "preds.csv", ["score"], [[float(s)] for s in scores])
    spec = gate(baseline="none", predictions="preds.csv")
    from_file = bench.provider.create(bench.desired(spec, inputs))
    assert not from_file.failed, from_file.message
    assert from_file.outputs["evidence"]["metrics"] == pytest.approx(
        from_model.outputs["evidence"]["metrics"], abs=1e-12
    )
    assert from_file.outputs["evidence"]["subject"]["source"] == "predictions"


def test_editing_the_predictions_file_changes_the_fingerprint(bench: Bench) -> None:
    write_csv(bench.root / "preds.csv", ["score"], [[0.1]])
    spec = gate(predictions="preds.csv")
    first = bench.desired(spec).fingerprint
    write_csv(bench.root / "preds.csv", ["score"], [[0.2]])
    assert first is not None and bench.desired(spec).fingerprint != first


def test_missing_dataset_fails_closed_with_evidence(bench: Bench, cancer: CancerData) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    (bench.root / "data" / "eval.csv").unlink()
    result = bench.provider.create(bench.desired(gate(), inputs))
    assert result.failed and result.outputs["passed"] is False
    assert "could not run" in result.message and "eval.csv" in result.message
    assert result.outputs["evidence"]["error"]


def test_missing_label_column_fails_closed(bench: Bench, cancer: CancerData) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    result = bench.provider.create(bench.desired(gate(label="is_cancer"), inputs))
    assert result.failed and "no label column 'is_cancer'" in result.message


def test_unloadable_previous_version_fails_closed(bench: Bench, cancer: CancerData) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    prior = {SUBJECT: {"version": 1, "fingerprint": "sha256:gone"}}
    result = bench.provider.create(bench.desired(gate(), inputs, prior))
    assert result.failed
    assert "baseline previous (models.clf v1) cannot be loaded" in result.message


def test_metadata_only_update_keeps_the_verdict_without_running(
    bench: Bench, cancer: CancerData
) -> None:
    inputs, _ = release(bench, cancer, previous=None, candidate=True)
    desired = bench.desired(gate(), inputs)
    first = bench.provider.create(desired)
    prior = Prior(desired.address, "evals", "release", desired.spec, first.outputs)
    bench.peers.materialized.clear()
    again = bench.provider.update(prior, desired, Change(metadata=True))
    assert again.outputs == first.outputs and not bench.peers.materialized
    rerun = bench.provider.update(prior, desired, Change(behaviour=True))
    assert not rerun.failed and bench.peers.materialized


def test_multiclass_gate_on_iris(tmp_path: Path, bench: Bench) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    names = ["sl", "sw", "pl", "pw"]
    model = LogisticRegression(max_iter=500).fit(x[::2], y[::2])
    joblib.dump(model, bench.root / "iris.joblib")
    write_csv(
        bench.root / "iris.csv", [*names, "species"], [[*r, t] for r, t in zip(x, y, strict=True)]
    )
    bench.peers.specs["datasets.iris"] = {"uri": "iris.csv", "owner": "t"}
    bench.declare_model(SUBJECT, "iris.joblib")
    spec = {
        "subject": SUBJECT,
        "dataset": "datasets.iris",
        "label": "species",
        "metrics": {"accuracy": {"min": 0.9}, "roc_auc": {"min": 0.9}, "f1": {"min": 0.9}},
        "baseline": {"heuristic": "prior"},
    }
    result = bench.provider.create(bench.desired(spec))
    assert not result.failed, result.message
    ev = result.outputs["evidence"]
    assert ev["task"] == "multiclass" and ev["classes"] == ["0", "1", "2"]
    assert ev["baseline"]["metrics"]["accuracy"] == pytest.approx(1 / 3)


def test_regression_gate_on_diabetes_against_the_mean(bench: Bench) -> None:
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    x, y = load_diabetes(return_X_y=True)
    model = Ridge(alpha=0.1).fit(x[:300], y[:300])
    joblib.dump(model, bench.root / "ridge.joblib")
    cols = [f"f{i}" for i in range(x.shape[1])]
    rows = [[*r, t] for r, t in zip(x[300:], y[300:], strict=True)]
    write_csv(bench.root / "diabetes.csv", [*cols, "target"], rows)
    bench.peers.specs["datasets.db"] = {"uri": "diabetes.csv", "owner": "t"}
    bench.declare_model(SUBJECT, "ridge.joblib")
    spec = {
        "subject": SUBJECT,
        "dataset": "datasets.db",
        "label": "target",
        "metrics": {"r2": {"min": 0.2, "max_drop": 0.0}, "rmse": {"max_drop": 0.0}},
        "baseline": {"heuristic": "mean"},
    }
    result = bench.provider.create(bench.desired(spec))
    assert not result.failed, result.message
    ev = result.outputs["evidence"]
    assert ev["task"] == "regression"
    assert ev["metrics"]["r2"] == pytest.approx(r2_score(y[300:], model.predict(x[300:])))
    assert ev["baseline"]["metrics"]["r2"] == pytest.approx(0.0, abs=1e-12)


def test_report_names_everything_a_reviewer_needs(bench: Bench, cancer: CancerData) -> None:
    inputs, prior = release(bench, cancer, previous=True, candidate=True)
    spec = gate(slices={"by": ["site"], "min_rows": 30})
    result = bench.provider.create(bench.desired(spec, inputs, prior))
    report = result.outputs["report"]
    for needle in (
        "evals.release: PASSED",
        "models.clf v2",
        "datasets.eval",
        "previous (models.clf v1)",
        "roc_auc",
        "site=north",
    ):
        assert needle in report
    ev = result.outputs["evidence"]
    assert ev["dataset"]["fingerprint"].startswith("sha256:")
    assert ev["subject"]["fingerprint"] == inputs[SUBJECT]["fingerprint"]
    assert ev["evaluated_at"]


def test_check_reports_a_missing_label_or_slice_column_at_plan_time(bench: Bench) -> None:
    spec = gate(label="is_cancer", slices={"by": ["site", "hospital"]})
    problems = {p.path: p.message for p in bench.provider.check(bench.desired(spec))}
    assert problems == {
        ("label",): "column 'is_cancer' is not in data/eval.csv",
        ("slices", "by", 1): "column 'hospital' is not in data/eval.csv",
    }
    assert bench.provider.check(bench.desired(gate(slices={"by": ["site"]}))) == []


def test_predictions_file_alone_carries_label_and_slices(bench: Bench, cancer: CancerData) -> None:
    rows = [[0.9 if y else 0.2, int(y), "north" if i % 2 else "south"]
            for i, y in enumerate(cancer.y_eval)]  # fmt: skip
    write_csv(bench.root / "preds.csv", ["score", "malignant", "site"], rows)
    bench.declare_model(SUBJECT, "model.joblib")
    spec = gate(slices={"by": ["site"]}, baseline="none", predictions="preds.csv")
    del spec["dataset"]
    result = bench.provider.create(bench.desired(spec))
    assert not result.failed, result.message
    ev = result.outputs["evidence"]
    assert ev["metrics"]["accuracy"] == 1.0 and ev["rows"] == len(cancer.y_eval)
    assert "dataset" not in ev and ev["predictions"]["path"] == "preds.csv"

    # a model baseline needs feature columns, which this file does not have: fail closed
    old = train_cancer(cancer, bench.root / "old.joblib", strong=True)
    prior = {SUBJECT: bench.register(SUBJECT, old, 1)}
    result = bench.provider.create(bench.desired({**spec, "baseline": "previous"}, {}, prior))
    assert result.failed and "needs feature columns" in result.message
