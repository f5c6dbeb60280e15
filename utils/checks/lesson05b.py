"""Lesson 05b's own exercises. Tasks and the mistakes they name:

* ``e1`` ``recurrent_params(kind, features, units)``: the weights of a Keras SimpleRNN, LSTM or GRU: no
  recurrent kernel, no bias, the GRU's bias counted as one row (``reset_after=False``), three LSTM blocks.
* ``e2`` ``steps_to_shrink(rho, fraction)``: the first distance d at which a linear RNN with U = ρQ scales the
  gradient by at most ``fraction``: rounded down, one step too many, the ratio of logarithms upside down.
"""

import math

import numpy as np

from utils.checks import Exercise, Mistake, as_int, call, judge

LAYERS = [("simple", 3, 8), ("lstm", 3, 8), ("lstm", 32, 64), ("gru", 3, 8), ("gru", 32, 64)]


def recurrent_params_variant(kind, features, units, *, recurrent=True, bias=True, gru_bias_rows=2,
                             lstm_blocks=4) -> int:  # fmt: skip
    """Keras's weight count: blocks × (features·units + units·units + bias rows·units); keywords: mistakes."""
    blocks, rows = {"simple": (1, 1), "lstm": (lstm_blocks, 1), "gru": (3, gru_bias_rows)}[kind]
    per_block = features * units + (units * units if recurrent else 0) + (rows * units if bias else 0)
    return blocks * per_block


def _per_layer(**mistake: object) -> object:
    return lambda: np.array(
        [recurrent_params_variant(*layer, **mistake) for layer in LAYERS], dtype=np.float64
    )


E1_MISTAKES = [
    Mistake("no recurrent kernel", "Every gate also reads the previous state h_{t−1}: each block has a "
            "`recurrent_kernel` of units × units besides the `kernel`.", _per_layer(recurrent=False)),
    Mistake("no bias", "Each block has a bias of `units` numbers (the GRU's two rows of them).",
            _per_layer(bias=False)),
    Mistake("one bias row for the GRU", "That is the GRU with reset_after=False. Keras's default keeps two "
            "bias rows, one for the input side and one for the recurrent side (b and b′).",
            _per_layer(gru_bias_rows=1)),
    Mistake("three LSTM blocks", "The LSTM has three gates *and* the candidate cell g: four blocks (i, f, c, "
            "o), each with its own kernel, recurrent kernel and bias.", _per_layer(lstm_blocks=3)),
]  # fmt: skip


def _check_params(fn: object) -> None:
    got = np.array(
        [as_int(call(fn, *layer), f"recurrent_params{layer}") for layer in LAYERS], dtype=np.float64
    )
    judge(got, _per_layer()(), E1_MISTAKES, tol={"rtol": 0, "atol": 0.5},
          what="recurrent_params(kind, features, units) for " + ", ".join(map(str, LAYERS)))  # fmt: skip


e1 = Exercise(
    "Exercise 1 · Counting a recurrent layer's weights",
    _check_params,
    hint=(
        "Section 3 lists Keras's three weights and their shapes: `kernel`, `recurrent_kernel`, `bias`. "
        "Count each one, then add.",
        "A layer has one block per gate or candidate: 1 for SimpleRNN, 4 for the LSTM, 3 for the GRU. A block "
        "reads the input and the previous state, and has a bias (two rows of it in Keras's GRU).",
    ),
)

# (rho, fraction): none has log(fraction)/log(rho) a whole number, so rounding shows
PROBES = [(0.9, 0.01), (0.5, 0.001), (0.99, 0.5), (0.8, 1e-6), (0.3, 0.05)]


def _per_probe(f: object) -> object:
    return lambda: np.array([f(rho, frac) for rho, frac in PROBES], dtype=np.float64)


E2_MISTAKES = [
    Mistake("rounded down", "At the distance you gave, ρ^d is still above the fraction: the first whole "
            "number of steps at or past the exact solution is needed, not the last one before it.",
            _per_probe(lambda r, f: math.floor(math.log(f) / math.log(r)))),
    Mistake("one step too many", "One step earlier ρ^d is already at or below the fraction: the answer is "
            "the *first* such d.", _per_probe(lambda r, f: math.ceil(math.log(f) / math.log(r)) + 1)),
    Mistake("the ratio upside down", "Solve ρ^d = fraction for d: take the logarithm of both sides, "
            "d·log ρ = log fraction, then divide by the right one.",
            _per_probe(lambda r, f: math.ceil(math.log(r) / math.log(f)))),
]  # fmt: skip


def _check_steps(fn: object) -> None:
    got = np.array(
        [as_int(call(fn, r, f), f"steps_to_shrink({r}, {f})") for r, f in PROBES], dtype=np.float64
    )
    judge(got, _per_probe(lambda r, f: math.ceil(math.log(f) / math.log(r)))(), E2_MISTAKES,
          tol={"rtol": 0, "atol": 0.5},
          what="steps_to_shrink(rho, fraction) for " + ", ".join(map(str, PROBES)))  # fmt: skip


e2 = Exercise(
    "Exercise 2 · How far a gradient travels",
    _check_steps,
    hint=(
        "Section 2: with a linear activation and U = ρQ, the gradient from d steps back is scaled by exactly "
        "ρ^d. Solve ρ^d = fraction for d.",
        "Logarithms turn the power into a product. The exact d is rarely whole: take the smallest whole d "
        "with ρ^d ≤ fraction (ρ^d only falls as d grows).",
    ),
)
