"""Checks for Lab 09 (training at scale). Tasks and the mistakes they name:

* ``q1`` ``WarmupHoldCosine``, a ``LearningRateSchedule``, read at every phase boundary: warm-up off by one,
  cosine clock from step 0, no hold, cosine over the wrong span, no floor, the floor as Keras's ``alpha``,
  climbing back after ``total``, not a schedule, failing on a graph tensor;
* ``q2`` ``fast_pipeline``, by its values, two epochs and its chain: cache after the augmentation or before
  the decode, no cache, a sequential decode, no prefetch or not last, batching before the decode;
* ``q3`` ``speedup(slow, fast, ...)``, measured: too slow (no epoch skipped), inverted, ignoring its inputs;
* ``q4`` ``accumulated_step`` over unequal micro-batches, at the active dtype policy: each one's mean
  summed, the mean of the means, not divided, divided by the micro-batches too, an update per
  micro-batch, only the last one, no update, the wrong loss. Generic helpers (for the toolkit):
  :func:`mistake_table`, :func:`hint_table`, :func:`named`.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks import Exercise, LearnerError, Mismatch, Mistake, NotDone, as_number, call, expect, judge
from utils.env import import_tensorflow as _tf
from utils.env import quiet_stderr, tolerance


def mistake_table(text: str, compute: Callable | None = None) -> list[Mistake]:
    """Mistakes from ``name | k=v, ... | hint`` lines; ``compute(*inputs, **{k: v})`` is what each gives."""
    rows = [[part.strip() for part in line.split("|", 2)] for line in text.strip().splitlines()]
    kw = lambda spec: {k: ast.literal_eval(v) for k, v in (a.split("=") for a in spec.split(", ") if a)}
    make = lambda args: (lambda *a: compute(*a, **args)) if compute else None
    return [Mistake(name, hint, make(kw(spec)) if spec else None) for name, spec, hint in rows]


def hint_table(text: str) -> dict[str, tuple[str, ...]]:
    """Hints in steps from ``id | nudge | stronger hint | ...`` lines."""
    return {key: tuple(hints) for key, *hints in (line.split(" | ") for line in text.strip().splitlines())}


def named(mistakes: list[Mistake], name: str, what: str, got: Any = None, expected: Any = None) -> Mismatch:
    """The :class:`Mismatch` for the mistake ``name`` of ``mistakes``, with its hint."""
    found = next(m for m in mistakes if m.name == name)
    return Mismatch(what, expected=expected, got=found.name if got is None else got, hint=found.hint)


HINTS = hint_table(
    """
