"""Checks for Lab 10 (metrics and calibration): averaged F1, then a calibration error, then lowering it.

* ``q1`` ``f1_score(y_true, y_pred, n_classes, average)``: macro, micro and (not in the lesson)
  weighted. Mistakes: macro and micro swapped, weighted by predictions, weighted = macro, the F1 of
  the averaged P and R, arithmetic per-class means, the never-predicted class skipped, 0/0 left NaN.
* ``q2`` ``expected_calibration_error(probs, labels, n_bins)`` from a probability matrix. Mistakes:
  an unweighted mean over the bins, a sum divided by B, the true class's probability as the
  confidence, examples grouped by label, no absolute value.
* ``q3`` ``fit_temperature(logits, labels)``: the T minimising the validation NLL of softmax(z / T).
  Mistakes: T multiplying the logits, T on the probabilities, the predicted class's NLL (T → 0).

Answers are judged with :func:`answer_tolerance`, which loosens to bfloat16's 0.06 under a mixed
Keras policy; the probes keep every mistake further than that from the right answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from utils.checks import Exercise, LearnerError, Mismatch, Mistake, answer_tolerance, as_array, call, judge

__all__ = ["q1", "q2", "q3", "reference_ece", "reference_f1", "reference_temperature", "show_calibration"]


def _ratio(a: Any, b: Any) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return np.divide(a, b, out=np.zeros(a.shape), where=b != 0)


# q1: macro, micro and weighted F1 ---------------------------------------------------------------

#: Two 4-class probes (class 3 never predicted in the first): each mistake is far off in one of them.
F1_PROBES = (
    (
        np.repeat([0, 1, 2, 3], [10, 5, 5, 4]),
        np.array([0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1] + [1, 0, 0, 0, 2, 0, 0, 1] + [1] * 4),
        4,
    ),
    (np.repeat([0, 1, 2, 3], [1, 6, 8, 1]), np.array([1, 3, 3, 0, 1, 0, 1, 0, 2, 1, 3, 3, 3, 2, 2, 3]), 4),
)
AVERAGES = ("macro", "micro", "weighted")


def _averages(yt: Any, yp: Any, n: int, how: str = "right") -> np.ndarray:
    """[macro, micro, weighted] F1 of one probe, or what one mistake gives."""
    t, q = np.asarray(yt)[:, None] == np.arange(n), np.asarray(yp)[:, None] == np.arange(n)
    tp, fp, fn = (t & q).sum(0), (~t & q).sum(0), (t & ~q).sum(0)
    div = (lambda a, b: np.asarray(a, float) / b) if how == "nan" else _ratio
    p, r = div(tp, tp + fp), div(tp, tp + fn)
    f = (p + r) / 2 if how == "arithmetic" else div(2 * p * r, p + r)
    micro = float(_ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()))
    keep = (tp + fp > 0) if how == "skip" else np.ones(n, bool)
    weights = (tp + fp if how == "by predictions" else tp + fn)[keep]
    macro, weighted = f[keep].mean(), np.sum(f[keep] * weights) / weights.sum()
    if how == "f1 of averages":
        pm, rm, pw, rw = p.mean(), r.mean(), np.average(p, weights=tp + fn), np.average(r, weights=tp + fn)
        macro, weighted = _ratio(2 * pm * rm, pm + rm), _ratio(2 * pw * rw, pw + rw)
    if how == "weighted is macro":
        weighted = macro
    return np.array([micro, macro, weighted] if how == "swap" else [macro, micro, weighted], dtype=float)


def _each(probes: tuple, how: str = "right") -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.concatenate([_averages(*p, how=how) for p in probes])


def reference_f1(y_true: Any, y_pred: Any, n_classes: int, average: str = "macro") -> float:
    """scikit-learn's f1_score with zero_division=0, for 'macro', 'micro' or 'weighted'."""
    return float(_averages(y_true, y_pred, n_classes)[AVERAGES.index(average)])


Q1_MISTAKES = [
    Mistake(
        "macro and micro swapped",
        "Macro gives every *class* the same weight (average the per-class scores); micro every "
        "*example* (pool the counts first).",
        lambda *ps: _each(ps, "swap"),
    ),
    Mistake(
        "weighted by predictions",
        "Weighted F1 weights a class by its *support*, how many examples truly are in it, not by how "
        "often it was predicted.",
        lambda *ps: _each(ps, "by predictions"),
    ),
    Mistake(
        "weighted is macro",
        "Your 'weighted' is the plain macro mean. Weight each class's F1 by its share of the true labels.",
        lambda *ps: _each(ps, "weighted is macro"),
    ),
    Mistake(
        "the F1 of the averaged P and R",
        "You averaged precision and recall first, then took one F1. Average the per-class F1s instead.",
        lambda *ps: _each(ps, "f1 of averages"),
    ),
    Mistake(
        "arithmetic per-class means",
        "Each class's F1 is the harmonic mean of its precision and recall, not (P + R) / 2.",
        lambda *ps: _each(ps, "arithmetic"),
    ),
    Mistake(
        "the never-predicted class skipped",
        "Class 3 is never predicted in the first probe, but it still counts: its F1 is 0, and the "
        "average runs over every class.",
        lambda *ps: _each(ps, "skip"),
    ),
    Mistake(
        "0/0 left undefined",
        "A class never predicted has precision 0/0. Define it as 0, as scikit-learn's zero_division=0 "
        "does (and the same for recall and F1).",
        lambda *ps: _each(ps, "nan"),
    ),
]


