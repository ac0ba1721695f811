"""Loading a model variant by its flavor, and predicting from a scoring request body.

* ``sklearn``: a joblib/pickle file (``model.joblib``, ``model.pkl``), or a directory holding
  exactly one; an MLflow model directory (one holding ``MLmodel``) goes through
  ``mlflow.pyfunc`` instead.
* ``pyfunc`` / ``mlflow`` / ``python_function``: an MLflow model directory through
  ``mlflow.pyfunc.load_model`` (needs the ``mlflow`` extra); its signature and MLflow's own
  scoring-server parser decide what a request may hold.

**Only the gated bytes load.** ``load`` reads the artifact once into memory, checks its digest
against the one mlx recorded (``common.digests``) and loads *those bytes*: a pickle is
unpickled from memory, an MLflow directory is written from memory into a private temporary
directory and loaded from there. Bytes that differ — an artifact replaced under the gateway's
artifact directory — are refused before any of them is unpickled (``LoadError``).

**Failures belong to whoever caused them.** A request is checked against the version's input
schema (``gateway.inputs.checked``: names, width, types, nulls) before the model sees it; what
fails there is the caller's (``InputError``: 400). Whatever ``predict`` raises afterwards —
``ValueError`` included — is the model's (``ModelFailure``: 500 ``MODEL_ERROR``).

Numeric scikit-learn models get a float64 array, not a DataFrame: a one-row request then
costs microseconds, and pandas is not needed. Pipelines that encode their own columns (a
``ColumnTransformer`` or an encoder first), or whose schema declares strings, get a DataFrame.

Messages of ``LoadError`` / ``ModelFailure`` are for callers and ``/healthz``: they never hold a
path. ``detail`` holds what the operator needs (the path, the exception's text); the gateway
logs it to stderr and the inference log's ``error``.

``predict`` runs in a worker thread (the gateway's pool), never on the event loop.
"""

from __future__ import annotations

import io
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from common.digests import Mismatch, Verified, read_verified
from gateway.inputs import (
    InputError,
    InputSchema,
    checked,
    guess,
    loads_json,
    parse,
    parse_csv,
)

# Numeric models get arrays in feature_names_in_'s order: the names are checked here already.
warnings.filterwarnings("ignore", message="X does not have valid feature names")

SKLEARN_FLAVORS = frozenset({"sklearn", "scikit-learn", "joblib"})
MLFLOW_FLAVORS = frozenset({"pyfunc", "python_function", "mlflow"})
_PICKLE_SUFFIXES = (".joblib", ".pkl")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^\s'\":,;()\[\]]+)+")


class Media(StrEnum):
    """The request bodies ``POST …/invocations`` takes (MLflow's scoring server's two)."""

    JSON = "application/json"
    CSV = "text/csv"


class LoadError(Exception):
    """A variant's model cannot be loaded. ``str()``: one line for callers and ``/healthz``
    (no paths); ``detail``: the same for the operator (stderr), with the path."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail or message


class ModelFailure(Exception):
    """The model raised on an input that passed its schema: not the caller's fault.
    ``str()``: the kind of failure (no text of the exception); ``detail``: its first line."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail

    @classmethod
    def of(cls, exc: BaseException) -> ModelFailure:
        return cls(f"the model failed ({type(exc).__name__})", f"the model failed: {one_line(exc)}")


class Servable(Protocol):
    @property
    def flavor(self) -> str: ...

    def predict_doc(self, doc: Any) -> list[Any]:
        """Predict for a decoded scoring request; ``InputError`` / ``ModelFailure``."""
        ...


def predict_body(model: Servable, body: bytes, media: Media = Media.JSON) -> tuple[Any, list[Any]]:
    """Decode ``body`` and predict: ``(request document, predictions)``. Runs in a worker."""
    doc = decode(body, media)
    return doc, model.predict_doc(doc)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def redacted(text: str) -> str:
    """``text`` with every absolute path replaced by ``…`` (what a caller may read)."""
    return _PATH.sub("…", text)


def decode(body: bytes, media: Media = Media.JSON) -> Any:
    if media is Media.CSV:
        return parse_csv(body)
    return loads_json(body)  # NaN and Infinity too, as MLflow's client writes them


