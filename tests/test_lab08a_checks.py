"""Lab 08a's checks: right answers written in different styles pass, each known mistake is named by its own
hint, unfinished answers are "not done yet", a learner's error is reported kindly, and the references agree
with the lesson's ``utils.generative`` (KL, schedule, forward process, sampler) and with Monte Carlo."""

import math

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils.checks import lab08a as ex  # noqa: E402

# ---------------------------------------------------------------------------------------------
# q1: the KL term against a prior N(mu_p, diag sigma_p^2)
# ---------------------------------------------------------------------------------------------


def kl_numpy(mu_q, logvar_q, mu_p, logvar_p):
    return 0.5 * np.sum(
        logvar_p - logvar_q + (np.exp(logvar_q) + (mu_q - mu_p) ** 2) / np.exp(logvar_p) - 1, axis=-1
    )


def kl_tf_sigmas(mu_q, logvar_q, mu_p, logvar_p):
    """Through standard deviations, in TensorFlow: log(σ_p/σ_q) + (σ_q² + Δμ²)/(2σ_p²) − ½."""
    s_q, s_p = tf.exp(0.5 * logvar_q), tf.exp(0.5 * logvar_p)
    per_dim = tf.math.log(s_p / s_q) + (s_q**2 + (mu_q - mu_p) ** 2) / (2 * s_p**2) - 0.5
    return tf.reduce_sum(per_dim, axis=-1)


def kl_keras_ops_loop(mu_q, logvar_q, mu_p, logvar_p):
    """keras.ops, one dimension at a time, the prior broadcast by hand."""
    ops = keras.ops
    mu_p = ops.broadcast_to(mu_p, ops.shape(mu_q))
    logvar_p = ops.broadcast_to(logvar_p, ops.shape(mu_q))
    total = 0.0
    for d in range(mu_q.shape[-1]):
        ratio = ops.exp(logvar_q[:, d] - logvar_p[:, d])
        total = total + 0.5 * (
            ratio - 1 - ops.log(ratio) + ops.square(mu_q[:, d] - mu_p[:, d]) / ops.exp(logvar_p[:, d])
        )
    return total


def kl_variant(mistake):
    return lambda *args: ex.kl_reference(*args, mistake=mistake)


def kl_log_sigma(mu_q, logvar_q, mu_p, logvar_p):
    """logvar taken for log σ: σ = exp(logvar)."""
    s_q, s_p = np.exp(logvar_q), np.exp(logvar_p)
    return np.sum(np.log(s_p / s_q) + (s_q**2 + (mu_q - mu_p) ** 2) / (2 * s_p**2) - 0.5, axis=-1)


Q1_RIGHT = {"NumPy": kl_numpy, "TensorFlow, via σ": kl_tf_sigmas, "keras.ops, a loop": kl_keras_ops_loop}
Q1_WRONG = {
    "the log-variance read as log σ": kl_log_sigma,
    "the ½ missing": lambda *a: 2 * kl_numpy(*a),
    "KL(p ‖ q) instead of KL(q ‖ p)": lambda mq, lq, mp, lp: kl_numpy(
        np.broadcast_to(mp, mq.shape), np.broadcast_to(lp, lq.shape), mq, lq
    ),
    "a mean over the latent dimensions": lambda mq, lq, mp, lp: (
        0.5 * np.mean(lp - lq + (np.exp(lq) + (mq - mp) ** 2) / np.exp(lp) - 1, axis=-1)
    ),
    "the standard normal prior": lambda mq, lq, mp, lp: 0.5 * np.sum(np.exp(lq) + mq**2 - 1 - lq, axis=-1),
    "Δμ² not divided by the prior's variance": lambda mq, lq, mp, lp: (
        0.5 * np.sum(lp - lq + np.exp(lq) / np.exp(lp) + (mq - mp) ** 2 - 1, axis=-1)
    ),
}


def test_the_kl_reference_is_utils_generative_kl_diag_gaussians():
    from utils import generative

    for probe in ex._kl_probes():
        np.testing.assert_allclose(ex.kl_reference(*probe), generative.kl_diag_gaussians(*probe), rtol=1e-12)
    mu, logvar = ex._kl_probes()[0][:2]
    np.testing.assert_allclose(  # the lesson's default prior is the standard normal
        ex.kl_reference(mu, logvar, 0.0, 0.0), generative.kl_diag_gaussians(mu, logvar), rtol=1e-12
    )


