"""Object detection and semantic segmentation on generated scenes (lesson 05c).

Conventions used everywhere in this module:

- A **box** is a float array ``(..., 4)`` in **corner format** ``(x_min, y_min, x_max, y_max)``, in
  continuous pixel coordinates: pixel column ``j`` covers ``[j, j + 1)``, so a box covering pixels
  0..9 is ``(0, 0, 10, 10)`` and its area is ``(x_max - x_min) * (y_max - y_min)``, with no ``+ 1``.
- **Centre-size** format is ``(cx, cy, w, h)``.
- Detection classes are ``0 .. n_classes - 1``; a segmentation mask holds ``0`` for background and
  ``class + 1`` for an object's pixels.
- The detector is YOLO-style: an ``S × S`` grid of cells, each predicting at most one object whose
  centre falls inside it. Its target and its (activated) prediction share one layout per cell,
  ``[objectness, tx, ty, tw, th, class_0 .. class_{C-1}]`` (see :func:`encode_grid`).

NumPy does the geometry and the metrics (float64, exact); Keras builds the models and the loss.
TensorFlow, Keras and plotly are imported when first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import keras

# The four shapes of utils.data.generated used for detection: distinct at small sizes.
DETECTION_CLASSES = ("disk", "square", "triangle", "ring")
_SHAPE_KINDS = (0, 1, 2, 5)  # their indices in utils.data.SHAPES32_CLASSES
COCO_IOU_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))  # 0.50, 0.55, ..., 0.95
GRID_CHANNELS = ("objectness", "tx", "ty", "tw", "th")  # then one channel per class


# ---------------------------------------------------------------------------------------------
# Boxes
# ---------------------------------------------------------------------------------------------


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Return the areas ``(x_max - x_min) * (y_max - y_min)`` of corner boxes ``(..., 4)`` (0 if inverted)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    w = np.clip(boxes[..., 2] - boxes[..., 0], 0, None)
    h = np.clip(boxes[..., 3] - boxes[..., 1], 0, None)
    return w * h


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Return the (N, M) matrix of intersection over union between corner boxes (N, 4) and (M, 4).

    ``IoU = |A ∩ B| / |A ∪ B|`` with ``|A ∪ B| = |A| + |B| - |A ∩ B|``; 0 where the union is 0.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def corners_to_centre(boxes: np.ndarray) -> np.ndarray:
    """Return ``(cx, cy, w, h)`` boxes from corner boxes ``(x_min, y_min, x_max, y_max)``, shape kept."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.stack(
        [
            (b[..., 0] + b[..., 2]) / 2,
            (b[..., 1] + b[..., 3]) / 2,
            b[..., 2] - b[..., 0],
            b[..., 3] - b[..., 1],
        ],
        axis=-1,
    )


def centre_to_corners(boxes: np.ndarray) -> np.ndarray:
    """Return corner boxes ``(x_min, y_min, x_max, y_max)`` from ``(cx, cy, w, h)`` boxes, shape kept."""
    b = np.asarray(boxes, dtype=np.float64)
    half_w, half_h = b[..., 2] / 2, b[..., 3] / 2
    return np.stack([b[..., 0] - half_w, b[..., 1] - half_h, b[..., 0] + half_w, b[..., 1] + half_h], axis=-1)


def to_tf_order(boxes: np.ndarray) -> np.ndarray:
    """Return boxes in TensorFlow's ``(y_min, x_min, y_max, x_max)`` order (``tf.image`` functions)."""
    return np.asarray(boxes)[..., [1, 0, 3, 2]]


