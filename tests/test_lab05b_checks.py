"""Lab 05b's checks: right answers written in different styles pass, each known mistake is named by its own
hint, unfinished answers are "not done yet", a learner's error is reported kindly, and the references agree
with Keras (GRU, LSTM) and with an exhaustive search (beam search)."""

import heapq
import math

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils.checks import lab05b as ex  # noqa: E402

# ---------------------------------------------------------------------------------------------
# q1: a GRU step
# ---------------------------------------------------------------------------------------------


def gru_numpy(order="zr", swap=False, reset_before=False, drop_rec=False, rec_outside=False):
    """A learner's NumPy GRU step; the keywords are the slips people make."""

    def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
        units = h_prev.shape[-1]
        b_in, b_rec = bias[0], 0 * bias[1] if drop_rec else bias[1]
        w_z, w_r, w_h = np.split(kernel, 3, axis=1)
        u_z, u_r, u_h = np.split(recurrent_kernel, 3, axis=1)
        b_z, b_r, b_h = np.split(b_in, 3)
        c_z, c_r, c_h = np.split(b_rec, 3)
        if order == "rz":
            w_z, w_r, u_z, u_r, b_z, b_r, c_z, c_r = w_r, w_z, u_r, u_z, b_r, b_z, c_r, c_z
        sig = lambda v: 1 / (1 + np.exp(-v))
        z = sig(x_t @ w_z + b_z + h_prev @ u_z + c_z)
        r = sig(x_t @ w_r + b_r + h_prev @ u_r + c_r)
        if reset_before:
            recurrent = (r * h_prev) @ u_h + c_h
        elif rec_outside:
            recurrent = r * (h_prev @ u_h) + c_h
        else:
            recurrent = r * (h_prev @ u_h + c_h)
        h_tilde = np.tanh(x_t @ w_h + b_h + recurrent)
        assert h_tilde.shape[-1] == units
        return (1 - z) * h_prev + z * h_tilde if swap else z * h_prev + (1 - z) * h_tilde

    return gru_step


def gru_keras_ops(x_t, h_prev, kernel, recurrent_kernel, bias):
    """All three gates in one product, then sliced; keras.ops throughout."""
    ops = keras.ops
    n = h_prev.shape[-1]
    from_x = ops.matmul(x_t, kernel) + bias[0]
    from_h = ops.matmul(h_prev, recurrent_kernel) + bias[1]
    gates = ops.sigmoid(from_x[:, : 2 * n] + from_h[:, : 2 * n])
    z, r = gates[:, :n], gates[:, n:]
    candidate = ops.tanh(from_x[:, 2 * n :] + r * from_h[:, 2 * n :])
    return z * h_prev + (1.0 - z) * candidate


def gru_tf_einsum(x_t, h_prev, kernel, recurrent_kernel, bias):
    n = h_prev.shape[-1]
    w = tf.reshape(kernel, (-1, 3, n))
    u = tf.reshape(recurrent_kernel, (n, 3, n))
    b = tf.reshape(bias, (2, 3, n))
    xs = tf.einsum("bd,dgn->bgn", x_t, w) + b[0]
    hs = tf.einsum("bd,dgn->bgn", h_prev, u) + b[1]
    z = tf.sigmoid(xs[:, 0] + hs[:, 0])
    r = tf.sigmoid(xs[:, 1] + hs[:, 1])
    h_tilde = tf.tanh(xs[:, 2] + r * hs[:, 2])
    return h_tilde + z * (h_prev - h_tilde)


Q1_RIGHT = {"NumPy": gru_numpy(), "keras.ops": gru_keras_ops, "TensorFlow einsum": gru_tf_einsum}
Q1_WRONG = {
    "gates in the order r, z": gru_numpy(order="rz"),
    "z and 1 − z swapped": gru_numpy(swap=True),
    "reset applied before the matrix product": gru_numpy(reset_before=True),
    "recurrent bias dropped": gru_numpy(drop_rec=True),
    "recurrent bias outside the reset": gru_numpy(rec_outside=True),
}


