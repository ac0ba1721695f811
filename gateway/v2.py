"""KServe's Open Inference Protocol (V2) over REST, for model endpoints.

===============================================  ==============================================
``GET /v2``                                      server metadata ``{"name", "version", …}``
``GET /v2/health/live``                          200 ``{"live": true}`` while the process runs
``GET /v2/health/ready``                         200/503 ``{"ready"}``: the readiness of ``/readyz``
``GET /v2/models/{name}[/versions/{v}]``         metadata: versions served, input/output tensors
``GET /v2/models/{name}[/versions/{v}]/ready``   200/503 ``{"name", "ready"}``
``POST /v2/models/{name}[/versions/{v}]/infer``  tensors in, tensors out (``gateway.tensors``)
===============================================  ==============================================

An endpoint's model is its V2 "model"; the versions it serves now (stable, and a candidate
during a rollout) are its versions. ``infer`` without a version is routed as
``invocations`` is (the ``x-mlx-key`` sticky key, the rollout split, mirroring); with a
version, that version answers (404 if it is not served). Either way the request goes
through the invocations path (``ModelRoutes._predicted`` / ``_model_answered``): the same
pool, schema checks, failures, record (``inputs``: the MLflow columnar document the tensors
became) and headers. Health routes are open like ``/healthz``; the ``/v2/models`` routes need
the bearer token like every endpoint route. Errors are the protocol's ``{"error": "…"}``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contract import Role
from dataplane.route import Kind
from gateway.control import EndpointView, Loaded
from gateway.http import Answer, Call, Fail, new_call, request_id
from gateway.inputs import InputSchema
from gateway.invocations import ModelRoutes
from gateway.models import MlflowModel, ModelFailure, Servable, SklearnModel
from gateway.tensors import (
    PREDICT,
    InferRequest,
    encode,
    input_metadata,
    outputs,
    parse_request,
    to_doc,
)

FAMILY = "oip"
PLATFORM = "mlx"
_BINARY = (b"content-type", b"application/octet-stream")
#: numpy dtype kinds of a classifier's ``classes_`` → the datatype its predictions have
_KINDS = {"b": "BOOL", "i": "INT64", "u": "INT64", "f": "FP64"}
#: MLflow signature types (a column's, or a tensor's numpy dtype) → datatypes (else BYTES)
_MLFLOW_TYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "float64": "FP64",
    "float32": "FP32",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
}


@functools.cache
def _server_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlxctl")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


@dataclass(frozen=True, slots=True)
class Inferred:
    """What the pool thread made of a request: the MLflow document (the record's
    ``inputs``), the answer's body, and the length of its JSON part when binary follows."""

    doc: dict[str, Any]
    content: bytes
    header_length: int | None


def schema_of(loaded: Loaded) -> InputSchema | None:
    """The input schema a request to this version is checked against (``gateway.models``)."""
    model = loaded.model
    if isinstance(model, SklearnModel):
        return model.schema
    if isinstance(model, MlflowModel) and model.declared is not None:
        return model.declared
    try:
        recorded = InputSchema.from_doc(loaded.input_schema)
    except ValueError:
        return None
    if recorded is None and isinstance(model, MlflowModel) and model.home is not None:
        return _signature(str(model.home.name))  # a route written without the schema
    return recorded


@functools.lru_cache(maxsize=64)
def _signature(home: str) -> InputSchema | None:
    """The input signature in the ``MLmodel`` of a loaded MLflow model's private copy (its
    directory's name is new at every load, so a cached answer is never stale)."""
    from common.model_inputs import of_mlmodel

    try:
        return InputSchema.from_doc(of_mlmodel(Path(home) / "MLmodel"))
    except ValueError:
        return None


