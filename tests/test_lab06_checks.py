"""Lab 06's checks: right answers written in different styles pass, each typical mistake is named by its
own message, unfinished answers are "not done yet"."""

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils.checks import lab06 as ex  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Right answers, written differently
# ---------------------------------------------------------------------------------------------


def attention_numpy(q, k, v, mask=None, *, scale=None, fill=-1e9, axis=-1, where="before"):
    """The right attention (with the defaults) and, through the keywords, the usual mistakes."""
    d_k = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2)
    if scale == "none":
        pass
    elif scale == "d_k":
        scores = scores / d_k
    elif scale == "d_v":
        scores = scores / np.sqrt(v.shape[-1])
    else:
        scores = scores / np.sqrt(d_k)
    if mask is not None and where == "before":
        scores = np.where(mask, scores, fill)
    if mask is not None and where == "multiply":
        scores = scores * mask
    if mask is not None and where == "inverted":
        scores = np.where(mask, -1e9, scores)
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    weights = e / e.sum(axis=axis, keepdims=True)
    if mask is not None and where == "after":
        weights = weights * mask
    return weights @ v, weights


def attention_keras(q, k, v, mask=None):
    scores = keras.ops.matmul(q, keras.ops.transpose(k, (0, 2, 1))) / keras.ops.sqrt(float(q.shape[-1]))
    if mask is not None:
        scores = keras.ops.where(mask, scores, float("-inf"))
    weights = keras.ops.softmax(scores, axis=-1)
    return keras.ops.matmul(weights, v), weights


def attention_additive_mask(q, k, v, mask=None):
    scores = np.einsum("bqd,bkd->bqk", q, k) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores + (1.0 - np.asarray(mask, dtype="float32")) * -1e9
    weights = tf.nn.softmax(scores, axis=-1).numpy()
    return np.einsum("bqk,bkd->bqd", weights, v), weights


def attention_renormalised_after(q, k, v, mask=None):
    """Zeroing after the softmax *and renormalising* is the same as masking the scores."""
    out, weights = attention_numpy(q, k, v)
    if mask is not None:
        weights = weights * mask
        weights = weights / weights.sum(-1, keepdims=True)
    return weights @ v, weights


def padding_mask(token_ids):
    return (token_ids != 0)[:, None, :]


def padding_mask_expand_dims(token_ids):
    return np.expand_dims(np.not_equal(token_ids, 0).astype("int32"), 1)  # 0/1 numbers are accepted


def causal_mask(length):
    return np.tril(np.ones((length, length), dtype=bool))


def causal_mask_loops(length):
    return np.array([[j <= i for j in range(length)] for i in range(length)])


def decoder_mask(token_ids):
    return padding_mask(token_ids) & causal_mask(token_ids.shape[1])


def decoder_mask_tf(token_ids):
    return tf.logical_and(
        tf.constant(padding_mask(token_ids)), tf.linalg.band_part(tf.ones((6, 6)), -1, 0) > 0
    )


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, attention_numpy),
        (ex.q1, lambda q, k, v, mask=None: attention_numpy(q, k, v, mask, fill=-np.inf)),
        (ex.q1, attention_keras),
        (ex.q1, attention_additive_mask),
        (ex.q1, attention_renormalised_after),
        (ex.q2, padding_mask),
        (ex.q2, padding_mask_expand_dims),
        (ex.q2, lambda ids: tf.constant(ids != 0)[:, tf.newaxis, :]),
        (ex.q3, causal_mask),
        (ex.q3, causal_mask_loops),
        (ex.q4, decoder_mask),
        (ex.q4, decoder_mask_tf),
    ],
)
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_q4_is_not_done_while_q2_is_not():
    def decoder_mask_calling_unfinished(token_ids):
        return _not_implemented(token_ids) & causal_mask(token_ids.shape[1])

    assert ex.q4.evaluate(decoder_mask_calling_unfinished).status == "not_done"


def _cases(mistakes):
    return [pytest.param(answer, phrase, id=name) for name, (answer, phrase) in mistakes.items()]


# ---------------------------------------------------------------------------------------------
# q1: each mistake is named
# ---------------------------------------------------------------------------------------------


def _attention(**mistake):
    return lambda q, k, v, mask=None: attention_numpy(q, k, v, mask, **mistake)