q1 | Write the rate of each phase (warm-up, hold, decay, after the end) on its own, then pick the phase with a comparison on the step. | Warm-up: peak × step / warmup. Decay: the fraction done is (step − warmup − hold) / (total − warmup − hold), kept between 0 and 1; the rate is floor + (peak − floor) × ½(1 + cos(π × fraction)). | Cast the step to float32 once, compute the three candidates, and choose with two nested `tf.where` (step < warmup, then step < warmup + hold).
q2 | Four jobs and a fifth: decode, keep what is slow to make, augment, batch, and keep the model fed. Which must see single images, and which must run anew every epoch? | Order: from_tensor_slices → a parallel map of slow_decode → cache → map random_flip → batch → prefetch (AUTOTUNE).
q3 | Build each pipeline with `.repeat()`, so it never runs out, then time a fixed number of steps of each after a warm-up, with `ex.steps_per_second`. | The warm-up of the fast pipeline is its whole first epoch, which fills the cache: skip that many batches (len(images) // batch_size) before timing. Return the fast rate divided by the slow one.
q4 | This is lesson 09's data-parallel step with the replicas replaced by micro-batches taken one after another: what did each replica divide its summed loss by? | For each micro-batch: its per-example losses, summed, divided by the number of examples in all the micro-batches together; add its gradients to a running total. After the loop, apply the total once.
"""
)


# q1: a learning-rate schedule from its description

SCHEDULES = [(0.1, 0.004, 8, 4, 40), (3e-3, 2e-4, 5, 0, 25)]  # peak, floor, warmup, hold, total


def reference_lr(t: Any, p: tuple, *, warm=0, start=None, span=None, low="floor", clamp=True, hold=True):
    """The rate at steps ``t`` for ``p = (peak, floor, warmup, hold, total)``; the keywords give the mistakes."""
    peak, floor, w, h, total = p
    t, s = np.asarray(t, float), w + h if hold else w
    d = {None: total - s, "total": total, "no hold": total - w}[span]
    x = (t - (s if start is None else start)) / d
    x = np.clip(x, 0, 1) if clamp else np.maximum(x, 0)
    lo = {"floor": floor, "none": 0.0, "alpha": floor * peak}[low]
    down = lo + (peak - lo) * 0.5 * (1 + np.cos(np.pi * x))
    return np.where(t < w, peak * np.minimum(t + warm, w) / w, np.where(t < s, peak, down))


Q1_MISTAKES = mistake_table(
    """
warm-up off by one | warm=1 | Your warm-up reaches the peak one step early (or starts above 0). What should the rate be at step 0, and at step `warmup` exactly?
cosine clock from step 0 | start=0 | Your decay is already under way when it should start: the cosine's clock counts from step 0. Count the decay's own steps, from the end of the hold.
no hold | hold=False | Your rate starts to fall right after the warm-up: the hold phase, `hold` steps at the peak, is missing.
cosine over the whole run | span='total' | Your cosine runs over the whole training, so it has not reached the floor at `total`. Over how many steps does the decay itself run?
cosine span counts the hold | span='no hold' | Your decay reaches the floor late: its span counts the hold steps too. It runs from the end of the hold to `total`.
no floor | low='none' | Your rate decays to 0. The cosine should end at `floor`: interpolate between the peak and the floor.
floor as a fraction | low='alpha' | Your decay ends at floor × peak: that is Keras's `alpha`, a fraction of the peak. Here `floor` is the rate itself.
climbs after total | clamp=False | After `total` your rate rises again: a cosine is periodic. Stop its clock at the end of the decay.
not a LearningRateSchedule | | An optimizer takes a schedule object only if it is a `keras.optimizers.schedules.LearningRateSchedule`: subclass it.
fails on a tensor step | | An optimizer calls the schedule with its step counter, an int64 tensor, inside a graph. Cast it to float32 first, and choose between phases with tensor ops (`tf.where`, `keras.ops.where`) or plain arithmetic.
""",
    reference_lr,
)


def _check_schedule(make: Callable) -> None:
    tf = _tf()
    import keras

    for p in SCHEDULES:
        schedule = call(make, *p)
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise named(Q1_MISTAKES, "not a LearningRateSchedule", "WarmupHoldCosine(...)", type(schedule))
        w, s, total = p[2], p[2] + p[3], p[4]
        steps = sorted({0, 1, w - 1, w, w + 1, s - 1, s, (s + total) // 2, total - 1, total, total + 40})
        got = [as_number(call(schedule, tf.constant(k, tf.int64)), f"the rate at {k}") for k in steps]
        try:  # as an optimizer calls it; NumPy on a graph tensor raises NotImplementedError, not "not done"
            call(tf.function(schedule), tf.constant(total, tf.int64))
        except (LearnerError, NotDone) as err:
            cause = repr(err.__cause__ or err)[:150]
            raise named(Q1_MISTAKES, "fails on a tensor step", "the rate in a graph", cause) from None
        what, tol = f"the rate at steps {steps} of WarmupHoldCosine{p}", {"rtol": 1e-4, "atol": 1e-6 * p[0]}
        # (a schedule computes in float32 under every dtype policy: no looser tolerance for mixed precision)
        judge(np.array(got), reference_lr(steps, p), Q1_MISTAKES, what=what, inputs=(steps, p), tol=tol)


q1 = Exercise("Q1 · warm-up, hold, cosine decay", _check_schedule, hint=HINTS["q1"])


# q2: the fast pipeline

DECODE_MS, IMAGE_SHAPE, Q2_N, Q2_BATCH = 1.0, (8, 8, 1), 64, 16  # slow_decode waits DECODE_MS per image


def lab_images(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` digits as "encoded" images (uint8 (n, 8, 8, 1), 0-255) and int32 labels."""
    from utils.data import load_digits

    (x, y), _ = load_digits()
    return (x[:n, :, :, None] * 255).round().astype("uint8"), y[:n].astype("int32")


def slow_decode(image: Any) -> Any:
    """Decode one image: wait DECODE_MS (like reading it from slow storage), return float32 in [0, 1]."""
    tf = _tf()

    work = lambda img: (time.sleep(DECODE_MS / 1000), (img / 255.0).astype("float32"))[1]  # noqa: E731
    return tf.ensure_shape(tf.numpy_function(work, [image], tf.float32), IMAGE_SHAPE)


_FLIP_RNG: list[Any] = []


def random_flip(image: Any, label: Any) -> tuple[Any, Any]:
    """Flip left-right with probability 1/2, from a tf.random.Generator (its state carries across epochs)."""
    tf = _tf()
    _FLIP_RNG[:] = _FLIP_RNG or [tf.random.Generator.from_seed(9)]
    return tf.where(_FLIP_RNG[0].uniform(()) < 0.5, tf.reverse(image, axis=[1]), image), label


def naive_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int) -> Any:
    """Return the slow pipeline: decode one image at a time, augment, batch; no cache, no prefetch."""
    ds = _tf().data.Dataset.from_tensor_slices((images, labels))
    return ds.map(lambda i, lab: (slow_decode(i), lab)).map(random_flip).batch(batch_size)


