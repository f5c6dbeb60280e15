"""utils.seq2seq: number words, the dataset, greedy and beam decoding, the length penalty, the model."""

import itertools
import math

import numpy as np
import pytest

from utils import seq2seq as s2s

# ---------------------------------------------------------------------------------------------
# the task
# ---------------------------------------------------------------------------------------------

HAND_CHECKED = {
    0: "zero",
    7: "seven",
    13: "thirteen",
    20: "twenty",
    21: "twenty-one",
    100: "one hundred",
    101: "one hundred and one",
    115: "one hundred and fifteen",
    312: "three hundred and twelve",
    999: "nine hundred and ninety-nine",
    1000: "one thousand",
    1005: "one thousand and five",
    1100: "one thousand one hundred",
    1250: "one thousand two hundred and fifty",
    20_001: "twenty thousand and one",
    100_000: "one hundred thousand",
    120_000: "one hundred and twenty thousand",
    300_040: "three hundred thousand and forty",
    999_999: "nine hundred and ninety-nine thousand nine hundred and ninety-nine",
}

_VALUES = {w: i for i, w in enumerate(s2s.SOURCE_VOCAB[1:21])} | {
    w: 10 * (i + 2) for i, w in enumerate(s2s.SOURCE_VOCAB[21:29])
}


def _parse(tokens):
    """An independent reader of number words: sum the words, times 100 at "hundred", bank at "thousand"."""
    total = current = 0
    for word in tokens:
        if word == "hundred":
            current *= 100
        elif word == "thousand":
            total, current = total + 1000 * current, 0
        elif word != "and":
            current += _VALUES[word]
    return total + current


@pytest.mark.parametrize(("n", "words"), HAND_CHECKED.items())
def test_number_to_words_hand_checked(n, words):
    assert s2s.number_to_words(n) == words
    assert s2s.number_tokens(n) == words.replace("-", " ").split()


def test_number_to_words_rejects_out_of_range():
    for bad in (-1, 1_000_000, 2.5):
        with pytest.raises(ValueError, match="whole number"):
            s2s.number_to_words(bad)


def test_number_words_read_back_so_each_number_has_its_own_words():
    # If reading the words back gives n for every n, no two numbers share a word sequence. All of
    # 0..2999 (every pattern below a thousand, with and without a thousands part), then a seeded
    # sample over the whole range (the full million takes ~15 s here; the grammar is the same).
    sample = np.random.default_rng(0).choice(1_000_000, size=20_000, replace=False).tolist()
    numbers = [*range(3000), *sample, 999_999]
    seen = {}
    for n in numbers:
        tokens = tuple(s2s.number_tokens(n))
        assert _parse(tokens) == n, (n, tokens)
        assert set(tokens) <= set(s2s.SOURCE_VOCAB[1:])
        seen[tokens] = n
    assert len(seen) == len(set(numbers))
    assert len(s2s.number_tokens(777_777)) == 11  # the longest: seven hundred and seventy seven thousand ...


def test_vocabularies():
    assert s2s.SOURCE_VOCAB[s2s.PAD_ID] == "<pad>" and s2s.TARGET_VOCAB[s2s.PAD_ID] == "<pad>"
    assert len(set(s2s.SOURCE_VOCAB)) == len(s2s.SOURCE_VOCAB) == 1 + 20 + 8 + 3
    assert [s2s.TARGET_VOCAB[i] for i in (s2s.START_ID, s2s.END_ID)] == ["<start>", "<end>"]
    assert s2s.decode_digits([s2s.START_ID, *s2s.encode_digits(4070), s2s.END_ID, 5, 0]) == "4070"
    assert s2s.decode_source(s2s.encode_words(21, length=4)) == ["twenty", "one"]
    assert s2s.encode_words(21, length=4).tolist()[2:] == [0, 0]


def _check_split(split):
    for r, n in enumerate(split.numbers.tolist()):
        digits = s2s.encode_digits(n)
        k = len(digits)
        assert " ".join(s2s.decode_source(split.source[r])) == " ".join(s2s.number_tokens(n))
        assert split.decoder_input[r, 0] == s2s.START_ID
        # teacher forcing: the input is the target shifted right by one, behind <start>
        assert split.decoder_input[r, 1 : k + 1].tolist() == split.decoder_target[r, :k].tolist() == digits
        assert split.decoder_target[r, k] == s2s.END_ID
        assert not split.decoder_input[r, k + 1 :].any() and not split.decoder_target[r, k + 1 :].any()
        assert s2s.decode_digits(split.decoder_target[r]) == str(n)


