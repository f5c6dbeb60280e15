"""Lab 04's checks: right answers in several styles pass, each named mistake gets its own hint,
placeholders are "not done yet", a learner's exception names their line, and the references agree
with Keras's Conv2DTranspose and with tf.GradientTape."""

import functools
import math

import numpy as np
import pytest

from utils.checks import lab04 as ex

# ---------------------------------------------------------------------------------------------
# Right answers, written the ways learners write them, and the mistakes, as learners write them
# ---------------------------------------------------------------------------------------------


def receptive_field(layers, *, own_stride=False, strides=True, dilation=True, minus_one=True):
    seen, spacing = 1, 1
    for k, s, d in layers:
        d = d if dilation else 1
        if own_stride and strides:
            spacing *= s
        seen += (k - 1 if minus_one else k) * d * spacing
        if strides and not own_stride:
            spacing *= s
    return seen


def receptive_field_backwards(layers):
    """From the last layer back to the input: r ← s·r + (d(k − 1) + 1 − s)."""
    r = 1
    for k, s, d in reversed(layers):
        r = s * r + d * (k - 1) + 1 - s
    return r


def receptive_field_numpy(layers):
    k, s, d = np.array(layers).T
    spacing = np.concatenate([[1], np.cumprod(s)[:-1]])
    return int(1 + np.sum(d * (k - 1) * spacing))


def transposed_size(n, k, stride, padding):
    return n * stride if padding == "same" else n * stride + max(k - stride, 0)


def transposed_size_max_form(n, k, stride, padding):
    return n * stride if padding == "same" else max((n - 1) * stride + k, n * stride)


def _pads(n, k, s, padding):
    total = max((math.ceil(n / s) - 1) * s + k - n, 0) if padding == "same" else 0
    return total // 2, total - total // 2


def input_grad(
    dy, kernel, shape, stride, padding, *, flip=False, transpose=False, swap=False, crop=True, spread=True
):
    """The right dL/dx with the defaults; each keyword is a mistake learners make."""
    h, w, c_in = shape
    kh, kw = kernel.shape[:2]
    k = kernel[::-1, ::-1] if flip else kernel
    k = k.swapaxes(2, 3) if transpose else k
    (t, b), (left, r) = _pads(h, kh, stride, padding), _pads(w, kw, stride, padding)
    if swap:
        t, b, left, r = b, t, r, left
    if not crop:
        t = b = left = r = 0
    step = stride if spread else 1
    big = np.zeros((h + t + b + 3 * kh * stride, w + left + r + 3 * kw * stride, c_in))
    for i in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            big[i * step : i * step + kh, j * step : j * step + kw] += k @ dy[i, j]
    return big[t : t + h, left : left + w]


def input_grad_tf(dy, kernel, shape, stride, padding):
    import tensorflow as tf

    out = tf.nn.conv2d_transpose(dy[None], kernel, (1, *shape), stride, padding.upper())
    return out[0]


