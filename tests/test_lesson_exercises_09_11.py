"""The checked exercises at the end of lessons 09 and 11: right answers in other styles pass, each
named mistake gets its own hint, placeholders are "not done yet" (without failing strict mode in a
lesson), and a learner's exception is reported without a course traceback."""

import json

import numpy as np
import pytest

from utils.checks import lesson09, lesson11

# ---------------------------------------------------------------------------------------------
# Lesson 09, e1: the loss scale step by step
# ---------------------------------------------------------------------------------------------


def trace(initial, finite, growth):
    out, scale, run = [], initial, 0
    for ok in finite:
        out.append(scale)
        if not ok:
            scale, run = scale / 2, 0
        else:
            run += 1
            if run == growth:
                scale, run = scale * 2, 0
    return out


def trace_numpy(initial, finite, growth):  # the log2 of the scale, counted in an array
    log2 = np.zeros(len(finite))
    level, run = np.log2(initial), 0
    for i, ok in enumerate(finite):
        log2[i] = level
        run = run + 1 if ok else 0
        level += 1 if run == growth else (0 if ok else -1)
        run %= growth
    return 2.0**log2


@pytest.mark.parametrize("answer", [trace, trace_numpy])
def test_e1_right_answers_pass(answer):
    assert lesson09.e1.evaluate(answer).passed, str(lesson09.e1.evaluate(answer))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(reset=False), "start again from 0"),
        (dict(late=1), "one step late"),
        (dict(late=-1), "one step early"),
        (dict(halve=False), "must halve"),
    ],
    ids=["count kept", "late", "early", "never halves"],
)
def test_e1_mistakes_get_their_own_hint(kwargs, fragment):
    fb = lesson09.e1.evaluate(lambda i, f, g: lesson09.scale_reference(i, f, g, **kwargs))
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)


# ---------------------------------------------------------------------------------------------
# Lesson 09, e2: a partial global batch
# ---------------------------------------------------------------------------------------------


def replica_losses(shards):
    n = sum(map(len, shards))
    return [sum(s) / n for s in shards]


def replica_losses_tf(shards):
    import tensorflow as tf

    n = sum(len(s) for s in shards)
    return tf.stack([tf.nn.compute_average_loss(tf.constant(s), global_batch_size=n) for s in shards])


@pytest.mark.parametrize("answer", [replica_losses, pytest.param(replica_losses_tf, marks=pytest.mark.slow)])
def test_e2_right_answers_pass(answer):
    assert lesson09.e2.evaluate(answer).passed


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (lambda shards: [np.mean(s) for s in shards], "averaged over its own shard"),
        (lambda shards: [np.mean(s) / len(shards) for s in shards], "weighs every shard alike"),
        (lambda shards: [np.sum(s) for s in shards], "without dividing"),
    ],
    ids=["own mean", "mean of means", "sum"],
)
def test_e2_mistakes_get_their_own_hint(answer, fragment):
    fb = lesson09.e2.evaluate(answer)
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)


# ---------------------------------------------------------------------------------------------
# Lesson 11, e1: pruning layer by layer
# ---------------------------------------------------------------------------------------------


def prune_quantile(kernels, sparsity):
    return [np.where(np.abs(k) >= np.quantile(np.abs(k), sparsity), k, 0.0) for k in kernels]


def prune_sorted(kernels, sparsity):
    out = []
    for k in kernels:
        cut = np.sort(np.abs(k), axis=None)[int(round(sparsity * k.size))]
        out.append(k * (np.abs(k) >= cut))
    return out


@pytest.mark.parametrize("answer", [prune_quantile, prune_sorted])
def test_l11_e1_right_answers_pass(answer):
    assert lesson11.e1.evaluate(answer).passed, str(lesson11.e1.evaluate(answer))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(each=False), "one threshold for every kernel"),
        (dict(by="value"), "not their magnitudes"),
        (dict(prune="largest"), "*largest*"),
        (dict(prune="fraction kept"), "not the fraction kept"),
    ],
    ids=["global", "by value", "largest", "kept"],
)
def test_l11_e1_mistakes_get_their_own_hint(kwargs, fragment):
    def answer(kernels, sparsity):
        flat = lesson11.prune_reference(kernels, sparsity, **kwargs)
        return np.split(flat, np.cumsum([k.size for k in kernels])[:-1])

    fb = lesson11.e1.evaluate(
        lambda ks, s: [a.reshape(k.shape) for a, k in zip(answer(ks, s), ks, strict=True)]
    )
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)


# ---------------------------------------------------------------------------------------------
# Lesson 11, e2: the row format
# ---------------------------------------------------------------------------------------------


def to_instances(inputs):
    n = len(next(iter(inputs.values())))
    return [{name: values[i].tolist() for name, values in inputs.items()} for i in range(n)]


def to_instances_zip(inputs):
    names = list(inputs)
    return [
        dict(zip(names, row, strict=True)) for row in zip(*(inputs[k].tolist() for k in names), strict=True)
    ]


@pytest.mark.parametrize("answer", [to_instances, to_instances_zip])
def test_l11_e2_right_answers_pass(answer):
    fb = lesson11.e2.evaluate(answer)
    assert fb.passed and json.dumps(answer({"a": np.ones((2, 1))})), str(fb)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (lambda inputs: [{k: v[i] for k, v in inputs.items()} for i in range(3)], ".tolist()"),
        (lambda inputs: {k: v.tolist() for k, v in inputs.items()}, "columnar format"),
        (lambda inputs: [[v[i].tolist() for v in inputs.values()] for i in range(3)], "name its inputs"),
        (lambda inputs: [{k: v.tolist() for k, v in inputs.items()}], "every input of that example"),
    ],
    ids=["numpy", "columns", "names lost", "incomplete"],
)
def test_l11_e2_mistakes_get_their_own_hint(answer, fragment):
    fb = lesson11.e2.evaluate(answer)
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)


# ---------------------------------------------------------------------------------------------
# All four: placeholders, exceptions, strict mode
# ---------------------------------------------------------------------------------------------

EXERCISES = [lesson09.e1, lesson09.e2, lesson11.e1, lesson11.e2]


def _placeholder(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", EXERCISES, ids=["l09e1", "l09e2", "l11e1", "l11e2"])
def test_placeholders_are_not_done_and_do_not_fail_strict_mode(exercise):
    for placeholder in (_placeholder, ..., None):
        assert exercise.evaluate(placeholder).status == "not_done"
    assert exercise.lesson
    exercise.check(_placeholder)  # strict mode (the test suite's) does not raise for a lesson's own exercise


@pytest.mark.parametrize("exercise", EXERCISES, ids=["l09e1", "l09e2", "l11e1", "l11e2"])
def test_a_learner_exception_is_reported_without_course_traceback(exercise):
    fb = exercise.evaluate(lambda *a: 1 / 0)
    assert fb.status == "error" and "ZeroDivisionError" in fb.message and "Traceback" not in str(fb)
