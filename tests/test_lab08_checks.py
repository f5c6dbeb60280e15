"""Lab 08's checks: right answers (written several ways) pass; each usual mistake gets its own message."""

from __future__ import annotations

import numpy as np
import pytest

from utils.checks import lab08 as ex

# ---------------------------------------------------------------------------------------------
# Right answers, written differently from the reference
# ---------------------------------------------------------------------------------------------


def softmax_t(logits, temperature=1.0):
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - np.max(z)
    return np.exp(z) / np.exp(z).sum()


def softmax_t_power(logits, temperature=1.0):  # p ** (1/T), renormalised: the same distribution
    p = softmax_t(logits)
    q = p ** (1.0 / temperature)
    return q / q.sum()


def top_k(probs, k):
    probs = np.asarray(probs, dtype=np.float64)
    keep = np.argsort(-probs, kind="stable")[:k]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def top_k_ties_last(probs, k):  # a different tie-break: still exactly k tokens
    probs = np.asarray(probs, dtype=np.float64)
    order = np.lexsort((-np.arange(len(probs)), -probs))[:k]
    out = np.zeros_like(probs)
    out[order] = probs[order]
    return out / out.sum()


def top_p(probs, p):
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, kind="stable")
    before = np.cumsum(probs[order]) - probs[order]
    keep = order[before < p]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def top_p_loop(probs, p):  # a loop that stops once the sum reaches p
    probs = list(map(float, probs))
    total, kept = 0.0, []
    for i in sorted(range(len(probs)), key=lambda i: -probs[i]):
        kept.append(i)
        total += probs[i]
        if total >= p:
            break
    out = np.zeros(len(probs))
    out[kept] = np.array(probs)[kept]
    return out / out.sum()


def sample(logits, rng, temperature=1.0, top_k_=None, top_p_=None, **kw):
    top_k_, top_p_ = kw.get("top_k", top_k_), kw.get("top_p", top_p_)
    probs = softmax_t(logits, temperature)
    if top_k_ is not None:
        probs = top_k(probs, top_k_)
    if top_p_ is not None:
        probs = top_p(probs, top_p_)
    return int(rng.choice(len(probs), p=probs))


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, softmax_t),
        (ex.q1, softmax_t_power),
        (ex.q1, ex.reference_softmax_with_temperature),
        (ex.q2, top_k),
        (ex.q2, top_k_ties_last),
        (ex.q2, ex.reference_top_k_filter),
        (ex.q3, top_p),
        (ex.q3, top_p_loop),
        (ex.q3, ex.reference_top_p_filter),
        (ex.q4, sample),
        (ex.q4, ex.reference_sample_next),
    ],
)
@pytest.mark.slow
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
def test_placeholders_are_not_done(exercise):
    assert exercise.evaluate(_not_implemented).status == "not_done"
    assert exercise.evaluate(...).status == "not_done"


def test_a_crash_names_the_learners_line():
    def broken(logits, temperature):
        return logits / undefined_name  # noqa: F821

    fb = ex.q1.evaluate(broken)
    assert fb.status == "error" and "NameError" in fb.message


# ---------------------------------------------------------------------------------------------
# Q1 mistakes
# ---------------------------------------------------------------------------------------------


