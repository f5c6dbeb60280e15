"""The checks of Lab 07 (masked language model): right answers in any form pass, each known mistake is named
by its own hint, unfinished answers are "not done yet", and the same holds under mixed precision."""

import keras
import numpy as np
import pytest

from utils.checks import lab07 as ex

PAD, MASK, N_SPECIAL, IGNORE = ex.PAD_ID, ex.MASK_ID, ex.N_SPECIAL, ex.IGNORE

# ---------------------------------------------------------------------------------------------
# Q1: whole-word masking, right answers written the ways learners write them
# ---------------------------------------------------------------------------------------------


def _word_start(starts):
    return np.maximum.accumulate(np.where(starts, np.arange(starts.shape[1]), 0), axis=1)


def wwm_where(ids, starts, rng, vocab_size, rate=0.15, *, spread=True, per_piece=False, any_piece=False):
    """The right rule with the defaults; the keywords make the selection mistakes."""
    draw = rng.random(ids.shape) < rate
    if per_piece:
        selected = draw & (ids != PAD)
    elif any_piece:  # a word is chosen if any of its pieces drew True
        word = np.cumsum(starts, axis=1)
        selected = np.zeros_like(starts)
        for row in range(len(ids)):
            hit = np.unique(word[row][draw[row] & (ids[row] != PAD)])
            selected[row] = np.isin(word[row], hit) & (ids[row] != PAD)
    else:
        chosen = starts & draw
        selected = np.take_along_axis(chosen, _word_start(starts), 1) if spread else chosen
        selected = selected & (ids != PAD)
    r = rng.random(ids.shape)
    inputs = np.where(selected & (r < 0.8), MASK, ids)
    inputs = np.where(
        selected & (r >= 0.8) & (r < 0.9), rng.integers(N_SPECIAL, vocab_size, size=ids.shape), inputs
    )
    return inputs, np.where(selected, ids, IGNORE)


def wwm_loops(ids, starts, rng, vocab_size, rate=0.15):
    inputs, labels = ids.copy(), np.full_like(ids, IGNORE)
    for row in range(ids.shape[0]):
        selecting = False
        for t in range(ids.shape[1]):
            if ids[row, t] == PAD:
                selecting = False
                continue
            if starts[row, t]:
                selecting = rng.random() < rate
            if selecting:
                labels[row, t] = ids[row, t]
                r = rng.random()
                if r < 0.8:
                    inputs[row, t] = MASK
                elif r < 0.9:
                    inputs[row, t] = rng.integers(N_SPECIAL, vocab_size)
    return inputs, labels


def wwm_per_word_action(ids, starts, rng, vocab_size, rate=0.15):
    """One 80/10/10 decision per word instead of per piece is fine too."""
    word_start = _word_start(starts)
    chosen = starts & (rng.random(ids.shape) < rate)
    selected = np.take_along_axis(chosen, word_start, 1) & (ids != PAD)
    action = np.take_along_axis(rng.random(ids.shape), word_start, 1)
    inputs = ids.copy()
    inputs[selected & (action < 0.8)] = MASK
    swap = selected & (action >= 0.8) & (action < 0.9)
    inputs[swap] = rng.integers(N_SPECIAL, vocab_size, size=int(swap.sum()))
    return inputs, np.where(selected, ids, IGNORE)


def wwm_tensorflow(ids, starts, rng, vocab_size, rate=0.15):
    import tensorflow as tf

    inputs, labels = wwm_where(ids, starts, rng, vocab_size, rate)
    return tf.constant(inputs), tf.constant(labels)  # tensors are fine too


@pytest.mark.parametrize(
    "answer",
    [wwm_where, pytest.param(wwm_loops, marks=pytest.mark.slow), wwm_per_word_action, wwm_tensorflow],
)
def test_q1_right_answers_pass(answer):
    fb = ex.q1.evaluate(answer)
    assert fb.passed, str(fb)


