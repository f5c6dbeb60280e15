"""Lab 10's checks: right answers in several styles (NumPy, scikit-learn, SciPy, Keras) pass, each
named mistake gets its own hint, placeholders are "not done yet", a learner's crash is reported
kindly, and the mistakes are still told apart when a mixed Keras policy loosens the tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn import metrics

from utils.checks import lab10 as ex

# ---------------------------------------------------------------------------------------------
# Right answers, written differently
# ---------------------------------------------------------------------------------------------


def f1_sklearn(y_true, y_pred, n_classes, average="macro"):
    return metrics.f1_score(y_true, y_pred, labels=range(n_classes), average=average, zero_division=0)


def f1_loops(y_true, y_pred, n_classes, average="macro"):
    counts = []
    for k in range(n_classes):
        tp = int(np.sum((y_pred == k) & (y_true == k)))
        fp = int(np.sum((y_pred == k) & (y_true != k)))
        fn = int(np.sum((y_pred != k) & (y_true == k)))
        counts.append((tp, fp, fn))
    if average == "micro":
        tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
        return 2 * tp / (2 * tp + fp + fn)
    f1s = []
    for tp, fp, fn in counts:
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    if average == "weighted":
        support = [tp + fn for tp, _, fn in counts]
        return sum(f * s for f, s in zip(f1s, support, strict=True)) / sum(support)
    return sum(f1s) / n_classes


def ece_numpy(probs, labels, n_bins=10):
    conf, right = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return total


def ece_keras_ops(probs, labels, n_bins=10):
    import keras

    probs = keras.ops.convert_to_tensor(probs, "float32")
    conf = keras.ops.max(probs, axis=1)
    right = keras.ops.cast(keras.ops.argmax(probs, axis=1) == labels, "float32")
    which = keras.ops.clip(keras.ops.cast(keras.ops.ceil(conf * n_bins), "int32") - 1, 0, n_bins - 1)
    gap = keras.ops.bincount(which, weights=right, minlength=n_bins) - keras.ops.bincount(
        which, weights=conf, minlength=n_bins
    )
    return keras.ops.sum(keras.ops.abs(gap)) / len(labels)


def temperature_scipy(logits, labels):
    def nll(t):
        return -log_softmax(logits / t, axis=1)[np.arange(len(labels)), labels].mean()

    return minimize_scalar(nll, bounds=(0.05, 20), method="bounded").x


def temperature_grid(logits, labels):
    grid = np.linspace(0.5, 5, 451)
    losses = [metrics.log_loss(labels, softmax(logits / t, axis=1), labels=range(5)) for t in grid]
    return grid[int(np.argmin(losses))]


def temperature_keras(logits, labels):
    import keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    grid = np.arange(1.0, 4.0, 0.02)
    return float(grid[np.argmin([float(loss(labels, logits / t)) for t in grid])])


RIGHT = [
    (ex.q1, f1_sklearn),
    (ex.q1, f1_loops),
    (ex.q2, ece_numpy),
    (ex.q2, ece_keras_ops),
    (ex.q3, temperature_scipy),
    (ex.q3, temperature_grid),
    (ex.q3, temperature_keras),
]


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "answer"), RIGHT)
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


def test_the_references_agree_with_scikit_learn():
    for yt, yp, n in ex.F1_PROBES:
        for average in ex.AVERAGES:
            assert np.isclose(ex.reference_f1(yt, yp, n, average), f1_sklearn(yt, yp, n, average))
    for probs, labels, bins in ex.ECE_PROBES:
        assert np.isclose(ex.reference_ece(probs, labels, bins), ece_numpy(probs, labels, bins))


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_a_crash_names_the_learners_line_without_a_course_traceback():
    def broken(probs, labels, n_bins=10):
        return probs.max(axis=3)

    fb = ex.q2.evaluate(broken)
    assert fb.status == "error" and "AxisError" in fb.message and "test_lab10_checks.py" in fb.message
    assert "Traceback" not in str(fb) and "utils/checks" not in str(fb)


def test_a_zero_division_is_the_undefined_0_over_0_mistake():
    def f1_dividing(y_true, y_pred, n_classes, average="macro"):
        return float(np.mean([1 / int(np.sum(y_pred == k)) for k in range(n_classes)]))

    fb = ex.q1.evaluate(f1_dividing)
    assert fb.status == "incorrect" and fb.hint == ex.Q1_MISTAKES[-1].hint


# ---------------------------------------------------------------------------------------------
# Each named mistake, written as a learner would, gets its own hint
# ---------------------------------------------------------------------------------------------


def _f1(**mistake):
    def f1_score(y_true, y_pred, n_classes, average="macro"):
        if mistake.get("swap") and average != "weighted":
            average = {"macro": "micro", "micro": "macro"}[average]
        if average == "micro":
            return f1_loops(y_true, y_pred, n_classes, "micro")
        stats = []
        for k in range(n_classes):
            tp = np.sum((y_pred == k) & (y_true == k))
            fp, fn = np.sum((y_pred == k) & (y_true != k)), np.sum((y_pred != k) & (y_true == k))
            with np.errstate(invalid="ignore"):
                p = tp / (tp + fp) if tp + fp or mistake.get("nan") else 0.0
                r = tp / (tp + fn) if tp + fn else 0.0
            if mistake.get("arithmetic"):
                f = (p + r) / 2
            else:
                with np.errstate(invalid="ignore"):
                    f = 2 * p * r / (p + r) if p + r or mistake.get("nan") else 0.0
            stats.append((p, r, f, tp + fn, tp + fp))
        p, r, f, support, predicted = (np.array(c, dtype=float) for c in zip(*stats, strict=True))
        if mistake.get("skip"):
            p, r, f, support = p[predicted > 0], r[predicted > 0], f[predicted > 0], support[predicted > 0]
        weights = predicted if mistake.get("by_predictions") else support
        if average == "weighted" and not mistake.get("weighted_is_macro"):
            if mistake.get("averages_first"):
                pw, rw = np.average(p, weights=weights), np.average(r, weights=weights)
                return 2 * pw * rw / (pw + rw)
            return float(np.sum(f * weights) / weights.sum())
        if mistake.get("averages_first"):
            return 2 * p.mean() * r.mean() / (p.mean() + r.mean())
        return float(f.mean())

    return f1_score


def _ece(how):
    def expected_calibration_error(probs, labels, n_bins=10):
        conf = probs[np.arange(len(labels)), labels] if how == "true class" else probs.max(1)
        right = probs.argmax(1) == labels
        group = labels if how == "label" else np.minimum(np.ceil(conf * n_bins).astype(int), n_bins) - 1
        gaps, sizes = [], []
        for g in range(probs.shape[1] if how == "label" else n_bins):
            inside = group == g
            sizes.append(inside.sum())
            gaps.append(right[inside].mean() - conf[inside].mean() if inside.any() else 0.0)
        gaps, sizes = np.array(gaps), np.array(sizes)
        if how == "unweighted":
            return np.abs(gaps[sizes > 0]).mean()
        if how == "over B":
            return np.abs(gaps).sum() / n_bins
        return np.sum(sizes / sizes.sum() * (gaps if how == "signed" else np.abs(gaps)))

    return expected_calibration_error


def _temperature(how):
    def fit_temperature(logits, labels):
        grid = np.arange(0.05, 6.0, 0.01)
        rows = np.arange(len(labels))
        if how == "multiply":
            losses = [-log_softmax(logits * t, axis=1)[rows, labels].mean() for t in grid]
        elif how == "probabilities":
            probs = softmax(logits, axis=1)
            losses = [-log_softmax(probs / t, axis=1)[rows, labels].mean() for t in grid]
        else:  # the predicted class's NLL
            losses = [-log_softmax(logits / t, axis=1).max(axis=1).mean() for t in grid]
        return grid[int(np.argmin(losses))]

    return fit_temperature


WRONG = {
    "macro and micro swapped": (ex.q1, _f1(swap=True)),
    "weighted by predictions": (ex.q1, _f1(by_predictions=True)),
    "weighted is macro": (ex.q1, _f1(weighted_is_macro=True)),
    "the F1 of the averaged P and R": (ex.q1, _f1(averages_first=True)),
    "arithmetic per-class means": (ex.q1, _f1(arithmetic=True)),
    "the never-predicted class skipped": (ex.q1, _f1(skip=True)),
    "0/0 left undefined": (ex.q1, _f1(nan=True)),
    "an unweighted mean over the bins": (ex.q2, _ece("unweighted")),
    "divided by the number of bins": (ex.q2, _ece("over B")),
    "the true class's probability as the confidence": (ex.q2, _ece("true class")),
    "grouped by label": (ex.q2, _ece("label")),
    "no absolute value": (ex.q2, _ece("signed")),
    "T multiplying the logits": (ex.q3, _temperature("multiply")),
    "T on the probabilities": (ex.q3, _temperature("probabilities")),
    "the predicted class's NLL": (ex.q3, _temperature("predicted")),
}
HINTS = {m.name: m.hint for m in ex.Q1_MISTAKES + ex.Q2_MISTAKES + ex.Q3_MISTAKES}


def test_every_named_mistake_has_a_learner_version():
    assert set(HINTS) == set(WRONG)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(WRONG))
def test_each_mistake_gets_its_own_hint(name):
    exercise, answer = WRONG[name]
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == HINTS[name], str(fb)


# ---------------------------------------------------------------------------------------------
# Under mixed precision answer_tolerance loosens to 16-bit's; the probes still separate
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, (q, _) in WRONG.items() if q is not ex.q3])
def test_mistakes_are_named_under_mixed_precision(mixed_policy, name):
    exercise, answer = WRONG[name]
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == HINTS[name], str(fb)


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "answer"), RIGHT[:4] + RIGHT[6:])
def test_right_answers_pass_under_mixed_precision(mixed_policy, exercise, answer):
    assert exercise.evaluate(answer).passed


@pytest.mark.slow
def test_show_calibration_waits_for_q2_and_q3_then_shows_the_ece_drop():
    assert (
        ex.show_calibration(_not_implemented, temperature_scipy, (None, None), (None, None)).status
        == "not_done"
    )
    assert (
        ex.show_calibration(ece_numpy, _temperature("multiply"), (None, None), (None, None)).status
        == "incorrect"
    )
    z, y = ex._overconfident(7, 600, 5, 3.0)
    fig = ex.show_calibration(ece_numpy, temperature_scipy, (z[:300], y[:300]), (z[300:], y[300:]))
    meta = fig.layout.meta
    assert meta["temperature"] > 1.5 and meta["ece_after"] < meta["ece_before"] / 2