def _sm(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


Q1_MISTAKES = {
    "multiplied": (lambda logits, t: _sm(np.asarray(logits) * t), "multiplied the logits"),
    "after softmax": (lambda logits, t: _sm(logits) / t, "after the softmax (probabilities / T)"),
    "softmax twice": (lambda logits, t: _sm(_sm(logits) / t), "a second softmax"),
    "power, not renormalised": (lambda logits, t: _sm(logits) ** (1 / t), "did not renormalise"),
    "temperature ignored": (lambda logits, t: _sm(logits), "ignores the temperature"),
    "no normalisation": (lambda logits, t: np.exp(np.asarray(logits) / t), "without dividing by the sum"),
    "log-softmax": (lambda logits, t: np.log(_sm(np.asarray(logits) / t)), "log-probabilities"),
    "overflow": (
        lambda logits, t: np.exp(np.asarray(logits) / t) / np.exp(np.asarray(logits) / t).sum(),
        "overflows",
    ),
    "returns a token": (lambda logits, t: int(np.argmax(logits)), "not one token"),
}


# ---------------------------------------------------------------------------------------------
# Q2 mistakes
# ---------------------------------------------------------------------------------------------


def _keep(probs, idx, renormalise=True):
    probs = np.asarray(probs, dtype=np.float64)
    out = np.zeros_like(probs)
    out[idx] = probs[idx]
    return out / out.sum() if renormalise else out


def _order(probs):
    return np.argsort(-np.asarray(probs), kind="stable")


Q2_MISTAKES = {
    "k+1": (lambda probs, k: _keep(probs, _order(probs)[: k + 1]), "k + 1 tokens"),
    "k-1": (lambda probs, k: _keep(probs, _order(probs)[: max(k - 1, 0)]), "k − 1 tokens"),
    "ascending": (lambda probs, k: _keep(probs, np.argsort(probs, kind="stable")[:k]), "sorted ascending"),
    "not renormalised": (lambda probs, k: _keep(probs, _order(probs)[:k], False), "did not renormalise"),
    "ties kept": (
        lambda probs, k: _keep(probs, np.flatnonzero(probs >= np.sort(probs)[::-1][k - 1])),
        "tie with the k-th",
    ),
    "sorted order": (
        lambda probs, k: np.sort(top_k(probs, k))[::-1],
        "returned them in sorted order",
    ),
    "indices": (lambda probs, k: _order(probs)[:k], "token ids"),
    "mask": (lambda probs, k: (top_k(probs, k) > 0).astype(float), "0/1 mask"),
}


# ---------------------------------------------------------------------------------------------
# Q3 mistakes
# ---------------------------------------------------------------------------------------------


def _nucleus(probs, p, rule):
    probs = np.asarray(probs, dtype=np.float64)
    order = _order(probs)
    cum = np.cumsum(probs[order])
    return order, cum, rule(cum, probs[order], p)


def _top_p_rule(rule, renormalise=True, sort=True):
    def answer(probs, p):
        probs = np.asarray(probs, dtype=np.float64)
        order = _order(probs) if sort else np.arange(len(probs))
        cum = np.cumsum(probs[order])
        return _keep(probs, order[rule(cum, probs[order], p)], renormalise)

    return answer


Q3_MISTAKES = {
    "crossing token excluded (cum < p)": (
        _top_p_rule(lambda c, s, p: c < p),
        "left out the token that crosses p",
    ),
    "crossing token excluded (cum <= p)": (
        _top_p_rule(lambda c, s, p: c <= p),
        "left out the token that crosses p",
    ),
    "one too many": (_top_p_rule(lambda c, s, p: c - s <= p), "one token too many"),
    "ascending": (
        lambda probs, p: _keep(
            probs,
            np.argsort(probs, kind="stable")[np.cumsum(np.sort(probs)) - np.sort(probs) < p],
        ),
        "sorted ascending",
    ),
    "not renormalised": (_top_p_rule(lambda c, s, p: c - s < p, renormalise=False), "did not renormalise"),
    "vocabulary order": (_top_p_rule(lambda c, s, p: c - s < p, sort=False), "in vocabulary order"),
    "sorted order": (lambda probs, p: np.sort(top_p(probs, p))[::-1], "returned them in sorted order"),
    "indices": (lambda probs, p: _order(probs)[:2], "token ids"),
}


# ---------------------------------------------------------------------------------------------
# Q4 mistakes
# ---------------------------------------------------------------------------------------------


def _sample_variant(kind):
    def answer(logits, rng, temperature=1.0, top_k=None, top_p=None):
        probs = softmax_t(logits, temperature)
        if kind == "top-p before top-k":
            if top_p is not None:
                probs = top_p_(probs, top_p)
            if top_k is not None:
                probs = top_k_(probs, top_k)
        else:
            if top_k is not None:
                probs = top_k_(probs, top_k)
            if top_p is not None:
                probs = top_p_(probs, top_p)
        if kind == "probabilities":
            return probs
        if kind == "greedy":
            return int(np.argmax(probs))
        if kind == "global rng":
            return int(np.random.choice(len(probs), p=probs))
        if kind == "probability of the token":
            return float(probs[rng.choice(len(probs), p=probs)])
        if kind == "filters ignored":
            return int(rng.choice(len(probs), p=softmax_t(logits, temperature)))
        return int(rng.choice(len(probs), p=probs))

    top_k_, top_p_ = top_k, top_p
    return answer


Q4_MISTAKES = {
    "returns probabilities": (_sample_variant("probabilities"), "You returned the probabilities"),
    "greedy": (_sample_variant("greedy"), "greedy decoding"),
    "global rng": (_sample_variant("global rng"), "not with np.random.choice"),
    "returns the probability": (_sample_variant("probability of the token"), "not a token"),
    "filters ignored": (_sample_variant("filters ignored"), "that the filter must remove"),
    "top-p before top-k": (_sample_variant("top-p before top-k"), "temperature (on the logits), then top-k"),
}


def _cases(mistakes):
    return [pytest.param(answer, phrase, id=name) for name, (answer, phrase) in mistakes.items()]


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q1_MISTAKES))
def test_q1_mistakes(answer, phrase):
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q2_MISTAKES))
def test_q2_mistakes(answer, phrase):
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q3_MISTAKES))
def test_q3_mistakes(answer, phrase):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "phrase"), _cases(Q4_MISTAKES))
def test_q4_mistakes(answer, phrase):
    fb = ex.q4.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.parametrize(
    ("exercise", "mistakes"),
    [(ex.q1, Q1_MISTAKES), (ex.q2, Q2_MISTAKES), (ex.q3, Q3_MISTAKES)],
)
def test_mistakes_get_specific_hints_not_the_generic_one(exercise, mistakes):
    hints = [exercise.evaluate(answer).hint for answer, _ in mistakes.values()]
    assert exercise.hints[0] not in hints


