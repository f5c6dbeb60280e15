"""Lab 05's checks: right answers in several styles pass, each named mistake gets its own hint,
placeholders are "not done yet", a learner's exception names their line, under float32 and under
mixed precision. Tests that build Keras blocks are slow; fold_bn's are NumPy only."""

import functools

import numpy as np
import pytest

from utils.checks import lab05 as ex

P = functools.partial

# ---------------------------------------------------------------------------------------------
# Q1: blocks, right and wrong, written as learners write them
# ---------------------------------------------------------------------------------------------


def preact(x, filters, stride=1, *, mistake=None):
    """The right block with ``mistake=None``; otherwise one of the named mistakes."""
    import keras

    layers = keras.layers
    bn_relu = lambda t: layers.ReLU()(layers.BatchNormalization()(t))
    conv = lambda t, k, s=1: layers.Conv2D(filters, k, strides=s, padding="same", use_bias=False)(t)
    fits = x.shape[-1] == filters and stride == 1
    if mistake in ("post", "conv_bn_relu"):
        h = bn_relu(conv(x, 3, stride))
        h = layers.BatchNormalization()(conv(h, 3)) if mistake == "post" else bn_relu(conv(h, 3))
        skip = x if fits else conv(x, 1, stride)
        skip = layers.BatchNormalization()(skip) if mistake == "post" and not fits else skip
        return layers.ReLU()(h + skip) if mistake == "post" else h + skip
    a = bn_relu(x)
    first, second = (1, stride) if mistake == "stride2" else (stride, 1)
    h = conv(bn_relu(conv(a, 3, first)), 3, second)
    if fits and mistake != "extra projection":
        skip = a if mistake == "identity_on_a" else x
    else:
        skip = conv(x if mistake == "proj_on_x" else a, 1, stride)
        skip = layers.BatchNormalization()(skip) if mistake == "proj_bn" else skip
    out = h if mistake == "no_shortcut" else layers.Add()([h, skip])
    return layers.ReLU()(out) if mistake == "relu_after" else out


def preact_sequential_style(x, filters, stride=1):
    """Another style: Activation('relu'), keras.ops.add, a projection decided by 'does it fit?'."""
    import keras

    def unit(t, s):
        t = keras.layers.Activation("relu")(keras.layers.BatchNormalization(epsilon=1.001e-5)(t))
        return keras.layers.Conv2D(filters, (3, 3), strides=(s, s), padding="same", use_bias=False)(t)

    pre = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(pre)
    h = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(pre)
    return keras.ops.add(unit(h, 1), shortcut)


def no_bn_between(x, filters, stride=1):
    import keras

    a = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    h = keras.layers.Conv2D(filters, 3, strides=stride, padding="same")(a)
    h = keras.layers.Conv2D(filters, 3, padding="same")(keras.layers.ReLU()(h))
    skip = x if x.shape[-1] == filters and stride == 1 else keras.layers.Conv2D(filters, 1, strides=stride)(a)
    return h + skip


def no_projection(x, filters, stride=1):
    import keras

    a = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    h = keras.layers.Conv2D(filters, 3, strides=stride, padding="same")(a)
    h = keras.layers.Conv2D(filters, 3, padding="same")(
        keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    )
    return keras.layers.Add()([h, x])


Q1_MISTAKES = [
    ("post", "post-activation order"),
    ("relu_after", "ReLU after the addition"),
    ("conv_bn_relu", "conv → BN → ReLU inside"),
    ("proj_on_x", "projection applied to x"),
    ("proj_bn", "projection with BN"),
    ("identity_on_a", "identity on ReLU(BN(x))"),
    ("no_shortcut", "no shortcut"),
    ("stride2", "stride in the second convolution"),
]


@pytest.mark.slow
@pytest.mark.parametrize("answer", [preact, preact_sequential_style], ids=["layers", "activation-ops"])
def test_right_blocks_pass(answer):
    feedback = ex.q1.evaluate(answer)
    assert feedback.passed, str(feedback)


@pytest.mark.slow
@pytest.mark.parametrize(("mistake", "name"), Q1_MISTAKES, ids=[m[1] for m in Q1_MISTAKES])
def test_each_block_mistake_is_named_with_its_own_hint(mistake, name):
    feedback = ex.q1.evaluate(P(preact, mistake=mistake))
    hint = next(m.hint for m in ex.Q1_MISTAKES if m.name == name)
    assert feedback.status == "incorrect" and feedback.got.endswith(name) and feedback.hint == hint, str(
        feedback
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("answer", "key"),
    [
        (P(preact, mistake="extra projection"), "extra projection"),
        (no_bn_between, "bn"),
        (no_projection, "missing projection"),
    ],
)
def test_structure_mistakes_get_their_hint(answer, key):
    feedback = ex.q1.evaluate(answer)
    assert feedback.status == "incorrect" and feedback.hint == ex.STRUCTURE[key].hint, str(feedback)


def test_every_mistake_is_tested_and_hints_differ():
    assert {m.name for m in ex.Q1_MISTAKES} == {name for _, name in Q1_MISTAKES}
    hints = [m.hint for m in ex.Q1_MISTAKES + list(ex.STRUCTURE.values()) + ex.Q2_MISTAKES]
    assert len(set(hints)) == len(hints)


@pytest.mark.slow
def test_a_learners_exception_names_their_line():
    def preact_block(x, filters, stride=1):
        return x.not_a_method()

    feedback = ex.q1.evaluate(preact_block)
    assert feedback.status == "error" and "x.not_a_method()" in feedback.message
    assert "utils/checks" not in str(feedback)


