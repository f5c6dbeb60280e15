"""Checks for Lab 07 (masked language model): whole-word masking, the tied MLM loss on the selected
positions only, and a classifier on the pretrained encoder. Conventions as in lesson 07 (``PAD_ID`` 0,
``MASK_ID`` 2, words from ``N_SPECIAL`` 3, ``IGNORE`` -100 for "no loss here").

* ``q1`` ``mask_whole_words(ids, starts, rng, vocab_size, rate=0.15)``, judged statistically on 77,000
  tokens and by its exact invariants. Mistakes: pieces selected on their own, only a word's first piece,
  a word chosen when any piece is, padding masked, all [MASK], 80/10/10 on every token, labels not
  IGNORE or taken from the inputs, special ids drawn, ``ids`` changed in place, ``rng`` or ``rate`` ignored.
* ``q2`` ``mlm_loss(hidden, labels, embeddings, bias)``. Mistakes: averaged over all tokens, ignored
  positions counted, summed, no softmax, 1 − p, the bias left out, the softmax over the positions.
* ``q3`` ``build_classifier(encoder, num_classes)``. Mistakes: a new encoder, padding in the mean, a
  softmax on the logits, the wrong head.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utils import text
from utils.checks import Exercise, Mismatch, Mistake, answer_tolerance, as_array, as_number, call, judge
from utils.checks import softmax as _softmax

__all__ = ["IGNORE", "MASK_ID", "N_SPECIAL", "PAD_ID", "UNK_ID", "make_probe", "pretrain_and_fine_tune"]
__all__ += ["q1", "q2", "q3", "reference_mlm_loss"]

PAD_ID, UNK_ID, MASK_ID, N_SPECIAL = text.PAD_ID, text.UNK_ID, text.MASK_ID, text.N_SPECIAL
IGNORE = text.IGNORE
PROBE_VOCAB = 50  # small, so that a draw that includes the special ids hits them often (3 in 50)


def make_probe(seed: int = 7, shape: tuple[int, int] = (600, 128)) -> tuple[np.ndarray, np.ndarray]:
    """(ids, starts): word pieces (no special ids), about 1.7 pieces a word, padding at the end of each row."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(N_SPECIAL, PROBE_VOCAB, size=shape)
    starts = rng.random(shape) < 0.6
    starts[:, 0] = True
    pad = np.arange(shape[1])[None, :] >= rng.integers(shape[1] // 10, shape[1] + 1, size=(shape[0], 1))
    ids[pad], starts[pad] = PAD_ID, False
    return ids, starts


# ------------------------------------------------------------------------------------------------
# q1: whole-word masking
# ------------------------------------------------------------------------------------------------

# fmt: off
Q1_MISTAKES = [
    IN_PLACE := Mistake("ids changed in place", "Writing [MASK] into `inputs` also wrote into `ids`: the two names are one array. Work on a copy."),
    PADDING := Mistake("padding selected", "Padding is not text: a [PAD] position is never selected nor changed."),
    NOT_IGNORED := Mistake("labels not IGNORE", "The loss must count only the selected positions: every other label is IGNORE."),
    FROM_INPUTS := Mistake("labels taken from the masked inputs", "The label is what the model must recover: the original id, from `ids`."),
    BAD_LABELS := Mistake("labels not the original ids", "A selected position's label is its original id, unchanged."),
    EVERY_TOKEN := Mistake("80/10/10 on every token", "Only the selected positions take part in 80/10/10; every other position keeps its id."),
    PIECES := Mistake("pieces selected on their own", "Whole-word masking selects *words*: all the pieces of a word are selected together, or none."),
    FIRST_ONLY := Mistake("only the first piece of each word", "A selected word's continuation pieces (starts False) are selected too, up to the next start."),
    ANY_PIECE := Mistake("a word chosen when any of its pieces is", "Each word is one draw with probability `rate`; longer words must not get more chances."),
    RATE := Mistake("share of words selected", "Draw once per word (at its start), with probability `rate`: not a fixed 0.15."),
    ALL_MASK := Mistake("all [MASK]", "BERT leaves 10 % unchanged and swaps 10 % for a random word: fine-tuning inputs have no [MASK]."),
    SPECIALS := Mistake("special ids drawn", "A random replacement is a random *word*: ids from N_SPECIAL to vocab_size − 1."),
    SHARES := Mistake("shares of 80/10/10", "Draw one uniform number per selected position and cut it at 0.8 and 0.9; a 10 % draw among the non-[MASK] ones gives 2 %."),
    RNG := Mistake("rng ignored", "Draw every random number from the `rng` you are given, so that a run can be repeated."),
]
# fmt: on


def _ints(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    arr = as_array(value, what, shape=shape, hint="Return two arrays shaped like `ids`: inputs, labels.")
    if not np.all(arr == np.round(arr)):
        raise Mismatch(what, expected="whole numbers (token ids)", got="fractions or NaN")
    return arr.astype(np.int64)


def _masked(fn: Any, ids: np.ndarray, starts: np.ndarray, seed: int, **kw: Any) -> tuple:
    out = call(fn, ids, starts.copy(), np.random.default_rng(seed), PROBE_VOCAB, **kw)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise Mismatch("what mask_whole_words returns", expected="(inputs, labels)", got=type(out).__name__)
    return _ints(out[0], "inputs (returned first)", ids.shape), _ints(out[1], "labels", ids.shape)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _check_whole_words(fn: Any) -> None:
    ids, starts = make_probe()
    given = ids.copy()
    inputs, labels = _masked(fn, given, starts, 0)
    real, sel, changed = ids != PAD_ID, labels != IGNORE, inputs != ids
    if not np.array_equal(given, ids):
        IN_PLACE.fail("the `ids` you were given", expected="left unchanged", got="changed")
    if np.mean(labels[real] == ids[real]) > 0.9:
        NOT_IGNORED.fail(
            "the labels of the positions not selected", expected=f"IGNORE ({IGNORE})", got="the token ids"
        )
    if np.any(sel[~real] | changed[~real]):
        PADDING.fail(
            "the [PAD] positions", expected="untouched", got=_pct(np.mean(sel[~real] | changed[~real]))
        )
    if np.mean(labels[sel] == MASK_ID) > 0.5:
        FROM_INPUTS.fail(
            "the labels of the selected positions", expected="the original ids", got="mostly MASK_ID"
        )
    if not np.array_equal(labels[sel], ids[sel]):
        BAD_LABELS.fail(
            "the selected labels", expected="the original ids", got=_pct(np.mean(labels[sel] != ids[sel]))
        )
    if np.any(changed[real & ~sel]):
        EVERY_TOKEN.fail(
            "the positions not selected", expected="unchanged", got=_pct(np.mean(changed[real & ~sel]))
        )
    first = np.maximum.accumulate(np.where(starts, np.arange(ids.shape[1]), 0), axis=1)
    word_sel = np.take_along_axis(sel, first, axis=1)  # is the word of each piece selected (at its start)?
    if np.any(real & (sel != word_sel)):
        mistake = FIRST_ONLY if np.mean(sel[real & ~starts & word_sel]) < 0.1 else PIECES
        mistake.fail("the pieces of each word", expected="all selected or none", got="words partly selected")
    word_rate = float(np.mean(sel[starts & real]))
    if abs(word_rate - 0.15) > 0.012:
        (ANY_PIECE if word_rate > 0.17 else RATE).fail(
            "the share of words selected", expected="15 %", got=_pct(word_rate)
        )
    new, old = inputs[sel], ids[sel]
    masked, kept = float(np.mean(new == MASK_ID)), float(np.mean(new == old))
    swapped = new[(new != MASK_ID) & (new != old)]
    if masked > 0.97:
        ALL_MASK.fail(
            "the selected positions", expected="80 % [MASK], 10 % random, 10 % kept", got=_pct(masked)
        )
    if np.any((swapped < N_SPECIAL) | (swapped >= PROBE_VOCAB)):
        SPECIALS.fail(
            "the random replacements", expected=f"word ids {N_SPECIAL} … vocab_size − 1", got="special ids"
        )
    share = len(swapped) / max(len(new), 1)
    if abs(masked - 0.8) > 0.035 or abs(share - 0.1) > 0.03 or abs(kept - 0.1) > 0.03:
        got = f"{_pct(masked)} [MASK], {_pct(share)} random, {_pct(kept)} unchanged"
        SHARES.fail(
            "the shares of the selected positions", expected="80 %, 10 %, 10 % (within 3 points)", got=got
        )
    again, other = _masked(fn, ids.copy(), starts, 0), _masked(fn, ids.copy(), starts, 1)
    if not np.array_equal(np.stack(again), np.stack([inputs, labels])) or np.array_equal(other[1], labels):
        RNG.fail("calls with the same seed, then another", expected="the same, then different", got="not so")
    if np.any(_masked(fn, ids[:2].copy(), starts[:2], 0, rate=0.0)[1] != IGNORE):
        RATE.fail("mask_whole_words(..., rate=0.0)", expected="nothing selected", got="some selected")


q1 = Exercise(
    "Q1 · whole-word masking",
    _check_whole_words,
    hint=(
        "First decide which words are selected (one draw per word, at the piece where it starts), then "
        "spread that decision to the word's other pieces; the rest is the lesson's 80/10/10 rule.",
        "For every position, find where its word starts: the running maximum along the row of the "
        "positions whose `starts` is True. Look the start's decision up there (take_along_axis).",
    ),
)

# ------------------------------------------------------------------------------------------------
# q2: the loss through the tied output layer, at the selected positions only
# ------------------------------------------------------------------------------------------------


def _ce(hidden, labels, table, bias, *, over="selected", prob="log", use_bias=True, axis=-1):
    labels, b = np.asarray(labels), np.asarray(bias, np.float64) if use_bias else 0.0
    logits = np.asarray(hidden, np.float64) @ np.asarray(table, np.float64).T + b
    keep = labels != IGNORE
    z, y = (logits, np.where(keep, labels, 0)) if over == "all" else (logits[keep], labels[keep])
    picked = np.take_along_axis(_softmax(z, axis) if prob != "raw" else np.exp(z), y[..., None], -1)[..., 0]
    loss = 1 - picked if prob == "1-p" else -np.log(picked)
    return loss.sum() if over == "sum" else loss.sum() / labels.size if over == "all tokens" else loss.mean()


def reference_mlm_loss(hidden, labels, embeddings, bias) -> float:
    """Mean cross-entropy (nats) of the tied logits h Eᵀ + b over the positions whose label is not IGNORE."""
    return float(_ce(hidden, labels, embeddings, bias))


# fmt: off
Q2_MISTAKES = [
    Mistake("averaged over all tokens", "The sum is over the selected positions, and so is the count you divide by.", lambda *a: _ce(*a, over="all tokens")),
    Mistake("every position counted", "Ignored positions (label IGNORE) are not targets: leave them out of the loss altogether.", lambda *a: _ce(*a, over="all")),
    Mistake("summed, not averaged", "The loss is the *mean* over the selected positions.", lambda *a: _ce(*a, over="sum")),
    Mistake("no softmax", "Logits are not probabilities: normalise over the vocabulary first.", lambda *a: _ce(*a, prob="raw")),
    Mistake("1 − p", "The cross-entropy is minus the log of the probability of the right word.", lambda *a: _ce(*a, prob="1-p")),
    Mistake("output bias left out", "The tied output layer has a bias per word too: logits = h Eᵀ + b.", lambda *a: _ce(*a, use_bias=False)),
    Mistake("softmax over the positions", "Each position's probabilities are over the vocabulary: the last axis.", lambda *a: _ce(*a, axis=0)),
]
# fmt: on


def _loss_probe(seed: int = 10) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random((4, 9)) < 0.3, rng.integers(N_SPECIAL, 12, size=(4, 9)), IGNORE)
    labels[0, 0] = 5
    hidden, table, bias = rng.normal(size=(4, 9, 6)), rng.normal(size=(12, 6)) * 0.8, rng.normal(size=12) * 4
    return hidden.astype("float32"), labels, table.astype("float32"), bias.astype("float32")


def _check_mlm_loss(fn: Any) -> None:
    inputs = _loss_probe()
    got = call(fn, *(a.copy() for a in inputs))
    tol = answer_tolerance(got, rtol=1e-4, atol=1e-5)
    what = "mlm_loss(hidden (4, 9, 6), labels (4, 9), embeddings (12, 6), bias (12,))"
    got = as_number(got, what, hint="Return one number: the mean over the selected positions.")
    judge(got, reference_mlm_loss(*inputs), Q2_MISTAKES, what=what, inputs=inputs, tol=tol)


q2 = Exercise(
    "Q2 · the tied MLM loss at the selected positions",
    _check_mlm_loss,
    hint=(
        "Keep only the positions with a label first, then score just those against the vocabulary: "
        "that is where pretraining saves most of its time.",
        "Gather the hidden vectors and labels where labels != IGNORE; logits are those vectors times the "
        "transposed embedding matrix, plus the bias; then the mean sparse cross-entropy from logits.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q3: a classifier on the pretrained encoder
# ------------------------------------------------------------------------------------------------

# fmt: off
Q3_MISTAKES = [
    NOT_MODEL := Mistake("not a keras.Model", "Build it with the functional API: an Input, the encoder, a pooling layer, a Dense head, then keras.Model."),
    NEW_ENCODER := Mistake("a new encoder", "Call the encoder you are given: a new one starts from random weights and would throw the pretraining away."),
    HEAD := Mistake("the wrong head", "End in a Dense layer with num_classes units on one pooled vector per text."),
    SOFTMAX := Mistake("a softmax on the logits", "Leave out the softmax (no probabilities): the loss takes logits, from_logits=True."),
    PAD_MEAN := Mistake("padding in the mean", "Average over the real positions only: the padding mask must reach the pooling (or pass mask=)."),
]
# fmt: on


def _probe_encoder(vocab_size: int = 30, length: int = 12, width: int = 8) -> Any:
    import keras

    keras.utils.set_random_seed(11)
    ids = keras.Input((length,), dtype="int32")
    init = keras.initializers.RandomNormal(stddev=1.0)  # outputs of order 1: the means differ clearly
    x = keras.layers.Embedding(vocab_size, width, mask_zero=True, embeddings_initializer=init)(ids)
    return keras.Model(ids, keras.layers.Dense(width, activation="tanh")(x), name="probe_encoder")


def _check_classifier(fn: Any) -> None:
    import keras

    encoder = _probe_encoder()
    model = call(fn, encoder, 5)
    if not isinstance(model, keras.Model):
        got, hint = type(model).__name__, NOT_MODEL.hint
        raise Mismatch("build_classifier(encoder, 5)", expected="a keras.Model", got=got, hint=hint)
    if not any(layer is encoder or layer in encoder.layers for layer in model._flatten_layers()):
        hint = NEW_ENCODER.hint
        raise Mismatch("your classifier's layers", expected="the given encoder", got="none of it", hint=hint)
    ids = np.random.default_rng(5).integers(N_SPECIAL, 30, size=(6, 12)).astype("int32")
    ids[:, 4:] = PAD_ID
    logits = call(model, ids, training=False)
    tol = answer_tolerance(logits, atol=1e-4)
    logits = as_array(logits, "the logits on ids (6, 12)", shape=(6, 5), hint=HEAD.hint)
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.units != 5 or head.activation.__name__ == "softmax":
        hint = SOFTMAX.hint if getattr(head, "activation", None) is keras.activations.softmax else HEAD.hint
        raise Mismatch("the last layer", expected="Dense logits", got=type(head).__name__, hint=hint)
    h = np.asarray(encoder(ids), dtype=np.float64)
    real = (ids != PAD_ID)[..., None]
    kernel, bias = head.get_weights()[:2]
    plain = h.mean(1) @ kernel + bias
    masked = (h * real).sum(1) / real.sum(1) @ kernel + bias
    judge(logits, masked, [Mistake(PAD_MEAN.name, PAD_MEAN.hint, lambda: plain)], what="the logits", tol=tol)


q3 = Exercise(
    "Q3 · a classifier on the pretrained encoder",
    _check_classifier,
    hint=(
        "Three pieces: the given encoder, a mean of its vectors over the real tokens, and a Dense layer "
        "of logits. Which Keras layer averages over a sequence and respects a mask?",
        "Use the functional API: an Input shaped like one sequence of ids, then the encoder, then "
        "GlobalAveragePooling1D (the padding mask travels with the tensors), then Dense(num_classes).",
    ),
)

# ------------------------------------------------------------------------------------------------
# See it work: the learner's functions pretrain and fine-tune a small encoder
# ------------------------------------------------------------------------------------------------


def pretrain_and_fine_tune(mask_whole_words: Any, mlm_loss: Any, build_classifier: Any, *, epochs: int = 20,
                           max_windows: int | None = None, fine_tune_epochs: int = 80, patience: int = 15,
                           per_class: int = 4, seed: int = 0, vocab_size: int = 2000, seq_len: int = 48) -> Any:  # fmt: skip
    """Lesson 07's recipe on one labelled sample, with the learner's three functions.

    Every token of this corpus is a whole word, so ``starts`` is every real position (whole-word
    masking is then BERT's rule). Prints the masked-token accuracy, the learner's ``mlm_loss`` on a fresh
    batch next to the reference, and the test accuracy fine-tuned and from scratch; returns a table.
    """
    from utils import data, viz

    texts, labels, class_names = data.docstring_families()
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(labels == k)) for k in range(len(class_names))]
    test_idx = np.concatenate([m[:60] for m in members])
    held_out = {texts[i] for i in test_idx}
    corpus = [doc for doc in data.python_text(min_chars=40) if doc not in held_out]
    word_id = {w: i for i, w in enumerate(text.build_vocab(corpus, vocab_size))}
    windows = text.make_windows(corpus, word_id, seq_len)[:max_windows]
    encoder = text.build_encoder(vocab_size, seq_len, 64, 2, 4, 128, 0.0, seed=seed)
    bias = __import__("tensorflow").Variable(np.zeros(vocab_size, "float32"), name="mlm_bias")

    def mask_fn(ids, rng, vocab, rate):
        return mask_whole_words(ids, ids != PAD_ID, rng, vocab, rate)

    def report(epoch: int, history: dict) -> None:
        if epoch % 5 == 4 or epoch == epochs - 1:
            accuracy = history["masked-token accuracy"][-1]
            print(f"pretraining epoch {epoch + 1}/{epochs}: masked-token accuracy {accuracy:.3f}")

    history = text.pretrain_mlm(encoder, windows, epochs=epochs, batch_size=128, learning_rate=2e-3, seed=seed,
                                callbacks=[report], mask_fn=mask_fn, output_bias=bias)  # fmt: skip
    inputs, y = (np.asarray(a) for a in mask_fn(windows[:64], np.random.default_rng(seed), vocab_size, 0.15))
    table = np.asarray(encoder.get_layer("embedding").token_embedding.embeddings)
    batch = (np.asarray(encoder(inputs), "float32"), y, table, np.asarray(bias))
    yours = as_number(mlm_loss(*batch), "your loss")
    print(f"your mlm_loss on a fresh batch: {yours:.3f} (reference {reference_mlm_loss(*batch):.3f})")
    weights, x_all = encoder.get_weights(), np.stack([text.encode(t, word_id, seq_len) for t in texts])
    draws = [np.random.default_rng(100 + seed).permutation(m[60:])[: 2 * per_class] for m in members]
    train_idx = np.concatenate([d[:per_class] for d in draws])
    val_idx = np.concatenate([d[per_class:] for d in draws])
    results = {}
    for arm in ("pretrained + fine-tuned", "from scratch"):
        enc = text.build_encoder(vocab_size, seq_len, 64, 2, 4, 128, 0.1, seed=seed)
        enc.set_weights(weights) if arm[0] == "p" else None
        model = build_classifier(enc, len(class_names))
        rates = dict(encoder_lr=3e-4, head_lr=3e-3) if arm[0] == "p" else dict(encoder_lr=1e-3, head_lr=1e-3)
        train, val = (x_all[train_idx], labels[train_idx]), (x_all[val_idx], labels[val_idx])
        text.fine_tune(model, train, val, epochs=fine_tune_epochs, patience=patience, seed=seed, **rates)
        predicted = np.argmax(model.predict(x_all[test_idx], batch_size=256, verbose=0), -1)
        results[arm] = float(np.mean(predicted == labels[test_idx]))
        print(f"{arm}: test accuracy {results[arm]:.3f}")
    title = f"{per_class} (+{per_class} validation) labels per family, {len(test_idx)} test docstrings"
    rows = [[arm, f"{acc:.3f}"] for arm, acc in results.items()]
    fig = viz.table(rows, ["classifier", "test accuracy"], title=title)
    fig.layout.meta = {"masked_accuracy": history["masked-token accuracy"][-1], "your_loss": yours, **results}
    return fig
