"""Training on several devices and processes, and surviving an interruption (lesson 09).

The lesson teaches these pieces and its tests run the very same functions:

* :func:`logical_cpus` splits the CPU into logical devices, so ``MirroredStrategy`` has two
  replicas to mirror on a machine without GPUs;
* :func:`make_train_step` is the custom distributed training step (``strategy.run``, a loss
  scaled by the *global* batch size, ``strategy.reduce``; under ``mixed_float16`` the loss is
  also multiplied by a ``LossScaleOptimizer``'s loss scale), and :func:`train_custom_loop` runs it
  under any strategy, the default one included, at the active Keras dtype policy;
* :func:`run_multi_worker` starts worker processes on 127.0.0.1 with ``TF_CONFIG`` (free ports
  picked at run time, a time limit, every worker ended afterwards), each running
  ``MultiWorkerMirroredStrategy`` over :func:`train_custom_loop` at the caller's dtype policy, and
  returns every worker's final weights (``python -m utils.distribute worker ...`` is what each
  worker runs);
* :func:`fit_resumable` trains a Keras model with ``keras.callbacks.BackupAndRestore``, and can
  be made to fail at the end of a chosen epoch (:class:`InterruptAtEpoch`), so a run can really
  be interrupted and resumed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.env import import_tensorflow, is_noise, quiet_stderr

tf = import_tensorflow()
import keras  # noqa: E402  (after import_tensorflow, which sets the backend and quiets the import)

__all__ = [
    "InterruptAtEpoch",
    "MultiWorkerResult",
    "SimulatedFailure",
    "TrainResult",
    "WorkerError",
    "build_mlp",
    "digits_problem",
    "fit_resumable",
    "free_port",
    "logical_cpus",
    "make_train_step",
    "run_multi_worker",
    "train_custom_loop",
]

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------


def logical_cpus(n: int = 2) -> list[str]:
    """Split the first CPU into ``n`` logical devices and return their names ('/device:CPU:0', ...).

    TensorFlow fixes its devices when its runtime starts (the first operation, or the first
    strategy). ``utils.env.setup()`` does not start it, so calling this right after setup works.
    Called again later, it returns the devices already there if there are ``n`` or more, and
    raises ``RuntimeError`` with what to do if there are fewer.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        pass  # the runtime has started: keep what it has, if that is enough
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(names) < n:
        raise RuntimeError(
            f"TensorFlow has already started with {len(names)} CPU device(s); {n} are needed. "
            "Restart the kernel and run the setup cell, then the cell that calls logical_cpus(), "
            "before anything else touches TensorFlow."
        )
    return names[:n]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# A small problem and the custom distributed training loop
# ---------------------------------------------------------------------------------------------


