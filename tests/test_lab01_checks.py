"""Lab 01's checks: right answers pass however they are written, each usual mistake gets its own
message, placeholders are "not done yet", and a learner's exception never shows course code."""

import numpy as np
import pytest

from utils.checks import Feedback
from utils.checks import lab01 as ex

# ---------------------------------------------------------------------------------------------
# Model answers, and right answers written differently
# ---------------------------------------------------------------------------------------------


def predict(X, w, b):
    return X @ w + b


def gradients(X, y, w, b):
    n = len(y)
    r = X @ w + b - y
    return 2 / n * X.T @ r, 2 / n * r.sum()


def gd_step(w, b, dw, db, lr):
    return w - lr * dw, b - lr * db


def mse(y_hat, y):
    return float(np.mean((y_hat - y) ** 2))


def train(X, y, lr, steps):
    w, b = np.zeros(X.shape[1]), 0.0
    losses = [mse(predict(X, w, b), y)]
    for _ in range(steps):
        w, b = gd_step(w, b, *gradients(X, y, w, b), lr)
        losses.append(mse(predict(X, w, b), y))
    return w, b, losses


def predict_loop(X, w, b):
    return np.array([sum(xi * wi for xi, wi in zip(row, w, strict=True)) + b for row in X])


def gradients_mean_form(X, y, w, b):
    r = np.dot(X, w) + b - y
    return 2 * np.mean(X * r[:, None], axis=0), np.array([2 * np.mean(r)])  # db of shape (1,) is fine


def gradients_list(X, y, w, b):
    r = predict(X, w, b) - y
    return [np.einsum("ij,i->j", X, r) * 2 / len(y), float(2 * r.mean())]


def gd_step_in_place(w, b, dw, db, lr):
    w -= lr * dw
    b -= lr * db
    return w, b


def train_while(X, y, lr, steps):
    w, b = np.zeros(X.shape[1]), 0
    losses, k = [], 0
    while True:
        losses.append(np.mean((X @ w + b - y) ** 2))  # NumPy floats in the list are fine
        if k == steps:
            return w, b, np.array(losses)
        r = X @ w + b - y
        w = w - lr * 2 * X.T @ r / len(y)
        b = b - lr * 2 * r.mean()
        k += 1


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, predict),
        (ex.q1, predict_loop),
        (ex.q1, lambda X, w, b: (w @ X.T) + b),
        (ex.q2, gradients),
        (ex.q2, gradients_mean_form),
        (ex.q2, gradients_list),
        (ex.q3, gd_step),
        (ex.q3, gd_step_in_place),
        (ex.q3, lambda w, b, dw, db, lr: [w + (-lr) * dw, b + (-lr) * db]),
        (ex.q4, train),
        (ex.q4, train_while),
    ],
)
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


def test_answers_written_with_tensorflow_pass():
    from utils.env import import_tensorflow

    tf = import_tensorflow()

    def predict_tf(X, w, b):
        return tf.linalg.matvec(tf.constant(X), tf.constant(w)) + b

    def gradients_tf(X, y, w, b):
        w_var, b_var = tf.Variable(w), tf.Variable(b, dtype=tf.float64)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.linalg.matvec(tf.constant(X), w_var) + b_var - y))
        return tape.gradient(loss, [w_var, b_var])

    def gradients_tf32(X, y, w, b):
        X32, r = tf.constant(X, tf.float32), tf.constant(X @ w + b - y, tf.float32)
        return tf.linalg.matvec(X32, r, transpose_a=True) * 2 / len(y), tf.reduce_mean(r) * 2

    assert ex.q1.evaluate(predict_tf).passed
    assert ex.q2.evaluate(gradients_tf).passed
    assert ex.q2.evaluate(gradients_tf32).passed, str(ex.q2.evaluate(gradients_tf32))


# ---------------------------------------------------------------------------------------------
# Not done yet
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_q4_is_not_done_while_the_functions_it_calls_are_not():
    def train_calling_unfinished(X, y, lr, steps):
        _not_implemented()

    assert ex.q4.evaluate(train_calling_unfinished).status == "not_done"


# ---------------------------------------------------------------------------------------------
# Each typical mistake gets its own message
# ---------------------------------------------------------------------------------------------


def _r(X, y, w, b):
    return X @ w + b - y


