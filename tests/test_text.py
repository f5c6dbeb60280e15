"""utils.text: BERT's masking rule, the vocabulary, the encoder, MLM pretraining and fine-tuning."""

import keras
import numpy as np
import pytest

from utils import env, models, text
from utils.checks import lab07


def test_tokenize_vocab_encode_and_windows():
    assert text.tokenize("Return the SMTP reply, 250 OK!") == ["return", "the", "smtp", "reply", "ok"]
    docs = ["the cat sat", "the dog sat on the mat"]
    vocab = text.build_vocab(docs, 6)
    assert vocab[: text.N_SPECIAL] == ["[PAD]", "[UNK]", "[MASK]"] and vocab[3:] == ["the", "sat", "cat"]
    word_id = {w: i for i, w in enumerate(vocab)}
    assert text.encode("The bird sat", word_id).tolist() == [3, text.UNK_ID, 4]
    assert text.encode("the", word_id, length=3).tolist() == [3, 0, 0]
    assert text.encode("the the the the", word_id, length=2).tolist() == [3, 3]
    windows = text.make_windows(docs, word_id, 4)
    stream = np.concatenate([text.encode(d, word_id) for d in docs])
    assert windows.shape == (2, 4) and np.array_equal(windows.ravel(), stream[:8])


def test_mask_tokens_keeps_bert_s_invariants_and_leaves_ids_alone():
    ids, _ = lab07.make_probe(seed=0)  # word ids with padding at the end of each row, the lab's probe
    before = ids.copy()
    inputs, labels = text.mask_tokens(ids, np.random.default_rng(7), lab07.PROBE_VOCAB)
    assert np.array_equal(ids, before)  # a new array: the caller's ids are untouched
    selected, pad = labels != text.IGNORE, ids == text.PAD_ID
    assert not selected[pad].any() and np.array_equal(inputs[pad], ids[pad])  # padding is never selected
    assert np.array_equal(labels[selected], ids[selected])  # a label is the original id
    assert np.array_equal(inputs[~selected], ids[~selected])  # only selected positions change
    replaced = selected & (inputs != ids) & (inputs != text.MASK_ID)
    assert (inputs[replaced] >= text.N_SPECIAL).all()  # a random replacement is a word, not a special id
    again = text.mask_tokens(ids, np.random.default_rng(7), lab07.PROBE_VOCAB)
    assert np.array_equal(again[0], inputs) and np.array_equal(again[1], labels)  # the rng decides all


def test_mask_tokens_proportions_statistically():
    rng = np.random.default_rng(1)
    vocab_size = 2000
    ids = rng.integers(text.N_SPECIAL, vocab_size, size=(800, 125))  # 100,000 tokens
    ids[:, 100:] = text.PAD_ID  # 20 % padding
    inputs, labels = text.mask_tokens(ids, np.random.default_rng(2), vocab_size)
    real, selected = ids != text.PAD_ID, labels != text.IGNORE
    n_real, n_sel = int(real.sum()), int(selected.sum())
    # binomial standard deviations: 15 % of 80,000 → 0.0013; 80 % of 12,000 → 0.0037; 10 % → 0.0027
    assert abs(n_sel / n_real - 0.15) < 5 * np.sqrt(0.15 * 0.85 / n_real)
    to_mask = (inputs[selected] == text.MASK_ID).mean()
    kept = (inputs[selected] == ids[selected]).mean()
    swapped = ((inputs != ids) & (inputs != text.MASK_ID))[selected].mean()
    sd = np.sqrt(0.1 * 0.9 / n_sel)
    assert abs(to_mask - 0.8) < 5 * np.sqrt(0.8 * 0.2 / n_sel)
    assert abs(kept - 0.1) < 5 * sd + 1 / vocab_size  # a random draw may pick the original word
    assert abs(swapped - 0.1) < 5 * sd
    assert not selected[~real].any() and (inputs[~real] == text.PAD_ID).all()
    assert np.array_equal(inputs[~selected], ids[~selected]) and np.array_equal(
        labels[selected], ids[selected]
    )
    assert inputs[selected & (inputs != ids) & (inputs != text.MASK_ID)].min() >= text.N_SPECIAL


def test_encoder_params_counts_keras_and_bert_base():
    enc = text.build_encoder(100, 12, 16, 2, 4, 32, seed=0)
    assert enc.count_params() == text.encoder_params(100, 16, 2, 32)
    assert text.encoder_params(100, 16, 2, 32) == 100 * 16 + 2 * models.transformer_block_params(16, 32)
    bert = text.encoder_params(
        30522, 768, 12, 3072, learned_positions=512, token_types=2, embedding_norm=True, pooler=True
    )
    assert bert == 109_482_240


