"""Checks for Lab 02 (a preprocessing pipeline without leakage), by behaviour, never by reading code.

* ``q1``: ``split(frame, label, seed)`` → (train, val, test), 60/20/20, stratified, seeded. Mistakes: rows
  shared or lost, not stratified, the second fraction taken of the rest, the seed ignored.
* ``q2``: ``fit_preprocessor(train, numeric, categorical)`` → a fitted transform (median fill, standardise,
  one-hot with unseen categories → zeros), probed with new rows whose means are shifted by 100, with holes
  and a new category: its statistics must not move. Mistakes: mean fill, ``ddof=1``, scaled before filled,
  re-fitted on the rows it transforms, a crash on an unseen category, state shared between fits, NaN left.
* ``q3``: ``validation_score(train, val, label, numeric, categorical, k)``: preprocess, keep the k best
  columns, logistic regression, accuracy on val; on coin-flip labels an honest score stays near chance.
  Mistakes: columns chosen on all rows, the preprocessor fitted on all rows, scored on the training rows.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from utils.checks import (
    Exercise,
    LearnerError,
    Mismatch,
    Mistake,
    answer_tolerance,
    as_array,
    as_number,
    call,
    expect,
    judge,
)

__all__ = ["q1", "q2", "q3", "reference", "report", "table"]

NUMERIC, CATEGORICAL = ["income", "age"], ["colour", "plan"]


def table(n: int, seed: int, *, shift: float = 0.0, colours=("red", "green", "blue"), holes: int = 2):
    """A small table: skewed numeric columns with holes, two categorical columns, a label they predict."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"income": np.round(rng.lognormal(3, 0.9, n), 1) * (1 + shift / 10) + shift})
    frame["age"] = rng.integers(18, 80, n).astype(float) + shift
    frame["colour"] = rng.permutation(np.resize(np.asarray(colours), n))
    frame["plan"] = rng.permutation(np.resize(["basic", "pro"], n))
    frame["label"] = (frame["income"] + 15 * (frame["colour"] == "blue") > 30).astype(int)
    for column in NUMERIC:
        frame.loc[rng.choice(n, holes, replace=False), column] = np.nan
    return frame


# q1: a stratified, seeded 60/20/20 split
Q1_MISTAKES = [
    Mistake("rows shared or lost", "Every row must land in exactly one part: count the rows of each part."),
    Mistake("not stratified", "The class fractions differ between the parts: split each class on its own."),
    Mistake(
        "fraction of the rest",
        "The validation part is 16 % instead of 20 %: its fraction was taken of the 80 % left after the "
        "test rows went. What fraction of the rest is 20 % of the whole?",
    ),
    Mistake("seed ignored", "Two seeds gave one split, or one seed two: draw the order from the seed."),
]
SIZES, CLASSES = np.array([150, 50, 50]), np.array([150, 75, 25])
LABELS = np.random.default_rng(2).permutation(np.repeat(["a", "b", "c"], CLASSES))  # of rows 0..249


def _rows(fn, seed: int) -> list[np.ndarray]:
    """The sorted row ids of (train, val, test) that ``split`` gives on 250 rows of classes a, b, c."""
    frame = pd.DataFrame({"row_id": np.arange(250), "label": LABELS}, index=np.arange(1000, 1250))
    got = call(fn, frame, "label", seed)
    ok = isinstance(got, tuple | list) and len(got) == 3 and all(hasattr(p, "columns") for p in got)
    expect(
        ok, "what split returns", "(train, val, test) DataFrames", type(got).__name__, "Return three parts."
    )
    rows = [np.sort(np.asarray(part["row_id"])) for part in got]
    n, unique = sum(map(len, rows)), len(np.unique(np.concatenate(rows)))
    expect(
        n == unique == 250, "the rows", "250, each in one part", f"{n}, {unique} unique", Q1_MISTAKES[0].hint
    )
    return rows


