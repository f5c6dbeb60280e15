"""Lab 01's checks: right answers pass however they are written, each known mistake gets its own
hint, placeholders are "not done yet", and a learner's exception never shows course code."""

import numpy as np
import pytest

from utils.checks import lab01 as ex

# ---------------------------------------------------------------------------------------------
# right answers, in several styles
# ---------------------------------------------------------------------------------------------


def gradients(X, y, w, b):
    e = X @ w + b - y
    return 2 / len(y) * X.T @ e, 2 / len(y) * e.sum()


def gradients_einsum(X, y, w, b):
    e = np.einsum("ij,j->i", X, w) + b - y
    return 2 * np.mean(X * e[:, None], axis=0), np.array([2 * e.mean()])  # db of shape (1,) is fine


def gradients_tf(X, y, w, b):
    import tensorflow as tf

    w, b = tf.Variable(w), tf.Variable(b, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((tf.linalg.matvec(tf.constant(X), w) + b - y) ** 2)
    return tape.gradient(loss, [w, b])


def huber(X, y, w, b, delta):
    s = np.clip(X @ w + b - y, -delta, delta) / len(y)
    return X.T @ s, s.sum()


def huber_where(X, y, w, b, delta):
    r = X @ w + b - y
    s = np.where(np.abs(r) <= delta, r, delta * np.sign(r))
    return [s @ X / len(y), float(np.mean(s))]


def huber_keras(X, y, w, b, delta):
    import tensorflow as tf

    w, b = tf.Variable(w), tf.Variable(b, dtype=tf.float64)
    with tf.GradientTape() as tape:
        r = tf.linalg.matvec(tf.constant(X), w) + b - y
        loss = tf.reduce_mean(tf.where(tf.abs(r) <= delta, r**2 / 2, delta * (tf.abs(r) - delta / 2)))
    return tuple(tape.gradient(loss, [w, b]))


def numerical(f, theta, eps=1e-5):
    g = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        t = theta.copy()
        t[i] += eps
        up = f(t)
        t[i] -= 2 * eps
        g[i] = (up - f(t)) / (2 * eps)
    return g


def numerical_flat(f, theta, eps=1e-5):
    flat, out = theta.ravel(), []
    for i in range(flat.size):
        step = np.zeros_like(flat)
        step[i] = eps
        out.append(
            (f((flat + step).reshape(theta.shape)) - f((flat - step).reshape(theta.shape))) / (2 * eps)
        )
    return np.array(out).reshape(theta.shape)


def momentum(X, y, lr, beta, steps):
    w, b, vw, vb = np.zeros(X.shape[1]), 0.0, np.zeros(X.shape[1]), 0.0
    losses = [np.mean((X @ w + b - y) ** 2)]
    for _ in range(steps):
        dw, db = gradients(X, y, w, b)
        vw, vb = beta * vw + dw, beta * vb + db
        w, b = w - lr * vw, b - lr * vb
        losses.append(np.mean((X @ w + b - y) ** 2))
    return w, b, losses


def momentum_keras_form(X, y, lr, beta, steps):
    """Keras's SGD stores v = −lr·(this lab's v) and adds it: the same trajectory."""
    A = np.c_[X, np.ones(len(y))]
    theta, v, losses = np.zeros(A.shape[1]), np.zeros(A.shape[1]), []
    for k in range(steps + 1):
        losses.append(np.mean((A @ theta - y) ** 2))
        if k < steps:
            v = beta * v - lr * 2 / len(y) * A.T @ (A @ theta - y)
            theta = theta + v
    return theta[:-1], theta[-1], np.array(losses)


RIGHT = [
    (ex.q1, gradients),
    (ex.q1, gradients_einsum),
    pytest.param(ex.q1, gradients_tf, marks=pytest.mark.slow, id="gradients_tf"),  # imports TensorFlow
    (ex.q2, huber),
    (ex.q2, huber_where),
    pytest.param(ex.q2, huber_keras, marks=pytest.mark.slow, id="huber_tf"),
    (ex.q3, numerical),
    (ex.q3, numerical_flat),
    (ex.q4, momentum),
    (ex.q4, momentum_keras_form),
]


@pytest.mark.parametrize(("exercise", "answer"), RIGHT)
def test_right_answers_pass(exercise, answer):
    feedback = exercise.evaluate(answer)
    assert feedback.passed, str(feedback)


# ---------------------------------------------------------------------------------------------
# each known mistake, written as a learner would, gets its own hint
# ---------------------------------------------------------------------------------------------


def _r(X, y, w, b):
    return X @ w + b - y


Q1 = {
    "the sign flipped": lambda X, y, w, b: tuple(-g for g in gradients(X, y, w, b)),
    "no 1/n": lambda X, y, w, b: (2 * X.T @ _r(X, y, w, b), 2 * _r(X, y, w, b).sum()),
    "no factor 2": lambda X, y, w, b: (X.T @ _r(X, y, w, b) / len(y), _r(X, y, w, b).mean()),
    "ŷ without b": lambda X, y, w, b: gradients(X, y, w, 0.0),
    "db times ŷ": lambda X, y, w, b: (gradients(X, y, w, b)[0], np.mean(2 * _r(X, y, w, b) * (X @ w + b))),
    "db times x": lambda X, y, w, b: (gradients(X, y, w, b)[0], gradients(X, y, w, b)[0].sum()),
    "dw a column": lambda X, y, w, b: (gradients(X, y, w, b)[0][:, None], gradients(X, y, w, b)[1]),
    "dw summed over features": lambda X, y, w, b: (2 / len(y) * X @ w, 0.0),
}
Q2 = {
    "the MSE's gradient": lambda X, y, w, b, d: gradients(X, y, w, b),
    "no clipping": lambda X, y, w, b, d: huber(X, y, w, b, np.inf),
    "the absolute error's": lambda X, y, w, b, d: (
        X.T @ np.sign(_r(X, y, w, b)) / len(y),
        np.sign(_r(X, y, w, b)).mean(),
    ),
    "clipped at 1": lambda X, y, w, b, d: huber(X, y, w, b, 1.0),
    "no 1/n": lambda X, y, w, b, d: tuple(len(y) * g for g in huber(X, y, w, b, d)),
    "the sign flipped": lambda X, y, w, b, d: tuple(-g for g in huber(X, y, w, b, d)),
}
Q3 = {
    "forward difference": lambda f, t, e: np.array(
        [(f(t + e * np.eye(t.size)[i].reshape(t.shape)) - f(t)) / e for i in range(t.size)]
    ).reshape(t.shape),
    "divided by ε": lambda f, t, e: 2 * numerical(f, t, e),
    "all nudged at once": lambda f, t, e: np.full(t.shape, (f(t + e) - f(t - e)) / (2 * e)),
    "theta left changed": lambda f, t, e: [t.__setitem__((0, 0), 9.0), numerical(f, t, e)][1],
}
Q4 = {
    "β ignored": lambda X, y, lr, beta, s: momentum(X, y, lr, 0.0, s),
    "the (1 − β) average": lambda X, y, lr, beta, s: ex.reference_momentum(X, y, lr, beta, s, form="average"),
    "the old velocity": lambda X, y, lr, beta, s: ex.reference_momentum(X, y, lr, beta, s, form="old v"),
    "history length": lambda X, y, lr, beta, s: (
        *momentum(X, y, lr, beta, s)[:2],
        momentum(X, y, lr, beta, s)[2][1:],
    ),
}
MISTAKES = {"q1": (ex.q1, Q1), "q2": (ex.q2, Q2), "q3": (ex.q3, Q3), "q4": (ex.q4, Q4)}
CASES = [(q, name) for q, (_, table) in MISTAKES.items() for name in table]


def _hint_of(q, name):
    return {m.name: m.hint for m in [*_all(q), *ex.SHAPES, ex.THETA_CHANGED, ex.HISTORY]}[name]


@pytest.mark.parametrize(("q", "name"), CASES, ids=[f"{q}-{n}" for q, n in CASES])
def test_each_mistake_is_named(q, name):
    exercise, table = MISTAKES[q]
    feedback = exercise.evaluate(table[name])
    assert feedback.status == "incorrect", str(feedback)
    assert feedback.hint == _hint_of(q, name), str(feedback)


def _all(q):
    return {"q1": ex.Q1_MISTAKES, "q2": ex.Q2_MISTAKES, "q3": ex.Q3_MISTAKES, "q4": ex.Q4_MISTAKES}[q]


@pytest.mark.parametrize("q", ["q1", "q2", "q3", "q4"])
def test_every_mistake_has_its_own_hint(q):
    hints = [m.hint for m in _all(q)]
    assert len(set(hints)) >= len(hints) - 1  # forward and backward differences share one on purpose


def test_hardcoded_delta_is_caught_at_the_second_threshold():
    feedback = ex.q2.evaluate(lambda X, y, w, b, d: huber(X, y, w, b, 1.5))
    assert feedback.status == "incorrect" and "delta = 3.0" in feedback.message


# ---------------------------------------------------------------------------------------------
# placeholders, learner errors, the pictures
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    assert exercise.evaluate(placeholder).status == "not_done"


def test_learner_exception_is_reported_without_course_code():
    def broken(X, y, w, b):
        return X @ y  # shapes (8, 3) @ (8,) fail

    feedback = ex.q1.evaluate(broken)
    assert feedback.status == "error" and "ValueError" in feedback.message
    assert "your cell" in feedback.message or "test_lab01_checks.py" in feedback.message
    assert "utils/checks" not in feedback.message


def test_the_pictures_wait_for_the_exercises():
    X, y, *_ = ex.make_probe()
    assert ex.show_momentum(_not_implemented, X, y, lr=0.01).status == "not_done"
    assert ex.compare_gradients(numerical, _not_implemented, None, np.zeros(4), X, y).status == "not_done"
    fig = ex.show_momentum(momentum, X, y, lr=0.01, steps=5)
    assert len(fig.data) == 2
    ok = ex.compare_gradients(
        numerical, gradients, lambda t: np.mean((X @ t[:3] + t[3] - y) ** 2), np.ones(4), X, y
    )
    assert ok.passed and "relative error" in ok.message
