"""utils.models, sequence track: the positional encoding is the paper's formula, and the embedding
and encoder block compute what their docstrings say (checked against plain numpy)."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils import models  # noqa: E402


def paper_pe(length: int, d_model: int) -> np.ndarray:
    """The formula of Vaswani et al. (2017), section 3.5, one element at a time."""
    pe = np.zeros((length, d_model))
    for pos in range(length):
        for j in range(d_model):
            i = j // 2  # columns 2i and 2i+1 share the frequency 1 / 10000^(2i/d_model)
            angle = pos / 10000 ** (2 * i / d_model)
            pe[pos, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return pe


@pytest.mark.parametrize(("length", "d_model"), [(50, 16), (7, 5), (1, 2), (128, 64)])
def test_positional_encoding_is_the_papers_formula(length, d_model):
    pe = models.positional_encoding(length, d_model)
    assert pe.dtype == np.float32 and pe.shape == (length, d_model)
    np.testing.assert_allclose(pe, paper_pe(length, d_model), atol=1e-6)


def test_positional_encoding_is_not_a_common_garbled_form():
    pe = models.positional_encoding(40, 16)
    # sin and cos concatenated (first half sines, second half cosines) instead of interleaved
    pos, i = np.arange(40)[:, None], np.arange(8)[None, :]
    angle = pos / 10000 ** (2 * i / 16)
    assert np.abs(pe - np.concatenate([np.sin(angle), np.cos(angle)], axis=1)).max() > 0.5
    # i instead of 2i in the exponent
    wrong = paper_pe(40, 16)
    wrong[:, 0::2] = np.sin(pos / 10000 ** (i / 16))
    wrong[:, 1::2] = np.cos(pos / 10000 ** (i / 16))
    assert np.abs(pe - wrong).max() > 0.5
    assert pe[0, 0::2].max() == 0 and pe[0, 1::2].min() == 1  # position 0: every sin 0, every cos 1


def test_relative_positions_are_rotations_independent_of_pos():
    d, k = 16, 5
    pe = models.positional_encoding(60, d).astype(np.float64)
    m = np.zeros((d, d))
    for i in range(d // 2):
        w_k = k / 10000 ** (2 * i / d)
        c, s = np.cos(w_k), np.sin(w_k)
        m[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, s], [-s, c]]
    np.testing.assert_allclose(pe[k:], pe[:-k] @ m.T, atol=1e-5)
    np.testing.assert_allclose(m @ m.T, np.eye(d), atol=1e-12)


def test_positional_embedding_scales_tokens_and_adds_the_encoding():
    keras.utils.set_random_seed(1)
    layer = models.PositionalEmbedding(30, 12, 8)
    ids = np.array([[4, 9, 2, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    out = np.asarray(layer(ids))
    table = np.asarray(layer.token_embedding.embeddings)
    expected = table[ids] * np.sqrt(8) + models.positional_encoding(12, 8)[:6]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(ids)), ids != 0)
    no_mask = models.PositionalEmbedding(30, 12, 8, mask_zero=False)
    assert no_mask.compute_mask(ids) is None
    assert models.PositionalEmbedding.from_config(layer.get_config()).get_config() == layer.get_config()


def numpy_block(block: models.TransformerBlock, x: np.ndarray, mask: np.ndarray | None) -> tuple:
    """The post-LN encoder block in numpy, from the block's weights: (output, attention weights)."""
    wq, bq, wk, bk, wv, bv, wo, bo = [np.asarray(w, dtype=np.float64) for w in block.attention.weights]
    q = np.einsum("btd,dhk->bhtk", x, wq) + bq.transpose()[None, :, None, :]
    k = np.einsum("btd,dhk->bhtk", x, wk) + bk.transpose()[None, :, None, :]
    v = np.einsum("btd,dhk->bhtk", x, wv) + bv.transpose()[None, :, None, :]
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    allowed = np.ones(scores.shape, dtype=bool)
    if mask is not None:
        allowed &= mask[:, None, None, :]  # hide padded keys
    if block.causal:
        allowed &= np.tril(np.ones(scores.shape[-2:], dtype=bool))
    scores = np.where(allowed, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = weights @ v  # (b, h, t, k)
    attended = np.einsum("bhtk,hkd->btd", heads, wo) + bo

    def norm(z, layer):
        g, b = (np.asarray(w, dtype=np.float64) for w in layer.weights)
        mu, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        return (z - mu) / np.sqrt(var + layer.epsilon) * g + b

    h = norm(x + attended, block.norm1)
    w1, b1, w2, b2 = [
        np.asarray(w, dtype=np.float64) for w in (*block.ffn_hidden.weights, *block.ffn_out.weights)
    ]
    ffn = np.maximum(h @ w1 + b1, 0) @ w2 + b2
    return norm(h + ffn, block.norm2), weights


@pytest.mark.parametrize("causal", [False, True])
def test_transformer_block_equals_the_formula(causal):
    keras.utils.set_random_seed(2)
    block = models.TransformerBlock(16, 4, 32, causal=causal)
    x = np.random.default_rng(0).normal(size=(3, 7, 16)).astype(np.float32)
    mask = np.ones((3, 7), dtype=bool)
    mask[0, 4:] = False
    mask[2, 1:] = False
    out = np.asarray(block(x, mask=tf.constant(mask)))
    expected, weights = numpy_block(block, x.astype(np.float64), mask)
    np.testing.assert_allclose(out, expected, atol=2e-4)
    attention = np.asarray(block.last_attention)
    assert attention.shape == (3, 4, 7, 7)
    np.testing.assert_allclose(attention, weights, atol=1e-5)
    np.testing.assert_allclose(attention.sum(-1), 1, atol=1e-5)
    assert attention[0, :, :, 4:].max() == 0  # no query looks at padding
    if causal:
        assert np.triu(attention[1], k=1).max() == 0  # nor at the future
    # without a mask, every key is visible
    out = np.asarray(block(x))
    np.testing.assert_allclose(out, numpy_block(block, x.astype(np.float64), None)[0], atol=2e-4)


def test_block_takes_the_mask_from_the_embedding_and_passes_it_on():
    keras.utils.set_random_seed(3)
    ids = keras.Input((None,), dtype="int32")
    x = models.PositionalEmbedding(20, 8, 8)(ids)
    x = models.TransformerBlock(8, 2, 16, name="b1")(x)
    x = models.TransformerBlock(8, 2, 16, name="b2")(x)
    states = keras.Model(ids, x)
    pooled = keras.Model(ids, keras.layers.GlobalAveragePooling1D()(x))
    # trailing padding changes nothing for the real tokens, in both blocks and in the pooling
    padded, bare = np.array([[3, 4, 5, 0, 0, 0]]), np.array([[3, 4, 5]])
    np.testing.assert_allclose(np.asarray(states(padded))[:, :3], np.asarray(states(bare)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(pooled(padded)), np.asarray(pooled(bare)), atol=1e-5)
    # without the mask the padding would leak in
    unmasked = models.TransformerBlock(8, 2, 16)
    h = tf.constant(np.asarray(states.layers[1](padded)))  # a plain tensor: no Keras mask attached
    leak = np.asarray(unmasked(h))[:, :3] - np.asarray(unmasked(h, mask=tf.constant(padded != 0)))[:, :3]
    assert np.abs(leak).max() > 1e-3
    assert pooled.get_layer("b2").last_attention is not None


@pytest.mark.parametrize(
    ("d_model", "num_heads", "d_ff"), [(64, 4, 256), (32, 8, 64), (12, 3, 48), (512, 8, 2048)]
)
def test_block_parameter_count(d_model, num_heads, d_ff):
    block = models.TransformerBlock(d_model, num_heads, d_ff)
    block.build((None, 10, d_model))
    assert block.count_params() == models.transformer_block_params(d_model, d_ff)
    if (d_model, d_ff) == (512, 2048):  # the paper's base model: about 3.15 M per encoder layer
        assert models.transformer_block_params(d_model, d_ff) == 3_152_384


def test_block_config_and_saving_round_trip(tmp_path):
    keras.utils.set_random_seed(4)
    ids = keras.Input((5,), dtype="int32")
    x = models.PositionalEmbedding(20, 5, 8)(ids)
    x = models.TransformerBlock(8, 2, 16, dropout=0.1, causal=True)(x)
    model = keras.Model(ids, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x)))
    batch = np.array([[1, 2, 3, 0, 0], [5, 6, 7, 8, 9]])
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(again(batch)), np.asarray(model(batch)), atol=1e-6)
    block = again.layers[2]
    assert block.get_config()["causal"] is True and block.get_config()["dropout"] == 0.1
    with pytest.raises(ValueError, match="multiple of num_heads"):
        models.TransformerBlock(10, 4, 16)


