"""Checks for Lab 05a (debugging a training run): six runs that fail; each fix is checked by training it.

q1 ``build_model``: output and loss agree; q2 ``prepare``: columns scaled with training statistics; q3 a
``learning_rate`` for SGD; q4 ``shuffle``; q5 ``DigitNet.call``: batch norm follows the training flag; q6
``split`` without copies across. Known mistakes: ``Q1_MISTAKES`` ... ``Q8_MISTAKES``. Each of q1–q6 trains a
small MLP for a few epochs (fixed seed, float32 logits) and measures it on rows this module keeps back,
with thresholds far from chance and below what a right fix reaches in any precision.

q7 ``he_conv_std``: He's std from a Conv2D or DepthwiseConv2D kernel's true fan-in; q8 ``distillation_loss``:
T² · KL(softmax(t/T) ‖ softmax(s/T)), its values and its gradient's size across T. Both train nothing.
"""

from __future__ import annotations

import functools

import numpy as np

from utils.checks import (
    Exercise,
    Mismatch,
    Mistake,
    answer_tolerance,
    as_array,
    as_number,
    call,
    distance,
    judge,
    keras_module,
    softmax,
)

EPOCHS = 6  # each check trains for a few epochs: seconds on a CPU
COLUMNS = ("income $", "age", "default rate", "year joined", "visits", "score", "rating", "balance $")
SCALE, OFFSET = [2e4, 12, 4e-3, 5, 300, 1, 0.5, 1500], [52e3, 41, 0.03, 2012, 900, 0, 3, 8000]


def _mistakes(**lines: str) -> dict[str, Mistake]:
    """``key="name | hint"`` → ``{key: Mistake(name, hint)}``: one line per known mistake."""
    return {key: Mistake(*text.split(" | ")) for key, text in lines.items()}


@functools.cache
def _sets() -> dict[str, tuple]:
    from sklearn.datasets import make_classification as make

    from utils.data import load_digits

    (x, y), (x_test, y_test) = load_digits()
    x, x_test, order = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1), np.argsort(y, kind="stable")
    three_plans = dict(n_classes=3, n_clusters_per_class=1, class_sep=1.5)
    a, b = make(1600, n_features=8, n_informative=5, n_redundant=1, random_state=3, **three_plans)
    s, t = make(1600, n_features=12, n_informative=6, flip_y=0.3, class_sep=1.2, random_state=7)
    a, s = (a * SCALE + OFFSET).astype("float32"), s.astype("float32")
    p0, p1 = (np.random.default_rng(seed).permutation(800) % 400 for seed in (0, 1))  # each row twice
    return {
        "digits": ((x[:1150], y[:1150]), (x[1150:], y[1150:])),
        "digits test": (x_test, y_test),  # the checks' own held-out rows: the learner never sees them
        "sorted digits": (x[order], y[order]),
        "accounts": ((a[:960], b[:960]), (a[960:1200], b[960:1200])),
        "accounts test": (a[1200:], b[1200:]),
        "exports": (s[p0], t[p0]),
        "exports to check": (s[400 + p1], t[400 + p1]),
        "fresh rows": (s[1200:], t[1200:]),
    }


def load(name: str) -> tuple:
    """The lab's data (offline): "digits", "accounts" ((x_train, y_train), (x_val, y_val)); "sorted digits",
    "exports" (survey rows merged from two exports of one database), "fresh rows" (new ones): (x, y)."""
    return _sets()[name]


def mlp(n_inputs: int, n_classes: int, hidden: int = 64):
    """A small seeded MLP ending in float32 logits."""
    keras = keras_module()
    keras.utils.set_random_seed(5)
    layers = [keras.Input((n_inputs,)), keras.layers.Dense(hidden, activation="relu")]
    return keras.Sequential([*layers, keras.layers.Dense(n_classes, dtype="float32")])


def fit(model, x, y, optimizer=None, epochs: int = EPOCHS, **kwargs) -> dict[str, list[float]]:
    """Compile ``model`` for logits with ``optimizer`` (unless None), fit it quietly, return its history."""
    if optimizer is not None:
        loss = keras_module().losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], steps_per_execution=8)
    return model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, **kwargs).history


