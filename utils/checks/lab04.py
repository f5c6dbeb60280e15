"""Checks for Lab 04: convolution arithmetic and the backward pass lesson 04 did not show.

* q1 ``receptive_field``: strides ignored, a layer's own stride counted, dilation ignored, k for k − 1;
* q2 ``transposed_output_size``: the forward formula, (n − 1)s + k when k < s, overhang left out, stride
  ignored, symmetric cropping; q3 ``conv_input_grad`` (∂L/∂x of Conv2D): kernel not flipped, channels not
  transposed, padding cropped on the wrong side or ignored, dy not spread by the stride; q4
  ``conv_kernel_grad`` (∂L/∂K): flipped, dy summed over channels, stride ignored, padding on the wrong side,
  averaged. Gradients: a NumPy scatter/gather engine (tested against tf.GradientTape), answer_tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utils.checks import Exercise, Mistake, answer_tolerance, as_array, as_int, call, judge

STACKS = [  # (k, stride, dilation) per layer, first layer first
    [(3, 1, 1), (3, 1, 1)], [(3, 1, 1), (2, 2, 1), (3, 1, 1)], [(3, 2, 1), (3, 2, 1), (3, 1, 1)],
    [(3, 1, 1), (3, 1, 2), (3, 1, 4)], [(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 2)], [(5, 1, 1)],
    [(2, 2, 1), (3, 1, 3)]]  # fmt: skip


def _field(layers: list, *, own_stride: bool = False, strides: bool = True, span: Any = None) -> int:
    span, r, jump = span or (lambda k, d: d * (k - 1)), 1, 1
    for k, s, d in layers:
        jump *= s if own_stride and strides else 1
        r += span(k, d) * jump
        jump *= s if strides and not own_stride else 1
    return r


def _over_stacks(**kwargs: Any) -> Any:
    return lambda: np.array([_field(s, **kwargs) for s in STACKS])


Q1_MISTAKES = [
    Mistake(
        "strides ignored",
        "Right for stride-1 stacks only. After a stride-2 layer, one step of the next layer is two "
        "input pixels: what does that do to what its kernel adds?",
        _over_stacks(strides=False),
    ),
    Mistake(
        "each layer's own stride counted",
        "Too large after a strided layer: a layer's stride spaces the *following* layers' taps, not "
        "its own. Multiply the strides of the layers before this one only.",
        _over_stacks(own_stride=True),
    ),
    Mistake(
        "dilation ignored",
        "A dilated kernel's taps are d pixels apart: a size-k kernel then reaches d(k − 1) pixels "
        "beyond its first tap, not k − 1.",
        _over_stacks(span=lambda k, d: k - 1),
    ),
    Mistake(
        "k instead of k − 1",
        "Off by one per layer: a size-k kernel widens the field by k − 1 taps (a 1×1 kernel adds nothing).",
        _over_stacks(span=lambda k, d: d * k),
    ),
]


def _judge_ints(fn: Any, probes: list, right: Any, mistakes: list, name: str) -> None:
    """Call fn on every probe (a tuple of arguments); name the mistake the answers match, if any."""
    got = np.array([as_int(call(fn, *p), f"{name}{p}") for p in probes])
    want = np.array([right(*p) for p in probes])
    if (got != want).any():
        i = int(np.argmax(got != want))
        where, tol = f"{name}{probes[i]}", {"rtol": 0, "atol": 0.5}
        judge(got, want, mistakes, what=where, tol=tol, describe=f"{want[i]} here (you gave {got[i]})")


def _check_receptive_field(fn: Any) -> None:
    _judge_ints(fn, [(list(s),) for s in STACKS], _field, Q1_MISTAKES, "receptive_field")


q1 = Exercise(
    "Q1 · the receptive field of a stack",
    _check_receptive_field,
    hint=(
        "Go layer by layer and keep two numbers: how wide the field is so far, and how many input "
        "pixels apart the current layer's neighbouring outputs are.",
        "Each layer adds (its span − 1) × (the product of the strides of the layers before it); its "
        "span is d(k − 1) + 1. Start from a field of 1 pixel.",
    ),
)

SIZE_PROBES = [(n, k, s, p) for p in ("valid", "same") for n, k, s in [(4, 3, 2), (5, 2, 2), (3, 1, 3),
               (6, 4, 1), (3, 2, 3), (7, 5, 2), (2, 3, 3)]]  # fmt: skip


def reference_transposed_size(n: int, k: int, stride: int, padding: str) -> int:
    """``keras.layers.Conv2DTranspose``'s output length (output_padding=None, dilation 1)."""
    return n * stride + (max(k - stride, 0) if padding == "valid" else 0)


