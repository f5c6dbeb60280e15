"""Checks for Lab 05b (recurrent networks and decoding): a GRU step, an LSTM forget-gate bias from a memory
half-life, beam search with a length penalty, and gradient clipping by the global norm.

* ``q1`` ``gru_step(x_t, h_prev, kernel, recurrent_kernel, bias)`` in Keras's layout (``reset_after=True``),
  compared with ``keras.layers.GRU`` over a few steps. Mistakes: gates in the order r, z; z and 1 − z
  swapped; the reset applied before the matrix product; the recurrent bias dropped or kept out of the reset.
* ``q2`` ``lstm_bias(units, half_life)`` (using the learner's ``forget_bias``): Keras's (4·units,) LSTM bias
  with logit(2^(−1/half_life)) in the forget slice. Mistakes: another gate's slice; σ(b) = 2^(−half_life);
  a bias of 1 (Keras's ``unit_forget_bias``).
* ``q3`` ``beam_search(step_fn, beam_width, max_len, start, end, alpha)`` with GNMT's length penalty, on
  Markov tables (:func:`toy_model`) and against :func:`brute_force`. Mistakes: finished hypotheses extended
  past ``end``; the length normalisation applied twice; no length penalty; greedy decoding.
* ``q4`` ``clip_global(grads, max_norm)``. Mistakes: each tensor clipped by its own norm; values clipped
  one by one; scaled even below the limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from utils.checks import (
    Exercise,
    Mismatch,
    Mistake,
    NotDone,
    answer_tolerance,
    as_array,
    as_int,
    call,
    is_placeholder,
    judge,
    keras_module,
    variants,
)

__all__ = [
    "END",
    "START",
    "MarkovModel",
    "beam_reference",
    "brute_force",
    "greedy",
    "gru_reference",
    "keras_gru",
    "length_penalty",
    "lstm_bias_reference",
    "q1",
    "q2",
    "q3",
    "q4",
    "toy_model",
]

sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))


# ------------------------------------------------------------------------------------------------
# q1: a GRU step in Keras's layout
# ------------------------------------------------------------------------------------------------


def gru_reference(
    x_t, h_prev, kernel, recurrent_kernel, bias, *, order="zr", swap=False, reset="after", rec_bias="all"
) -> np.ndarray:
    """One GRU step in float64, Keras's ``reset_after=True`` layout (gate order z, r, h; bias (2, 3u)).

    z = σ(x W_z + b_z + h U_z + b'_z), r = σ(x W_r + b_r + h U_r + b'_r),
    h̃ = tanh(x W_h + b_h + r ⊙ (h U_h + b'_h)), h_t = z ⊙ h_prev + (1 − z) ⊙ h̃.
    Right with the defaults; each keyword makes a known mistake.
    """
    x, h, w, u, b = (np.asarray(a, np.float64) for a in (x_t, h_prev, kernel, recurrent_kernel, bias))
    n = h.shape[-1]
    b_rec = np.zeros_like(b[1]) if rec_bias == "none" else b[1]
    xs, hs = x @ w + b[0], h @ u + b_rec
    first, second = (slice(0, n), slice(n, 2 * n)) if order == "zr" else (slice(n, 2 * n), slice(0, n))
    z, r = sigmoid(xs[:, first] + hs[:, first]), sigmoid(xs[:, second] + hs[:, second])
    if reset == "before":
        inner = (r * h) @ u[:, 2 * n :] + b_rec[2 * n :]
    elif rec_bias == "outside":
        inner = r * (h @ u[:, 2 * n :]) + b_rec[2 * n :]
    else:
        inner = r * hs[:, 2 * n :]
    candidate = np.tanh(xs[:, 2 * n :] + inner)
    return (1 - z) * h + z * candidate if swap else z * h + (1 - z) * candidate


def _gru_run(step: Callable, x, h0, w, u, b, **kw) -> np.ndarray:
    """(batch, T, units): ``step`` applied along the time axis of x (batch, T, features)."""
    h, out = h0, []
    for t in range(x.shape[1]):
        h = step(x[:, t], h, w, u, b, **kw)
        out.append(h)
    return np.stack(out, axis=1)


@functools.cache
def _gru_probe() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(14)
    batch, steps, features, units = 3, 4, 5, 4
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    h0 = (rng.normal(size=(batch, units)) * 0.8).astype("float32")
    w = (rng.normal(size=(features, 3 * units)) * 0.6).astype("float32")
    u = (rng.normal(size=(units, 3 * units)) * 0.6).astype("float32")
    b = (rng.normal(size=(2, 3 * units)) * 0.6).astype("float32")
    return x, h0, w, u, b


@functools.cache
def keras_gru() -> np.ndarray:
    """What ``keras.layers.GRU`` (float32, the probe's weights copied in) outputs at every step of the probe."""
    keras = keras_module()
    x, h0, w, u, b = _gru_probe()
    layer = keras.layers.GRU(h0.shape[1], return_sequences=True, dtype="float32")
    layer.build(x.shape)
    layer.set_weights([w, u, b])
    return np.asarray(layer(x, initial_state=h0), dtype=np.float64)


M = variants(lambda *inputs, **kw: _gru_run(gru_reference, *inputs, **kw))
# fmt: off
Q1_MISTAKES = [
    M("gates in the order r, z", "Keras stores the gates as z, r, h: the first third of every kernel's columns is the update gate z.", order="rz"),
    M("z and 1 − z swapped", "When z is near 1 a GRU keeps its old state: z multiplies h_prev, and 1 − z the candidate.", swap=True),
    M("reset applied before the matrix product", "That is reset_after=False. Keras's default resets after it: r multiplies (h_prev U_h + recurrent bias), not h_prev.", reset="before"),
    M("recurrent bias dropped", "The bias has two rows: the first goes with the input, the second with h_prev. Yours ignores the second.", rec_bias="none"),
    M("recurrent bias outside the reset", "With reset_after the recurrent bias of the candidate sits inside the reset: r multiplies h_prev U_h plus that bias.", rec_bias="outside"),
]
# fmt: on


def _check_gru(fn: Any) -> None:
    x, h0, w, u, b = _gru_probe()
    hint = "One new state per example: the same shape as h_prev."
    h, got = h0, []
    for t in range(x.shape[1]):
        what = (
            f"step {t + 1}: gru_step(x_t {x[:, t].shape}, h_prev {h0.shape}, kernel, recurrent_kernel, bias)"
        )
        out = call(fn, x[:, t].copy(), np.array(h, dtype="float32"), w.copy(), u.copy(), b.copy())
        h = as_array(out, what, shape=h0.shape, hint=hint)
        got.append(h)
    got = np.stack(got, axis=1)
    tol = answer_tolerance(out, rtol=1e-4, atol=1e-5)
    judge(
        got,
        keras_gru(),
        Q1_MISTAKES,
        what="the states over 4 steps, against keras.layers.GRU with the same weights",
        inputs=(x, h0, w, u, b),
        tol=tol,
        describe=f"keras.layers.GRU's states, starting {np.round(keras_gru()[0, 0], 4)}",
    )


q1 = Exercise(
    "Q1 · a GRU step from its equations",
    _check_gru,
    hint=(
        "Compute x_t·kernel + bias[0] and h_prev·recurrent_kernel + bias[1] once, then cut each into three "
        "blocks of `units` columns: z, r, h.",
        "z and r are sigmoids of the sum of their two blocks. The candidate is tanh of the input's h block "
        "plus r times the recurrent h block. The new state mixes h_prev and the candidate, weighted by z and 1 − z.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q2: the forget-gate bias from a memory half-life
# ------------------------------------------------------------------------------------------------


def lstm_bias_reference(units: int, half_life: float, *, gate: int = 1, value: str = "right") -> np.ndarray:
    """Keras's LSTM bias (4·units,), gates i, f, c, o, with b = logit(2^(−1/half_life)) in the forget slice.

    With no input and no recurrent contribution the cell state is multiplied by σ(b) at every step, so
    it halves after ``half_life`` steps: σ(b)^half_life = 1/2. ``gate`` and ``value`` make the known mistakes.
    """
    keep = {"right": 0.5 ** (1.0 / half_life), "power": 0.5**half_life}.get(value)
    b = 1.0 if value == "one" else np.log(keep / (1.0 - keep))
    out = np.zeros(4 * units)
    out[gate * units : (gate + 1) * units] = b
    return out


M = variants(lstm_bias_reference)
GATE_HINT = (
    "Keras orders an LSTM's gates i, f, c, o: the forget gate's bias is the second block of `units` values."
)
# fmt: off
Q2_MISTAKES = [
    M("the bias in the input-gate slice", GATE_HINT, gate=0),
    M("the bias in the candidate slice", GATE_HINT, gate=2),
    M("the bias in the output-gate slice", GATE_HINT, gate=3),
    M("σ(b) = 1/2^half_life", "That keeps half the memory in one step and 1/2^half_life of it after half_life steps. Which σ(b) gives exactly 1/2 after half_life multiplications?", value="power"),
    M("a bias of 1 (Keras's unit_forget_bias)", "1 is Keras's default for every layer (σ(1) ≈ 0.73: a half-life of about 2.2 steps). Work out b from the half-life you are given.", value="one"),
]
# fmt: on


def _check_lstm_bias(fn: Any) -> None:
    for units, half_life in ((3, 10), (2, 3.5), (4, 50)):
        what = f"lstm_bias(units={units}, half_life={half_life})"
        got = call(fn, units, half_life)
        tol = answer_tolerance(got, rtol=1e-4, atol=1e-5)
        got = as_array(
            got, what, shape=(4 * units,), hint="One flat vector of 4·units values, as Keras stores it."
        )
        ref = lstm_bias_reference(units, half_life)
        describe = f"zeros except {ref[units]:.4f} in positions {units}…{2 * units - 1}"
        judge(got, ref, Q2_MISTAKES, what=what, inputs=(units, half_life), tol=tol, describe=describe)


q2 = Exercise(
    "Q2 · a forget-gate bias from a half-life",
    _check_lstm_bias,
    hint=(
        "With nothing else feeding the gate, f = σ(b) at every step and the cell state is multiplied by f each "
        "time. Solve f^half_life = 1/2 for f, then σ(b) = f for b.",
        "f is the half_life-th root of 1/2, and the inverse of the sigmoid is the logit, log(f / (1 − f)). "
        "Keras's bias is four blocks of `units` values, in the order i, f, c, o.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q3: beam search with GNMT's length penalty
# ------------------------------------------------------------------------------------------------

START, END = 0, 1


class MarkovModel:
    """A toy language model: the next token's log-probabilities depend only on the last token of the prefix."""

    def __init__(self, table: np.ndarray):
        self.table = np.asarray(table, dtype=np.float64)

    def __call__(self, prefix: Sequence[int]) -> np.ndarray:
        """Log-probabilities (vocabulary,) of the token after ``prefix`` (which starts with ``START``)."""
        last = int(np.asarray(prefix).reshape(-1)[-1])
        return self.table[last].copy()

    def __repr__(self) -> str:
        return f"MarkovModel({len(self.table)} tokens)"


def toy_model(seed: int, sharpness: float = 1.0, vocabulary: int = 5) -> MarkovModel:
    """A random Markov table over ``vocabulary`` tokens (0 = START, never generated; 1 = END), seeded."""
    logits = np.random.default_rng(seed).normal(size=(vocabulary, vocabulary)) * sharpness
    logits[:, START] = -50.0
    top = logits.max(axis=1, keepdims=True)
    return MarkovModel(logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's length penalty lp(L) = ((5 + L) / 6)^α; a hypothesis scores log P / lp(L)."""
    return ((5.0 + length) / 6.0) ** alpha


def brute_force(
    step_fn: Callable, max_len: int, start: int, end: int, alpha: float, *, power: int = 1
) -> tuple:
    """The best sequence of all: those that end with ``end`` within ``max_len`` tokens and those cut at
    ``max_len``, each scored log P / lp(L)^power (L counts the tokens after ``start``, ``end`` included)."""
    best, best_score = (), -np.inf
    size = len(step_fn((start,)))

    def visit(prefix: tuple, logp: float) -> None:
        nonlocal best, best_score
        length = len(prefix) - 1
        if length and (prefix[-1] == end or length == max_len):
            score = logp / length_penalty(length, alpha) ** power
            if score > best_score:
                best, best_score = prefix[1:], score
            return
        logps = step_fn(prefix)
        for token in range(size):
            if token != start:
                visit((*prefix, token), logp + logps[token])

    visit((start,), 0.0)
    return best


def beam_reference(
    step_fn: Callable,
    beam_width: int,
    max_len: int,
    start: int,
    end: int,
    alpha: float,
    *,
    final: str = "right",
    extend_finished: bool = False,
) -> tuple:
    """Beam search in float64: keep the ``beam_width`` best extensions by log P; those ending in ``end``
    leave the beam; after ``max_len`` tokens the finished and the cut hypotheses compete on log P / lp(L).

    ``final`` = "none" (no penalty), "twice" (÷ lp² at the end) or "stepwise" (every step's log-probability
    ÷ lp(t), ranked so, then ÷ lp(L) at the end), and ``extend_finished`` make the known mistakes.
    """
    beams, finished = [((start,), 0.0, 0.0)], []
    for t in range(1, max_len + 1):
        candidates = []
        for prefix, logp, running in beams:
            logps = step_fn(prefix)
            for token in range(len(logps)):
                if token != start:
                    step = logps[token]
                    candidates.append(
                        ((*prefix, token), logp + step, running + step / length_penalty(t, alpha))
                    )
        candidates.sort(key=lambda c: c[2] if final == "stepwise" else c[1], reverse=True)
        top = candidates[:beam_width]
        beams = top if extend_finished else [c for c in top if c[0][-1] != end]
        finished += [] if extend_finished else [c for c in top if c[0][-1] == end]
        if not beams:
            break

    def score(c: tuple) -> float:
        lp = length_penalty(len(c[0]) - 1, alpha)
        return {"none": c[1], "twice": c[1] / lp**2, "stepwise": c[2] / lp}.get(final, c[1] / lp)

    return max(finished + beams, key=score)[0][1:]


def greedy(step_fn: Callable, max_len: int, start: int, end: int, *_: Any) -> tuple:
    """The most likely token at every step, until ``end`` or ``max_len`` tokens."""
    prefix = (start,)
    while len(prefix) - 1 < max_len and prefix[-1] != end:
        logps = np.array(step_fn(prefix), dtype=np.float64)
        logps[start] = -np.inf
        prefix = (*prefix, int(np.argmax(logps)))
    return prefix[1:]


def _beam_mistake(**kw: Any) -> Callable:
    return lambda f, k, n, s, e, a: beam_reference(f, k, n, s, e, a, **kw)


TWICE = "The length normalisation is applied twice. Keep the plain sum of log-probabilities while you search, and divide by lp(L) once, when you compare finished hypotheses."
EXTENDED = Mistake(
    "finished hypotheses extended past <end>",
    "A hypothesis that produced <end> is finished: take it out of the beam, keep it aside, and extend only the others.",
)
# fmt: off
Q3_MISTAKES = [
    EXTENDED,
    Mistake("greedy decoding", "You follow one path, the most likely token each time. Keep beam_width hypotheses alive at every step.", lambda f, k, n, s, e, a: greedy(f, n, s, e)),
    Mistake("no length penalty", "Short hypotheses win because every token lowers log P. Compare finished hypotheses by log P / lp(L), with lp(L) = ((5 + L)/6)^α.", _beam_mistake(final="none")),
    Mistake("length normalisation applied twice", TWICE, _beam_mistake(final="twice")),
    Mistake("length normalisation applied twice", TWICE, _beam_mistake(final="stepwise")),
]
# fmt: on
# (seed, sharpness, beam_width, max_len, alpha): each of the first four tells one mistake from the right answer
Q3_PROBES = (
    (0, 1.0, 2, 5, 1.0),
    (393, 2.0, 2, 4, 0.6),
    (710, 1.0, 2, 4, 0.6),
    (12, 2.0, 2, 4, 0.6),
    (5, 1.5, 25, 4, 0.8),
)


def _sequence(value: Any, what: str, start: int) -> tuple:
    if is_placeholder(value):
        raise NotDone
    hint = "Return the best sequence only: a list of token ids, without its score."
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and np.ndim(value[1]) == 0
        and np.ndim(value[0]) == 1
    ):
        raise Mismatch(what, expected="a list of token ids", got="a pair (sequence, score)?", hint=hint)
    tokens = as_array(value, what, hint=hint).reshape(-1)
    tokens = tuple(as_int(t, what, hint=hint) for t in tokens)
    return tokens[1:] if tokens[:1] == (start,) else tokens  # with or without the start token


def _check_beam(fn: Any) -> None:
    for seed, sharpness, width, max_len, alpha in Q3_PROBES:
        model = toy_model(seed, sharpness)
        args = (width, max_len, START, END, alpha)
        what = f"beam_search(toy_model({seed}), beam_width={width}, max_len={max_len}, start=0, end=1, alpha={alpha})"
        got = _sequence(call(fn, model, *args), what, START)
        right = brute_force(model, max_len, START, END, alpha)
        if got == right:
            continue
        if END in got[:-1]:
            EXTENDED.fail(what, expected=list(right), got=list(got))
        for mistake in Q3_MISTAKES[1:]:
            if tuple(mistake.compute(model, *args)) == got:
                mistake.fail(what, expected=list(right), got=list(got))
        raise Mismatch(what, expected=list(right), got=list(got))


q3 = Exercise(
    "Q3 · beam search with a length penalty",
    _check_beam,
    hint=(
        "Keep a list of live hypotheses (tokens, log P) and a list of finished ones. Each step: extend every "
        "live one by every token, keep the beam_width best, and move those that end with `end` aside.",
        "Rank the candidates of one step by their summed log P (they all have the same length then). Only "
        "at the end, when finished hypotheses of different lengths compete, divide log P by ((5 + L)/6)**alpha, "
        "L counting the tokens after `start`, `end` included.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q4: clipping by the global norm
# ------------------------------------------------------------------------------------------------


def _clip(grads, max_norm, *, how="global"):
    """The gradients (float64) after clipping: right with ``how="global"``; the rest are the known mistakes."""
    grads = [np.asarray(g, np.float64) for g in grads]
    norm = np.sqrt(sum(float(np.sum(g**2)) for g in grads))
    if how == "each":
        return [g * min(1.0, max_norm / max(float(np.linalg.norm(g)), 1e-30)) for g in grads]
    if how == "values":
        return [np.clip(g, -max_norm, max_norm) for g in grads]
    scale = max_norm / norm if how == "always" else min(1.0, max_norm / norm)
    return [g * scale for g in grads]


def _flat(grads) -> np.ndarray:
    return np.concatenate([np.asarray(g, np.float64).reshape(-1) for g in grads])


M = variants(lambda grads, max_norm, **kw: _flat(_clip(grads, max_norm, **kw)))
# fmt: off
Q4_MISTAKES = [
    M("each tensor clipped by its own norm", "That is clip_by_norm, tensor by tensor: it changes the gradient's direction. Measure one norm over all the tensors together.", how="each"),
    M("values clipped one by one", "Clipping each value changes the gradient's direction. Scale every tensor by one common factor instead.", how="values"),
    M("scaled even below the limit", "A gradient whose global norm is already under max_norm must come back unchanged.", how="always"),
]
# fmt: on


@functools.cache
def _grads_probe() -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [
        (rng.normal(size=(3, 4)) * 2.0).astype("float32"),
        (rng.normal(size=(5,)) * 0.3).astype("float32"),
        (rng.normal(size=(2, 2)) * 0.5).astype("float32"),
    ]


def _check_clip(fn: Any) -> None:
    grads = _grads_probe()
    norm = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads)))
    for max_norm in (2.0, 2 * norm):
        what = f"clip_global(3 gradients with global norm {norm:.2f}, max_norm={max_norm:.2f})"
        got = call(fn, [g.copy() for g in grads], max_norm)
        if not isinstance(got, list | tuple) or len(got) != len(grads):
            hint = "Return a list with one clipped array per gradient, in the same order (not the norm)."
            raise Mismatch(what, expected="a list of 3 arrays", got=type(got).__name__, hint=hint)
        tol = answer_tolerance(*got, rtol=1e-5, atol=1e-6)
        arrays = [
            as_array(a, what, shape=g.shape, hint="Each clipped gradient keeps its shape.")
            for a, g in zip(got, grads, strict=True)
        ]
        ref = _flat(_clip(grads, max_norm))
        judge(
            _flat(arrays),
            ref,
            Q4_MISTAKES,
            what=what,
            inputs=(grads, max_norm),
            tol=tol,
            describe="every gradient × min(1, max_norm / global norm)",
        )


q4 = Exercise(
    "Q4 · clipping by the global norm",
    _check_clip,
    hint=(
        "The global norm treats all the gradients as one long vector: the square root of the sum of all their "
        "squares.",
        "If that norm is above max_norm, multiply every gradient by max_norm / norm; otherwise return them "
        "unchanged. One factor for all, so the direction stays the same.",
    ),
)
