"""Recurrent networks from their equations: NumPy reference copies for lesson 05b and its lab.

Every function here is plain NumPy (no TensorFlow is imported), computes in float64 whatever the
dtype of its inputs (float32 and float16 arrays and Keras weights are accepted), and returns float64
arrays. The weights use Keras's layout, so ``layer.get_weights()`` of a built Keras layer can be
passed straight in:

* ``kernel`` ``W``, shape ``(features, k * units)``: input to the ``k`` gates side by side;
* ``recurrent_kernel`` ``U``, shape ``(units, k * units)``: previous state to the gates;
* ``bias`` ``b``, shape ``(k * units,)`` (a GRU with ``reset_after=True``: ``(2, 3 * units)``).

Vectors are rows, as in Keras: a step computes ``x_t @ W + h_{t-1} @ U + b`` for a batch at once.
``x`` is always ``(batch, T, features)`` and a sequence of states ``(batch, T, units)``, holding
``h_1 ... h_T`` (the initial state ``h_0`` is not repeated in it).

* :func:`simple_rnn_forward` and :func:`simple_rnn_bptt`: the Elman RNN and back-propagation through
  time written out step by step.
* :func:`lstm_forward` (:func:`lstm_cell`) and :func:`gru_forward` (:func:`gru_cell`): Keras's
  gate orders, ``LSTM_GATES`` and ``GRU_GATES``.
* :func:`recurrent_matrix`, :func:`spectral_radius` and :func:`gradient_norms_by_distance`:
  vanishing and exploding gradients, measured.
* :func:`first_sign_task`: a long-range memory task.
* :func:`global_norm`, :func:`clip_by_global_norm` and :func:`clip_by_norm`: gradient clipping as
  ``tf.clip_by_global_norm`` / ``tf.clip_by_norm`` (Keras optimisers' ``global_clipnorm`` and
  ``clipnorm``) compute it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "GRU_GATES",
    "LSTM_GATES",
    "clip_by_global_norm",
    "clip_by_norm",
    "first_sign_label",
    "first_sign_task",
    "global_norm",
    "gradient_norms_by_distance",
    "gru_cell",
    "gru_forward",
    "lstm_cell",
    "lstm_forward",
    "recurrent_matrix",
    "sigmoid",
    "simple_rnn_bptt",
    "simple_rnn_forward",
    "spectral_radius",
]

LSTM_GATES = ("i", "f", "c", "o")  # input, forget, candidate cell, output: Keras's column blocks, in order
GRU_GATES = ("z", "r", "h")  # update, reset, candidate state: Keras's column blocks, in order


# ---------------------------------------------------------------------------------------------------------
# plumbing: float64 copies and shape checks


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _weights(
    x: Any, kernel: Any, recurrent_kernel: Any, gates: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``x``, ``W``, ``U`` as float64 and the number of units, after checking the shapes agree."""
    x, w, u = _f64(x), _f64(kernel), _f64(recurrent_kernel)
    if x.ndim != 3:
        raise ValueError(f"x must be (batch, time, features), got shape {x.shape}")
    units = u.shape[0]
    if u.shape != (units, gates * units):
        raise ValueError(f"recurrent_kernel must be (units, {gates} * units), got shape {u.shape}")
    if w.shape != (x.shape[2], gates * units):
        raise ValueError(f"kernel must be (features={x.shape[2]}, {gates * units}), got shape {w.shape}")
    return x, w, u, units


def _state(state: Any, batch: int, units: int, name: str) -> np.ndarray:
    if state is None:
        return np.zeros((batch, units))
    state = _f64(state)
    if state.shape != (batch, units):
        raise ValueError(f"{name} must be (batch, units) = {(batch, units)}, got shape {state.shape}")
    return state


