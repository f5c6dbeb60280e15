"""Checks for Lab 05 (the residual block): the shortcut, the block, and its parameter count.

The three exercises:

* ``q1``: ``shortcut(x, filters, stride)`` returns ``x`` itself when the shape fits (same number of
  channels and stride 1), otherwise a projection: a 1×1 convolution with ``filters`` filters and
  stride ``stride``, then batch normalisation;
* ``q2``: ``residual_block(x, filters, stride=1)`` returns
  ``relu(BN(conv3×3(relu(BN(conv3×3_stride(x))))) + shortcut(x))``;
* ``q3``: ``block_params(c_in, filters, stride)`` returns the block's number of trainable parameters
  (convolutions without bias).

The checkers build the learner's function on a Keras input, read the weights it created (kernels by
shape, batch-norm variables by name), give them controlled values (every bias zero, every batch norm
the same per-channel scale, shift and statistics), and compare the output in inference mode with
reference variants computed here: the right block and the mistakes learners make (ReLU before the
addition, the input added before batch norm, no shortcut, the stride in the second convolution, ...).
A shape error raised inside the learner's code is read for its shapes and explained (a missing
projection, a projection without stride, a stride applied twice, convolutions without padding).

The learner's layers compute at the active Keras policy's precision (float16 on a T4 GPU, bfloat16 on
a TPU), so the checks judge at that precision: the reference gets the probe and the kernels rounded to
it, as the learner's layers get them, and the outputs are compared within what that precision can
promise (:func:`utils.env.tolerance`, never tighter than ``TOL``), against the *nearest* variant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks import Exercise, LearnerError, Mismatch, call, expect

__all__ = ["block_params_reference", "q1", "q2", "q3", "show_resnet"]

SIZE = 8  # probe images are SIZE × SIZE
EPS = 1e-3  # Keras's default batch-norm epsilon; other small epsilons pass within the tolerance
TOL = 2e-3  # under float32; mixed precision widens it to utils.env.tolerance() (see _tolerance)


def _keras() -> Any:
    from utils.env import import_tensorflow

    import_tensorflow()
    import keras

    return keras


# ---------------------------------------------------------------------------------------------
# Building the learner's function, reading and setting its weights
# ---------------------------------------------------------------------------------------------


def _build(fn: Callable, c_in: int, filters: int, stride: int) -> Any:
    """Call ``fn`` on a Keras input; return ``keras.Model(input, output)`` (LearnerError if it raises)."""
    keras = _keras()
    inputs = keras.Input((SIZE, SIZE, c_in))
    out = call(fn, inputs, filters, stride)
    if out is None or out is Ellipsis:
        raise Mismatch(
            "what your function returns",
            expected="the output tensor",
            got=repr(out),
            hint="End the function with `return ...` of the block's output tensor.",
        )
    if isinstance(out, keras.layers.Layer):
        raise Mismatch(
            "what your function returns",
            expected="a tensor (the layer applied to x)",
            got=f"a layer ({type(out).__name__})",
            hint="Call the layer on the input: `keras.layers.Conv2D(...)(x)`, and return the result.",
        )
    if not hasattr(out, "shape") or len(out.shape) != 4:
        raise Mismatch(
            "what your function returns",
            expected="a 4-D tensor (batch, height, width, channels)",
            got=type(out).__name__,
            hint="Return the output tensor of the block.",
        )
    if out is inputs:  # the identity shortcut; Keras 3.13 refuses keras.Model(x, x) (3.14+ accepts it)
        out = keras.layers.Identity()(out)
    return keras.Model(inputs, out)


def _precision() -> str:
    """Return the dtype the learner's layers compute in: 'float32', 'float16' or 'bfloat16'."""
    from utils.env import compute_dtype

    _keras()
    return compute_dtype()


def _tolerance() -> dict[str, float]:
    """Return ``{"rtol", "atol"}`` for comparing a block's output: TOL, or the precision's own if looser."""
    from utils.env import tolerance

    return {k: max(TOL, v) for k, v in tolerance(_precision()).items()}