Q1_MISTAKES = {
    "column (n, 1)": (lambda X, w, b: X @ w[:, None] + b, "not a column (n, 1)"),
    "element-wise, no sum": (lambda X, w, b: X * w + b, "element-wise but did not add up"),
    "one number": (lambda X, w, b: np.sum(X @ w) + b, "one number for the whole batch"),
    "no bias": (lambda X, w, b: X @ w, "forgot to add the bias"),
    "mean over features": (lambda X, w, b: np.mean(X * w, axis=1) + b, "averaged over the features"),
    "bias multiplied": (lambda X, w, b: (X @ w) * b, "don't multiply by it"),
}

Q2_MISTAKES = {
    "forgot 1/n": (
        lambda X, y, w, b: (2 * X.T @ _r(X, y, w, b), 2 * _r(X, y, w, b).sum()),
        "dw is n = 8 times too big",
    ),
    "y - y_hat": (
        lambda X, y, w, b: (2 / len(y) * X.T @ -_r(X, y, w, b), 2 / len(y) * -_r(X, y, w, b).sum()),
        "wrong sign: you used y − ŷ",
    ),
    "forgot the 2": (
        lambda X, y, w, b: (X.T @ _r(X, y, w, b) / len(y), _r(X, y, w, b).mean()),
        "forgot the factor 2",
    ),
    "forgot 2 and 1/n": (lambda X, y, w, b: (X.T @ _r(X, y, w, b), _r(X, y, w, b).sum()), "both the 1/n"),
    "sign and 1/n": (
        lambda X, y, w, b: (-2 * X.T @ _r(X, y, w, b), -2 * _r(X, y, w, b).sum()),
        "wrong sign and is n = 8 times too big",
    ),
    "divided by n twice": (
        lambda X, y, w, b: (2 / len(y) * np.mean(X * _r(X, y, w, b)[:, None], axis=0), 0.0),
        "divided by n twice",
    ),
    "divided by d": (
        lambda X, y, w, b: (2 / X.shape[1] * X.T @ _r(X, y, w, b), 0.0),
        "instead of n = 8",
    ),
    "dw a column": (
        lambda X, y, w, b: (2 / len(y) * X.T @ _r(X, y, w, b)[:, None], 0.0),
        "a flat vector (d,)",
    ),
    "summed over features": (
        lambda X, y, w, b: (2 / len(y) * np.sum(X * _r(X, y, w, b)[:, None], axis=1), 0.0),
        "summed over the wrong axis",
    ),
    "no sum at all": (
        lambda X, y, w, b: (2 / len(y) * X * _r(X, y, w, b)[:, None], 0.0),
        "still has one row per example",
    ),
    "dw without x": (lambda X, y, w, b: (2 / len(y) * _r(X, y, w, b).sum(), 0.0), "forget to multiply by x"),
    "prediction without bias": (
        lambda X, y, w, b: gradients(X, y, w, 0.0),
        "misses the bias",
    ),
    "db times x": (
        lambda X, y, w, b: (gradients(X, y, w, b)[0], gradients(X, y, w, b)[0]),
        "db equals dw: you multiplied the bias gradient by x",
    ),
    "db times x, summed": (
        lambda X, y, w, b: (gradients(X, y, w, b)[0], gradients(X, y, w, b)[0].sum()),
        "multiplied the bias gradient by x (and summed)",
    ),
    "db times y_hat": (
        lambda X, y, w, b: (gradients(X, y, w, b)[0], 2 / len(y) * np.sum(_r(X, y, w, b) * (X @ w + b))),
        "multiplied the bias gradient by the prediction",
    ),
    "db per example": (
        lambda X, y, w, b: (gradients(X, y, w, b)[0], 2 / len(y) * _r(X, y, w, b)),
        "db has one value per example",
    ),
    "db forgot 1/n": (
        lambda X, y, w, b: (gradients(X, y, w, b)[0], 2 * _r(X, y, w, b).sum()),
        "db is n = 8 times too big",
    ),
    "swapped": (lambda X, y, w, b: gradients(X, y, w, b)[::-1], "dw first, then db"),
    "only dw": (lambda X, y, w, b: gradients(X, y, w, b)[0], "`return dw, db`"),
}

