"""Lab 08's checks: right answers in several styles pass, each named mistake gets its own hint,
placeholders are "not done yet", a learner's crash is reported kindly, and all of it holds when the
Keras policy computes in float16 or bfloat16."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from utils.checks import lab08 as ex

# ---------------------------------------------------------------------------------------------
# Right answers, written differently
# ---------------------------------------------------------------------------------------------


def min_p_numpy(logits, p_min):
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    kept = np.where(p >= p_min * p.max(), p, 0.0)
    return kept / kept.sum()


def min_p_log_space(logits, p_min):
    """p_i ≥ p_min · p_max  ⇔  z_i ≥ z_max + log p_min: the cut made on the logits, the right way."""
    z = np.asarray(logits, dtype=np.float64)
    with np.errstate(divide="ignore"):
        z = np.where(z >= z.max() + np.log(p_min), z, -np.inf)
    return scipy_softmax(z)


def min_p_tf(logits, p_min):
    import tensorflow as tf

    p = tf.nn.softmax(tf.constant(logits, tf.float32))
    return tf.where(p >= p_min * tf.reduce_max(p), p, 0.0) / tf.reduce_sum(
        tf.where(p >= p_min * tf.reduce_max(p), p, 0.0)
    )


def penalty_numpy(logits, previous_ids, penalty):
    out = np.array(logits, dtype=np.float64)
    for i in set(previous_ids.tolist()):
        out[i] = out[i] / penalty if out[i] > 0 else out[i] * penalty
    return out


def penalty_tf(logits, previous_ids, penalty):
    import tensorflow as tf

    ids = tf.unique(tf.constant(previous_ids))[0][:, None]
    z = tf.constant(logits, tf.float32)
    seen = tf.gather_nd(z, ids)
    return tf.tensor_scatter_nd_update(z, ids, tf.where(seen > 0, seen / penalty, seen * penalty))


def sample_choice(logits, previous_ids, rng, temperature=1.0, p_min=0.0, penalty=1.0):
    probs = min_p_numpy(penalty_numpy(logits, previous_ids, penalty) / temperature, p_min)
    return int(rng.choice(len(probs), p=probs))


def sample_inverse_cdf(logits, previous_ids, rng, temperature=1.0, p_min=0.0, penalty=1.0):
    probs = min_p_log_space(penalty_numpy(logits, previous_ids, penalty) / temperature, p_min)
    return np.int64(min(np.searchsorted(np.cumsum(probs), rng.random()), len(probs) - 1))


RIGHT = [
    (ex.q1, min_p_numpy),
    (ex.q1, min_p_log_space),
    (ex.q1, min_p_tf),
    (ex.q2, penalty_numpy),
    (ex.q2, penalty_tf),
    (ex.q3, sample_choice),
    (ex.q3, sample_inverse_cdf),
]


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "answer"), RIGHT)
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_a_crash_names_the_learners_line_without_a_course_traceback():
    def broken(logits, previous_ids, penalty):
        return logits / undefined_name  # noqa: F821

    fb = ex.q2.evaluate(broken)
    assert fb.status == "error" and "NameError" in fb.message and "test_lab08_checks.py" in fb.message
    assert "Traceback" not in str(fb) and "utils/checks" not in str(fb)


# ---------------------------------------------------------------------------------------------
# Each named mistake, written as a learner would, gets its own hint
# ---------------------------------------------------------------------------------------------


def _p(z):
    return scipy_softmax(np.asarray(z, dtype=np.float64))


def _norm(p):
    return p / p.sum()


Q1_WRONG = {
    "an absolute threshold": lambda z, pm: _norm(np.where(_p(z) >= pm, _p(z), 0.0)),
    "not renormalised": lambda z, pm: np.where(_p(z) >= pm * _p(z).max(), _p(z), 0.0),
    "the threshold on the logits": lambda z, pm: _norm(np.where(z >= pm * z.max(), _p(z), 0.0)),
    "the rare tokens kept": lambda z, pm: _norm(np.where(_p(z) < pm * _p(z).max(), _p(z), 0.0)),
    "the cut logits set to 0": lambda z, pm: _p(np.where(_p(z) >= pm * _p(z).max(), z, 0.0)),
}


def _seen(z, ids):
    return np.isin(np.arange(len(z)), ids)


def _per_occurrence(z, ids, pen):
    z = np.array(z, dtype=np.float64)
    for i in ids:
        z[i] = z[i] / pen if z[i] > 0 else z[i] * pen
    return z


Q2_WRONG = {
    "every seen logit divided": lambda z, ids, pen: np.where(_seen(z, ids), z / pen, z),
    "once per occurrence": _per_occurrence,
    "subtracted": lambda z, ids, pen: np.where(_seen(z, ids), z - pen, z),
    "signs swapped": lambda z, ids, pen: np.where(_seen(z, ids), np.where(z > 0, z * pen, z / pen), z),
    "the unseen tokens penalised": lambda z, ids, pen: np.where(
        _seen(z, ids), z, np.where(z > 0, z / pen, z * pen)
    ),
}


def _sampler(order="right", draw="rng"):
    def sample_next(logits, previous_ids, rng, temperature=1.0, p_min=0.0, penalty=1.0):
        z = penalty_numpy(logits, previous_ids, penalty if order != "no penalty" else 1.0)
        if order == "min-p first":
            keep = min_p_numpy(z, p_min) > 0
            probs = _p(np.where(keep, z / temperature, -np.inf))
        else:
            t = 1.0 if order == "no temperature" else temperature
            probs = min_p_numpy(z / t, 0.0 if order == "no min-p" else p_min)
        if draw == "argmax":
            return int(np.argmax(probs))
        generator = np.random.default_rng() if draw == "global" else rng
        return int(generator.choice(len(probs), p=probs))

    return sample_next


Q3_WRONG = {
    "greedy": _sampler(draw="argmax"),
    "min-p before the temperature": _sampler("min-p first"),
    "the penalty ignored": _sampler("no penalty"),
    "the temperature ignored": _sampler("no temperature"),
    "min-p ignored": _sampler("no min-p"),
    "the global generator": _sampler(draw="global"),
}
HINTS = {m.name: m.hint for m in ex.Q1_MISTAKES + ex.Q2_MISTAKES + ex.Q3_MISTAKES + [ex.SEED_MISTAKE]}


def test_every_named_mistake_has_a_learner_version():
    assert set(HINTS) == set(Q1_WRONG) | set(Q2_WRONG) | set(Q3_WRONG)


@pytest.mark.parametrize(
    ("exercise", "name", "answer"),
    [(ex.q1, n, a) for n, a in Q1_WRONG.items()] + [(ex.q2, n, a) for n, a in Q2_WRONG.items()],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_q1_q2_mistakes_get_their_own_hint(exercise, name, answer):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == HINTS[name], str(fb)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(Q3_WRONG))
def test_q3_mistakes_get_their_own_hint(name):
    fb = ex.q3.evaluate(Q3_WRONG[name])
    assert fb.status == "incorrect" and fb.hint == HINTS[name], str(fb)


def test_q3_reports_a_probability_vector_instead_of_a_token():
    fb = ex.q3.evaluate(lambda z, ids, rng, **k: min_p_numpy(z, 0.0))
    assert fb.status == "incorrect" and "one number" in str(fb)


# ---------------------------------------------------------------------------------------------
# Under mixed precision: answer_tolerance loosens to bfloat16's, and the probes still separate
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("exercise", "name", "answer"),
    [(ex.q1, n, a) for n, a in Q1_WRONG.items()] + [(ex.q2, n, a) for n, a in Q2_WRONG.items()],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_mistakes_are_named_under_mixed_precision(mixed_policy, exercise, name, answer):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == HINTS[name], str(fb)


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "answer"), RIGHT[:5])
def test_right_answers_pass_under_mixed_precision(mixed_policy, exercise, answer):
    assert exercise.evaluate(answer).passed


def test_references_follow_the_definitions():
    p = ex.reference_min_p(np.log([0.5, 0.3, 0.15, 0.05]), 0.4)
    np.testing.assert_allclose(p, [0.625, 0.375, 0, 0])
    np.testing.assert_allclose(ex.reference_penalty([2.0, -1.0, 3.0], [0, 1, 1], 2.0), [1.0, -2.0, 3.0])


@pytest.mark.slow
def test_show_samples_waits_for_q3_then_writes_reproducibly():
    assert ex.show_samples(_not_implemented).status == "not_done"
    assert ex.show_samples(Q3_WRONG["greedy"]).status == "incorrect"
    a = ex.show_samples(sample_choice, n_chars=20)
    b = ex.show_samples(sample_choice, n_chars=20)
    assert a.data[0].cells.values == b.data[0].cells.values
