"""Lab 05's checks: right answers written in different styles pass, each typical mistake gets its own
message, unfinished answers are "not done yet", and a learner's shape error is explained."""

import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils.checks import lab05 as ex  # noqa: E402

L = keras.layers


# ---------------------------------------------------------------------------------------------
# Right answers, written differently
# ---------------------------------------------------------------------------------------------


def shortcut(x, filters, stride):
    if x.shape[-1] == filters and stride == 1:
        return x
    return L.BatchNormalization()(L.Conv2D(filters, 1, strides=stride, use_bias=False)(x))


def shortcut_sequential(x, filters, stride):
    if stride != 1 or x.shape[-1] != filters:
        proj = keras.Sequential(
            [L.Conv2D(filters, 1, strides=stride, padding="same"), L.BatchNormalization()]
        )
        return proj(x)
    return x


def block(x, filters, stride=1):
    y = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = L.ReLU()(L.BatchNormalization()(y))
    y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    return L.ReLU()(L.Add()([y, shortcut(x, filters, stride)]))


def block_sequential_with_biases(x, filters, stride=1):
    """A Sequential main path, convolutions with biases, `+` and keras.ops.relu, epsilon 1e-5."""
    main = keras.Sequential(
        [
            L.Conv2D(filters, 3, strides=stride, padding="same"),
            L.BatchNormalization(epsilon=1e-5),
            L.Activation("relu"),
            L.Conv2D(filters, 3, padding="same"),
            L.BatchNormalization(epsilon=1e-5),
        ]
    )
    return keras.ops.relu(main(x) + shortcut_sequential(x, filters, stride))


class ResidualBlock(keras.layers.Layer):
    def __init__(self, filters, stride, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.stride = filters, stride
        self.conv1 = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)
        self.bn1 = L.BatchNormalization()
        self.conv2 = L.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn2 = L.BatchNormalization()

    def build(self, input_shape):
        self.project = input_shape[-1] != self.filters or self.stride != 1
        if self.project:
            self.proj = L.Conv2D(self.filters, 1, strides=self.stride, use_bias=False)
            self.proj_bn = L.BatchNormalization()

    def call(self, x, training=None):
        y = keras.ops.relu(self.bn1(self.conv1(x), training=training))
        y = self.bn2(self.conv2(y), training=training)
        s = self.proj_bn(self.proj(x), training=training) if self.project else x
        return keras.ops.relu(y + s)


def block_subclass(x, filters, stride=1):
    return ResidualBlock(filters, stride)(x)


def block_shortcut_first(x, filters, stride=1):
    s = shortcut(x, filters, stride)  # the shortcut's layers created before the main path's
    y = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = L.Activation("relu")(L.BatchNormalization()(y))
    y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    return L.Activation("relu")(L.add([s, y]))


def block_params(c_in, filters, stride):
    proj = c_in * filters + 2 * filters if (c_in != filters or stride != 1) else 0
    return 9 * c_in * filters + 9 * filters**2 + 4 * filters + proj


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, shortcut),
        (ex.q1, shortcut_sequential),
        (ex.q2, block),
        (ex.q2, block_sequential_with_biases),
        (ex.q2, block_subclass),
        (ex.q2, block_shortcut_first),
        (ex.q3, block_params),
        (ex.q3, lambda c, f, s: float(block_params(c, f, s))),
    ],
)
@pytest.mark.slow
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_q2_is_not_done_while_the_shortcut_is_not():
    def block_calling_unfinished(x, filters, stride=1):
        y = L.Conv2D(filters, 3, strides=stride, padding="same")(x)
        return y + _not_implemented(x, filters, stride)

    assert ex.q2.evaluate(block_calling_unfinished).status == "not_done"


# ---------------------------------------------------------------------------------------------
# Mistakes in the shortcut
# ---------------------------------------------------------------------------------------------


def _conv_bn(x, filters, stride, kernel=1, bn=True):
    y = L.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False)(x)
    return L.BatchNormalization()(y) if bn else y


