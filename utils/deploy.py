"""Deployment: a TF-Serving-compatible REST server and client, TFLite and ONNX conversion, latency.

* :class:`ModelServer` serves SavedModels over TensorFlow Serving's REST API (predict in the row
  and columnar formats, model status, model metadata, JSON errors), built on FastAPI and uvicorn.
  It runs in a background thread that a notebook can stop, binds to 127.0.0.1 unless told
  otherwise, and answers every bad request with a 4xx and ``{"error": "..."}`` while staying up.
* :func:`rest_predict` is a client written against TF Serving's documented contract.
* :func:`float32_model` gives the float32 copy of a model trained under mixed precision, to export:
  a served model takes and returns float32 whatever precision it was trained in.
* :func:`to_tflite` / :class:`TFLiteModel` (LiteRT) and :func:`to_onnx` / :class:`OnnxModel`
  convert a float32 SavedModel and run it.
* :func:`time_call`, :func:`latency_rows` and :func:`size_bytes` measure.

``python -m utils.deploy serve --model NAME=PATH [--port 8501]`` runs the server from a shell.

Loading never runs untrusted Python: only SavedModel directories are accepted (no pickle, no
``.keras``), TensorFlow rebuilds them from their graph, only their serving signatures are called,
and a SavedModel whose graph contains ops that call back into Python or touch files is refused.
"""

# No `from __future__ import annotations`: FastAPI reads the route handlers' annotations
# (`request: Request`), which are imported inside make_app, so they must be evaluated there.
import argparse
import contextlib
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.env import import_tensorflow, quiet_stderr

__all__ = [
    "DEFAULT_HOST",
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "UNSAFE_OPS",
    "BackgroundServer",
    "ModelServer",
    "OnnxModel",
    "RequestError",
    "Servable",
    "ServingError",
    "TFLiteModel",
    "float32_model",
    "latency_rows",
    "load_servable",
    "low_precision_dtypes",
    "make_app",
    "rest_predict",
    "saved_model_ops",
    "size_bytes",
    "time_call",
    "to_onnx",
    "to_tflite",
]

DEFAULT_HOST = "127.0.0.1"  # reachable from this machine only; pass host="0.0.0.0" deliberately
MAX_BODY_BYTES = 4 * 2**20  # larger request bodies get 413
MAX_BATCH = 1024  # more instances than this in one request get 413

# Ops that call back into Python or touch the file system. A SavedModel whose graph contains one
# is refused. SaveV2/RestoreV2 are not here: every SavedModel has them, in the functions that save
# and restore its variables, and the loader (not the served signature) uses them.
UNSAFE_OPS = frozenset(
    {
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "ImmutableConst",
        "CreateSummaryFileWriter",
        "WriteSummary",
        "WriteRawProtoSummary",
        "PrintV2",
    }
)

# Lines the TFLite converter and the LiteRT interpreter write straight to stderr.
_CONVERTER_NOISE = re.compile(
    r"fully_quantize: |Created TensorFlow Lite XNNPACK delegate|^[IW]\d{4} \d\d:\d\d:\d\d|"
    r"Estimated count of arithmetic ops|^\s*$"
)


def _quiet_converter() -> Any:
    """Hold file descriptor 2 while converting; pass on everything but known log chatter."""
    return quiet_stderr(also=_CONVERTER_NOISE.pattern)


# ---------------------------------------------------------------------------------------------
# Loading SavedModels safely
# ---------------------------------------------------------------------------------------------


