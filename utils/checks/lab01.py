"""Checks for Lab 01 (gradient descent, by hand): gradients the lesson did not derive, and momentum.

* ``q1`` ``gradients(X, y, w, b)``: the mean squared error's gradient for a linear regression
  (mistakes: the sign, no 1/n, no 2, 1/n twice, d for n, ŷ without b, db times ŷ or x, shapes);
* ``q2`` ``huber_gradients(X, y, w, b, delta)``: the mean Huber loss's gradient (mistakes: the MSE's,
  no clipping, the absolute error's, clipped at 1, branches swapped, the loss for its slope, no 1/n);
* ``q3`` ``numerical_gradient(f, theta, eps)``: central differences for any shape of ``theta``
  (mistakes: one-sided differences, 1/ε, all coordinates nudged at once, ``theta`` left changed);
* ``q4`` ``train_momentum(X, y, lr, beta, steps)``: heavy-ball gradient descent (mistakes: β ignored,
  the (1 − β) average, the step taken with the old velocity, a history missing an end).

Each gradient is judged as the vector (dw, db): what each mistake gives on the same probe is computed
here, and the nearest one names the hint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks import (
    Exercise,
    Feedback,
    Mismatch,
    Mistake,
    answer_tolerance,
    as_array,
    as_number,
    call,
    judge,
)

__all__ = ["compare_gradients", "make_probe", "q1", "q2", "q3", "q4", "reference_momentum", "show_momentum"]


def make_probe(n: int = 8, d: int = 3, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Return ``(X, y, w, b)``: n = 8 and d = 3 make every wrong factor (1/n, 2, n/d, ...) differ."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).round(2)
    y = (X @ rng.normal(size=d) + 1.5 + rng.normal(scale=1.5, size=n)).round(2)
    return X, y, rng.normal(size=d).round(2), 0.25


def _g(X: np.ndarray, e: np.ndarray, bias: Any = None) -> np.ndarray:
    """(dw, db) as one vector, from the per-example slope ``e`` = ∂L/∂ŷᵢ."""
    return np.r_[X.T @ e, e.sum() if bias is None else bias]


def _r(X, y, w, b):
    return X @ w + b - y


def _unpack(result: Any, names: tuple[str, ...]) -> tuple:
    if isinstance(result, tuple | list) and len(result) == len(names):
        return tuple(result)
    raise Mismatch("what your function returns", expected=f"{len(names)} values: {', '.join(names)}",
                   got=type(result).__name__, hint=RETURNS.hint)  # fmt: skip


def _flat(dw: Any, db: Any, d: int, shapes: list[Mistake]) -> np.ndarray:
    """dw (d,) and db (one number) as one vector; a column or per-example dw names its mistake."""
    w_shape = as_array(dw, "dw").shape
    hint = {(d, 1): shapes[0], (1, d): shapes[0], (): shapes[1], (1,): shapes[1]}.get(w_shape, shapes[2])
    dw = as_array(dw, "dw", shape=(d,), hint=hint.hint)
    return np.r_[dw, as_number(db, "db", hint=shapes[3].hint)]


RETURNS = Mistake("wrong return", "Return the values the task names, in its order, as a tuple.")
SHAPES = [
    Mistake("dw a column", "dw has the shape of w, flat (d,): keep the residuals flat, one per example."),
    Mistake("dw one number", "dw needs one number per weight: each example's slope is spread over its features."),
    Mistake("dw summed over features", "dw is a sum over the examples (axis 0), one entry per feature."),
    Mistake("db not a number", "b is one number, so db is one number: nothing multiplies the bias's input 1."),
]  # fmt: skip

# ---------------------------------------------------------------------------------------------
# q1: the MSE gradient
# ---------------------------------------------------------------------------------------------

Q1_MISTAKES = [
    Mistake("the sign flipped", "Your gradient points uphill. Differentiate (ŷ − y)²: prediction minus label.",
            lambda X, y, w, b: _g(X, -2 * _r(X, y, w, b) / len(y))),
    Mistake("no 1/n", "n times too big: the loss is a mean, so each example's share carries a 1/n.",
            lambda X, y, w, b: _g(X, 2 * _r(X, y, w, b))),
    Mistake("no factor 2", "Half the right size: the square's derivative brings down a factor 2.",
            lambda X, y, w, b: _g(X, _r(X, y, w, b) / len(y))),
    Mistake("neither 2 nor 1/n", "Off by n/2: both the 2 of the square and the 1/n of the mean are missing.",
            lambda X, y, w, b: _g(X, _r(X, y, w, b))),
    Mistake("1/n twice", "n times too small: a mean and a division by n each divide by n; keep one.",
            lambda X, y, w, b: _g(X, 2 * _r(X, y, w, b) / len(y) ** 2)),
    Mistake("divided by d", "You divided by the number of features; the mean is over the examples.",
            lambda X, y, w, b: _g(X, 2 * _r(X, y, w, b) / X.shape[1])),
    Mistake("ŷ without b", "The prediction inside your gradient forgets the bias.",
            lambda X, y, w, b: _g(X, 2 * (X @ w - y) / len(y))),
    Mistake("db times ŷ", "db is scaled by the prediction. ∂ŷᵢ/∂b is 1, whatever ŷᵢ is.",
            lambda X, y, w, b: _g(X, 2 * _r(X, y, w, b) / len(y), np.sum(2 * _r(X, y, w, b) / len(y) * (X @ w + b)))),
    Mistake("db times x", "db went through the features like dw did. The bias's input is the constant 1.",
            lambda X, y, w, b: _g(X, e := 2 * _r(X, y, w, b) / len(y), (X.T @ e).sum())),
]  # fmt: skip


def _check_gradients(fn: Callable) -> None:
    X, y, w, b = make_probe()
    dw, db = _unpack(call(fn, X.copy(), y.copy(), w.copy(), b), ("dw", "db"))
    got = _flat(dw, db, X.shape[1], SHAPES)
    ref = _g(X, 2 * _r(X, y, w, b) / len(y))
    judge(got, ref, Q1_MISTAKES, what="(dw, db) on the probe", inputs=(X, y, w, b), tol=answer_tolerance(dw))


q1 = Exercise(
    "Q1 · the gradient of the mean squared error",
    _check_gradients,
    hint=(
        "Work from the loss to the parameters: first ∂L/∂ŷᵢ for one example, then how ŷᵢ moves with w and with b.",
        "∂L/∂ŷᵢ = (2/n)(ŷᵢ − yᵢ). Then dw adds up that slope times row i of X over the examples (a matrix "
        "product with Xᵀ), and db adds up the slopes alone.",
    ),
)

# ---------------------------------------------------------------------------------------------
# q2: the Huber loss's gradient
# ---------------------------------------------------------------------------------------------


def _huber_slope(r: np.ndarray, delta: float) -> np.ndarray:
    return np.clip(r, -delta, delta)


Q2_MISTAKES = [
    Mistake("the MSE's gradient", "That is the mean squared error's gradient: inside ±δ the Huber loss is ½r², so no 2.",
            lambda X, y, w, b, dl: _g(X, 2 * _r(X, y, w, b) / len(y))),
    Mistake("no clipping", "Right inside ±δ, wrong outside: there the loss grows linearly, so its slope stays ±δ.",
            lambda X, y, w, b, dl: _g(X, _r(X, y, w, b) / len(y))),
    Mistake("the absolute error's", "Every example pushes with the same strength: that is the absolute error's "
            "slope. Near zero the Huber loss is quadratic.", lambda X, y, w, b, dl: _g(X, np.sign(_r(X, y, w, b)) / len(y))),
    Mistake("clipped at 1", "The slope is clipped at ±1 instead of ±δ: use the argument delta.",
            lambda X, y, w, b, dl: _g(X, _huber_slope(_r(X, y, w, b), 1.0) / len(y))),
    Mistake("branches swapped", "The two pieces are swapped: the quadratic piece is for the small residuals.",
            lambda X, y, w, b, dl: _g(X, np.where(abs(r := _r(X, y, w, b)) <= dl, dl * np.sign(r), r) / len(y))),
    Mistake("the loss, not its slope", "You used each example's loss where its derivative belongs.",
            lambda X, y, w, b, dl: _g(X, np.where(abs(r := _r(X, y, w, b)) <= dl, r**2 / 2, dl * (abs(r) - dl / 2)) / len(y))),
    Mistake("no 1/n", "n times too big: the loss is a mean over the examples.",
            lambda X, y, w, b, dl: _g(X, _huber_slope(_r(X, y, w, b), dl))),
    Mistake("the sign flipped", "Your gradient points uphill: the residual is prediction minus label.",
            lambda X, y, w, b, dl: _g(X, -_huber_slope(_r(X, y, w, b), dl) / len(y))),
]  # fmt: skip


def _check_huber(fn: Callable) -> None:
    X, y, w, b = make_probe()
    for delta in (1.5, 3.0):  # residuals on both sides of both thresholds
        dw, db = _unpack(call(fn, X.copy(), y.copy(), w.copy(), b, delta), ("dw", "db"))
        ref = _g(X, _huber_slope(_r(X, y, w, b), delta) / len(y))
        judge(_flat(dw, db, X.shape[1], SHAPES), ref, Q2_MISTAKES, what=f"(dw, db) for delta = {delta}",
              inputs=(X, y, w, b, delta), tol=answer_tolerance(dw))  # fmt: skip


q2 = Exercise(
    "Q2 · the gradient of the Huber loss",
    _check_huber,
    hint=(
        "Only ∂L/∂ŷᵢ changes from Q1: find the derivative of each piece of the Huber loss, and which piece "
        "each residual falls in.",
        "Inside ±δ the derivative of ½r² is r; outside, δ(|r| − δ/2) has slope δ·sign(r). Together that is the "
        "residual clipped to [−δ, δ], divided by n; the rest is Q1.",
    ),
)

# ---------------------------------------------------------------------------------------------
# q3: a finite-difference gradient
# ---------------------------------------------------------------------------------------------


def _cubic(theta: np.ndarray) -> float:
    """The probe function: not quadratic, so one-sided differences show their error."""
    t = np.asarray(theta, dtype=np.float64)
    return float(np.sum(t**3) + t.flat[0] * t.flat[-1])


def _differences(f: Callable, theta: np.ndarray, eps: float, kind: str) -> np.ndarray:
    out = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        step = np.zeros_like(theta)
        step[i] = eps
        up, down = f(theta + step), f(theta - step)
        out[i] = {"central": (up - down) / (2 * eps), "forward": (up - f(theta)) / eps,
                  "backward": (f(theta) - down) / eps, "no 2": (up - down) / eps}[kind]  # fmt: skip
    return out


Q3_MISTAKES = [
    Mistake("forward difference", "A one-sided difference is off by about ½f″ε; take a step both ways.",
            lambda t, e: _differences(_cubic, t, e, "forward")),
    Mistake("backward difference", "A one-sided difference is off by about ½f″ε; take a step both ways.",
            lambda t, e: _differences(_cubic, t, e, "backward")),
    Mistake("divided by ε", "Twice the slope: the two points are 2ε apart.",
            lambda t, e: _differences(_cubic, t, e, "no 2")),
    Mistake("all nudged at once", "Every entry is the same: nudge one coordinate at a time, the others held.",
            lambda t, e: np.full(t.shape, (_cubic(t + e) - _cubic(t - e)) / (2 * e))),
]  # fmt: skip
THETA_CHANGED = Mistake("theta left changed", "Your function changed the theta it was given: nudge a copy, "
                        "or put each entry back before the next.")  # fmt: skip


def _check_numerical(fn: Callable) -> None:
    theta, eps = np.array([[1.0, -2.0, 0.5], [0.3, 1.5, -1.0]]), 0.1  # a matrix: any shape must work
    given = theta.copy()
    got = as_array(call(fn, _cubic, given, eps), "the numerical gradient", shape=theta.shape)
    if not np.array_equal(given, theta):
        raise Mismatch("theta after your call", expected="unchanged", got="changed", hint=THETA_CHANGED.hint)
    ref = _differences(_cubic, theta, eps, "central")
    judge(got, ref, Q3_MISTAKES, what="the gradient of the probe function (ε = 0.1)", inputs=(theta, eps),
          tol=answer_tolerance(got, rtol=1e-6, atol=1e-6))  # fmt: skip


q3 = Exercise(
    "Q3 · a finite-difference gradient",
    _check_numerical,
    hint=(
        "A derivative is a slope: move one coordinate of theta a little up and a little down, keep the "
        "others where they are, and compare f at the two points.",
        "For each index i (np.ndindex walks every index of any shape): (f(θ + εeᵢ) − f(θ − εeᵢ)) / (2ε), where "
        "eᵢ is zero except 1 at i. Work on copies of theta.",
    ),
)

# ---------------------------------------------------------------------------------------------
# q4: gradient descent with momentum
# ---------------------------------------------------------------------------------------------


def reference_momentum(X, y, lr, beta, steps, *, form="right") -> tuple[np.ndarray, float, list[float]]:
    """Heavy-ball GD from zeros (v ← βv + ∇L, θ ← θ − ηv); ``form`` gives a known mistake instead."""
    theta, v = np.zeros(X.shape[1] + 1), np.zeros(X.shape[1] + 1)
    A = np.c_[X, np.ones(len(y))]
    losses = [float(np.mean((A @ theta - y) ** 2))]
    for _ in range(steps):
        g = 2 / len(y) * A.T @ (A @ theta - y)
        old = v
        v = {
            "right": beta * v + g,
            "no beta": g,
            "average": beta * v + (1 - beta) * g,
            "old v": beta * v + g,
        }[form]
        theta = theta - lr * (old if form == "old v" else v)
        losses.append(float(np.mean((A @ theta - y) ** 2)))
    return theta[:-1], float(theta[-1]), losses


Q4_MISTAKES = [
    Mistake("β ignored", "This is plain gradient descent: the velocity must remember β times its last value.",
            lambda X, y, lr, beta, s: reference_momentum(X, y, lr, beta, s, form="no beta")[2]),
    Mistake("the (1 − β) average", "You averaged the gradients with weights β and 1 − β. The rule here adds the "
            "whole gradient to β times the velocity.", lambda X, y, lr, beta, s: reference_momentum(X, y, lr, beta, s, form="average")[2]),
    Mistake("the old velocity", "Each step used the velocity from before this step's gradient: update the velocity first.",
            lambda X, y, lr, beta, s: reference_momentum(X, y, lr, beta, s, form="old v")[2]),
]  # fmt: skip
HISTORY = Mistake(
    "history length", "Record the loss once before the first update and once after each update."
)


def _check_momentum(fn: Callable) -> None:
    X, y, _, _ = make_probe()
    args = (X, y, 0.05, 0.8, 15)
    w, b, losses = _unpack(call(fn, X.copy(), y.copy(), *args[2:]), ("w", "b", "losses"))
    ref_w, ref_b, ref = reference_momentum(*args)
    got = as_array(losses, "the loss history", shape=(len(ref),), hint=HISTORY.hint)
    tol = answer_tolerance(got, rtol=1e-5, atol=1e-8)
    judge(got, ref, Q4_MISTAKES, what="the loss history (lr 0.05, β 0.8, 15 steps)", inputs=args, tol=tol)
    judge(np.r_[as_array(w, "w", shape=ref_w.shape), as_number(b, "b")], np.r_[ref_w, ref_b],
          what="the final (w, b)", tol=tol, hint=RETURNS.hint)  # fmt: skip


q4 = Exercise(
    "Q4 · gradient descent with momentum",
    _check_momentum,
    hint=(
        "Keep a velocity for w and one for b, starting at zero, next to the parameters. Each step: your "
        "gradients, then the velocities, then the parameters; record the loss as in the lesson's loop.",
        "Each step: v ← β·v + (the gradient now), then θ ← θ − lr·v, for w and b alike. The history starts "
        "with the loss at w = 0, b = 0, so it has steps + 1 values.",
    ),
)


def show_momentum(
    fn: Callable, X: np.ndarray, y: np.ndarray, *, lr: float, betas=(0.0, 0.9), steps=60
) -> Any:
    """Loss curves of the learner's ``train_momentum`` for several β (β = 0 is plain gradient descent)."""
    if not q4.evaluate(fn).passed:
        return Feedback(
            "not_done", "Momentum curves", "finish Q4 first (its check must pass), then run this cell."
        )
    from utils import viz

    curves = {f"β = {beta:g}": [float(v) for v in call(fn, X, y, lr, beta, steps)[2]] for beta in betas}
    return viz.loss_curves(curves, title=f"Momentum on the lab's data, lr = {lr:g}", xlabel="step",
                           ylabel="MSE (log scale)", log_y=True)  # fmt: skip


def compare_gradients(numerical: Callable, gradients: Callable, loss_of: Callable, theta, X, y) -> Feedback:
    """Compare the learner's Q1 gradient at ``theta`` = (w, b) with their Q3 finite differences."""
    title = "Your gradient against finite differences"
    if not (q1.evaluate(gradients).passed and q3.evaluate(numerical).passed):
        return Feedback(
            "not_done", title, "finish Q1 and Q3 first (their checks must pass), then run this cell."
        )
    by_hand = np.r_[call(gradients, X, y, theta[:-1], theta[-1])]
    measured = call(numerical, loss_of, np.asarray(theta, dtype=float))
    error = np.linalg.norm(by_hand - measured) / max(np.linalg.norm(by_hand), 1e-12)
    return Feedback("correct", title, f"relative error {error:.1e} (by hand {np.round(by_hand, 4)})")
