"""Word embeddings and sub-word tokens: skip-gram with negative sampling, and byte-pair encoding by hand.

Lesson 05b trains a small word embedding on the offline English text (:func:`utils.data.python_text`,
the docstrings of Python's standard library) and learns a byte-pair vocabulary from a few sentences.
This module holds the tested copies of both.

**Skip-gram with negative sampling** (Mikolov et al., *Distributed Representations of Words and
Phrases and their Compositionality*, 2013). Every word ``w`` has two vectors: a *target* vector
``u_w`` (used when ``w`` is the word in the middle) and a *context* vector ``v_c`` (used when ``w``
is a neighbour). A model looks at a pair ``(w, c)`` and says how likely it is that ``c`` really
appeared near ``w``: ``P(real | w, c) = σ(u_w · v_c)``. Real pairs come from a window around every
word of the text (label 1); for each real pair, ``k`` fake pairs keep ``w`` and draw ``c`` at random
from the unigram distribution raised to the power 0.75 (label 0). Training is logistic regression on
those labels. Words that appear in the same contexts end up with similar target vectors: those
vectors are the embedding.

**Byte-pair encoding** (Sennrich et al., *Neural Machine Translation of Rare Words with Subword
Units*, 2016). Start from characters; count every pair of adjacent symbols over the corpus; merge the
most frequent pair into one new symbol; repeat. The list of merges, in order, is the tokeniser.

NumPy only at import time: Keras is imported inside :func:`build_skipgram` and
:func:`train_skipgram`, so ``import utils.embeddings`` stays free of TensorFlow.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from utils import text as _text

__all__ = [
    "END_OF_WORD",
    "BPEStep",
    "bpe_decode",
    "bpe_encode",
    "bpe_learn",
    "build_skipgram",
    "keep_probabilities",
    "nearest",
    "negative_distribution",
    "project_2d",
    "skipgram_pairs",
    "train_skipgram",
]

END_OF_WORD = "</w>"  # the symbol BPE appends to every word, so "st" at a word's end differs from "st" inside


# ---------------------------------------------------------------------------------------------
# skip-gram with negative sampling
# ---------------------------------------------------------------------------------------------


def _documents(token_ids: Any) -> list[np.ndarray]:
    """``token_ids`` as a list of 1-D int64 arrays: one stream, or one array per document."""
    if isinstance(token_ids, np.ndarray) and token_ids.dtype != object:
        if token_ids.ndim != 1:
            raise ValueError(
                f"token_ids has shape {token_ids.shape}: pass one 1-D stream of ids, or a list of 1-D arrays "
                "(one per document)."
            )
        return [token_ids.astype(np.int64)]
    items = list(token_ids)
    if all(np.ndim(item) == 0 for item in items):
        return [np.asarray(items, dtype=np.int64)]
    return [np.asarray(item, dtype=np.int64).reshape(-1) for item in items]


def negative_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """The distribution negatives are drawn from: ``P(w) = count(w)^power / Σ_v count(v)^power``.

    With ``power = 1`` this is the unigram distribution; 0.75 (Mikolov et al.'s choice) flattens it,
    so rare words are drawn a little more often than their share and frequent words a little less.
    A word that never occurs has probability 0.
    """
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


def keep_probabilities(counts: np.ndarray, threshold: float) -> np.ndarray:
    """Frequent-word subsampling: the probability of keeping each occurrence of word ``w``.

    ``P(keep w) = min(1, √(t / f(w)))`` where ``f(w) = count(w) / total`` is the word's share of the
    text and ``t`` is ``threshold`` (Mikolov et al. 2013 write it as the probability of discarding,
    ``1 − √(t / f(w))``). Words rarer than ``t`` are always kept; "the", at 6 % of English text, is
    kept about one time in eight at ``t = 1e-3``. Fewer pairs with "the", more with words that mean
    something.
    """
    counts = np.asarray(counts, dtype=np.float64)
    freq = counts / counts.sum()
    with np.errstate(divide="ignore"):
        return np.minimum(1.0, np.sqrt(threshold / freq))


def skipgram_pairs(
    token_ids: Any,
    window: int,
    num_negative: int,
    vocab_size: int,
    seed: int = 0,
    subsample: float | None = 1e-3,
    ignore: Iterable[int] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training pairs for skip-gram with negative sampling: ``(targets, contexts, labels)``.

    ``token_ids`` is one stream of word ids (a 1-D array or list) or a list of them, one per
    document; a window never crosses from one document into the next. Ids in ``ignore`` (padding,
    the unknown word) are removed first, as word2vec removes words outside its vocabulary.

    1. Subsampling (if ``subsample`` is not None): each occurrence of word ``w`` is kept with
       probability :func:`keep_probabilities` ``min(1, √(t / f(w)))``, and the text closes up
       around the words removed.
    2. Positive pairs (label 1): every ``(w_i, w_j)`` with ``0 < |i − j| ≤ window`` in what is left.
    3. Negative pairs (label 0): for each positive pair, ``num_negative`` pairs ``(w_i, c)`` with
       ``c`` drawn from :func:`negative_distribution` of the word counts (before subsampling, as in
       word2vec). A drawn ``c`` may happen to be a real neighbour; with thousands of words that is
       rare, and word2vec does not check either.

    Returns int32 ``targets`` and ``contexts`` and float32 ``labels``: first all ``P`` positive pairs,
    then ``P · num_negative`` negative pairs, where rows ``P + i·k`` to ``P + (i+1)·k − 1`` are the
    negatives of positive pair ``i``. Shuffle them before training (:func:`train_skipgram` does).
    Deterministic given ``seed``; about a second for 100,000 tokens with ``window=5``, ``k=5``.
    """
    if window < 1 or num_negative < 0:
        raise ValueError(f"window must be ≥ 1 and num_negative ≥ 0 (got {window} and {num_negative}).")
    docs = _documents(token_ids)
    ignored = np.asarray(sorted(set(ignore)), dtype=np.int64)
    docs = [d[~np.isin(d, ignored)] for d in docs]
    stream = np.concatenate(docs) if docs else np.zeros(0, np.int64)
    if stream.size and (stream.min() < 0 or stream.max() >= vocab_size):
        raise ValueError(
            f"token ids run from {stream.min()} to {stream.max()}, outside 0..{vocab_size - 1}: "
            "pass the vocabulary size the ids were made with."
        )
    doc_of = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    counts = np.bincount(stream, minlength=vocab_size)
    rng = np.random.default_rng(seed)

    if subsample is not None and stream.size:
        kept = rng.random(stream.size) < keep_probabilities(counts, subsample)[stream]
        stream, doc_of = stream[kept], doc_of[kept]

    targets, contexts = [], []
    for offset in range(1, window + 1):  # the pairs (i, i + offset) and (i + offset, i), all i at once
        same_doc = doc_of[:-offset] == doc_of[offset:]
        left, right = stream[:-offset][same_doc], stream[offset:][same_doc]
        targets += [left, right]
        contexts += [right, left]
    pos_t = np.concatenate(targets) if targets else np.zeros(0, np.int64)
    pos_c = np.concatenate(contexts) if contexts else np.zeros(0, np.int64)

    n_pos = pos_t.size
    if n_pos and num_negative:
        probs = negative_distribution(counts)
        neg_c = rng.choice(vocab_size, size=n_pos * num_negative, p=probs)
    else:
        neg_c = np.zeros(0, np.int64)
    all_t = np.concatenate([pos_t, np.repeat(pos_t, num_negative)]).astype(np.int32)
    all_c = np.concatenate([pos_c, neg_c]).astype(np.int32)
    labels = np.concatenate([np.ones(n_pos), np.zeros(neg_c.size)]).astype(np.float32)
    return all_t, all_c, labels


def build_skipgram(vocab_size: int, dim: int, seed: int | None = None) -> Any:
    """The skip-gram model: ``(target id, context id) → logit u_target · v_context``, shape (batch, 1).

    Two ``Embedding`` tables of shape (vocab_size, dim): "target_embedding" (``u``, the embedding you
    keep) and "context_embedding" (``v``). The dot product is the logit of "this pair is real":
    train with ``BinaryCrossentropy(from_logits=True)``. The logit layer ("logit") computes in
    float32 under every precision policy, so the loss sees float32. As in word2vec, ``u`` starts
    uniform in ±0.5/dim and ``v`` at zero. Inputs are named "target" and "context", int32 of shape
    (batch,). ``seed`` fixes the initial weights.
    """
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    target = keras.Input((), dtype="int32", name="target")
    context = keras.Input((), dtype="int32", name="context")
    init = keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim, seed=seed)
    u = keras.layers.Embedding(vocab_size, dim, embeddings_initializer=init, name="target_embedding")(target)
    v = keras.layers.Embedding(vocab_size, dim, embeddings_initializer="zeros", name="context_embedding")(
        context
    )
    logit = keras.layers.Dot(axes=-1, dtype="float32", name="logit")([u, v])
    return keras.Model({"target": target, "context": context}, logit, name="skipgram")