@pytest.mark.slow
def test_returning_a_layer_is_explained():
    import keras

    feedback = ex.q1.evaluate(lambda x, f, s=1: keras.layers.Conv2D(f, 3))
    assert feedback.status == "incorrect" and "4-D tensor" in feedback.expected


@pytest.mark.slow
def test_show_identity_waits_for_q1_then_shows_the_clean_path():
    assert ex.show_identity(P(preact, mistake="relu_after")).status == "incorrect"
    table = ex.show_identity(preact)
    assert table.iloc[0, 1] == 0.0 and table.iloc[1, 1] > 1.0 and table.iloc[1, 2] > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("answer", [preact, preact_sequential_style], ids=["layers", "activation-ops"])
def test_right_blocks_pass_under_mixed_precision(mixed_policy, answer):
    feedback = ex.q1.evaluate(answer)
    assert feedback.passed, str(feedback)


@pytest.mark.slow
@pytest.mark.parametrize(("mistake", "name"), Q1_MISTAKES, ids=[m[1] for m in Q1_MISTAKES])
def test_block_mistakes_are_named_under_mixed_precision(mixed_policy, mistake, name):
    feedback = ex.q1.evaluate(P(preact, mistake=mistake))
    assert feedback.status == "incorrect" and feedback.got.endswith(name), str(feedback)


# ---------------------------------------------------------------------------------------------
# Q2: folding batch norm
# ---------------------------------------------------------------------------------------------


def fold(kernel, bias, gamma, beta, mean, variance, eps):
    scale = gamma / np.sqrt(variance + eps)
    return kernel * scale, (bias - mean) * scale + beta


def fold_einsum(kernel, bias, gamma, beta, mean, variance, eps):
    inv_std = 1.0 / np.sqrt(variance + eps)
    return np.einsum("hwio,o->hwio", kernel, gamma * inv_std), [
        float(v) for v in beta + gamma * inv_std * (bias - mean)
    ]


def fold_tf(kernel, bias, gamma, beta, mean, variance, eps):
    import tensorflow as tf

    scale = gamma * tf.math.rsqrt(tf.constant(variance + eps))
    return tf.constant(kernel) * scale, beta + (bias - mean) * scale


Q2_WRONG = [
    (lambda k, b, g, be, m, v, e: fold(k, b, g, be, m, v, 0.0), "ε left out"),
    (lambda k, b, g, be, m, v, e: (k * g / (v + e), (b - m) * g / (v + e) + be), "no square root"),
    (
        lambda k, b, g, be, m, v, e: (k * (g / np.sqrt(v + e))[:, None], (b - m) * g / np.sqrt(v + e) + be),
        "scale on the input channels",
    ),
    (
        lambda k, b, g, be, m, v, e: (fold(k, b, g, be, m, v, e)[0], b * g / np.sqrt(v + e) - m + be),
        "mean not scaled",
    ),
    (lambda k, b, g, be, m, v, e: fold(k, 0 * b, g, be, m, v, e), "conv bias left out"),
]


@pytest.mark.parametrize("answer", [fold, fold_einsum], ids=["numpy", "einsum-list"])
def test_right_folds_pass(answer):
    feedback = ex.q2.evaluate(answer)
    assert feedback.passed, str(feedback)


@pytest.mark.slow
def test_a_tensorflow_fold_passes():
    assert ex.q2.evaluate(fold_tf).passed


@pytest.mark.parametrize(("answer", "name"), Q2_WRONG, ids=[w[1] for w in Q2_WRONG])
def test_each_fold_mistake_is_named_with_its_own_hint(answer, name):
    feedback = ex.q2.evaluate(answer)
    hint = next(m.hint for m in ex.Q2_MISTAKES if m.name == name)
    assert feedback.status == "incorrect" and feedback.got.endswith(name) and feedback.hint == hint, str(
        feedback
    )


def test_the_fold_mistakes_are_all_tested():
    assert {m.name for m in ex.Q2_MISTAKES} == {name for _, name in Q2_WRONG}


def test_a_fold_that_returns_one_array_is_explained():
    feedback = ex.q2.evaluate(lambda k, b, g, be, m, v, e: k)
    assert feedback.status == "incorrect" and "pair" in feedback.expected


@pytest.mark.slow
def test_the_reference_fold_equals_conv_then_batch_norm():
    import keras

    rng = np.random.default_rng(0)
    conv = keras.layers.Conv2D(4, 3, padding="same", dtype="float64")
    bn = keras.layers.BatchNormalization(epsilon=0.05, dtype="float64")
    x = rng.normal(size=(2, 6, 6, 3))
    bn(conv(x))
    for v in bn.weights:
        v.assign(rng.uniform(0.2, 1.5, v.shape))
    kernel, bias = (w.numpy() for w in conv.weights)
    k, b = ex.reference_fold(kernel, bias, *(w.numpy() for w in bn.weights), 0.05)
    import tensorflow as tf

    folded = tf.nn.conv2d(x, k, 1, "SAME").numpy() + b
    np.testing.assert_allclose(folded, bn(conv(x), training=False), atol=1e-10)


@pytest.mark.parametrize("exercise", [pytest.param(ex.q1, marks=pytest.mark.slow), ex.q2])  # q1 imports TF
@pytest.mark.parametrize("placeholder", [..., None, "raise"])
def test_placeholders_are_not_done(exercise, placeholder):
    def not_implemented(*args):
        raise NotImplementedError

    answer = not_implemented if placeholder == "raise" else placeholder
    assert exercise.evaluate(answer).status == "not_done"