Q3_MISTAKES = {
    "plus": (lambda w, b, dw, db, lr: (w + lr * dw, b + lr * db), "gradient ascent"),
    "lr ignored": (lambda w, b, dw, db, lr: (w - dw, b - db), "forgot to multiply the gradient by lr"),
    "fixed lr": (lambda w, b, dw, db, lr: (w - 0.1 * dw, b - 0.1 * db), "Use the argument lr"),
    "divided by lr": (lambda w, b, dw, db, lr: (w - dw / lr, b - db / lr), "don't divide"),
    "w with db": (lambda w, b, dw, db, lr: (w - lr * db, b - lr * dw.sum()), "Update w with dw"),
    "w unchanged": (lambda w, b, dw, db, lr: (w, b - lr * db), "w did not change"),
    "b plus": (lambda w, b, dw, db, lr: (w - lr * dw, b + lr * db), "added the bias gradient"),
    "b without lr": (lambda w, b, dw, db, lr: (w - lr * dw, b - db), "forgot to multiply db by lr"),
    "b unchanged": (lambda w, b, dw, db, lr: (w - lr * dw, b), "b did not change"),
    "swapped": (lambda w, b, dw, db, lr: (b - lr * db, w - lr * dw), "new w first"),
}


def _train_variant(start=0.0, sign=1.0, fixed_lr=None):
    """The model answer with one thing changed: the starting point, the step's sign, or a fixed lr."""

    def answer(X, y, lr, steps):
        lr = lr if fixed_lr is None else fixed_lr
        w, b = np.full(X.shape[1], start), start
        losses = [mse(predict(X, w, b), y)]
        for _ in range(steps):
            w, b = gd_step(w, b, *gradients(X, y, w, b), sign * lr)
            losses.append(mse(predict(X, w, b), y))
        return w, b, losses

    return answer


def _train_records_before_each_update(X, y, lr, steps):
    w, b, losses = np.zeros(X.shape[1]), 0.0, []
    for _ in range(steps):
        losses.append(mse(predict(X, w, b), y))
        w, b = gd_step(w, b, *gradients(X, y, w, b), lr)
    return w, b, losses


def _train_records_after_each_update(X, y, lr, steps):
    w, b, losses = np.zeros(X.shape[1]), 0.0, []
    for _ in range(steps):
        w, b = gd_step(w, b, *gradients(X, y, w, b), lr)
        losses.append(mse(predict(X, w, b), y))
    return w, b, losses


def _train_one_update_too_many(X, y, lr, steps):
    w, b, losses = np.zeros(X.shape[1]), 0.0, []
    for _ in range(steps + 1):
        w, b = gd_step(w, b, *gradients(X, y, w, b), lr)
        losses.append(mse(predict(X, w, b), y))
    return w, b, losses


Q4_MISTAKES = {
    "no initial loss": (_train_records_after_each_update, "not the loss at the start"),
    "no final loss": (_train_records_before_each_update, "not after the last update"),
    "first loss after an update": (_train_one_update_too_many, "already the loss after one update"),
    "starts from ones": (_train_variant(start=1.0), "starts at w = 0"),
    "gradient ascent": (_train_variant(sign=-1.0), "The loss grows"),
    "fixed lr": (_train_variant(fixed_lr=0.1), "Pass the argument lr"),
    "returns only losses": (lambda X, y, lr, steps: train(X, y, lr, steps)[2], "`return w, b, losses`"),
    "losses not numbers": (
        lambda X, y, lr, steps: (*train(X, y, lr, steps)[:2], [None] * (steps + 1)),
        "a list of numbers",
    ),
    "NaN losses": (
        lambda X, y, lr, steps: (*train(X, y, lr, steps)[:2], [np.nan] * (steps + 1)),
        "NaN or inf",
    ),
    "too few steps": (
        lambda X, y, lr, steps: train(X, y, lr, steps - 3),
        "Record the loss once before the loop",
    ),
    "old w returned": (
        lambda X, y, lr, steps: (np.zeros(X.shape[1]), *train(X, y, lr, steps)[1:]),
        "trained w",
    ),
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


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q4_MISTAKES))
def test_q4_mistakes(answer, phrase):
    fb = ex.q4.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.parametrize(
    ("exercise", "mistakes"),
    [(ex.q1, Q1_MISTAKES), (ex.q2, Q2_MISTAKES), (ex.q3, Q3_MISTAKES), (ex.q4, Q4_MISTAKES)],
)
def test_every_mistake_gets_a_different_hint(exercise, mistakes):
    hints = [exercise.evaluate(answer).hint for answer, _ in mistakes.values()]
    assert len(set(hints)) == len(hints)
    assert exercise.hints[0] not in hints  # none of them falls back to the exercise's generic hint


