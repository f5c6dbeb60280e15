"""Lab 09's checks: right answers written in different styles pass, each typical mistake gets its own
hint, unfinished answers are "not done yet", a learner's exception is reported without a course traceback."""

import time

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils.checks import lab09 as ex  # noqa: E402

AUTOTUNE = tf.data.AUTOTUNE


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.slow
@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


# ---------------------------------------------------------------------------------------------
# Q1: the schedule
# ---------------------------------------------------------------------------------------------

Schedule = keras.optimizers.schedules.LearningRateSchedule


class WithTfWhere(Schedule):
    def __init__(self, peak, floor, warmup, hold, total):
        self.p = (peak, floor, warmup, hold, total)

    def __call__(self, step):
        peak, floor, w, h, total = self.p
        t = tf.cast(step, tf.float32)
        frac = tf.clip_by_value((t - w - h) / (total - w - h), 0.0, 1.0)
        down = floor + (peak - floor) * 0.5 * (1 + tf.cos(np.pi * frac))
        return tf.where(t < w, peak * t / w, tf.where(t < w + h, peak, down))


class WithKerasOpsAndIfs(Schedule):  # Python ifs (autograph turns them into tf.cond), keras.ops
    def __init__(self, peak, floor, warmup, hold, total):
        self.peak, self.floor, self.warmup, self.hold, self.total = peak, floor, warmup, hold, total

    def __call__(self, step):
        from keras import ops

        t = ops.cast(step, "float32")
        if t < self.warmup:
            return self.peak * t / self.warmup
        if t < self.warmup + self.hold:
            return ops.convert_to_tensor(self.peak, "float32")
        x = ops.minimum((t - self.warmup - self.hold) / (self.total - self.warmup - self.hold), 1.0)
        return self.floor + (self.peak - self.floor) * (1 + ops.cos(np.pi * x)) / 2


class OnCosineDecay(Schedule):  # Keras's CosineDecay for the last phase (alpha = floor / peak)
    def __init__(self, peak, floor, warmup, hold, total):
        self.peak, self.warmup, self.start = peak, warmup, warmup + hold
        self.cosine = keras.optimizers.schedules.CosineDecay(peak, total - self.start, alpha=floor / peak)

    def __call__(self, step):
        t = tf.cast(step, tf.float32)
        decay = self.cosine(tf.maximum(t - self.start, 0.0))
        return tf.where(
            t < self.warmup, self.peak * t / self.warmup, tf.where(t < self.start, self.peak, decay)
        )


def _variant(**kwargs):
    """A schedule with one mistake, computed by the reference in NumPy (graph-safe through numpy_function)."""

    class Mistaken(Schedule):
        def __init__(self, *p):
            self.p = p

        def __call__(self, step):
            rate = lambda t: np.float32(ex.reference_lr(t, self.p, **kwargs))  # noqa: E731
            return tf.numpy_function(rate, [step], tf.float32)

    return Mistaken


Q1_MISTAKES = {
    "off by one": (dict(warm=1), "one step early"),
    "clock from 0": (dict(start=0), "clock counts from step 0"),
    "no hold": (dict(hold=False), "hold phase"),
    "whole run": (dict(span="total"), "whole training"),
    "span with hold": (dict(span="no hold"), "counts the hold"),
    "no floor": (dict(low="none"), "decays to 0"),
    "alpha": (dict(low="alpha"), "alpha"),
    "climbs": (dict(clamp=False), "rises again"),
}


@pytest.mark.slow
@pytest.mark.parametrize("answer", [WithTfWhere, WithKerasOpsAndIfs, OnCosineDecay])
def test_q1_right_answers_pass(answer):
    fb = ex.q1.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.slow
@pytest.mark.parametrize(("kwargs", "phrase"), list(Q1_MISTAKES.values()), ids=list(Q1_MISTAKES))
def test_q1_mistakes(kwargs, phrase):
    fb = ex.q1.evaluate(_variant(**kwargs))
    assert fb.status == "incorrect" and phrase in (fb.hint or ""), str(fb)


def test_q1_mistakes_differ_from_the_right_schedule_and_each_other():
    p = ex.SCHEDULES[0]
    steps = np.arange(0, 80)
    right = ex.reference_lr(steps, p)
    seen = [right]
    for kwargs, _ in Q1_MISTAKES.values():
        wrong = ex.reference_lr(steps, p, **kwargs)
        assert all(np.abs(wrong - other).max() > 1e-3 * p[0] for other in seen)
        seen.append(wrong)


@pytest.mark.slow
def test_q1_a_function_or_a_graph_unsafe_schedule_is_named():
    fb = ex.q1.evaluate(lambda *p: lambda step: 0.1)
    assert fb.status == "incorrect" and "subclass" in fb.hint, str(fb)

    class NumpyOnly(Schedule):
        def __init__(self, *p):
            self.p = p

        def __call__(self, step):
            return float(ex.reference_lr(int(step), self.p))  # int() of a symbolic tensor fails in a graph

    fb = ex.q1.evaluate(NumpyOnly)
    assert fb.status == "incorrect" and "int64 tensor" in fb.hint, str(fb)