def _at_precision(a: np.ndarray) -> np.ndarray:
    """Return ``a`` rounded to the learner's compute dtype (what their layers receive), as float64."""
    dtype = _precision()
    if dtype == "float32":
        return np.asarray(a, dtype=np.float64)
    keras = _keras()
    rounded = keras.ops.cast(keras.ops.convert_to_tensor(np.asarray(a, dtype="float32")), dtype)
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(rounded, "float32")), dtype=np.float64)


def _distance(got: np.ndarray, ref: np.ndarray, tol: dict[str, float]) -> float:
    """Return the largest error of ``got`` in units of the tolerance: at most 1 means close."""
    if got.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(got - ref) / (tol["atol"] + tol["rtol"] * np.abs(ref))))


def _nearest(got: np.ndarray, variants: dict[str, np.ndarray], tol: dict[str, float]) -> str | None:
    """Return the name of the variant closest to ``got`` if it is within the tolerance, else None."""
    distances = {name: _distance(got, value, tol) for name, value in variants.items()}
    name = min(distances, key=distances.__getitem__)
    return name if distances[name] <= 1 else None


def _channel_values(n: int, lo: float, hi: float) -> np.ndarray:
    return np.linspace(lo, hi, n).astype("float32")


BN_VALUES = {  # per-channel values given to every batch-norm layer
    "gamma": (0.6, 1.4),
    "beta": (-0.4, 0.3),
    "moving_mean": (-0.3, 0.2),
    "moving_variance": (0.6, 1.8),
}


def _bn_params(n: int) -> dict[str, np.ndarray]:
    return {k: _channel_values(n, *v) for k, v in BN_VALUES.items()}


def _kernel(shape: tuple[int, ...], seed: int) -> np.ndarray:
    fan_in = shape[0] * shape[1] * shape[2]
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) / np.sqrt(fan_in)).astype("float32")


class Inspected:
    """The weights the learner's block created, grouped by role, with controlled values set."""

    def __init__(self, model: Any):
        self.model = model
        self.kernels = [v for v in model.weights if len(v.shape) == 4]
        self.biases = [v for v in model.weights if v.name == "bias"]
        self.n_bn = sum(1 for v in model.weights if v.name == "moving_mean")
        self.trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
        self.values: dict[int, np.ndarray] = {}
        for i, v in enumerate(model.weights):
            shape = tuple(int(d) for d in v.shape)
            if len(shape) == 4:
                value = _kernel(shape, seed=10 + shape[0] * 100 + shape[2] * 10 + shape[3])
            elif v.name in BN_VALUES:
                value = _bn_params(shape[0])[v.name]
            else:
                value = np.zeros(shape, "float32")  # conv biases and anything unforeseen
            v.assign(value)
            self.values[i] = value

    def shapes(self, size: int) -> list[np.ndarray]:
        """Kernels of spatial size ``size`` (3 or 1), in the order the model holds them.

        Rounded to the learner's compute dtype, as their convolutions use them.
        """
        return [_at_precision(k.numpy()) for k in self.kernels if k.shape[0] == size]

    def output(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(x, training=False), dtype=np.float64)


def _probe(c_in: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, SIZE, SIZE, c_in)).astype("float32")


# ---------------------------------------------------------------------------------------------
# Reference computations (NumPy + tf.nn.conv2d, in float64)
# ---------------------------------------------------------------------------------------------


