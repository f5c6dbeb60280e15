"""Checks for Lab 08 (sampling beyond the lesson): min-p, a repetition penalty, and a sampler with both.

* ``q1`` ``min_p_filter(logits, p_min)``: softmax, keep the tokens whose probability is at least
  ``p_min`` times the top one, renormalise. Mistakes: an absolute threshold, no renormalising, the
  threshold on the logits, the rare tokens kept, the tokens before the softmax dropped by a mask of 0.
* ``q2`` ``repetition_penalty(logits, previous_ids, penalty)``: CTRL's rule from its description.
  Mistakes: every seen logit divided (negative ones then rise), once per occurrence, subtracted, the
  signs swapped, the unseen tokens penalised.
* ``q3`` ``sample_next(logits, previous_ids, rng, temperature, p_min, penalty)``: judged on the
  frequencies of seeded draws. Mistakes: greedy, min-p before the temperature, a knob ignored, the
  global generator instead of ``rng``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utils.checks import Exercise, Mistake, answer_tolerance, as_array, as_int, call, expect, judge, softmax

__all__ = ["q1", "q2", "q3", "reference_distribution", "reference_min_p", "reference_penalty", "show_samples"]


def reference_min_p(logits: Any, p_min: float) -> np.ndarray:
    """softmax(logits), with the tokens below ``p_min`` × the top probability set to 0, renormalised."""
    p = softmax(logits)
    kept = np.where(p >= p_min * p.max(), p, 0.0)
    return kept / kept.sum()


def reference_penalty(logits: Any, previous_ids: Any, penalty: float) -> np.ndarray:
    """CTRL's repetition penalty: a seen token's logit divided by ``penalty`` if positive, else multiplied."""
    z = np.array(logits, dtype=np.float64)
    seen = np.unique(np.asarray(previous_ids, dtype=int))
    z[seen] = np.where(z[seen] > 0, z[seen] / penalty, z[seen] * penalty)
    return z


def reference_distribution(logits: Any, previous_ids: Any, temperature=1.0, p_min=0.0, penalty=1.0):
    """What ``sample_next`` draws from: the penalty, then the temperature, then min-p."""
    return reference_min_p(reference_penalty(logits, previous_ids, penalty) / temperature, p_min)


def _renormalised(p: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return p / p.sum()


# q1: min-p ------------------------------------------------------------------------------------

#: (logits, p_min): the absolute threshold, the logits' threshold and the relative one keep different sets.
MIN_P_PROBES = (
    ((2.0, 0.7, 1.1, -1.0, 1.8, 0.0, -0.3), 0.3),
    ((1.5, 2.6, 1.9, 0.1, 2.4, -2.0), 0.45),
    ((1000.0, 999.2, 996.0, 998.5), 0.4),
    ((2.0, 0.4, 1.1, -1.0, 1.8), 1.0),
)

Q1_MISTAKES = [
    Mistake(
        "an absolute threshold",
        "min-p is relative: the bar moves with how sure the model is. Compare each probability with "
        "p_min times the largest probability, not with p_min itself.",
        lambda z, pm: _renormalised(np.where(softmax(z) >= pm, softmax(z), 0.0)),
    ),
    Mistake(
        "not renormalised",
        "The right tokens are kept, but what you return no longer sums to 1. Divide by the sum of "
        "what is left.",
        lambda z, pm: np.where(softmax(z) >= pm * softmax(z).max(), softmax(z), 0.0),
    ),
    Mistake(
        "the threshold on the logits",
        "You compared logits, not probabilities: a logit can be negative and p_min times a logit means "
        "nothing. Take the softmax first (or compare in log space: log p_min is an offset, not a factor).",
        lambda z, pm: _renormalised(np.where(np.asarray(z) >= pm * np.max(z), softmax(z), 0.0)),
    ),
    Mistake(
        "the rare tokens kept",
        "You kept the tokens *below* the bar. Keep those at or above p_min times the top probability.",
        lambda z, pm: (
            _renormalised(np.where(softmax(z) < pm * softmax(z).max(), softmax(z), 0.0))
            if (softmax(z) < pm * softmax(z).max()).any()
            else np.full(len(z), np.nan)
        ),
    ),
    Mistake(
        "the cut logits set to 0",
        "Setting a cut token's *logit* to 0 leaves it e⁰ = 1 of weight: it is still drawn. Zero its "
        "probability (or give its logit −∞) instead.",
        lambda z, pm: softmax(np.where(softmax(z) >= pm * softmax(z).max(), z, 0.0)),
    ),
]


def _check_min_p(fn: Any) -> None:
    for logits, p_min in MIN_P_PROBES:
        z = np.array(logits)
        what = f"min_p_filter({list(logits)}, p_min={p_min})"
        raw = call(fn, z.copy(), p_min)
        got = as_array(raw, what, shape=z.shape, hint=Q1_HINTS[0])
        tol = answer_tolerance(raw, rtol=1e-5, atol=1e-7)
        judge(got, reference_min_p(z, p_min), Q1_MISTAKES, what=what, inputs=(z, p_min), tol=tol)


Q1_HINTS = (
    "Return one probability per token: the softmax of the logits, with the tokens that are much less "
    "likely than the favourite set to 0, and what is left scaled back to a sum of 1.",
    "The bar is p_min × (the largest probability). A token is kept when its probability reaches the "
    "bar; the mask of kept tokens then multiplies the probabilities before you renormalise.",
)
q1 = Exercise("Q1 · min-p sampling", _check_min_p, hint=Q1_HINTS)


# q2: the repetition penalty -------------------------------------------------------------------

#: (logits, previous_ids, penalty): seen tokens with positive and negative logits, one seen twice.
PENALTY_PROBES = (
    ((2.0, -1.0, 0.5, 3.0, -0.5, 1.5), (3, 1, 3, 4), 1.5),
    ((1.2, 0.8, -2.0, 0.3), (0, 2, 2, 2), 2.0),
)


def _each_time(z, ids, pen):
    z = np.array(z, dtype=np.float64)
    for i in np.asarray(ids, dtype=int):
        z[i] = z[i] / pen if z[i] > 0 else z[i] * pen
    return z


def _seen(z, ids) -> np.ndarray:
    return np.isin(np.arange(len(z)), np.asarray(ids, dtype=int))


Q2_MISTAKES = [
    Mistake(
        "every seen logit divided",
        "Dividing a *negative* logit by the penalty brings it closer to 0: the repeated token becomes "
        "more likely. The sign decides: shrink positive logits, push negative ones further down.",
        lambda z, ids, pen: np.where(_seen(z, ids), np.asarray(z) / pen, z),
    ),
    Mistake(
        "once per occurrence",
        "A token seen twice was penalised twice. The rule looks at the *set* of seen tokens: each one "
        "is penalised once, however often it appeared.",
        _each_time,
    ),
    Mistake(
        "subtracted",
        "You subtracted the penalty: that is a presence penalty, another rule. This one scales the logit "
        "by the penalty, a factor.",
        lambda z, ids, pen: np.where(_seen(z, ids), np.asarray(z) - pen, z),
    ),
    Mistake(
        "signs swapped",
        "Your seen tokens became *more* likely. Check which sign gets divided and which multiplied.",
        lambda z, ids, pen: np.where(
            _seen(z, ids), np.where(np.asarray(z) > 0, np.asarray(z) * pen, z / pen), z
        ),
    ),
    Mistake(
        "the unseen tokens penalised",
        "You changed the tokens that were *not* generated yet. Only the ids in previous_ids are penalised.",
        lambda z, ids, pen: np.where(~_seen(z, ids), reference_penalty(z, range(len(z)), pen), z),
    ),
]


def _check_penalty(fn: Any) -> None:
    for logits, ids, pen in PENALTY_PROBES:
        z, prev = np.array(logits), np.array(ids)
        what = f"repetition_penalty({list(logits)}, previous_ids={list(ids)}, penalty={pen})"
        raw = call(fn, z.copy(), prev.copy(), pen)
        got = as_array(raw, what, shape=z.shape, hint=Q2_HINTS[0])
        tol = answer_tolerance(raw, rtol=1e-5, atol=1e-7)
        judge(got, reference_penalty(z, prev, pen), Q2_MISTAKES, what=what, inputs=(z, prev, pen), tol=tol)


Q2_HINTS = (
    "Return the whole logit vector, changed only at the tokens that already appeared. A penalty of 1 "
    "changes nothing; a larger one must make a seen token *less* likely, whatever its logit's sign.",
    "Take the distinct ids of previous_ids. For those positions, a positive logit shrinks by the factor "
    "and a negative one grows in size by it (np.where on the sign does both at once).",
)
q2 = Exercise("Q2 · a repetition penalty", _check_penalty, hint=Q2_HINTS)


# q3: the sampler, judged on its draws ---------------------------------------------------------

LOGITS = np.array([1.6, 0.2, 2.1, -0.4, 1.0, 0.6])
PREVIOUS = np.array([2, 0, 2])
#: settings of q3: the penalty alone, temperature with min-p (the order shows), all three.
SETTINGS = (
    {"penalty": 1.8},
    {"temperature": 2.0, "p_min": 0.5},
    {"temperature": 0.7, "p_min": 0.1, "penalty": 1.4},
)
DRAWS = 4000
FREQ_TOL = {"rtol": 0.0, "atol": 0.035}  # 4.4 standard deviations of a frequency over 4,000 draws


def _min_p_first(z, prev, temperature=1.0, p_min=0.0, penalty=1.0):
    pz = reference_penalty(z, prev, penalty)
    keep = reference_min_p(pz, p_min) > 0
    return softmax(np.where(keep, pz / temperature, -np.inf))


Q3_MISTAKES = [
    Mistake(
        "greedy",
        "You always pick the most likely token. Draw at random, with the generator, from the filtered "
        "probabilities.",
        lambda z, prev, **k: np.eye(len(z))[np.argmax(reference_distribution(z, prev, **k))],
    ),
    Mistake(
        "min-p before the temperature",
        "You cut with min-p before dividing by the temperature. The temperature reshapes the distribution "
        "first; min-p then judges the tokens on the distribution you will draw from.",
        _min_p_first,
    ),
    Mistake(
        "the penalty ignored",
        "The tokens in previous_ids are drawn as often as without a penalty. Apply your Q2 to the logits "
        "first.",
        lambda z, prev, penalty=1.0, **k: reference_distribution(z, prev, **k),
    ),
    Mistake(
        "the temperature ignored",
        "The draws ignore the temperature. It divides the (penalised) logits, before the softmax.",
        lambda z, prev, temperature=1.0, **k: reference_distribution(z, prev, **k),
    ),
    Mistake(
        "min-p ignored",
        "Tokens below the min-p bar are still drawn. Filter with your Q1 before drawing.",
        lambda z, prev, p_min=0.0, **k: reference_distribution(z, prev, **k),
    ),
]
SEED_MISTAKE = Mistake(
    "the global generator",
    "Two runs with the same seed drew different tokens: the draw must come from the rng you are "
    "given (its choice method), not from np.random or tf.random.",
)


def _draws(fn: Any, rng: np.random.Generator, n: int, **knobs: Any) -> list[int]:
    raws = call(lambda: [fn(LOGITS.copy(), PREVIOUS.copy(), rng, **knobs) for _ in range(n)])
    out = [as_int(raw, "the token sample_next returns", hint=Q3_HINTS[1]) for raw in raws]
    bad = [t for t in out if not 0 <= t < len(LOGITS)]
    expect(not bad, "the token ids", expected=f"0 to {len(LOGITS) - 1}", got=bad[:5], hint=Q3_HINTS[1])
    return out


def _check_sampler(fn: Any) -> None:
    if not callable(fn):
        call(fn)  # a placeholder: not done; anything else: "a function"
    a, b = (_draws(fn, np.random.default_rng(11), 40) for _ in range(2))
    expect(a == b, "two runs with the same seed", expected=a[:12], got=b[:12], hint=SEED_MISTAKE.hint)
    for knobs in SETTINGS:
        counts = np.bincount(_draws(fn, np.random.default_rng(2024), DRAWS, **knobs), minlength=len(LOGITS))
        args = ", ".join(f"{k}={v}" for k, v in knobs.items())
        _judge_draws(counts / DRAWS, knobs, args)


def _judge_draws(freq: np.ndarray, knobs: dict, args: str) -> None:
    what = f"how often each token is drawn by sample_next(logits, previous_ids, rng, {args}), {DRAWS} draws"
    want = reference_distribution(LOGITS, PREVIOUS, **knobs)
    mistakes = [
        Mistake(m.name, m.hint, lambda m=m: m.compute(LOGITS, PREVIOUS, **knobs)) for m in Q3_MISTAKES
    ]
    judge(freq, want, mistakes, what=what, tol=FREQ_TOL, hint=Q3_HINTS[1])


Q3_HINTS = (
    "Chain your answers: the penalty works on the raw logits, the temperature on the penalised ones, "
    "min-p on the result; then one draw from the generator you are given.",
    "The order is penalty → divide by the temperature → min_p_filter → the rng's choice over the token "
    "ids with those probabilities, returned as an int.",
)
q3 = Exercise("Q3 · a sampler with both", _check_sampler, hint=Q3_HINTS)


# After the exercises: the learner's sampler on a real (tiny) language model --------------------


def bigram_model(n_documents: int = 400) -> tuple[list[str], np.ndarray]:
    """``(vocab, logits)`` of a character bigram model of Python's documentation (add-one log-counts)."""
    from utils import data

    text = "\n\n".join(data.python_text()[:n_documents])
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    counts = np.ones((len(vocab), len(vocab)))
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return vocab, np.log(counts)