def test_number_dataset_exhaustive_splits_are_disjoint_and_shifted():
    data = s2s.number_dataset(999, seed=1)
    parts = [set(data[k].numbers.tolist()) for k in ("train", "val", "test")]
    assert [len(p) for p in parts] == [800, 100, 100]
    assert set.union(*parts) == set(range(1000)) and sum(map(len, parts)) == 1000  # disjoint
    assert {data[k].source.shape[1] for k in data} == {5}  # "nine hundred and ninety nine"
    assert {data[k].decoder_target.shape[1] for k in data} == {4}  # 3 digits + <end>
    for split in data.values():
        _check_split(split)


def test_number_dataset_sampled_is_seeded_and_disjoint():
    a = s2s.number_dataset(seed=3, size=400)
    b = s2s.number_dataset(seed=3, size=400)
    c = s2s.number_dataset(seed=4, size=400)
    numbers = np.concatenate([a[k].numbers for k in ("train", "val", "test")])
    assert len(np.unique(numbers)) == 400 and numbers.max() <= s2s.MAX_NUMBER
    assert all(np.array_equal(a[k].source, b[k].source) for k in a)
    assert not np.array_equal(a["train"].numbers, c["train"].numbers)
    _check_split(a["test"])
    with pytest.raises(ValueError, match="size"):
        s2s.number_dataset(99, size=101)


# ---------------------------------------------------------------------------------------------
# decoding on NumPy step functions
# ---------------------------------------------------------------------------------------------

V, START, END = 5, 1, 2


def markov_step_fn(seed, n_sources=4, vocab=V):
    """A table-driven toy decoder: p(next | source row, last token), a random table per source id."""
    rng = np.random.default_rng(seed)
    table = np.log(rng.dirichlet(np.full(vocab, 0.7), size=(n_sources, vocab)))

    def step(sources, prefixes):
        return table[np.asarray(sources)[:, 0], np.asarray(prefixes)[:, -1]]

    return step


def table_step_fn(probs, vocab=V):
    """A Markov decoder from a hand-written ``{last token: {next token: p}}`` (unlisted: ~0)."""
    table = np.full((vocab, vocab), 1e-12)
    for last, row in probs.items():
        for nxt, p in row.items():
            table[last, nxt] = p
    table = np.log(table / table.sum(axis=1, keepdims=True))
    return lambda sources, prefixes: table[np.asarray(prefixes)[:, -1]]


def sequence_log_prob(step, source, tokens):
    prefix = [START]
    total = 0.0
    for t in tokens:
        total += step(np.asarray([[source]]), np.asarray([prefix]))[0, t]
        prefix.append(t)
    return total


def brute_force(step, source, max_len, alpha):
    """Every complete output: ends in <end> with no earlier <end>, or runs to max_len without one."""
    best = None
    for length in range(1, max_len + 1):
        for body in itertools.product([t for t in range(V) if t != END], repeat=length - 1):
            for last in range(V):
                if last != END and length < max_len:
                    continue
                tokens = (*body, last)
                score = sequence_log_prob(step, source, tokens) / s2s.length_penalty(length, alpha)
                if best is None or score > best[1]:
                    best = (tokens, score)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_beam_width_one_is_greedy_on_a_markov_table(seed):
    step = markov_step_fn(seed)
    sources = np.arange(4)[:, None]
    greedy = s2s.greedy_decode(step, sources, max_len=6, start_id=START, end_id=END)
    for alpha in (0.0, 0.7):
        beams = s2s.beam_search_batch(step, sources, 1, 6, START, END, alpha=alpha)
        assert [list(b.best.tokens) for b in beams] == greedy
    for row in range(4):
        one = s2s.beam_search(step, sources[row], 1, 6, START, END)
        assert list(one.best.tokens) == greedy[row]
        assert one.best.log_prob == pytest.approx(sequence_log_prob(step, row, greedy[row]))
    # outputs end at the first <end> or at max_len
    for out in greedy:
        assert END not in out[:-1] and (out[-1] == END or len(out) == 6)


