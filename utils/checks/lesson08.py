"""Lesson 08's exercises. ``e1`` ``masked_perplexity(logits, targets, mask)``: exp of the mean cross-entropy
of the real tokens (mistakes: the padding counted, per-sequence perplexities averaged, logits taken as
log-probabilities). ``e2`` ``retemper(probs, temperature)``: the distribution at T from the one at T = 1
(mistakes: p / T renormalised, which changes nothing, p / T, p to the power T, not renormalised).
"""

from typing import Any

import numpy as np
from scipy.special import log_softmax

from utils.checks import Exercise, Mistake, answer_tolerance, as_array, call, judge, softmax

_rng = np.random.default_rng(8)
LOGITS, TARGETS = _rng.normal(0, 2, (2, 5, 6)), _rng.integers(1, 6, (2, 5))
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=bool)
TARGETS[~MASK], LOGITS[~MASK, 0] = 0, -6.0  # [PAD] (id 0) after the end: the model finds it unlikely
NLL = -np.take_along_axis(log_softmax(LOGITS, axis=-1), TARGETS[..., None], -1)[..., 0]

E1_MISTAKES = [
    Mistake(
        "the padding counted", "[PAD] is not text: average over the real tokens.", lambda: np.exp(NLL.mean())
    ),
    Mistake(
        "per-sequence perplexities averaged",
        "Perplexity is exp of the mean over every real token of the batch: a long sequence counts more.",
        lambda: np.mean([np.exp(n[m].mean()) for n, m in zip(NLL, MASK, strict=True)]),
    ),
    Mistake(
        "logits as log-probabilities",
        "Logits are not log-probabilities: take a log-softmax over the vocabulary first.",
        lambda: np.exp(-np.take_along_axis(LOGITS, TARGETS[..., None], -1)[MASK].mean()),
    ),
]


def _check_e1(fn: Any) -> None:
    raw = call(fn, LOGITS.copy(), TARGETS.copy(), MASK.copy())
    got = as_array(raw, "the perplexity", shape=())
    what = "masked_perplexity on a (2, 5, 6) batch with 5 and 2 real tokens"
    judge(got, np.exp(NLL[MASK].mean()), E1_MISTAKES, what=what, tol=answer_tolerance(raw))


e1 = Exercise(
    "Exercise 1 · perplexity of a padded batch",
    _check_e1,
    hint=(
        "First each position's cross-entropy (minus the log-probability of the true next token), then "
        "keep only the positions the mask marks as real.",
        "Perplexity = exp(sum of the real positions' cross-entropies / their number), the "
        "log-probabilities from a log-softmax over the last axis.",
    ),
)

PROBS = np.array([0.5, 0.25, 0.15, 0.1])
E2_MISTAKES = [
    Mistake(*m)
    for m in (
        ("p / T renormalised", "p / T, renormalised, is p again: the division cancels out.", lambda p, t: p),
        ("p / T", "Dividing the probabilities by T leaves them not summing to 1.", lambda p, t: p / t),
        ("p to the power T", "The power is upside down: a low T sharpens.", lambda p, t: p**t / sum(p**t)),
        ("not renormalised", "The right change, but it must sum to 1 again.", lambda p, t: p ** (1 / t)),
    )
]


def _check_e2(fn: Any) -> None:
    for t in (0.5, 2.0):
        raw, what = call(fn, PROBS.copy(), t), f"retemper({PROBS.tolist()}, temperature={t})"
        got = as_array(raw, what, shape=PROBS.shape)
        tol = answer_tolerance(raw)
        judge(got, softmax(np.log(PROBS) / t), E2_MISTAKES, what=what, inputs=(PROBS, t), tol=tol)


e2 = Exercise(
    "Exercise 2 · a temperature without the logits",
    _check_e2,
    hint=(
        "The logits are lost, but a log-probability is a logit up to one constant, and adding a constant "
        "to every logit does not change a softmax.",
        "So divide the log-probabilities by T and take a softmax; equivalently, raise p to 1 / T and renormalise.",
    ),
)
