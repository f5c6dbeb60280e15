"""utils.generative: KL divergences, the DDPM schedule and forward process, the judge, the quality score,
the VAE's ELBO, and that its GAN is lesson 08's GAN."""

from __future__ import annotations

import ast
import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

import utils
from utils import generative as gen

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------- KL


def test_kl_closed_form_matches_monte_carlo_with_a_non_standard_prior():
    rng = np.random.default_rng(0)
    mu_q, logvar_q = rng.normal(size=(3, 4)), rng.normal(scale=0.5, size=(3, 4))
    mu_p, logvar_p = rng.normal(size=4), rng.normal(scale=0.5, size=4)
    exact = gen.kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p)
    estimate, stderr = gen.kl_monte_carlo(mu_q, logvar_q, mu_p, logvar_p, 200_000, rng, return_stderr=True)
    assert exact.shape == estimate.shape == (3,)
    assert np.all(np.abs(estimate - exact) < 4 * stderr)
    assert np.allclose(gen.kl_monte_carlo(mu_q, logvar_q, mu_p, logvar_p, 10, rng).shape, (3,))


def test_kl_against_the_one_dimensional_textbook_formula():
    # KL(N(m1, s1²) ‖ N(m2, s2²)) = log(s2/s1) + (s1² + (m1 − m2)²) / (2 s2²) − 1/2
    m1, s1, m2, s2 = 0.3, 0.7, -1.2, 1.9
    textbook = np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    got = gen.kl_diag_gaussians([m1], [2 * np.log(s1)], [m2], [2 * np.log(s2)])
    assert got == pytest.approx(textbook, rel=1e-12)


def test_kl_of_a_gaussian_with_itself_is_zero_and_kl_is_never_negative():
    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(50, 6)), rng.normal(size=(50, 6))
    assert np.allclose(gen.kl_diag_gaussians(mu, logvar, mu, logvar), 0.0, atol=1e-12)
    other_mu, other_logvar = rng.normal(size=(50, 6)), rng.normal(size=(50, 6))
    assert np.all(gen.kl_diag_gaussians(mu, logvar, other_mu, other_logvar) >= 0)
    assert np.all(gen.kl_diag_gaussians(mu, logvar) >= 0)  # against the standard normal prior
    assert gen.kl_diag_gaussians(np.zeros(3), np.zeros(3)) == 0.0


# ---------------------------------------------------------------------------------------------- DDPM


def test_schedule_arrays_and_their_indexing():
    schedule = gen.ddpm_schedule(1000)
    for name in ("betas", "alphas", "alpha_bars"):
        values = schedule[name]
        assert values.dtype == np.float64 and values.shape == (1000,)
    # index i holds step t = i + 1: β_1 is the first entry, and ᾱ_1 = α_1 = 1 − β_1
    assert schedule.betas[0] == 1e-4 and schedule.betas[-1] == pytest.approx(0.02)
    assert schedule.alpha_bars[0] == schedule.alphas[0] == 1 - 1e-4
    assert np.allclose(schedule.alpha_bars, np.cumprod(1 - schedule.betas), rtol=1e-15)
    assert schedule.alpha_bars[-1] < 1e-4  # ᾱ_T near 0: x_T is almost pure noise
    assert schedule.at(1) == 0 and schedule.at(1000) == 999
    np.testing.assert_array_equal(schedule.at(np.array([1, 5, 1000])), [0, 4, 999])
    for bad in (0, 1001, np.array([0, 3])):
        with pytest.raises(ValueError, match="1 to T"):
            schedule.at(bad)
    with pytest.raises(ValueError, match="whole numbers"):
        schedule.at(2.0)
    short = gen.ddpm_schedule(50, 1e-4 * 1000 / 50, 0.02 * 1000 / 50)  # fewer steps, β's scaled
    assert short.alpha_bars[-1] < 1e-3