LESSON = Path(__file__).resolve().parent.parent / "notebooks" / "06_attention_and_transformers.ipynb"


def lesson_definitions() -> dict:
    """Execute the functions and classes the lesson defines (and nothing else) and return them."""
    namespace = {"keras": keras, "np": np, "tf": tf}
    for cell in json.loads(LESSON.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse("".join(cell["source"]))
        keep = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
        exec(compile(ast.Module(body=keep, type_ignores=[]), str(LESSON), "exec"), namespace)
    return namespace


def test_the_lessons_encoder_block_equals_the_reference_copy():
    lesson = lesson_definitions()
    np.testing.assert_array_equal(lesson["positional_encoding"](37, 12), models.positional_encoding(37, 12))
    keras.utils.set_random_seed(5)
    block = lesson["EncoderBlock"](16, 4, 48)
    ref = models.TransformerBlock(16, 4, 48)
    x = np.random.default_rng(1).normal(size=(2, 9, 16)).astype(np.float32)
    ids = np.array([[4, 5, 6, 7, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7, 8, 9]])
    block(x)
    ref.build(x.shape)
    wq, bq, wk, bk, wv, bv, wo, bo = ref.attention.get_weights()
    block.attention.set_weights([wq, wk, wv, bq, bk, bv, wo, bo])
    for mine, theirs in [
        ("norm1", "norm1"),
        ("ffn_hidden", "ffn_hidden"),
        ("ffn_out", "ffn_out"),
        ("norm2", "norm2"),
    ]:
        getattr(block, mine).set_weights(getattr(ref, theirs).get_weights())
    assert block.count_params() == ref.count_params() == models.transformer_block_params(16, 48)
    ours = np.asarray(block(x, attention_mask=lesson["padding_mask"](ids)))
    theirs = np.asarray(ref(x, mask=tf.constant(ids != 0)))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # and the lesson's causal mask gives what causal=True gives
    causal_ref = models.TransformerBlock(16, 4, 48, causal=True)
    causal_ref.build(x.shape)
    causal_ref.set_weights(ref.get_weights())
    ours = np.asarray(block(x, attention_mask=lesson["padding_mask"](ids) & lesson["causal_mask"](9)))
    np.testing.assert_allclose(ours, np.asarray(causal_ref(x, mask=tf.constant(ids != 0))), atol=1e-5)


def test_the_lessons_multi_head_attention_equals_keras():
    lesson = lesson_definitions()
    np.testing.assert_allclose(lesson["positional_encoding"](23, 10), paper_pe(23, 10), atol=1e-6)
    keras.utils.set_random_seed(6)
    d_model, heads = 24, 3
    mine = lesson["MultiHeadSelfAttention"](d_model, heads)
    theirs = keras.layers.MultiHeadAttention(heads, key_dim=d_model // heads)
    x = np.random.default_rng(2).normal(size=(2, 7, d_model)).astype(np.float32)
    mine.build(x.shape)
    theirs.build(x.shape, x.shape, x.shape)
    for w in theirs.weights:  # non-zero biases, so a bias in the wrong place shows
        w.assign(np.random.default_rng(w.shape[0]).normal(size=w.shape).astype(np.float32) * 0.3)
    wq, bq, wk, bk, wv, bv, wo, bo = theirs.get_weights()
    mine.set_weights([wq, wk, wv, bq, bk, bv, wo, bo])
    ids = np.array([[4, 5, 6, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]])
    masks = [None, lesson["padding_mask"](ids), lesson["padding_mask"](ids) & lesson["causal_mask"](7)]
    for mask in masks:
        ours = np.asarray(mine(x, attention_mask=mask))
        ref, ref_weights = theirs(x, x, x, attention_mask=mask, return_attention_scores=True)
        np.testing.assert_allclose(ours, np.asarray(ref), atol=1e-5)
        np.testing.assert_allclose(np.asarray(mine.weights_seen), np.asarray(ref_weights), atol=1e-6)
    # and the single-head function is keras.ops.dot_product_attention
    q, k, v = (np.random.default_rng(s).normal(size=(2, 7, 8)).astype(np.float32) for s in (3, 4, 5))
    out, weights = lesson["scaled_dot_product_attention"](q, k, v, masks[2])
    ref = keras.ops.dot_product_attention(q[:, :, None], k[:, :, None], v[:, :, None], mask=masks[2][:, None])
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref)[:, :, 0], atol=1e-5)
    assert np.asarray(weights)[0, :, 3:].max() == 0 and np.triu(np.asarray(weights)[1], 1).max() == 0


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_transformer_block_under_mixed_precision(policy):
    from utils.env import tolerance

    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(2)
        block = models.TransformerBlock(16, 4, 32)
        x = np.random.default_rng(0).normal(size=(3, 7, 16)).astype(np.float32)
        mask = np.ones((3, 7), dtype=bool)
        mask[0, 4:] = False
        out = block(x, mask=tf.constant(mask))
        assert keras.backend.standardize_dtype(out.dtype) == policy.removeprefix("mixed_")
        # the formula in float64 on the inputs the block's layers see (rounded to half precision)
        x_half = np.asarray(keras.ops.cast(keras.ops.cast(x, out.dtype), "float32"), dtype=np.float64)
        expected, weights = numpy_block(block, x_half, mask)
        np.testing.assert_allclose(np.asarray(out, dtype=np.float64), expected, **tolerance())
        attention = np.asarray(block.last_attention, dtype=np.float64)
        np.testing.assert_allclose(attention, weights, **tolerance())
        np.testing.assert_allclose(attention.sum(-1), 1, **tolerance())
        assert attention[0, :, :, 4:].max() == 0  # padding still gets exactly no weight
    finally:
        keras.mixed_precision.set_global_policy("float32")