def predict(model, x, batch: int = 100) -> np.ndarray:
    """The model's outputs in inference mode, in float64, ``batch`` rows at a time."""
    out = [np.asarray(model(x[i : i + batch], training=False), "float64") for i in range(0, len(x), batch)]
    return np.concatenate(out)


accuracy = lambda model, x, y: float(np.mean(predict(model, x).argmax(axis=1) == y))  # inference mode


def _arrays(value, n: int, what: str) -> tuple[np.ndarray, ...]:
    if not isinstance(value, tuple | list) or len(value) != n:
        raise Mismatch(what, expected=f"a tuple of {n} arrays", got=type(value).__name__)
    return tuple(as_array(v, what) for v in value)


def _learns(acc: float, floor: float, what: str, hint: str) -> None:
    if not acc >= floor:
        raise Mismatch(f"the held-out accuracy {what}", expected=f"≥ {floor}", got=f"{acc:.2f}", hint=hint)


def _steps(text: str) -> tuple[str, ...]:
    return tuple(text.split(" | "))


Q1_MISTAKES = _mistakes(
    logits="logits read as probabilities | The last layer has no activation, so its outputs are scores of any sign, yet the loss is told it receives probabilities. Make the two agree; either side can change.",
    rescued="a softmax the loss applies again | The model outputs probabilities and the loss is told they are logits. Keras spots the softmax tensor and quietly uses what went into it, so this run learns, but outputs computed any other way (a cast, a saved model) get a second softmax. Tell the loss what it really receives.",
    twice="a softmax of a softmax | The outputs are a softmax of numbers already between 0 and 1, so no class gets much more than 23 %, and the loss cannot fall below about 1.5. Keep one softmax, or none and tell the loss so.",
    sigmoid="sigmoid outputs | Each class gets its own sigmoid, so a row's outputs don't sum to 1: they aren't one distribution over the classes. Picking one class out of ten is a softmax's job (or logits, with the loss told so).",
)


def _check_model(build) -> None:
    keras = keras_module()
    keras.utils.set_random_seed(5)
    model = call(build, 64, 10)
    if not isinstance(model, keras.Model) or getattr(model, "optimizer", None) is None:
        raise Mismatch("build_model's result", expected="a compiled Keras model", got=type(model).__name__)
    ((x, y), _), (x_test, y_test) = _sets()["digits"], _sets()["digits test"]
    out = predict(model, x[:200])
    sums = out.sum(axis=1)
    probabilities = bool((out >= 0).all() and np.allclose(sums, 1, atol=2e-2))
    perfect = np.eye(10, dtype="float32")  # a perfect answer costs ~0 read as probabilities, 1.46 as logits
    reads_logits = float(model.compute_loss(x=None, y=np.arange(10), y_pred=perfect)) > 0.5
    if probabilities and reads_logits:
        Q1_MISTAKES["rescued"].fail(
            "the loss", expected="what the outputs are", got="from_logits=True on probabilities"
        )
    if not probabilities and not reads_logits:
        key = "sigmoid" if ((out >= 0) & (out <= 1)).all() else "logits"
        Q1_MISTAKES[key].fail(
            "the outputs", expected="logits or probabilities", got=f"rows summing to {sums[:3].round(2)}"
        )
    model.steps_per_execution = 8  # fewer Python round trips: the same training, faster
    fit(model, x, y, epochs=8)
    out = predict(model, x_test)
    if probabilities and out.max(axis=1).mean() < 0.3:
        Q1_MISTAKES["twice"].fail(
            "the trained outputs",
            expected="a run that learns",
            got=f"top probability {out.max(axis=1).mean():.2f}",
        )
    acc = float(np.mean(out.argmax(axis=1) == y_test))
    _learns(acc, 0.8, "after 8 epochs", "Output and loss agree now: is the rest as in the broken run?")


Q1_HINTS = _steps(
    "Compare what the last layer outputs with what the loss is told it receives. | A Dense layer without an activation outputs logits. The cross-entropy has a switch for exactly that (lesson 03, section 4); or give the last layer the activation the loss's default expects."
)
q1 = Exercise("Q1 · output and loss", _check_model, hint=Q1_HINTS)


