"""Checks for Lab 09 (input pipeline and distribution): timing a pipeline, making it fast, the speed-up,
and the distributed training step.

The exercises:

* ``q1``: ``steps_per_second(dataset, n_steps)`` takes one element as a warm-up, then times the next
  ``n_steps`` and returns elements per second. Probed on a dataset whose first element is slow
  (start-up) and whose others take a known time; mistakes named: timing the warm-up, returning the
  time instead of the rate.
* ``q2``: ``fast_pipeline(images, labels, batch_size)`` decodes with :func:`slow_decode` in a parallel
  ``map``, caches the decoded images, then augments with :func:`random_flip`, batches and prefetches.
  Checked by its values (every image is the decoded one, flipped or not, in order), by its behaviour
  (two epochs differ: the augmentation is not frozen) and by its structure (the chain of tf.data
  transformations). Mistakes named: cache after the random augmentation, cache before the decode,
  no cache, a sequential decode, prefetch missing or not last, batching before the decode.
* ``q3``: the measured speed-up of the learner's pipeline over the naive one, with the learner's timer
  (:func:`prove_speedup` measures and shows it, then checks it).
* ``q4``: ``distributed_train_step(strategy, model, optimizer, loss_fn, dist_batch, global_batch_size)``
  runs one step on every replica with ``strategy.run`` and returns the loss summed over replicas
  with ``strategy.reduce``. Probed under ``MirroredStrategy`` on two logical CPUs (on one device, the
  check tells the function the global batch is twice the batch it sees, as if a second replica held
  the rest), with a recording wrapper around the strategy; the weight update is compared with the
  right one, computed on one device by the same model at the same dtype policy, within what that
  policy's precision can promise (:func:`utils.env.tolerance`: a learner on a T4 runs under
  ``mixed_float16``, on a TPU under ``mixed_bfloat16``). Every named mistake scales the update by 2
  or more, far outside that tolerance, so each stays recognisable at every precision. Mistakes named: forgetting ``strategy.run``, per-replica averaging (``reduce_mean``, or
  dividing by the per-replica batch), a sum not divided at all, dividing twice, ``ReduceOp.MEAN``,
  returning per-replica values, not applying the gradients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks import Exercise, LearnerError, Mismatch, NotDone, call, expect

__all__ = [
    "DECODE_MS",
    "IMAGE_SHAPE",
    "lab_images",
    "naive_pipeline",
    "prove_speedup",
    "q1",
    "q2",
    "q3",
    "q4",
    "random_flip",
    "slow_decode",
    "transformations",
]

DECODE_MS = 1.0  # milliseconds slow_decode waits per image
IMAGE_SHAPE = (8, 8, 1)


def _tf() -> Any:
    from utils.env import import_tensorflow

    return import_tensorflow()


# ---------------------------------------------------------------------------------------------
# The lab's data and its slow decode
# ---------------------------------------------------------------------------------------------


def lab_images(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` digits as "encoded" images (uint8 (n, 8, 8, 1), 0-255) and int32 labels."""
    from utils.data import load_digits

    (x, y), _ = load_digits()
    return (x[:n, :, :, None] * 255).round().astype("uint8"), y[:n].astype("int32")


def slow_decode(image: Any) -> Any:
    """Decode one image: wait DECODE_MS (like reading it from slow storage), return float32 in [0, 1]."""
    tf = _tf()

    def work(img: np.ndarray) -> np.ndarray:
        time.sleep(DECODE_MS / 1000)
        return (img / 255.0).astype("float32")

    return tf.ensure_shape(tf.numpy_function(work, [image], tf.float32), IMAGE_SHAPE)


_FLIP_RNG: list[Any] = []


