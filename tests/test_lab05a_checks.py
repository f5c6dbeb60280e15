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
# q7: He initialisation for a convolution (no training: fast)
# ---------------------------------------------------------------------------------------------


def he_numpy(kernel_shape, depthwise=False):
    kh, kw, in_ch, _ = kernel_shape
    return np.sqrt(2 / (kh * kw * (1 if depthwise else in_ch)))


def he_tf(kernel_shape, depthwise=False):
    fan_in = tf.reduce_prod(kernel_shape[:2] if depthwise else kernel_shape[:3])
    return tf.sqrt(2.0 / tf.cast(fan_in, tf.float32))


def he_keras(kernel_shape, depthwise=False):
    receptive = kernel_shape[0] * kernel_shape[1]
    return keras.ops.sqrt(2.0 / (receptive if depthwise else receptive * kernel_shape[2]))


def he_variant(fan):
    """A He-like std from ``fan(kh, kw, in_ch, out, depthwise)``, with the formula ``std(fan_in, fan_out)``."""
    return lambda shape, depthwise=False: fan(*shape, depthwise)


Q7_WRONG = {
    "fan_out": he_variant(lambda kh, kw, c, o, dw: np.sqrt(2 / (kh * kw * o))),
    "no_field": he_variant(lambda kh, kw, c, o, dw: np.sqrt(2 / (1 if dw else c))),
    "with_channels": he_variant(lambda kh, kw, c, o, dw: np.sqrt(2 / (kh * kw * c))),
    "glorot": he_variant(lambda kh, kw, c, o, dw: np.sqrt(2 / (kh * kw * ((1 if dw else c) + o)))),
    "variance": he_variant(lambda kh, kw, c, o, dw: 2 / (kh * kw * (1 if dw else c))),
}


@pytest.mark.parametrize("answer", [he_numpy, he_tf, he_keras], ids=["NumPy", "TensorFlow", "keras.ops"])
def test_q7_right_answers_pass(answer):
    fb = ex.q7.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(("key", "answer"), Q7_WRONG.items(), ids=Q7_WRONG.keys())
def test_q7_mistakes_are_named(key, answer):
    fb = ex.q7.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == ex.Q7_MISTAKES[key].hint, str(fb)


def test_q7_reference_keeps_a_relu_conv_stacks_variance():
    """Independent of the formula: through a ReLU then a Conv2D drawn with the reference std, the mean
    square of unit-variance inputs stays about 1 (He's argument), and a depthwise conv's too."""
    x = np.random.default_rng(0).normal(size=(8, 24, 24, 32)).astype("float32")
    for layer, depthwise in (
        (keras.layers.Conv2D(32, 3, use_bias=False), False),
        (keras.layers.DepthwiseConv2D(3, use_bias=False), True),
    ):
        layer.build(x.shape)
        std = ex.he_std(tuple(layer.kernel.shape), depthwise)
        layer.kernel.assign(np.random.default_rng(1).normal(0, std, layer.kernel.shape))
        out = np.asarray(layer(keras.ops.relu(x)))
        assert 0.8 < np.mean(out**2) < 1.25, (depthwise, np.mean(out**2))


def test_q7_keras_counts_the_channels_for_a_depthwise_kernel():
    """The point the lab makes: Keras's HeNormal, given the depthwise kernel's shape, uses kh·kw·in_ch."""
    drawn = np.asarray(keras.initializers.HeNormal(seed=0)((3, 3, 32, 1)))
    assert abs(drawn.std() - np.sqrt(2 / (3 * 3 * 32))) < 0.02
    assert drawn.std() < ex.he_std((3, 3, 32, 1), depthwise=True) / 4


# ---------------------------------------------------------------------------------------------
# q8: a distillation loss with temperature (no training: fast)
# ---------------------------------------------------------------------------------------------


def distill_numpy(s, t, T):
    log_s = s / T - np.log(np.exp(s / T).sum(axis=-1, keepdims=True))
    log_t = t / T - np.log(np.exp(t / T).sum(axis=-1, keepdims=True))
    return T**2 * np.mean(np.sum(np.exp(log_t) * (log_t - log_s), axis=-1))


def distill_keras_ops(s, t, T):
    log_t, log_s = keras.ops.log_softmax(t / T), keras.ops.log_softmax(s / T)
    return T**2 * keras.ops.mean(keras.ops.sum(keras.ops.exp(log_t) * (log_t - log_s), axis=-1))


def distill_tf_loss(s, t, T):
    s, t = tf.cast(s, tf.float32), tf.cast(t, tf.float32)
    kl = keras.losses.KLDivergence()  # its default reduction: the mean over the batch
    return T**2 * kl(tf.nn.softmax(t / T), tf.nn.softmax(s / T))


def distill_variant(t2=lambda T: T**2, soft_student=True, divergence="kl", reduce=np.mean):
    def loss(s, t, T):
        p = ex.softmax(t / T)
        q = ex.softmax(s / T if soft_student else s)
        rows = {
            "kl": np.sum(p * np.log(p / q), axis=-1),
            "reversed": np.sum(q * np.log(q / p), axis=-1),
            "ce": -np.sum(p * np.log(q), axis=-1),
        }[divergence]
        return t2(T) * reduce(rows)

    return loss


Q8_WRONG = {
    "no_t2": distill_variant(t2=lambda T: 1.0),
    "t_not_t2": distill_variant(t2=lambda T: T),
    "reversed": distill_variant(divergence="reversed"),
    "teacher_only": distill_variant(soft_student=False),
    "cross_entropy": distill_variant(divergence="ce"),
    "batch_sum": distill_variant(reduce=np.sum),
}


