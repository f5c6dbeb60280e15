"""Tests of utils.detection: boxes, NMS (against TensorFlow's), mAP on hand-worked cases, the grid
encoding, the generated scenes, the segmentation metrics, and the models under mixed precision."""

from __future__ import annotations

import numpy as np
import pytest

from utils import detection as det


def _random_boxes(rng, n, size=20.0):
    corner = rng.uniform(0, size, (n, 2))
    extent = rng.uniform(0.5, size / 2, (n, 2))
    return np.concatenate([corner, corner + extent], axis=1)


# ---------------------------------------------------------------------------------------------
# boxes and IoU
# ---------------------------------------------------------------------------------------------


def test_iou_worked_by_hand():
    a = np.array([[0, 0, 10, 10]])  # area 100
    b = np.array([[5, 5, 15, 15], [10, 0, 20, 10], [0, 0, 10, 10], [2, 2, 4, 4]])
    # overlap 5×5 = 25, union 100 + 100 - 25 = 175; touching edges: 0; itself: 1; inside: 4 / 100
    np.testing.assert_allclose(det.iou(a, b), [[25 / 175, 0.0, 1.0, 4 / 100]])


def test_iou_properties():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 30), _random_boxes(rng, 20)
    m = det.iou(a, b)
    assert m.shape == (30, 20)
    assert np.all((m >= 0) & (m <= 1))
    np.testing.assert_allclose(m, det.iou(b, a).T)  # symmetric
    np.testing.assert_allclose(np.diag(det.iou(a, a)), 1.0)
    shifted = a + 3.0  # translation invariant, and scale invariant
    np.testing.assert_allclose(det.iou(shifted, b + 3.0), m, atol=1e-12)
    np.testing.assert_allclose(det.iou(a * 2.5, b * 2.5), m, atol=1e-12)
    degenerate = np.array([[1, 1, 1, 1]])  # zero area: union 0 with itself → 0
    assert det.iou(degenerate, degenerate)[0, 0] == 0.0


def test_corner_centre_round_trip():
    rng = np.random.default_rng(1)
    boxes = _random_boxes(rng, 50).reshape(5, 10, 4)
    centre = det.corners_to_centre(boxes)
    assert centre.shape == boxes.shape
    np.testing.assert_allclose(det.centre_to_corners(centre), boxes, atol=1e-12)
    np.testing.assert_allclose(det.corners_to_centre([0, 0, 10, 4]), [5, 2, 10, 4])


# ---------------------------------------------------------------------------------------------
# NMS
# ---------------------------------------------------------------------------------------------


def _tf_nms(boxes, scores, iou_threshold, max_output, score_threshold):
    import tensorflow as tf

    return tf.image.non_max_suppression(
        det.to_tf_order(boxes).astype(np.float32),
        np.asarray(scores, np.float32),
        max_output,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
    ).numpy()


