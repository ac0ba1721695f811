"""A model version's input schema: declared in the spec, or read from its artifact.

The schema is what ``mlx serve`` checks a request against before the model sees it, and what
a plan compares to show a change callers would feel. Its recorded form (a version's
``input_schema`` output, and a route document's variant) is plain JSON::

    {"source": "spec" | "sklearn" | "mlflow",
     "columns": [{"name": "age" | null, "type": "float" | "int" | "bool" | "string" | null,
                  "nullable": false}, ...]}

in the model's column order. ``name`` is null for a model that takes its columns by
position (scikit-learn fitted on an array); ``type`` is null where nothing says (a pipeline
that encodes its own columns). A model nothing is known about has no schema (``None``).

Where it comes from, first match wins:

* the spec's ``inputs:`` (``source: spec``);
* an MLflow model directory's signature (the ``MLmodel`` file: YAML, never code);
* a scikit-learn pickle or joblib file: ``feature_names_in_`` and ``n_features_in_``.

A plan runs on every pull request (docs/spec.md), so an artifact is never *run* to read its
schema: a pickle is read by ``_StubReader``, an unpickler that builds inert stand-ins for
every class the pickle names instead of importing it, so no code from the file executes.
It understands joblib's format (arrays written after their wrapper, object arrays as nested
pickles) and its zlib/gzip/bz2/xz/lzma compression. What it cannot read has no schema.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import string
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

ColumnType = Literal["float", "int", "bool", "string"]
TYPES: tuple[str, ...] = ("float", "int", "bool", "string")
Schema = dict[str, Any]

#: a pickle bigger than this (decompressed) is not read for its schema
MAX_PICKLE_BYTES = 1 << 30
_PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
#: a first step that takes a DataFrame as sent and encodes its own columns
_ENCODERS = frozenset({"ColumnTransformer", "OneHotEncoder", "OrdinalEncoder", "TargetEncoder"})
#: a first step (or model) that takes NaN: its columns are nullable
_TAKES_NULLS = frozenset(
    {
        "SimpleImputer",
        "IterativeImputer",
        "KNNImputer",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    }
)


class SchemaConflict(ValueError):
    """The spec's ``inputs:`` contradicts what the artifact was fitted on; one line."""


def column(name: str | None, type_: str | None, nullable: bool) -> dict[str, Any]:
    return {"name": name, "type": type_, "nullable": nullable}


def schema(columns: Sequence[Mapping[str, Any]], source: str) -> Schema:
    return {"source": source, "columns": [dict(c) for c in columns]}


def names(value: Schema | None) -> list[str] | None:
    """The schema's column names, if it names every column."""
    if not value or not value.get("columns"):
        return None
    found = [c.get("name") for c in value["columns"]]
    return [str(n) for n in found] if all(isinstance(n, str) for n in found) else None


# -- the spec -------------------------------------------------------------------------------------
def declared(spec: Mapping[str, Any]) -> Schema | None:
    """The spec's ``inputs:`` as a schema, or None when it declares none."""
    inputs = spec.get("inputs")
    if not inputs:
        return None
    return schema(
        [column(str(c["name"]), str(c["type"]), bool(c.get("nullable", False))) for c in inputs],
        "spec",
    )


def for_model(spec: Mapping[str, Any], artifact: Path | None) -> Schema | None:
    """The schema a version of this model records: the spec's ``inputs:`` (checked against
    the artifact's own names, if it has any), else the artifact's. ``SchemaConflict`` when
    they disagree."""
    mine = declared(spec)
    found = of_artifact(artifact, spec.get("flavor")) if artifact is not None else None
    if mine is None:
        return found
    problem = conflict(mine, found)
    if problem:
        raise SchemaConflict(problem)
    return mine


class SchemaMemo:
    """``for_model`` remembered by content: a plan asks for a changed model's outputs several
    times, and reading a large pickle is not free."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str, str], Schema | None] = {}

    def of(
        self, spec: Mapping[str, Any], artifact: Path | None, fingerprint: str | None
    ) -> Schema | None:
        if fingerprint is None:
            return for_model(spec, artifact)
        inputs = json.dumps(spec.get("inputs"), sort_keys=True, default=str)
        key = (fingerprint, inputs, str(spec.get("flavor")))
        if key not in self._found:
            self._found[key] = for_model(spec, artifact)
        return self._found[key]

    def problem(self, spec: Mapping[str, Any], artifact: Path | None) -> str | None:
        """Why the spec's ``inputs:`` cannot describe the artifact, if it declares any."""
        if not spec.get("inputs") or artifact is None:
            return None
        try:
            self.of(spec, artifact, None)
        except SchemaConflict as exc:
            return str(exc)
        return None