@pytest.mark.parametrize(
    "answer", [distill_numpy, distill_keras_ops, distill_tf_loss], ids=["NumPy", "keras.ops", "TensorFlow"]
)
def test_q8_right_answers_pass(answer):
    fb = ex.q8.evaluate(answer)
    assert fb.passed, str(fb)


def test_q8_accepts_tensor_inputs():
    s, t, T = *np.random.default_rng(3).normal(size=(2, 4, 5)), 3.0
    expected = ex.distill_loss(s, t, T)
    assert np.isclose(float(distill_keras_ops(tf.constant(s), keras.ops.convert_to_tensor(t), T)), expected)
    assert np.isclose(float(distill_tf_loss(tf.constant(s), tf.constant(t), T)), expected, rtol=1e-4)


@pytest.mark.parametrize(("key", "answer"), Q8_WRONG.items(), ids=Q8_WRONG.keys())
def test_q8_mistakes_are_named(key, answer):
    fb = ex.q8.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == ex.Q8_MISTAKES[key].hint, str(fb)


def test_q8_a_wrong_power_of_t_fails_on_the_gradient():
    fb = ex.q8.evaluate(distill_variant(t2=lambda T: T**3))
    assert fb.status == "incorrect" and "gradient" in fb.message and "power of T" in fb.hint, str(fb)


def test_q8_the_t2_factor_keeps_the_gradient_of_one_order():
    """T² · KL's gradient is T·(softmax(s/T) − softmax(t/T)): of order 1 at any T; without T², 1/T² smaller."""
    right = ex.gradient_ratio(ex.distill_loss)
    assert 1 / 3 < right < 3
    assert ex.gradient_ratio(Q8_WRONG["no_t2"]) < right / 30  # 8² = 64 times smaller, give or take


def test_q8_per_example_losses_are_not_one_number():
    fb = ex.q8.evaluate(
        lambda s, t, T: T**2 * np.sum(ex.softmax(t / T) * np.log(ex.softmax(t / T) / ex.softmax(s / T)), -1)
    )
    assert fb.status == "incorrect" and "mean" in fb.hint, str(fb)


# ---------------------------------------------------------------------------------------------
# placeholders, a learner's own error
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


class Unfinished(keras.Model):
    def call(self, x, training=None):
        raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6, ex.q7, ex.q8])
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


@pytest.mark.parametrize("exercise", [ex.q7, ex.q8])
def test_a_learners_exception_in_q7_q8_is_reported_kindly(exercise):
    def answer(*args, **kwargs):
        return undefined_name  # noqa: F821

    fb = exercise.evaluate(answer)
    assert fb.status == "error" and "NameError" in fb.message and "Traceback" not in str(fb), str(fb)


# ---------------------------------------------------------------------------------------------
# under mixed precision (a T4: float16, a TPU: bfloat16) right fixes still pass, mistakes are still named.
# Here: the tasks whose answer meets the precision (the output layer and loss, the learning rate, batch
# norm). Every task's solution also runs under both emulations in CI (.ci/emulate tpu, .ci/compat with t4).
# ---------------------------------------------------------------------------------------------


@slow
@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, model_with(None, True)),
        (ex.q3, 0.3),
        (ex.q5, digit_net("flag")),
    ],
    ids=["q1", "q3", "q5"],
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


@pytest.mark.parametrize(
    ("exercise", "answer"), [(ex.q7, he_keras), (ex.q8, distill_keras_ops)], ids=["q7", "q8"]
)
def test_q7_q8_right_answers_pass_under_mixed_precision(mixed_policy, exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


@pytest.mark.parametrize(
    ("exercise", "answer", "mistakes", "key"),
    [
        (ex.q7, Q7_WRONG["with_channels"], ex.Q7_MISTAKES, "with_channels"),
        (ex.q8, Q8_WRONG["no_t2"], ex.Q8_MISTAKES, "no_t2"),
    ],
    ids=["q7", "q8"],
)
def test_q7_q8_mistakes_are_named_under_mixed_precision(mixed_policy, exercise, answer, mistakes, key):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and fb.hint == mistakes[key].hint, f"{mixed_policy}: {fb}"


# ---------------------------------------------------------------------------------------------
# the lab's references are the lesson's utils.craft
# ---------------------------------------------------------------------------------------------


def test_the_he_reference_is_utils_craft_he_std():
    from utils import craft

    for shape in ex.CONV_SHAPES:  # Conv2D: Keras's fans (receptive field × channels)
        assert ex.he_std(shape) == pytest.approx(craft.he_std(craft.fans(shape)[0]), rel=1e-12)
    for shape in ex.DEPTHWISE_SHAPES:  # one output sums kh × kw inputs of one channel
        assert ex.he_std(shape, depthwise=True) == pytest.approx(craft.he_std(shape[0] * shape[1]), rel=1e-12)


def test_the_distillation_reference_is_utils_craft_distillation_loss():
    from utils import craft

    rng = np.random.default_rng(5)
    s, t = rng.normal(scale=3, size=(2, 16, 10))
    for temperature in (1.0, 2.0, 4.0, 8.0):
        ours = float(craft.distillation_loss(s, t, temperature))
        assert ours == pytest.approx(ex.distill_loss(s, t, temperature), rel=1e-5)
