"""Lesson 02's own exercises: e1 ``robust_scale(x)`` ((x − median) / IQR per column; mistakes: the mean and
σ, no division, per row); e2 ``scale_like_train(train, test)`` (min-max with the training rows' min and max;
mistakes: the test rows' own, both together); e3 ``one_hot(train_values, values)`` (the training categories,
sorted; an unseen one gives zeros; mistake: the new rows' categories leak in)."""

from __future__ import annotations

import numpy as np

from utils.checks import Exercise, Mistake, as_array, call, judge

X = np.random.default_rng(2).lognormal(2, 1, size=(21, 3)) * [1, 10, 100]  # skewed, with outliers
TRAIN, TEST = X[:15], X[15:] * 3 + 5  # new rows well outside the training range


def _robust(x, how="right"):
    axis = 1 if how == "rows" else 0
    q1, med, q3 = np.percentile(x, [25, 50, 75], axis=axis, keepdims=True)
    if how == "std":
        return (x - x.mean(axis=0)) / x.std(axis=0)
    return (x - med) / (1.0 if how == "none" else q3 - q1)


def _minmax(x, fitted_on):
    return (x - fitted_on.min(axis=0)) / (fitted_on.max(axis=0) - fitted_on.min(axis=0))


E1_MISTAKES = [
    Mistake("std", "That is (x − mean) / σ: use the median and the IQR.", lambda x: _robust(x, "std")),
    Mistake("no IQR", "Centred on the median, but not divided by the IQR.", lambda x: _robust(x, "none")),
    Mistake(
        "rows", "Your statistics run along the rows, not down the columns.", lambda x: _robust(x, "rows")
    ),
]
E2_MISTAKES = [
    Mistake("own", "You used the new rows' own min and max.", lambda tr, te: _minmax(te, te)),
    Mistake("all", "Your min and max include the new rows.", lambda tr, te: _minmax(te, np.r_[tr, te])),
]
E3_MISTAKES = [Mistake("new categories", "The new values added columns: the training categories only.")]


def _check_robust(fn) -> None:
    got = as_array(call(fn, X.copy()), "robust_scale(x)", shape=X.shape)
    judge(got, _robust(X), E1_MISTAKES, what="robust_scale(x) for a (21, 3) array", inputs=(X,))


def _check_minmax(fn) -> None:
    got = as_array(call(fn, TRAIN.copy(), TEST.copy()), "scale_like_train(train, test)", shape=TEST.shape)
    what = "the test rows, scaled (values above 1 are right here)"
    judge(got, _minmax(TEST, TRAIN), E2_MISTAKES, what=what, inputs=(TRAIN, TEST))


def _check_one_hot(fn) -> None:
    train, values = ["tea", "coffee", "tea", "juice"], ["juice", "milk", "coffee", "tea", "milk"]
    want = np.array([[v == c for c in ("coffee", "juice", "tea")] for v in values], dtype=float)
    got = as_array(call(fn, list(train), list(values)), "one_hot(train_values, values)")
    hint = E3_MISTAKES[0].hint if got.shape == (5, 4) else "Columns: coffee, juice, tea."
    judge(got, want, what=f"one_hot({train}, values)", hint=hint)


e1 = Exercise(
    "Exercise 1 · robust scaling",
    _check_robust,
    hint=(
        "Two statistics per column, both from quartiles, so that a few huge values barely move them.",
        "Subtract each column's median, then divide by its 75th minus its 25th percentile (axis=0).",
    ),
)
e2 = Exercise(
    "Exercise 2 · scale new rows like the training rows",
    _check_minmax,
    hint=(
        "The min and max are learnt from one set of rows and applied to another.",
        "Compute the minimum and maximum of each column of `train` only, and use them on `test`.",
    ),
)
e3 = Exercise(
    "Exercise 3 · one-hot with the training categories",
    _check_one_hot,
    hint=(
        "The columns are decided by `train_values` alone, in sorted order; `values` only fills them.",
        "One column per sorted distinct training value; a row is 1 where its value equals that column's.",
    ),
)