Q1_MISTAKES = {
    "always projects": (lambda x, f, s: _conv_bn(x, f, s), "return x unchanged"),
    "channels only": (lambda x, f, s: x if x.shape[-1] == f else _conv_bn(x, f, s), "The stride changes"),
    "no stride": (lambda x, f, s: x if x.shape[-1] == f and s == 1 else _conv_bn(x, f, 1), "strides=stride"),
    "3x3 projection": (lambda x, f, s: x if x.shape[-1] == f and s == 1 else _conv_bn(x, f, s, 3), "1×1"),
    "no BN": (lambda x, f, s: x if x.shape[-1] == f and s == 1 else _conv_bn(x, f, s, bn=False), "Normalise"),
    "ReLU": (
        lambda x, f, s: x if x.shape[-1] == f and s == 1 else L.ReLU()(_conv_bn(x, f, s)),
        "No ReLU on the shortcut",
    ),
}


def _cases(mistakes):
    return [pytest.param(answer, phrase, id=name) for name, (answer, phrase) in mistakes.items()]


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q1_MISTAKES))
def test_q1_mistakes(answer, phrase):
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# Mistakes in the block
# ---------------------------------------------------------------------------------------------


def make_block(
    *,
    short=shortcut,
    relu_before_add=False,
    final_relu=True,
    add_before_bn=False,
    add=True,
    stride_in=1,
    bn=True,
    padding="same",
):
    """The right block with one thing changed."""

    def answer(x, filters, stride=1):
        s1, s2 = {1: (stride, 1), 2: (1, stride), 12: (stride, stride)}[stride_in]
        y = L.Conv2D(filters, 3, strides=s1, padding=padding, use_bias=False)(x)
        y = L.BatchNormalization()(y) if bn else y
        y = L.ReLU()(y)
        y = L.Conv2D(filters, 3, strides=s2, padding=padding, use_bias=False)(y)
        if not add:
            return L.ReLU()(L.BatchNormalization()(y) if bn else y)
        if add_before_bn:
            return L.ReLU()(L.BatchNormalization()(y + short(x, filters, stride)))
        y = L.BatchNormalization()(y) if bn else y
        if relu_before_add:
            return L.ReLU()(y) + short(x, filters, stride)
        y = y + short(x, filters, stride)
        return L.ReLU()(y) if final_relu else y

    return answer


def identity_shortcut(x, filters, stride):
    return x


def projection_without_stride(x, filters, stride):
    return x if x.shape[-1] == filters and stride == 1 else _conv_bn(x, filters, 1)


Q2_MISTAKES = {
    "missing projection": (make_block(short=identity_shortcut), "must be a projection"),
    "projection always": (make_block(short=lambda x, f, s: _conv_bn(x, f, s)), "projects the shortcut even"),
    "projection without stride": (
        make_block(short=projection_without_stride),
        "convolution `strides=stride` too",
    ),
    "ReLU before the addition": (make_block(relu_before_add=True), "before the addition"),
    "no final ReLU": (make_block(final_relu=False), "ends without a ReLU"),
    "input added before BN": (make_block(add_before_bn=True), "before the second batch normalisation"),
    "plain block": (make_block(add=False), "never adds the shortcut"),
    "stride on the second conv": (make_block(stride_in=2), "The stride is in the second"),
    "stride on both convs": (make_block(stride_in=12), "shrinks the image twice"),
    "no BatchNorm": (
        make_block(
            bn=False, short=lambda x, f, s: x if x.shape[-1] == f and s == 1 else _conv_bn(x, f, s, bn=False)
        ),
        "no BatchNormalization layer",
    ),
    "projection without BN": (
        make_block(short=lambda x, f, s: x if x.shape[-1] == f and s == 1 else _conv_bn(x, f, s, bn=False)),
        "Your projection has no batch normalisation",
    ),
    "no padding": (make_block(padding="valid"), 'padding="same"'),
}


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q2_MISTAKES))
def test_q2_mistakes(answer, phrase):
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)
    assert "Traceback" not in str(fb)


@pytest.mark.slow
def test_q2_mistakes_get_different_hints():
    hints = [ex.q2.evaluate(answer).hint for answer, _ in Q2_MISTAKES.values()]
    assert len(set(hints)) == len(hints)
    assert ex.q2.hints[0] not in hints


def test_the_probe_separates_relu_placement():
    # the mistakes differ from the right block on the probe by far more than the tolerance
    import numpy as np

    x = ex._probe(6)
    k1 = ex._kernel((3, 3, 6, 6), 1)
    k2 = ex._kernel((3, 3, 6, 6), 2)
    variants = ex.block_variants(x, k1, k2, None, 1)
    right = variants.pop("right")
    for name, value in variants.items():
        assert np.max(np.abs(value - right)) > 50 * ex.TOL, name


# ---------------------------------------------------------------------------------------------
# Mistakes in the count
# ---------------------------------------------------------------------------------------------


