"""utils.embeddings: skip-gram pairs and negative sampling, the skip-gram model, neighbours, PCA, and BPE."""

from collections import Counter

import numpy as np
import pytest

from utils import embeddings as emb
from utils.embeddings import END_OF_WORD as EOW

# ---------------------------------------------------------------------------------------------
# skip-gram pairs
# ---------------------------------------------------------------------------------------------


def _window_pairs(docs, window):
    """Every (word, neighbour) pair within ``window`` positions, by brute force, document by document."""
    pairs = Counter()
    for doc in docs:
        for i in range(len(doc)):
            for j in range(max(0, i - window), min(len(doc), i + window + 1)):
                if j != i:
                    pairs[(int(doc[i]), int(doc[j]))] += 1
    return pairs


def test_positive_pairs_are_exactly_the_pairs_within_the_window():
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 12, size=n) for n in (40, 3, 57)]  # a window never crosses documents
    targets, contexts, labels = emb.skipgram_pairs(docs, 3, 2, 12, seed=1, subsample=None)
    n_pos = int(labels.sum())
    assert set(np.unique(labels)) == {0.0, 1.0} and labels[:n_pos].all() and not labels[n_pos:].any()
    positives = Counter(zip(targets[:n_pos].tolist(), contexts[:n_pos].tolist(), strict=True))
    assert positives == _window_pairs(docs, 3)
    # pairs of a 40-word text with window 3: each side of each gap of 1, 2, 3 → 2(39 + 38 + 37)
    assert n_pos == 2 * (39 + 38 + 37) + 2 * (2 + 1) + 2 * (56 + 55 + 54)
    # exactly num_negative negatives per positive, each keeping its positive's target word
    assert len(labels) == 3 * n_pos
    assert np.array_equal(targets[n_pos:], np.repeat(targets[:n_pos], 2))
    assert targets.dtype == contexts.dtype == np.int32 and labels.dtype == np.float32


def test_one_stream_ignored_ids_and_determinism():
    stream = [4, 0, 5, 1, 6]  # 0 and 1 (padding, unknown) are removed and the text closes up
    t, c, y = emb.skipgram_pairs(stream, 1, 0, 7, subsample=None, ignore=(0, 1))
    assert sorted(zip(t.tolist(), c.tolist(), strict=True)) == [(4, 5), (5, 4), (5, 6), (6, 5)]
    assert y.tolist() == [1.0] * 4
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 50, size=2000)
    ids[::7] = 1
    a = emb.skipgram_pairs(ids, 2, 3, 50, seed=5, ignore=[1])
    b = emb.skipgram_pairs(ids, 2, 3, 50, seed=5, ignore=[1])
    other = emb.skipgram_pairs(ids, 2, 3, 50, seed=6, ignore=[1])
    assert all(np.array_equal(x, z) for x, z in zip(a, b, strict=True))
    assert not np.array_equal(a[1], other[1])  # another seed, another subsample and other negatives
    assert 1 not in a[0] and 1 not in a[1]  # an ignored id is never a target, a context, nor a negative
    with pytest.raises(ValueError, match="vocabulary size"):
        emb.skipgram_pairs(ids, 2, 3, 40)


def test_negative_distribution_and_keep_probabilities_by_hand():
    # counts that are fourth powers make count^0.75 whole numbers: 1, 8, 27, 64, 125 (sum 225)
    probs = emb.negative_distribution(np.array([1, 16, 81, 256, 625, 0]))
    assert np.allclose(probs, np.array([1, 8, 27, 64, 125, 0]) / 225)
    # shares 1/2, 1/4, 1/8, 1/8 at t = 1/32: keep √(t/f) = 1/4, √(1/8) ≈ 0.354, 1/2, 1/2; unseen → 1
    keep = emb.keep_probabilities(np.array([4, 2, 1, 1, 0]), 1 / 32)
    assert np.allclose(keep, [0.25, np.sqrt(1 / 8), 0.5, 0.5, 1.0])