def test_a_wrong_answer_shows_expected_and_got():
    fb = ex.q2.evaluate(Q2_MISTAKES["forgot the 2"][0])
    assert fb.expected and fb.got and fb.expected != fb.got


def test_an_unforeseen_wrong_answer_gets_the_generic_hint():
    fb = ex.q1.evaluate(lambda X, w, b: X @ w + 2 * b)
    assert fb.status == "incorrect" and "X @ w + b" in fb.hint


def test_the_probe_separates_the_known_factors():
    X, y, w, b = ex.make_probe()
    n, d = X.shape
    factors = [1, -1, n, 0.5, n / 2, -n, -0.5, -n / 2, 1 / n, n / d, 2]
    assert len({round(f, 6) for f in factors}) == len(factors)
    r = X @ w + b - y
    db = 2 / n * r.sum()
    others = [2 / n * np.sum(r * (X @ w + b)), (2 / n * X.T @ r).sum()]
    assert all(not np.isclose(o, f * db) for o in others for f in factors)


# ---------------------------------------------------------------------------------------------
# A learner's exception: reported with their line, never a course traceback
# ---------------------------------------------------------------------------------------------


def test_learner_exception_is_reported_kindly():
    def predict_transposed(X, w, b):
        return X.T @ w + b  # (3, 8) @ (3,): a shape error in the learner's own line

    fb = ex.q1.evaluate(predict_transposed)
    assert fb.status == "error"
    assert "ValueError" in fb.message and "X.T @ w + b" in fb.message
    assert "test_lab01_checks.py" in fb.message
    assert "Traceback" not in str(fb) and "utils/checks" not in str(fb) and "lab01.py" not in str(fb)


def test_learner_exception_inside_the_training_loop():
    def train_typo(X, y, lr, steps):
        losses = [mse(predict(X, np.zeros(3), 0.0), y)]  # noqa: F841
        return lossses  # noqa: F821

    fb = ex.q4.evaluate(train_typo)
    assert fb.status == "error" and "NameError" in fb.message and "lossses" in fb.message
    assert "Traceback" not in str(fb)


def test_check_shows_feedback_without_raising_for_a_learner(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_CHECKS_STRICT", raising=False)
    ex.q3.check(Q3_MISTAKES["plus"][0])
    ex.q3.check(_not_implemented)
    out = capsys.readouterr().out
    assert "not quite" in out and "not done yet" in out and "Traceback" not in out
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    with pytest.raises(AssertionError, match="Q3"):
        ex.q3.check(Q3_MISTAKES["plus"][0])


# ---------------------------------------------------------------------------------------------
# The figure after the exercises
# ---------------------------------------------------------------------------------------------


def test_show_training_waits_for_q4_then_draws_the_learners_curves():
    X, y, _, _ = ex.make_probe(n=50, seed=3)
    waiting = ex.show_training(_not_implemented, X, y)
    assert isinstance(waiting, Feedback) and waiting.status == "not_done"
    assert isinstance(ex.show_training(Q4_MISTAKES["no final loss"][0], X, y), Feedback)

    fig = ex.show_training(train, X, y, learning_rates=(0.01, 0.1), steps=30, true_w=[1, 2, 3], true_b=0.5)
    assert [t.name for t in fig.data] == ["lr = 0.01", "lr = 0.1"]
    assert len(fig.data[0].y) == 31 and fig.layout.yaxis.type == "log"
    assert "lr = 0.1" in fig.layout.title.text and "true: w = [1, 2, 3]" in fig.layout.title.text


def test_reference_train_matches_the_model_answer():
    X, y, _, _ = ex.make_probe()
    w, b, losses = ex.reference_train(X, y, 0.1, 20)
    w2, b2, losses2 = train(X, y, 0.1, 20)
    np.testing.assert_allclose(losses, losses2)
    np.testing.assert_allclose(w, w2)
    assert np.isclose(b, b2) and losses[-1] < losses[0] / 2