def test_the_reference_gru_equals_keras():
    x, h0, w, u, b = ex._gru_probe()
    ours = ex._gru_run(ex.gru_reference, x, h0, w, u, b)
    np.testing.assert_allclose(ours, ex.keras_gru(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# q2: the forget-gate bias
# ---------------------------------------------------------------------------------------------


def forget_bias_numpy(half_life):
    keep = 0.5 ** (1 / half_life)
    return np.log(keep / (1 - keep))


def lstm_bias_numpy(units, half_life):
    bias = np.zeros(4 * units)
    bias[units : 2 * units] = forget_bias_numpy(half_life)
    return bias


def lstm_bias_math_tf(units, half_life):
    b = -math.log(2 ** (1 / half_life) - 1)  # logit(p) = −log(1/p − 1)
    zeros = tf.zeros(units)
    return tf.concat([zeros, tf.fill([units], b), zeros, zeros], axis=0)


def lstm_bias_gate(gate=1, value=None):
    def lstm_bias(units, half_life):
        b = forget_bias_numpy(half_life) if value is None else value(half_life)
        blocks = [np.zeros(units) for _ in range(4)]
        blocks[gate] = np.full(units, b)
        return np.concatenate(blocks)

    return lstm_bias


Q2_RIGHT = {"NumPy": lstm_bias_numpy, "math and tf.concat": lstm_bias_math_tf}
Q2_WRONG = {
    "the bias in the input-gate slice": lstm_bias_gate(gate=0),
    "the bias in the candidate slice": lstm_bias_gate(gate=2),
    "the bias in the output-gate slice": lstm_bias_gate(gate=3),
    "σ(b) = 1/2^half_life": lstm_bias_gate(value=lambda h: np.log(0.5**h / (1 - 0.5**h))),
    "a bias of 1 (Keras's unit_forget_bias)": lstm_bias_gate(value=lambda h: 1.0),
}


def test_the_reference_bias_halves_a_keras_lstms_memory_in_half_life_steps():
    units, half_life = 3, 10
    layer = keras.layers.LSTM(units, return_state=True, dtype="float32")
    layer.build((1, half_life, 2))
    kernel, recurrent, _ = layer.get_weights()
    layer.set_weights([0 * kernel, 0 * recurrent, ex.lstm_bias_reference(units, half_life).astype("float32")])
    x = np.zeros((1, half_life, 2), "float32")  # no input: only the forget gate acts on the cell state
    _, _, cell = layer(x, initial_state=[np.zeros((1, units), "float32"), np.ones((1, units), "float32")])
    np.testing.assert_allclose(np.asarray(cell), 0.5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# q3: beam search with a length penalty
# ---------------------------------------------------------------------------------------------


def lp(length, alpha):
    return ((5 + length) / 6) ** alpha


def beam_lists(step_fn, beam_width, max_len, start, end, alpha):
    """The beam narrows as hypotheses finish."""
    live, done = [([start], 0.0)], []
    for _ in range(max_len):
        options = [
            (tokens + [t], score + float(logp[t]))
            for tokens, score in live
            for logp in [step_fn(tokens)]
            for t in range(len(logp))
            if t != start
        ]
        options.sort(key=lambda o: o[1], reverse=True)
        kept = options[:beam_width]
        done += [o for o in kept if o[0][-1] == end]
        live = [o for o in kept if o[0][-1] != end]
        if not live:
            break
    best = max(done + live, key=lambda o: o[1] / lp(len(o[0]) - 1, alpha))
    return best[0][1:]


def beam_heap(step_fn, beam_width, max_len, start, end, alpha):
    """Keeps beam_width live hypotheses; finished ones ranked above the last kept one are set aside."""
    live, done = [(0.0, (start,))], []
    for _ in range(max_len):
        options = []
        for score, tokens in live:
            logp = step_fn(tokens)
            options += [(score + logp[t], (*tokens, t)) for t in range(len(logp)) if t != start]
        ranked = heapq.nlargest(2 * beam_width, options)
        live = []
        for score, tokens in ranked:
            if len(live) == beam_width:
                break
            (done if tokens[-1] == end else live).append((score, tokens))
    pool = done + live
    return list(max(pool, key=lambda o: o[0] / lp(len(o[1]) - 1, alpha))[1][1:])


def beam_vectorised(step_fn, beam_width, max_len, start, end, alpha):
    """NumPy: one (beams, vocabulary) score table per step, argsort over its flattened view."""
    seqs, scores, finished = np.array([[start]]), np.zeros(1), []
    for _ in range(max_len):
        table = scores[:, None] + np.stack([step_fn(s) for s in seqs])
        table[:, start] = -np.inf
        best = np.argsort(table, axis=None)[::-1][:beam_width]
        rows, cols = np.unravel_index(best, table.shape)
        seqs = np.concatenate([seqs[rows], cols[:, None]], axis=1)
        scores = table[rows, cols]
        ended = cols == end
        finished += [(s, v) for s, v in zip(seqs[ended], scores[ended], strict=True)]
        seqs, scores = seqs[~ended], scores[~ended]
        if len(seqs) == 0:
            break
    pool = finished + list(zip(seqs, scores, strict=True))
    return np.array(max(pool, key=lambda o: o[1] / lp(len(o[0]) - 1, alpha))[0])  # start kept: accepted


def beam_extends_finished(step_fn, beam_width, max_len, start, end, alpha):
    live = [([start], 0.0)]
    for _ in range(max_len):
        options = [(s + [t], v + float(step_fn(s)[t])) for s, v in live for t in range(1, len(step_fn(s)))]
        live = sorted(options, key=lambda o: o[1], reverse=True)[:beam_width]
    return max(live, key=lambda o: o[1] / lp(len(o[0]) - 1, alpha))[0][1:]


def greedy_decode(step_fn, beam_width, max_len, start, end, alpha):
    tokens = [start]
    while len(tokens) <= max_len and tokens[-1] != end:
        tokens.append(int(np.argmax(step_fn(tokens)[1:])) + 1)
    return tokens[1:]


def beam_twice_stepwise(step_fn, beam_width, max_len, start, end, alpha):
    """Stores the running score already divided by each step's penalty, then divides again at the end."""
    live, done = [([start], 0.0)], []
    for t in range(1, max_len + 1):
        options = [(s + [k], v + float(step_fn(s)[k]) / lp(t, alpha)) for s, v in live for k in range(1, 5)]
        kept = sorted(options, key=lambda o: o[1], reverse=True)[:beam_width]
        done += [o for o in kept if o[0][-1] == end]
        live = [o for o in kept if o[0][-1] != end]
        if not live:
            break
    return max(done + live, key=lambda o: o[1] / lp(len(o[0]) - 1, alpha))[0][1:]


def beam_final(score):
    """beam_lists with another final score(log P, length, alpha)."""

    def beam_search(step_fn, beam_width, max_len, start, end, alpha):
        live, done = [([start], 0.0)], []
        for _ in range(max_len):
            options = [(s + [t], v + float(step_fn(s)[t])) for s, v in live for t in range(1, 5)]
            kept = sorted(options, key=lambda o: o[1], reverse=True)[:beam_width]
            done += [o for o in kept if o[0][-1] == end]
            live = [o for o in kept if o[0][-1] != end]
            if not live:
                break
        return max(done + live, key=lambda o: score(o[1], len(o[0]) - 1, alpha))[0][1:]

    return beam_search


Q3_RIGHT = {"lists": beam_lists, "heapq, beam kept full": beam_heap, "NumPy, start kept": beam_vectorised}
Q3_WRONG = {
    "finished hypotheses extended past <end>": beam_extends_finished,
    "greedy decoding": greedy_decode,
    "no length penalty": beam_final(lambda logp, n, a: logp),
    "length normalisation applied twice": beam_final(lambda logp, n, a: logp / lp(n, a) / lp(n, a)),
}
Q3_MORE = {"length normalisation applied twice": beam_twice_stepwise}


@pytest.mark.parametrize("probe", ex.Q3_PROBES, ids=lambda p: f"seed{p[0]}")
def test_the_reference_beam_finds_the_exhaustive_best_on_every_probe(probe):
    seed, sharpness, width, max_len, alpha = probe
    model = ex.toy_model(seed, sharpness)
    best = ex.brute_force(model, max_len, ex.START, ex.END, alpha)
    assert ex.beam_reference(model, width, max_len, ex.START, ex.END, alpha) == best
    assert best[-1] == ex.END, "the right answers end with <end>: no rule about cut hypotheses is needed"


@pytest.mark.parametrize("seed", range(6))
def test_beam_width_1_is_greedy(seed):
    model = ex.toy_model(seed, 1.5)
    for alpha in (0.0, 0.6, 1.5):
        assert ex.beam_reference(model, 1, 6, ex.START, ex.END, alpha) == ex.greedy(
            model, 6, ex.START, ex.END
        )


def test_a_wide_enough_beam_is_exhaustive():
    for seed in range(5):
        model = ex.toy_model(seed, 1.0)
        best = ex.brute_force(model, 4, ex.START, ex.END, 0.8)
        assert ex.beam_reference(model, 4**4, 4, ex.START, ex.END, 0.8) == best


# ---------------------------------------------------------------------------------------------
# q4: clipping by the global norm
# ---------------------------------------------------------------------------------------------


def clip_numpy(grads, max_norm):
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    return [g * min(1.0, max_norm / norm) for g in grads]


def clip_tf(grads, max_norm):
    return tf.clip_by_global_norm(grads, max_norm)[0]


def clip_keras_ops(grads, max_norm):
    norm = keras.ops.sqrt(sum(keras.ops.sum(keras.ops.square(g)) for g in grads))
    scale = max_norm / keras.ops.maximum(norm, max_norm)
    return tuple(g * scale for g in grads)


Q4_RIGHT = {"NumPy": clip_numpy, "tf.clip_by_global_norm": clip_tf, "keras.ops, a tuple": clip_keras_ops}
Q4_WRONG = {
    "each tensor clipped by its own norm": lambda grads, m: [tf.clip_by_norm(g, m) for g in grads],
    "values clipped one by one": lambda grads, m: [np.clip(g, -m, m) for g in grads],
    "scaled even below the limit": lambda grads, m: [
        g * m / np.sqrt(sum(np.sum(h**2) for h in grads)) for g in grads
    ],
}

# ---------------------------------------------------------------------------------------------
# every question: right answers pass, mistakes are named
# ---------------------------------------------------------------------------------------------

EXERCISES = {"q1": ex.q1, "q2": ex.q2, "q3": ex.q3, "q4": ex.q4}
RIGHT = [
    (q, name, fn)
    for q, table in (("q1", Q1_RIGHT), ("q2", Q2_RIGHT), ("q3", Q3_RIGHT), ("q4", Q4_RIGHT))
    for name, fn in table.items()
]
WRONG = [
    (q, name, fn)
    for q, table in (("q1", Q1_WRONG), ("q2", Q2_WRONG), ("q3", Q3_WRONG), ("q3", Q3_MORE), ("q4", Q4_WRONG))
    for name, fn in table.items()
]


@pytest.mark.parametrize(("q", "name", "answer"), RIGHT, ids=[f"{q}-{n}" for q, n, _ in RIGHT])
def test_right_answers_pass(q, name, answer):
    fb = EXERCISES[q].evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(("q", "name", "answer"), WRONG, ids=[f"{q}-{n}" for q, n, _ in WRONG])
def test_each_mistake_gets_its_own_hint(q, name, answer):
    fb = EXERCISES[q].evaluate(answer)
    mistakes = {"q1": ex.Q1_MISTAKES, "q2": ex.Q2_MISTAKES, "q3": ex.Q3_MISTAKES, "q4": ex.Q4_MISTAKES}[q]
    hint = next(m.hint for m in mistakes if m.name == name)
    assert fb.status == "incorrect" and name in fb.got and fb.hint == hint, str(fb)


def test_every_declared_mistake_is_tested():
    tested = {(q, name) for q, name, _ in WRONG}
    for q, mistakes in (
        ("q1", ex.Q1_MISTAKES),
        ("q2", ex.Q2_MISTAKES),
        ("q3", ex.Q3_MISTAKES),
        ("q4", ex.Q4_MISTAKES),
    ):
        assert {(q, m.name) for m in mistakes} <= tested


def test_q3_mistakes_are_told_apart_on_the_probes():
    """On the first probe each mistake fails, no other mistake gives the same sequence."""
    runs = {}
    for mistake in ex.Q3_MISTAKES[1:]:
        for probe in ex.Q3_PROBES:
            seed, sharpness, *rest = probe
            model = ex.toy_model(seed, sharpness)
            got = mistake.compute(model, rest[0], rest[1], ex.START, ex.END, rest[2])
            if got != ex.brute_force(model, rest[1], ex.START, ex.END, rest[2]):
                runs[mistake] = (probe, got)
                break
    assert len(runs) == len(ex.Q3_MISTAKES) - 1, "every mistake fails a probe"
    for mistake, (probe, got) in runs.items():
        seed, sharpness, width, max_len, alpha = probe
        model = ex.toy_model(seed, sharpness)
        for other in ex.Q3_MISTAKES[1:]:
            if other.name != mistake.name:
                assert other.compute(model, width, max_len, ex.START, ex.END, alpha) != got


def test_wrong_shapes_and_returns_are_explained():
    fb = ex.q2.evaluate(lambda units, h: np.zeros((4, units)))
    assert fb.status == "incorrect" and "shape" in fb.message, str(fb)
    fb = ex.q3.evaluate(lambda *a: (beam_lists(*a), -1.5))
    assert fb.status == "incorrect" and "score" in fb.hint, str(fb)
    fb = ex.q4.evaluate(lambda grads, m: tf.clip_by_global_norm(grads, m))
    assert fb.status == "incorrect" and "list" in fb.hint, str(fb)


# ---------------------------------------------------------------------------------------------
# placeholders, a learner's own error
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


def forget_bias_placeholder(half_life):
    # YOUR CODE HERE
    raise NotImplementedError


@pytest.mark.parametrize("q", EXERCISES)
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented], ids=["ellipsis", "None", "raise"])
def test_placeholders_are_not_done(q, placeholder):
    fb = EXERCISES[q].evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message, str(fb)


def test_q2_is_not_done_while_forget_bias_is_not():
    def lstm_bias(units, half_life):
        return np.concatenate(
            [np.zeros(units), np.full(units, forget_bias_placeholder(half_life)), np.zeros(2 * units)]
        )

    assert ex.q2.evaluate(lstm_bias).status == "not_done"


def test_a_learners_typo_is_reported_with_their_line():
    def clip_global(grads, max_norm):
        norm = np.sqrt(sum(np.sum(g**2) for g in grads))  # noqa: F841 (the typo below)
        return [g * min(1.0, max_norm / nrom) for g in grads]  # noqa: F821

    fb = ex.q4.evaluate(clip_global)
    assert fb.status == "error" and "NameError" in fb.message and "nrom" in fb.message, str(fb)
    assert "Traceback" not in str(fb)


def test_a_learners_index_error_in_beam_search_is_reported_kindly():
    fb = ex.q3.evaluate(lambda step_fn, *a: step_fn([0])[99])
    assert fb.status == "error" and "IndexError" in fb.message and "Traceback" not in str(fb)


# ---------------------------------------------------------------------------------------------
# under mixed precision (a T4: float16, a TPU: bfloat16)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "answer"),
    [("q1", gru_keras_ops), ("q1", gru_numpy()), ("q2", lstm_bias_math_tf), ("q4", clip_keras_ops)],
    ids=["q1-keras.ops", "q1-NumPy", "q2", "q4"],
)
def test_right_answers_pass_under_mixed_precision(mixed_policy, q, answer):
    fb = EXERCISES[q].evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