def test_the_kl_reference_agrees_with_monte_carlo():
    from utils import generative

    probe = ex._kl_probes()[1]
    estimate, stderr = generative.kl_monte_carlo(
        *probe, 200_000, np.random.default_rng(0), return_stderr=True
    )
    assert np.all(np.abs(estimate - ex.kl_reference(*probe)) < 5 * stderr)


def test_the_kl_reference_is_zero_for_equal_gaussians_and_positive_otherwise():
    mu, logvar, mu_p, logvar_p = ex._kl_probes()[0]
    np.testing.assert_allclose(ex.kl_reference(mu, logvar, mu, logvar), 0.0, atol=1e-12)
    assert np.all(ex.kl_reference(mu, logvar, mu_p, logvar_p) > 0)


# ---------------------------------------------------------------------------------------------
# q2: the forward process, one step per example
# ---------------------------------------------------------------------------------------------


def noisy_numpy(x0, t, noise, betas):
    abar = np.cumprod(1 - betas)[t - 1]
    shape = (-1,) + (1,) * (x0.ndim - 1)
    return np.sqrt(abar).reshape(shape) * x0 + np.sqrt(1 - abar).reshape(shape) * noise


def noisy_tf(x0, t, noise, betas):
    """tf.gather on a cumulative product, the step axis broadcast with tf.reshape."""
    abar = tf.math.cumprod(1.0 - tf.constant(betas))
    a = tf.reshape(tf.gather(abar, t - 1), [-1, 1, 1])
    return tf.sqrt(a) * x0 + tf.sqrt(1.0 - a) * noise


def noisy_loop(x0, t, noise, betas):
    """Example by example, the product built step by step."""
    out = np.empty_like(x0)
    for i, step in enumerate(t):
        keep = 1.0
        for beta in betas[:step]:
            keep *= 1 - beta
        out[i] = math.sqrt(keep) * x0[i] + math.sqrt(1 - keep) * noise[i]
    return out


def noisy_shift(shift):
    def noisy_at(x0, t, noise, betas):
        abar = np.concatenate([[1.0], np.cumprod(1 - betas)])[t + shift][:, None, None]
        return np.sqrt(abar) * x0 + np.sqrt(1 - abar) * noise

    return noisy_at


def noisy_roots(signal_root=True, noise_root=True, cumulative=True):
    def noisy_at(x0, t, noise, betas):
        a = (np.cumprod(1 - betas) if cumulative else 1 - betas)[t - 1][:, None, None]
        return (np.sqrt(a) if signal_root else a) * x0 + (np.sqrt(1 - a) if noise_root else 1 - a) * noise

    return noisy_at


Q2_RIGHT = {"NumPy": noisy_numpy, "TensorFlow": noisy_tf, "loops": noisy_loop}
Q2_WRONG = {
    "ᾱ_{t−1} instead of ᾱ_t": noisy_shift(-1),
    "ᾱ_{t+1} instead of ᾱ_t": lambda x0, t, noise, betas: noisy_numpy(x0, t + 1, noise, betas),
    "α_t = 1 − β_t instead of ᾱ_t": noisy_roots(cumulative=False),
    "the √ missing on ᾱ_t": noisy_roots(signal_root=False),
    "the √ missing on 1 − ᾱ_t": noisy_roots(noise_root=False),
}


def test_the_linear_schedule_is_utils_generative_ddpm_schedule():
    from utils import generative

    schedule = generative.ddpm_schedule(1000)
    np.testing.assert_allclose(ex.linear_betas(1000), schedule.betas, rtol=1e-12)
    np.testing.assert_allclose(ex.alpha_bars(schedule.betas)[1:], schedule.alpha_bars, rtol=1e-12)
    assert ex.alpha_bars(schedule.betas)[0] == 1.0


