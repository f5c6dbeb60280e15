"""The craft of training: initialisation, activations, normalisation, hyper-parameter search, distillation.

Lesson 05a writes each idea out and checks it against the tested copy here (``tests/test_craft.py``
checks these against Keras). NumPy is the reference language; Keras and KerasTuner are imported
inside the functions that need them, so ``import utils.craft`` stays free of TensorFlow.

* **Initialisation.** :func:`fans` (Keras's fan-in/fan-out convention), :func:`glorot_std`,
  :func:`he_std`, and :func:`depth_statistics`, which pushes a batch through a deep MLP and back to
  measure how activations and gradients grow or shrink with depth, and how many ReLUs die.
* **Activations.** :data:`ACTIVATIONS` (sigmoid, tanh, ReLU, leaky ReLU, GELU, SiLU with their
  closed-form derivatives) and :func:`activation_table`.
* **Normalisation.** :func:`batch_norm`, :func:`layer_norm`, :func:`group_norm` in NumPy, equal to
  Keras's layers in training mode.
* **Knowledge distillation.** :func:`soft_targets`, :func:`distillation_loss` (with the T² factor),
  :class:`Distiller` (a ``keras.Model`` that trains a student against a frozen teacher) and
  :class:`DistillationLoss` with :func:`pack_targets` (teacher logits computed once).
* **Hyper-parameter search.** :func:`build_tunable`, :func:`run_search` (random, Bayesian,
  Hyperband and grid at a cost counted in epochs), :func:`hyperband_cost`, :func:`grid_values`,
  and :func:`lr_batch_grid` for the learning-rate/batch-size interaction.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "DepthStatistics",
    "DistillationLoss",  # noqa: F822 (built on first access by __getattr__, with Keras)
    "Distiller",  # noqa: F822
    "SEARCH_SPACE",
    "SearchResult",
    "TRUNCATED_NORMAL_STD",
    "activation_table",
    "batch_norm",
    "build_tunable",
    "depth_statistics",
    "distillation_loss",
    "fans",
    "glorot_std",
    "grid_values",
    "group_norm",
    "he_std",
    "hyperband_cost",
    "layer_norm",
    "lr_batch_grid",
    "pack_targets",
    "run_search",
    "search_data",
    "soft_targets",
]

# ---------------------------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------------------------

# The standard deviation of a standard normal truncated to [-2, 2]:
# sqrt(1 - 4 φ(2) / (2 Φ(2) - 1)). Keras draws its "normal" variance-scaling initialisers from a
# normal truncated at two of its own standard deviations, which shrinks the spread by this factor,
# so it asks for sqrt(scale / fan) / 0.8796... to get exactly sqrt(scale / fan) after truncation.
TRUNCATED_NORMAL_STD = 0.87962566103423978


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Run NumPy's matrix products on one thread: for these small products a second BLAS thread
    gains little on an idle machine and, on a shared one (Binder, a workshop hub), waiting for it
    made them 5 to 15 times slower when measured. A no-op without threadpoolctl (scikit-learn's)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight tensor of ``shape``, with Keras's convention.

    * Dense kernel ``(inputs, units)``: ``fan_in = inputs``, ``fan_out = units``.
    * ConvND kernel ``(k_1, ..., k_N, in_channels, out_channels)``: each output sums over a receptive
      field of ``k_1 ⋯ k_N`` positions of ``in_channels`` channels, so
      ``fan_in = k_1 ⋯ k_N · in_channels`` and ``fan_out = k_1 ⋯ k_N · out_channels``.
      (Keras applies the same rule to a ``Conv2DTranspose`` kernel, whose last two axes are
      ``(out, in)``, so there the names swap.)
    * A vector ``(n,)``: ``(n, n)``; a scalar: ``(1, 1)``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def glorot_std(fan_in: int, fan_out: int) -> float:
    """Return Glorot/Xavier's weight standard deviation ``sqrt(2 / (fan_in + fan_out))``.

    A unit computes ``y = Σ_i w_i x_i`` over ``fan_in`` inputs. With weights and inputs independent
    and the weights of zero mean, ``Var(y) = fan_in · Var(w) · E[x²]``. For an activation that is
    linear around 0 (tanh, or no activation) and zero-mean inputs, ``E[x²] = Var(x)``, so the
    forward pass keeps the variance when ``Var(w) = 1 / fan_in``. The backward pass multiplies the
    gradient by the transposed weights, a sum over ``fan_out`` terms, and keeps its variance when
    ``Var(w) = 1 / fan_out``. Glorot and Bengio (2010) take the compromise
    ``Var(w) = 2 / (fan_in + fan_out)``.

    Uniform on ``[-a, a]`` has variance ``a² / 3``, so GlorotUniform's limit is ``sqrt(3) · std``.
    """
    return math.sqrt(2.0 / (fan_in + fan_out))


def he_std(fan_in: int) -> float:
    """Return He's weight standard deviation ``sqrt(2 / fan_in)``, for ReLU networks.

    From ``Var(y) = fan_in · Var(w) · E[x²]`` (see :func:`glorot_std`): when ``x = ReLU(z)`` with
    ``z`` symmetric around 0, half of ``z``'s mass is zeroed and ``E[x²] = Var(z) / 2``. So
    ``Var(z_next) = fan_in · Var(w) · Var(z) / 2``, which stays constant through the layers when
    ``Var(w) = 2 / fan_in`` (He et al., 2015). Note ``E[x²]``, not ``Var(x)``: a ReLU's output has a
    positive mean, and it is the second moment that the next layer's sum carries.

    HeUniform's limit is ``sqrt(3) · std = sqrt(6 / fan_in)``.
    """
    return math.sqrt(2.0 / fan_in)


def _init_std(initializer: str | float, fan_in: int, fan_out: int) -> tuple[float, str]:
    """Return ``(std, distribution)`` for an initialiser name like 'he_normal' or a fixed std."""
    if isinstance(initializer, (int, float)):
        return float(initializer), "normal"
    name = initializer.lower()
    family, _, distribution = name.partition("_")
    distribution = distribution or "normal"
    if distribution not in ("normal", "uniform"):
        raise ValueError(
            f"unknown distribution in {initializer!r}: use '<family>_normal' or '<family>_uniform'"
        )
    stds = {
        "glorot": glorot_std(fan_in, fan_out),
        "xavier": glorot_std(fan_in, fan_out),
        "he": he_std(fan_in),
        "lecun": math.sqrt(1.0 / fan_in),
    }
    if family not in stds:
        raise ValueError(
            f"unknown initialiser {initializer!r}: use glorot/he/lecun + _normal or _uniform, or a float std"
        )
    return stds[family], distribution


@dataclass
class DepthStatistics:
    """What :func:`depth_statistics` measured, one entry per layer (layer 1 first).

    ``std``: the standard deviation of the layer's activations over the batch and units.
    ``dead``: the fraction of units whose pre-activation is ≤ 0 on every example of the batch
    (a dead ReLU: no example passes a gradient through it). ``grad_norm``: the Frobenius norm of
    the loss's gradient with respect to the layer's weight matrix.
    """

    initializer: str
    activation: str
    std: np.ndarray
    dead: np.ndarray
    grad_norm: np.ndarray


def depth_statistics(
    initializer: str | float | Callable[[tuple[int, int], np.random.Generator], np.ndarray],
    activation: str,
    depth: int = 50,
    width: int = 256,
    n: int = 512,
    seed: int = 0,
    bias: float = 0.0,
    dtype: str = "float32",
) -> DepthStatistics:
    """Push ``n`` standard-normal inputs through a ``depth``-layer MLP of ``width`` units and back.

    Layer ``l`` computes ``z_l = h_{l-1} W_l + bias``, ``h_l = f(z_l)``, with ``h_0 = x``. The loss
    is ``L = Σ h_depth ⊙ G / n`` for a fixed standard-normal ``G``, so the gradient that enters the
    top layer has the same size whatever the activations do, and what changes with depth is only
    what the layers do to it: ``∂L/∂z_l = ∂L/∂h_l ⊙ f'(z_l)``, ``∂L/∂W_l = h_{l-1}ᵀ ∂L/∂z_l``,
    ``∂L/∂h_{l-1} = ∂L/∂z_l W_lᵀ``.

    ``initializer``: 'glorot_normal', 'glorot_uniform', 'he_normal', 'he_uniform', 'lecun_normal',
    a float (a normal with that standard deviation: 0.01 is "small", 1.0 "large"), or a function
    ``(shape, rng) -> weights``. The normal initialisers here are untruncated normals with the same
    standard deviation as Keras's truncated ones. ``activation``: a key of :data:`ACTIVATIONS` or
    'linear'. ``bias``: every pre-activation's constant offset (a negative one kills ReLUs).

    One forward and one backward pass in NumPy, ``3 · depth`` matrix products of ``n × width ×
    width`` on one BLAS thread: about 0.4 s for the defaults (0.6 s for GELU's erf). In float32 (the
    default, as a real network) a run that explodes past 3.4e38 shows ``inf`` (and its gradients
    ``nan``); ``dtype="float64"`` follows it to 1e308 at twice the cost.
    """
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if activation == "linear":
        f, df = (lambda z: z), (lambda z: np.ones_like(z))
    else:
        f, df = ACTIVATIONS[activation]
    h = rng.standard_normal((n, width), dtype=dt)
    upstream = rng.standard_normal((n, width), dtype=dt) / dt.type(n)
    weights, pre, inputs = [], [], []
    std, dead = np.empty(depth), np.empty(depth)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"), _one_blas_thread():
        for layer in range(depth):
            shape = (width, width)
            if callable(initializer):
                w = np.asarray(initializer(shape, rng), dtype=dt)
            else:
                s, distribution = _init_std(initializer, *fans(shape))
                if distribution == "normal":
                    w = rng.standard_normal(shape, dtype=dt) * dt.type(s)
                else:
                    limit = math.sqrt(3.0) * s  # uniform on [-a, a] has std a / sqrt(3)
                    w = rng.uniform(-limit, limit, shape).astype(dt)
            inputs.append(h)
            z = h @ w
            if bias:
                z += dt.type(bias)
            h = f(z)
            weights.append(w)
            pre.append(z)
            std[layer] = h.std(dtype=np.float64)
            dead[layer] = np.mean(np.all(z <= 0, axis=0))
        grad_norm = np.empty(depth)
        grad_h = upstream
        for layer in reversed(range(depth)):
            grad_z = grad_h * df(pre[layer])
            grad_norm[layer] = np.linalg.norm((inputs[layer].T @ grad_z).astype(np.float64))
            if layer:
                grad_h = grad_z @ weights[layer].T
    name = initializer if isinstance(initializer, str) else getattr(initializer, "__name__", str(initializer))
    return DepthStatistics(str(name), activation, std, dead, grad_norm)


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------


class Activation(NamedTuple):
    """An activation function and its derivative, both NumPy functions of the pre-activation."""

    fn: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]


LEAKY_SLOPE = 0.2  # keras.activations.leaky_relu's default negative_slope (PyTorch's is 0.01)


def _float(x):  # keep float32 as float32 (fast), turn anything else into float64
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _sigmoid(x):
    x = _float(x)
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # σ(x) without overflow for large |x|


def _erf(x):
    try:
        from scipy.special import erf
    except ImportError:  # scipy comes with scikit-learn; this fallback is slower, not different
        erf = np.vectorize(math.erf, otypes=[np.float64])
    return erf(x)


def _phi(x):  # the standard normal density
    x = _float(x)
    return np.exp(-0.5 * np.square(x)) / np.sqrt(2.0 * np.pi, dtype=x.dtype)


def _Phi(x):  # the standard normal cumulative distribution
    x = _float(x)
    return 0.5 * (1.0 + _erf(x / np.sqrt(2.0, dtype=x.dtype)))


ACTIVATIONS: dict[str, Activation] = {
    # σ(x) = 1 / (1 + e^{-x});  σ' = σ (1 - σ) ≤ 1/4, and → 0 for |x| large (saturation)
    "sigmoid": Activation(_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    # tanh' = 1 - tanh² ≤ 1, → 0 for |x| large
    "tanh": Activation(lambda x: np.tanh(_float(x)), lambda x: 1 - np.tanh(_float(x)) ** 2),
    # ReLU = max(0, x); derivative 1 for x > 0, 0 for x ≤ 0 (Keras and TF use 0 at x = 0)
    "relu": Activation(lambda x: np.maximum(_float(x), 0), lambda x: (_float(x) > 0).astype(_float(x).dtype)),
    # leaky ReLU: x for x > 0, a·x otherwise (a = 0.2 as in Keras)
    "leaky_relu": Activation(
        lambda x: np.where(_float(x) > 0, _float(x), _float(x) * _float(x).dtype.type(LEAKY_SLOPE)),
        lambda x: np.where(_float(x) > 0, 1, _float(x).dtype.type(LEAKY_SLOPE)).astype(_float(x).dtype),
    ),
    # GELU (exact) = x Φ(x);  GELU' = Φ(x) + x φ(x)
    "gelu": Activation(lambda x: _float(x) * _Phi(x), lambda x: _Phi(x) + _float(x) * _phi(x)),
    # SiLU (swish) = x σ(x);  SiLU' = σ(x) (1 + x (1 - σ(x)))
    "silu": Activation(
        lambda x: _float(x) * _sigmoid(x),
        lambda x: _sigmoid(x) * (1 + _float(x) * (1 - _sigmoid(x))),
    ),
}


def activation_table(x: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Return ``{name: {"value": f(x), "derivative": f'(x)}}`` for every activation in :data:`ACTIVATIONS`."""
    x = np.asarray(x, dtype=np.float64)
    return {name: {"value": a.fn(x), "derivative": a.derivative(x)} for name, a in ACTIVATIONS.items()}


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------


