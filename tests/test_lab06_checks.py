"""Lab 06's checks: right answers written in different styles pass, each known mistake is named by its own
hint, unfinished answers are "not done yet", and the same holds under mixed precision."""

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils.checks import lab06 as ex  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Right answers, written differently
# ---------------------------------------------------------------------------------------------


def attention_numpy(q, k, v, mask=None, bias=None):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    weights = e / e.sum(-1, keepdims=True)
    return weights @ v, weights


def attention_einsum_tf(q, k, v, mask=None, bias=None):
    scores = tf.einsum("...qd,...kd->...qk", q, k) / tf.sqrt(tf.cast(q.shape[-1], q.dtype))
    scores = scores if bias is None else scores + bias
    if mask is not None:
        scores = tf.where(tf.broadcast_to(mask, scores.shape), scores, float("-inf"))
    weights = tf.nn.softmax(scores, axis=-1)
    return tf.einsum("...qk,...kd->...qd", weights, v), weights


def attention_keras_layers(q, k, v, mask=None, bias=None):
    """Keras's Softmax layer computes at the policy's precision (bfloat16 on a TPU)."""
    scores = keras.ops.matmul(q, keras.ops.swapaxes(k, -1, -2)) / float(np.sqrt(q.shape[-1]))
    scores = scores if bias is None else scores + bias
    mask = None if mask is None else keras.ops.broadcast_to(mask, scores.shape)
    weights = keras.layers.Softmax(axis=-1)(scores, mask=mask)
    return keras.ops.matmul(keras.ops.cast(weights, "float32"), v), weights