def load(
    flavor: str | None,
    artifact: str,
    root: Path,
    digest: str | None,
    input_schema: Any = None,
) -> Servable:
    """Load ``artifact`` (absolute, ``file://``, or relative to the spec dir) as ``flavor``,
    if its bytes have the recorded ``digest``; checked against ``input_schema`` (the version's
    recorded schema; None: what the model itself says)."""
    path = Path(artifact.removeprefix("file://"))
    if not path.is_absolute():
        path = root / path
    verified = _verified(path, digest)
    try:
        schema = InputSchema.from_doc(input_schema)
    except ValueError as exc:
        raise LoadError(f"its recorded input schema cannot be read: {exc}") from None
    is_mlflow_dir = verified.is_dir and "MLmodel" in verified.files
    name = (flavor or ("pyfunc" if is_mlflow_dir else "sklearn")).lower()
    if name in MLFLOW_FLAVORS or (name in SKLEARN_FLAVORS and is_mlflow_dir):
        if not is_mlflow_dir:
            raise LoadError("its artifact is not an MLflow model directory (no MLmodel file)")
        return MlflowModel.load(verified, schema)
    if name in SKLEARN_FLAVORS:
        return SklearnModel.load(_one_pickle(verified), schema)
    raise LoadError(
        f"flavor {flavor!r} cannot be served by the embedded gateway (it serves sklearn files "
        "and MLflow pyfunc directories)"
    )


def _verified(path: Path, digest: str | None) -> Verified:
    if not digest:
        raise LoadError(
            "no digest of its bytes was recorded, so they cannot be checked: refusing to load "
            "them (apply the endpoint again to record one)"
        )
    if not path.exists():
        raise LoadError("its artifact does not exist", f"artifact {path} does not exist")
    try:
        return read_verified(path, digest)
    except Mismatch as exc:
        raise LoadError(
            f"its artifact's bytes are not the recorded ones ({digest[:19]}…): refusing to "
            "load them",
            f"artifact {path}: {exc}",
        ) from None
    except OSError as exc:
        raise LoadError(
            f"its artifact cannot be read ({type(exc).__name__})", f"artifact {path}: {exc}"
        ) from None


def _one_pickle(verified: Verified) -> bytes:
    if not verified.is_dir:
        return verified.one()
    found = sorted(k for k in verified.files if "/" not in k and k.endswith(_PICKLE_SUFFIXES))
    if len(found) != 1:
        raise LoadError(
            f"its artifact is a directory; expected one .joblib/.pkl file in it, found {len(found)}"
        )
    return verified.files[found[0]]


# -- scikit-learn ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SklearnModel:
    model: Any
    schema: InputSchema | None
    numeric: bool
    flavor: str = "sklearn"

    @classmethod
    def load(cls, data: bytes, recorded: InputSchema | None) -> SklearnModel:
        try:
            import joblib
        except ImportError as exc:
            raise LoadError(f"cannot load it: {exc} (pip install 'mlxctl[ml]')") from None
        try:
            model = joblib.load(io.BytesIO(data))
        except Exception as exc:
            raise LoadError(
                f"cannot load it as a scikit-learn model: {redacted(one_line(exc))}",
                f"cannot load it as a scikit-learn model: {one_line(exc)}",
            ) from None
        if not callable(getattr(model, "predict", None)):
            raise LoadError(f"it holds a {type(model).__name__}, which has no predict()")
        from common.model_inputs import of_estimator, takes_objects

        schema = recorded or InputSchema.from_doc(of_estimator(model))
        numeric = not takes_objects(model) and (schema is None or schema.numeric)
        return cls(model, schema, numeric)

    @property
    def batchable(self) -> bool:
        """Rows are predicted one by one and arrive as float arrays of one width, so several
        requests' rows can go to one ``predict`` (``gateway.batching``)."""
        return self.numeric and self.schema is not None

    def predict_doc(self, doc: Any) -> list[Any]:
        columns, rows = self.checked_rows(doc)
        return self.predict_rows(columns, rows)

    def checked_rows(self, doc: Any) -> tuple[list[str] | None, list[list[Any]]]:
        """A request's rows in the model's column order, checked; ``InputError`` if not."""
        frame = parse(doc)
        if frame.params:
            raise InputError("params are not supported by a scikit-learn model")
        columns, rows = checked(frame, self.schema)
        if self.numeric and self.schema is None:
            _array(frame.format, rows)  # an unknown model still takes numbers only
        return columns, rows

    def predict_rows(self, columns: list[str] | None, rows: list[list[Any]]) -> list[Any]:
        x = _array("input", rows) if self.numeric else _object_frame(columns, rows)
        try:
            return _jsonable(self.model.predict(x))
        except Exception as exc:
            raise ModelFailure.of(exc) from None

    def predict_many(self, parts: Sequence[list[list[Any]]]) -> list[list[Any]] | None:
        """Several requests' checked rows in one ``predict``: each request's predictions, in
        order; None when the batch cannot answer for each (the model raised, or did not give
        one prediction per row): the caller then predicts each request alone, so that a
        request the model fails on fails alone."""
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