def test_nms_equals_tensorflow_on_random_cases():
    rng = np.random.default_rng(2)
    for case in range(120):
        n = int(rng.integers(1, 40))
        boxes = _random_boxes(rng, n).astype(np.float32).astype(np.float64)
        if case % 3 == 0:  # ties: scores from a few values
            scores = rng.choice([0.2, 0.5, 0.9], n)
        else:
            scores = rng.uniform(0, 1, n)
        if case % 5 == 0:  # duplicated boxes
            boxes[n // 2 :] = boxes[: n - n // 2]
        scores = scores.astype(np.float32).astype(np.float64)
        threshold = float(rng.choice([0.0, 0.3, 0.5, 0.7, 1.0]))
        max_output = int(rng.integers(1, n + 2))
        score_threshold = float(rng.choice([-np.inf, 0.3, 0.5]))
        ours = det.nms(boxes, scores, threshold, max_output, score_threshold)
        theirs = _tf_nms(boxes, scores, threshold, max_output, score_threshold)
        np.testing.assert_array_equal(ours, theirs, err_msg=f"case {case}")
    assert len(det.nms(np.zeros((0, 4)), np.zeros(0), 0.5)) == 0


def test_nms_keeps_an_iou_equal_to_the_threshold():
    boxes = np.array([[0, 0, 2, 1], [0, 0, 1, 1], [0, 0, 2, 1]], dtype=np.float64)  # IoU(0, 1) = 1/2
    scores = np.array([0.9, 0.8, 0.9])
    np.testing.assert_array_equal(det.nms(boxes, scores, 0.5), [0, 1])  # 2 ties with 0 and loses
    np.testing.assert_array_equal(det.nms(boxes, scores, 0.49), [0])
    np.testing.assert_array_equal(det.nms(boxes, scores, 0.5), _tf_nms(boxes, scores, 0.5, 3, -np.inf))


def test_batched_nms_suppresses_within_a_class_only():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [30, 30, 40, 40]], dtype=np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 1, 0])
    np.testing.assert_array_equal(det.batched_nms(boxes, scores, classes, 0.5), [0, 2, 3])
    np.testing.assert_array_equal(det.nms(boxes, scores, 0.5), [0, 3])  # class-blind: 2 goes too
    np.testing.assert_array_equal(det.batched_nms(boxes, scores, classes, 0.5, max_output=2), [0, 2])


# ---------------------------------------------------------------------------------------------
# average precision
# ---------------------------------------------------------------------------------------------


def test_average_precision_worked_by_hand():
    # 5 detections by descending score, TP pattern T F T F T, 4 ground truths
    tp = np.array([1, 0, 1, 0, 1], dtype=bool)
    recall, precision = det.precision_recall(np.array([0.9, 0.8, 0.7, 0.6, 0.5]), tp, 4)
    np.testing.assert_allclose(recall, [1 / 4, 1 / 4, 2 / 4, 2 / 4, 3 / 4])
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 2 / 4, 3 / 5])
    # envelope: max precision at this or later points: 1, 2/3, 2/3, 3/5, 3/5
    np.testing.assert_allclose(det.precision_envelope(precision), [1, 2 / 3, 2 / 3, 3 / 5, 3 / 5])
    # all-point: recall steps 1/4 (at p=1), 0, 1/4 (at 2/3), 0, 1/4 (at 3/5)
    expected_all = 0.25 * 1 + 0.25 * 2 / 3 + 0.25 * 3 / 5  # = 0.5667
    assert det.average_precision(recall, precision, "all") == pytest.approx(expected_all)
    # 11-point: r = 0, .1, .2 → 1; r = .3 .. .5 → 2/3; r = .6, .7 → 3/5; r = .8, .9, 1 → 0
    expected_11 = (3 * 1 + 3 * 2 / 3 + 2 * 3 / 5 + 3 * 0) / 11  # = 0.5636
    assert det.average_precision(recall, precision, "11") == pytest.approx(expected_11)
    assert det.average_precision([], [], "all") == 0.0


def test_all_point_ap_is_the_area_under_the_envelope():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n_gt = int(rng.integers(1, 12))
        n = int(rng.integers(1, 25))
        tp = rng.random(n) < 0.5
        tp[np.cumsum(tp) > n_gt] = False  # at most n_gt true positives
        scores = np.sort(rng.random(n))[::-1]
        recall, precision = det.precision_recall(scores, tp, n_gt)
        # integrate p_interp(r) = max_{r' >= r} p(r') over r in (0, 1] on a fine grid
        r_grid = (np.arange(5_000) + 0.5) / 5_000
        interp = np.array([precision[recall >= r].max() if np.any(recall >= r) else 0.0 for r in r_grid])
        assert det.average_precision(recall, precision) == pytest.approx(interp.mean(), abs=1e-3)


