"""Lesson 05a's own exercises. Tasks and the mistakes they name:

* ``e1`` ``he_uniform_limit(fan_in)``: the limit ``a`` of He's rule drawn from U(−a, a): the standard deviation
  instead of the limit, no square root, no factor 2 for ReLU, the uniform's variance taken as a²/12.
* ``e2`` ``n_statistics(shape, kind, groups)``: how many (μ, σ²) pairs batch, layer, group and instance norm
  compute on an image batch: batch and layer norm swapped, one per group for the whole batch, one per
  channel of a group, instance norm once per channel for the whole batch.
"""

import numpy as np

from utils.checks import Exercise, Mistake, as_int, as_number, call, judge

FAN_INS = [9, 64, 300, 1152]


def _per_fan_in(f: object) -> object:
    return lambda: np.array([f(n) for n in FAN_INS], dtype=np.float64)


E1_MISTAKES = [
    Mistake("the standard deviation", "That is the standard deviation He's rule asks for; a uniform U(−a, a) "
            "with that a has a smaller one. Find the a whose uniform has that standard deviation.",
            _per_fan_in(lambda n: np.sqrt(2 / n))),
    Mistake("no square root", "You have a variance-sized number: the limit is in the units of the weights, "
            "so a square root is still missing.", _per_fan_in(lambda n: 6 / n)),
    Mistake("no factor 2 for ReLU", "That is LeCun's limit, Var(w) = 1/fan_in: He doubles the variance "
            "because a ReLU keeps only half of E[x²].", _per_fan_in(lambda n: np.sqrt(3 / n))),
    Mistake("variance a²/12", "U(lo, hi) has variance (hi − lo)²/12, and here hi − lo = 2a: the variance "
            "of U(−a, a) is a²/3.", _per_fan_in(lambda n: np.sqrt(24 / n))),
]  # fmt: skip


def _check_limit(fn: object) -> None:
    got = np.array([as_number(call(fn, n), f"he_uniform_limit({n})") for n in FAN_INS])
    judge(got, _per_fan_in(lambda n: np.sqrt(6 / n))(), E1_MISTAKES, tol={"rtol": 1e-6, "atol": 1e-9},
          what="he_uniform_limit(fan_in) for fan_in = " + ", ".join(map(str, FAN_INS)))  # fmt: skip


e1 = Exercise(
    "Exercise 1 · He's rule for a uniform draw",
    _check_limit,
    hint=(
        "Two steps: the variance He's rule asks for, then the variance of a uniform U(−a, a) as a function "
        "of a. Set them equal and solve for a.",
        "A uniform on an interval of width w has variance w²/12; here the width is 2a.",
    ),
)

# (shape, groups): an image batch (N, H, W, C) and the number of groups for group norm
SHAPES = [((8, 32, 32, 16), 2), ((4, 5, 5, 6), 3), ((2, 7, 3, 12), 4)]
KINDS = ("batch", "layer", "group", "instance")


def n_statistics_variant(shape, kind, groups, *, swap=False, group="right", instance="right") -> int:
    """How many (μ, σ²) pairs each norm computes on an (N, H, W, C) batch; the keywords give the mistakes."""
    n, _, _, c = shape
    if swap and kind in ("batch", "layer"):
        kind = "layer" if kind == "batch" else "batch"
    if kind == "batch":
        return c
    if kind == "layer":
        return n
    if kind == "group":
        return {"right": n * groups, "batch": groups, "size": n * (c // groups)}[group]
    return {"right": n * c, "batch": c}[instance]


def _table(**mistake: object) -> object:
    return lambda: np.array(
        [n_statistics_variant(s, k, g, **mistake) for s, g in SHAPES for k in KINDS], dtype=np.float64
    )


E2_MISTAKES = [
    Mistake("batch and layer norm swapped", "Batch norm keeps one statistic per *channel* (it averages over "
            "the examples); layer norm one per *example* (it averages over its channels).",
            _table(swap=True)),
    Mistake("one per group for the whole batch", "Group norm never mixes examples: each example has its own "
            "statistics for each of its groups.", _table(group="batch")),
    Mistake("one per channel of a group", "`groups` is the number of groups, not the number of channels in "
            "a group: C/groups channels share one μ and σ².", _table(group="size")),
    Mistake("instance norm once per channel", "Instance norm is group norm with one channel per group: it "
            "keeps statistics per example *and* channel, not per channel over the batch as batch norm does.",
            _table(instance="batch")),
]  # fmt: skip


def _check_counts(fn: object) -> None:
    got = np.array(
        [as_int(call(fn, s, k, g), f"n_statistics({s}, {k!r}, {g})") for s, g in SHAPES for k in KINDS],
        dtype=np.float64,
    )
    probes = "; ".join(f"shape {s}, groups={g}" for s, g in SHAPES)
    judge(got, _table()(), E2_MISTAKES, tol={"rtol": 0, "atol": 0.5},
          what=f"n_statistics for kinds {', '.join(KINDS)} on {probes}")  # fmt: skip


e2 = Exercise(
    "Exercise 2 · How many statistics each norm keeps",
    _check_counts,
    hint=(
        "Look at the table of section 3, column 'one statistic per': count the things a statistic is "
        "kept for, as a product of the shape's entries (and `groups`).",
        "Batch norm: one per channel. Layer norm: one per example. Group norm: one per example and group. "
        "Instance norm is group norm with a group per channel.",
    ),
)
