"""Checks for Lab 05: the pre-activation residual block and batch norm folded into a convolution.

* q1 ``preact_block(x, filters, stride)``: x + conv(ReLU(BN(conv_s(ReLU(BN(x)))))), projected (1×1,
  stride, on ReLU(BN(x))) when the shape changes. The learner's weights get known values and the output
  on a probe is judged against the mistakes: post-activation order, ReLU after the addition, conv → BN →
  ReLU, projection on x or with BN, the identity on ReLU(BN(x)), no shortcut, stride in the second conv;
  and the structure (two 3×3 convs, two BNs, a projection only where needed). Under mixed precision the
  reference gets its inputs rounded as the learner's layers do, within :func:`answer_tolerance`.
* q2 ``fold_bn(kernel, bias, gamma, beta, mean, variance, eps)``: conv → BN (inference) as one conv.
  Mistakes: ε left out, no square root, scale on the input channels, mean not scaled, conv bias left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utils.checks import (
    Exercise,
    LearnerError,
    Mismatch,
    Mistake,
    answer_tolerance,
    as_array,
    call,
    judge,
    keras_module,
)

SIZE = 8  # probe images are SIZE × SIZE
EPS = 1e-3  # Keras's default batch-norm epsilon
BN_VALUES = {
    "gamma": (0.6, 1.4),
    "beta": (-0.4, 0.3),
    "moving_mean": (-0.3, 0.2),
    "moving_variance": (0.6, 1.8),
}


def _at_precision(a: np.ndarray) -> np.ndarray:
    """``a`` rounded to the dtype the learner's layers compute in, as float64."""
    from utils.env import compute_dtype

    keras = keras_module()
    rounded = keras.ops.cast(np.asarray(a, "float32"), compute_dtype())
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(rounded, "float32")), np.float64)


def _bn(x: np.ndarray) -> np.ndarray:
    p = {k: np.linspace(*v, x.shape[-1]) for k, v in BN_VALUES.items()}
    return p["gamma"] * (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + EPS) + p["beta"]


def _conv(x: np.ndarray, k: np.ndarray, stride: int = 1) -> np.ndarray:
    import tensorflow as tf

    return tf.nn.conv2d(x.astype("float64"), k.astype("float64"), stride, "SAME").numpy()


relu = lambda x: np.maximum(x, 0.0)


def _block(x: np.ndarray, k1: np.ndarray, k2: np.ndarray, ks: Any, s: int, **mistake: bool) -> np.ndarray:
    """The pre-activation block on kernels k1, k2 (3×3) and ks (1×1 or None); each keyword a mistake."""
    a = relu(_bn(x))
    if mistake.get("post") or mistake.get("conv_bn_relu"):
        h = relu(_bn(_conv(x, k1, s)))
        main = _bn(_conv(h, k2)) if mistake.get("post") else relu(_bn(_conv(h, k2)))
        short = x if ks is None else (_bn(_conv(x, ks, s)) if mistake.get("post") else _conv(x, ks, s))
        return relu(main + short) if mistake.get("post") else main + short
    main = _conv(
        relu(_bn(_conv(a, k1, 1 if mistake.get("stride2") else s))), k2, s if mistake.get("stride2") else 1
    )
    if ks is None:
        short = a if mistake.get("identity_on_a") else x
    else:
        short = _conv(x if mistake.get("proj_on_x") else a, ks, s)
        short = _bn(short) if mistake.get("proj_bn") else short
    out = main if mistake.get("no_shortcut") else main + short
    return relu(out) if mistake.get("relu_after") else out


def _variant(**flag: bool) -> Any:
    return lambda x, k1, k2, ks, s: np.ravel(_block(x, k1, k2, ks, s, **flag))  # shown flat


Q1_MISTAKES = [
    Mistake("post-activation order", "That is lesson 05's block: conv first, ReLU after the addition. In a "
            "pre-activation block each convolution *reads* a normalised, activated input.", _variant(post=True)),
    Mistake("ReLU after the addition", "The sum goes out untouched: a ReLU after the addition gates the "
            "identity path, which is what pre-activation removes.", _variant(relu_after=True)),
    Mistake("conv → BN → ReLU inside", "Each branch layer is in post-activation order (conv, then BN and ReLU). "
            "Turn it round: BN and ReLU come *before* each convolution.", _variant(conv_bn_relu=True)),
    Mistake("projection applied to x", "Your projection reads the raw x. When the shape changes, the 1×1 "
            "convolution reads the same normalised, activated tensor as the first 3×3 one.", _variant(proj_on_x=True)),
    Mistake("projection with BN", "No batch norm after the projection here: in a pre-activation network the "
            "next block normalises the sum anyway.", _variant(proj_bn=True)),
    Mistake("identity on ReLU(BN(x))", "When the shape fits, the shortcut is x itself, not its normalised, "
            "activated version: that keeps the identity path clean.", _variant(identity_on_a=True)),
    Mistake("no shortcut", "Your block never adds the shortcut: its output is the branch alone.",
            _variant(no_shortcut=True)),
    Mistake("stride in the second convolution", "The block downsamples in its first 3×3 convolution, so the "
            "second one works on the smaller map.", _variant(stride2=True)),
]  # fmt: skip