def sigmoid(a: Any) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-a))``, computed without overflow for large ``|a|``."""
    a = _f64(a)
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ---------------------------------------------------------------------------------------------------------
# the simple (Elman) RNN


def simple_rnn_forward(x: Any, kernel: Any, recurrent_kernel: Any, bias: Any, h0: Any = None) -> np.ndarray:
    """The hidden states ``(batch, T, units)`` of a simple RNN: ``keras.layers.SimpleRNN``'s forward pass.

    For ``t = 1 ... T``, from ``h_0`` (zeros unless given, shape ``(batch, units)``)::

        a_t = x_t W + h_{t-1} U + b
        h_t = tanh(a_t)

    with ``W = kernel`` ``(features, units)``, ``U = recurrent_kernel`` ``(units, units)`` and
    ``b = bias`` ``(units,)``. Equal to ``SimpleRNN(units, return_sequences=True)`` with the same
    weights (``layer.get_weights()`` is ``[W, U, b]``); its last row is what the layer returns
    without ``return_sequences``.
    """
    x, w, u, units = _weights(x, kernel, recurrent_kernel, 1)
    b = _f64(bias)
    h = _state(h0, x.shape[0], units, "h0")
    states = np.empty((x.shape[0], x.shape[1], units))
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ w + h @ u + b)
        states[:, t] = h
    return states


def simple_rnn_bptt(
    x: Any, kernel: Any, recurrent_kernel: Any, bias: Any, grad_h_last: Any, h0: Any = None
) -> dict[str, np.ndarray]:
    """Back-propagation through time for a simple RNN and the loss ``L = sum(h_T * grad_h_last)``.

    ``grad_h_last`` ``(batch, units)`` is ``∂L/∂h_T``, the gradient arriving from whatever follows the
    last state (any loss of ``h_T`` reduces to this by the chain rule). The forward pass is
    :func:`simple_rnn_forward`; then, going back in time, with ``δ_t = ∂L/∂h_t``::

        δ_T = grad_h_last
        for t = T, T-1, ..., 1:
            g_t      = δ_t * (1 - h_t²)           ∂L/∂a_t, since tanh'(a) = 1 - tanh(a)²
            dW      += x_t^T g_t                   W is used at every step: its gradients add up
            dU      += h_{t-1}^T g_t
            db      += sum over the batch of g_t
            dx_t     = g_t W^T
            δ_{t-1}  = g_t U^T                     the recurrence: δ_{t-1} = (δ_t * (1 - h_t²)) U^T

    Unrolled, ``δ_t = δ_T (∂h_T/∂h_t)`` with the Jacobian ``∂h_T/∂h_t`` a product of ``T - t``
    factors ``diag(1 - h_s²) U^T``: the source of vanishing (factors below 1) and exploding (above 1)
    gradients, see :func:`gradient_norms_by_distance`.

    Returns a dict of float64 arrays: ``dW``, ``dU``, ``db`` (the weights' shapes), ``dx``
    ``(batch, T, features)``, ``dh0`` ``(batch, units)`` (``δ_0``, the gradient with respect to the
    initial state), ``dh`` ``(batch, T, units)`` (``δ_1 ... δ_T``, for plotting how the gradient
    fades), ``h`` (the forward states) and ``loss`` (a 0-d array).
    """
    x, w, u, units = _weights(x, kernel, recurrent_kernel, 1)
    b = _f64(bias)
    batch, steps, _ = x.shape
    h_init = _state(h0, batch, units, "h0")
    h = simple_rnn_forward(x, w, u, b, h_init)
    delta = _state(grad_h_last, batch, units, "grad_h_last")
    loss = np.sum(h[:, -1] * delta)
    grads = {"dW": np.zeros_like(w), "dU": np.zeros_like(u), "db": np.zeros_like(b)}
    dx, dh = np.zeros_like(x), np.zeros_like(h)
    for t in reversed(range(steps)):  # index t holds h_{t+1}; h_prev is h_t
        dh[:, t] = delta
        h_prev = h[:, t - 1] if t > 0 else h_init
        g = delta * (1.0 - h[:, t] ** 2)
        grads["dW"] += x[:, t].T @ g
        grads["dU"] += h_prev.T @ g
        grads["db"] += g.sum(axis=0)
        dx[:, t] = g @ w.T
        delta = g @ u.T
    return {**grads, "dx": dx, "dh0": delta, "dh": dh, "h": h, "loss": np.asarray(loss)}


# ---------------------------------------------------------------------------------------------------------
# LSTM and GRU, in Keras's gate order


def lstm_cell(
    x_t: Any, h_prev: Any, c_prev: Any, kernel: Any, recurrent_kernel: Any, bias: Any
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step: ``(h_t, c_t)`` from ``x_t`` ``(batch, features)`` and the previous ``h``, ``c``.

    The columns of ``W``, ``U`` and ``b`` hold four blocks of ``units`` in Keras's order
    ``i, f, c, o`` (``LSTM_GATES``)::

        i_t = σ(x_t W_i + h_{t-1} U_i + b_i)          input gate
        f_t = σ(x_t W_f + h_{t-1} U_f + b_f)          forget gate
        g_t = tanh(x_t W_c + h_{t-1} U_c + b_c)       candidate cell
        o_t = σ(x_t W_o + h_{t-1} U_o + b_o)          output gate
        c_t = f_t * c_{t-1} + i_t * g_t               the cell state: an additive path through time
        h_t = o_t * tanh(c_t)

    with σ the logistic sigmoid (Keras 3's default ``recurrent_activation``). Keras initialises
    ``b_f`` to 1 (``unit_forget_bias=True``) so that a new LSTM starts by remembering.
    """
    a = _f64(x_t) @ _f64(kernel) + _f64(h_prev) @ _f64(recurrent_kernel) + _f64(bias)
    a_i, a_f, a_c, a_o = np.split(a, 4, axis=-1)
    c = sigmoid(a_f) * _f64(c_prev) + sigmoid(a_i) * np.tanh(a_c)
    return sigmoid(a_o) * np.tanh(c), c


def lstm_forward(
    x: Any, kernel: Any, recurrent_kernel: Any, bias: Any, h0: Any = None, c0: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The hidden and cell states ``(h_seq, c_seq)``, each ``(batch, T, units)``, of an LSTM.

    :func:`lstm_cell` applied for ``t = 1 ... T`` from ``h_0`` and ``c_0`` (zeros unless given).
    ``h_seq`` equals ``keras.layers.LSTM(units, return_sequences=True)`` with the same weights
    (``get_weights()`` is ``[W (features, 4u), U (u, 4u), b (4u,)]``, gates ``i, f, c, o``), and
    ``c_seq[:, -1]`` is the cell state the layer returns with ``return_state=True``.
    """
    x, w, u, units = _weights(x, kernel, recurrent_kernel, 4)
    b = _f64(bias)
    if b.shape != (4 * units,):
        raise ValueError(f"bias must be (4 * units,) = {(4 * units,)}, got shape {b.shape}")
    h = _state(h0, x.shape[0], units, "h0")
    c = _state(c0, x.shape[0], units, "c0")
    h_seq = np.empty((x.shape[0], x.shape[1], units))
    c_seq = np.empty_like(h_seq)
    for t in range(x.shape[1]):
        h, c = lstm_cell(x[:, t], h, c, w, u, b)
        h_seq[:, t], c_seq[:, t] = h, c
    return h_seq, c_seq


def gru_cell(
    x_t: Any, h_prev: Any, kernel: Any, recurrent_kernel: Any, bias: Any, reset_after: bool = True
) -> np.ndarray:
    """One GRU step: ``h_t`` from ``x_t`` ``(batch, features)`` and ``h_{t-1}``, as Keras computes it.

    The columns hold three blocks of ``units`` in Keras's order ``z, r, h`` (``GRU_GATES``).
    With ``reset_after=True`` (Keras's default, and cuDNN's form) ``bias`` is ``(2, 3 * units)``:
    row 0 the input bias ``b``, row 1 the recurrent bias ``b'``::

        z_t  = σ(x_t W_z + b_z + h_{t-1} U_z + b'_z)        update gate
        r_t  = σ(x_t W_r + b_r + h_{t-1} U_r + b'_r)        reset gate
        h~_t = tanh(x_t W_h + b_h + r_t * (h_{t-1} U_h + b'_h))
        h_t  = z_t * h_{t-1} + (1 - z_t) * h~_t

    With ``reset_after=False`` (the original GRU of Cho et al., 2014) ``bias`` is ``(3 * units,)``
    and the reset gate acts before the matrix product: ``h~_t = tanh(x_t W_h + (r_t * h_{t-1}) U_h + b_h)``.

    Mind the last line: in Keras (as in Cho et al. 2014, PyTorch and d2l) ``z_t`` is the share of the
    *old* state that is kept. Chung et al. (2014), Wikipedia and many tutorials write
    ``h_t = (1 - z_t) * h_{t-1} + z_t * h~_t`` instead: the same model with ``z`` replaced by
    ``1 - z``, so weights copied between the two conventions do not give the same outputs.
    """
    x_t, h_prev = _f64(x_t), _f64(h_prev)
    w, u, b = _f64(kernel), _f64(recurrent_kernel), _f64(bias)
    if reset_after:
        b = b.reshape(2, -1)
        x_z, x_r, x_h = np.split(x_t @ w + b[0], 3, axis=-1)
        h_z, h_r, h_h = np.split(h_prev @ u + b[1], 3, axis=-1)
        z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
        candidate = np.tanh(x_h + r * h_h)
    else:
        x_z, x_r, x_h = np.split(x_t @ w + b, 3, axis=-1)
        u_z, u_r, u_h = np.split(u, 3, axis=-1)
        z, r = sigmoid(x_z + h_prev @ u_z), sigmoid(x_r + h_prev @ u_r)
        candidate = np.tanh(x_h + (r * h_prev) @ u_h)
    return z * h_prev + (1.0 - z) * candidate


def gru_forward(
    x: Any, kernel: Any, recurrent_kernel: Any, bias: Any, h0: Any = None, reset_after: bool = True
) -> np.ndarray:
    """The hidden states ``(batch, T, units)`` of a GRU: :func:`gru_cell` for ``t = 1 ... T``.

    Equal to ``keras.layers.GRU(units, return_sequences=True, reset_after=reset_after)`` with the
    same weights (``get_weights()`` is ``[W (features, 3u), U (u, 3u), b]``, gates ``z, r, h``;
    ``b`` is ``(2, 3u)`` with ``reset_after=True``, ``(3u,)`` without). ``h_0`` is zeros unless given.
    Keras's convention ``h_t = z_t * h_{t-1} + (1 - z_t) * h~_t`` is explained in :func:`gru_cell`.
    """
    x, w, u, units = _weights(x, kernel, recurrent_kernel, 3)
    b = _f64(bias)
    expected = (2, 3 * units) if reset_after else (3 * units,)
    if b.shape != expected and not (reset_after and b.shape == (6 * units,)):
        raise ValueError(f"bias must be {expected} with reset_after={reset_after}, got shape {b.shape}")
    h = _state(h0, x.shape[0], units, "h0")
    states = np.empty((x.shape[0], x.shape[1], units))
    for t in range(x.shape[1]):
        h = gru_cell(x[:, t], h, w, u, b, reset_after=reset_after)
        states[:, t] = h
    return states


# ---------------------------------------------------------------------------------------------------------
# vanishing and exploding gradients


def spectral_radius(matrix: Any) -> float:
    """The largest modulus of the eigenvalues of a square matrix, ``max |λ|``."""
    return float(np.max(np.abs(np.linalg.eigvals(_f64(matrix)))))


def recurrent_matrix(
    units: int, spectral_radius: float, seed: int = 0, orthogonal: bool = True
) -> np.ndarray:
    """A random ``(units, units)`` recurrent matrix whose spectral radius is ``spectral_radius``.

    ``orthogonal=True``: ``ρ Q`` with ``Q`` a random orthogonal matrix (the QR factor of a Gaussian
    matrix, column signs fixed so that it is uniformly distributed). Every eigenvalue and every
    singular value of ``Q`` has modulus 1, so ``ρ Q`` has spectral radius *and* spectral norm ``ρ``
    exactly, and ``||(ρ Q)^d||₂ = ρ^d``. ``orthogonal=False``: a Gaussian matrix divided by its own
    spectral radius, then times ``ρ`` (its singular values spread, so norms of powers only
    approach ``ρ^d`` for large ``d``). Float64; cast it for a Keras layer.
    """
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((units, units))
    if orthogonal:
        q, r = np.linalg.qr(a)
        base = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    else:
        base = a / np.max(np.abs(np.linalg.eigvals(a)))
    return spectral_radius * base


def gradient_norms_by_distance(
    recurrent: Any,
    steps: int,
    activation: str = "linear",
    seed: int = 0,
    input_scale: float = 1.0,
) -> np.ndarray:
    """``||∂h_T/∂h_t||₂`` for ``t = T-1, ..., 0``: the norms at distance ``d = T - t = 1 ... T``.

    A recurrence ``h_t = φ(h_{t-1} U + e_t)`` is run for ``T = steps`` steps from ``h_0 = 0``, with
    ``U = recurrent`` ``(units, units)``, ``φ`` the identity (``"linear"``) or ``tanh``, and inputs
    ``e_t`` (standing for ``x_t W + b``, which do not enter the Jacobian) drawn from
    ``N(0, input_scale²)`` with ``seed``. By the chain rule, with row vectors,
    ``dh_t = dh_{t-1} U diag(φ'(a_t))``, so the Jacobians are the products::

        J_T = I,    J_{t-1} = U diag(φ'(a_t)) J_t        (J_t maps a change of h_t to one of h_T)

    and entry ``d - 1`` of the result is the spectral norm (largest singular value) of
    ``J_{T-d}``: the most that a gradient ``∂L/∂h_T`` can grow or shrink on its way back ``d``
    steps. Linear with ``U = ρ Q`` (``Q`` orthogonal) gives exactly ``ρ^d``; since
    ``|tanh'| ≤ 1``, tanh never gives more than ``||U||₂^d``, and with ``input_scale=0`` the state
    stays at 0 where ``tanh'(0) = 1``, the linear case again. Returns float64, shape ``(steps,)``.
    """
    u = _f64(recurrent)
    if u.ndim != 2 or u.shape[0] != u.shape[1]:
        raise ValueError(f"recurrent must be a square matrix, got shape {u.shape}")
    if activation not in ("linear", "tanh"):
        raise ValueError(f"activation must be 'linear' or 'tanh', got {activation!r}")
    units = u.shape[0]
    rng = np.random.default_rng(seed)
    inputs = input_scale * rng.standard_normal((steps, units))
    h, slopes = np.zeros(units), np.ones((steps, units))
    for t in range(steps):  # the forward pass, keeping φ'(a_t) for each step
        a = h @ u + inputs[t]
        h = np.tanh(a) if activation == "tanh" else a
        if activation == "tanh":
            slopes[t] = 1.0 - h**2
    jacobian, norms = np.eye(units), np.empty(steps)
    for d in range(1, steps + 1):  # step T - d + 1 (index steps - d) links h_{T-d} to h_{T-d+1}
        jacobian = (u * slopes[steps - d]) @ jacobian
        norms[d - 1] = np.linalg.norm(jacobian, ord=2)
    return norms


# ---------------------------------------------------------------------------------------------------------
# a long-range memory task


def first_sign_label(x: Any) -> np.ndarray:
    """The label rule of :func:`first_sign_task`: 1 where ``x[:, 0, 0] > 0``, else 0 (int32)."""
    return (_f64(x)[:, 0, 0] > 0).astype(np.int32)


def first_sign_task(n: int, steps: int, seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A memory task: ``(x, y)`` with ``x`` ``(n, steps, 1)`` float32 and ``y`` ``(n,)`` int32 in {0, 1}.

    The first element of each sequence is ``+1`` (label 1) or ``-1`` (label 0); the other
    ``steps - 1`` elements are noise, ``N(0, noise²)``, drawn independently of the label. So the label
    is decided at step 1 alone, and a model that reads the sequence in order must carry one bit
    across ``steps - 1`` distracting inputs before it answers: chance (50 %) is all it gets unless
    its gradient survives the distance (see :func:`gradient_norms_by_distance`). The classes are
    balanced exactly (``n // 2`` of label 0, the rest label 1) and shuffled. Deterministic for a
    ``seed``; :func:`first_sign_label` recomputes ``y`` from ``x``.
    """
    if steps < 1 or n < 1:
        raise ValueError(f"n and steps must be at least 1, got n={n}, steps={steps}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.array([0, 1], dtype=np.int32), [n // 2, n - n // 2]))
    x = noise * rng.standard_normal((n, steps, 1))
    x[:, 0, 0] = np.where(y == 1, 1.0, -1.0)
    return x.astype(np.float32), y


# ---------------------------------------------------------------------------------------------------------
# gradient clipping


def global_norm(grads: Sequence[Any]) -> float:
    """``sqrt(Σ_i ||g_i||²)``: the Euclidean norm of all gradients as one vector (``None`` is skipped)."""
    return float(np.sqrt(sum(np.sum(_f64(g) ** 2) for g in grads if g is not None)))


def clip_by_global_norm(grads: Sequence[Any], max_norm: float) -> tuple[list[np.ndarray | None], float]:
    """``(clipped, norm)`` as ``tf.clip_by_global_norm(grads, max_norm)`` returns them.

    With ``N = global_norm(grads)``, every gradient is scaled by the same factor::

        g_i  ←  g_i * max_norm / max(N, max_norm)

    so nothing changes when ``N ≤ max_norm``, and otherwise the whole update shrinks to length
    ``max_norm`` while keeping its direction (clipping each tensor on its own, :func:`clip_by_norm`,
    would turn it). This is what a Keras optimiser's ``global_clipnorm`` does. ``None`` entries stay
    ``None``; ``norm`` is ``N`` before clipping. Float64 arrays.
    """
    norm = global_norm(grads)
    scale = max_norm / max(norm, max_norm)
    return [None if g is None else _f64(g) * scale for g in grads], norm


def clip_by_norm(grad: Any, max_norm: float) -> np.ndarray:
    """One tensor scaled down to Euclidean norm ``max_norm`` if it is longer (``tf.clip_by_norm``).

    ``g * max_norm / max(||g||, max_norm)``: what a Keras optimiser's ``clipnorm`` does to each
    variable's gradient separately. Float64.
    """
    g = _f64(grad)
    return g * (max_norm / max(float(np.sqrt(np.sum(g**2))), max_norm))
