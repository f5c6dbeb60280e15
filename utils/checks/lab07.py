"""Checks for Lab 07 (masked language model): BERT's masking rule, the masked loss, a fine-tuning head.

The conventions (the same as lesson 07): token ids are integers; ``PAD_ID = 0`` pads a sequence,
``UNK_ID = 1`` stands for a word outside the vocabulary, ``MASK_ID = 2`` is ``[MASK]``; ids below
``N_SPECIAL = 3`` are special and every id from ``N_SPECIAL`` to ``vocab_size - 1`` is a word.
A label of ``IGNORE = -100`` means "no loss here".

* ``q1``: ``mask_tokens(ids, rng, vocab_size, rate=0.15)`` returns ``(inputs, labels)``. It selects
  each non-padding position with probability ``rate``; of the selected positions 80 % become
  ``MASK_ID``, 10 % a random word id (never a special id) and 10 % keep their token; ``labels`` holds
  the original id at selected positions and ``IGNORE`` everywhere else. ``ids`` is not changed.
* ``q2``: ``mlm_loss(labels, logits)``: the mean cross-entropy over the selected positions only
  (``labels != IGNORE``), from logits of shape ``labels.shape + (vocab_size,)``.
* ``q3``: ``build_classifier(encoder, num_classes)``: a Keras model that reuses the pretrained
  encoder (its very layers and weights), averages its outputs over the non-padding positions and
  ends in ``Dense(num_classes)`` logits.

The q1 checker runs the learner's function on one big probe batch with a fixed seed (about 60,000
real tokens) and checks exact structure (padding untouched, unselected positions unchanged, labels
equal to the original ids where selected, replacements are word ids) and the proportions within
tolerances many standard deviations wide. Each mistake learners make (masking padding, all
[MASK] and no 80/10/10, 80/10/10 applied to every token, no IGNORE in the labels, random ids that
include special ids, labels taken from the masked inputs, ignoring ``rng``, changing ``ids`` in
place) has its own message.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from utils import env, text
from utils.checks import Exercise, Mismatch, call

__all__ = [
    "IGNORE",
    "MASK_ID",
    "N_SPECIAL",
    "PAD_ID",
    "UNK_ID",
    "make_probe_ids",
    "pretrain_and_fine_tune",
    "q1",
    "q2",
    "q3",
    "reference_mask_tokens",
    "reference_mlm_loss",
]

PAD_ID, UNK_ID, MASK_ID = text.PAD_ID, text.UNK_ID, text.MASK_ID
N_SPECIAL = text.N_SPECIAL
IGNORE = text.IGNORE

#: The probe of q1: a vocabulary small enough that a random draw that includes the special ids
#: hits them often (3 in 50), and enough tokens that 80/10/10 is measured to about ±0.6 points.
PROBE_VOCAB = 50
PROBE_SHAPE = (600, 128)


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn`` with NumPy's warnings silenced."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(fn, *args, **kwargs)


def _as_int_array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.dtype.kind not in "iuf" or arr.shape != shape:
        got = type(value).__name__ if arr is None else f"{arr.dtype} array of shape {arr.shape}"
        raise Mismatch(
            what,
            expected=f"an integer array of shape {shape}",
            got=got,
            hint="Return two arrays shaped like `ids`: `return inputs, labels`.",
        )
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise Mismatch(what, expected="whole numbers (token ids)", got="fractions or NaN")
        arr = arr.astype(np.int64)
    return arr.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# The model answers
# ---------------------------------------------------------------------------------------------


# The lesson's and the course's own masking rule (lesson 07 asserts its copy equals this one).
reference_mask_tokens = text.mask_tokens


def reference_mlm_loss(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean cross-entropy (nats) over the positions whose label is not ``IGNORE``."""
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype=np.float64)
    keep = labels != IGNORE
    z = logits[keep]
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(z)), labels[keep]].mean())


