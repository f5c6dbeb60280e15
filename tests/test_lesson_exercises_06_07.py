"""The checked exercises of lessons 06 and 07: right answers in other styles pass, each known mistake is
named by its own hint, unanswered ones are "not done yet", and a learner's exception names their line."""

import numpy as np
import pytest
from exercise_contract import (
    each_mistake_is_named_with_its_own_hint,
    every_mistake_is_tested_and_hints_differ,
)

from utils.checks import lesson06, lesson07

# ---------------------------------------------------------------------------------------------
# Lesson 06
# ---------------------------------------------------------------------------------------------


def mha_params_formula(d_model, num_heads, key_dim):
    return 4 * d_model * num_heads * key_dim + 3 * num_heads * key_dim + d_model


def mha_params_keras(d_model, num_heads, key_dim):
    import keras

    layer = keras.layers.MultiHeadAttention(num_heads, key_dim)
    layer.build((None, 5, d_model), (None, 5, d_model))
    return layer.count_params()


def pe_similarity_loop(k, d_model):
    return sum(np.cos(k / 10000 ** (2 * i / d_model)) for i in range(d_model // 2))


def pe_similarity_measured(k, d_model):
    from utils import models

    pe = models.positional_encoding(k + 20, d_model).astype(np.float64)
    return float(pe[7] @ pe[7 + k])  # from any position: the same number


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (lesson06.e1, mha_params_formula),
        pytest.param(lesson06.e1, mha_params_keras, marks=pytest.mark.slow),
        (lesson06.e2, pe_similarity_loop),
        (lesson06.e2, pe_similarity_measured),
    ],
)
def test_lesson06_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


LESSON06_WRONG = [
    (lesson06.e1, lambda d, h, k: 4 * d * h * k, "no biases"),
    (lesson06.e1, lambda d, h, k: 4 * d * d + 4 * d, "key_dim taken as d_model/h"),
    (lesson06.e1, lambda d, h, k: mha_params_formula(d, h, k) + (h - 1) * d, "output bias per head"),
    (lesson06.e1, lambda d, h, k: mha_params_formula(d, h, k) - d, "output bias left out"),
    (lesson06.e2, lambda k, d: sum(np.cos(k / 10000 ** (i / d)) for i in range(d // 2)), "exponent i/d_model"),
    (lesson06.e2, lambda k, d: sum(np.cos(k / 10000 ** (i / d)) for i in range(d)), "d_model frequencies"),
    (lesson06.e2, lambda k, d: sum(np.sin(k / 10000 ** (2 * i / d)) for i in range(d // 2)), "sines"),
]  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Lesson 07
# ---------------------------------------------------------------------------------------------


def bert_large_by_hand():
    v, d, layers, d_ff, positions, types = 30522, 1024, 24, 4096, 512, 2
    block = 4 * d * d + 4 * d + 2 * d * d_ff + d_ff + d + 2 * 2 * d
    return v * d + positions * d + types * d + 2 * d + layers * block + d * d + d


def head_by_layers(vocab_size, d_model):
    dense = d_model * (d_model + 1)
    return dense + 2 * d_model + vocab_size


def head_keras(vocab_size, d_model):
    import keras

    x = keras.Input((d_model,))
    h = keras.layers.LayerNormalization()(keras.layers.Dense(d_model, activation="gelu")(x))
    return keras.Model(x, h).count_params() + vocab_size  # the tied projection: its bias only


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (lesson07.e1, 335_141_888),
        (lesson07.e1, np.int64(bert_large_by_hand())),
        (lesson07.e2, head_by_layers),
        pytest.param(lesson07.e2, head_keras, marks=pytest.mark.slow),
    ],
)
def test_lesson07_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


def _large(**kw):
    from utils import text

    config = dict(learned_positions=512, token_types=2, embedding_norm=True, pooler=True) | kw
    return text.encoder_params(30522, 1024, 24, config.pop("d_ff", 4096), **config)


LESSON07_WRONG = [
    (lesson07.e1, bert_large_by_hand() - 1024 * 1025, "no pooler"),
    (lesson07.e1, bert_large_by_hand() - 2 * 1024, "2 × 1,024 missing"),
    (lesson07.e1, bert_large_by_hand() - 512 * 1024, "no learned positions"),
    (lesson07.e1, _large(d_ff=3072), "BERT-base's feed-forward width"),
    (lesson07.e2, lambda v, d: head_by_layers(v, d) + v * d, "tied projection counted"),
    (lesson07.e2, lambda v, d: head_by_layers(v, d) - v, "no output bias"),
    (lesson07.e2, lambda v, d: head_by_layers(v, d) - 2 * d, "no layer norm"),
    (lesson07.e2, lambda v, d: head_by_layers(v, d) - d, "no dense bias"),
]
WRONG = LESSON06_WRONG + LESSON07_WRONG
MISTAKES = {
    lesson06.e1: lesson06.E1_MISTAKES,
    lesson06.e2: lesson06.E2_MISTAKES,
    lesson07.e1: lesson07.E1_MISTAKES,
    lesson07.e2: lesson07.E2_MISTAKES,
}

test_each_mistake_gets_its_own_hint = each_mistake_is_named_with_its_own_hint(WRONG, MISTAKES)
test_every_declared_mistake_is_tested = every_mistake_is_tested_and_hints_differ(WRONG, MISTAKES)


# ---------------------------------------------------------------------------------------------
# Not done yet, and the learner's own exceptions
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    ("exercise", "placeholder"),
    [
        (exercise, placeholder)
        for exercise in (lesson06.e1, lesson06.e2, lesson07.e1, lesson07.e2)
        for placeholder in (..., None, _not_implemented)
        if not (exercise is lesson07.e1 and placeholder is _not_implemented)  # e1 is a value, not a function
    ],
)
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message
    assert exercise.lesson  # a lesson's exercise: "not done yet" does not fail strict mode


def test_a_learners_exception_names_their_line():
    def pe_similarity(k, d_model):
        return np.cos(k * frequncies).sum()  # noqa: F821

    fb = lesson06.e2.evaluate(pe_similarity)
    assert fb.status == "error" and "frequncies" in fb.message and "Traceback" not in str(fb)


def test_a_wrong_type_is_explained():
    fb = lesson07.e1.evaluate("335M")
    assert fb.status == "incorrect" and "number" in str(fb)
