"""Lab 09's checks: right answers written in different styles pass, each typical mistake is named,
unfinished answers are "not done yet"."""

import contextlib
import itertools
import time

import pytest

from utils import distribute
from utils.env import import_tensorflow

tf = import_tensorflow()
with contextlib.suppress(
    RuntimeError
):  # two replicas if TensorFlow has not started yet; else the check pretends
    distribute.logical_cpus(2)

from utils.checks import lab09 as ex  # noqa: E402

AUTOTUNE = tf.data.AUTOTUNE


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q4])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


# ---------------------------------------------------------------------------------------------
# Q1: the timer
# ---------------------------------------------------------------------------------------------


def timer(dataset, n_steps):
    it = iter(dataset)
    next(it)
    start = time.perf_counter()
    for _ in range(n_steps):
        next(it)
    return n_steps / (time.perf_counter() - start)


def timer_islice(dataset, n_steps):
    it = dataset.as_numpy_iterator()
    next(it)
    t0 = time.perf_counter()
    n = sum(1 for _ in itertools.islice(it, n_steps))
    return n / (time.perf_counter() - t0)


def timer_with_warmup(dataset, n_steps):
    start = time.perf_counter()
    for _ in dataset.take(n_steps):
        pass
    return n_steps / (time.perf_counter() - start)


def timer_seconds(dataset, n_steps):
    it = iter(dataset)
    next(it)
    start = time.perf_counter()
    for _ in range(n_steps):
        next(it)
    return time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize("answer", [timer, timer_islice])
def test_q1_right_answers_pass(answer):
    fb = ex.q1.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (timer_with_warmup, "You timed the warm-up"),
        (timer_seconds, "Return the rate"),
        (lambda d, n: None, "return"),
    ],
)
@pytest.mark.slow
def test_q1_mistakes(answer, phrase):
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


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
    "cache after augmentation": (dict(order="dacb"), "augmentation is frozen"),
    "cache before decode": (dict(order="cdab"), "before the decode"),
    "no cache": (dict(order="dab"), "No cache"),
    "sequential decode": (dict(decode_calls=None), "one image at a time"),
    "no prefetch": (dict(prefetch=False), "Prefetch is missing"),
    "prefetch before batch": (dict(order="dcapb", prefetch=False), "Put prefetch last"),
    "batch before decode": (dict(order="bdca"), "*before* .batch()"),
    "shuffled": (dict(shuffle=True), "no shuffle"),
}


@pytest.mark.parametrize(("kwargs", "phrase"), list(Q2_MISTAKES.values()), ids=list(Q2_MISTAKES))
def test_q2_mistakes(kwargs, phrase):
    fb = ex.q2.evaluate(lambda i, lab, b: pipeline(i, lab, b, **kwargs))
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


def test_q2_not_a_dataset():
    fb = ex.q2.evaluate(lambda i, lab, b: list(zip(i, lab, strict=True)))
    assert fb.status == "incorrect" and "tf.data.Dataset" in str(fb)


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
# Q3: the speed-up
# ---------------------------------------------------------------------------------------------


def test_q3_judges_the_measured_speedup():
    assert ex.q3.evaluate(5.0).passed
    assert ex.q3.evaluate(None).status == "not_done"
    fb = ex.q3.evaluate(1.1)
    assert fb.status == "incorrect" and "speed-up" in str(fb)


@pytest.mark.slow
def test_prove_speedup_measures_a_real_speedup(capsys):
    ex.prove_speedup(pipeline, timer)  # strict mode (the test suite's) raises if below 2×
    assert "speed-up:" in capsys.readouterr().out


@pytest.mark.slow
def test_prove_speedup_waits_for_q1_and_q2(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "0")  # as in a learner's notebook
    assert ex.prove_speedup(_not_implemented, timer) is None
    assert "not done yet: finish Q1 and Q2 first" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Q4: the distributed step
# ---------------------------------------------------------------------------------------------


def make_step(*, scale="global", run=True, reduce_op="SUM", apply=True, reduce=True, wrap=False):
    """The right step, or one with one thing changed."""

    def answer(strategy, model, optimizer, loss_fn, dist_batch, global_batch_size):
        def replica_step(batch):
            x, y = batch
            with tf.GradientTape() as tape:
                per_example = loss_fn(y, model(x, training=True))
                if scale == "global":
                    loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
                elif scale == "reduce_mean":
                    loss = tf.reduce_mean(per_example)
                elif scale == "per_replica":
                    loss = tf.reduce_sum(per_example) / (global_batch_size // strategy.num_replicas_in_sync)
                elif scale == "sum":
                    loss = tf.reduce_sum(per_example)
                elif scale == "twice":
                    loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
                    loss = loss / global_batch_size
            grads = tape.gradient(loss, model.trainable_variables)
            if apply:
                optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        def outer(batch):
            per_replica = strategy.run(replica_step, args=(batch,)) if run else replica_step(batch)
            if not reduce:
                return per_replica
            op = tf.distribute.ReduceOp.SUM if reduce_op == "SUM" else tf.distribute.ReduceOp.MEAN
            return strategy.reduce(op, per_replica, axis=None)

        return tf.function(outer)(dist_batch) if wrap else outer(dist_batch)

    return answer


@pytest.mark.slow
@pytest.mark.parametrize("answer", [make_step(), make_step(wrap=True)], ids=["eager", "tf.function"])
def test_q4_right_answers_pass(answer):
    fb = ex.q4.evaluate(answer)
    assert fb.passed, str(fb)


Q4_MISTAKES = {
    "reduce_mean per replica": (dict(scale="reduce_mean"), "averaged over each replica's own examples"),
    "divided by the per-replica batch": (
        dict(scale="per_replica"),
        "averaged over each replica's own examples",
    ),
    "summed, not divided": (dict(scale="sum"), "without dividing"),
    "divided twice": (dict(scale="twice"), "divided by the global batch twice"),
    "forgot strategy.run": (dict(run=False), "You forgot strategy.run"),
    "reduce MEAN": (dict(reduce_op="MEAN"), "Use SUM"),
    "not reduced": (dict(reduce=False), "strategy.reduce"),
    "gradients not applied": (dict(apply=False), "apply_gradients"),
}


@pytest.mark.slow
@pytest.mark.parametrize(("kwargs", "phrase"), list(Q4_MISTAKES.values()), ids=list(Q4_MISTAKES))
def test_q4_mistakes(kwargs, phrase):
    fb = ex.q4.evaluate(make_step(**kwargs))
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# Q4 at the precisions a learner's accelerator picks: mixed_float16 (T4), mixed_bfloat16 (TPU)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_q4_right_answer_passes_under_mixed_precision(mixed_policy):
    fb = ex.q4.evaluate(make_step(wrap=True))
    assert fb.passed, str(fb)


Q4_MIXED_MISTAKES = {
    k: Q4_MISTAKES[k]
    for k in (
        "reduce_mean per replica",
        "divided by the per-replica batch",
        "summed, not divided",
        "divided twice",
        "reduce MEAN",
    )
}


@pytest.mark.slow
@pytest.mark.parametrize(("kwargs", "phrase"), list(Q4_MIXED_MISTAKES.values()), ids=list(Q4_MIXED_MISTAKES))
def test_q4_mistakes_are_named_under_mixed_precision(mixed_policy, kwargs, phrase):
    fb = ex.q4.evaluate(make_step(**kwargs))
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)
