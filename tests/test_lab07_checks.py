"""The checks of Lab 07 (masked language model): right answers in any form pass, each typical mistake is named."""

import keras
import numpy as np
import pytest

from utils.checks import lab07 as ex

PAD, MASK, N_SPECIAL, IGNORE = ex.PAD_ID, ex.MASK_ID, ex.N_SPECIAL, ex.IGNORE

# ---------------------------------------------------------------------------------------------
# Q1: right answers, written the ways learners write them
# ---------------------------------------------------------------------------------------------


def mask_tokens_where(ids, rng, vocab_size, rate=0.15):
    selected = (rng.random(ids.shape) < rate) & (ids != PAD)
    r = rng.random(ids.shape)
    random_ids = rng.integers(N_SPECIAL, vocab_size, size=ids.shape)
    inputs = np.where(selected & (r < 0.8), MASK, ids)
    inputs = np.where(selected & (r >= 0.8) & (r < 0.9), random_ids, inputs)
    return inputs, np.where(selected, ids, IGNORE)


def mask_tokens_choice(ids, rng, vocab_size, rate=0.15):
    inputs, labels = ids.copy(), np.full_like(ids, IGNORE)
    candidates = np.flatnonzero(ids != PAD)
    chosen = candidates[rng.random(len(candidates)) < rate]
    labels.flat[chosen] = ids.flat[chosen]
    action = rng.choice(3, size=len(chosen), p=[0.8, 0.1, 0.1])
    inputs.flat[chosen[action == 0]] = MASK
    inputs.flat[chosen[action == 1]] = rng.integers(N_SPECIAL, vocab_size, size=int((action == 1).sum()))
    return inputs, labels


def mask_tokens_tensorflow(ids, rng, vocab_size, rate=0.15):
    import tensorflow as tf

    inputs, labels = mask_tokens_where(ids, rng, vocab_size, rate)
    return tf.constant(inputs), tf.constant(labels)  # tensors are fine too


@pytest.mark.parametrize(
    "answer", [ex.reference_mask_tokens, mask_tokens_where, mask_tokens_choice, mask_tokens_tensorflow]
)
def test_q1_right_answers_pass(answer):
    fb = ex.q1.evaluate(answer)
    assert fb.passed, str(fb)


def test_reference_mask_tokens_statistics_on_a_fresh_batch():
    ids = ex.make_probe_ids(seed=123)
    inputs, labels = ex.reference_mask_tokens(ids, np.random.default_rng(9), ex.PROBE_VOCAB)
    real = ids != PAD
    selected = labels != IGNORE
    assert not selected[~real].any() and np.array_equal(inputs[~selected], ids[~selected])
    assert abs(selected[real].mean() - 0.15) < 0.01
    assert abs((inputs[selected] == MASK).mean() - 0.8) < 0.03
    assert abs((inputs[selected] == ids[selected]).mean() - 0.1) < 0.02


# ---------------------------------------------------------------------------------------------
# Q1: each typical mistake gets its own message
# ---------------------------------------------------------------------------------------------


def masks_padding(ids, rng, vocab_size, rate=0.15):
    selected = rng.random(ids.shape) < rate
    r = rng.random(ids.shape)
    inputs = np.where(selected & (r < 0.8), MASK, ids)
    return inputs, np.where(selected, ids, IGNORE)


def all_mask(ids, rng, vocab_size, rate=0.15):
    selected = (rng.random(ids.shape) < rate) & (ids != PAD)
    return np.where(selected, MASK, ids), np.where(selected, ids, IGNORE)


def rule_on_every_token(ids, rng, vocab_size, rate=0.15):
    selected = (rng.random(ids.shape) < rate) & (ids != PAD)
    r = rng.random(ids.shape)
    inputs = np.where((r < 0.8) & (ids != PAD), MASK, ids)
    swap = (r >= 0.8) & (r < 0.9) & (ids != PAD)
    inputs = np.where(swap, rng.integers(N_SPECIAL, vocab_size, size=ids.shape), inputs)
    return inputs, np.where(selected, ids, IGNORE)


def labels_not_ignored(ids, rng, vocab_size, rate=0.15):
    inputs, _ = ex.reference_mask_tokens(ids, rng, vocab_size, rate)
    return inputs, ids.copy()


def random_includes_specials(ids, rng, vocab_size, rate=0.15):
    selected = (rng.random(ids.shape) < rate) & (ids != PAD)
    r = rng.random(ids.shape)
    inputs = np.where(selected & (r < 0.8), MASK, ids)
    inputs = np.where(selected & (r >= 0.8) & (r < 0.9), rng.integers(0, vocab_size, size=ids.shape), inputs)
    return inputs, np.where(selected, ids, IGNORE)


