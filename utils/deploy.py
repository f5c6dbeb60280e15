"""Deployment: a TF-Serving-compatible REST server and client, TFLite and ONNX conversion, latency.

* :class:`ModelServer` serves SavedModels over TensorFlow Serving's REST API (predict in the row
  and columnar formats, model status, model metadata, JSON errors): a plain ASGI app
  (:class:`ServingApp`) on uvicorn, with optional server-side batching (:class:`Batching`) and
  TF Serving's gRPC ``PredictionService/Predict`` (``grpc_port=``). It runs in a background
  thread that a notebook can stop, binds to 127.0.0.1 unless told otherwise, and answers every
  bad request with a 4xx and ``{"error": "..."}`` while staying up.
* :func:`rest_predict` is a client written against TF Serving's documented contract.
* :func:`float32_model` gives the float32 copy of a model trained under mixed precision, to export:
  a served model takes and returns float32 whatever precision it was trained in.
* :func:`to_tflite` / :class:`TFLiteModel` (LiteRT) and :func:`to_onnx` / :class:`OnnxModel`
  convert a float32 SavedModel and run it.
* :func:`time_call`, :func:`time_calls`, :func:`latency_rows` and :func:`size_bytes` measure;
  :func:`serve_in_process`, :func:`empty_server_process` (the floor), :class:`KeepAliveClient`
  and :func:`load_test` (throughput and p50/p99 latency under concurrent clients) measure a server.

``python -m utils.deploy serve --model NAME=PATH [--port 8501]`` runs the server from a shell.

Loading never runs untrusted Python: only SavedModel directories are accepted (no pickle, no
``.keras``), TensorFlow rebuilds them from their graph, only their serving signatures are called,
and a SavedModel whose graph contains ops that call back into Python or touch files is refused.
"""

import argparse
import asyncio
import contextlib
import json
import math
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
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
    "Batching",
    "KeepAliveClient",
    "ModelServer",
    "OnnxModel",
    "RequestError",
    "Servable",
    "ServingError",
    "ServingApp",
    "TFLiteModel",
    "empty_server_process",
    "float32_model",
    "latency_rows",
    "load_servable",
    "load_test",
    "low_precision_dtypes",
    "make_app",
    "predict_body",
    "rest_predict",
    "saved_model_ops",
    "serve_in_process",
    "size_bytes",
    "time_call",
    "time_calls",
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
    # INFO and WARNING lines in absl's format (TF 2.21) and in TensorFlow's older one (TF 2.20 on
    # Colab prints "2026-12-04 16:49:52.125486: W .../flatbuffer_export.cc] Skipping runtime version
    # metadata"); errors stay visible
    r"fully_quantize: |Created TensorFlow Lite XNNPACK delegate|^[IW]\d{4} \d\d:\d\d:\d\d|"
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] |"
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
# The predict API: request in, arrays to the model, response out (TF Serving's JSON formats)
# ---------------------------------------------------------------------------------------------


def _shape_text(shape: Iterable[Any]) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def _to_tensor(value: Any, spec: Any, what: str, max_batch: int) -> np.ndarray:
    """Turn one JSON value (or a NumPy array) into an array that fits ``spec`` (TensorSpec), or raise RequestError.

    One pass of ``np.asarray`` over the nested lists does the work; its inferred dtype tells numbers
    (float64 or int64) from strings, booleans and nulls, which a conversion straight to float32 would
    accept ("0", True) or turn into NaN (null).
    """
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
    expected = spec.shape.as_list() if spec.shape.rank is not None else None
    if expected is not None and (
        arr.ndim != len(expected)
        or any(e is not None and e != g for e, g in zip(expected, arr.shape, strict=False))
    ):
        raise RequestError(400, f"{what}: expected shape {_shape_text(expected)}, got {list(arr.shape)}.")
    if arr.ndim and arr.shape[0] == 0:
        raise RequestError(400, f"{what}: the batch is empty; send at least one instance.")
    if arr.ndim and arr.shape[0] > max_batch:
        raise RequestError(413, f"{what}: {arr.shape[0]} instances is more than the limit of {max_batch}.")
    target = np.dtype(spec.dtype.as_numpy_dtype)
    if target.kind == "f":
        with np.errstate(over="ignore"):
            out = arr.astype(target, copy=False)
        if out.dtype.kind == "f" and not np.isfinite(out).all():
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
        return arr.astype(target, copy=False)
    raise RequestError(400, f"{what}: this server only serves numeric inputs, not {target.name}.")