Q2_MISTAKES = _mistakes(
    unscaled="still in raw units | Incomes in tens of thousands next to rates of 0.03: scale every column.",
    one_scale="one scale for every column | Dividing everything by one number keeps the columns' ratios: incomes still dwarf rates. Each column needs its own centre and spread.",
    not_centred="not centred | Each column was divided by its spread but not shifted: the year joined is still about 400. Subtract each column's centre too.",
    own_stats="each set scaled with its own statistics | The other rows must be scaled with the numbers learned from the training rows, whatever rows arrive later (a single new row has no spread of its own).",
    all_rows="statistics of all rows | The training rows' scaling changes when the other rows change: their statistics leaked into it. Compute the statistics on the training rows only (lesson 02).",
)


def _check_prepare(prepare) -> None:
    ((x_train, y_train), _), (x_new, y_new) = _sets()["accounts"], _sets()["accounts test"]
    t1, o1 = _arrays(call(prepare, x_train, x_new), 2, "what prepare returns")
    t2, o2 = _arrays(call(prepare, x_train, np.concatenate([x_new[:50], x_new[50:] * 3 + 7])), 2, "prepare")
    if t1.shape != x_train.shape or o1.shape != x_new.shape:
        raise Mismatch("the shapes", expected=(x_train.shape, x_new.shape), got=(t1.shape, o1.shape))
    if not np.allclose(t1, t2, rtol=1e-4, atol=1e-4):
        Q2_MISTAKES["all_rows"].fail(
            "the scaled training rows", expected="a run that learns", got="they change with the other rows"
        )
    if not np.allclose(o1[:50], o2[:50], rtol=1e-4, atol=1e-4):
        Q2_MISTAKES["own_stats"].fail(
            "the scaled other rows", expected="a run that learns", got="each depends on the rows beside it"
        )
    spread, centre = t1.std(axis=0), np.abs(t1.mean(axis=0))
    if np.allclose(t1, x_train, rtol=1e-3):
        Q2_MISTAKES["unscaled"].fail(
            "the scaled training rows", expected="a run that learns", got="the raw values"
        )
    if spread.max() > 50 * max(spread.min(), 1e-12):
        Q2_MISTAKES["one_scale"].fail(
            "the columns' spreads",
            expected="a run that learns",
            got=f"{spread.min():.2g} to {spread.max():.2g}",
        )
    if centre.max() > 5 * max(spread.max(), 1e-12):
        Q2_MISTAKES["not_centred"].fail(
            "the columns' centres", expected="a run that learns", got=f"up to {centre.max():.3g}"
        )
    model = mlp(8, 3, 32)
    fit(model, t1, y_train, keras_module().optimizers.SGD(0.1))
    _learns(accuracy(model, o1, y_new), 0.75, "after SGD", "Each column: centre near 0, spread near 1?")


Q2_HINTS = _steps(
    "Look at the columns' ranges: what does one SGD step do to a weight that multiplies 50,000? | Give each column a centre near 0 and a spread near 1, with numbers computed on the training rows only and reused, unchanged, for the other rows (lesson 02's standardisation)."
)
q2 = Exercise("Q2 · scaling the inputs", _check_prepare, hint=Q2_HINTS)


Q3_MISTAKES = _mistakes(
    diverges="still diverges | The loss still grows, or turns into NaN: each step overshoots the minimum. Divide the rate by 10 and look at the curve again.",
    too_small="too small to learn in the budget | The loss falls, but so slowly that a few epochs are not enough. Multiply the rate by 3 or 10: the best rate is usually just below the one that diverges.",
    not_positive="not a positive number | A learning rate is a step size: a positive number (a negative one climbs the loss).",
)


def train_sgd(learning_rate: float, epochs: int = EPOCHS) -> tuple[dict[str, list[float]], float]:
    """Train the lab's MLP on the digits with plain SGD; return its history and held-out accuracy."""
    ((x, y), _), model = _sets()["digits"], mlp(64, 10)
    history = fit(model, x, y, keras_module().optimizers.SGD(learning_rate), epochs)
    return history, accuracy(model, *_sets()["digits test"])


