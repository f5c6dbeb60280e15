"""Checks for Lab 03 (train a classifier): a Keras classifier for handwritten digits, trained to a target.

The lab's data come from :func:`load_data`: MNIST's 28×28 digits when they are cached or can be
downloaded, else scikit-learn's real 8×8 digits, as uint8 images with integer labels 0-9, split into
training, validation and test sets. The five exercises:

* ``q1``: ``prepare(images)`` returns float32 rows in [0, 1], one flat row per image;
* ``q2``: ``build_model(n_inputs, n_classes)`` returns a compiled Keras model for integer labels, with
  the accuracy metric;
* ``q3``: ``train(model, x_train, y_train, x_val, y_val)`` fits the model it is given, with validation
  data, and returns the ``History``; the model must reach :func:`target` on held-out test images;
* ``q4``: ``test_accuracy(model, data)`` returns the model's accuracy on the held-out test images;
* ``q5``: the learner's four functions together (:func:`run_all`) reach the target.

The checkers test behaviour, not text: they call the learner's function on probe inputs and look at
what comes back (shapes, value ranges, whether outputs sum to 1, the loss the compiled model computes
on known inputs, the accuracy reached on data the model never saw). Each usual mistake (unscaled
inputs, softmax with ``from_logits=True`` or logits without it, categorical cross-entropy with integer
labels, a hard-coded number of output units, no validation data, too few epochs, the training set
used as the test set...) gets its own message.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from utils.checks import Exercise, Feedback, LearnerError, Mismatch, NotDone, call, expect_close

__all__ = [
    "LabData",
    "Run",
    "load_data",
    "q1",
    "q2",
    "q3",
    "q4",
    "q5",
    "reference_model",
    "reference_prepare",
    "run_all",
    "target",
]

# build_model is probed with sizes unlike the lab's own (64 or 784 inputs, 10 classes), so an answer
# that hard-codes the lab's numbers instead of using its arguments shows up.
N_INPUTS_PROBE, N_CLASSES_PROBE, N_PROBE = 20, 7, 24
# Test accuracy to reach: the real 8×8 digits (offline) and MNIST. A one-hidden-layer network passes
# both in seconds; a model that did not learn (or learnt from unscaled inputs) does not.
TARGETS = {"digits": 0.92, "mnist": 0.95}
FEW_EPOCHS = 10


# ---------------------------------------------------------------------------------------------
# The lab's data
# ---------------------------------------------------------------------------------------------


@dataclass
class LabData:
    """The lab's images: uint8 ``x_*`` of shape (n, height, width), int64 labels ``y_*`` 0-9."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    description: str

    def __repr__(self) -> str:
        return (
            f"LabData({self.name}: train {self.x_train.shape}, validation {self.x_val.shape}, "
            f"test {self.x_test.shape})"
        )


_DATA: LabData | None = None