def output_metadata(model: Servable | None) -> list[dict[str, Any]]:
    """What the model's predictions are, where the model says: a classifier's classes, a
    regressor's floats, an MLflow signature's outputs; nothing where nothing says."""
    if isinstance(model, SklearnModel):
        classes = getattr(model.model, "classes_", None)
        kind = getattr(getattr(classes, "dtype", None), "kind", None)
        datatype = "FP64" if classes is None else _KINDS.get(str(kind), "BYTES")
        return [{"name": PREDICT, "datatype": datatype, "shape": [-1]}]
    if isinstance(model, MlflowModel):
        try:
            specs = model.model.metadata.get_output_schema().inputs
        except Exception:  # no signature, or none of outputs
            return []
        types = [_MLFLOW_TYPES.get(str(getattr(s.type, "name", s.type)), "BYTES") for s in specs]
        names = [getattr(s, "name", None) for s in specs]
        if len(specs) > 1 and all(isinstance(n, str) for n in names):
            return [
                {"name": n, "datatype": t, "shape": [-1]} for n, t in zip(names, types, strict=True)
            ]
        return [{"name": PREDICT, "datatype": types[0], "shape": [-1]}] if types else []
    return []


def infer_tensors(
    model: Servable,
    schema: InputSchema | None,
    body: bytes,
    header_length: str | None,
    head: dict[str, Any],
) -> tuple[Inferred, list[Any]]:
    """In a pool thread: the request's tensors → the model's columns → predictions → the
    answer's tensors. ``TensorError`` (a 400) / ``ModelFailure`` as ``predict_body``'s."""
    request: InferRequest = parse_request(body, header_length)
    doc = to_doc(request, schema)
    predictions = model.predict_doc(doc)
    answer = {**head, "id": request.id if request.id is not None else head["id"]}
    answer["outputs"] = outputs(predictions, request)
    try:
        content, length = encode(answer, request)
    except (TypeError, ValueError, OverflowError) as exc:  # predictions no tensor holds
        raise ModelFailure.of(exc) from None
    return Inferred(doc, content, length), predictions