def test_the_top_p_probes_separate_the_off_by_ones():
    for probs, p in ex.TOP_P_PROBES:
        probs = np.asarray(probs)
        n = ex._nucleus_size(probs, p)
        assert np.count_nonzero(ex.reference_top_p_filter(probs, p)) == n
    sizes = [ex._nucleus_size(np.asarray(pr), p) for pr, p in ex.TOP_P_PROBES]
    assert sizes == [2, 2, 4, 1, 5]


def test_a_wrong_filter_shows_expected_and_got():
    fb = ex.q3.evaluate(Q3_MISTAKES["crossing token excluded (cum < p)"][0])
    assert "(2 tokens kept)" in fb.expected and "(1 kept)" in fb.got


def test_references_agree_with_the_definitions():
    logits = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(ex.reference_softmax_with_temperature(logits, 2.0), _sm(logits / 2))
    assert ex.reference_sample_next(logits, np.random.default_rng(0), top_k=1) == 1
    draws = [ex.reference_sample_next(logits, np.random.default_rng(3), temperature=0.8) for _ in range(3)]
    assert len(set(draws)) == 1  # the same seed, the same token


@pytest.mark.slow
def test_show_samples_waits_for_q4_then_generates_reproducibly():
    waiting = ex.show_samples(_not_implemented)
    assert waiting.status == "not_done"
    assert ex.show_samples(Q4_MISTAKES["greedy"][0]).status == "incorrect"
    settings = {"cold": {"temperature": 0.5}, "top-k 1": {"top_k": 1}}
    fig = ex.show_samples(sample, settings, prompt="The ", n_chars=30)
    again = ex.show_samples(ex.reference_sample_next, settings, prompt="The ", n_chars=30)
    texts = list(fig.data[0].cells.values[1])
    assert len(texts) == 2 and all(t.startswith("The ") and len(t) == 34 for t in texts)
    assert texts == list(again.data[0].cells.values[1])  # the same seed, the same text


# ---------------------------------------------------------------------------------------------
# Under mixed precision: the checks are NumPy throughout, so a learner on a GPU (float16) or a TPU
# (bfloat16) is judged exactly alike, and the model answers accept a 16-bit model's logits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exercise", "answer", "mistakes", "name"),
    [
        (ex.q1, softmax_t, Q1_MISTAKES, next(iter(Q1_MISTAKES))),
        (ex.q2, top_k, Q2_MISTAKES, next(iter(Q2_MISTAKES))),
        (ex.q3, top_p, Q3_MISTAKES, next(iter(Q3_MISTAKES))),
        (ex.q4, sample, Q4_MISTAKES, "greedy"),
    ],
)
@pytest.mark.slow
def test_right_answers_pass_and_mistakes_are_named_under_mixed_precision(
    mixed_policy, exercise, answer, mistakes, name
):
    assert exercise.evaluate(answer).passed
    wrong, phrase = mistakes[name]
    fb = exercise.evaluate(wrong)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


def test_the_model_answers_sample_from_a_16_bit_models_logits(mixed_policy):
    import keras

    layer = keras.layers.Dense(40)  # a next-token layer left at the policy's 16-bit compute dtype
    logits = np.asarray(layer(np.random.default_rng(0).normal(size=(1, 8)).astype("float32")))[0]
    assert logits.dtype != np.float32 and logits.dtype.itemsize == 2
    probs = ex.reference_softmax_with_temperature(logits, 0.7)
    assert probs.dtype == np.float64 and abs(probs.sum() - 1.0) < 1e-12
    tokens = {
        ex.reference_sample_next(logits, np.random.default_rng(s), top_k=5, top_p=0.9) for s in range(50)
    }
    assert tokens <= set(np.argsort(-probs, kind="stable")[:5].tolist())