def labels_from_inputs(ids, rng, vocab_size, rate=0.15):
    inputs, labels = ex.reference_mask_tokens(ids, rng, vocab_size, rate)
    return inputs, np.where(labels != IGNORE, inputs, IGNORE)


def in_place(ids, rng, vocab_size, rate=0.15):
    selected = (rng.random(ids.shape) < rate) & (ids != PAD)
    inputs = ids
    inputs[selected] = MASK
    return inputs, np.where(selected, ids, IGNORE)


def global_random(ids, rng, vocab_size, rate=0.15):
    return ex.reference_mask_tokens(ids, np.random.default_rng(), vocab_size, rate)


def fixed_rate(ids, rng, vocab_size, rate=0.15):
    return ex.reference_mask_tokens(ids, rng, vocab_size, 0.15)


def wrong_rate(ids, rng, vocab_size, rate=0.15):
    return ex.reference_mask_tokens(ids, rng, vocab_size, 0.3)


def nested_draw(ids, rng, vocab_size, rate=0.15):
    selected = (rng.random(ids.shape) < rate) & (ids != PAD)
    to_mask = selected & (rng.random(ids.shape) < 0.8)
    swap = selected & ~to_mask & (rng.random(ids.shape) < 0.1)  # 10 % of the remaining 20 %: 2 %
    inputs = np.where(to_mask, MASK, ids)
    inputs = np.where(swap, rng.integers(N_SPECIAL, vocab_size, size=ids.shape), inputs)
    return inputs, np.where(selected, ids, IGNORE)


def returns_one_array(ids, rng, vocab_size, rate=0.15):
    return ex.reference_mask_tokens(ids, rng, vocab_size, rate)[0]


Q1_MISTAKES = {
    "masks padding": (masks_padding, "Padding is not text"),
    "all [MASK]": (all_mask, "All selected tokens became [MASK]"),
    "80/10/10 on every token": (rule_on_every_token, "applied 80/10/10 to every token"),
    "labels not ignored": (labels_not_ignored, "IGNORE everywhere else"),
    "random ids include specials": (random_includes_specials, "random *word*"),
    "labels from masked inputs": (labels_from_inputs, "took the labels from the masked inputs"),
    "changed ids in place": (in_place, "does not copy"),
    "np.random instead of rng": (global_random, "from the `rng` you are given"),
    "rate ignored": (fixed_rate, "Use the `rate` argument"),
    "rate 30 %": (wrong_rate, "probability `rate`"),
    "nested draw (2 % random)": (nested_draw, "gives 2 % instead of 10 %"),
    "one array": (returns_one_array, "return inputs, labels"),
}


@pytest.mark.parametrize("mistake", list(Q1_MISTAKES))
def test_q1_mistakes_are_named(mistake):
    answer, words = Q1_MISTAKES[mistake]
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect", str(fb)
    assert words in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# Q2: the masked loss
# ---------------------------------------------------------------------------------------------


def mlm_loss_numpy(labels, logits):
    keep = labels != IGNORE
    z = logits[keep]
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    return -log_p[np.arange(len(z)), labels[keep]].mean()


def mlm_loss_keras(labels, logits):
    keep = labels != IGNORE
    return keras.ops.mean(
        keras.losses.sparse_categorical_crossentropy(labels[keep], logits[keep], from_logits=True)
    )


def mlm_loss_ignore_class(labels, logits):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
    return loss(labels, logits)


def mlm_loss_weights(labels, logits):
    import tensorflow as tf

    keep = tf.cast(labels != IGNORE, tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), logits)
    return tf.reduce_sum(ce * keep) / tf.reduce_sum(keep)


@pytest.mark.parametrize("answer", [mlm_loss_numpy, mlm_loss_keras, mlm_loss_ignore_class, mlm_loss_weights])
def test_q2_right_answers_pass(answer):
    fb = ex.q2.evaluate(answer)
    assert fb.passed, str(fb)


def test_reference_mlm_loss_matches_keras():
    labels, logits = ex._loss_probe(seed=8)
    want = float(mlm_loss_ignore_class(labels, logits))
    assert ex.reference_mlm_loss(labels, logits) == pytest.approx(want, rel=1e-5)


def _ce(labels, logits):
    log_p = logits - logits.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    return -np.take_along_axis(log_p, np.maximum(labels, 0)[..., None], -1)[..., 0]


Q2_MISTAKES = {
    "divided by all positions": (
        lambda labels, logits: (_ce(labels, logits) * (labels != IGNORE)).sum() / labels.size,
        "divided by the number of *all* positions",
    ),
    "every position, label 0": (
        lambda labels, logits: _ce(labels, logits).mean(),
        "averaged over every position",
    ),
    "sum": (lambda labels, logits: (_ce(labels, logits) * (labels != IGNORE)).sum(), "summed instead"),
    "no softmax": (
        lambda labels, logits: (
            -np.log(
                np.take_along_axis(np.exp(logits), np.maximum(labels, 0)[..., None], -1)[..., 0][
                    labels != IGNORE
                ]
            ).mean()
        ),
        "not probabilities",
    ),
}


