"""Lab 03's checks: right answers in several forms pass, each usual mistake gets its own message.

The data are the offline 8×8 digits in the smoke profile (conftest.py), so every training here takes
a few seconds at most; the mistakes that need no trained model train for one epoch or not at all.
"""

import keras
import numpy as np
import pytest

from utils.checks import Feedback
from utils.checks import lab03 as ex


@pytest.fixture(scope="module", autouse=True)
def lab_data():
    return ex.load_data()


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


def _assert_incorrect(exercise, answer, *phrases):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect", str(fb)
    for phrase in phrases:
        assert phrase in str(fb), f"{phrase!r} not in:\n{fb}"
    return fb


# ---------------------------------------------------------------------------------------------
# Not done yet, and the learner's own errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4], ids=["q1", "q2", "q3", "q4"])
@pytest.mark.parametrize("answer", [_not_implemented, ..., None], ids=["raises", "ellipsis", "none"])
def test_placeholders_are_not_done_yet(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.status == "not_done" and "not done yet" in str(fb)


def test_q5_waits_for_the_other_exercises(lab_data):
    run = ex.run_all(_not_implemented, _not_implemented, _not_implemented, _not_implemented, lab_data)
    assert isinstance(run, Feedback) and run.status == "not_done"
    fb = ex.q5.evaluate(run)
    assert fb.status == "not_done" and "not done yet" in str(fb)


def test_learner_exception_names_their_line_not_a_traceback():
    def prepare(images):
        flat = images.reshape(-1, 784)  # the learner hard-coded MNIST's size
        return flat / 255

    fb = ex.q1.evaluate(prepare)
    assert fb.status == "error"
    assert "ValueError" in fb.message and "images.reshape(-1, 784)" in fb.message
    assert "test_lab03_checks.py" in fb.message
    assert "Traceback" not in str(fb) and "lab03.py" not in str(fb)


def test_learner_exception_inside_a_subclassed_model():
    class Broken(keras.Model):
        def __init__(self, n_classes):
            super().__init__()
            self.out = keras.layers.Dense(n_classes, activation="softmax")

        def call(self, x):
            return self.out(x) + undefined_offset  # noqa: F821

    def build_model(n_inputs, n_classes):
        model = Broken(n_classes)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    fb = ex.q2.evaluate(build_model)
    assert fb.status == "error" and "NameError" in fb.message
    assert "self.out(x) + undefined_offset" in fb.message and "test_lab03_checks.py" in fb.message
    assert "Traceback" not in str(fb)


def test_check_shows_feedback_without_raising_for_a_learner(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_CHECKS_STRICT", raising=False)
    ex.q1.check(lambda images: images.reshape(len(images), -1).astype("float32"))
    ex.q1.check(_not_implemented)
    out = capsys.readouterr().out
    assert "not quite" in out and "not done yet" in out and "Traceback" not in out
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    with pytest.raises(AssertionError, match="Q1"):
        ex.q1.check(lambda images: images.reshape(len(images), -1).astype("float32"))


# ---------------------------------------------------------------------------------------------
# q1: prepare
# ---------------------------------------------------------------------------------------------

Q1_RIGHT = {
    "reshape then divide": lambda images: images.reshape(len(images), -1).astype("float32") / 255,
    "divide then reshape": lambda images: (images / 255.0).astype(np.float32).reshape(images.shape[0], -1),
    "keras layers": lambda images: keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(images)),
    "numpy multiply": lambda images: np.float32(1 / 255) * images.reshape(images.shape[0], -1),
}

Q1_MISTAKES = {
    "not scaled": (lambda im: im.reshape(len(im), -1).astype("float32"), "forgot to scale"),
    "floor division": (lambda im: im.reshape(len(im), -1) // 255, "floor division"),
    "float64": (lambda im: im.reshape(len(im), -1) / 255, "twice the memory"),
    "not flattened": (lambda im: im.astype("float32") / 255, "Flatten each image"),
    "flattened the batch": (
        lambda im: im.ravel().astype("float32") / 255,
        "whole batch into one long vector",
    ),
    "divided by the max": (
        lambda im: im.reshape(len(im), -1).astype("float32") / im.max(),
        "batch's own maximum",
    ),
    "divided by 256": (lambda im: im.reshape(len(im), -1).astype("float32") / 256, "not 256"),
    "inverted": (lambda im: 1 - im.reshape(len(im), -1).astype("float32") / 255, "inverted"),
    "standardised": (
        lambda im: ((im - im.mean()) / im.std()).reshape(len(im), -1).astype("float32"),
        "standardised",
    ),
    "returns a tuple": (
        lambda im: (im.reshape(len(im), -1).astype("float32") / 255, None),
        "one NumPy array",
    ),
}


@pytest.mark.parametrize("answer", Q1_RIGHT.values(), ids=Q1_RIGHT.keys())
def test_q1_right_answers_pass(answer):
    fb = ex.q1.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(("answer", "phrase"), Q1_MISTAKES.values(), ids=Q1_MISTAKES.keys())
def test_q1_mistakes(answer, phrase):
    _assert_incorrect(ex.q1, answer, phrase)


def test_q1_every_mistake_gets_a_different_hint():
    hints = [ex.q1.evaluate(answer).hint for answer, _ in Q1_MISTAKES.values()]
    assert len(set(hints)) == len(hints)


# ---------------------------------------------------------------------------------------------
# q2: build and compile
# ---------------------------------------------------------------------------------------------


def _sequential(
    n_inputs, n_units, activation="softmax", loss="sparse_categorical_crossentropy", metrics=None
):
    model = keras.Sequential(
        [
            keras.Input(shape=(n_inputs,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(n_units, activation=activation),
        ]
    )
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"] if metrics is None else metrics)
    return model


def _functional_logits(n_inputs, n_classes):
    inputs = keras.Input(shape=(n_inputs,))
    x = keras.layers.Dense(32, activation="relu")(inputs)
    x = keras.layers.Dropout(0.2)(x)
    logits = keras.layers.Dense(n_classes, kernel_regularizer=keras.regularizers.L2(1e-3))(x)
    model = keras.Model(inputs, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


class SubclassedMLP(keras.Model):
    def __init__(self, n_classes):
        super().__init__()
        self.hidden = keras.layers.Dense(24, activation="relu")
        self.scores = keras.layers.Dense(n_classes)

    def call(self, x):
        return keras.ops.softmax(self.scores(self.hidden(x)))


def _subclassed(n_inputs, n_classes):
    model = SubclassedMLP(n_classes)
    model.compile(
        optimizer="rmsprop",
        loss=keras.losses.sparse_categorical_crossentropy,
        metrics=["sparse_categorical_accuracy"],
    )
    return model


Q2_RIGHT = {
    "sequential softmax": lambda n_in, n_out: _sequential(n_in, n_out),
    "functional logits, dropout and L2": _functional_logits,
    "subclassed, softmax in call": _subclassed,
}


def _uncompiled(n_in, n_out):
    return keras.Sequential([keras.Input(shape=(n_in,)), keras.layers.Dense(n_out, activation="softmax")])


Q2_MISTAKES = {
    "softmax with from_logits=True": (
        lambda n_in, n_out: _sequential(
            n_in, n_out, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        ),
        "from_logits=True: the loss applies a second softmax",
    ),
    "logits with from_logits=False": (
        lambda n_in, n_out: _sequential(n_in, n_out, activation=None),
        "reads your logits as if they were probabilities",
    ),
    "categorical loss with integer labels": (
        lambda n_in, n_out: _sequential(n_in, n_out, loss="categorical_crossentropy"),
        "needs one-hot labels",
    ),
    "hard-coded 10 outputs": (lambda n_in, n_out: _sequential(n_in, 10), "10 units whatever n_classes is"),
    "one output unit": (lambda n_in, n_out: _sequential(n_in, 1), "One output unit is for a yes/no question"),
    "sigmoid outputs": (
        lambda n_in, n_out: _sequential(n_in, n_out, activation="sigmoid"),
        "A sigmoid scores",
    ),
    "mean squared error": (
        lambda n_in, n_out: _sequential(n_in, n_out, loss="mse"),
        "computes something else",
    ),
    "not compiled": (_uncompiled, "Call `model.compile"),
    "no accuracy metric": (lambda n_in, n_out: _sequential(n_in, n_out, metrics=[]), "metrics=['accuracy']"),
    "keras.metrics.Accuracy": (
        lambda n_in, n_out: _sequential(n_in, n_out, metrics=[keras.metrics.Accuracy()]),
        "*equal* the labels",
    ),
    "hard-coded inputs": (lambda n_in, n_out: _sequential(64, n_out), "does not accept a batch of shape"),
    "returns model and more": (lambda n_in, n_out: (_sequential(n_in, n_out), None), "Return only the model"),
    "returns nothing": (lambda n_in, n_out: None if _sequential(n_in, n_out) else None, "a Keras model"),
}


@pytest.mark.slow
@pytest.mark.parametrize("answer", Q2_RIGHT.values(), ids=Q2_RIGHT.keys())
def test_q2_right_answers_pass(answer):
    fb = ex.q2.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "phrase"), Q2_MISTAKES.values(), ids=Q2_MISTAKES.keys())
def test_q2_mistakes(answer, phrase):
    _assert_incorrect(ex.q2, answer, phrase)


@pytest.mark.slow
def test_q2_every_mistake_gets_a_different_hint():
    hints = [ex.q2.evaluate(answer).hint for answer, _ in Q2_MISTAKES.values()]
    assert len(set(hints)) == len(hints)


# ---------------------------------------------------------------------------------------------
# q3: train
# ---------------------------------------------------------------------------------------------


def train_model_answer(model, x_train, y_train, x_val, y_val):
    return model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=30, batch_size=32, verbose=0)


def train_split_and_dict(model, x_train, y_train, x_val, y_val):
    """Another right answer: a faster optimiser, validation_split, and the History's dict."""
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=model.loss, metrics=["accuracy"])
    return model.fit(x_train, y_train, validation_split=0.2, epochs=12, verbose=0).history


def train_early_stopping(model, x_train, y_train, x_val, y_val):
    """Another right answer: early stopping with the best weights restored."""
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=model.loss, metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    return model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=25,
        batch_size=64,
        callbacks=[stop],
        verbose=0,
    )