_KINDS = "parallelmap:parallel_map parallelbatch:batch map:map cache:cache batch:batch prefetch:prefetch shuffle:shuffle repeat:repeat tensorslice:slices options:options"


def transformations(dataset: Any) -> list[str]:
    """Return the tf.data transformations of ``dataset`` from source to end: ['slices', 'map', ...]."""
    names, d = [], dataset
    while d is not None:
        inputs = getattr(d, "_datasets", None)
        if inputs and getattr(d, "_input_dataset", None) is None:  # zip: follow the longest branch
            branches = [transformations(b) for b in inputs if hasattr(b, "element_spec")]
            return max(branches, key=len, default=[]) + ["zip"] + names[::-1]
        cls = type(d).__name__.lower().strip("_")
        kinds = (kind.split(":") for kind in _KINDS.split())
        names.append(next((name for key, name in kinds if key in cls), type(d).__name__))
        d = getattr(d, "_input_dataset", None)
    return names[::-1]


Q2_MISTAKES = mistake_table(
    """
batch before the decode | | slow_decode takes one image: where in the chain must it run so that it sees single images?
frozen augmentation | | Two epochs flip every image the same way: the flips of the first epoch are stored and replayed. What does the cache store, and where must the random step sit relative to it?
no cache | | No cache: every epoch decodes every image again. Keep the decoded images after the first epoch, right after the slow step.
cache before the decode | | Your cache stores the raw images, so slow_decode still runs every epoch. Cache what is slow to make.
sequential decode | | The decode runs one image at a time. Let tf.data decode several at once (num_parallel_calls, AUTOTUNE).
no prefetch | | Prefetch is missing: without it the model waits while the next batch is prepared.
prefetch not last | | Put prefetch last, after batch, so it prepares whole batches while the model trains.
order or labels changed | | Keep the order (no shuffle in this exercise) and keep each label with its image.
images changed | | Each image must be slow_decode's output (in [0, 1]), flipped left-right or not: map slow_decode, then random_flip, and don't rescale again.
too slow | | A cached, parallel, prefetched pipeline should be at least twice as fast as the naive one once its first epoch is over. Do you skip a whole epoch of the fast pipeline before timing it? Run the cell again if the machine was busy.
inverted | | Your ratio is below 1 for a pipeline that is much faster: divide the fast pipeline's rate by the slow one's, not the other way round.
ignores its arguments | | Given the same pipeline twice, your function still reports a large speed-up: measure the two pipelines it is given.
epoch not whole | | One epoch is every image once, in batches of batch_size: no repeat(), no take(), no drop_remainder.
"""
)


def _epoch(ds: Any) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One epoch of ``ds``: all images, all labels, and the first batch's shape."""
    try:
        with quiet_stderr():
            batches = [(np.asarray(x), np.asarray(y)) for x, y in ds]
    except Exception as exc:  # the learner's pipeline failed while running
        raise LearnerError(exc, "") from None
    return (*(np.concatenate(a) for a in zip(*batches)), batches[0][0].shape) if batches else ([], [], ())  # noqa: B905