def digits_problem(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return scikit-learn's 8×8 digits as ``(x, y)``: float32 (N, 64) in [0, 1] and int32 labels.

    The first ``n`` training images (all 1,437 when ``n`` is None), in a fixed order.
    """
    from utils.data import load_digits

    (x, y), _ = load_digits()
    x, y = x[:n], y[:n]
    return x.reshape(len(x), -1).astype("float32"), y.astype("int32")


def build_mlp(n_features: int, n_classes: int, *, width: int = 32, seed: int = 0) -> keras.Model:
    """Return a small MLP (``width`` ReLU units, then logits), built, with weights drawn from ``seed``.

    The hidden layer follows the active dtype policy (it computes in float16 or bfloat16 under a
    mixed policy); the output layer is always float32, so the loss sees float32 logits (the
    rule of Keras's mixed-precision guide for a model's last layer). Its weights are float32
    under every policy.
    """
    init = keras.initializers.GlorotUniform(seed=seed)
    model = keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(width, activation="relu", kernel_initializer=init),
            keras.layers.Dense(
                n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed + 1), dtype="float32"
            ),
        ]
    )
    return model


def make_train_step(
    strategy: Any, model: keras.Model, optimizer: Any, global_batch_size: int
) -> Callable[[Any], Any]:
    """Return a ``tf.function`` that trains ``model`` on one distributed batch and returns the loss.

    Each replica computes its examples' losses and divides their **sum by the global batch
    size** (``tf.nn.compute_average_loss``), so that when the strategy adds the replicas'
    gradients, the sum is the gradient of the mean loss over the whole global batch. The loss
    returned is the sum of the replicas' scaled losses (``strategy.reduce(SUM, ...)``): the mean
    over the global batch.

    The gradients are taken of ``optimizer.scale_loss(loss)``: the loss itself for a plain
    optimizer, the loss times the loss scale for a ``keras.optimizers.LossScaleOptimizer``
    (needed under ``mixed_float16``), whose ``apply_gradients`` divides the scale out again and
    skips a step whose gradients overflowed.
    """
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def replica_step(batch: Any) -> Any:
        x, y = batch
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            per_example = loss_fn(y, logits)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
            scaled = optimizer.scale_loss(loss)  # × the loss scale under mixed_float16, else the loss
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def train_step(dist_batch: Any) -> Any:
        per_replica_losses = strategy.run(replica_step, args=(dist_batch,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_losses, axis=None)

    return train_step


def distributed_batches(strategy: Any, x: np.ndarray, y: np.ndarray, global_batch_size: int) -> Any:
    """Return ``strategy``'s distributed dataset of ``(x, y)`` in global batches (no shuffling).

    Each input pipeline (one per worker) keeps every k-th example (``shard``) and batches them
    per replica, so one step's replicas together hold consecutive examples: the same global
    batch a single device would see.
    """

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = ctx.get_per_replica_batch_size(global_batch_size)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
        return ds.batch(per_replica, drop_remainder=True)

    return strategy.distribute_datasets_from_function(dataset_fn)


@dataclass
class TrainResult:
    """What :func:`train_custom_loop` returns: final weights, the loss of every step, and the time."""

    weights: list[np.ndarray]
    losses: list[float]
    seconds: float
    replicas: int
    replica_weights: list[list[np.ndarray]] = field(default_factory=list)


def _replica_copies(variable: Any) -> list[np.ndarray]:
    """Return each local replica's copy of a (mirrored) variable; one array if it is not mirrored."""
    inner = getattr(variable, "value", variable)
    values = getattr(inner, "values", None)
    return [np.asarray(v.numpy()) for v in values] if values else [np.asarray(variable.numpy())]


def train_custom_loop(
    strategy: Any | None,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 2,
    global_batch_size: int = 64,
    learning_rate: float = 0.1,
    width: int = 32,
    seed: int = 0,
) -> TrainResult:
    """Train :func:`build_mlp` on ``(x, y)`` with :func:`make_train_step` under ``strategy``.

    ``strategy`` None means TensorFlow's default (one device). SGD with momentum 0.9, no
    shuffling: the run is deterministic, so runs under different strategies can be compared.
    ``replica_weights`` holds each replica's own copy of the weights (one entry per local device).
    The model follows the active dtype policy; under ``mixed_float16`` the SGD optimizer is
    wrapped in a ``keras.optimizers.LossScaleOptimizer`` (a custom loop must scale the loss itself).
    """
    strategy = strategy or tf.distribute.get_strategy()
    n = len(x) - len(x) % global_batch_size  # whole global batches only, on every worker
    x, y = x[:n], y[:n]
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_mlp(x.shape[1], int(y.max()) + 1, width=width, seed=seed)
        optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9)
        if model.layers[0].compute_dtype == "float16":  # float16's range needs loss scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    step = make_train_step(strategy, model, optimizer, global_batch_size)
    batches = distributed_batches(strategy, x, y, global_batch_size)
    losses = []
    start = time.perf_counter()
    # MirroredStrategy's input pipeline logs that it cannot optimise its generator: not actionable.
    with quiet_stderr(also=r"GeneratorDatasetOp|will not be optimized"):
        for _ in range(epochs):
            for batch in batches:
                losses.append(float(step(batch)))
    seconds = time.perf_counter() - start
    copies = [_replica_copies(v) for v in model.weights]  # per weight: one array per local replica
    replica_weights = [list(per_replica) for per_replica in zip(*copies, strict=True)]
    return TrainResult(
        weights=[np.asarray(v.numpy()) for v in model.weights],
        losses=losses,
        seconds=seconds,
        replicas=int(strategy.num_replicas_in_sync),
        replica_weights=replica_weights,
    )


# ---------------------------------------------------------------------------------------------
# MultiWorkerMirroredStrategy: worker processes on 127.0.0.1
# ---------------------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    """A worker process failed or did not finish in time; the message carries its last log lines."""