def train_skipgram(
    texts: Iterable[str],
    vocab_size: int,
    dim: int,
    epochs: int,
    *,
    window: int = 2,
    num_negative: int = 4,
    subsample: float | None = 1e-3,
    batch_size: int = 4096,
    learning_rate: float = 1e-2,
    seed: int = 0,
    verbose: int = 0,
    callbacks: Sequence[Any] = (),
) -> tuple[np.ndarray, list[str], dict[str, list[float]]]:
    """Train a skip-gram embedding on ``texts``: returns ``(embeddings, vocab, history)``.

        The vocabulary is :func:`utils.text.build_vocab` (the special tokens, then the most frequent
        words); each text is a document (:func:`utils.text.tokenize`), and words outside the vocabulary
        are left out of the pairs, as are the special tokens. Every epoch draws fresh pairs with
        :func:`skipgram_pairs` (a new subsample, new negatives, seed ``seed + epoch``) and runs one pass
        of Adam at ``learning_rate`` over them, shuffled, with binary cross-entropy on the logits (the
    last incomplete batch of each epoch is left out, a few pairs among thousands).

        ``embeddings`` is the float32 target table, shape (vocab_size, dim), row ``i`` for ``vocab[i]``
        (the special tokens' rows stay untrained). ``history`` has one value per epoch: "loss" and
        "accuracy" (the share of pairs whose logit has the right sign). ``callbacks`` are Keras
        callbacks, passed to each epoch's ``fit``.

        For IMDB (:func:`utils.data.load_imdb`, online), turn the reviews back into words with
        :func:`utils.data.imdb_word_index` first, and pass those texts.
    """
    import keras

    texts = list(texts)
    vocab = _text.build_vocab(texts, vocab_size)
    word_id = {word: i for i, word in enumerate(vocab)}
    docs = [_text.encode(t, word_id) for t in texts]
    model = build_skipgram(len(vocab), dim, seed=seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],  # logit > 0 ⇔ p > 0.5
        steps_per_execution=16,  # a step of this tiny model is mostly overhead: run 16 per call
    )
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    for epoch in range(epochs):
        t, c, y = skipgram_pairs(
            docs,
            window,
            num_negative,
            len(vocab),
            seed=seed + epoch,
            subsample=subsample,
            ignore=range(_text.N_SPECIAL),
        )
        # Shuffle, and drop the last incomplete batch: every batch then has the same shape, so Keras
        # traces its training step once, not again for each epoch's odd-sized tail.
        rows = np.random.default_rng(seed + epoch).permutation(len(y))
        rows = rows[: max(batch_size, len(rows) - len(rows) % batch_size)]
        fitted = model.fit(
            {"target": t[rows], "context": c[rows]},
            y[rows, None],
            batch_size=batch_size,
            epochs=1,
            shuffle=False,
            verbose=verbose,
            callbacks=list(callbacks),
        )
        for key in history:
            history[key] += fitted.history[key]
    table = model.get_layer("target_embedding").get_weights()[0]
    return np.asarray(table, dtype=np.float32), vocab, history


