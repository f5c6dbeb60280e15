"""Checks for Lab 10 (metrics and Grad-CAM): precision, recall and F1, their averages, and Grad-CAM.

* ``q1``: ``precision_recall_f1(y_true, y_pred)`` for binary labels (1 = positive): the tuple
  ``(TP/(TP+FP), TP/(TP+FN), 2PR/(P+R))``, with ``0/0`` defined as 0 (scikit-learn's
  ``zero_division=0``);
* ``q2``: ``f1_score(y_true, y_pred, n_classes, average)``: ``"macro"`` is the mean of the per-class
  F1s, ``"micro"`` the F1 of the summed TP, FP and FN (equal to accuracy for one label per example);
* ``q3``: ``grad_cam(model, image, class_index, conv_layer_name)``: the map
  ``ReLU(Σ_k α_k A^k)`` at the conv layer's resolution, ``α_k`` the spatial mean of
  ``∂y_c/∂A^k``, ``y_c`` the class score before the softmax.

Each checker computes what the usual mistakes would return and names the one it recognises:
precision and recall swapped, dividing by zero, F1 as an arithmetic mean, micro and macro mixed up
(or macro F1 taken from macro precision and recall, or weighted by support), the gradient taken
with respect to the input or the dense layer, post-softmax probabilities, no ReLU, and gradients
averaged over the channel axis instead of the spatial axes.

q3's probe CNN is built under the active dtype policy, so under mixed precision its feature maps
and gradients are float16 or bfloat16, as a learner's are on a GPU or TPU. Maps are compared scaled
to a peak of 1, within the tolerance of the conv layer's compute dtype (``utils.env.tolerance``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks import Exercise, Feedback, LearnerError, Mismatch, call

__all__ = [
    "BINARY_PROBES",
    "MULTICLASS_PROBE",
    "grad_cam_probe_model",
    "q1",
    "q2",
    "q3",
    "reference_f1_score",
    "reference_grad_cam",
    "reference_precision_recall_f1",
    "show_grad_cam",
]


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn`` on copies of the arrays, with NumPy's warnings silenced."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(fn, *copies, **kwargs)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


# ---------------------------------------------------------------------------------------------
# q1: binary precision, recall and F1
# ---------------------------------------------------------------------------------------------


def _counts(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> tuple[int, int, int]:
    t, p = np.asarray(y_true) == positive, np.asarray(y_pred) == positive
    return int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))


def reference_precision_recall_f1(y_true: Any, y_pred: Any) -> tuple[float, float, float]:
    """The model answer of q1: (precision, recall, F1) of class 1, with 0/0 = 0."""
    tp, fp, fn = _counts(y_true, y_pred)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return precision, recall, _ratio(2 * precision * recall, precision + recall)


#: (description, y_true, y_pred). The first has TP=3, FP=1, FN=3, so precision 0.75 and recall 0.5
#: differ, and F1 (0.6) differs from their arithmetic mean (0.625); the second makes no positive
#: prediction at all (precision 0/0); the third has a perfect classifier.
BINARY_PROBES: tuple[tuple[str, np.ndarray, np.ndarray], ...] = (
    (
        "3 hits, 1 false alarm, 3 misses",
        np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]),
        np.array([1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]),
    ),
    ("no positive predictions", np.array([1, 0, 1, 0, 0, 0]), np.array([0, 0, 0, 0, 0, 0])),
    ("every prediction right", np.array([0, 1, 1, 0, 1]), np.array([0, 1, 1, 0, 1])),
)


def _triple(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(
            [v.numpy() if hasattr(v, "numpy") else v for v in value]
            if isinstance(value, (tuple, list))
            else value,
            dtype=np.float64,
        ).ravel()
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (3,):
        raise Mismatch(
            what,
            expected="three numbers: (precision, recall, f1)",
            got=f"{type(value).__name__}: {value!r}"[:120],
            hint="End your function with `return precision, recall, f1`.",
        )
    return arr


_ZERO_DIVISION = (
    "With no positive predictions, TP + FP = 0 and precision is 0/0. Define it: like scikit-learn's "
    "zero_division=0, return 0 when the denominator is 0 (and the same for recall and F1), "
    "e.g. `precision = tp / (tp + fp) if tp + fp > 0 else 0.0`."
)


def _check_precision_recall_f1(fn: Callable) -> None:
    for name, y_true, y_pred in BINARY_PROBES:
        what = f"precision_recall_f1 on a probe with {name}"
        try:
            raw = _run(fn, y_true, y_pred)
        except LearnerError as e:
            if isinstance(e.error, (ZeroDivisionError, FloatingPointError)):
                raise Mismatch(what, expected="no error", got=str(e), hint=_ZERO_DIVISION) from None
            raise
        got = _triple(raw, what)
        want = np.array(reference_precision_recall_f1(y_true, y_pred))
        if np.allclose(got, want, atol=1e-9):
            continue
        p, r, f = want
        shown = dict(expected=tuple(np.round(want, 4)), got=tuple(np.round(got, 4)))
        if not np.all(np.isfinite(got)):
            raise Mismatch(what, **shown, hint=_ZERO_DIVISION)
        if np.allclose(got[:2], [r, p]):
            raise Mismatch(
                what,
                **shown,
                hint="Precision and recall are swapped. Precision divides by what you *predicted* positive "
                "(TP + FP); recall divides by what *is* positive (TP + FN).",
            )
        if np.allclose(got[:2], [p, r]) and np.isclose(got[2], (p + r) / 2):
            raise Mismatch(
                what,
                **shown,
                hint="F1 is the harmonic mean of precision and recall, 2PR / (P + R), not the arithmetic mean "
                "(P + R) / 2: it stays low when either one is low.",
            )
        tn = int(np.sum((y_true == 0) & (y_pred == 0)))
        if np.isclose(got[0], (p * 0 + np.mean(y_true == y_pred))) and not np.isclose(
            p, np.mean(y_true == y_pred)
        ):
            raise Mismatch(
                what,
                **shown,
                hint=f"Your precision is the accuracy ((TP + TN) / N; TN = {tn} here). Precision is TP / (TP + FP): "
                "only the examples predicted positive count.",
            )
        flipped = np.array(reference_precision_recall_f1(1 - y_true, 1 - y_pred))
        if np.allclose(got, flipped):
            raise Mismatch(
                what,
                **shown,
                hint="These are the metrics of class 0. The positive class is 1: TP counts y_true == 1 and y_pred == 1.",
            )
        raise Mismatch(
            what,
            **shown,
            hint="Count TP, FP and FN first, then precision = TP/(TP+FP), recall = TP/(TP+FN), "
            "F1 = 2PR/(P+R), each 0 when its denominator is 0.",
        )


q1 = Exercise(
    "Q1 · precision, recall and F1",
    _check_precision_recall_f1,
    hint="TP = predicted 1 and truly 1, FP = predicted 1 but truly 0, FN = predicted 0 but truly 1. "
    "precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2PR/(P+R); 0 whenever a denominator is 0.",
    lab="lab10_metrics_and_gradcam",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# q2: micro and macro F1
# ---------------------------------------------------------------------------------------------


def _per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, 3) array of TP, FP, FN per class."""
    return np.array([_counts(y_true, y_pred, k) for k in range(n_classes)], dtype=np.float64)