def _check_learning_rate(value) -> None:
    rate = as_number(value, "the learning rate")
    if not rate > 0:
        Q3_MISTAKES["not_positive"].fail("the learning rate", expected="a positive number", got=repr(rate))
    history, acc = train_sgd(rate)
    loss = np.asarray(history["loss"])
    if not np.isfinite(loss).all() or loss[-1] >= loss[0] or loss.max() > 2.6:  # ln 10 = 2.30 at the start
        Q3_MISTAKES["diverges"].fail(
            "the training loss", expected="a run that learns", got=f"{loss.round(2)}"
        )
    if acc < 0.8:
        Q3_MISTAKES["too_small"].fail(
            "the held-out accuracy", expected="a run that learns", got=f"{acc:.2f}, loss {loss.round(2)}"
        )


Q3_HINTS = _steps(
    "Train a few rates a factor of 10 apart and compare their loss curves: which go up, which crawl? | Pick the largest rate whose loss falls steadily from the first epoch; one or two factors of 10 below the broken rate is a good place to start."
)
q3 = Exercise("Q3 · a learning rate that diverges", _check_learning_rate, hint=Q3_HINTS)


Q4_MISTAKES = _mistakes(
    images_only="only the images shuffled | The labels are still in their old order, so image i now sits next to another image's label. Move the labels with the same permutation.",
    two_perms="two different permutations | Images and labels were both shuffled, but each in its own random order, so the pairs are broken. Draw one permutation and apply it to both.",
    not_shuffled="not shuffled | The rows come back in their old order: sorted by label, validation_split keeps only the last digits for validation. Shuffle them (together).",
    lost_rows="rows lost or repeated | Some rows appear twice and others not at all: a shuffle is a permutation (every index once), not a draw with replacement.",
)


def _check_shuffle(shuffle) -> None:
    n = 300
    x_probe, y_probe = np.repeat(np.arange(n, dtype="float32")[:, None], 4, axis=1), np.arange(n) // 30
    x_out, y_out = _arrays(call(shuffle, x_probe, y_probe, 1), 2, "what shuffle returns")
    if x_out.shape != x_probe.shape or y_out.shape != y_probe.shape:
        raise Mismatch("the shapes", expected=(x_probe.shape, y_probe.shape), got=(x_out.shape, y_out.shape))
    ids = x_out[:, 0].round().astype(int)
    if sorted(ids) != list(range(n)):
        Q4_MISTAKES["lost_rows"].fail(
            "the rows", expected="a run that learns", got=f"{n - len(set(ids))} of {n} missing"
        )
    if (ids == np.arange(n)).all():
        Q4_MISTAKES["not_shuffled"].fail("the order", expected="a run that learns", got="unchanged")
    if not (y_out == y_probe[ids]).all():
        key = "images_only" if (y_out == y_probe).all() else "two_perms"
        Q4_MISTAKES[key].fail(
            "the label beside each image",
            expected="a run that learns",
            got=f"{np.mean(y_out != y_probe[ids]):.0%} wrong",
        )
    x, y = _arrays(call(shuffle, *_sets()["sorted digits"], 0), 2, "what shuffle returns")
    model = mlp(64, 10)
    history = fit(model, x, y, keras_module().optimizers.Adam(1e-3), validation_split=0.2)
    _learns(history["val_accuracy"][-1], 0.8, "(validation_split)", Q4_MISTAKES["two_perms"].hint)


Q4_HINTS = _steps(
    "Show a few shuffled images with their labels: do they still match? | Shuffling pairs means moving both arrays in the same random order: one permutation of the row indices, used to index the images and the labels."
)
q4 = Exercise("Q4 · labels out of step", _check_shuffle, hint=Q4_HINTS)


Q5_MISTAKES = _mistakes(
    train_mode="batch norm in training mode at inference | An image's prediction changes with the other images in its batch: at inference the batch norm layers still normalise with the batch's own statistics. Let them follow the training flag Keras passes to call.",
    never="batch norm never in training mode | Training and inference give the same outputs even on a fresh model: the layers never use the batch statistics, so fit neither normalises with them nor updates the moving averages. Pass the flag through rather than fixing it to one value.",
)