def _array(fmt: str, rows: list[list[Any]]) -> Any:
    """The rows as a float64 matrix; a value that is no number is the caller's ``InputError``."""
    import numpy as np

    try:
        return np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{fmt}: every value must be a number ({one_line(exc)})") from None


def _object_frame(columns: Sequence[str] | None, rows: list[list[Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ModelFailure(
            "the gateway cannot give this pipeline its columns",
            "this pipeline needs pandas to take its columns: pip install pandas",
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
    schema: Any  # MLflow's input schema (its signature), or None
    #: the spec's ``inputs:``, checked (and the columns put in its order) before MLflow's own
    declared: InputSchema | None
    #: the private copy the model was loaded from (some flavors read files lazily)
    home: Any = field(repr=False, default=None)
    flavor: str = "pyfunc"

    @classmethod
    def load(cls, verified: Verified, schema: InputSchema | None) -> MlflowModel:
        try:
            import mlflow.pyfunc
        except ImportError:
            raise LoadError(
                "it is an MLflow model: serving it needs mlflow (pip install 'mlxctl[mlflow]')"
            ) from None
        home = tempfile.TemporaryDirectory(prefix="mlx-model-")
        try:
            _write_tree(Path(home.name), verified)
            model = mlflow.pyfunc.load_model(home.name)
        except Exception as exc:
            home.cleanup()
            raise LoadError(
                f"cannot load it as an MLflow model: {redacted(one_line(exc))}",
                f"cannot load it as an MLflow model: {one_line(exc)}",
            ) from None
        try:
            signature = model.metadata.get_input_schema()
        except Exception:
            signature = None
        declared = schema if schema is not None and schema.source == "spec" else None
        return cls(model, signature, declared, home)

    def predict_doc(self, doc: Any) -> list[Any]:
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc.scoring_server import infer_and_parse_data
        from mlflow.utils.proto_json_utils import _get_jsonable_obj

        frame = parse(doc)  # the same format errors as a scikit-learn model's, in the same words
        try:
            data = infer_and_parse_data(self._data(frame, doc), self.schema)
            data, params, checked_here = _enforced(self.model, data, frame.params)
        except MlflowException as exc:
            raise InputError(_mlflow_message(exc)) from None
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"cannot read the input: {redacted(one_line(exc))}") from None
        try:
            out = self.model.predict(data, params=params)
        except MlflowException as exc:
            if (
                not checked_here
                and str(getattr(exc, "error_code", "")) == "INVALID_PARAMETER_VALUE"
            ):
                raise InputError(_mlflow_message(exc)) from None  # its type hints refused it
            raise ModelFailure.of(exc) from None
        except Exception as exc:
            raise ModelFailure.of(exc) from None
        try:
            value = _get_jsonable_obj(out, pandas_orient="records")
        except Exception as exc:
            raise ModelFailure.of(exc) from None
        return value if isinstance(value, list) else [value]

    def _data(self, frame: Any, doc: Any) -> dict[str, Any]:
        """The request for MLflow's parser: in the declared columns' order when the spec
        declares ``inputs:``; CSV cells read as values."""
        if self.declared is not None:
            columns, rows = checked(frame, self.declared)
            return {"dataframe_split": {"columns": columns, "data": rows}}
        if frame.text:
            rows = [[guess(cell) for cell in row] for row in frame.rows]
            return {"dataframe_split": {"columns": frame.columns, "data": rows}}
        return {k: v for k, v in doc.items() if k != "params"}


def _write_tree(home: Path, verified: Verified) -> None:
    for rel, data in verified.files.items():
        target = home / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _enforced(model: Any, data: Any, params: Any) -> tuple[Any, Any, bool]:
    """MLflow's own schema enforcement, run here so that what it refuses is the caller's and
    only what ``predict`` raises is the model's: ``(data, params, enforced here?)``."""
    try:
        from mlflow.pyfunc import _validate_prediction_input
    except ImportError:  # another MLflow: predict enforces it
        return data, params, False
    meta = model.metadata
    if meta._is_signature_from_type_hint():  # the model's own predict checks its type hints
        return data, params, False
    data, params = _validate_prediction_input(
        data, params, meta.get_input_schema(), meta.get_params_schema(), model.loader_module
    )
    return data, params, True


def _mlflow_message(exc: Any) -> str:
    """MLflow's schema errors quote the whole input frame; keep the reason, on one line."""
    text = str(getattr(exc, "message", exc))
    if "Error: " in text:
        reason = " ".join(text.rsplit("Error: ", 1)[1].split())
        return redacted(f"the model's signature refused the input: {reason}")[:500]
    return redacted(" ".join(text.split()))[:500]
