"""Checks for Lab 01 (gradient descent): linear regression trained by hand-written gradient descent.

The model is ``ŷ = X w + b`` on a batch ``X`` of shape (n, d), with the mean squared error
``L = mean((ŷ - y)²)``. The four exercises:

* ``q1``: ``predict(X, w, b)`` returns ŷ, shape (n,);
* ``q2``: ``gradients(X, y, w, b)`` returns ``(dw, db)``: ``2/n Xᵀ(ŷ - y)`` and ``2/n Σ(ŷ - y)``;
* ``q3``: ``gd_step(w, b, dw, db, lr)`` returns the updated ``(w, b)``;
* ``q4``: ``train(X, y, lr, steps)`` starts at w = 0, b = 0, makes ``steps`` updates and returns
  ``(w, b, losses)`` with ``losses[k]`` the loss after k updates (so ``steps + 1`` values).

Each checker runs the learner's function on a small probe chosen so that the usual mistakes
(forgotten 1/n or 2, a sign error, a bias gradient multiplied by x or by ŷ, a column instead of a
flat vector, the wrong axis summed, + instead of −, an ignored learning rate, a loss history that
starts or ends in the wrong place) give different numbers, and names the mistake it recognises.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks import Exercise, Feedback, LearnerError, Mismatch, NotDone, call, expect, expect_close

__all__ = ["make_probe", "q1", "q2", "q3", "q4", "reference_train", "show_training"]

# The probe: 8 examples, 3 features. n = 8 and d = 3 make every "wrong factor" below a different
# number (1/n, 2, n/2, n/d, ...), and the shapes (n,), (d,), (n, d) all differ.
N_PROBE, D_PROBE = 8, 3


def make_probe(n: int = N_PROBE, d: int = D_PROBE, seed: int = 7) -> tuple[np.ndarray, ...]:
    """Return a probe ``(X, y, w, b)``: X (n, d), y (n,), w (d,), b a float, rounded to 2 decimals."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).round(2)
    w_true = rng.normal(size=d).round(2)
    y = (X @ w_true + 1.5 + rng.normal(scale=0.3, size=n)).round(2)
    w = rng.normal(size=d).round(2)
    return X, y, w, 0.25