@pytest.mark.parametrize(("seed", "alpha"), [(0, 0.0), (1, 0.0), (2, 1.0), (3, 2.0)])
def test_wide_beam_finds_the_brute_force_best(seed, alpha):
    step = markov_step_fn(seed)
    max_len = 4
    for source in range(2):
        tokens, score = brute_force(step, source, max_len, alpha)
        result = s2s.beam_search(step, np.asarray([source]), V**max_len, max_len, START, END, alpha)
        assert result.best.tokens == tokens and result.best.score == pytest.approx(score)
        # nothing is lost and nothing finished is extended: every output: 4^(L-1) ending in <end> at each L, 4^4 open at L = 4
        assert len(result.hypotheses) == len({h.tokens for h in result.hypotheses}) == 1 + 4 + 16 + 64 + 256
        assert all(END not in h.tokens[:-1] for h in result.hypotheses)
        assert all(h.finished == (h.tokens[-1] == END) for h in result.hypotheses)


A_, B_, C_ = 0, 3, 4  # three content tokens (0 doubles as a token here: the toy has no padding)


def test_beam_beats_greedy_where_the_likely_first_step_leads_nowhere():
    step = table_step_fn(
        {START: {A_: 0.55, B_: 0.45}, A_: {END: 0.4, A_: 0.3, B_: 0.3}, B_: {END: 0.9, A_: 0.1}}
    )
    source = np.zeros((1, 1), dtype=np.int32)
    greedy = s2s.greedy_decode(step, source, 5, START, END)[0]
    assert greedy == [A_, END]  # 0.55 · 0.4 = 0.22
    beam = s2s.beam_search(step, source[0], 2, 5, START, END)
    assert beam.best.tokens == (B_, END) and beam.best.log_prob == pytest.approx(math.log(0.45 * 0.9))
    assert beam.best.log_prob > sequence_log_prob(step, 0, greedy)
    # the widget's view: step 1 keeps A and B; step 2 finishes B<end> and A<end> and the beam empties
    assert [(h.tokens, h.finished) for h in beam.steps[0]] == [((A_,), False), ((B_,), False)]
    assert [(h.tokens, h.finished) for h in beam.steps[1]] == [((B_, END), True), ((A_, END), True)]
    assert len(beam.steps) == 2
    assert s2s.exact_match([greedy, list(beam.best.tokens)], [[B_, END], [B_, END, 0]]) == 0.5


def test_length_penalty_is_applied_once_at_the_final_ranking():
    # short: <end> at once, p = 0.5, |Y| = 1;  long: A B C <end>, p = 0.45 · 0.99³, |Y| = 4
    step = table_step_fn(
        {
            START: {END: 0.5, A_: 0.45, B_: 0.05},
            A_: {B_: 0.99, END: 0.01},
            B_: {C_: 0.99, END: 0.01},
            C_: {END: 0.99, A_: 0.01},
        }
    )
    short, long = math.log(0.5), math.log(0.45 * 0.99**3)
    lp4 = lambda a: (9 / 6) ** a  # lp(1) = 1 for every alpha
    assert s2s.length_penalty(4, 0.6) == pytest.approx(lp4(0.6)) and s2s.length_penalty(1, 3.0) == 1.0
    source = np.zeros(1, dtype=np.int32)
    best = lambda a: s2s.beam_search(step, source, 2, 6, START, END, alpha=a).best
    assert best(0.0).tokens == (END,) and best(0.0).score == pytest.approx(short)  # raw sums: short wins
    # long wins once 1.5^a > long/short = 1.196, i.e. a > 0.44; dividing twice would flip it at a > 0.22
    assert best(0.3).tokens == (END,)
    assert best(0.6).tokens == (A_, B_, C_, END)
    assert best(0.6).score == pytest.approx(long / lp4(0.6)) and best(0.6).log_prob == pytest.approx(long)


def test_larger_alpha_never_prefers_shorter_outputs():
    for seed in range(4):
        step = markov_step_fn(seed)
        lengths = [
            len(s2s.beam_search(step, np.asarray([1]), 8, 6, START, END, alpha=a).best.tokens)
            for a in (0.0, 0.5, 1.0, 2.0, 4.0)
        ]
        assert lengths == sorted(lengths), lengths


def test_accuracies_on_hand_made_outputs():
    target = np.array([[3, 4, 2, 0], [5, 2, 0, 0]])
    assert s2s.exact_match([[3, 4, 2], [5, 6, 2]], target) == 0.5
    assert (
        s2s.exact_match([[3, 4], [5, 2, 9]], target) == 1.0
    )  # unfinished equals finished; after <end> ignored
    # free running: 3 of the 5 real target tokens ([3, 4, 2] and [5, 2]) are right position by position
    assert s2s.token_accuracy([[3, 9, 2], [6, 2, 7, 7]], target) == pytest.approx(3 / 5)
    logits = np.eye(7)[[[3, 4, 2, 1], [5, 3, 1, 1]]]  # argmax: row 0 right, row 1 wrong at step 2
    assert s2s.teacher_forced_accuracy(logits, target) == pytest.approx((4 / 5, 1 / 2))
    assert np.allclose(
        np.exp(s2s.log_softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3)]]))), [[0.5, 0.5], [0.25, 0.75]]
    )


