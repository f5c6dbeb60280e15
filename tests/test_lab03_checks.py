"""Lab 03's checks: right answers in several styles pass, each known mistake gets its own hint,
placeholders are "not done yet", and a learner's exception is reported without course code.

Building a Keras model takes a second or so, so the tests of Q2 and Q4 are marked slow; Q1 and Q3
need no model of the learner's (Q3 drives the callback on a one-weight model) and run in the fast lane.
"""

import keras
import numpy as np
import pytest

from utils.checks import lab03 as ex

# ---------------------------------------------------------------------------------------------
# q1: the parameter count
# ---------------------------------------------------------------------------------------------

Q1_RIGHT = [
    lambda n, h, k: n * h + 4 * h + (h + 1) * k,
    lambda n, h, k: np.int64((n + 4) * h + h * k + k),
    lambda n, h, k: float(sum([n * h, 2 * h, 2 * h, h * k, k])),
]
Q1_WRONG = {
    "hidden too many": lambda n, h, k: (n + 1) * h + 4 * h + (h + 1) * k,
    "BatchNormalization as 2 per unit": lambda n, h, k: n * h + 2 * h + (h + 1) * k,
    "BatchNormalization as 0": lambda n, h, k: n * h + (h + 1) * k,
    "the lesson's formula": lambda n, h, k: (n + 1) * h + (h + 1) * k,
    "no output bias": lambda n, h, k: n * h + 4 * h + h * k,
}


@pytest.mark.parametrize("answer", Q1_RIGHT)
def test_q1_right_answers_pass(answer):
    assert ex.q1.evaluate(answer).passed


@pytest.mark.parametrize("name", Q1_WRONG)
def test_q1_each_mistake_is_named(name):
    feedback = ex.q1.evaluate(Q1_WRONG[name])
    assert feedback.status == "incorrect" and name in feedback.got, str(feedback)
    assert feedback.hint == {m.name: m.hint for m in ex.Q1_MISTAKES}[name]


def test_q1_a_count_that_is_not_a_whole_number():
    feedback = ex.q1.evaluate(lambda n, h, k: 0.5)
    assert feedback.status == "incorrect" and "whole number" in str(feedback)


# ---------------------------------------------------------------------------------------------
# q3: the callback (fast: the check builds one tiny model, the learner's class none)
# ---------------------------------------------------------------------------------------------


class Halve(keras.callbacks.Callback):
    def __init__(self, patience=2, factor=0.5):
        super().__init__()
        self.patience, self.factor = patience, factor

    def on_train_begin(self, logs=None):
        self.best, self.wait = np.inf, 0

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_loss"] < self.best:
            self.best, self.wait = logs["val_loss"], 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.optimizer.learning_rate = float(self.model.optimizer.learning_rate) * self.factor
                self.wait = 0


class HalveHistory(keras.callbacks.Callback):
    """Another style: keeps the whole history and looks back over it."""

    def __init__(self, patience=2, factor=0.5):
        super().__init__()
        self.patience, self.factor = patience, factor

    def on_train_begin(self, logs=None):
        self.seen, self.since = [], 0

    def on_epoch_end(self, epoch, logs=None):
        improved = not self.seen or logs["val_loss"] < min(self.seen)
        self.seen.append(logs["val_loss"])
        self.since = 0 if improved else self.since + 1
        if self.since == self.patience:
            lr = self.model.optimizer.learning_rate
            lr.assign(lr * self.factor)
            self.since = 0


def _variant(**changes):
    """A Halve with one behaviour changed, as a learner might write it."""

    class Variant(Halve):
        def on_epoch_end(self, epoch, logs=None):
            value = logs[changes.get("monitor", "val_loss")]
            reference = self.last if changes.get("last") and hasattr(self, "last") else self.best
            self.last = value
            if value < reference:
                self.best, self.wait = min(value, self.best), 0
                return
            self.best = min(self.best, value)
            self.wait += 1
            if self.wait >= self.patience + changes.get("extra", 0) or changes.get("eager"):
                rate = self.model.optimizer.learning_rate
                rate.assign(self.factor if changes.get("set") else float(rate) * self.factor)
                self.wait = self.wait if changes.get("keep") else 0

    return Variant


Q3_WRONG = {
    "no patience": _variant(eager=True),
    "off by one": _variant(extra=1),
    "no reset": _variant(keep=True),
    "last": _variant(last=True),
    "train loss": _variant(monitor="loss"),
    "set to factor": _variant(set=True),
}


@pytest.mark.parametrize("answer", [Halve, HalveHistory])
def test_q3_right_answers_pass(answer):
    feedback = ex.q3.evaluate(answer)
    assert feedback.passed, str(feedback)


@pytest.mark.parametrize("name", Q3_WRONG)
def test_q3_each_mistake_is_named(name):
    feedback = ex.q3.evaluate(Q3_WRONG[name])
    assert feedback.status == "incorrect" and feedback.got.endswith(name), str(feedback)
    assert feedback.hint == {m.name: m.hint for m in ex.Q3_MISTAKES}[name]


def test_every_mistake_has_its_own_hint():
    for mistakes in (ex.Q1_MISTAKES, ex.Q2_MISTAKES, ex.Q3_MISTAKES, list(ex.Q4_MISTAKES.values())):
        assert len({m.hint for m in mistakes}) == len(mistakes)


def test_q3_learner_exception_names_their_line():
    class Broken(Halve):
        def on_epoch_end(self, epoch, logs=None):
            return logs["val_accuracy"] + 1

    feedback = ex.q3.evaluate(Broken)
    assert feedback.status == "error" and "KeyError" in feedback.message
    assert "test_lab03_checks.py" in feedback.message and "Traceback" not in str(feedback)