def _count(extra):
    return lambda c, f, s: block_params(c, f, s) + extra(c, f, s)


def _proj(c, f, s):
    return c != f or s != 1


Q3_MISTAKES = {
    "moving statistics": (_count(lambda c, f, s: 2 * f * (3 if _proj(c, f, s) else 2)), "moving mean"),
    "biases": (_count(lambda c, f, s: f * (3 if _proj(c, f, s) else 2)), "bias per convolution"),
    "no BN": (_count(lambda c, f, s: -2 * f * (3 if _proj(c, f, s) else 2)), "left out batch norm"),
    "no projection": (
        _count(lambda c, f, s: -(c * f + 2 * f) if _proj(c, f, s) else 0),
        "left out the projection",
    ),
    "projection always": (
        _count(lambda c, f, s: 0 if _proj(c, f, s) else c * f + 2 * f),
        "shortcut is the identity",
    ),
    "3 not 9": (_count(lambda c, f, s: -6 * c * f - 6 * f * f), "counted 3 instead of 9"),
    "3x3 projection": (_count(lambda c, f, s: 8 * c * f if _proj(c, f, s) else 0), "not 9 ×"),
}


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q3_MISTAKES))
def test_q3_mistakes(answer, phrase):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# A learner's own error, and the ResNet built from their blocks
# ---------------------------------------------------------------------------------------------


def test_a_learners_typo_is_reported_with_their_line():
    def block_typo(x, filters, stride=1):
        y = L.Conv2D(filters, 3, strides=stride, padding="same")(x)
        return L.ReLU()(y + shortcutt(x, filters, stride))  # noqa: F821

    fb = ex.q2.evaluate(block_typo)
    assert fb.status == "error" and "NameError" in fb.message and "shortcutt" in fb.message
    assert "Traceback" not in str(fb)


def test_returning_a_layer_is_explained():
    fb = ex.q1.evaluate(lambda x, f, s: L.Conv2D(f, 1, strides=s))
    assert fb.status == "incorrect" and "Call the layer" in fb.hint


@pytest.mark.slow
def test_show_resnet_waits_for_q2_then_matches_utils():
    waiting = ex.show_resnet(_not_implemented)
    assert getattr(waiting, "status", None) == "not_done"
    table = ex.show_resnet(block)
    counts = table["trainable parameters"].tolist()
    assert counts == [272_474, 272_474, 272_474]


# ---------------------------------------------------------------------------------------------
# Under mixed precision (a T4 GPU: float16; a TPU: bfloat16) the same answers are judged the same
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, shortcut),
        (ex.q1, shortcut_sequential),
        (ex.q2, block),
        (ex.q2, block_sequential_with_biases),
        (ex.q2, block_subclass),
    ],
)
@pytest.mark.slow
def test_right_answers_pass_under_mixed_precision(mixed_policy, exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


@pytest.mark.slow
def test_the_identity_shortcut_is_x_at_the_learners_precision(mixed_policy):
    # the layers round x to float16/bfloat16: that is still "x itself"
    assert ex.q1.evaluate(lambda x, f, s: x if x.shape[-1] == f and s == 1 else shortcut(x, f, s)).passed
    # but something else than x is not
    fb = ex.q1.evaluate(lambda x, f, s: L.ReLU()(x) if x.shape[-1] == f and s == 1 else shortcut(x, f, s))
    assert fb.status == "incorrect" and "differs from x" in str(fb), str(fb)


@pytest.mark.parametrize(
    ("exercise", "answer", "phrase"),
    [
        (ex.q1, *Q1_MISTAKES["ReLU"]),
        (ex.q1, *Q1_MISTAKES["no BN"]),
        (ex.q2, *Q2_MISTAKES["ReLU before the addition"]),
        (ex.q2, *Q2_MISTAKES["input added before BN"]),
        (ex.q2, *Q2_MISTAKES["stride on the second conv"]),
        (ex.q2, *Q2_MISTAKES["projection without BN"]),
    ],
)
@pytest.mark.slow
def test_mistakes_are_named_under_mixed_precision(mixed_policy, exercise, answer, phrase):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), f"{mixed_policy}: {fb}"


@pytest.mark.slow
def test_show_resnet_counts_under_mixed_precision(mixed_policy):
    counts = ex.show_resnet(block)["trainable parameters"].tolist()
    assert counts == [272_474, 272_474, 272_474]
