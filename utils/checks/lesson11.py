"""Lesson 11's own exercises, and the mistakes they name.

* ``e1`` ``prune_each_layer(kernels, sparsity)``, a threshold per kernel: one threshold for all (the
  lesson's), by value not magnitude, the largest pruned, sparsity read as the fraction kept.
* ``e2`` ``to_instances(inputs)``, named inputs to TF Serving's row format: NumPy left in (not JSON),
  the columns kept, the names lost, incomplete rows.
"""

import json

import numpy as np

from utils.checks import Exercise, Mismatch, as_array, call, judge
from utils.checks.lab09 import hint_table, mistake_table, named

TOL = {"rtol": 1e-6, "atol": 1e-9}  # NumPy arithmetic: the same under every dtype policy
HINTS = hint_table(
    """
e1 | Do for each kernel on its own what the lesson did for all of them together: find the magnitude below which the fraction `sparsity` of *its* weights lie. | For each kernel: the threshold is the `sparsity` quantile of its absolute values; keep the weights whose magnitude is at or above it, set the others to 0, keep the shape.
e2 | The row format has one entry per example; each entry names every input. How many entries, then, and what does each hold? | Build a list with one dict per example i: for every name, that input's i-th row as nested lists (`.tolist()`), so json.dumps accepts it.
"""
)


def prune_reference(
    kernels: list, sparsity: float, *, each=True, by="magnitude", prune="smallest"
) -> np.ndarray:
    """All pruned kernels, flattened and joined; the keywords give the mistakes."""
    size = lambda k: np.abs(k) if by == "magnitude" else k  # noqa: E731
    frac = {"smallest": sparsity, "fraction kept": 1 - sparsity, "largest": 1 - sparsity}[prune]
    joined, out = np.concatenate([size(k).ravel() for k in kernels]), []
    for k in kernels:
        cut = np.quantile(size(k) if each else joined, frac)
        out.append(np.where(size(k) <= cut if prune == "largest" else size(k) >= cut, k, 0.0).ravel())
    return np.concatenate(out)


E1_MISTAKES = mistake_table(
    """
one threshold for all | each=False | You used one threshold for every kernel, as the lesson did: the kernel with the smaller weights loses almost everything. Give each kernel its own threshold.
by value | by='value' | You compared the weights' values, not their magnitudes: large negative weights were pruned. Use the absolute values.
the largest pruned | prune='largest' | You set the *largest* weights to zero. Magnitude pruning removes the smallest.
sparsity read as kept | prune='fraction kept' | `sparsity` is the fraction set to zero, not the fraction kept.
""",
    prune_reference,
)
E1_KERNELS = [
    np.random.default_rng(1).normal(size=(4, 10)),
    0.05 * np.random.default_rng(2).normal(size=(10, 3)),
]


def _check_prune(prune_each_layer) -> None:
    got = call(prune_each_layer, [k.copy() for k in E1_KERNELS], 0.6)
    if not isinstance(got, list | tuple) or len(got) != len(E1_KERNELS):
        raise Mismatch("what prune_each_layer returns", expected="a list of 2 kernels", got=type(got))
    flat = np.concatenate([as_array(g, "a kernel", shape=k.shape).ravel() for g, k in zip(got, E1_KERNELS)])  # noqa: B905
    what = "prune_each_layer(kernels, 0.6), the second kernel's weights 20x smaller"
    judge(flat, prune_reference(E1_KERNELS, 0.6), E1_MISTAKES, what=what, inputs=(E1_KERNELS, 0.6), tol=TOL)


e1 = Exercise("Exercise 1 · pruning layer by layer", _check_prune, hint=HINTS["e1"])

E2_MISTAKES = mistake_table(
    """
NumPy in the JSON | | json.dumps cannot write NumPy arrays or NumPy numbers: turn each row into nested lists with `.tolist()`.
columns kept | | That is still the columnar format (one dict of whole inputs). The row format is a list with one entry per example.
names lost | | Each instance must name its inputs: with several inputs, an instance is a dict {name: value}, not a bare list.
incomplete rows | | Each instance must hold every input of that example, and only that example's values, in order.
"""
)


def _check_instances(to_instances) -> None:
    inputs = {"images": np.random.default_rng(5).random((3, 2, 2, 1)).round(3), "mask": np.tri(3, 2)[::-1]}
    got, what = call(to_instances, {k: v.copy() for k, v in inputs.items()}), "to_instances(inputs)"
    try:
        json.dumps(got)
    except TypeError as err:
        raise named(E2_MISTAKES, "NumPy in the JSON", what, str(err)) from None
    if isinstance(got, dict):
        raise named(E2_MISTAKES, "columns kept", what, f"a dict with keys {list(got)}")
    if not isinstance(got, list) or not all(isinstance(row, dict) for row in got):
        raise named(E2_MISTAKES, "names lost", what, repr(got)[:100])
    right = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(3)]
    if got != right:
        raise named(E2_MISTAKES, "incomplete rows", what, repr(got)[:100], repr(right)[:100])


e2 = Exercise("Exercise 2 · the row format, with two named inputs", _check_instances, hint=HINTS["e2"])
