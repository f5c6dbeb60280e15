"""Generative models of the 8×8 digits: the reference copies for lessons 08 and 08a and lab 08a.

* The **judge** of lesson 08, shared by lesson 08a: :func:`train_judge` (a small CNN classifier of the
  real digits), :func:`class_histogram`, :func:`effective_classes`, and a sample-quality score,
  :func:`judge_frechet_distance` (the Fréchet distance between the judge's penultimate-layer features
  of two sets of images; :func:`frechet_distance` is the formula on any two feature sets).
* **Gaussians**: :func:`kl_diag_gaussians`, the closed-form KL divergence of two diagonal Gaussians
  given by their means and **log-variances**, and :func:`kl_monte_carlo`, the same by sampling.
* The **VAE**: :func:`elbo_terms` (reconstruction and KL per example, in nats, under a Gaussian
  likelihood of fixed standard deviation ``sigma``) and :class:`VAE`, whose training loss uses it.
* **DDPM**: :func:`ddpm_schedule` (β, α, ᾱ; **array index i holds step t = i + 1**),
  :func:`q_sample` (the forward process in closed form), :func:`q_step` (one step of it),
  :func:`build_denoiser` (a small noise-prediction network) and :func:`ddpm_sample` (ancestral sampling).
* The **GAN** of lesson 08, unchanged: :func:`build_generator`, :func:`build_discriminator` (with
  :class:`MinibatchStdDev`), :func:`loss_scaled` and :func:`train_gan`.

Images are (N, 8, 8, 1): in [-1, 1] for the judge, the GAN and the DDPM, in [0, 1] for the
autoencoder and the VAE (the docstrings say which). NumPy results are float64 unless stated.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

__all__ = [
    "NOISE_DIM",
    "DDPMSchedule",
    "MinibatchStdDev",
    "TimeEmbedding",
    "VAE",
    "build_autoencoder",
    "build_denoiser",
    "build_discriminator",
    "build_generator",
    "build_judge",
    "build_vae",
    "class_histogram",
    "ddpm_sample",
    "ddpm_schedule",
    "effective_classes",
    "elbo_terms",
    "frechet_distance",
    "gaussian_log_density",
    "judge_features",
    "judge_frechet_distance",
    "kl_diag_gaussians",
    "kl_monte_carlo",
    "loss_scaled",
    "q_sample",
    "q_step",
    "train_gan",
    "train_judge",
]

#: The GAN's noise size, as in lesson 08.
NOISE_DIM = 16


# ----------------------------------------------------------------------------------------------
# The judge (lesson 08)
# ----------------------------------------------------------------------------------------------


def build_judge() -> keras.Model:
    """Return lesson 08's judge, untrained: a small CNN, (N, 8, 8, 1) in [-1, 1] -> 10 float32 logits."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, dtype="float32"),  # float32 logits under every precision
        ],
        name="judge",
    )


def train_judge(images: Any, labels: Any, *, epochs: int, seed: int = 0) -> keras.Model:
    """Return the judge trained ``epochs`` epochs (batches of 32, Adam) on ``images`` (N, 8, 8, 1) in [-1, 1].

    Lesson 08's recipe: seeded with ``keras.utils.set_random_seed(seed)``, sparse cross-entropy on
    the logits, accuracy as its metric (so ``judge.evaluate`` returns ``[loss, accuracy]``).
    """
    keras.utils.set_random_seed(seed)
    judge = build_judge()
    judge.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    judge.fit(images, labels, epochs=epochs, batch_size=32, verbose=0)
    return judge


def class_histogram(judge: keras.Model, images: Any) -> np.ndarray:
    """Return the fraction of ``images`` (N, 8, 8, 1) in [-1, 1] the judge assigns to each digit."""
    predicted = np.argmax(judge.predict(images, batch_size=512, verbose=0), axis=1)
    return np.bincount(predicted, minlength=10) / len(predicted)