def test_q1_mistakes_are_named_under_mixed_precision(mixed_policy):
    fb = ex.q1.evaluate(gru_numpy(swap=True))
    assert fb.status == "incorrect" and "z and 1 − z swapped" in fb.got, f"{mixed_policy}: {fb}"


# ---------------------------------------------------------------------------------------------
# the lab's references are the lesson's utils: one GRU, one beam search, one clipping rule
# ---------------------------------------------------------------------------------------------


def test_the_gru_reference_is_utils_rnn_gru_cell():
    from utils import rnn

    x, h0, w, u, b = ex._gru_probe()
    np.testing.assert_allclose(
        ex.gru_reference(x[:, 0], h0, w, u, b), rnn.gru_cell(x[:, 0], h0, w, u, b), rtol=1e-12
    )


@pytest.mark.parametrize("probe", ex.Q3_PROBES, ids=lambda p: f"seed{p[0]}")
def test_the_beam_reference_is_utils_seq2seq_beam_search(probe):
    from utils import seq2seq

    seed, sharpness, width, max_len, alpha = probe
    model = ex.toy_model(seed, sharpness)
    step_fn = lambda sources, prefixes: np.stack([model(p) for p in prefixes])  # noqa: E731 (one source)
    found = seq2seq.beam_search(step_fn, np.zeros(1), width, max_len, ex.START, ex.END, alpha=alpha)
    assert found.best.tokens == ex.beam_reference(model, width, max_len, ex.START, ex.END, alpha)
    for length in range(1, 8):
        assert seq2seq.length_penalty(length, alpha) == ex.length_penalty(length, alpha)


def test_the_clipping_reference_is_utils_rnn_clip_by_global_norm():
    from utils import rnn

    grads = ex._grads_probe()
    norm = rnn.global_norm(grads)
    for max_norm in (0.5 * norm, 2 * norm):
        ours, _ = rnn.clip_by_global_norm(grads, max_norm)
        np.testing.assert_allclose(ex._flat(ex._clip(grads, max_norm)), ex._flat(ours), rtol=1e-12)