def _normalise(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)  # the biased variance (divide by the count), as every norm layer
    return (x - mean) / np.sqrt(var + eps)


def batch_norm(x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Batch norm in training mode (scale 1, offset 0): ``(x - μ) / sqrt(σ² + eps)`` per channel.

    μ and σ² are taken over every axis but the last: the batch for ``(batch, features)``, the batch
    and both spatial axes for NHWC. Each channel gets one statistic shared by every example, so an
    example's output depends on the rest of its batch (lesson 05's trap: at inference Keras uses the
    moving averages instead). ``eps`` defaults to Keras's 1e-3.
    """
    x = np.asarray(x, dtype=np.float64)
    return _normalise(x, tuple(range(x.ndim - 1)), eps)


def layer_norm(x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Layer norm (scale 1, offset 0): each example normalised over all its features.

    μ and σ² are taken over every axis but the first: the features for ``(batch, features)``,
    and C, H and W together for NHWC (Ba et al., 2016). No statistic crosses examples, so it
    behaves the same in training and inference and at any batch size, which is why Transformers use
    it (sequences of different lengths, batches of one at generation time). Keras 3's
    ``LayerNormalization()`` defaults to ``axis=-1``: for NHWC that normalises each pixel over its
    channels only; ``LayerNormalization(axis=[1, 2, 3])`` is this textbook version. For a Transformer's
    ``(batch, tokens, features)`` the usual choice *is* ``axis=-1`` (each token on its own).
    """
    x = np.asarray(x, dtype=np.float64)
    return _normalise(x, tuple(range(1, x.ndim)), eps)