def conflict(mine: Schema, found: Schema | None) -> str | None:
    """Why ``inputs:`` cannot describe an artifact whose own schema is ``found``, if so."""
    if not found or not found.get("columns"):
        return None
    width, theirs = len(found["columns"]), names(found)
    declared_names = names(mine) or []
    if theirs is not None and theirs != declared_names:
        return (
            f"inputs: declares {_shown(declared_names)}, but the artifact was fitted on "
            f"{_shown(theirs)} (in that order)"
        )
    if len(mine["columns"]) != width:
        return f"inputs: declares {len(mine['columns'])} columns, but the artifact takes {width}"
    return None


def _shown(items: Sequence[str]) -> str:
    text = ", ".join(items[:12])
    return f"[{text}{f', … ({len(items)} in all)' if len(items) > 12 else ''}]"


# -- an estimator (a real one, or the stand-ins _StubReader builds) --------------------------------
Getter = Callable[[Any, str], Any]


def _attr(obj: Any, name: str) -> Any:
    return getattr(obj, name, None)


def _class_name(obj: Any) -> str:
    qual = getattr(obj, "_stub_name", None)
    return str(qual or type(obj).__qualname__).rsplit(".", 1)[-1]


def first_step(model: Any, get: Getter = _attr) -> Any:
    """A pipeline's first step (what meets the input), else the model itself."""
    steps = get(model, "steps") if _class_name(model) == "Pipeline" else None
    if isinstance(steps, list | tuple) and steps:
        step = steps[0]
        if isinstance(step, list | tuple) and len(step) == 2:
            return step[1]
    return model


def takes_objects(model: Any, get: Getter = _attr) -> bool:
    """A pipeline whose first step encodes its columns: it gets a DataFrame as sent."""
    return _class_name(first_step(model, get)) in _ENCODERS


def of_estimator(model: Any, get: Getter = _attr) -> Schema | None:
    """A scikit-learn model's schema: its fitted column names (or width), all floats for a
    numeric model, untyped for a pipeline that encodes its own columns."""
    first = first_step(model, get)
    fitted = _names_of(get(first, "feature_names_in_")) or _names_of(
        get(model, "feature_names_in_")
    )
    width = get(first, "n_features_in_")
    if not isinstance(width, int) or isinstance(width, bool):
        width = get(model, "n_features_in_")
    if fitted is None and not (isinstance(width, int) and not isinstance(width, bool)):
        return None
    encodes = takes_objects(model, get)
    nullable = encodes or _class_name(first) in _TAKES_NULLS
    type_ = None if encodes else "float"
    cols: Sequence[str | None] = fitted if fitted is not None else [None] * int(width)
    return schema([column(n, type_, nullable) for n in cols], "sklearn")


def _names_of(value: Any) -> list[str] | None:
    """Column names from a fitted ``feature_names_in_`` (an array, or its stand-in)."""
    if value is None:
        return None
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, _Stub):
        items = tolist()
    elif isinstance(value, _Stub):
        state = value.state
        # an object array's pickled state: (version, shape, dtype, fortran, [items])
        items = state[4] if isinstance(state, tuple) and len(state) == 5 else None
    else:
        items = value
    if not isinstance(items, list | tuple) or not items:
        return None
    return [str(i) for i in items]


# -- an artifact ----------------------------------------------------------------------------------
def of_artifact(path: Path, flavor: Any = None) -> Schema | None:
    """The schema an artifact carries (None: it carries none, or it cannot be read)."""
    try:
        if path.is_dir():
            if (path / "MLmodel").is_file():
                return of_mlmodel(path / "MLmodel")
            found = sorted(p for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES)
            if len(found) != 1:
                return None
            path = found[0]
        if not path.is_file() or (flavor and str(flavor).lower() not in _PICKLED):
            return None
        return of_pickle(path.read_bytes())
    except OSError:
        return None


_PICKLED = frozenset({"sklearn", "scikit-learn", "joblib"})


def of_pickle(data: bytes) -> Schema | None:
    """A pickled (or joblib-dumped) scikit-learn model's schema, read without running it."""
    model = read_inert(data)
    if model is None:
        return None
    return of_estimator(model, _stub_attr)


def of_mlmodel(path: Path) -> Schema | None:
    """An MLflow model's input signature (``MLmodel``), as a schema."""
    import yaml

    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw = (meta or {}).get("signature", {}).get("inputs")
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None
    if not isinstance(specs, list) or not specs:
        return None
    if all(isinstance(s, dict) and s.get("type") == "tensor" for s in specs):
        return _tensor(specs)
    cols = []
    for spec in specs:
        if not isinstance(spec, dict):
            return None
        name = spec.get("name")
        cols.append(
            column(
                str(name) if name is not None else None,
                _MLFLOW_TYPES.get(str(spec.get("type"))),
                spec.get("required") is False,
            )
        )
    return schema(cols, "mlflow")


_MLFLOW_TYPES = {
    "double": "float",
    "float": "float",
    "long": "int",
    "integer": "int",
    "boolean": "bool",
    "string": "string",
}