@dataclass
class _Request:
    """A checked predict request: the signature to call and one array per input."""

    signature: str
    arrays: dict[str, np.ndarray]
    row: bool  # row format (instances -> predictions) or columnar (inputs -> outputs)
    rows: int | None  # the batch size when every input has the same leading axis, else None


def _signature(servable: Servable, sig_name: Any) -> str:
    if not isinstance(sig_name, str) or sig_name not in servable.signatures:
        known = ", ".join(sorted(servable.signatures))
        raise RequestError(400, f"Serving signature {sig_name!r} not found; this model has: {known}.")
    return sig_name


def _batch_rows(arrays: Mapping[str, np.ndarray]) -> int | None:
    sizes = {a.shape[0] if a.ndim else None for a in arrays.values()}
    return sizes.pop() if len(sizes) == 1 else None


def _parse_predict(servable: Servable, body: Any, *, max_batch: int) -> _Request:
    """Check a TF Serving predict body and turn it into arrays; raise :class:`RequestError` if it is bad."""
    if not isinstance(body, dict):
        raise RequestError(
            400, 'The request body must be a JSON object such as {"instances": [...]} or {"inputs": ...}.'
        )
    sig_name = _signature(servable, body.get("signature_name", "serving_default"))
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
        if isinstance(data[0], dict):
            names = set(data[0])
            if names != set(specs) or any(not isinstance(i, dict) or set(i) != names for i in data):
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
    arrays = {k: _to_tensor(v, specs[k], f"input {k!r}", max_batch) for k, v in columns.items()}
    rows = _batch_rows(arrays)
    if row and rows is None:
        raise RequestError(400, "All inputs must have the same number of instances.")
    return _Request(sig_name, arrays, row, rows)


def _run(servable: Servable, sig_name: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Call one serving signature on arrays; return its outputs as arrays (RequestError if it refuses)."""
    tf = import_tensorflow()
    try:
        result = servable.signatures[sig_name](**{k: tf.constant(v) for k, v in arrays.items()})
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
        message = getattr(error, "message", None) or str(error)
        raise RequestError(400, f"The model rejected the input: {message.splitlines()[0][:300]}") from None
    return {k: v.numpy() for k, v in result.items()}


def _answer(outputs: Mapping[str, np.ndarray], row: bool) -> dict[str, Any]:
    """Shape a predict answer as TF Serving does: predictions (row format) or outputs (columnar)."""
    if row:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).tolist()}
        n = next(iter(outputs.values())).shape[0]
        return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(n)]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values())).tolist()}
    return {"outputs": {k: v.tolist() for k, v in outputs.items()}}


def _predict(servable: Servable, body: Any, *, max_batch: int) -> dict[str, Any]:
    request = _parse_predict(servable, body, max_batch=max_batch)
    return _answer(_run(servable, request.signature, request.arrays), request.row)


# ---------------------------------------------------------------------------------------------
# Server-side batching (TF Serving's --enable_batching)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batching:
    """Server-side batching options, named as in TF Serving's batching parameters file.

    Requests for the same model and signature that arrive together run as one call of the model.
    A batch closes when it holds ``max_batch_size`` instances, or ``batch_timeout_micros`` after
    its first request arrived, whichever comes first: that is the longest a request waits for
    company. ``num_batch_threads`` batches run at a time. At most ``max_enqueued_batches`` full
    batches may wait; a request beyond that gets 503 (the server is overloaded: try again later).
    A request larger than ``max_batch_size`` runs as a batch of its own.
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 1
    max_enqueued_batches: int = 100

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"Batching.{name} must be a whole number of at least 1.")
        if not (isinstance(self.batch_timeout_micros, int) and self.batch_timeout_micros >= 0):
            raise ValueError("Batching.batch_timeout_micros must be a whole number of at least 0.")