def show_samples(sample_next: Any, *, prompt: str = "The ", n_chars: int = 120, seed: int = 0) -> Any:
    """Write text with the learner's ``sample_next`` from a bigram model, one row per setting.

    Returns q3's feedback while it does not pass; then a plotly table. The penalty looks at the
    last 12 characters only (a character model must repeat letters).
    """
    feedback = q3.evaluate(sample_next)
    if not feedback.passed:
        return feedback
    from utils import viz

    settings = {
        "T = 1": {},
        "T = 1, min-p 0.1": {"p_min": 0.1},
        "T = 1.5, min-p 0.1": {"temperature": 1.5, "p_min": 0.1},
        "T = 1.5": {"temperature": 1.5},
        "T = 1, min-p 0.1, penalty 1.3": {"p_min": 0.1, "penalty": 1.3},
    }
    vocab, logits = bigram_model()
    index = {c: i for i, c in enumerate(vocab)}
    rows = []
    for name, knobs in settings.items():
        rng = np.random.default_rng(seed)
        ids = [index.get(c, 0) for c in prompt]
        for _ in range(n_chars):
            ids.append(int(call(sample_next, logits[ids[-1]], np.array(ids[-12:]), rng, **knobs)))
        rows.append([name, "".join(vocab[i] for i in ids).replace("\n", "⏎")])
    return viz.table(rows, ["setting", "generated text"], title="Your sampler on a character bigram model")
