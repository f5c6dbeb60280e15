"""Lessons 01 and 03's own exercises: right answers in several styles pass, each known mistake gets
its own hint, placeholders are "not done yet", and a learner's exception names their line."""

import numpy as np
import pytest

from utils.checks import lesson01, lesson03


def tanh_grads(x, w, b, y):
    a = np.tanh(w @ x + b)
    g = 2 * (a - y) * (1 - a**2)
    return g * x, g


def tanh_grads_tf(x, w, b, y):
    import tensorflow as tf

    w, b = tf.Variable(w), tf.Variable(b, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss = (tf.tanh(tf.tensordot(w, tf.constant(x), 1) + b) - y) ** 2
    return tuple(tape.gradient(loss, [w, b]))


def distances(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def distances_expanded(a, b):
    squared = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)
    return np.sqrt(np.maximum(squared, 0))


def _loss(name, **kwargs):
    import keras

    return getattr(keras.losses, name)(**kwargs)


RIGHT = [
    (lesson01.e1, lambda: tanh_grads),
    pytest.param(lesson01.e1, lambda: tanh_grads_tf, marks=pytest.mark.slow),
    (lesson01.e2, lambda: distances),
    (lesson01.e2, lambda: distances_expanded),
    (lesson01.e2, lambda: lambda a, b: np.linalg.norm(a[:, None] - b, axis=-1)),
    (lesson03.e1, lambda: 26),
    (lesson03.e1, lambda: np.int64(-(-808 // 32))),
    pytest.param(
        lesson03.e2, lambda: _loss("CategoricalCrossentropy", from_logits=True), marks=pytest.mark.slow
    ),
    pytest.param(
        lesson03.e2,
        lambda: lambda y, z: _loss("CategoricalCrossentropy")(y, np.exp(z) / np.exp(z).sum(1, keepdims=True)),
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("exercise", "answer"), RIGHT)
def test_right_answers_pass(exercise, answer):
    feedback = exercise.evaluate(answer())
    assert feedback.passed, str(feedback)


WRONG = [
    (lesson01.e1, "the sigmoid's derivative", lambda x, w, b, y: (lambda a: (2 * (a - y) * a * (1 - a) * x, 2 * (a - y) * a * (1 - a)))(np.tanh(w @ x + b))),
    (lesson01.e1, "no tanh′", lambda x, w, b, y: (lambda a: (2 * (a - y) * x, 2 * (a - y)))(np.tanh(w @ x + b))),
    (lesson01.e1, "no factor 2", lambda x, w, b, y: tuple(g / 2 for g in tanh_grads(x, w, b, y))),
    (lesson01.e1, "the sign", lambda x, w, b, y: tuple(-g for g in tanh_grads(x, w, b, y))),
    (lesson01.e2, "squared", lambda a, b: distances(a, b) ** 2),
    (lesson01.e2, "the difference of norms", lambda a, b: np.abs(np.linalg.norm(a, axis=1)[:, None] - np.linalg.norm(b, axis=1))),
    (lesson01.e2, "shape", lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(0))),
    (lesson03.e1, "the split forgotten", 32),
    (lesson03.e1, "rounded down", 25),
    (lesson03.e1, "the validation rows", 7),
]  # fmt: skip
SLOW_WRONG = [
    (lesson03.e2, "from_logits missing", ("CategoricalCrossentropy", {})),
    (lesson03.e2, "a binary loss", ("BinaryCrossentropy", {"from_logits": True})),
    (lesson03.e2, "the sparse loss", ("SparseCategoricalCrossentropy", {"from_logits": True})),
]


def _hints(module):
    return {
        m.name: m.hint
        for v in vars(module).values()
        for m in (v if isinstance(v, list) else [v])
        if hasattr(m, "hint") and hasattr(m, "compute")
    }


@pytest.mark.parametrize(("exercise", "name", "answer"), WRONG, ids=[w[1] for w in WRONG])
def test_each_mistake_is_named(exercise, name, answer):
    feedback = exercise.evaluate(answer)
    module = lesson01 if exercise in (lesson01.e1, lesson01.e2) else lesson03
    assert feedback.status == "incorrect" and feedback.hint == _hints(module)[name], str(feedback)


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "name", "loss"), SLOW_WRONG, ids=[w[1] for w in SLOW_WRONG])
def test_each_wrong_loss_is_named(exercise, name, loss):
    feedback = exercise.evaluate(_loss(loss[0], **loss[1]))
    assert feedback.status == "incorrect" and feedback.hint == _hints(lesson03)[name], str(feedback)


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [lesson01.e1, lesson01.e2, lesson03.e1, lesson03.e2])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    if exercise is lesson03.e1 and placeholder is _not_implemented:
        placeholder = ...
    assert exercise.evaluate(placeholder).status == "not_done"


def test_learner_exception_names_their_line():
    def broken(x, w, b, y):
        return w @ y, b  # a number has no matrix product

    feedback = lesson01.e1.evaluate(broken)
    assert feedback.status == "error" and "test_lesson_exercises_01_03.py" in feedback.message
    assert "utils/checks" not in feedback.message