def random_flip(image: Any, label: Any) -> tuple[Any, Any]:
    """Flip the image left-right with probability 1/2 (a random augmentation); keep the label.

    Draws from a ``tf.random.Generator`` (made on first use), whose state carries across epochs.
    """
    tf = _tf()
    if not _FLIP_RNG:
        _FLIP_RNG.append(tf.random.Generator.from_seed(9))
    return tf.where(_FLIP_RNG[0].uniform(()) < 0.5, tf.reverse(image, axis=[1]), image), label


def naive_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int) -> Any:
    """Return the slow pipeline: decode one image at a time, augment, batch; no cache, no prefetch."""
    tf = _tf()
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    return ds.map(lambda i, lab: (slow_decode(i), lab)).map(random_flip).batch(batch_size)


def transformations(dataset: Any) -> list[str]:
    """Return the tf.data transformations of ``dataset`` from source to end: ['slices', 'map', ...].

    Names: 'slices', 'map', 'parallel_map', 'cache', 'batch', 'prefetch', 'shuffle', 'repeat',
    'options', 'zip' (after its longest input's chain), or the class name for anything else.
    """
    names = []
    d = dataset
    while d is not None:
        inputs = getattr(d, "_datasets", None)
        if (
            inputs and getattr(d, "_input_dataset", None) is None
        ):  # zip/concatenate: follow the longest branch
            names.append("zip")
            branches = [transformations(b) for b in inputs if hasattr(b, "element_spec")]
            return max(branches, key=len, default=[]) + names[::-1]
        cls = type(d).__name__.lower().strip("_")
        for key, name in (
            ("parallelmap", "parallel_map"),
            ("parallelbatch", "batch"),
            ("map", "map"),
            ("cache", "cache"),
            ("batch", "batch"),
            ("prefetch", "prefetch"),
            ("shuffle", "shuffle"),
            ("repeat", "repeat"),
            ("tensorslice", "slices"),
            ("options", "options"),
        ):
            if key in cls:
                names.append(name)
                break
        else:
            names.append(type(d).__name__)
        d = getattr(d, "_input_dataset", None)
    return names[::-1]


# ---------------------------------------------------------------------------------------------
# q1: timing a pipeline
# ---------------------------------------------------------------------------------------------

STEP_S, WARMUP_S, N_STEPS = 0.02, 0.6, 10


def _timing_dataset() -> Any:
    """Elements 0, 1, 2, ...: the first takes WARMUP_S (start-up), every other one STEP_S."""
    tf = _tf()

    def wait(i: np.ndarray) -> np.ndarray:
        time.sleep(WARMUP_S if int(i) == 0 else STEP_S)
        return i

    return tf.data.Dataset.range(N_STEPS + 40).map(lambda i: tf.numpy_function(wait, [i], tf.int64))


def _reference_rate(n_steps: int) -> float:
    it = iter(_timing_dataset())
    next(it)
    start = time.perf_counter()
    for _ in range(n_steps):
        next(it)
    return n_steps / (time.perf_counter() - start)


def _check_timer(steps_per_second: Callable) -> None:
    got = call(steps_per_second, _timing_dataset(), N_STEPS)
    if got is None:
        raise Mismatch(
            "what steps_per_second returns",
            expected="a number (elements per second)",
            got="None",
            hint="End with `return n_steps / elapsed`.",
        )
    try:
        rate = float(np.asarray(got).reshape(()))
    except (TypeError, ValueError):
        raise Mismatch("what steps_per_second returns", expected="a number", got=type(got).__name__) from None
    right = _reference_rate(N_STEPS)
    with_warmup = N_STEPS / (WARMUP_S + N_STEPS / right)
    close = lambda a, b: 0.6 * b <= a <= 1.6 * b  # noqa: E731  (timings on a busy machine vary)
    if close(rate, right):
        return
    shown = f"{rate:.3g}"
    expected = f"about {right:.0f} steps/s (each of these steps takes {STEP_S * 1000:.0f} ms)"
    if close(rate, with_warmup) or close(rate, (N_STEPS + 1) / (WARMUP_S + (N_STEPS + 1) / right)):
        raise Mismatch(
            "the rate on a dataset whose first element is slow",
            expected=expected,
            got=shown,
            hint="You timed the warm-up: the first element pays for starting the pipeline (and, in "
            "training, tracing the step), and would dominate a short measurement. Take one element "
            "with next(iterator) before starting the clock.",
        )
    if rate < 5 and (close(1 / max(rate, 1e-9), right) or close(N_STEPS / max(rate, 1e-9), right)):
        raise Mismatch(
            "what steps_per_second returns",
            expected=expected,
            got=f"{shown} (a time in seconds?)",
            hint="Return the rate, steps per second: n_steps divided by the seconds they took.",
        )
    raise Mismatch(
        "the rate measured",
        expected=expected,
        got=shown,
        hint="Take one warm-up element, then time exactly n_steps more with time.perf_counter(), "
        "and return n_steps / elapsed.",
    )