STRUCTURE = {  # what the structure checks say (hints only; no probe value)
    "bn": Mistake("too few batch norms", "Each of the two convolutions reads BN → ReLU of its input: two "
                  "BatchNormalization layers, one per convolution."),
    "convs": Mistake("not two 3×3 convolutions", "The branch has exactly two 3×3 convolutions."),
    "extra projection": Mistake("projection where the shape fits", "Here the channels and the size already "
                                "match: the shortcut is x itself, with no parameters."),
    "missing projection": Mistake("projection missing", "The block changes the number of channels or the size, "
                                  "so x no longer fits the branch's output: project it (1×1, stride)."),
}  # fmt: skip


def _build(fn: Any, c_in: int, filters: int, stride: int) -> Any:
    keras, where = (
        keras_module(),
        f"the block (input {SIZE}×{SIZE}×{c_in}, filters={filters}, stride={stride})",
    )
    inputs = keras.Input((SIZE, SIZE, c_in))
    try:
        out = call(fn, inputs, filters, stride)
    except LearnerError as err:
        if (
            isinstance(err.error, ValueError)
            and (c_in != filters or stride != 1)
            and "shape" in str(err.error)
        ):
            raise Mismatch(f"adding the shortcut in {where}", expected="two tensors of one shape",
                           got=f"a shape error: {err}", hint=STRUCTURE["missing projection"].hint) from None  # fmt: skip
        raise
    if not hasattr(out, "shape") or isinstance(out, keras.layers.Layer) or len(out.shape) != 4:
        raise Mismatch(
            f"what {where} returns", expected="a 4-D tensor (the layers applied to x)", got=type(out).__name__
        )
    want = (-(-SIZE // stride), -(-SIZE // stride), filters)
    if tuple(out.shape[1:]) != want:
        raise Mismatch(f"the output shape of {where}", expected=want, got=tuple(out.shape[1:]),
                       hint="`filters` channels, and the size divided by the stride ('same' padding).")  # fmt: skip
    return keras.Model(inputs, out), where


def _set_weights(model: Any) -> dict[int, list[np.ndarray]]:
    """Give every weight a known value (kernels seeded by their shape); return the kernels by size."""
    kernels: dict[int, list[np.ndarray]] = {1: [], 3: []}
    for v in model.weights:
        shape = tuple(int(d) for d in v.shape)
        if len(shape) == 4:
            rng = np.random.default_rng(sum(shape) * 7 + shape[2] * shape[3])
            value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:3]))
            kernels.setdefault(shape[0], []).append(_at_precision(value))
        else:
            name = v.name if v.name in BN_VALUES else None
            value = np.linspace(*BN_VALUES[name], shape[0]) if name else np.zeros(shape)
        v.assign(value.astype("float32"))
    return kernels


def _check_block(fn: Any) -> None:
    for c_in, filters, stride in ((6, 6, 1), (4, 8, 2)):
        model, where = _build(fn, c_in, filters, stride)
        n_bn = sum(1 for v in model.weights if v.name == "moving_mean")
        kernels = _set_weights(model)
        fits = c_in == filters and stride == 1
        for bad, key in ((n_bn < 2, "bn"), (len(kernels[3]) != 2, "convs"), (fits and kernels[1], "extra projection"),
                         (not fits and not kernels[1], "missing projection")):  # fmt: skip
            if bad:
                raise Mismatch(f"the layers of {where}", expected="the hint's", got=STRUCTURE[key].name,
                               hint=STRUCTURE[key].hint)  # fmt: skip
        x = np.random.default_rng(3).normal(size=(2, SIZE, SIZE, c_in)).astype("float32")
        got = np.asarray(model(x, training=False), np.float64)
        k1, k2 = sorted(kernels[3], key=lambda k: k.shape[2] != c_in)  # the first reads c_in channels
        args = (_at_precision(x), k1, k2, kernels[1][0] if kernels[1] else None, stride)
        tol = answer_tolerance(rtol=2e-3, atol=2e-3)
        judge(
            got.ravel(),
            _block(*args).ravel(),
            Q1_MISTAKES,
            what=f"the output of {where}",
            inputs=args,
            tol=tol,
            describe="x (or its projection) + the pre-activated branch, same weights",
        )


q1 = Exercise(
    "Q1 · a pre-activation residual block",
    _check_block,
    hint=(
        "Write it in the order of the formula: normalise and activate x once, feed that to the branch "
        "(and to the projection, when there is one), and add the shortcut at the very end.",
        "BatchNormalization, ReLU, Conv2D 3×3 with the stride; BatchNormalization, ReLU, Conv2D 3×3; then "
        "add x, or a 1×1 strided Conv2D of the activated input when the shape changes. Nothing after the +.",
    ),
)