def _check_pipeline(fast_pipeline: Callable) -> None:
    images, labels = lab_images(Q2_N)
    ds = call(fast_pipeline, images, labels, Q2_BATCH)
    expect(isinstance(ds, _tf().data.Dataset), "what fast_pipeline returns", expected="a tf.data.Dataset")
    steps, where = transformations(ds), "the transformations of your pipeline"
    chain = " → ".join(steps)
    wrong = lambda name, what=where, got=chain: named(Q2_MISTAKES, name, what, got)
    try:
        xs, ys, shape = _epoch(ds)
    except LearnerError as err:
        if "batch" in steps and "map" in "".join(steps[steps.index("batch") :]):
            raise wrong("batch before the decode", "running your pipeline", repr(err.error)) from None
        raise
    if shape != (Q2_BATCH, *IMAGE_SHAPE) or len(xs) != Q2_N:
        raise wrong("epoch not whole", "one epoch", f"{len(xs)} images, first batch {shape}")
    if not np.array_equal(ys, labels):
        raise wrong("order or labels changed", "the labels, in order", ys[:8])
    decoded = images.astype("float32") / 255.0
    close = lambda x, d: np.allclose(x, d, atol=1e-6) or np.allclose(x, d[:, ::-1], atol=1e-6)
    same = [close(x, d) for x, d in zip(xs, decoded, strict=True)]
    if not all(same):
        raise wrong("images changed", "the images", f"{same.count(False)} of {len(same)} differ")
    if np.array_equal(xs, _epoch(ds)[0]):
        raise wrong("frozen augmentation", "two epochs of your pipeline", "the same flips")
    before = steps[: steps.index("cache")] if "cache" in steps else []
    kept = [s for s in steps if s != "options"]
    for name, bad in (
        ("no cache", "cache" not in steps),
        ("cache before the decode", not {"map", "parallel_map"} & set(before)),
        ("sequential decode", "map" in before),
        ("no prefetch", "prefetch" not in steps),
        ("prefetch not last", kept[-1] != "prefetch"),
    ):
        if bad:
            raise wrong(name)


q2 = Exercise("Q2 · a fast input pipeline", _check_pipeline, hint=HINTS["q2"])


# q3: the speed-up, measured


def _fast_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int) -> Any:
    """The probe's fast pipeline, to test the learner's measurement (Q2 checks theirs)."""
    tf, auto = _tf(), _tf().data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).map(lambda i, lab: (slow_decode(i), lab), auto)
    return ds.cache().map(random_flip, auto).batch(batch_size).prefetch(auto)


def _check_speedup(speedup: Callable) -> None:
    images, labels = lab_images(256)
    value = as_number(call(speedup, naive_pipeline, _fast_pipeline, images, labels, 32), "the speed-up")
    if value < MIN_SPEEDUP:
        name = "inverted" if value < 0.5 else "too slow"
        raise named(
            Q2_MISTAKES, name, "speedup(naive, fast, ...) for a fast pipeline", f"{value:.2f}×", "≥ 2×"
        )
    same = as_number(call(speedup, naive_pipeline, naive_pipeline, images, labels, 32), "the speed-up")
    if same >= MIN_SPEEDUP:
        raise named(Q2_MISTAKES, "ignores its arguments", "speedup(naive, naive, ...)", f"{same:.2f}×")


MIN_SPEEDUP = 2.0
q3 = Exercise("Q3 · the speed-up, measured", _check_speedup, hint=HINTS["q3"])


def steps_per_second(dataset: Any, n_steps: int) -> float:
    """Elements per second over ``n_steps`` elements, after one warm-up element (start-up is not throughput)."""
    it = iter(dataset)
    next(it)
    start = time.perf_counter()
    for _ in range(n_steps):
        next(it)
    return n_steps / (time.perf_counter() - start)


def show_speedup(speedup: Callable, fast_pipeline: Callable) -> Any:
    """Measure the learner's pipeline against the naive one with the learner's function, once Q2 and Q3 pass."""
    for exercise, answer in ((q2, fast_pipeline), (q3, speedup)):
        if not exercise.evaluate(answer).passed:
            return print(f"finish {exercise.title.split(' ·')[0]} first, then run this cell again.")
    value = speedup(naive_pipeline, fast_pipeline, *lab_images(256), 32)
    print(f"your pipeline trains {value:.1f}× faster than the naive one (after its first epoch)")


# q4: gradient accumulation

Q4_SIZES, Q4_FEATURES, Q4_HIDDEN, Q4_CLASSES, Q4_LR = (16, 16, 4), 4, 8, 3, 0.5