@pytest.mark.parametrize("mistake", list(Q2_MISTAKES))
def test_q2_mistakes_are_named(mistake):
    answer, words = Q2_MISTAKES[mistake]
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and words in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# Q3: the classifier on the pretrained encoder
# ---------------------------------------------------------------------------------------------


def classifier_functional(encoder, num_classes):
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(ids))
    return keras.Model(ids, keras.layers.Dense(num_classes)(pooled))


def classifier_explicit_mask(encoder, num_classes):
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    h = encoder(ids)
    pooled = keras.layers.GlobalAveragePooling1D()(h, mask=keras.ops.not_equal(ids, 0))
    h = keras.layers.Dropout(0.1)(pooled)
    return keras.Model(ids, keras.layers.Dense(num_classes)(h))


def classifier_sequential(encoder, num_classes):
    return keras.Sequential([encoder, keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(num_classes)])


def classifier_float32_head(encoder, num_classes):
    # the lab's model answer: float32 logits at every precision
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(ids))
    return keras.Model(ids, keras.layers.Dense(num_classes, dtype="float32")(pooled))


Q3_RIGHT = [classifier_functional, classifier_explicit_mask, classifier_sequential, classifier_float32_head]


@pytest.mark.slow
@pytest.mark.parametrize("answer", Q3_RIGHT)
def test_q3_right_answers_pass(answer):
    fb = ex.q3.evaluate(answer)
    assert fb.passed, str(fb)


class _PlainMean(keras.layers.Layer):
    def call(self, x, mask=None):  # takes the mask, and ignores it: padding counts in the mean
        return keras.ops.mean(x, axis=1)

    def compute_mask(self, x, mask=None):
        return None


def classifier_new_encoder(encoder, num_classes):
    return classifier_functional(ex._probe_encoder(), num_classes)


def classifier_padding_in_mean(encoder, num_classes):
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    pooled = _PlainMean()(encoder(ids))
    return keras.Model(ids, keras.layers.Dense(num_classes)(pooled))


def classifier_softmax(encoder, num_classes):
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(ids))
    return keras.Model(ids, keras.layers.Dense(num_classes, activation="softmax")(pooled))


def classifier_wrong_classes(encoder, num_classes):
    return classifier_functional(encoder, 3)


Q3_MISTAKES = {
    "a new encoder": (classifier_new_encoder, "throw the pretraining away"),
    "padding in the mean": (classifier_padding_in_mean, "padding included"),
    "softmax": (classifier_softmax, "no softmax"),
    "wrong number of classes": (classifier_wrong_classes, "(6, 5)"),
    "not a model": (lambda encoder, num_classes: encoder.layers, "keras.Model"),
}


@pytest.mark.parametrize("mistake", list(Q3_MISTAKES))
def test_q3_mistakes_are_named(mistake):
    answer, words = Q3_MISTAKES[mistake]
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and words in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# Not done yet, and the learner's own exceptions
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_learner_exception_is_reported_with_their_line():
    def mask_tokens_typo(ids, rng, vocab_size, rate=0.15):
        return ids, lables  # noqa: F821

    fb = ex.q1.evaluate(mask_tokens_typo)
    assert fb.status == "error" and "NameError" in fb.message and "lables" in fb.message
    assert "Traceback" not in str(fb) and "lab07.py" not in str(fb)


# ---------------------------------------------------------------------------------------------
# Under mixed precision: a learner on a GPU (float16) or a TPU (bfloat16) writes the same code
# ---------------------------------------------------------------------------------------------


def test_q3_probe_encoder_computes_at_the_active_precision(mixed_policy):
    assert ex._probe_encoder().layers[-1].compute_dtype == mixed_policy.removeprefix("mixed_")


@pytest.mark.parametrize("answer", Q3_RIGHT)
def test_q3_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    fb = ex.q3.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize("mistake", ["padding in the mean", "softmax", "a new encoder"])
def test_q3_mistakes_are_named_under_mixed_precision(mixed_policy, mistake):
    answer, words = Q3_MISTAKES[mistake]
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and words in str(fb), str(fb)


@pytest.mark.parametrize("answer", [mlm_loss_keras, mlm_loss_ignore_class])
def test_q2_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    fb = ex.q2.evaluate(answer)
    assert fb.passed, str(fb)


def test_q2_mistake_is_named_under_mixed_precision(mixed_policy):
    answer, words = Q2_MISTAKES["every position, label 0"]
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and words in str(fb), str(fb)
