"""The gpu profile at full size, proven on the CPU (a "shape run"), and its training time estimated on paper.

    python benchmarks/gpu_shapes.py                     # every lesson and lab solution
    python benchmarks/gpu_shapes.py notebooks/05_residual_networks.ipynb
    python benchmarks/gpu_shapes.py --json shape-run.json   # also keep every record

Each notebook runs in a fresh kernel with ``COURSE_EMULATE=t4`` (``COURSE_PROFILE`` unset), so
``utils.env.setup()`` picks the gpu profile and the ``mixed_float16`` policy exactly as on a Colab
T4, while everything computes on this CPU. ``COURSE_OFFLINE=1``; the download datasets come from a
data folder of files in the publishers' genuine formats at the real datasets' *training* sizes
(MNIST and Fashion-MNIST 60,000 28×28 images, CIFAR-10 50,000 32×32×3 images; test splits cut to
1,000 images), written once by ``tests/fixtures/genuine_data.py`` into ``--data-dir``: so every
model meets the real per-sample shapes and the real number of training samples. The notebook files
are never changed: one code cell (``HOOK`` below) is put in front of the first cell, in memory. It

* wraps ``keras.Model.fit``: every fit builds the real model on the real data shapes, then runs
  ONE training step on a small batch (``min(batch_size, 8)`` rows, one epoch). It records the
  model's name, ``count_params()``, the per-sample input shapes, the batch size, samples and epochs
  the notebook asked for (what the gpu profile really trains), forward FLOPs per sample and an
  activation-memory estimate (rules below);
* wraps ``tf.function``: a training step written by hand (a ``tf.function`` whose name contains
  "step", defined in a notebook or in ``utils``: the GAN, the masked-language-model pretraining and
  fine-tuning, the tf.distribute and timing steps of lessons 07-09) runs for real on its first call;
  later calls are counted (with the rows they were given) and skipped, returning the first call's
  result. The loops themselves, their bounds and their input pipelines run as written;
* replaces ``utils.checks.checkpoint`` by a version that prints but never asserts: after one step
  a lesson's accuracy floor means nothing. Exercise checks (``COURSE_CHECKS_STRICT=1``) and the
  notebooks' own ``assert`` statements still run.

Cells run with ``allow_errors``: a failing cell is reported and the next one runs. Errors in cells
that test what training achieved are artefacts of the shape run; a shape or dtype error raised at
gpu size is what this script is for. To tell them apart, every notebook with a failing cell runs
once more, on the smoke profile, same device, without the hook (``--no-control`` skips this): a
cell that fails there too fails at every size; one that fails only in the shape run fails at gpu
size or because training was cut to one step (read the cell to know which).

Rules of the estimate (printed with the table):

* forward FLOPs per sample: TensorFlow's graph profiler
  (``tf.compat.v1.profiler.profile(graph, options=ProfileOptionBuilder.float_operation())``) on a
  concrete function of ``model(x, training=False)`` at batch 1; for a graph with a ``While`` loop
  (an RNN) whose body the profiler does not see, an analytic count of the Dense, convolution,
  attention and RNN layers instead. A hand-written step is profiled whole (forward, backward and
  update) at the batch it was called with;
* training FLOPs: fit: 3 × forward FLOPs × samples × epochs; a hand-written step: its profiled
  FLOPs × the number of calls;
* activation memory: the sum over the model's layers (nested models expanded, the input layer
  left out) of each layer's output elements per sample × the gpu batch × the bytes of the
  output's dtype (2 for float16 under mixed_float16, 4 for float32 heads); tensors inside a
  custom layer (a Transformer block's attention weights and feed-forward hidden layer) are not
  counted;
* time = training FLOPs / (peak × utilisation), with T4 65 TFLOP/s and A100 312 TFLOP/s
  (dense float16 tensor-core peaks) and 25 % utilisation. Small models often reach less, and input
  pipelines, evaluation, per-step overheads and Python are not counted: the "steps" column says
  how many optimizer steps the gpu profile takes, to multiply by your own time per step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tools` importable
    sys.path.insert(0, str(ROOT))

from tools.notebook_runner import run_notebook  # noqa: E402

PEAKS = {"T4": 65e12, "A100": 312e12}  # FLOP/s, dense float16 (A100: also bfloat16) on tensor cores
UTILISATION = 0.25
FLAG_MINUTES = 10.0  # flag a notebook whose T4 estimate exceeds this
SMALL_BATCH = 8
TEST_IMAGES = 1_000
DEFAULT_DATA = Path.home() / ".cache" / "dl-course" / "shape-run-data"

# Run in each kernel before the notebook's first cell. Every failure inside the hook's own
# bookkeeping is caught: the notebook must run as it would without it, bar the capped training.
HOOK = r'''
# Shape run (benchmarks/gpu_shapes.py): this cell exists only in memory, never in the notebook file.
def _shape_run_install():
    import contextlib
    import functools
    import inspect
    import io
    import json
    import logging
    import math
    import os
    import time

    import numpy as np

    import utils
    import utils.checks

    tf = utils.env.import_tensorflow()
    import keras

    log_path = os.environ["SHAPE_RUN_LOG"]
    small = int(os.environ.get("SHAPE_RUN_BATCH", "8"))
    shell = get_ipython()
    real_function = tf.function
    real_fit = keras.Model.fit
    fit_signature = inspect.signature(real_fit)
    real_checkpoint = utils.checks.checkpoint
    # This cell is the kernel's first (In [1]); IPython may already count the next one while a cell runs.
    offset = shell.execution_count - 1

    def cell_count():
        return shell.execution_count - offset

    def emit(record):
        record.setdefault("execution_count", cell_count())
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def short(exc):
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0][:300] if text else ''}"

    def leaves(x):
        return [a for a in tf.nest.flatten(x) if hasattr(a, "shape") and len(a.shape) > 0]

    def take(x, n):
        return tf.nest.map_structure(lambda a: a[:n] if hasattr(a, "shape") and len(a.shape) > 0 else a, x)

    def per_sample(x):
        return [tuple(int(d) if d is not None else None for d in a.shape[1:]) for a in leaves(x)]

    def itemsize(dtype):
        name = str(getattr(dtype, "name", dtype))
        return {"float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "bool": 1, "uint8": 1, "int8": 1}.get(name, 4)

    def walk(model):
        for layer in getattr(model, "layers", []):
            if isinstance(layer, keras.Model) and getattr(layer, "layers", None):
                yield from walk(layer)
            else:
                yield layer

    def outputs_of(layer):
        try:
            return tf.nest.flatten(layer.output)
        except Exception:  # a layer called more than once: every call's output
            try:
                return [t for node in layer._inbound_nodes for t in tf.nest.flatten(node.output_tensors)]
            except Exception:
                return []

    def activation_bytes(model, seq):
        """Bytes of every layer's output for one sample (None dims of a sequence model = seq)."""
        total = 0
        for layer in walk(model):
            if isinstance(layer, keras.layers.InputLayer):
                continue
            for t in outputs_of(layer):
                dims = [seq if d is None else d for d in tuple(t.shape)[1:]]
                if any(d is None for d in dims):
                    return None
                total += math.prod(dims) * itemsize(t.dtype)
        return total or None

    def analytic_flops(model, seq):
        """Dense, convolution, attention and RNN layers: 2 x multiply-adds, one sample."""
        total = 0
        for layer in walk(model):
            try:
                shape_in = [seq if d is None else d for d in tuple(layer.input.shape)[1:]]
                shape_out = [seq if d is None else d for d in tuple(layer.output.shape)[1:]]
            except Exception:
                continue
            if isinstance(layer, keras.layers.Dense):
                total += 2 * math.prod(shape_in) * int(layer.units)
            elif isinstance(layer, keras.layers.DepthwiseConv2D):
                total += 2 * math.prod(shape_out) * math.prod(layer.kernel_size)
            elif isinstance(layer, keras.layers.Conv2DTranspose):
                total += 2 * math.prod(shape_in) * math.prod(layer.kernel_size) * int(layer.filters)
            elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
                total += 2 * math.prod(shape_out) * math.prod(layer.kernel_size) * shape_in[-1] // layer.groups
            elif isinstance(layer, (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)):
                gates = 4 if isinstance(layer, keras.layers.LSTM) else 3 if isinstance(layer, keras.layers.GRU) else 1
                units = int(layer.units)
                total += 2 * gates * units * (shape_in[-1] + units) * shape_in[0]
            elif isinstance(layer, keras.layers.MultiHeadAttention):
                t, d = shape_in[0], shape_in[-1]
                inner = layer.num_heads * layer.key_dim
                total += 2 * t * d * inner * 4 + 2 * 2 * t * t * inner
        return total

    def profiler_flops(graph):
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()), utils.env.quiet_stderr(also=r"."):
                return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)
        finally:
            logger.setLevel(level)

    def has_loop(graph):
        return any(op.type in ("While", "StatelessWhile") for op in graph.get_operations())

    described = {}

    def describe(model, sample):
        """Parameters, forward FLOPs per sample and activation bytes per sample of model on sample."""
        shapes = per_sample(sample)
        try:  # the same architecture on the same shapes (a loop over seeds) is counted once
            key = (type(model).__name__, int(model.count_params()), len(model.layers), str(shapes), str(model.dtype_policy))
        except Exception:
            key = (id(model), str(shapes))
        if key in described:
            return described[key]
        info = {"input_shapes": shapes, "policy": getattr(model.dtype_policy, "name", str(model.dtype_policy))}
        seq = next((d for s in shapes for d in s[:1]), None)
        with contextlib.suppress(Exception):
            info["params"] = int(model.count_params())
        try:
            def spec(a):
                dtype = a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype
                dtype = tf.as_dtype(dtype)
                if dtype == tf.float64:
                    dtype = tf.float32
                return tf.TensorSpec((1, *tuple(a.shape)[1:]), dtype)

            specs = tf.nest.map_structure(spec, take(sample, 1))
            graph = real_function(lambda inputs: model(inputs, training=False)).get_concrete_function(specs).graph
            if has_loop(graph):
                info["flops"], info["flops_source"] = analytic_flops(model, seq), "analytic (RNN loop)"
            else:
                info["flops"], info["flops_source"] = profiler_flops(graph), "profiler"
        except Exception as exc:
            with contextlib.suppress(Exception):
                info["flops"] = analytic_flops(model, seq)
            info["flops_source"] = f"analytic (profiler failed: {short(exc)[:80]})"
        with contextlib.suppress(Exception):
            info["activation_bytes_per_sample"] = activation_bytes(model, seq)
        described[key] = info
        return info

    def rows_for(batch, split):
        """Rows to pass so that validation_split leaves at least `batch` training rows and 1 to validate."""
        if not split:
            return batch
        m = batch
        while math.floor(m * (1 - split)) < batch or m - math.floor(m * (1 - split)) < 1:
            m += 1
        return m

    def fit(self, *args, **kwargs):
        bound = fit_signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        a = dict(bound.arguments)
        a.pop("self")
        x = a["x"]
        first_epoch = int(a.get("initial_epoch") or 0)
        record = {
            "kind": "fit",
            "model": self.name,
            "epochs": int(a["epochs"]) - first_epoch,
            "early_stopping": any(
                isinstance(c, keras.callbacks.EarlyStopping) for c in (a.get("callbacks") or [])
            ),
        }
        sample = None
        try:
            if isinstance(x, tf.data.Dataset):
                first = next(iter(x.take(1)))
                sample = first[0] if isinstance(first, tuple) else first
                batch = leaves(sample)[0].shape[0] if leaves(sample) else None
                cardinality = int(x.cardinality())
                steps = a.get("steps_per_epoch") or (cardinality if cardinality > 0 else None)
                record["samples"] = steps * int(batch) if steps and batch else None
                record["batch"] = int(batch) if batch else None
                a["steps_per_epoch"] = 1
                record["note"] = "tf.data: one step at the dataset's own batch size"
            elif leaves(x):
                n = int(leaves(x)[0].shape[0])
                split = float(a.get("validation_split") or 0.0)
                batch = int(a.get("batch_size") or 32)
                samples = math.floor(n * (1 - split)) if split else n
                if a.get("steps_per_epoch"):
                    samples = min(samples, int(a["steps_per_epoch"]) * batch)
                record.update(batch=batch, samples=samples)
                rows = rows_for(min(batch, small), split)
                sample = take(x, 1)
                a["x"] = take(x, rows)
                for name in ("y", "sample_weight"):
                    if a.get(name) is not None:
                        a[name] = take(a[name], rows)
                a["batch_size"] = rows  # every training row in one batch: one step
                a["steps_per_epoch"] = None
                val = a.get("validation_data")
                if isinstance(val, tf.data.Dataset):
                    a["validation_steps"] = 1
                elif val is not None:
                    a["validation_data"] = take(val, min(batch, small))
            else:  # a generator or PyDataset
                a["steps_per_epoch"] = 1
                record["note"] = "generator: one step"
        except Exception as exc:  # the bookkeeping failed: still run the fit, capped by epochs only
            record["hook_error"] = short(exc)
        a["epochs"] = first_epoch + 1
        start = time.perf_counter()
        try:
            return_value = real_fit(self, **a)
        except Exception as exc:
            record["error"] = short(exc)
            raise
        finally:
            record["step_seconds"] = round(time.perf_counter() - start, 2)
            if sample is not None:
                with contextlib.suppress(Exception):
                    record.update(describe(self, sample))
            else:
                with contextlib.suppress(Exception):
                    record["params"] = int(self.count_params())
            emit(record)
        return return_value

    keras.Model.fit = fit

    # Hand-written training steps: the first call runs, later calls are counted and skipped.
    steps, step_counts = [], {}

    def rows_in(args, kwargs):
        for value in tf.nest.flatten((args, kwargs)):
            parts = getattr(value, "values", None)
            if isinstance(parts, tuple) and parts and all(hasattr(p, "shape") for p in parts):
                return sum(int(p.shape[0]) for p in parts if len(p.shape) > 0)  # one part per replica
            if hasattr(value, "shape") and len(value.shape) > 0 and value.shape[0] is not None:
                return int(value.shape[0])
        return None

    class Step:
        def __init__(self, compiled, python_function):
            self._compiled, self._python = compiled, python_function
            self.calls, self.rows, self.done, self.result = 0, 0, False, None
            self.record = {
                "kind": "step",
                "model": getattr(python_function, "__qualname__", "step"),
                "module": getattr(python_function, "__module__", ""),
                "execution_count": cell_count(),
                "id": id(self),
            }
            self.emitted_calls = -1
            functools.update_wrapper(self, python_function)
            steps.append(self)

        def __call__(self, *args, **kwargs):
            self.calls += 1
            rows = rows_in(args, kwargs)
            if rows is not None:
                self.rows += rows
            if self.done:
                return self.result
            start = time.perf_counter()
            try:
                self.result = self._compiled(*args, **kwargs)
            except Exception as exc:
                self.record["error"] = short(exc)
                raise
            self.done = True
            self.record["step_seconds"] = round(time.perf_counter() - start, 2)
            self.record["batch"] = rows
            with contextlib.suppress(Exception):
                self.record["input_shapes"] = per_sample([
                    v for v in tf.nest.flatten((args, kwargs)) if hasattr(v, "shape") and hasattr(v, "dtype")
                ])
            try:
                concrete = self._compiled.get_concrete_function(*args, **kwargs)
                seen, params = set(), 0
                for v in concrete.trainable_variables:
                    if id(v) not in seen:
                        seen.add(id(v))
                        params += int(np.prod(v.shape))
                self.record["params"] = params
                # the same step of the same model on the same shapes (a loop over seeds): profiled once
                key = (self.record["model"], str(self.record.get("input_shapes")), rows, params)
                if key not in step_counts:
                    loop = has_loop(concrete.graph)
                    step_counts[key] = {
                        "flops_source": "profiler (RNN loop not counted)" if loop else "profiler (whole step)",
                        "step_flops": profiler_flops(concrete.graph),
                    }
                self.record.update(step_counts[key])
            except Exception as exc:
                self.record["flops_source"] = f"not counted ({short(exc)[:80]})"
            return self.result

        def __get__(self, obj, objtype=None):
            return self if obj is None else functools.partial(self.__call__, obj)

        def __getattr__(self, name):
            return getattr(self._compiled, name)

    def flush_steps(*_):
        for step in steps:
            if step.calls != step.emitted_calls:
                step.emitted_calls = step.calls
                emit({**step.record, "calls": step.calls, "rows": step.rows})

    shell.events.register("post_run_cell", flush_steps)

    def function(func=None, *args, **kwargs):
        if func is None:
            return lambda f: function(f, *args, **kwargs)
        compiled = real_function(func, *args, **kwargs)
        name = getattr(func, "__name__", "") or ""
        module = getattr(func, "__module__", "") or ""
        ours = module == "__main__" or (module.startswith("utils.") and not module.startswith("utils.checks"))
        return Step(compiled, func) if ours and "step" in name.lower() else compiled

    tf.function = function

    def checkpoint(name, value, **bounds):
        try:
            return real_checkpoint(name, value, **bounds)
        except AssertionError:
            print(f"shape run · not asserted: {name} (after one training step; the real gpu run checks it)")
            emit({"kind": "checkpoint", "name": name})
            return value

    utils.checks.checkpoint = checkpoint