class RequestError(Exception):
    """A request the server refuses: carries the HTTP status (4xx) and the message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _read_saved_model_proto(export_dir: Path) -> Any:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((export_dir / "saved_model.pb").read_bytes())
    return proto


def saved_model_ops(export_dir: str | Path) -> set[str]:
    """Return the names of every op in a SavedModel's graph and function library (nothing is run)."""
    import_tensorflow()
    proto = _read_saved_model_proto(Path(export_dir))
    ops: set[str] = set()
    for graph in proto.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def _signature_defs_json(export_dir: Path) -> dict[str, Any]:
    """Return the SavedModel's signature definitions as TF Serving's metadata API shows them."""
    from google.protobuf import json_format

    proto = _read_saved_model_proto(export_dir)
    out: dict[str, Any] = {}
    for name, sig in proto.meta_graphs[0].signature_def.items():
        if name.startswith("__"):  # __saved_model_init_op is not a serving signature
            continue
        try:
            out[name] = json_format.MessageToDict(
                sig, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
        except TypeError:  # protobuf < 5.26 names the option differently
            out[name] = json_format.MessageToDict(
                sig, preserving_proto_field_name=True, including_default_value_fields=True
            )
    return out


@dataclass
class Servable:
    """One loaded model version: its callable signatures and their input and output specs."""

    name: str
    version: int
    path: Path
    signatures: dict[str, Callable[..., Any]]
    inputs: dict[str, dict[str, Any]]  # signature -> {input name: TensorSpec}
    outputs: dict[str, dict[str, Any]]  # signature -> {output name: TensorSpec}
    metadata: dict[str, Any] = field(default_factory=dict)
    loaded: Any = None  # the restored object: keeps the variables alive; never called directly

    def predict(self, body: Any, *, max_batch: int = MAX_BATCH) -> dict[str, Any]:
        """Answer a TF Serving predict request body; raise :class:`RequestError` if it is bad."""
        return _predict(self, body, max_batch=max_batch)


def load_servable(path: str | Path, *, name: str = "model", version: int = 1) -> Servable:
    """Load one SavedModel directory for serving; raise ValueError if it is not one we will load.

    Refuses anything that is not a SavedModel directory (a ``.keras`` file, a pickle) and any
    SavedModel whose graph contains an op in :data:`UNSAFE_OPS`. Only the SavedModel's
    signatures are kept; the restored object's other Python-visible attributes are never called.
    """
    tf = import_tensorflow()
    path = Path(path)
    if not (path.is_dir() and (path / "saved_model.pb").is_file()):
        raise ValueError(
            f"{path} is not a SavedModel directory (no saved_model.pb). The server loads only "
            "SavedModels: never pickles, and no .keras files (export one with model.export(path))."
        )
    unsafe = sorted(saved_model_ops(path) & UNSAFE_OPS)
    if unsafe:
        raise ValueError(
            f"{path} contains ops that call Python or touch files ({', '.join(unsafe)}): refused."
        )
    loaded = tf.saved_model.load(str(path))
    signatures, inputs, outputs = {}, {}, {}
    for sig_name, fn in loaded.signatures.items():
        signatures[sig_name] = fn
        inputs[sig_name] = dict(fn.structured_input_signature[1])
        outputs[sig_name] = dict(fn.structured_outputs)
    if not signatures:
        raise ValueError(f"{path} has no serving signature: export it with model.export(path).")
    metadata = {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": _signature_defs_json(path)}},
    }
    return Servable(name, version, path, signatures, inputs, outputs, metadata, loaded)


def _versions(base: Path) -> dict[int, Path]:
    """Map version -> directory: ``base`` itself (version 1) or its numbered subfolders."""
    if (base / "saved_model.pb").is_file():
        return {1: base}
    found = (
        {int(p.name): p for p in base.iterdir() if p.is_dir() and p.name.isdigit()} if base.is_dir() else {}
    )
    if not found:
        raise ValueError(f"{base} is neither a SavedModel nor a folder of numbered versions (1/, 2/, ...).")
    return found


# ---------------------------------------------------------------------------------------------
# The predict API: request in, response out (TF Serving's JSON formats)
# ---------------------------------------------------------------------------------------------


def _shape_text(shape: Iterable[Any]) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def _to_tensor(value: Any, spec: Any, what: str, max_batch: int) -> np.ndarray:
    """Turn one JSON value into an array that fits ``spec`` (TensorSpec), or raise RequestError."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise RequestError(
            400, f"{what}: the nested lists are ragged; every instance needs the same shape."
        ) from None
    if arr.dtype.kind not in "iuf":
        kind = {"b": "booleans", "U": "strings", "S": "bytes", "O": "nulls, objects or mixed types"}
        raise RequestError(
            400,
            f"{what}: expected numbers ({spec.dtype.name}), got {kind.get(arr.dtype.kind, arr.dtype.name)}.",
        )
    expected = list(spec.shape)
    if arr.ndim != len(expected) or any(
        e is not None and e != g for e, g in zip(expected, arr.shape, strict=False)
    ):
        raise RequestError(400, f"{what}: expected shape {_shape_text(expected)}, got {list(arr.shape)}.")
    if arr.ndim and arr.shape[0] == 0:
        raise RequestError(400, f"{what}: the batch is empty; send at least one instance.")
    if arr.ndim and arr.shape[0] > max_batch:
        raise RequestError(413, f"{what}: {arr.shape[0]} instances is more than the limit of {max_batch}.")
    target = np.dtype(spec.dtype.as_numpy_dtype)
    if target.kind == "f":
        with np.errstate(over="ignore"):
            out = arr.astype(target)
        if not np.all(np.isfinite(out)):
            raise RequestError(
                400, f"{what}: contains NaN or infinity (or a number too large for {target.name})."
            )
        return out
    if target.kind in "iu":
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise RequestError(400, f"{what}: expected integers ({target.name}), got fractional numbers.")
        info = np.iinfo(target)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise RequestError(400, f"{what}: numbers outside the range of {target.name}.")
        return arr.astype(target)
    raise RequestError(400, f"{what}: this server only serves numeric inputs, not {target.name}.")


def _predict(servable: Servable, body: Any, *, max_batch: int) -> dict[str, Any]:
    tf = import_tensorflow()
    if not isinstance(body, dict):
        raise RequestError(
            400, 'The request body must be a JSON object such as {"instances": [...]} or {"inputs": ...}.'
        )
    sig_name = body.get("signature_name", "serving_default")
    if not isinstance(sig_name, str) or sig_name not in servable.signatures:
        known = ", ".join(sorted(servable.signatures))
        raise RequestError(400, f"Serving signature {sig_name!r} not found; this model has: {known}.")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError(400, 'Send exactly one of "instances" (row format) or "inputs" (columnar format).')
    specs = servable.inputs[sig_name]
    row = "instances" in body
    data = body["instances"] if row else body["inputs"]
    if row:
        if not isinstance(data, list):
            raise RequestError(400, '"instances" must be a list, one entry per instance.')
        if not data:
            raise RequestError(400, '"instances" is empty; send at least one instance.')
        if all(isinstance(i, dict) for i in data):
            names = set(data[0])
            if names != set(specs) or any(set(i) != names for i in data):
                raise RequestError(
                    400, f"Each instance must name exactly these inputs: {', '.join(sorted(specs))}."
                )
            columns = {k: [i[k] for i in data] for k in specs}
        elif len(specs) == 1 and not any(isinstance(i, dict) for i in data):
            columns = {next(iter(specs)): data}
        else:
            raise RequestError(
                400, f"This signature has {len(specs)} inputs: give each instance as an object."
            )
    elif isinstance(data, dict):
        if set(data) != set(specs):
            raise RequestError(400, f'"inputs" must name exactly these inputs: {", ".join(sorted(specs))}.')
        columns = data
    elif len(specs) == 1:
        columns = {next(iter(specs)): data}
    else:
        raise RequestError(400, f'This signature has {len(specs)} inputs: "inputs" must be an object.')
    tensors = {k: tf.constant(_to_tensor(v, specs[k], f"input {k!r}", max_batch)) for k, v in columns.items()}
    batch_sizes = {int(t.shape[0]) for t in tensors.values() if t.shape.rank}
    if row and len(batch_sizes) > 1:
        raise RequestError(400, "All inputs must have the same number of instances.")
    try:
        result = servable.signatures[sig_name](**tensors)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
        message = getattr(error, "message", None) or str(error)
        raise RequestError(400, f"The model rejected the input: {message.splitlines()[0][:300]}") from None
    outputs = {k: v.numpy() for k, v in result.items()}
    if row:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).tolist()}
        n = next(iter(outputs.values())).shape[0]
        return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(n)]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values())).tolist()}
    return {"outputs": {k: v.tolist() for k, v in outputs.items()}}


# ---------------------------------------------------------------------------------------------
# The web application (FastAPI) and a server that runs it in a thread
# ---------------------------------------------------------------------------------------------

_NAME = "[^/:]+"  # a model name: like TF Serving, no slash and no colon


def _register_name_convertor() -> None:
    from starlette.convertors import CONVERTOR_TYPES, Convertor, register_url_convertor

    if "model_name" in CONVERTOR_TYPES:
        return

    class _ModelName(Convertor):
        regex = _NAME

        def convert(self, value: str) -> str:
            return value

        def to_string(self, value: str) -> str:
            return value

    register_url_convertor("model_name", _ModelName())


def make_app(
    models: Mapping[str, Mapping[int, Servable]],
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_batch: int = MAX_BATCH,
) -> Any:
    """Return the FastAPI application serving ``models`` ({name: {version: Servable}}).

    Routes (TF Serving's REST API): ``POST /v1/models/<name>[/versions/<v>]:predict``,
    ``GET /v1/models/<name>[/versions/<v>]`` (status) and ``GET .../metadata``. Every error is
    ``{"error": "..."}`` with a 4xx status: 400 bad request, 404 unknown model, version or route,
    405 wrong method, 413 body or batch too large.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    _register_name_convertor()
    app = FastAPI(title="TF-Serving-compatible REST server", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        messages = {404: f"No route for {request.method} {request.url.path}.", 405: "Method not allowed."}
        message = messages.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            {"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"Internal error: {type(exc).__name__}."}, status_code=500)

    def _versions_of(name: str) -> Mapping[int, Servable]:
        if name not in models:
            raise RequestError(404, f"Servable not found for request: model {name!r} is not served here.")
        return models[name]

    def _servable(name: str, version: int | None) -> Servable:
        versions = _versions_of(name)
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise RequestError(
                404, f"Servable not found for request: model {name!r} has no version {version}."
            )
        return versions[version]

    async def _body(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            raise RequestError(413, f"The request body is larger than the limit of {max_body_bytes} bytes.")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise RequestError(
                    413, f"The request body is larger than the limit of {max_body_bytes} bytes."
                )
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as error:
            raise RequestError(400, f"The request body is not valid JSON ({str(error)[:120]}).") from None

    async def _predict_route(request: Request, name: str, version: int | None) -> JSONResponse:
        servable = _servable(name, version)
        body = await _body(request)
        result = await run_in_threadpool(servable.predict, body, max_batch=max_batch)
        return JSONResponse(result)

    def _status(name: str, version: int | None) -> dict[str, Any]:
        versions = _versions_of(name)
        if version is not None:
            _servable(name, version)  # 404 for an unknown version
        chosen = [version] if version is not None else sorted(versions, reverse=True)
        return {
            "model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                for v in chosen
            ]
        }

    @app.post("/v1/models/{name:model_name}:predict")
    async def predict(request: Request, name: str) -> JSONResponse:
        return await _predict_route(request, name, None)

    @app.post("/v1/models/{name:model_name}/versions/{version:int}:predict")
    async def predict_version(request: Request, name: str, version: int) -> JSONResponse:
        return await _predict_route(request, name, version)

    @app.get("/v1/models/{name:model_name}")
    def status(name: str) -> dict[str, Any]:
        return _status(name, None)

    @app.get("/v1/models/{name:model_name}/versions/{version:int}")
    def status_version(name: str, version: int) -> dict[str, Any]:
        return _status(name, version)

    @app.get("/v1/models/{name:model_name}/metadata")
    def metadata(name: str) -> dict[str, Any]:
        return _servable(name, None).metadata

    @app.get("/v1/models/{name:model_name}/versions/{version:int}/metadata")
    def metadata_version(name: str, version: int) -> dict[str, Any]:
        return _servable(name, version).metadata

    return app


class BackgroundServer:
    """Run an ASGI app with uvicorn in a daemon thread; ``stop()`` shuts it down and frees the port.

    Works inside a Jupyter kernel (uvicorn gets its own event loop in its own thread, and installs
    no signal handlers there). ``port=0`` lets the operating system pick a free port.
    """

    def __init__(self, app: Any, *, host: str = DEFAULT_HOST, port: int = 0):
        self.app, self.host, self.port = app, host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8501``."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 20.0) -> "BackgroundServer":
        """Start serving; return self once the socket accepts connections."""
        import uvicorn

        if self.running:
            return self
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_config=None, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="model-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(
                    f"The server could not start on {self.host}:{self.port} (is the port in use?)."
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("The server did not start in time.")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close the listening socket and wait for the thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ModelServer(BackgroundServer):
    """Serve SavedModels over TF Serving's REST API from a background thread.

    ``models`` maps a model name to a SavedModel directory (served as version 1) or to a folder
    of numbered versions (``1/``, ``2/``, ...) laid out as TF Serving expects. Binds to
    127.0.0.1 by default: only programs on this machine can reach it.
    """

    def __init__(
        self,
        models: Mapping[str, str | Path],
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_batch: int = MAX_BATCH,
    ):
        servables: dict[str, dict[int, Servable]] = {}
        for name, base in models.items():
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"{name!r} is not a valid model name (no '/' or ':').")
            servables[name] = {
                v: load_servable(p, name=name, version=v) for v, p in sorted(_versions(Path(base)).items())
            }
        self.models = servables
        super().__init__(
            make_app(servables, max_body_bytes=max_body_bytes, max_batch=max_batch), host=host, port=port
        )


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


class ServingError(Exception):
    """The server answered a predict request with an error: ``status`` and the server's ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


def rest_predict(
    base_url: str,
    model: str,
    instances: Any,
    *,
    version: int | None = None,
    session: Any = None,
    timeout: float = 10.0,
) -> np.ndarray:
    """POST ``instances`` to a TF Serving predict endpoint and return the predictions as an array.

    Raises :class:`ServingError` with the server's own message when the status is not 200.
    """
    import requests

    path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "") + ":predict"
    payload = {"instances": np.asarray(instances).tolist()}
    response = (session or requests).post(base_url.rstrip("/") + path, json=payload, timeout=timeout)
    if response.status_code != 200:
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200] or response.reason
        raise ServingError(response.status_code, str(message))
    return np.asarray(response.json()["predictions"], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Exporting at float32, however the model was trained
# ---------------------------------------------------------------------------------------------


def _float32_config(config: Any) -> Any:
    """Return a layer config with every mixed dtype policy (mixed_float16, mixed_bfloat16) made float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            name = str(config.get("config", {}).get("name", ""))
            if name.startswith("mixed_"):
                return {**config, "config": {**config["config"], "name": "float32"}}
            return config
        return {
            key: "float32"  # dtype="mixed_float16" given by name
            if key == "dtype" and isinstance(value, str) and value.startswith("mixed_")
            else _float32_config(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_float32_config(value) for value in config]
    return config


def _low_precision_layers(model: Any) -> list[str]:
    return [
        layer.name
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if str(layer.compute_dtype) in ("float16", "bfloat16")
    ]


def float32_model(model: Any) -> Any:
    """Return ``model`` if every layer computes in float32, else a float32 copy with the same weights.

    Under mixed precision (``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a TPU) layers compute
    in 16 bits but keep their variables in float32. A served model should take and return float32
    and compute in float32: TFLite's built-in ops and most serving runtimes expect it, and a
    SavedModel exported straight from a mixed-precision model carries float16 ops. The copy has
    the same architecture, each mixed policy replaced by float32, and the trained weights (copied
    exactly: they are float32 already). Its outputs differ from the original's by the 16-bit
    rounding the original made. Works for Sequential and functional models.
    """
    import keras

    if not _low_precision_layers(model):
        return model

    def clone(layer: Any) -> Any:
        return layer.__class__.from_config(_float32_config(layer.get_config()))

    try:
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError as error:  # a subclassed model: clone_model cannot rebuild it
        raise ValueError(
            f"float32_model cannot rebuild this {type(model).__name__} ({error}). Build it again after "
            "keras.mixed_precision.set_global_policy('float32') and copy the weights with "
            "new.set_weights(model.get_weights())."
        ) from None
    for layer in copy._flatten_layers(include_self=True, recursive=True):
        if layer.dtype_policy.name.startswith("mixed_"):  # the models and input layers clone_model made
            layer.dtype_policy = "float32"  # took the global policy: make them float32 too
    left = _low_precision_layers(copy)
    if left:
        raise ValueError(f"Could not make these layers compute in float32: {', '.join(left)}.")
    copy.set_weights(model.get_weights())
    return copy


_LOW_PRECISION = {"DT_HALF": "float16", "DT_BFLOAT16": "bfloat16"}


def low_precision_dtypes(export_dir: str | Path) -> set[str]:
    """Return the 16-bit float dtypes ("float16", "bfloat16") that a SavedModel's graph computes in."""
    import_tensorflow()
    from tensorflow.core.framework import types_pb2

    codes = {getattr(types_pb2, name): dtype for name, dtype in _LOW_PRECISION.items()}
    proto = _read_saved_model_proto(Path(export_dir))
    found: set[str] = set()
    for graph in proto.meta_graphs:
        nodes = list(graph.graph_def.node)
        for function in graph.graph_def.library.function:
            nodes.extend(function.node_def)
        for node in nodes:
            for attr in node.attr.values():
                for code in (attr.type, *attr.list.type):
                    if code in codes:
                        found.add(codes[code])
    return found


def _require_float32(saved_model_dir: str | Path, target: str) -> None:
    low = low_precision_dtypes(saved_model_dir)
    if low:
        raise ValueError(
            f"{saved_model_dir} computes in {' and '.join(sorted(low))}, as a model under mixed precision "
            f"does when it is exported as it is. {target} needs a float32 model: export "
            "utils.deploy.float32_model(model) instead of model (the same weights, computed in float32)."
        )


# ---------------------------------------------------------------------------------------------
# TFLite (LiteRT) and ONNX
# ---------------------------------------------------------------------------------------------


def to_tflite(
    saved_model_dir: str | Path,
    mode: str = "float32",
    representative: np.ndarray | None = None,
) -> bytes:
    """Convert a float32 SavedModel to a TFLite flatbuffer and return its bytes.

    ``mode``: ``"float32"`` (no quantisation), ``"float16"`` (post-training float16 quantisation:
    weights stored in float16, float32 input and output; a CPU turns the weights back into float32,
    a GPU delegate may compute in float16), ``"dynamic"`` (int8 weights, float activations), or
    ``"int8"`` (int8 weights and activations, int8 input and output; needs ``representative``, a
    few hundred typical inputs, to choose the activation ranges).

    Raises ValueError for a SavedModel that computes in float16 or bfloat16 (exported straight
    from a mixed-precision model): TFLite's built-in ops don't; export :func:`float32_model`.
    """
    tf = import_tensorflow()
    if mode not in ("float32", "float16", "dynamic", "int8"):
        raise ValueError(f"mode must be 'float32', 'float16', 'dynamic' or 'int8', not {mode!r}.")
    _require_float32(saved_model_dir, "TFLite")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if representative is None:
            raise ValueError("int8 conversion needs representative inputs to calibrate the activations.")
        samples = np.asarray(representative, dtype=np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([samples[i : i + 1]] for i in range(len(samples)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with _quiet_converter():
        return converter.convert()


class TFLiteModel:
    """Run a TFLite model with the LiteRT interpreter: ``model(x)`` → float32 outputs.

    Quantised (int8) inputs and outputs are converted with the model's scale s and zero point z:
    q = round(x / s) + z on the way in, x = s · (q − z) on the way out.
    """

    def __init__(self, content: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.content = content
        with _quiet_converter():
            self.interpreter = Interpreter(model_content=content, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = int(self._input["shape"][0])

    @property
    def input_dtype(self) -> np.dtype:
        """The dtype the model's input tensor holds (int8 for a fully quantised model)."""
        return np.dtype(self._input["dtype"])

    @property
    def input_quantization(self) -> tuple[float, int]:
        """The input's (scale, zero point); (0.0, 0) when the input is not quantised."""
        scale, zero = self._input["quantization"]
        return float(scale), int(zero)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` as the model's input dtype (rounded and clipped if the input is int8)."""
        scale, zero = self._input["quantization"]
        if self.input_dtype.kind not in "iu" or scale == 0:
            return np.asarray(x, dtype=self.input_dtype)
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(np.asarray(x) / scale) + zero, info.min, info.max).astype(self.input_dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[0] != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], list(x.shape))
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
            self._batch = x.shape[0]
        self.interpreter.set_tensor(self._input["index"], self.quantize(x))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        scale, zero = self._output["quantization"]
        if out.dtype.kind in "iu" and scale != 0:
            return (scale * (out.astype(np.float32) - zero)).astype(np.float32)
        return out


def to_onnx(saved_model_dir: str | Path, *, signature: str = "serving_default", opset: int = 17) -> bytes:
    """Convert a float32 SavedModel's serving signature to ONNX with tf2onnx; return the model's bytes.

    Goes through the SavedModel because tf2onnx's ``from_keras`` fails under Keras 3. Raises
    ValueError for a SavedModel that computes in float16 or bfloat16: export :func:`float32_model`.
    """
    tf = import_tensorflow()
    import tf2onnx

    _require_float32(saved_model_dir, "The ONNX export")

    loaded = tf.saved_model.load(str(saved_model_dir))
    fn = loaded.signatures[signature]
    specs = [
        tf.TensorSpec(spec.shape, spec.dtype, name=name)
        for name, spec in fn.structured_input_signature[1].items()
    ]
    names = [s.name for s in specs]
    wrapped = tf.function(lambda *args: fn(**dict(zip(names, args, strict=True))), input_signature=specs)
    with _quiet_converter():
        proto, _ = tf2onnx.convert.from_function(wrapped, input_signature=specs, opset=opset)
    return proto.SerializeToString()


class OnnxModel:
    """Run an ONNX model with onnxruntime on the CPU: ``model(x)`` → the first output."""

    def __init__(self, content: bytes, num_threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.content = content
        self.session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.asarray(x, dtype=np.float32)})[0]


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def size_bytes(path: str | Path) -> int:
    """Return the size of a file, or of every file under a directory, in bytes."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def time_call(
    fn: Callable[[], Any], *, repeats: int = 100, warmup: int = 3, max_seconds: float = 10.0
) -> float:
    """Return the median wall time of ``fn()`` in seconds, over ``repeats`` calls after ``warmup``.

    The median, not the mean: on a shared machine a few calls are slowed by other programs, and
    the median ignores them. Stops early (with at least 5 calls) once ``max_seconds`` have passed.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 5 and time.perf_counter() - start > max_seconds:
            break
    return float(np.median(times))


def latency_rows(
    paths: Mapping[str, Callable[[np.ndarray], Any]],
    inputs: Mapping[str, np.ndarray],
    *,
    repeats: int = 100,
    max_seconds: float = 10.0,
) -> list[dict[str, Any]]:
    """Time every inference path on every input; return rows of path, input, ms per call, samples/s."""
    rows = []
    for path_name, fn in paths.items():
        for input_name, x in inputs.items():
            seconds = time_call(lambda fn=fn, x=x: fn(x), repeats=repeats, max_seconds=max_seconds)
            rows.append(
                {
                    "path": path_name,
                    "input": input_name,
                    "batch": len(x),
                    "ms per call": 1e3 * seconds,
                    "samples/s": len(x) / seconds if seconds > 0 else math.inf,
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------
# Command line: python -m utils.deploy serve --model digits=exported/digits
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve SavedModels from a shell until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m utils.deploy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve SavedModels over TF Serving's REST API")
    serve.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    models = dict(item.split("=", 1) for item in args.model)
    with ModelServer(models, host=args.host, port=args.port) as server:
        print(f"Serving {', '.join(models)} on {server.url} (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