def _conv(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    import tensorflow as tf

    return tf.nn.conv2d(x.astype("float64"), k.astype("float64"), stride, "SAME").numpy()


def _bn(x: np.ndarray) -> np.ndarray:
    p = _bn_params(x.shape[-1])
    return p["gamma"] * (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + EPS) + p["beta"]


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def block_variants(
    x: np.ndarray, k1: np.ndarray, k2: np.ndarray, ks: np.ndarray | None, stride: int
) -> dict[str, np.ndarray]:
    """Return the right block's output (``"right"``) and the mistaken variants', for kernels k1, k2, ks."""
    short = x.astype("float64") if ks is None else _bn(_conv(x, ks, stride))
    h = _relu(_bn(_conv(x, k1, stride)))
    f = _bn(_conv(h, k2, 1))
    out = {
        "right": _relu(f + short),
        "relu_before_add": _relu(f) + short,
        "no_final_relu": f + short,
        "add_before_bn": _relu(_bn(_conv(h, k2, 1) + short)),
        "plain": _relu(f),
    }
    if ks is not None:
        out["shortcut_without_bn"] = _relu(f + _conv(x, ks, stride))
        out["relu_on_shortcut"] = _relu(f + _relu(short))
    if stride > 1:
        h1 = _relu(_bn(_conv(x, k1, 1)))
        out["stride_on_conv2"] = _relu(_bn(_conv(h1, k2, stride)) + short)
    return out


def block_params_reference(c_in: int, filters: int, stride: int) -> int:
    """Return the trainable parameters of the lab's block (no conv biases; BN: γ and β)."""
    total = 9 * c_in * filters + 2 * filters + 9 * filters * filters + 2 * filters
    if c_in != filters or stride != 1:
        total += c_in * filters + 2 * filters
    return total


# ---------------------------------------------------------------------------------------------
# Shape errors raised inside the learner's block
# ---------------------------------------------------------------------------------------------

_SHAPE = re.compile(r"[\(\[]((?:None|\d+)(?:,\s*(?:None|\d+))+)[\)\]]")


def _shapes_in(message: str) -> list[tuple[int, ...]]:
    shapes = []
    for match in _SHAPE.finditer(message):
        dims = [d.strip() for d in match.group(1).split(",")]
        if dims and dims[0] == "None":
            dims = dims[1:]
        if len(dims) == 3 and "None" not in dims:
            shapes.append(tuple(int(d) for d in dims))
    return shapes


def _explain_shape_error(err: LearnerError, c_in: int, filters: int, stride: int) -> None:
    """Raise a Mismatch that names the likely cause of a shape error, or return if it is not one."""
    if not isinstance(err.error, ValueError):
        return
    shapes = set(_shapes_in(str(err.error)))
    if len(shapes) < 2:
        return
    out_size = -(-SIZE // stride)
    main = (out_size, out_size, filters)
    where = f"(input {SIZE}×{SIZE}×{c_in}, filters={filters}, stride={stride})"
    got = " and ".join(str(s) for s in sorted(shapes))
    what = f"adding the shortcut to the main path {where}"
    needs_projection = c_in != filters or stride != 1
    if needs_projection and (SIZE, SIZE, c_in) in shapes and main in shapes:
        raise Mismatch(
            what,
            expected=f"two tensors of shape {main}",
            got=f"a shape error: {got}",
            hint="The input x no longer fits: the block changes the number of channels or the size "
            "(stride), so the shortcut must be a projection: a 1×1 Conv2D with `filters` filters and "
            "`strides=stride`, followed by BatchNormalization. Use the identity only when "
            "`x.shape[-1] == filters and stride == 1`.",
        )
    if (SIZE, SIZE, filters) in shapes and main in shapes and stride > 1:
        raise Mismatch(
            what,
            expected=f"two tensors of shape {main}",
            got=f"a shape error: {got}",
            hint="Your projection has the right number of filters but keeps the full size: give the 1×1 "
            "convolution `strides=stride` too, so it halves the size like the main path.",
        )
    if c_in != filters and (out_size, out_size, c_in) in shapes and main in shapes:
        raise Mismatch(
            what,
            expected=f"two tensors of shape {main}",
            got=f"a shape error: {got}",
            hint="The shortcut has the right size but still the input's channels: project it with a "
            "1×1 convolution with `filters` filters (and the stride), then BatchNormalization.",
        )
    smaller = -(-out_size // stride)
    if stride > 1 and (smaller, smaller, filters) in shapes:
        raise Mismatch(
            what,
            expected=f"two tensors of shape {main}",
            got=f"a shape error: {got}",
            hint="Your main path shrinks the image twice: the stride belongs to the *first* 3×3 "
            "convolution only; the second one has stride 1.",
        )
    if any(s[-1] == filters and s[0] < out_size for s in shapes):
        raise Mismatch(
            what,
            expected=f"two tensors of shape {main}",
            got=f"a shape error: {got}",
            hint="The main path comes out smaller than expected: a 3×3 convolution without padding "
            'trims a pixel on each side. Use `padding="same"` in every convolution.',
        )
    raise Mismatch(
        what,
        expected=f"two tensors of shape {main}",
        got=f"a shape error: {got}",
        hint="The shortcut and the main path must have the same shape to be added. Main path: 3×3 "
        "(stride) → BN → ReLU → 3×3 → BN; shortcut: x, or a 1×1 convolution (stride) → BN.",
    )


# ---------------------------------------------------------------------------------------------
# q1: the shortcut
# ---------------------------------------------------------------------------------------------


def _check_shortcut(shortcut: Callable) -> None:
    # the identity case
    model = _build(shortcut, 6, 6, 1)
    if model.weights:
        n = int(sum(np.prod(v.shape) for v in model.trainable_weights))
        raise Mismatch(
            "the shortcut when the shape fits (6 channels in, filters=6, stride=1)",
            expected="x itself, 0 parameters",
            got=f"a layer with {n} trainable parameters",
            hint="When the channels and the size already match, return x unchanged: a projection there "
            "adds parameters and computation for nothing, and the block is no longer an identity "
            "plus a correction.",
        )
    x = _probe(6)
    got = np.asarray(model(x, training=False))
    expect(  # x itself, or x rounded to the precision the learner's layers compute in
        got.shape == x.shape and (np.allclose(got, x) or np.allclose(got, _at_precision(x))),
        "the shortcut when the shape fits (6 channels in, filters=6, stride=1)",
        expected="x itself",
        got="a tensor that differs from x",
        hint="Return x unchanged when `x.shape[-1] == filters and stride == 1`.",
    )
    # the cases that need a projection
    for c_in, filters, stride, change in (
        (4, 8, 2, "more channels and stride 2"),
        (4, 8, 1, "more channels, stride 1"),
        (6, 6, 2, "the same channels but stride 2"),
    ):
        out_size = -(-SIZE // stride)
        what = f"the shortcut for {change} (input {SIZE}×{SIZE}×{c_in}, filters={filters}, stride={stride})"
        model = _build(shortcut, c_in, filters, stride)
        shape = tuple(model.output.shape[1:])
        if shape == (SIZE, SIZE, c_in):
            hint = (
                "The stride changes the shape too: with stride 2 the main path halves the size, so the "
                "shortcut needs the projection even when the channels match. Test both: "
                "`x.shape[-1] == filters and stride == 1`."
                if c_in == filters
                else "The number of channels changes, so the input does not fit: project it."
            )
            raise Mismatch(what, expected=(out_size, out_size, filters), got=shape, hint=hint)
        if shape == (SIZE, SIZE, filters) and stride > 1:
            raise Mismatch(
                what,
                expected=(out_size, out_size, filters),
                got=shape,
                hint="Give the 1×1 convolution `strides=stride`, so it shrinks the size like the main path.",
            )
        expect(
            shape == (out_size, out_size, filters),
            f"the shape of {what}",
            expected=(out_size, out_size, filters),
            got=shape,
            hint="A 1×1 Conv2D with `filters` filters and `strides=stride`, then BatchNormalization.",
        )
        seen = Inspected(model)
        kernels = [tuple(k.shape) for k in seen.kernels]
        if kernels != [(1, 1, c_in, filters)]:
            raise Mismatch(
                f"the convolution in {what}",
                expected=f"one 1×1 kernel, shape {(1, 1, c_in, filters)}",
                got=f"kernels {kernels}",
                hint="The projection is a single 1×1 convolution: `keras.layers.Conv2D(filters, 1, "
                "strides=stride)`. It only mixes channels and subsamples; a 3×3 kernel would add 9× the weights.",
            )
        if seen.n_bn == 0:
            raise Mismatch(
                f"the layers of {what}",
                expected="1×1 convolution, then BatchNormalization",
                got="no BatchNormalization",
                hint="Normalise the projection like the main path: add BatchNormalization after the 1×1 "
                "convolution, so both branches have the same scale when they are added.",
            )
        x = _probe(c_in)
        got = seen.output(x)
        right = _bn(_conv(_at_precision(x), seen.shapes(1)[0], stride))
        tol = _tolerance()
        if _nearest(got, {"right": right, "relu": _relu(right)}, tol) == "relu":
            raise Mismatch(
                f"the output of {what}",
                expected="BN(conv1×1(x)), no activation",
                got="values that are never negative",
                hint="No ReLU on the shortcut: the block applies one ReLU, after the addition.",
            )
        if _distance(got, right, tol) > 1:
            raise Mismatch(
                f"the output of {what}",
                expected="BN(conv1×1 with stride(x))",
                got="different values (with the same weights)",
                hint='Conv2D(filters, 1, strides=stride, padding="same") applied to x, then '
                "BatchNormalization, and nothing else.",
            )


q1 = Exercise(
    "Q1 · the shortcut",
    _check_shortcut,
    hint="If x.shape[-1] == filters and stride == 1, return x. Otherwise return "
    "BatchNormalization()(Conv2D(filters, 1, strides=stride, use_bias=False)(x)).",
    lab="lab05",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# q2: the block
# ---------------------------------------------------------------------------------------------

MISTAKE_HINTS = {
    "relu_before_add": "You applied the last ReLU before the addition: relu(F(x)) + x. The ReLU comes "
    "after it: relu(F(x) + shortcut(x)). Otherwise the block can only add, never subtract, and its "
    "output is not the identity when F(x) = 0 for negative inputs.",
    "no_final_relu": "The block ends without a ReLU: apply ReLU to the sum, relu(F(x) + shortcut(x)).",
    "add_before_bn": "You added the shortcut before the second batch normalisation: relu(BN(conv(h) + x)). "
    "BN would then rescale the shortcut too, and the identity path is lost. Add after it: "
    "relu(BN(conv(h)) + shortcut(x)).",
    "plain": "Your block never adds the shortcut: it is a plain block, relu(F(x)). Add the shortcut "
    "before the last ReLU: relu(F(x) + shortcut(x)).",
    "stride_on_conv2": "The stride is in the second 3×3 convolution. Put it in the first: the block then "
    "downsamples at once, and the second convolution works on the smaller map (4× less computation).",
    "shortcut_without_bn": "Your projection has no batch normalisation: normalise it too, "
    "BN(conv1×1(x)), so both branches have the same scale when they are added.",
    "relu_on_shortcut": "No ReLU on the shortcut: the block has one ReLU in the middle and one after "
    "the addition.",
}


def _check_block(residual_block: Callable) -> None:
    cases = ((6, 6, 1), (4, 8, 2))
    for c_in, filters, stride in cases:
        where = f"(input {SIZE}×{SIZE}×{c_in}, filters={filters}, stride={stride})"
        try:
            model = _build(residual_block, c_in, filters, stride)
        except LearnerError as err:
            _explain_shape_error(err, c_in, filters, stride)
            raise
        out_size = -(-SIZE // stride)
        expect(
            tuple(model.output.shape[1:]) == (out_size, out_size, filters),
            f"the output shape of the block {where}",
            expected=(out_size, out_size, filters),
            got=tuple(model.output.shape[1:]),
            hint="The block's output has `filters` channels, and the size divided by the stride.",
        )
        seen = Inspected(model)
        n3, n1 = len(seen.shapes(3)), len(seen.shapes(1))
        right_count = block_params_reference(c_in, filters, stride)
        bias_count = sum(int(np.prod(b.shape)) for b in seen.biases)
        if seen.n_bn == 0:
            raise Mismatch(
                f"the layers of the block {where}",
                expected="BatchNormalization after each convolution",
                got="no BatchNormalization layer",
                hint="Add BatchNormalization after each 3×3 convolution (and after the projection): "
                "conv → BN → ReLU → conv → BN, then add the shortcut and apply ReLU.",
            )
        if n3 != 2:
            raise Mismatch(
                f"the 3×3 convolutions of the block {where}",
                expected=2,
                got=n3,
                hint="The main path has exactly two 3×3 convolutions.",
            )
        if c_in == filters and stride == 1 and n1:
            extra = seen.trainable - bias_count - right_count
            raise Mismatch(
                f"the number of trainable parameters of the block {where}",
                expected=right_count,
                got=f"{seen.trainable - bias_count} ({extra} more)",
                hint="Your block projects the shortcut even though the shape fits. Use the identity "
                "(return x) when `x.shape[-1] == filters and stride == 1`: the projection's "
                f"{extra} parameters are wasted there.",
            )
        if seen.n_bn < 2:
            raise Mismatch(
                f"the batch normalisations of the block {where}",
                expected="one after each 3×3 convolution",
                got=f"{seen.n_bn}",
                hint="conv → BN → ReLU → conv → BN: each 3×3 convolution is followed by BatchNormalization.",
            )
        x = _probe(c_in)
        got = seen.output(x)
        x = _at_precision(x)  # what the learner's first layers receive
        tol = _tolerance()
        k3 = seen.shapes(3)
        ks = seen.shapes(1)[0] if n1 else None
        orders = [(k3[0], k3[1])]
        if k3[0].shape == k3[1].shape:
            orders.append((k3[1], k3[0]))  # the model may hold the two kernels in either order
        found = None
        for k1, k2 in orders:
            if k1.shape[2] != c_in:
                continue
            found = _nearest(got, block_variants(x, k1, k2, ks, stride), tol)
            if found:
                break
        if found == "right":
            continue
        if found:
            raise Mismatch(
                f"the output of the block {where}",
                expected="relu(BN(conv(relu(BN(conv_stride(x))))) + shortcut(x))",
                got="the output of a different block (same weights)",
                hint=MISTAKE_HINTS[found],
            )
        raise Mismatch(
            f"the output of the block {where}",
            expected="relu(BN(conv(relu(BN(conv_stride(x))))) + shortcut(x))",
            got="different values (with the same weights)",
            hint="Check the order: 3×3 conv (stride) → BN → ReLU → 3×3 conv → BN, then add the shortcut, "
            'then ReLU. Use padding="same" and no activation inside the Conv2D layers.',
        )
    expect(
        ks is not None,
        "the shortcut of the block when the shape changes",
        expected="a 1×1 projection",
        got="none",
        hint="Project the shortcut when the shape changes.",
    )


q2 = Exercise(
    "Q2 · the residual block",
    _check_block,
    hint="y = Conv2D(filters, 3, strides=stride, padding='same') → BN → ReLU → Conv2D(filters, 3, "
    "padding='same') → BN; return ReLU(y + shortcut(x, filters, stride)).",
    lab="lab05",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: the parameter count
# ---------------------------------------------------------------------------------------------

Q3_CASES = ((16, 16, 1), (16, 32, 2), (32, 64, 2), (64, 64, 1))


def _check_block_params(block_params: Callable) -> None:
    for c_in, filters, stride in Q3_CASES:
        got = call(block_params, c_in, filters, stride)
        what = f"block_params({c_in}, {filters}, {stride})"
        right = block_params_reference(c_in, filters, stride)
        try:
            value = float(np.asarray(got).reshape(()))
        except (TypeError, ValueError):
            raise Mismatch(what, expected="a number", got=type(got).__name__) from None
        if value == right:
            continue
        proj = c_in != filters or stride != 1
        n_bn = 3 if proj else 2
        n_conv_out = filters * (3 if proj else 2)
        known = [
            (
                right + 2 * filters * n_bn,
                "You counted batch norm's moving mean and variance. They are "
                "not trainable (they are updated by the moving average, not by gradients): count γ and β only.",
            ),
            (
                right + n_conv_out,
                "You counted a bias per convolution filter. The convolutions have no "
                "bias (use_bias=False): the batch norm after each would cancel it.",
            ),
            (
                right - 2 * filters * n_bn,
                "You left out batch norm's parameters: each BN layer has a scale γ "
                "and a shift β per channel (2 × filters).",
            ),
            (
                right - (c_in * filters + 2 * filters),
                "You left out the projection (1×1 convolution and its "
                "BN), which this block needs because the channels or the stride change.",
            ),
            (
                right + c_in * filters + 2 * filters,
                "You counted a projection, but with the same channels "
                "and stride 1 the shortcut is the identity: no parameters.",
            ),
            (
                right - 6 * c_in * filters - 6 * filters * filters,
                "A 3×3 kernel has 3 · 3 · C_in · C_out weights: you counted 3 instead of 9 per channel pair.",
            ),
        ]
        for wrong, hint in known:
            if value == wrong:
                raise Mismatch(what, expected=right, got=int(value), hint=hint)
        if proj and value == right + 8 * c_in * filters:
            raise Mismatch(
                what,
                expected=right,
                got=int(value),
                hint="The projection is a 1×1 convolution: c_in · filters weights, not 9 ×.",
            )
        raise Mismatch(
            what,
            expected=right,
            got=int(value) if value.is_integer() else value,
            hint="Add up: 9·c_in·f (first conv) + 2f (BN) + 9·f·f (second conv) + 2f (BN), plus "
            "c_in·f + 2f for a projection when the shape changes.",
        )


q3 = Exercise(
    "Q3 · counting the parameters",
    _check_block_params,
    hint="Trainable parameters: a 3×3 kernel has 9·C_in·C_out, a 1×1 kernel C_in·C_out, a BN layer 2C "
    "(γ and β). No biases.",
    lab="lab05",
    solution_id="q3",
)


# ---------------------------------------------------------------------------------------------
# After the exercises: a ResNet-20 made of the learner's blocks
# ---------------------------------------------------------------------------------------------


def show_resnet(residual_block: Callable, depth: int = 20) -> Any:  # returns a DataFrame or Feedback
    """Build the CIFAR ResNet-``depth`` from the learner's block and compare it with utils.models.

    Returns a pandas DataFrame (the parameter count of each, and of the blocks added up with
    :func:`block_params_reference`), or the not-done/incorrect :class:`Feedback` of q2.
    """
    feedback = q2.evaluate(residual_block)
    if not feedback.passed:
        return feedback
    import pandas as pd

    keras = _keras()
    from utils import models

    n = (depth - 2) // 6
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    by_hand = 27 * 16 + 2 * 16 + 64 * 10 + 10
    c_in = 16
    for stage, filters in enumerate((16, 32, 64)):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            x = residual_block(x, filters, stride)
            by_hand += block_params_reference(c_in, filters, stride)
            c_in = filters
    x = keras.layers.GlobalAveragePooling2D()(x)
    mine = keras.Model(inputs, keras.layers.Dense(10)(x))
    reference = models.resnet_cifar(depth, shortcut="B")
    rows = [
        ("your blocks", models.trainable_params(mine), tuple(mine.output.shape)),
        (
            "utils.models.resnet_cifar(shortcut='B')",
            models.trainable_params(reference),
            tuple(reference.output.shape),
        ),
        ("added up by hand (block_params)", by_hand, ""),
    ]
    return pd.DataFrame(rows, columns=[f"ResNet-{depth}", "trainable parameters", "output shape"])
