"""Text helpers shared by lesson 07 and lab 07: words, BERT's masking rule, a small encoder, MLM, fine-tuning.

The conventions: token ids are integers; ``PAD_ID = 0`` pads a sequence, ``UNK_ID = 1`` stands for
a word outside the vocabulary, ``MASK_ID = 2`` is ``[MASK]``; ids below ``N_SPECIAL = 3`` are
special and every id from ``N_SPECIAL`` to ``vocab_size - 1`` is a word. A label of
``IGNORE = -100`` means "no loss here".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "IGNORE",
    "MASK_ID",
    "N_SPECIAL",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "UNK_ID",
    "build_classifier",
    "build_encoder",
    "build_vocab",
    "encode",
    "encoder_params",
    "fine_tune",
    "loss_scaled",
    "make_windows",
    "mask_tokens",
    "mlm_logits",
    "pretrain_mlm",
    "tokenize",
]

PAD_ID, UNK_ID, MASK_ID = 0, 1, 2
N_SPECIAL = 3
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[MASK]")
IGNORE = -100

_WORD = re.compile(r"[a-z]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased words: runs of the letters a–z (digits, punctuation and symbols are dropped)."""
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str], size: int) -> list[str]:
    """The special tokens, then the ``size - N_SPECIAL`` most frequent words (ties: first seen first)."""
    counts = Counter(word for text in texts for word in tokenize(text))
    return [*SPECIAL_TOKENS, *(word for word, _ in counts.most_common(size - N_SPECIAL))]


def encode(text: str, word_id: dict[str, int], length: int | None = None) -> np.ndarray:
    """Token ids of ``text`` (``UNK_ID`` for unknown words); with ``length``, cut or padded to it."""
    ids = [word_id.get(word, UNK_ID) for word in tokenize(text)]
    if length is not None:
        ids = ids[:length] + [PAD_ID] * max(0, length - len(ids))
    return np.asarray(ids, dtype=np.int32)


def make_windows(texts: Iterable[str], word_id: dict[str, int], length: int) -> np.ndarray:
    """The texts' ids joined into one stream and cut into rows of ``length`` (the tail is dropped)."""
    stream = np.concatenate([encode(text, word_id) for text in texts])
    rows = len(stream) // length
    return stream[: rows * length].reshape(rows, length)