def _tensor(specs: list[dict[str, Any]]) -> Schema | None:
    """One 2-D tensor ``[-1, N]``: N columns by position."""
    if len(specs) != 1:
        return None
    tensor = specs[0].get("tensor-spec") or {}
    shape, dtype = tensor.get("shape"), str(tensor.get("dtype", ""))
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int)):
        return None
    if shape[1] < 1:
        return None
    type_ = (
        "float"
        if dtype.startswith("float")
        else "int"
        if dtype.startswith(("int", "uint"))
        else "bool"
        if dtype == "bool"
        else None
    )
    return schema([column(None, type_, False)] * shape[1], "mlflow")


# -- reading a pickle without running it -----------------------------------------------------------
class _Stub:
    """An inert stand-in for an instance of a class a pickle names (never imported)."""

    _stub_name = "?"
    args: tuple[Any, ...] = ()
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    # a pickled list or dict subclass fills itself with these
    def append(self, value: Any) -> None:
        self.__dict__.setdefault("items", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("items", []).extend(values)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("mapping", {})[key] = value


def _stub_attr(obj: Any, name: str) -> Any:
    state = obj.state if isinstance(obj, _Stub) else None
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]  # (dict state, slots state)
    return state.get(name) if isinstance(state, dict) else None


class _StubReader(pickle._Unpickler):  # the Python unpickler: its opcodes can be extended
    """Unpickles into ``_Stub``s: ``find_class`` never imports, so nothing in the file runs."""

    def __init__(self, file: BinaryIO, classes: dict[str, type[_Stub]]):
        super().__init__(file)
        self.file_handle = file
        self.classes = classes

    def find_class(self, module: str, name: str) -> Any:
        qual = f"{module}.{name}"
        cls = self.classes.get(qual)
        if cls is None:
            cls = self.classes[qual] = type(name, (_Stub,), {"_stub_name": qual})
        return cls

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not read")

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_build(self) -> None:
        """BUILD, then joblib's arrays: a ``NumpyArrayWrapper`` is followed by its data."""
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        top = self.stack[-1]  # type: ignore[attr-defined]
        if isinstance(top, _Stub) and top._stub_name.endswith("numpy_pickle.NumpyArrayWrapper"):
            self.stack[-1] = self._joblib_array(top)  # type: ignore[attr-defined]

    dispatch[pickle.BUILD[0]] = load_build  # type: ignore[assignment]

    def _joblib_array(self, wrapper: _Stub) -> Any:
        state = wrapper.state if isinstance(wrapper.state, dict) else {}
        dtype, shape = state.get("dtype"), state.get("shape") or ()
        if not (isinstance(dtype, _Stub) and dtype.args):
            raise pickle.UnpicklingError("a joblib array without a dtype")
        code = str(dtype.args[0])
        if code.startswith("O"):  # objects: a nested pickle follows
            return _StubReader(self.file_handle, self.classes).load()
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.file_handle.read(1)
            self.file_handle.read(pad[0] if pad else 0)
        count = 1
        for n in shape:
            count *= int(n)
        self.file_handle.read(count * _itemsize(dtype, code))  # skip the numbers
        return wrapper


def _itemsize(dtype: _Stub, code: str) -> int:
    state = dtype.state
    if isinstance(state, tuple) and len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return state[5]
    digits = code.lstrip(string.ascii_letters + "<>|=")
    if not digits.isdigit():
        raise pickle.UnpicklingError(f"a joblib array of dtype {code!r}")
    return int(digits)


def read_inert(data: bytes) -> Any:
    """The object a pickle (or joblib file) holds, as ``_Stub``s; None if it cannot be read."""
    try:
        raw = _decompressed(data)
        if raw is None:
            return None
        return _StubReader(io.BytesIO(raw), {}).load()
    except Exception:  # a file that is not a pickle, or one this reader does not understand
        return None


def _decompressed(data: bytes) -> bytes | None:
    """joblib's compressed files, opened with the standard library (lz4: not read)."""
    for prefix, opener in _COMPRESSED:
        if data.startswith(prefix):
            with opener(io.BytesIO(data)) as fh:
                out = fh.read(MAX_PICKLE_BYTES + 1)
            return None if len(out) > MAX_PICKLE_BYTES else out
    if data[:1] == b"x":  # zlib
        z = zlib.decompressobj()
        out = z.decompress(data, MAX_PICKLE_BYTES)
        return None if z.unconsumed_tail else out
    return data  # a pickle (or not: the reader says so)


def _gzip(fh: BinaryIO) -> io.BufferedIOBase:
    return gzip.GzipFile(fileobj=fh)


def _bz2(fh: BinaryIO) -> io.BufferedIOBase:
    return bz2.BZ2File(fh)


def _lzma(fh: BinaryIO) -> io.BufferedIOBase:
    return lzma.LZMAFile(fh)


#: joblib's compressed formats by their first bytes
_COMPRESSED: tuple[tuple[bytes, Callable[[BinaryIO], io.BufferedIOBase]], ...] = (
    (b"\x1f\x8b", _gzip),
    (b"BZh", _bz2),
    (b"\xfd7zXZ\x00", _lzma),
    (b"]\x00", _lzma),
)
