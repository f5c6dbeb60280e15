"""Lesson 00's own exercises, to try check(), hint() and solution(): e1 ``mae(p, y)``, the mean absolute error
(mistakes: no absolute value, a sum, the squares); e2 ``accuracy(probabilities, labels)``, the fraction of rows
whose most probable class is the label (mistakes: a count, the error rate)."""

from __future__ import annotations

import numpy as np

from utils.checks import Exercise, Mistake, as_number, call, judge

P, Y = np.array([2.0, 0.0, 1.0, 3.0, -1.0]), np.array([1.0, 0.0, 3.0, 3.0, 1.0])
PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.4, 0.5, 0.1], [0.3, 0.3, 0.4]] * 2)
LABELS = np.array([0, 2, 0, 0, 2] + [1, 2, 1, 0, 2])  # 6 of the 10 right

E1_MISTAKES = [
    Mistake(
        "no absolute value",
        "Positive and negative errors cancel out: take their size.",
        lambda p, y: np.mean(p - y),
    ),
    Mistake(
        "a sum", "That is the total: divide by the number of predictions.", lambda p, y: np.sum(np.abs(p - y))
    ),
    Mistake(
        "squared",
        "That squares the errors (the MSE above); this one takes their size.",
        lambda p, y: np.mean((p - y) ** 2),
    ),
]
E2_MISTAKES = [
    Mistake("a count", "That is how many are right: divide by the number of rows.", lambda p, y: 6),
    Mistake("the error rate", "That is the fraction that are wrong.", lambda p, y: 0.4),
]


def _check_mae(fn) -> None:
    got = as_number(call(fn, P.copy(), Y.copy()), "mae(p, y)")
    judge(
        got,
        np.mean(np.abs(P - Y)),
        E1_MISTAKES,
        what="mae(p, y) for p=[2,0,1,3,-1], y=[1,0,3,3,1]",
        inputs=(P, Y),
    )


def _check_accuracy(fn) -> None:
    got = as_number(call(fn, PROBS.copy(), LABELS.copy()), "accuracy(probabilities, labels)")
    judge(got, 0.6, E2_MISTAKES, what="the accuracy of 10 predictions", inputs=(PROBS, LABELS))


e1 = Exercise(
    "Exercise 1 · mean absolute error",
    _check_mae,
    hint=(
        "Like the MSE above, but each error counts by its size, not its square.",
        "Take the absolute value of each difference p − y, then average them.",
    ),
)
e2 = Exercise(
    "Exercise 2 · accuracy from probabilities",
    _check_accuracy,
    hint=(
        "A row's predicted class is the one with the highest probability; then compare with the labels.",
        "Take the index of the largest probability in each row (along the last axis), compare it with "
        "`labels`, and average the comparison.",
    ),
)