def test_the_forward_reference_is_utils_generative_q_sample():
    from utils import generative

    x0, t, noise, _ = ex._noisy_probe()
    schedule = generative.ddpm_schedule(40, 1e-4 * 25, 0.02 * 25)
    np.testing.assert_allclose(
        ex.noisy_reference(x0, t, noise, schedule.betas),
        generative.q_sample(x0, t, noise, schedule),
        rtol=1e-12,
    )


def test_the_cosine_schedule_matches_its_definition():
    T, s = 40, 0.008
    abar = ex.alpha_bars(ex.cosine_betas(T))
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 10, 20, 39):  # below the cap of 0.999 on β, ᾱ_t = f(t) / f(0) exactly
        assert math.isclose(abar[t], f(t) / f(0), rel_tol=1e-10)
    assert ex.cosine_betas(T).max() <= 0.999 and abar[-1] < 1e-3


def test_the_forward_reference_has_the_right_variance():
    """x_t from x0 = 0 has variance 1 − ᾱ_t; from a unit-variance x0 it keeps variance 1 (the √'s matter)."""
    rng = np.random.default_rng(0)
    betas = ex.cosine_betas(40)
    t = np.full(200_000, 25)
    x0 = rng.normal(size=(200_000, 1))
    x_t = ex.noisy_reference(x0, t, rng.normal(size=x0.shape), betas)
    assert abs(x_t.var() - 1) < 0.02


# ---------------------------------------------------------------------------------------------
# q3: the posterior q(x_{t−1} | x_t, x_0)
# ---------------------------------------------------------------------------------------------


def posterior_numpy(x0, x_t, t, betas):
    abar = np.concatenate([[1.0], np.cumprod(1 - betas)])
    beta = betas[t - 1]
    c0 = np.sqrt(abar[t - 1]) * beta / (1 - abar[t])
    ct = np.sqrt(1 - beta) * (1 - abar[t - 1]) / (1 - abar[t])
    return c0 * x0 + ct * x_t, (1 - abar[t - 1]) / (1 - abar[t]) * beta


def posterior_tf_list(x0, x_t, t, betas):
    """ᾱ_{t−1} read from the cumulative product that starts at step 1 (1 at t = 1), returned as a list."""
    abar = tf.math.cumprod(1.0 - tf.constant(betas))
    now = abar[t - 1]
    before = abar[t - 2] if t > 1 else tf.constant(1.0)
    beta = betas[t - 1]
    var = (1 - before) / (1 - now) * beta
    mean = tf.sqrt(before) * beta / (1 - now) * x0 + tf.sqrt(1 - beta) * (1 - before) / (1 - now) * x_t
    return [mean, var]


def posterior_variance_array(x0, x_t, t, betas):
    """The variance as an array of x_t's shape, every element the same: accepted."""
    mean, var = posterior_numpy(x0, x_t, t, betas)
    return mean, np.full(x_t.shape, var, dtype=np.float32)


def posterior_variant(**kw):
    return lambda x0, x_t, t, betas: ex.posterior_reference(x0, x_t, t, betas, **kw)


def posterior_beta_variance(x0, x_t, t, betas):
    mean, _ = posterior_numpy(x0, x_t, t, betas)
    return mean, betas[t - 1]


def posterior_no_prepend(x0, x_t, t, betas):
    """ᾱ_t read where ᾱ_{t−1} belongs: the cumulative product indexed by t − 1 twice."""
    abar = np.cumprod(1 - betas)
    beta, now, before = betas[t - 1], abar[t - 1], abar[t - 1]
    c0 = np.sqrt(before) * beta / (1 - now)
    ct = np.sqrt(1 - beta) * (1 - before) / (1 - now)
    return c0 * x0 + ct * x_t, (1 - before) / (1 - now) * beta


Q3_RIGHT = {
    "NumPy": posterior_numpy,
    "TensorFlow, a list": posterior_tf_list,
    "the variance as a constant array": posterior_variance_array,
}
Q3_WRONG = {
    "ᾱ_t where ᾱ_{t−1} belongs": posterior_no_prepend,
    "the two coefficients swapped": posterior_variant(swap=True),
    "the √ missing on ᾱ_{t−1}": posterior_variant(root_prev=False),
    "the √ missing on α_t": posterior_variant(root_alpha=False),
    "β_t as the variance instead of β̃_t": posterior_beta_variance,
}


