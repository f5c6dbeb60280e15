"""Checks for Lab 05c (boxes, NMS and mAP): IoU in the inclusive-pixel convention of old VOC code, class-aware
NMS built on a plain NMS, all-point interpolated average precision from a ranked list, and a soft IoU loss
a U-Net can train on.

Boxes are ``(x_min, y_min, x_max, y_max)``. The references agree with ``utils.detection`` (tested).

* ``q1`` ``iou_pixels(a, b)``: (N, M) IoU of boxes given as *inclusive* integer pixel indices (a box from
  pixel 0 to pixel 9 is 10 pixels wide). Mistakes: the +1 in the areas but not the intersection, or the other
  way round; no +1 at all (the continuous convention); the intersection not clamped at zero; the overlap
  counted twice in the union.
* ``q2`` ``batched_nms(boxes, scores, classes, iou_threshold)``: class-aware NMS, indices into the whole list
  by decreasing score. Mistakes: NMS across classes; indices within each class; a box at exactly the threshold
  dropped (≥ instead of >); boxes not sorted by score before suppression; kept boxes in class order.
* ``q3`` ``average_precision(is_tp, n_ground_truths)``: all-point interpolated AP from TP/FP flags in
  decreasing-score order. Mistakes: no interpolation; 11-point interpolation; recall divided by the number of
  detections; the precision envelope taken from the left.
* ``q4`` ``soft_iou_loss(y_true, y_prob)``: 1 − the smoothed soft IoU (Jaccard) of the whole batch, as the
  lesson's soft Dice, written in keras.ops so that it trains a U-Net; its value and its gradient are checked.
  Mistakes: the lesson's soft Dice instead; the union without the overlap subtracted; the score, not the
  loss; one IoU per image; no smoothing; rounded probabilities; no gradient.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from utils.checks import (
    HALF,
    Exercise,
    Mismatch,
    Mistake,
    NotDone,
    answer_tolerance,
    as_array,
    as_int,
    as_number,
    call,
    dtype_name,
    is_placeholder,
    judge,
    variants,
)

__all__ = [
    "ap_reference",
    "batched_nms_reference",
    "iou_corners",
    "iou_pixels_reference",
    "nms",
    "q1",
    "q2",
    "q3",
    "q4",
    "soft_iou_gradient",
    "soft_iou_reference",
]


# ------------------------------------------------------------------------------------------------
# q1: IoU in the inclusive-pixel convention
# ------------------------------------------------------------------------------------------------


def iou_corners(a: Any, b: Any) -> np.ndarray:
    """(N, M) IoU of corner boxes in continuous coordinates (area = w·h), in float64: the lesson's IoU."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area = lambda box: (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def iou_pixels_reference(
    a: Any, b: Any, *, inter_plus: int = 1, area_plus: int = 1, clamp: bool = True, union: str = "right"
) -> np.ndarray:
    """(N, M) IoU of boxes given as inclusive pixel indices: a box covers x_max − x_min + 1 pixels across.

    Right with the defaults; ``inter_plus``/``area_plus`` (the +1 in the intersection's and in the areas'
    sides), ``clamp`` and ``union="sum"`` make the known mistakes.
    """
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + inter_plus
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + inter_plus
    inter = np.clip(w, 0, None) * np.clip(h, 0, None) if clamp else w * h
    area = lambda box: (box[:, 2] - box[:, 0] + area_plus) * (box[:, 3] - box[:, 1] + area_plus)
    total = area(a)[:, None] + area(b)[None, :]
    return inter / (total if union == "sum" else total - inter)


# ground truths (the rows) and detections (the columns) in pixel indices: touching by one pixel column,
# nested, disjoint on both axes, identical, and 1-pixel-wide boxes, where the +1 matters most
Q1_A = np.array([[0, 0, 9, 9], [10, 20, 29, 25], [40, 40, 40, 49], [5, 30, 14, 39]], dtype="float32")
Q1_B = np.array(
    [[9, 0, 18, 9], [12, 21, 27, 24], [40, 45, 42, 52], [20, 0, 24, 3], [5, 30, 14, 39]], dtype="float32"
)