def batch_dependence(model, x, y) -> dict[str, float]:
    """Accuracy on the same images predicted in mixed batches, in batches of one class, one at a time."""
    order, by_class = np.argsort(y, kind="stable"), np.empty(len(y), int)
    by_class[order] = predict(model, x[order]).argmax(axis=1)
    right = {
        "mixed batches of 100": predict(model, x).argmax(axis=1) == y,
        "batches of one class": by_class == y,
    }
    right["one image at a time"] = predict(model, x[:60], batch=1).argmax(axis=1) == y[:60]
    return {name: float(np.mean(hits)) for name, hits in right.items()}


def _check_net(net_class) -> None:
    keras = keras_module()
    keras.utils.set_random_seed(5)
    model = call(net_class)
    (x, y), _ = _sets()["digits"]
    inference = np.asarray(call(model, x[:64], training=False), "float64")
    alone = np.asarray(call(model, x[:2], training=False), "float64")
    if not np.allclose(alone, inference[:2], rtol=0.05, atol=0.05):
        Q5_MISTAKES["train_mode"].fail(
            "an image's outputs", expected="the same", got="they change with its batch"
        )
    training = np.asarray(call(model, x[:64], training=True), "float64")
    if np.allclose(training, inference, rtol=0.05, atol=0.05):
        Q5_MISTAKES["never"].fail(
            "the outputs in training mode", expected="batch statistics", got="as in inference"
        )
    fit(model, x, y, keras.optimizers.Adam(1e-3))
    modes = batch_dependence(model, *_sets()["digits test"])
    if max(modes.values()) - min(modes.values()) > 0.05:
        Q5_MISTAKES["train_mode"].fail("the accuracy per batch make-up", expected="the same", got=str(modes))
    _learns(modes["mixed batches of 100"], 0.8, "after training", "Is every layer still called?")


Q5_HINTS = _steps(
    "Which mode does each batch norm layer run in when you predict? Lesson 05, section 4, shows both. | Keras passes call a `training` argument (True inside fit, False or None when you predict); the layers inside should receive that value, not a constant."
)
q5 = Exercise("Q5 · batch norm at inference", _check_net, hint=Q5_HINTS)


Q6_MISTAKES = _mistakes(
    copies="validation rows also in training | Some validation rows have an exact copy among the training rows, so the model is graded on answers it memorised. Each distinct row must land on one side only.",
    small="a validation set too small | Keep about a fifth of the distinct rows for validation, and the rest for training.",
    labels="labels out of step | Some rows come back with another row's label: select rows and labels with the same indices.",
)


def _check_split(split) -> None:
    (x_all, y_all), fresh = _sets()["exports to check"], _sets()["fresh rows"]
    x_train, y_train, x_val, y_val = _arrays(call(split, x_all, y_all, 2), 4, "what split returns")
    label_of = {row.astype("float64").tobytes(): label for row, label in zip(x_all, y_all, strict=True)}
    for rows, labels in ((x_train, y_train), (x_val, y_val)):
        keys = [r.tobytes() for r in rows.reshape(len(rows), -1)]
        if len(keys) != len(labels) or not all(k in label_of for k in keys):
            raise Mismatch("the rows", expected="rows of x, unchanged", got="other rows or shapes")
        if any(label_of[k] != label for k, label in zip(keys, labels, strict=True)):
            Q6_MISTAKES["labels"].fail(
                "the labels", expected="each row's own label", got="some belong to other rows"
            )
    seen = {r.tobytes() for r in x_train}
    if shared := sum(r.tobytes() in seen for r in x_val):
        Q6_MISTAKES["copies"].fail(
            "the validation rows", expected="none", got=f"{shared} of {len(x_val)} in training"
        )
    if len(x_val) < 40 or len(x_train) < 200:
        Q6_MISTAKES["small"].fail(
            "the sizes",
            expected="a run that learns",
            got=f"{len(x_train)} training, {len(x_val)} validation rows",
        )
    model = mlp(12, 2, 256)
    fit(model, x_train, y_train, keras_module().optimizers.Adam(1e-2), 15)
    val, held_out = accuracy(model, x_val, y_val), accuracy(model, *fresh)
    _learns(held_out, 0.6, "on fresh rows", Q6_MISTAKES["copies"].hint)
    if val - held_out > 0.2:
        Q6_MISTAKES["copies"].fail(
            "the validation score", expected="a run that learns", got=f"{val:.2f}, fresh rows {held_out:.2f}"
        )


