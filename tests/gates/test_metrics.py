"""Every gate metric equals scikit-learn's on the same inputs, to 1e-9."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.preprocessing import label_binarize

from providers.gates.ml.metrics import CLASSIFICATION, Options, Scored, compute

TOL = 1e-9


def _binary(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> Scored:
    return Scored("binary", y, (p >= threshold).astype(np.int64), p, ("0", "1"))


def _sk_ece(y: np.ndarray, p: np.ndarray) -> float:
    """ECE from scikit-learn's calibration curve: bin weights times |observed - predicted|."""
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], p)
    counts = np.bincount(bins, minlength=10)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(p) * np.abs(prob_true - prob_pred)))


def _sk_binary(y: np.ndarray, p: np.ndarray, pred: np.ndarray, cost: tuple) -> dict:
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    c_fp, c_fn, c_tp, c_tn = cost
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, zero_division=0),
            "recall": skm.recall_score(y, pred, zero_division=0),
            "f1": skm.f1_score(y, pred, zero_division=0),
            "roc_auc": skm.roc_auc_score(y, p),
            "pr_auc": skm.average_precision_score(y, p),
            "log_loss": skm.log_loss(y, p, labels=[0, 1]),
            "brier": skm.brier_score_loss(y, p),
            "ece": _sk_ece(y, p),
            "cost": (c_fp * fp + c_fn * fn + c_tp * tp + c_tn * tn) / len(y),
        }


def _assert_close(ours: dict, theirs: dict) -> None:
    assert set(ours) >= set(theirs)
    for name, expected in theirs.items():
        assert ours[name] == pytest.approx(expected, abs=TOL, rel=0), name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_equal_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5000
    y = rng.integers(0, 2, n)
    # rounded scores make many ties, the hard case for ranking metrics; include 0 and 1
    p = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.25), 0, 1), 2)
    cost = (5.0, 1.0, 0.0, 0.0) if seed else (1.0, 1.0, 0.0, 0.0)
    s = _binary(y, p, 0.5)
    ours = compute(CLASSIFICATION, s, Options(cost=cost))
    _assert_close(ours, _sk_binary(y, p, s.pred, cost))


def test_binary_metrics_on_a_real_model(cancer) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=5000).fit(cancer.x_train, cancer.y_train)
    p = model.predict_proba(cancer.x_eval)[:, 1]
    for threshold in (0.3, 0.5, 0.8):
        s = _binary(cancer.y_eval, p, threshold)
        ours = compute(CLASSIFICATION, s, Options(cost=(2.0, 7.0, 0.5, 0.0)))
        _assert_close(ours, _sk_binary(cancer.y_eval, p, s.pred, (2.0, 7.0, 0.5, 0.0)))


def test_slices_equal_sklearn_on_each_subset() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    y = rng.integers(0, 2, n)
    p = rng.random(n) * 0.6 + 0.4 * y
    site = rng.integers(0, 5, n)
    s = _binary(y, p)
    for k in range(5):
        mask = site == k
        sub = s.subset(mask)
        ours = compute(CLASSIFICATION, sub)
        _assert_close(ours, _sk_binary(y[mask], p[mask], sub.pred, (1.0, 1.0, 0.0, 0.0)))


def test_probabilities_at_the_clip_edges() -> None:
    y = np.array([0, 1, 1, 0, 1, 0])
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-17])  # confident and wrong: log loss is clipped
    s = _binary(y, p)
    _assert_close(compute(CLASSIFICATION, s), _sk_binary(y, p, s.pred, (1.0, 1.0, 0.0, 0.0)))


@pytest.mark.parametrize("average", ["macro", "weighted", "micro"])
def test_multiclass_metrics_equal_sklearn(average: str) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_iris(return_X_y=True)
    x_tr, x_ev, y_tr, y_ev = train_test_split(x, y, test_size=0.5, random_state=3, stratify=y)
    model = LogisticRegression(max_iter=200, C=0.05).fit(x_tr[:, :2], y_tr)  # weak on purpose
    proba = model.predict_proba(x_ev[:, :2])
    s = Scored("multiclass", y_ev, np.argmax(proba, axis=1), proba, ("0", "1", "2"))
    names = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier")
    ours = compute((*names, "ece"), s, Options(average=average))
    pred = np.argmax(proba, axis=1)
    theirs = {
        "accuracy": skm.accuracy_score(y_ev, pred),
        "precision": skm.precision_score(y_ev, pred, average=average, zero_division=0),
        "recall": skm.recall_score(y_ev, pred, average=average, zero_division=0),
        "f1": skm.f1_score(y_ev, pred, average=average, zero_division=0),
        "roc_auc": skm.roc_auc_score(y_ev, proba, multi_class="ovr", average="macro"),
        "pr_auc": skm.average_precision_score(
            label_binarize(y_ev, classes=[0, 1, 2]), proba, average="macro"
        ),
        "log_loss": skm.log_loss(y_ev, proba),
        "brier": skm.brier_score_loss(y_ev, proba),
    }
    _assert_close(ours, theirs)
    # top-label ECE: confidence = max probability, outcome = the top class is right
    conf = proba.max(axis=1)
    correct = (pred == y_ev).astype(int)
    assert ours["ece"] == pytest.approx(_sk_ece(correct, conf), abs=TOL)


def test_multiclass_prf_skips_classes_absent_from_truth_and_predictions() -> None:
    y = np.array([0, 0, 1, 1, 0])
    pred = np.array([0, 1, 1, 1, 0])
    s = Scored("multiclass", y, pred, None, ("0", "1", "2"))  # class 2 never occurs
    ours = compute(("precision", "recall", "f1"), s)
    assert ours["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert ours["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert ours["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))


def test_regression_metrics_equal_sklearn() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    pred = Ridge(alpha=1.0).fit(x[:300], y[:300]).predict(x[300:])
    s = Scored("regression", y[300:], pred)
    ours = compute(("mae", "rmse", "r2"), s)
    _assert_close(
        ours,
        {
            "mae": skm.mean_absolute_error(y[300:], pred),
            "rmse": skm.root_mean_squared_error(y[300:], pred),
            "r2": skm.r2_score(y[300:], pred),
        },
    )


def test_r2_of_a_constant_truth_follows_sklearn() -> None:
    y = np.full(4, 3.0)
    exact = compute(("r2",), Scored("regression", y, y.copy()))["r2"]
    off = compute(("r2",), Scored("regression", y, y + 1))["r2"]
    assert (exact, off) == (skm.r2_score(y, y), skm.r2_score(y, y + 1)) == (1.0, 0.0)


def test_undefined_ranking_metrics_are_none_not_a_number() -> None:
    y = np.zeros(10, dtype=np.int64)
    p = np.linspace(0, 1, 10)
    ours = compute(("roc_auc", "pr_auc", "recall"), _binary(y, p))
    assert ours["roc_auc"] is None and ours["pr_auc"] is None
    assert ours["recall"] == 0.0  # scikit-learn's zero_division default


def test_metric_for_the_wrong_task_is_an_error() -> None:
    s = Scored("regression", np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="does not apply to a regression task"):
        compute(("roc_auc",), s)
    hard = Scored("binary", np.array([0, 1]), np.array([0, 1]), None, ("0", "1"))
    with pytest.raises(ValueError, match="needs probabilities"):
        compute(("log_loss",), hard)