M = variants(iou_pixels_reference)
# fmt: off
Q1_MISTAKES = [
    M("+1 in the areas but not in the intersection", "You count pixels in the areas (x_max − x_min + 1) but not in the overlap. The overlap is a box too: count its pixels the same way.", inter_plus=0),
    M("+1 in the intersection but not in the areas", "You count pixels in the overlap (+1) but not in the boxes' own areas. Each box is a box of pixels too: count its sides the same way.", area_plus=0),
    M("no +1 (the continuous convention)", "That is the lesson's IoU for continuous coordinates. Here a box from pixel 0 to pixel 9 covers 10 pixels, not 9: every side is x_max − x_min + 1.", inter_plus=0, area_plus=0),
    M("intersection not clamped at zero", "Two boxes that do not overlap get a negative side, and two negative sides multiply to a positive 'overlap'. Clamp each side of the intersection at 0.", clamp=False),
    M("the overlap counted twice in the union", "area(a) + area(b) counts the overlap twice: the union subtracts it once.", union="sum"),
]
# fmt: on


def _check_iou(fn: Any) -> None:
    hint = "One IoU for every pair: a matrix with a row per box of `a` and a column per box of `b`."
    what = f"iou_pixels(a {Q1_A.shape}, b {Q1_B.shape})"
    out = call(fn, Q1_A.copy(), Q1_B.copy())
    got = as_array(out, what, hint=hint)
    shape = (len(Q1_A), len(Q1_B))
    if got.shape != shape and got.shape == shape[::-1]:
        raise Mismatch(
            f"the shape of {what}", expected=shape, got=got.shape, hint=hint + " Yours is transposed."
        )
    if got.shape != shape:
        raise Mismatch(f"the shape of {what}", expected=shape, got=got.shape, hint=hint)
    ref = iou_pixels_reference(Q1_A, Q1_B)
    judge(
        got, ref, Q1_MISTAKES, what=what, inputs=(Q1_A, Q1_B), tol=answer_tolerance(out, rtol=1e-5, atol=1e-6)
    )


q1 = Exercise(
    "Q1 · IoU in pixels, the old VOC way",
    _check_iou,
    hint=(
        "In this convention x_min and x_max are the first and the last pixel *inside* the box, so a box spans "
        "x_max − x_min + 1 pixels. Every width and height, the overlap's included, follows that rule.",
        "Broadcast a (N, 1) column against a (1, M) row for the overlap's corners: the larger of the two "
        "x_min, the smaller of the two x_max. Its sides (with the +1) can be negative when the boxes miss each "
        "other: clamp them at 0. IoU = overlap / (area a + area b − overlap).",
    ),
)

# ------------------------------------------------------------------------------------------------
# q2: class-aware NMS
# ------------------------------------------------------------------------------------------------


def nms(
    boxes: Any, scores: Any, iou_threshold: float, *, sort: bool = True, drop_at: str = ">"
) -> np.ndarray:
    """Greedy NMS: indices of the kept boxes by decreasing score; a box is dropped when its IoU with a kept
    box is above ``iou_threshold`` (the lesson's ``nms``, and ``tf.image.non_max_suppression``'s rule).

    ``sort=False`` (boxes taken in the order given) and ``drop_at=">="`` make the known mistakes.
    """
    boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable") if sort else np.arange(len(scores))
    overlap = iou_corners(boxes, boxes)
    kept: list[int] = []
    for i in order:
        ious = overlap[i, kept]
        if not np.any(ious >= iou_threshold if drop_at == ">=" else ious > iou_threshold):
            kept.append(int(i))
    return np.array(kept, dtype=np.int64)