Q1_MISTAKES = {
    "no sqrt(d_k)": (_attention(scale="none"), "forgot to divide the scores by √d_k"),
    "divides by d_k": (_attention(scale="d_k"), "by d_k instead of √d_k"),
    "sqrt(d_v)": (_attention(scale="d_v"), "*values'* size"),
    "softmax over the queries": (_attention(axis=-2), "wrong axis (the queries)"),
    "softmax over the queries, −∞": (_attention(axis=-2, fill=-np.inf), "wrong axis (the queries)"),
    "masked with 0": (_attention(fill=0.0), "set the hidden scores to 0"),
    "masked by multiplying the scores": (_attention(where="multiply"), "e⁰ = 1"),
    "mask after the softmax": (_attention(where="after"), "after the softmax"),
    "mask the wrong way round": (_attention(where="inverted"), "the wrong way round"),
    "mask ignored": (_attention(where="never"), "ignores `mask`"),
}


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q1_MISTAKES))
def test_q1_mistakes(answer, phrase):
    with np.errstate(all="ignore"):  # the −∞ mistakes make NaN on purpose
        fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)
    assert "Traceback" not in str(fb)


def test_q1_mistakes_get_different_hints():
    with np.errstate(all="ignore"):
        hints = [ex.q1.evaluate(answer).hint for answer, _ in Q1_MISTAKES.values()]
    assert len(set(hints)) == len(hints) - 2  # two ways each of masking with 0 and of the softmax axis
    assert ex.q1.hints[0] not in hints


def test_q1_wrong_returns_are_explained():
    def weights_first(q, k, v, mask=None):
        out, w = attention_numpy(q, k, v, mask)
        return w, out

    fb = ex.q1.evaluate(weights_first)
    assert fb.status == "incorrect" and "output first" in fb.hint
    fb = ex.q1.evaluate(lambda q, k, v, mask=None: attention_numpy(q, k, v, mask)[0])
    assert fb.status == "incorrect" and "Return both" in fb.hint
    fb = ex.q1.evaluate(
        lambda q, k, v, mask=None: (attention_numpy(q, k, v, mask)[1] @ k, attention_numpy(q, k, v, mask)[1])
    )
    assert fb.status == "incorrect" and "weights @ v" in fb.hint

    def k_dot_t(q, k, v, mask=None):  # k.T also moves the batch axis
        return attention_numpy(q, np.swapaxes(k, 0, 0), v, mask)[0], q @ k.T

    fb = ex.q1.evaluate(k_dot_t)
    assert fb.status in ("incorrect", "error")


def test_a_learners_nan_is_explained():
    def nan_softmax(q, k, v, mask=None):
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        e = np.exp(scores - scores.max())  # fine... but then an overflow-free bug:
        weights = e / (e.sum(-1, keepdims=True) * 0)
        return weights @ v, weights

    with np.errstate(all="ignore"):
        fb = ex.q1.evaluate(nan_softmax)
    assert fb.status == "incorrect" and "finite" in str(fb)


def test_the_probe_separates_every_mistake():
    q, k, v = ex.probe()
    for mask in (None, np.array([[[True] * 4 + [False] * 2], [[True] * 5 + [False]]])):
        variants = ex.attention_variants(q, k, v, mask)
        _, right = variants.pop("right")
        for name, (_, weights) in variants.items():
            assert np.abs(weights - right).max() > 100 * ex.TOL, name


# ---------------------------------------------------------------------------------------------
# q2 and q3: each mistake is named
# ---------------------------------------------------------------------------------------------

Q2_MISTAKES = {
    "pads True": (lambda ids: (ids == 0)[:, None, :], "wrong way round"),
    "masks the queries": (lambda ids: (ids != 0)[:, :, None], "padded *queries*"),
    "queries, pads True": (lambda ids: (ids == 0)[:, :, None], "laid out along the queries"),
    "queries and keys": (
        lambda ids: (ids != 0)[:, :, None] & (ids != 0)[:, None, :],
        "as well as padded keys",
    ),
    "no query axis": (lambda ids: ids != 0, "line the batch up with the queries"),
    "no query axis, pads True": (lambda ids: ids == 0, "no query axis"),
    "pad id 1": (lambda ids: (ids != 1)[:, None, :], "True where the token id is not 0"),
    "the ids": (lambda ids: ids[:, None, :], "booleans"),
}


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q2_MISTAKES))
def test_q2_mistakes(answer, phrase):
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


def _ones(t):
    return np.ones((t, t), dtype=bool)


Q3_MISTAKES = {
    "diagonal masked": (lambda t: np.tril(_ones(t), k=-1), "also hid the diagonal"),
    "one future position": (lambda t: np.tril(_ones(t), k=1), "one step into the future"),
    "upper triangle": (lambda t: np.triu(_ones(t)), "sees the *future*"),
    "True above the diagonal": (lambda t: ~np.tril(_ones(t)), "wrong way round"),
    "True on and above the diagonal": (lambda t: ~np.tril(_ones(t), k=-1), "sees the *future*"),
    "no diagonal in a batch": (lambda t: np.tril(_ones(t))[None], "shape"),
    "all ones": (lambda t: _ones(t), "j ≤ i"),
}


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q3_MISTAKES))
def test_q3_mistakes(answer, phrase):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