def nearest(
    embeddings: np.ndarray,
    vocab: Sequence[str],
    word: str,
    k: int = 5,
    ignore: Iterable[str] = _text.SPECIAL_TOKENS,
) -> list[tuple[str, float]]:
    """The ``k`` words whose vectors point most nearly the same way as ``word``'s: ``[(word, cosine), ...]``.

    Cosine similarity ``cos(a, b) = a · b / (‖a‖ ‖b‖)``, from highest to lowest (ties: lower index
    first). The word itself is left out (its cosine with itself is 1), as are the tokens in
    ``ignore`` (by default the special tokens, whose rows are never trained). A zero vector has
    cosine 0 with everything.
    """
    index = {w: i for i, w in enumerate(vocab)}
    if word not in index:
        raise ValueError(
            f"{word!r} is not in the vocabulary: pick a word from vocab (its {len(vocab)} words)."
        )
    table = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(table, axis=1)
    norms[norms == 0] = 1.0
    unit = table / norms[:, None]
    cosine = unit @ unit[index[word]]
    skip = {index[word], *(index[w] for w in ignore if w in index)}
    order = [i for i in np.argsort(-cosine, kind="stable") if i not in skip]
    return [(vocab[i], float(cosine[i])) for i in order[:k]]


def project_2d(embeddings: np.ndarray, method: str = "pca") -> np.ndarray:
    """Coordinates of each row of ``embeddings`` on a plane, shape (n, 2), for a scatter plot.

    ``method="pca"`` (the only one): centre the rows, ``X − mean``, take its singular value
    decomposition ``U S Vᵀ``, and project onto the first two right singular vectors (the directions of
    largest variance): ``(X − mean) V[:, :2] = U[:, :2] S[:2]``. A principal direction's sign is
    arbitrary; each is flipped so that its largest-magnitude coordinate is positive, so the picture
    does not mirror itself between runs.
    """
    if method != "pca":
        raise ValueError(f"method={method!r} is not available: use method='pca'.")
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"embeddings has shape {x.shape}: expected (words, dim) with dim ≥ 2.")
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    directions = vt[:2].T  # (dim, 2)
    biggest = np.argmax(np.abs(directions), axis=0)
    directions = directions * np.sign(directions[biggest, [0, 1]])
    return centred @ directions