def test_closed_form_equals_the_mean_and_variance_recursion_exactly():
    schedule = gen.ddpm_schedule(200, 5e-4, 0.1)
    x0 = np.array([0.8, -0.3, 0.0])
    mean, var = x0.copy(), np.zeros(3)
    for t in range(1, schedule.T + 1):
        i = schedule.at(t)
        mean = np.sqrt(schedule.alphas[i]) * mean  # E[x_t] = √α_t E[x_{t−1}]
        var = schedule.alphas[i] * var + schedule.betas[i]  # Var[x_t] = α_t Var[x_{t−1}] + β_t
        # q_sample with noise 0 is the mean; its noise coefficient squared is the variance
        np.testing.assert_allclose(gen.q_sample(x0, t, np.zeros(3), schedule), mean, rtol=1e-12, atol=1e-15)
        one = gen.q_sample(np.zeros(3), t, np.ones(3), schedule)
        np.testing.assert_allclose(one**2, var, rtol=1e-12)


def test_closed_form_equals_iterated_noising_in_distribution():
    schedule = gen.ddpm_schedule(40, 1e-4 * 25, 0.02 * 25)
    rng = np.random.default_rng(2)
    n, x0 = 40_000, np.array([0.9, -0.5])
    for t in (1, 7, 40):
        iterated = np.broadcast_to(x0, (n, 2)).copy()
        for s in range(1, t + 1):
            iterated = gen.q_step(iterated, s, rng.standard_normal((n, 2)), schedule)
        closed = gen.q_sample(np.broadcast_to(x0, (n, 2)), t, rng.standard_normal((n, 2)), schedule)
        a_bar = schedule.alpha_bars[t - 1]
        for sample in (iterated, closed):
            se_mean = np.sqrt((1 - a_bar) / n)
            assert np.all(np.abs(sample.mean(0) - np.sqrt(a_bar) * x0) < 5 * se_mean + 1e-12)
            np.testing.assert_allclose(sample.var(0), 1 - a_bar, rtol=0.05, atol=1e-6)


def test_q_sample_takes_one_step_per_example():
    schedule = gen.ddpm_schedule(10, 1e-3, 0.2)
    x0 = np.ones((3, 8, 8, 1))
    noise = np.full_like(x0, 0.5)
    t = np.array([1, 4, 10])
    batch = gen.q_sample(x0, t, noise, schedule)
    for row in range(3):
        np.testing.assert_allclose(batch[row], gen.q_sample(x0[row], t[row], noise[row], schedule))
    a_bar = schedule.alpha_bars[t - 1]
    np.testing.assert_allclose(batch[:, 0, 0, 0], np.sqrt(a_bar) + 0.5 * np.sqrt(1 - a_bar))


def test_ancestral_sampling_with_the_ideal_noise_predictor_recovers_a_single_data_point():
    # If the data is one point x0, the ideal ε̂(x_t, t) = (x_t − √ᾱ_t x0) / √(1 − ᾱ_t), and the last
    # step (t = 1, no added noise) lands exactly on x0.
    schedule = gen.ddpm_schedule(30, 3e-3, 0.6)
    x0 = np.linspace(-1, 1, 64).reshape(1, 8, 8, 1)

    def ideal(x, t):
        a_bar = schedule.alpha_bars[t - 1].reshape(-1, 1, 1, 1)
        return (x - np.sqrt(a_bar) * x0) / np.sqrt(1 - a_bar)

    result, kept = gen.ddpm_sample(ideal, (4, 8, 8, 1), schedule, np.random.default_rng(0), keep=(30, 15, 0))
    np.testing.assert_allclose(result, np.broadcast_to(x0, (4, 8, 8, 1)), atol=1e-4)
    assert sorted(kept) == [0, 15, 30] and np.array_equal(kept[0], result)