# ---------------------------------------------------------------------------------------------
# Non-maximum suppression
# ---------------------------------------------------------------------------------------------


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.5,
    max_output: int | None = None,
    score_threshold: float = -np.inf,
) -> np.ndarray:
    """Return the indices of the boxes greedy non-maximum suppression keeps, highest score first.

    Boxes with a score not above ``score_threshold`` are never candidates. Repeatedly keep the
    best remaining box (equal scores: the lower index first) and drop every remaining box whose
    IoU with it is **greater than** ``iou_threshold``; stop after ``max_output`` boxes. This is
    what ``tf.image.non_max_suppression`` computes (given boxes in its ``(y, x, y, x)`` order).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    candidates = np.flatnonzero(scores > score_threshold)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]  # ties: lower index first
    overlaps = iou(boxes, boxes)
    limit = len(order) if max_output is None else max_output
    keep: list[int] = []
    alive = np.ones(len(order), dtype=bool)
    for rank, index in enumerate(order):
        if len(keep) >= limit:
            break
        if not alive[rank]:
            continue
        keep.append(int(index))
        alive[rank + 1 :] &= overlaps[index, order[rank + 1 :]] <= iou_threshold
    return np.array(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    iou_threshold: float = 0.5,
    max_output: int | None = None,
    score_threshold: float = -np.inf,
) -> np.ndarray:
    """Return the indices class-aware NMS keeps: boxes only suppress boxes of their own class.

    Runs :func:`nms` per class and returns the kept indices of all classes by descending score
    (ties: lower index first), at most ``max_output`` of them.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    classes = np.asarray(classes).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    kept = [
        np.flatnonzero(classes == c)[
            nms(boxes[classes == c], scores[classes == c], iou_threshold, None, score_threshold)
        ]
        for c in np.unique(classes)
    ]
    kept = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    kept = np.sort(kept)  # by index, so the stable sort below breaks ties by index
    kept = kept[np.argsort(-scores[kept], kind="stable")]
    return kept[:max_output].astype(np.int64)


# ---------------------------------------------------------------------------------------------
# The YOLO-style grid encoding
# ---------------------------------------------------------------------------------------------


