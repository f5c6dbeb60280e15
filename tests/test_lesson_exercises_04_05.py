"""Lessons 04 and 05's own exercises: right answers in several styles pass, each named mistake gets its
own hint, placeholders are "not done yet" (and do not fail strict mode in a lesson), a learner's exception
names their line. All NumPy: fast."""

import numpy as np
import pytest
from exercise_contract import lesson_exercise_tests

from utils.checks import lesson04, lesson05

# ---------------------------------------------------------------------------------------------
# Lesson 04
# ---------------------------------------------------------------------------------------------


def separable_params(k, c_in, c_out):
    return k * k * c_in + c_in * c_out + c_out


def separable_params_by_parts(k, c_in, c_out):
    depthwise = np.prod([k, k, c_in])
    return int(depthwise) + (c_in + 1) * c_out


def kernel_at(row, col, as_list=False):
    k = np.zeros((3, 3))
    k[row, col] = 1
    return k.tolist() if as_list else k


LESSON04_RIGHT = [
    (lesson04.e1, separable_params),
    (lesson04.e1, separable_params_by_parts),
    (lesson04.e2, kernel_at(1, 0)),
    (lesson04.e2, kernel_at(1, 0, as_list=True)),
    (lesson04.e2, np.pad([[1.0]], ((1, 1), (0, 2)))),  # a one, padded into place
]


LESSON04_WRONG = [
    (lesson04.e1, lambda k, ci, co: k * k * ci * co + co, "a regular Conv2D's count"),
    (lesson04.e1, lambda k, ci, co: k * k * ci + ci * co, "bias left out"),
    (lesson04.e1, lambda k, ci, co: k * k * ci + ci + ci * co + co, "a bias on the depthwise step too"),
    (lesson04.e1, lambda k, ci, co: k * k + ci * co + co, "one depthwise filter for all channels"),
    (lesson04.e2, kernel_at(1, 2), "flipped: moves left"),
    (lesson04.e2, kernel_at(0, 1), "moves down"),
    (lesson04.e2, kernel_at(2, 1), "moves up"),
]

# ---------------------------------------------------------------------------------------------
# Lesson 05
# ---------------------------------------------------------------------------------------------


def momentum_for(steps, left):
    return left ** (1 / steps)


def momentum_for_log(steps, left):
    return float(np.exp(np.log(left) / steps))


def option_a(x, filters, stride):
    kept = x[:, ::stride, ::stride]
    return np.pad(kept, [(0, 0)] * 3 + [(0, filters - x.shape[-1])])


def option_a_keras(x, filters, stride):
    import keras

    kept = keras.ops.convert_to_tensor(x)[:, ::stride, ::stride, :]
    return keras.ops.concatenate([kept, keras.ops.zeros((*kept.shape[:3], filters - x.shape[-1]))], axis=-1)


LESSON05_RIGHT = [
    (lesson05.e1, momentum_for),
    (lesson05.e1, momentum_for_log),
    (lesson05.e2, option_a),
]


def _pad_channels(x, filters, before):
    extra = filters - x.shape[-1]
    return np.pad(x, [(0, 0)] * 3 + [(before, extra - before)])


LESSON05_WRONG = [
    (lesson05.e1, lambda k, left: 1 - 1 / k, "1 − 1/steps"),
    (lesson05.e1, lambda k, left: 1 - left ** (1 / k), "1 − left^(1/steps)"),
    (lesson05.e1, lambda k, left: left**k, "left^steps"),
    (lesson05.e2, lambda x, f, s: _pad_channels(x[:, 1::s, 1::s], f, 0), "subsampled from the second pixel"),
    (
        lesson05.e2,
        lambda x, f, s: _pad_channels(x.reshape(2, 3, s, 3, s, 3).mean(axis=(2, 4)), f, 0),
        "averaged",
    ),
    (lesson05.e2, lambda x, f, s: _pad_channels(x[:, ::s, ::s], f, f - x.shape[-1]), "zeros first"),
    (
        lesson05.e2,
        lambda x, f, s: _pad_channels(x[:, ::s, ::s], f, (f - x.shape[-1]) // 2),
        "zeros on both sides",
    ),
]

RIGHT = LESSON04_RIGHT + LESSON05_RIGHT
WRONG = LESSON04_WRONG + LESSON05_WRONG
MISTAKES = {
    lesson04.e1: lesson04.E1_MISTAKES,
    lesson04.e2: lesson04.E2_MISTAKES,
    lesson05.e1: lesson05.E1_MISTAKES,
    lesson05.e2: lesson05.E2_MISTAKES,
}


(
    test_right_answers_pass,
    test_each_mistake_is_named_with_its_own_hint,
    test_every_mistake_is_tested_and_hints_differ,
    test_placeholders_are_not_done_and_do_not_fail_strict_mode,
) = lesson_exercise_tests(RIGHT, WRONG, MISTAKES)


@pytest.mark.slow
def test_a_keras_ops_option_a_passes():
    assert lesson05.e2.evaluate(option_a_keras).passed


def test_a_wrong_answer_fails_strict_mode(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    with pytest.raises(AssertionError):
        lesson04.e2.check(kernel_at(1, 2))


def test_a_learners_exception_names_their_line():
    def momentum_for(steps, left):
        return left ** (1 / (steps - steps))

    feedback = lesson05.e1.evaluate(momentum_for)
    assert feedback.status == "error" and "ZeroDivisionError" in feedback.message
    assert "steps - steps" in feedback.message and "utils/checks" not in str(feedback)


def test_wrong_shapes_are_explained():
    assert "shape" in lesson04.e2.evaluate(np.zeros((2, 2))).message
    assert "shape" in lesson05.e2.evaluate(lambda x, f, s: x[:, ::s, ::s]).message
