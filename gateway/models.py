"""Loading a model variant by its flavor, and predicting from a scoring request body.

* ``sklearn``: a joblib/pickle file (``model.joblib``, ``model.pkl``); an MLflow model
  directory (one holding ``MLmodel``) is loaded through ``mlflow.pyfunc`` instead.
* ``pyfunc`` / ``mlflow`` / ``python_function``: an MLflow model directory through
  ``mlflow.pyfunc.load_model`` (needs the ``mlflow`` extra); its input schema and MLflow's own
  scoring-server parser decide what a request may hold.

A scikit-learn model's columns come from its ``feature_names_in_`` (set when it was fitted on
a DataFrame) and its width from ``n_features_in_``; requests are reordered to that order and
checked (missing, unknown and non-numeric columns are ``InputError``s naming them). Numeric
models get a float64 array, not a DataFrame: a one-row request then costs microseconds, and
pandas is not needed. Pipelines that take strings (a ``ColumnTransformer`` or an encoder
first) get a DataFrame with object columns and judge their input themselves.

``predict`` runs in a worker thread (the gateway's pool), never on the event loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from gateway.inputs import InputError, align, check_numeric, nan_columns, parse

# Numeric models get arrays in feature_names_in_'s order: the names are checked here already.
warnings.filterwarnings("ignore", message="X does not have valid feature names")

SKLEARN_FLAVORS = frozenset({"sklearn", "scikit-learn", "joblib"})
MLFLOW_FLAVORS = frozenset({"pyfunc", "python_function", "mlflow"})


class LoadError(Exception):
    """A variant's model cannot be loaded; the message is one line."""


class ModelFailure(Exception):
    """The model raised on an input it was given (not the caller's fault); one line."""


class Servable(Protocol):
    @property
    def flavor(self) -> str: ...

    def predict_doc(self, doc: Any) -> list[Any]:
        """Predict for a decoded scoring request; ``InputError`` / ``ModelFailure``."""
        ...


def predict_body(model: Servable, body: bytes) -> tuple[Any, list[Any]]:
    """Decode ``body`` and predict: ``(request document, predictions)``. Runs in a worker."""
    doc = decode(body)
    return doc, model.predict_doc(doc)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}") from None


def load(flavor: str | None, artifact: str, root: Path) -> Servable:
    """Load ``artifact`` (absolute, ``file://``, or relative to the spec dir) as ``flavor``."""
    path = Path(artifact.removeprefix("file://"))
    if not path.is_absolute():
        path = root / path
    if not path.exists():
        raise LoadError(f"artifact {path} does not exist")
    is_mlflow_dir = path.is_dir() and (path / "MLmodel").is_file()
    name = (flavor or ("pyfunc" if is_mlflow_dir else "sklearn")).lower()
    if name in MLFLOW_FLAVORS or (name in SKLEARN_FLAVORS and is_mlflow_dir):
        if not is_mlflow_dir:
            raise LoadError(f"artifact {path} is not an MLflow model directory (no MLmodel file)")
        return MlflowModel.load(path)
    if name in SKLEARN_FLAVORS:
        if path.is_dir():
            found = sorted([*path.glob("*.joblib"), *path.glob("*.pkl")])
            if len(found) != 1:
                raise LoadError(
                    f"artifact {path} is a directory; expected one .joblib/.pkl file in it, "
                    f"found {len(found)}"
                )
            path = found[0]
        return SklearnModel.load(path)
    raise LoadError(
        f"flavor {flavor!r} cannot be served by the embedded gateway (it serves sklearn files "
        "and MLflow pyfunc directories)"
    )


# -- scikit-learn ---------------------------------------------------------------------------------
def _takes_objects(model: Any) -> bool:
    """A pipeline whose first step encodes strings (it must get a DataFrame as sent)."""
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
    except ImportError:  # pragma: no cover - a pickled sklearn model needs sklearn to load
        return False
    first = model.steps[0][1] if isinstance(model, Pipeline) and model.steps else model
    return isinstance(first, ColumnTransformer | OneHotEncoder | OrdinalEncoder)