def test_the_probe_has_words_of_several_pieces_and_padding():
    ids, starts = ex.make_probe()
    real = ids != PAD
    assert not starts[~real].any() and starts[:, 0].all()
    assert 1.5 < real.sum() / starts.sum() < 2.0 and 0.3 < (~real).mean() < 0.6


# ---------------------------------------------------------------------------------------------
# Q1: each known mistake earns its own hint
# ---------------------------------------------------------------------------------------------


def _with(fn, **kw):
    return lambda ids, starts, rng, vocab_size, rate=0.15: fn(ids, starts, rng, vocab_size, rate, **kw)


def in_place(ids, starts, rng, vocab_size, rate=0.15):
    inputs, labels = wwm_where(ids, starts, rng, vocab_size, rate)
    ids[...] = inputs
    return ids, labels


def masks_padding(ids, starts, rng, vocab_size, rate=0.15):
    inputs, labels = wwm_where(ids, starts, rng, vocab_size, rate)
    pad = (ids == PAD) & (rng.random(ids.shape) < rate)
    return np.where(pad, MASK, inputs), np.where(pad, ids, labels)


def every_token(ids, starts, rng, vocab_size, rate=0.15):
    inputs, labels = wwm_where(ids, starts, rng, vocab_size, rate)
    r = rng.random(ids.shape)
    return np.where((ids != PAD) & (r < 0.8), MASK, inputs), labels


def specials(ids, starts, rng, vocab_size, rate=0.15):
    inputs, labels = wwm_where(ids, starts, rng, vocab_size, rate)
    swap = (labels != IGNORE) & (inputs != MASK) & (inputs != ids)
    return np.where(swap, rng.integers(0, vocab_size, size=ids.shape), inputs), labels


def nested_draw(ids, starts, rng, vocab_size, rate=0.15):
    _, labels = wwm_where(ids, starts, rng, vocab_size, rate)
    selected = labels != IGNORE
    to_mask = selected & (rng.random(ids.shape) < 0.8)
    swap = selected & ~to_mask & (rng.random(ids.shape) < 0.1)  # 10 % of the other 20 %: 2 %
    inputs = np.where(to_mask, MASK, ids)
    return np.where(swap, rng.integers(N_SPECIAL, vocab_size, size=ids.shape), inputs), labels


Q1_CASES = {
    "ids changed in place": in_place,
    "padding selected": masks_padding,
    "labels not IGNORE": lambda ids, starts, rng, v, rate=0.15: (
        wwm_where(ids, starts, rng, v, rate)[0],
        ids.copy(),
    ),
    "labels taken from the masked inputs": lambda *a, **k: (
        lambda i, lab: (i, np.where(lab != IGNORE, i, IGNORE))
    )(*wwm_where(*a, **k)),
    "labels not the original ids": lambda *a, **k: (
        lambda i, lab: (i, np.where(lab != IGNORE, lab + 1, IGNORE))
    )(*wwm_where(*a, **k)),
    "80/10/10 on every token": every_token,
    "pieces selected on their own": _with(wwm_where, per_piece=True),
    "only the first piece of each word": _with(wwm_where, spread=False),
    "a word chosen when any of its pieces is": _with(wwm_where, any_piece=True),
    "share of words selected": lambda ids, starts, rng, v, rate=0.15: wwm_where(ids, starts, rng, v, 0.1),
    "all [MASK]": lambda *a, **k: (lambda i, lab: (np.where(lab != IGNORE, MASK, i), lab))(
        *wwm_where(*a, **k)
    ),
    "special ids drawn": specials,
    "shares of 80/10/10": nested_draw,
    "rng ignored": lambda ids, starts, rng, v, rate=0.15: wwm_where(
        ids, starts, np.random.default_rng(), v, rate
    ),
}