def input_grad_tape(dy, kernel, shape, stride, padding):
    import tensorflow as tf

    x = tf.zeros((1, *shape), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.conv2d(x, tf.constant(kernel), stride, padding.upper())
    return tape.gradient(y, x, output_gradients=tf.constant(dy[None]))[0].numpy()


def kernel_grad(
    x, dy, size, stride, padding, *, swap=False, spread=True, mean=False, sum_dy=False, flip=False
):
    kh, kw = size
    (t, b), (left, r) = _pads(x.shape[0], kh, stride, padding), _pads(x.shape[1], kw, stride, padding)
    if swap:
        t, b, left, r = b, t, r, left
    xp = np.pad(x, ((t, b + 3 * kh * stride), (left, r + 3 * kw * stride), (0, 0)))
    step = stride if spread else 1
    dk = np.zeros((kh, kw, x.shape[2], dy.shape[2]))
    for i in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            g = dy[i, j].sum(keepdims=True).repeat(dy.shape[2]) if sum_dy else dy[i, j]
            dk += np.einsum("uvc,o->uvco", xp[i * step : i * step + kh, j * step : j * step + kw], g)
    dk = dk[::-1, ::-1] if flip else dk
    return dk / (dy.shape[0] * dy.shape[1]) if mean else dk


def kernel_grad_tf(x, dy, size, stride, padding):
    import tensorflow as tf

    shape = (*size, x.shape[2], dy.shape[2])
    return tf.compat.v1.nn.conv2d_backprop_filter(
        x[None], shape, dy[None], (1, stride, stride, 1), padding.upper()
    )


RIGHT = [
    (ex.q1, receptive_field),
    (ex.q1, receptive_field_backwards),
    (ex.q1, receptive_field_numpy),
    (ex.q2, transposed_size),
    (ex.q2, transposed_size_max_form),
    (ex.q3, input_grad),
    (ex.q4, kernel_grad),
]


@pytest.mark.parametrize(("exercise", "answer"), RIGHT, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answers_pass(exercise, answer):
    feedback = exercise.evaluate(answer)
    assert feedback.passed, str(feedback)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("exercise", "answer"), [(ex.q3, input_grad_tf), (ex.q3, input_grad_tape), (ex.q4, kernel_grad_tf)]
)
def test_tensorflow_answers_pass(exercise, answer):
    feedback = exercise.evaluate(answer)
    assert feedback.passed, str(feedback)


P = functools.partial
MISTAKES = [
    (ex.q1, P(receptive_field, strides=False), "strides ignored"),
    (ex.q1, P(receptive_field, own_stride=True), "each layer's own stride counted"),
    (ex.q1, P(receptive_field, dilation=False), "dilation ignored"),
    (ex.q1, P(receptive_field, minus_one=False), "k instead of k − 1"),
    (ex.q2, lambda n, k, s, p: (n - k) // s + 1 if p == "valid" else math.ceil(n / s), "the forward formula"),
    (ex.q2, lambda n, k, s, p: (n - 1) * s + k if p == "valid" else n * s, "(n − 1)s + k when k < s"),
    (ex.q2, lambda n, k, s, p: n * s, "overhang left out"),
    (ex.q2, lambda n, k, s, p: n + k - 1 if p == "valid" else n, "stride ignored"),
    (
        ex.q2,
        lambda n, k, s, p: (
            transposed_size(n, k, s, p) if p == "valid" else (n - 1) * s + k - 2 * ((k - 1) // 2)
        ),
        "symmetric cropping for 'same'",
    ),  # fmt: skip
    (ex.q3, P(input_grad, flip=True), "kernel not flipped"),
    (ex.q3, P(input_grad, transpose=True), "channels not transposed"),
    (ex.q3, P(input_grad, swap=True), "padding cropped on the wrong side"),
    (ex.q3, P(input_grad, crop=False), "padding ignored"),
    (ex.q3, P(input_grad, spread=False), "dy not spread out by the stride"),
    (ex.q4, P(kernel_grad, flip=True), "flipped"),
    (ex.q4, P(kernel_grad, sum_dy=True), "dy summed over its channels"),
    (ex.q4, P(kernel_grad, spread=False), "stride ignored"),
    (ex.q4, P(kernel_grad, swap=True), "padding on the wrong side"),
    (ex.q4, P(kernel_grad, mean=True), "averaged over positions"),
]
HINTS = {
    ex.q1: ex.Q1_MISTAKES,
    ex.q2: ex.Q2_MISTAKES,
    ex.q3: ex.Q3_MISTAKES,
    ex.q4: ex.Q4_MISTAKES,
}


@pytest.mark.parametrize(("exercise", "answer", "name"), MISTAKES, ids=[m[2] for m in MISTAKES])
def test_each_mistake_is_named_with_its_own_hint(exercise, answer, name):
    feedback = exercise.evaluate(answer)
    assert feedback.status == "incorrect", str(feedback)
    mistake = next(m for m in HINTS[exercise] if m.name == name)
    assert feedback.hint == mistake.hint and feedback.got.endswith(name), str(feedback)


def test_every_mistake_of_the_lab_is_tested_and_hints_differ():
    tested = {(ex_, name) for ex_, _, name in MISTAKES}
    for exercise, mistakes in HINTS.items():
        assert {(exercise, m.name) for m in mistakes} <= tested
        assert len({m.hint for m in mistakes}) == len(mistakes)


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
@pytest.mark.parametrize("placeholder", [..., None, "raise"])
def test_placeholders_are_not_done(exercise, placeholder):
    def not_implemented(*args):
        raise NotImplementedError

    answer = not_implemented if placeholder == "raise" else placeholder
    assert exercise.evaluate(answer).status == "not_done"


def test_a_learners_exception_names_their_line_not_the_course():
    def conv_input_grad(dy, kernel, input_shape, stride, padding):
        return kernel.reshape(input_shape)  # sizes that do not fit

    feedback = ex.q3.evaluate(conv_input_grad)
    assert feedback.status == "error" and "conv_input_grad" not in feedback.message
    assert "line" in feedback.message and "kernel.reshape(input_shape)" in feedback.message
    assert "utils/checks" not in str(feedback)


def test_wrong_shapes_and_types_are_explained():
    feedback = ex.q4.evaluate(lambda x, dy, size, s, p: np.zeros((3, 3)))
    assert feedback.status == "incorrect" and "shape" in feedback.message
    assert ex.q1.evaluate(lambda layers: "five").status == "incorrect"
    assert ex.q2.evaluate(lambda n, k, s, p: n * s + 0.5).status == "incorrect"


def test_an_unforeseen_wrong_gradient_gets_the_first_hint():
    feedback = ex.q3.evaluate(lambda dy, kernel, shape, s, p: np.ones(shape))
    assert feedback.status == "incorrect" and feedback.hint == ex.q3.hints[0]


# ---------------------------------------------------------------------------------------------
# The references against TensorFlow
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_reference_sizes_are_conv2d_transposes():
    import keras

    for n, k, s, p in ex.SIZE_PROBES:
        y = keras.layers.Conv2DTranspose(1, k, strides=s, padding=p)(np.zeros((1, n, n, 1), "float32"))
        assert y.shape[1] == ex.reference_transposed_size(n, k, s, p), (n, k, s, p)


@pytest.mark.slow
def test_the_gradient_engine_is_gradient_tape():
    import tensorflow as tf

    for p in ex.make_probes():
        x, kernel = tf.constant(p["x"][None]), tf.constant(p["kernel"])
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.nn.conv2d(x, kernel, p["stride"], p["padding"].upper())
            loss = tf.reduce_sum(y * p["dy"][None])
        dx, dk = tape.gradient(loss, [x, kernel])
        np.testing.assert_allclose(ex._dx(p), dx.numpy()[0], atol=1e-10)
        np.testing.assert_allclose(ex._dk(p), dk.numpy(), atol=1e-10)


@pytest.mark.slow
def test_compare_with_tape_waits_for_q3_and_q4_then_agrees():
    assert ex.compare_with_tape(P(input_grad, flip=True), kernel_grad).status == "incorrect"
    table = ex.compare_with_tape(input_grad, kernel_grad)
    assert len(table) == 3 and table.iloc[:, 2:].to_numpy().max() < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize(
    ("exercise", "answer"), [(ex.q3, input_grad), (ex.q3, input_grad_tf), (ex.q4, kernel_grad)]
)
def test_right_answers_pass_under_mixed_precision(mixed_policy, exercise, answer):
    assert exercise.evaluate(answer).passed


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "answer", "name"), [m for m in MISTAKES if m[0] in (ex.q3, ex.q4)])
def test_mistakes_are_named_under_mixed_precision(mixed_policy, exercise, answer, name):
    feedback = exercise.evaluate(answer)
    assert feedback.status == "incorrect" and feedback.got.endswith(name), str(feedback)