def reference_f1_score(y_true: Any, y_pred: Any, n_classes: int, average: str = "macro") -> float:
    """The model answer of q2 (scikit-learn's f1_score with zero_division=0)."""
    c = _per_class(np.asarray(y_true), np.asarray(y_pred), n_classes)
    if average == "micro":
        tp, fp, fn = c.sum(axis=0)
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return _ratio(2 * p * r, p + r)
    f1s = []
    for tp, fp, fn in c:
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1s.append(_ratio(2 * p * r, p + r))
    return float(np.mean(f1s))


#: Four classes, imbalanced (class 0 is common), class 3 never predicted (0/0 precision), so the
#: micro, macro, weighted and "F1 of the macro P and R" answers all differ.
MULTICLASS_PROBE = (
    np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3]),
    np.array([0, 0, 0, 0, 0, 0, 1, 2, 1, 1, 0, 2, 1, 2, 0, 2]),
    4,
)


def _f1_variants(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> dict[str, float]:
    c = _per_class(y_true, y_pred, n)
    prec = np.array([_ratio(tp, tp + fp) for tp, fp, _ in c])
    rec = np.array([_ratio(tp, tp + fn) for tp, _, fn in c])
    f1 = np.array([_ratio(2 * p * r, p + r) for p, r in zip(prec, rec, strict=True)])
    support = c[:, 0] + c[:, 2]
    predicted = c[:, 0] + c[:, 1]
    mp, mr = prec.mean(), rec.mean()
    return {
        "macro": float(f1.mean()),
        "micro": reference_f1_score(y_true, y_pred, n, "micro"),
        "f1 of macro p and r": _ratio(2 * mp * mr, mp + mr),
        "weighted": float(np.sum(f1 * support) / support.sum()),
        "macro arithmetic": float(((prec + rec) / 2).mean()),
        "macro skipping 0/0": float(f1[predicted > 0].mean()),
    }


def _check_f1_score(fn: Callable) -> None:
    y_true, y_pred, n = MULTICLASS_PROBE
    v = _f1_variants(y_true, y_pred, n)
    for average in ("macro", "micro"):
        what = f"f1_score(..., average={average!r}) on a 4-class probe where class 3 is never predicted"
        try:
            raw = _run(fn, y_true, y_pred, n, average)
        except LearnerError as e:
            if isinstance(e.error, (ZeroDivisionError, FloatingPointError)):
                raise Mismatch(what, expected="no error", got=str(e), hint=_ZERO_DIVISION) from None
            raise
        try:
            got = float(np.asarray(raw.numpy() if hasattr(raw, "numpy") else raw, dtype=np.float64))
        except (TypeError, ValueError):
            raise Mismatch(what, expected="one number", got=f"{type(raw).__name__}: {raw!r}"[:120]) from None
        want = v[average]
        if np.isclose(got, want, atol=1e-9):
            continue
        shown = dict(expected=round(want, 4), got=round(got, 4) if np.isfinite(got) else got)
        other = "micro" if average == "macro" else "macro"
        if not np.isfinite(got):
            raise Mismatch(
                what, **shown, hint="Class 3 is never predicted, so its precision is 0/0. " + _ZERO_DIVISION
            )
        if np.isclose(got, v[other]):
            raise Mismatch(
                what,
                **shown,
                hint=f"You computed the {other} average for average={average!r}. Macro: F1 per class, then the "
                "plain mean of the K F1s (every class counts the same). Micro: sum TP, FP and FN over the "
                "classes first, then one F1 (every example counts the same).",
            )
        if average == "macro" and np.isclose(got, v["f1 of macro p and r"]):
            raise Mismatch(
                what,
                **shown,
                hint="You took the F1 of the macro precision and the macro recall. The macro F1 is the mean of "
                "the per-class F1s: compute F1 for each class, then average.",
            )
        if average == "macro" and np.isclose(got, v["weighted"]):
            raise Mismatch(
                what,
                **shown,
                hint="You weighted each class by its number of examples (scikit-learn's 'weighted'). Macro "
                "gives every class the same weight: a plain mean over the classes.",
            )
        if average == "macro" and np.isclose(got, v["macro arithmetic"]):
            raise Mismatch(
                what,
                **shown,
                hint="Each class's F1 is the harmonic mean 2PR/(P+R), not the arithmetic mean (P+R)/2.",
            )
        if average == "macro" and np.isclose(got, v["macro skipping 0/0"]):
            raise Mismatch(
                what,
                **shown,
                hint="You left out class 3 (never predicted). It still counts: its precision is 0/0 = 0 by "
                "convention, so its F1 is 0 and the mean is over all n_classes classes.",
            )
        raise Mismatch(
            what,
            **shown,
            hint="Per class k: TP = predicted k and truly k, FP = predicted k but not k, FN = truly k but "
            "predicted something else. Macro: mean of the K F1s. Micro: F1 of the summed counts.",
        )


q2 = Exercise(
    "Q2 · micro and macro F1",
    _check_f1_score,
    hint="Reuse your precision_recall_f1 with one class against the rest: (y_true == k) and (y_pred == k). "
    "Macro = mean of those F1s; micro = F1 of the summed TP, FP and FN.",
    lab="lab10_metrics_and_gradcam",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: Grad-CAM
# ---------------------------------------------------------------------------------------------


def grad_cam_probe_model(seed: int = 10) -> Any:
    """A small CNN with fixed random weights: ``conv_a``, ``last_conv`` (6×6×5), ``logits``, ``probs``."""
    import keras

    init = keras.initializers.RandomNormal(stddev=0.5, seed=seed)
    bias = keras.initializers.RandomNormal(stddev=0.3, seed=seed + 1)
    inputs = keras.Input(shape=(12, 12, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a", kernel_initializer=init)(
        inputs
    )
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(
        5,
        3,
        padding="same",
        activation="relu",
        name="last_conv",
        kernel_initializer=init,
        bias_initializer=bias,
    )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    # Built under the active dtype policy, like the learner's models; as the course's classifiers do,
    # the output layers stay float32 under mixed precision.
    logits = keras.layers.Dense(
        4, name="logits", kernel_initializer=init, bias_initializer=bias, dtype="float32"
    )(x)
    probs = keras.layers.Softmax(name="probs", dtype="float32")(logits)
    return keras.Model(inputs, probs, name="probe_cnn")


def _cam_variants(model: Any, image: np.ndarray, class_index: int, layer: str) -> dict[str, np.ndarray]:
    """The right map and the maps of the usual mistakes, each (H, W)."""
    import keras
    import tensorflow as tf

    sub = keras.Model(
        model.input, [model.get_layer(layer).output, model.get_layer("logits").output, model.output]
    )
    x = tf.convert_to_tensor(image[None].astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        maps, logits, probs = sub(x)
        logit, prob = logits[0, class_index], probs[0, class_index]
    a = maps.numpy()[0].astype(np.float64)
    g = tape.gradient(logit, maps).numpy()[0].astype(np.float64)
    g_prob = tape.gradient(prob, maps).numpy()[0].astype(np.float64)
    g_input = tape.gradient(logit, x).numpy()[0].astype(np.float64)
    del tape
    relu = lambda m: np.maximum(m, 0)  # noqa: E731
    alpha = g.mean(axis=(0, 1))
    return {
        "right": relu(a @ alpha),
        "softmax": relu(a @ g_prob.mean(axis=(0, 1))),
        "no relu": a @ alpha,
        "channel mean": relu(g.mean(axis=-1) * a.sum(axis=-1)),
        "channel mean keepdims": relu((g.mean(axis=-1, keepdims=True) * a).sum(axis=-1)),
        "no mean": relu((g * a).sum(axis=-1)),
        "input": relu(image.astype(np.float64) @ g_input.mean(axis=(0, 1))),
    }


def reference_grad_cam(model: Any, image: np.ndarray, class_index: int, conv_layer_name: str) -> np.ndarray:
    """The model answer of q3: Grad-CAM (H, W) at the conv layer's resolution (model has a 'logits' layer)."""
    return _cam_variants(model, np.asarray(image), class_index, conv_layer_name)["right"]


def _normalised(m: np.ndarray) -> np.ndarray:
    top = np.abs(m).max()
    return m / top if top > 0 else m


#: How far two maps scaled to a peak of 1 may differ and still be the same map, in float32.
SAME_MAP_ATOL = 2e-4


def _same_map(a: np.ndarray, b: np.ndarray, atol: float = SAME_MAP_ATOL) -> bool:
    return a.shape == b.shape and np.allclose(_normalised(a), _normalised(b), atol=atol)


def _map_atol(model: Any, layer: str) -> float:
    """The tolerance for maps of ``layer``, which computes at its dtype policy's precision.

    Under mixed precision the feature maps and their gradients are float16 or bfloat16, so a right
    answer (computed in that precision) differs from the float64 reference by about 1e-3 (float16)
    or 5e-3 (bfloat16) of the peak: judge it with ``utils.env.tolerance`` for that dtype. The
    mistakes differ from the right map by 0.2 or more of the peak on the probes.
    """
    from utils.env import tolerance

    return max(SAME_MAP_ATOL, tolerance(model.get_layer(layer).compute_dtype)["atol"])


def _probe_images() -> list[tuple[np.ndarray, int]]:
    """Two random images and classes for which every mistake of q3 gives a map of its own."""
    return [
        (np.random.default_rng(seed).uniform(0, 1, (12, 12, 3)).astype("float32"), c)
        for seed, c in ((2024, 3), (2020, 1))
    ]


_WRONG_LAYER = (
    "Take the gradient with respect to the output of the last conv layer: build "
    "`keras.Model(model.input, [model.get_layer(conv_layer_name).output, model.get_layer('logits').output])` "
    "and differentiate the class score with respect to its first output (the feature maps A)."
)


def _check_grad_cam(fn: Callable) -> None:
    model = grad_cam_probe_model()
    layer = "last_conv"
    h, w = model.get_layer(layer).output.shape[1:3]
    atol = _map_atol(model, layer)

    def same_map(a: np.ndarray, b: np.ndarray) -> bool:
        return _same_map(a, b, atol)

    for image, c in _probe_images():
        what = f"grad_cam(model, image, class_index={c}, conv_layer_name={layer!r}) on a probe CNN"
        try:
            raw = _run(fn, model, image, c, layer)
        except LearnerError as e:
            text = str(e).lower()
            if any(word in text for word in ("axis", "rank", "dimension", "shape", "out of bounds")):
                raise Mismatch(
                    what,
                    expected=f"a ({h}, {w}) map",
                    got=f"an error: {e}",
                    hint="Perhaps the gradient was taken with respect to a layer without a spatial layout "
                    "(the dense 'logits' layer)? " + _WRONG_LAYER,
                ) from None
            raise
        try:
            got = np.asarray(raw.numpy() if hasattr(raw, "numpy") else raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise Mismatch(what, expected=f"a ({h}, {w}) array", got=type(raw).__name__) from None
        while got.ndim > 2 and got.shape[0] == 1:
            got = got[0]
        variants = _cam_variants(model, image, c, layer)
        want = variants["right"]
        if same_map(got, want):
            continue
        if got.shape != want.shape:
            if got.shape[:2] == image.shape[:2]:
                hint = (
                    f"Your map is {got.shape[0]}×{got.shape[1]}, the size of the input image: the gradient was taken "
                    f"with respect to the input (or you upsampled). Return the map at the conv layer's "
                    f"resolution, {h}×{w}. " + _WRONG_LAYER
                )
            elif got.ndim < 2:
                hint = (
                    "Your answer has no spatial layout: the gradient was taken with respect to a dense layer (or "
                    "you reduced the wrong axes). " + _WRONG_LAYER
                )
            elif got.shape == (h, w, want.shape[-1] if want.ndim == 3 else 0):
                hint = "Sum the weighted maps over the channel axis: Σ_k α_k A^k gives one (H, W) map."
            else:
                hint = f"Return one (H, W) = ({h}, {w}) map: the conv layer's spatial size. " + _WRONG_LAYER
            raise Mismatch(f"the shape of {what}", expected=(h, w), got=got.shape, hint=hint)
        shown = dict(
            expected=f"{np.round(_normalised(want)[0], 3)}… (row 0, scaled to max 1)",
            got=f"{np.round(_normalised(got)[0], 3)}… (row 0, scaled to max 1)",
        )
        if same_map(got, variants["softmax"]):
            raise Mismatch(
                what,
                **shown,
                hint="You differentiated the probability after the softmax. Use the class score before it, "
                "y_c = the output of the 'logits' layer: after the softmax the gradient also depends on "
                "every other class (and vanishes when the model is confident).",
            )
        if same_map(got, variants["no relu"]):
            raise Mismatch(
                what,
                **shown,
                hint="Your map has negative values: you forgot the ReLU. Grad-CAM keeps only the positive "
                "evidence for the class, ReLU(Σ_k α_k A^k).",
            )
        if same_map(got, variants["channel mean"]) or same_map(got, variants["channel mean keepdims"]):
            raise Mismatch(
                what,
                **shown,
                hint="You averaged the gradients over the channel axis. α_k is one weight per channel k, the "
                "mean over the spatial positions: `tf.reduce_mean(grads, axis=(0, 1))` for (H, W, K) "
                "gradients, or axis=(1, 2) with the batch axis.",
            )
        if same_map(got, variants["no mean"]):
            raise Mismatch(
                what,
                **shown,
                hint="You multiplied each gradient by its activation position by position. Grad-CAM first "
                "averages the gradients over the positions (one α_k per channel), then weights whole maps.",
            )
        raise Mismatch(
            what,
            **shown,
            hint="α_k = mean over (i, j) of ∂y_c/∂A^k_ij with y_c the logit of class c; map = ReLU(Σ_k α_k A^k).",
        )


q3 = Exercise(
    "Q3 · Grad-CAM",
    _check_grad_cam,
    hint="Model → (feature maps of conv_layer_name, logits); GradientTape; grads = d logits[0, c] / d maps; "
    "alpha = mean of grads over the two spatial axes; map = ReLU(Σ_k alpha_k A^k), shape (H, W).",
    lab="lab10_metrics_and_gradcam",
    solution_id="q3",
)


def show_grad_cam(
    grad_cam: Callable, model: Any, images: np.ndarray, conv_layer_name: str, class_names: list[str]
) -> Any:
    """Run the learner's ``grad_cam`` on ``images`` for the predicted classes and lay the maps over them.

    Returns q3's :class:`Feedback` if ``grad_cam`` does not pass q3 yet; otherwise a figure whose
    ``layout.meta["max_difference"]`` is the largest difference from the reference (maps scaled to max 1).
    """
    feedback = q3.evaluate(grad_cam)
    if not feedback.passed:
        return feedback
    from utils import viz

    classes = np.asarray(model.predict(images, verbose=0)).argmax(axis=1)
    maps = [
        np.asarray(_run(grad_cam, model, img, int(c), conv_layer_name), dtype=np.float64).reshape(
            model.get_layer(conv_layer_name).output.shape[1:3]
        )
        for img, c in zip(images, classes, strict=True)
    ]
    refs = [
        reference_grad_cam(model, img, int(c), conv_layer_name)
        for img, c in zip(images, classes, strict=True)
    ]
    difference = max(
        float(np.abs(_normalised(m) - _normalised(r)).max()) for m, r in zip(maps, refs, strict=True)
    )
    fig = viz.heatmap_overlay(
        images,
        np.stack(maps),
        labels=[class_names[c] for c in classes],
        title=f"Your Grad-CAM (largest difference from the reference: {difference:.1e})",
    )
    fig.update_layout(meta={**fig.layout.meta, "max_difference": difference})
    return fig


def _is_feedback(value: Any) -> bool:  # used by the tests
    return isinstance(value, Feedback)