def _check_split(fn) -> None:
    first = {}
    for seed in (0, 1):
        rows = _rows(fn, seed)
        sizes = tuple(len(r) for r in rows)
        hint = Q1_MISTAKES[2].hint if 38 <= sizes[1] <= 42 else "60 % train, 20 % validation, 20 % test."
        expect(np.abs(np.subtract(sizes, SIZES)).max() <= 3, "the sizes", tuple(SIZES), sizes, hint)
        for ids in rows:
            counts = np.array([np.sum(LABELS[ids] == c) for c in "abc"])
            want = tuple(np.round(CLASSES * len(ids) / 250, 1))
            what = f"the class counts (a, b, c) of the part of {len(ids)} rows"
            expect(np.abs(counts - want).max() <= 1.01, what, want, tuple(counts), Q1_MISTAKES[1].hint)
        same = all(np.array_equal(a, b) for a, b in zip(rows, _rows(fn, seed), strict=True))
        expect(same, f"two splits with seed {seed}", "the same rows", "different rows", Q1_MISTAKES[3].hint)
        first[seed] = rows[0]
    expect(
        not np.array_equal(*first.values()), "seeds 0 and 1", "two splits", "the same", Q1_MISTAKES[3].hint
    )


q1 = Exercise(
    "Q1 · a stratified 60/20/20 split",
    _check_split,
    hint=(
        "Stratified means every part keeps the class fractions of the whole: think of splitting each class.",
        "Either split in two steps with scikit-learn (stratify on the label; mind which fraction the second "
        "step needs), or shuffle each class's rows with a generator seeded by `seed` and cut them at 60 % "
        "and 80 %.",
    ),
)


# q2: a fitted preprocessor whose statistics come from the training rows only


def reference(train, rows, numeric=NUMERIC, *, fill="median", ddof=0, scale_first=False) -> np.ndarray:
    """What a preprocessor fitted on ``train`` gives on ``rows``: numeric columns, then sorted one-hot ones."""
    seen, x = train[numeric].to_numpy(float), rows[numeric].to_numpy(float)
    if scale_first:  # standardise on the observed values, then fill with the median of the scaled ones
        mu, sd = np.nanmean(seen, axis=0), np.nanstd(seen, axis=0, ddof=ddof)
        z = (x - mu) / sd
        cols = [np.where(np.isnan(z), np.nanmedian((seen - mu) / sd, axis=0), z)]
    else:
        value = np.nanmedian(seen, axis=0) if fill == "median" else np.nanmean(seen, axis=0)
        filled = np.where(np.isnan(seen), value, seen)
        cols = [(np.where(np.isnan(x), value, x) - filled.mean(axis=0)) / filled.std(axis=0, ddof=ddof)]
    for name in CATEGORICAL:
        cols += [(rows[name] == c).to_numpy(float)[:, None] for c in sorted(train[name].unique())]
    return np.concatenate(cols, axis=1)


Q2_MISTAKES = [
    Mistake("mean fill", "Your holes hold the mean, not the median.", partial(reference, fill="mean")),
    Mistake(
        "ddof=1",
        "Your σ divides by n − 1 (pandas' default). Standardisation uses the population σ, as NumPy, "
        "scikit-learn and Keras do.",
        partial(reference, ddof=1),
    ),
    Mistake(
        "scaled, then filled",
        "You standardised before filling the holes, so the mean and σ come from the observed values only. "
        "Fill first, then standardise the filled column.",
        partial(reference, scale_first=True),
    ),
    Mistake(
        "re-fitted on the rows transformed",
        "On new rows your transform uses *their* statistics: it learns again from the data it transforms, "
        "which is how test rows leak in. Learn in the fit; the transform only applies what was learnt.",
        lambda a, rows: reference(rows, rows),
    ),
    Mistake(
        "unseen category", "A category the training rows never had must not stop it: encode it as zeros."
    ),
    Mistake("shared state", "Fitting on other rows changed a preprocessor fitted before: build new objects."),
    Mistake("holes left", "Your output still has NaN: fill the holes before scaling."),
]
COLUMNS_HINT = "One standardised column per numeric feature, one 0/1 column per category seen in training."