def test_negatives_follow_the_unigram_distribution_to_the_three_quarters():
    counts = np.array([1, 16, 81, 256, 625, 0])  # word 5 never occurs
    stream = np.random.default_rng(0).permutation(np.repeat(np.arange(6), counts))
    _, contexts, labels = emb.skipgram_pairs(stream, 5, 20, 6, seed=2, subsample=None)
    drawn = np.bincount(contexts[labels == 0], minlength=6)
    assert drawn[5] == 0  # a word that never occurs is never drawn
    expected = drawn.sum() * np.array([1, 8, 27, 64, 125]) / 225  # count^0.75 by hand, as above
    chi2 = float((((drawn[:5] - expected) ** 2) / expected).sum())
    assert chi2 < 18.47  # the 0.1 % critical value of chi-square with 4 degrees of freedom
    unigram = drawn.sum() * counts[:5] / counts.sum()  # the plain unigram distribution is far off
    assert float((((drawn[:5] - unigram) ** 2) / unigram).sum()) > 1000


def test_subsampling_keeps_frequent_words_at_the_stated_rate():
    # word 0 is about half the text: kept with probability √(t / 0.5) = 0.1 at t = 0.005
    rng = np.random.default_rng(1)
    stream = np.where(rng.random(40_000) < 0.5, 0, rng.integers(1, 2001, size=40_000))
    n0 = int((stream == 0).sum())
    targets, _, labels = emb.skipgram_pairs(stream, 1, 0, 2001, seed=4, subsample=0.005)
    # with window 1, every kept word but the first and the last is the target of 2 positive pairs
    keep = np.sqrt(0.005 / (n0 / len(stream)))  # ≈ 0.1, from the share word 0 actually has
    kept0 = (targets[labels == 1] == 0).sum() / 2
    assert abs(kept0 - keep * n0) < 5 * np.sqrt(n0 * keep * (1 - keep)) + 1
    rare_share = (targets != 0).sum() / 2 / (len(stream) - n0)  # words rarer than t: all kept
    assert rare_share > 0.999


# ---------------------------------------------------------------------------------------------
# the model, and training
# ---------------------------------------------------------------------------------------------


def _keras():
    from utils.env import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def _check_logits_are_dot_products(tolerance):
    keras = _keras()
    model = emb.build_skipgram(9, 4, seed=0)
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    model.get_layer("target_embedding").set_weights([u])
    model.get_layer("context_embedding").set_weights([v])
    t, c = np.array([0, 3, 8, 8], "int32"), np.array([1, 3, 0, 5], "int32")
    logits = model({"target": t, "context": c})
    assert logits.dtype == "float32" and tuple(logits.shape) == (4, 1)
    expected = (u[t] * v[c]).sum(axis=1, keepdims=True)
    assert np.allclose(keras.ops.convert_to_numpy(logits), expected, atol=tolerance, rtol=tolerance)


def test_skipgram_logit_is_the_dot_product_of_target_and_context_vectors():
    _check_logits_are_dot_products(1e-5)


def test_skipgram_logit_is_float32_under_mixed_precision(mixed_policy):
    # the tables' rows are rounded to 8 (bfloat16) or 11 (float16) significant bits before the product
    _check_logits_are_dot_products(0.1 if mixed_policy == "mixed_bfloat16" else 0.02)


@pytest.mark.slow
def test_training_puts_words_that_share_contexts_together():
    # a planted structure: two groups of words, and each sentence uses words of one group only
    fruit = ["apple", "banana", "cherry", "grape", "lemon", "mango", "melon", "peach"]
    metal = ["iron", "copper", "zinc", "tin", "lead", "gold", "silver", "nickel"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(fruit if i % 2 else metal, 8)) for i in range(400)]
    table, vocab, history = emb.train_skipgram(
        texts, 19, 8, 2, subsample=None, batch_size=256, learning_rate=0.02, seed=0
    )
    assert table.shape == (19, 8) and table.dtype == np.float32 and set(vocab[3:]) == {*fruit, *metal}
    assert len(history["loss"]) == 2 and history["loss"][-1] < history["loss"][0]
    for group in (fruit, metal):
        for word in group:
            # all 7 other words of its group come before any word of the other group
            neighbours = [w for w, _ in emb.nearest(table, vocab, word, 15)]
            assert set(neighbours[:7]) == set(group) - {word}, (word, neighbours)


# ---------------------------------------------------------------------------------------------
# nearest neighbours and the 2-D projection
# ---------------------------------------------------------------------------------------------


