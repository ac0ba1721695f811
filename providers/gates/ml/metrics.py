"""Gate metrics in vectorised numpy, equal to scikit-learn's on the same inputs.

Each function takes a ``Scored`` (truth, hard predictions, probabilities) and
returns a float, or ``None`` when the metric is undefined on those rows (ROC AUC
with one class only, PR AUC without positives): an undefined metric is never
silently replaced by a number. Definitions, and where they come from, are in
``docs/evals.md``; ``tests/gates/test_metrics.py`` checks each against
``sklearn.metrics`` to 1e-9.

Ranking metrics (ROC AUC, PR AUC) share one sort of the scores per row set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from specs.evals import LOWER_IS_BETTER

CLASSIFICATION: tuple[str, ...] = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "cost",
)
REGRESSION = ("mae", "rmse", "r2")
#: Metrics that need probabilities (not only hard predictions).
PROBABILISTIC = frozenset({"roc_auc", "pr_auc", "log_loss", "brier", "ece"})
#: ``calibration_curve(strategy="uniform")`` bins: [0, .1], (.1, .2], …, (.9, 1].
ECE_BINS = 10


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


@dataclass
class Scored:
    """One model's predictions on some rows.

    ``task`` is binary, multiclass or regression. Binary: ``y``/``pred`` are 0/1
    and ``proba`` is P(positive), 1-D. Multiclass: ``y``/``pred`` are class
    indices and ``proba`` is (rows, classes). Regression: floats, no ``proba``.
    """

    task: str
    y: Any
    pred: Any
    proba: Any = None
    classes: tuple[Any, ...] = ()
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def rows(self) -> int:
        return int(self.y.shape[0])

    def subset(self, mask: Any) -> Scored:
        proba = None if self.proba is None else self.proba[mask]
        return Scored(self.task, self.y[mask], self.pred[mask], proba, self.classes)


@dataclass(frozen=True)
class Options:
    average: str = "macro"
    cost: tuple[float, float, float, float] = (1.0, 1.0, 0.0, 0.0)  # fp, fn, tp, tn


def compute(names: Iterable[str], s: Scored, opts: Options | None = None) -> dict[str, Any]:
    """The requested metrics on ``s``; a metric the task cannot have raises ``ValueError``."""
    opts = opts or Options()
    out: dict[str, Any] = {}
    for name in names:
        fn = _TABLE.get((s.task, name))
        if fn is None:
            raise ValueError(f"metric {name!r} does not apply to a {s.task} task")
        if name in PROBABILISTIC and s.proba is None:
            raise ValueError(
                f"metric {name!r} needs probabilities, and the model (or the predictions "
                "file) gives only hard predictions"
            )
        if s.rows == 0:
            out[name] = None
            continue
        out[name] = fn(s, opts)
    return out


# -- binary ----------------------------------------------------------------------------------
def _binary_counts(s: Scored) -> tuple[int, int, int, int]:
    import numpy as np

    if "counts" not in s._cache:
        pos, ppos = s.y == 1, s.pred == 1
        tp = int(np.count_nonzero(pos & ppos))
        fp = int(np.count_nonzero(ppos)) - tp
        fn = int(np.count_nonzero(pos)) - tp
        s._cache["counts"] = (tp, fp, fn, s.rows - tp - fp - fn)
    counts: tuple[int, int, int, int] = s._cache["counts"]
    return counts


def _div(a: float, b: float) -> float:
    """scikit-learn's ``zero_division`` default: 0 when the denominator is 0."""
    return float(a) / float(b) if b else 0.0


def _b_accuracy(s: Scored, _o: Options) -> float:
    tp, _fp, _fn, tn = _binary_counts(s)
    return (tp + tn) / s.rows


def _b_precision(s: Scored, _o: Options) -> float:
    tp, fp, _fn, _tn = _binary_counts(s)
    return _div(tp, tp + fp)


def _b_recall(s: Scored, _o: Options) -> float:
    tp, _fp, fn, _tn = _binary_counts(s)
    return _div(tp, tp + fn)


def _b_f1(s: Scored, _o: Options) -> float:
    tp, fp, fn, _tn = _binary_counts(s)
    return _div(2 * tp, 2 * tp + fp + fn)


def _b_cost(s: Scored, o: Options) -> float:
    tp, fp, fn, tn = _binary_counts(s)
    c_fp, c_fn, c_tp, c_tn = o.cost
    return (c_fp * fp + c_fn * fn + c_tp * tp + c_tn * tn) / s.rows