def q4_problem() -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
    """Micro-batches of 16, 16 and 4 examples (the last one unlike the others) and the start weights."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(sum(Q4_SIZES), Q4_FEATURES)) * np.repeat([1, 1, 3], Q4_SIZES)[:, None]
    y, cuts = rng.integers(0, Q4_CLASSES, len(x)).astype("int32"), np.cumsum(Q4_SIZES)[:-1]
    w = [rng.normal(size=(Q4_FEATURES, Q4_HIDDEN)) / 2, np.full(Q4_HIDDEN, 0.1)]
    w += [rng.normal(size=(Q4_HIDDEN, Q4_CLASSES)) / 2, np.zeros(Q4_CLASSES)]
    return list(zip(np.split(x.astype("float32"), cuts), np.split(y, cuts))), [a.astype("float32") for a in w]  # noqa: B905


def q4_model(w: list[np.ndarray]) -> Any:
    """A hidden ReLU layer at the active dtype policy, then float32 logits; weights ``w``."""
    import keras

    hidden, out = (
        keras.layers.Dense(Q4_HIDDEN, activation="relu"),
        keras.layers.Dense(Q4_CLASSES, dtype="float32"),
    )
    model = keras.Sequential([keras.Input((Q4_FEATURES,)), hidden, out])
    model.set_weights(w)
    return model


def _update(batches: list, w: list, divide="global", each=False, last_only=False, apply=True) -> np.ndarray:
    """The weight change of one accumulated step at the active policy; the keywords give the mistakes."""
    tf = _tf()
    import keras

    model, total, k, acc = q4_model(w), sum(len(x) for x, _ in batches), len(batches), None
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    for x, y in batches:
        with tf.GradientTape() as tape:
            per = loss_fn(y, model(x, training=True))
            s, m = tf.reduce_sum(per), tf.reduce_mean(per)
            loss = {"global": s / total, "mean": m, "sum": s, "means": m / k, "k": s / total / k}[divide]
        grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
        if each:
            model.set_weights([v - Q4_LR * g for v, g in zip(model.get_weights(), grads)])  # noqa: B905
        acc = grads if acc is None or last_only else [a + g for a, g in zip(acc, grads)]  # noqa: B905
    new = model.get_weights() if each else [v - Q4_LR * g * apply for v, g in zip(w, acc)]  # noqa: B905
    return np.concatenate([(a - b).ravel() for a, b in zip(new, w)])  # noqa: B905


Q4_MISTAKES = mistake_table(
    """
each micro-batch's mean, summed | divide='mean' | Your update is about as many times too large as there are micro-batches: each micro-batch's loss is its own mean, and the means are added up. Divide by the size of the whole batch instead.
mean of the means | divide='means' | Your update weighs every micro-batch alike, but the last one holds fewer examples. Each example must count once, whatever micro-batch it is in.
summed, not divided | divide='sum' | Your update is far too large: the per-example losses are summed without dividing by the number of examples in the whole batch.
divided by the micro-batches too | divide='k' | Your update is too small by the number of micro-batches: the loss is already divided by the whole batch's size, so don't divide the sum of gradients again.
an update per micro-batch | divide='mean', each=True | You applied the gradients after every micro-batch: several small steps, not one step on the whole batch. Add the gradients up and apply them once, at the end.
only the last micro-batch | last_only=True | Only the last micro-batch's gradients reached the update: the running total is replaced instead of added to.
no update | apply=False | The weights did not change: apply the accumulated gradients with the optimizer.
wrong loss returned | | Return the mean per-example loss over the whole batch: the sum of the micro-batches' scaled losses.
""",
    _update,
)


def _check_accumulation(step: Callable) -> None:
    import keras

    batches, w = q4_problem()
    model, optimizer = q4_model(w), keras.optimizers.SGD(Q4_LR)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    got_loss = call(step, model, optimizer, loss_fn, [(x.copy(), y.copy()) for x, y in batches])
    got = np.concatenate([(a - b).ravel() for a, b in zip(model.get_weights(), w)])  # noqa: B905
    right = _update(batches, w)
    eps = max(1e-4, tolerance()["rtol"])  # 16-bit layers round the gradients: 1e-2 (float16), 6e-2 (bfloat16)
    tol = {"rtol": eps, "atol": eps * float(np.abs(right).max())}
    what = f"the weight change of one step on micro-batches of {Q4_SIZES} examples"
    describe = f"the gradient of the mean loss over all {sum(Q4_SIZES)} examples, applied once"
    judge(got, right, Q4_MISTAKES, what=what, inputs=(batches, w), tol=tol, describe=describe)
    x, y = (np.concatenate(a) for a in zip(*batches))  # noqa: B905
    right_loss = float(np.mean(loss_fn(y, q4_model(w)(x))))
    if got_loss is None or abs(as_number(got_loss, "the loss returned") - right_loss) > eps * right_loss:
        raise named(Q4_MISTAKES, "wrong loss returned", "the loss your step returns", repr(got_loss)[:60])


q4 = Exercise("Q4 · gradient accumulation", _check_accumulation, hint=HINTS["q4"])