def group_norm(x: np.ndarray, groups: int, eps: float = 1e-3) -> np.ndarray:
    """Group norm (scale 1, offset 0): channels split into ``groups`` contiguous groups, each
    example and group normalised over its channels and spatial positions (Wu and He, 2018).

    ``groups=1`` is layer norm over C, H, W; ``groups=C`` is instance norm (each channel of each
    example over H, W). Like layer norm it never mixes examples, so it works at batch size 1, where
    batch norm's statistics are noise. Input ``(batch, features)`` or channels-last ``(batch, ..., C)``.
    """
    x = np.asarray(x, dtype=np.float64)
    channels = x.shape[-1]
    if channels % groups:
        raise ValueError(f"{channels} channels do not split into {groups} equal groups")
    grouped = x.reshape(*x.shape[:-1], groups, channels // groups)
    axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)  # spatial axes and the channels within a group
    return _normalise(grouped, axes, eps).reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# knowledge distillation
# ---------------------------------------------------------------------------------------------


def _keras():
    from utils.env import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def soft_targets(teacher_logits: Any, temperature: float) -> Any:
    """Return the teacher's softened distribution ``softmax(t / T)`` (float32, a tensor).

    ``T = 1`` is the teacher's own prediction; a larger ``T`` flattens it and shows how the
    teacher ranks the wrong classes (Hinton et al., 2015's "dark knowledge").
    """
    ops = _keras().ops
    return ops.softmax(ops.cast(teacher_logits, "float32") / temperature, axis=-1)