def batched_nms_reference(
    boxes: Any, scores: Any, classes: Any, iou_threshold: float, *, per_class: bool = True,
    local: bool = False, order: str = "score", **nms_kw: Any,
) -> np.ndarray:  # fmt: skip
    """Class-aware NMS: plain NMS within each class; indices into the whole list, by decreasing score.

    ``per_class=False`` (NMS across classes), ``local=True`` (indices within each class), ``order="class"``
    and the ``nms`` keywords make the known mistakes.
    """
    boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)
    classes = np.asarray(classes).reshape(-1)
    if not per_class:
        return nms(boxes, scores, iou_threshold, **nms_kw)
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        found = nms(boxes[members], scores[members], iou_threshold, **nms_kw)
        kept.append(found if local else members[found])
    kept = np.concatenate(kept).astype(np.int64)
    return kept if order == "class" or local else kept[np.argsort(-scores[kept], kind="stable")]


# index: class, score, box. 1 and 2 overlap across classes; 3 and 4 have IoU exactly 0.5 (100 / 200); 0
# comes before 1 in the list but scores lower; the classes' order is not the scores' order.
Q2_BOXES = np.array(
    [[10, 10, 30, 30], [12, 12, 32, 32], [11, 11, 31, 31], [50, 50, 70, 60],
     [50, 50, 60, 60], [80, 10, 100, 30], [85, 12, 105, 32], [50, 80, 70, 100]], dtype="float32",
)  # fmt: skip
Q2_SCORES = np.array([0.60, 0.90, 0.80, 0.70, 0.65, 0.95, 0.30, 0.20], dtype="float32")
Q2_CLASSES = np.array([1, 1, 0, 0, 0, 2, 2, 1], dtype="int32")


@functools.cache
def _q2_random() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A second probe: 40 random boxes of 3 classes, crowded enough that NMS has work to do."""
    rng = np.random.default_rng(5)
    corner = rng.uniform(0, 60, size=(40, 2))
    size = rng.uniform(8, 30, size=(40, 2))
    boxes = np.round(np.concatenate([corner, corner + size], axis=1), 1).astype("float32")
    scores = rng.permutation(np.linspace(0.05, 0.99, 40)).astype("float32")  # no ties
    return boxes, scores, rng.integers(0, 3, size=40).astype("int32")


def _q2_probes() -> list[tuple]:
    return [(Q2_BOXES, Q2_SCORES, Q2_CLASSES, 0.5), (*_q2_random(), 0.45)]


def _as_set(found: Any) -> list[int]:
    return sorted(int(i) for i in found)


M = variants(lambda *inputs, **kw: _as_set(batched_nms_reference(*inputs, **kw)))
# fmt: off
Q2_MISTAKES = [
    M("NMS across classes", "A box only competes with boxes of its own class: a dog must not suppress the cat it overlaps. Run the plain NMS once per class.", per_class=False),
    M("indices within each class, not into the whole list", "NMS on one class's boxes returns positions in that subset. Map them back to positions in the whole list (the subset's own indices) before you collect them.", local=True),
    M("a box at exactly the threshold dropped (≥ instead of >)", "A box is dropped when its IoU with a kept box is *above* the threshold; one at exactly 0.5 stays (as in tf.image.non_max_suppression).", drop_at=">="),
    M("boxes not sorted by score before suppression", "Greedy NMS visits the boxes from the highest score down: a box can only be suppressed by a better one.", sort=False),
]
CLASS_ORDER = Mistake("kept boxes in class order, not by score", "You kept the right boxes, class by class. Return them all ordered by decreasing score, as a single NMS would.")
# fmt: on


def _indices(value: Any, what: str) -> list[int]:
    if is_placeholder(value):
        raise NotDone
    hint = "Return the indices of the kept boxes (whole numbers into `boxes`), not the boxes themselves."
    arr = as_array(value, what, hint=hint)
    if arr.ndim != 1:
        raise Mismatch(f"the shape of {what}", expected="a flat list of indices", got=arr.shape, hint=hint)
    return [as_int(i, what, hint=hint) for i in arr]


def _check_batched_nms(fn: Any) -> None:
    for boxes, scores, classes, threshold in _q2_probes():
        what = (
            f"batched_nms({len(boxes)} boxes of {len(np.unique(classes))} classes, iou_threshold={threshold})"
        )
        got = _indices(call(fn, boxes.copy(), scores.copy(), classes.copy(), threshold), what)
        ref = batched_nms_reference(boxes, scores, classes, threshold)
        if got == ref.tolist():
            continue
        inputs = (boxes, scores, classes, threshold)
        if sorted(got) == sorted(ref.tolist()):
            if got == batched_nms_reference(*inputs, order="class").tolist():
                CLASS_ORDER.fail(what, expected=ref.tolist(), got=got)
            raise Mismatch(what, expected=ref.tolist(), got=got, hint=CLASS_ORDER.hint)
        for mistake in Q2_MISTAKES:
            if mistake.compute(*inputs) == sorted(got):
                mistake.fail(what, expected=ref.tolist(), got=got)
        raise Mismatch(what, expected=ref.tolist(), got=got)


q2 = Exercise(
    "Q2 · NMS class by class",
    _check_batched_nms,
    hint=(
        "Boxes of different classes never suppress each other. For each class, pick out its boxes, run the "
        "plain NMS on them alone, and keep what survives.",
        "`np.flatnonzero(classes == c)` gives the positions of class c in the whole list; the plain NMS returns "
        "positions within the subset you gave it, so index the first with the second. At the end, order all "
        "the kept positions by decreasing score.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q3: all-point interpolated average precision
# ------------------------------------------------------------------------------------------------


def _curve(is_tp: Any, n_ground_truths: int, *, recall_over: str = "truths") -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, the detections in decreasing-score order."""
    flags = np.asarray(is_tp, np.float64).reshape(-1)
    tp = np.cumsum(flags)
    precision = tp / np.arange(1, len(flags) + 1)
    recall = tp / (len(flags) if recall_over == "detections" else n_ground_truths)
    return recall, precision