def test_the_posterior_is_the_normalised_product_of_the_two_gaussians():
    """q(x_{t−1} | x_t, x_0) ∝ q(x_t | x_{t−1}) q(x_{t−1} | x_0): check the mean and variance numerically on a grid."""
    betas = ex.cosine_betas(40)
    abar = ex.alpha_bars(betas)
    for t in (2, 17, 39):
        x0, x_t = np.array([0.7]), np.array([-0.4])
        grid = np.linspace(-6, 6, 200_001)
        a = 1 - betas[t - 1]
        log_density = -((x_t[0] - math.sqrt(a) * grid) ** 2) / (2 * betas[t - 1]) - (
            (grid - math.sqrt(abar[t - 1]) * x0[0]) ** 2
        ) / (2 * (1 - abar[t - 1]))
        w = np.exp(log_density - log_density.max())
        w /= w.sum()
        mean, var = ex.posterior_reference(x0, x_t, t, betas)
        assert math.isclose((w * grid).sum(), mean[0], rel_tol=1e-6, abs_tol=1e-8)
        assert math.isclose((w * (grid - mean[0]) ** 2).sum(), var, rel_tol=1e-4)


def test_the_posterior_with_a_predicted_x0_is_the_step_of_utils_generative_ddpm_sample():
    """With x̂0 from the predicted noise, the posterior mean is the lesson's sampler's mean, step for step."""
    from utils import generative

    schedule = generative.ddpm_schedule(2, 0.1, 0.3)
    start = np.random.default_rng(0).normal(size=(3, 8, 8, 1))
    eps = np.random.default_rng(1).normal(size=(3, 8, 8, 1))

    class FirstDrawThenZeros:  # x_T = start, then no noise: x_{t−1} is exactly the sampler's mean
        calls = 0

        def standard_normal(self, shape):
            self.calls += 1
            return start.copy() if self.calls == 1 else np.zeros(shape)

    _, kept = generative.ddpm_sample(lambda x, t: eps, start.shape, schedule, FirstDrawThenZeros(), keep=(1,))
    t, abar_t = 2, schedule.alpha_bars[1]
    x0_hat = (start - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
    mean, _ = ex.posterior_reference(x0_hat, start, t, schedule.betas)
    np.testing.assert_allclose(mean, kept[1], rtol=1e-10, atol=1e-12)


def test_the_ideal_denoiser_is_exact_near_t0_and_the_data_mean_near_T():
    betas = ex.cosine_betas(100)
    data = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    np.testing.assert_allclose(
        ex.ideal_denoiser(data * math.sqrt(ex.alpha_bars(betas)[1]), 1, betas, data), data, atol=1e-6
    )
    np.testing.assert_allclose(
        ex.ideal_denoiser(np.zeros((1, 2)), 100, betas, data), [data.mean(0)], atol=1e-3
    )


# ---------------------------------------------------------------------------------------------
# q4: spherical interpolation
# ---------------------------------------------------------------------------------------------


def slerp_numpy(z0, z1, t):
    theta = np.arccos(z0 @ z1 / np.linalg.norm(z0) / np.linalg.norm(z1))
    return (np.sin((1 - t) * theta) * z0 + np.sin(t * theta) * z1) / np.sin(theta)


def slerp_tf(z0, z1, t):
    u0, u1 = tf.math.l2_normalize(z0), tf.math.l2_normalize(z1)
    theta = tf.acos(tf.reduce_sum(u0 * u1))
    return (tf.sin((1 - t) * theta) * z0 + tf.sin(t * theta) * z1) / tf.sin(theta)


def slerp_variant(how):
    return lambda z0, z1, t: ex.slerp_reference(z0, z1, t, how=how)


def slerp_unit(z0, z1, t):
    return slerp_numpy(z0 / np.linalg.norm(z0), z1 / np.linalg.norm(z1), t)


Q4_RIGHT = {"NumPy": slerp_numpy, "TensorFlow, l2_normalize": slerp_tf}
Q4_WRONG = {
    "linear interpolation": lambda z0, z1, t: z0 + t * (z1 - z0),
    "t and 1 − t swapped": lambda z0, z1, t: slerp_numpy(z0, z1, 1 - t),
    "sin θ not divided by": lambda z0, z1, t: (
        slerp_numpy(z0, z1, t) * np.sin(np.arccos(z0 @ z1 / np.linalg.norm(z0) / np.linalg.norm(z1)))
    ),
    "the lengths lost": slerp_unit,
}


def test_slerp_reference_ends_at_the_ends_and_keeps_equal_lengths():
    z0, z1 = ex._slerp_probe()
    np.testing.assert_allclose(ex.slerp_reference(z0, z1, 0.0), z0, rtol=1e-6)
    np.testing.assert_allclose(ex.slerp_reference(z0, z1, 1.0), z1, rtol=1e-6, atol=1e-6)
    u1 = z1 / np.linalg.norm(z1) * np.linalg.norm(z0)  # same length as z0: the arc keeps it
    for t in (0.2, 0.5, 0.8):
        assert math.isclose(np.linalg.norm(ex.slerp_reference(z0, u1, t)), np.linalg.norm(z0), rel_tol=1e-6)


# ---------------------------------------------------------------------------------------------
# every question: right answers pass, mistakes are named
# ---------------------------------------------------------------------------------------------

EXERCISES = {"q1": ex.q1, "q2": ex.q2, "q3": ex.q3, "q4": ex.q4}
MISTAKES = {
    "q1": ex.Q1_MISTAKES,
    "q2": ex.Q2_MISTAKES,
    "q3": ex.Q3_MISTAKES + ex.Q3_VARIANCE_MISTAKES,
    "q4": ex.Q4_MISTAKES,
}
TABLES = (
    ("q1", Q1_RIGHT, Q1_WRONG),
    ("q2", Q2_RIGHT, Q2_WRONG),
    ("q3", Q3_RIGHT, Q3_WRONG),
    ("q4", Q4_RIGHT, Q4_WRONG),
)
RIGHT = [(q, name, fn) for q, right, _ in TABLES for name, fn in right.items()]
WRONG = [(q, name, fn) for q, _, wrong in TABLES for name, fn in wrong.items()]


@pytest.mark.parametrize(("q", "name", "answer"), RIGHT, ids=[f"{q}-{n}" for q, n, _ in RIGHT])
def test_right_answers_pass(q, name, answer):
    fb = EXERCISES[q].evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(("q", "name", "answer"), WRONG, ids=[f"{q}-{n}" for q, n, _ in WRONG])
def test_each_mistake_gets_its_own_hint(q, name, answer):
    fb = EXERCISES[q].evaluate(answer)
    hint = next(m.hint for m in MISTAKES[q] if m.name == name)
    assert fb.status == "incorrect" and name in fb.got and fb.hint == hint, str(fb)


def test_every_declared_mistake_is_tested_and_hints_differ():
    tested = {(q, name) for q, name, _ in WRONG}
    for q, mistakes in MISTAKES.items():
        assert {(q, m.name) for m in mistakes} <= tested
        assert len({m.hint for m in mistakes}) == len(mistakes), f"{q}: two mistakes share a hint"


@pytest.mark.parametrize("q", EXERCISES)
def test_the_mistakes_are_told_apart_on_the_probes(q):
    """No two of a question's mistakes, nor a mistake and the right answer, give the same result, even at
    the loosest tolerance (mixed_bfloat16)."""
    from utils.checks import distance
    from utils.env import tolerance

    tol = tolerance("mixed_bfloat16")
    probe = {
        "q1": ex._kl_probes(),
        "q2": ex._noisy_probe(),
        "q3": (*ex._posterior_probe(), "mean"),
        "q4": ex._slerp_probe(),
    }[q]
    right = {"q1": ex._kl_all, "q2": ex._noisy_all, "q3": ex._posterior_all, "q4": ex._slerp_all}[q](*probe)
    mistakes = ex.Q3_MISTAKES if q == "q3" else MISTAKES[q]
    results = [right] + [m.compute(*probe) for m in mistakes]
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            assert distance(results[i], results[j], tol) > 1, (q, i, j)


def test_the_posterior_variance_is_compared_relatively():
    """β̃_t is small at the first steps: a variance of 0 at t = 2 is wrong even though it is within 1e-3."""

    def posterior(x0, x_t, t, betas):
        mean, var = posterior_numpy(x0, x_t, t, betas)
        return mean, var if t != 2 else 0.0

    fb = ex.q3.evaluate(posterior)
    assert fb.status == "incorrect" and "variances" in fb.message, str(fb)


def test_wrong_shapes_and_returns_are_explained():
    fb = ex.q1.evaluate(lambda mq, lq, mp, lp: kl_numpy(mq, lq, mp, lp)[:, None])
    assert fb.status == "incorrect" and "shape" in fb.message and "sum over the latent axis" in fb.hint, str(
        fb
    )
    fb = ex.q1.evaluate(
        lambda mq, lq, mp, lp: 0.5 * (lp - lq + (np.exp(lq) + (mq - mp) ** 2) / np.exp(lp) - 1)
    )
    assert fb.status == "incorrect" and "shape" in fb.message, str(fb)
    fb = ex.q2.evaluate(lambda x0, t, noise, betas: noisy_numpy(x0, t, noise, betas)[:, 0])
    assert fb.status == "incorrect" and "(batch, 1, 1)" in fb.hint, str(fb)
    fb = ex.q3.evaluate(lambda x0, x_t, t, betas: posterior_numpy(x0, x_t, t, betas)[0])
    assert fb.status == "incorrect" and "return mean, variance" in fb.hint, str(fb)
    fb = ex.q3.evaluate(lambda x0, x_t, t, betas: (posterior_numpy(x0, x_t, t, betas)[0], np.arange(3.0)))
    assert fb.status == "incorrect" and "one number" in fb.expected, str(fb)


# ---------------------------------------------------------------------------------------------
# placeholders, a learner's own error
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("q", EXERCISES)
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented], ids=["ellipsis", "None", "raise"])
def test_placeholders_are_not_done(q, placeholder):
    fb = EXERCISES[q].evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message, str(fb)