def _distillation_per_example(student_logits, teacher_logits, temperature, labels, alpha):
    keras = _keras()
    ops = keras.ops
    s = ops.cast(student_logits, "float32")  # under mixed precision: compute the loss in float32
    t = ops.cast(teacher_logits, "float32")
    p = ops.softmax(t / temperature, axis=-1)
    kl = ops.sum(
        p * (ops.log_softmax(t / temperature, axis=-1) - ops.log_softmax(s / temperature, axis=-1)), axis=-1
    )
    soft = temperature**2 * kl
    if labels is None:
        return soft
    if len(labels.shape) == len(s.shape):  # one-hot labels
        hard = keras.losses.categorical_crossentropy(ops.cast(labels, "float32"), s, from_logits=True)
    else:
        hard = keras.losses.sparse_categorical_crossentropy(labels, s, from_logits=True)
    return alpha * hard + (1.0 - alpha) * soft


def distillation_loss(
    student_logits: Any,
    teacher_logits: Any,
    temperature: float = 4.0,
    labels: Any = None,
    alpha: float = 0.1,
) -> Any:
    """Return Hinton et al.'s distillation loss, averaged over the batch (a float32 scalar tensor).

    With ``p = softmax(t / T)`` (the teacher's soft targets) and ``q = softmax(s / T)`` (the
    student's), the soft term is ``T² · KL(p ‖ q) = T² Σ_i p_i (log p_i - log q_i)``. With
    ``labels`` (sparse integers or one-hot), the loss is ``alpha · CE(labels, softmax(s)) +
    (1 - alpha) · T² · KL``: the hard term at temperature 1, the soft term carrying most weight.

    **Why T².** Only ``log q`` depends on the student, and ``∂ log q_j / ∂s_i = (δ_ij - q_i) / T``,
    so ``∂KL/∂s_i = -Σ_j p_j (δ_ij - q_i) / T = (q_i - p_i) / T``. For large T expand the softmax
    around uniform: ``q_i ≈ (1 + s_i/T) / (N + Σ_j s_j/T)`` ≈ ``1/N + (s_i - s̄)/(N T)``, the same
    for ``p`` with ``t``, so ``q_i - p_i ≈ ((s_i - s̄) - (t_i - t̄)) / (N T)`` and
    ``∂KL/∂s_i ≈ ((s_i - s̄) - (t_i - t̄)) / (N T²)``. The gradient shrinks as 1/T²; multiplying by
    T² keeps it the same size whatever T, so changing T does not silently change the learning rate
    or the balance with the hard-label term. (In this limit ``T² · KL`` tends to matching the
    centred logits by squared error, ``Σ_i ((s_i - s̄) - (t_i - t̄))² / (2N)``.)

    Works on tensors inside a Keras loss or ``train_step`` (TensorFlow backend, graph or eager)
    and on NumPy arrays; inputs of any float dtype are cast to float32 first.
    """
    ops = _keras().ops
    per_example = _distillation_per_example(student_logits, teacher_logits, temperature, labels, alpha)
    return ops.mean(per_example)