@pytest.mark.slow
def test_q1_learner_exception_is_reported_without_course_traceback():
    class Broken(Schedule):
        def __init__(self, *p):
            raise ZeroDivisionError("division by zero")

    fb = ex.q1.evaluate(Broken)
    assert fb.status == "error" and "ZeroDivisionError" in fb.message and "Traceback" not in str(fb)


# ---------------------------------------------------------------------------------------------
# Q2: the fast pipeline
# ---------------------------------------------------------------------------------------------


def _decode(i, lab):
    return ex.slow_decode(i), lab


def pipeline(
    images, labels, batch_size, *, decode_calls=AUTOTUNE, order="dcab", prefetch=True, shuffle=False
):
    """The right pipeline, or one with its steps reordered: d(ecode), c(ache), a(ugment), b(atch)."""
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(1000, seed=1)
    for step in order:
        if step == "d":
            ds = ds.map(_decode, num_parallel_calls=decode_calls)
        elif step == "c":
            ds = ds.cache()
        elif step == "a":
            ds = ds.map(ex.random_flip, num_parallel_calls=AUTOTUNE)
        elif step == "b":
            ds = ds.batch(batch_size)
        elif step == "p":
            ds = ds.prefetch(AUTOTUNE)
    return ds.prefetch(AUTOTUNE) if prefetch else ds


def pipeline_written_differently(images, labels, batch_size):
    images_ds = tf.data.Dataset.from_tensor_slices(images).map(ex.slow_decode, num_parallel_calls=8).cache()
    ds = tf.data.Dataset.zip((images_ds, tf.data.Dataset.from_tensor_slices(labels)))
    options = tf.data.Options()
    options.deterministic = True
    return ds.map(ex.random_flip).batch(batch_size).prefetch(2).with_options(options)


@pytest.mark.slow
@pytest.mark.parametrize("answer", [pipeline, pipeline_written_differently])
def test_q2_right_answers_pass(answer):
    fb = ex.q2.evaluate(answer)
    assert fb.passed, str(fb)


Q2_MISTAKES = {
    "cache after augmentation": (dict(order="dacb"), "stored and replayed"),
    "cache before decode": (dict(order="cdab"), "stores the raw images"),
    "no cache": (dict(order="dab"), "No cache"),
    "sequential decode": (dict(decode_calls=None), "one image at a time"),
    "no prefetch": (dict(prefetch=False), "Prefetch is missing"),
    "prefetch before batch": (dict(order="dcapb", prefetch=False), "Put prefetch last"),
    "batch before decode": (dict(order="bdca"), "sees single images"),
    "shuffled": (dict(shuffle=True), "no shuffle"),
}


@pytest.mark.slow
@pytest.mark.parametrize(("kwargs", "phrase"), list(Q2_MISTAKES.values()), ids=list(Q2_MISTAKES))
def test_q2_mistakes(kwargs, phrase):
    fb = ex.q2.evaluate(lambda i, lab, b: pipeline(i, lab, b, **kwargs))
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.slow
def test_q2_not_a_dataset():
    fb = ex.q2.evaluate(lambda i, lab, b: list(zip(i, lab, strict=True)))
    assert fb.status == "incorrect" and "tf.data.Dataset" in str(fb)


@pytest.mark.slow
def test_transformations_lists_the_chain():
    images, labels = ex.lab_images(32)
    assert ex.transformations(pipeline(images, labels, 8)) == [
        "slices",
        "parallel_map",
        "cache",
        "parallel_map",
        "batch",
        "prefetch",
    ]


# ---------------------------------------------------------------------------------------------
# Q3: the speed-up, measured by the learner
# ---------------------------------------------------------------------------------------------


def speedup(slow, fast, images, labels, batch_size):
    n = len(images) // batch_size
    rates = [ex.steps_per_second(p(images, labels, batch_size).repeat().skip(n), n) for p in (slow, fast)]
    return rates[1] / rates[0]


def speedup_by_epochs(slow, fast, images, labels, batch_size):  # whole epochs, timed after the first
    def rate(ds):
        for _ in ds:
            pass
        start = time.perf_counter()
        n = sum(1 for _ in ds)
        return n / (time.perf_counter() - start)

    return rate(fast(images, labels, batch_size)) / rate(slow(images, labels, batch_size))


@pytest.mark.slow
@pytest.mark.parametrize("answer", [speedup, speedup_by_epochs])
def test_q3_right_answers_pass(answer):
    fb = ex.q3.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (lambda s, f, i, lab, b: 1 / speedup(s, f, i, lab, b), "not the other way round"),
        (lambda s, f, i, lab, b: 30.0, "Given the same pipeline twice"),
    ],
    ids=["inverted", "hard-coded"],
)
def test_q3_mistakes(answer, phrase):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and phrase in (fb.hint or ""), str(fb)


