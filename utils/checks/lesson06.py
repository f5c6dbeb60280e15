"""Lesson 06's own exercises. Tasks and the mistakes they name:

* ``e1`` ``mha_params(d_model, num_heads, key_dim)``: keras.layers.MultiHeadAttention's parameters when the
  heads are not d_model/h wide: no biases, key_dim taken as d_model/h, output bias per head or left out.
* ``e2`` ``pe_similarity(k, d_model)``: PE[pos]·PE[pos+k], the same for every pos: exponent i instead of
  2i, a sum over d_model frequencies, sines instead of cosines.
"""

import numpy as np

from utils.checks import Exercise, Mistake, as_array, call, judge

SIZES = [(32, 4, 8), (32, 4, 16), (64, 8, 4), (16, 2, 3)]  # (d_model, heads, key_dim)


def _params(d, h, k, *, bias=True, key=None, out_bias=1):
    k = d // h if key == "d/h" else k
    return 4 * d * h * k + (3 * h * k + (h if out_bias == "per head" else out_bias) * d if bias else 0)


def _each(**kw: object) -> object:
    return lambda: np.array([_params(*s, **kw) for s in SIZES], dtype=float)


E1_MISTAKES = [
    Mistake("no biases", "Each of the four projections has a bias too.", _each(bias=False)),
    Mistake("key_dim taken as d_model/h", "Here the heads are key_dim wide, whatever d_model/h is.", _each(key="d/h")),
    Mistake("output bias per head", "The output projection maps all the heads to d_model: one bias vector.", _each(out_bias="per head")),
    Mistake("output bias left out", "The output projection W^O has a bias of size d_model.", _each(out_bias=0)),
]  # fmt: skip


def _check_params(fn: object) -> None:
    got = as_array([call(fn, *s) for s in SIZES], "the parameter counts")
    what = f"mha_params(d_model, heads, key_dim) for {SIZES}"
    judge(got, _each()(), E1_MISTAKES, what=what, tol={"rtol": 0, "atol": 0.5})


e1 = Exercise(
    "Exercise 1 · parameters of multi-head attention with narrow or wide heads",
    _check_params,
    hint=(
        "Count the kernels as Keras stores them (section 4): Q, K and V map d_model to (heads, key_dim), the "
        "output maps (heads, key_dim) back to d_model. Then the biases.",
        "Each of Q, K, V has d_model·h·key_dim weights and h·key_dim biases; the output has h·key_dim·d_model "
        "weights and d_model biases.",
    ),
)

PROBES = [(1, 16), (5, 16), (37, 64), (0, 8)]  # (k, d_model)


def _similarity(k, d, *, two_i=True, pairs=True, wave=np.cos):
    i = np.arange(0, d, 2) if two_i else np.arange(d // 2)
    i = i if pairs else np.arange(d)
    return float(wave(k / 10000 ** (i / d)).sum())


def _probe(**kw: object) -> object:
    return lambda: np.array([_similarity(k, d, **kw) for k, d in PROBES])


E2_MISTAKES = [
    Mistake("exponent i/d_model", "The exponent is 2i/d_model, with i numbering the sine–cosine pairs.", _probe(two_i=False)),
    Mistake("d_model frequencies", "There are d_model/2 frequencies, one per sine–cosine pair.", _probe(pairs=False)),
    Mistake("sines", "sin a·sin b + cos a·cos b is the cosine of the difference of the angles.", _probe(wave=np.sin)),
]  # fmt: skip


def _check_similarity(fn: object) -> None:
    got = as_array([call(fn, k, d) for k, d in PROBES], "the similarities")
    what = f"pe_similarity(k, d_model) for {PROBES}"
    judge(got, _probe()(), E2_MISTAKES, what=what, tol={"rtol": 1e-6, "atol": 1e-6})


e2 = Exercise(
    "Exercise 2 · how similar two positions are, by their distance only",
    _check_similarity,
    hint=(
        "Write the dot product pair by pair: each sine–cosine pair contributes sin a sin b + cos a cos b, "
        "with a and b the two positions' angles at that pair's frequency.",
        "That is the cosine of the angle difference, which depends only on k: sum over the d_model/2 "
        "frequencies ω_i = 1/10000^(2i/d_model) of cos(ω_i k).",
    ),
)