def _check_f1(fn: Any) -> None:
    raws = []
    for yt, yp, n in F1_PROBES:
        for avg in AVERAGES:
            try:
                raws.append(call(fn, yt.copy(), yp.copy(), n, avg))
            except LearnerError as e:
                if not isinstance(e.error, ZeroDivisionError | FloatingPointError):
                    raise
                raise Mismatch(f"f1_score(..., {avg!r})", "no error", str(e), Q1_MISTAKES[-1].hint) from None
    got = np.array([as_array(r, "what f1_score returns", shape=()) for r in raws])
    what = "f1_score(...) [macro, micro, weighted] on two 4-class probes"
    tol = answer_tolerance(*raws)
    judge(got, _each(F1_PROBES), Q1_MISTAKES, what=what, inputs=F1_PROBES, tol=tol)


q1 = Exercise(
    "Q1 · macro, micro and weighted F1",
    _check_f1,
    hint=(
        "Treat each class in turn as the positive one against the rest: that gives K precisions, recalls "
        "and F1s. The three averages differ only in how they combine them.",
        "Macro: the plain mean of the K F1s. Micro: add up the K hit, false-alarm and miss counts, then "
        "one F1. Weighted: the K F1s weighted by how many examples truly belong to each class. A zero "
        "denominator gives 0.",
    ),
)


# q2: expected calibration error from a probability matrix --------------------------------------


def _ece(probs: Any, labels: Any, n_bins: int, how: str = "right") -> float:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    conf = probs[np.arange(len(labels)), labels] if how == "true class" else probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    group = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)  # bin b: (b/B, (b+1)/B]
    if how == "by label":
        group, n_bins = labels, probs.shape[1]
    n = np.bincount(group, minlength=n_bins)
    gap = _ratio(np.bincount(group, correct, n_bins) - np.bincount(group, conf, n_bins), n)
    if how == "unweighted":
        return float(np.abs(gap[n > 0]).mean())
    if how == "all bins":
        return float(np.abs(gap).sum() / n_bins)
    return float(np.sum(n / n.sum() * (gap if how == "signed" else np.abs(gap))))


def reference_ece(probs: Any, labels: Any, n_bins: int = 10) -> float:
    """ECE of the top-class confidence in equal-width bins (b/B, (b+1)/B], each gap weighted by its share."""
    return _ece(probs, labels, n_bins)


