"""Lesson 01's exercises. ``e1`` ``tanh_neuron_gradients(x, w, b, y)``: (dw, db) of (tanh(w·x + b) − y)²
(the sigmoid's slope, no tanh′, no 2, the sign); ``e2`` ``pairwise_distances(a, b)`` by broadcasting
(squared distances, the difference of norms, the wrong axis)."""

from typing import Any

import numpy as np

from utils.checks import Exercise, Mistake, answer_tolerance, as_array, as_number, call, judge


def _neuron(x, w, b, y, slope=lambda a: 1 - a**2, two=2.0, bias_input=1.0):
    a = np.tanh(w @ x + b)
    e = two * (a - y) * slope(a)
    return np.r_[e * x, e * bias_input]


E1_MISTAKES = [
    Mistake("the sigmoid's derivative", "a(1 − a) is the sigmoid's slope; this neuron is a tanh.",
            lambda x, w, b, y: _neuron(x, w, b, y, slope=lambda a: a * (1 - a))),
    Mistake("no tanh′", "The chain stops one link early: the loss reaches w through the tanh, whose slope multiplies in.",
            lambda x, w, b, y: _neuron(x, w, b, y, slope=lambda a: 1.0)),
    Mistake("no factor 2", "Half the right size: the square's derivative brings down a 2.",
            lambda x, w, b, y: _neuron(x, w, b, y, two=1.0)),
    Mistake("the sign", "Your gradient points uphill: differentiate (a − y)², prediction minus label.",
            lambda x, w, b, y: -_neuron(x, w, b, y)),
]  # fmt: skip
PROBE = (np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.2, -0.4]), 0.1, 0.8)


def _check_neuron(fn: Any) -> None:
    x, w, b, y = PROBE
    result = call(fn, x.copy(), w.copy(), b, y)
    dw, db = result if isinstance(result, tuple | list) and len(result) == 2 else (result, None)
    got = np.r_[as_array(dw, "dw", shape=(3,)), as_number(db, "db")]
    judge(got, _neuron(*PROBE), E1_MISTAKES, what="(dw, db)", inputs=PROBE, tol=answer_tolerance(dw))


e1 = Exercise(
    "Exercise 1 · the gradient of a tanh neuron",
    _check_neuron,
    hint=(
        "Section 4's four steps again, with two links changed: the loss is a square, and the activation is tanh.",
        "With a = tanh(z): ∂L/∂a = 2(a − y) and da/dz = 1 − a². Their product is ∂L/∂z; x carries it to "
        "w, and 1 carries it to b.",
    ),
)


def _distances(a, b, kind="right"):
    if kind == "norms":
        return np.abs(np.linalg.norm(a, axis=1)[:, None] - np.linalg.norm(b, axis=1))
    squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1)
    return squared if kind == "squared" else np.sqrt(squared)


E2_MISTAKES = [
    Mistake("squared", "These are squared distances: one square root is missing.", lambda a, b: _distances(a, b, "squared")),
    Mistake("the difference of norms", "You subtracted the rows' lengths; the distance is the length of the "
            "difference of the rows.", lambda a, b: _distances(a, b, "norms")),
]  # fmt: skip
E2_SHAPE = Mistake(
    "shape", "One distance per pair: rows of a down, rows of b across. Which axis holds the features?"
)


def _check_distances(fn: Any) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    got = as_array(call(fn, a.copy(), b.copy()), "the distances", shape=(4, 5), hint=E2_SHAPE.hint)
    judge(
        got,
        _distances(a, b),
        E2_MISTAKES,
        what="the 4 × 5 distances",
        inputs=(a, b),
        tol=answer_tolerance(got),
    )


e2 = Exercise(
    "Exercise 2 · all pairwise distances, by broadcasting",
    _check_distances,
    hint=(
        "Give a and b each a size-1 axis in a different place, so that subtracting them makes every pair.",
        "a[:, None, :] has shape (n, 1, d) and b[None, :, :] shape (1, m, d): their difference is (n, m, d). "
        "Square, add up over the last axis, take the square root.",
    ),
)