def encode_grid(
    boxes: np.ndarray, classes: np.ndarray, grid: int, image_size: int, n_classes: int
) -> np.ndarray:
    """Return the detector's target for one image: float32 ``(grid, grid, 5 + n_classes)``.

    The image is cut into ``grid × grid`` cells of ``s = image_size / grid`` pixels. An object
    belongs to the cell ``(row, col) = (⌊cy / s⌋, ⌊cx / s⌋)`` that holds its centre, and that
    cell's channels are ``[1, tx, ty, tw, th, one-hot class]`` with

    ``tx = cx / s - col``, ``ty = cy / s - row`` (the centre's offset inside the cell, in [0, 1)),
    ``tw = log(w / s)``, ``th = log(h / s)`` (the size, in log cell units).

    Every other cell is all zeros. A cell holds one object: when two centres fall in the same
    cell, the object listed later (in front, in :func:`make_scenes`) wins.
    """
    target = np.zeros((grid, grid, 5 + n_classes), dtype=np.float32)
    cell = image_size / grid
    for (cx, cy, w, h), c in zip(
        corners_to_centre(np.reshape(boxes, (-1, 4))), np.reshape(classes, -1), strict=True
    ):
        col = min(int(cx // cell), grid - 1)
        row = min(int(cy // cell), grid - 1)
        target[row, col, :] = 0.0
        target[row, col, :5] = [1.0, cx / cell - col, cy / cell - row, np.log(w / cell), np.log(h / cell)]
        target[row, col, 5 + int(c)] = 1.0
    return target


def encode_grids(
    boxes: list[np.ndarray], classes: list[np.ndarray], grid: int, image_size: int, n_classes: int
) -> np.ndarray:
    """Return :func:`encode_grid` of every image, stacked: float32 ``(N, grid, grid, 5 + n_classes)``."""
    return np.stack(
        [encode_grid(b, c, grid, image_size, n_classes) for b, c in zip(boxes, classes, strict=True)]
    )


def activate_grid(raw: Any) -> np.ndarray:
    """Turn the detector's raw outputs ``(..., S, S, 5 + C)`` into the target layout (float32 NumPy).

    objectness → sigmoid (a probability), tx, ty → sigmoid (inside the cell), tw, th as they are
    (log sizes), class logits → softmax (probabilities).
    """
    raw = np.asarray(raw, dtype=np.float32)
    out = np.empty_like(raw)
    out[..., :3] = 1.0 / (1.0 + np.exp(-raw[..., :3]))
    out[..., 3:5] = raw[..., 3:5]
    logits = raw[..., 5:] - raw[..., 5:].max(axis=-1, keepdims=True)
    out[..., 5:] = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    return out


def decode_grid(
    grid_values: np.ndarray, image_size: int, score_threshold: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(boxes, scores, classes)`` from one image's grid in the :func:`encode_grid` layout.

    Inverts the encoding cell by cell: ``cx = (col + tx) s``, ``cy = (row + ty) s``,
    ``w = s e^{tw}``, ``h = s e^{th}``. A cell's score is objectness × its best class's probability
    and its class that best class; cells with a score not above ``score_threshold`` are dropped.
    ``boxes`` float64 (K, 4) corners, ``scores`` float64 (K,), ``classes`` int64 (K,), in cell order
    (row by row). For a model's output, apply :func:`activate_grid` first, and NMS after.
    """
    g = np.asarray(grid_values, dtype=np.float64)
    grid = g.shape[0]
    cell = image_size / grid
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    cx = (cols + g[..., 1]) * cell
    cy = (rows + g[..., 2]) * cell
    w = cell * np.exp(g[..., 3])
    h = cell * np.exp(g[..., 4])
    class_prob = g[..., 5:]
    classes = class_prob.argmax(axis=-1)
    scores = g[..., 0] * class_prob.max(axis=-1)
    keep = (scores > score_threshold).reshape(-1)
    boxes = centre_to_corners(np.stack([cx, cy, w, h], axis=-1)).reshape(-1, 4)
    return boxes[keep], scores.reshape(-1)[keep], classes.reshape(-1)[keep].astype(np.int64)


def detect(
    raw: Any,
    image_size: int,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    max_output: int = 20,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return one ``(boxes, scores, classes)`` per image from raw detector outputs ``(N, S, S, 5 + C)``.

    activate → decode (scores above ``score_threshold``) → class-aware NMS, at most ``max_output``.
    """
    activated = activate_grid(raw)
    found = []
    for g in activated:
        boxes, scores, classes = decode_grid(g, image_size, score_threshold)
        keep = batched_nms(boxes, scores, classes, iou_threshold, max_output)
        found.append((boxes[keep], scores[keep], classes[keep]))
    return found


# ---------------------------------------------------------------------------------------------
# Average precision
# ---------------------------------------------------------------------------------------------


def match_detections(
    boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = 0.5
) -> np.ndarray:
    """Return a bool array, one per detection (input order): True where it is a true positive.

    Detections (one image, one class) are taken by descending score (ties: lower index first);
    each is matched to the **unmatched** ground truth with the highest IoU, if that IoU is
    ``>= iou_threshold``, and that ground truth is then used up. Unmatched detections are false
    positives (duplicates of a found object included).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    tp = np.zeros(len(scores), dtype=bool)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(scores) == 0 or len(gt_boxes) == 0:
        return tp
    overlaps = iou(boxes, gt_boxes)
    used = np.zeros(len(gt_boxes), dtype=bool)
    for d in np.argsort(-scores, kind="stable"):
        candidates = np.where(used, -1.0, overlaps[d])
        best = int(np.argmax(candidates))
        if candidates[best] >= iou_threshold:
            used[best] = True
            tp[d] = True
    return tp


def precision_recall(
    scores: np.ndarray, tp: np.ndarray, n_ground_truth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(recall, precision)`` after each detection, taken by descending score.

    After the k best detections: ``precision = TP_k / k`` and ``recall = TP_k / n_ground_truth``.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.cumsum(np.asarray(tp, dtype=np.float64)[order])
    precision = hits / np.arange(1, len(order) + 1)
    recall = hits / max(n_ground_truth, 1)
    return recall, precision


def precision_envelope(precision: np.ndarray) -> np.ndarray:
    """Return the monotone envelope: at each point, the best precision at this or any later point.

    ``p_interp(k) = max_{j >= k} p(j)``: the highest precision reachable at a recall at least as high.
    """
    return np.maximum.accumulate(np.asarray(precision, dtype=np.float64)[::-1])[::-1]


def average_precision(recall: np.ndarray, precision: np.ndarray, method: str = "all") -> float:
    """Return the average precision of a precision–recall curve (points by descending score).

    ``method="all"`` (all-point, PASCAL VOC 2010 onwards): the area under the envelope,
    ``Σ_k (r_k - r_{k-1}) · max_{j >= k} p_j`` with ``r_0 = 0``.
    ``method="11"`` (VOC 2007): the mean over ``r ∈ {0, 0.1, …, 1}`` of the best precision at a
    recall ``>= r`` (0 where no point reaches ``r``). ``method="101"``: the same on 101 recall
    points, as COCO does. An empty curve has AP 0.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.size == 0:
        return 0.0
    if method == "all":
        envelope = precision_envelope(precision)
        steps = np.diff(np.concatenate([[0.0], recall]))
        return float(np.sum(steps * envelope))
    if method in ("11", "101"):
        points = np.linspace(0.0, 1.0, int(method))
        envelope = precision_envelope(precision)
        best = [envelope[np.argmax(recall >= r)] if np.any(recall >= r - 1e-12) else 0.0 for r in points]
        return float(np.mean(best))
    raise ValueError(f"method must be 'all', '11' or '101', not {method!r}")


def average_precision_per_class(
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ground_truths: list[tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
    n_classes: int = len(DETECTION_CLASSES),
    method: str = "all",
) -> np.ndarray:
    """Return the AP of each class (n_classes,), NaN for a class with no ground truth at all.

    ``detections``: one ``(boxes, scores, classes)`` per image; ``ground_truths``: one
    ``(boxes, classes)`` per image. Detections are matched per image and class
    (:func:`match_detections`), then pooled over the images and ranked by score.
    """
    result = np.full(n_classes, np.nan)
    for c in range(n_classes):
        all_scores, all_tp, n_gt = [], [], 0
        for (boxes, scores, classes), (gt_boxes, gt_classes) in zip(detections, ground_truths, strict=True):
            mine = np.asarray(classes).reshape(-1) == c
            theirs = np.asarray(gt_classes).reshape(-1) == c
            gt_c = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)[theirs]
            boxes_c = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[mine]
            scores_c = np.asarray(scores, dtype=np.float64).reshape(-1)[mine]
            all_tp.append(match_detections(boxes_c, scores_c, gt_c, iou_threshold))
            all_scores.append(scores_c)
            n_gt += len(gt_c)
        if n_gt == 0:
            continue  # no ground truth: AP undefined, the class is skipped
        recall, precision = precision_recall(np.concatenate(all_scores), np.concatenate(all_tp), n_gt)
        result[c] = average_precision(recall, precision, method)
    return result


def mean_average_precision(
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ground_truths: list[tuple[np.ndarray, np.ndarray]],
    iou_thresholds: tuple[float, ...] | float = (0.5,),
    n_classes: int = len(DETECTION_CLASSES),
    method: str = "all",
) -> float:
    """Return the mean over ``iou_thresholds`` of the mean AP over classes that have ground truth.

    ``iou_thresholds=(0.5,)`` gives mAP@0.5 (VOC); ``COCO_IOU_THRESHOLDS`` gives mAP@[.5:.95].
    """
    thresholds = np.atleast_1d(iou_thresholds)
    per_threshold = [
        np.nanmean(average_precision_per_class(detections, ground_truths, float(t), n_classes, method))
        for t in thresholds
    ]
    return float(np.mean(per_threshold))


# ---------------------------------------------------------------------------------------------
# Segmentation metrics
# ---------------------------------------------------------------------------------------------


def mask_iou(pred_mask: np.ndarray, true_mask: np.ndarray) -> np.ndarray | float:
    """Return ``|P ∩ T| / |P ∪ T|`` of boolean masks over their last two axes (one value per image).

    1.0 where both masks are empty (nothing to find, nothing found).
    """
    p, t = np.asarray(pred_mask, dtype=bool), np.asarray(true_mask, dtype=bool)
    inter = np.sum(p & t, axis=(-2, -1))
    union = np.sum(p | t, axis=(-2, -1))
    value = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return float(value) if value.ndim == 0 else value


def dice(pred_mask: np.ndarray, true_mask: np.ndarray) -> np.ndarray | float:
    """Return ``2 |P ∩ T| / (|P| + |T|)`` of boolean masks over their last two axes (per image).

    1.0 where both masks are empty. Always ``dice = 2 · IoU / (1 + IoU)``.
    """
    p, t = np.asarray(pred_mask, dtype=bool), np.asarray(true_mask, dtype=bool)
    inter = np.sum(p & t, axis=(-2, -1))
    total = np.sum(p, axis=(-2, -1)) + np.sum(t, axis=(-2, -1))
    value = np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)
    return float(value) if value.ndim == 0 else value


def class_iou(pred_labels: np.ndarray, true_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Return each class's IoU over all pixels of a set of label maps (n_classes,), as Keras's MeanIoU.

    NaN for a class that appears in neither.
    """
    p, t = np.asarray(pred_labels).reshape(-1), np.asarray(true_labels).reshape(-1)
    confusion = np.bincount(t * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)


# ---------------------------------------------------------------------------------------------
# Generated scenes
# ---------------------------------------------------------------------------------------------


class Scenes(NamedTuple):
    """Generated scenes: unpack as ``images, boxes, classes, masks = make_scenes(...)``."""

    images: np.ndarray  # uint8 (N, size, size, 3)
    boxes: list[np.ndarray]  # per image: float64 (K, 4) corners, tight around the visible pixels
    classes: list[np.ndarray]  # per image: int64 (K,), 0 .. len(DETECTION_CLASSES) - 1
    masks: np.ndarray  # uint8 (N, size, size): 0 background, class + 1 on an object's visible pixels


def make_scenes(
    n: int,
    size: int = 64,
    max_objects: int = 4,
    seed: int = 0,
    min_visible: float = 0.5,
) -> Scenes:
    """Return ``n`` generated scenes of 1 to ``max_objects`` shapes (:class:`Scenes`).

    The shapes are four of ``utils.data.SHAPES32_CLASSES`` (``DETECTION_CLASSES``: disk, square,
    triangle, ring), each with a random class, centre, radius (``size/14`` to ``size/5``), tilt
    (±15°) and colour, drawn in order so that later ones hide earlier ones. An object with less
    than ``min_visible`` of its pixels left in view (or fewer than 12) is removed altogether,
    from the image too. The background has a random colour and gradient, and specks and noise are
    added over everything. The box of an object is tight around its **visible** pixels, and the
    mask holds ``class + 1`` there. Deterministic per ``seed``; about 1,000 scenes per second.
    """
    from utils.data.generated import _shape_mask

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    ramp = np.linspace(-1, 1, size)
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    all_boxes, all_classes = [], []
    for i in range(n):
        count = int(rng.integers(1, max_objects + 1))
        kinds = rng.integers(0, len(_SHAPE_KINDS), count)
        radius = rng.uniform(size / 14, size / 5, count)
        centres = rng.uniform(0, size, (count, 2))
        tilts = np.deg2rad(rng.uniform(-15, 15, count))
        background = rng.uniform(0, 255, 3)
        colours = []
        for _ in range(count):  # a colour that stands out from the background
            colour = rng.uniform(0, 255, 3)
            while np.linalg.norm(colour - background) < 90:
                colour = rng.uniform(0, 255, 3)
            colours.append(colour)
        shapes = []
        for k in range(count):
            dx, dy = (xx - centres[k, 0]) / radius[k], (centres[k, 1] - yy) / radius[k]
            u = np.cos(tilts[k]) * dx + np.sin(tilts[k]) * dy
            v = -np.sin(tilts[k]) * dx + np.cos(tilts[k]) * dy
            shapes.append(_shape_mask(_SHAPE_KINDS[kinds[k]], u, v))
        alive = [k for k in range(count) if shapes[k].sum() >= 12]
        while True:  # drop mostly hidden objects, then look again: the rest can only gain
            owner = np.full((size, size), -1)
            for k in alive:
                owner[shapes[k]] = k
            visible = {k: int(np.sum(owner == k)) for k in alive}
            hidden = [k for k in alive if visible[k] < max(12, min_visible * shapes[k].sum())]
            if not hidden:
                break
            alive = [k for k in alive if k not in hidden]
        angle = rng.uniform(0, 2 * np.pi)
        gradient = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
        image = background + rng.uniform(0, 40) * gradient[..., None] * rng.uniform(-1, 1, 3)
        boxes, classes = [], []
        for k in alive:
            here = owner == k
            image[here] = colours[k]
            masks[i][here] = kinds[k] + 1
            rows, cols = np.nonzero(here)
            boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
            classes.append(kinds[k])
        for _ in range(rng.integers(0, 5)):  # specks: small squares of colour that are no object
            sx, sy = rng.integers(0, size - 2, 2)
            image[sy : sy + 2, sx : sx + 2] = rng.uniform(0, 255, 3)
        image += rng.normal(0, rng.uniform(3, 10), image.shape)
        images[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        all_boxes.append(np.array(boxes, dtype=np.float64).reshape(-1, 4))
        all_classes.append(np.array(classes, dtype=np.int64))
    return Scenes(images, all_boxes, all_classes, masks)


# ---------------------------------------------------------------------------------------------
# Models and the detection loss
# ---------------------------------------------------------------------------------------------


def _conv(x: Any, filters: int, strides: int = 1) -> Any:
    """3×3 convolution, batch norm, ReLU."""
    import keras

    x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def grid_detector(image_size: int = 64, grid: int = 8, n_classes: int = 4, width: int = 16) -> keras.Model:
    """Return a small single-stage grid detector: uint8-range images → raw outputs (S, S, 5 + C).

    Rescales the pixels to [0, 1], then pairs of convolution blocks (3×3 convolution, batch norm,
    ReLU), the first of each with stride 2, until the resolution is ``grid × grid`` (``image_size /
    grid`` must be a power of 2), with ``width`` channels doubling at each halving after the first;
    two more blocks at the grid's resolution for context, and a 1×1 convolution (float32, for mixed
    precision) with one output per channel of :func:`encode_grid`'s layout, before activations.
    """
    import keras

    steps = int(round(np.log2(image_size / grid)))
    if 2**steps * grid != image_size:
        raise ValueError(f"image_size / grid must be a power of 2, not {image_size} / {grid}")
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for step in range(steps):
        x = _conv(x, width * 2**step, strides=2)
        x = _conv(x, width * 2**step)
    x = _conv(x, width * 2 ** (steps - 1))
    x = _conv(x, width * 2 ** (steps - 1))
    outputs = keras.layers.Conv2D(5 + n_classes, 1, dtype="float32", name="head")(x)
    return keras.Model(inputs, outputs, name="grid_detector")


def focal_term(logits: Any, targets: Any, gamma: float = 2.0, alpha: float = 0.25) -> Any:
    """Return the binary focal loss of each element (float32): ``-α_t (1 - p_t)^γ log p_t``.

    ``p = σ(logit)``; ``p_t = p`` and ``α_t = α`` where the target is 1, ``p_t = 1 - p`` and
    ``α_t = 1 - α`` where it is 0. ``γ = 0`` and ``α = 0.5`` give half the binary cross-entropy.
    ``log p_t`` is computed from the logit (``-softplus(∓z)``), which never overflows.
    """
    import keras

    z = keras.ops.cast(logits, "float32")
    t = keras.ops.cast(targets, "float32")
    log_p = -keras.ops.softplus(-z)  # log σ(z)
    log_1mp = -keras.ops.softplus(z)  # log(1 - σ(z))
    p = keras.ops.sigmoid(z)
    p_t = t * p + (1 - t) * (1 - p)
    log_p_t = t * log_p + (1 - t) * log_1mp
    alpha_t = t * alpha + (1 - t) * (1 - alpha)
    return -alpha_t * (1 - p_t) ** gamma * log_p_t


def detection_loss_terms(y_true: Any, y_pred: Any, gamma: float = 2.0, alpha: float = 0.25) -> dict[str, Any]:
    """Return the three terms of the grid detector's loss (float32 scalars), each divided by the
    number of objects in the batch ``N = max(Σ objectness, 1)``:

    - ``objectness``: the focal term of every cell's objectness logit, summed over all cells;
    - ``box``: ``Σ (σ(tx̂) - tx)² + (σ(tŷ) - ty)² + (tŵ - tw)² + (tĥ - th)²`` over cells with an object;
    - ``class``: the softmax cross-entropy of the class logits over cells with an object.

    ``y_true`` in :func:`encode_grid`'s layout, ``y_pred`` the model's raw outputs.
    """
    import keras

    ops = keras.ops
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    obj = y_true[..., 0]
    n = ops.maximum(ops.sum(obj), 1.0)
    objectness = ops.sum(focal_term(y_pred[..., 0], obj, gamma, alpha)) / n
    centre = ops.sigmoid(y_pred[..., 1:3])
    squared = ops.sum((centre - y_true[..., 1:3]) ** 2, axis=-1) + ops.sum(
        (y_pred[..., 3:5] - y_true[..., 3:5]) ** 2, axis=-1
    )
    box = ops.sum(obj * squared) / n
    log_probs = ops.log_softmax(y_pred[..., 5:], axis=-1)
    cls = ops.sum(obj * -ops.sum(y_true[..., 5:] * log_probs, axis=-1)) / n
    return {"objectness": objectness, "box": box, "class": cls}


def detection_loss(y_true: Any, y_pred: Any, box_weight: float = 5.0, class_weight: float = 1.0) -> Any:
    """Return the grid detector's loss: objectness + ``box_weight`` × box + ``class_weight`` × class
    (float32 scalar).

    The terms are :func:`detection_loss_terms`; ``box_weight`` (λ, 5 as in YOLO) weights the
    regression, which is small in these units next to the other two; ``class_weight`` > 1 pushes
    the detector to tell the shapes apart sooner, which is what it learns last.
    """
    terms = detection_loss_terms(y_true, y_pred)
    return terms["objectness"] + box_weight * terms["box"] + class_weight * terms["class"]


def soft_dice(y_true: Any, y_prob: Any, n_classes: int, smooth: float = 1.0, per_image: bool = False) -> Any:
    """Return each class's soft Dice, ``(2 Σ p·t + s) / (Σ p + Σ t + s)``, over the whole batch (n_classes,).

    ``y_true`` holds class indices (batch, H, W) or (batch, H, W, 1); ``y_prob`` the per-pixel class
    probabilities (batch, H, W, n_classes); ``t`` is the one-hot truth and ``p`` the probability. The sums
    run over every pixel of the batch, as mean IoU counts every pixel of the test set (``per_image=True``:
    over each image's pixels, (batch, n_classes)). On hard 0/1 predictions with ``smooth=0`` this is
    :func:`dice` of each class's mask. ``smooth`` (s) makes a class absent from the truth and predicted
    absent score 1, not 0/0. Written in ``keras.ops``, so it is differentiable in ``y_prob``.
    """
    from keras import ops

    labels = ops.cast(y_true, "int32")
    if len(labels.shape) == 4:
        labels = ops.squeeze(labels, axis=-1)
    truth = ops.one_hot(labels, n_classes, dtype="float32")
    prob = ops.cast(y_prob, "float32")
    axes = (1, 2) if per_image else (0, 1, 2)
    inter = ops.sum(truth * prob, axis=axes)
    total = ops.sum(truth, axis=axes) + ops.sum(prob, axis=axes)
    return (2.0 * inter + smooth) / (total + smooth)


def segmentation_loss(y_true: Any, y_prob: Any, dice_weight: float = 1.0, smooth: float = 1.0) -> Any:
    """Return per-pixel cross-entropy + ``dice_weight`` × (1 − the mean over classes of the batch's soft Dice).

    The cross-entropy is averaged over every pixel, so the background, most of the pixels, dominates
    it; the Dice term (:func:`soft_dice`, its sums over the whole batch) gives each class the same say
    however few pixels it has. ``dice_weight=0`` is plain ``sparse_categorical_crossentropy``.
    Float32 scalar.
    """
    import keras

    ops = keras.ops
    n_classes = y_prob.shape[-1]
    labels = ops.cast(y_true, "int32")
    if len(labels.shape) == 4:
        labels = ops.squeeze(labels, axis=-1)
    prob = ops.cast(y_prob, "float32")
    ce = ops.mean(keras.losses.sparse_categorical_crossentropy(labels, prob))
    if not dice_weight:
        return ce
    return ce + dice_weight * (1.0 - ops.mean(soft_dice(labels, prob, n_classes, smooth)))


def unet(
    size: int = 64, n_classes: int = 5, width: int = 16, depth: int = 3, upsampling: str = "transpose"
) -> keras.Model:
    """Return a small U-Net: images (size, size, 3) in the 0-255 range → per-pixel class
    probabilities (size, size, n_classes), float32, softmax; ``n_classes`` counts the background.

    Encoder: ``depth`` levels of two 3×3 convolutions (width doubling each level) then 2×2 max
    pooling; a bottleneck; decoder: upsample ×2 (``upsampling="transpose"``: a learned
    ``Conv2DTranspose`` with stride 2; ``"bilinear"``: a fixed ``UpSampling2D`` then a 3×3
    convolution), **concatenate** the encoder's feature map of the same resolution (the skip
    connection), two 3×3 convolutions. ``size`` must be divisible by ``2**depth``.
    """
    import keras

    if size % 2**depth:
        raise ValueError(f"size {size} must be divisible by 2**depth = {2**depth}")
    if upsampling not in ("transpose", "bilinear"):
        raise ValueError(f"upsampling must be 'transpose' or 'bilinear', not {upsampling!r}")
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    skips = []
    for level in range(depth):
        x = _conv(_conv(x, width * 2**level), width * 2**level)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = _conv(_conv(x, width * 2**depth), width * 2**depth)
    for level in reversed(range(depth)):
        filters = width * 2**level
        if upsampling == "transpose":
            x = keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
        else:
            x = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
            x = keras.layers.Conv2D(filters, 3, padding="same")(x)
        x = keras.layers.Concatenate()([x, skips[level]])
        x = _conv(_conv(x, filters), filters)
    outputs = keras.layers.Conv2D(n_classes, 1, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name="unet")


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

BOX_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4")


def boxes_figure(
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    *,
    class_names: tuple[str, ...] = DETECTION_CLASSES,
    title: str | None = None,
    dash: str = "solid",
    width: int = 320,
) -> Any:
    """Return a plotly figure of ``image`` (H, W, 3) with its corner boxes drawn and labelled."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Image(z=np.asarray(image)))
    add_boxes(fig, boxes, classes, scores, class_names=class_names, dash=dash)
    h, w = np.asarray(image).shape[:2]
    fig.update_layout(
        title=title,
        width=width,
        height=int(width * h / w) + 40,
        margin={"l": 5, "r": 5, "t": 40 if title else 5, "b": 5},
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def add_boxes(
    fig: Any,
    boxes: np.ndarray,
    classes: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    *,
    class_names: tuple[str, ...] = DETECTION_CLASSES,
    dash: str = "solid",
    row: int | None = None,
    col: int | None = None,
) -> Any:
    """Draw corner boxes (and their class names, with scores if given) onto a plotly figure; return it."""
    where = {} if row is None else {"row": row, "col": col}
    for k, box in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        c = None if classes is None else int(np.asarray(classes).reshape(-1)[k])
        colour = BOX_COLOURS[(c or 0) % len(BOX_COLOURS)]
        # go.Image puts pixel j's centre at x = j, so pixel edges are at j - 0.5
        x0, y0, x1, y1 = box - 0.5
        fig.add_shape(
            type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line={"color": colour, "width": 2, "dash": dash}, **where
        )
        label = "" if c is None else class_names[c]
        if scores is not None:
            label += f" {float(np.asarray(scores).reshape(-1)[k]):.2f}"
        if label:
            fig.add_annotation(
                x=x0, y=y0, text=label.strip(), showarrow=False, xanchor="left", yanchor="bottom",
                font={"color": colour, "size": 10}, bgcolor="rgba(255,255,255,0.6)", **where,
            )  # fmt: skip
    return fig


def scenes_figure(
    images: np.ndarray,
    boxes: list[np.ndarray],
    classes: list[np.ndarray],
    scores: list[np.ndarray] | None = None,
    *,
    truth: list[tuple[np.ndarray, np.ndarray]] | None = None,
    class_names: tuple[str, ...] = DETECTION_CLASSES,
    title: str | None = None,
    panel: int = 220,
) -> Any:
    """Return a plotly figure of images side by side, each with its boxes (solid, labelled).

    ``scores`` labels each box with its score too; ``truth`` (one ``(boxes, classes)`` per image)
    adds the ground truth as dashed, unlabelled boxes.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    n = len(images)
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.01)
    for i in range(n):
        fig.add_trace(go.Image(z=np.asarray(images[i])), row=1, col=i + 1)
        if truth is not None:
            add_boxes(fig, truth[i][0], truth[i][1], class_names=(("",) * len(class_names)), dash="dot",
                      row=1, col=i + 1)  # fmt: skip
        add_boxes(
            fig, boxes[i], classes[i], None if scores is None else scores[i], class_names=class_names,
            row=1, col=i + 1,
        )  # fmt: skip
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(
        title=title, width=panel * n + 20, height=panel + 60, margin={"l": 5, "r": 5, "t": 50, "b": 5}
    )
    return fig


def masks_figure(
    image: np.ndarray,
    true_mask: np.ndarray,
    pred_mask: np.ndarray | None = None,
    *,
    class_names: tuple[str, ...] = ("background", *DETECTION_CLASSES),
    title: str | None = None,
    panel: int = 240,
) -> Any:
    """Return a plotly figure: the image, then each class-index mask laid over it (0 = background, clear)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    masks = [("true mask", true_mask)] + ([] if pred_mask is None else [("predicted mask", pred_mask)])
    fig = make_subplots(rows=1, cols=1 + len(masks), horizontal_spacing=0.02,
                        subplot_titles=["image", *[name for name, _ in masks]])  # fmt: skip
    fig.add_trace(go.Image(z=np.asarray(image)), row=1, col=1)
    n = len(class_names)
    colours = ["rgba(0,0,0,0)", *BOX_COLOURS[: n - 1]]
    scale = [[edge, colours[k]] for k in range(n) for edge in (k / n, (k + 1) / n)]
    for col, (_, mask) in enumerate(masks, start=2):
        fig.add_trace(go.Image(z=np.asarray(image)), row=1, col=col)
        labels = np.asarray(mask)
        fig.add_trace(
            go.Heatmap(
                z=labels, zmin=-0.5, zmax=n - 0.5, colorscale=scale, opacity=0.75, showscale=col == 2,
                text=np.asarray(class_names, dtype=object)[labels], hovertemplate="x %{x}, y %{y}: %{text}<extra></extra>",
                colorbar={"tickvals": list(range(n)), "ticktext": list(class_names), "len": 0.9},
            ),
            row=1, col=col,
        )  # fmt: skip
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(
        title=title,
        width=panel * (1 + len(masks)) + 120,
        height=panel + 70,
        margin={"l": 5, "r": 5, "t": 60, "b": 5},
    )
    return fig