@dataclass(frozen=True)
class _Groups:
    """Scores sorted ascending and grouped by tied value: positives and rows per group."""

    pos: Any
    count: Any
    cum_pos: Any  # positives in this group and every lower one
    cum_count: Any  # rows in this group and every lower one
    n_pos: int
    n_neg: int


def _groups(y: Any, score: Any) -> _Groups:
    import numpy as np

    order = np.argsort(score)  # stability is not needed: ties are grouped below
    s_sorted = score[order]
    y_sorted = y[order].astype(np.int64, copy=False)
    last = np.flatnonzero(np.diff(s_sorted))
    last = np.append(last, s_sorted.shape[0] - 1)
    cpos = np.cumsum(y_sorted)[last]
    pos = np.diff(cpos, prepend=0)
    count = np.diff(last + 1, prepend=0)
    n_pos = int(cpos[-1])
    return _Groups(pos, count, cpos, last + 1, n_pos, int(s_sorted.shape[0]) - n_pos)


def _ranked(s: Scored, key: str, y: Any, score: Any) -> _Groups:
    if key not in s._cache:
        s._cache[key] = _groups(y, score)
    groups: _Groups = s._cache[key]
    return groups


def _auc(g: _Groups) -> float | None:
    """Mann-Whitney U (ties count a half), exact in integers: equals the ROC curve's area."""
    import numpy as np

    if g.n_pos == 0 or g.n_neg == 0:
        return None
    neg = g.count - g.pos
    neg_below = np.cumsum(neg) - neg
    twice = 2 * int(np.dot(g.pos, neg_below)) + int(np.dot(g.pos, neg))
    return twice / (2 * g.n_pos * g.n_neg)


def _ap(g: _Groups) -> float | None:
    """Average precision: sum over thresholds of (recall step) x precision, as scikit-learn."""
    import numpy as np

    if g.n_pos == 0:
        return None
    n = g.n_pos + g.n_neg
    # at the threshold of group j, rows scoring >= it: the group and every higher one
    precision = (g.n_pos - g.cum_pos + g.pos) / (n - g.cum_count + g.count)
    return float(np.dot(g.pos, precision)) / g.n_pos


def _b_roc_auc(s: Scored, _o: Options) -> float | None:
    return _auc(_ranked(s, "groups", s.y, s.proba))


def _b_pr_auc(s: Scored, _o: Options) -> float | None:
    return _ap(_ranked(s, "groups", s.y, s.proba))


def _b_log_loss(s: Scored, _o: Options) -> float:
    import numpy as np

    eps = np.finfo(np.float64).eps
    p = np.where(s.y == 1, s.proba, 1.0 - s.proba)  # probability given to the true class
    return float(-np.mean(np.log(np.clip(p, eps, 1 - eps))))


def _b_brier(s: Scored, _o: Options) -> float:
    import numpy as np

    return float(np.mean((s.y - s.proba) ** 2))


def _ece(confidence: Any, outcome: Any) -> float:
    import numpy as np

    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)[1:-1]
    bins = np.searchsorted(edges, confidence)
    gap = np.bincount(bins, weights=confidence, minlength=ECE_BINS) - np.bincount(
        bins, weights=outcome.astype(np.float64), minlength=ECE_BINS
    )
    return float(np.sum(np.abs(gap)) / confidence.shape[0])


def _b_ece(s: Scored, _o: Options) -> float:
    return _ece(s.proba, s.y)


# -- multiclass ----------------------------------------------------------------------------
def _confusion(s: Scored) -> Any:
    import numpy as np

    if "confusion" not in s._cache:
        k = len(s.classes)
        flat = np.bincount(s.y * k + s.pred, minlength=k * k)
        s._cache["confusion"] = flat.reshape(k, k)
    return s._cache["confusion"]


def _m_accuracy(s: Scored, _o: Options) -> float:
    import numpy as np

    return float(np.trace(_confusion(s))) / s.rows


