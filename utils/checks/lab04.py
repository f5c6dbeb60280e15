"""Checks for Lab 04 (convolution): the output-size formula, Keras's 'same' padding, and a 2-D convolution.

The three exercises, in Keras's conventions (channels last, cross-correlation, 'same' padding
with the extra pixel at the bottom and right):

* ``q1``: ``output_size(n, k, stride, dilation, padding)``: the length of one output axis,
  ``floor((n - d(k-1) - 1) / s) + 1`` for 'valid' and ``ceil(n / s)`` for 'same';
* ``q2``: ``same_padding(n, k, stride, dilation)``: the pair ``(before, after)`` of zeros Keras
  adds to one axis for 'same', ``total = max((ceil(n/s) - 1)·s + d(k-1) + 1 - n, 0)``,
  ``before = total // 2``, ``after = total - before``;
* ``q3``: ``conv2d(x, kernel, bias, stride, padding, dilation)`` for one image ``x`` (H, W, C_in),
  a kernel (k_h, k_w, C_in, C_out) and a bias (C_out,): the output (H_out, W_out, C_out),
  ``y[i, j, o] = b[o] + Σ_u Σ_v Σ_c x_pad[i·s + u·d, j·s + v·d, c] · K[u, v, c, o]``.

Each checker runs the learner's function on probe inputs chosen so that the mistakes learners
really make give different results, computes what each mistake would return, and names the one
it recognises: a forgotten stride, a missing +1, ceil for floor, an ignored dilation, 'same'
padding computed for stride 1 or with the extra pixel on the wrong side, padding on one side
only, padding when 'valid', a flipped kernel (true convolution instead of Keras's
cross-correlation), input channels not summed, a missing bias.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks import Exercise, Feedback, Mismatch, call

__all__ = [
    "OUTPUT_SIZE_PROBES",
    "SAME_PADDING_PROBES",
    "make_conv_probes",
    "q1",
    "q2",
    "q3",
    "reference_conv2d",
    "reference_output_size",
    "reference_same_padding",
    "show_edges",
]


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn`` on copies of the arrays, with NumPy's warnings silenced."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(fn, *copies, **kwargs)


def _as_array(value: Any, what: str) -> np.ndarray:
    """Return ``value`` as a float64 array, or raise Mismatch saying it is not numbers."""
    try:
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mismatch(what, expected="a NumPy array of numbers", got=type(value).__name__) from None


# ---------------------------------------------------------------------------------------------
# The model answers
# ---------------------------------------------------------------------------------------------


def reference_output_size(n: int, k: int, stride: int = 1, dilation: int = 1, padding: str = "valid") -> int:
    """Return the length of one output axis of ``keras.layers.Conv2D`` (and of the pooling layers)."""
    if padding == "same":
        return -(-n // stride)  # ceil(n / s) in integer arithmetic
    return (n - dilation * (k - 1) - 1) // stride + 1


def reference_same_padding(n: int, k: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Return ``(before, after)``: the zeros Keras adds to an axis of length n for padding='same'."""
    total = max((-(-n // stride) - 1) * stride + dilation * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def _correlate(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray,
    stride: int,
    dilation: int,
    pads: tuple[int, int, int, int],
) -> np.ndarray:
    """Cross-correlate one image (H, W, C_in) with (k_h, k_w, C_in, C_out) after zero padding
    ``pads = (top, bottom, left, right)``; add the bias. The engine behind every variant below."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    kh, kw = kernel.shape[:2]
    h_out = (xp.shape[0] - dilation * (kh - 1) - 1) // stride + 1
    w_out = (xp.shape[1] - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((h_out, w_out, kernel.shape[3]))
    for u in range(kh):
        for v in range(kw):
            rows = slice(u * dilation, u * dilation + (h_out - 1) * stride + 1, stride)
            cols = slice(v * dilation, v * dilation + (w_out - 1) * stride + 1, stride)
            out += xp[rows, cols, :] @ kernel[u, v]  # (h_out, w_out, C_in) @ (C_in, C_out)
    return out + bias


def _keras_pads(
    x: np.ndarray, kernel: np.ndarray, stride: int, dilation: int, padding: str
) -> tuple[int, ...]:
    if padding == "valid":
        return (0, 0, 0, 0)
    return (
        *reference_same_padding(x.shape[0], kernel.shape[0], stride, dilation),
        *reference_same_padding(x.shape[1], kernel.shape[1], stride, dilation),
    )


def reference_conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray,
    stride: int = 1,
    padding: str = "valid",
    dilation: int = 1,
) -> np.ndarray:
    """The model answer of q3: what ``keras.layers.Conv2D`` computes for one image, as float64."""
    x, kernel, bias = (np.asarray(a, dtype=np.float64) for a in (x, kernel, bias))
    return _correlate(x, kernel, bias, stride, dilation, _keras_pads(x, kernel, stride, dilation, padding))


# ---------------------------------------------------------------------------------------------
# q1: the output size
# ---------------------------------------------------------------------------------------------

#: (n, k, stride, dilation) probes of q1, for both paddings. Together they tell every mistake
#: below apart: stride 1 and 2 and 3, dilation 1 to 3, n divisible by s and not.
OUTPUT_SIZE_PROBES: tuple[tuple[int, int, int, int], ...] = (
    (7, 3, 1, 1),
    (8, 3, 2, 1),
    (10, 2, 2, 1),
    (10, 3, 1, 2),
    (11, 3, 3, 1),
    (12, 3, 1, 3),
    (8, 4, 1, 1),
    (28, 3, 2, 1),
)


def _size_valid_mistakes() -> list[tuple[str, Callable[..., float], str]]:
    return [
        (
            "no stride",
            lambda n, k, s, d: n - d * (k - 1),
            "You left out the stride. With stride s the kernel jumps s pixels at a time, so divide the "
            "room it can move in by s: floor((n − d(k−1) − 1) / s) + 1.",
        ),
        (
            "missing +1",
            lambda n, k, s, d: (n - d * (k - 1) - 1) // s,
            "Your sizes are all one too small: you forgot the +1. The kernel's first position counts "
            "too: n − k + 1 positions for stride 1 (a 3-wide kernel fits 5 times in 7 pixels, not 4).",
        ),
        (
            "n - k without -1 and +1",
            lambda n, k, s, d: (n - d * (k - 1)) // s,
            "Close, but off by one when the stride does not divide evenly: you wrote floor((n − k) / s), "
            "with neither the −1 nor the +1. Keras uses floor((n − d(k−1) − 1) / s) + 1.",
        ),
        (
            "ceil instead of floor",
            lambda n, k, s, d: math.ceil((n - d * (k - 1) - 1) / s) + 1,
            "You rounded up: floor vs ceil. With 'valid' padding a window that would stick out of the "
            "image is dropped, so round down: floor((n − d(k−1) − 1) / s) + 1.",
        ),
        (
            "no rounding",
            lambda n, k, s, d: (n - d * (k - 1) - 1) / s + 1,
            "A size is a whole number of pixels, but you return a fraction when the stride does not divide "
            "evenly. Round down with integer division: (n − d(k−1) − 1) // s + 1.",
        ),
        (
            "dilation ignored",
            lambda n, k, s, d: (n - k) // s + 1,
            "Right for dilation 1, wrong when dilation > 1: you ignored the dilation. A dilated kernel "
            "spans d(k−1) + 1 pixels, not k: floor((n − d(k−1) − 1) / s) + 1.",
        ),
        (
            "span d·k",
            lambda n, k, s, d: (n - d * k) // s + 1,
            "The span of a dilated kernel is d(k−1) + 1 pixels (k taps with d − 1 gaps between them), not d·k.",
        ),
        (
            "valid computed as same",
            lambda n, k, s, d: -(-n // s),
            "For padding='valid' you used the 'same' formula. 'valid' adds no zeros, so the output "
            "shrinks: floor((n − d(k−1) − 1) / s) + 1.",
        ),
    ]


def _size_same_mistakes() -> list[tuple[str, Callable[..., float], str]]:
    return [
        (
            "same is n",
            lambda n, k, s, d: n,
            "For 'same' you returned n whatever the stride. 'same' keeps the size only for stride 1; "
            "with stride s Keras returns ceil(n / s) (the kernel still jumps s pixels).",
        ),
        (
            "same floor",
            lambda n, k, s, d: n // s,
            "For 'same' you rounded down: floor vs ceil. Keras pads so that every pixel is covered: "
            "ceil(n / s) (7 pixels with stride 2 give 4 outputs, not 3).",
        ),
        (
            "same no rounding",
            lambda n, k, s, d: n / s,
            "For 'same' you return a fraction when s does not divide n. Round up: ceil(n / s), "
            "e.g. -(-n // s) or math.ceil(n / s).",
        ),
        (
            "same computed as valid",
            lambda n, k, s, d: (n - d * (k - 1) - 1) // s + 1,
            "For padding='same' you used the 'valid' formula: the padding was ignored. With 'same', "
            "Keras adds zeros so the output has ceil(n / s) positions.",
        ),
        (
            "same with (k-1)//2 each side",
            lambda n, k, s, d: (n + 2 * (d * (k - 1) // 2) - d * (k - 1) - 1) // s + 1,
            "You padded (k−1)//2 on each side and applied the 'valid' formula. That is 'same' only for "
            "odd kernels; for an even one Keras puts the extra zero at the bottom/right. Simply: ceil(n / s).",
        ),
    ]


def _as_size(value: Any) -> float | None:
    """Return a returned size as a float, or None if it is not one number."""
    try:
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(arr) if arr.ndim == 0 else None


def _check_output_size(output_size: Callable) -> None:
    for padding, mistakes in (("valid", _size_valid_mistakes()), ("same", _size_same_mistakes())):
        got = []
        for n, k, s, d in OUTPUT_SIZE_PROBES:
            value = _run(output_size, n, k, s, d, padding)
            size = _as_size(value)
            if size is None:
                raise Mismatch(
                    f"output_size({n}, {k}, {s}, {d}, {padding!r})",
                    expected="one whole number",
                    got=f"{type(value).__name__}: {value!r}"[:120],
                    hint="Return the length of one output axis, e.g. `return (n - k) // stride + 1`.",
                )
            got.append(size)
        want = [reference_output_size(n, k, s, d, padding) for n, k, s, d in OUTPUT_SIZE_PROBES]
        if np.allclose(got, want):
            continue
        first = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if not np.isclose(g, w))
        n, k, s, d = OUTPUT_SIZE_PROBES[first]
        what = f"output_size(n={n}, k={k}, stride={s}, dilation={d}, padding={padding!r})"
        expected, shown = want[first], f"{got[first]:g}"
        for _, wrong, hint in mistakes:
            if np.allclose(got, [wrong(*p) for p in OUTPUT_SIZE_PROBES]):
                raise Mismatch(what, expected=expected, got=shown, hint=hint)
        raise Mismatch(
            what,
            expected=expected,
            got=shown,
            hint="valid: floor((n − d(k−1) − 1) / s) + 1; same: ceil(n / s). Work this probe out on paper.",
        )


q1 = Exercise(
    "Q1 · the output size",
    _check_output_size,
    hint="valid: floor((n − d(k−1) − 1) / s) + 1, the positions where the dilated kernel fits, one every "
    "s pixels; same: ceil(n / s).",
    lab="lab04",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# q2: 'same' padding
# ---------------------------------------------------------------------------------------------

#: (n, k, stride, dilation) probes of q2. Odd and even totals, stride 2 and 3, dilation, and one
#: case (8, 1, 3, 1) where the formula goes negative and must be clipped to 0.
SAME_PADDING_PROBES: tuple[tuple[int, int, int, int], ...] = (
    (7, 3, 1, 1),
    (8, 4, 1, 1),
    (6, 3, 2, 1),
    (9, 4, 2, 1),
    (5, 3, 1, 2),
    (7, 2, 3, 1),
    (10, 3, 1, 3),
    (8, 1, 3, 1),
)


def _split(total: int) -> tuple[int, int]:
    return total // 2, total - total // 2


def _pad_mistakes() -> list[tuple[str, Callable[..., tuple[float, float]], str]]:
    def keras_total(n: int, k: int, s: int, d: int) -> int:
        return sum(reference_same_padding(n, k, s, d))

    return [
        (
            "extra before",
            lambda n, k, s, d: tuple(reversed(reference_same_padding(n, k, s, d))),
            "The totals are right, but when the total is odd you put the extra zero before (top/left). "
            "Keras (TensorFlow) puts it after, at the bottom/right: before = total // 2, after = total − before.",
        ),
        (
            "stride-1 rule",
            lambda n, k, s, d: _split(d * (k - 1)),
            "You used the stride-1 rule, total = d(k−1), for every stride. With stride s Keras pads just "
            "enough for ceil(n/s) outputs: total = max((ceil(n/s) − 1)·s + d(k−1) + 1 − n, 0).",
        ),
        (
            "dilation ignored",
            lambda n, k, s, d: _split(max((-(-n // s) - 1) * s + k - n, 0)),
            "You ignored the dilation: a dilated kernel spans d(k−1) + 1 pixels, so use that instead of k "
            "in the total.",
        ),
        (
            "k//2 each side",
            lambda n, k, s, d: (k // 2, k // 2),
            "You padded k//2 on both sides. For an even kernel that is one zero too many; Keras splits "
            "the total: before = total // 2, after = total − before.",
        ),
        (
            "(k-1)//2 each side",
            lambda n, k, s, d: (d * (k - 1) // 2, d * (k - 1) // 2),
            "You padded (k−1)//2 on both sides: fine for odd kernels and stride 1 only. Compute the total "
            "Keras needs, then split it: before = total // 2, after = total − before.",
        ),
        (
            "one side only (after)",
            lambda n, k, s, d: (0, keras_total(n, k, s, d)),
            "You put all the padding after (bottom/right). Keras splits it between both sides: "
            "before = total // 2, after = total − before.",
        ),
        (
            "one side only (before)",
            lambda n, k, s, d: (keras_total(n, k, s, d), 0),
            "You put all the padding before (top/left). Keras splits it between both sides: "
            "before = total // 2, after = total − before.",
        ),
        (
            "floor instead of ceil",
            lambda n, k, s, d: _split(max((n // s - 1) * s + d * (k - 1) + 1 - n, 0)),
            "You used floor(n / s) outputs. 'same' gives ceil(n / s) outputs, and the total padding is "
            "what those need: max((ceil(n/s) − 1)·s + d(k−1) + 1 − n, 0).",
        ),
    ]


def _check_same_padding(same_padding: Callable) -> None:
    got = []
    for n, k, s, d in SAME_PADDING_PROBES:
        value = _run(same_padding, n, k, s, d)
        if isinstance(value, np.ndarray | list | tuple) and len(value) == 2:
            pair = tuple(_as_size(v) for v in value)
        else:
            pair = (None, None)
        if None in pair:
            raise Mismatch(
                f"same_padding({n}, {k}, {s}, {d})",
                expected="a pair of whole numbers: (before, after)",
                got=f"{type(value).__name__}: {value!r}"[:120],
                hint="Compute the total, split it, and `return before, after`.",
            )
        got.append(pair)
    want = [reference_same_padding(*p) for p in SAME_PADDING_PROBES]
    if np.allclose(got, want):
        return
    first = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if not np.allclose(g, w))
    n, k, s, d = SAME_PADDING_PROBES[first]
    what = f"same_padding(n={n}, k={k}, stride={s}, dilation={d})"
    expected, shown = want[first], tuple(int(v) if float(v).is_integer() else v for v in got[first])
    if any(v < 0 for pair in got for v in pair):
        bad = next(p for p, pair in zip(SAME_PADDING_PROBES, got, strict=True) if min(pair) < 0)
        raise Mismatch(
            f"same_padding{bad}",
            expected=reference_same_padding(*bad),
            got=got[SAME_PADDING_PROBES.index(bad)],
            hint="A padding is never negative. When the stride already covers the image the formula goes "
            "below 0: clip it with max(total, 0).",
        )
    for _, wrong, hint in _pad_mistakes():
        if np.allclose(got, [wrong(*p) for p in SAME_PADDING_PROBES]):
            raise Mismatch(what, expected=expected, got=shown, hint=hint)
    sums_right = np.allclose([sum(g) for g in got], [sum(w) for w in want])
    raise Mismatch(
        what,
        expected=expected,
        got=shown,
        hint=(
            "The totals are right but the split is not: before = total // 2, after = total − before."
            if sums_right
            else "total = max((ceil(n/s) − 1)·s + d(k−1) + 1 − n, 0). Work this probe out on paper."
        ),
    )


q2 = Exercise(
    "Q2 · 'same' padding",
    _check_same_padding,
    hint="total = max((ceil(n/s) − 1)·s + d(k−1) + 1 − n, 0); before = total // 2; after = total − before.",
    lab="lab04",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: the convolution
# ---------------------------------------------------------------------------------------------


def make_conv_probes(seed: int = 4) -> list[dict[str, Any]]:
    """Return q3's probes: dicts with ``x, kernel, bias, stride, padding, dilation`` and a ``name``.

    Small integers (so loops are fast and sums exact), non-square images and kernels (so rows and
    columns cannot be confused), an asymmetric kernel (so a flip shows), several input channels
    (so each must be summed) and a non-zero bias. They run from plain to hard: valid → stride →
    same (odd kernel) → same (even kernel) → same with stride 2 → dilation → same with dilation.
    """
    rng = np.random.default_rng(seed)

    def probe(name: str, hw: tuple[int, int], k: tuple[int, int], c_in: int, c_out: int, **how: Any) -> dict:
        x = rng.integers(-3, 4, size=(*hw, c_in)).astype(np.float64)
        kernel = rng.integers(-2, 3, size=(*k, c_in, c_out)).astype(np.float64)
        bias = rng.integers(1, 4, size=c_out).astype(np.float64) * rng.choice([-1, 1], size=c_out)
        return {"name": name, "x": x, "kernel": kernel, "bias": bias, "stride": 1, "padding": "valid",
                "dilation": 1} | how  # fmt: skip

    return [
        probe("valid", (5, 6), (3, 2), 2, 3),
        probe("valid, stride 2", (7, 8), (3, 3), 2, 2, stride=2),
        probe("same, 3×3", (5, 6), (3, 3), 2, 2, padding="same"),
        probe("same, 4×4 (even)", (6, 7), (4, 4), 1, 2, padding="same"),
        probe("same, stride 2", (6, 7), (3, 3), 2, 2, padding="same", stride=2),
        probe("valid, dilation 2", (8, 7), (3, 3), 2, 2, dilation=2),
        probe("same, dilation 2", (6, 6), (3, 3), 1, 2, padding="same", dilation=2),
    ]


def _describe(p: dict) -> str:
    x, k = p["x"], p["kernel"]
    return (
        f"conv2d on the probe '{p['name']}' (x {x.shape}, kernel {k.shape}, stride={p['stride']}, "
        f"padding={p['padding']!r}, dilation={p['dilation']})"
    )


def _conv_mistakes(p: dict) -> list[tuple[str, np.ndarray, str]]:
    """What each typical mistake returns on probe ``p``, with the hint that names it.

    The first match wins, and the order matters where two mistakes coincide on a probe: with an odd
    kernel and stride 2 the stride-1 padding and the misplaced extra zero give the same windows,
    but a learner who misplaces the extra zero has already been named on the even-kernel probe.
    """
    x, k, b, s, d, padding = p["x"], p["kernel"], p["bias"], p["stride"], p["dilation"], p["padding"]
    kh, kw = k.shape[:2]
    h, w = x.shape[:2]
    pads = _keras_pads(x, k, s, d, padding)
    right = _correlate(x, k, b, s, d, pads)
    h_out, w_out = right.shape[:2]
    out: list[tuple[str, np.ndarray, str]] = [
        (
            "flipped kernel",
            _correlate(x, k[::-1, ::-1], b, s, d, pads),
            "You flipped the kernel: that is the true convolution of mathematics (scipy.signal.convolve2d). "
            "Keras's Conv2D computes a cross-correlation: y[i, j] = Σ x[i·s + u·d, j·s + v·d] · K[u, v], "
            "with no flip. (For learned kernels the difference does not matter; for matching Keras it does.)",
        ),
        (
            "no bias",
            right - b,
            "Every value is off by the same amount per output channel: you forgot to add the bias b[o].",
        ),
        (
            "bias per input channel",
            right + (k.shape[2] - 1) * b,
            "The bias is added C_in times: add b[o] once per output value, after summing over u, v and "
            "the input channels c.",
        ),
        (
            "first input channel only",
            _correlate(x[..., :1], k[:, :, :1], b, s, d, pads),
            "Only the first input channel counts in your result. A Conv2D filter spans all input channels: "
            "sum over c as well as over u and v, Σ_c x[..., c] · K[u, v, c, o].",
        ),
        (
            "kernel rows and columns swapped",
            _correlate(x, k.transpose(1, 0, 2, 3), b, s, d, pads[2:] + pads[:2]),
            "You used the kernel transposed (K[v, u] instead of K[u, v]). Axis 0 of the kernel goes down the "
            "rows of the image (with i), axis 1 across the columns (with j).",
        ),
    ]
    if s > 1:
        full = _correlate(x, k, b, 1, d, pads)
        out += [
            (
                "stride ignored",
                full,
                "Your output is the stride-1 result: you ignored the stride. Output pixel (i, j) starts at "
                "input pixel (i·s, j·s), and there are floor((n − d(k−1) − 1) / s) + 1 of them per axis.",
            ),
            (
                "stride only in the size",
                full[:h_out, :w_out],
                "The output has the right size, but output (i, j) reads the window at (i, j): the stride is "
                "missing from the indices. The window of output (i, j) starts at (i·s, j·s).",
            ),
        ]
    if d > 1:
        plain_pads = _keras_pads(x, k, s, 1, padding)
        no_dilation = _correlate(x, k, b, s, 1, plain_pads)
        out += [
            (
                "dilation ignored",
                no_dilation,
                "You ignored the dilation: with dilation d the kernel's taps are d pixels apart, "
                "x[i·s + u·d, j·s + v·d], and the kernel spans d(k−1) + 1 pixels.",
            ),
            (
                "dilation only in the size",
                _correlate(x, k, b, s, 1, pads)[:h_out, :w_out],
                "The output has the right size, but the taps are next to each other: multiply the kernel "
                "offsets by the dilation, x[i·s + u·d, j·s + v·d].",
            ),
        ]
    if padding == "valid":
        out.append(
            (
                "padded when valid",
                _correlate(x, k, b, s, d, _keras_pads(x, k, s, d, "same")),
                "You padded although padding='valid'. 'valid' means no padding at all: only the windows that "
                "fit inside the image, so the output is smaller than the input.",
            )
        )
        return out
    top, bottom, left, right_pad = pads
    t_rows, t_cols = top + bottom, left + right_pad
    out += [
        (
            "no padding",
            _correlate(x, k, b, s, d, (0, 0, 0, 0)),
            "padding='same' but you did not pad: add zeros around the image before sliding the kernel "
            "(see same_padding from Q2), so the output has ceil(n / s) pixels per axis.",
        ),
        (
            "padding after only",
            _correlate(x, k, b, s, d, (0, t_rows, 0, t_cols)),
            "You padded only after the image (bottom/right). Keras splits the zeros: total // 2 before "
            "(top/left), the rest after.",
        ),
        (
            "padding before only",
            _correlate(x, k, b, s, d, (t_rows, 0, t_cols, 0)),
            "You padded only before the image (top/left). Keras splits the zeros: total // 2 before, the "
            "rest after (bottom/right).",
        ),
        (
            "same padding of stride 1",
            _correlate(x, k, b, s, d, (*_split(d * (kh - 1)), *_split(d * (kw - 1)))),
            "You padded as for stride 1, d(k−1) in total. With stride s Keras pads only what ceil(n/s) "
            "outputs need, max((ceil(n/s) − 1)·s + d(k−1) + 1 − n, 0): often less, and split differently.",
        ),
        (
            "extra zero before",
            _correlate(x, k, b, s, d, (bottom, top, right_pad, left)),
            "With an odd total of padding you put the extra zero at the top/left. Keras puts it at the "
            "bottom/right: before = total // 2, after = total − before.",
        ),
        (
            "k//2 each side",
            _correlate(x, k, b, s, d, (d * kh // 2,) * 2 + (d * kw // 2,) * 2),
            "You padded k//2 on every side. For an even kernel that is one zero too many; use Keras's "
            "split of the total: before = total // 2, after = total − before.",
        ),
        (
            "(k-1)//2 each side",
            _correlate(x, k, b, s, d, (d * (kh - 1) // 2,) * 2 + (d * (kw - 1) // 2,) * 2),
            "You padded (k−1)//2 on every side: right for odd kernels only. For an even kernel Keras adds the "
            "extra zero at the bottom/right: before = total // 2, after = total − before.",
        ),
    ]
    if d > 1:
        dilation_blind = (*reference_same_padding(h, kh, s, 1), *reference_same_padding(w, kw, s, 1))
        out.append(
            (
                "same padding without dilation",
                _correlate(x, k, b, s, d, dilation_blind),
                "Your padding ignores the dilation: the dilated kernel spans d(k−1) + 1 pixels, and 'same' "
                "padding has to make room for all of them.",
            )
        )
    return out


def _check_conv2d(conv2d: Callable) -> None:
    for p in make_conv_probes():
        got_raw = _run(
            conv2d,
            p["x"],
            p["kernel"],
            p["bias"],
            stride=p["stride"],
            padding=p["padding"],
            dilation=p["dilation"],
        )
        got = _as_array(got_raw, _describe(p))
        want = reference_conv2d(p["x"], p["kernel"], p["bias"], p["stride"], p["padding"], p["dilation"])
        if (
            got.shape == want.shape
            and np.all(np.isfinite(got))
            and np.allclose(got, want, rtol=1e-4, atol=1e-4)
        ):
            continue
        what = _describe(p)
        for _, wrong, hint in _conv_mistakes(p):
            if wrong.shape == got.shape and np.allclose(got, wrong, rtol=1e-4, atol=1e-4):
                raise Mismatch(what, expected=_values(want), got=_values(got), hint=hint)
        h_out, w_out, c_out = want.shape
        if got.shape == (*want.shape[:2], p["x"].shape[2], c_out):
            hint = "Your result keeps an axis per input channel: sum over the input channels c too."
        elif got.shape == want.shape[:2] or got.shape == (*want.shape[:2], 1) and c_out > 1:
            hint = (
                f"One output map per filter: the result needs C_out = {c_out} channels, "
                "y[i, j, o] with its own kernel K[:, :, :, o] and bias b[o]."
            )
        elif got.shape[:2] != want.shape[:2]:
            hint = (
                f"The output should be {h_out}×{w_out}: use your output_size (Q1) for each axis, and the "
                "padding from same_padding (Q2) when padding='same'."
            )
        else:
            hint = None
        if got.shape != want.shape:
            raise Mismatch(f"the shape of {what}", expected=want.shape, got=got.shape, hint=hint)
        raise Mismatch(what, expected=_values(want), got=_values(got), hint=hint)


def _values(a: np.ndarray) -> str:
    """The first output channel as rows of numbers, and the shape: enough to compare by eye."""
    first = np.asarray(a)[..., 0] if np.ndim(a) == 3 else np.asarray(a)
    with np.printoptions(precision=3, suppress=True, linewidth=200, threshold=60):
        text = np.array2string(first, separator=", ").replace("\n", "")
    return f"channel 0: {text} (shape {np.shape(a)})"


q3 = Exercise(
    "Q3 · a 2-D convolution",
    _check_conv2d,
    hint="Pad (for 'same', with same_padding), then for each output pixel (i, j) and filter o add "
    "x[i·s + u·d, j·s + v·d, c] · K[u, v, c, o] over u, v and c, plus b[o]. No flip: Keras "
    "cross-correlates.",
    lab="lab04",
    solution_id="q3",
)


# ---------------------------------------------------------------------------------------------
# After the exercises: the learner's convolution on a real photo
# ---------------------------------------------------------------------------------------------


def show_edges(conv2d: Callable, image: np.ndarray, *, stride: int = 2) -> Any:
    """Run the learner's ``conv2d`` on ``image`` (grey) with Sobel x and y kernels and show the two maps.

    Returns q3's :class:`Feedback` if ``conv2d`` does not pass q3 yet. Otherwise returns a figure of
    the two edge maps; its title gives the largest difference from ``keras.layers.Conv2D`` with the
    same weights, and ``layout.meta["max_difference"]`` holds it.
    """
    feedback = q3.evaluate(conv2d)
    if not feedback.passed:
        return feedback
    import keras

    from utils import viz, widgets

    grey = widgets.to_grey(image)[:, :, None]
    sobel_x = np.array(widgets.KERNELS["Sobel x (vertical edges)"], dtype=np.float64)
    kernel = np.stack([sobel_x, sobel_x.T], axis=-1)[:, :, None, :]  # (3, 3, 1, 2)
    bias = np.zeros(2)
    mine = _as_array(_run(conv2d, grey, kernel, bias, stride=stride, padding="same", dilation=1), "conv2d")
    # float32 under any policy: under mixed precision a float16 or bfloat16 layer would differ from
    # the learner's float64 result by 1e-2 or more from its own rounding alone.
    layer = keras.layers.Conv2D(2, 3, strides=stride, padding="same", dtype="float32")
    layer.build((None, *grey.shape))
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    theirs = np.asarray(layer(grey[None].astype("float32")))[0]
    difference = float(np.abs(mine - theirs).max())
    fig = viz.feature_maps(
        np.abs(mine),
        names=["|Sobel x|: vertical edges", "|Sobel y|: horizontal edges"],
        title=f"Your conv2d, stride {stride}, 'same' (largest difference from Keras: {difference:.1e})",
        size=300,
    )
    fig.update_layout(meta={**fig.layout.meta, "max_difference": difference})
    return fig


def _is_feedback(value: Any) -> bool:  # used by the tests
    return isinstance(value, Feedback)