def _apply(prep: Any, rows: pd.DataFrame) -> np.ndarray:
    out = call(prep.transform if hasattr(prep, "transform") else prep, rows.copy())
    out = as_array(out.toarray() if hasattr(out, "toarray") else out, "what your preprocessor returns")
    expect(
        out.ndim == 2 and len(out) == len(rows), "the output's shape", f"({len(rows)}, columns)", out.shape
    )
    return out


def _align(out: np.ndarray, train: pd.DataFrame) -> list[int]:
    """The output column of each reference column: numeric ones by correlation, one-hot ones by pattern."""
    expect(np.isfinite(out).all(), "the output on the training rows", "no NaN", "NaN", Q2_MISTAKES[-1].hint)
    order: list[int] = []
    free = [j for j in range(out.shape[1]) if out[:, j].std() > 0]
    for name in NUMERIC:
        x = train[name].to_numpy(float)
        seen = ~np.isnan(x)
        fits = [j for j in free if j not in order and abs(np.corrcoef(out[seen, j], x[seen])[0, 1]) > 0.999]
        expect(bool(fits), f"the column for {name!r}", "a standardised copy", "none found", COLUMNS_HINT)
        order.append(fits[0])
    for name in CATEGORICAL:
        for cat in sorted(train[name].unique()):
            hot = (train[name] == cat).to_numpy(float)
            fits = [j for j in free if j not in order and np.allclose(out[:, j], hot, atol=1e-3)]
            expect(bool(fits), f"the one-hot column {name} = {cat!r}", "one", "none found", COLUMNS_HINT)
            order.append(fits[0])
    extra = [j for j in range(out.shape[1]) if j not in order and np.abs(out[:, j]).max() > 0]
    expect(not extra, "the other columns", "none (or an unseen-category one)", len(extra), COLUMNS_HINT)
    return order


def _check_preprocessor(fn) -> None:
    a, c = table(14, 0), table(14, 5, shift=40.0)
    b = table(10, 1, shift=100.0, colours=("red", "purple", "blue"), holes=3)  # far off, a new category
    prep = call(fn, a.copy(), list(NUMERIC), list(CATEGORICAL))
    out_a = _apply(prep, a)
    order = _align(out_a, a)
    tol = answer_tolerance(out_a, rtol=1e-4, atol=1e-4)
    what, describe = "the output on the training rows", "median-filled, standardised, one-hot"
    judge(out_a[:, order], reference(a, a), Q2_MISTAKES, what=what, inputs=(a, a), tol=tol, describe=describe)
    try:
        out_b = _apply(prep, b)
    except LearnerError as e:
        what = "the transform of rows with the unseen category 'purple'"
        raise Mismatch(what, expected="zeros for it", got=str(e), hint=Q2_MISTAKES[4].hint) from None
    n_a, n_b = out_a.shape[1], out_b.shape[1]
    expect(n_a == n_b, "the number of columns on new rows", n_a, n_b, Q2_MISTAKES[3].hint)
    what, describe = "the output on new rows (means shifted by 100)", "the training rows' statistics, applied"
    judge(out_b[:, order], reference(a, b), Q2_MISTAKES, what=what, inputs=(a, b), tol=tol, describe=describe)
    call(fn, c.copy(), list(NUMERIC), list(CATEGORICAL))
    same = np.allclose(_apply(prep, b), out_b, **tol)
    expect(same, "the first preprocessor after a second fit", "unchanged", "changed", Q2_MISTAKES[5].hint)


q2 = Exercise(
    "Q2 · a preprocessor fitted on the training rows",
    _check_preprocessor,
    hint=(
        "Everything it learns (the median, the mean and σ, the categories) comes from `train`; the object "
        "you return only applies it, to any rows.",
        "In scikit-learn: a ColumnTransformer with a median imputer followed by a standard scaler for the "
        "numeric columns and a one-hot encoder told to ignore unknown categories. By hand: keep the "
        "statistics and category lists in a closure and return the function that uses them.",
    ),
)


# q3: an honest validation score