Q6_HINTS = _steps(
    "A validation score far above the score on fresh rows means validation rows were seen in training: how many validation rows also appear among the training rows? | The rows were exported twice. Drop the repeated rows before you split (or split the distinct rows and keep every copy on its original's side)."
)
q6 = Exercise("Q6 · validation leaking into training", _check_split, hint=Q6_HINTS)


# ---------------------------------------------------------------------------------------------
# q7: He initialisation for a convolution; q8: a distillation loss (no training: NumPy references)
# ---------------------------------------------------------------------------------------------

CONV_SHAPES = ((3, 3, 16, 32), (5, 5, 3, 8), (1, 1, 64, 16), (3, 3, 32, 4))  # (kh, kw, in_ch, out_ch)
DEPTHWISE_SHAPES = ((3, 3, 32, 1), (5, 5, 8, 2), (7, 7, 4, 1))  # (kh, kw, in_ch, depth_multiplier)


def he_std(kernel_shape: tuple[int, ...], depthwise: bool = False) -> float:
    """He's standard deviation √(2 / fan_in) for a 2-D convolution's kernel (kh, kw, in_ch, out_ch).

    fan_in is the number of inputs one output sums: kh·kw·in_ch for Conv2D, but only kh·kw for
    DepthwiseConv2D (kernel (kh, kw, in_ch, depth_multiplier)), whose outputs each see one channel.
    """
    kh, kw, in_ch, _ = kernel_shape
    return float(np.sqrt(2.0 / (kh * kw * (1 if depthwise else in_ch))))


def _fans(shape: tuple[int, ...], depthwise: bool) -> tuple[int, int]:
    kh, kw, in_ch, out = shape
    return kh * kw * (1 if depthwise else in_ch), kh * kw * out


Q7_MISTAKES = _mistakes(
    fan_out="fan-out instead of fan-in | Your numbers follow the number of output channels. He's derivation keeps the variance of the forward pass: count the inputs that one output sums, not the outputs that one input feeds.",
    no_field="the receptive field forgotten | Your fan-in counts the input channels only. One output of a convolution sums a whole kh × kw window of every input channel it sees.",
    with_channels="depthwise fan-in counted with the channels | For a depthwise kernel you counted every input channel, as for Conv2D (Keras's own initialisers do the same, from the shape alone). A depthwise output sees one channel only: how many inputs does it sum?",
    glorot="Glorot's variance instead of He's | Averaging fan-in and fan-out is Glorot's compromise for tanh-like activations. He's variance for ReLU uses the fan-in alone, with a factor 2 for the half of the inputs ReLU zeroes.",
    variance="the variance, not the standard deviation | Your numbers are the squares of the right ones: the derivation gives a variance, and a random normal is drawn with its standard deviation.",
)
Q7_MISTAKES["fan_out"] = Mistake(
    Q7_MISTAKES["fan_out"].name,
    Q7_MISTAKES["fan_out"].hint,
    lambda shapes, dw: [np.sqrt(2 / _fans(s, dw)[1]) for s in shapes],
)
Q7_MISTAKES["no_field"] = Mistake(
    Q7_MISTAKES["no_field"].name,
    Q7_MISTAKES["no_field"].hint,
    lambda shapes, dw: [np.sqrt(2 / (1 if dw else s[2])) for s in shapes],
)
Q7_MISTAKES["with_channels"] = Mistake(
    Q7_MISTAKES["with_channels"].name,
    Q7_MISTAKES["with_channels"].hint,
    lambda shapes, dw: [he_std(s, False) for s in shapes],
)
Q7_MISTAKES["glorot"] = Mistake(
    Q7_MISTAKES["glorot"].name,
    Q7_MISTAKES["glorot"].hint,
    lambda shapes, dw: [np.sqrt(2 / sum(_fans(s, dw))) for s in shapes],
)
Q7_MISTAKES["variance"] = Mistake(
    Q7_MISTAKES["variance"].name,
    Q7_MISTAKES["variance"].hint,
    lambda shapes, dw: [he_std(s, dw) ** 2 for s in shapes],
)