def test_a_posterior_that_returns_ellipsis_is_not_done():
    assert ex.q3.evaluate(lambda *a: ...).status == "not_done"


def test_a_learners_typo_is_reported_with_their_line():
    def noisy_at(x0, t, noise, betas):
        abar = np.cumprod(1 - betas)  # noqa: F841 (the typo below)
        return np.sqrt(abr[t - 1]) * x0  # noqa: F821

    fb = ex.q2.evaluate(noisy_at)
    assert fb.status == "error" and "NameError" in fb.message and "abr" in fb.message, str(fb)
    assert "Traceback" not in str(fb)


def test_an_index_error_at_step_T_is_reported_kindly():
    """Indexing the cumulative product by t itself runs off its end at t = T."""

    def posterior(x0, x_t, t, betas):
        abar = np.cumprod(1 - betas)
        return abar[t] * x0, abar[t]

    fb = ex.q3.evaluate(posterior)
    assert fb.status in ("error", "incorrect") and "Traceback" not in str(fb), str(fb)


def test_solutions_are_shown_from_the_solution_notebook():
    from utils import labs

    for q in EXERCISES:
        assert labs.solution_text("lab08a", q), q


# ---------------------------------------------------------------------------------------------
# under mixed precision (a T4: float16, a TPU: bfloat16)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "answer"),
    [
        ("q1", kl_keras_ops_loop),
        ("q1", kl_numpy),
        ("q2", noisy_tf),
        ("q3", posterior_tf_list),
        ("q4", slerp_tf),
    ],
    ids=["q1-keras.ops", "q1-NumPy", "q2-tf", "q3-tf", "q4-tf"],
)
def test_right_answers_pass_under_mixed_precision(mixed_policy, q, answer):
    fb = EXERCISES[q].evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


@pytest.mark.parametrize(("q", "name", "answer"), WRONG, ids=[f"{q}-{n}" for q, n, _ in WRONG])
def test_mistakes_do_not_pass_under_mixed_precision(mixed_policy, q, name, answer):
    fb = EXERCISES[q].evaluate(answer)
    assert fb.status == "incorrect", f"{mixed_policy}: {fb}"