def effective_classes(histogram: Any) -> float:
    """Return exp(entropy) of a class histogram: 1 (a single class) to 10 (all ten equally often)."""
    h = np.asarray(histogram)[np.asarray(histogram) > 0]
    return float(np.exp(-(h * np.log(h)).sum()))


_FEATURE_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def judge_features(judge: keras.Model, images: Any) -> np.ndarray:
    """Return the judge's penultimate-layer activations (N, 64) of ``images`` in [-1, 1], float64."""
    if judge not in _FEATURE_MODELS:  # one feature model per judge, so predict is traced once
        _FEATURE_MODELS[judge] = keras.Model(judge.inputs, judge.layers[-2].output)
    out = _FEATURE_MODELS[judge].predict(np.asarray(images, dtype="float32"), batch_size=512, verbose=0)
    return np.asarray(out, dtype=np.float64)


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Return the Fréchet distance between Gaussians fitted to two feature sets (rows are examples).

    ``‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})``: the squared 2-Wasserstein distance between
    the two fitted Gaussians (the formula of FID, here on any features). 0 for identical sets. The
    trace of the matrix square root is computed as Σ √λ over the eigenvalues λ of the symmetric
    ``Σ_a^{1/2} Σ_b Σ_a^{1/2}``, which has the same eigenvalues as ``Σ_a Σ_b``.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)
    return max(value, 0.0)


def judge_frechet_distance(judge: keras.Model, images: Any, reference: Any) -> float:
    """Return the Fréchet distance between the judge's features of ``images`` and of ``reference``.

    Both are (N, 8, 8, 1) in [-1, 1]. Lower is closer. It compares only the first two moments of
    64 features a small classifier learned; it cannot see memorisation (the training set itself
    scores about as well as fresh digits) and it is biased upwards for small sets.
    """
    return frechet_distance(judge_features(judge, images), judge_features(judge, reference))


# ----------------------------------------------------------------------------------------------
# Gaussians and the KL divergence
# ----------------------------------------------------------------------------------------------


def kl_diag_gaussians(mu_q: Any, logvar_q: Any, mu_p: Any = 0.0, logvar_p: Any = 0.0) -> np.ndarray:
    """Return KL(q ‖ p) of two diagonal Gaussians, summed over the last axis, in nats (float64).

    ``q = N(mu_q, exp(logvar_q))`` and ``p = N(mu_p, exp(logvar_p))``, given by **log-variances**;
    the default ``p`` is the standard normal prior. Per dimension the closed form is
    ``½ [logvar_p − logvar_q + (exp(logvar_q) + (mu_q − mu_p)²) / exp(logvar_p) − 1]``.
    """
    mu_q, logvar_q = np.asarray(mu_q, np.float64), np.asarray(logvar_q, np.float64)
    mu_p, logvar_p = np.asarray(mu_p, np.float64), np.asarray(logvar_p, np.float64)
    per_dim = 0.5 * (logvar_p - logvar_q + (np.exp(logvar_q) + (mu_q - mu_p) ** 2) / np.exp(logvar_p) - 1.0)
    per_dim = np.broadcast_to(per_dim, np.broadcast_shapes(mu_q.shape, logvar_q.shape, per_dim.shape))
    return per_dim.sum(axis=-1)


def gaussian_log_density(z: Any, mu: Any, logvar: Any) -> np.ndarray:
    """Return log N(z; mu, exp(logvar)) of a diagonal Gaussian, summed over the last axis (float64)."""
    z, mu, logvar = (np.asarray(v, np.float64) for v in (z, mu, logvar))
    per_dim = -0.5 * (np.log(2 * np.pi) + logvar + (z - mu) ** 2 / np.exp(logvar))
    return np.broadcast_to(per_dim, np.broadcast_shapes(z.shape, mu.shape, logvar.shape)).sum(axis=-1)


