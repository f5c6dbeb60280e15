"""Lab 05a's checks (debugging a training run): right fixes written in different styles pass, each known
mistake gets its own hint, placeholders are "not done yet", a learner's exception is reported kindly.
Most of these train a small network for a few epochs, so they are marked slow."""

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler  # noqa: E402
from sklearn.utils import shuffle as sk_shuffle  # noqa: E402

from utils.checks import lab05a as ex  # noqa: E402

slow = pytest.mark.slow


# ---------------------------------------------------------------------------------------------
# q1: output and loss
# ---------------------------------------------------------------------------------------------


def model_with(activation=None, from_logits=True, extra=(), out_dtype="float32"):
    def build(n_inputs, n_classes):
        model = keras.Sequential(
            [
                keras.Input((n_inputs,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(n_classes, activation=activation, dtype=out_dtype),
                *extra,
            ]
        )
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
        return model

    return build


def functional_softmax(n_inputs, n_classes):
    inputs = keras.Input((n_inputs,))
    hidden = keras.layers.Dense(96, activation="relu")(inputs)
    outputs = keras.layers.Softmax(dtype="float32")(keras.layers.Dense(n_classes)(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


Q1_RIGHT = {
    "logits, from_logits=True": model_with(None, True),
    "softmax, from_logits=False": model_with("softmax", False),
    "functional, a Softmax layer, the string loss": functional_softmax,
}
Q1_WRONG = {
    "logits": model_with(None, False),
    "rescued": model_with("softmax", True),
    "twice": model_with("softmax", False, extra=(keras.layers.Softmax(),)),
    "sigmoid": model_with("sigmoid", False),
}


@slow
@pytest.mark.parametrize("build", Q1_RIGHT.values(), ids=Q1_RIGHT.keys())
def test_q1_right_fixes_pass(build):
    fb = ex.q1.evaluate(build)
    assert fb.passed, str(fb)


@slow
@pytest.mark.parametrize(("key", "build"), Q1_WRONG.items(), ids=Q1_WRONG.keys())
def test_q1_mistakes_are_named(key, build):
    fb = ex.q1.evaluate(build)
    assert fb.status == "incorrect" and fb.hint == ex.Q1_MISTAKES[key].hint, str(fb)


# ---------------------------------------------------------------------------------------------
# q2: scaling
# ---------------------------------------------------------------------------------------------


def standardise_numpy(x_train, x_other):
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    return (x_train - mean) / std, (x_other - mean) / std


def with_scaler(scaler):
    def prepare(x_train, x_other):
        fitted = scaler().fit(x_train)
        return fitted.transform(x_train), fitted.transform(x_other)

    return prepare


def keras_normalization(x_train, x_other):
    norm = keras.layers.Normalization(dtype="float32")
    norm.adapt(x_train)
    return norm(x_train), norm(x_other)


Q2_RIGHT = {
    "NumPy": standardise_numpy,
    "StandardScaler": with_scaler(StandardScaler),
    "MinMaxScaler": with_scaler(MinMaxScaler),
    "keras Normalization": keras_normalization,
}
Q2_WRONG = {
    "unscaled": lambda a, b: (a, b),
    "one_scale": lambda a, b: (a / a.max(), b / a.max()),
    "not_centred": lambda a, b: (a / a.std(axis=0), b / a.std(axis=0)),
    "own_stats": lambda a, b: (standardise_numpy(a, a)[0], standardise_numpy(b, b)[0]),
    "all_rows": lambda a, b: (
        standardise_numpy(np.concatenate([a, b]), a)[1],
        standardise_numpy(np.concatenate([a, b]), b)[1],
    ),
}


@slow
@pytest.mark.parametrize("prepare", Q2_RIGHT.values(), ids=Q2_RIGHT.keys())
def test_q2_right_fixes_pass(prepare):
    fb = ex.q2.evaluate(prepare)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(("key", "prepare"), Q2_WRONG.items(), ids=Q2_WRONG.keys())
def test_q2_mistakes_are_named(key, prepare):
    fb = ex.q2.evaluate(prepare)
    assert fb.status == "incorrect" and fb.hint == ex.Q2_MISTAKES[key].hint, str(fb)


# ---------------------------------------------------------------------------------------------
# q3: the learning rate
# ---------------------------------------------------------------------------------------------


@slow
@pytest.mark.parametrize("rate", [0.3, 0.1, np.float32(0.5), tf.constant(0.2)])
def test_q3_right_rates_pass(rate):
    fb = ex.q3.evaluate(rate)
    assert fb.passed, str(fb)


@slow
@pytest.mark.parametrize(("key", "rate"), [("diverges", 8.0), ("diverges", 3.0), ("too_small", 0.003)])
def test_q3_mistakes_are_named(key, rate):
    fb = ex.q3.evaluate(rate)
    assert fb.status == "incorrect" and fb.hint == ex.Q3_MISTAKES[key].hint, str(fb)


def test_q3_a_rate_must_be_positive():
    fb = ex.q3.evaluate(-0.1)
    assert fb.status == "incorrect" and fb.hint == ex.Q3_MISTAKES["not_positive"].hint


# ---------------------------------------------------------------------------------------------
# q4: shuffling
# ---------------------------------------------------------------------------------------------


def shuffle_numpy(x, y, seed):
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def shuffle_tf(x, y, seed):
    order = tf.random.shuffle(tf.range(len(x)), seed=seed)
    return tf.gather(x, order), tf.gather(y, order)


Q4_RIGHT = {
    "NumPy": shuffle_numpy,
    "scikit-learn": lambda x, y, seed: sk_shuffle(x, y, random_state=seed),
    "TensorFlow": shuffle_tf,
}


def _permuted(a, seed):
    return a[np.random.default_rng(seed).permutation(len(a))]


Q4_WRONG = {
    "images_only": lambda x, y, seed: (_permuted(x, seed), y),
    "two_perms": lambda x, y, seed: (_permuted(x, seed), _permuted(y, seed + 1)),
    "not_shuffled": lambda x, y, seed: (x, y),
    "lost_rows": lambda x, y, seed: (lambda i: (x[i], y[i]))(
        np.random.default_rng(seed).choice(len(x), len(x))
    ),
}


@slow
@pytest.mark.parametrize("shuffle", Q4_RIGHT.values(), ids=Q4_RIGHT.keys())
def test_q4_right_fixes_pass(shuffle):
    fb = ex.q4.evaluate(shuffle)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(("key", "shuffle"), Q4_WRONG.items(), ids=Q4_WRONG.keys())
def test_q4_mistakes_are_named(key, shuffle):
    fb = ex.q4.evaluate(shuffle)
    assert fb.status == "incorrect" and fb.hint == ex.Q4_MISTAKES[key].hint, str(fb)


# ---------------------------------------------------------------------------------------------
# q5: batch norm at inference
# ---------------------------------------------------------------------------------------------


def digit_net(mode):
    """The lab's DigitNet, with its batch norm layers called with `mode` ("flag", "default", a bool)."""

    class DigitNet(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(64, use_bias=False)
            self.norm = keras.layers.BatchNormalization(momentum=0.9)
            self.logits = keras.layers.Dense(10, dtype="float32")

        def call(self, x, training=None):
            if mode == "default":
                h = self.norm(self.hidden(x))
            else:
                h = self.norm(self.hidden(x), training=training if mode == "flag" else mode)
            return self.logits(keras.ops.relu(h))

    return DigitNet


@slow
@pytest.mark.parametrize("mode", ["flag", "default"])
def test_q5_right_fixes_pass(mode):
    fb = ex.q5.evaluate(digit_net(mode))
    assert fb.passed, str(fb)


@slow
@pytest.mark.parametrize(("key", "mode"), [("train_mode", True), ("never", False)])
def test_q5_mistakes_are_named(key, mode):
    fb = ex.q5.evaluate(digit_net(mode))
    assert fb.status == "incorrect" and fb.hint == ex.Q5_MISTAKES[key].hint, str(fb)


# ---------------------------------------------------------------------------------------------
# q6: validation leaking into training
# ---------------------------------------------------------------------------------------------


def split_unique(x, y, seed):
    _, first = np.unique(x, axis=0, return_index=True)
    x, y = x[np.sort(first)], y[np.sort(first)]
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = len(x) // 5
    return x[order[n_val:]], y[order[n_val:]], x[order[:n_val]], y[order[:n_val]]


def split_sklearn(x, y, seed):
    import pandas as pd

    table = pd.DataFrame(x).assign(label=y).drop_duplicates()
    x_train, x_val, y_train, y_val = train_test_split(
        table.drop(columns="label").to_numpy(), table["label"].to_numpy(), test_size=0.2, random_state=seed
    )
    return x_train, y_train, x_val, y_val


def split_random(x, y, seed):
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = len(x) // 5
    return x[order[n_val:]], y[order[n_val:]], x[order[:n_val]], y[order[:n_val]]


Q6_WRONG = {
    "copies": split_random,
    "small": lambda x, y, seed: (lambda a, b, c, d: (a, b, c[:10], d[:10]))(*split_unique(x, y, seed)),
    "labels": lambda x, y, seed: (lambda a, b, c, d: (a, b[::-1], c, d))(*split_unique(x, y, seed)),
}


@slow
@pytest.mark.parametrize("split", [split_unique, split_sklearn])
def test_q6_right_fixes_pass(split):
    fb = ex.q6.evaluate(split)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(("key", "split"), Q6_WRONG.items(), ids=Q6_WRONG.keys())
def test_q6_mistakes_are_named(key, split):
    fb = ex.q6.evaluate(split)
    assert fb.status == "incorrect" and fb.hint == ex.Q6_MISTAKES[key].hint, str(fb)


def test_the_broken_split_leaks_most_validation_rows():
    x, y = ex.load("exports")
    x_train, _, x_val, _ = split_random(x, y, 0)
    seen = {row.tobytes() for row in x_train}
    assert np.mean([row.tobytes() in seen for row in x_val]) > 0.6


# ---------------------------------------------------------------------------------------------
# placeholders, a learner's own error
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


class Unfinished(keras.Model):
    def call(self, x, training=None):
        raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    if exercise is ex.q3 and placeholder is _not_implemented:
        return  # q3's answer is a number
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message, str(fb)


def test_an_unfinished_model_class_is_not_done():
    assert ex.q5.evaluate(Unfinished).status == "not_done"


def test_a_learners_typo_is_reported_with_their_line():
    def shuffle(x, y, seed):
        order = np.random.default_rng(seed).permutation(len(x))
        return x[order], y[ordr]  # noqa: F821

    fb = ex.q4.evaluate(shuffle)
    assert fb.status == "error" and "NameError" in fb.message and "ordr" in fb.message
    assert "Traceback" not in str(fb)


# ---------------------------------------------------------------------------------------------
# under mixed precision (a T4: float16, a TPU: bfloat16) right fixes still pass, mistakes are still named
# ---------------------------------------------------------------------------------------------


@slow
@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, model_with(None, True)),
        (ex.q2, with_scaler(StandardScaler)),
        (ex.q3, 0.3),
        (ex.q4, shuffle_numpy),
        (ex.q5, digit_net("flag")),
        (ex.q6, split_unique),
    ],
    ids=["q1", "q2", "q3", "q4", "q5", "q6"],
)
def test_right_fixes_pass_under_mixed_precision(mixed_policy, exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


@slow
@pytest.mark.parametrize(
    ("exercise", "answer", "mistakes", "key"),
    [
        (ex.q1, model_with(None, False), ex.Q1_MISTAKES, "logits"),
        (ex.q3, 8.0, ex.Q3_MISTAKES, "diverges"),
        (ex.q5, digit_net(True), ex.Q5_MISTAKES, "train_mode"),
    ],
    ids=["q1", "q3", "q5"],
)
def test_mistakes_are_named_under_mixed_precision(mixed_policy, exercise, answer, mistakes, key):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == mistakes[key].hint, f"{mixed_policy}: {fb}"