def _overconfident(seed: int, n: int, k: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``scale · base`` and labels drawn from softmax(base): over-confident for scale > 1."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1.2, (n, k)) + 1.5 * np.eye(k)[rng.integers(0, k, n)]
    cdf = np.cumsum(np.exp(log_softmax(base, axis=1)), axis=1)
    return scale * base, np.minimum((cdf < rng.random((n, 1))).sum(1), k - 1)


def _groups(*groups: tuple) -> tuple[np.ndarray, np.ndarray, int]:
    """(probs, labels, 10 bins) from groups of (one probability row, how many of each label)."""
    probs = np.concatenate([np.tile(row, (sum(c), 1)) for row, c in groups])
    return probs, np.concatenate([np.repeat(np.arange(len(c)), c) for _, c in groups]), 10


_Z, _Y = _overconfident(2, 200, 3, 0.4)
ECE_PROBES = (  # a big calibrated bin and two small ones far off; an under-confident model, 5 bins
    _groups(
        ([0.92, 0.05, 0.03], [57, 3, 0]), ([0.05, 0.62, 0.33], [0, 5, 20]), ([0.29, 0.29, 0.42], [3, 0, 12])
    ),
    (np.exp(log_softmax(_Z, axis=1)), _Y, 5),
)

Q2_MISTAKES = [
    Mistake(
        "an unweighted mean over the bins",
        "A bin of 15 examples counted as much as one of 60. Weight each bin's gap by its share of the examples.",
        lambda *ps: [_ece(*p, how="unweighted") for p in ps],
    ),
    Mistake(
        "divided by the number of bins",
        "You summed the gaps and divided by B: empty and small bins weigh as much as full ones.",
        lambda *ps: [_ece(*p, how="all bins") for p in ps],
    ),
    Mistake(
        "the true class's probability as the confidence",
        "The confidence is what the model bets on its *own* prediction, the largest probability of the "
        "row, whether or not that prediction is right.",
        lambda *ps: [_ece(*p, how="true class") for p in ps],
    ),
    Mistake(
        "grouped by label",
        "You grouped the examples by class. Calibration groups them by *confidence*, in equal-width bins of [0, 1].",
        lambda *ps: [_ece(*p, how="by label") for p in ps],
    ),
    Mistake(
        "no absolute value",
        "Over- and under-confident bins cancelled out: each bin's gap counts as a distance.",
        lambda *ps: [_ece(*p, how="signed") for p in ps],
    ),
]


def _check_ece(fn: Any) -> None:
    raws = [call(fn, p.copy(), y.copy(), b) for p, y, b in ECE_PROBES]
    got = np.array([as_array(r, "the ECE", shape=(), hint=Q2_HINTS[0]) for r in raws])
    what = "expected_calibration_error on (100, 3) probabilities in 10 bins and (200, 3) in 5"
    tol = answer_tolerance(*raws)
    judge(got, [reference_ece(*p) for p in ECE_PROBES], Q2_MISTAKES, what=what, inputs=ECE_PROBES, tol=tol)


Q2_HINTS = (
    "Per example you need how sure the model is (its largest probability) and whether its top class "
    "is the label. Bin by the first, then compare the two inside each bin.",
    "With B equal-width bins (b/B, (b+1)/B], each non-empty bin adds (its count / N) times "
    "|its accuracy − its mean confidence|; empty bins add nothing.",
)
q2 = Exercise("Q2 · expected calibration error", _check_ece, hint=Q2_HINTS)


# q3: temperature scaling -----------------------------------------------------------------------

VAL_LOGITS, VAL_LABELS = _overconfident(3, 1500, 5, 2.5)


def _nll(logits: np.ndarray, labels: np.ndarray) -> Any:
    return lambda t: -np.mean(log_softmax(logits / t, axis=1)[np.arange(len(labels)), labels])


def _argmin(nll: Any) -> float:
    return float(np.exp(minimize_scalar(lambda s: nll(np.exp(s)), bounds=(-5, 5), method="bounded").x))


def reference_temperature(logits: Any, labels: Any) -> float:
    """The T > 0 that minimises the mean NLL of softmax(logits / T)."""
    return _argmin(_nll(np.asarray(logits, dtype=np.float64), np.asarray(labels)))


Q3_MISTAKES = [
    Mistake(
        "T multiplying the logits",
        "Your T is the inverse of the right one: the temperature *divides* the logits.",
        lambda z, y: 1 / reference_temperature(z, y),
    ),
    Mistake(
        "T on the probabilities",
        "You scaled probabilities, not logits. Temperature scaling divides the logits before the softmax.",
        lambda z, y: _argmin(_nll(np.exp(log_softmax(z, axis=1)), y)),
    ),
    Mistake(
        "the predicted class's NLL",
        "Your T keeps shrinking: the loss you minimise rewards confidence in the model's own guess. "
        "Score the probability of the *true* label.",
    ),
]


def _check_temperature(fn: Any) -> None:
    what = f"fit_temperature(logits, labels) on {len(VAL_LABELS)} examples of an over-confident model"
    raw = call(fn, VAL_LOGITS.copy(), VAL_LABELS.copy())
    got = as_array(raw, "the temperature", shape=(), hint=Q3_HINTS[0])
    want = reference_temperature(VAL_LOGITS, VAL_LABELS)
    if 0 < got < 0.25:  # below both mistakes' values: the NLL of the model's own guess
        raise Mismatch(what, expected=f"about {want:.2f}", got=float(got), hint=Q3_MISTAKES[-1].hint)
    tol = answer_tolerance(raw, rtol=0.03, atol=0.0)
    judge(got, want, Q3_MISTAKES, what=what, inputs=(VAL_LOGITS, VAL_LABELS), tol=tol)


Q3_HINTS = (
    "Try many values of T and keep the one whose softmax(logits / T) gives the true labels the highest "
    "mean log-probability (the lowest NLL).",
    "A grid of T from about 0.5 to 5 in steps of 0.01 is enough (or scipy's minimize_scalar on the "
    "NLL). Over-confident logits need T > 1: dividing by it flattens the probabilities.",
)
q3 = Exercise("Q3 · temperature scaling", _check_temperature, hint=Q3_HINTS)


def show_calibration(ece: Any, fit_temperature: Any, val: tuple, test: tuple, n_bins: int = 10) -> Any:
    """Fit the learner's T on ``val`` (logits, labels); show their ECE on ``test`` before and after.

    Returns the feedback of q2 or q3 while one does not pass, then a plotly table (its
    ``layout.meta`` holds the two ECEs).
    """
    for exercise, answer in ((q2, ece), (q3, fit_temperature)):
        if not (feedback := exercise.evaluate(answer)).passed:
            return feedback
    from utils import viz

    t = float(call(fit_temperature, *val))
    z, y = np.asarray(test[0], dtype=np.float64), np.asarray(test[1])
    rows, eces = [], []
    for name, scale in (("as trained", 1.0), (f"divided by T = {t:.2f}", t)):
        probs = np.exp(log_softmax(z / scale, axis=1))
        eces.append(float(call(ece, probs, y, n_bins)))
        rows.append(
            [name, f"{eces[-1]:.4f}", f"{_nll(z, y)(scale):.4f}", f"{np.mean(probs.argmax(1) == y):.4f}"]
        )
    fig = viz.table(rows, ["test logits", "ECE (yours)", "NLL", "accuracy"], title="Temperature scaling")
    fig.update_layout(meta={"ece_before": eces[0], "ece_after": eces[1], "temperature": t})
    return fig