def test_match_detections_is_greedy_by_score():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], dtype=np.float64)
    boxes = np.array(
        [
            [0, 0, 10, 10],  # score 0.5: IoU 1 with gt 0, but a better-scored one took it
            [1, 0, 11, 10],  # score 0.9: IoU 9/11 = 0.818 with gt 0 → TP
            [20, 0, 25, 10],  # score 0.8: IoU 0.5 with gt 1 → TP at 0.5 (>=), FP at 0.55
            [50, 50, 60, 60],  # score 0.7: nowhere → FP
        ],
        dtype=np.float64,
    )
    scores = np.array([0.5, 0.9, 0.8, 0.7])
    np.testing.assert_array_equal(det.match_detections(boxes, scores, gt, 0.5), [False, True, True, False])
    np.testing.assert_array_equal(det.match_detections(boxes, scores, gt, 0.55), [False, True, False, False])
    assert not det.match_detections(boxes, scores, np.zeros((0, 4)), 0.5).any()


def test_mean_average_precision_worked_by_hand():
    # two images, two classes (and a third class with no ground truth, which is skipped)
    gts = [
        (np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 1])),
        (np.array([[0, 0, 10, 10]]), np.array([0])),
    ]
    dets = [
        (
            np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]),
            np.array([0.9, 0.6, 0.8]),
            np.array([0, 1, 0]),
        ),
        (
            np.array([[0, 0, 10, 5], [5, 5, 6, 6]]),  # IoU 0.5 with the gt; a stray class-2 box
            np.array([0.7, 0.95]),
            np.array([0, 2]),
        ),
    ]
    # class 0, pooled by score: 0.9 TP, 0.8 FP, 0.7 TP (IoU 0.5 >= 0.5); 2 ground truths
    #   recall 1/2, 1/2, 1; precision 1, 1/2, 2/3 → envelope 1, 2/3, 2/3 → AP = 1/2·1 + 1/2·2/3 = 5/6
    # class 1: one TP, one gt → AP 1.  class 2: no ground truth → skipped (its FP costs nothing)
    per_class = det.average_precision_per_class(dets, gts, 0.5, n_classes=3)
    np.testing.assert_allclose(per_class[:2], [5 / 6, 1.0])
    assert np.isnan(per_class[2])
    assert det.mean_average_precision(dets, gts, (0.5,), n_classes=3) == pytest.approx((5 / 6 + 1) / 2)
    # at 0.55 the second class-0 hit fails: recall 1/2, 1/2, 1/2 → AP 1/2; mAP = (1/2 + 1) / 2
    assert det.mean_average_precision(dets, gts, (0.55,), n_classes=3) == pytest.approx(0.75)
    # mAP@[.5:.95]: 0.5 gives 11/12, the nine others 3/4 → mean (11/12 + 9·3/4) / 10
    coco = det.mean_average_precision(dets, gts, det.COCO_IOU_THRESHOLDS, n_classes=3)
    assert coco == pytest.approx((11 / 12 + 9 * 0.75) / 10)
    assert len(det.COCO_IOU_THRESHOLDS) == 10 and det.COCO_IOU_THRESHOLDS[-1] == pytest.approx(0.95)


def test_perfect_detections_score_one():
    scenes = det.make_scenes(20, seed=5)
    gts = list(zip(scenes.boxes, scenes.classes, strict=True))
    dets = [(b, np.linspace(1, 0.5, len(b)), c) for b, c in gts]
    assert det.mean_average_precision(dets, gts, det.COCO_IOU_THRESHOLDS) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# grid encoding
# ---------------------------------------------------------------------------------------------


def test_encode_grid_worked_by_hand():
    # a 20×12 box centred at (28, 12) on a 64-pixel image, 8×8 grid: cells of 8 px
    target = det.encode_grid(np.array([[18, 6, 38, 18]]), np.array([2]), 8, 64, 4)
    assert target.shape == (8, 8, 9)
    row, col = 1, 3  # ⌊12/8⌋, ⌊28/8⌋
    np.testing.assert_allclose(
        target[row, col], [1, 28 / 8 - 3, 12 / 8 - 1, np.log(20 / 8), np.log(12 / 8), 0, 0, 1, 0], rtol=1e-6
    )
    assert target.sum() == pytest.approx(target[row, col].sum())  # every other cell is zero