def kl_monte_carlo(
    mu_q: Any,
    logvar_q: Any,
    mu_p: Any,
    logvar_p: Any,
    n_samples: int,
    rng: np.random.Generator,
    *,
    return_stderr: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Return a Monte Carlo estimate of KL(q ‖ p): the mean of ``log q(z) − log p(z)`` over ``z ~ q``.

    Same arguments and result shape as :func:`kl_diag_gaussians`, estimated from ``n_samples`` draws
    ``z = mu_q + exp(logvar_q / 2) · ε`` with ``ε`` from ``rng``. With ``return_stderr=True``, returns
    ``(estimate, standard_error)``, the standard error being the samples' standard deviation / √n.
    """
    mu_q, logvar_q = np.asarray(mu_q, np.float64), np.asarray(logvar_q, np.float64)
    shape = np.broadcast_shapes(mu_q.shape, logvar_q.shape, np.shape(mu_p), np.shape(logvar_p))
    eps = rng.standard_normal((n_samples, *shape))
    z = mu_q + np.exp(0.5 * logvar_q) * eps
    log_ratio = gaussian_log_density(z, mu_q, logvar_q) - gaussian_log_density(z, mu_p, logvar_p)
    estimate = log_ratio.mean(axis=0)
    if return_stderr:
        return estimate, log_ratio.std(axis=0, ddof=1) / math.sqrt(n_samples)
    return estimate


# ----------------------------------------------------------------------------------------------
# Autoencoder and VAE (pixels in [0, 1])
# ----------------------------------------------------------------------------------------------


def build_autoencoder(latent_dim: int = 2, hidden: int = 128) -> tuple[keras.Model, keras.Model, keras.Model]:
    """Return ``(encoder, decoder, autoencoder)``: 8×8 images in [0, 1] -> ``latent_dim`` codes -> images.

    Dense layers (64 -> hidden -> hidden/2 -> code and back); the decoder ends in a float32 sigmoid.
    """
    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden // 2, activation="relu"),
            keras.layers.Dense(latent_dim, dtype="float32"),  # the bottleneck, float32
        ],
        name="encoder",
    )
    decoder = _decoder(latent_dim, hidden, "decoder")
    inputs = keras.Input((8, 8, 1))
    autoencoder = keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")
    return encoder, decoder, autoencoder


def _decoder(latent_dim: int, hidden: int, name: str) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(hidden // 2, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(64, activation="sigmoid", dtype="float32"),
            keras.layers.Reshape((8, 8, 1), dtype="float32"),  # a float16 Reshape would cast back
        ],
        name=name,
    )


def elbo_terms(x: Any, x_mean: Any, mu: Any, logvar: Any, sigma: float) -> dict[str, Any]:
    """Return the VAE's per-example ``{"reconstruction", "kl", "elbo"}`` in nats (float32 tensors).

    The likelihood is a **Gaussian with fixed standard deviation** ``sigma`` around the decoder's
    mean ``x_mean`` (pixels in [0, 1]); with D pixels,
    ``reconstruction = −log p(x | z) = Σ (x − x_mean)² / (2σ²) + (D/2) log(2πσ²)``,
    ``kl = KL(N(mu, exp(logvar)) ‖ N(0, I)) = ½ Σ (exp(logvar) + mu² − 1 − logvar)``,
    and ``elbo = −(reconstruction + kl)``, a lower bound on ``log p(x)`` (one sample of z).
    """
    ops = keras.ops
    x = ops.reshape(ops.cast(x, "float32"), (ops.shape(x)[0], -1))
    x_mean = ops.reshape(ops.cast(x_mean, "float32"), (ops.shape(x_mean)[0], -1))
    mu, logvar = ops.cast(mu, "float32"), ops.cast(logvar, "float32")
    d = ops.cast(ops.shape(x)[1], "float32")
    reconstruction = ops.sum(ops.square(x - x_mean), axis=1) / (2 * sigma**2) + 0.5 * d * math.log(
        2 * math.pi * sigma**2
    )
    kl = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mu) - 1.0 - logvar, axis=1)
    return {"reconstruction": reconstruction, "kl": kl, "elbo": -(reconstruction + kl)}


class VAE(keras.Model):
    """A variational autoencoder; ``fit`` minimises the mean over the batch of −ELBO (:func:`elbo_terms`).

    ``encoder``: images -> ``2 * latent_dim`` numbers, the posterior means then log-variances.
    ``decoder``: codes -> pixel means in [0, 1]. Calling the model returns ``(mu, logvar, z, x_mean)``
    with ``z = mu + exp(logvar / 2) · ε`` (the reparameterisation trick) and a fresh ``ε``.
    """

    def __init__(
        self, encoder: keras.Model, decoder: keras.Model, sigma: float, seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.sigma = encoder, decoder, float(sigma)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def encode(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        """Return the posterior's ``(mu, logvar)`` for images ``x`` (float32)."""
        stats = keras.ops.cast(self.encoder(x, training=training), "float32")
        mu, logvar = keras.ops.split(stats, 2, axis=-1)
        return mu, logvar

    def call(self, x: Any, training: bool = False) -> tuple[Any, Any, Any, Any]:
        mu, logvar = self.encode(x, training=training)
        eps = keras.random.normal(keras.ops.shape(mu), seed=self.seed_generator)
        z = mu + keras.ops.exp(0.5 * logvar) * eps
        return mu, logvar, z, keras.ops.cast(self.decoder(z, training=training), "float32")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):  # noqa: ANN001
        """Return the training loss: the batch mean of reconstruction + KL (= −ELBO), in nats."""
        if y_pred is None:
            y_pred = self(x, training=training)
        mu, logvar, _, x_mean = y_pred
        terms = elbo_terms(x, x_mean, mu, logvar, self.sigma)
        return keras.ops.mean(terms["reconstruction"] + terms["kl"])