@pytest.mark.parametrize("name", list(Q1_CASES))
def test_q1_mistakes_are_named(name):
    fb = ex.q1.evaluate(Q1_CASES[name])
    assert fb.status == "incorrect" and name in fb.got, str(fb)
    assert fb.hint == next(m.hint for m in ex.Q1_MISTAKES if m.name == name)


def test_q1_rate_argument_ignored_is_named():
    fb = ex.q1.evaluate(lambda ids, starts, rng, v, rate=0.15: wwm_where(ids, starts, rng, v))
    assert fb.status == "incorrect" and fb.hint == ex.RATE.hint, str(fb)


def test_every_q1_mistake_is_tested():
    assert {m.name for m in ex.Q1_MISTAKES} == set(Q1_CASES)


# ---------------------------------------------------------------------------------------------
# Q2: the tied loss at the selected positions
# ---------------------------------------------------------------------------------------------


def loss_numpy(hidden, labels, embeddings, bias):
    keep = labels != IGNORE
    z = hidden[keep] @ embeddings.T + bias
    z = z - z.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -log_p[np.arange(len(z)), labels[keep]].mean()


def loss_tf(hidden, labels, embeddings, bias):
    import tensorflow as tf

    keep = tf.not_equal(labels, IGNORE)
    logits = tf.matmul(tf.boolean_mask(hidden, keep), embeddings, transpose_b=True) + bias
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(tf.boolean_mask(labels, keep), logits)
    )


def loss_keras_ignore_class(hidden, labels, embeddings, bias):
    """Logits everywhere, the loss skipping IGNORE: slower, but the same number."""
    logits = keras.ops.einsum("btd,vd->btv", hidden, embeddings) + bias
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)(labels, logits)


@pytest.mark.parametrize("answer", [loss_numpy, loss_tf, loss_keras_ignore_class])
def test_q2_right_answers_pass(answer):
    fb = ex.q2.evaluate(answer)
    assert fb.passed, str(fb)


def _logits(hidden, embeddings, bias):
    return hidden @ embeddings.T + bias


def _picked_ce(hidden, labels, embeddings, bias):
    z = _logits(hidden, embeddings, bias)
    z = z - z.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(log_p, np.maximum(labels, 0)[..., None], -1)[..., 0], labels != IGNORE


def _over_all_tokens(h, y, e, b):
    ce, keep = _picked_ce(h, y, e, b)
    return (ce * keep).sum() / keep.size


Q2_CASES = {
    "averaged over all tokens": _over_all_tokens,
    "every position counted": lambda h, y, e, b: _picked_ce(h, y, e, b)[0].mean(),
    "summed, not averaged": lambda h, y, e, b: (lambda ce, keep: (ce * keep).sum())(*_picked_ce(h, y, e, b)),
    "no softmax": lambda h, y, e, b: (
        -np.log(np.exp(_logits(h[y != IGNORE], e, b))[np.arange((y != IGNORE).sum()), y[y != IGNORE]]).mean()
    ),
    "1 − p": lambda h, y, e, b: (1 - np.exp(-_picked_ce(h, y, e, b)[0]))[y != IGNORE].mean(),
    "output bias left out": lambda h, y, e, b: loss_numpy(h, y, e, 0 * b),
    "softmax over the positions": lambda h, y, e, b: (
        -np.log(
            keras.ops.softmax(_logits(h[y != IGNORE], e, b), axis=0).numpy()[
                np.arange((y != IGNORE).sum()), y[y != IGNORE]
            ]
        ).mean()
    ),
}


@pytest.mark.parametrize("name", list(Q2_CASES))
def test_q2_mistakes_are_named(name):
    fb = ex.q2.evaluate(Q2_CASES[name])
    assert fb.status == "incorrect" and name in fb.got, str(fb)
    assert fb.hint == next(m.hint for m in ex.Q2_MISTAKES if m.name == name)


def test_every_q2_mistake_is_tested():
    assert {m.name for m in ex.Q2_MISTAKES} == set(Q2_CASES)