def _score(train, val, label, k, numeric, *, fit="train", select="train", on="val") -> float:
    """The reference pipeline's accuracy; ``fit``, ``select`` and ``on`` = 'all' or 'train' make its leaks."""
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.linear_model import LogisticRegression

    rows = {"train": train, "val": val, "all": pd.concat([train, val])}
    x = {name: reference(rows[fit], part, numeric) for name, part in rows.items()}
    keep = SelectKBest(f_classif, k=k).fit(x[select], rows[select][label])
    model = LogisticRegression(max_iter=1000).fit(keep.transform(x["train"]), train[label])
    return model.score(keep.transform(x[on]), rows[on][label])


Q3_MISTAKES = [
    Mistake(
        "columns chosen on all rows",
        "Your columns were chosen with the validation rows' labels: on coin-flip labels that invents a "
        "signal. Choose them on the training rows only.",
        partial(_score, select="all"),
    ),
    Mistake(
        "preprocessor fitted on all rows",
        "Your preprocessor saw the validation rows (their holes got a median they helped compute).",
        partial(_score, fit="all"),
    ),
    Mistake(
        "scored on the training rows",
        "That is the accuracy on the rows the model was fitted to: score it on the validation rows.",
        partial(_score, on="train"),
    ),
]


def _noise_probe() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """100 training and 100 validation rows: coin-flip labels, the table's columns and 2,000 noise columns."""
    rng = np.random.default_rng(7)
    noise = pd.DataFrame(rng.normal(size=(200, 2000)), columns=[f"n{i}" for i in range(2000)])
    frame = pd.concat([table(200, 7, holes=20), noise], axis=1).assign(label=rng.integers(0, 2, 200))
    return frame.iloc[:100], frame.iloc[100:], NUMERIC + list(noise.columns)


def _check_score(fn) -> None:
    train, val, noisy = _noise_probe()
    shifted = table(100, 3, holes=15), table(150, 4, shift=15, holes=50)  # val: higher incomes, 1/3 unknown
    for name, (tr, va, k, cols) in {
        "coin-flip": (train, val, 20, noisy),
        "shifted": (*shifted, 3, NUMERIC),
    }.items():
        probe = (tr, va, "label", k, cols)
        got = as_number(
            call(fn, tr.copy(), va.copy(), "label", list(cols), list(CATEGORICAL), k), "the score"
        )
        what, tol = f"the validation accuracy on the {name} probe", {"rtol": 0.0, "atol": 2.01 / len(va)}
        judge(got, _score(*probe), Q3_MISTAKES, what=what, inputs=probe, tol=tol)  # within two rows


q3 = Exercise(
    "Q3 · an honest validation score",
    _check_score,
    hint=(
        "Every step that learns from data (the preprocessor, the choice of columns, the model) sees the "
        "training rows only; the validation rows are only transformed and scored.",
        "Fit your Q2 preprocessor on train and transform both parts; fit SelectKBest(f_classif, k) on the "
        "transformed training rows and their labels; fit LogisticRegression(max_iter=1000) on the kept "
        "training columns; return its accuracy on the kept validation columns.",
    ),
)


def report(split, fit_preprocessor, validation_score) -> Any:
    """Once Q1-Q3 pass: the learner's pipeline on the tips table, and on coin flips next to the leaky recipe."""
    for exercise, answer in ((q1, split), (q2, fit_preprocessor), (q3, validation_score)):
        if not (feedback := exercise.evaluate(answer)).passed:
            return feedback
    from utils import data

    tips = data.load_tips()
    tips.loc[np.random.default_rng(0).choice(len(tips), 25, replace=False), "total_bill"] = np.nan
    train, val, _ = split(tips, "time", 0)
    honest = validation_score(train, val, "time", ["total_bill", "tip", "size"], ["sex", "smoker", "day"], 4)
    print(
        f"tips, lunch or dinner: validation accuracy {honest:.3f} ({len(train)} train, {len(val)} val rows)"
    )
    tr, va, noisy = _noise_probe()
    yours = validation_score(tr, va, "label", noisy, CATEGORICAL, 20)
    leaky = _score(tr, va, "label", 20, noisy, select="all")
    print(f"coin-flip labels: your pipeline {yours:.3f}; with the columns chosen on all rows {leaky:.3f}")
    return None
