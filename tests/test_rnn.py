"""utils.rnn: the NumPy recurrences equal Keras's layers, BPTT equals GradientTape, and the measurements
(gradient norms by distance, the memory task, clipping) do what their docstrings say."""

import numpy as np
import pytest

from utils import rnn
from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5


def random_inputs(seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(BATCH, STEPS, FEATURES)).astype(dtype)


def randomise(layer, seed: int) -> list[np.ndarray]:
    """Give every weight of a built layer random values, biases included (Keras starts them at 0 or 1)."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(scale=0.5, size=w.shape).astype(w.dtype) for w in layer.get_weights()]
    layer.set_weights(weights)
    return layer.get_weights()


def built(layer, x):
    layer(x[:1])  # builds the weights from the input shape
    return layer


# ---------------------------------------------------------------------------------------------------------
# forward passes against Keras


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_simple_rnn_forward_equals_keras(dtype):
    x = random_inputs(1, dtype)
    layer = built(keras.layers.SimpleRNN(UNITS, return_sequences=True, dtype=dtype), x)
    weights = randomise(layer, 2)
    h0 = np.random.default_rng(3).normal(size=(BATCH, UNITS)).astype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}
    ours = rnn.simple_rnn_forward(x, *weights)
    assert ours.shape == (BATCH, STEPS, UNITS) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, np.asarray(layer(x)), **tol)
    np.testing.assert_allclose(
        rnn.simple_rnn_forward(x, *weights, h0=h0), np.asarray(layer(x, initial_state=h0)), **tol
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_forward_equals_keras_including_the_cell_state(dtype):
    x = random_inputs(4, dtype)
    layer = built(keras.layers.LSTM(UNITS, return_sequences=True, return_state=True, dtype=dtype), x)
    weights = randomise(layer, 5)
    rng = np.random.default_rng(6)
    h0, c0 = (rng.normal(size=(BATCH, UNITS)).astype(dtype) for _ in range(2))
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}
    for state in (None, [h0, c0]):
        seq, h_last, c_last = (np.asarray(o) for o in layer(x, initial_state=state))
        h_seq, c_seq = rnn.lstm_forward(x, *weights, *(state or []))
        np.testing.assert_allclose(h_seq, seq, **tol)
        np.testing.assert_allclose(h_seq[:, -1], h_last, **tol)
        np.testing.assert_allclose(c_seq[:, -1], c_last, **tol)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gru_forward_equals_keras_with_either_reset_position(reset_after, dtype):
    x = random_inputs(7, dtype)
    layer = keras.layers.GRU(UNITS, return_sequences=True, reset_after=reset_after, dtype=dtype)
    weights = randomise(built(layer, x), 8)
    assert weights[2].shape == ((2, 3 * UNITS) if reset_after else (3 * UNITS,))
    h0 = np.random.default_rng(9).normal(size=(BATCH, UNITS)).astype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(
        rnn.gru_forward(x, *weights, reset_after=reset_after), np.asarray(layer(x)), **tol
    )
    np.testing.assert_allclose(
        rnn.gru_forward(x, *weights, h0=h0, reset_after=reset_after),
        np.asarray(layer(x, initial_state=h0)),
        **tol,
    )


def test_the_comparisons_can_fail_on_the_usual_mistakes():
    """Swapped LSTM gates, the textbook GRU convention and the wrong reset position all differ from Keras."""
    x = random_inputs(10)
    lstm = built(keras.layers.LSTM(UNITS, return_sequences=True), x)
    w, u, b = randomise(lstm, 11)
    expected = np.asarray(lstm(x))
    np.testing.assert_allclose(rnn.lstm_forward(x, w, u, b)[0], expected, rtol=1e-5, atol=1e-6)

    def i_c_f_o(m):  # the blocks read as i, c, f, o: forget and candidate exchanged
        i, f, c, o = np.split(m, 4, axis=-1)
        return np.concatenate([i, c, f, o], axis=-1)

    swapped = rnn.lstm_forward(x, i_c_f_o(w), i_c_f_o(u), i_c_f_o(b))[0]
    assert np.max(np.abs(swapped - expected)) > 1e-2

    gru = built(keras.layers.GRU(UNITS, return_sequences=True), x)
    w, u, b = randomise(gru, 12)
    expected = np.asarray(gru(x))

    def textbook_z(m):  # negating the z block turns σ(a) into 1 - σ(a): the other convention's z
        z, r, h = np.split(m, 3, axis=-1)
        return np.concatenate([-z, r, h], axis=-1)

    flipped = rnn.gru_forward(x, textbook_z(w), textbook_z(u), textbook_z(b))
    assert np.max(np.abs(flipped - expected)) > 1e-2
    wrong_reset = rnn.gru_forward(x, w, u, b[0] + b[1], reset_after=False)  # same biases, reset before U
    assert np.max(np.abs(wrong_reset - expected)) > 1e-2


def test_references_match_keras_layers_under_a_mixed_policy(mixed_policy):
    """Under mixed precision the layers compute in half precision: equal to the reference within its error."""
    x = random_inputs(22)
    atol = 5e-3 if mixed_policy == "mixed_float16" else 4e-2  # 11 and 8 significant bits, 6 steps
    lstm = built(keras.layers.LSTM(UNITS, return_sequences=True), x)
    gru = built(keras.layers.GRU(UNITS, return_sequences=True), x)
    for layer, forward, seed in [(lstm, lambda *a: rnn.lstm_forward(*a)[0], 23), (gru, rnn.gru_forward, 24)]:
        weights = randomise(layer, seed)
        out = layer(x)
        assert out.dtype == mixed_policy.split("_")[1]
        np.testing.assert_allclose(np.asarray(out, np.float32), forward(x, *weights), atol=atol)


def test_forward_passes_accept_float16_inputs_and_check_shapes():
    x = random_inputs(13)
    rng = np.random.default_rng(14)
    w, u, b = rng.normal(size=(FEATURES, UNITS)), rng.normal(size=(UNITS, UNITS)), rng.normal(size=UNITS)
    half = rnn.simple_rnn_forward(x.astype(np.float16), w.astype(np.float16), u, b)
    full = rnn.simple_rnn_forward(x.astype(np.float16).astype(np.float64), w.astype(np.float16), u, b)
    assert half.dtype == np.float64 and np.array_equal(half, full)  # widened first, then computed
    with pytest.raises(ValueError, match="recurrent_kernel"):
        rnn.lstm_forward(x, rng.normal(size=(FEATURES, 4 * UNITS)), u, np.zeros(4 * UNITS))
    with pytest.raises(ValueError, match="bias"):
        rnn.gru_forward(x, rng.normal(size=(FEATURES, 3 * UNITS)), rng.normal(size=(UNITS, 3 * UNITS)), b)
    with pytest.raises(ValueError, match="x must be"):
        rnn.simple_rnn_forward(x[0], w, u, b)


# ---------------------------------------------------------------------------------------------------------
# back-propagation through time


def test_bptt_equals_gradient_tape():
    x = random_inputs(15, np.float64)
    layer = built(keras.layers.SimpleRNN(UNITS, dtype="float64"), x)
    w, u, b = randomise(layer, 16)
    rng = np.random.default_rng(17)
    h0, upstream = rng.normal(size=(BATCH, UNITS)), rng.normal(size=(BATCH, UNITS))
    x_t, h0_t = tf.constant(x), tf.constant(h0)
    with tf.GradientTape() as tape:
        tape.watch([x_t, h0_t])
        loss = tf.reduce_sum(layer(x_t, initial_state=h0_t) * upstream)
    kernel, recurrent, bias = layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias
    dw, du, db, dx, dh0 = tape.gradient(loss, [kernel, recurrent, bias, x_t, h0_t])

    ours = rnn.simple_rnn_bptt(x, w, u, b, upstream, h0=h0)
    tol = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(ours["loss"], float(loss), **tol)
    for name, theirs in [("dW", dw), ("dU", du), ("db", db), ("dx", dx), ("dh0", dh0)]:
        assert ours[name].shape == tuple(theirs.shape), name
        np.testing.assert_allclose(ours[name], np.asarray(theirs), **tol, err_msg=name)
    np.testing.assert_allclose(ours["h"], rnn.simple_rnn_forward(x, w, u, b, h0), **tol)
    np.testing.assert_array_equal(ours["dh"][:, -1], upstream)  # δ_T is the upstream gradient


def test_bptt_on_float32_keras_weights_and_a_finite_difference():
    x = random_inputs(18)
    layer = built(keras.layers.SimpleRNN(UNITS), x)
    w, u, b = randomise(layer, 19)
    upstream = np.random.default_rng(20).normal(size=(BATCH, UNITS))
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x_t) * tf.constant(upstream, tf.float32))
    grads = tape.gradient(loss, [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias])
    ours = rnn.simple_rnn_bptt(x, w, u, b, upstream)
    for name, theirs in zip(["dW", "dU", "db"], grads, strict=True):
        np.testing.assert_allclose(ours[name], np.asarray(theirs), rtol=1e-4, atol=1e-5, err_msg=name)
    # an independent check of one entry of dU: a central difference of the float64 loss
    eps, (i, j) = 1e-6, (1, 3)
    bumped = [u.astype(np.float64).copy() for _ in range(2)]
    bumped[0][i, j] += eps
    bumped[1][i, j] -= eps
    plus, minus = (np.sum(rnn.simple_rnn_forward(x, w, m, b)[:, -1] * upstream) for m in bumped)
    assert ours["dU"][i, j] == pytest.approx((plus - minus) / (2 * eps), rel=1e-6, abs=1e-8)


# ---------------------------------------------------------------------------------------------------------
# vanishing and exploding gradients


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.0, 1.1, 2.0])
def test_recurrent_matrix_has_the_requested_radius(radius):
    m = rnn.recurrent_matrix(16, radius, seed=3)
    assert m.shape == (16, 16)
    assert rnn.spectral_radius(m) == pytest.approx(radius, rel=1e-12)
    np.testing.assert_allclose(m @ m.T, radius**2 * np.eye(16), atol=1e-12)  # ρ times orthogonal
    gaussian = rnn.recurrent_matrix(16, radius, seed=3, orthogonal=False)
    assert rnn.spectral_radius(gaussian) == pytest.approx(radius, rel=1e-12)
    assert np.array_equal(m, rnn.recurrent_matrix(16, radius, seed=3))
    assert not np.allclose(m, rnn.recurrent_matrix(16, radius, seed=4))


@pytest.mark.parametrize("radius", [0.7, 1.0, 1.3])
def test_linear_gradient_norm_is_radius_to_the_distance(radius):
    norms = rnn.gradient_norms_by_distance(rnn.recurrent_matrix(8, radius, seed=1), 30)
    assert norms.shape == (30,)
    np.testing.assert_allclose(norms, radius ** np.arange(1, 31), rtol=1e-10)


def test_gradient_norms_vanish_below_one_and_explode_above():
    steps = 40
    for activation in ("linear", "tanh"):
        small = rnn.gradient_norms_by_distance(rnn.recurrent_matrix(16, 0.8, 2), steps, activation, seed=5)
        assert np.all(np.diff(small) < 0) and small[-1] < 1e-3, activation
    big = rnn.gradient_norms_by_distance(rnn.recurrent_matrix(16, 1.2, 2), steps, "linear")
    assert np.all(np.diff(big) > 0) and big[-1] > 1e3
    # tanh' ≤ 1, so tanh's norms never exceed the linear bound ρ^d; with no input it stays at
    # tanh'(0) = 1, the linear case, so the gradient explodes there too
    u = rnn.recurrent_matrix(16, 1.2, 2)
    driven = rnn.gradient_norms_by_distance(u, steps, "tanh", seed=5, input_scale=1.0)
    assert np.all(driven <= 1.2 ** np.arange(1, steps + 1) * (1 + 1e-12))
    assert driven[-1] < big[-1] / 10  # saturation takes most of the growth away
    np.testing.assert_allclose(rnn.gradient_norms_by_distance(u, steps, "tanh", input_scale=0.0), big)


def test_gradient_norms_match_tensorflow_jacobians():
    """The product of Jacobians equals ∂h_T/∂h_t computed by TensorFlow on the same recurrence."""
    units, steps, seed, scale = 6, 8, 4, 0.7
    u = rnn.recurrent_matrix(units, 1.1, seed=0, orthogonal=False)
    inputs = scale * np.random.default_rng(seed).standard_normal((steps, units))  # the docstring's e_t
    ours = rnn.gradient_norms_by_distance(u, steps, "tanh", seed=seed, input_scale=scale)
    states = [tf.zeros((1, units), tf.float64)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(states[0])
        for t in range(steps):
            states.append(tf.tanh(states[-1] @ u + inputs[t : t + 1]))
            tape.watch(states[-1])  # each state becomes a source TensorFlow differentiates with respect to
    # row k of every ∂h_T/∂h_t at once: back-propagate the unit vector e_k from h_T
    rows = [
        tape.gradient(states[-1], states[:-1], output_gradients=np.eye(units)[k : k + 1])
        for k in range(units)
    ]
    for d in range(1, steps + 1):
        jac = np.concatenate([row[steps - d].numpy() for row in rows])  # (units of h_T, units of h_{T-d})
        assert ours[d - 1] == pytest.approx(np.linalg.norm(jac, ord=2), rel=1e-10)


# ---------------------------------------------------------------------------------------------------------
# the memory task


def test_first_sign_task_is_balanced_and_decided_by_the_first_step_only():
    x, y = rnn.first_sign_task(1000, 50, seed=0)
    assert x.shape == (1000, 50, 1) and x.dtype == np.float32
    assert y.shape == (1000,) and set(np.unique(y)) == {0, 1} and np.sum(y) == 500
    np.testing.assert_array_equal(y, rnn.first_sign_label(x))
    np.testing.assert_array_equal(np.abs(x[:, 0, 0]), 1.0)
    # shuffle the later steps across sequences and through time: the labels do not move
    rng = np.random.default_rng(1)
    later = x[:, 1:].reshape(-1)
    shuffled = x.copy()
    shuffled[:, 1:] = rng.permutation(later).reshape(1000, 49, 1)
    np.testing.assert_array_equal(rnn.first_sign_label(shuffled), y)
    # no later step carries the label: its mean is the same for both classes (within 5 standard errors)
    gap = x[y == 1, 1:, 0].mean(axis=0) - x[y == 0, 1:, 0].mean(axis=0)
    assert np.all(np.abs(gap) < 5 * np.sqrt(2 / 500))
    again = rnn.first_sign_task(1000, 50, seed=0)
    assert np.array_equal(again[0], x) and np.array_equal(again[1], y)
    x7, y7 = rnn.first_sign_task(7, 3, seed=2)
    assert np.sum(y7 == 0) == 3 and np.sum(y7 == 1) == 4  # odd n: the classes differ by one


# ---------------------------------------------------------------------------------------------------------
# gradient clipping


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_by_global_norm_equals_tensorflow(max_norm):
    rng = np.random.default_rng(21)
    grads = [rng.normal(size=(4, 3)), rng.normal(size=(7,)), rng.normal(size=(2, 2, 2))]
    clipped, norm = rnn.clip_by_global_norm(grads, max_norm)
    tf_clipped, tf_norm = tf.clip_by_global_norm([tf.constant(g) for g in grads], max_norm)
    assert norm == pytest.approx(float(tf_norm), rel=1e-12)
    assert norm == pytest.approx(np.linalg.norm(np.concatenate([g.ravel() for g in grads])), rel=1e-12)
    for ours, theirs in zip(clipped, tf_clipped, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12)
    assert rnn.global_norm(clipped) == pytest.approx(min(norm, max_norm), rel=1e-12)
    for g in grads:
        np.testing.assert_allclose(rnn.clip_by_norm(g, max_norm), tf.clip_by_norm(g, max_norm), rtol=1e-12)


def test_clip_by_global_norm_keeps_direction_and_none():
    grads = [np.array([3.0, 0.0]), None, np.array([[0.0], [4.0]], dtype=np.float32)]  # global norm 5
    clipped, norm = rnn.clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(5.0) and clipped[1] is None
    np.testing.assert_allclose(clipped[0], [0.6, 0.0])
    np.testing.assert_allclose(clipped[2], [[0.0], [0.8]])
    # per-tensor clipping turns the update instead: each piece alone is cut to length 1
    np.testing.assert_allclose(rnn.clip_by_norm(grads[0], 1.0), [1.0, 0.0])
