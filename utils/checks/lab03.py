"""Checks for Lab 03 (train a classifier): a Keras digit classifier built from a description.

* ``q1`` ``count_parameters(n_inputs, hidden, n_classes)`` of the described network (mistakes: a
  bias or Dropout counted, BatchNormalization as 2 or 0 per unit, the lesson's formula, no output bias);
* ``q2`` ``build_model(n_inputs, n_classes, hidden)``: that network, ending in logits, compiled for integer
  labels (its structure, a softmax at the end, ``from_logits`` missing, the categorical loss, no accuracy);
* ``q3`` ``HalveOnPlateau``, a callback (patience ignored or off by one, no reset, the last epoch compared
  instead of the best, the training loss watched, the rate set to the factor);
* ``q4`` the whole pipeline (:func:`run_all`) reaches :func:`target` (no validation, too few epochs, untrained).
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Any

import numpy as np

from utils import checks
from utils.checks import Exercise, Feedback, Mistake, NotDone, answer_tolerance, as_array, call, expect, judge

TARGETS = {"digits": 0.92, "mnist": 0.95}  # test accuracy to reach, per data set


# The lab's images: uint8 x_* of shape (n, height, width), integer labels y_* 0-9.
LabData = namedtuple("LabData", "name x_train y_train x_val y_val x_test y_test class_names description")

_DATA: LabData | None = None


def load_data(cfg: Any = None) -> LabData:
    """MNIST if cached or downloadable, else the 8×8 digits; the last sixth of training validates."""
    global _DATA
    from utils import data as datasets
    from utils.env import PROFILES, choose_profile

    limit = PROFILES[choose_profile()]["max_samples"]
    cap = cfg.limit if cfg is not None else (lambda n: n if limit is None else min(n, limit))
    images = datasets.load_images("mnist")
    pool = len(images.x_train)
    n_val = min(pool // 6, cap(pool) // 4)
    n_train, n_test = cap(pool - n_val), cap(len(images.x_test))
    _DATA = LabData(images.name, images.x_train[:n_train], images.y_train[:n_train], images.x_train[pool - n_val :],
                    images.y_train[pool - n_val :], images.x_test[:n_test], images.y_test[:n_test],
                    images.class_names, images.description)  # fmt: skip
    return _DATA


def target(data: LabData | None = None) -> float:
    """The test accuracy the lab asks for on ``data`` (default: the lab's data)."""
    return TARGETS.get((data or _DATA or load_data()).name, TARGETS["mnist"])


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, h, w) as float32 rows in [0, 1] (lesson 03's preparation)."""
    return (np.asarray(images).reshape(len(images), -1) / 255.0).astype(np.float32)


# q1: the parameter count of the described network
PROBES = [(20, 16, 7), (784, 128, 10), (64, 32, 10)]


def reference_count(n_in: int, h: int, k: int) -> int:
    """Dense(h, no bias): n_in·h; BatchNormalization: 4 per unit (γ, β, moving mean and variance);
    ReLU and Dropout: none; Dense(k): (h + 1)·k."""
    return n_in * h + 4 * h + (h + 1) * k


def _counts(fn, extra=lambda n, h, k: 0) -> np.ndarray:
    return np.array([fn(*p) + extra(*p) for p in PROBES], dtype=float)


Q1_MISTAKES = [
    Mistake("hidden too many", "One number per hidden unit too many: the first Dense layer has no bias, and "
            "Dropout stores nothing.", lambda: _counts(reference_count, lambda n, h, k: h)),
    Mistake("BatchNormalization as 2 per unit", "You counted γ and β. BatchNormalization also keeps a moving mean "
            "and variance per unit: not trained, but they are weights and count_params() includes them.",
            lambda: _counts(reference_count, lambda n, h, k: -2 * h)),
    Mistake("BatchNormalization as 0", "BatchNormalization is not an activation: it has weights of its own, per unit.",
            lambda: _counts(reference_count, lambda n, h, k: -4 * h)),
    Mistake("the lesson's formula", "That is (n_in + 1)·h + (h + 1)·k, the lesson's plain stack; this network "
            "differs in its first layer and has one more layer with weights.", lambda: _counts(lambda n, h, k: (n + 1) * h + (h + 1) * k)),
    Mistake("no output bias", "The output layer keeps its bias: one per class.",
            lambda: _counts(reference_count, lambda n, h, k: -k)),
]  # fmt: skip


def _check_count(fn: Any) -> None:
    got = np.array([checks.as_int(call(fn, *p), f"count_parameters{p}") for p in PROBES], float)
    what = "the counts for (n_inputs, hidden, n_classes) = " + ", ".join(map(str, PROBES))
    judge(got, _counts(reference_count), Q1_MISTAKES, what=what, tol={"rtol": 0.0, "atol": 0.5})


q1 = Exercise(
    "Q1 · count the parameters",
    _check_count,
    hint=(
        "Go layer by layer and ask of each: which numbers does it store? Layers without weights add nothing.",
        "The first Dense stores only n_inputs·hidden numbers; BatchNormalization stores four per unit (two "
        "trained, two running statistics); the output Dense stores hidden·n_classes plus a bias per class.",
    ),
)

# q2: build the described network
Q2_MISTAKES = [
    Mistake("softmax at the end", "Your model outputs probabilities (each row sums to 1); the description asks for "
            "logits: no activation on the last layer."),
    Mistake("from_logits missing", "The loss reads your logits as probabilities: tell it that it receives logits."),
    Mistake("categorical loss", "Your loss expects one-hot rows, but the labels are integers: use the sparse cross-entropy."),
    Mistake("another loss", "One class out of K with integer labels calls for the sparse categorical cross-entropy."),
    Mistake("no accuracy", "Ask compile for an accuracy metric that compares the arg-max with an integer label."),
    Mistake("not compiled", "Compile the model (optimizer, loss, metrics) before returning it."),
    Mistake("wrong output shape", "The last layer needs one unit per class, n_classes; use the arguments, not 10."),
]  # fmt: skip
_HINT = {m.name: m.hint for m in Q2_MISTAKES}
LOSS = {"probabilities": "from_logits missing", "one-hot": "categorical loss"}  # what the loss reads
STRUCTURE = [
    Mistake("a bias on the first layer", "Your first Dense layer has a bias; the description's has none "
            "(BatchNormalization's β plays its part).", lambda n, h, k: reference_count(n, h, k) + h),
    Mistake("no BatchNormalization", "Your model has 4·hidden weights too few: where is the BatchNormalization?",
            lambda n, h, k: reference_count(n, h, k) - 4 * h),
]  # fmt: skip


def _loss_reads(model: Any, k: int) -> str:
    """What the compiled loss takes (by what it computes): 'logits', 'probabilities', 'one-hot' or 'other'."""
    import keras

    labels = np.arange(24) % k
    probs = checks.softmax(np.random.default_rng(11).normal(scale=2.0, size=(24, k)))
    expected = {name: -np.mean(np.log(p[np.arange(24), labels])) for name, p in
                (("probabilities", probs), ("logits", checks.softmax(probs)))}  # fmt: skip

    def value(y: np.ndarray) -> float:
        try:
            return float(np.asarray(model.compute_loss(y=keras.ops.convert_to_tensor(y), y_pred=probs32)))
        except Exception:
            return np.nan

    probs32 = probs.astype("float32")
    plain, one_hot = value(labels), value(np.eye(k)[labels])
    found = [name for name, v in expected.items() if np.isclose(plain, v, rtol=1e-3)]
    found += ["one-hot"] if np.isclose(one_hot, list(expected.values()), rtol=1e-3).any() else []
    return (found + ["other"])[0]


def _check_model(fn: Any) -> None:
    import keras

    n_in, k, h = 20, 7, 16
    model = call(fn, n_in, k, h)
    expect(
        isinstance(model, keras.Model), "what build_model() returns", "a Keras model", type(model).__name__
    )
    compiled = getattr(model, "compiled", False) and getattr(model, "_compile_loss", None) is not None
    expect(compiled, "the model", "compiled", "not compiled", _HINT["not compiled"])
    x = np.random.default_rng(5).uniform(0, 1, size=(24, n_in)).astype("float32")
    raw = np.asarray(call(model, x, training=False))
    out = as_array(raw, "the model's outputs", shape=(24, k), hint=_HINT["wrong output shape"])
    what = f"count_params() of build_model({n_in}, {k}, hidden={h})"
    count, ref = float(model.count_params()), float(reference_count(n_in, h, k))
    judge(count, ref, STRUCTURE, what=what, inputs=(n_in, h, k), tol={"rtol": 0.0, "atol": 0.5})
    tol = answer_tolerance(raw, rtol=1e-3, atol=1e-3)
    sums_to_one = np.all(out >= 0) and np.allclose(out.sum(axis=1), 1, atol=tol["atol"])
    expect(not sums_to_one, "the model's outputs", "logits", "probabilities", _HINT["softmax at the end"])
    reads = _loss_reads(model, k)
    hint = _HINT[LOSS.get(reads, "another loss")]
    expect(reads == "logits", "the loss", "sparse cross-entropy on logits", reads, hint)
    top = np.sort(out, axis=1)[:, -2:]  # rows whose arg-max a half-precision graph cannot flip
    rows = np.flatnonzero(top[:, 1] - top[:, 0] > 4 * tol["atol"] * (1 + np.abs(top[:, 1])))
    rows = rows[: len(rows) // 2 * 2] if len(rows) >= 4 else np.arange(24)
    predicted = out[rows].argmax(axis=1)
    labels = np.where(np.arange(len(rows)) % 2 == 0, predicted, (predicted + 1) % k)  # accuracy 0.5
    scores = call(model.evaluate, x[rows], labels, verbose=0, return_dict=True)
    accuracies = [round(float(np.asarray(v)), 4) for key, v in scores.items() if "acc" in key]
    expect(0.5 in accuracies, "the accuracy, half right", 0.5, accuracies or "none", _HINT["no accuracy"])


q2 = Exercise(
    "Q2 · build the described network",
    _check_model,
    hint=(
        "Build it layer by layer from the description, then let Q1's count check your layers: "
        "model.count_params() must equal it. Then ask what the last layer outputs, and tell the loss.",
        "The first Dense has use_bias=False and no activation; BatchNormalization, then the ReLU as its own "
        "Activation layer, then Dropout(0.2); the last Dense(n_classes) has no activation. The loss is the sparse "
        "categorical cross-entropy with from_logits=True, and the metric 'accuracy'.",
    ),
)

# q3: a callback that halves the learning rate on a plateau
VAL = [1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.86, 0.87, 0.88, 0.79, 0.9]  # the probe's val_loss per epoch
LR0, PATIENCE, FACTOR = 0.1, 2, 0.5


def _schedule(rule: str = "right") -> np.ndarray:
    """The learning rate after each epoch of VAL, by the right rule or a known mistake."""
    if rule == "train loss":
        return np.full(len(VAL), LR0)
    lr, best, last, wait, out = LR0, np.inf, np.inf, 0, []
    for v in VAL:
        better = v < (last if rule == "last" else best)
        best, last = min(best, v), v
        wait = 0 if better else wait + 1
        if (not better) if rule == "no patience" else wait >= PATIENCE + (rule == "off by one"):
            lr = FACTOR if rule == "set to factor" else lr * FACTOR
            wait = wait if rule == "no reset" else 0
        out.append(lr)
    return np.array(out)


Q3_MISTAKES = [Mistake(name, hint, lambda name=name: _schedule(name)) for name, hint in [
    ("no patience", "You halve after every epoch that is not better: wait for `patience` of them in a row."),
    ("off by one", "You wait one epoch too many: halve as soon as `patience` epochs have passed without improvement."),
    ("no reset", "After halving, the count of waiting epochs must start again from zero."),
    ("last", "You compare with the last epoch; compare with the best val_loss so far."),
    ("train loss", "The rate never changed: are you watching 'val_loss' in logs? The training loss keeps falling."),
    ("set to factor", "You set the rate to the factor itself; multiply the current rate by it."),
]]  # fmt: skip


def _check_callback(cls: Any) -> None:
    import keras

    callback = call(cls, patience=PATIENCE, factor=FACTOR)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(LR0), loss="mse")
    callback.set_model(model)
    call(callback.on_train_begin, {})
    rates = []
    for epoch, v in enumerate(VAL):
        call(callback.on_epoch_end, epoch, {"loss": 1.0 - 0.05 * epoch, "val_loss": v})
        rates.append(float(np.asarray(model.optimizer.learning_rate)))
    what = f"the learning rate after each epoch, val_loss = {VAL}"
    judge(np.array(rates), _schedule(), Q3_MISTAKES, what=what, tol={"rtol": 1e-5, "atol": 1e-9})


q3 = Exercise(
    "Q3 · halve the learning rate on a plateau",
    _check_callback,
    hint=(
        "Keep two numbers between epochs: the best val_loss so far and how many epochs have passed without "
        "beating it. Each epoch_end updates them and decides whether to act.",
        "At the start: best = infinity, wait = 0. Each epoch: a lower val_loss becomes the best and wait goes "
        "back to 0; otherwise wait grows, and when it reaches patience the optimizer's learning_rate is "
        "multiplied by factor (assign it) and wait starts again at 0.",
    ),
)

# q4: the whole pipeline
Q4_MISTAKES = {m.name: m for m in [
    Mistake("no validation", "Pass the validation set to fit: your callback watches val_loss, which only exists then."),
    Mistake("few epochs", "That is too few epochs to get there; allow more (the callbacks can stop early)."),
    Mistake("short of the target", "If the training loss still falls, train longer; if it is flat and high, check "
            "the learning rate and that Q2 passes."),
    Mistake("untrained", "Call fit on the model you are given; a new model built inside train() leaves it untrained."),
]}  # fmt: skip


@dataclass
class Run:
    """The result of :func:`run_all`: the History's logs, the test accuracy and the target."""

    logs: dict[str, list[float]]
    test_accuracy: float
    target: float
    dataset: str
    trained: bool = True

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from utils import viz

        verdict = "reached" if self.test_accuracy >= self.target else "not reached yet"
        title = f"Your classifier on {self.dataset}: test accuracy {self.test_accuracy:.1%} (target {self.target:.0%}, {verdict})"
        metrics = [m for m in ("loss", "accuracy") if m in self.logs]
        display(viz.training_curves(self.logs, metrics, title=title))


def run_all(build_model: Any, train: Any, data: LabData) -> Run | Feedback:
    """Build the learner's model, train it with their ``train`` and measure it on the test images."""
    title = "Your classifier"
    try:
        model = call(build_model, int(np.prod(data.x_train.shape[1:])), len(data.class_names), 128)
        before = np.asarray(model.weights[0]).copy()
        history = call(train, model, prepare(data.x_train), data.y_train, prepare(data.x_val), data.y_val)
    except NotDone:
        return Feedback("not_done", title, "finish Q2 to Q4 first, then run this cell again.")
    except (checks.LearnerError, checks.Mismatch) as error:
        return Feedback("error", title, f"your code raised {error}.", hint="Get Q2 and Q3 to pass first.")
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or "loss" not in logs:
        return Feedback("error", title, "train() did not return the History that fit returns.")
    scores = np.asarray(model.predict(prepare(data.x_test), verbose=0, batch_size=1024))
    accuracy = float(np.mean(scores.argmax(axis=1) == data.y_test))
    trained = not np.array_equal(before, np.asarray(model.weights[0]))
    logs = {k: [float(v) for v in vals] for k, vals in logs.items()}
    return Run(logs, accuracy, target(data), data.name, trained)


def _check_run(run: Any) -> None:
    if run is None or run is Ellipsis or isinstance(run, Feedback):
        raise NotDone
    expect(isinstance(run, Run), "the answer", "what ex.run_all(...) returns", type(run).__name__)
    expect(run.trained, "the model given to train()", "trained", "untouched", Q4_MISTAKES["untrained"].hint)
    hint = Q4_MISTAKES["no validation"].hint
    expect("val_loss" in run.logs, "the History", "val_loss per epoch", sorted(run.logs), hint)
    epochs = len(run.logs["loss"])
    hint = Q4_MISTAKES["few epochs" if epochs < 10 else "short of the target"].hint
    got = f"{run.test_accuracy:.1%} after {epochs} epochs"
    expect(run.test_accuracy >= run.target, "the test accuracy", f"at least {run.target:.0%}", got, hint)


q4 = Exercise(
    "Q4 · your pipeline reaches the target",
    _check_run,
    hint=(
        "Your train() fits the model it is given, with the validation set, and with your callback in the list "
        "of callbacks; return what fit returns.",
        "Give fit validation_data, a few dozen epochs, and callbacks: your HalveOnPlateau and an EarlyStopping "
        "on val_loss that restores the best weights.",
    ),
    not_done="not done yet. Finish Q2 to Q4, run the cell above, then run this cell again.",
)