@pytest.mark.slow
@pytest.mark.parametrize("mixed_policy", ["mixed_bfloat16"], indirect=True)  # float16: the VAE test below
def test_denoiser_under_mixed_precision(mixed_policy):
    keras.utils.set_random_seed(0)
    model = gen.build_denoiser(20, hidden=32, n_blocks=1)
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    t = np.arange(1, 17, dtype="int32")
    out = model([x, t])
    assert out.dtype == "float32" and tuple(out.shape) == (16, 8, 8, 1)
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    history = model.fit([x, t], x, epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


# ---------------------------------------------------------------------------------------------- judge and score


class _FixedJudge:
    """Stands in for a judge: its 'logits' pick class = the first pixel's integer value."""

    def predict(self, images, batch_size=None, verbose=0):
        return np.eye(10)[np.asarray(images)[:, 0, 0, 0].astype(int)]


def test_effective_classes_and_class_histogram():
    assert gen.effective_classes(np.eye(10)[3]) == 1.0
    assert gen.effective_classes(np.full(10, 0.1)) == pytest.approx(10.0)
    assert gen.effective_classes([0.5, 0.5, 0, 0]) == pytest.approx(2.0)
    images = np.zeros((8, 8, 8, 1))
    images[:, 0, 0, 0] = [0, 0, 1, 1, 2, 2, 2, 2]
    hist = gen.class_histogram(_FixedJudge(), images)
    np.testing.assert_allclose(hist, [0.25, 0.25, 0.5] + [0] * 7)


def test_frechet_distance_known_values():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(500, 5))
    assert gen.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([3.0, 0, 0, 0, 0])
    assert gen.frechet_distance(a, a + shift) == pytest.approx(9.0, rel=1e-8)  # same covariance: ‖Δμ‖²
    one = rng.normal(size=(1000, 1))
    one = one - one.mean()
    # N(0, s²) against N(0, 4 s²): s² + 4 s² − 2 · 2 s² = s²
    assert gen.frechet_distance(one, 2 * one) == pytest.approx(one.var(ddof=1), rel=1e-8)
    b = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    from scipy import linalg

    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        cov_a + cov_b - 2 * np.real(linalg.sqrtm(cov_a @ cov_b))
    )
    assert gen.frechet_distance(a, b) == pytest.approx(reference, rel=1e-6)


def _digits(n=None):
    (x, y), (x_test, y_test) = utils.data.load_digits()
    real = (x[..., None] * 2 - 1).astype("float32")
    return (real[:n], y[:n]) if n else (real, y)


@pytest.mark.slow
def test_the_judge_learns_and_its_score_ranks_noise_last():
    real, labels = _digits()
    judge = gen.train_judge(real, labels, epochs=3, seed=0)
    assert judge.layers[-1].dtype_policy.compute_dtype == "float32"
    features = gen.judge_features(judge, real[:100])
    assert features.shape == (100, 64) and features.dtype == np.float64
    noise = np.random.default_rng(0).uniform(-1, 1, real[:500].shape).astype("float32")
    same = gen.judge_frechet_distance(judge, real[:700], real[:700])
    fresh = gen.judge_frechet_distance(judge, real[700:], real[:700])
    assert same == pytest.approx(0.0, abs=1e-6)
    assert fresh < gen.judge_frechet_distance(judge, noise, real[:700])


# ---------------------------------------------------------------------------------------------- VAE


def test_elbo_terms_follow_their_formula():
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(5, 8, 8, 1)).astype("float32")
    x_mean = rng.uniform(size=(5, 8, 8, 1)).astype("float32")
    mu, logvar = rng.normal(size=(5, 2)), rng.normal(scale=0.3, size=(5, 2))
    sigma = 0.2
    terms = {
        k: keras.ops.convert_to_numpy(v) for k, v in gen.elbo_terms(x, x_mean, mu, logvar, sigma).items()
    }
    diff = (x - x_mean).reshape(5, -1).astype(np.float64)
    nll = (diff**2).sum(1) / (2 * sigma**2) + 32 * np.log(2 * np.pi * sigma**2)
    np.testing.assert_allclose(terms["reconstruction"], nll, rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], gen.kl_diag_gaussians(mu, logvar), rtol=1e-5)
    np.testing.assert_allclose(terms["elbo"], -(nll + gen.kl_diag_gaussians(mu, logvar)), rtol=1e-5)