_shape_run_install()
del _shape_run_install
'''


def shape_data(root: Path) -> float:
    """Write the genuine-format data folder at the real training sizes into ``root`` unless it is there.

    Returns the seconds spent (0 when the folder was already complete).
    """
    if (root / "SHA256SUMS").exists():
        return 0.0
    start = time.perf_counter()
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    sys.path.insert(0, str(ROOT))
    import genuine_data

    genuine_data.SCALES["gpu-shapes"] = {"train": 60_000, "test": TEST_IMAGES, "reviews": 200}
    cifar = genuine_data._cifar_archive  # CIFAR-10 has 50,000 training images, the MNISTs 60,000
    genuine_data._cifar_archive = lambda n_train, n_test, seed: cifar(50_000, n_test, seed)
    part = root.with_name(root.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    try:
        genuine_data.write_mirror(part, "gpu-shapes")
    finally:
        genuine_data._cifar_archive = cifar
    shutil.rmtree(root, ignore_errors=True)
    part.rename(root)
    return time.perf_counter() - start


def run(path: Path, timeout: int, log_dir: Path, hook: bool = True) -> dict:
    """Execute one notebook (with the hook in front); return its records, errors and wall time."""
    log = log_dir / f"{path.stem}.jsonl"
    log.unlink(missing_ok=True)
    os.environ["SHAPE_RUN_LOG"] = str(log)  # the kernel inherits it
    result = run_notebook(path, timeout=timeout, allow_errors=True, before=[HOOK] if hook else [])
    nb = result.nb
    cell_of = {}  # execution count -> index of the cell in the notebook file
    for nb_index, cell in enumerate(nb.cells):
        index = result.file_index(nb_index)
        if index is not None and cell.get("execution_count") is not None:
            cell_of[cell["execution_count"]] = index
    seconds = {index: round(t, 1) for index, t in result.cell_seconds.items()}
    errors = [
        {"cell": e.index, "source": e.source, "error": f"{e.ename}: {e.evalue[:300]}"}
        for e in result.errors
        if e.index is not None
    ]
    hook_failed = [e for e in result.errors if e.added == "before"]
    if hook_failed:
        errors.insert(0, {"cell": "hook", "source": "", "error": hook_failed[0].evalue})
    records, latest_step = [], {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            r["cell"] = cell_of.get(r.get("execution_count"), "?")
            if r["kind"] == "step":
                latest_step[r["id"]] = r  # the last flush holds the final count
            else:
                records.append(r)
    records += [r for r in latest_step.values() if r.get("calls")]
    records.sort(key=lambda r: r["cell"] if isinstance(r["cell"], int) else 10**6)
    return {
        "notebook": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "cells": len(nb.cells) - result.added_before,
        "wall": result.seconds,
        "aborted": result.error,
        "errors": errors,
        "records": records,
        "slowest_cells": sorted(seconds.items(), key=lambda kv: -kv[1])[:5],
    }


def training_flops(r: dict) -> float | None:
    """FLOPs the gpu profile spends on this row (all its fits or all calls of its step); None if unknown."""
    if r["kind"] == "fit":
        if r.get("flops") is None or r.get("samples") is None:
            return None
        return 3.0 * r["flops"] * r["samples"] * r["epochs"] * r["count"]
    if r.get("step_flops") is None:
        return None
    return float(r["step_flops"]) * r["calls"]


def training_steps(r: dict) -> int | None:
    """Optimizer steps the gpu profile takes on this row."""
    if r["kind"] == "step":
        return r["calls"]
    if r.get("samples") is None or not r.get("batch"):
        return None
    return math.ceil(r["samples"] / r["batch"]) * r["epochs"] * r["count"]


def seconds(flops: float | None, peak: float, utilisation: float) -> float | None:
    return None if flops is None else flops / (peak * utilisation)


def fmt_seconds(t: float | None) -> str:
    if t is None:
        return "?"
    return f"{t:.1f}" if t < 10 else f"{t:,.0f}"


def fmt_mflops(flops: float) -> str:
    m = flops / 1e6
    return f"{m:,.0f}" if m >= 100 else f"{m:.3g}"


def fmt_mb(n_bytes: float | None) -> str:
    if n_bytes is None:
        return "?"
    mb = n_bytes / 2**20
    return "< 0.1" if mb < 0.1 else f"{mb:,.1f}"


def fmt_shape(shapes) -> str:
    return ", ".join("×".join(str(d) for d in s) or "scalar" for s in shapes or []) or "?"


def group(records: list[dict]) -> list[dict]:
    """Merge the fits (or steps) of one cell that train the same architecture on the same data."""
    rows: dict[tuple, dict] = {}
    for r in records:
        if r["kind"] == "fit":
            key = (
                "fit",
                r["cell"],
                r.get("params"),
                r.get("flops"),
                r.get("batch"),
                r.get("samples"),
                r.get("epochs"),
            )
        elif r["kind"] == "step":
            key = ("step", r["cell"], r["model"], r.get("step_flops"), r.get("batch"))
        else:
            continue
        if key not in rows:
            rows[key] = {**r, "count": 1}
            continue
        row = rows[key]
        row["count"] += 1
        if r["kind"] == "step":
            row["calls"] += r["calls"]
            row["rows"] += r["rows"]
        row["error"] = row.get("error") or r.get("error")
    return list(rows.values())


def table(results: list[dict], utilisation: float) -> tuple[str, str, list[str]]:
    """Return the per-notebook table, the per-model table and the notebooks flagged as slow."""
    models = [
        "| notebook | cell | model or loop | parameters | input per sample | gpu batch | activation memory (MB) "
        "| MFLOPs | counted by | samples × epochs (gpu) | steps | T4 (s) | A100 (s) |",
        "|---|---:|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    summary = [
        "| notebook | fits / loops | largest (parameters) | largest activation memory (MB) | steps "
        "| T4 (s) | A100 (s) | failing cells |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    flagged = []
    for res in results:
        name = Path(res["notebook"]).stem
        rows = group(res["records"])
        total, steps, unknown, biggest, act_max = 0.0, 0, False, 0, 0
        for r in rows:
            flops, n_steps = training_flops(r), training_steps(r)
            unknown |= flops is None
            total += flops or 0.0
            steps += n_steps or 0
            biggest = max(biggest, r.get("params") or 0)
            label = (f"`{r['model']}`" if r["kind"] == "step" else r["model"]) + (
                f" (×{r['count']})" if r["count"] > 1 else ""
            )
            if r.get("error"):
                label += f" **failed: {r['error'][:120]}**"
            batch = r.get("batch")
            if r["kind"] == "fit":
                act = r.get("activation_bytes_per_sample")
                act_bytes = act * batch if act and batch else None
                act_max = max(act_max, act_bytes or 0)
                gflops = f"{fmt_mflops(r['flops'])} / sample" if r.get("flops") is not None else "?"
                how = "forward, " + r.get("flops_source", "?")
                samples = r.get("samples")
                work = f"{samples:,} × {r['epochs']}" if samples is not None else f"? × {r['epochs']}"
                if r.get("early_stopping"):
                    work += " (at most: early stopping)"
                act_text = fmt_mb(act_bytes)
            else:
                if r.get("step_flops") is None:
                    gflops = "?"
                elif batch:
                    gflops = f"{fmt_mflops(r['step_flops'] / batch)} / sample"
                else:
                    gflops = f"{fmt_mflops(r['step_flops'])} / step"
                how = "whole training step, " + r.get("flops_source", "?")
                work = f"{r['rows']:,} rows" if r.get("rows") else "?"
                act_text = "—"
            models.append(
                f"| {name} | {r['cell']} | {label} | {r['params']:,} | "
                if r.get("params") is not None
                else f"| {name} | {r['cell']} | {label} | ? | "
            )
            models[-1] += (
                f"{fmt_shape(r.get('input_shapes'))} | {batch or '?'} | {act_text} | {gflops} | {how} | {work} "
                f"| {n_steps if n_steps is not None else '?':,} | {fmt_seconds(seconds(flops, PEAKS['T4'], utilisation))} "
                f"| {fmt_seconds(seconds(flops, PEAKS['A100'], utilisation))} |"
            )
        t4 = seconds(total, PEAKS["T4"], utilisation)
        if t4 > 60 * FLAG_MINUTES:
            flagged.append(name)
        more = "+" if unknown else ""
        flag = f" **over {FLAG_MINUTES:g} min**" if name in flagged else ""
        failing = str(len(res["errors"])) + (f" (stopped: {res['aborted']})" if res["aborted"] else "")
        summary.append(
            f"| {name} | {len(rows)} | {biggest:,} | {fmt_mb(act_max) if act_max else '—'} | {steps:,} "
            f"| {fmt_seconds(t4)}{more}{flag} | {fmt_seconds(seconds(total, PEAKS['A100'], utilisation))}{more} "
            f"| {failing} |"
        )
    return "\n".join(summary), "\n".join(models), flagged


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb and labs/solutions/*.ipynb"
    )
    parser.add_argument(
        "--device", default="t4", choices=["t4", "l4", "a100"], help="COURSE_EMULATE (default t4)"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help=f"default {DEFAULT_DATA}")
    parser.add_argument("--utilisation", type=float, default=UTILISATION)
    parser.add_argument("--json", type=Path, help="also write every record and error to this file")
    parser.add_argument(
        "--no-control",
        dest="control",
        action="store_false",
        help="do not run notebooks with failing cells again on the smoke profile (without the hook)",
    )
    args = parser.parse_args()
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "labs" / "solutions").glob("*.ipynb")
    )
    started = time.perf_counter()
    data_seconds = shape_data(args.data_dir.expanduser())
    os.environ.pop("COURSE_PROFILE", None)  # the emulated device chooses: gpu
    os.environ.update(
        COURSE_EMULATE=args.device,
        COURSE_OFFLINE="1",
        COURSE_DATA_DIR=str(args.data_dir.expanduser()),
        COURSE_DATA_CHECKSUMS=str(args.data_dir.expanduser() / "SHA256SUMS"),
        COURSE_CHECKS_STRICT="1",
        SHAPE_RUN_BATCH=str(SMALL_BATCH),
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-shapes-") as tmp:
        for path in paths:
            res = run(path, args.timeout, Path(tmp))
            results.append(res)
            print(
                f"{res['notebook']}: {res['wall']:.0f} s, {len(res['records'])} records, "
                f"{len(res['errors'])} failing cells"
                + (f", stopped: {res['aborted']}" if res["aborted"] else "")
                + "; slowest cells (index, s): "
                + ", ".join(f"{i}: {t:g}" for i, t in res["slowest_cells"]),
                file=sys.stderr,
                flush=True,
            )
        # The control: each notebook with failing cells again, smoke profile, same device, no hook.
        # A cell that fails there too fails at every size (the precision, the data, the code);
        # one that fails only in the shape run fails at gpu size, or because training was cut short.
        if args.control:
            os.environ["COURSE_PROFILE"] = "smoke"
            for res in results:
                if not res["errors"]:
                    continue
                control = run(ROOT / res["notebook"], args.timeout, Path(tmp), hook=False)
                failing = {e["cell"]: e["error"] for e in control["errors"]}
                for e in res["errors"]:
                    e["at_smoke"] = e["cell"] in failing
                res["control_wall"] = control["wall"]
                print(
                    f"{res['notebook']} (control, smoke profile, no hook): {control['wall']:.0f} s, "
                    f"{len(control['errors'])} failing cells",
                    file=sys.stderr,
                    flush=True,
                )
            os.environ.pop("COURSE_PROFILE")
    elapsed = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    summary, models, flagged = table(results, args.utilisation)
    print(f"# Shape run: gpu profile, COURSE_EMULATE={args.device}, {len(paths)} notebooks\n")
    print(
        f"{elapsed / 60:.1f} min on {cpu_name()} ({os.cpu_count()} cores)"
        + (f", of which {data_seconds / 60:.1f} min writing the data folder" if data_seconds else "")
        + ". Estimates on paper, not measurements: training FLOPs / (peak × utilisation), "
        f"T4 {PEAKS['T4'] / 1e12:.0f} TFLOP/s, A100 {PEAKS['A100'] / 1e12:.0f} TFLOP/s (float16 tensor cores), "
        f"utilisation {args.utilisation:.0%}. Input pipelines, evaluation and Python overheads are not counted.\n"
    )
    print(summary)
    print()
    print(models)
    print()
    if flagged:
        print(f"Over {FLAG_MINUTES:g} minutes on a T4: {', '.join(flagged)}\n")
    print("## Failing cells (cell = index in the notebook file, markdown cells included)\n")
    any_error = False
    for res in results:
        for e in res["errors"]:
            any_error = True
            where = {True: " [fails at the smoke profile too]", False: " [shape run only]"}.get(
                e.get("at_smoke"), ""
            )
            print(f"- {Path(res['notebook']).stem}, cell {e['cell']} (`{e['source']}`): {e['error']}{where}")
        if res["aborted"]:
            any_error = True
            print(f"- {Path(res['notebook']).stem}: the run stopped: {res['aborted']}")
    if not any_error:
        print("none")
    checkpoints = sum(1 for res in results for r in res["records"] if r["kind"] == "checkpoint")
    print(f"\n{checkpoints} checkpoints fell outside their floors after one step and were not asserted.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