def build_vae(latent_dim: int = 2, hidden: int = 128, sigma: float = 0.1, seed: int = 0) -> VAE:
    """Return a :class:`VAE` on 8×8 images in [0, 1] with dense encoder and decoder, built and ready to compile."""
    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden // 2, activation="relu"),
            keras.layers.Dense(2 * latent_dim, dtype="float32"),  # means and log-variances, float32
        ],
        name="vae_encoder",
    )
    vae = VAE(encoder, _decoder(latent_dim, hidden, "vae_decoder"), sigma, seed=seed, name="vae")
    vae(np.zeros((1, 8, 8, 1), "float32"))  # build the weights
    return vae


# ----------------------------------------------------------------------------------------------
# DDPM (pixels in [-1, 1])
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DDPMSchedule:
    """The noise schedule of a DDPM with T steps, float64 arrays of length T.

    **Array index i holds step t = i + 1**: ``betas[0]`` is β_1 and ``alpha_bars[T - 1]`` is ᾱ_T.
    Use :meth:`at` (``schedule.at(t)`` is the index ``t - 1``, checked) rather than indexing by t.
    ``schedule["betas"]`` works as for a dict.
    """

    betas: np.ndarray
    alphas: np.ndarray
    alpha_bars: np.ndarray

    @property
    def T(self) -> int:  # noqa: N802 (the paper's name)
        """The number of steps."""
        return len(self.betas)

    def at(self, t: Any) -> np.ndarray:
        """Return the array index of step(s) ``t`` in 1..T, i.e. ``t - 1``; ValueError outside 1..T."""
        t = np.asarray(t)
        if not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"steps t must be whole numbers 1..{self.T}, got dtype {t.dtype}")
        if t.size and (t.min() < 1 or t.max() > self.T):
            raise ValueError(
                f"steps t run from 1 to T = {self.T} (array index t - 1); got {t.min()}..{t.max()}. "
                "Step 0 is the clean image: it has no β."
            )
        return t - 1

    def __getitem__(self, name: str) -> np.ndarray:
        return getattr(self, name)