def test_q2_wants_one_number():
    fb = ex.q2.evaluate(lambda h, y, e, b: np.ones(3))
    assert fb.status == "incorrect" and "one number" in str(fb)


# ---------------------------------------------------------------------------------------------
# Q3: the classifier on the pretrained encoder
# ---------------------------------------------------------------------------------------------


def classifier_functional(encoder, num_classes):
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(ids))
    return keras.Model(ids, keras.layers.Dense(num_classes)(pooled))


def classifier_explicit_mask(encoder, num_classes):
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(ids), mask=keras.ops.not_equal(ids, 0))
    return keras.Model(ids, keras.layers.Dense(num_classes)(keras.layers.Dropout(0.1)(pooled)))


def classifier_sequential(encoder, num_classes):
    return keras.Sequential([encoder, keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(num_classes)])


def classifier_float32_head(encoder, num_classes):
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


def classifier_padding_in_mean(encoder, num_classes):
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    return keras.Model(ids, keras.layers.Dense(num_classes)(_PlainMean()(encoder(ids))))


def classifier_softmax(encoder, num_classes):
    ids = keras.Input(encoder.input_shape[1:], dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(ids))
    return keras.Model(ids, keras.layers.Dense(num_classes, activation="softmax")(pooled))


Q3_CASES = {
    "a new encoder": lambda encoder, n: classifier_functional(ex._probe_encoder(), n),
    "padding in the mean": classifier_padding_in_mean,
    "a softmax on the logits": classifier_softmax,
    "the wrong head": lambda encoder, n: classifier_functional(encoder, 3),
    "not a keras.Model": lambda encoder, n: encoder.layers,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(Q3_CASES))
def test_q3_mistakes_are_named(name):
    fb = ex.q3.evaluate(Q3_CASES[name])
    assert fb.status == "incorrect" and fb.hint == next(m.hint for m in ex.Q3_MISTAKES if m.name == name), (
        str(fb)
    )


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
    def mask_whole_words(ids, starts, rng, vocab_size, rate=0.15):
        return ids, lables  # noqa: F821

    fb = ex.q1.evaluate(mask_whole_words)
    assert fb.status == "error" and "NameError" in fb.message and "lables" in fb.message
    assert "Traceback" not in str(fb) and "lab07.py" not in str(fb)


# ---------------------------------------------------------------------------------------------
# Under mixed precision: a learner on a GPU (float16) or a TPU (bfloat16) writes the same code
# ---------------------------------------------------------------------------------------------


def loss_keras_layer(hidden, labels, embeddings, bias):
    """A Dense layer with the tied weights copied in computes at the policy's precision."""
    keep = labels != IGNORE
    dense = keras.layers.Dense(len(bias))
    dense.build((None, hidden.shape[-1]))
    dense.set_weights([embeddings.T, bias])
    return keras.ops.mean(
        keras.losses.sparse_categorical_crossentropy(labels[keep], dense(hidden[keep]), from_logits=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("answer", Q3_RIGHT)
def test_q3_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    fb = ex.q3.evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["padding in the mean", "a softmax on the logits", "a new encoder"])
def test_q3_mistakes_are_named_under_mixed_precision(mixed_policy, name):
    fb = ex.q3.evaluate(Q3_CASES[name])
    assert fb.status == "incorrect" and fb.hint == next(m.hint for m in ex.Q3_MISTAKES if m.name == name), (
        str(fb)
    )


@pytest.mark.parametrize("answer", [loss_keras_layer, loss_numpy])
def test_q2_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    fb = ex.q2.evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


@pytest.mark.parametrize("name", ["averaged over all tokens", "output bias left out", "summed, not averaged"])
def test_q2_mistakes_are_named_under_mixed_precision(mixed_policy, name):
    fb = ex.q2.evaluate(Q2_CASES[name])
    assert fb.status == "incorrect" and name in fb.got, f"{mixed_policy}: {fb}"
