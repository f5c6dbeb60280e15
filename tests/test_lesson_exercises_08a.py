"""Lesson 08a's own exercises: right answers in several styles pass, each named mistake gets its own hint,
placeholders are "not done yet" (and do not fail strict mode in a lesson), and the references agree with the
lesson's ``utils.generative`` schedule."""

import numpy as np
import pytest
from exercise_contract import lesson_exercise_tests

from utils.checks import lesson08a

# ---------------------------------------------------------------------------------------------
# e1: the first step at which ᾱ_t falls below a fraction
# ---------------------------------------------------------------------------------------------


def first_step_below(betas, fraction):
    abar = np.cumprod(1 - betas)
    return int(np.argmax(abar < fraction)) + 1


def first_step_below_by_count(betas, fraction):
    """ᾱ only falls, so the steps still at or above the fraction come first: count them, plus one."""
    return np.sum(np.cumprod(1 - np.asarray(betas)) >= fraction) + 1  # a NumPy integer


def first_step_below_loop(betas, fraction):
    kept, t = 1.0, 0
    while kept >= fraction:
        kept *= 1 - betas[t]
        t += 1
    return float(t)  # a whole float is accepted


def first_step_below_logs(betas, fraction):
    """Sums of logarithms instead of a product, searched with np.searchsorted on the decreasing sums."""
    log_abar = np.cumsum(np.log1p(-np.asarray(betas)))
    return int(np.searchsorted(-log_abar, -np.log(fraction), side="right")) + 1


RIGHT = [
    (lesson08a.e1, first_step_below),
    (lesson08a.e1, first_step_below_by_count),
    (lesson08a.e1, first_step_below_loop),
    (lesson08a.e1, first_step_below_logs),
]
WRONG = [
    (lesson08a.e1, lambda b, f: int(np.argmax(np.cumprod(1 - b) < f)), "one step early"),
    (lesson08a.e1, lambda b, f: int(np.sum(np.cumprod(1 - b) >= f)), "one step early"),
    (
        lesson08a.e1,
        lambda b, f: int(np.argmax(np.sqrt(np.cumprod(1 - b)) < f)) + 1,
        "√ᾱ_t compared instead of ᾱ_t",
    ),
]

# ---------------------------------------------------------------------------------------------
# e2: active units
# ---------------------------------------------------------------------------------------------


def active_units(mu, threshold):
    return int((np.var(mu, axis=0) > threshold).sum())


def active_units_loop(mu, threshold):
    count = 0
    for column in np.asarray(mu, dtype=np.float64).T:
        mean = sum(column) / len(column)
        if sum((v - mean) ** 2 for v in column) / len(column) > threshold:
            count += 1
    return count


def active_units_tf(mu, threshold):
    from utils.env import import_tensorflow

    tf = import_tensorflow()
    return tf.reduce_sum(tf.cast(tf.math.reduce_variance(mu, axis=0) > threshold, tf.int32))


RIGHT += [
    (lesson08a.e2, active_units),
    (lesson08a.e2, active_units_loop),
    pytest.param(lesson08a.e2, active_units_tf, marks=pytest.mark.slow),
]
WRONG += [
    (
        lesson08a.e2,
        lambda mu, t: int((np.var(mu, axis=1) > t).sum()),
        "the variance over the latent dimensions",
    ),
    (lesson08a.e2, lambda mu, t: int((np.std(mu, axis=0) > t).sum()), "the standard deviation compared"),
    (lesson08a.e2, lambda mu, t: int((np.abs(mu.mean(axis=0)) > t).sum()), "the mean compared"),
]

MISTAKES = {lesson08a.e1: lesson08a.E1_MISTAKES, lesson08a.e2: lesson08a.E2_MISTAKES}

(
    test_right_answers_pass,
    test_each_mistake_is_named_with_its_own_hint,
    test_every_mistake_is_tested_and_hints_differ,
    test_placeholders_are_not_done_and_do_not_fail_strict_mode,
) = lesson_exercise_tests(RIGHT, WRONG, MISTAKES)


def test_a_wrong_answer_fails_strict_mode(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    with pytest.raises(AssertionError):
        lesson08a.e2.check(lambda mu, threshold: mu.shape[1])


def test_an_unnamed_wrong_answer_gets_the_first_hint():
    feedback = lesson08a.e1.evaluate(lambda betas, fraction: 7)
    assert feedback.status == "incorrect" and feedback.hint == lesson08a.e1.hints[0]


def test_a_fraction_instead_of_a_count_is_explained():
    feedback = lesson08a.e2.evaluate(lambda mu, t: float((np.var(mu, axis=0) > t).mean()))
    assert feedback.status == "incorrect" and "whole number" in feedback.expected, str(feedback)


def test_a_learners_exception_names_their_line():
    def first_step_below(betas, fraction):
        return int(np.argmax(np.cumprod(1 - betas) < fraction)) + betas.step

    feedback = lesson08a.e1.evaluate(first_step_below)
    assert feedback.status == "error" and "betas.step" in feedback.message
    assert "utils/checks" not in str(feedback)


def test_every_probe_has_a_step_below_the_fraction_and_the_mistakes_differ_there():
    for _, betas, fraction in lesson08a.E1_PROBES:
        t = lesson08a.first_step_below_variant(betas, fraction)
        abar = np.cumprod(1 - betas)
        assert 1 <= t <= len(betas) and abar[t - 1] < fraction and (t == 1 or abar[t - 2] >= fraction)
        assert lesson08a.first_step_below_variant(betas, fraction, root=True) != t


def test_the_linear_probe_is_the_lessons_ddpm_schedule():
    from utils import generative

    schedule = generative.ddpm_schedule(1000)
    name, betas, _ = lesson08a.E1_PROBES[0]
    assert "T = 1000" in name
    np.testing.assert_allclose(betas, schedule.betas, rtol=1e-12)
    t = lesson08a.first_step_below_variant(schedule.betas, 0.1)
    assert t == 476 and schedule.alpha_bars[schedule.at(t)] < 0.1 <= schedule.alpha_bars[schedule.at(t - 1)]


def test_the_active_unit_probes_have_active_and_collapsed_dimensions():
    for mu, threshold in lesson08a._e2_probes():
        count = lesson08a.active_units_variant(mu, threshold)
        assert 0 < count < mu.shape[1]
    mistakes = [m.compute() for m in lesson08a.E2_MISTAKES] + [lesson08a._per_e2_probe()()]
    assert len({tuple(m) for m in mistakes}) == len(mistakes), "every mistake gives its own counts"
