"""Checks for Lab 08a (latent spaces and diffusion): a VAE's KL term against a prior that is not the standard
normal, the DDPM forward process at a different step for every example, the DDPM posterior
q(x_{t−1} | x_t, x_0), and spherical interpolation of latents.

Conventions shared with ``utils.generative``: variances are passed as **log-variances**; a schedule is the
vector ``betas`` of length T whose index i holds β at step t = i + 1, so ᾱ_t = ∏_{s ≤ t} (1 − β_s) and ᾱ_0 = 1.

* ``q1`` ``kl_diag(mu_q, logvar_q, mu_p, logvar_p)``: KL(q ‖ p) of diagonal Gaussians summed over the last
  axis. Mistakes: the log-variance read as log σ; the ½ missing; KL(p ‖ q); a mean over the dimensions; the
  standard normal prior (the lesson's formula); Δμ² not divided by the prior's variance.
* ``q2`` ``noisy_at(x0, t, noise, betas)``: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with one step per example.
  Mistakes: ᾱ_{t−1}; ᾱ_{t+1}; α_t = 1 − β_t instead of ᾱ_t; the √ missing on either coefficient.
* ``q3`` ``posterior(x0, x_t, t, betas)``: the mean and variance β̃_t of q(x_{t−1} | x_t, x_0).
  Mistakes: ᾱ_t where ᾱ_{t−1} belongs; β_t as the variance; the two coefficients swapped; the √ missing on
  ᾱ_{t−1} or on α_t.
* ``q4`` ``slerp(z0, z1, t)``. Mistakes: linear interpolation; t and 1 − t swapped; sin θ not divided by;
  the directions interpolated but the lengths dropped.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from utils.checks import (
    Exercise,
    Mismatch,
    NotDone,
    answer_tolerance,
    as_array,
    call,
    is_placeholder,
    judge,
    variants,
)

__all__ = [
    "alpha_bars",
    "cosine_betas",
    "ideal_denoiser",
    "kl_reference",
    "linear_betas",
    "noisy_reference",
    "posterior_reference",
    "q1",
    "q2",
    "q3",
    "q4",
    "slerp_reference",
]


def _f64(*arrays: Any) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


# ------------------------------------------------------------------------------------------------
# schedules
# ------------------------------------------------------------------------------------------------


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """DDPM's linear schedule (Ho et al., 2020): β_1 … β_T evenly spaced; index i holds step t = i + 1."""
    return np.linspace(beta_start, beta_end, T, dtype=np.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """The cosine schedule (Nichol and Dhariwal, 2021): ᾱ_t = f(t)/f(0) with f(t) = cos²(π/2 · (t/T + s)/(1 + s)),
    β_t = 1 − ᾱ_t/ᾱ_{t−1}, capped at ``max_beta``. Index i holds step t = i + 1."""
    steps = np.arange(T + 1, dtype=np.float64)
    f = np.cos((steps / T + s) / (1 + s) * np.pi / 2) ** 2
    return np.minimum(1 - f[1:] / f[:-1], max_beta)


def alpha_bars(betas: Any) -> np.ndarray:
    """ᾱ_0 … ᾱ_T (length T + 1, ᾱ_0 = 1): index t holds step t here, one more than ``betas``."""
    (betas,) = _f64(betas)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


# ------------------------------------------------------------------------------------------------
# q1: the KL term against a prior N(μ_p, diag σ_p²)
# ------------------------------------------------------------------------------------------------


def kl_reference(mu_q, logvar_q, mu_p, logvar_p, *, mistake: str | None = None) -> np.ndarray:
    """KL(N(μ_q, diag e^{logvar_q}) ‖ N(μ_p, diag e^{logvar_p})) in float64, summed over the last axis:

    ½ Σ_d [ logvar_p − logvar_q + (e^{logvar_q} + (μ_q − μ_p)²) / e^{logvar_p} − 1 ].

    ``mistake`` computes a known mistake instead: "log_sigma", "no_half", "reversed", "mean",
    "standard_prior", "mean_term".
    """
    mu_q, lv_q, mu_p, lv_p = np.broadcast_arrays(*_f64(mu_q, logvar_q, mu_p, logvar_p))
    if mistake == "reversed":
        mu_q, lv_q, mu_p, lv_p = mu_p, lv_p, mu_q, lv_q
    if mistake == "standard_prior":
        mu_p, lv_p = np.zeros_like(mu_p), np.zeros_like(lv_p)
    if mistake == "log_sigma":  # logvar taken for log σ: the variance is e^{2·logvar}
        lv_q, lv_p = 2 * lv_q, 2 * lv_p
    mean_term = (mu_q - mu_p) ** 2 if mistake == "mean_term" else (mu_q - mu_p) ** 2 / np.exp(lv_p)
    terms = lv_p - lv_q + np.exp(lv_q - lv_p) + mean_term - 1.0
    total = terms.mean(axis=-1) if mistake == "mean" else terms.sum(axis=-1)
    return total if mistake == "no_half" else 0.5 * total


@functools.cache
def _kl_probes() -> tuple[tuple[np.ndarray, ...], ...]:
    """Two probes: a prior per example (batch, D), as a conditional prior network gives, and one shared (D,)."""
    rng = np.random.default_rng(81)
    batch, dim = 3, 5
    f32 = lambda a: np.asarray(a, dtype=np.float32)
    per_example = (
        f32(rng.normal(size=(batch, dim))),
        f32(rng.normal(scale=0.7, size=(batch, dim))),
        f32(rng.normal(scale=0.8, size=(batch, dim))),
        f32(rng.normal(scale=0.6, size=(batch, dim)) + 0.3),
    )
    shared = (
        f32(rng.normal(size=(batch + 1, dim))),
        f32(rng.normal(scale=0.7, size=(batch + 1, dim)) - 0.5),
        f32(rng.normal(size=(dim,))),
        f32(rng.normal(scale=0.6, size=(dim,)) - 0.4),
    )
    return per_example, shared


def _kl_all(*probes: tuple[np.ndarray, ...], mistake: str | None = None) -> np.ndarray:
    return np.concatenate([kl_reference(*p, mistake=mistake) for p in probes])


M = variants(_kl_all)
# fmt: off
Q1_MISTAKES = [
    M("the log-variance read as log σ", "The arguments are log-variances, log σ²: the variance is exp(logvar), and log σ² is logvar itself (no factor 2).", mistake="log_sigma"),
    M("the ½ missing", "The KL of two Gaussians has a ½ in front of the sum: the density's exponent is −(x − μ)²/(2σ²).", mistake="no_half"),
    M("KL(p ‖ q) instead of KL(q ‖ p)", "KL is not symmetric. The VAE's term is KL(q ‖ p): the expectation is under the posterior q, so q's variance is the one divided by p's.", mistake="reversed"),
    M("a mean over the latent dimensions", "The KL of a diagonal Gaussian is the sum of one KL per dimension (they are independent): sum over the last axis, do not average.", mistake="mean"),
    M("the standard normal prior", "This is the KL against N(0, I), the lesson's prior. Here the prior has its own mean and log-variance: use mu_p and logvar_p.", mistake="standard_prior"),
    M("Δμ² not divided by the prior's variance", "The squared distance between the means is measured in units of the prior's variance: (μ_q − μ_p)² / σ_p², like σ_q² / σ_p².", mistake="mean_term"),
]
# fmt: on


def _check_kl(fn: Any) -> None:
    probes, got = _kl_probes(), []
    for probe in probes:
        shapes = ", ".join(str(a.shape) for a in probe)
        what = f"kl_diag(mu_q, logvar_q, mu_p, logvar_p) with shapes {shapes}"
        out = call(fn, *(a.copy() for a in probe))
        tol = answer_tolerance(out, rtol=1e-4, atol=1e-5)
        got.append(
            as_array(
                out,
                what,
                shape=probe[0].shape[:1],
                hint="One KL per example: sum over the latent axis (the last one), keep the batch axis.",
            )
        )
    judge(
        np.concatenate(got),
        _kl_all(*probes),
        Q1_MISTAKES,
        what="KL(q ‖ p) on two probes (a prior per example, then one shared by the batch)",
        inputs=probes,
        tol=tol,
    )


q1 = Exercise(
    "Q1 · the KL term against a prior of your own",
    _check_kl,
    hint=(
        "Work one latent dimension at a time: the KL of N(μ_q, σ_q²) from N(μ_p, σ_p²) is "
        "log(σ_p/σ_q) + (σ_q² + (μ_q − μ_p)²) / (2σ_p²) − ½. Then add the dimensions up.",
        "Write it with log-variances: log(σ_p/σ_q) = ½ (logvar_p − logvar_q), and σ² = exp(logvar). With "
        "mu_p = 0 and logvar_p = 0 it must give the lesson's KL against N(0, I).",
    ),
)

# ------------------------------------------------------------------------------------------------
# q2: the forward process at one step per example
# ------------------------------------------------------------------------------------------------


def noisy_reference(x0, t, noise, betas, *, shift: int = 0, cumulative: bool = True, roots: str = "both"):
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε in float64, t (batch,) in 1..T, one step per example.

    ``shift`` reads ᾱ_{t+shift}; ``cumulative=False`` uses α_t = 1 − β_t; ``roots`` = "noise" or "signal"
    keeps the square root on that coefficient only. Right with the defaults.
    """
    x0, noise, betas = _f64(x0, noise, betas)
    t = np.asarray(t).astype(int).reshape(-1)
    if cumulative:
        a = alpha_bars(betas)[t + shift]
    else:
        a = 1.0 - betas[t - 1]
    a = a.reshape((-1,) + (1,) * (x0.ndim - 1))
    signal = a if roots == "noise" else np.sqrt(a)
    spread = 1 - a if roots == "signal" else np.sqrt(1 - a)
    return signal * x0 + spread * noise


@functools.cache
def _noisy_probe() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(82)
    t = np.array([1, 3, 12, 25, 34, 38])
    x0 = (rng.choice([-1, 1], size=(len(t), 2, 3)) * rng.uniform(1, 2, size=(len(t), 2, 3))).astype("float32")
    noise = rng.normal(size=x0.shape).astype("float32")
    return x0, t, noise, cosine_betas(40).astype("float32")


def _noisy_calls(x0, t, noise, betas) -> list[tuple[np.ndarray, ...]]:
    """The probe as given, then with no noise (the signal's coefficient alone), then with x0 = 0 (the noise's)."""
    zero = np.zeros_like(x0)
    return [(x0, t, noise, betas), (x0, t, zero, betas), (zero, t, noise, betas)]


def _noisy_all(x0, t, noise, betas, **kw) -> np.ndarray:
    return np.concatenate(
        [noisy_reference(*args, **kw).reshape(-1) for args in _noisy_calls(x0, t, noise, betas)]
    )


M = variants(_noisy_all)
OFF_BY_ONE = "betas[i] is β at step t = i + 1, so ᾱ_t multiplies the first t factors (1 − β): betas[0] up to betas[t − 1] included."
# fmt: off
Q2_MISTAKES = [
    M("ᾱ_{t−1} instead of ᾱ_t", OFF_BY_ONE + " Yours stops one factor short.", shift=-1),
    M("ᾱ_{t+1} instead of ᾱ_t", OFF_BY_ONE + " Yours takes one factor too many: the array index is t − 1, not t.", shift=1),
    M("α_t = 1 − β_t instead of ᾱ_t", "x_t comes from x_0 in one jump only through the cumulative product ᾱ_t = ∏ (1 − β_s) of every step up to t, not the last step's 1 − β_t alone.", cumulative=False),
    M("the √ missing on ᾱ_t", "The signal's coefficient is √ᾱ_t: then the variances add up to 1 (ᾱ_t + (1 − ᾱ_t)), which is what keeps x_t at unit scale.", roots="noise"),
    M("the √ missing on 1 − ᾱ_t", "The noise's coefficient is a standard deviation, √(1 − ᾱ_t): the variance of the added noise is 1 − ᾱ_t.", roots="signal"),
]
# fmt: on


def _check_noisy(fn: Any) -> None:
    x0, t, noise, betas = _noisy_probe()
    got, outs = [], []
    hint = "x_t has the shape of x0: reshape each example's coefficients to (batch, 1, 1) so they broadcast."
    for a, steps, eps, b in _noisy_calls(x0, t, noise, betas):
        what = f"noisy_at(x0 {a.shape}, t={steps.tolist()}, noise, betas of a {len(b)}-step cosine schedule)"
        out = call(fn, a.copy(), steps.copy(), eps.copy(), b.copy())
        got.append(as_array(out, what, shape=x0.shape, hint=hint).reshape(-1))
        outs.append(out)
    judge(
        np.concatenate(got),
        _noisy_all(x0, t, noise, betas),
        Q2_MISTAKES,
        what=f"x_t at t = {t.tolist()}, with noise, without it, and from x0 = 0",
        inputs=(x0, t, noise, betas),
        tol=answer_tolerance(*outs, rtol=1e-4, atol=1e-5),
    )


q2 = Exercise(
    "Q2 · the forward process, one step per example",
    _check_noisy,
    hint=(
        "First turn the schedule into ᾱ: the running product of (1 − β) along the steps (np.cumprod). Then "
        "pick each example's value with its own t, remembering that the array starts at step 1.",
        "With abar the cumulative product, example i needs abar[t[i] − 1]. Reshape those (batch,) numbers to "
        "(batch, 1, 1) before multiplying x0 and the noise by √ᾱ and √(1 − ᾱ).",
    ),
)

# ------------------------------------------------------------------------------------------------
# q3: the posterior q(x_{t−1} | x_t, x_0)
# ------------------------------------------------------------------------------------------------


def posterior_reference(
    x0,
    x_t,
    t: int,
    betas,
    *,
    shift: int = 0,
    variance: str = "tilde",
    swap: bool = False,
    root_prev: bool = True,
    root_alpha: bool = True,
) -> tuple[np.ndarray, float]:
    """Mean and variance of q(x_{t−1} | x_t, x_0) in float64 (Ho et al., 2020, eq. 6–7), t in 1..T:

    μ̃ = √ᾱ_{t−1} β_t / (1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x_t,  β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t.

    The keywords make the known mistakes (``shift=1``: ᾱ_t where ᾱ_{t−1} belongs).
    """
    x0, x_t, betas = _f64(x0, x_t, betas)
    abar = alpha_bars(betas)
    beta, a_t = betas[t - 1], abar[t]
    a_prev = abar[t - 1 + shift]
    alpha = 1.0 - beta
    c0 = (np.sqrt(a_prev) if root_prev else a_prev) * beta / (1 - a_t)
    ct = (np.sqrt(alpha) if root_alpha else alpha) * (1 - a_prev) / (1 - a_t)
    if swap:
        c0, ct = ct, c0
    var = beta if variance == "beta" else (1 - a_prev) / (1 - a_t) * beta
    return c0 * x0 + ct * x_t, float(var)


Q3_STEPS = (1, 2, 30, 39)


@functools.cache
def _posterior_probe() -> tuple[np.ndarray, ...]:
    """x0 (3, 4) and one x_t per step of Q3_STEPS, stacked; float32 betas of a 40-step cosine schedule."""
    rng = np.random.default_rng(83)
    betas = cosine_betas(40)
    sign = lambda: rng.choice([-1.0, 1.0], size=(3, 4))  # noqa: E731
    x0 = sign() * rng.uniform(1, 2, size=(3, 4))
    x_ts = np.stack([sign() * rng.uniform(1, 2, size=(3, 4)) for _ in Q3_STEPS])
    return x0.astype("float32"), x_ts.astype("float32"), betas.astype("float32")


def _posterior_calls(x0, x_ts, betas) -> list[tuple]:
    """(x0, x_t, t, betas) for every step: as given, then x_t = 0 (x0's weight alone), then x0 = 0 (x_t's)."""
    calls = []
    for t, x_t in zip(Q3_STEPS, x_ts, strict=True):
        calls += [(x0, x_t, t, betas), (x0, 0 * x_t, t, betas), (0 * x0, x_t, t, betas)]
    return calls


def _posterior_all(x0, x_ts, betas, part: str, **kw) -> np.ndarray:
    """The means of every call (``part="mean"``, flattened) or the variances of every step (``"variance"``)."""
    found = [posterior_reference(*args, **kw) for args in _posterior_calls(x0, x_ts, betas)]
    if part == "mean":
        return np.concatenate([mean.reshape(-1) for mean, _ in found])
    return np.array([var for _, var in found[::3]])


M = variants(_posterior_all)
# fmt: off
Q3_MISTAKES = [
    M("ᾱ_t where ᾱ_{t−1} belongs", "The posterior looks one step back: its coefficients use ᾱ_{t−1} (abar[t − 2] in a cumulative product that starts at step 1, and 1 at t = 1) besides ᾱ_t.", shift=1),
    M("the two coefficients swapped", "At t = 1 the posterior mean is x_0 itself (there is nothing left to denoise): the coefficient with β_t goes with x_0, the one with 1 − ᾱ_{t−1} with x_t.", swap=True),
    M("the √ missing on ᾱ_{t−1}", "x_0's coefficient has √ᾱ_{t−1}: it scales x_0 down the way the forward process does at step t − 1.", root_prev=False),
    M("the √ missing on α_t", "x_t's coefficient has √α_t = √(1 − β_t), the one-step scale of the forward process.", root_alpha=False),
]
Q3_VARIANCE_MISTAKES = [
    M("β_t as the variance instead of β̃_t", "β_t is the forward step's variance. Knowing x_0 as well narrows the posterior: β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t, which is 0 at t = 1.", variance="beta"),
]
# fmt: on


def _variance_number(value: Any, what: str) -> float:
    hint = "The variance is one number for every element (β̃_t); return (mean, variance)."
    arr = as_array(value, what, hint=hint).reshape(-1)
    if arr.size == 0 or not np.allclose(arr, arr[0], rtol=1e-6, atol=0):
        raise Mismatch(what, expected="one number", got=f"an array of shape {arr.shape}", hint=hint)
    return float(arr[0])


def _check_posterior(fn: Any) -> None:
    x0, x_ts, betas = _posterior_probe()
    means, variances, outs = [], [], []
    for index, (a, x_t, t, b) in enumerate(_posterior_calls(x0, x_ts, betas)):
        what = f"posterior(x0 {a.shape}, x_t, t={t}, betas of a 40-step cosine schedule)"
        out = call(fn, a.copy(), x_t.copy(), t, b.copy())
        if is_placeholder(out):
            raise NotDone
        if not isinstance(out, tuple | list) or len(out) != 2:
            hint = (
                "Return two things: the mean (the shape of x_t) and the variance, as `return mean, variance`."
            )
            raise Mismatch(what, expected="a pair (mean, variance)", got=type(out).__name__, hint=hint)
        mean = as_array(out[0], f"the mean of {what}", shape=x0.shape, hint="The mean has the shape of x_t.")
        means.append(mean.reshape(-1))
        if index % 3 == 0:
            variances.append(_variance_number(out[1], f"the variance of {what}"))
        outs += list(out)
    steps = ", ".join(map(str, Q3_STEPS))
    tol = answer_tolerance(*outs, rtol=1e-4, atol=1e-5)
    inputs = (x0, x_ts, betas)
    judge(
        np.concatenate(means),
        _posterior_all(*inputs, "mean"),
        Q3_MISTAKES,
        what=f"the posterior's means at t = {steps} (with x_t = 0 and x0 = 0 too)",
        inputs=(*inputs, "mean"),
        tol=tol,
    )
    judge(
        np.array(variances),
        _posterior_all(*inputs, "variance"),
        Q3_VARIANCE_MISTAKES,
        what=f"the posterior's variances at t = {steps}",
        inputs=(*inputs, "variance"),
        tol={"rtol": tol["rtol"], "atol": 1e-7},  # they are small at the first steps: compare them relatively
    )


q3 = Exercise(
    "Q3 · the posterior q(x_{t−1} | x_t, x_0)",
    _check_posterior,
    hint=(
        "You need four numbers from the schedule: β_t, α_t = 1 − β_t, ᾱ_t and ᾱ_{t−1}. Prepend 1 (ᾱ_0) to the "
        "cumulative product, so that index t holds ᾱ_t and index t − 1 holds ᾱ_{t−1}, for every t from 1.",
        "The mean is a weighted sum of x_0 and x_t: the weight of x_0 has √ᾱ_{t−1} and β_t in it, the weight of "
        "x_t has √α_t and 1 − ᾱ_{t−1}; both are divided by 1 − ᾱ_t. Check yours: at t = 1 the mean is x_0 and "
        "the variance 0.",
    ),
)


def ideal_denoiser(x_t: Any, t: int, betas: Any, data: Any) -> np.ndarray:
    """E[x_0 | x_t] when x_0 is drawn uniformly from the rows of ``data`` (N, D): the best possible x_0-prediction
    for that data set, a softmax over −‖x_t − √ᾱ_t x_k‖² / (2(1 − ᾱ_t)). x_t is (batch, D); returns (batch, D)."""
    x_t, data = _f64(x_t, data)
    a = alpha_bars(betas)[t]
    d2 = ((x_t[:, None, :] - np.sqrt(a) * data[None]) ** 2).sum(-1)
    logits = -d2 / (2 * (1 - a))
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ data


# ------------------------------------------------------------------------------------------------
# q4: spherical interpolation of latents
# ------------------------------------------------------------------------------------------------


def slerp_reference(z0, z1, t: float, *, how: str = "slerp") -> np.ndarray:
    """sin((1 − t)θ)/sin θ · z0 + sin(tθ)/sin θ · z1, θ the angle between z0 and z1 (float64).

    ``how``: "lerp", "swapped" (t and 1 − t), "no_sin" (sin θ not divided by), "unit" (the unit vectors
    interpolated, so the result has length 1) make the known mistakes.
    """
    z0, z1 = _f64(z0, z1)
    if how == "lerp":
        return (1 - t) * z0 + t * z1
    if how == "swapped":
        t = 1 - t
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if how == "unit":
        z0, z1 = z0 / n0, z1 / n1
    theta = np.arccos(np.clip(z0 @ z1 / (np.linalg.norm(z0) * np.linalg.norm(z1)), -1.0, 1.0))
    scale = 1.0 if how == "no_sin" else np.sin(theta)
    return (np.sin((1 - t) * theta) * z0 + np.sin(t * theta) * z1) / scale


Q4_TS = (0.0, 0.25, 0.5, 0.9)


@functools.cache
def _slerp_probe() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(84)
    return rng.normal(size=6).astype("float32"), (1.3 * rng.normal(size=6)).astype("float32")


def _slerp_all(z0, z1, **kw) -> np.ndarray:
    return np.concatenate([slerp_reference(z0, z1, t, **kw) for t in Q4_TS])


M = variants(_slerp_all)
# fmt: off
Q4_MISTAKES = [
    M("linear interpolation", "That is the straight line (1 − t)·z0 + t·z1, the lesson's interpolation: its midpoint is shorter than both ends. Follow the arc instead, through the angle θ between z0 and z1.", how="lerp"),
    M("t and 1 − t swapped", "At t = 0 the path must start at z0: z0's weight is the one with (1 − t)θ.", how="swapped"),
    M("sin θ not divided by", "Both weights are divided by sin θ; without it the path starts at sin θ · z0 instead of z0.", how="no_sin"),
    M("the lengths lost", "Normalise only to measure the angle θ: interpolate the original vectors z0 and z1, so the path keeps their lengths.", how="unit"),
]
# fmt: on


def _check_slerp(fn: Any) -> None:
    z0, z1 = _slerp_probe()
    got, outs = [], []
    for t in Q4_TS:
        what = f"slerp(z0 {z0.shape}, z1 {z1.shape}, t={t})"
        out = call(fn, z0.copy(), z1.copy(), t)
        got.append(as_array(out, what, shape=z0.shape, hint="One latent vector, the shape of z0."))
        outs.append(out)
    judge(
        np.concatenate(got),
        _slerp_all(z0, z1),
        Q4_MISTAKES,
        what=f"slerp(z0, z1, t) at t = {', '.join(map(str, Q4_TS))}",
        inputs=(z0, z1),
        tol=answer_tolerance(*outs, rtol=1e-4, atol=1e-5),
    )


q4 = Exercise(
    "Q4 · spherical interpolation",
    _check_slerp,
    hint=(
        "Find the angle θ between z0 and z1 from their cosine (the dot product divided by both lengths). The "
        "path turns from z0 to z1 through that angle as t goes from 0 to 1.",
        "The weights are sin((1 − t)θ) / sin θ for z0 and sin(tθ) / sin θ for z1. Check yours at t = 0 and t = 1.",
    ),
)