q1 = Exercise(
    "Q1 · timing a pipeline",
    _check_timer,
    hint="it = iter(dataset); next(it) (warm-up); start = time.perf_counter(); next(it) n_steps times; "
    "return n_steps / (time.perf_counter() - start).",
    lab="lab09",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# q2: the fast pipeline
# ---------------------------------------------------------------------------------------------

Q2_N, Q2_BATCH = 64, 16


def _epoch(ds: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    from utils.env import quiet_stderr

    try:
        with quiet_stderr():  # a failing op also prints a C++ line; the exception says it all
            return [(np.asarray(x), np.asarray(y)) for x, y in ds]
    except Exception as exc:  # the learner's pipeline failed while running
        raise LearnerError(exc, "") from None


def _check_pipeline(fast_pipeline: Callable) -> None:
    tf = _tf()
    images, labels = lab_images(Q2_N)
    ds = call(fast_pipeline, images, labels, Q2_BATCH)
    expect(
        isinstance(ds, tf.data.Dataset),
        "what fast_pipeline returns",
        expected="a tf.data.Dataset",
        got=type(ds).__name__,
        hint="Build the dataset from tf.data.Dataset.from_tensor_slices((images, labels)) and return it.",
    )
    steps = transformations(ds)
    try:
        first = _epoch(ds)
    except LearnerError as err:
        if "batch" in steps and "map" in "".join(steps[steps.index("batch") :]):
            raise Mismatch(
                "running your pipeline",
                expected="batches of decoded images",
                got=f"an error: {type(err.error).__name__}",
                hint="slow_decode takes one image: map it *before* .batch(), so it sees single images.",
            ) from None
        raise
    # values: the decoded image, flipped or not, in order, with its label
    decoded = images.astype("float32") / 255.0
    expect(
        [x.shape for x, _ in first][:1] == [(Q2_BATCH, *IMAGE_SHAPE)],
        "the shape of a batch",
        expected=(Q2_BATCH, *IMAGE_SHAPE),
        got=first[0][0].shape if first else "no batches",
        hint="Batch decoded images: .batch(batch_size) after the maps.",
    )
    xs = np.concatenate([x for x, _ in first])
    ys = np.concatenate([y for _, y in first])
    expect(
        len(xs) == Q2_N,
        "the number of images in one epoch",
        expected=Q2_N,
        got=len(xs),
        hint="One epoch is every image once: no repeat(), no take(), no drop_remainder.",
    )
    if not np.array_equal(ys, labels):
        raise Mismatch(
            "the labels, in order",
            expected=labels[:8].tolist(),
            got=ys[:8].tolist(),
            hint="Keep the order (no shuffle in this exercise) and keep each label with its image.",
        )
    ok = [
        np.allclose(x, d, atol=1e-6) or np.allclose(x, d[:, ::-1], atol=1e-6)
        for x, d in zip(xs, decoded, strict=True)
    ]
    if not all(ok):
        raise Mismatch(
            "the images",
            expected="each image decoded by slow_decode (values in [0, 1]), flipped left-right or not",
            got=f"{ok.count(False)} of {len(ok)} images differ",
            hint="Map slow_decode over the images, then random_flip; don't rescale again.",
        )
    # behaviour: the augmentation must differ between epochs
    second = np.concatenate([x for x, _ in _epoch(ds)])
    if np.array_equal(xs, second):
        if "cache" in steps:
            raise Mismatch(
                "two epochs of your pipeline",
                expected="different random flips in each epoch",
                got="exactly the same images, flipped the same way",
                hint="cache() comes after the random augmentation, so the flips of the first epoch are "
                "stored and replayed: the augmentation is frozen. Cache right after slow_decode, "
                "then map random_flip.",
            )
        raise Mismatch(
            "two epochs of your pipeline",
            expected="different random flips in each epoch",
            got="the same images",
            hint="Apply random_flip in the pipeline, after the cache.",
        )
    # structure
    if "cache" not in steps:
        raise Mismatch(
            "the transformations of your pipeline",
            expected="... → cache() → ...",
            got=" → ".join(steps),
            hint="No cache: every epoch decodes every image again. Add .cache() right after the "
            "slow_decode map, so the slow work is done once.",
        )
    before_cache = steps[: steps.index("cache")]
    if not any(s in ("map", "parallel_map") for s in before_cache):
        raise Mismatch(
            "the transformations of your pipeline",
            expected="from_tensor_slices → map(slow_decode) → cache() → ...",
            got=" → ".join(steps),
            hint="The cache sits before the decode, so it stores the raw images and slow_decode still "
            "runs every epoch. Cache *after* the slow_decode map.",
        )
    if "map" in before_cache:
        raise Mismatch(
            "the transformations of your pipeline",
            expected="map(slow_decode, num_parallel_calls=tf.data.AUTOTUNE)",
            got=" → ".join(steps),
            hint="The decode runs one image at a time. Give the map num_parallel_calls=tf.data.AUTOTUNE "
            "so several images are decoded at once.",
        )
    if "prefetch" not in steps:
        raise Mismatch(
            "the transformations of your pipeline",
            expected="... → batch → prefetch(tf.data.AUTOTUNE)",
            got=" → ".join(steps),
            hint="Prefetch is missing: without it the model waits while the next batch is prepared. "
            "End the pipeline with .prefetch(tf.data.AUTOTUNE).",
        )
    if [s for s in steps if s != "options"][-1] != "prefetch":
        raise Mismatch(
            "the transformations of your pipeline",
            expected="... → batch → prefetch(tf.data.AUTOTUNE) (last)",
            got=" → ".join(steps),
            hint="Put prefetch last, after batch, so it prepares whole batches while the model trains.",
        )


q2 = Exercise(
    "Q2 · a fast input pipeline",
    _check_pipeline,
    hint="from_tensor_slices → map(decode, num_parallel_calls=AUTOTUNE) → cache() → map(random_flip, "
    "num_parallel_calls=AUTOTUNE) → batch(batch_size) → prefetch(AUTOTUNE).",
    lab="lab09",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: the speed-up, measured
# ---------------------------------------------------------------------------------------------

MIN_SPEEDUP = 2.0


def _check_speedup(speedup: Any) -> None:
    if speedup is None or speedup is Ellipsis:
        raise NotDone
    value = float(speedup)
    expect(
        value >= MIN_SPEEDUP,
        "the measured speed-up of your pipeline over the naive one",
        expected=f"at least {MIN_SPEEDUP:g}×",
        got=f"{value:.2f}×",
        hint="Check Q2's pipeline: is the cache right after the decode, and prefetch last? Run the "
        "cell again if the machine was busy.",
    )


q3 = Exercise(
    "Q3 · the speed-up, measured",
    _check_speedup,
    hint="Finish Q1 and Q2; prove_speedup then measures both pipelines with your timer.",
    lab="lab09",
    not_done="not done yet: finish Q1 and Q2 first, then run this cell again.",
)


def prove_speedup(
    fast_pipeline: Callable, steps_per_second: Callable, *, n_images: int = 256, batch_size: int = 32
) -> Any:
    """Measure the naive pipeline and the learner's with the learner's timer; show them; check q3.

    The learner's pipeline is measured after one whole epoch (``.repeat().skip(epoch)``: the first
    ``next`` runs the first epoch, which fills the cache, as the timer's warm-up). Returns the pandas
    DataFrame of the rates, or the not-done :class:`~utils.checks.Feedback` while Q1 or Q2 fail.
    """
    for exercise, answer in ((q1, steps_per_second), (q2, fast_pipeline)):
        feedback = exercise.evaluate(answer)
        if not feedback.passed:
            q3.check(None)
            return None
    import pandas as pd

    images, labels = lab_images(n_images)
    per_epoch = n_images // batch_size
    n = per_epoch
    naive_rate = float(steps_per_second(naive_pipeline(images, labels, batch_size).repeat(), n))
    fast = fast_pipeline(images, labels, batch_size).repeat().skip(per_epoch)
    fast_rate = float(steps_per_second(fast, n))
    table = pd.DataFrame(
        {"steps/s": [naive_rate, fast_rate]},
        index=["naive pipeline", "your pipeline (after the first epoch)"],
    ).round(1)
    from utils.checks import _display

    _display(table)
    print(f"speed-up: {fast_rate / naive_rate:.1f}×")
    q3.check(fast_rate / naive_rate)
    return None


# ---------------------------------------------------------------------------------------------
# q4: the distributed training step
# ---------------------------------------------------------------------------------------------


class _RecordingStrategy:
    """Wraps a strategy and records the calls of ``run`` and ``reduce`` (everything else passes)."""

    def __init__(self, strategy: Any):
        self._strategy = strategy
        self.runs = 0
        self.reduce_ops: list[str] = []

    def run(self, fn: Callable, args: Any = (), kwargs: Any = None, options: Any = None) -> Any:
        self.runs += 1
        return self._strategy.run(fn, args=args, kwargs=kwargs, options=options)

    def reduce(self, reduce_op: Any, value: Any, axis: Any = None) -> Any:
        self.reduce_ops.append(str(getattr(reduce_op, "value", reduce_op)).upper())
        return self._strategy.reduce(reduce_op, value, axis=axis)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._strategy, name)


_STRATEGY: list[Any] = []


def _strategy() -> Any:
    """MirroredStrategy over the first two logical CPUs (one if the CPU was not split); made once."""
    tf = _tf()
    if not _STRATEGY:
        from utils.env import quiet_stderr

        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
        with quiet_stderr():
            _STRATEGY.append(tf.distribute.MirroredStrategy(devices))
    return _STRATEGY[0]


Q4_BATCH, Q4_FEATURES, Q4_HIDDEN, Q4_CLASSES, Q4_LR = 16, 4, 8, 3, 0.5


def _q4_problem() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(Q4_BATCH, Q4_FEATURES)).astype("float32")
    y = rng.integers(0, Q4_CLASSES, Q4_BATCH).astype("int32")
    w = [
        rng.normal(size=(Q4_FEATURES, Q4_HIDDEN)).astype("float32") / 2,
        np.full(Q4_HIDDEN, 0.1, "float32"),
        rng.normal(size=(Q4_HIDDEN, Q4_CLASSES)).astype("float32") / 2,
        np.zeros(Q4_CLASSES, "float32"),
    ]
    return x, y, w


def _q4_model(w: list[np.ndarray]) -> Any:
    """The probe model, with weights ``w``: a hidden ReLU layer, then float32 logits.

    The hidden layer follows the active dtype policy, so under ``mixed_float16`` or
    ``mixed_bfloat16`` it computes at 16 bits as the learner's own models do; the output layer is
    float32, as a classifier's last layer should be under mixed precision.
    """
    import keras

    model = keras.Sequential(
        [
            keras.Input((Q4_FEATURES,)),
            keras.layers.Dense(Q4_HIDDEN, activation="relu"),
            keras.layers.Dense(Q4_CLASSES, dtype="float32"),
        ]
    )
    model.set_weights(w)
    return model


def _q4_reference(x: np.ndarray, y: np.ndarray, w: list[np.ndarray], global_batch: int) -> tuple[list, float]:
    """The right update and loss, on one device: grad of sum(per-example loss) / global_batch.

    Computed by the same model at the active dtype policy, so it is rounded as the learner's step is.
    """
    tf = _tf()
    import keras

    model = _q4_model(w)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(loss_fn(y, model(x, training=True))) / global_batch
    grads = tape.gradient(loss, model.trainable_variables)
    return [-Q4_LR * g.numpy() for g in grads], float(loss)


def _q4_rtol() -> float:
    """How closely a right step matches the reference: 1e-3 in float32, wider at 16 bits.

    The replicas add their gradients in another order than one device does, which moves the last
    bits: about 1e-7 in float32, 1e-3 in float16, 1e-2 in bfloat16 (utils.env.tolerance gives 1e-2
    and 6e-2 for those two). The mistakes are 2× or more off.
    """
    from utils.env import tolerance

    return max(1e-3, tolerance()["rtol"])


def _check_step(step: Callable) -> None:
    tf = _tf()
    import keras

    from utils.env import quiet_stderr

    strategy = _strategy()
    replicas = strategy.num_replicas_in_sync
    # with one device, say the global batch is twice what it sees, as if another replica held the rest
    global_batch = Q4_BATCH if replicas > 1 else 2 * Q4_BATCH
    x, y, w = _q4_problem()
    with strategy.scope():
        model = _q4_model(w)
        optimizer = keras.optimizers.SGD(Q4_LR)
        optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    with quiet_stderr(also=r"GeneratorDatasetOp|will not be optimized"):
        dist = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(Q4_BATCH)
        )
        batch = next(iter(dist))
    spy = _RecordingStrategy(strategy)
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(
        "ERROR"
    )  # "Using MirroredStrategy eagerly has significant overhead": true, not the point here
    try:
        got = call(step, spy, model, optimizer, loss_fn, batch, global_batch)
    except LearnerError:
        if spy.runs == 0:
            raise Mismatch(
                "how your step runs",
                expected="strategy.run(replica_step, args=(dist_batch,))",
                got="an error, and strategy.run was never called",
                hint="You forgot strategy.run: the distributed batch holds one part per replica, and "
                "only strategy.run hands each replica its part and runs your step there.",
            ) from None
        raise
    finally:
        logger.setLevel(level)
    if spy.runs == 0:
        raise Mismatch(
            "how your step runs",
            expected="strategy.run(replica_step, args=(dist_batch,))",
            got="strategy.run was never called",
            hint="You forgot strategy.run: without it the step does not run on each replica. Call "
            "strategy.run(replica_step, args=(dist_batch,)).",
        )
    if isinstance(got, tf.distribute.DistributedValues) or (not spy.reduce_ops and replicas > 1):
        raise Mismatch(
            "what your step returns",
            expected="one loss: strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_losses, axis=None)",
            got="the per-replica losses, not reduced",
            hint="Combine the replicas' losses with strategy.reduce(tf.distribute.ReduceOp.SUM, ..., axis=None).",
        )
    if any("MEAN" in op for op in spy.reduce_ops):
        raise Mismatch(
            "how the replicas' losses are combined",
            expected="ReduceOp.SUM",
            got="ReduceOp.MEAN",
            hint="Each replica's loss is already divided by the global batch size, so adding them gives the "
            "mean over the global batch; MEAN would divide by the number of replicas once more. Use SUM.",
        )
    right_delta, right_loss = _q4_reference(x, y, w, global_batch)
    got_delta = [a - b for a, b in zip(model.get_weights(), w, strict=True)]
    flat_right = np.concatenate([d.ravel() for d in right_delta])
    flat_got = np.concatenate([d.ravel() for d in got_delta])
    if np.allclose(flat_got, 0.0, atol=1e-8):
        raise Mismatch(
            "the weights after your step",
            expected="updated by the optimizer",
            got="unchanged",
            hint="Apply the gradients inside the replica step: optimizer.apply_gradients(zip(grads, "
            "model.trainable_variables)).",
        )
    rtol = _q4_rtol()
    ratio = float(flat_got @ flat_right / (flat_right @ flat_right))
    # the update is `ratio` times the right one, up to rounding (measured on the whole vector, so an
    # entry near zero, where a few roundings are a large fraction, does not decide alone)
    off = np.linalg.norm(flat_got - ratio * flat_right) / max(abs(ratio) * np.linalg.norm(flat_right), 1e-12)
    consistent = bool(off <= rtol)
    per_replica_batch = Q4_BATCH // replicas
    what = "the weight update of one step"
    expected = f"the gradient of the mean loss over the global batch of {global_batch}"
    if consistent and np.isclose(ratio, 1.0, rtol=rtol):
        expect_loss = float(np.asarray(got).reshape(())) if got is not None else None
        if expect_loss is None or not np.isclose(expect_loss, right_loss, rtol=rtol):
            raise Mismatch(
                "the loss your step returns",
                expected=f"{right_loss:.5f} (the mean over the global batch)",
                got="None" if expect_loss is None else f"{expect_loss:.5f}",
                hint="Return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_losses, axis=None).",
            )
        return
    if consistent and np.isclose(ratio, global_batch / per_replica_batch, rtol=rtol):
        raise Mismatch(
            what,
            expected=expected,
            got=f"{ratio:.0f}× too large",
            hint="You averaged over each replica's own examples (reduce_mean, or dividing by the per-replica "
            "batch): the strategy then adds the replicas' gradients, which makes them "
            f"{ratio:.0f}× too large. Use tf.nn.compute_average_loss(per_example_loss, "
            "global_batch_size=global_batch_size).",
        )
    if consistent and np.isclose(ratio, global_batch, rtol=rtol):
        raise Mismatch(
            what,
            expected=expected,
            got=f"{ratio:.0f}× too large",
            hint="You summed the per-example losses without dividing: divide by the global batch size, "
            "with tf.nn.compute_average_loss(per_example_loss, global_batch_size=global_batch_size).",
        )
    if consistent and np.isclose(ratio, 1 / global_batch, rtol=rtol):
        raise Mismatch(
            what,
            expected=expected,
            got=f"{global_batch}× too small",
            hint="You divided by the global batch twice: tf.nn.compute_average_loss already does it; "
            "give it the per-example losses (reduction=None), not their mean.",
        )
    if consistent and ratio < 0:
        raise Mismatch(
            what,
            expected=expected,
            got="a step uphill",
            hint="Minimise the loss: don't negate the gradients.",
        )
    raise Mismatch(
        what,
        expected=expected,
        got=f"{ratio:.3g}× the right update" if consistent else "a different update",
        hint="In the replica step: per_example = loss_fn(y, model(x, training=True)); loss = "
        "tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size); then the "
        "gradients of that loss, applied with the optimizer.",
    )


q4 = Exercise(
    "Q4 · the distributed training step",
    _check_step,
    hint="per_replica = strategy.run(replica_step, args=(dist_batch,)) where replica_step uses "
    "tf.nn.compute_average_loss(..., global_batch_size=global_batch_size) and applies the gradients; "
    "return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).",
    lab="lab09",
    solution_id="q4",
)
