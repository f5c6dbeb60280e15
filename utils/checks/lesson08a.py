"""Lesson 08a's own exercises. Tasks and the mistakes they name:

* ``e1`` ``first_step_below(betas, fraction)``: the first step t (counted from 1, ``betas[i]`` being β at step
  i + 1) at which ᾱ_t = ∏_{s ≤ t} (1 − β_s) falls below ``fraction``: one step early (the array index, or the
  last step above), √ᾱ_t compared instead of ᾱ_t.
* ``e2`` ``active_units(mu, threshold)``: how many latent dimensions of a VAE are in use, by Burda et al.'s
  (2016) measure: the variance over the examples of the encoder's mean above ``threshold``. Mistakes: the
  variance taken over the wrong axis, the standard deviation compared, the mean compared.
"""

import functools

import numpy as np

from utils.checks import Exercise, Mistake, as_int, call, judge

# ------------------------------------------------------------------------------------------------
# e1: the first step at which ᾱ_t falls below a fraction
# ------------------------------------------------------------------------------------------------


def _linear(T: int, start: float, end: float) -> np.ndarray:
    return np.linspace(start, end, T)


def _cosine(T: int, s: float = 0.008) -> np.ndarray:
    f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
    return np.minimum(1 - f[1:] / f[:-1], 0.999)


# (a description, the betas, the fraction): DDPM's schedule, a short one with large steps, a cosine one
E1_PROBES = [
    ("DDPM's linear schedule, T = 1000", _linear(1000, 1e-4, 0.02), 0.5),
    ("DDPM's linear schedule, T = 1000", _linear(1000, 1e-4, 0.02), 0.01),
    ("DDPM's linear schedule, T = 1000", _linear(1000, 1e-4, 0.02), 0.99),
    ("a linear schedule, T = 50, β from 0.001 to 0.2", _linear(50, 1e-3, 0.2), 0.3),
    ("a cosine schedule, T = 200", _cosine(200), 0.05),
]


def first_step_below_variant(betas, fraction: float, *, shift: int = 0, root: bool = False) -> int:
    """The first step t in 1..T with ᾱ_t < fraction (T + 1 if none); ``shift`` and ``root`` make the mistakes."""
    abar = np.cumprod(1.0 - np.asarray(betas, dtype=np.float64))
    value = np.sqrt(abar) if root else abar
    below = np.flatnonzero(value < fraction)
    return (int(below[0]) + 1 if below.size else len(abar) + 1) + shift


def _per_probe(**mistake: object) -> object:
    return lambda: np.array(
        [first_step_below_variant(b, f, **mistake) for _, b, f in E1_PROBES], dtype=np.float64
    )


# fmt: off
E1_MISTAKES = [
    Mistake("one step early", "Steps count from 1 (betas[0] is β_1, so array index i is step i + 1), and the "
            "answer is the first step already below the fraction, not the last one still above it.",
            _per_probe(shift=-1)),
    Mistake("√ᾱ_t compared instead of ᾱ_t", "√ᾱ_t is the coefficient of x_0, a scale. The share of the "
            "signal's variance that is left is ᾱ_t itself: compare that with the fraction.", _per_probe(root=True)),
]
# fmt: on


def _check_first_step(fn: object) -> None:
    got = []
    for name, betas, fraction in E1_PROBES:
        what = f"first_step_below(betas of {name}, fraction={fraction})"
        got.append(
            as_int(call(fn, betas.copy(), fraction), what, hint="One whole number: a step t between 1 and T.")
        )
    judge(
        np.array(got, dtype=np.float64),
        _per_probe()(),
        E1_MISTAKES,
        what="first_step_below(betas, fraction) for " + "; ".join(f"{n}, {f}" for n, _, f in E1_PROBES),
        tol={"rtol": 0, "atol": 0.5},
    )


