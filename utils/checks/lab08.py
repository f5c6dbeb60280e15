"""Checks for Lab 08 (sampling): temperature, top-k, top-p (nucleus) and drawing the next token.

The four exercises, all on one 1-D vector over the vocabulary:

* ``q1``: ``softmax_with_temperature(logits, temperature)``: the probabilities
  ``softmax(logits / T)``, computed stably (subtract the largest logit first);
* ``q2``: ``top_k_filter(probs, k)``: keep the ``k`` most likely tokens (exactly ``k``, ties broken
  any way), set the others to 0 and renormalise, in vocabulary order;
* ``q3``: ``top_p_filter(probs, p)``: keep the smallest set of most likely tokens whose cumulative
  probability is at least ``p``, *including* the token that crosses ``p``; zero the others and
  renormalise, in vocabulary order;
* ``q4``: ``sample_next(logits, rng, temperature, top_k, top_p)``: temperature, then top-k, then
  top-p, then one draw with ``rng``; returns a token id (an int).

Each checker runs the learner's function on probe distributions chosen so that the usual mistakes
give different results, works out which mistake the result shows, and names it: temperature after
the softmax or multiplied in, no renormalisation, sorting ascending, the answer left in sorted
order, top-k keeping k±1 tokens or every token tied with the k-th, top-p leaving out the token
that crosses p (or keeping one too many, or summing in vocabulary order), probabilities returned
where indices are wanted and the other way round, the global NumPy generator instead of ``rng``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from utils.checks import Exercise, Mismatch, NotDone, call

__all__ = [
    "TEMPERATURE_PROBES",
    "TOP_K_PROBES",
    "TOP_P_PROBES",
    "q1",
    "q2",
    "q3",
    "q4",
    "reference_sample_next",
    "reference_softmax_with_temperature",
    "reference_top_k_filter",
    "reference_top_p_filter",
    "show_samples",
]


# ---------------------------------------------------------------------------------------------
# The model answers
# ---------------------------------------------------------------------------------------------


def reference_softmax_with_temperature(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Return ``softmax(logits / temperature)`` as float64, computed without overflow."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    e = np.exp(z - z.max())
    return e / e.sum()


def reference_top_k_filter(probs: Any, k: int) -> np.ndarray:
    """Return ``probs`` with all but the ``k`` largest set to 0, renormalised (ties: lower index first)."""
    probs = np.asarray(probs, dtype=np.float64)
    keep = np.argsort(-probs, kind="stable")[:k]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def _nucleus_size(probs: np.ndarray, p: float) -> int:
    """The number of tokens top-p keeps: the smallest n whose n largest probabilities sum to ≥ p."""
    cumulative = np.cumsum(np.sort(probs)[::-1])
    return int(min(np.searchsorted(cumulative, p, side="left") + 1, len(probs)))


def reference_top_p_filter(probs: Any, p: float) -> np.ndarray:
    """Return ``probs`` restricted to its nucleus for ``p`` (crossing token included), renormalised."""
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, kind="stable")
    cumulative = np.cumsum(probs[order])
    n_keep = int(np.sum(cumulative - probs[order] < p))  # tokens whose mass *before* them is < p
    keep = order[: max(n_keep, 1)]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def reference_sample_next(
    logits: Any,
    rng: np.random.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """Draw one token id: temperature, then top-k, then top-p, then ``rng.choice``."""
    probs = reference_softmax_with_temperature(logits, temperature)
    if top_k is not None:
        probs = reference_top_k_filter(probs, top_k)
    if top_p is not None:
        probs = reference_top_p_filter(probs, top_p)
    return int(rng.choice(len(probs), p=probs))


def _next_distribution(
    logits: Any, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> np.ndarray:
    probs = reference_softmax_with_temperature(logits, temperature)
    if top_k is not None:
        probs = reference_top_k_filter(probs, top_k)
    if top_p is not None:
        probs = reference_top_p_filter(probs, top_p)
    return probs


# ---------------------------------------------------------------------------------------------
# Shared plumbing
# ---------------------------------------------------------------------------------------------


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn`` on copies of the arrays, with NumPy's warnings silenced."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(fn, *copies, **kwargs)


def _show(a: np.ndarray) -> str:
    with np.printoptions(precision=4, suppress=True):
        return np.array2string(np.asarray(a, dtype=np.float64), separator=", ")


def _as_vector(value: Any, size: int, what: str, indices_hint: str) -> np.ndarray:
    """Return the learner's answer as a float64 vector of ``size``, or raise a Mismatch that says why not."""
    if value is Ellipsis or value is None:
        raise NotDone
    raw = value.numpy() if hasattr(value, "numpy") else value
    try:
        arr = np.asarray(raw)
    except (TypeError, ValueError):
        arr = np.asarray(None)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise Mismatch(what, expected=f"a NumPy array of {size} probabilities", got=type(value).__name__)
    if arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] != size and arr.dtype.kind in "iu"):
        raise Mismatch(
            what,
            expected=f"{size} probabilities (one per token of the vocabulary)",
            got=_show(arr) + (" (a single number)" if arr.ndim == 0 else f" ({arr.shape[0]} whole numbers)"),
            hint=indices_hint,
        )
    if arr.shape != (size,):
        raise Mismatch(f"the shape of {what}", expected=(size,), got=arr.shape)
    return arr.astype(np.float64)