def mask_tokens(
    ids: np.ndarray, rng: np.random.Generator, vocab_size: int, rate: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking rule: ``(inputs, labels)`` for a batch of token ids.

    Each non-padding position is selected with probability ``rate``; a selected position becomes
    ``MASK_ID`` with probability 0.8, a random word id (never a special id) with probability 0.1,
    and keeps its token with probability 0.1. ``labels`` holds the original id where selected and
    ``IGNORE`` elsewhere. ``ids`` is not changed.
    """
    ids = np.asarray(ids)
    selected = (rng.random(ids.shape) < rate) & (ids != PAD_ID)
    labels = np.where(selected, ids, IGNORE)
    action = rng.random(ids.shape)
    inputs = ids.copy()
    inputs[selected & (action < 0.8)] = MASK_ID
    swap = selected & (action >= 0.8) & (action < 0.9)
    inputs[swap] = rng.integers(N_SPECIAL, vocab_size, size=int(swap.sum()))
    return inputs, labels


def build_encoder(
    vocab_size: int,
    seq_len: int,
    d_model: int,
    num_layers: int,
    num_heads: int,
    d_ff: int,
    dropout: float = 0.0,
    seed: int | None = None,
) -> Any:
    """A Transformer encoder: ``PositionalEmbedding`` (layer "embedding") then ``num_layers`` blocks.

    Input: token ids (batch, seq_len), 0 is padding; output: (batch, seq_len, d_model) with the
    padding mask passed on. ``seed`` fixes the initial weights.
    """
    import keras

    from utils import models

    if seed is not None:
        keras.utils.set_random_seed(seed)
    ids = keras.Input((seq_len,), dtype="int32", name="ids")
    x = models.PositionalEmbedding(vocab_size, seq_len, d_model, name="embedding")(ids)
    for i in range(num_layers):
        x = models.TransformerBlock(d_model, num_heads, d_ff, dropout=dropout, name=f"block{i + 1}")(x)
    return keras.Model(ids, x, name="encoder")


def encoder_params(
    vocab_size: int,
    d_model: int,
    num_layers: int,
    d_ff: int,
    learned_positions: int = 0,
    token_types: int = 0,
    embedding_norm: bool = False,
    pooler: bool = False,
) -> int:
    """Parameters of an encoder of this shape, from its configuration.

    Token embeddings ``V·d``; optional learned positions ``P·d`` and token-type embeddings
    ``T·d`` (BERT has both; this course's encoder uses fixed sinusoids, no parameters); an
    optional layer norm after the embeddings ``2d``; ``num_layers`` blocks of
    ``models.transformer_block_params(d, d_ff)``; an optional pooler ``Dense(d)`` on the first
    position, ``d² + d``.
    """
    from utils import models

    d = d_model
    embeddings = vocab_size * d + learned_positions * d + token_types * d + (2 * d if embedding_norm else 0)
    blocks = num_layers * models.transformer_block_params(d, d_ff)
    return embeddings + blocks + (d * d + d if pooler else 0)


def mlm_logits(hidden: Any, embeddings: Any, bias: Any) -> Any:
    """The tied output layer: float32 logits ``hidden · Eᵀ + b`` over the vocabulary.

    ``hidden`` is (..., d) in the encoder's compute dtype, ``embeddings`` the (V, d) token-embedding
    variable (float32, also under mixed precision) and ``bias`` a float32 (V,) vector. The product
    runs in ``hidden``'s dtype (``E`` is cast to it: float16 × float32 is an error, and the
    product is the expensive part that mixed precision speeds up); the logits are then cast to
    float32 before the bias, so the softmax over the whole vocabulary and the loss are float32.
    """
    import tensorflow as tf

    table = tf.cast(embeddings, hidden.dtype)
    return tf.cast(tf.matmul(hidden, table, transpose_b=True), "float32") + bias


def loss_scaled(optimizer: Any, model: Any) -> Any:
    """``optimizer`` wrapped in ``keras.optimizers.LossScaleOptimizer`` if ``model`` computes in float16.

    What ``Model.compile`` does under ``mixed_float16``, for a custom loop: the loop takes the
    gradients of ``optimizer.scale_loss(loss)`` and calls ``optimizer.apply(grads, variables)``,
    which unscales them and skips a step whose gradients overflowed. Under float32 and bfloat16
    (float32's exponent range: small gradients do not underflow) the optimizer is returned as it
    is, and its ``scale_loss`` leaves the loss unchanged.
    """
    import keras

    if model.dtype_policy.compute_dtype == "float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def pretrain_mlm(
    encoder: Any,
    windows: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    warmup_steps: int = 200,
    seed: int = 0,
    rate: float = 0.15,
    callbacks: Sequence[Any] = (),
    mask_fn: Any = None,
    output_bias: Any = None,
) -> dict[str, list[float]]:
    """Masked-language-model pretraining of ``encoder`` on ``windows`` (rows of token ids).

    Every epoch draws a fresh masking of every window with :func:`mask_tokens` ("dynamic
    masking"). The output layer is **tied** to the input embedding (logits = h · Eᵀ + b, see
    :func:`mlm_logits`) and is computed **only at the selected positions**: the other 85 % carry
    no loss, so their logits would be wasted work. Adam with a linear warm-up over
    ``warmup_steps`` steps, with loss scaling under float16 (:func:`loss_scaled`). Returns the
    history ``{"loss": [...], "masked-token accuracy": [...]}``, one value per epoch (means over
    the epoch's batches); ``callbacks`` are called as ``cb(epoch, history)`` after each epoch.
    ``mask_fn`` replaces :func:`mask_tokens` (same signature; lab 07 passes the learner's);
    ``output_bias`` is the vocabulary-sized bias variable ``b`` to train (a new zero one if None).
    """
    import keras
    import tensorflow as tf

    vocab_size = int(encoder.get_layer("embedding").vocab_size)
    table = encoder.get_layer("embedding").token_embedding.embeddings
    bias = tf.Variable(tf.zeros([vocab_size]), name="mlm_bias") if output_bias is None else output_bias
    mask_fn = mask_tokens if mask_fn is None else mask_fn
    variables = [*encoder.trainable_variables, bias]

    class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step: Any) -> Any:
            ramp = (tf.cast(step, "float32") + 1.0) / float(max(1, warmup_steps))
            return learning_rate * tf.minimum(1.0, ramp)

    optimizer = loss_scaled(keras.optimizers.Adam(WarmUp()), encoder)
    optimizer.build(variables)  # before tracing: scale_loss must read the live scale, not a constant

    @tf.function
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            hidden = encoder(x, training=True)
            selected = y != IGNORE
            targets = tf.boolean_mask(y, selected)
            logits = mlm_logits(tf.boolean_mask(hidden, selected), table, bias)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
            scaled = optimizer.scale_loss(loss)  # the loss itself under float32 and bfloat16
        optimizer.apply(tape.gradient(scaled, variables), variables)
        hits = tf.reduce_mean(tf.cast(tf.argmax(logits, -1, output_type=targets.dtype) == targets, "float32"))
        return loss, hits

    rng = np.random.default_rng(seed)
    windows = np.asarray(windows, dtype=np.int32)
    history: dict[str, list[float]] = {"loss": [], "masked-token accuracy": []}
    for epoch in range(epochs):
        inputs, labels = (np.asarray(a, dtype=np.int32) for a in mask_fn(windows, rng, vocab_size, rate))
        order = rng.permutation(len(windows))
        losses, hits = [], []
        for first in range(0, len(order) - batch_size + 1, batch_size):
            rows = order[first : first + batch_size]
            loss, hit = step(inputs[rows], labels[rows])
            losses.append(float(loss))
            hits.append(float(hit))
        history["loss"].append(float(np.mean(losses)))
        history["masked-token accuracy"].append(float(np.mean(hits)))
        for callback in callbacks:
            callback(epoch, history)
    return history


def build_classifier(encoder: Any, num_classes: int, dropout: float = 0.1) -> Any:
    """``encoder`` → mean of its outputs over the real (non-padding) positions → Dropout → Dense logits.

    The head is the layer named "head"; the encoder is reused as it is (its layers, its weights).
    The head computes in float32 under every precision policy, so the loss sees float32 logits.
    """
    import keras

    ids = keras.Input(encoder.input_shape[1:], dtype="int32", name="ids")
    pooled = keras.layers.GlobalAveragePooling1D(name="mean")(encoder(ids))  # uses the padding mask
    pooled = keras.layers.Dropout(dropout, name="dropout")(pooled)
    logits = keras.layers.Dense(num_classes, name="head", dtype="float32")(pooled)
    return keras.Model(ids, logits, name="classifier")


def fine_tune(
    model: Any,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    encoder_lr: float,
    head_lr: float,
    epochs: int,
    patience: int,
    seed: int = 0,
    batch_size: int = 16,
) -> dict[str, float]:
    """Train a classifier (ids → logits); keep the weights of the best validation epoch.

    Two Adam optimisers: ``head_lr`` for the model's last layer (the dense head of
    :func:`build_classifier`), ``encoder_lr`` for everything else (give
    both the same value to train everything alike). Stops after ``patience`` epochs without a
    better validation accuracy. Returns ``{"val_accuracy": best, "epochs": epochs run}``.
    Under float16 each optimiser scales the loss (:func:`loss_scaled`) with its own loss scale.
    """
    import keras
    import tensorflow as tf

    head_vars = model.layers[-1].trainable_variables
    head_ids = {id(v) for v in head_vars}
    body_vars = [v for v in model.trainable_variables if id(v) not in head_ids]
    body_opt = loss_scaled(keras.optimizers.Adam(encoder_lr), model)
    head_opt = loss_scaled(keras.optimizers.Adam(head_lr), model)
    body_opt.build(body_vars)  # before tracing, as in pretrain_mlm
    head_opt.build(head_vars)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x: Any, y: Any) -> None:
        with tf.GradientTape(persistent=True) as tape:  # one loss, a gradient per optimiser
            loss = loss_fn(y, model(x, training=True))
            body_loss, head_loss = body_opt.scale_loss(loss), head_opt.scale_loss(loss)
        body_opt.apply(tape.gradient(body_loss, body_vars), body_vars)
        head_opt.apply(tape.gradient(head_loss, head_vars), head_vars)
        del tape

    predict = tf.function(lambda x: model(x, training=False))
    (x_tr, y_tr), (x_va, y_va) = train, val
    rng = np.random.default_rng(seed)
    best, best_weights, best_epoch, epoch = -1.0, model.get_weights(), 0, 0
    for epoch in range(epochs):
        order = rng.permutation(len(x_tr))
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            step(x_tr[rows], y_tr[rows])
        val_acc = float(np.mean(np.argmax(predict(x_va), -1) == y_va))
        if val_acc > best:
            best, best_weights, best_epoch = val_acc, model.get_weights(), epoch
        if epoch - best_epoch >= patience:
            break
    model.set_weights(best_weights)
    return {"val_accuracy": best, "epochs": float(epoch + 1)}
