"""The checks of Lab 10 (metrics and Grad-CAM): right answers in any form pass, each typical mistake is named."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics

from utils.checks import Feedback
from utils.checks import lab10 as ex

# ---------------------------------------------------------------------------------------------
# q1 and q2: right answers, written the ways learners write them, and the usual mistakes
# ---------------------------------------------------------------------------------------------


def prf(y_true, y_pred):
    tp = np.sum((y_pred == 1) & (y_true == 1))
    fp = np.sum((y_pred == 1) & (y_true == 0))
    fn = np.sum((y_pred == 0) & (y_true == 1))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def prf_sklearn(y_true, y_pred):
    return [
        metrics.precision_score(y_true, y_pred, zero_division=0),
        metrics.recall_score(y_true, y_pred, zero_division=0),
        metrics.f1_score(y_true, y_pred, zero_division=0),
    ]


def prf_swapped(y_true, y_pred):
    p, r, f = prf(y_true, y_pred)
    return r, p, f


def prf_arithmetic(y_true, y_pred):
    p, r, _ = prf(y_true, y_pred)
    return p, r, (p + r) / 2


def prf_divides_by_zero_numpy(y_true, y_pred):
    tp = np.sum((y_pred == 1) & (y_true == 1))
    fp = np.sum((y_pred == 1) & (y_true == 0))
    fn = np.sum((y_pred == 0) & (y_true == 1))
    p, r = tp / (tp + fp), tp / (tp + fn)  # NumPy integers: nan with a warning
    return p, r, 2 * p * r / (p + r)


def prf_divides_by_zero_python(y_true, y_pred):
    tp = int(np.sum((y_pred == 1) & (y_true == 1)))
    fp = int(np.sum((y_pred == 1) & (y_true == 0)))
    fn = int(np.sum((y_pred == 0) & (y_true == 1)))
    p, r = tp / (tp + fp), tp / (tp + fn)  # Python ints: ZeroDivisionError
    return p, r, 2 * p * r / (p + r)


def prf_class_zero(y_true, y_pred):
    return prf(1 - y_true, 1 - y_pred)


def macro_micro(y_true, y_pred, n_classes, average="macro"):
    return float(metrics.f1_score(y_true, y_pred, labels=range(n_classes), average=average, zero_division=0))


def macro_micro_from_counts(y_true, y_pred, n_classes, average="macro"):
    cm = metrics.confusion_matrix(y_true, y_pred, labels=range(n_classes))
    tp = np.diag(cm)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    if average == "micro":
        return tp.sum() / len(y_true)  # micro F1 = accuracy, a right answer written differently
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(n_classes), where=2 * tp + fp + fn > 0)
    return f1.mean()


def swapped_average(y_true, y_pred, n_classes, average="macro"):
    return macro_micro(y_true, y_pred, n_classes, "micro" if average == "macro" else "macro")


def f1_of_macro_pr(y_true, y_pred, n_classes, average="macro"):
    if average == "micro":
        return macro_micro(y_true, y_pred, n_classes, "micro")
    p = metrics.precision_score(y_true, y_pred, average="macro", zero_division=0)
    r = metrics.recall_score(y_true, y_pred, average="macro", zero_division=0)
    return 2 * p * r / (p + r)


def weighted(y_true, y_pred, n_classes, average="macro"):
    avg = "weighted" if average == "macro" else "micro"
    return metrics.f1_score(y_true, y_pred, average=avg, zero_division=0)


def skips_unpredicted(y_true, y_pred, n_classes, average="macro"):
    if average == "micro":
        return macro_micro(y_true, y_pred, n_classes, "micro")
    return np.mean([prf(y_true == k, y_pred == k)[2] for k in range(n_classes) if np.any(y_pred == k)])


def macro_with_nan(y_true, y_pred, n_classes, average="macro"):
    if average == "micro":
        return macro_micro(y_true, y_pred, n_classes, "micro")
    return np.mean([prf_divides_by_zero_numpy(y_true == k, y_pred == k)[2] for k in range(n_classes)])


@pytest.mark.parametrize("answer", [prf, prf_sklearn])
def test_q1_right_answers_pass(answer):
    assert ex.q1.evaluate(answer).passed


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (prf_swapped, "swapped"),
        (prf_arithmetic, "harmonic mean"),
        (prf_divides_by_zero_numpy, "zero_division"),
        (prf_divides_by_zero_python, "zero_division"),
        (prf_class_zero, "class 0"),
    ],
)
def test_q1_mistakes_are_named(answer, words):
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and words in fb.hint, fb


def test_q1_not_done_and_wrong_types():
    def todo(y_true, y_pred):
        raise NotImplementedError

    assert ex.q1.evaluate(todo).status == "not_done"
    assert ex.q1.evaluate(...).status == "not_done"
    fb = ex.q1.evaluate(lambda y_true, y_pred: 0.5)
    assert fb.status == "incorrect" and "three numbers" in fb.expected


@pytest.mark.parametrize("answer", [macro_micro, macro_micro_from_counts])
def test_q2_right_answers_pass(answer):
    assert ex.q2.evaluate(answer).passed


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (swapped_average, "micro average for average='macro'"),
        (f1_of_macro_pr, "F1 of the macro precision"),
        (weighted, "number of examples"),
        (skips_unpredicted, "left out class 3"),
        (macro_with_nan, "0/0"),
    ],
)
def test_q2_mistakes_are_named(answer, words):
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and words in fb.hint, fb


def test_q2_probe_tells_the_mistakes_apart():
    y_true, y_pred, n = ex.MULTICLASS_PROBE
    values = ex._f1_variants(y_true, y_pred, n)
    assert len({round(v, 6) for v in values.values()}) == len(values)
    assert values["macro"] == pytest.approx(
        metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)
    )


# ---------------------------------------------------------------------------------------------
# q3: Grad-CAM
# ---------------------------------------------------------------------------------------------


def _cam(model, image, c, layer, *, score="logits", relu=True, axes=(0, 1), wrt="layer"):
    grad_model = keras.Model(model.input, [model.get_layer(layer).output, model.get_layer(score).output])
    x = tf.convert_to_tensor(image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        maps, out = grad_model(x)
        y = out[0, c]
    if wrt == "input":
        maps = x
    grads = tape.gradient(y, maps)[0]
    alpha = tf.reduce_mean(grads, axis=axes, keepdims=axes == -1)
    cam = tf.reduce_sum(maps[0] * alpha, axis=-1)
    return (tf.nn.relu(cam) if relu else cam).numpy()


def cam_right(model, image, c, layer):
    return _cam(model, image, c, layer)


def cam_batched_and_sum(model, image, c, layer):
    """Keeps the batch axis and sums (not averages) the gradients: the same map up to a scale."""
    grad_model = keras.Model(model.input, [model.get_layer(layer).output, model.get_layer("logits").output])
    with tf.GradientTape() as tape:
        maps, logits = grad_model(image[None])
        y = logits[:, c]
    grads = tape.gradient(y, maps)
    alpha = tf.reduce_sum(grads, axis=(1, 2))[:, None, None, :]
    return tf.nn.relu(tf.reduce_sum(alpha * maps, axis=-1))


def cam_softmax(model, image, c, layer):
    return _cam(model, image, c, layer, score="probs")


def cam_no_relu(model, image, c, layer):
    return _cam(model, image, c, layer, relu=False)


def cam_channel_axis(model, image, c, layer):
    return _cam(model, image, c, layer, axes=-1)


def cam_input(model, image, c, layer):
    return _cam(model, image, c, layer, wrt="input")


def cam_dense(model, image, c, layer):
    return _cam(model, image, c, "logits")


@pytest.mark.slow
@pytest.mark.parametrize("answer", [cam_right, cam_batched_and_sum])
def test_q3_right_answers_pass(answer):
    assert ex.q3.evaluate(answer).passed


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (cam_softmax, "before it"),
        (cam_no_relu, "forgot the ReLU"),
        (cam_channel_axis, "channel axis"),
        (cam_input, "with respect to the input"),
        (cam_dense, "dense"),
    ],
)
def test_q3_mistakes_are_named(answer, words):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and words in fb.hint, fb


def test_q3_probe_tells_the_mistakes_apart():
    model = ex.grad_cam_probe_model()
    told_apart = set()
    for image, c in ex._probe_images():
        v = ex._cam_variants(model, image, c, "last_conv")
        assert v["right"].shape == (6, 6) and v["right"].max() > 0
        told_apart |= {name for name in v if name != "input" and not ex._same_map(v[name], v["right"])}
    assert told_apart == {"softmax", "no relu", "channel mean", "channel mean keepdims", "no mean"}


@pytest.mark.slow
def test_show_grad_cam_returns_feedback_until_right_then_a_figure():
    model = ex.grad_cam_probe_model()
    images = np.stack([img for img, _ in ex._probe_images()])
    assert isinstance(ex.show_grad_cam(cam_no_relu, model, images, "last_conv", list("abcd")), Feedback)
    fig = ex.show_grad_cam(cam_right, model, images, "last_conv", list("abcd"))
    assert fig.layout.meta["max_difference"] < 1e-5 and len(fig.data) == 2


# ---------------------------------------------------------------------------------------------
# q3 under mixed precision: a learner on a GPU (float16) or a TPU (bfloat16) writes the same code
# ---------------------------------------------------------------------------------------------


def test_q3_probe_computes_at_the_active_precision(mixed_policy):
    model = ex.grad_cam_probe_model()
    assert model.get_layer("last_conv").compute_dtype == mixed_policy.removeprefix("mixed_")
    assert model.get_layer("logits").compute_dtype == "float32"  # the output layers stay float32


@pytest.mark.parametrize("answer", [cam_right, cam_batched_and_sum])
def test_q3_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    assert ex.q3.evaluate(answer).passed


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (cam_softmax, "before it"),
        (cam_no_relu, "forgot the ReLU"),
        (cam_channel_axis, "channel axis"),
        (cam_input, "with respect to the input"),
    ],
)
def test_q3_mistakes_are_named_under_mixed_precision(mixed_policy, answer, words):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and words in fb.hint, fb


def test_q3_mixed_precision_tolerance_still_tells_the_mistakes_apart(mixed_policy):
    model = ex.grad_cam_probe_model()
    atol = ex._map_atol(model, "last_conv")
    assert atol < 0.1  # well below the 0.2 of the peak that separates the nearest mistake
    told_apart = set()
    for image, c in ex._probe_images():
        v = ex._cam_variants(model, image, c, "last_conv")
        told_apart |= {name for name in v if name != "input" and not ex._same_map(v[name], v["right"], atol)}
    assert told_apart == {"softmax", "no relu", "channel mean", "channel mean keepdims", "no mean"}