@pytest.mark.slow
def test_show_speedup_measures_and_waits_for_q2_and_q3(capsys):
    ex.show_speedup(speedup, pipeline)
    assert "faster than the naive one" in capsys.readouterr().out
    ex.show_speedup(_not_implemented, pipeline)
    assert "finish Q3 first" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Q4: gradient accumulation
# ---------------------------------------------------------------------------------------------


def accumulate(model, optimizer, loss_fn, micro_batches, *, divide="total", each=False, last_only=False):
    """The right step, or one with one thing changed."""
    n = sum(len(y) for _, y in micro_batches)
    total, losses = None, []
    for x, y in micro_batches:
        with tf.GradientTape() as tape:
            per = loss_fn(y, model(x, training=True))
            loss = {"total": tf.reduce_sum(per) / n, "mean": tf.reduce_mean(per), "sum": tf.reduce_sum(per)}[
                divide
            ]
        grads = tape.gradient(loss, model.trainable_variables)
        if each:
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        total = grads if total is None or last_only else [a + g for a, g in zip(total, grads, strict=True)]
        losses.append(loss)
    if not each:
        optimizer.apply_gradients(zip(total, model.trainable_variables, strict=True))
    return tf.add_n(losses)


def accumulate_by_concatenating(model, optimizer, loss_fn, micro_batches):  # right, if memory allows
    x = np.concatenate([x for x, _ in micro_batches])
    y = np.concatenate([y for _, y in micro_batches])
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(loss_fn(y, model(x, training=True)))
    optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
    return float(loss)


@pytest.mark.slow
@pytest.mark.parametrize("answer", [accumulate, accumulate_by_concatenating, tf.function(accumulate)])
def test_q4_right_answers_pass(answer):
    fb = ex.q4.evaluate(answer)
    assert fb.passed, str(fb)


Q4_MISTAKES = {
    "each mean": (dict(divide="mean"), "its own mean"),
    "summed": (dict(divide="sum"), "without dividing"),
    "per micro-batch": (dict(divide="mean", each=True), "after every micro-batch"),
    "last only": (dict(last_only=True), "replaced instead of added"),
}


@pytest.mark.slow
@pytest.mark.parametrize(("kwargs", "phrase"), list(Q4_MISTAKES.values()), ids=list(Q4_MISTAKES))
def test_q4_mistakes(kwargs, phrase):
    fb = ex.q4.evaluate(lambda *a: accumulate(*a, **kwargs))
    assert fb.status == "incorrect" and phrase in (fb.hint or ""), str(fb)


@pytest.mark.slow
def test_q4_mean_of_means_no_update_and_wrong_loss_are_named():
    def mean_of_means(model, optimizer, loss_fn, micro_batches):
        k = len(micro_batches)
        total = None
        for x, y in micro_batches:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(loss_fn(y, model(x, training=True))) / k
            grads = tape.gradient(loss, model.trainable_variables)
            total = grads if total is None else [a + g for a, g in zip(total, grads, strict=True)]
        optimizer.apply_gradients(zip(total, model.trainable_variables, strict=True))
        return 0.0

    fb = ex.q4.evaluate(mean_of_means)
    assert fb.status == "incorrect" and "fewer examples" in fb.hint, str(fb)
    fb = ex.q4.evaluate(lambda model, opt, loss_fn, batches: 1.0)
    assert fb.status == "incorrect" and "did not change" in fb.hint, str(fb)
    fb = ex.q4.evaluate(lambda *a: (accumulate(*a), None)[1])
    assert fb.status == "incorrect" and "mean per-example loss" in fb.hint, str(fb)


@pytest.mark.slow
def test_q4_learner_exception_is_reported_without_course_traceback():
    fb = ex.q4.evaluate(lambda *a: 1 / 0)
    assert fb.status == "error" and "ZeroDivisionError" in fb.message and "Traceback" not in str(fb)


@pytest.mark.slow
def test_q4_right_answer_passes_under_mixed_precision(mixed_policy):
    assert ex.q4.evaluate(accumulate).passed, str(ex.q4.evaluate(accumulate))
    for kwargs, phrase in Q4_MISTAKES.values():
        fb = ex.q4.evaluate(lambda *a, kwargs=kwargs: accumulate(*a, **kwargs))
        assert fb.status == "incorrect" and phrase in (fb.hint or ""), str(fb)


@pytest.mark.slow
def test_q1_holds_under_mixed_precision(mixed_policy):
    assert ex.q1.evaluate(WithTfWhere).passed
    assert ex.q1.evaluate(_variant(warm=1)).status == "incorrect"