def ap_reference(
    is_tp: Any, n_ground_truths: int, *, method: str = "all", recall_over: str = "truths"
) -> float:
    """Average precision from TP/FP flags in decreasing-score order and the number of ground truths.

    ``method="all"``: Σ (r_i − r_{i−1}) · max_{j ≥ i} p_j, the precision envelope (VOC 2010 on, COCO without
    its 101 points). ``"raw"`` (no envelope), ``"11"`` (11-point), ``"left"`` (the running maximum from the
    first detection) and ``recall_over="detections"`` make the known mistakes.
    """
    recall, precision = _curve(is_tp, n_ground_truths, recall_over=recall_over)
    if method == "11":
        return float(np.mean([precision[recall >= t].max(initial=0.0) for t in np.linspace(0, 1, 11)]))
    if method == "all":
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    elif method == "left":
        precision = np.maximum.accumulate(precision)
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * precision))


# (flags in decreasing-score order, number of ground truths): some ground truths are never found
Q3_PROBES = (
    ((1, 0, 1, 1, 0, 0, 1, 0, 1, 0), 8),
    ((0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1), 7),
    ((1, 1, 0, 1, 0, 0, 0, 1), 6),
)

M = variants(lambda flags, n, **kw: np.array(ap_reference(flags, n, **kw)))
# fmt: off
Q3_MISTAKES = [
    M("no interpolation (raw precision)", "That is the area under the zig-zag curve. Before summing, replace each precision by the best precision at this recall or any higher one.", method="raw"),
    M("11-point interpolation", "That is VOC 2007's 11-point AP. All-point AP sums over every recall at which a true positive arrives, not over 11 fixed recalls.", method="11"),
    M("recall divided by the number of detections", "Recall is the fraction of the *ground truths* found: divide the running count of true positives by n_ground_truths, not by the number of detections.", recall_over="detections"),
    M("the precision envelope taken from the left", "The envelope at a recall is the best precision at that recall *or any higher one*: take the running maximum from the last detection backwards.", method="left"),
]
# fmt: on