# ---------------------------------------------------------------------------------------------
# placeholders
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


_images, _labels = np.zeros((4, 8, 8), np.uint8), np.arange(4)
TINY = ex.LabData(
    "digits", _images, _labels, _images, _labels, _images, _labels, list("0123"), "four blank images"
)


class Unwritten(keras.callbacks.Callback):
    def __init__(self, patience=2, factor=0.5):
        super().__init__()

    def on_train_begin(self, logs=None):
        raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    if exercise is ex.q4 and placeholder is _not_implemented:
        placeholder = ex.run_all(_not_implemented, _not_implemented, TINY)  # what the cell gives
    assert exercise.evaluate(placeholder).status == "not_done"


def test_an_unwritten_callback_is_not_done():
    assert ex.q3.evaluate(Unwritten).status == "not_done"


def test_run_all_waits_for_the_functions():
    run = ex.run_all(_not_implemented, _not_implemented, TINY)
    assert run.status == "not_done" and ex.q4.evaluate(run).status == "not_done"


# ---------------------------------------------------------------------------------------------
# q2 and q4: models (slow)
# ---------------------------------------------------------------------------------------------


def functional(n_inputs, n_classes, hidden=128):
    x = keras.Input((n_inputs,))
    h = keras.layers.Dropout(0.2)(
        keras.layers.ReLU()(keras.layers.BatchNormalization()(keras.layers.Dense(hidden, use_bias=False)(x)))
    )
    model = keras.Model(x, keras.layers.Dense(n_classes, dtype="float32")(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def sequential(
    n_inputs, n_classes, hidden=128, *, bias=False, norm=True, head=None, loss=None, metric="accuracy"
):
    layers = [keras.Input((n_inputs,)), keras.layers.Dense(hidden, use_bias=bias)]
    layers += [keras.layers.BatchNormalization()] if norm else []
    layers += [
        keras.layers.Activation("relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(n_classes, activation=head),
    ]
    model = keras.Sequential(layers)
    loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss, metrics=[metric] if metric else None)
    return model


class Subclassed(keras.Model):
    def __init__(self, n_classes, hidden):
        super().__init__()
        self.dense = keras.layers.Dense(hidden, use_bias=False)
        self.norm = keras.layers.BatchNormalization()
        self.drop = keras.layers.Dropout(0.2)
        self.out = keras.layers.Dense(n_classes, dtype="float32")

    def call(self, x, training=False):
        return self.out(
            self.drop(keras.ops.relu(self.norm(self.dense(x), training=training)), training=training)
        )


def subclassed(n_inputs, n_classes, hidden=128):
    model = Subclassed(n_classes, hidden)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss, metrics=["sparse_categorical_accuracy"])
    return model


Q2_WRONG = {
    "a bias on the first layer": lambda n, k, h=128: sequential(n, k, h, bias=True),
    "no BatchNormalization": lambda n, k, h=128: sequential(n, k, h, norm=False),
    "softmax at the end": lambda n, k, h=128: sequential(n, k, h, head="softmax"),
    "from_logits missing": lambda n, k, h=128: sequential(n, k, h, loss="sparse_categorical_crossentropy"),
    "categorical loss": lambda n, k, h=128: sequential(
        n, k, h, loss=keras.losses.CategoricalCrossentropy(from_logits=True)
    ),
    "another loss": lambda n, k, h=128: sequential(n, k, h, loss="mse"),
    "no accuracy": lambda n, k, h=128: sequential(n, k, h, metric=None),
    "not compiled": lambda n, k, h=128: keras.Sequential([keras.Input((n,)), keras.layers.Dense(k)]),
    "wrong output shape": lambda n, k, h=128: sequential(n, 10, h),
}


@pytest.mark.slow
@pytest.mark.parametrize("answer", [functional, sequential, subclassed])
def test_q2_right_answers_pass(answer):
    feedback = ex.q2.evaluate(answer)
    assert feedback.passed, str(feedback)


@pytest.mark.slow
@pytest.mark.parametrize("answer", [functional, sequential])
def test_q2_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    feedback = ex.q2.evaluate(answer)
    assert feedback.passed, str(feedback)


@pytest.mark.slow
@pytest.mark.parametrize("name", Q2_WRONG)
def test_q2_each_mistake_is_named(name):
    feedback = ex.q2.evaluate(Q2_WRONG[name])
    hints = {m.name: m.hint for m in ex.Q2_MISTAKES + ex.STRUCTURE}
    assert feedback.status == "incorrect" and feedback.hint == hints[name], str(feedback)


def _train(epochs, validation=True):
    def train(model, x_train, y_train, x_val, y_val):
        extra = {"validation_data": (x_val, y_val)} if validation else {}
        return model.fit(
            x_train, y_train, epochs=epochs, verbose=0, callbacks=[Halve()] if validation else [], **extra
        )

    return train


@pytest.mark.slow
def test_q4_the_whole_pipeline_reaches_the_target_and_names_what_is_missing():
    data = ex.load_data()
    run = ex.run_all(functional, _train(30), data)
    assert ex.q4.evaluate(run).passed, (run.test_accuracy, run.target)
    short = ex.run_all(functional, _train(1), data)
    assert ex.q4.evaluate(short).hint == ex.Q4_MISTAKES["few epochs"].hint
    blind = ex.run_all(functional, _train(1, validation=False), data)
    assert ex.q4.evaluate(blind).hint == ex.Q4_MISTAKES["no validation"].hint
    untouched = ex.run_all(
        functional, lambda model, x, y, *_: functional(x.shape[1], 10).fit(x, y, epochs=1, verbose=0), data
    )
    assert ex.q4.evaluate(untouched).hint == ex.Q4_MISTAKES["untrained"].hint