def make_probe_ids(
    seed: int = 7, shape: tuple[int, int] = PROBE_SHAPE, vocab_size: int = PROBE_VOCAB
) -> np.ndarray:
    """A batch of word ids (no special ids) with padding at the end of each row, 10-100 % filled."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(N_SPECIAL, vocab_size, size=shape)
    lengths = rng.integers(shape[1] // 10, shape[1] + 1, size=shape[0])
    ids[np.arange(shape[1])[None, :] >= lengths[:, None]] = PAD_ID
    return ids


# ---------------------------------------------------------------------------------------------
# q1: the masking rule
# ---------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{100 * x:.1f} %"


def _check_mask_tokens(mask_tokens: Any) -> None:
    ids = make_probe_ids()
    given = ids.copy()
    out = _run(mask_tokens, given, np.random.default_rng(0), PROBE_VOCAB)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise Mismatch(
            "what mask_tokens returns",
            expected="a pair (inputs, labels)",
            got=type(out).__name__,
            hint="End with `return inputs, labels`.",
        )
    inputs = _as_int_array(out[0], "inputs (the first array returned)", ids.shape)
    labels = _as_int_array(out[1], "labels (the second array returned)", ids.shape)
    if not np.array_equal(given, ids):
        raise Mismatch(
            "the `ids` you were given",
            expected="left unchanged",
            got="changed in place",
            hint="`inputs = ids` does not copy: writing [MASK] into `inputs` also overwrites `ids` (and the "
            "caller's batch). Start from `inputs = ids.copy()`.",
        )

    real = ids != PAD_ID
    pad = ~real
    selected = labels != IGNORE
    if np.all(labels == ids) or (np.mean(labels[real] == ids[real]) > 0.9):
        raise Mismatch(
            "labels at the positions that were not selected",
            expected=f"IGNORE ({IGNORE})",
            got="the token ids themselves",
            hint="The loss must only count the selected positions: labels are the original id where a "
            "position was selected and IGNORE everywhere else, `np.where(selected, ids, IGNORE)`.",
        )
    masked_pad = np.mean(selected[pad]) if pad.any() else 0.0
    changed = inputs != ids
    if masked_pad > 0.02 or np.any(changed[pad]):
        raise Mismatch(
            "the padding positions",
            expected="never selected, never changed (label IGNORE, input PAD_ID)",
            got=f"{_fmt(max(masked_pad, np.mean(changed[pad])))} of them selected or changed",
            hint="Padding is not text: select only where `ids != PAD_ID`, e.g. "
            "`selected = (rng.random(ids.shape) < rate) & (ids != PAD_ID)`.",
        )
    if np.any((labels != IGNORE) & (labels < 0)) or np.any(labels >= PROBE_VOCAB):
        raise Mismatch(
            "labels",
            expected=f"token ids, or IGNORE ({IGNORE})",
            got=f"values such as {sorted(set(labels[(labels != IGNORE) & ((labels < 0) | (labels >= PROBE_VOCAB))].tolist()))[:4]}",
            hint=f"Use exactly IGNORE = {IGNORE} for 'no loss here', and the original id otherwise.",
        )
    if np.mean(labels[selected] == MASK_ID) > 0.5:
        raise Mismatch(
            "labels at the selected positions",
            expected="the original token ids (what the model must predict)",
            got="mostly MASK_ID",
            hint="You took the labels from the masked inputs. Build `labels` from the original `ids` "
            "(before you write any [MASK]): `labels = np.where(selected, ids, IGNORE)`.",
        )
    if not np.array_equal(labels[selected], ids[selected]):
        wrong = float(np.mean(labels[selected] != ids[selected]))
        raise Mismatch(
            "labels at the selected positions",
            expected="the original token ids",
            got=f"{_fmt(wrong)} of them differ from `ids`",
            hint="Build `labels` from the original `ids`: `np.where(selected, ids, IGNORE)`.",
        )

    rate = float(np.mean(selected[real]))
    unselected_changed = float(np.mean(changed[real & ~selected]))
    if unselected_changed > 0.0:
        hint = (
            "You applied 80/10/10 to every token. Only the selected 15 % take part: draw one number per "
            "position and replace where `selected & (r < 0.8)` ([MASK]) or `selected & (0.8 <= r) & (r < 0.9)` "
            "(random word); every other position keeps its id."
            if unselected_changed > 0.3
            else "Some positions whose label is IGNORE were changed. Change only selected positions, and "
            "give every selected position its original id as the label."
        )
        raise Mismatch(
            "the positions that were not selected",
            expected="unchanged",
            got=f"{_fmt(unselected_changed)} of them changed",
            hint=hint,
        )
    if abs(rate - 0.15) > 0.01:
        raise Mismatch(
            "the share of real (non-padding) tokens selected",
            expected="15 % (within 1 point)",
            got=_fmt(rate),
            hint="Select each non-padding position independently with probability `rate`: "
            "`rng.random(ids.shape) < rate`.",
        )
    new = inputs[selected]
    old = ids[selected]
    to_mask = float(np.mean(new == MASK_ID))
    kept = float(np.mean(new == old))
    swapped = new[(new != MASK_ID) & (new != old)]
    if to_mask > 0.97:
        raise Mismatch(
            "the selected positions",
            expected="80 % [MASK], 10 % a random word, 10 % unchanged",
            got=f"{_fmt(to_mask)} [MASK]",
            hint="All selected tokens became [MASK]. BERT leaves 10 % unchanged and swaps 10 % for a random "
            "word, so the model cannot assume that only [MASK] positions matter: at fine-tuning time "
            "there is no [MASK] at all.",
        )
    special = np.isin(swapped, np.arange(N_SPECIAL))
    if special.any() or np.any(swapped >= PROBE_VOCAB) or np.any(swapped < 0):
        raise Mismatch(
            "the random replacements",
            expected=f"word ids from N_SPECIAL ({N_SPECIAL}) to vocab_size − 1",
            got=f"ids such as {sorted(set(swapped[special | (swapped >= PROBE_VOCAB) | (swapped < 0)].tolist()))[:4]}",
            hint="A random replacement is a random *word*: `rng.integers(N_SPECIAL, vocab_size, size=...)`. "
            "Drawing from 0 puts [PAD], [UNK] or [MASK] into the text.",
        )
    swap_share = len(swapped) / max(len(new), 1)
    if abs(to_mask - 0.8) > 0.035 or abs(swap_share - 0.1) > 0.03 or abs(kept - 0.1) > 0.03:
        raise Mismatch(
            "the shares of the selected positions",
            expected="80 % [MASK], 10 % random word, 10 % unchanged (each within 3 points)",
            got=f"{_fmt(to_mask)} [MASK], {_fmt(swap_share)} random, {_fmt(kept)} unchanged",
            hint="Draw one uniform number r per position: r < 0.8 → [MASK]; 0.8 ≤ r < 0.9 → random word; "
            "otherwise keep. Drawing the random word only among positions that are not [MASK] yet, with "
            "a 10 % chance, gives 2 % instead of 10 %.",
        )

    again = _run(mask_tokens, ids.copy(), np.random.default_rng(0), PROBE_VOCAB)
    other = _run(mask_tokens, ids.copy(), np.random.default_rng(1), PROBE_VOCAB)
    same_seed = np.array_equal(np.asarray(again[0]), inputs) and np.array_equal(np.asarray(again[1]), labels)
    if not same_seed or np.array_equal(np.asarray(other[1]), labels):
        raise Mismatch(
            "two calls with the same `rng` seed",
            expected="the same result (and a different one for another seed)",
            got="different results" if not same_seed else "the same result for different seeds",
            hint="Draw every random number from the `rng` you are given (`rng.random`, `rng.integers`), not "
            "from `np.random.*`, so a run can be repeated.",
        )
    small = _run(mask_tokens, np.array([[5, 6, 7, PAD_ID]]), np.random.default_rng(0), 10, rate=0.0)
    if not np.array_equal(np.asarray(small[1]), np.full((1, 4), IGNORE)):
        raise Mismatch(
            "mask_tokens(ids, rng, vocab_size, rate=0.0)",
            expected="nothing selected",
            got=f"labels {np.asarray(small[1]).tolist()}",
            hint="Use the `rate` argument rather than a fixed 0.15.",
        )


q1 = Exercise(
    "Q1 · BERT's masking rule",
    _check_mask_tokens,
    hint="selected = (rng.random(shape) < rate) & (ids != PAD_ID); labels = original id where selected, "
    "IGNORE elsewhere; of the selected: r < 0.8 → MASK_ID, 0.8 ≤ r < 0.9 → rng.integers(N_SPECIAL, vocab_size), "
    "else keep.",
    lab="lab07",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# q2: the loss on the selected positions only
# ---------------------------------------------------------------------------------------------


def _loss_probe(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(N_SPECIAL, 12, size=(4, 9))
    labels = np.full(ids.shape, IGNORE)
    chosen = rng.random(ids.shape) < 0.3
    chosen[0, 0] = True
    labels[chosen] = ids[chosen]
    logits = rng.normal(0.0, 2.0, size=(*ids.shape, 12))
    return labels, logits.astype(np.float32)


def _loss_mistakes(labels: np.ndarray, logits: np.ndarray) -> list[tuple[float, str]]:
    keep = labels != IGNORE
    z = logits.astype(np.float64)
    log_p = z - z.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    safe = np.where(keep, labels, 0)
    ce = -np.take_along_axis(log_p, safe[..., None], axis=-1)[..., 0]
    p = np.exp(log_p)
    return [
        (
            float((ce * keep).sum() / keep.size),
            "You summed the loss over the selected positions but divided by the number of *all* positions. "
            "Divide by the number of selected ones: the loss is their mean.",
        ),
        (
            float(ce.mean()),
            "You averaged over every position: ignored ones counted with label 0 ([PAD]). Keep only the "
            "positions where `labels != IGNORE`.",
        ),
        (
            float((ce * keep).sum()),
            "You summed instead of averaging: divide by the number of selected positions.",
        ),
        (
            float(-np.log(np.take_along_axis(np.exp(z), safe[..., None], -1)[..., 0][keep]).mean()),
            "The logits are not probabilities: apply (log-)softmax over the vocabulary first.",
        ),
        (
            float((1 - np.take_along_axis(p, safe[..., None], -1)[..., 0])[keep].mean()),
            "That looks like 1 − p(correct). The cross-entropy is −log p(correct).",
        ),
    ]


def _check_mlm_loss(mlm_loss: Any) -> None:
    labels, logits = _loss_probe()
    value = _run(mlm_loss, labels.copy(), logits.copy())
    try:
        got = float(np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64))
    except (TypeError, ValueError):
        raise Mismatch(
            "mlm_loss(labels, logits)",
            expected="one number (the mean loss)",
            got=f"{type(value).__name__}"[:80],
            hint="Return a scalar: the mean over the selected positions.",
        ) from None
    want = reference_mlm_loss(labels, logits)
    if np.isclose(got, want, rtol=1e-4, atol=1e-5):
        return
    for wrong, hint in _loss_mistakes(labels, logits):
        if np.isclose(got, wrong, rtol=1e-4, atol=1e-5):
            raise Mismatch("mlm_loss on a probe batch", expected=f"{want:.5f}", got=f"{got:.5f}", hint=hint)
    raise Mismatch(
        "mlm_loss on a probe batch",
        expected=f"{want:.5f}",
        got=f"{got:.5f}",
        hint="Keep the positions where labels != IGNORE, take −log softmax(logits)[label] there, and average.",
    )


q2 = Exercise(
    "Q2 · the loss on the selected positions",
    _check_mlm_loss,
    hint="keep = labels != IGNORE; loss = mean over kept positions of −log softmax(logits)[label], e.g. "
    "keras.losses.sparse_categorical_crossentropy(labels[keep], logits[keep], from_logits=True).",
    lab="lab07",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: a classifier on top of the pretrained encoder
# ---------------------------------------------------------------------------------------------


def _probe_encoder(vocab_size: int = 30, length: int = 12, width: int = 8) -> Any:
    import keras

    keras.utils.set_random_seed(11)
    ids = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, width, mask_zero=True)(ids)
    x = keras.layers.Dense(width, activation="tanh")(x)
    return keras.Model(ids, x, name="probe_encoder")


def _check_classifier(build_classifier: Any) -> None:
    import keras

    encoder = _probe_encoder()
    before = [w.copy() for w in encoder.get_weights()]
    model = _run(build_classifier, encoder, 5)
    if not isinstance(model, keras.Model):
        raise Mismatch(
            "build_classifier(encoder, 5)",
            expected="a keras.Model",
            got=type(model).__name__,
            hint="Build it with the functional API: `keras.Model(ids, logits)`.",
        )
    if not any(layer is encoder or layer in encoder.layers for layer in model._flatten_layers()):
        raise Mismatch(
            "the layers of your classifier",
            expected="the pretrained encoder itself, inside the model",
            got="no layer of the encoder",
            hint="Call the encoder you are given (`h = encoder(ids)`); a new encoder would start from "
            "random weights and throw the pretraining away.",
        )
    if not all(np.array_equal(a, b) for a, b in zip(before, encoder.get_weights(), strict=True)):
        raise Mismatch("the encoder's weights", expected="unchanged by building", got="changed")
    rng = np.random.default_rng(5)
    ids = rng.integers(N_SPECIAL, 30, size=(6, 12))
    ids[:, 7:] = PAD_ID
    try:
        logits = np.asarray(model(ids.astype("int32"), training=False))
    except Exception as exc:  # noqa: BLE001 - the learner's model failing on a batch
        raise Mismatch(
            "your model on a batch of ids of shape (6, 12)",
            expected="logits of shape (6, 5)",
            got=f"{type(exc).__name__}: {exc}"[:160],
        ) from None
    if logits.shape != (6, 5):
        raise Mismatch(
            "the output of your model on a batch of ids of shape (6, 12)",
            expected=(6, 5),
            got=logits.shape,
            hint="Pool over the sequence (one vector per text), then `Dense(num_classes)`.",
        )
    # the encoder computes at the policy's precision (float16 on a T4): compare within its tolerance
    tol = env.tolerance()
    probs_like = np.allclose(logits.sum(-1), 1.0, atol=max(1e-4, tol["atol"])) and np.all(logits >= 0)
    if probs_like:
        raise Mismatch(
            "the output",
            expected="logits (no softmax)",
            got="rows that sum to 1",
            hint="Leave out the softmax and train with `from_logits=True`, as in the lesson.",
        )
    again = np.asarray(model(ids.astype("int32"), training=False))
    if not np.allclose(again, logits, atol=1e-5):
        raise Mismatch("your model", expected="the same logits for the same ids", got="different logits")
    longer = ids
    emb = np.asarray(encoder(longer.astype("int32")), dtype=np.float64)
    keep = (longer != PAD_ID)[..., None]
    masked_mean = (emb * keep).sum(1) / keep.sum(1)
    plain_mean = emb.mean(1)
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.units != 5:
        raise Mismatch(
            "the last layer",
            expected="Dense(num_classes) (logits)",
            got=type(head).__name__,
            hint="End with `keras.layers.Dense(num_classes)(pooled)`.",
        )
    kernel, bias = head.get_weights()[:2]
    plain_err = np.abs(plain_mean @ kernel + bias - logits).max()
    masked_err = np.abs(masked_mean @ kernel + bias - logits).max()
    if np.allclose(plain_mean @ kernel + bias, logits, **tol) and plain_err < masked_err:
        raise Mismatch(
            "the pooling",
            expected="the mean over the real (non-padding) positions",
            got="the mean over all positions, padding included",
            hint="Pass the padding mask to the pooling: `keras.layers.GlobalAveragePooling1D()(h, "
            "mask=ids != 0)`, or rely on the encoder's mask (mask_zero=True) being propagated.",
        )


q3 = Exercise(
    "Q3 · a classifier on the pretrained encoder",
    _check_classifier,
    hint="ids = keras.Input(encoder.input_shape[1:], dtype='int32'); h = encoder(ids); "
    "pooled = keras.layers.GlobalAveragePooling1D()(h); logits = keras.layers.Dense(num_classes)(pooled).",
    lab="lab07",
    solution_id="q3",
)


# ---------------------------------------------------------------------------------------------
# See it work: the learner's functions pretrain and fine-tune a small encoder
# ---------------------------------------------------------------------------------------------


def pretrain_and_fine_tune(
    mask_tokens: Any,
    mlm_loss: Any,
    build_classifier: Any,
    *,
    epochs: int = 20,
    vocab_size: int = 2000,
    seq_len: int = 48,
    d_model: int = 64,
    num_layers: int = 2,
    per_class: int = 4,
    max_windows: int | None = None,
    fine_tune_epochs: int = 80,
    patience: int = 15,
    seed: int = 0,
) -> Any:
    """Pretrain a small encoder with the learner's ``mask_tokens`` and fine-tune it with ``build_classifier``.

    Lesson 07's recipe (``utils.text``), for one labelled sample: 60 docstrings per family of
    ``utils.data.docstring_families()`` are the test set and are removed from the pretraining
    corpus; ``per_class`` docstrings per family train and as many validate (early stopping).
    ``max_windows`` caps the pretraining windows (None: all of them, about 4,500). Prints the
    masked-token accuracy every few epochs, the learner's ``mlm_loss`` on a freshly masked batch
    (next to the reference loss), then the test accuracy of the fine-tuned classifier and of the
    same network trained from scratch. Returns a table figure; ``layout.meta`` holds the numbers.
    """
    import tensorflow as tf

    from utils import data, text, viz

    texts, labels, class_names = data.docstring_families()
    rng = np.random.default_rng(seed)
    test_idx, pool = [], {}
    for k in range(len(class_names)):
        members = rng.permutation(np.flatnonzero(labels == k))
        test_idx += list(members[:60])
        pool[k] = members[60:]
    held_out = {texts[i] for i in test_idx}
    corpus = [doc for doc in data.python_text(min_chars=40) if doc not in held_out]
    vocab = text.build_vocab(corpus, vocab_size)
    word_id = {w: i for i, w in enumerate(vocab)}
    windows = text.make_windows(corpus, word_id, seq_len)[:max_windows]

    def encoder(dropout: float = 0.0) -> Any:
        return text.build_encoder(
            vocab_size, seq_len, d_model, num_layers, 4, 2 * d_model, dropout, seed=seed
        )

    pretrained = encoder()
    bias = tf.Variable(tf.zeros([vocab_size]), name="mlm_bias")

    def report(epoch: int, history: dict[str, list[float]]) -> None:
        if epoch % 5 == 4 or epoch == epochs - 1:
            accuracy = history["masked-token accuracy"][-1]
            print(f"pretraining epoch {epoch + 1}/{epochs}: masked-token accuracy {accuracy:.3f}")

    history = text.pretrain_mlm(
        pretrained,
        windows,
        epochs=epochs,
        batch_size=128,
        learning_rate=2e-3,
        seed=seed,
        callbacks=[report],
        mask_fn=mask_tokens,
        output_bias=bias,
    )
    inputs, mlm_labels = (
        np.asarray(a) for a in mask_tokens(windows[:64], np.random.default_rng(seed), vocab_size)
    )
    table = pretrained.get_layer("embedding").token_embedding.embeddings
    logits = np.asarray(text.mlm_logits(pretrained(inputs), table, bias))  # float32 at every precision
    your_loss = float(np.asarray(_run(mlm_loss, mlm_labels, logits)))
    print(
        f"your mlm_loss on a fresh batch: {your_loss:.3f} (reference {reference_mlm_loss(mlm_labels, logits):.3f})"
    )

    weights = pretrained.get_weights()
    x_all = np.stack([text.encode(t, word_id, seq_len) for t in texts])
    draws = [np.random.default_rng(100 + seed).permutation(pool[k])[: 2 * per_class] for k in pool]
    train_idx = np.concatenate([d[:per_class] for d in draws])
    val_idx = np.concatenate([d[per_class:] for d in draws])
    x_test, y_test = x_all[np.array(test_idx)], labels[np.array(test_idx)]
    results = {}
    for arm in ("pretrained + fine-tuned", "from scratch"):
        enc = encoder(dropout=0.1)
        if arm.startswith("pretrained"):
            enc.set_weights(weights)
        model = build_classifier(enc, len(class_names))
        rates = (
            dict(encoder_lr=3e-4, head_lr=3e-3)
            if arm.startswith("pretrained")
            else dict(encoder_lr=1e-3, head_lr=1e-3)
        )
        text.fine_tune(
            model,
            (x_all[train_idx], labels[train_idx]),
            (x_all[val_idx], labels[val_idx]),
            epochs=fine_tune_epochs,
            patience=patience,
            seed=seed,
            **rates,
        )
        results[arm] = float(
            np.mean(np.argmax(model.predict(x_test, batch_size=256, verbose=0), -1) == y_test)
        )
        print(f"{arm}: test accuracy {results[arm]:.3f}")
    fig = viz.table(
        [[arm, f"{acc:.3f}"] for arm, acc in results.items()],
        ["classifier", "test accuracy"],
        title=f"{per_class} (+{per_class} validation) labelled docstrings per family, "
        f"{len(test_idx)} test docstrings (chance {1 / len(class_names):.3f})",
    )
    fig.layout.meta = {
        "masked_accuracy": history["masked-token accuracy"][-1],
        "your_loss": your_loss,
        **results,
    }
    return fig