class _Task:
    __slots__ = ("arrays", "rows", "future", "arrival", "shapes")

    def __init__(self, arrays: dict[str, np.ndarray], rows: int):
        self.arrays, self.rows = arrays, rows
        self.future: Future = Future()
        self.arrival = time.monotonic()
        self.shapes = tuple((k, a.shape[1:], a.dtype.str) for k, a in arrays.items())


class _Batcher:
    """One queue of requests for one signature, and the thread(s) that run them in batches."""

    def __init__(self, run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], options: Batching):
        self._run, self.options = run, options
        self._timeout = options.batch_timeout_micros / 1e6
        self._capacity = options.max_batch_size * options.max_enqueued_batches
        self._cond = threading.Condition()
        self._queue: deque[_Task] = deque()
        self._queued_rows = 0
        self._closed = False
        self.batches = self.instances = 0  # counters: the mean batch size is instances / batches
        self._threads = [
            threading.Thread(target=self._work, name=f"batching-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, arrays: dict[str, np.ndarray], rows: int) -> Future:
        """Queue one request; return a future of its outputs (its own rows only)."""
        task = _Task(arrays, rows)
        with self._cond:
            if self._closed:
                raise RequestError(503, "The server is shutting down.")
            if self._queued_rows and self._queued_rows + rows > self._capacity:
                raise RequestError(
                    503, "The batching queue is full: the server is overloaded, try again later."
                )
            self._queue.append(task)
            self._queued_rows += rows
            self._cond.notify()
        return task.future

    def close(self) -> None:
        """Stop the threads; requests still queued get 503."""
        with self._cond:
            self._closed = True
            left, self._queue = list(self._queue), deque()
            self._cond.notify_all()
        for task in left:
            if task.future.set_running_or_notify_cancel():
                task.future.set_exception(RequestError(503, "The server is shutting down."))

    def _take(self) -> list[_Task] | None:
        """Wait for a batch to close (full, or its first request's timeout passed); return its tasks."""
        options = self.options
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            deadline = self._queue[0].arrival + self._timeout
            while self._queued_rows < options.max_batch_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if not self._queue:
                return [] if not self._closed else None
            tasks, rows, shapes = [], 0, self._queue[0].shapes
            while self._queue:
                task = self._queue[0]
                if tasks and (rows + task.rows > options.max_batch_size or task.shapes != shapes):
                    break
                self._queue.popleft()
                self._queued_rows -= task.rows
                if task.future.set_running_or_notify_cancel():  # False: the client went away
                    tasks.append(task)
                    rows += task.rows
            if self._queue:
                self._cond.notify()  # another batch thread may start on the rest
            return tasks

    def _work(self) -> None:
        while (tasks := self._take()) is not None:
            if tasks:
                self._run_batch(tasks)

    def _settle(self, task: _Task, outputs: Callable[[], dict[str, np.ndarray]]) -> None:
        try:
            task.future.set_result(outputs())
        except BaseException as error:  # noqa: BLE001  (handed to the request that waits for it)
            task.future.set_exception(error)

    def _run_batch(self, tasks: list[_Task]) -> None:
        self.batches += 1
        self.instances += sum(t.rows for t in tasks)
        if len(tasks) == 1:
            self._settle(tasks[0], lambda: self._run(tasks[0].arrays))
            return
        try:
            arrays = {k: np.concatenate([t.arrays[k] for t in tasks]) for k in tasks[0].arrays}
            outputs = self._run(arrays)
            total = sum(t.rows for t in tasks)
            if any(v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
                raise ValueError("an output has no batch axis")
        except Exception:  # noqa: BLE001  one bad request must not fail its neighbours: run each alone
            for task in tasks:
                self._settle(task, lambda task=task: self._run(task.arrays))
            return
        offsets = np.cumsum([t.rows for t in tasks])[:-1]
        pieces = {k: np.split(v, offsets) for k, v in outputs.items()}
        for i, task in enumerate(tasks):
            task.future.set_result({k: p[i] for k, p in pieces.items()})


# ---------------------------------------------------------------------------------------------
# The web application: a plain ASGI app (no framework), and a server that runs it in a thread
# ---------------------------------------------------------------------------------------------

_NAME = "[^/:]+"  # a model name: like TF Serving, no slash and no colon
_ROUTE = re.compile(
    rf"/v1/models/(?P<name>{_NAME})(?:/versions/(?P<version>[0-9]+))?(?P<what>:predict|/metadata)?"
)
_JSON_HEADERS = [(b"content-type", b"application/json")]


class ServingApp:
    """The ASGI application serving ``models`` ({name: {version: Servable}}) over TF Serving's REST API.

    Routes: ``POST /v1/models/<name>[/versions/<v>]:predict``, ``GET /v1/models/<name>[/versions/<v>]``
    (status) and ``GET .../metadata``. Every error is ``{"error": "..."}`` with a 4xx status: 400 bad
    request, 404 unknown model, version or route, 405 wrong method, 413 body or batch too large
    (and 503 when the batching queue is full).

    Where the time goes, and why it is written this way: a framework's routing, request objects and
    a hop to a thread pool for each call cost more than the model's own 0.5 ms. Here a regular
    expression routes, the body is read from the ASGI messages directly, ``np.asarray`` turns the
    JSON into an array in one pass, and the model runs on the event loop's own thread (nothing else
    waits for it: one model call is the work). With :class:`Batching`, requests go to a queue that
    a dedicated thread drains in batches, while the event loop goes on reading requests.
    """

    def __init__(
        self,
        models: Mapping[str, Mapping[int, Servable]],
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_batch: int = MAX_BATCH,
        batching: Batching | None = None,
    ):
        self.models, self.max_body_bytes, self.max_batch = models, max_body_bytes, max_batch
        self.batching = batching
        self._batchers: dict[tuple[str, int, str], _Batcher] = {}
        self._lock = threading.Lock()

    # -- the model side, shared with the gRPC endpoint ------------------------------------------

    def servable(self, name: str, version: int | None) -> Servable:
        """Return the servable for a model name and version (None: the latest); RequestError 404 if none."""
        if name not in self.models:
            raise RequestError(404, f"Servable not found for request: model {name!r} is not served here.")
        versions = self.models[name]
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise RequestError(
                404, f"Servable not found for request: model {name!r} has no version {version}."
            )
        return versions[version]

    def _batcher(self, servable: Servable, sig_name: str) -> _Batcher:
        key = (servable.name, servable.version, sig_name)
        batcher = self._batchers.get(key)
        if batcher is None:
            with self._lock:
                batcher = self._batchers.get(key)
                if batcher is None:
                    run = lambda arrays: _run(servable, sig_name, arrays)  # noqa: E731
                    batcher = self._batchers[key] = _Batcher(run, self.batching)
        return batcher

    def submit(self, servable: Servable, request: _Request) -> Future | dict[str, np.ndarray]:
        """Run a checked request: its outputs now (no batching), or a future of them (batching)."""
        if self.batching is not None and request.rows is not None:
            return self._batcher(servable, request.signature).submit(request.arrays, request.rows)
        return _run(servable, request.signature, request.arrays)

    @property
    def batch_stats(self) -> dict[str, float]:
        """Batches run and instances answered since the start, and the mean batch size."""
        batches = sum(b.batches for b in self._batchers.values())
        instances = sum(b.instances for b in self._batchers.values())
        return {"batches": batches, "instances": instances, "mean batch size": instances / max(batches, 1)}

    def close(self) -> None:
        """Stop the batching threads (a new request starts them again)."""
        with self._lock:
            batchers, self._batchers = list(self._batchers.values()), {}
        for batcher in batchers:
            batcher.close()

    # -- HTTP ------------------------------------------------------------------------------------

    def _status(self, name: str, version: int | None) -> dict[str, Any]:
        self.servable(name, version)  # 404 for an unknown model or version
        versions = self.models[name]
        chosen = [version] if version is not None else sorted(versions, reverse=True)
        ok = {"error_code": "OK", "error_message": ""}
        return {
            "model_version_status": [{"version": str(v), "state": "AVAILABLE", "status": ok} for v in chosen]
        }

    async def _read_json(self, scope: dict[str, Any], receive: Callable[[], Any]) -> Any:
        too_large = f"The request body is larger than the limit of {self.max_body_bytes} bytes."
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                raise RequestError(413, too_large)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "The client went away before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise RequestError(413, too_large)
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            return json.loads(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        except (ValueError, RecursionError) as error:
            raise RequestError(400, f"The request body is not valid JSON ({str(error)[:120]}).") from None

    async def _respond(self, scope: dict[str, Any], receive: Callable[[], Any]) -> tuple[int, Any, list]:
        method, path = scope["method"], scope["path"]
        match = _ROUTE.fullmatch(path)
        if match is None:
            raise RequestError(404, f"No route for {method} {path}.")
        name, what = match["name"], match["what"]
        version = int(match["version"]) if match["version"] else None
        allowed = "POST" if what == ":predict" else "GET"
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            return 405, {"error": "Method not allowed."}, [(b"allow", allowed.encode())]
        if what == ":predict":
            servable = self.servable(name, version)
            request = _parse_predict(
                servable, await self._read_json(scope, receive), max_batch=self.max_batch
            )
            outputs = self.submit(servable, request)
            if isinstance(outputs, Future):
                outputs = await asyncio.wrap_future(outputs)
            return 200, _answer(outputs, request.row), []
        if what == "/metadata":
            return 200, self.servable(name, version).metadata, []
        return 200, self._status(name, version), []

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        try:
            status, payload, headers = await self._respond(scope, receive)
        except RequestError as error:
            status, payload, headers = error.status, {"error": error.message}, []
        except Exception as error:  # noqa: BLE001  the server stays up; the client gets a JSON 500
            status, payload, headers = 500, {"error": f"Internal error: {type(error).__name__}."}, []
        body = json.dumps(payload, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", b"%d" % len(body)), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})


def make_app(
    models: Mapping[str, Mapping[int, Servable]],
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_batch: int = MAX_BATCH,
    batching: Batching | None = None,
) -> ServingApp:
    """Return the ASGI application serving ``models`` ({name: {version: Servable}}): see :class:`ServingApp`."""
    return ServingApp(models, max_body_bytes=max_body_bytes, max_batch=max_batch, batching=batching)


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
        if self.running:
            return self
        self._server = _uvicorn_server(self.app, self.host, self.port)
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


def _uvicorn_server(app: Any, host: str, port: int) -> Any:
    """A uvicorn server for ``app``, quiet, with the C HTTP parser (httptools) when it is installed."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level="warning", access_log=False)
    return uvicorn.Server(config)


class ModelServer(BackgroundServer):
    """Serve SavedModels over TF Serving's REST API (and optionally gRPC) from a background thread.

    ``models`` maps a model name to a SavedModel directory (served as version 1) or to a folder
    of numbered versions (``1/``, ``2/``, ...) laid out as TF Serving expects. Binds to
    127.0.0.1 by default: only programs on this machine can reach it.

    ``batching=Batching(...)`` turns on server-side batching (TF Serving's ``--enable_batching``).
    ``grpc_port`` (0 picks a free port) also serves TF Serving's gRPC API,
    ``tensorflow.serving.PredictionService/Predict``, so that TF Serving's own Python client
    (``tensorflow-serving-api``, which must be installed for this) works unchanged.
    """

    def __init__(
        self,
        models: Mapping[str, str | Path],
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_batch: int = MAX_BATCH,
        batching: Batching | None = None,
        grpc_port: int | None = None,
    ):
        servables: dict[str, dict[int, Servable]] = {}
        for name, base in models.items():
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"{name!r} is not a valid model name (no '/' or ':').")
            servables[name] = {
                v: load_servable(p, name=name, version=v) for v, p in sorted(_versions(Path(base)).items())
            }
        self.models = servables
        self.grpc_port = grpc_port
        self._grpc: Any = None
        super().__init__(
            make_app(servables, max_body_bytes=max_body_bytes, max_batch=max_batch, batching=batching),
            host=host,
            port=port,
        )

    @property
    def grpc_target(self) -> str | None:
        """``host:port`` of the gRPC endpoint (what ``grpc.insecure_channel`` takes), or None."""
        return f"{self.host}:{self.grpc_port}" if self._grpc is not None else None

    def start(self, timeout: float = 20.0) -> "ModelServer":
        super().start(timeout)
        if self.grpc_port is not None and self._grpc is None:
            try:
                self._grpc, self.grpc_port = _start_grpc(self.app, self.host, self.grpc_port)
            except BaseException:
                super().stop()
                raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=1.0).wait(timeout)
            self._grpc = None
        super().stop(timeout)
        self.app.close()


# ---------------------------------------------------------------------------------------------
# gRPC: TF Serving's PredictionService/Predict, for TF Serving's own client
# ---------------------------------------------------------------------------------------------

_GRPC_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


def _grpc_predict(app: ServingApp, request: Any) -> Any:
    """Answer a ``tensorflow.serving.PredictRequest`` with a ``PredictResponse`` (RequestError if bad)."""
    tf = import_tensorflow()
    from tensorflow_serving.apis import predict_pb2

    spec = request.model_spec
    if spec.WhichOneof("version_choice") == "version_label":
        raise RequestError(400, "Version labels are not supported here; ask for a version number.")
    version = spec.version.value if spec.HasField("version") else None
    servable = app.servable(spec.name, version)
    sig_name = _signature(servable, spec.signature_name or "serving_default")
    specs = servable.inputs[sig_name]
    if set(request.inputs) != set(specs):
        raise RequestError(400, f"inputs must name exactly these inputs: {', '.join(sorted(specs))}.")
    arrays = {}
    for key, proto in request.inputs.items():
        try:
            value = tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise RequestError(400, f"input {key!r}: not a tensor this server can read ({error}).") from None
        arrays[key] = _to_tensor(value, specs[key], f"input {key!r}", app.max_batch)
    outputs = app.submit(servable, _Request(sig_name, arrays, False, _batch_rows(arrays)))
    if isinstance(outputs, Future):
        outputs = outputs.result()
    wanted = list(request.output_filter) or list(outputs)
    unknown = sorted(set(wanted) - set(outputs))
    if unknown:
        raise RequestError(400, f"output_filter names unknown outputs: {', '.join(unknown)}.")
    response = predict_pb2.PredictResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = sig_name
    for key in wanted:
        response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
    return response


def _start_grpc(app: ServingApp, host: str, port: int) -> tuple[Any, int]:
    """Start a gRPC server answering PredictionService/Predict for ``app``; return (server, port)."""
    try:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc
    except ImportError:
        raise RuntimeError(
            "The gRPC endpoint needs TF Serving's API package: pip install tensorflow-serving-api==2.21.0"
        ) from None

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802  (gRPC's method name)
            try:
                return _grpc_predict(app, request)
            except RequestError as error:
                context.abort(
                    getattr(grpc.StatusCode, _GRPC_CODES.get(error.status, "INTERNAL")), error.message
                )

    limit = app.max_body_bytes
    server = grpc.server(
        ThreadPoolExecutor(max_workers=8, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise RuntimeError(f"The gRPC endpoint could not bind {host}:{port} (is the port in use?).")
    server.start()
    return server, bound


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


def time_calls(
    fn: Callable[[], Any], *, repeats: int = 100, warmup: int = 3, max_seconds: float = 10.0
) -> np.ndarray:
    """Return the wall time of each of up to ``repeats`` calls of ``fn()`` in seconds, after ``warmup`` calls.

    Stops early (with at least 5 calls) once ``max_seconds`` have passed.
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
    return np.asarray(times)


def time_call(
    fn: Callable[[], Any], *, repeats: int = 100, warmup: int = 3, max_seconds: float = 10.0
) -> float:
    """Return the median wall time of ``fn()`` in seconds, over ``repeats`` calls after ``warmup``.

    The median, not the mean: on a shared machine a few calls are slowed by other programs, and
    the median ignores them. Stops early (with at least 5 calls) once ``max_seconds`` have passed.
    """
    return float(np.median(time_calls(fn, repeats=repeats, warmup=warmup, max_seconds=max_seconds)))


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
# Measuring a server: in its own process, against an empty app, under load
# ---------------------------------------------------------------------------------------------


class KeepAliveClient:
    """A lean HTTP client: one kept-alive connection (``http.client``), bytes in and bytes out.

    ``post(path, body)`` returns the response body and raises :class:`ServingError` on a status
    other than 200. It costs a few tens of microseconds a request, where ``requests`` costs
    several hundred: measure a server with it, so that the client is not what you measure.
    """

    def __init__(self, base_url: str, timeout: float = 10.0):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self._headers = {"Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> bytes:
        """POST ``body`` to ``path`` on the kept-alive connection; return the answer's body."""
        self.connection.request("POST", path, body, self._headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise ServingError(response.status, data[:200].decode(errors="replace"))
        return data

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "KeepAliveClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def predict_body(instances: Any) -> bytes:
    """The JSON body of a row-format predict request for ``instances``, as bytes."""
    return json.dumps({"instances": np.asarray(instances).tolist()}).encode()


def _child_env() -> dict[str, str]:
    """This process's environment, with the course on the child's import path."""
    import os

    path = [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}


@contextlib.contextmanager
def _child_server(args: list[str], timeout: float) -> Iterator[str]:
    """Run ``python -m utils.deploy ARGS`` until the block ends; yield the URL it prints first."""
    import queue
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "utils.deploy", *args],
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            env=_child_env(),
            text=True,
        )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
        try:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                line = ""
            match = re.search(r"http://\S+", line)
            if not match:
                process.kill()
                process.wait()
                errors.seek(0)
                tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError("The server process did not start:\n" + "\n".join(tail))
            yield match.group(0)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            process.stdout.close()


def serve_in_process(
    models: Mapping[str, str | Path],
    *,
    batching: Batching | None = None,
    host: str = DEFAULT_HOST,
    timeout: float = 120.0,
) -> contextlib.AbstractContextManager[str]:
    """Run a :class:`ModelServer` in a process of its own; a context manager that yields its base URL.

    A server in a thread of your kernel shares the kernel's GIL (Python runs one thread at a time)
    with your client; in its own process it does not, as in production. The process stops when the
    ``with`` block ends.
    """
    args = ["serve", "--host", host, "--port", "0"]
    for name, path in models.items():
        args += ["--model", f"{name}={path}"]
    if batching is not None:
        args += [
            "--enable-batching",
            f"--max-batch-size={batching.max_batch_size}",
            f"--batch-timeout-micros={batching.batch_timeout_micros}",
            f"--num-batch-threads={batching.num_batch_threads}",
            f"--max-enqueued-batches={batching.max_enqueued_batches}",
        ]
    return _child_server(args, timeout)


def empty_server_process(
    *, host: str = DEFAULT_HOST, timeout: float = 60.0
) -> contextlib.AbstractContextManager[str]:
    """Run the floor, an empty ASGI app on uvicorn, in its own process; yields its base URL.

    It reads the body of every request and answers ``{"predictions": [[0.0]]}``: what any server
    on uvicorn pays for HTTP before it does any work. A model server cannot beat it.
    """
    return _child_server(["empty", "--host", host, "--port", "0"], timeout)


async def _empty_app(scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    body = b'{"predictions":[[0.0]]}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_JSON_HEADERS, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def load_test(
    url: str,
    model: str,
    instances: Any,
    *,
    clients: int = 8,
    seconds: float = 2.0,
    warmup: float = 0.5,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Send predict requests from ``clients`` concurrent connections for ``seconds``; return what it measured.

    The load comes from a separate process (so that it does not share the GIL with your kernel),
    with one kept-alive HTTP/1.1 connection per client on asyncio: each client sends a request,
    waits for the answer, and sends the next. Requests in the first ``warmup`` seconds are not
    counted. Returns ``{"clients", "requests", "req/s", "p50 ms", "p99 ms", "errors"}``: answers
    per second, the median and 99th percentile of the time a request waited, and how many answers
    were not 200.
    """
    import subprocess
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    config = {
        "host": parts.hostname,
        "port": parts.port,
        "path": f"/v1/models/{model}:predict",
        "body": predict_body(instances).decode(),
        "clients": clients,
        "seconds": seconds,
        "warmup": warmup,
    }
    done = subprocess.run(
        [sys.executable, "-m", "utils.deploy", "load"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=timeout or (seconds + warmup + 60),
        env=_child_env(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"The load generator failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def _load(config: dict[str, Any]) -> dict[str, Any]:
    """Run the load generator described by ``config`` (see :func:`load_test`) in this process."""
    host, port, clients = config["host"], config["port"], config["clients"]
    body = config["body"].encode()
    request = (
        f"POST {config['path']} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    clock = time.perf_counter
    begin = clock() + config["warmup"]
    end = begin + config["seconds"]
    length_re = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)

    class Client(asyncio.Protocol):
        def __init__(self, finished: asyncio.Future):
            self.finished, self.buffer, self.sent = finished, bytearray(), 0.0

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.send()

        def send(self) -> None:
            self.sent = clock()
            self.transport.write(request)

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buffer[:head_end])
            size = int(length_re.search(head).group(1))
            if len(self.buffer) < head_end + 4 + size:
                return
            del self.buffer[: head_end + 4 + size]
            now = clock()
            if self.sent >= begin and now <= end:
                status = int(head[9:12])
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(now - self.sent)
            if now < end:
                self.send()
            else:
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.finished.done():
                self.finished.set_result(None)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        waits = []
        for _ in range(clients):
            finished = loop.create_future()
            await loop.create_connection(lambda f=finished: Client(f), host, port)
            waits.append(finished)
        await asyncio.gather(*waits)

    asyncio.run(run())
    ms = 1e3 * np.asarray(latencies or [math.nan])
    count = len(latencies)
    return {
        "clients": clients,
        "requests": count,
        "req/s": count / config["seconds"],
        "p50 ms": float(np.percentile(ms, 50)),
        "p99 ms": float(np.percentile(ms, 99)),
        "errors": count - statuses.get(200, 0),
    }


# ---------------------------------------------------------------------------------------------
# Command line: python -m utils.deploy serve --model digits=exported/digits
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve SavedModels from a shell until Ctrl-C (and the helpers' child processes)."""
    parser = argparse.ArgumentParser(prog="python -m utils.deploy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve SavedModels over TF Serving's REST API")
    serve.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--grpc-port", type=int, default=None, help="also serve TF Serving's gRPC API here")
    serve.add_argument("--enable-batching", action="store_true", help="batch requests that arrive together")
    defaults = Batching()
    for option in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
        serve.add_argument("--" + option.replace("_", "-"), type=int, default=getattr(defaults, option))
    empty = sub.add_parser("empty", help="an empty ASGI app on uvicorn: the floor a server cannot beat")
    empty.add_argument("--host", default=DEFAULT_HOST)
    empty.add_argument("--port", type=int, default=8500)
    sub.add_parser("load", help="the load generator of load_test (reads its settings as JSON on stdin)")
    args = parser.parse_args(argv)

    if args.command == "load":
        print(json.dumps(_load(json.loads(sys.stdin.read()))))
        return 0
    if args.command == "empty":
        background = BackgroundServer(_empty_app, host=args.host, port=args.port).start()
        print(f"Serving an empty app on {background.url} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while background.running:
                time.sleep(0.5)
        return 0
    models = dict(item.split("=", 1) for item in args.model)
    batching = (
        Batching(
            max_batch_size=args.max_batch_size,
            batch_timeout_micros=args.batch_timeout_micros,
            num_batch_threads=args.num_batch_threads,
            max_enqueued_batches=args.max_enqueued_batches,
        )
        if args.enable_batching
        else None
    )
    with ModelServer(
        models, host=args.host, port=args.port, batching=batching, grpc_port=args.grpc_port
    ) as server:
        grpc = f", gRPC on {server.grpc_target}" if server.grpc_target else ""
        print(f"Serving {', '.join(models)} on {server.url}{grpc} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
