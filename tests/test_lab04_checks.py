"""The checks of Lab 04 (convolution): right answers in any form pass, each typical mistake is named."""

import math

import numpy as np
import pytest

from utils.checks import Feedback
from utils.checks import lab04 as ex

# ---------------------------------------------------------------------------------------------
# Right answers, written the ways learners write them
# ---------------------------------------------------------------------------------------------


def output_size(n, k, stride=1, dilation=1, padding="valid"):
    if padding == "same":
        return math.ceil(n / stride)
    return (n - dilation * (k - 1) - 1) // stride + 1


def output_size_ceil_form(n, k, stride=1, dilation=1, padding="valid"):
    span = dilation * (k - 1) + 1
    return int(np.ceil(n / stride)) if padding == "same" else int(np.ceil((n - span + 1) / stride))


def output_size_counting(n, k, stride=1, dilation=1, padding="valid"):
    if padding == "same":
        return len(range(0, n, stride))
    return len(range(0, n - dilation * (k - 1), stride))  # the window starts that fit


def same_padding(n, k, stride=1, dilation=1):
    total = max((math.ceil(n / stride) - 1) * stride + dilation * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def same_padding_tf_style(n, k, stride=1, dilation=1):
    span = (k - 1) * dilation + 1
    total = max(span - stride, 0) if n % stride == 0 else max(span - n % stride, 0)
    before = total // 2
    return [before, total - before]  # a list is fine too


def _pad(x, kernel, stride, padding, dilation):
    if padding == "valid":
        return x
    (t, b), (left, r) = (same_padding(x.shape[i], kernel.shape[i], stride, dilation) for i in (0, 1))
    return np.pad(x, ((t, b), (left, r), (0, 0)))


def conv2d_loops(x, kernel, bias, stride=1, padding="valid", dilation=1):
    x = _pad(x, kernel, stride, padding, dilation)
    kh, kw, c_in, c_out = kernel.shape
    h_out = output_size(x.shape[0], kh, stride, dilation)
    w_out = output_size(x.shape[1], kw, stride, dilation)
    y = np.zeros((h_out, w_out, c_out))
    for i in range(h_out):
        for j in range(w_out):
            for o in range(c_out):
                total = bias[o]
                for u in range(kh):
                    for v in range(kw):
                        for c in range(c_in):
                            total += (
                                x[i * stride + u * dilation, j * stride + v * dilation, c]
                                * kernel[u, v, c, o]
                            )
                y[i, j, o] = total
    return y


def conv2d_slicing(x, kernel, bias, stride=1, padding="valid", dilation=1):
    x = _pad(x, kernel, stride, padding, dilation)
    kh, kw, _, c_out = kernel.shape
    h_out = output_size(x.shape[0], kh, stride, dilation)
    w_out = output_size(x.shape[1], kw, stride, dilation)
    y = np.zeros((h_out, w_out, c_out)) + bias
    for i in range(h_out):
        for j in range(w_out):
            window = x[
                i * stride : i * stride + dilation * (kh - 1) + 1 : dilation,
                j * stride : j * stride + dilation * (kw - 1) + 1 : dilation,
            ]
            y[i, j] += np.tensordot(window, kernel, axes=([0, 1, 2], [0, 1, 2]))
    return y


def conv2d_einsum(x, kernel, bias, stride=1, padding="valid", dilation=1):
    x = _pad(x, kernel, stride, padding, dilation)
    kh, kw = kernel.shape[:2]
    span_h, span_w = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (span_h, span_w), axis=(0, 1))
    windows = windows[::stride, ::stride, :, ::dilation, ::dilation]  # (H_out, W_out, C_in, kh, kw)
    return np.einsum("ijcuv,uvco->ijo", windows, kernel) + bias