def mha_numpy(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None):
    def split(x):
        b, t, d = x.shape
        return x.reshape(b, t, num_heads, d // num_heads).transpose(0, 2, 1, 3)

    mask = None if mask is None else np.asarray(mask)[:, None]
    heads, _ = attention_numpy(split(query @ w_q), split(context @ w_k), split(context @ w_v), mask)
    b, h, t, dh = heads.shape
    return heads.transpose(0, 2, 1, 3).reshape(b, t, h * dh) @ w_o


def mha_einsum(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None):
    d = w_q.shape[0]
    q, k, v = (
        np.einsum("btd,dhk->bhtk", x, w.reshape(d, num_heads, -1))
        for x, w in ((query, w_q), (context, w_k), (context, w_v))
    )
    heads, _ = attention_einsum_tf(q, k, v, None if mask is None else np.asarray(mask)[:, None])
    return np.einsum("bhtk,hkd->btd", np.asarray(heads), w_o.reshape(num_heads, -1, d))


def mha_keras_layer(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None):
    """keras.layers.MultiHeadAttention with the weights copied in: computes at the policy's precision."""
    d = w_q.shape[0]
    layer = keras.layers.MultiHeadAttention(num_heads, key_dim=d // num_heads, use_bias=False)
    layer.build(query.shape, context.shape)
    layer.set_weights(
        [w.reshape(d, num_heads, -1) for w in (w_q, w_k, w_v)] + [w_o.reshape(num_heads, -1, d)]
    )
    mask = None if mask is None else np.broadcast_to(mask, (len(query), query.shape[1], context.shape[1]))
    return layer(query, context, attention_mask=mask)


def prefix_numpy(token_ids, prefix_lengths):
    t = token_ids.shape[1]
    i, j = np.arange(t)[:, None], np.arange(t)[None, :]
    return ((j < np.asarray(prefix_lengths)[:, None, None]) | (j <= i)) & (token_ids != 0)[:, None, :]


def prefix_loops(token_ids, prefix_lengths):
    b, t = token_ids.shape
    out = np.zeros((b, t, t), dtype=int)  # 0/1 numbers are accepted
    for n in range(b):
        for i in range(t):
            for j in range(t):
                out[n, i, j] = int((j < prefix_lengths[n] or j <= i) and token_ids[n, j] != 0)
    return out


def prefix_tf(token_ids, prefix_lengths):
    t = token_ids.shape[1]
    causal = tf.linalg.band_part(tf.ones((t, t), tf.bool), -1, 0)
    prefix = tf.sequence_mask(prefix_lengths, t)[:, None, :]
    return tf.logical_and(tf.logical_or(prefix, causal[None]), tf.not_equal(token_ids, 0)[:, None, :])


def alibi_numpy(length, num_heads):
    slopes = 2.0 ** (-8.0 * np.arange(1, num_heads + 1) / num_heads)
    pos = np.arange(length)
    return -slopes[:, None, None] * np.abs(pos[:, None] - pos[None, :])


def alibi_ratio(length, num_heads):
    first = 2 ** (-8 / num_heads)
    slopes = [first ** (h + 1) for h in range(num_heads)]  # a geometric sequence with ratio = first term
    dist = keras.ops.abs(
        keras.ops.subtract(*keras.ops.meshgrid(keras.ops.arange(length), keras.ops.arange(length)))
    )
    return -keras.ops.convert_to_tensor(slopes)[:, None, None] * keras.ops.cast(dist, "float32")


RIGHT = {
    ex.q1: [attention_numpy, attention_einsum_tf, attention_keras_layers],
    ex.q2: [mha_numpy, mha_einsum, mha_keras_layer],
    ex.q3: [prefix_numpy, prefix_loops, prefix_tf],
    ex.q4: [alibi_numpy, alibi_ratio],
}
CASES = [(q, a) for q, answers in RIGHT.items() for a in answers]


@pytest.mark.parametrize(
    ("exercise", "answer"), CASES, ids=[f"{q.solution_id}-{a.__name__}" for q, a in CASES]
)
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


def test_the_reference_equals_keras_multi_head_attention():
    rng = np.random.default_rng(1)
    query, context = rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 6, 8))
    ws = [rng.normal(size=(8, 8)) / 3 for _ in range(4)]
    mask = rng.random((2, 4, 6)) < 0.7
    mask[..., 0] = True
    got = np.asarray(mha_keras_layer(query, context, *ws, 2, mask))
    np.testing.assert_allclose(got, ex.reference_mha(query, context, *ws, 2, mask), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Each known mistake, computed as a learner would write it, earns its own hint
# ---------------------------------------------------------------------------------------------


def _hint(mistakes, name):
    return next(m.hint for m in mistakes if m.name == name)


def attention_with(*, scale=True, axis=-1, fill=-1e9, mask_how="before", bias_how="after"):
    def attention(q, k, v, mask=None, bias=None):
        s = q @ np.swapaxes(k, -1, -2)
        if bias is not None and bias_how == "before":
            s = s + bias
        s = s / {True: np.sqrt(q.shape[-1]), False: 1.0, "d_k": q.shape[-1]}[scale]
        if bias is not None and bias_how in ("after", "minus"):
            s = s + bias if bias_how == "after" else s - bias
        if mask is not None and mask_how in ("before", "zero", "inverted"):
            keep = ~np.broadcast_to(mask, s.shape) if mask_how == "inverted" else mask
            s = np.where(keep, s, 0.0 if mask_how == "zero" else fill)
        e = np.exp(s - s.max(axis, keepdims=True))
        w = e / e.sum(axis, keepdims=True)
        w = w * mask if mask is not None and mask_how == "after" else w
        return w @ v, w

    return attention


Q1_CASES = {
    "no √d_k": attention_with(scale=False),
    "divided by d_k": attention_with(scale="d_k"),
    "softmax over the queries": attention_with(axis=-2),
    "hidden scores set to 0": attention_with(mask_how="zero"),
    "mask applied after the softmax": attention_with(mask_how="after"),
    "mask the wrong way round": attention_with(mask_how="inverted"),
    "mask ignored": attention_with(mask_how="ignored"),
    "bias scaled with the scores": attention_with(bias_how="before"),
    "bias subtracted": attention_with(bias_how="minus"),
    "bias ignored": attention_with(bias_how="ignored"),
}


def _mha(**kw):
    return lambda *a: ex.reference_mha(*a, **kw)


def mha_reshape_only(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None):
    b, tq, d = query.shape
    q = (query @ w_q).reshape(b, num_heads, tq, d // num_heads)  # no transpose
    k = (context @ w_k).reshape(b, num_heads, -1, d // num_heads)
    v = (context @ w_v).reshape(b, num_heads, -1, d // num_heads)
    heads, _ = attention_numpy(q, k, v, None if mask is None else mask[:, None])
    return heads.reshape(b, tq, d) @ w_o


def mha_no_projection(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None):
    return mha_numpy(query, context, w_q, w_k, w_v, np.eye(len(w_o)), num_heads, mask)


def mha_scaled_by_model_width(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None):
    d_head = w_q.shape[0] // num_heads
    return mha_numpy(query * np.sqrt(d_head / w_q.shape[0]), context, w_q, w_k, w_v, w_o, num_heads, mask)


Q2_CASES = {
    "heads split without moving the heads axis": mha_reshape_only,
    "heads split along the wrong axis": _mha(split="interleaved"),
    "heads put back without moving the axis back": _mha(merge="reshape only"),
    "no output projection": mha_no_projection,
    "scaled by √d_model": mha_scaled_by_model_width,
    "keys and values from the query": lambda q, c, *rest: mha_numpy(q, q, *rest[:5], None),
    "mask ignored": lambda *a: mha_numpy(*a[:7]),
    "one head": lambda *a: mha_numpy(*a[:6], 1, *a[7:]),
}
Q3_CASES = {
    "causal only": lambda ids, p: prefix_numpy(ids, 0 * p),
    "bidirectional everywhere": lambda ids, p: np.broadcast_to(
        (ids != 0)[:, None, :], (*ids.shape, ids.shape[1])
    ),
    "prefix one too long": lambda ids, p: prefix_numpy(ids, p + 1),
    "prefix one too short": lambda ids, p: prefix_numpy(ids, p - 1),
    "one prefix length for the whole batch": lambda ids, p: prefix_numpy(ids, np.full_like(p, p[0])),
    "padding ignored": lambda ids, p: prefix_numpy(np.ones_like(ids), p),
    "padded queries hidden too": lambda ids, p: prefix_numpy(ids, p) & (ids != 0)[:, :, None],
    "combined with or": lambda ids, p: ex._prefix(ids, p, combine="or"),
    "prefix along the queries": lambda ids, p: ex._prefix(ids, p, along="queries"),
}
Q4_CASES = {
    "sign flipped": lambda n, h: -alibi_numpy(n, h),
    "slopes start at 2⁰": lambda n, h: ex._alibi(n, h, first=0),
    "the 8 forgotten": lambda n, h: ex._alibi(n, h, eight=1.0),
    "slopes reversed": lambda n, h: alibi_numpy(n, h)[::-1],
    "no absolute value": lambda n, h: ex._alibi(n, h, distance="i-j"),
}
MISTAKES = [
    (ex.q1, ex.Q1_MISTAKES, Q1_CASES),
    (ex.q2, ex.Q2_MISTAKES, Q2_CASES),
    (ex.q3, ex.Q3_MISTAKES, Q3_CASES),
    (ex.q4, ex.Q4_MISTAKES, Q4_CASES),
]
MISTAKE_CASES = [(q, ms, name, fn) for q, ms, cases in MISTAKES for name, fn in cases.items()]


@pytest.mark.parametrize(
    ("exercise", "mistakes", "name", "answer"),
    MISTAKE_CASES,
    ids=[f"{c[0].solution_id}-{c[2]}" for c in MISTAKE_CASES],
)
def test_each_mistake_gets_its_own_hint(exercise, mistakes, name, answer):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == _hint(mistakes, name), str(fb)
    assert name in fb.got, str(fb)


def test_every_declared_mistake_is_tested():
    for _, mistakes, cases in MISTAKES:
        assert {m.name for m in mistakes} == set(cases)


def test_q4_axes_in_another_order_get_their_hint():
    fb = ex.q4.evaluate(lambda n, h: np.moveaxis(alibi_numpy(n, h), 0, -1))
    assert fb.status == "incorrect" and fb.hint == ex.ALIBI_AXES.hint, str(fb)


def test_q1_wrong_returns_are_explained():
    fb = ex.q1.evaluate(lambda q, k, v, mask=None, bias=None: attention_numpy(q, k, v, mask, bias)[1])
    assert fb.status == "incorrect" and "pair" in str(fb)
    fb = ex.q1.evaluate(lambda q, k, v, mask=None, bias=None: attention_numpy(q, k, v, mask, bias)[::-1])
    assert fb.status == "incorrect" and "shape" in str(fb)
    fb = ex.q1.evaluate(lambda q, k, v, mask=None, bias=None: (q @ k.T, None))
    assert fb.status in ("incorrect", "error") and "Traceback" not in str(fb)


# ---------------------------------------------------------------------------------------------
# Not done yet, and the learner's own exceptions
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_q2_is_not_done_while_q1_is_not():
    def mha(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None):
        return _not_implemented()  # the learner's attention, unfinished

    assert ex.q2.evaluate(mha).status == "not_done"


def test_a_learners_typo_is_reported_with_their_line():
    def prefix_lm_mask(token_ids, prefix_lengths):
        return token_ids != 0 & prefx  # noqa: F821

    fb = ex.q3.evaluate(prefix_lm_mask)
    assert fb.status == "error" and "NameError" in fb.message and "prefx" in fb.message
    assert "Traceback" not in str(fb) and "lab06.py" not in str(fb)


def test_show_attention_waits_for_the_exercises_then_draws():
    assert ex.show_attention(_not_implemented, prefix_numpy, alibi_numpy).status == "not_done"
    wrong = ex.show_attention(attention_numpy, Q3_CASES["causal only"], alibi_numpy)
    assert wrong.status == "incorrect"
    fig = ex.show_attention(attention_numpy, prefix_numpy, alibi_numpy)
    weights = np.asarray(fig.data[0].z, dtype=float)
    assert weights.shape == (6, 6) and np.allclose(weights.sum(-1), 1, atol=1e-6)
    assert weights[:, 4:].max() == 0 and weights[:, :2].min() > 0 and weights[2, 3] == 0


# ---------------------------------------------------------------------------------------------
# Under mixed precision (a T4: float16; a TPU: bfloat16) Keras layers compute in 16 bits
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("exercise", "answer"),
    [(ex.q1, attention_keras_layers), (ex.q1, attention_numpy), (ex.q2, mha_keras_layer), (ex.q2, mha_numpy)],
)
def test_right_answers_pass_under_mixed_precision(mixed_policy, exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


@pytest.mark.parametrize("name", ["no √d_k", "mask applied after the softmax", "bias scaled with the scores"])
def test_q1_mistakes_are_named_under_mixed_precision(mixed_policy, name):
    fb = ex.q1.evaluate(Q1_CASES[name])
    assert fb.status == "incorrect" and name in fb.got, f"{mixed_policy}: {fb}"


@pytest.mark.parametrize("name", list(Q2_CASES))
def test_q2_mistakes_are_named_under_mixed_precision(mixed_policy, name):
    fb = ex.q2.evaluate(Q2_CASES[name])
    assert fb.status == "incorrect" and name in fb.got, f"{mixed_policy}: {fb}"