def test_encode_decode_round_trip():
    scenes = det.make_scenes(50, seed=1)
    for boxes, classes in zip(scenes.boxes, scenes.classes, strict=True):
        target = det.encode_grid(boxes, classes, 8, 64, 4)
        got_boxes, scores, got_classes = det.decode_grid(target, 64, score_threshold=0.5)
        centres = det.corners_to_centre(boxes)
        cells = {(int(cy // 8), int(cx // 8)) for cx, cy, *_ in centres}
        if len(cells) < len(boxes):
            continue  # two centres in one cell: one object is lost by design
        assert len(got_boxes) == len(boxes)
        order = np.lexsort((centres[:, 0] // 8, centres[:, 1] // 8))  # decode is row by row
        np.testing.assert_allclose(got_boxes, boxes[order], atol=1e-4)
        np.testing.assert_array_equal(got_classes, classes[order])
        np.testing.assert_allclose(scores, 1.0)


def test_activate_grid_matches_the_loss_layout():
    raw = np.random.default_rng(4).normal(size=(2, 8, 8, 9)).astype(np.float32)
    act = det.activate_grid(raw)
    np.testing.assert_allclose(act[..., 0], 1 / (1 + np.exp(-raw[..., 0])), rtol=1e-6)
    np.testing.assert_allclose(act[..., 3:5], raw[..., 3:5])
    np.testing.assert_allclose(act[..., 5:].sum(-1), 1.0, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# generated scenes
# ---------------------------------------------------------------------------------------------


def test_scenes_boxes_are_tight_around_their_masks():
    scenes = det.make_scenes(40, size=64, max_objects=5, seed=2)
    assert scenes.images.shape == (40, 64, 64, 3) and scenes.images.dtype == np.uint8
    assert scenes.masks.shape == (40, 64, 64)
    for mask, boxes, classes in zip(scenes.masks, scenes.boxes, scenes.classes, strict=True):
        assert boxes.shape == (len(classes), 4) and 1 <= len(classes) <= 5
        covered = np.zeros_like(mask, dtype=bool)
        for (x0, y0, x1, y1), c in zip(boxes.astype(int), classes, strict=True):
            inside = mask[y0:y1, x0:x1] == c + 1
            # tight: the box's first and last rows and columns each hold a pixel of the class
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            covered[y0:y1, x0:x1] |= mask[y0:y1, x0:x1] == c + 1
        assert np.all(covered == (mask > 0))  # every object pixel lies in a box of its class


def test_scenes_are_deterministic_and_fast():
    import time

    start = time.perf_counter()
    a = det.make_scenes(300, seed=7)
    assert time.perf_counter() - start < 3.0  # about 1,000 scenes per second
    b = det.make_scenes(300, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes, strict=True))
    assert not np.array_equal(a.images, det.make_scenes(300, seed=8).images)
    counts = np.bincount(np.concatenate(a.classes), minlength=4)
    assert counts.min() > 0.15 * counts.sum()  # the four classes are balanced


# ---------------------------------------------------------------------------------------------
# segmentation metrics
# ---------------------------------------------------------------------------------------------


def test_dice_and_iou_relation():
    rng = np.random.default_rng(5)
    pred = rng.random((30, 16, 16)) < 0.4
    true = rng.random((30, 16, 16)) < 0.4
    i, d = det.mask_iou(pred, true), det.dice(pred, true)
    assert i.shape == (30,)
    np.testing.assert_allclose(d, 2 * i / (1 + i))
    # by hand: P = 3 pixels, T = 2 pixels, overlap 1 → IoU 1/4, Dice 2/5
    p, t = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    p[0, :3] = True
    t[0, 2:4] = True
    assert det.mask_iou(p, t) == pytest.approx(0.25) and det.dice(p, t) == pytest.approx(0.4)
    assert det.mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0


def test_class_iou_matches_keras_mean_iou():
    import keras

    rng = np.random.default_rng(6)
    true = rng.integers(0, 5, (4, 16, 16))
    pred = np.where(rng.random(true.shape) < 0.7, true, rng.integers(0, 5, true.shape))
    metric = keras.metrics.MeanIoU(num_classes=5)
    metric.update_state(true.reshape(-1), pred.reshape(-1))
    assert np.mean(det.class_iou(pred, true, 5)) == pytest.approx(float(metric.result()), rel=1e-5)


def test_soft_dice_by_hand_and_on_hard_masks():
    # one 2×2 image, 2 classes; class 1 covers the top row; predictions written out
    labels = np.array([[[1, 1], [0, 0]]])
    prob1 = np.array([[[0.9, 0.6], [0.2, 0.1]]])
    prob = np.stack([1 - prob1, prob1], axis=-1).astype("float32")
    got = np.asarray(det.soft_dice(labels, prob, 2, smooth=1.0))
    # class 1: Σ p t = 1.5, Σ p = 1.8, Σ t = 2 → (3 + 1) / (3.8 + 1); class 0: Σ p t = 1.7, Σ p = 2.2, Σ t = 2
    np.testing.assert_allclose(got, [(3.4 + 1) / (4.2 + 1), 4 / 4.8], rtol=1e-6)
    # hard one-hot predictions and no smoothing: the Dice of each class's mask, image by image or pooled
    rng = np.random.default_rng(8)
    true, pred = rng.integers(0, 3, (4, 8, 8)), rng.integers(0, 3, (4, 8, 8))
    hard = np.eye(3, dtype="float32")[pred]
    per_image = np.asarray(det.soft_dice(true[..., None], hard, 3, smooth=0.0, per_image=True))
    pooled = np.asarray(det.soft_dice(true, hard, 3, smooth=0.0))
    assert per_image.shape == (4, 3) and pooled.shape == (3,)
    for k in range(3):
        np.testing.assert_allclose(per_image[:, k], det.dice(pred == k, true == k), rtol=1e-6)
        pooled_k = det.dice((pred == k).reshape(1, -1, 8), (true == k).reshape(1, -1, 8))  # one tall image
        np.testing.assert_allclose(pooled[k], pooled_k, rtol=1e-6)


def test_segmentation_loss_is_cross_entropy_plus_one_minus_mean_dice():
    import keras

    rng = np.random.default_rng(9)
    labels = rng.integers(0, 4, (3, 6, 6))
    logits = rng.normal(size=(3, 6, 6, 4))
    prob = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")
    ce = -np.log(np.take_along_axis(prob.astype(np.float64), labels[..., None], -1)).mean()
    truth = np.eye(4)[labels]
    dice = (2 * (truth * prob).sum((0, 1, 2)) + 1) / (truth.sum((0, 1, 2)) + prob.sum((0, 1, 2)) + 1)
    np.testing.assert_allclose(np.asarray(det.soft_dice(labels, prob, 4)), dice, rtol=1e-5)
    assert float(det.segmentation_loss(labels, prob, dice_weight=0.0)) == pytest.approx(ce, rel=1e-5)
    expected = ce + 0.5 * (1 - dice.mean())
    assert float(det.segmentation_loss(labels[..., None], prob, dice_weight=0.5)) == pytest.approx(
        expected, rel=1e-5
    )
    assert float(det.segmentation_loss(labels, prob, dice_weight=0.0)) == pytest.approx(
        float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, prob))), rel=1e-6
    )


# ---------------------------------------------------------------------------------------------
# models and loss
# ---------------------------------------------------------------------------------------------


def test_focal_term_by_hand():
    z, t = np.array([2.0, -1.0]), np.array([1.0, 0.0])
    p = 1 / (1 + np.exp(-z))
    # target 1: -α (1 - p)^γ log p ; target 0: -(1 - α) p^γ log(1 - p)
    expected = [-0.25 * (1 - p[0]) ** 2 * np.log(p[0]), -0.75 * p[1] ** 2 * np.log(1 - p[1])]
    np.testing.assert_allclose(np.asarray(det.focal_term(z, t)), expected, rtol=1e-6)
    bce = -np.log(p[0])  # γ = 0, α = 1/2: half the binary cross-entropy
    assert float(det.focal_term(z[:1], t[:1], gamma=0.0, alpha=0.5)[0]) == pytest.approx(bce / 2, rel=1e-6)


def test_detection_loss_terms_by_hand():
    rng = np.random.default_rng(7)
    target = det.encode_grid(np.array([[0, 0, 16, 8], [40, 40, 56, 60]]), np.array([1, 3]), 4, 64, 4)[None]
    raw = rng.normal(size=target.shape).astype(np.float32)
    terms = {k: float(v) for k, v in det.detection_loss_terms(target, raw).items()}
    obj = target[..., 0] == 1
    sig = 1 / (1 + np.exp(-raw.astype(np.float64)))
    p = sig[..., 0]
    focal = np.where(obj, -0.25 * (1 - p) ** 2 * np.log(p), -0.75 * p**2 * np.log(1 - p))
    box = ((sig[..., 1:3] - target[..., 1:3]) ** 2).sum(-1) + ((raw[..., 3:5] - target[..., 3:5]) ** 2).sum(
        -1
    )
    logits = raw[..., 5:].astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -(target[..., 5:] * log_softmax).sum(-1)
    assert terms["objectness"] == pytest.approx(focal.sum() / 2, rel=1e-5)
    assert terms["box"] == pytest.approx(box[obj].sum() / 2, rel=1e-5)
    assert terms["class"] == pytest.approx(ce[obj].sum() / 2, rel=1e-5)
    total = float(det.detection_loss(target, raw))
    assert total == pytest.approx(terms["objectness"] + 5 * terms["box"] + terms["class"], rel=1e-5)
    weighted = float(det.detection_loss(target, raw, box_weight=3.0, class_weight=2.0))
    assert weighted == pytest.approx(terms["objectness"] + 3 * terms["box"] + 2 * terms["class"], rel=1e-5)


def test_models_take_one_eager_step_under_mixed_float16():
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        scenes = det.make_scenes(4, seed=3)
        targets = det.encode_grids(scenes.boxes, scenes.classes, 8, 64, 4)
        for model, y, loss_fn in [
            (det.grid_detector(64, 8, 4, width=8), targets, det.detection_loss),
            (det.unet(64, 5, width=4, depth=2), scenes.masks, det.segmentation_loss),
        ]:
            assert model.layers[2].compute_dtype == "float16" and model.output.dtype == "float32"
            optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
            with tf.GradientTape() as tape:
                loss = keras.ops.mean(loss_fn(y, model(scenes.images, training=True)))
                scaled = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            assert loss.dtype == "float32" and np.isfinite(float(loss))
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
@pytest.mark.parametrize("mixed_policy", ["mixed_bfloat16"], indirect=True)
def test_models_fit_under_mixed_precision(mixed_policy):
    """fit and predict under a TPU's policy (the eager step above covers a GPU's float16; CI's emulations
    also train lesson 05c's models under both)."""
    import keras

    keras.utils.set_random_seed(0)
    scenes = det.make_scenes(8, seed=3)
    targets = det.encode_grids(scenes.boxes, scenes.classes, 8, 64, 4)
    model = det.grid_detector(64, 8, 4, width=8)
    assert model.layers[1].compute_dtype in ("float16", "bfloat16")
    model.compile(optimizer="adam", loss=det.detection_loss)
    history = model.fit(scenes.images, targets, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    raw = model.predict(scenes.images[:2], verbose=0)
    assert raw.shape == (2, 8, 8, 9) and raw.dtype == np.float32
    assert len(det.detect(raw, 64)) == 2

    for upsampling in ("transpose", "bilinear"):
        seg = det.unet(32, 5, width=4, depth=2, upsampling=upsampling)
        seg.compile(optimizer="adam", loss=det.segmentation_loss)
        small = scenes.images[:, ::2, ::2]
        history = seg.fit(small, scenes.masks[:, ::2, ::2], epochs=1, batch_size=4, verbose=0)
        assert np.isfinite(history.history["loss"][-1])
        probs = seg.predict(small[:2], verbose=0)
        assert probs.shape == (2, 32, 32, 5) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-4)