def test_vae_training_loss_is_minus_the_mean_elbo():
    vae = gen.build_vae(latent_dim=2, hidden=16, sigma=0.1, seed=0)
    x = (_digits(32)[0] + 1) / 2
    y_pred = vae(x)
    mu, logvar, z, x_mean = (keras.ops.convert_to_numpy(v) for v in y_pred)
    assert mu.shape == logvar.shape == z.shape == (32, 2) and x_mean.shape == (32, 8, 8, 1)
    terms = gen.elbo_terms(x, x_mean, mu, logvar, 0.1)
    loss = float(vae.compute_loss(x=x, y_pred=y_pred))
    assert loss == pytest.approx(-float(np.mean(keras.ops.convert_to_numpy(terms["elbo"]))), rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "mixed_policy", ["mixed_float16"], indirect=True
)  # exp(logvar) in float16: the risky one
def test_vae_and_autoencoder_train_under_mixed_precision(mixed_policy):
    x = (_digits(256)[0] + 1) / 2
    keras.utils.set_random_seed(0)
    vae = gen.build_vae(latent_dim=2, hidden=32, sigma=0.1, seed=0)
    vae.compile(keras.optimizers.Adam(2e-3))
    losses = vae.fit(x, epochs=3, batch_size=64, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    mu, logvar, z, x_mean = vae(x[:4])
    assert mu.dtype == logvar.dtype == x_mean.dtype == "float32"
    encoder, decoder, autoencoder = gen.build_autoencoder(2, hidden=32)
    autoencoder.compile(keras.optimizers.Adam(2e-3), "mse")
    assert np.isfinite(autoencoder.fit(x, x, epochs=1, batch_size=64, verbose=0).history["loss"][-1])
    assert encoder(x[:4]).dtype == decoder(np.zeros((4, 2), "float32")).dtype == "float32"


# ---------------------------------------------------------------------------------------------- the GAN of lesson 08


def _lesson08_gan(real_images, seed):
    """Lesson 08's own GAN code, taken from its cells, defined (not run) in a fresh namespace."""
    cells = json.loads((ROOT / "notebooks" / "08_generative_models.ipynb").read_text(encoding="utf-8"))[
        "cells"
    ]
    by_id = {c["id"]: "".join(c["source"]) for c in cells}
    namespace = {
        "keras": keras,
        "tf": tf,
        "np": np,
        "utils": utils,
        "cfg": SimpleNamespace(seed=seed),
        "real_images": real_images,
        "judge": None,
        "class_histogram": lambda judge, images: np.full(10, 0.1),
        "effective_classes": gen.effective_classes,
    }
    for cell_id in ("l08-36", "l08-38"):
        tree = ast.parse(by_id[cell_id])
        keep = [  # definitions only: the cells' training runs and figures are left out
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom)
            or (isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) in {"noise_dim", "bce"})
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(ast.Module(keep, []), cell_id, "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.slow
def test_the_gan_is_lesson_08s_gan():
    real = _digits(192)[0]
    lesson = _lesson08_gan(real, seed=5)
    assert lesson["noise_dim"] == gen.NOISE_DIM
    for minibatch_std in (False, True):
        pairs = [
            (lesson["build_generator"](), gen.build_generator()),
            (lesson["build_discriminator"](minibatch_std), gen.build_discriminator(minibatch_std)),
        ]
        for theirs, ours in pairs:
            assert [type(layer).__name__ for layer in theirs.layers] == [
                type(layer).__name__ for layer in ours.layers
            ]
            assert [w.shape for w in theirs.get_weights()] == [w.shape for w in ours.get_weights()]
    g_theirs, d_theirs, log_theirs = lesson["train_gan"](1)
    g_ours, d_ours, log_ours = gen.train_gan(real, 1, seed=5)
    for theirs, ours in ((g_theirs, g_ours), (d_theirs, d_ours)):
        for a, b in zip(theirs.get_weights(), ours.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_theirs["snapshots"][0], log_ours["snapshots"][0], atol=1e-5)
    assert log_theirs["d_loss"] == pytest.approx(log_ours["d_loss"], rel=1e-5)
