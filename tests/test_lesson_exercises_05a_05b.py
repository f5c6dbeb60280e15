"""Lessons 05a and 05b's own exercises: right answers in several styles pass, each named mistake gets its
own hint, placeholders are "not done yet" (and do not fail strict mode in a lesson), and the references
agree with Keras (its He-uniform initialiser's range, its recurrent layers' count_params)."""

import math

import numpy as np
import pytest
from exercise_contract import lesson_exercise_tests

from utils.checks import lesson05a, lesson05b

# ---------------------------------------------------------------------------------------------
# Lesson 05a
# ---------------------------------------------------------------------------------------------


def he_uniform_limit(fan_in):
    return math.sqrt(6 / fan_in)


def he_uniform_limit_from_std(fan_in):
    std = np.sqrt(2.0 / fan_in)
    return np.float32(std * np.sqrt(3.0))  # a uniform's std is a/√3; float32 is close enough


def n_statistics(shape, kind, groups):
    n, _, _, c = shape
    if kind == "batch":
        return c
    if kind == "layer":
        return n
    if kind == "group":
        return n * groups
    return n * c


def n_statistics_as_group_norm(shape, kind, groups):
    n, h, w, c = shape
    if kind == "batch":
        return np.int64(c)
    per_example = {"layer": 1, "group": groups, "instance": c}[kind]  # G = 1 is layer norm, G = C instance
    return float(np.prod([n, per_example]))


LESSON05A_RIGHT = [
    (lesson05a.e1, he_uniform_limit),
    (lesson05a.e1, he_uniform_limit_from_std),
    (lesson05a.e2, n_statistics),
    (lesson05a.e2, n_statistics_as_group_norm),
]


def _swap_batch_layer(shape, kind, groups):
    return n_statistics(shape, {"batch": "layer", "layer": "batch"}.get(kind, kind), groups)


def _group_with(count):
    return lambda shape, kind, groups: (
        count(shape, groups) if kind == "group" else n_statistics(shape, kind, groups)
    )