class V2Routes(ModelRoutes):
    """The ``/v2`` routes (``v2_routes``); ``gateway.app`` mounts them."""

    def v2_routes(self) -> list[Route]:
        model = "/v2/models/{name}"
        version = model + "/versions/{version}"
        return [
            Route("/v2", self.v2_server, methods=["GET"]),
            Route("/v2/health/live", self.v2_live, methods=["GET"]),
            Route("/v2/health/ready", self.v2_ready, methods=["GET"]),
            Route(model, self.v2_metadata, methods=["GET"]),
            Route(version, self.v2_metadata, methods=["GET"]),
            Route(model + "/ready", self.v2_model_ready, methods=["GET"]),
            Route(version + "/ready", self.v2_model_ready, methods=["GET"]),
            Route(model + "/infer", self.v2_infer, methods=["POST"]),
            Route(version + "/infer", self.v2_infer, methods=["POST"]),
        ]

    # -- health ----------------------------------------------------------------------------
    async def v2_server(self, request: Request) -> Response:
        doc = {"name": PLATFORM, "version": _server_version(), "extensions": ["binary_tensor_data"]}
        return _plain(request, doc, 200)

    async def v2_live(self, request: Request) -> Response:
        return _plain(request, {"live": True}, 200)

    async def v2_ready(self, request: Request) -> Response:
        """``/readyz``'s readiness; the reasons need the token, if any."""
        problems = self._not_ready()
        doc: dict[str, Any] = {"ready": not problems}
        if problems and self.bearer.allows(request.headers.get("authorization")):
            doc["problems"] = problems
        return _plain(request, doc, 503 if problems else 200)

    # -- a model -------------------------------------------------------------------------
    def _v2_view(self, call: Call, name: str) -> EndpointView:
        """The model endpoint, for a route that is no request to it (no id is claimed);
        the 404/503 of ``_endpoint`` otherwise (a prompt endpoint's names its chat route)."""
        view = self.control.snapshot.endpoints.get(name)
        if view is None or view.route.kind is not Kind.MODEL:
            self._endpoint(call, name, Kind.MODEL)  # raises
            raise AssertionError("unreachable")  # pragma: no cover
        return view

    async def v2_metadata(self, request: Request) -> Response:
        call = new_call(request)
        try:
            self._authorize(request)
            view = self._v2_view(call, request.path_params["name"])
            loaded = _version(view, request.path_params.get("version"))
            doc = {
                "name": view.name,
                "versions": _served(view),
                "platform": PLATFORM,
                "inputs": input_metadata(schema_of(loaded)),
                "outputs": output_metadata(loaded.model),
            }
        except Fail as fail:
            return self._failed(call, fail, FAMILY)
        return Answer(orjson.dumps(doc), 200, call.headers())

    async def v2_model_ready(self, request: Request) -> Response:
        call = new_call(request)
        name = request.path_params["name"]
        try:
            self._authorize(request)
            view = self._v2_view(call, name)
            _version(view, request.path_params.get("version"))
        except Fail as fail:
            if fail.status != 503:
                return self._failed(call, fail, FAMILY)
            return Answer(orjson.dumps({"name": name, "ready": False}), 503, call.headers())
        return Answer(orjson.dumps({"name": view.name, "ready": True}), 200, call.headers())

    async def v2_infer(self, request: Request) -> Response:
        """``_v2_infer`` under ``FastPath``'s steps (the route is Starlette's): counted busy,
        and ``before_send`` between the answer and its sending."""
        self.busy.inflight += 1
        try:
            answer = await self._v2_infer(request)
            await self.before_send(request.scope, request.receive, answer)
            return answer
        finally:
            self.busy.inflight -= 1

    async def _v2_infer(self, request: Request) -> Response:
        call = new_call(request)
        try:
            self._authorize(request)
            view = self._endpoint(call, request.path_params["name"], Kind.MODEL)
            key = request.headers.get("x-mlx-key")
            version = request.path_params.get("version")
            loaded = (
                self._route(call, view, key)
                if version is None
                else self._pinned(call, view, version, key)
            )
            body = await self._body(request, view.route.max_body_bytes)
            assert loaded.model is not None
            head = {"model_name": view.name, "model_version": loaded.version, "id": call.request_id}
            work = self.pool.run(
                view.route.timeout_s,
                infer_tensors,
                loaded.model,
                schema_of(loaded),
                body,
                request.headers.get("inference-header-content-length"),
                head,
            )
            inferred, predictions = await self._predicted(call, view.route.timeout_s, work)
        except Fail as fail:
            return self._failed(call, fail, FAMILY)
        except Exception as exc:
            return self._crashed(call, exc, FAMILY)
        after = self._model_answered(call, view, loaded, inferred.doc, predictions, None)
        headers = call.headers()
        if inferred.header_length is None:
            return Answer(inferred.content, 200, headers, after)
        length = (b"inference-header-content-length", str(inferred.header_length).encode())
        return Answer(inferred.content, 200, [*headers, length], after, content_type=_BINARY)

    def _pinned(self, call: Call, view: EndpointView, version: str, key: str | None) -> Loaded:
        """The variant serving ``version`` answers, whatever the split would pick."""
        call.key = key
        loaded = _version(view, version)
        call.role = Role.CANDIDATE if loaded is view.candidate else Role.STABLE
        call.loaded = loaded
        return loaded


def _served(view: EndpointView) -> list[str]:
    return [v.version for v in (view.stable, view.candidate) if v is not None]


def _version(view: EndpointView, version: str | None) -> Loaded:
    """The version asked for (None: the stable); 404 if it is not served, 503 if the
    endpoint has none loaded."""
    if version is None:
        if view.stable is None:
            raise Fail(503, f"endpoint {view.name!r} has no version loaded", logged=False)
        return view.stable
    for loaded in (view.stable, view.candidate):
        if loaded is not None and loaded.version == version:
            return loaded
    served = ", ".join(_served(view)) or "none loaded"
    raise Fail(
        404,
        f"endpoint {view.name!r} does not serve version {version!r} (it serves: {served})",
        logged=False,
    )


def _plain(request: Request, doc: dict[str, Any], status: int) -> Answer:
    rid = request_id(request.headers.get("x-request-id"))
    return Answer(orjson.dumps(doc), status, [(b"x-request-id", rid.encode())])