def _is_filtered(got: np.ndarray, probs: np.ndarray, n_keep: int) -> bool:
    """True if ``got`` keeps exactly ``n_keep`` of the most likely tokens (any tie-break), renormalised."""
    if not np.all(np.isfinite(got)) or np.any(got < 0):
        return False
    kept = got > 0
    if kept.sum() != n_keep or not np.isclose(got.sum(), 1.0, atol=1e-6):
        return False
    if not np.allclose(got[kept], probs[kept] / probs[kept].sum(), rtol=1e-5, atol=1e-8):
        return False
    return kept.all() or probs[kept].min() >= probs[~kept].max() - 1e-12


# ---------------------------------------------------------------------------------------------
# q1: softmax with a temperature
# ---------------------------------------------------------------------------------------------

#: (logits, temperature) probes of q1: T below, at and above 1, and logits large enough to overflow exp.
TEMPERATURE_PROBES: tuple[tuple[tuple[float, ...], float], ...] = (
    ((2.0, 1.0, 0.0, -1.0, 0.5), 0.5),
    ((2.0, 1.0, 0.0, -1.0, 0.5), 2.0),
    ((0.3, -1.2, 2.5, 0.0), 1.0),
    ((1.0, 3.0, -2.0, 0.5), 4.0),
    ((1000.0, 999.0, 997.5), 1.0),
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _temperature_mistakes(logits: np.ndarray, t: float) -> list[tuple[str, np.ndarray, str]]:
    p = _softmax(logits)
    return [
        (
            "multiplied",
            _softmax(logits * t),
            "You multiplied the logits by the temperature. Divide them: softmax(logits / T). A high "
            "temperature must flatten the distribution (more surprises), a low one sharpen it.",
        ),
        (
            "divided after softmax",
            p / t,
            "You applied the temperature after the softmax (probabilities / T), so they no longer sum to 1. "
            "The temperature divides the logits *before* the softmax: softmax(logits / T).",
        ),
        (
            "softmax twice",
            _softmax(p / t),
            "You applied the temperature after the softmax and then took a second softmax. Divide the "
            "logits, not the probabilities, then take one softmax: softmax(logits / T).",
        ),
        (
            "power not renormalised",
            p ** (1.0 / t),
            "You raised the probabilities to the power 1/T, which is the right idea, but did not "
            "renormalise them to sum to 1. Simpler: softmax(logits / T).",
        ),
        (
            "no temperature",
            p,
            "Your answer ignores the temperature: it is the plain softmax. Divide the logits by T first.",
        ),
        (
            "not normalised",
            np.exp(logits / t),
            "You returned exp(logits / T) without dividing by the sum, so it is not a distribution.",
        ),
        (
            "log-probabilities",
            np.log(_softmax(logits / t)),
            "You returned log-probabilities (a log-softmax). Return the probabilities themselves.",
        ),
    ]


def _check_temperature(fn: Any) -> None:
    for logits_t, t in TEMPERATURE_PROBES:
        logits = np.array(logits_t)
        want = reference_softmax_with_temperature(logits, t)
        got = _as_vector(
            _run(fn, logits, t),
            len(logits),
            f"softmax_with_temperature(logits={list(logits_t)}, temperature={t})",
            "Return the whole probability vector, not one token: q4 does the drawing.",
        )
        if (
            got.shape == want.shape
            and np.all(np.isfinite(got))
            and np.allclose(got, want, rtol=1e-5, atol=1e-7)
        ):
            continue
        what = f"softmax_with_temperature(logits={list(logits_t)}, temperature={t})"
        if max(abs(v) for v in logits_t) > 100 and not np.all(np.isfinite(got)):
            raise Mismatch(
                what,
                expected=_show(want),
                got=_show(got),
                hint="Your answer overflows for large logits (exp(1000) is inf in float64). Subtract the "
                "largest logit before exp: softmax(z) = softmax(z − max z), the same numbers, no overflow.",
            )
        for _, wrong, hint in _temperature_mistakes(logits, t):
            if np.all(np.isfinite(wrong)) and np.allclose(got, wrong, rtol=1e-5, atol=1e-7):
                raise Mismatch(what, expected=_show(want), got=_show(got), hint=hint)
        raise Mismatch(
            what,
            expected=_show(want),
            got=_show(got),
            hint="Compute z = logits / T, subtract z.max(), take exp, divide by the sum.",
        )


q1 = Exercise(
    "Q1 · softmax with a temperature",
    _check_temperature,
    hint="softmax(logits / T): divide the logits by T, subtract the largest, exponentiate, divide by the sum.",
    solution_id="q1",
    lab="lab08_sampling",
)


# ---------------------------------------------------------------------------------------------
# q2: top-k
# ---------------------------------------------------------------------------------------------

#: (probs, k) probes of q2: unsorted, a tie at the k-th place, k = 1 (greedy), k = the vocabulary.
TOP_K_PROBES: tuple[tuple[tuple[float, ...], int], ...] = (
    ((0.1, 0.35, 0.04, 0.2, 0.25, 0.06), 3),
    ((0.1, 0.3, 0.2, 0.2, 0.2), 2),
    ((0.15, 0.05, 0.5, 0.3), 1),
    ((0.4, 0.1, 0.3, 0.2), 4),
)

_INDICES_K = (
    "You returned token ids (or a single token). top_k_filter returns a probability for *every* token "
    "of the vocabulary: the kept ones renormalised, the others 0."
)


def _diagnose_filter(
    got: np.ndarray, probs: np.ndarray, n_keep: int, want: np.ndarray, kind: str, param: float
) -> str | None:
    """Name the mistake ``got`` shows for a filter that should keep ``n_keep`` tokens, or None."""
    order = np.argsort(-probs, kind="stable")
    kept = got > 0
    n = int(kept.sum())
    finite = np.all(np.isfinite(got))
    if finite and np.allclose(np.sort(got), np.sort(want)) and not np.allclose(got, want):
        return (
            "You kept the right probabilities but returned them in sorted order. Put each one back at "
            "its token's position (index the output with the sorted token ids), so that index i is still token i."
        )
    if finite and np.isin(np.unique(got), [0.0, 1.0]).all() and n == n_keep:
        return "You returned a 0/1 mask of the kept tokens. Multiply it by the probabilities and renormalise."
    if (
        finite
        and n > 0
        and not np.allclose(got.sum(), 1.0, atol=1e-6)
        and np.allclose(got[kept], probs[kept])
    ):
        if n == n_keep and probs[kept].min() >= probs[~kept].max() - 1e-12:
            return (
                "You kept the right tokens but did not renormalise: the kept probabilities must be "
                "divided by their sum, so that they add up to 1 again."
            )
    if n == 0 or not finite:
        return (
            "Your answer keeps no token at all (or is NaN). Always keep at least the most likely "
            "token: " + ("k ≥ 1 tokens." if kind == "k" else "it alone may already reach p.")
        )
    ascending = np.argsort(probs, kind="stable")
    if kind == "p":
        mass_before = np.cumsum(probs[ascending]) - probs[ascending]
        asc_kept = ascending[mass_before < param]
    else:
        asc_kept = ascending[:param]
    asc = np.zeros_like(probs)
    asc[asc_kept] = probs[asc_kept]
    asc_matches = finite and n_keep < len(probs) and np.allclose(got, asc / asc.sum())
    if 0 < n < len(probs) and n_keep < len(probs) or asc_matches:
        smallest = set(order[::-1][:n].tolist())
        if asc_matches or (
            set(np.flatnonzero(kept).tolist()) == smallest and probs[kept].max() < probs[order[0]]
        ):
            return (
                "You kept the *least* likely tokens: you sorted ascending. Sort by probability "
                "descending (np.argsort(-probs)) and keep the front of the list."
            )
    if kind == "p":
        vocab_kept = np.flatnonzero(np.cumsum(probs) - probs < param)
        vocab = np.zeros_like(probs)
        vocab[vocab_kept] = probs[vocab_kept]
        if finite and np.allclose(got, vocab / vocab.sum()):
            return (
                "You summed the probabilities in vocabulary order. Sort them by probability first "
                "(descending), then take the cumulative sum, so the nucleus holds the most likely tokens."
            )
    top_ok = n == len(probs) or probs[kept].min() >= probs[~kept].max() - 1e-12
    if kind == "k" and top_ok:
        if n == n_keep + 1:
            return (
                "You kept k + 1 tokens, one too many (an off-by-one in the slice). Keep exactly k: order[:k]."
            )
        if n == n_keep - 1:
            return (
                "You kept k − 1 tokens, one too few (an off-by-one in the slice). Keep exactly k: order[:k]."
            )
        if n > n_keep and probs[kept].min() == np.sort(probs)[::-1][n_keep - 1]:
            return (
                "Several tokens tie with the k-th largest probability, and you kept all of them "
                "(probs >= the k-th value): that is more than k. Keep exactly k tokens, for instance the "
                "first k of np.argsort(-probs, kind='stable'), which breaks ties by token id."
            )
    if kind == "p" and top_ok and n_keep < len(probs) + 1:
        if n == n_keep - 1:
            return (
                "You left out the token that crosses p (an off-by-one). Top-p keeps the smallest set "
                "whose cumulative probability is ≥ p, so the token that takes the sum past p is kept: "
                "keep a token if the mass *before* it is < p (cumsum − probs < p)."
            )
        if n == n_keep + 1:
            return (
                "You kept one token too many: the sum had already reached p before the last token you "
                "kept. Keep a token only while the mass *before* it is < p (cumsum − probs < p)."
            )
    return None


def _check_filter(fn: Any, probes: Any, kind: str) -> None:
    for probs_t, param in probes:
        probs = np.array(probs_t)
        name = "top_k_filter" if kind == "k" else "top_p_filter"
        what = f"{name}(probs={list(probs_t)}, {kind}={param})"
        if kind == "k":
            want, n_keep = reference_top_k_filter(probs, param), param
        else:
            want, n_keep = reference_top_p_filter(probs, param), _nucleus_size(probs, param)
        got = _as_vector(
            _run(fn, probs, param),
            len(probs),
            what,
            _INDICES_K if kind == "k" else _INDICES_K.replace("top_k", "top_p"),
        )
        if _is_filtered(got, probs, n_keep):
            continue
        hint = _diagnose_filter(got, probs, n_keep, want, kind, param)
        raise Mismatch(
            what,
            expected=_show(want) + f" ({n_keep} token{'s' if n_keep != 1 else ''} kept)",
            got=_show(got) + f" ({int(np.sum(got > 0))} kept)",
            hint=hint,
        )


q2 = Exercise(
    "Q2 · top-k",
    lambda fn: _check_filter(fn, TOP_K_PROBES, "k"),
    hint="Sort the token ids by probability, descending; keep the first k; zero the rest; divide by the sum.",
    solution_id="q2",
    lab="lab08_sampling",
)


# ---------------------------------------------------------------------------------------------
# q3: top-p
# ---------------------------------------------------------------------------------------------

#: (probs, p) probes of q3. Powers of two make the cumulative sums exact, so p = 0.75 lands exactly on
#: a sum; p = 0.3 is below the largest probability (only the top token is kept); p = 1 keeps all.
TOP_P_PROBES: tuple[tuple[tuple[float, ...], float], ...] = (
    ((0.125, 0.5, 0.0625, 0.25, 0.0625), 0.7),
    ((0.125, 0.5, 0.0625, 0.25, 0.0625), 0.75),
    ((0.05, 0.4, 0.3, 0.15, 0.1), 0.9),
    ((0.125, 0.5, 0.0625, 0.25, 0.0625), 0.3),
    ((0.125, 0.5, 0.0625, 0.25, 0.0625), 1.0),
)

q3 = Exercise(
    "Q3 · top-p (nucleus)",
    lambda fn: _check_filter(fn, TOP_P_PROBES, "p"),
    hint="Sort descending, take the cumulative sum, keep each token whose mass before it is < p "
    "(so the token that crosses p is kept), zero the rest, renormalise, and put them back in vocabulary order.",
    solution_id="q3",
    lab="lab08_sampling",
)


# ---------------------------------------------------------------------------------------------
# q4: drawing the next token
# ---------------------------------------------------------------------------------------------

_Q4_LOGITS = np.array([1.5, -0.5, 2.2, 0.3, 1.0, -1.0])
#: (what, settings) probes of q4: each knob alone, then all together.
Q4_SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("temperature only", {"temperature": 0.7}),
    ("top_k only", {"top_k": 3}),
    ("top_p only", {"top_p": 0.8}),
    ("greedy (top_k=1)", {"top_k": 1}),
    ("all three", {"temperature": 1.5, "top_k": 3, "top_p": 0.7}),
)
_Q4_DRAWS = 1500