@pytest.mark.slow
@pytest.mark.parametrize("answer", [train_model_answer, train_split_and_dict, train_early_stopping])
def test_q3_right_answers_pass(answer):
    fb = ex.q3.evaluate(answer)
    assert fb.passed, str(fb)


def _fit(model, x, y, **kwargs):
    return model.fit(x, y, verbose=0, **kwargs)


Q3_MISTAKES = {
    "no validation data": (
        lambda m, x, y, xv, yv: _fit(m, x, y, epochs=1),
        "Pass `validation_data=(x_val, y_val)`",
    ),
    "validated on the training set": (
        lambda m, x, y, xv, yv: _fit(m, x, y, validation_data=(x, y), epochs=1),
        "the training set: the last val_loss equals the loss on x_train",
    ),
    "too few epochs": (
        lambda m, x, y, xv, yv: _fit(m, x, y, validation_data=(xv, yv), epochs=2),
        "You trained for 2 epochs",
    ),
    "too small a learning rate": (
        lambda m, x, y, xv, yv: (
            m.compile(optimizer=keras.optimizers.SGD(1e-5), loss=m.loss, metrics=["accuracy"]),
            _fit(m, x, y, validation_data=(xv, yv), epochs=ex.FEW_EPOCHS, batch_size=256),
        )[1],
        "Look at the curves",
    ),
    "diverged": (
        lambda m, x, y, xv, yv: (
            m.compile(optimizer=keras.optimizers.SGD(1e12), loss=m.loss, metrics=["accuracy"]),
            _fit(m, x, y, validation_data=(xv, yv), epochs=1),
        )[1],
        "diverged",
    ),
    "returns the model": (
        lambda m, x, y, xv, yv: (_fit(m, x, y, validation_data=(xv, yv), epochs=1), m)[1],
        "The model is trained in place",
    ),
    "returns nothing": (
        lambda m, x, y, xv, yv: None if _fit(m, x, y, validation_data=(xv, yv), epochs=1) else None,
        "`return history`",
    ),
    "trains a new model": (
        lambda m, x, y, xv, yv: _fit(
            ex.reference_model(x.shape[1], 10), x, y, validation_data=(xv, yv), epochs=1
        ),
        "Building a new model inside train()",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "phrase"), Q3_MISTAKES.values(), ids=Q3_MISTAKES.keys())