def conv2d_tensorflow(x, kernel, bias, stride=1, padding="valid", dilation=1):
    import tensorflow as tf

    xp = _pad(x, kernel, stride, padding, dilation).astype("float32")
    y = tf.nn.conv2d(xp[None], kernel.astype("float32"), strides=stride, padding="VALID", dilations=dilation)
    return y[0] + bias.astype("float32")  # a float32 tensor: fine


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, output_size),
        (ex.q1, output_size_ceil_form),
        (ex.q1, output_size_counting),
        (ex.q1, ex.reference_output_size),
        (ex.q2, same_padding),
        (ex.q2, same_padding_tf_style),
        (
            ex.q2,
            lambda n, k, stride=1, dilation=1: np.array(ex.reference_same_padding(n, k, stride, dilation)),
        ),
        (ex.q3, conv2d_loops),
        (ex.q3, conv2d_slicing),
        (ex.q3, conv2d_einsum),
        (ex.q3, ex.reference_conv2d),
    ],
)
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


def test_a_tensorflow_answer_passes():
    fb = ex.q3.evaluate(conv2d_tensorflow)
    assert fb.passed, str(fb)


# ---------------------------------------------------------------------------------------------
# The model answers agree with Keras
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "k", "stride", "dilation", "padding"),
    [
        (7, 3, 1, 1, "valid"),
        (8, 3, 2, 1, "valid"),
        (10, 4, 3, 1, "valid"),
        (10, 3, 1, 2, "valid"),
        (7, 3, 1, 1, "same"),
        (8, 4, 1, 1, "same"),
        (6, 3, 2, 1, "same"),
        (9, 4, 2, 1, "same"),
        (7, 2, 3, 1, "same"),
        (9, 3, 1, 3, "same"),
        (8, 1, 3, 1, "same"),
    ],
)
def test_reference_matches_keras_conv2d(n, k, stride, dilation, padding):
    import keras

    rng = np.random.default_rng(n * 100 + k * 10 + stride)
    x = rng.normal(size=(n, n + 1, 2))
    kernel = rng.normal(size=(k, k, 2, 3))
    bias = rng.normal(size=3)
    layer = keras.layers.Conv2D(3, k, strides=stride, dilation_rate=dilation, padding=padding)
    layer.build((None, n, n + 1, 2))
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    want = np.asarray(layer(x[None].astype("float32")))[0]
    got = ex.reference_conv2d(x, kernel, bias, stride, padding, dilation)
    assert got.shape == want.shape
    assert got.shape[:2] == (
        ex.reference_output_size(n, k, stride, dilation, padding),
        ex.reference_output_size(n + 1, k, stride, dilation, padding),
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


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


def test_q3_is_not_done_while_the_helpers_it_calls_are_not():
    def conv2d_calling_unfinished(x, kernel, bias, stride=1, padding="valid", dilation=1):
        return _not_implemented(x.shape[0], kernel.shape[0], stride, dilation)

    assert ex.q3.evaluate(conv2d_calling_unfinished).status == "not_done"


def test_learner_exception_is_reported_with_their_line():
    def conv2d_bad_index(x, kernel, bias, stride=1, padding="valid", dilation=1):
        return x[:, :, 0] @ kernel  # (H, W) @ (kh, kw, c_in, c_out): a shape error in their line

    fb = ex.q3.evaluate(conv2d_bad_index)
    assert fb.status == "error" and "ValueError" in fb.message
    assert "x[:, :, 0] @ kernel" in fb.message and "test_lab04_checks.py" in fb.message
    assert "Traceback" not in str(fb) and "lab04.py" not in str(fb)


def test_learner_exception_in_q1():
    def output_size_typo(n, k, stride=1, dilation=1, padding="valid"):
        return (n - k) // strid + 1  # noqa: F821

    fb = ex.q1.evaluate(output_size_typo)
    assert fb.status == "error" and "NameError" in fb.message and "strid" in fb.message


# ---------------------------------------------------------------------------------------------
# Q1: each typical mistake gets its own message
# ---------------------------------------------------------------------------------------------


def _size(valid, same=None):
    def answer(n, k, stride=1, dilation=1, padding="valid"):
        if padding == "same" and same is not None:
            return same(n, k, stride, dilation)
        return valid(n, k, stride, dilation)

    return answer


def _right_valid(n, k, s, d):
    return (n - d * (k - 1) - 1) // s + 1


Q1_MISTAKES = {
    "stride forgotten": (_size(lambda n, k, s, d: n - d * (k - 1), math.ceil), "left out the stride"),
    "missing +1": (_size(lambda n, k, s, d: (n - d * (k - 1) - 1) // s, math.ceil), "forgot the +1"),
    "(n - k) // s": (
        _size(lambda n, k, s, d: (n - d * (k - 1)) // s, math.ceil),
        "neither the −1 nor the +1",
    ),
    "ceil for valid": (
        _size(
            lambda n, k, s, d: math.ceil((n - d * (k - 1) - 1) / s) + 1, lambda n, k, s, d: math.ceil(n / s)
        ),
        "You rounded up",
    ),
    "no rounding": (
        _size(lambda n, k, s, d: (n - d * (k - 1) - 1) / s + 1, lambda n, k, s, d: math.ceil(n / s)),
        "you return a fraction",
    ),
    "dilation ignored": (
        _size(lambda n, k, s, d: (n - k) // s + 1, lambda n, k, s, d: math.ceil(n / s)),
        "ignored the dilation",
    ),
    "span d·k": (_size(lambda n, k, s, d: (n - d * k) // s + 1, lambda n, k, s, d: -(-n // s)), "not d·k"),
    "valid as same": (_size(lambda n, k, s, d: math.ceil(n / s)), "you used the 'same' formula"),
    "same is n": (_size(_right_valid, lambda n, k, s, d: n), "returned n whatever the stride"),
    "same floor": (_size(_right_valid, lambda n, k, s, d: n // s), "For 'same' you rounded down"),
    "same no rounding": (_size(_right_valid, lambda n, k, s, d: n / s), "you return a fraction when s"),
    "same as valid": (_size(_right_valid), "you used the 'valid' formula"),
    "same with (k-1)//2": (
        _size(_right_valid, lambda n, k, s, d: (n + 2 * (d * (k - 1) // 2) - d * (k - 1) - 1) // s + 1),
        "padded (k−1)//2 on each side",
    ),
    "returns a tuple": (lambda n, k, stride=1, dilation=1, padding="valid": (n, n), "one whole number"),
}


def _cases(mistakes):
    return [pytest.param(answer, phrase, id=name) for name, (answer, phrase) in mistakes.items()]


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q1_MISTAKES))
def test_q1_mistakes(answer, phrase):
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


def test_q1_unforeseen_mistake_gets_the_formula():
    fb = ex.q1.evaluate(_size(lambda n, k, s, d: n - k))
    assert fb.status == "incorrect" and "floor((n − d(k−1) − 1) / s) + 1" in fb.hint
    assert fb.expected == "5" and fb.got == "4"  # the first probe: n=7, k=3


# ---------------------------------------------------------------------------------------------
# Q2
# ---------------------------------------------------------------------------------------------


def _total(n, k, s, d):
    return max((math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)


def _floor_pad(n, k, s, d):
    total = max((n // s - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


Q2_MISTAKES = {
    "extra before": (
        lambda n, k, s=1, d=1: (_total(n, k, s, d) - _total(n, k, s, d) // 2, _total(n, k, s, d) // 2),
        "you put the extra zero before",
    ),  # fmt: skip
    "stride-1 rule": (
        lambda n, k, s=1, d=1: (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2),
        "stride-1 rule",
    ),
    "dilation ignored": (lambda n, k, s=1, d=1: same_padding(n, k, s, 1), "You ignored the dilation"),
    "k//2 each side": (lambda n, k, s=1, d=1: (k // 2, k // 2), "k//2 on both sides"),
    "(k-1)//2 each side": (lambda n, k, s=1, d=1: (d * (k - 1) // 2,) * 2, "(k−1)//2 on both sides"),
    "all after": (lambda n, k, s=1, d=1: (0, _total(n, k, s, d)), "all the padding after"),
    "all before": (lambda n, k, s=1, d=1: (_total(n, k, s, d), 0), "all the padding before"),
    "floor(n/s)": (lambda n, k, s=1, d=1: _floor_pad(n, k, s, d), "floor(n / s) outputs"),
    "no max(., 0)": (
        lambda n, k, s=1, d=1: ((t := (math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n) // 2, t - t // 2),
        "never negative",
    ),
    "returns the total": (lambda n, k, s=1, d=1: _total(n, k, s, d), "a pair of whole numbers"),
    "odd split": (
        lambda n, k, s=1, d=1: (_total(n, k, s, d) // 3, _total(n, k, s, d) - _total(n, k, s, d) // 3),
        "The totals are right but the split is not",
    ),  # fmt: skip
}


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q2_MISTAKES))
def test_q2_mistakes(answer, phrase):
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# Q3: a learner-style convolution with one thing wrong
# ---------------------------------------------------------------------------------------------


def _conv_variant(
    flip=False,
    bias_times=1,
    first_channel_only=False,
    stride_in_size=True,
    stride_in_index=True,
    dilation_in_size=True,
    dilation_in_index=True,
    pads=None,
    transpose_kernel=False,
    pad_when_valid=False,
):
    """conv2d_loops's logic with one thing changed; ``pads(n, k, s, d)`` replaces same_padding."""

    def answer(x, kernel, bias, stride=1, padding="valid", dilation=1):
        if flip:
            kernel = kernel[::-1, ::-1]
        if transpose_kernel:
            kernel = kernel.transpose(1, 0, 2, 3)
        if first_channel_only:
            x, kernel = x[..., :1], kernel[:, :, :1]
        rule = pads or same_padding
        if padding == "same" or pad_when_valid:
            (t, b), (left, r) = (rule(x.shape[i], kernel.shape[i], stride, dilation) for i in (0, 1))
            x = np.pad(x, ((t, b), (left, r), (0, 0)))
        kh, kw, _, c_out = kernel.shape
        s_size, s_index = (stride if stride_in_size else 1), (stride if stride_in_index else 1)
        d_size, d_index = (dilation if dilation_in_size else 1), (dilation if dilation_in_index else 1)
        h_out = (x.shape[0] - d_size * (kh - 1) - 1) // s_size + 1
        w_out = (x.shape[1] - d_size * (kw - 1) - 1) // s_size + 1
        y = np.zeros((h_out, w_out, c_out))
        for i in range(h_out):
            for j in range(w_out):
                for u in range(kh):
                    for v in range(kw):
                        y[i, j] += x[i * s_index + u * d_index, j * s_index + v * d_index] @ kernel[u, v]
        return y + bias_times * bias

    return answer


Q3_MISTAKES = {
    "flipped kernel (true convolution)": (
        _conv_variant(flip=True),
        "Keras's Conv2D computes a cross-correlation",
    ),
    "no bias": (_conv_variant(bias_times=0), "forgot to add the bias"),
    "bias added per input channel": (_conv_variant(bias_times=2), "The bias is added C_in times"),
    "input channels forgotten": (_conv_variant(first_channel_only=True), "Only the first input channel"),
    "kernel transposed": (_conv_variant(transpose_kernel=True), "kernel transposed"),
    "stride ignored": (_conv_variant(stride_in_size=False, stride_in_index=False), "ignored the stride"),
    "stride only in the size": (
        _conv_variant(stride_in_index=False),
        "the stride is missing from the indices",
    ),
    "dilation ignored": (
        _conv_variant(
            dilation_in_size=False, dilation_in_index=False, pads=lambda n, k, s, d: same_padding(n, k, s)
        ),
        "You ignored the dilation",
    ),
    "dilation only in the size": (_conv_variant(dilation_in_index=False), "the taps are next to each other"),
    "padding when valid": (_conv_variant(pad_when_valid=True), "You padded although padding='valid'"),
    "no padding for same": (_conv_variant(pads=lambda n, k, s, d: (0, 0)), "you did not pad"),
    "padding after only": (
        _conv_variant(pads=lambda n, k, s, d: (0, sum(same_padding(n, k, s, d)))),
        "only after",
    ),
    "padding before only": (
        _conv_variant(pads=lambda n, k, s, d: (sum(same_padding(n, k, s, d)), 0)),
        "only before",
    ),
    "extra zero before": (
        _conv_variant(pads=lambda n, k, s, d: same_padding(n, k, s, d)[::-1]),
        "at the top/left",
    ),
    "k//2 each side": (_conv_variant(pads=lambda n, k, s, d: (k // 2, k // 2)), "k//2 on every side"),
    "(k-1)//2 each side": (
        _conv_variant(pads=lambda n, k, s, d: ((k - 1) // 2,) * 2),
        "(k−1)//2 on every side",
    ),
    "same padding of stride 1": (
        _conv_variant(pads=lambda n, k, s, d: (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)),
        "You padded as for stride 1",
    ),
    "same padding without dilation": (
        _conv_variant(pads=lambda n, k, s, d: same_padding(n, k, s, 1)),
        "Your padding ignores the dilation",
    ),
    "input channels kept": (
        lambda x, kernel, bias, stride=1, padding="valid", dilation=1: np.stack(
            [conv2d_einsum(x[..., c : c + 1], kernel[:, :, c : c + 1], bias) for c in range(x.shape[2])],
            axis=2,
        ),
        "sum over the input channels c too",
    ),
    "output channels summed": (
        lambda x, kernel, bias, stride=1, padding="valid", dilation=1: conv2d_einsum(x, kernel, bias).sum(
            axis=-1
        ),
        "One output map per filter",
    ),
}


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q3_MISTAKES))
def test_q3_mistakes(answer, phrase):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.parametrize(
    ("exercise", "mistakes"),
    [(ex.q1, Q1_MISTAKES), (ex.q2, Q2_MISTAKES), (ex.q3, Q3_MISTAKES)],
)
def test_every_mistake_gets_a_different_hint(exercise, mistakes):
    hints = [exercise.evaluate(answer).hint for answer, _ in mistakes.values()]
    assert len(set(hints)) == len(hints)
    assert exercise.hints[0] not in hints  # none of them falls back to the exercise's generic hint


def test_a_wrong_convolution_shows_expected_and_got():
    fb = ex.q3.evaluate(Q3_MISTAKES["no bias"][0])
    assert fb.expected.startswith("channel 0:") and fb.got.startswith("channel 0:") and fb.expected != fb.got
    assert "probe 'valid'" in fb.message


def test_the_probes_separate_every_size_mistake():
    for padding, mistakes in (("valid", ex._size_valid_mistakes()), ("same", ex._size_same_mistakes())):
        vectors = [tuple(ex.reference_output_size(*p, padding) for p in ex.OUTPUT_SIZE_PROBES)]
        vectors += [tuple(wrong(*p) for p in ex.OUTPUT_SIZE_PROBES) for _, wrong, _ in mistakes]
        assert len(set(vectors)) == len(vectors), padding


def test_the_probes_separate_every_padding_mistake():
    vectors = [tuple(ex.reference_same_padding(*p) for p in ex.SAME_PADDING_PROBES)]
    vectors += [tuple(tuple(wrong(*p)) for p in ex.SAME_PADDING_PROBES) for _, wrong, _ in ex._pad_mistakes()]
    assert len(set(vectors)) == len(vectors)


def test_each_convolution_mistake_differs_from_the_right_answer_where_it_is_named():
    for p in ex.make_conv_probes():
        want = ex.reference_conv2d(p["x"], p["kernel"], p["bias"], p["stride"], p["padding"], p["dilation"])
        for name, wrong, _ in ex._conv_mistakes(p):
            assert (
                wrong.shape != want.shape
                or not np.allclose(wrong, want)
                or name
                in {
                    "bias per input channel",  # one input channel: the same thing
                    "first input channel only",
                    "extra zero before",  # an even total: nothing extra to misplace
                    "k//2 each side",  # an odd kernel: k//2 is right
                    "(k-1)//2 each side",
                    "same padding of stride 1",  # stride 1: the stride-1 rule is right
                }
            ), (p["name"], name)


# ---------------------------------------------------------------------------------------------
# After the exercises: the learner's convolution on a real image
# ---------------------------------------------------------------------------------------------


def test_show_edges_waits_for_q3_then_compares_with_keras():
    image = np.random.default_rng(5).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    waiting = ex.show_edges(_not_implemented, image)
    assert isinstance(waiting, Feedback) and waiting.status == "not_done"
    wrong = ex.show_edges(Q3_MISTAKES["flipped kernel (true convolution)"][0], image)
    assert isinstance(wrong, Feedback) and wrong.status == "incorrect"

    fig = ex.show_edges(conv2d_einsum, image, stride=2)
    assert [a.text for a in fig.layout.annotations][:2] == [
        "|Sobel x|: vertical edges",
        "|Sobel y|: horizontal edges",
    ]
    assert fig.layout.meta["shape"] == [10, 15, 2]
    assert fig.layout.meta["max_difference"] < 1e-5 and "Keras" in fig.layout.title.text


# ---------------------------------------------------------------------------------------------
# Mixed precision: on a GPU (mixed_float16) or a TPU (mixed_bfloat16) Keras layers compute in
# float16 or bfloat16. q3's probes are small integers whose sums both store exactly, so a right
# answer built on a Keras layer passes with q3's float32 tolerance, a mistake is still named, and
# show_edges still compares with a float32 Conv2D.
# ---------------------------------------------------------------------------------------------


def conv2d_keras_layer(x, kernel, bias, stride=1, padding="valid", dilation=1):
    """A right answer that lets a Conv2D layer (at the global policy's precision) do the sum."""
    import keras

    layer = keras.layers.Conv2D(kernel.shape[3], kernel.shape[:2], strides=stride, dilation_rate=dilation)
    layer.build((None, *_pad(x, kernel, stride, padding, dilation).shape))
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return layer(_pad(x, kernel, stride, padding, dilation)[None].astype("float32"))[0]


def test_right_answers_pass_under_mixed_precision(mixed_policy):
    assert str(conv2d_keras_layer(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), np.zeros(1)).dtype.name) in (
        "float16",
        "bfloat16",
    )
    for answer in (conv2d_keras_layer, conv2d_einsum, conv2d_tensorflow):
        fb = ex.q3.evaluate(answer)
        assert fb.passed, str(fb)


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (
            lambda x, kernel, bias, **kw: conv2d_keras_layer(x, kernel[::-1, ::-1], bias, **kw),
            "Keras's Conv2D computes a cross-correlation",
        ),
        (
            lambda x, kernel, bias, **kw: conv2d_keras_layer(x, kernel, 0 * bias, **kw),
            "forgot to add the bias",
        ),
    ],
    ids=["flipped kernel", "no bias"],
)
def test_mistakes_named_under_mixed_precision(mixed_policy, answer, phrase):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.slow
def test_show_edges_compares_with_a_float32_keras_layer_under_mixed_precision(mixed_policy):
    image = np.random.default_rng(5).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    fig = ex.show_edges(conv2d_einsum, image, stride=2)
    assert fig.layout.meta["max_difference"] < 1e-5