def _check_he(he_conv_std) -> None:
    for shapes, depthwise, what in (
        (CONV_SHAPES, False, "the standard deviations for Conv2D kernels"),
        (DEPTHWISE_SHAPES, True, "the standard deviations for DepthwiseConv2D kernels"),
    ):
        raw = [call(he_conv_std, shape, depthwise=depthwise) for shape in shapes]
        got = [as_number(value, f"he_conv_std{shape}") for value, shape in zip(raw, shapes, strict=True)]
        mistakes = [m for key, m in Q7_MISTAKES.items() if depthwise or key != "with_channels"]
        judge(
            np.array(got),
            [he_std(s, depthwise) for s in shapes],
            mistakes,
            what=f"{what} {list(shapes)}",
            inputs=(shapes, depthwise),
            tol={"rtol": 1e-4, "atol": 1e-7},
        )


Q7_HINTS = _steps(
    "Lesson 05a's derivation: a unit's output variance is (number of inputs it sums) × Var(w) × E[x²], and ReLU halves E[x²]. What is that number for one output of a convolution? | For Conv2D, one output sums a kh × kw window of every input channel; for DepthwiseConv2D, a kh × kw window of a single channel. Set Var(w) = 2 / fan_in and return its square root."
)
q7 = Exercise("Q7 · He initialisation for a convolution", _check_he, hint=Q7_HINTS)


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def distill_loss(student_logits, teacher_logits, temperature: float) -> float:
    """Distillation loss T² · KL(softmax(t/T) ‖ softmax(s/T)), averaged over the batch (NumPy, float64).

    KL(p ‖ q) = Σ_k p_k (log p_k − log q_k). Its gradient with respect to the student's logits is
    T · (softmax(s/T) − softmax(t/T)), of the same order for every T: the T² factor is there for that.
    """
    s, t = np.asarray(student_logits, "float64"), np.asarray(teacher_logits, "float64")
    p_teacher, p_student = softmax(t / temperature), softmax(s / temperature)
    return float(temperature**2 * _kl_rows(p_teacher, p_student).mean())


def _rows_with(t2, p_of_teacher, p_of_student, divergence, reduce=np.mean):
    """A variant of the distillation loss, for the named mistakes: over (s, t, T) probes."""

    def compute(probes):
        out = []
        for s, t, temp in probes:
            p, q = p_of_teacher(t, temp), p_of_student(s, temp)
            out.append(t2(temp) * reduce(divergence(p, q)))
        return out

    return compute


_soft = lambda z, temp: softmax(np.asarray(z, "float64") / temp)  # noqa: E731
_hard = lambda z, temp: softmax(np.asarray(z, "float64"))  # noqa: E731
_cross = lambda p, q: -np.sum(p * np.log(q), axis=-1)  # noqa: E731
_t2 = lambda temp: temp**2  # noqa: E731

Q8_MISTAKES = _mistakes(
    no_t2="the T² factor missing | The loss's gradient shrinks like 1/T² as T grows, so at T = 4 the soft targets teach sixteen times more weakly than the labels' loss beside them. Lesson 05a derives the factor that puts it back to the same order.",
    t_not_t2="T instead of T² | The gradient still shrinks like 1/T as T grows. Each softmax divides the logits by T, and the difference of two softmaxes brings another 1/T: lesson 05a derives which power of T makes up for both.",
    reversed="the KL divergence the wrong way round | KL is not symmetric. Distillation weighs each class by the teacher's probability: the teacher's distribution is the first argument, the one the logarithm's ratio is taken against the student's.",
    teacher_only="the temperature applied to the teacher only | The student's logits must be softened by the same T as the teacher's, or the student is pushed to copy the soft targets with its hard softmax.",
    cross_entropy="cross-entropy instead of KL | Your loss is the cross-entropy with the teacher's soft targets: it differs from the KL divergence by the teacher's entropy, a constant for the student, so its gradient and its training are identical. Yet it does not fall to 0 when the student matches the teacher, and this task asks for the KL divergence: subtract the teacher's entropy (or compute KL directly).",
    batch_sum="summed over the batch, not averaged | The loss grows with the batch size: average the per-example divergences over the rows.",
)
for _key, _compute in {
    "no_t2": _rows_with(lambda temp: 1.0, _soft, _soft, _kl_rows),
    "t_not_t2": _rows_with(lambda temp: temp, _soft, _soft, _kl_rows),
    "reversed": _rows_with(_t2, _soft, _soft, lambda p, q: _kl_rows(q, p)),
    "teacher_only": _rows_with(_t2, _soft, _hard, _kl_rows),
    "cross_entropy": _rows_with(_t2, _soft, _soft, _cross),
    "batch_sum": _rows_with(_t2, _soft, _soft, _kl_rows, np.sum),
}.items():
    Q8_MISTAKES[_key] = Mistake(Q8_MISTAKES[_key].name, Q8_MISTAKES[_key].hint, _compute)


