"""Turning a model, a predictions file or a heuristic into ``Scored`` rows.

Models load with joblib (scikit-learn pipelines, pickles) or, for an MLflow
model directory, with MLflow when the ``[mlflow]`` extra is installed. A binary
classifier's hard prediction is ``P(positive) >= decision_threshold``, so the
threshold in the spec is the one judged, not the model's built-in 0.5.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from contract import ProviderError
from providers.gates.ml.labels import Truth, key
from providers.gates.ml.metrics import Scored
from providers.gates.ml.table import Table

#: Columns of a predictions file (docs/evals.md, "Predictions files").
SCORE, PREDICTION, PROBA_PREFIX = "score", "prediction", "proba_"


def load_model(path: Path) -> Any:
    if path.is_dir() and (path / "MLmodel").is_file():
        return _load_mlflow(path)
    if path.suffix.lower() == ".onnx":
        raise ProviderError(
            f"{path.name}: ONNX models are not loaded by the gate; give a `predictions` file "
            "produced by your pipeline instead"
        )
    try:
        import joblib

        return joblib.load(path)
    except Exception as exc:
        raise ProviderError(f"cannot load the model artifact {path}: {exc}") from exc


def _load_mlflow(path: Path) -> Any:
    try:
        import mlflow.pyfunc
    except ImportError:
        raise ProviderError(
            f"{path} is an MLflow model: loading it needs pip install 'mlxctl[mlflow]'"
        ) from None
    flavors = (path / "MLmodel").read_text()
    try:
        if "sklearn:" in flavors:
            import mlflow.sklearn

            return mlflow.sklearn.load_model(str(path))
        return mlflow.pyfunc.load_model(str(path))
    except Exception as exc:
        raise ProviderError(f"cannot load the MLflow model {path}: {exc}") from exc


def model_classes(model: Any) -> list[str] | None:
    classes = getattr(model, "classes_", None)
    return None if classes is None else [key(c) for c in classes]


def feature_columns(
    model: Any, declared: Sequence[str] | None, table: Table, exclude: set[str]
) -> list[str]:
    """The model's ``feature_names``, else the spec's ``features``, else ``feature_names_in_``,
    else every column that is not the label, a slice or a prediction."""
    for names in (getattr(model, "feature_names", None), declared):
        if names:
            return [str(n) for n in names]
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None:
        return [str(n) for n in fitted]
    return [c for c in table.columns if c not in exclude and not _is_prediction(c)]


def _is_prediction(column: str) -> bool:
    return column in (SCORE, PREDICTION) or column.startswith(PROBA_PREFIX)


def matrix(table: Table, columns: Sequence[str]) -> Any:
    import numpy as np

    if not columns:
        raise ProviderError(f"{table.source}: no feature columns to give the model")
    return np.column_stack([table.numeric(c, "feature") for c in columns])


def score_model(model: Any, x: Any, truth: Truth, threshold: float, who: str) -> Scored:
    import numpy as np

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        try:
            if truth.task == "regression":
                pred = np.asarray(model.predict(x), dtype=float).reshape(-1)
                return Scored("regression", truth.y, pred)
            if hasattr(model, "predict_proba"):
                proba = np.asarray(model.predict_proba(x), dtype=float)
                classes = model_classes(model) or list(truth.classes)
                return finish(_from_proba(proba, classes, truth, who), threshold)
            raw = np.asarray(model.predict(x)).reshape(-1)
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(f"{who} failed to predict: {type(exc).__name__}: {exc}") from exc
    return _from_labels(list(raw), truth, who)


def _from_proba(proba: Any, classes: Sequence[str], truth: Truth, who: str) -> Scored:
    import numpy as np

    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ProviderError(f"{who}: predict_proba gave shape {proba.shape} for classes {classes}")
    if truth.task == "binary":
        if truth.positive not in classes:
            raise ProviderError(
                f"{who}: the positive class {truth.positive} is not among its classes {classes}"
            )
        p = proba[:, list(classes).index(cast(Any, truth.positive))]
        return Scored("binary", truth.y, np.zeros(0), p, truth.classes)
    index = {k: i for i, k in enumerate(truth.classes)}
    missing = [c for c in classes if c not in index]
    if missing:
        raise ProviderError(f"{who} predicts classes {missing} that the eval labels do not have")
    aligned = np.zeros((proba.shape[0], len(truth.classes)))
    aligned[:, [index[c] for c in classes]] = proba
    return Scored("multiclass", truth.y, np.argmax(aligned, axis=1), aligned, truth.classes)


def _from_labels(raw: list[Any], truth: Truth, who: str) -> Scored:
    import numpy as np

    keys = [key(v) for v in raw]
    if truth.task == "binary":
        pred = np.fromiter((k == truth.positive for k in keys), dtype=np.int64, count=len(keys))
        return Scored("binary", truth.y, pred, None, truth.classes)
    index = {k: i for i, k in enumerate(truth.classes)}
    unknown = sorted(set(keys) - set(index))
    if unknown:
        raise ProviderError(f"{who} predicts classes {unknown} that the eval labels do not have")
    pred = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
    return Scored("multiclass", truth.y, pred, None, truth.classes)


def finish(s: Scored, threshold: float) -> Scored:
    """Binary hard predictions from probabilities, at the spec's decision threshold."""
    import numpy as np

    if s.proba is not None and s.proba.size:
        low, high = float(np.nanmin(s.proba)), float(np.nanmax(s.proba))
        if low < 0 or high > 1 or np.isnan(s.proba).any():
            raise ProviderError(
                f"probabilities must lie in [0, 1]; got values from {low} to {high}"
                + (" and NaN" if np.isnan(s.proba).any() else "")
            )
    if s.task == "binary" and s.proba is not None and s.pred.shape[0] != s.rows:
        s.pred = (s.proba >= threshold).astype("int64")
    return s