def _as_token(value: Any, size: int) -> int:
    if value is Ellipsis or value is None:
        raise NotDone
    raw = value.numpy() if hasattr(value, "numpy") else value
    arr = np.asarray(raw)
    if arr.ndim >= 1 and arr.size > 1:
        raise Mismatch(
            "sample_next(...)",
            expected="one token id (an int)",
            got=f"an array of shape {arr.shape}",
            hint="You returned the probabilities. Draw one token from them with "
            "rng.choice(len(probs), p=probs) and return its id.",
        )
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and float(arr) == int(float(arr))):
        raise Mismatch(
            "sample_next(...)",
            expected="a token id: a whole number from 0 to " + str(size - 1),
            got=_show(arr),
            hint="You returned a probability, not a token. Return the index that rng.choice drew.",
        )
    token = int(arr)
    if not 0 <= token < size:
        raise Mismatch("sample_next(...)", expected=f"a token id from 0 to {size - 1}", got=token)
    return token


def _check_sample(fn: Any) -> None:
    v = len(_Q4_LOGITS)
    first = [_as_token(_run(fn, _Q4_LOGITS, np.random.default_rng(7), temperature=1.0), v) for _ in range(3)]
    again = [_as_token(_run(fn, _Q4_LOGITS, np.random.default_rng(7), temperature=1.0), v) for _ in range(3)]
    rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
    seq_a = [_as_token(_run(fn, _Q4_LOGITS, rng_a), v) for _ in range(30)]
    seq_b = [_as_token(_run(fn, _Q4_LOGITS, rng_b), v) for _ in range(30)]
    if seq_a != seq_b or len(set(first)) > 1 or len(set(again)) > 1:
        raise Mismatch(
            "sampling with the same seed twice",
            expected="the same tokens both times",
            got=f"{seq_a[:10]} vs {seq_b[:10]}",
            hint="Draw with the rng you are given (rng.choice(...)), not with np.random.choice or "
            "tf.random: only then does the seed make the samples reproducible.",
        )
    for name, settings in Q4_SETTINGS:
        want = _next_distribution(_Q4_LOGITS, **settings)
        rng = np.random.default_rng(2024)
        counts = np.zeros(v)
        for _ in range(_Q4_DRAWS):
            counts[_as_token(_run(fn, _Q4_LOGITS, rng, **settings), v)] += 1
        freq = counts / _Q4_DRAWS
        args = ", ".join(f"{k}={val}" for k, val in settings.items())
        what = f"how often each token is drawn, sample_next(logits, rng, {args})"
        never = (want == 0) & (freq > 0)
        close = np.all(np.abs(freq - want) < 0.05)
        if close and not never.any():
            continue
        if freq.max() == 1.0 and want.max() < 1.0:
            hint = (
                "You always pick the most likely token: that is greedy decoding. Draw at random from "
                "the filtered probabilities with rng.choice(len(probs), p=probs)."
            )
        elif name == "all three":
            hint = (
                "Each knob alone is right, together not: apply them in the order temperature (on the "
                "logits), then top-k, then top-p on the renormalised top-k probabilities."
            )
        elif never.any():
            hint = (
                f"With {args} you drew tokens {np.flatnonzero(never).tolist()} that the filter must "
                "remove. Apply the filters to the probabilities you draw from."
            )
        else:
            hint = f"Check the {name.split()[0]} step: use your answers to Q1–Q3 in order."
        raise Mismatch(what, expected=_show(want), got=_show(freq) + f" (over {_Q4_DRAWS} draws)", hint=hint)