def _sizes(valid: Any, same: Any = lambda n, k, s: n * s) -> Any:
    return lambda: np.array([valid(n, k, s) if p == "valid" else same(n, k, s) for n, k, s, p in SIZE_PROBES])


Q2_MISTAKES = [
    Mistake(
        "the forward formula",
        "That is a Conv2D's output size. A transposed convolution goes the other way: n is the *small* "
        "map's size, and you want the big one's.",
        _sizes(lambda n, k, s: (n - k) // s + 1, lambda n, k, s: -(-n // s)),
    ),
    Mistake(
        "(n − 1)s + k when k < s",
        "Right when k ≥ s. When k < s the stamped kernels leave gaps, yet Keras still gives each input "
        "pixel s output pixels: the overhang is never negative.",
        _sizes(lambda n, k, s: (n - 1) * s + k),
    ),
    Mistake(
        "overhang left out",
        "For 'valid' you returned n·s: the last copy of the kernel sticks out past the last stride "
        "step by k − s pixels (when that is positive), and 'valid' keeps them.",
        _sizes(lambda n, k, s: n * s),
    ),
    Mistake(
        "stride ignored",
        "A transposed convolution spreads each input pixel over `stride` output pixels.",
        _sizes(lambda n, k, s: n + k - 1, lambda n, k, s: n),
    ),
    Mistake(
        "symmetric cropping for 'same'",
        "For 'same' you cropped (k − 1)//2 on each side, the symmetric rule. Keras inverts a strided "
        "'same' Conv2D's size instead: which size gives n after ceil(· / s)?",
        _sizes(lambda n, k, s: n * s + max(k - s, 0), lambda n, k, s: (n - 1) * s + k - 2 * ((k - 1) // 2)),
    ),
]


def _check_transposed_size(fn: Any) -> None:
    _judge_ints(fn, SIZE_PROBES, reference_transposed_size, Q2_MISTAKES, "transposed_output_size")


q2 = Exercise(
    "Q2 · the output size of a transposed convolution",
    _check_transposed_size,
    hint=(
        "Picture each input pixel stamping a copy of the kernel onto the output, the copies `stride` "
        "pixels apart. How far does the last copy reach?",
        "'valid' keeps every stamped pixel: n·s, plus what the last copy sticks out beyond its s "
        "pixels (never less than 0). 'same' keeps exactly n·s.",
    ),
)


def keras_pads(h: int, w: int, kh: int, kw: int, s: int, padding: str) -> tuple[int, ...]:
    """(top, bottom, left, right): the zeros Keras's Conv2D adds; the odd one goes after."""
    totals = [max((-(-n // s) - 1) * s + k - n, 0) if padding == "same" else 0 for n, k in ((h, kh), (w, kw))]
    return tuple(x for t in totals for x in (t // 2, t - t // 2))


def scatter(dy: np.ndarray, kernel: np.ndarray, shape: tuple, s: int, pads: tuple) -> np.ndarray:
    """dx: each output sends dy · K[u, v]ᵀ back to the pixels its window read; the padding dropped."""
    (h, w, c_in), (kh, kw), (ho, wo) = shape, kernel.shape[:2], dy.shape[:2]
    big = np.zeros((h + sum(pads[:2]) + (ho + kh) * s, w + sum(pads[2:]) + (wo + kw) * s, c_in))
    for u in range(kh):
        for v in range(kw):
            big[u : u + (ho - 1) * s + 1 : s, v : v + (wo - 1) * s + 1 : s] += dy @ kernel[u, v].T
    return big[pads[0] : pads[0] + h, pads[2] : pads[2] + w]


def gather(x: np.ndarray, dy: np.ndarray, kh: int, kw: int, s: int, pads: tuple) -> np.ndarray:
    """dK: for each tap (u, v), the pixels it read times dy, summed over the output positions."""
    (t, b, left, r), (ho, wo) = pads, dy.shape[:2]
    xp = np.pad(x, ((t, b + (ho + kh) * s), (left, r + (wo + kw) * s), (0, 0)))
    taps = [
        [xp[u : u + (ho - 1) * s + 1 : s, v : v + (wo - 1) * s + 1 : s] for v in range(kw)] for u in range(kh)
    ]
    return np.einsum("uvijc,ijo->uvco", np.array(taps), dy)


def make_probes() -> list[dict[str, Any]]:
    """(x, kernel, dy, stride, padding): odd and even 'same' padding, strides 1 and 2, C_in = C_out once."""
    rng, out = np.random.default_rng(4), []
    for (h, w, c), (kh, kw, co), s, padding in [((5, 5, 2), (3, 3, 2), 1, "valid"),
            ((6, 6, 2), (3, 3, 3), 2, "same"), ((7, 6, 1), (2, 3, 2), 1, "same"),
            ((7, 7, 2), (3, 3, 2), 2, "valid")]:  # fmt: skip
        pads = keras_pads(h, w, kh, kw, s, padding)
        ho, wo = (h + sum(pads[:2]) - kh) // s + 1, (w + sum(pads[2:]) - kw) // s + 1
        x, k, dy = rng.normal(size=(h, w, c)), rng.normal(size=(kh, kw, c, co)), rng.normal(size=(ho, wo, co))
        out.append(dict(x=x, kernel=k, dy=dy, stride=s, padding=padding, pads=pads))
    return out


_swap = lambda pads: (pads[1], pads[0], pads[3], pads[2])  # the odd zero on the other side


def _dx(p: dict, kernel: Any = None, s: int = 0, pads: Any = None) -> np.ndarray:
    kernel = p["kernel"] if kernel is None else kernel
    return scatter(p["dy"], kernel, p["x"].shape, s or p["stride"], p["pads"] if pads is None else pads)


def _dk(p: dict, dy: Any = None, s: int = 0, pads: Any = None) -> np.ndarray:
    dy, pads = p["dy"] if dy is None else dy, p["pads"] if pads is None else pads
    return gather(p["x"], dy, *p["kernel"].shape[:2], s or p["stride"], pads)


Q3_MISTAKES = [
    Mistake(
        "kernel not flipped",
        "You slid the kernel over dy as the forward pass slid it over x. Seen from dy, the weight that "
        "linked pixel (i, j) to each output sits upside down and back to front.",
        lambda p: _dx(p, kernel=p["kernel"][::-1, ::-1]),
    ),
    Mistake(
        "channels not transposed",
        "The forward pass maps C_in channels to C_out with K[u, v] (C_in × C_out); the backward pass "
        "maps dy's C_out channels back to C_in: use that matrix the other way round.",
        lambda p: _dx(p, kernel=p["kernel"].swapaxes(2, 3)) if len(set(p["kernel"].shape[2:])) == 1 else None,
    ),
    Mistake(
        "padding cropped on the wrong side",
        "Shifted by one pixel where the 'same' padding is odd: Keras put the odd zero after "
        "(bottom/right), so crop the padded gradient with those same offsets.",
        lambda p: _dx(p, pads=_swap(p["pads"])),
    ),
    Mistake(
        "padding ignored",
        "With 'same' the windows lay on the *padded* x: find the gradient of the padded image, then "
        "drop the rows and columns that were zeros.",
        lambda p: _dx(p, pads=(0, 0, 0, 0)),
    ),
    Mistake(
        "dy not spread out by the stride",
        "With stride s, neighbouring outputs read windows s pixels apart, so their gradients land s "
        "pixels apart in dx (as if dy had s − 1 zeros between its values).",
        lambda p: _dx(p, s=1) if p["stride"] > 1 else None,
    ),
]

Q4_MISTAKES = [
    Mistake(
        "flipped",
        "Your kernel gradient is upside down and back to front: tap (u, v) of the kernel read pixel "
        "(i·s + u, j·s + v) for output (i, j), so its gradient pairs dy[i, j] with that pixel.",
        lambda p: _dk(p)[::-1, ::-1],
    ),
    Mistake(
        "dy summed over its channels",
        "Every filter o got the same gradient: you summed dy over its channels. Filter o only "
        "produced output channel o, so only dy[..., o] reaches it; sum over the positions only.",
        lambda p: np.repeat(_dk(p, dy=p["dy"].sum(-1, keepdims=True)), p["dy"].shape[-1], axis=-1),
    ),
    Mistake(
        "stride ignored",
        "With stride s, output (i, j)'s window starts at (i·s, j·s): each tap read pixels s apart.",
        lambda p: _dk(p, s=1) if p["stride"] > 1 else None,
    ),
    Mistake(
        "padding on the wrong side",
        "Pad x as the forward pass did: Keras puts an odd total's extra zero after (bottom/right).",
        lambda p: _dk(p, pads=_swap(p["pads"])),
    ),
    Mistake(
        "averaged over positions",
        "Every position shares the weights: their gradient is the *sum* over positions, not the mean.",
        lambda p: _dk(p) / np.prod(p["dy"].shape[:2]),
    ),
]


def _check_grad(fn: Any, which: str) -> None:
    for p in make_probes():
        where = f"x {p['x'].shape}, kernel {p['kernel'].shape}, stride {p['stride']}, {p['padding']!r}"
        if which == "x":
            got = call(fn, p["dy"].copy(), p["kernel"].copy(), p["x"].shape, p["stride"], p["padding"])
        else:
            got = call(fn, p["x"].copy(), p["dy"].copy(), p["kernel"].shape[:2], p["stride"], p["padding"])
        want, mistakes = (_dx(p), Q3_MISTAKES) if which == "x" else (_dk(p), Q4_MISTAKES)
        arr = as_array(got, f"dL/d{which}", shape=want.shape, hint="A gradient has its variable's shape.")
        flat = [
            Mistake(m.name, m.hint, lambda p, f=m.compute: np.ravel(f(p))) for m in mistakes
        ]  # None: no match
        tol = answer_tolerance(got, rtol=1e-4, atol=1e-4)  # shown flat: its first and last values
        judge(arr.ravel(), want.ravel(), flat, what=f"dL/d{which} for {where}", inputs=(p,), tol=tol)


q3 = Exercise(
    "Q3 · the gradient with respect to the input",
    lambda fn: _check_grad(fn, "x"),
    hint=(
        "Run the forward pass in your head: output (i, j, o) read the window of the padded x that starts "
        "at (i·s, j·s). Every pixel it read gets dy[i, j, o] times the weight it was multiplied by.",
        "Start from zeros the size of the padded x, add each output's share (dy[i, j] through K[u, v] "
        "transposed) onto its window, then remove the padding Keras added (before = total // 2).",
    ),
)

q4 = Exercise(
    "Q4 · the gradient with respect to the kernel",
    lambda fn: _check_grad(fn, "K"),
    hint=(
        "Weight K[u, v, c, o] was used once per output position: it multiplied the pixel under tap "
        "(u, v) of that position's window, and the product went into output channel o.",
        "Pad x as the forward pass did; for each tap (u, v), take the pixels it read at every output "
        "position (a strided slice) and contract them with dy over the positions (an einsum).",
    ),
)


def compare_with_tape(input_grad: Any, kernel_grad: Any) -> Any:
    """Your gradients next to ``tf.GradientTape``'s through ``tf.nn.conv2d`` (float32) on 9×9 images."""
    for exercise, answer in ((q3, input_grad), (q4, kernel_grad)):
        if not (feedback := exercise.evaluate(answer)).passed:
            return feedback
    import pandas as pd
    import tensorflow as tf

    rng, rows = np.random.default_rng(0), []
    for s, padding in ((1, "same"), (2, "same"), (2, "valid")):
        x, kernel = tf.constant(rng.normal(size=(1, 9, 9, 3))), tf.constant(rng.normal(size=(3, 3, 3, 4)))
        x, kernel = tf.cast(x, tf.float32), tf.cast(kernel, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.nn.conv2d(x, kernel, s, padding.upper())
            dy = rng.normal(size=y.shape).astype("float32")
            loss = tf.reduce_sum(y * dy)
        dx, dk = (g.numpy() for g in tape.gradient(loss, [x, kernel]))
        mine_dx = input_grad(dy[0], kernel.numpy(), (9, 9, 3), s, padding)
        mine_dk = kernel_grad(x.numpy()[0], dy[0], (3, 3), s, padding)
        rows.append((s, padding, np.abs(mine_dx - dx[0]).max(), np.abs(mine_dk - dk).max()))
    return pd.DataFrame(
        rows, columns=["stride", "padding", "max |your dx − tape's|", "max |your dK − tape's|"]
    )