e1 = Exercise(
    "Exercise 1 · When is the signal gone?",
    _check_first_step,
    hint=(
        "Build ᾱ from the β's with a cumulative product of (1 − β), then look for the first entry that is "
        "below the fraction.",
        "np.flatnonzero (or np.argmax on a boolean array) gives the array index of the first True. The array "
        "index i holds step i + 1.",
    ),
)

# ------------------------------------------------------------------------------------------------
# e2: active units of a VAE
# ------------------------------------------------------------------------------------------------


def active_units_variant(mu, threshold: float, *, axis: int = 0, stat: str = "var") -> int:
    """The number of latent dimensions (columns of mu, (N, D)) whose encoder mean varies over the examples
    by more than ``threshold``: Var_n(mu[n, d]) > threshold. ``axis`` and ``stat`` make the mistakes."""
    mu = np.asarray(mu, dtype=np.float64)
    values = {"var": np.var, "std": np.std, "mean": lambda a, axis: np.abs(np.mean(a, axis=axis))}[stat](
        mu, axis=axis
    )
    return int(np.sum(values > threshold))


@functools.cache
def _e2_probes() -> tuple[tuple[np.ndarray, float], ...]:
    """Encoder means (N, D) with some dimensions in use and some collapsed (near-constant, some not at 0)."""
    rng = np.random.default_rng(8)
    probes = []
    for n, scales, offsets, threshold in (
        (40, [1.0, 0.6, 0.05, 0.02, 0.003], [0.0, 0.2, 0.0, 0.8, -0.5], 0.01),
        (25, [0.9, 0.3, 0.2, 0.15, 0.01, 0.002, 0.001], [0.1, 0.0, 0.0, 0.0, 0.3, 0.0, 0.4], 0.01),
        (60, [1.2, 0.04, 0.5, 0.0005], [0.0, 1.0, -0.2, 0.0], 0.05),
    ):
        mu = rng.normal(size=(n, len(scales))) * np.array(scales) + np.array(offsets)
        probes.append((mu.astype("float32"), threshold))
    return tuple(probes)


def _per_e2_probe(**mistake: object) -> object:
    return lambda: np.array(
        [active_units_variant(m, t, **mistake) for m, t in _e2_probes()], dtype=np.float64
    )


# fmt: off
E2_MISTAKES = [
    Mistake("the variance over the latent dimensions", "mu has one row per example and one column per latent "
            "dimension. A dimension is in use if its value changes from example to example: take the variance "
            "down each column (over the examples), then count the columns.", _per_e2_probe(axis=1)),
    Mistake("the standard deviation compared", "The measure compares the variance with the threshold, not the "
            "standard deviation (0.01 as a variance is 0.1 as a standard deviation).", _per_e2_probe(stat="std")),
    Mistake("the mean compared", "A collapsed dimension can sit at any constant value: what shows it is unused is "
            "that it does not change with the input, whatever its mean.", _per_e2_probe(stat="mean")),
]
# fmt: on


def _check_active_units(fn: object) -> None:
    got = []
    for mu, threshold in _e2_probes():
        what = f"active_units(mu of shape {mu.shape}, threshold={threshold})"
        got.append(
            as_int(call(fn, mu.copy(), threshold), what, hint="One whole number: how many dimensions.")
        )
    judge(
        np.array(got, dtype=np.float64),
        _per_e2_probe()(),
        E2_MISTAKES,
        what="active_units(mu, threshold) on three batches of encoder means",
        tol={"rtol": 0, "atol": 0.5},
    )


e2 = Exercise(
    "Exercise 2 · How many latent dimensions does the VAE use?",
    _check_active_units,
    hint=(
        "A dimension the VAE does not use has a posterior equal to the prior for every input, so its mean μ_d(x) "
        "is the same whatever x is. Measure how much each dimension's mean changes across the examples.",
        "Take the variance of each column of mu (over the rows, the examples), and count the columns whose "
        "variance is above the threshold.",
    ),
)