def test_q3_mistakes(answer, phrase):
    _assert_incorrect(ex.q3, answer, phrase)


# ---------------------------------------------------------------------------------------------
# q4: test accuracy
# ---------------------------------------------------------------------------------------------


def _prepare(images):
    return ex.reference_prepare(images)


Q4_RIGHT = {
    "evaluate": lambda model, data: model.evaluate(_prepare(data.x_test), data.y_test, verbose=0)[1],
    "evaluate as a dict": lambda model, data: model.evaluate(
        _prepare(data.x_test), data.y_test, verbose=0, return_dict=True
    )["accuracy"],
    "predict and argmax": lambda model, data: np.mean(
        model.predict(_prepare(data.x_test), verbose=0).argmax(axis=1) == data.y_test
    ),
    "keras metric": lambda model, data: keras.metrics.SparseCategoricalAccuracy()(
        data.y_test, model(_prepare(data.x_test))
    ),
}

Q4_MISTAKES = {
    "training set": (
        lambda model, data: model.evaluate(_prepare(data.x_train), data.y_train, verbose=0)[1],
        "the accuracy on the training set",
    ),
    "validation set": (
        lambda model, data: model.evaluate(_prepare(data.x_val), data.y_val, verbose=0)[1],
        "the accuracy on the validation set",
    ),
    "loss and accuracy": (
        lambda model, data: model.evaluate(_prepare(data.x_test), data.y_test, verbose=0),
        "returns [loss, accuracy] when the model has one metric",
    ),
    "the loss": (
        lambda model, data: model.evaluate(_prepare(data.x_test), data.y_test, verbose=0)[0],
        "the test loss",
    ),
    "a percentage": (
        lambda model, data: 100 * model.evaluate(_prepare(data.x_test), data.y_test, verbose=0)[1],
        "a percentage",
    ),
    "unscaled images": (
        lambda model, data: model.evaluate(
            data.x_test.reshape(len(data.x_test), -1).astype("float32"), data.y_test, verbose=0
        )[1],
        "unscaled test images",
    ),
    "the dict": (
        lambda model, data: model.evaluate(_prepare(data.x_test), data.y_test, verbose=0, return_dict=True),
        "a dict with keys",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("answer", Q4_RIGHT.values(), ids=Q4_RIGHT.keys())
def test_q4_right_answers_pass(answer):
    fb = ex.q4.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "phrase"), Q4_MISTAKES.values(), ids=Q4_MISTAKES.keys())