def test_nearest_orders_by_cosine_and_leaves_the_word_out():
    vocab = ["[PAD]", "[UNK]", "[MASK]", "a", "b", "c", "d", "e"]
    table = np.array(
        [[1, 0], [1, 0], [1, 0], [1, 0], [20, 1], [0, 1], [-1, 0], [3, 3]], dtype=float
    )  # the special rows point exactly like "a" and must still be left out
    found = emb.nearest(table, vocab, "a", k=4)
    # cos(a, b) = 20/√401 ≈ 0.9988 (length is irrelevant), cos(a, e) = 1/√2, cos(a, c) = 0, cos(a, d) = −1
    assert [w for w, _ in found] == ["b", "e", "c", "d"]
    assert np.allclose([s for _, s in found], [20 / np.sqrt(401), 1 / np.sqrt(2), 0, -1])
    assert [w for w, _ in emb.nearest(table, vocab, "a", k=2, ignore=())] == ["[PAD]", "[UNK]"]
    assert [w for w, _ in emb.nearest(table, vocab, "c", k=1)] == ["e"]  # cos = 1/√2, the best for c
    with pytest.raises(ValueError, match="not in the vocabulary"):
        emb.nearest(table, vocab, "zebra")


def test_project_2d_is_the_first_two_principal_components():
    rng = np.random.default_rng(0)
    x = (
        rng.normal(size=(60, 5))
        * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
        @ np.linalg.qr(rng.normal(size=(5, 5)))[0]
    )
    x += 7.0  # an offset that PCA must remove
    coords = emb.project_2d(x)
    assert coords.shape == (60, 2)
    centred = x - x.mean(axis=0)
    vt = np.linalg.svd(centred)[2]
    reference = centred @ vt[:2].T
    signs = np.sign((coords * reference).sum(axis=0))  # a principal direction's sign is arbitrary
    assert np.allclose(coords * signs, reference)
    # independently: the two columns' variances are the covariance's two largest eigenvalues
    eigen = np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1]
    assert np.allclose(coords.var(axis=0, ddof=1), eigen[:2])
    # the sign rule makes the picture depend on the data only: −x gives the mirror image
    assert np.allclose(emb.project_2d(-x), -coords)
    with pytest.raises(ValueError, match="pca"):
        emb.project_2d(x, method="tsne")


# ---------------------------------------------------------------------------------------------
# byte-pair encoding
# ---------------------------------------------------------------------------------------------

CLASSIC = {"low": 5, "lower": 2, "newest": 6, "widest": 3}  # Sennrich et al.'s example


def test_bpe_first_merges_on_the_classic_example_by_hand():
    # Written out: l o w </w> ×5, l o w e r </w> ×2, n e w e s t </w> ×6, w i d e s t </w> ×3.
    # Pair counts: e s = 6 + 3 = 9, s t = 9, t </w> = 9, w e = 2 + 6 = 8, l o = o w = 7, n e = e w = 6, ...
    # 1. three pairs tie at 9; alphabetically (e, s) < (s, t) < (t, </w>): merge e s → es
    # 2. es t and t </w> both 9; "es" < "t": merge es t → est
    # 3. est </w> (9) → est</w>
    # 4. l o and o w tie at 7; "l" < "o": merge l o → lo
    # 5. lo w (7) → low
    # 6. now n e, e w, w est</w> are all 6 (from "newest"); "e" < "n" < "w": merge e w → ew
    # 7. n ew and ew est</w> are 6; "ew" < "n": merge ew est</w>
    # 8. n ewest</w> (6), then 9. low </w> (5, "low" itself)
    merges, vocab, trace = emb.bpe_learn(CLASSIC, 9)
    assert merges == [
        ("e", "s"),
        ("es", "t"),
        ("est", EOW),
        ("l", "o"),
        ("lo", "w"),
        ("e", "w"),
        ("ew", "est" + EOW),
        ("n", "ewest" + EOW),
        ("low", EOW),
    ]
    assert [s.count for s in trace] == [9, 9, 9, 7, 7, 6, 6, 6, 5]
    # 11 base symbols: the letters d e i l n o r s t w and </w>; each merge adds one token
    assert vocab[:11] == sorted([EOW, *"deilnorstw"]) and vocab[11:] == [a + b for a, b in merges]
    assert [s.vocab_size for s in trace] == list(range(12, 21))
    # the corpus is written with 4·5 + 6·2 + 7·6 + 7·3 = 95 symbols; merging a pair seen n times saves n
    assert [s.corpus_tokens for s in trace] == list(95 - np.cumsum([s.count for s in trace]))
    # the tie rule does not depend on the order the words come in
    assert emb.bpe_learn(dict(reversed(list(CLASSIC.items()))), 9)[0] == merges