# ---------------------------------------------------------------------------------------------
# the Keras model
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_env():
    from utils.env import import_tensorflow

    tf = import_tensorflow()
    import keras

    return tf, keras


def _batch():
    data = s2s.number_dataset(999, seed=0)["train"]
    rows = [int(np.argmin((data.source != 0).sum(1))), *range(7)]  # the shortest source first: padded
    return data.source[rows], data.decoder_input[rows], data.decoder_target[rows]


def _train_step_and_attention(tf, keras):
    source, dec_in, dec_out = _batch()
    model = s2s.build_seq2seq(units=16, embed=8, seed=0)
    opt = keras.optimizers.Adam(1e-2)
    if model.dtype_policy.compute_dtype == "float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=s2s.PAD_ID)
    with tf.GradientTape() as tape:
        logits = model([source, dec_in], training=True)
        loss = loss_fn(dec_out, logits)
        scaled = opt.scale_loss(loss)
    grads = tape.gradient(scaled, model.trainable_variables)
    opt.apply(grads, model.trainable_variables)
    assert logits.dtype == "float32" and tuple(logits.shape) == (8, dec_in.shape[1], len(s2s.TARGET_VOCAB))
    assert np.isfinite(float(loss)) and abs(float(loss) - math.log(len(s2s.TARGET_VOCAB))) < 0.5  # ≈ uniform
    assert all(g is not None for g in grads)
    assert all(np.isfinite(v.numpy()).all() for v in model.trainable_variables)

    weights = s2s.attention_model(model)([source, dec_in]).numpy()
    assert weights.dtype == np.float32 and weights.shape == (8, dec_in.shape[1], source.shape[1])
    real = source != s2s.PAD_ID
    assert (~real).any()  # the batch has padded source positions
    assert np.abs(weights * ~real[:, None, :]).max() == 0  # padding gets no attention
    np.testing.assert_allclose(
        weights.sum(-1), 1.0, atol=2e-2 if model.dtype_policy.compute_dtype != "float32" else 1e-5
    )


@pytest.mark.slow
def test_keras_model_trains_one_step_and_attention_sums_to_one(keras_env):
    _train_step_and_attention(*keras_env)
    with pytest.raises(ValueError, match="no cross-attention"):
        s2s.attention_model(s2s.build_seq2seq(units=8, embed=4, attention=False, bidirectional=False))


@pytest.mark.slow
def test_keras_model_under_mixed_precision(keras_env, mixed_policy):
    _train_step_and_attention(*keras_env)


@pytest.mark.slow
def test_beam_one_is_greedy_on_a_keras_model_and_greedy_follows_teacher_forcing(keras_env):
    source, dec_in, dec_out = _batch()
    model = s2s.build_seq2seq(units=16, embed=8, seed=1)
    step = s2s.keras_step_fn(model, compiled=False)
    max_len = dec_out.shape[1]
    greedy = s2s.greedy_decode(step, source, max_len)
    assert [list(b.best.tokens) for b in s2s.beam_search_batch(step, source, 1, max_len)] == greedy
    # free running agrees with the teacher-forced argmax up to and including its first mistake
    logits = model([source, dec_in]).numpy()
    forced = np.argmax(logits, axis=-1)
    for r, out in enumerate(greedy):
        for t, token in enumerate(out):
            assert token == forced[r, t]
            if token != dec_out[r, t]:
                break
    token_accuracy, sequence_accuracy = s2s.teacher_forced_accuracy(logits, dec_out)
    assert sequence_accuracy == s2s.exact_match(greedy, dec_out)
    split = s2s.Split(np.zeros(len(source)), source, dec_in, dec_out)
    gap = s2s.exposure_bias_gap(model, split, compiled=False)
    assert gap["teacher_forced_token_accuracy"] == pytest.approx(token_accuracy)
    assert gap["free_running_token_accuracy"] == pytest.approx(s2s.token_accuracy(greedy, dec_out))
    assert gap["greedy_exact_match"] == sequence_accuracy
    assert gap["gap"] == pytest.approx(token_accuracy - gap["free_running_token_accuracy"])