def load_data(cfg: Any = None) -> LabData:
    """Return (and remember, for the checks) the lab's training, validation and test images.

    MNIST when it is cached or can be downloaded, else scikit-learn's real 8×8 digits (the
    ``description`` says which). The last sixth of the training images (at most a quarter of the
    profile's sample budget) is held out for validation; ``cfg.limit`` caps the other sets.
    """
    global _DATA
    from utils import data as datasets
    from utils.env import PROFILES, choose_profile

    if cfg is None:
        limit = PROFILES[choose_profile()]["max_samples"]

        def cap(n: int) -> int:
            return n if limit is None else min(n, limit)
    else:
        cap = cfg.limit
    images = datasets.load_images("mnist")
    pool = len(images.x_train)
    n_val = min(pool // 6, cap(pool) // 4)
    n_train = cap(pool - n_val)
    n_test = cap(len(images.x_test))
    _DATA = LabData(
        name=images.name,
        x_train=images.x_train[:n_train],
        y_train=images.y_train[:n_train],
        x_val=images.x_train[pool - n_val :],
        y_val=images.y_train[pool - n_val :],
        x_test=images.x_test[:n_test],
        y_test=images.y_test[:n_test],
        class_names=images.class_names,
        description=images.description,
    )
    return _DATA


def _data() -> LabData:
    return _DATA if _DATA is not None else load_data()


def target(data: LabData | None = None) -> float:
    """Return the test accuracy the lab asks for on ``data`` (default: the lab's data)."""
    return TARGETS.get((data or _data()).name, TARGETS["mnist"])


def reference_prepare(images: np.ndarray) -> np.ndarray:
    """The model answer to Q1: float32 rows in [0, 1], one per image."""
    return (np.asarray(images).reshape(len(images), -1) / 255.0).astype(np.float32)


def reference_model(n_inputs: int, n_classes: int, *, seed: int = 0) -> Any:
    """A compiled one-hidden-layer classifier (softmax output, sparse cross-entropy, accuracy).

    The output layer is float32 under any policy (the mixed-precision rule of lesson 03), so the
    probabilities the checks read from it are as precise as in a float32 run.
    """
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(n_inputs,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(n_classes, activation="softmax", dtype="float32"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Any:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _numpy(value: Any) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean −log p[label], clipped like Keras (1e-7) so a confident mistake stays finite."""
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(-np.mean(np.log(p)))


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    probs = _numpy(model.predict(x, verbose=0, batch_size=1024))
    return float(np.mean(np.argmax(probs, axis=-1) == y))


def _precision(values: np.ndarray) -> float:
    """How close to exact a model's outputs in ``values``' dtype can be.

    1e-4 for float32 (and wider) outputs; for a float16 or bfloat16 output (a right answer under
    mixed precision, whose last layer computes in that dtype) the course's tolerance for it,
    1e-2 or 6e-2 (:func:`utils.env.tolerance`).
    """
    from utils.env import tolerance

    name = str(values.dtype)
    return tolerance(name)["atol"] if name in ("float16", "bfloat16") else 1e-4


def _is_model(value: Any) -> bool:
    import keras

    return isinstance(value, keras.Model)


# ---------------------------------------------------------------------------------------------
# q1: preparing the images
# ---------------------------------------------------------------------------------------------


def _probe_images() -> np.ndarray:
    """Six 5×4 uint8 images whose brightest pixel is 200, not 255 (so dividing by the max shows)."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 201, size=(6, 5, 4)).astype(np.uint8)
    images[0, 0, 0], images[1, 2, 3] = 0, 200
    return images


def _check_prepare(prepare: Callable) -> None:
    images = _probe_images()
    n, h, w = images.shape
    expected = images.reshape(n, h * w) / 255.0
    got = call(prepare, images.copy())
    if _is_model(got) or got is None or isinstance(got, tuple):
        raise Mismatch(
            "what prepare() returns",
            expected="one NumPy array",
            got=type(got).__name__,
            hint="End with `return x`, where x is the prepared array.",
        )
    try:
        arr = _numpy(got)
    except Exception:
        raise Mismatch("what prepare() returns", expected="a NumPy array", got=type(got).__name__) from None
    what = "the prepared probe images"
    if arr.shape == (n, h, w):
        raise Mismatch(
            f"the shape of {what}",
            expected=(n, h * w),
            got=arr.shape,
            hint="Flatten each image into one row of height × width numbers: `images.reshape(len(images), -1)`. "
            "A Dense layer reads a vector per example.",
        )
    if arr.shape == (n * h * w,):
        raise Mismatch(
            f"the shape of {what}",
            expected=(n, h * w),
            got=arr.shape,
            hint="You flattened the whole batch into one long vector. Keep one row per image: "
            "`images.reshape(len(images), -1)`.",
        )
    if arr.shape != (n, h * w):
        raise Mismatch(
            f"the shape of {what}",
            expected=(n, h * w),
            got=arr.shape,
            hint="One row per image, height × width columns. Use the images' own sizes, not 28 × 28 or 8 × 8: "
            "`images.reshape(len(images), -1)`.",
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise Mismatch(
            f"the dtype of {what}",
            expected="float32",
            got=str(arr.dtype),
            hint="The result is still whole numbers. `images // 255` (floor division) or `.astype(int)` throws away "
            "every grey level: divide with `/ 255` and convert with `.astype('float32')`.",
        )
    if arr.dtype != np.float32:
        raise Mismatch(
            f"the dtype of {what}",
            expected="float32",
            got=str(arr.dtype),
            hint="Dividing a uint8 array by 255 gives float64: twice the memory, and Keras computes in float32 "
            "anyway. Add `.astype('float32')`.",
        )
    arr64 = arr.astype(np.float64)
    if np.allclose(arr64, images.reshape(n, -1)):
        raise Mismatch(
            f"the values of {what}",
            expected="numbers between 0 and 1",
            got=f"values from {arr64.min():g} to {arr64.max():g}",
            hint="You forgot to scale the pixels. They go from 0 to 255; divide by 255 so they go from 0 to 1. "
            "Unscaled inputs make the first layer's outputs huge and training slow or unstable.",
        )
    if np.allclose(arr64, images.reshape(n, -1) / images.max()):
        raise Mismatch(
            f"the values of {what}",
            expected=f"the brightest probe pixel (200) as {200 / 255:.4f}",
            got=f"{arr64.max():.4f}",
            hint="You divided by the batch's own maximum. Then the same pixel value means different things in "
            "different batches; divide by 255, the largest value a uint8 pixel can take.",
        )
    if np.allclose(arr64, images.reshape(n, -1) / 256.0):
        raise Mismatch(
            f"the values of {what}",
            expected="white (255) as exactly 1.0",
            got="255 / 256 = 0.996",
            hint="Divide by 255, not 256: the largest uint8 value is 255.",
        )
    if np.allclose(arr64, 1.0 - expected):
        raise Mismatch(
            f"the values of {what}",
            expected="0 for a black pixel, 1 for a white one",
            got="1 for black, 0 for white",
            hint="You inverted the images (1 − x/255). Keep the pixels' meaning: x / 255.",
        )
    if arr64.min() < -1e-6:
        raise Mismatch(
            f"the values of {what}",
            expected="numbers between 0 and 1",
            got=f"values from {arr64.min():.3g} to {arr64.max():.3g}",
            hint="You standardised (or centred) the pixels. This lab asks for min-max scaling to [0, 1]: x / 255.",
        )
    expect_close(arr64, expected, what=what, hint="Flatten, then divide by 255: x / 255.0, as float32.")


q1 = Exercise(
    "Q1 · prepare the images",
    _check_prepare,
    hint="`images.reshape(len(images), -1).astype('float32') / 255`: one row per image, values in [0, 1].",
    lab="lab03",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# q2: the model
# ---------------------------------------------------------------------------------------------


def _configured_loss(model: Any, y: np.ndarray, y_pred: np.ndarray) -> float:
    """The compiled loss of ``model`` on labels ``y`` and outputs ``y_pred``, without regularisation."""
    import keras

    total = model.compute_loss(y=keras.ops.convert_to_tensor(y), y_pred=keras.ops.convert_to_tensor(y_pred))
    extra = sum(float(_numpy(loss)) for loss in model.losses)
    return float(_numpy(total)) - extra


def _loss_kind(model: Any, n_classes: int) -> str:
    """Classify the compiled loss by what it computes on known inputs.

    Returns 'probabilities' (sparse cross-entropy reading probabilities), 'logits' (reading logits),
    'one-hot probabilities' / 'one-hot logits' (categorical cross-entropy: fails on integer labels,
    right on one-hot ones), or 'other'.
    """
    rng = np.random.default_rng(11)
    labels = np.arange(N_PROBE) % n_classes
    scores = rng.normal(scale=2.0, size=(N_PROBE, n_classes)).astype(np.float32)
    probs = _softmax(scores.astype(np.float64)).astype(np.float32)
    as_probs, as_logits = (
        _cross_entropy(probs, labels),
        _cross_entropy(_softmax(probs.astype(np.float64)), labels),
    )

    def matches(value: float) -> str | None:
        if math.isclose(value, as_probs, rel_tol=1e-3):
            return "probabilities"
        if math.isclose(value, as_logits, rel_tol=1e-3):
            return "logits"
        return None

    with _quiet():
        try:
            kind = matches(_configured_loss(model, labels.astype(np.int64), probs))
        except Exception:
            kind = None
            try:
                one_hot = np.eye(n_classes, dtype=np.float32)[labels]
                found = matches(_configured_loss(model, one_hot, probs))
            except Exception:
                found = None
            if found:
                return f"one-hot {found}"
    return kind or "other"


def _check_model(build_model: Callable) -> None:
    n_in, n_out = N_INPUTS_PROBE, N_CLASSES_PROBE
    model = call(build_model, n_in, n_out)
    if isinstance(model, tuple | list) and any(_is_model(m) for m in model):
        raise Mismatch(
            "what build_model() returns",
            expected="one Keras model",
            got=f"a {type(model).__name__} of {len(model)} things",
            hint="Return only the model: `return model`.",
        )
    if not _is_model(model):
        raise Mismatch(
            "what build_model() returns",
            expected="a Keras model",
            got=type(model).__name__,
            hint="End build_model with `return model` (a keras.Sequential, a functional keras.Model or a subclass).",
        )
    if not getattr(model, "compiled", False) or getattr(model, "_compile_loss", None) is None:
        raise Mismatch(
            "the model's training configuration",
            expected="a compiled model (optimizer, loss, metrics)",
            got="a model that was not compiled with a loss",
            hint="Call `model.compile(optimizer=..., loss=..., metrics=['accuracy'])` before returning it.",
        )
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, size=(N_PROBE, n_in)).astype(np.float32)
    try:
        with _quiet():
            outputs = call(model, x, training=False)
    except LearnerError as error:
        if error.where:  # the learner's own code (a subclassed model's call) raised: name their line
            raise
        raise Mismatch(
            f"the model's input: it does not accept a batch of shape {x.shape}",
            expected=f"build_model({n_in}, {n_out}) to accept {n_in} numbers per example",
            got=str(error)[:200],
            hint="Use the argument: `keras.Input(shape=(n_inputs,))`. Don't write the lab's 64 or 784, and "
            "don't give the input the images' 2-D shape: Q1 already flattened them.",
        ) from None
    raw_out = _numpy(outputs)
    out = raw_out.astype(np.float64)
    if out.shape != (N_PROBE, n_out):
        if out.ndim == 2 and out.shape[1] == 10:
            hint = "Your last layer has 10 units whatever n_classes is: use `keras.layers.Dense(n_classes, ...)`."
        elif out.ndim == 2 and out.shape[1] == 1:
            hint = (
                "One output unit is for a yes/no question. One of K classes needs K outputs, one score per "
                "class: `Dense(n_classes, activation='softmax')`."
            )
        elif out.ndim == 2:
            hint = "The last layer needs one unit per class: `Dense(n_classes, ...)`."
        else:
            hint = "The output should be 2-D, (batch, n_classes). Did you flatten the input (Q1) and end in a Dense layer?"
        raise Mismatch(
            f"the shape of the model's output for a batch of {N_PROBE}",
            expected=(N_PROBE, n_out),
            got=out.shape,
            hint=hint,
        )
    if not np.all(np.isfinite(out)):
        raise Mismatch("the model's outputs", expected="finite numbers", got="NaN or inf")
    # A softmax computed in float16 or bfloat16 (mixed precision) sums to 1 only to that precision.
    tol = _precision(raw_out)
    sums_to_one = bool(np.all(out >= -1e-6) and np.allclose(out.sum(axis=1), 1.0, atol=tol))
    in_unit_interval = bool(np.all((out >= 0) & (out <= 1)))
    loss = _loss_kind(model, n_out)

    if not sums_to_one and in_unit_interval and np.any(np.abs(out.sum(axis=1) - 1) > 1e-3):
        raise Mismatch(
            "the output activation",
            expected="probabilities that sum to 1 over the classes (softmax), or raw logits",
            got=f"outputs between 0 and 1 whose sums per example range from {out.sum(axis=1).min():.2f} "
            f"to {out.sum(axis=1).max():.2f}",
            hint="A sigmoid scores each class on its own, as if an image could be several digits at once. "
            "For one class out of K use `activation='softmax'` on the last layer.",
        )
    if loss.startswith("one-hot"):
        raise Mismatch(
            "the loss, for integer labels",
            expected="sparse categorical cross-entropy (labels are integers 0 … K−1)",
            got="categorical cross-entropy, which needs one-hot labels",
            hint="Your labels are integers like 3, not one-hot rows like [0, 0, 0, 1, 0, …]. Use "
            "`loss='sparse_categorical_crossentropy'` (or keras.losses.SparseCategoricalCrossentropy).",
        )
    if loss == "other":
        raise Mismatch(
            "the loss",
            expected="the cross-entropy for integer labels",
            got=f"{model.loss!r}, which computes something else on integer labels",
            hint="For one class out of K with integer labels use keras.losses.SparseCategoricalCrossentropy "
            "(mean squared error or binary cross-entropy are for other problems).",
        )
    if sums_to_one and loss == "logits":
        raise Mismatch(
            "the loss's `from_logits`",
            expected="from_logits=False, because your model already ends in a softmax",
            got="from_logits=True: the loss applies a second softmax to your probabilities",
            hint="Either keep the softmax and drop `from_logits=True`, or remove the softmax (outputs = logits) "
            "and keep `from_logits=True`. Softmax twice squashes the outputs and training crawls.",
        )
    if not sums_to_one and loss == "probabilities":
        raise Mismatch(
            "the loss's `from_logits`",
            expected="from_logits=True, because your last layer has no softmax (it outputs logits)",
            got="from_logits=False: the loss reads your logits as if they were probabilities",
            hint="Either add `activation='softmax'` to the last layer, or pass "
            "`keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.",
        )

    # The accuracy metric: half the probe labels agree with the model's argmax, so accuracy is 0.5.
    # Only rows whose best score leads the runner-up by more than the outputs' precision are used:
    # evaluate runs a compiled graph, which under mixed precision may round differently from the
    # call above, and must still find the same arg-max.
    top_two = np.sort(out, axis=1)[:, -2:]
    clear = np.flatnonzero(top_two[:, 1] - top_two[:, 0] > tol * (1 + np.abs(top_two[:, 1])))
    rows = clear[: len(clear) // 2 * 2] if len(clear) >= 4 else np.arange(N_PROBE)
    predicted = np.argmax(out[rows], axis=1)
    labels = np.where(np.arange(len(rows)) % 2 == 0, predicted, (predicted + 1) % n_out).astype(np.int64)
    with _quiet():
        try:
            scores = call(model.evaluate, x[rows], labels, verbose=0, return_dict=True)
        except LearnerError as error:
            raise Mismatch(
                "model.evaluate on integer labels (the loss works, so one of the metrics fails)",
                expected="a loss and an accuracy",
                got=str(error).splitlines()[0][:160],
                hint="keras.metrics.Accuracy() checks whether the raw outputs *equal* the labels, and "
                "CategoricalAccuracy expects one-hot labels. With integer labels use `metrics=['accuracy']` "
                "or keras.metrics.SparseCategoricalAccuracy().",
            ) from None
    accuracies = {k: float(_numpy(v)) for k, v in scores.items() if "acc" in k.lower()}
    if not accuracies:
        raise Mismatch(
            "the metrics the model reports",
            expected="an accuracy",
            got=", ".join(scores) or "nothing",
            hint="Pass `metrics=['accuracy']` to compile, so that fit and evaluate report it.",
        )
    if not any(math.isclose(v, 0.5, abs_tol=1e-6) for v in accuracies.values()):
        raise Mismatch(
            "the accuracy the model reports on a probe where exactly half the answers are right",
            expected=0.5,
            got=", ".join(f"{k} = {v:.3f}" for k, v in accuracies.items()),
            hint="keras.metrics.Accuracy() checks whether the raw outputs *equal* the labels; use "
            "`metrics=['accuracy']` or keras.metrics.SparseCategoricalAccuracy(), which compare the "
            "arg-max with the integer label.",
        )


q2 = Exercise(
    "Q2 · build and compile the model",
    _check_model,
    hint="keras.Sequential([keras.Input(shape=(n_inputs,)), keras.layers.Dense(128, activation='relu'), "
    "keras.layers.Dense(n_classes, activation='softmax')]), then compile with optimizer='adam', "
    "loss='sparse_categorical_crossentropy', metrics=['accuracy'].",
    lab="lab03",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: training
# ---------------------------------------------------------------------------------------------


def _logs(result: Any) -> dict[str, list[float]] | None:
    """The per-epoch logs of a History (or of its ``.history`` dict); None if it is neither."""
    if hasattr(result, "history") and isinstance(result.history, dict):
        result = result.history
    if isinstance(result, dict) and "loss" in result:
        try:
            return {str(k): [float(v) for v in vals] for k, vals in result.items()}
        except (TypeError, ValueError):
            return None
    return None


def _weights(model: Any) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _check_train(train: Callable) -> None:
    data = _data()
    x_tr, x_va, x_te = (reference_prepare(a) for a in (data.x_train, data.x_val, data.x_test))
    y_tr, y_va, y_te = data.y_train, data.y_val, data.y_test
    model = reference_model(x_tr.shape[1], len(data.class_names))
    before = _weights(model)
    with _quiet():
        result = call(train, model, x_tr, y_tr, x_va, y_va)
    if _is_model(result):
        raise Mismatch(
            "what train() returns",
            expected="the History that model.fit returns",
            got="a Keras model",
            hint="`history = model.fit(...)`, then `return history`. (The model is trained in place; you "
            "don't need to return it.)",
        )
    logs = _logs(result)
    if logs is None:
        raise Mismatch(
            "what train() returns",
            expected="the History that model.fit returns",
            got=type(result).__name__,
            hint="`history = model.fit(...)`, then `return history`.",
        )
    after = _weights(model)
    if all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)):
        raise Mismatch(
            "the model you were given",
            expected="trained (its weights changed)",
            got="untouched",
            hint="Call fit on the `model` argument. Building a new model inside train() leaves the caller's "
            "model untrained.",
        )
    epochs = len(logs["loss"])
    if not all(np.isfinite(logs["loss"])):
        raise Mismatch(
            "the training loss",
            expected="finite numbers",
            got="NaN or inf",
            hint="The training diverged: a learning rate that is far too large, or inputs that are not scaled.",
        )
    if "val_loss" not in logs:
        raise Mismatch(
            "the validation curves in the History",
            expected="val_loss and val_accuracy, one per epoch",
            got=f"only {', '.join(logs)}",
            hint="Pass `validation_data=(x_val, y_val)` to fit. Without it you only see the training loss, "
            "which keeps falling even when the model has started to over-fit.",
        )
    with _quiet():
        val_now = _cross_entropy(_numpy(model.predict(x_va, verbose=0, batch_size=1024)), y_va)
        train_now = _cross_entropy(_numpy(model.predict(x_tr, verbose=0, batch_size=1024)), y_tr)
    last_val = logs["val_loss"][-1]
    if math.isclose(last_val, train_now, rel_tol=1e-3, abs_tol=1e-5) and not math.isclose(
        last_val, val_now, rel_tol=1e-3, abs_tol=1e-5
    ):
        raise Mismatch(
            "the validation data",
            expected="the validation set (x_val, y_val)",
            got="the training set: the last val_loss equals the loss on x_train",
            hint="`validation_data=(x_val, y_val)`. Validating on the data you train on cannot show over-fitting.",
        )
    with _quiet():
        accuracy = _accuracy(model, x_te, y_te)
    goal = target(data)
    if accuracy < goal:
        if epochs < FEW_EPOCHS:
            hint = (
                f"You trained for {epochs} epoch{'s' if epochs != 1 else ''}: that is too few to get there. "
                "Raise `epochs` (20 to 30 is plenty here) and watch val_accuracy level off."
            )
        else:
            hint = (
                "Look at the curves: if the training loss is still falling, train longer or with a larger "
                "learning rate (Adam's default 1e-3 works); if it is flat and high, the learning rate may be "
                "too small or too large."
            )
        raise Mismatch(
            "the accuracy on held-out test images after your training",
            expected=f"at least {goal:.0%}",
            got=f"{accuracy:.1%} after {epochs} epochs",
            hint=hint,
        )


q3 = Exercise(
    "Q3 · train to the target",
    _check_train,
    hint="history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=20, batch_size=32, "
    "verbose=0); return history.",
    lab="lab03",
    solution_id="q3",
)


# ---------------------------------------------------------------------------------------------
# q4: accuracy on the test set
# ---------------------------------------------------------------------------------------------

_PROBE_MODEL: dict[int, Any] = {}


def _probe_model(data: LabData) -> Any:
    """A compiled Keras classifier fitted in closed form (least squares on one-hot labels) on the
    training images only, so its accuracy differs between the training, validation and test sets.
    Cached per data set: it costs one least-squares solve."""
    import keras

    key = id(data)
    if key not in _PROBE_MODEL:
        x = reference_prepare(data.x_train).astype(np.float64)
        k = len(data.class_names)
        design = np.hstack([x, np.ones((len(x), 1))])
        ridge = 1e-1 * np.eye(design.shape[1])
        coef = np.linalg.solve(design.T @ design + ridge, design.T @ np.eye(k)[data.y_train])
        model = keras.Sequential(  # float32 under any policy: its accuracies must not tie or drift
            [keras.Input(shape=(x.shape[1],)), keras.layers.Dense(k, activation="softmax", dtype="float32")]
        )
        model.layers[0].set_weights([4 * coef[:-1].astype(np.float32), 4 * coef[-1].astype(np.float32)])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        _PROBE_MODEL.clear()
        _PROBE_MODEL[key] = model
    return _PROBE_MODEL[key]


def _check_test_accuracy(test_accuracy: Callable) -> None:
    data = _data()
    model = _probe_model(data)
    with _quiet():
        got = call(test_accuracy, model, data)
        acc = {
            name: _accuracy(model, reference_prepare(x), y)
            for name, x, y in (
                ("test", data.x_test, data.y_test),
                ("training", data.x_train, data.y_train),
                ("validation", data.x_val, data.y_val),
            )
        }
        test_loss = _cross_entropy(
            _numpy(model.predict(reference_prepare(data.x_test), verbose=0, batch_size=1024)), data.y_test
        )
    expected = acc["test"]
    if isinstance(got, list | tuple | np.ndarray) and np.size(got) == 2:
        raise Mismatch(
            "what test_accuracy() returns",
            expected=f"one number, the accuracy ({expected:.4f})",
            got=f"two numbers: {np.round(np.asarray(got, dtype=float), 4).tolist()}",
            hint="model.evaluate returns [loss, accuracy] when the model has one metric: return the second, "
            "`model.evaluate(x, y, verbose=0)[1]`.",
        )
    if isinstance(got, dict):
        raise Mismatch(
            "what test_accuracy() returns",
            expected="one number",
            got=f"a dict with keys {sorted(got)}",
            hint="Return the number: `scores['accuracy']`.",
        )
    try:
        value = float(np.asarray(_numpy(got), dtype=np.float64).reshape(()))
    except Exception:
        raise Mismatch(
            "what test_accuracy() returns", expected="one number", got=type(got).__name__
        ) from None

    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)

    if close(value, expected):
        return
    if close(value, acc["training"]):
        raise Mismatch(
            "the accuracy on the test set",
            expected=f"{expected:.4f}",
            got=f"{value:.4f}, the accuracy on the training set",
            hint="You evaluated on the images the model was trained on: that measures memory, not "
            "generalisation. Use data.x_test and data.y_test.",
        )
    if close(value, acc["validation"]):
        raise Mismatch(
            "the accuracy on the test set",
            expected=f"{expected:.4f}",
            got=f"{value:.4f}, the accuracy on the validation set",
            hint="The validation set guided your choices (epochs, early stopping), so it flatters the model. "
            "Report the test set: data.x_test and data.y_test.",
        )
    if close(value, 100 * expected):
        raise Mismatch(
            "the accuracy on the test set",
            expected=f"a fraction, {expected:.4f}",
            got=f"a percentage, {value:g}",
            hint="Return a fraction between 0 and 1, as Keras reports it.",
        )
    if math.isclose(value, test_loss, rel_tol=1e-3):
        raise Mismatch(
            "the accuracy on the test set",
            expected=f"{expected:.4f}",
            got=f"{value:.4f}, the test loss",
            hint="model.evaluate returns [loss, accuracy]: the accuracy is the second entry, [1].",
        )
    with _quiet():
        raw = data.x_test.reshape(len(data.x_test), -1).astype(np.float32)
        unscaled = _accuracy(model, raw, data.y_test)
    if close(value, unscaled) and not close(unscaled, expected):
        raise Mismatch(
            "the accuracy on the test set",
            expected=f"{expected:.4f}",
            got=f"{value:.4f}, the accuracy on unscaled test images",
            hint="Prepare the test images exactly like the training images: `prepare(data.x_test)`.",
        )
    expect_close(
        value,
        expected,
        what="the accuracy on the test set",
        rtol=1e-5,
        hint="Prepare data.x_test with your prepare() (check Q1 first), then "
        "`model.evaluate(x, data.y_test, verbose=0)[1]`.",
    )


q4 = Exercise(
    "Q4 · measure on the test set",
    _check_test_accuracy,
    hint="`model.evaluate(prepare(data.x_test), data.y_test, verbose=0)[1]`: the test images, prepared like "
    "the training images, and the accuracy (not the loss).",
    lab="lab03",
    solution_id="q4",
)


# ---------------------------------------------------------------------------------------------
# q5: everything together
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    """The result of :func:`run_all`: the History's logs, the test accuracy and the target."""

    logs: dict[str, list[float]]
    test_accuracy: float
    target: float
    dataset: str

    def figure(self) -> Any:
        """The training curves, with the test accuracy and the target in the title."""
        from utils import viz

        metrics = [m for m in ("loss", "accuracy") if m in self.logs]
        verdict = "reached" if self.test_accuracy >= self.target else "not reached yet"
        title = (
            f"Your classifier on {self.dataset}: test accuracy {self.test_accuracy:.1%} "
            f"(target {self.target:.0%}, {verdict})"
        )
        return viz.training_curves(self.logs, metrics or None, title=title)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.figure())


def run_all(
    prepare: Callable, build_model: Callable, train: Callable, test_accuracy: Callable, data: LabData
) -> Run | Feedback:
    """Run the learner's four functions on the lab's data; return a :class:`Run`, or feedback
    ("not done yet", or the error) if one of them is not finished."""
    title = "Your classifier"
    try:
        x_tr, x_va = call(prepare, data.x_train), call(prepare, data.x_val)
        model = call(build_model, int(np.prod(np.shape(x_tr)[1:])), len(data.class_names))
        with _quiet():
            logs = _logs(call(train, model, x_tr, data.y_train, x_va, data.y_val))
            accuracy = call(test_accuracy, model, data)
    except NotDone:
        return Feedback("not_done", title, "finish Q1 to Q4 first, then run this cell again.")
    except (LearnerError, Mismatch) as error:
        return Feedback("error", title, f"your code raised {error}.", hint="Get Q1 to Q4 to pass first.")
    if logs is None:
        return Feedback("error", title, "train() did not return the History.", hint="Check Q3 first.")
    try:
        value = float(np.asarray(_numpy(accuracy), dtype=np.float64).reshape(()))
    except Exception:
        return Feedback("error", title, "test_accuracy() did not return one number.", hint="Check Q4 first.")
    return Run(logs, value, target(data), data.name)


def _check_run(run: Any) -> None:
    if isinstance(run, Feedback) or run is None or run is Ellipsis:
        raise NotDone
    if not isinstance(run, Run):
        raise Mismatch("the answer", expected="what ex.run_all(...) returns", got=type(run).__name__)
    if "val_loss" not in run.logs:
        raise Mismatch(
            "the validation curves",
            expected="val_loss in the History",
            got="none",
            hint="Pass validation_data to fit (Q3).",
        )
    if run.test_accuracy < run.target:
        raise Mismatch(
            "the test accuracy of your own model",
            expected=f"at least {run.target:.0%}",
            got=f"{run.test_accuracy:.1%} after {len(run.logs['loss'])} epochs",
            hint="Your Q3 passed with the course's model, so look at your model (Q2): enough hidden units "
            "(64 or more), a ReLU hidden layer, and a learning rate that is not too small.",
        )


q5 = Exercise(
    "Q5 · your whole pipeline reaches the target",
    _check_run,
    hint="Run the cell above once Q1 to Q4 pass; if the target is not reached, widen the hidden layer or "
    "train a few more epochs.",
    lab="lab03",
    not_done="not done yet. Finish Q1 to Q4, run the cell above, then run this cell again.",
)