def _check_ap(fn: Any) -> None:
    for flags, n in Q3_PROBES:
        what = f"average_precision({list(flags)}, n_ground_truths={n})"
        out = call(fn, np.array(flags, dtype=bool), n)
        got = as_number(out, what, hint="Return one number, the area under the interpolated curve.")
        ref = ap_reference(flags, n)
        tol = answer_tolerance(out, rtol=1e-6, atol=1e-7)
        judge(np.array(got), np.array(ref), Q3_MISTAKES, what=what, inputs=(flags, n), tol=tol)


q3 = Exercise(
    "Q3 · average precision from a ranked list",
    _check_ap,
    hint=(
        "Walk down the list: after each detection, precision = true positives so far / detections so far, and "
        "recall = true positives so far / n_ground_truths. Then make the precision curve non-increasing.",
        "The interpolated precision at position i is the maximum precision at i or after it (a running maximum "
        "taken from the end). AP adds, for every detection, (its recall − the previous recall) × that "
        "interpolated precision; a false positive adds nothing, since recall does not move.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q4: a soft IoU (Jaccard) loss
# ------------------------------------------------------------------------------------------------

SMOOTH = 1.0  # the s in (Σ p t + s) / (Σ p + Σ t − Σ p t + s)


def soft_iou_reference(
    y_true: Any, y_prob: Any, *, smooth: float = SMOOTH, result: str = "loss", per_image: bool = False,
    dice: bool = False, union_as_sum: bool = False, rounded: bool = False,
) -> float:  # fmt: skip
    """1 − the soft IoU (Σ p·t + s) / (Σ p + Σ t − Σ p·t + s) of the whole batch, in float64; y (batch, H, W, 1).

    The sums run over every pixel of the batch, as the lesson's soft Dice. ``result="score"``, ``per_image``
    (one IoU per image, averaged), ``dice`` (the lesson's soft Dice instead), ``union_as_sum`` (Σ p + Σ t, the
    overlap not subtracted), ``rounded`` and ``smooth=0`` make the known mistakes.
    """
    t = np.asarray(y_true, np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_prob, np.float64).reshape(len(y_prob), -1)
    if rounded:
        p = np.round(p)
    if not per_image:
        t, p = t.reshape(1, -1), p.reshape(1, -1)
    inter = np.sum(p * t, axis=1)
    total = np.sum(p, axis=1) + np.sum(t, axis=1)
    if dice:
        scores = (2 * inter + smooth) / (total + smooth)
    else:
        scores = (inter + smooth) / ((total if union_as_sum else total - inter) + smooth)
    score = float(np.mean(scores))
    return score if result == "score" else 1.0 - score


def soft_iou_gradient(y_true: Any, y_prob: Any, smooth: float = SMOOTH) -> np.ndarray:
    """∂ loss / ∂ y_prob of :func:`soft_iou_reference`: −(t (U + s) − (I + s)(1 − t)) / (U + s)² per pixel,
    with I = Σ p t and U = Σ p + Σ t − I over the batch (∂I/∂p = t, ∂U/∂p = 1 − t)."""
    t, p = np.asarray(y_true, np.float64), np.asarray(y_prob, np.float64)
    inter = np.sum(p * t)
    union = np.sum(p) + np.sum(t) - inter
    return -(t * (union + smooth) - (inter + smooth) * (1 - t)) / (union + smooth) ** 2


@functools.cache
def _mask_probe() -> tuple[np.ndarray, np.ndarray]:
    """Four 8×8 images: a large object, a small one, an empty image, and a thin strip; predictions are
    probabilities near the truth with noise (sigmoid of a noisy logit)."""
    true = np.zeros((4, 8, 8, 1), "float32")
    true[0, 1:6, 2:7], true[1, 3:5, 3:5], true[3, 0:8, 6:7] = 1.0, 1.0, 1.0
    logits = (true * 2 - 1) * 1.5 + np.random.default_rng(7).normal(size=true.shape) * 1.2
    return true, (1 / (1 + np.exp(-logits))).astype("float32")


M = variants(lambda t, p, **kw: np.array(soft_iou_reference(t, p, **kw)))
# fmt: off
Q4_MISTAKES = [
    M("the soft Dice, not the soft IoU", "That is the lesson's Dice: twice the overlap over Σ p + Σ t. IoU divides the overlap, once, by the union.", dice=True),
    M("the union without the overlap taken off", "Σ p + Σ t counts the overlap twice, once in each mask. The union is |P| + |T| − |P ∩ T|: subtract the soft overlap once.", union_as_sum=True),
    M("the IoU score, not the loss", "A loss is minimised, and IoU is best at 1: train on 1 − IoU.", result="score"),
    M("one IoU per image, averaged", "The lesson's soft Dice, like its mean IoU, counts every pixel of the batch together: sum over all the axes at once (images included), so the batch has one overlap, one union and one IoU.", per_image=True),
    M("no smoothing term", "Without s a batch with nothing to find scores 0 however close to 0 its predictions are (and 0 / 0 when they are all 0). Add s = 1 to the numerator and the denominator.", smooth=0.0),
    M("probabilities rounded to 0 or 1", "Rounding turns the loss into the hard IoU, whose gradient is 0 almost everywhere. Use the probabilities themselves: that is what makes it 'soft'.", rounded=True),
]
NO_GRADIENT = Mistake("no gradient reaches the probabilities", "The value is right, but the gradient does not flow back to y_prob: NumPy (or .numpy(), or a float()) cuts the tape. Use keras.ops (or tf) throughout.")
# fmt: on


def _check_soft_iou(fn: Any) -> None:
    from utils.env import import_tensorflow

    tf = import_tensorflow()  # imported on first use, its start-up noise hidden
    true, prob = _mask_probe()
    what = f"soft_iou_loss(y_true {true.shape}, y_prob {prob.shape})"
    y_true, y_prob = tf.constant(true), tf.constant(prob)
    with tf.GradientTape() as tape:
        tape.watch(y_prob)
        out = call(fn, y_true, y_prob)
    hint = "Return one number: 1 − the batch's soft IoU."
    got = as_number(out, what, hint=hint)
    # the probe is float32 and no layer runs, so the answer is float32-exact under any Keras policy (a TPU's
    # policy-wide tolerance would let the soft Dice, 0.10 away, pass), unless the answer itself is half precision
    tol = answer_tolerance(out) if dtype_name(out) in HALF else {"rtol": 1e-5, "atol": 1e-6}
    judge(
        np.array(got),
        np.array(soft_iou_reference(true, prob)),
        Q4_MISTAKES,
        what=what,
        inputs=(true, prob),
        tol=tol,
    )
    grad = tape.gradient(out, y_prob) if tf.is_tensor(out) else None
    ref = soft_iou_gradient(true, prob)
    if grad is None or not np.any(np.asarray(grad)):
        NO_GRADIENT.fail(
            f"the gradient of {what}", expected="∂loss/∂y_prob, one number per pixel", got="None"
        )
    tol = answer_tolerance(out, grad, rtol=1e-4, atol=1e-6)
    judge(
        as_array(grad, "the gradient"), ref, what=f"the gradient of {what}", tol=tol,
        hint="The value is right but its gradient is not: is every step written with keras.ops or tf?",
        describe=f"∂loss/∂y_prob, between {ref.min():.4f} and {ref.max():.4f}",
    )  # fmt: skip


q4 = Exercise(
    "Q4 · a soft IoU loss",
    _check_soft_iou,
    hint=(
        "Write IoU with counts first, the union in terms of |P|, |T| and the overlap. Then make each count soft, "
        "as the lesson did for Dice.",
        "|P| + |T| counts the overlap twice, once in each mask; the union counts it once. The soft counts are sums "
        "over every pixel of the batch (keras.ops.sum without an axis), and s = 1 goes above and below the line.",
    ),
)