Q4_MISTAKES = {
    "or": (lambda ids: padding_mask(ids) | causal_mask(ids.shape[1]), "with *or*"),
    "padding only": (padding_mask, "padding part only"),
    "causal only": (lambda ids: causal_mask(ids.shape[1]), "causal part only"),
    "a wrong causal mask inside": (
        lambda ids: padding_mask(ids) & np.tril(_ones(ids.shape[1]), k=-1),
        "Make Q2 and Q3 pass first",
    ),
    "a shape that does not broadcast": (lambda ids: (ids != 0)[:, :, None, None] & causal_mask(4), "shape"),
}


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q4_MISTAKES))
def test_q4_mistakes(answer, phrase):
    fb = ex.q4.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# A learner's own error, and the final heatmap
# ---------------------------------------------------------------------------------------------


def test_a_learners_typo_is_reported_with_their_line():
    def attention_typo(q, k, v, mask=None):
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d_kk)  # noqa: F821
        return scores @ v, scores

    fb = ex.q1.evaluate(attention_typo)
    assert fb.status == "error" and "NameError" in fb.message and "d_kk" in fb.message
    assert "Traceback" not in str(fb)


def test_show_attention_waits_for_the_exercises_then_draws():
    waiting = ex.show_attention(_not_implemented, decoder_mask)
    assert getattr(waiting, "status", None) == "not_done"
    wrong = ex.show_attention(attention_numpy, Q4_MISTAKES["or"][0])
    assert getattr(wrong, "status", None) == "incorrect"
    fig = ex.show_attention(attention_numpy, decoder_mask, example=0)
    weights = np.asarray(fig.layout.meta["weights"])
    assert weights.shape == (6, 6)
    np.testing.assert_allclose(weights.sum(-1), 1, atol=1e-6)
    assert np.triu(weights, 1).max() == 0 and weights[:, 3:].max() == 0  # no future, no [PAD] keys
    assert list(fig.data[0].x)[3] == "3·[PAD]"


# ---------------------------------------------------------------------------------------------
# Under mixed precision (a T4 GPU: float16; a TPU: bfloat16), answers that use Keras layers compute
# at that precision: right ones still pass, mistakes are still named
# ---------------------------------------------------------------------------------------------


def attention_layers(q, k, v, mask=None, *, scale=True, axis=-1, use_mask=True):
    """Attention from Keras layers (Dot, Softmax), which compute at the policy's precision."""
    scores = keras.layers.Dot(axes=2)([q, k])  # (batch, T_q, T_k)
    if scale:
        scores = scores / float(np.sqrt(q.shape[-1]))
    weights = keras.layers.Softmax(axis=axis)(scores, mask=mask if use_mask else None)
    return keras.layers.Dot(axes=(2, 1))([weights, v]), weights


def test_a_keras_layers_answer_passes_in_float32():
    fb = ex.q1.evaluate(attention_layers)
    assert fb.passed, str(fb)


@pytest.mark.parametrize("answer", [attention_layers, attention_numpy, attention_keras])
def test_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    fb = ex.q1.evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"
    assert not isinstance(ex.show_attention(answer, decoder_mask), type(fb))  # the heatmap, not feedback


@pytest.mark.parametrize(
    ("mistake", "phrase"),
    [
        ({"scale": False}, "forgot to divide the scores by √d_k"),
        ({"axis": -2}, "wrong axis (the queries)"),
        ({"use_mask": False}, "ignores `mask`"),
    ],
)
def test_mistakes_are_named_under_mixed_precision(mixed_policy, mistake, phrase):
    fb = ex.q1.evaluate(lambda q, k, v, mask=None: attention_layers(q, k, v, mask, **mistake))
    assert fb.status == "incorrect" and phrase in str(fb), f"{mixed_policy}: {fb}"


def test_the_probe_separates_every_mistake_at_bfloat16s_tolerance():
    loosest = ex._tolerance(np.zeros(1, dtype="float16"))
    bf16 = {"rtol": 6e-2, "atol": 6e-2}
    assert loosest["atol"] <= bf16["atol"]
    q, k, v = ex.probe()
    for mask in (None, np.array([[[True] * 4 + [False] * 2], [[True] * 5 + [False]]])):
        variants = ex.attention_variants(q, k, v, mask)
        _, right = variants.pop("right")
        for name, (_, weights) in variants.items():
            assert ex._distance(weights, right, bf16) > 1.5, name