def test_bpe_on_sentences_by_hand_and_the_round_trip():
    text = "The cat sat on the mat. The rat sat on the hat!"  # tokenize: lower-case words, no punctuation
    # words: the ×4, sat ×2, on ×2, cat, mat, rat, hat. Counts: a t = t </w> = 6 (every -at word),
    # t h = h e = e </w> = 4, o n = n </w> = s a = 2, others 1.
    # 1. (a, t) < (t, </w>) at 6 → at   2. at </w> (6)   3. e </w>, h e, t h tie at 4: (e, </w>) first
    # 4. h e</w> (4) < t h (4): "h" < "t"   5. t he</w> (4)   6. n </w>, o n, s at</w> at 2: (n, </w>)
    merges, _, trace = emb.bpe_learn(text, 6)
    assert merges == [("a", "t"), ("at", EOW), ("e", EOW), ("h", "e" + EOW), ("t", "he" + EOW), ("n", EOW)]
    assert [s.count for s in trace] == [6, 6, 4, 4, 4, 2]
    assert emb.bpe_encode("the", merges) == ["the" + EOW]
    assert emb.bpe_encode("that", merges) == ["t", "h", "at" + EOW]  # unseen, built from known pieces
    # learning until nothing is left to merge: every training word becomes one token, and it stops early
    all_merges, _, _ = emb.bpe_learn(text, 1000)
    assert len(all_merges) < 1000
    for word in ["the", "cat", "sat", "on", "mat", "rat", "hat"]:
        assert emb.bpe_encode(word, all_merges) == [word + EOW]
    words = ["the", "cattle", "sat", "onto", "mathematics", "zzz"]
    tokens = [t for w in words for t in emb.bpe_encode(w, merges)]
    assert emb.bpe_decode(tokens) == " ".join(words)


def test_bpe_encode_of_an_unseen_word():
    merges, _, _ = emb.bpe_learn(CLASSIC, 9)
    # l o w e s t </w>: e s, es t, est </w>, l o, lo w apply; no merge joins low and est</w>
    assert emb.bpe_encode("lowest", merges) == ["low", "est" + EOW]
    # no learned merge touches x, y or z: the word falls back to its characters (no unknown token)
    assert emb.bpe_encode("xyz", merges) == ["x", "y", "z", EOW]
    assert emb.bpe_encode("xyz", []) == ["x", "y", "z", EOW]


def _naive_bpe(word_counts, num_merges):
    """BPE the slow, obvious way: recount every pair over every word before each merge."""
    words = {w: (*w, EOW) for w in word_counts}
    merges = []
    for _ in range(num_merges):
        counts = Counter()
        for w, symbols in words.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                counts[pair] += word_counts[w]
        if not counts:
            break
        best = max(counts.values())
        pair = min(p for p, n in counts.items() if n == best)
        merges.append(pair)
        words = {w: _apply(s, [pair]) for w, s in words.items()}
    return merges


def _apply(symbols, merges):
    """Apply each merge in turn, left to right over the word: the definition :func:`bpe_encode` follows."""
    symbols = list(symbols)
    for a, b in merges:
        out, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return tuple(symbols)


def test_bpe_bookkeeping_matches_the_obvious_algorithm():
    # words over a 3-letter alphabet: many ties and overlapping pairs ("aaaa"), the hard cases
    rng = np.random.default_rng(0)
    word_counts = Counter("".join(rng.choice(list("aabc"), rng.integers(1, 9))) for _ in range(400))
    merges, _, _ = emb.bpe_learn(dict(word_counts), 40)
    assert merges == _naive_bpe(word_counts, 40)
    for word in [*word_counts, "aaaaaaa", "cabbage", "bacca"]:
        assert emb.bpe_encode(word, merges) == list(_apply((*word, EOW), merges))