def ddpm_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> DDPMSchedule:  # noqa: N803
    """Return DDPM's linear schedule: β_t from ``beta_start`` to ``beta_end``, α_t = 1 − β_t, ᾱ_t = Π_{s≤t} α_s.

    Arrays of length T, float64; **index i holds step t = i + 1** (see :class:`DDPMSchedule`).
    Ho et al. (2020) use T = 1000 with the defaults; with fewer steps scale both β's by 1000 / T,
    so that ᾱ_T is still near 0.
    """
    betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    alphas = 1.0 - betas
    return DDPMSchedule(betas=betas, alphas=alphas, alpha_bars=np.cumprod(alphas))


def _per_example(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Reshape (batch,) or () values to broadcast against ``like`` (batch, ...)."""
    values = np.asarray(values, np.float64)
    return values.reshape(values.shape + (1,) * (like.ndim - values.ndim))


def q_sample(x0: Any, t: Any, noise: Any, schedule: DDPMSchedule) -> np.ndarray:
    """Return x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise, the forward process in closed form (float64).

    ``t`` is a whole step in 1..T, one for all of ``x0`` or one per example (shape (batch,));
    ``noise`` has the shape of ``x0``.
    """
    x0 = np.asarray(x0, np.float64)
    a_bar = _per_example(schedule.alpha_bars[schedule.at(t)], x0)
    return np.sqrt(a_bar) * x0 + np.sqrt(1.0 - a_bar) * np.asarray(noise, np.float64)


def q_step(x_prev: Any, t: Any, noise: Any, schedule: DDPMSchedule) -> np.ndarray:
    """Return x_t = √α_t · x_{t−1} + √β_t · noise, one step of the forward process (float64)."""
    x_prev = np.asarray(x_prev, np.float64)
    i = schedule.at(t)
    alpha, beta = _per_example(schedule.alphas[i], x_prev), _per_example(schedule.betas[i], x_prev)
    return np.sqrt(alpha) * x_prev + np.sqrt(beta) * np.asarray(noise, np.float64)


class TimeEmbedding(keras.layers.Layer):
    """Sinusoidal features of the step t: (batch,) or (batch, 1) whole steps -> (batch, dim), float32."""

    def __init__(self, dim: int, T: int, **kwargs: Any) -> None:  # noqa: N803
        kwargs.setdefault("dtype", "float32")  # sin of large arguments needs float32
        super().__init__(**kwargs)
        self.dim, self.T = dim, T

    def call(self, t: Any) -> Any:
        t = keras.ops.reshape(keras.ops.cast(t, "float32"), (-1, 1))
        freqs = keras.ops.exp(
            -math.log(1000.0) * keras.ops.arange(self.dim // 2, dtype="float32") / (self.dim // 2)
        )
        angles = t * freqs[None, :]
        return keras.ops.concatenate([keras.ops.sin(angles), keras.ops.cos(angles)], axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dim": self.dim, "T": self.T}


def build_denoiser(T: int, hidden: int = 256, n_blocks: int = 3, time_dim: int = 32) -> keras.Model:  # noqa: N803
    """Return a noise-prediction network ε_θ(x_t, t): ``[x_t (N, 8, 8, 1), t (N,) int]`` -> ε̂ (N, 8, 8, 1).

    An MLP on the 64 pixels: each block adds a projection of the step's sinusoidal embedding and has a
    residual connection; the output layer is float32.
    """
    x_in = keras.Input((8, 8, 1), name="x_t")
    t_in = keras.Input((), dtype="int32", name="t")
    emb = TimeEmbedding(time_dim, T, name="time_embedding")(t_in)
    emb = keras.layers.Dense(hidden, activation="silu")(emb)
    h = keras.layers.Dense(hidden)(keras.layers.Flatten()(x_in))
    for _ in range(n_blocks):
        u = keras.layers.Add()([h, keras.layers.Dense(hidden)(emb)])
        u = keras.layers.Dense(hidden, activation="silu")(keras.layers.Activation("silu")(u))
        h = keras.layers.Add()([h, keras.layers.Dense(hidden)(u)])
    out = keras.layers.Dense(64, dtype="float32")(keras.layers.Activation("silu")(h))
    return keras.Model([x_in, t_in], keras.layers.Reshape((8, 8, 1), dtype="float32")(out), name="denoiser")


def ddpm_sample(
    predict_noise: Callable[[np.ndarray, np.ndarray], Any],
    shape: Sequence[int],
    schedule: DDPMSchedule,
    rng: np.random.Generator,
    keep: Sequence[int] = (),
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Ancestral sampling: return ``(x_0, {t: x_t for t in keep})``, starting from x_T ~ N(0, I).

    ``predict_noise(x_t, t)`` returns ε̂ for a batch x_t and its steps t (int32, shape (batch,)).
    Each step, for t = T, ..., 1 (z ~ N(0, I), and z = 0 at t = 1):
    x_{t−1} = (x_t − β_t / √(1 − ᾱ_t) · ε̂) / √α_t + σ_t z, with σ_t² = β_t.
    ``keep`` may hold T (the starting noise) and 0 (the result).
    """
    x = rng.standard_normal(tuple(shape))
    kept = {schedule.T: x.copy()} if schedule.T in keep else {}
    for t in range(schedule.T, 0, -1):
        i = t - 1  # array index of step t
        beta, alpha, alpha_bar = schedule.betas[i], schedule.alphas[i], schedule.alpha_bars[i]
        eps_hat = np.asarray(predict_noise(x.astype(np.float32), np.full(len(x), t, np.int32)), np.float64)
        mean = (x - beta / np.sqrt(1.0 - alpha_bar) * eps_hat) / np.sqrt(alpha)
        z = rng.standard_normal(x.shape) if t > 1 else 0.0
        x = mean + np.sqrt(beta) * z
        if t - 1 in keep:
            kept[t - 1] = x.copy()
    return x, kept


# ----------------------------------------------------------------------------------------------
# The GAN of lesson 08 (images in [-1, 1])
# ----------------------------------------------------------------------------------------------


class MinibatchStdDev(keras.layers.Layer):
    """Append one constant feature map: the standard deviation across the batch, averaged over everything."""

    def call(self, x):  # noqa: ANN001, ANN201
        spread = keras.ops.mean(keras.ops.std(x, axis=0))  # one number for the whole batch
        return keras.ops.concatenate([x, keras.ops.ones_like(x[..., :1]) * spread], axis=-1)


def build_generator(noise_dim: int = NOISE_DIM) -> keras.Model:
    """Return lesson 08's DCGAN-style generator: noise (N, noise_dim) -> images (N, 8, 8, 1) in [-1, 1]."""
    return keras.Sequential(
        [
            keras.Input((noise_dim,)),
            keras.layers.Dense(4 * 4 * 64),
            keras.layers.BatchNormalization(),
            keras.layers.LeakyReLU(0.2),
            keras.layers.Reshape((4, 4, 64)),
            keras.layers.Conv2DTranspose(32, 4, strides=2, padding="same"),  # 4x4 -> 8x8
            keras.layers.BatchNormalization(),
            keras.layers.LeakyReLU(0.2),
            keras.layers.Conv2D(1, 3, padding="same", activation="tanh", dtype="float32"),
        ],
        name="generator",
    )


def build_discriminator(minibatch_std: bool = False) -> keras.Model:
    """Return lesson 08's discriminator: images (N, 8, 8, 1) -> one float32 logit, "real" when high."""
    layers = [
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False),  # 8x8 -> 4x4
        keras.layers.LeakyReLU(0.2),
        keras.layers.Conv2D(64, 3, strides=2, padding="same", use_bias=False),  # 4x4 -> 2x2
        keras.layers.LeakyReLU(0.2),
    ]
    if minibatch_std:
        layers.append(MinibatchStdDev(dtype="float32"))  # a spread near 0 needs float32's precision
    layers += [keras.layers.Flatten(), keras.layers.Dense(1, dtype="float32")]
    return keras.Sequential(layers, name="discriminator")