def pack_targets(labels: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
    """Return ``[label, teacher logits...]`` per row (float32, shape ``(batch, 1 + classes)``), the
    targets :class:`DistillationLoss` unpacks: the teacher runs once, not at every step."""
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 1)
    return np.concatenate([labels, np.asarray(teacher_logits, dtype=np.float32)], axis=1)


def _loss_class():
    keras = _keras()

    class DistillationLoss(keras.losses.Loss):
        """A Keras loss on targets packed by :func:`pack_targets`: ``student.compile(loss=DistillationLoss(T))``.

        ``y_true[:, 0]`` is the integer label, ``y_true[:, 1:]`` the teacher's logits; ``y_pred`` the
        student's logits. Returns :func:`distillation_loss` per example (Keras applies sample weights
        and the mean). Accuracy metrics do not understand packed targets: evaluate the student with
        its own ``compile``.
        """

        def __init__(
            self, temperature: float = 4.0, alpha: float = 0.1, name: str = "distillation", **kwargs
        ):
            super().__init__(name=name, **kwargs)
            self.temperature = float(temperature)
            self.alpha = float(alpha)

        def call(self, y_true, y_pred):
            ops = keras.ops
            labels = ops.cast(y_true[:, 0], "int32")
            return _distillation_per_example(y_pred, y_true[:, 1:], self.temperature, labels, self.alpha)

        def get_config(self):
            return {**super().get_config(), "temperature": self.temperature, "alpha": self.alpha}

    return DistillationLoss