@functools.cache
def _distill_probes() -> tuple:
    rng = np.random.default_rng(8)
    s, t = rng.normal(0, 2, (2, 4, 5)), rng.normal(0, 2, (2, 4, 5))
    return tuple((s[i], t[i], temp) for i in range(2) for temp in (1.0, 2.0, 4.0))


def _gradient_norm(loss, s: np.ndarray, t: np.ndarray, temp: float, eps: float = 1e-3) -> float:
    """‖∂loss/∂s‖ by central differences (the learner's loss may be NumPy: no autodiff)."""
    grad = np.zeros_like(s)
    for i in np.ndindex(s.shape):
        step = np.zeros_like(s)
        step[i] = eps
        up = as_number(call(loss, s + step, t, temp), "distillation_loss")
        down = as_number(call(loss, s - step, t, temp), "distillation_loss")
        grad[i] = (up - down) / (2 * eps)
    return float(np.linalg.norm(grad))


def gradient_ratio(loss, temperature: float = 8.0) -> float:
    """‖∇_s loss‖ at ``temperature`` over ‖∇_s loss‖ at T = 1, on the check's logits (about 1 with T²)."""
    s, t, _ = _distill_probes()[0]
    return _gradient_norm(loss, s, t, temperature) / _gradient_norm(loss, s, t, 1.0)


def _check_distillation(distillation_loss) -> None:
    probes = _distill_probes()
    raw = [call(distillation_loss, s, t, temp) for s, t, temp in probes]
    hint = "Return one number: the mean over the batch's rows."
    got = np.array([as_number(value, "the loss (one number for the batch)", hint=hint) for value in raw])
    tol = answer_tolerance(*raw, rtol=1e-4, atol=1e-6)
    ref = [distill_loss(s, t, temp) for s, t, temp in probes]
    mistakes = list(Q8_MISTAKES.values())
    judge(
        got[[0, 3]], [ref[0], ref[3]], mistakes[2:], what="the loss at T = 1", inputs=(probes[::3],), tol=tol
    )
    ratio, right = gradient_ratio(distillation_loss), gradient_ratio(distill_loss)
    if not 1 / 3 < ratio / right < 3:  # the T² effect: the gradient keeps its order of size across T
        for mistake in mistakes:
            if distance(got, mistake.compute(probes), tol) <= 1:
                mistake.fail(
                    "the gradient's size at T = 8",
                    expected=f"{right:.2f}× its size at T = 1",
                    got=f"{ratio:.3f}×",
                )
        raise Mismatch(
            "the gradient's size at T = 8",
            expected=f"{right:.2f}× its size at T = 1",
            got=f"{ratio:.3g}×",
            hint="The gradient with respect to the student's logits should keep the same order of size whatever T is: which power of T does that take?",
        )
    judge(got, ref, mistakes, what="the loss at T = 1, 2, 4", inputs=(probes,), tol=tol)


Q8_HINTS = _steps(
    "Soften both sets of logits with the same T, compare the two distributions with the KL divergence (teacher first), average over the rows, and scale by the factor lesson 05a derives. | KL(p ‖ q) sums p · (log p − log q) over the classes, with p = softmax(teacher / T), q = softmax(student / T). A log-softmax is more stable than the log of a softmax. The factor is T squared."
)
q8 = Exercise("Q8 · a distillation loss with temperature", _check_distillation, hint=Q8_HINTS)