@dataclass(frozen=True)
class SklearnModel:
    model: Any
    path: Path
    features: tuple[str, ...] | None
    n_features: int | None
    numeric: bool
    flavor: str = "sklearn"

    @classmethod
    def load(cls, path: Path) -> SklearnModel:
        try:
            import joblib
        except ImportError as exc:
            raise LoadError(f"cannot load {path}: {exc} (pip install 'mlxctl[ml]')") from None
        try:
            model = joblib.load(path)
        except Exception as exc:
            raise LoadError(
                f"cannot load {path} as a scikit-learn model: {one_line(exc)}"
            ) from None
        if not callable(getattr(model, "predict", None)):
            raise LoadError(f"{path} holds a {type(model).__name__}, which has no predict()")
        names = getattr(model, "feature_names_in_", None)
        features = tuple(str(n) for n in names) if names is not None else None
        width = getattr(model, "n_features_in_", None)
        return cls(
            model,
            path,
            features,
            int(width) if width is not None else (len(features) if features else None),
            not _takes_objects(model),
        )

    @property
    def batchable(self) -> bool:
        """Rows are predicted one by one and arrive as float arrays of one width, so several
        requests' rows can go to one ``predict`` (``gateway.batching``)."""
        return self.numeric and self.n_features is not None

    def predict_doc(self, doc: Any) -> list[Any]:
        columns, rows = self.checked_rows(doc)
        return self.predict_rows(columns, rows)

    def checked_rows(self, doc: Any) -> tuple[list[str] | None, list[list[Any]]]:
        """A request's rows in the model's column order, checked; ``InputError`` if not."""
        frame = parse(doc)
        if frame.params:
            raise InputError("params are not supported by a scikit-learn model")
        columns, rows = align(frame, self.features, self.n_features)
        if self.numeric:
            check_numeric(frame.format, columns, rows)
        return columns, rows

    def predict_rows(self, columns: list[str] | None, rows: list[list[Any]]) -> list[Any]:
        if self.numeric:
            import numpy as np

            x: Any = np.asarray(rows, dtype=np.float64)
        else:
            x = _object_frame(columns, rows)
        try:
            out = self.model.predict(x)
        except (ValueError, TypeError, KeyError) as exc:
            hint = ""
            nulls = nan_columns(columns, rows)
            if nulls:
                hint = f" (null values in column{'s' if len(nulls) > 1 else ''} {', '.join(nulls)})"
            raise InputError(f"the model refused the input: {one_line(exc)}{hint}") from None
        except Exception as exc:
            raise ModelFailure(f"the model failed: {one_line(exc)}") from None
        return _jsonable(out)

    def predict_many(self, parts: Sequence[list[list[Any]]]) -> list[list[Any]] | None:
        """Several requests' checked rows in one ``predict``: each request's predictions, in
        order; None when the batch cannot answer for each (the model refused it, or did not
        give one prediction per row): the caller then predicts each request alone, so that
        one bad request fails alone."""
        import numpy as np

        rows = [row for part in parts for row in part]
        try:
            out = self.model.predict(np.asarray(rows, dtype=np.float64))
        except Exception:
            return None
        if not isinstance(out, np.ndarray) or out.ndim == 0 or len(out) != len(rows):
            return None
        answers, start = [], 0
        for part in parts:
            answers.append(_jsonable(out[start : start + len(part)]))
            start += len(part)
        return answers


def _object_frame(columns: Sequence[str] | None, rows: list[list[Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ModelFailure(
            "this pipeline needs pandas to take its columns: pip install pandas"
        ) from None
    return pd.DataFrame(rows, columns=list(columns) if columns is not None else None)


def _jsonable(out: Any) -> list[Any]:
    tolist = getattr(out, "tolist", None)
    if callable(tolist):  # numpy arrays, pandas Series
        value = tolist()
        return value if isinstance(value, list) else [value]
    if hasattr(out, "to_dict"):  # a DataFrame: records, as MLflow answers
        return list(out.to_dict(orient="records"))
    return list(out)


# -- MLflow pyfunc ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MlflowModel:
    model: Any
    path: Path
    schema: Any
    flavor: str = "pyfunc"

    @classmethod
    def load(cls, path: Path) -> MlflowModel:
        try:
            import mlflow.pyfunc
        except ImportError:
            raise LoadError(
                f"{path} is an MLflow model: serving it needs mlflow (pip install 'mlxctl[mlflow]')"
            ) from None
        try:
            model = mlflow.pyfunc.load_model(str(path))
        except Exception as exc:
            raise LoadError(f"cannot load the MLflow model {path}: {one_line(exc)}") from None
        try:
            schema = model.metadata.get_input_schema()
        except Exception:
            schema = None
        return cls(model, path, schema)

    def predict_doc(self, doc: Any) -> list[Any]:
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc.scoring_server import infer_and_parse_data
        from mlflow.utils.proto_json_utils import _get_jsonable_obj

        parse(doc)  # the same format errors as a scikit-learn model's, in the same words
        data_part = {k: v for k, v in doc.items() if k != "params"}
        try:
            data = infer_and_parse_data(data_part, self.schema)
        except MlflowException as exc:
            raise InputError(_mlflow_message(exc)) from None
        except Exception as exc:
            raise InputError(f"cannot read the input: {one_line(exc)}") from None
        try:
            out = self.model.predict(data, params=doc.get("params"))
        except MlflowException as exc:
            raise InputError(_mlflow_message(exc)) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"the model refused the input: {one_line(exc)}") from None
        except Exception as exc:
            raise ModelFailure(f"the model failed: {one_line(exc)}") from None
        value = _get_jsonable_obj(out, pandas_orient="records")
        return value if isinstance(value, list) else [value]


def _mlflow_message(exc: Any) -> str:
    """MLflow's schema errors quote the whole input frame; keep the reason, on one line."""
    text = str(getattr(exc, "message", exc))
    if "Error: " in text:
        reason = " ".join(text.rsplit("Error: ", 1)[1].split())
        return f"the model's signature refused the input: {reason}"[:500]
    return " ".join(text.split())[:500]