def _distiller_class():
    keras = _keras()

    class Distiller(keras.Model):
        """Train ``student`` on a frozen ``teacher``'s softened outputs and the labels.

        ``Distiller(student, teacher, temperature=4, alpha=0.1).compile(optimizer, metrics=["accuracy"])``
        then ``fit(x, labels)``: each step runs the teacher (inference mode) and the student on the
        batch and minimises :func:`distillation_loss` plus the student's own regularisation losses.
        Metrics see the labels and the student's logits. Afterwards use ``distiller.student``.
        Under mixed precision the loss is computed in float32 (give the student a float32 last layer).
        """

        def __init__(self, student, teacher, temperature: float = 4.0, alpha: float = 0.1, **kwargs):
            super().__init__(**kwargs)
            self.student = student
            self.teacher = teacher
            self.teacher.trainable = False
            self.temperature = float(temperature)
            self.alpha = float(alpha)

        def call(self, x, training=False):
            return self.student(x, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            ops = keras.ops
            teacher_logits = ops.stop_gradient(self.teacher(x, training=False))
            per_example = _distillation_per_example(y_pred, teacher_logits, self.temperature, y, self.alpha)
            if sample_weight is not None:
                weight = ops.cast(sample_weight, "float32")
                loss = ops.sum(per_example * weight) / ops.maximum(ops.sum(weight), 1e-12)
            else:
                loss = ops.mean(per_example)
            if self.student.losses:
                loss = loss + ops.cast(ops.sum(self.student.losses), "float32")
            return loss

    return Distiller


def __getattr__(name: str) -> Any:  # the Keras classes are built on first use (no TensorFlow at import)
    if name == "Distiller":
        cls = _distiller_class()
    elif name == "DistillationLoss":
        cls = _loss_class()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls.__module__, cls.__qualname__ = __name__, name
    globals()[name] = cls
    return cls


# ---------------------------------------------------------------------------------------------
# hyper-parameter search
# ---------------------------------------------------------------------------------------------

SEARCH_SPACE = {
    "learning_rate": (1e-4, 1e-1),  # Adam's learning rate, log-uniform
    "units": (16, 256),  # hidden width, log-uniform integer
    "dropout": (0.0, 0.5),
    "batch_size": (16, 32, 64, 128),
}


def search_data(n_val: int = 360) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return the search's problem: scikit-learn's digits, flattened to 64 features, as
    ``((x_train, y_train), (x_val, y_val))``.

    The validation set is the last ``n_val`` of a fixed shuffle of :func:`utils.data.load_digits`'s
    training images (1,437 - 360 = 1,077 to train on); its test set stays untouched for the end.
    """
    from utils.data import load_digits

    (x, y), _ = load_digits()
    order = np.random.default_rng(0).permutation(len(x))
    x = x.reshape(len(x), -1)[order].astype(np.float32)
    y = y[order]
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])


def build_tunable(hp: Any, inputs: int = 64, classes: int = 10) -> Any:
    """Build and compile the searched model from KerasTuner's ``hp``: an MLP with one hidden layer.

    Hyper-parameters (their ranges in ``SEARCH_SPACE``): ``learning_rate`` (Adam, log scale),
    ``units`` (hidden width, log scale), ``dropout``. The batch size is tuned in the hypermodel's
    ``fit`` (see :func:`run_search`), since it belongs to training, not to the model. The output
    layer is float32 so the loss gets float32 logits under mixed precision.
    """
    keras = _keras()
    lr_low, lr_high = SEARCH_SPACE["learning_rate"]
    units_low, units_high = SEARCH_SPACE["units"]
    learning_rate = hp.Float("learning_rate", lr_low, lr_high, sampling="log")
    units = hp.Int("units", units_low, units_high, sampling="log")
    dropout = hp.Float("dropout", *SEARCH_SPACE["dropout"])
    model = keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(classes, dtype="float32"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,  # XLA (Keras's choice on a GPU) would compile each trial's tiny model anew
    )
    return model


def _keras_tuner():
    try:
        import keras_tuner
    except ImportError:
        raise ImportError(
            "KerasTuner is not installed. Install the course's version with "
            "`pip install keras-tuner==1.4.8` (in a notebook: `%pip install keras-tuner==1.4.8`), "
            "then run this cell again."
        ) from None
    return keras_tuner


def _hypermodel():
    keras_tuner = _keras_tuner()
    # KerasTuner builds each trial's model in a worker thread, and Keras keeps the global dtype policy
    # per thread: without this, a search started under mixed_float16 would train every trial in float32
    # (and a model built with float16 layers alone would get no loss scaling from compile).
    policy = _keras().mixed_precision.global_policy()

    class TunableMLP(keras_tuner.HyperModel):
        def build(self, hp):
            _keras().mixed_precision.set_global_policy(policy)  # in this thread: the caller's policy
            return build_tunable(hp)

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(
                *args, batch_size=hp.Choice("batch_size", list(SEARCH_SPACE["batch_size"])), **kwargs
            )

    return TunableMLP()


def hyperband_cost(max_epochs: int, factor: int = 3) -> int:
    """Return the epochs one Hyperband iteration trains, following KerasTuner's schedule.

    Bracket ``b`` (from the most aggressive down to 0) starts ``size(b, 0)`` random trials for
    ``ceil(max_epochs / factor^b)`` epochs, and each round keeps the best ``1/factor`` and trains them
    on, from the epoch they reached, to ``factor`` times as many; bracket 0 is a plain random search
    at ``max_epochs``. A continued trial costs only its new epochs.
    """
    brackets, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end_size0 = math.ceil(1 + math.log(max_epochs, factor))
    total = 0
    for b in range(brackets):
        previous = 0
        for r in range(b + 1):
            size = math.ceil(end_size0 / (b + 1) * factor ** (b - r))
            reached = math.ceil(max_epochs / factor ** (b - r))
            total += size * (reached - previous)
            previous = reached
    return total


def _cap_hyperband(oracle: Any, budget_epochs: int) -> None:
    """Make a Hyperband oracle stop before a trial would take the search past ``budget_epochs``."""
    propose = oracle.populate_space

    def epochs(values):
        return values["tuner/epochs"] - values["tuner/initial_epoch"]

    def populate_space(trial_id):
        response = propose(trial_id)
        if response.get("status") == "RUNNING":
            used = sum(
                epochs(t.hyperparameters.values) for t in oracle.trials.values() if t.trial_id != trial_id
            )
            if used + epochs(response["values"]) > budget_epochs:
                return {"status": "STOPPED"}
        return response

    oracle.populate_space = populate_space


def grid_values(n_trials: int) -> dict[str, list]:
    """Return the grid the same number of trials buys: learning rates × widths, the rest fixed.

    Two widths once there are at least 6 trials (else one), and the remaining trials on the learning
    rate, the hyper-parameter that matters most. Each axis takes the centres of equal log-width
    bins of its range, so the grid never sits on the range's edges. Dropout stays at 0.1 and the batch
    size at 32: a grid over four axes would need 2⁴ = 16 trials to try just two values of each.
    """
    n_units = 2 if n_trials >= 6 else 1
    n_lr = max(1, n_trials // n_units)

    def centres(low, high, k):
        return [low * (high / low) ** ((i + 0.5) / k) for i in range(k)]

    lrs = [float(f"{v:.2g}") for v in centres(*SEARCH_SPACE["learning_rate"], n_lr)]
    units = [int(round(v)) for v in centres(*SEARCH_SPACE["units"], n_units)]
    return {"learning_rate": lrs, "units": units, "dropout": [0.1], "batch_size": [32]}


@dataclass
class SearchResult:
    """One search: its trials in the order they ran and what they cost.

    ``trials``: dicts with ``hyperparameters`` (tuner bookkeeping such as Hyperband's ``tuner/*``
    removed), ``score`` (the best validation accuracy the trial reached), ``epochs`` (epochs this
    trial trained; a Hyperband continuation counts only its new ones) and ``cost`` (epochs so far,
    this trial included). ``best_so_far()`` is the curve to compare methods at equal cost.
    """

    kind: str
    trials: list[dict[str, Any]]
    epochs_used: int
    seconds: float
    directory: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> dict[str, Any]:
        return max(self.trials, key=lambda t: t["score"])

    @property
    def best_hyperparameters(self) -> dict[str, Any]:
        return self.best["hyperparameters"]

    @property
    def best_score(self) -> float:
        return self.best["score"]

    def best_so_far(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(cost in epochs, best score so far)`` after each trial."""
        cost = np.array([t["cost"] for t in self.trials], dtype=float)
        return cost, np.maximum.accumulate(np.array([t["score"] for t in self.trials], dtype=float))


def run_search(
    kind: str,
    budget_epochs: int = 18,
    seed: int = 0,
    directory: str | None = None,
    epochs_per_trial: int = 3,
    data: tuple | None = None,
    factor: int = 3,
) -> SearchResult:
    """Run one KerasTuner search of :func:`build_tunable` on :func:`search_data`, quietly.

    ``kind``: 'random' (``RandomSearch``), 'bayesian' (``BayesianOptimization``, a Gaussian process
    proposing where the expected improvement is highest), 'hyperband' (``Hyperband``: many short
    trials, the best promoted to longer training) or 'grid' (``GridSearch`` over :func:`grid_values`).
    The cost is counted in epochs so that methods compare at equal cost:

    * random, Bayesian and grid train ``budget_epochs // epochs_per_trial`` trials of
      ``epochs_per_trial`` epochs each. Bayesian starts with ``num_initial_points`` random trials
      (a third of the trials here, at least 2): KerasTuner's default, 3 × the number of
      hyper-parameters (12 here), would spend the whole budget before the model is ever used;
    * Hyperband uses ``max_epochs = epochs_per_trial`` and ``factor``, runs its schedule (see
      :func:`hyperband_cost`) and stops before a trial would take it past ``budget_epochs``. It
      spends its epochs on more, shorter trials: 3-epoch trials at factor 3 give brackets of
      1-epoch trials of which a third are continued to 3 epochs, then 3-epoch trials.

    On this small problem a trial's fixed cost (building the model, tracing ``fit`` and
    ``evaluate``: about a second on a laptop) outweighs an epoch (a fraction of a second), so
    equal epochs are not equal wall time, and Hyperband's many short trials cost more time than
    they save. Real searches train for hours per trial, where epochs are the cost.

    The objective is the validation accuracy (the trial's best epoch). Everything is written
    under ``directory`` (a new temporary directory when None) with ``overwrite=True``; nothing is
    printed. Deterministic given ``seed`` on one machine. Raises if every trial failed, with the
    first failure's message.
    """
    keras = _keras()
    keras_tuner = _keras_tuner()
    kinds = ("random", "bayesian", "hyperband", "grid")
    if kind not in kinds:
        raise ValueError(f"unknown search kind {kind!r}: use one of {kinds}")
    (x_train, y_train), (x_val, y_val) = data if data is not None else search_data()
    directory = directory or tempfile.mkdtemp(prefix="craft_search_")
    n_trials = max(1, budget_epochs // epochs_per_trial)
    common = dict(
        hypermodel=_hypermodel(),
        objective="val_accuracy",
        seed=seed,
        directory=directory,
        project_name=kind,
        overwrite=True,
    )
    settings: dict[str, Any] = {"epochs_per_trial": epochs_per_trial}
    if kind == "random":
        tuner = keras_tuner.RandomSearch(max_trials=n_trials, **common)
    elif kind == "bayesian":
        initial = max(2, n_trials // 3)
        settings["num_initial_points"] = initial
        tuner = keras_tuner.BayesianOptimization(max_trials=n_trials, num_initial_points=initial, **common)
    elif kind == "grid":
        grid = grid_values(n_trials)
        settings["grid"] = grid
        hps = keras_tuner.HyperParameters()
        for name, values in grid.items():
            if len(values) == 1:
                hps.Fixed(name, values[0])
            else:
                hps.Choice(name, values)
        tuner = keras_tuner.GridSearch(
            max_trials=math.prod(len(v) for v in grid.values()),
            hyperparameters=hps,
            tune_new_entries=False,
            **common,
        )
    else:
        iterations = math.ceil(budget_epochs / hyperband_cost(epochs_per_trial, factor))
        settings.update(max_epochs=epochs_per_trial, factor=factor, hyperband_iterations=iterations)
        tuner = keras_tuner.Hyperband(
            max_epochs=epochs_per_trial, factor=factor, hyperband_iterations=iterations, **common
        )
        _cap_hyperband(tuner.oracle, budget_epochs)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # Hyperband reloads a trial's weights without its optimizer state (it warns each time)
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # KerasTuner 1.4.8's threading calls
        # the Bayesian oracle's Gaussian process (scikit-learn) warns when a length scale hits its bound
        warnings.filterwarnings("ignore", message="The optimal value found for dimension")
        tuner.search(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=epochs_per_trial,
            verbose=0,
        )
    seconds = time.perf_counter() - start

    trials, cost, failures = [], 0, []
    for trial in sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id)):
        if trial.status != "COMPLETED" or trial.score is None:
            failures.append(trial.message)
            continue
        values = dict(trial.hyperparameters.values)
        if "tuner/epochs" in values:
            epochs = values["tuner/epochs"] - values["tuner/initial_epoch"]
        else:
            epochs = epochs_per_trial
        cost += epochs
        hyperparameters = {
            k: v.item() if isinstance(v, np.generic) else v
            for k, v in values.items()
            if not k.startswith("tuner/")
        }
        trials.append(
            {"hyperparameters": hyperparameters, "score": float(trial.score), "epochs": epochs, "cost": cost}
        )
    if not trials:
        raise RuntimeError(
            f"every trial of the {kind} search failed; the first said:\n{failures[0] if failures else '?'}"
        )
    return SearchResult(kind, trials, cost, seconds, directory, settings)


def lr_batch_grid(
    learning_rates: Sequence[float] = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6),
    batch_sizes: Sequence[int] = (8, 32, 128, 512),
    epochs: int = 5,
    seeds: Sequence[int] = (0,),
    hidden: int = 64,
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Train a one-hidden-layer ReLU MLP with plain SGD for each learning rate × batch size, and
        return ``{"learning_rates", "batch_sizes", "loss", "best_lr"}``: ``loss[i, j]`` is the final
        training cross-entropy (mean over ``seeds``) for ``learning_rates[i]`` and ``batch_sizes[j]``,
        and ``best_lr[j]`` the learning rate with the lowest loss at ``batch_sizes[j]``.

        Every run sees the same number of examples (``epochs`` passes over the data), so a batch ``k``
        times larger takes ``k`` times fewer steps, each averaging ``k`` times more examples (less
        noise): it can afford, and needs, a larger step. So the best learning rate grows with the batch
        size (roughly in proportion for SGD, Goyal et al. 2017's linear scaling rule, until the step is
        too large to be stable: on the digits with 5 epochs the best rate goes 0.2, 0.8, 0.8, 0.8 for
    batches of 8 to 512, and 1.6 diverges at every size). A run whose loss is not finite gets ``nan``. NumPy with hand-written
        back-propagation, all learning rates trained side by side on the same batches, on
        :func:`utils.data.load_digits`'s training images by default (``data`` = ``(x, y)`` for
        another problem): a few seconds for the defaults.
    """
    if data is None:
        from utils.data import load_digits

        (x, y), _ = load_digits()
    else:
        x, y = data
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.int64)
    classes = int(y.max()) + 1
    n, d = x.shape
    lrs = np.asarray(learning_rates, dtype=np.float64).reshape(-1, 1, 1)  # one model per learning rate
    loss = np.zeros((len(learning_rates), len(batch_sizes)))

    def cross_entropy(logits, labels):  # per model: mean over the examples
        logits = logits - logits.max(axis=-1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        return -log_probs[:, np.arange(len(labels)), labels].mean(axis=-1)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), _one_blas_thread():
        for seed in seeds:
            rng = np.random.default_rng(seed)
            w1_0 = rng.standard_normal((d, hidden)) * he_std(d)
            w2_0 = rng.standard_normal((hidden, classes)) * glorot_std(hidden, classes)
            orders = [rng.permutation(n) for _ in range(epochs)]
            for j, batch in enumerate(batch_sizes):
                w1 = np.repeat(w1_0[None], len(lrs), axis=0)
                w2 = np.repeat(w2_0[None], len(lrs), axis=0)
                b1 = np.zeros((len(lrs), 1, hidden))
                b2 = np.zeros((len(lrs), 1, classes))
                for order in orders:
                    for start in range(0, n, batch):
                        idx = order[start : start + batch]
                        xb, yb = x[idx], y[idx]
                        z = xb @ w1 + b1  # (models, batch, hidden)
                        h = np.maximum(z, 0.0)
                        logits = h @ w2 + b2
                        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
                        probs /= probs.sum(axis=-1, keepdims=True)
                        probs[:, np.arange(len(idx)), yb] -= 1.0
                        g_logits = probs / len(idx)  # ∂(mean cross-entropy)/∂logits = (softmax - onehot) / B
                        g_z = g_logits @ w2.transpose(0, 2, 1) * (z > 0)
                        w2 -= lrs * (h.transpose(0, 2, 1) @ g_logits)
                        b2 -= lrs * g_logits.sum(axis=1, keepdims=True)
                        w1 -= lrs * (xb.T @ g_z)
                        b1 -= lrs * g_z.sum(axis=1, keepdims=True)
                final = cross_entropy(np.maximum(x @ w1 + b1, 0.0) @ w2 + b2, y)
                loss[:, j] += np.where(np.isfinite(final), final, np.nan)
    loss /= len(seeds)
    best = [learning_rates[int(np.nanargmin(col))] if np.isfinite(col).any() else np.nan for col in loss.T]
    return {
        "learning_rates": np.asarray(learning_rates, dtype=float),
        "batch_sizes": np.asarray(batch_sizes),
        "loss": loss,
        "best_lr": np.asarray(best, dtype=float),
    }