def classes_of_predictions(table: Table) -> list[str] | None:
    cols = [c for c in table.columns if c.startswith(PROBA_PREFIX)]
    return [key(c.removeprefix(PROBA_PREFIX)) for c in cols] or None


def score_predictions(table: Table, truth: Truth, threshold: float, who: str) -> Scored:
    """Scores from a predictions file: ``score``, ``proba_<class>`` or ``prediction``."""
    import numpy as np

    if truth.task == "regression":
        return Scored("regression", truth.y, table.numeric(PREDICTION, "prediction"))
    probas = [c for c in table.columns if c.startswith(PROBA_PREFIX)]
    if truth.task == "binary" and SCORE in table.columns:
        p = table.numeric(SCORE, "score")
        return finish(Scored("binary", truth.y, np.zeros(0), p, truth.classes), threshold)
    if probas:
        proba = np.column_stack([table.numeric(c, "probability") for c in probas])
        classes = [key(c.removeprefix(PROBA_PREFIX)) for c in probas]
        return finish(_from_proba(proba, classes, truth, who), threshold)
    if PREDICTION in table.columns:
        return _from_labels(table.columns[PREDICTION], truth, who)
    raise ProviderError(
        f"{table.source}: a predictions file needs a `score`, `proba_<class>` or "
        "`prediction` column"
    )


def heuristic(kind: str, value: Any, truth: Truth) -> Scored:
    """scikit-learn's DummyClassifier / DummyRegressor, fitted on the eval labels."""
    import numpy as np

    n = truth.rows
    if truth.task == "regression":
        if kind not in ("mean", "median", "constant"):
            raise ProviderError(f"heuristic {kind!r} is for classification; use mean or median")
        if kind == "mean":
            level = float(np.mean(truth.y))
        elif kind == "median":
            level = float(np.median(truth.y))
        else:
            level = float(value)
        return Scored("regression", truth.y, np.full(n, level))
    if kind in ("mean", "median"):
        raise ProviderError(f"heuristic {kind!r} is for regression; use majority or prior")
    k = len(truth.classes) if truth.task == "multiclass" else 2
    counts = np.bincount(truth.y, minlength=k).astype(float)
    prior = counts / n
    if kind == "constant":
        wanted = key(value)
        if truth.task == "binary":
            cls = 1 if wanted == truth.positive else 0
        elif wanted in truth.classes:
            cls = truth.classes.index(wanted)
        else:
            raise ProviderError(f"heuristic constant {value!r} is not one of {truth.classes}")
    else:
        cls = int(np.argmax(counts))
    probs = prior if kind == "prior" else np.eye(k)[cls]
    pred = np.full(n, cls, dtype=np.int64)
    if truth.task == "binary":
        return Scored("binary", truth.y, pred, np.full(n, float(probs[1])), truth.classes)
    return Scored("multiclass", truth.y, pred, np.tile(probs, (n, 1)), truth.classes)