def loss_scaled(optimizer: Any, variables: Any) -> Any:
    """Return ``optimizer``, wrapped in a LossScaleOptimizer under float16, built for ``variables``."""
    from utils import env

    if env.compute_dtype() == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(variables)  # built before tracing, so scale_loss reads the current scale
    return optimizer


def train_gan(
    real_images: Any,
    epochs: int,
    *,
    minibatch_std: bool = False,
    seed: int = 0,
    judge: keras.Model | None = None,
    noise_dim: int = NOISE_DIM,
) -> tuple[keras.Model, keras.Model, dict[str, list]]:
    """Train lesson 08's GAN on ``real_images`` (N, 8, 8, 1) in [-1, 1]; return (generator, discriminator, log).

    The same models, optimisers, batches (64, shuffled with ``seed``), losses and order of random draws
    as lesson 08's ``train_gan``, so the same seed gives the same weights. The log holds, per epoch,
    the last batch's losses, 8 samples from a fixed noise batch and, when a ``judge`` is given, the
    effective number of classes of 500 samples (else nan).
    """
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    generator, discriminator = build_generator(noise_dim), build_discriminator(minibatch_std)
    g_opt = loss_scaled(keras.optimizers.Adam(2e-3, beta_1=0.5), generator.trainable_variables)
    d_opt = loss_scaled(keras.optimizers.Adam(2e-4, beta_1=0.5), discriminator.trainable_variables)

    @tf.function
    def train_step(real):  # noqa: ANN001, ANN202
        n = tf.shape(real)[0]
        with tf.GradientTape() as tape:
            fake = generator(tf.random.normal((n, noise_dim)), training=True)
            real_logits = discriminator(real, training=True)
            fake_logits = discriminator(fake, training=True)
            d_loss = bce(tf.ones_like(real_logits), real_logits) + bce(
                tf.zeros_like(fake_logits), fake_logits
            )
            scaled = d_opt.scale_loss(d_loss)
        d_opt.apply(
            tape.gradient(scaled, discriminator.trainable_variables), discriminator.trainable_variables
        )
        with tf.GradientTape() as tape:
            fake_logits = discriminator(
                generator(tf.random.normal((n, noise_dim)), training=True), training=True
            )
            g_loss = bce(tf.ones_like(fake_logits), fake_logits)
            scaled = g_opt.scale_loss(g_loss)
        g_opt.apply(tape.gradient(scaled, generator.trainable_variables), generator.trainable_variables)
        return d_loss, g_loss

    real_images = np.asarray(real_images, dtype="float32")
    batches = (
        tf.data.Dataset.from_tensor_slices(real_images)
        .shuffle(len(real_images), seed=seed)
        .batch(64, drop_remainder=True)
    )
    eval_noise = tf.random.normal((500, noise_dim), seed=seed)
    log: dict[str, list] = {"d_loss": [], "g_loss": [], "effective_classes": [], "snapshots": []}
    for _ in range(epochs):
        for real in batches:
            d_loss, g_loss = train_step(real)
        samples = generator(eval_noise, training=False).numpy()
        log["d_loss"].append(float(d_loss))
        log["g_loss"].append(float(g_loss))
        log["effective_classes"].append(
            effective_classes(class_histogram(judge, samples)) if judge is not None else float("nan")
        )
        log["snapshots"].append(samples[:8])
    return generator, discriminator, log