def test_q4_mistakes(answer, phrase):
    _assert_incorrect(ex.q4, answer, phrase)


@pytest.mark.slow
def test_q4_probe_model_tells_the_sets_apart(lab_data):
    model = ex._probe_model(lab_data)
    accs = [Q4_RIGHT["predict and argmax"](model, lab_data)]
    accs += [
        Q4_MISTAKES[k][0](model, lab_data) for k in ("training set", "validation set", "unscaled images")
    ]
    assert len({round(float(a), 6) for a in accs}) == 4, accs
    assert accs[0] > 0.8  # a real classifier, so "unscaled" and "training set" differ for a reason


# ---------------------------------------------------------------------------------------------
# q5: everything together
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_q5_runs_the_learners_functions_and_checks_the_target(lab_data):
    run = ex.run_all(
        ex.reference_prepare,
        lambda n_in, n_out: ex.reference_model(n_in, n_out),
        train_split_and_dict,
        Q4_RIGHT["evaluate"],
        lab_data,
    )
    assert isinstance(run, ex.Run) and run.test_accuracy >= ex.target(lab_data)
    assert ex.q5.evaluate(run).passed
    fig = run.figure()
    assert "test accuracy" in fig.layout.title.text and "reached" in fig.layout.title.text
    assert {t.name for t in fig.data} == {"training", "validation"}


def test_q5_names_a_missed_target():
    run = ex.Run(
        {"loss": [2.0, 1.5], "val_loss": [2.1, 1.7]}, test_accuracy=0.6, target=0.92, dataset="digits"
    )
    fb = _assert_incorrect(ex.q5, run, "60.0% after 2 epochs", "look at your model (Q2)")
    assert "at least 92%" in str(fb)
    assert "not reached yet" in run.figure().layout.title.text


def test_target_depends_on_the_data(lab_data):
    assert ex.target(lab_data) == ex.TARGETS[lab_data.name]
    assert lab_data.name == "digits" and len(lab_data.x_val) > 0
    assert len(lab_data.x_train) + len(lab_data.x_val) <= 1437  # disjoint: the first rows and the last rows


# ---------------------------------------------------------------------------------------------
# Mixed precision: on a GPU (mixed_float16) or a TPU (mixed_bfloat16) the learner writes the same
# code, and its layers compute in float16 or bfloat16. Right answers still pass; mistakes are still
# named.
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("answer", Q2_RIGHT.values(), ids=Q2_RIGHT.keys())
def test_q2_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    model = answer(ex.N_INPUTS_PROBE, ex.N_CLASSES_PROBE)
    assert str(model(np.zeros((1, ex.N_INPUTS_PROBE), "float32")).dtype) != "float32"  # really mixed
    fb = ex.q2.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(
    "mistake",
    [
        "softmax with from_logits=True",
        "logits with from_logits=False",
        "sigmoid outputs",
        "keras.metrics.Accuracy",
    ],
)
@pytest.mark.slow
def test_q2_mistakes_named_under_mixed_precision(mixed_policy, mistake):
    answer, phrase = Q2_MISTAKES[mistake]
    _assert_incorrect(ex.q2, answer, phrase)


@pytest.mark.slow
def test_q3_under_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        fb = ex.q3.evaluate(train_model_answer)
        assert fb.passed, str(fb)
        answer, phrase = Q3_MISTAKES["validated on the training set"]
        _assert_incorrect(ex.q3, answer, phrase)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["training set", "unscaled images"])
def test_q4_under_mixed_precision(mixed_policy, mistake):
    for answer in Q4_RIGHT.values():
        fb = ex.q4.evaluate(answer)
        assert fb.passed, str(fb)
    answer, phrase = Q4_MISTAKES[mistake]
    _assert_incorrect(ex.q4, answer, phrase)
