"""Sequence to sequence: English number words to digits, an encoder–decoder with attention, decoding.

The task runs offline and is generated exhaustively: ``"three hundred and twelve"`` → ``"312"`` for
every number from 0 to 999,999, written in British English (with "and" before the last part:
"one thousand and five", "one hundred and twenty thousand"). Hyphenated tens are split into two
tokens ("twenty-one" → ``twenty one``), which keeps the source vocabulary to 31 words and is still
unambiguous: every number has its own token sequence (``tests/test_seq2seq.py`` checks all of them).

Token ids. Source: ``SOURCE_VOCAB``, ``PAD_ID = 0`` then the words. Target: ``TARGET_VOCAB``,
``PAD_ID = 0``, ``START_ID = 1``, ``END_ID = 2``, then the digits "0"–"9". Teacher forcing feeds the
decoder ``<start> d1 … dn`` and asks it for ``d1 … dn <end>``: the same digits, shifted by one.

Decoding is model-agnostic: a *step function* ``step_fn(sources, prefixes)`` takes a batch of source
rows (batch, T_in) and a batch of target prefixes (batch, t), all starting with ``<start>``, and
returns the log-probabilities (batch, V) of the next token. :func:`keras_step_fn` makes one from a
trained model; a NumPy table makes one for tests. :func:`greedy_decode` and :func:`beam_search` use
only that. A decoded sequence never contains ``<start>``; it ends with ``<end>`` when the decoder
produced it, and is cut at ``max_len`` tokens otherwise.

Keras is imported inside the functions that build or run a model, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "END_ID",
    "PAD_ID",
    "SOURCE_ID",
    "SOURCE_VOCAB",
    "START_ID",
    "TARGET_ID",
    "TARGET_VOCAB",
    "BeamResult",
    "Hypothesis",
    "Split",
    "attention_model",
    "beam_search",
    "beam_search_batch",
    "build_seq2seq",
    "compile_seq2seq",
    "decode_digits",
    "decode_source",
    "encode_digits",
    "encode_words",
    "exact_match",
    "exposure_bias_gap",
    "greedy_decode",
    "keras_step_fn",
    "length_penalty",
    "log_softmax",
    "masked_token_accuracy",
    "number_dataset",
    "number_to_words",
    "number_tokens",
    "strip_special",
    "teacher_forced_accuracy",
    "token_accuracy",
]

MAX_NUMBER = 999_999

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()

PAD_ID, START_ID, END_ID = 0, 1, 2
SOURCE_VOCAB: tuple[str, ...] = ("<pad>", *_UNITS, *_TENS, "hundred", "thousand", "and")
TARGET_VOCAB: tuple[str, ...] = ("<pad>", "<start>", "<end>", *"0123456789")
SOURCE_ID: dict[str, int] = {word: i for i, word in enumerate(SOURCE_VOCAB)}
TARGET_ID: dict[str, int] = {token: i for i, token in enumerate(TARGET_VOCAB)}

StepFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------------------------
# the task
# ---------------------------------------------------------------------------------------------


def _below_hundred(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    tens, units = divmod(n, 10)
    return _TENS[tens - 2] + (f"-{_UNITS[units]}" if units else "")


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_hundred(rest)
    head = f"{_UNITS[hundreds]} hundred"
    return f"{head} and {_below_hundred(rest)}" if rest else head


_BELOW_THOUSAND: tuple[str, ...] = tuple(_below_thousand(n) for n in range(1000))


def number_to_words(n: int) -> str:
    """``n`` (0 ≤ n ≤ 999,999) in British English words, tens and units joined by a hyphen.

    "and" comes before the tens and units of each group of three digits that has hundreds ("three
    hundred and twelve"), and between "thousand" and a last part below one hundred ("one thousand
    and five"); no commas ("one thousand two hundred and three").
    """
    if not (isinstance(n, int | np.integer) and 0 <= n <= MAX_NUMBER):
        raise ValueError(f"number_to_words takes a whole number from 0 to {MAX_NUMBER:,}, not {n!r}")
    n = int(n)
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _BELOW_THOUSAND[rest]
    head = f"{_BELOW_THOUSAND[thousands]} thousand"
    if not rest:
        return head
    return f"{head} {'and ' if rest < 100 else ''}{_BELOW_THOUSAND[rest]}"


def number_tokens(n: int) -> list[str]:
    """The source tokens of ``n``: :func:`number_to_words` split at spaces and hyphens."""
    return number_to_words(n).replace("-", " ").split()


def encode_words(n: int, length: int | None = None) -> np.ndarray:
    """Source ids of ``n``'s words (int32); with ``length``, padded with ``PAD_ID`` to that length."""
    ids = [SOURCE_ID[w] for w in number_tokens(n)]
    if length is not None:
        if len(ids) > length:
            raise ValueError(f"{n} takes {len(ids)} words, more than length={length}")
        ids += [PAD_ID] * (length - len(ids))
    return np.asarray(ids, dtype=np.int32)


def encode_digits(n: int) -> list[int]:
    """Target ids of ``n``'s decimal digits, without ``<start>`` or ``<end>``."""
    return [TARGET_ID[d] for d in str(int(n))]


def strip_special(ids: Sequence[int] | np.ndarray) -> list[int]:
    """``ids`` cut before the first ``END_ID``, without ``PAD_ID`` and ``START_ID``: the content tokens."""
    out = []
    for i in np.asarray(ids, dtype=np.int64).ravel().tolist():
        if i == END_ID:
            break
        if i not in (PAD_ID, START_ID):
            out.append(i)
    return out


def decode_digits(ids: Sequence[int] | np.ndarray) -> str:
    """The string a target-id sequence spells: its digits up to the first ``<end>`` ("" if none)."""
    return "".join(TARGET_VOCAB[i] for i in strip_special(ids))


def decode_source(ids: Sequence[int] | np.ndarray) -> list[str]:
    """The words of a source-id row, without padding (the labels of an attention heatmap's x axis)."""
    return [SOURCE_VOCAB[i] for i in np.asarray(ids).ravel().tolist() if i != PAD_ID]


class Split(NamedTuple):
    """One split of :func:`number_dataset`: ``model.fit([source, decoder_input], decoder_target)``.

    numbers (N,) int64; source (N, T_in) word ids padded with 0; decoder_input (N, T_out) =
    ``<start> digits`` padded; decoder_target (N, T_out) = ``digits <end>`` padded.
    """

    numbers: np.ndarray
    source: np.ndarray
    decoder_input: np.ndarray
    decoder_target: np.ndarray


def _encode_split(numbers: np.ndarray, source_len: int, target_len: int) -> Split:
    n = len(numbers)
    source = np.zeros((n, source_len), np.int32)
    dec_in = np.zeros((n, target_len), np.int32)
    dec_out = np.zeros((n, target_len), np.int32)
    for row, number in enumerate(numbers.tolist()):
        words = encode_words(number)
        source[row, : len(words)] = words
        digits = encode_digits(number)
        dec_in[row, : len(digits) + 1] = [START_ID, *digits]
        dec_out[row, : len(digits) + 1] = [*digits, END_ID]
    return Split(numbers, source, dec_in, dec_out)


def number_dataset(
    max_value: int = MAX_NUMBER,
    seed: int = 0,
    size: int | None = None,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> dict[str, Split]:
    """``{"train", "val", "test"}`` splits of the numbers 0..max_value (or ``size`` of them, sampled).

    The numbers are drawn without replacement (all of them when ``size`` is None), shuffled with
    ``seed`` and cut by ``fractions``, so a number is in exactly one split: the test set holds
    numbers the model never saw. Every split is padded to the same lengths: the source to the most
    words among the chosen numbers, the decoder rows to the most digits plus one.
    """
    if not 0 <= max_value <= MAX_NUMBER:
        raise ValueError(f"max_value must be between 0 and {MAX_NUMBER:,}, not {max_value}")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers that sum to 1, not {fractions}")
    rng = np.random.default_rng(seed)
    total = max_value + 1
    if size is None:
        numbers = rng.permutation(total)
    else:
        if not 0 < size <= total:
            raise ValueError(f"size must be between 1 and {total:,} (the numbers 0..max_value), not {size}")
        numbers = rng.choice(total, size=size, replace=False)
    numbers = numbers.astype(np.int64)
    source_len = max(len(number_tokens(int(n))) for n in numbers)
    target_len = len(str(int(numbers.max()))) + 1
    cuts = np.round(np.cumsum(fractions)[:2] * len(numbers)).astype(int)
    parts = np.split(numbers, cuts)
    return {
        name: _encode_split(part, source_len, target_len)
        for name, part in zip(("train", "val", "test"), parts, strict=True)
    }


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


def build_seq2seq(
    source_vocab_size: int = len(SOURCE_VOCAB),
    target_vocab_size: int = len(TARGET_VOCAB),
    units: int = 64,
    embed: int = 32,
    attention: bool = True,
    bidirectional: bool = True,
    seed: int | None = None,
) -> Any:
    """A GRU encoder–decoder with Luong attention: ``[source_ids, decoder_input_ids]`` → float32 logits.

    - Encoder: ``Embedding(mask_zero=True)`` then a GRU over the source (bidirectional by default,
      ``units // 2`` per direction, concatenated), returning its states ``h_s`` (batch, T_in, units).
    - Decoder: ``Embedding(mask_zero=True)`` then ``GRU(units)`` started from the encoder's final
      state (both directions' final states, concatenated), giving ``h_t`` (batch, T_out, units).
    - Cross-attention (Luong et al. 2015, "general" score): ``score(t, s) = h_tᵀ W_a h_s``, softmax
      over the source positions with padding masked out, context ``c_t = Σ_s a_ts h_s``; then
      ``h̃_t = tanh(W_c [c_t; h_t])`` (layer "attentional"). The layer "cross_attention" returns the
      weights ``a`` too; :func:`attention_model` exposes them.
    - Output: ``Dense(target_vocab_size, dtype="float32")`` of ``h̃_t`` (of ``h_t`` without attention).

    With ``attention=False`` the decoder sees the source only through its initial state: the
    fixed-size bottleneck attention was invented to remove. Under ``mixed_float16`` or
    ``mixed_bfloat16`` the layers compute in half precision and the logits stay float32.
    """
    import keras

    if bidirectional and units % 2:
        raise ValueError(
            f"a bidirectional encoder splits units between two directions: use an even number, not {units}"
        )
    if seed is not None:
        keras.utils.set_random_seed(seed)
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="decoder_input")

    x = keras.layers.Embedding(source_vocab_size, embed, mask_zero=True, name="source_embedding")(source)
    if bidirectional:
        gru = keras.layers.GRU(units // 2, return_sequences=True, return_state=True)
        enc_states, h_forward, h_backward = keras.layers.Bidirectional(gru, name="encoder")(x)
        enc_final = keras.layers.Concatenate(name="encoder_final")([h_forward, h_backward])
    else:
        enc_states, enc_final = keras.layers.GRU(
            units, return_sequences=True, return_state=True, name="encoder"
        )(x)

    y = keras.layers.Embedding(target_vocab_size, embed, mask_zero=True, name="target_embedding")(target_in)
    dec_states = keras.layers.GRU(units, return_sequences=True, name="decoder")(y, initial_state=enc_final)

    if attention:
        source_mask = keras.ops.not_equal(source, PAD_ID)
        target_mask = keras.ops.not_equal(target_in, PAD_ID)
        query = keras.layers.Dense(units, use_bias=False, name="attention_query")(dec_states)  # W_a h_t
        context, weights = keras.layers.Attention(name="cross_attention")(
            [query, enc_states], mask=[target_mask, source_mask], return_attention_scores=True
        )
        both = keras.layers.Concatenate(name="context_and_state")([context, dec_states])
        features = keras.layers.Dense(units, activation="tanh", name="attentional")(both)
    else:
        features = dec_states
    logits = keras.layers.Dense(target_vocab_size, dtype="float32", name="logits")(features)
    return keras.Model([source, target_in], logits, name="seq2seq_attention" if attention else "seq2seq")


def attention_model(model: Any) -> Any:
    """A model sharing ``model``'s layers that returns the cross-attention weights (batch, T_out, T_in).

    Row ``t`` holds the weights decoder step ``t`` puts on each source position: they sum to 1
    over the source words, and padded source positions get 0. float32 under every policy.
    """
    import keras

    try:
        _, weights = model.get_layer("cross_attention").output
    except ValueError:
        raise ValueError(
            "this model has no cross-attention: build it with build_seq2seq(..., attention=True)"
        ) from None
    weights = keras.layers.Activation("linear", dtype="float32", name="attention_weights")(weights)
    return keras.Model(model.inputs, weights, name="cross_attention_weights")


def masked_token_accuracy(y_true: Any, y_pred: Any) -> Any:
    """Keras metric: 1.0 where a target token's argmax logit is right, else 0.0, per position.

    Keras averages it over the mask the model's logits carry (the decoder input's non-padding
    positions, which are exactly the target's), so padding is not counted.
    """
    import keras

    hit = keras.ops.equal(keras.ops.argmax(y_pred, axis=-1), keras.ops.cast(y_true, "int64"))
    return keras.ops.cast(hit, "float32")


def compile_seq2seq(model: Any, learning_rate: float = 3e-3, clipnorm: float | None = 1.0) -> Any:
    """Compile ``model`` for teacher forcing: Adam, cross-entropy on logits that ignores ``PAD_ID``
    targets, and :func:`masked_token_accuracy`. Returns the model."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
        metrics=[masked_token_accuracy],
    )
    return model


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``z - log Σ exp z`` over the last axis, in float64 (stable: the maximum is subtracted first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def keras_step_fn(model: Any, compiled: bool = True) -> StepFn:
    """A step function for a training model ``[source, decoder_input] → logits``.

    It runs the model on the whole prefix and keeps the last position's log-softmax. That costs
    O(t²) over a decode of t steps instead of O(t) with a cached decoder state, which is nothing
    for outputs of at most 7 tokens, and it needs no separate inference model. With ``compiled``
    the call is traced once (a ``tf.function`` over any batch and prefix length: a few seconds
    once, then fast); without, it runs eagerly (no start-up cost, slower per call).
    """
    import tensorflow as tf

    def last_logits(source: Any, prefix: Any) -> Any:
        return tf.cast(model([source, prefix], training=False)[:, -1, :], tf.float32)

    if compiled:
        spec = tf.TensorSpec((None, None), tf.int32)
        last_logits = tf.function(last_logits, input_signature=[spec, spec])

    def step(sources: np.ndarray, prefixes: np.ndarray) -> np.ndarray:
        return log_softmax(last_logits(np.asarray(sources, np.int32), np.asarray(prefixes, np.int32)).numpy())

    return step


def greedy_decode(
    step_fn: StepFn,
    sources: np.ndarray,
    max_len: int,
    start_id: int = START_ID,
    end_id: int = END_ID,
) -> list[list[int]]:
    """Greedy decoding of each source row: ``y_t = argmax_v log p(v | y_<t, x)`` until ``<end>``.

    Returns one token list per row (no ``<start>``; ``<end>`` included when produced; at most
    ``max_len`` tokens). All rows go through ``step_fn`` together; a finished row is fed padding
    and its output ignored. Ties go to the lowest token id.
    """
    sources = np.asarray(sources)
    n = len(sources)
    prefixes = np.full((n, 1), start_id, dtype=np.int32)
    done = np.zeros(n, dtype=bool)
    outputs: list[list[int]] = [[] for _ in range(n)]
    for _ in range(max_len):
        if done.all():
            break
        nxt = np.argmax(step_fn(sources, prefixes), axis=-1).astype(np.int32)
        nxt[done] = PAD_ID
        for row in np.flatnonzero(~done):
            outputs[row].append(int(nxt[row]))
        done |= nxt == end_id
        prefixes = np.concatenate([prefixes, nxt[:, None]], axis=1)
    return outputs


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's length penalty ``lp(Y) = ((5 + |Y|) / 6) ** alpha`` (Wu et al. 2016, eq. 14).

    ``|Y|`` counts the generated tokens, ``<end>`` included. A hypothesis's score is
    ``log P(Y | X) / lp(Y)``: alpha = 0 ranks by the raw sum of log-probabilities (which favours
    short outputs), larger alpha favours longer ones.
    """
    return ((5.0 + length) / 6.0) ** alpha


class Hypothesis(NamedTuple):
    """A beam entry: ``tokens`` (no ``<start>``), ``log_prob`` = Σ log p, ``score`` = log_prob / lp(len),
    and whether it ended with ``<end>``."""

    tokens: tuple[int, ...]
    log_prob: float
    score: float
    finished: bool


class BeamResult(NamedTuple):
    """What :func:`beam_search` found.

    ``hypotheses``: the finished hypotheses, plus those still open when ``max_len`` was reached,
    best ``score`` first. ``steps[t]``: the hypotheses kept at step ``t + 1`` (best ``log_prob``
    first), the ones that just finished marked ``finished``: what a widget shows of the beam.
    """

    hypotheses: list[Hypothesis]
    steps: list[list[Hypothesis]]

    @property
    def best(self) -> Hypothesis:
        """The highest-scoring hypothesis."""
        return self.hypotheses[0]


def beam_search_batch(
    step_fn: StepFn,
    sources: np.ndarray,
    beam_width: int,
    max_len: int,
    start_id: int = START_ID,
    end_id: int = END_ID,
    alpha: float = 0.0,
) -> list[BeamResult]:
    """:func:`beam_search` for every row of ``sources``, with one ``step_fn`` call per step for all.

    The beam of each source evolves exactly as in :func:`beam_search`; only the calls are shared.
    """
    if beam_width < 1 or max_len < 1:
        raise ValueError(f"beam_width and max_len must be at least 1, not {beam_width} and {max_len}")
    sources = np.asarray(sources)
    n = len(sources)
    beams: list[list[tuple[tuple[int, ...], float]]] = [[((), 0.0)] for _ in range(n)]
    finished: list[list[Hypothesis]] = [[] for _ in range(n)]
    steps: list[list[list[Hypothesis]]] = [[] for _ in range(n)]

    def hyp(tokens: tuple[int, ...], log_prob: float, done: bool) -> Hypothesis:
        return Hypothesis(tokens, log_prob, log_prob / length_penalty(len(tokens), alpha), done)

    for _ in range(max_len):
        owners = [i for i in range(n) for _ in beams[i]]
        if not owners:
            break
        live = [entry for i in range(n) for entry in beams[i]]
        prefixes = np.array([(start_id, *tokens) for tokens, _ in live], dtype=np.int32)
        logp = np.asarray(step_fn(sources[owners], prefixes), dtype=np.float64)
        row = 0
        for i in range(n):
            k = len(beams[i])
            if not k:
                continue
            # every candidate has the same length, so ranking by log-prob here equals ranking by score
            totals = np.array([lp for _, lp in beams[i]])[:, None] + logp[row : row + k]
            row += k
            order = np.argsort(-totals, axis=None, kind="stable")[:beam_width]
            kept, new_beam = [], []
            for flat in order:
                parent, token = divmod(int(flat), totals.shape[1])
                tokens, total = (*beams[i][parent][0], token), float(totals[parent, token])
                if token == end_id:  # moved out of the beam: kept as it is, never extended
                    finished[i].append(hyp(tokens, total, True))
                    kept.append(finished[i][-1])
                else:
                    new_beam.append((tokens, total))
                    kept.append(hyp(tokens, total, False))
            beams[i] = new_beam
            steps[i].append(kept)
    results = []
    for i in range(n):
        pool = finished[i] + [hyp(tokens, total, False) for tokens, total in beams[i]]
        ranked = sorted(pool, key=lambda h: -h.score)  # stable: among equal scores, the first found wins
        results.append(BeamResult(ranked, steps[i]))
    return results


def beam_search(
    step_fn: StepFn,
    source: np.ndarray,
    beam_width: int,
    max_len: int,
    start_id: int = START_ID,
    end_id: int = END_ID,
    alpha: float = 0.0,
) -> BeamResult:
    """Beam search for one source row.

    The beam starts as ``[<start>]``. At each step every open hypothesis is extended by every
    token, each candidate scored by its summed log-probability, and the ``beam_width`` best
    candidates kept. A kept candidate that ends in ``end_id`` is moved out of the beam into the
    finished list: it is never extended again, and the beam continues with the others (it shrinks).
    The search stops when the beam is empty or after ``max_len`` tokens; the finished hypotheses
    (and any still open at ``max_len``) are then ranked once by ``log P(Y) / lp(Y)`` with
    :func:`length_penalty`. With ``beam_width=1`` this is :func:`greedy_decode`.
    """
    return beam_search_batch(step_fn, np.asarray(source)[None], beam_width, max_len, start_id, end_id, alpha)[
        0
    ]


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------


def exact_match(predicted: Sequence[Sequence[int]], target: Sequence[Sequence[int]] | np.ndarray) -> float:
    """The fraction of rows whose content tokens (:func:`strip_special`) are exactly the target's.

    ``predicted`` is what a decoder returned (token lists); ``target`` the same or padded
    ``decoder_target`` rows.
    """
    if len(predicted) != len(target):
        raise ValueError(f"{len(predicted)} predictions for {len(target)} targets")
    if not len(target):
        return 0.0
    return float(
        np.mean([strip_special(p) == strip_special(t) for p, t in zip(predicted, target, strict=True)])
    )


def token_accuracy(predicted: Sequence[Sequence[int]], target: np.ndarray) -> float:
    """Position-wise accuracy of free-running outputs over the non-padding ``target`` positions.

    Row ``r``'s token ``t`` counts as right when ``predicted[r][t] == target[r, t]``
    (``<end>`` included); a prediction too short is wrong at the positions it misses.
    """
    target = np.asarray(target)
    padded = np.full(target.shape, -1, dtype=np.int64)
    for r, tokens in enumerate(predicted):
        tokens = list(tokens)[: target.shape[1]]
        padded[r, : len(tokens)] = tokens
    mask = target != PAD_ID
    return float((padded == target)[mask].mean())


def teacher_forced_accuracy(logits: np.ndarray, decoder_target: np.ndarray) -> tuple[float, float]:
    """``(token accuracy, sequence accuracy)`` of teacher-forced logits (batch, T, V).

    A token is right when its argmax is the target; a sequence when all its non-padding tokens
    are. The sequence accuracy equals greedy decoding's exact match (a decoder that is right at
    every step given the right prefix never leaves it), so the exposure-bias gap shows in the
    token accuracy.
    """
    target = np.asarray(decoder_target)
    mask = target != PAD_ID
    hit = (np.argmax(np.asarray(logits), axis=-1) == target) | ~mask
    return float(hit[mask].mean()), float(hit.all(axis=1).mean())


def exposure_bias_gap(
    model: Any, split: Split, batch_size: int = 512, compiled: bool = True
) -> dict[str, float]:
    """Teacher forcing vs free running on one split, for a model from :func:`build_seq2seq`.

    Returns ``teacher_forced_token_accuracy`` (each step fed the true prefix), the same
    ``free_running_token_accuracy`` (each step fed the model's own greedy outputs; a mistake
    shifts or corrupts what follows), ``greedy_exact_match``, and ``gap`` = teacher-forced minus
    free-running token accuracy. ``compiled=False`` runs the model eagerly (no tracing: quicker
    for a few rows).
    """
    inputs = [split.source, split.decoder_input]
    if compiled:
        logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    else:
        logits = np.concatenate(
            [
                model([x[lo : lo + batch_size] for x in inputs]).numpy()
                for lo in range(0, len(split.source), batch_size)
            ]
        )
    tf_token, _ = teacher_forced_accuracy(logits, split.decoder_target)
    step = keras_step_fn(model, compiled=compiled)
    max_len = split.decoder_target.shape[1]
    predicted: list[list[int]] = []
    for lo in range(0, len(split.source), batch_size):
        predicted += greedy_decode(step, split.source[lo : lo + batch_size], max_len)
    free_token = token_accuracy(predicted, split.decoder_target)
    return {
        "teacher_forced_token_accuracy": tf_token,
        "free_running_token_accuracy": free_token,
        "greedy_exact_match": exact_match(predicted, split.decoder_target),
        "gap": tf_token - free_token,
    }