LESSON05A_WRONG = [
    (lesson05a.e1, lambda n: math.sqrt(2 / n), "the standard deviation"),
    (lesson05a.e1, lambda n: 6 / n, "no square root"),
    (lesson05a.e1, lambda n: math.sqrt(3 / n), "no factor 2 for ReLU"),
    (lesson05a.e1, lambda n: math.sqrt(2 / n) * math.sqrt(12), "variance a²/12"),
    (lesson05a.e2, _swap_batch_layer, "batch and layer norm swapped"),
    (lesson05a.e2, _group_with(lambda s, g: g), "one per group for the whole batch"),
    (lesson05a.e2, _group_with(lambda s, g: s[0] * s[3] // g), "one per channel of a group"),
    (
        lesson05a.e2,
        lambda s, k, g: s[3] if k == "instance" else n_statistics(s, k, g),
        "instance norm once per channel",
    ),
]

# ---------------------------------------------------------------------------------------------
# Lesson 05b
# ---------------------------------------------------------------------------------------------


def recurrent_params(kind, features, units):
    kernel = features * units
    recurrent = units * units
    if kind == "simple":
        return kernel + recurrent + units
    if kind == "lstm":
        return 4 * (kernel + recurrent + units)
    return 3 * (kernel + recurrent) + 2 * 3 * units  # bias of shape (2, 3·units)


def recurrent_params_by_shapes(kind, features, units):
    blocks = {"simple": 1, "lstm": 4, "gru": 3}[kind]
    bias_shape = (2, blocks * units) if kind == "gru" else (blocks * units,)
    shapes = [(features, blocks * units), (units, blocks * units), bias_shape]
    return sum(int(np.prod(s)) for s in shapes)


def steps_to_shrink(rho, fraction):
    return math.ceil(math.log(fraction) / math.log(rho))


def steps_to_shrink_by_loop(rho, fraction):
    d, factor = 0, 1.0
    while factor > fraction:
        d, factor = d + 1, factor * rho
    return d


LESSON05B_RIGHT = [
    (lesson05b.e1, recurrent_params),
    (lesson05b.e1, recurrent_params_by_shapes),
    (lesson05b.e2, steps_to_shrink),
    (lesson05b.e2, steps_to_shrink_by_loop),
    (lesson05b.e2, lambda rho, fraction: np.ceil(np.log10(fraction) / np.log10(rho))),  # any base, a float
]


def _params(blocks, per_block):
    return lambda kind, d, u: {"simple": 1, "lstm": blocks, "gru": 3}[kind] * per_block(kind, d, u)


LESSON05B_WRONG = [
    (lesson05b.e1, _params(4, lambda k, d, u: d * u + (2 if k == "gru" else 1) * u), "no recurrent kernel"),
    (lesson05b.e1, _params(4, lambda k, d, u: u * (d + u)), "no bias"),
    (lesson05b.e1, _params(4, lambda k, d, u: u * (d + u) + u), "one bias row for the GRU"),
    (
        lesson05b.e1,
        _params(3, lambda k, d, u: u * (d + u) + (2 if k == "gru" else 1) * u),
        "three LSTM blocks",
    ),
    (lesson05b.e2, lambda r, f: int(math.log(f) / math.log(r)), "rounded down"),
    (lesson05b.e2, lambda r, f: steps_to_shrink_by_loop(r, f) + 1, "one step too many"),
    (lesson05b.e2, lambda r, f: math.ceil(math.log(r) / math.log(f)), "the ratio upside down"),
]

RIGHT = LESSON05A_RIGHT + LESSON05B_RIGHT
WRONG = LESSON05A_WRONG + LESSON05B_WRONG
MISTAKES = {
    lesson05a.e1: lesson05a.E1_MISTAKES,
    lesson05a.e2: lesson05a.E2_MISTAKES,
    lesson05b.e1: lesson05b.E1_MISTAKES,
    lesson05b.e2: lesson05b.E2_MISTAKES,
}


(
    test_right_answers_pass,
    test_each_mistake_is_named_with_its_own_hint,
    test_every_mistake_is_tested_and_hints_differ,
    test_placeholders_are_not_done_and_do_not_fail_strict_mode,
) = lesson_exercise_tests(RIGHT, WRONG, MISTAKES)


def test_a_wrong_answer_fails_strict_mode(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    with pytest.raises(AssertionError):
        lesson05b.e1.check(lambda kind, features, units: 4 * units * (features + units))


def test_an_unnamed_wrong_answer_gets_the_first_hint():
    feedback = lesson05a.e2.evaluate(lambda shape, kind, groups: 1)
    assert feedback.status == "incorrect" and feedback.hint == lesson05a.e2.hints[0]


def test_a_learners_exception_names_their_line():
    def steps_to_shrink(rho, fraction):
        return math.ceil(math.log(fraction) / math.log(rho - rho))

    feedback = lesson05b.e2.evaluate(steps_to_shrink)
    assert feedback.status == "error" and "rho - rho" in feedback.message
    assert "utils/checks" not in str(feedback)


def test_the_steps_probes_are_not_whole_numbers():
    # rounding up and rounding down must give different answers on every probe
    for rho, fraction in lesson05b.PROBES:
        exact = math.log(fraction) / math.log(rho)
        assert abs(exact - round(exact)) > 0.01
        d = steps_to_shrink(rho, fraction)
        assert rho**d <= fraction < rho ** (d - 1)


@pytest.mark.slow
def test_the_he_uniform_limit_is_keras_he_uniform():
    from utils.env import import_tensorflow

    import_tensorflow()
    import keras

    fan_in, fan_out = 50, 4000
    w = keras.ops.convert_to_numpy(keras.initializers.HeUniform(seed=0)((fan_in, fan_out)))
    limit = he_uniform_limit(fan_in)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit  # 200,000 draws reach the edge
    assert np.var(w) == pytest.approx(2 / fan_in, rel=0.02)


@pytest.mark.slow
def test_the_parameter_counts_are_keras_counts():
    from utils.env import import_tensorflow

    import_tensorflow()
    import keras

    layers = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
    for kind, features, units in lesson05b.LAYERS + [("gru", 5, 7), ("simple", 32, 64)]:
        layer = layers[kind](units)
        layer.build((None, 4, features))
        assert layer.count_params() == recurrent_params(kind, features, units), (kind, features, units)
