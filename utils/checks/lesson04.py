"""Lesson 04's own exercises. Tasks and the mistakes they name:

* ``e1`` ``separable_params(k, c_in, c_out)``: the parameters of ``SeparableConv2D``: a regular Conv2D's
  count, the bias left out, a bias on the depthwise step too, one depthwise filter for all channels.
* ``e2`` ``shift_right``: a 3×3 kernel that moves an image one pixel right under Conv2D: flipped (it moves
  left), rows and columns swapped (it moves down), the 1 in the wrong row (it moves diagonally).
"""

import numpy as np

from utils.checks import Exercise, Mistake, as_array, as_int, call, judge

SEPARABLE_PROBES = [(3, 8, 16), (5, 3, 32), (1, 4, 4), (3, 64, 128)]


def _counts(per: object) -> object:
    return lambda: np.array([per(k, c_in, c_out) for k, c_in, c_out in SEPARABLE_PROBES])


E1_MISTAKES = [
    Mistake("a regular Conv2D's count", "That is Conv2D's k·k·C_in·C_out + C_out. The separable layer "
            "filters each input channel on its own first, then mixes channels with a 1×1 convolution.",
            _counts(lambda k, ci, co: k * k * ci * co + co)),
    Mistake("bias left out", "Keras gives the separable layer one bias per output channel (on the 1×1 step).",
            _counts(lambda k, ci, co: k * k * ci + ci * co)),
    Mistake("a bias on the depthwise step too", "Keras has no bias between the two steps: only the 1×1 "
            "step's C_out biases.", _counts(lambda k, ci, co: k * k * ci + ci + ci * co + co)),
    Mistake("one depthwise filter for all channels", "The depthwise step has one k×k filter *per input "
            "channel*, not one shared by all of them.", _counts(lambda k, ci, co: k * k + ci * co + co)),
]  # fmt: skip


def _check_separable(fn: object) -> None:
    got = np.array([as_int(call(fn, *p), f"separable_params{p}") for p in SEPARABLE_PROBES])
    judge(got, _counts(lambda k, ci, co: k * k * ci + ci * co + co)(), E1_MISTAKES, inputs=(),
          what="separable_params(k, c_in, c_out) for " + ", ".join(map(str, SEPARABLE_PROBES)),
          tol={"rtol": 0, "atol": 0.5})  # fmt: skip


e1 = Exercise(
    "Exercise 1 · the parameters of a separable convolution",
    _check_separable,
    hint=(
        "Count the two steps apart: the depthwise step's filters, then the pointwise (1×1) convolution's "
        "weights, then the biases.",
        "Depthwise: one k×k filter per input channel. Pointwise: a 1×1 kernel from C_in to C_out channels. "
        "Bias: one per output channel, none in between.",
    ),
)

IMAGE = np.arange(1.0, 31.0).reshape(5, 6) ** 1.5  # no two pixels alike, so every shift shows


def _shifted(dy: int, dx: int) -> np.ndarray:
    """The image moved dy pixels down and dx right, zeros coming in (what 'same' padding gives)."""
    out = np.roll(IMAGE, (dy, dx), axis=(0, 1))
    out[[0 if dy > 0 else -1] if dy else [], :] = 0
    out[:, [0 if dx > 0 else -1] if dx else []] = 0
    return out


E2_MISTAKES = [
    Mistake("flipped: moves left", "Your kernel moves the image left: you flipped it, as the convolution "
            "of mathematics would. Conv2D does not flip: output (i, j) reads x[i + u − 1, j + v − 1] · K[u, v].",
            lambda: _shifted(0, -1)),
    Mistake("moves down", "Your kernel moves the image down: rows and columns are swapped. Axis 0 of the "
            "kernel runs down the rows, axis 1 across the columns.", lambda: _shifted(1, 0)),
    Mistake("moves up", "Your kernel moves the image up, flipped and transposed: the 1 belongs in the "
            "middle row.", lambda: _shifted(-1, 0)),
]  # fmt: skip


def _check_shift(kernel: object) -> None:
    k = as_array(kernel, "shift_right", shape=(3, 3), hint="A 3×3 array of weights.")
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(IMAGE, 1), (3, 3))
    got = np.einsum("ijuv,uv->ij", windows, k)  # Conv2D with padding='same' on a 5×6 image
    judge(got, _shifted(0, 1), E2_MISTAKES, what="Conv2D(image, shift_right)", tol={"rtol": 0, "atol": 1e-6})


e2 = Exercise(
    "Exercise 2 · a kernel that moves the image",
    _check_shift,
    hint=(
        "Output pixel (i, j) should equal input pixel (i, j − 1). Which of the nine window positions of "
        "output (i, j) sits on that pixel?",
        "The window of output (i, j) covers rows i − 1 … i + 1 and columns j − 1 … j + 1 (with 'same' "
        "padding), and Conv2D does not flip the kernel: put a single 1 where that pixel falls.",
    ),
)