q4 = Exercise(
    "Q4 · draw the next token",
    _check_sample,
    hint="probs = softmax_with_temperature(logits, temperature); then top_k_filter if top_k is not None; "
    "then top_p_filter if top_p is not None; return int(rng.choice(len(probs), p=probs)).",
    solution_id="q4",
    lab="lab08_sampling",
)


# ---------------------------------------------------------------------------------------------
# After the exercises: the learner's sampler on a real (tiny) language model
# ---------------------------------------------------------------------------------------------


def bigram_model(n_documents: int = 400) -> tuple[list[str], np.ndarray]:
    """Return ``(vocab, logits)``: a character bigram model of Python's documentation.

    ``logits[i]`` are the log-counts (add-one smoothed) of the character after character ``i``:
    the simplest language model, one that sees only the previous character.
    """
    from utils import data

    text = "\n\n".join(data.python_text()[:n_documents])
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    counts = np.ones((len(vocab), len(vocab)))
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return vocab, np.log(counts)


def show_samples(
    sample_next: Any,
    settings: dict[str, dict[str, Any]] | None = None,
    *,
    prompt: str = "The ",
    n_chars: int = 120,
    seed: int = 0,
) -> Any:
    """Generate text with the learner's ``sample_next`` from a character bigram model, per setting.

    Returns q4's :class:`Feedback` if ``sample_next`` does not pass q4 yet; otherwise a plotly
    table with one row per setting (its name and the text generated from ``prompt``).
    """
    feedback = q4.evaluate(sample_next)
    if not feedback.passed:
        return feedback
    from utils import viz

    settings = settings or {
        "T = 0.5": {"temperature": 0.5},
        "T = 1.0": {"temperature": 1.0},
        "T = 1.0, top-k 3": {"temperature": 1.0, "top_k": 3},
        "T = 1.0, top-p 0.5": {"temperature": 1.0, "top_p": 0.5},
        "T = 2.0": {"temperature": 2.0},
    }
    vocab, logits = bigram_model()
    index = {c: i for i, c in enumerate(vocab)}
    rows = []
    for name, knobs in settings.items():
        rng = np.random.default_rng(seed)
        ids = [index.get(c, 0) for c in prompt]
        for _ in range(n_chars):
            ids.append(int(_run(sample_next, logits[ids[-1]], rng, **knobs)))
        rows.append([name, "".join(vocab[i] for i in ids).replace("\n", "⏎")])
    return viz.table(rows, ["setting", "generated text"], title="Your sampler on a character bigram model")
