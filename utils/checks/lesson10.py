"""Lesson 10's exercises. ``e1`` ``balanced_accuracy(cm)``: the mean per-class recall of a confusion
matrix, true classes on the rows (mistakes: the columns' precision averaged, plain accuracy). ``e2``
``recall_at_precision(y_true, scores, min_precision)``: the best recall of any threshold whose precision
reaches the floor (mistakes: the floor ignored, the sweep stopped at the first dip, P and R swapped).
"""

from typing import Any

import numpy as np

from utils.checks import Exercise, Mistake, answer_tolerance, as_array, call, judge

CMS = (np.array([[80, 0, 0], [15, 5, 0], [5, 0, 5]]), np.array([[30, 10], [2, 8]]))


def _diag_over(cms: tuple, axis: int) -> list[float]:
    return [float(np.mean(np.diag(cm) / cm.sum(axis=axis))) for cm in cms]


def _accuracy(*cms: np.ndarray) -> list[float]:
    return [np.trace(cm) / cm.sum() for cm in cms]


E1_MISTAKES = [
    Mistake(*m)
    for m in (
        ("precision averaged", "Recall divides by a *row* sum.", lambda *c: _diag_over(c, 0)),
        ("plain accuracy", "That is accuracy: each class must count the same.", _accuracy),
    )
]


def _check_e1(fn: Any) -> None:
    raws = [call(fn, cm.copy()) for cm in CMS]
    got = np.array([as_array(r, "what balanced_accuracy returns", shape=()) for r in raws])
    what, tol = "balanced_accuracy on a 3×3 and a 2×2 matrix", answer_tolerance(*raws)
    judge(got, _diag_over(CMS, 1), E1_MISTAKES, what=what, inputs=CMS, tol=tol)


e1 = Exercise(
    "Exercise 1 · balanced accuracy",
    _check_e1,
    hint=(
        "Balanced accuracy asks, for each class, how much of it was found, then averages over the classes.",
        "Per class: its diagonal entry over its row's sum (its recall); then the plain mean of those.",
    ),
)

Y = np.array([1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1])
SCORES = np.linspace(0.97, 0.02, 20)  # high to low, no ties; precision dips, then recovers


def _sweep(y: np.ndarray, s: np.ndarray, floor: float, how: str = "right") -> float:
    tp = np.cumsum(y[np.argsort(-s)])
    precision, recall = tp / np.arange(1, len(y) + 1), tp / y.sum()
    if how == "swapped":
        precision, recall = recall, precision
    ok = np.cumprod(precision >= floor).astype(bool) if how == "dip" else precision >= floor
    return float(recall[ok].max()) if ok.any() else 0.0


E2_MISTAKES = [
    Mistake(*m)
    for m in (
        ("the floor ignored", "Only thresholds whose precision reaches the floor count.", lambda *a: 1.0),
        ("stopped at a dip", "Precision is not monotone: try every cut.", lambda *a: _sweep(*a, "dip")),
        ("P and R swapped", "The floor is on precision, hits / predicted.", lambda *a: _sweep(*a, "swapped")),
    )
]


def _check_e2(fn: Any) -> None:
    for floor in (0.7, 0.6):
        raw = call(fn, Y.copy(), SCORES.copy(), floor)
        what = f"recall_at_precision(y_true, scores, min_precision={floor}) on 20 scores"
        got, tol = as_array(raw, what, shape=()), answer_tolerance(raw)
        judge(got, _sweep(Y, SCORES, floor), E2_MISTAKES, what=what, inputs=(Y, SCORES, floor), tol=tol)


e2 = Exercise(
    "Exercise 2 · the best recall at a precision floor",
    _check_e2,
    hint=(
        "Each score is a threshold (positive at or above it), and each gives a precision and a recall.",
        "Sorted from high to low, cumulative sums of the labels count the hits at every cut. Keep the cuts "
        "whose precision reaches the floor and return their largest recall (0 if none).",
    ),
)