def test_pretrain_mlm_learns_a_tiny_repeating_language():
    # a "language" where each window is one of 4 fixed sentences: the masked words are recoverable
    rng = np.random.default_rng(0)
    sentences = rng.integers(text.N_SPECIAL, 30, size=(4, 12))
    windows = sentences[rng.integers(0, 4, size=512)].astype(np.int32)
    enc = text.build_encoder(30, 12, 32, 1, 4, 64, seed=0)
    history = text.pretrain_mlm(enc, windows, epochs=12, batch_size=64, learning_rate=3e-3, warmup_steps=10)
    acc = history["masked-token accuracy"]
    assert len(acc) == 12 and history["loss"][-1] < history["loss"][0]
    assert acc[-1] > 0.6 > acc[0]


def test_build_classifier_and_fine_tune_keep_the_best_validation_weights():
    enc = text.build_encoder(20, 8, 16, 1, 2, 32, seed=0)
    model = text.build_classifier(enc, 2)
    assert model.get_layer("encoder") is enc and model.output_shape == (None, 2)
    rng = np.random.default_rng(0)
    x = rng.integers(text.N_SPECIAL, 20, size=(64, 8)).astype(np.int32)
    x[:, 6:] = text.PAD_ID
    y = (x == 5).any(1).astype(np.int32)  # "does the text contain word 5"
    out = text.fine_tune(
        model, (x[:48], y[:48]), (x[48:], y[48:]), encoder_lr=3e-3, head_lr=3e-3, epochs=30, patience=30
    )
    val = float(np.mean(np.argmax(model(x[48:]), -1) == y[48:]))
    assert out["val_accuracy"] == pytest.approx(val) and out["epochs"] == 30
    assert val >= max(np.mean(y[48:]), 1 - np.mean(y[48:]))


# ---------------------------------------------------------------------------------------------
# Under mixed precision (float16 on a GPU, bfloat16 on a TPU)
# ---------------------------------------------------------------------------------------------


def _tiny_language():
    # each window is one of 4 fixed sentences: the masked words are recoverable
    rng = np.random.default_rng(0)
    sentences = rng.integers(text.N_SPECIAL, 30, size=(4, 12))
    return sentences[rng.integers(0, 4, size=512)].astype(np.int32)


def test_mlm_logits_are_float32_and_right_at_every_precision(mixed_policy):
    import tensorflow as tf

    enc = text.build_encoder(30, 12, 16, 1, 2, 32, seed=0)
    hidden = enc(_tiny_language()[:4])
    assert hidden.dtype == mixed_policy.removeprefix("mixed_")  # a float32 table would not multiply it
    table = enc.get_layer("embedding").token_embedding.embeddings
    assert table.dtype == "float32"
    bias = tf.Variable(np.linspace(-1, 1, 30, dtype="float32"))
    logits = text.mlm_logits(hidden, table, bias)
    assert logits.dtype == tf.float32 and logits.shape == (4, 12, 30)
    want = np.asarray(hidden, dtype=np.float64) @ np.asarray(table, dtype=np.float64).T + np.asarray(bias)
    np.testing.assert_allclose(logits, want, **env.tolerance())


def test_loss_scaled_wraps_only_under_float16(mixed_policy):
    enc = text.build_encoder(30, 12, 16, 1, 2, 32, seed=0)
    opt = text.loss_scaled(keras.optimizers.Adam(1e-3), enc)
    assert isinstance(opt, keras.optimizers.LossScaleOptimizer) == (mixed_policy == "mixed_float16")
    keras.mixed_precision.set_global_policy("float32")
    plain = keras.optimizers.Adam(1e-3)
    assert text.loss_scaled(plain, text.build_encoder(30, 12, 16, 1, 2, 32, seed=0)) is plain


def test_pretrain_mlm_learns_under_mixed_precision(mixed_policy):
    enc = text.build_encoder(30, 12, 32, 1, 4, 64, seed=0)
    history = text.pretrain_mlm(
        enc, _tiny_language(), epochs=12, batch_size=64, learning_rate=3e-3, warmup_steps=10
    )
    acc = history["masked-token accuracy"]
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    assert acc[-1] > 0.6 > acc[0]


def test_fine_tune_learns_under_mixed_precision(mixed_policy):
    enc = text.build_encoder(20, 8, 16, 1, 2, 32, seed=0)
    model = text.build_classifier(enc, 2)
    assert model.get_layer("head").compute_dtype == "float32"  # float32 logits for the loss
    rng = np.random.default_rng(0)
    x = rng.integers(text.N_SPECIAL, 20, size=(64, 8)).astype(np.int32)
    x[:, 6:] = text.PAD_ID
    y = (x == 5).any(1).astype(np.int32)
    out = text.fine_tune(
        model, (x[:48], y[:48]), (x[48:], y[48:]), encoder_lr=3e-3, head_lr=3e-3, epochs=30, patience=30
    )
    assert out["val_accuracy"] >= max(np.mean(y[48:]), 1 - np.mean(y[48:]))
