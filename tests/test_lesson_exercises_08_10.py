"""The checked exercises of lessons 08 and 10: right answers in several styles pass, each named
mistake gets its own hint, placeholders are "not done yet", a crash names the learner's line, and
the mistakes are still told apart under a mixed Keras policy."""

from __future__ import annotations

import numpy as np
import pytest
from exercise_contract import right_answers_pass
from scipy.special import log_softmax, softmax
from sklearn import metrics

from utils.checks import lesson08, lesson10

# ---------------------------------------------------------------------------------------------
# Right answers, written differently
# ---------------------------------------------------------------------------------------------


def perplexity_numpy(logits, targets, mask):
    nll = -np.take_along_axis(log_softmax(logits, axis=-1), targets[..., None], axis=-1)[..., 0]
    return np.exp(nll[mask].mean())


def perplexity_keras(logits, targets, mask):
    import keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(targets, logits)
    return float(np.exp(np.sum(np.asarray(loss) * mask) / mask.sum()))


def retemper_log(probs, temperature):
    return softmax(np.log(probs) / temperature)


def retemper_tf(probs, temperature):
    import tensorflow as tf

    return tf.nn.softmax(tf.math.log(tf.constant(probs, tf.float32)) / temperature)


def balanced_sklearn(cm):
    y_true = np.repeat(np.arange(len(cm)), cm.sum(axis=1))
    y_pred = np.concatenate([np.repeat(np.arange(len(cm)), row) for row in cm])
    return metrics.balanced_accuracy_score(y_true, y_pred)


def balanced_loop(cm):
    return sum(cm[k, k] / cm[k].sum() for k in range(len(cm))) / len(cm)


def recall_at_precision_sklearn(y_true, scores, min_precision):
    precision, recall, _ = metrics.precision_recall_curve(y_true, scores)
    ok = precision >= min_precision
    return recall[ok].max() if ok.any() else 0.0


def recall_at_precision_loop(y_true, scores, min_precision):
    best = 0.0
    for t in scores:
        predicted = scores >= t
        tp = np.sum(predicted & (y_true == 1))
        if tp / predicted.sum() >= min_precision:
            best = max(best, tp / y_true.sum())
    return best


RIGHT = [
    (lesson08.e1, perplexity_numpy),
    (lesson08.e1, perplexity_keras),
    (lesson08.e2, retemper_log),
    (lesson08.e2, retemper_tf),
    (lesson10.e1, balanced_sklearn),
    (lesson10.e1, balanced_loop),
    (lesson10.e2, recall_at_precision_sklearn),
    (lesson10.e2, recall_at_precision_loop),
]


test_right_answers_pass = pytest.mark.slow(right_answers_pass(RIGHT))


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "answer"), RIGHT)
def test_right_answers_pass_under_mixed_precision(mixed_policy, exercise, answer):
    assert exercise.evaluate(answer).passed


def _not_implemented(*args):
    raise NotImplementedError


EXERCISES = [lesson08.e1, lesson08.e2, lesson10.e1, lesson10.e2]


@pytest.mark.parametrize("exercise", EXERCISES)
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done_and_do_not_fail_strict_mode(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message
    exercise.check(placeholder)  # COURSE_CHECKS_STRICT=1 here: a lesson's open exercise does not raise


def test_a_crash_names_the_learners_line_without_a_course_traceback():
    def broken(cm):
        return cm.diagonal() / cm.sum(axis=2)

    fb = lesson10.e1.evaluate(broken)
    assert fb.status == "error" and "test_lesson_exercises_08_10.py" in fb.message
    assert "Traceback" not in str(fb) and "utils/checks" not in str(fb)


# ---------------------------------------------------------------------------------------------
# Each named mistake, written as a learner would
# ---------------------------------------------------------------------------------------------


def _nll(logits, targets):
    return -np.take_along_axis(log_softmax(logits, axis=-1), targets[..., None], axis=-1)[..., 0]


def _sweep(y_true, scores, floor, stop_at_dip=False, swapped=False):
    best = 0.0
    for t in np.sort(scores)[::-1]:
        predicted = scores >= t
        precision = np.sum(predicted & (y_true == 1)) / predicted.sum()
        recall = np.sum(predicted & (y_true == 1)) / y_true.sum()
        if swapped:
            precision, recall = recall, precision
        if precision >= floor:
            best = max(best, recall)
        elif stop_at_dip:
            break
    return best


WRONG = {
    "the padding counted": (lesson08.e1, lambda z, t, m: np.exp(_nll(z, t).mean())),
    "per-sequence perplexities averaged": (
        lesson08.e1,
        lambda z, t, m: np.mean([np.exp(n[k].mean()) for n, k in zip(_nll(z, t), m, strict=True)]),
    ),
    "logits as log-probabilities": (
        lesson08.e1,
        lambda z, t, m: np.exp(-np.take_along_axis(z, t[..., None], -1)[..., 0][m].mean()),
    ),
    "p / T renormalised": (lesson08.e2, lambda p, t: (p / t) / (p / t).sum()),
    "p / T": (lesson08.e2, lambda p, t: p / t),
    "p to the power T": (lesson08.e2, lambda p, t: p**t / (p**t).sum()),
    "not renormalised": (lesson08.e2, lambda p, t: p ** (1 / t)),
    "precision averaged": (lesson10.e1, lambda cm: np.mean(np.diag(cm) / cm.sum(axis=0))),
    "plain accuracy": (lesson10.e1, lambda cm: np.trace(cm) / cm.sum()),
    "the floor ignored": (lesson10.e2, lambda y, s, f: 1.0),
    "stopped at a dip": (lesson10.e2, lambda y, s, f: _sweep(y, s, f, stop_at_dip=True)),
    "P and R swapped": (lesson10.e2, lambda y, s, f: _sweep(y, s, f, swapped=True)),
}
HINTS = {
    m.name: m.hint
    for m in lesson08.E1_MISTAKES + lesson08.E2_MISTAKES + lesson10.E1_MISTAKES + lesson10.E2_MISTAKES
}


def test_every_named_mistake_has_a_learner_version():
    assert set(HINTS) == set(WRONG)


@pytest.mark.parametrize("name", list(WRONG))
def test_each_mistake_gets_its_own_hint(name):
    exercise, answer = WRONG[name]
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == HINTS[name], str(fb)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(WRONG))
def test_each_mistake_gets_its_own_hint_under_mixed_precision(mixed_policy, name):
    exercise, answer = WRONG[name]
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == HINTS[name], str(fb)
