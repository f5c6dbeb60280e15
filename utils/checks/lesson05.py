"""Lesson 05's own exercises. Tasks and the mistakes they name:

* ``e1`` ``momentum_for(steps, left)``: the batch-norm momentum that keeps only ``left`` of the start after
  ``steps`` updates: the time-constant rule 1 − 1/steps, the complement 1 − left^(1/steps), left^steps.
* ``e2`` ``option_a(x, filters, stride)``: the paper's parameter-free shortcut in NumPy: subsampled from
  the second pixel, averaged instead of subsampled, zero channels put first, or split on both sides.
"""

import numpy as np

from utils.checks import Exercise, Mistake, as_array, call, judge

MOMENTUM_PROBES = [(100, 0.01), (50, 0.05), (300, 0.001), (10, 0.5)]


def _per_probe(f: object) -> object:
    return lambda: np.array([f(k, left) for k, left in MOMENTUM_PROBES])


E1_MISTAKES = [
    Mistake("1 − 1/steps", "1/(1 − p) is the time constant of the average, not the number of steps after "
            "which a given fraction is left: that fraction is p to the power of the steps.",
            _per_probe(lambda k, left: 1 - 1 / k)),
    Mistake("1 − left^(1/steps)", "That is one minus the answer: p is the weight the *old* value keeps at "
            "each step, close to 1.", _per_probe(lambda k, left: 1 - left ** (1 / k))),
    Mistake("left^steps", "You raised to the power instead of taking the root: p^steps = left, so p is "
            "the steps-th root of left.", _per_probe(lambda k, left: left**k)),
]  # fmt: skip


def _check_momentum(fn: object) -> None:
    got = as_array([call(fn, k, left) for k, left in MOMENTUM_PROBES], "the momenta")
    judge(got, _per_probe(lambda k, left: left ** (1 / k))(), E1_MISTAKES, tol={"rtol": 1e-6, "atol": 1e-9},
          what="momentum_for(steps, left) for " + ", ".join(map(str, MOMENTUM_PROBES)))  # fmt: skip


e1 = Exercise(
    "Exercise 1 · the momentum for a run of a given length",
    _check_momentum,
    hint=(
        "Section 4 unrolled the update: after k steps the starting value keeps a weight of p^k.",
        "Set p^steps equal to `left` and solve for p (a root, or a power with a fractional exponent).",
    ),
)

X = np.random.default_rng(5).normal(size=(2, 6, 6, 3))  # an odd number of extra channels below: 3 → 8


def option_a_variants(x: np.ndarray, filters: int, stride: int, *, start=0, mean=False, where="after"):
    """The option-A shortcut; the keywords give the mistakes."""
    n, h, w, c = x.shape
    if mean:
        sub = x[:, : h // stride * stride, : w // stride * stride].reshape(
            n, h // stride, stride, -1, stride, c
        )
        sub = sub.mean(axis=(2, 4))
    else:
        sub = x[:, start::stride, start::stride]
    extra = filters - c
    before = {"after": 0, "before": extra, "both": extra // 2}[where]
    return np.pad(sub, ((0, 0), (0, 0), (0, 0), (before, extra - before)))


E2_MISTAKES = [
    Mistake("subsampled from the second pixel", "Keep pixels 0, s, 2s, …: the same ones a strided 1×1 "
            "convolution reads, starting at the first.", lambda: option_a_variants(X, 8, 2, start=1)),
    Mistake("averaged", "Option A subsamples (keeps one pixel in s) rather than averaging s×s blocks: it "
            "has to match what the strided branch sees.", lambda: option_a_variants(X, 8, 2, mean=True)),
    Mistake("zeros first", "The input's channels keep their places; the zero channels come after them.",
            lambda: option_a_variants(X, 8, 2, where="before")),
    Mistake("zeros on both sides", "Some implementations split the zeros; this course's (utils.models) "
            "puts them all after the input's channels.", lambda: option_a_variants(X, 8, 2, where="both")),
]  # fmt: skip


def _check_option_a(fn: object) -> None:
    got = as_array(call(fn, X.copy(), 8, 2), "option_a(x, 8, 2)", shape=(2, 3, 3, 8))
    judge(got, option_a_variants(X, 8, 2), E2_MISTAKES, what="option_a(x, filters=8, stride=2), x of shape "
          "(2, 6, 6, 3)", tol={"rtol": 1e-6, "atol": 1e-9})  # fmt: skip


e2 = Exercise(
    "Exercise 2 · the zero-padding shortcut (option A)",
    _check_option_a,
    hint=(
        "Two steps, on a NumPy batch (N, H, W, C): make the size match the branch's, then the channels.",
        "Keep every s-th pixel along both image axes, starting at the first; then pad the channel axis "
        "with filters − C zeros, all after the existing channels (np.pad).",
    ),
)