# ---------------------------------------------------------------------------------------------
# byte-pair encoding
# ---------------------------------------------------------------------------------------------


class BPEStep(NamedTuple):
    """One merge of :func:`bpe_learn`: the pair merged, how often it occurred, and the sizes after it."""

    pair: tuple[str, str]  # the two symbols merged, left then right
    count: int  # how many times they stood side by side in the corpus (word frequencies included)
    vocab_size: int  # tokens in the vocabulary after this merge (characters, END_OF_WORD, merges)
    corpus_tokens: int  # symbols the whole corpus is written with after this merge


def _word_counts(words_or_text: str | Mapping[str, int] | Iterable[str]) -> Counter[str]:
    if isinstance(words_or_text, str):
        return Counter(_text.tokenize(words_or_text))
    if isinstance(words_or_text, Mapping):
        return Counter({w: int(n) for w, n in words_or_text.items() if n > 0})
    return Counter(word for item in words_or_text for word in _text.tokenize(item))


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """``symbols`` with every occurrence of ``pair`` (left to right, not overlapping) made one symbol."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def _pairs(symbols: tuple[str, ...]) -> Counter[tuple[str, str]]:
    return Counter(zip(symbols, symbols[1:], strict=False))


def bpe_learn(
    words_or_text: str | Mapping[str, int] | Iterable[str], num_merges: int
) -> tuple[list[tuple[str, str]], list[str], list[BPEStep]]:
    """Learn ``num_merges`` byte-pair merges: returns ``(merges, vocab, trace)``.

    ``words_or_text`` is a text (split into words by :func:`utils.text.tokenize`), a list of texts,
    or a word-frequency table ``{"low": 5, "lower": 2, ...}``. Each word is written as its
    characters followed by :data:`END_OF_WORD` (``"low"`` → ``l o w </w>``). Then, ``num_merges``
    times:

    1. count every pair of adjacent symbols, over every word, weighted by the word's frequency
       (a pair that occurs twice in a word counts twice);
    2. take the most frequent pair; on a tie, the pair that comes first in alphabetical order of
       (left symbol, right symbol), so the result does not depend on the order the words came in
       (``"<"`` sorts before letters, so ``</w>`` pairs come first among ties);
    3. replace it everywhere by one new symbol, the two joined (``e`` + ``s`` → ``es``).

    It stops early if every word has become a single symbol. ``merges`` lists the pairs in the order
    learned; ``vocab`` is the base symbols (sorted) followed by one new token per merge;
    ``trace[i]`` is a :class:`BPEStep` for merge ``i``. Only the words that contain the merged pair
    are rewritten and recounted, and a heap finds the most frequent pair, so a thousand merges over
    the whole of :func:`utils.data.python_text` take a few seconds.
    """
    counts = _word_counts(words_or_text)
    words = {w: (*w, END_OF_WORD) for w in counts}  # word → its current symbols
    pair_counts: Counter[tuple[str, str]] = Counter()
    holders: dict[tuple[str, str], set[str]] = {}  # pair → words in which it occurs
    for w, symbols in words.items():
        for pair, n in _pairs(symbols).items():
            pair_counts[pair] += n * counts[w]
            holders.setdefault(pair, set()).add(w)
    vocab = sorted({s for symbols in words.values() for s in symbols})
    corpus_tokens = sum(len(symbols) * counts[w] for w, symbols in words.items())
    merges: list[tuple[str, str]] = []
    trace: list[BPEStep] = []
    # A heap of (−count, pair) finds the best pair fast. Entries go stale when a count changes; a
    # popped entry is used only if it still matches the pair's current count.
    heap = [(-n, p) for p, n in pair_counts.items()]
    heapq.heapify(heap)
    while len(merges) < num_merges and heap:
        negative, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative:
            continue  # stale: this pair's count has changed since the entry was pushed
        # the most frequent pair; on a tie, the smallest (left, right), as tuples compare
        count = -negative
        changed = set()
        for w in holders.pop(pair):
            old = words[w]
            new = _merge(old, pair)
            if new == old:
                continue  # the word lost this pair to an earlier merge
            for p, n in _pairs(old).items():  # take the word's old pairs out of the counts
                pair_counts[p] -= n * counts[w]
                changed.add(p)
            for p, n in _pairs(new).items():  # and put its new ones in
                pair_counts[p] += n * counts[w]
                holders.setdefault(p, set()).add(w)
                changed.add(p)
            corpus_tokens -= (len(old) - len(new)) * counts[w]
            words[w] = new
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            else:
                del pair_counts[p]
        merges.append(pair)
        vocab.append(pair[0] + pair[1])
        trace.append(BPEStep(pair, count, len(vocab), corpus_tokens))
    return merges, vocab, trace


def bpe_encode(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    """Split one word into the tokens ``merges`` (from :func:`bpe_learn`) build: a list of strings.

    The word is written as characters plus :data:`END_OF_WORD`, then the merges are applied in the
    order they were learned. (Done here by repeatedly merging the adjacent pair that was learned
    earliest, which gives the same result as going through the whole list, and faster.) A word never
    seen in training still gets tokens: its known pieces where merges apply, single characters where
    none does, so there is no "unknown word". ``"".join(tokens)`` is ``word + "</w>"``.
    """
    rank = {pair: i for i, pair in enumerate(merges)}
    symbols = (*word, END_OF_WORD)
    while len(symbols) > 1:
        ranked = [rank[p] for p in zip(symbols, symbols[1:], strict=False) if p in rank]
        if not ranked:
            break
        symbols = _merge(symbols, merges[min(ranked)])
    return list(symbols)


def bpe_decode(tokens: Iterable[str]) -> str:
    """The text ``tokens`` spell: joined, with :data:`END_OF_WORD` read as a space between words."""
    return "".join(tokens).replace(END_OF_WORD, " ").strip()