def _m_prf(s: Scored, o: Options, which: str) -> float:
    """Per-class precision/recall/F1 over the labels present in truth or predictions."""
    import numpy as np

    cm = _confusion(s)
    tp = np.diag(cm).astype(np.float64)
    true_sum, pred_sum = cm.sum(axis=1), cm.sum(axis=0)
    present = (true_sum + pred_sum) > 0
    tp, true_sum, pred_sum = tp[present], true_sum[present], pred_sum[present]
    if o.average == "micro":
        tp, true_sum, pred_sum = (
            tp.sum(keepdims=True),
            true_sum.sum(keepdims=True),
            pred_sum.sum(keepdims=True),
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        if which == "precision":
            per = np.where(pred_sum > 0, tp / pred_sum, 0.0)
        elif which == "recall":
            per = np.where(true_sum > 0, tp / true_sum, 0.0)
        else:
            denom = true_sum + pred_sum
            per = np.where(denom > 0, 2 * tp / denom, 0.0)
    if o.average == "weighted":
        total = true_sum.sum()
        return float(np.dot(per, true_sum) / total) if total else 0.0
    return float(np.mean(per))


def _one_vs_rest(s: Scored, fn: Callable[[_Groups], float | None]) -> float | None:
    """Macro average over the classes that occur in the truth."""
    import numpy as np

    values = []
    for k in range(len(s.classes)):
        y_k = s.y == k
        if not y_k.any():
            continue
        value = fn(_ranked(s, f"groups{k}", y_k, s.proba[:, k]))
        if value is None:
            return None
        values.append(value)
    return float(np.mean(values)) if values else None


def _m_log_loss(s: Scored, _o: Options) -> float:
    import numpy as np

    eps = np.finfo(np.float64).eps
    p = s.proba[np.arange(s.rows), s.y]
    return float(-np.mean(np.log(np.clip(p, eps, 1 - eps))))


def _m_brier(s: Scored, _o: Options) -> float:
    """Multiclass Brier: sum over classes, not halved (scikit-learn's default for 3+ classes)."""
    import numpy as np

    onehot = np.zeros_like(s.proba)
    onehot[np.arange(s.rows), s.y] = 1.0
    return float(np.mean(np.sum((onehot - s.proba) ** 2, axis=1)))


def _m_ece(s: Scored, _o: Options) -> float:
    """Top-label ECE: confidence = the highest probability, outcome = that class is right."""
    import numpy as np

    top = np.argmax(s.proba, axis=1)
    return _ece(s.proba[np.arange(s.rows), top], top == s.y)


# -- regression ------------------------------------------------------------------------------
def _mae(s: Scored, _o: Options) -> float:
    import numpy as np

    return float(np.mean(np.abs(s.y - s.pred)))


def _rmse(s: Scored, _o: Options) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((s.y - s.pred) ** 2)))


def _r2(s: Scored, _o: Options) -> float:
    """1 - SS_res / SS_tot; a constant truth gives 1 if predicted exactly, else 0 (sklearn)."""
    import numpy as np

    ss_res = float(np.sum((s.y - s.pred) ** 2))
    ss_tot = float(np.sum((s.y - np.mean(s.y)) ** 2))
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


_TABLE: dict[tuple[str, str], Callable[[Scored, Options], Any]] = {
    ("binary", "accuracy"): _b_accuracy,
    ("binary", "precision"): _b_precision,
    ("binary", "recall"): _b_recall,
    ("binary", "f1"): _b_f1,
    ("binary", "roc_auc"): _b_roc_auc,
    ("binary", "pr_auc"): _b_pr_auc,
    ("binary", "log_loss"): _b_log_loss,
    ("binary", "brier"): _b_brier,
    ("binary", "ece"): _b_ece,
    ("binary", "cost"): _b_cost,
    ("multiclass", "accuracy"): _m_accuracy,
    ("multiclass", "precision"): lambda s, o: _m_prf(s, o, "precision"),
    ("multiclass", "recall"): lambda s, o: _m_prf(s, o, "recall"),
    ("multiclass", "f1"): lambda s, o: _m_prf(s, o, "f1"),
    ("multiclass", "roc_auc"): lambda s, _o: _one_vs_rest(s, _auc),
    ("multiclass", "pr_auc"): lambda s, _o: _one_vs_rest(s, _ap),
    ("multiclass", "log_loss"): _m_log_loss,
    ("multiclass", "brier"): _m_brier,
    ("multiclass", "ece"): _m_ece,
    ("regression", "mae"): _mae,
    ("regression", "rmse"): _rmse,
    ("regression", "r2"): _r2,
}


def applicable(task: str) -> tuple[str, ...]:
    """Metrics a task has, in the canonical order."""
    return tuple(m for m in (*CLASSIFICATION, *REGRESSION) if (task, m) in _TABLE)