def _run(fn: Any, *args: Any) -> Any:
    """Call the learner's ``fn`` on copies of ``args``, with NumPy's overflow warnings silenced."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(fn, *copies)


def _array(value: Any, what: str) -> np.ndarray:
    """Return ``value`` as a float64 array, or raise Mismatch saying it is not numbers."""
    try:
        if isinstance(value, list | tuple):
            value = [v.numpy() if hasattr(v, "numpy") else v for v in value]
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mismatch(
            what, expected="numbers (a NumPy array or a float)", got=type(value).__name__
        ) from None


def _pair(result: Any, what: str, names: str) -> tuple[Any, Any]:
    """Unpack a returned pair, or raise Mismatch explaining what to return."""
    if isinstance(result, tuple | list) and len(result) == 2:
        return result[0], result[1]
    got = (
        f"{type(result).__name__} of length {len(result)}"
        if isinstance(result, tuple | list)
        else type(result).__name__
    )
    raise Mismatch(
        what, expected=f"a pair: return {names}", got=got, hint=f"End your function with `return {names}`."
    )


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(np.shape(a.numpy() if hasattr(a, "numpy") else a))


def _fmt(a: Any) -> str:
    arr = np.asarray(a, dtype=np.float64)
    with np.printoptions(precision=4, suppress=True):
        return str(arr.round(4)) if arr.ndim else f"{float(arr):.4f}"


def _factor(got: np.ndarray, expected: np.ndarray) -> float | None:
    """Return c if ``got`` ≈ c · ``expected`` for a single number c, else None."""
    g, e = np.ravel(got), np.ravel(expected)
    if g.shape != e.shape or not np.all(np.isfinite(g)) or float(e @ e) == 0.0:
        return None
    c = float(g @ e) / float(e @ e)
    return c if np.allclose(g, c * e, rtol=1e-4, atol=1e-8) else None


def _factor_hint(c: float, n: int, d: int, name: str) -> str | None:
    """Name the mistake that makes a gradient c times the right one (None if c is not a known one)."""
    known = [
        (
            -1.0,
            f"{name} has the wrong sign: you used y − ŷ. The loss contains (ŷ − y)², and its derivative "
            "is 2(ŷ − y): prediction minus label. (A gradient with the wrong sign would climb the loss.)",
        ),
        (
            float(n),
            f"{name} is n = {n} times too big: you forgot the 1/n of the mean (a sum over the "
            "examples, not a mean).",
        ),
        (
            0.5,
            f"{name} is half the right value: you forgot the factor 2 that comes from differentiating "
            "the square, d(u²)/du = 2u.",
        ),
        (
            n / 2,
            f"{name} is n/2 = {n / 2:g} times too big: you forgot both the 1/n of the mean and the "
            "factor 2 from the square.",
        ),
        (
            -float(n),
            f"{name} has the wrong sign and is n = {n} times too big: use ŷ − y, and divide the sum by n.",
        ),
        (-0.5, f"{name} has the wrong sign and is half the right value: use ŷ − y, and keep the factor 2."),
        (-n / 2, f"{name} has the wrong sign, and lacks both the 1/n and the factor 2."),
        (1 / n, f"{name} is n = {n} times too small: you divided by n twice (np.mean already divides)."),
        (
            n / d,
            f"{name} was divided by d = {d} (the number of features) instead of n = {n} (the number of "
            "examples).",
        ),
        (2.0, f"{name} is twice the right value: is the factor 2 in there twice?"),
    ]
    for value, hint in known:
        if np.isclose(c, value, rtol=1e-4):
            return hint
    return None


# ---------------------------------------------------------------------------------------------
# q1: the prediction
# ---------------------------------------------------------------------------------------------


def _check_predict(predict: Callable) -> None:
    X, _, w, b = make_probe()
    n, d = X.shape
    expected = X @ w + b
    got = _run(predict, X, w, b)
    shape = _shape(got)
    what = "the prediction ŷ for the probe batch"
    if shape == (n, 1):
        raise Mismatch(
            f"the shape of {what}",
            expected=(n,),
            got=shape,
            hint="Return a flat vector of shape (n,), not a column (n, 1): `X @ w + b` with w of shape (d,). "
            "A column minus labels of shape (n,) broadcasts to an (n, n) matrix and makes the loss wrong.",
        )
    if shape == (n, d):
        raise Mismatch(
            f"the shape of {what}",
            expected=(n,),
            got=shape,
            hint="You multiplied X and w element-wise but did not add up over the features. "
            "Use the matrix-vector product `X @ w` (one number per example).",
        )
    if shape in ((), (1,)):
        raise Mismatch(
            f"the shape of {what}",
            expected=(n,),
            got=shape,
            hint="You returned one number for the whole batch. ŷ needs one prediction per example (row of X): "
            "sum over the features only, `X @ w + b`.",
        )
    got_arr = _array(got, what)
    if got_arr.shape == (n,):
        if np.allclose(got_arr, X @ w):
            raise Mismatch(
                what, expected=_fmt(expected), got=_fmt(got_arr), hint="You forgot to add the bias b."
            )
        if np.allclose(got_arr, X @ w / d + b):
            raise Mismatch(
                what,
                expected=_fmt(expected),
                got=_fmt(got_arr),
                hint="You averaged over the features; a neuron sums them: ŷᵢ = Σⱼ Xᵢⱼ wⱼ + b.",
            )
        if np.allclose(got_arr, (X @ w) * b):
            raise Mismatch(
                what, expected=_fmt(expected), got=_fmt(got_arr), hint="Add the bias b, don't multiply by it."
            )
    expect_close(
        got_arr, expected, what=what, hint="ŷ = X @ w + b: one row of X per example, one weight per column."
    )


q1 = Exercise(
    "Q1 · the prediction",
    _check_predict,
    hint="ŷ = X @ w + b. X has shape (n, d), w shape (d,), so X @ w has shape (n,); the bias b is added to every entry.",
    lab="lab01",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# q2: the gradient
# ---------------------------------------------------------------------------------------------


def _check_gradients(gradients: Callable) -> None:
    X, y, w, b = make_probe()
    n, d = X.shape
    y_hat = X @ w + b
    r = y_hat - y
    dw_exp, db_exp = 2 / n * X.T @ r, 2 / n * r.sum()
    dw, db = _pair(_run(gradients, X, y, w, b), "what gradients() returns", "dw, db")
    sw, sb = _shape(dw), _shape(db)

    # -- the order and the shapes
    if sw in ((), (1,)) and sb == (d,):
        raise Mismatch(
            "the order of the pair", expected="(dw, db)", got="(db, dw)", hint="Return dw first, then db."
        )
    if sw in ((d, 1), (1, d)):
        raise Mismatch(
            "the shape of dw",
            expected=(d,),
            got=sw,
            hint="dw has the shape of w: a flat vector (d,). Keep ŷ − y flat, shape (n,), and use `X.T @ (y_hat - y)`.",
        )
    if sw == (n,):
        raise Mismatch(
            "the shape of dw",
            expected=(d,),
            got=sw,
            hint="dw has one entry per example, so you summed over the wrong axis (the features). "
            "Sum over the examples, axis 0: `X.T @ (y_hat - y)` or `np.sum(X * r[:, None], axis=0)`.",
        )
    if sw == (n, d):
        raise Mismatch(
            "the shape of dw",
            expected=(d,),
            got=sw,
            hint="dw still has one row per example: add up (and average) over the examples, axis 0.",
        )
    if sw in ((), (1,)):
        raise Mismatch(
            "the shape of dw",
            expected=(d,),
            got=sw,
            hint="dw needs one number per weight. Did you forget to multiply by x? ∂ŷᵢ/∂w = xᵢ (row i of X).",
        )
    dw_arr = _array(dw, "dw")
    r_no_bias = X @ w - y
    if dw_arr.shape == (d,) and np.allclose(dw_arr, 2 / n * X.T @ r_no_bias):
        raise Mismatch(
            "dw (the gradient with respect to w)",
            expected=_fmt(dw_exp),
            got=_fmt(dw_arr),
            hint="Your prediction inside gradients() misses the bias: ŷ = X @ w + b.",
        )
    # -- the values of dw
    c = _factor(dw_arr, dw_exp) if dw_arr.shape == (d,) else None
    if c is not None and not np.isclose(c, 1.0, rtol=1e-4):
        hint = _factor_hint(c, n, d, "dw")
        if hint:
            raise Mismatch(
                "dw (the gradient with respect to w)", expected=_fmt(dw_exp), got=_fmt(dw_arr), hint=hint
            )
    expect_close(
        dw_arr,
        dw_exp,
        what="dw (the gradient with respect to w)",
        hint="dw = (2/n) · Xᵀ (ŷ − y) with ŷ = X @ w + b.",
    )

    # -- the bias gradient
    if sb == (d,):
        db_arr = _array(db, "db")
        if np.allclose(db_arr, dw_exp):
            raise Mismatch(
                "the shape of db",
                expected="a single number, shape ()",
                got=sb,
                hint="db equals dw: you multiplied the bias gradient by x. The bias enters as b·1, "
                "so ∂ŷᵢ/∂b = 1 and db = (2/n) Σᵢ (ŷᵢ − yᵢ), with no x.",
            )
        raise Mismatch(
            "the shape of db", expected="a single number, shape ()", got=sb, hint="b is one number, so is db."
        )
    if sb == (n,):
        raise Mismatch(
            "the shape of db",
            expected="a single number, shape ()",
            got=sb,
            hint="db has one value per example: add them up over the examples (and keep the 2/n).",
        )
    if int(np.prod(sb)) != 1:
        raise Mismatch(
            "the shape of db", expected="a single number, shape ()", got=sb, hint="b is one number, so is db."
        )
    db_val = float(_array(db, "db").reshape(()))
    if np.isclose(db_val, 2 / n * np.sum(r * y_hat)):
        raise Mismatch(
            "db (the gradient with respect to b)",
            expected=_fmt(db_exp),
            got=_fmt(db_val),
            hint="You multiplied the bias gradient by the prediction ŷ. ∂ŷᵢ/∂b = 1, so db = (2/n) Σᵢ (ŷᵢ − yᵢ).",
        )
    if np.isclose(db_val, dw_exp.sum()):
        raise Mismatch(
            "db (the gradient with respect to b)",
            expected=_fmt(db_exp),
            got=_fmt(db_val),
            hint="You multiplied the bias gradient by x (and summed). The bias enters as b·1: ∂ŷᵢ/∂b = 1.",
        )
    c = db_val / db_exp
    if not np.isclose(c, 1.0, rtol=1e-4):
        hint = _factor_hint(c, n, d, "db")
        if hint:
            raise Mismatch(
                "db (the gradient with respect to b)", expected=_fmt(db_exp), got=_fmt(db_val), hint=hint
            )
    expect_close(
        db_val,
        db_exp,
        what="db (the gradient with respect to b)",
        hint="db = (2/n) · Σᵢ (ŷᵢ − yᵢ): the same as dw with every xᵢ replaced by 1.",
    )


q2 = Exercise(
    "Q2 · the gradient",
    _check_gradients,
    hint="With r = ŷ − y (shape (n,)): dw = (2/n) · X.T @ r and db = (2/n) · r.sum(). "
    "The 2 comes from the square, the 1/n from the mean, and x multiplies the weight gradient only.",
    lab="lab01",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: one gradient-descent step
# ---------------------------------------------------------------------------------------------


def _step_probe() -> tuple[np.ndarray, float, np.ndarray, float]:
    return np.array([1.0, -2.0, 0.5]), 0.3, np.array([0.2, 0.4, -0.6]), -0.8


def _check_step(gd_step: Callable) -> None:
    w, b, dw, db = _step_probe()
    lr = 0.1
    w_new, b_new = _pair(_run(gd_step, w, b, dw, db, lr), "what gd_step() returns", "w, b")
    if _shape(w_new) in ((), (1,)) and _shape(b_new) == w.shape:
        raise Mismatch(
            "the order of the pair", expected="(w, b)", got="(b, w)", hint="Return the new w first, then b."
        )
    if _shape(w_new) != w.shape:
        raise Mismatch(
            "the shape of the new w",
            expected=w.shape,
            got=_shape(w_new),
            hint="The new w has the shape of w.",
        )
    w_arr = _array(w_new, "the new w")
    b_arr = _array(b_new, "the new b")
    if int(np.prod(b_arr.shape)) != 1:
        raise Mismatch(
            "the shape of the new b", expected="a single number", got=b_arr.shape, hint="b is one number."
        )
    b_val = float(b_arr.reshape(()))
    what = "the new w (w = [1, -2, 0.5], dw = [0.2, 0.4, -0.6], lr = 0.1)"
    if np.allclose(w_arr, w + lr * dw):
        raise Mismatch(
            what,
            expected=_fmt(w - lr * dw),
            got=_fmt(w_arr),
            hint="You added the gradient: that climbs the loss (gradient ascent). Step against it: w − lr · dw.",
        )
    if np.allclose(w_arr, w - dw):
        raise Mismatch(
            what,
            expected=_fmt(w - lr * dw),
            got=_fmt(w_arr),
            hint="You forgot to multiply the gradient by lr.",
        )
    if np.allclose(w_arr, w - dw / lr):
        raise Mismatch(
            what,
            expected=_fmt(w - lr * dw),
            got=_fmt(w_arr),
            hint="Multiply the gradient by lr, don't divide.",
        )
    if np.allclose(w_arr, w - lr * db):
        raise Mismatch(
            what, expected=_fmt(w - lr * dw), got=_fmt(w_arr), hint="Update w with dw (and b with db)."
        )
    if np.allclose(w_arr, w):
        raise Mismatch(
            what,
            expected=_fmt(w - lr * dw),
            got=_fmt(w_arr),
            hint="w did not change: subtract lr · dw from it.",
        )
    other = _array(_pair(_run(gd_step, w, b, dw, db, 0.01), "what gd_step() returns", "w, b")[0], "the new w")
    if np.allclose(other, w_arr):
        raise Mismatch(
            "the new w for two different learning rates (0.1 and 0.01)",
            expected="two different results",
            got="the same result",
            hint="Use the argument lr, not a fixed number or a variable from another cell.",
        )
    expect_close(w_arr, w - lr * dw, what=what, hint="w_new = w − lr · dw.")
    what_b = "the new b (b = 0.3, db = -0.8, lr = 0.1)"
    for wrong, hint in (
        (b + lr * db, "You added the bias gradient: step against it, b − lr · db."),
        (b - db, "You forgot to multiply db by lr."),
        (b, "b did not change: subtract lr · db from it."),
    ):
        if np.isclose(b_val, wrong):
            raise Mismatch(what_b, expected=_fmt(b - lr * db), got=_fmt(b_val), hint=hint)
    expect_close(b_val, b - lr * db, what=what_b, hint="b_new = b − lr · db.")


q3 = Exercise(
    "Q3 · one gradient-descent step",
    _check_step,
    hint="Move each parameter a step of size lr against its gradient: w − lr · dw and b − lr · db.",
    lab="lab01",
    solution_id="q3",
)


# ---------------------------------------------------------------------------------------------
# q4: the training loop
# ---------------------------------------------------------------------------------------------


def reference_train(
    X: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[np.ndarray, float, list[float]]:
    """The model answer of q4: ``(w, b, losses)`` with ``losses[k]`` the MSE after k updates."""
    n, d = X.shape
    w, b = np.zeros(d), 0.0
    losses = []
    for step in range(steps + 1):
        r = X @ w + b - y
        losses.append(float(np.mean(r**2)))
        if step < steps:
            w, b = w - lr * 2 / n * X.T @ r, b - lr * 2 / n * r.sum()
    return w, b, losses


def _triple(result: Any) -> tuple[Any, Any, Any]:
    if isinstance(result, tuple | list) and len(result) == 3:
        return result[0], result[1], result[2]
    got = (
        f"{type(result).__name__} of length {len(result)}"
        if isinstance(result, tuple | list)
        else type(result).__name__
    )
    raise Mismatch(
        "what train() returns",
        expected="three things: w, b, losses",
        got=got,
        hint="End your function with `return w, b, losses`.",
    )


def _losses(value: Any) -> np.ndarray:
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        raise Mismatch(
            "the list of losses",
            expected="a list of numbers, one loss per step",
            got=type(value).__name__,
            hint="Append float(mse(...)) to a list at each step.",
        ) from None
    return arr


def _check_train(train: Callable) -> None:
    X, y, _, _ = make_probe()
    lr, steps = 0.1, 20
    ref_w, ref_b, ref = reference_train(X, y, lr, steps)
    w, b, losses = _triple(_run(train, X, y, lr, steps))
    got = _losses(losses)
    expected_len = (
        f"steps + 1 = {steps + 1} values: the loss before any update, then after each of the {steps} updates"
    )
    if len(got) == steps and len(got) > 1:
        if np.isclose(got[0], ref[0]) and np.allclose(got, ref[:-1], rtol=1e-5):
            raise Mismatch(
                "the number of losses",
                expected=expected_len,
                got=f"{len(got)} values (the last one is missing)",
                hint="You record the loss before each update, which is right, but not after the last update. "
                "Append the final loss after the loop too.",
            )
        if np.allclose(got, ref[1:], rtol=1e-5):
            raise Mismatch(
                "the number of losses",
                expected=expected_len,
                got=f"{len(got)} values (the first one is missing)",
                hint="You record the loss after each update, but not the loss at the start (w = 0, b = 0). "
                "Record it once before the loop: losses[0] is the loss of the untrained model.",
            )
    if len(got) != steps + 1:
        raise Mismatch(
            "the number of losses for steps = 20",
            expected=expected_len,
            got=f"{len(got)} values",
            hint="Record the loss once before the loop, then once after every update.",
        )
    if not np.all(np.isfinite(got)):
        raise Mismatch(
            "the list of losses",
            expected="finite numbers",
            got=_fmt(got),
            hint="Your losses contain NaN or inf: the updates blew up (check that q2 and q3 pass), "
            "or something was divided by zero.",
        )
    if not np.isclose(got[0], ref[0], rtol=1e-5):
        hint = "losses[0] is the loss of the untrained model, which starts at w = 0 (a vector of d zeros) and b = 0."
        if np.isclose(got[0], ref[1], rtol=1e-5):
            hint = "losses[0] is already the loss after one update: record the loss before the first update."
        raise Mismatch(
            "losses[0], the loss before any update", expected=_fmt(ref[0]), got=_fmt(got[0]), hint=hint
        )
    if got[-1] > got[0]:
        raise Mismatch(
            "the loss history",
            expected=f"a falling loss, {ref[0]:.4f} → {ref[-1]:.4f}",
            got=f"a rising loss, {got[0]:.4f} → {got[-1]:.4f}",
            hint="The loss grows: the updates climb or overshoot. Check that q2 and q3 pass; a sign error, or a "
            "gradient n times too big, does this.",
        )
    other = _losses(_triple(_run(train, X, y, lr / 2, steps))[2])
    if len(other) == len(got) and np.allclose(other, got):
        raise Mismatch(
            "the loss history for two learning rates (0.1 and 0.05)",
            expected="two different histories",
            got="the same history",
            hint="Pass the argument lr to your update, not a fixed number or another cell's variable.",
        )
    expect_close(
        got,
        ref,
        what="the loss history (lr = 0.1, 20 steps)",
        rtol=1e-5,
        atol=1e-8,
        hint="losses[0] is right, the updates are not: check that q1–q3 pass, and that each step uses the gradient "
        "at the current w and b.",
    )
    expect_close(
        w, ref_w, what="the final w", rtol=1e-5, atol=1e-8, hint="Return the trained w (after the loop)."
    )
    b_arr = _array(b, "the final b")
    expect(int(np.prod(b_arr.shape)) == 1, "the final b", expected="a single number", got=b_arr.shape)
    expect_close(float(b_arr.reshape(())), ref_b, what="the final b", rtol=1e-5, atol=1e-8)


q4 = Exercise(
    "Q4 · the training loop",
    _check_train,
    hint="Start at w = np.zeros(d), b = 0.0 and losses = [loss now]. Then `steps` times: gradients, a step, "
    "append the new loss. Return w, b, losses (steps + 1 losses).",
    lab="lab01",
    solution_id="q4",
)


# ---------------------------------------------------------------------------------------------
# After the exercises: see the loop learn (never raises, so an unfinished lab still runs)
# ---------------------------------------------------------------------------------------------


def show_training(
    train: Callable,
    X: np.ndarray,
    y: np.ndarray,
    *,
    learning_rates: tuple[float, ...] = (0.01, 0.1, 0.5),
    steps: int = 100,
    true_w: Any = None,
    true_b: float | None = None,
) -> Any:
    """Return a figure of the learner's loss histories for several learning rates.

    The title names the run with the lowest final loss, its learned w and b, and (if given) the true
    ones. If ``train`` is not finished or does not pass Q4, return a :class:`Feedback` saying so
    instead: it shows as a message, not an error, so an unfinished lab still runs to the end.
    """
    if not q4.evaluate(train).passed:
        return Feedback(
            "not_done", "Training curves", "finish Q4 first (its check must pass), then run this cell again."
        )
    from utils import viz

    curves, finals = {}, {}
    for lr in learning_rates:
        try:
            w, b, losses = _triple(_run(train, X, y, lr, steps))
        except (NotDone, Mismatch, LearnerError) as exc:  # Q4 passed, so this is unlikely
            return Feedback("error", "Training curves", f"train(..., lr={lr:g}) did not run: {exc}")
        curves[f"lr = {lr:g}"] = [float(v) for v in losses]
        finals[lr] = (float(losses[-1]), _array(w, "w"), float(_array(b, "b").reshape(())))
    best = min(finals, key=lambda lr: finals[lr][0] if np.isfinite(finals[lr][0]) else np.inf)
    loss, w, b = finals[best]
    learned = f"lr = {best:g}: final MSE {loss:.4f}, w = {np.round(w, 3).tolist()}, b = {b:.3f}"
    if true_w is not None and true_b is not None:
        learned += f" (true: w = {np.asarray(true_w).tolist()}, b = {true_b:g})"
    return viz.loss_curves(
        curves,
        title=f"Your training loop: MSE over {steps} steps<br><sup>{learned}</sup>",
        xlabel="step (number of updates)",
        ylabel="MSE (log scale)",
        log_y=True,
    )