def reference_fold(kernel: Any, bias: Any, gamma: Any, beta: Any, mean: Any, var: Any, eps: float) -> tuple:
    """The model answer of q2: (kernel', bias') of conv followed by BN in inference mode."""
    scale = gamma / np.sqrt(var + eps)
    return kernel * scale, (bias - mean) * scale + beta


def _fold(**m: bool) -> Any:
    def compute(kernel: Any, bias: Any, gamma: Any, beta: Any, mean: Any, var: Any, eps: float) -> Any:
        scale = gamma / (var + eps if m.get("no_sqrt") else np.sqrt(var + (0 if m.get("no_eps") else eps)))
        if m.get("input_axis"):
            if kernel.shape[2] != kernel.shape[3]:
                return None  # a shape error: shown on the probe where the channels agree
            scale = scale[:, None]
        b = 0 if m.get("no_bias") else bias
        b = (
            b * scale - mean + beta
            if m.get("mean_unscaled")
            else (b - mean) * np.ravel(scale)[: len(mean)] + beta
        )
        return np.concatenate([(kernel * scale).ravel(), b])

    return compute


Q2_MISTAKES = [
    Mistake(
        "ε left out",
        "Inference-mode BN divides by the square root of the variance *plus ε*; the "
        "probe's ε is large enough to show.",
        _fold(no_eps=True),
    ),
    Mistake("no square root", "BN divides by the standard deviation, not the variance.", _fold(no_sqrt=True)),
    Mistake(
        "scale on the input channels",
        "BN rescales each *output* channel of the convolution: the "
        "scale multiplies the kernel along its last axis.",
        _fold(input_axis=True),
    ),
    Mistake(
        "mean not scaled",
        "BN subtracts the mean *before* it multiplies by γ/σ: the mean is scaled "
        "too, like everything else the convolution outputs.",
        _fold(mean_unscaled=True),
    ),
    Mistake(
        "conv bias left out",
        "The convolution's own bias goes through BN too: it is shifted by the "
        "mean and scaled like the rest of the output.",
        _fold(no_bias=True),
    ),
]


def _check_fold(fn: Any) -> None:
    rng = np.random.default_rng(5)
    for c_in, c_out in ((3, 3), (2, 4)):
        kernel, bias = rng.normal(size=(3, 3, c_in, c_out)), rng.normal(size=c_out)
        gamma, beta, mean = rng.uniform(0.5, 2, c_out), rng.normal(size=c_out), rng.normal(size=c_out)
        inputs = (kernel, bias, gamma, beta, mean, rng.uniform(0.05, 0.4, c_out), 0.05)
        got = call(fn, *(a.copy() if isinstance(a, np.ndarray) else a for a in inputs))
        if not isinstance(got, tuple | list) or len(got) != 2:
            raise Mismatch("what fold_bn returns", expected="a pair (kernel, bias)", got=type(got).__name__)
        k = as_array(got[0], "the folded kernel", shape=kernel.shape)
        b = as_array(got[1], "the folded bias", shape=bias.shape)
        want = np.concatenate([a.ravel() for a in reference_fold(*inputs)])
        judge(
            np.concatenate([k.ravel(), b]),
            want,
            Q2_MISTAKES,
            what=f"fold_bn for a {kernel.shape} kernel",
            inputs=inputs,
            tol=answer_tolerance(*got, rtol=1e-5, atol=1e-6),
            describe="(kernel, bias), flattened",
        )


q2 = Exercise(
    "Q2 · batch norm folded into the convolution",
    _check_fold,
    hint=(
        "Write BN's inference formula with the convolution's output z = x ⋆ K + b inside it, and collect "
        "what multiplies x ⋆ K and what is left over.",
        "BN(z) = γ(z − m)/√(v + ε) + β: call γ/√(v + ε) the scale (one per output channel). The new "
        "kernel is K times the scale along its last axis; the new bias is what BN makes of b alone.",
    ),
)


def show_identity(preact_block: Any) -> Any:
    """Zero the last convolution of your block and of lesson 05's: yours returns x, negatives included."""
    if not (feedback := q1.evaluate(preact_block)).passed:
        return feedback
    import pandas as pd

    from utils.models import residual_block

    keras, rows = keras_module(), []
    x = np.random.default_rng(0).normal(size=(4, SIZE, SIZE, 6)).astype("float32")  # half of it negative
    for name, block in (("your pre-activation block", preact_block), ("lesson 05's block", residual_block)):
        inputs = keras.Input((SIZE, SIZE, 6))
        model = keras.Model(inputs, block(inputs, 6, 1))
        last = [v for v in model.weights if len(v.shape) == 4][-1]  # the second 3×3 kernel
        last.assign(np.zeros(last.shape, "float32"))
        out = np.asarray(model(x, training=False), np.float32)
        rows.append((name, float(np.abs(out - _at_precision(x)).max()), float((out == 0).mean())))
    return pd.DataFrame(
        rows, columns=["the branch's last kernel set to 0", "max |block(x) − x|", "outputs at 0"]
    )
