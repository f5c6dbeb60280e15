"""Lesson 09's own exercises. Tasks and the mistakes they name:

* ``e1`` ``loss_scale_trace(initial, finite, growth)``: the loss scale a ``LossScaleOptimizer`` uses at each
  step: the run of finite steps not reset by an overflow, growing a step late or early, never halving.
* ``e2`` ``replica_losses(shards)``: what each replica returns so that their sum is the mean over the global
  batch: each replica's own mean, the mean of the means (wrong for unequal shards), a sum not divided.
"""

import numpy as np

from utils.checks import Exercise, as_array, call, judge
from utils.checks.lab09 import hint_table, mistake_table

EXACT = {"rtol": 1e-6, "atol": 1e-9}  # plain arithmetic: the same under every dtype policy
HINTS = hint_table(
    """
e1 | Keep two things from step to step: the scale, and how many finite steps in a row have passed since it last changed. | An overflow halves the scale and sets the count to 0; a finite step adds 1 to the count, and when the count reaches `growth`, the scale doubles and the count goes back to 0. Record the scale *before* updating it.
e2 | The strategy adds the replicas' losses (and their gradients). What must each divide by so that the sum is the mean over every example of the global batch? | Divide each replica's sum by the number of examples in all the shards together, not by its own shard's size.
"""
)


def scale_reference(initial: float, finite: list, growth: int, *, reset=True, late=0, halve=True) -> list:
    """The scale used at each step; the keywords give the mistakes."""
    scale, run, out = float(initial), 0, []
    for ok in finite:
        out.append(scale)
        if not ok:
            scale, run = (scale / 2 if halve else scale), (0 if reset else run)
            continue
        run += 1
        if run == growth + late:
            scale, run = scale * 2, 0
    return out


E1_MISTAKES = mistake_table(
    """
count kept after an overflow | reset=False | After an overflow the count of finite steps must start again from 0: growth needs `growth` finite steps *in a row*.
grows a step late | late=1 | Your scale doubles one step late: it grows right after the `growth`-th finite step in a row.
grows a step early | late=-1 | Your scale doubles one step early: it grows only after `growth` finite steps in a row.
never halves | halve=False | An overflow (a step whose gradients are not finite) must halve the scale, or the next step overflows too.
""",
    scale_reference,
)
E1_CASES = [(2.0**15, [True] * 5 + [False, True, True, False, False] + [True] * 7, 3), (8.0, [True] * 9, 2)]


def _check_trace(trace) -> None:
    for initial, finite, growth in E1_CASES:
        got = as_array(call(trace, initial, list(finite), growth), "the scales", shape=(len(finite),))
        what, case = (
            f"loss_scale_trace({initial:g}, {[int(f) for f in finite]}, {growth})",
            (initial, finite, growth),
        )
        judge(got, scale_reference(*case), E1_MISTAKES, what=what, inputs=case, tol=EXACT)


e1 = Exercise("Exercise 1 · the loss scale, step by step", _check_trace, hint=HINTS["e1"])


def replica_reference(shards: list, *, divide="global") -> np.ndarray:
    """Each replica's loss; ``divide`` gives the mistakes."""
    total, r = sum(len(s) for s in shards), len(shards)
    sums, means = np.array([np.sum(s) for s in shards]), np.array([np.mean(s) for s in shards])
    return {"global": sums / total, "own": means, "means": means / r, "sum": sums}[divide]


E2_MISTAKES = mistake_table(
    """
each replica's own mean | divide='own' | Each replica averaged over its own shard; the strategy then adds the replicas' losses, which counts the mean several times over.
mean of the means | divide='means' | You divided each replica's mean by the number of replicas: that weighs every shard alike, but the last global batch splits unevenly, so a small shard's examples count too much.
summed, not divided | divide='sum' | You added the per-example losses without dividing them by the number of examples in the global batch.
""",
    replica_reference,
)
E2_SHARDS = [[0.5, 1.0, 2.0, 0.1, 0.3], [0.7, 1.5, 0.9, 0.2, 1.1], [2.5, 0.4]]  # a last, partial global batch


def _check_replicas(replica_losses) -> None:
    shards = [list(s) for s in E2_SHARDS]
    got = as_array(call(replica_losses, shards), "the replicas' losses", shape=(len(shards),))
    what = f"replica_losses({E2_SHARDS})"
    judge(got, replica_reference(E2_SHARDS), E2_MISTAKES, what=what, inputs=(E2_SHARDS,), tol=EXACT)


e2 = Exercise("Exercise 2 · a partial global batch on three replicas", _check_replicas, hint=HINTS["e2"])