@dataclass
class MultiWorkerResult:
    """Every worker's final weights and losses (index = task index), the ports, and the wall time.

    ``policies`` holds the Keras dtype policy each worker trained at.
    """

    weights: list[list[np.ndarray]]
    losses: list[list[float]]
    ports: list[int]
    seconds: float
    worker_seconds: list[float]
    policies: list[str] = field(default_factory=list)

    def max_difference(self) -> float:
        """Return the largest absolute difference between any worker's weights and worker 0's."""
        return max(
            float(np.max(np.abs(a - b)))
            for other in self.weights[1:]
            for a, b in zip(self.weights[0], other, strict=True)
        )


def tf_config(ports: Sequence[int], index: int) -> dict[str, Any]:
    """Return the ``TF_CONFIG`` of worker ``index`` in a cluster of workers on 127.0.0.1:``ports``."""
    return {
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    }


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line for line in text.splitlines() if not is_noise(line)]
    return "\n".join(kept[-lines:]) or "(nothing but TensorFlow's start-up lines)"


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    """End every worker still running (terminate, then kill), and reap them."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 5
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        if p.poll() is None:
            p.kill()
            p.wait()


def run_multi_worker(
    x: np.ndarray,
    y: np.ndarray,
    n_workers: int = 2,
    *,
    epochs: int = 2,
    global_batch_size: int = 64,
    learning_rate: float = 0.1,
    width: int = 32,
    seed: int = 0,
    timeout: float = 120.0,
    workdir: str | Path | None = None,
    policy: str | None = None,
) -> MultiWorkerResult:
    """Train with ``MultiWorkerMirroredStrategy`` in ``n_workers`` processes on 127.0.0.1.

    Each worker is ``python -m utils.distribute worker``, told its place in the cluster through
    ``TF_CONFIG`` (ports picked free at run time); it reads ``(x, y)`` from a file, trains
    with :func:`train_custom_loop`, and writes its final weights and losses to an ``.npz`` file.
    Once every worker has written its file, the workers are ended (a TensorFlow process that has
    joined a cluster can take seconds to shut down by itself). The workers see no GPU (they
    would all take the same one). Each worker trains at the Keras dtype policy ``policy``
    ('float32', 'mixed_float16', ...; None: this process's global policy), so the workers compute
    as this process would. All must finish within ``timeout`` seconds; on failure or timeout every
    worker is ended and :class:`WorkerError` says which one failed, with its last log lines.
    """
    policy = policy or keras.mixed_precision.global_policy().name
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mwms-"))
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
        ports = [free_port() for _ in range(n_workers)]
        while len(set(ports)) < n_workers:  # the OS may hand out a port twice once it is freed
            ports = [free_port() for _ in range(n_workers)]
        env = dict(os.environ)
        env.update(
            {
                "CUDA_VISIBLE_DEVICES": "",
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "KERAS_BACKEND": "tensorflow",
                "no_grpc_proxy": "127.0.0.1,localhost",  # never send the workers' traffic through a proxy
                "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            }
        )
        np.savez(work / "data.npz", x=x, y=y)
        args = [
            f"--data={work / 'data.npz'}",
            f"--epochs={epochs}",
            f"--global-batch-size={global_batch_size}",
            f"--learning-rate={learning_rate}",
            f"--width={width}",
            f"--seed={seed}",
            f"--policy={policy}",
        ]
        procs: list[subprocess.Popen] = []
        logs = [work / f"worker{i}.log" for i in range(n_workers)]
        outputs = [work / f"worker{i}.npz" for i in range(n_workers)]
        start = time.monotonic()
        try:
            for i in range(n_workers):
                env_i = dict(env, TF_CONFIG=json.dumps(tf_config(ports, i)))
                with open(logs[i], "wb") as log:
                    procs.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                "utils.distribute",
                                "worker",
                                f"--out={outputs[i]}",
                                *args,
                            ],
                            cwd=ROOT,
                            env=env_i,
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            while not all(out.exists() for out in outputs):
                failed = [i for i, p in enumerate(procs) if p.poll() is not None and not outputs[i].exists()]
                if failed:
                    i = failed[0]
                    raise WorkerError(
                        f"worker {i} exited with code {procs[i].returncode}; its last lines:\n{_tail(logs[i])}"
                    )
                if time.monotonic() - start > timeout:
                    waiting = [i for i, out in enumerate(outputs) if not out.exists()]
                    raise WorkerError(
                        f"worker(s) {waiting} did not finish within {timeout:.0f} s (ports {ports}); "
                        f"worker {waiting[0]}'s last lines:\n{_tail(logs[waiting[0]])}"
                    )
                time.sleep(0.1)
        finally:
            _stop(procs)
        seconds = time.monotonic() - start
        weights, losses, worker_seconds, policies = [], [], [], []
        for out in outputs:
            with np.load(out) as f:
                n = int(f["n_weights"])
                weights.append([f[f"w{k}"] for k in range(n)])
                losses.append([float(v) for v in f["losses"]])
                worker_seconds.append(float(f["seconds"]))
                policies.append(str(f["policy"]))
        return MultiWorkerResult(weights, losses, ports, seconds, worker_seconds, policies)


def _worker(argv: Sequence[str]) -> int:
    """One worker of :func:`run_multi_worker`: read ``TF_CONFIG``, train, save the weights."""
    parser = argparse.ArgumentParser(prog="python -m utils.distribute worker")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--global-batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", default="float32")
    a = parser.parse_args(argv)
    keras.mixed_precision.set_global_policy(a.policy)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    # The strategy is created first: it starts this process's gRPC server and joins the cluster.
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    with np.load(a.data) as f:
        x, y = f["x"], f["y"]
    result = train_custom_loop(
        strategy,
        x,
        y,
        epochs=a.epochs,
        global_batch_size=a.global_batch_size,
        learning_rate=a.learning_rate,
        width=a.width,
        seed=a.seed,
    )
    arrays = {f"w{k}": w for k, w in enumerate(result.weights)}
    tmp = a.out + ".part.npz"
    np.savez(
        tmp,
        n_weights=len(result.weights),
        losses=np.array(result.losses),
        seconds=result.seconds,
        policy=np.array(keras.mixed_precision.global_policy().name),
        **arrays,
    )
    os.replace(tmp, a.out)  # the parent sees a whole file or none
    return 0


# ---------------------------------------------------------------------------------------------
# Fault tolerance: BackupAndRestore, and a failure on purpose
# ---------------------------------------------------------------------------------------------


class SimulatedFailure(RuntimeError):
    """Raised by :class:`InterruptAtEpoch`: stands for a pre-empted machine or a crashed job."""


class InterruptAtEpoch(keras.callbacks.Callback):
    """Raise :class:`SimulatedFailure` at the end of epoch ``epoch`` (counted from 1)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 == self.epoch:
            raise SimulatedFailure(f"simulated failure at the end of epoch {self.epoch}")


@dataclass
class ResumableRun:
    """One call of :func:`fit_resumable`: the epochs it ran, their losses, and the final weights."""

    epochs_run: list[int]
    losses: list[float]
    weights: list[np.ndarray]
    interrupted: bool


def fit_resumable(
    x: np.ndarray,
    y: np.ndarray,
    *,
    backup_dir: str | Path,
    epochs: int = 4,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    width: int = 32,
    seed: int = 0,
    interrupt_after: int | None = None,
) -> ResumableRun:
    """Train :func:`build_mlp` with Adam under ``BackupAndRestore(backup_dir)``; return the run.

    A fresh model and optimizer every call (as after a restart). If ``backup_dir`` holds a
    backup from an interrupted run, training resumes from it: weights, optimizer state and
    epoch. ``interrupt_after=k`` makes the run fail at the end of epoch k (the backup of epoch k
    is written first). No shuffling and no dropout, so the run is deterministic.
    """
    keras.utils.set_random_seed(seed)
    model = build_mlp(x.shape[1], int(y.max()) + 1, width=width, seed=seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    epochs_run: list[int] = []
    losses: list[float] = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            epochs_run.append(epoch + 1)
            losses.append(float((logs or {})["loss"]))

    callbacks: list[Any] = [keras.callbacks.BackupAndRestore(str(backup_dir)), Record()]
    if interrupt_after is not None:
        callbacks.append(InterruptAtEpoch(interrupt_after))
    interrupted = False
    try:
        model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, callbacks=callbacks, verbose=0)
    except SimulatedFailure:
        interrupted = True
    return ResumableRun(epochs_run, losses, [np.asarray(w) for w in model.get_weights()], interrupted)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m utils.distribute worker --out=FILE [options]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        return _worker(args[1:])
    print(__doc__)
    print("usage: python -m utils.distribute worker --out=FILE [--epochs=N ...] (run_multi_worker starts it)")
    return 2


if __name__ == "__main__":
    sys.exit(main())
