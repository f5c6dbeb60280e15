"""Lab 05c's checks: right answers written in different styles pass, each known mistake is named by its own
hint, unfinished answers are "not done yet", a learner's error is reported kindly, and the references agree
with TensorFlow (NMS), scikit-learn (raw AP), VOC's own AP code and the lesson's ``utils.detection``."""

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils.checks import lab05c as ex  # noqa: E402

# ---------------------------------------------------------------------------------------------
# q1: IoU in inclusive pixels
# ---------------------------------------------------------------------------------------------


def iou_numpy(inter_plus=1, area_plus=1, clamp=True, union_sum=False):
    """A learner's broadcast IoU; the keywords are the slips people make."""

    def iou_pixels(a, b):
        x0 = np.maximum(a[:, None, 0], b[None, :, 0])
        y0 = np.maximum(a[:, None, 1], b[None, :, 1])
        x1 = np.minimum(a[:, None, 2], b[None, :, 2])
        y1 = np.minimum(a[:, None, 3], b[None, :, 3])
        w, h = x1 - x0 + inter_plus, y1 - y0 + inter_plus
        if clamp:
            w, h = np.maximum(w, 0), np.maximum(h, 0)
        inter = w * h
        area_a = (a[:, 2] - a[:, 0] + area_plus) * (a[:, 3] - a[:, 1] + area_plus)
        area_b = (b[:, 2] - b[:, 0] + area_plus) * (b[:, 3] - b[:, 1] + area_plus)
        union = area_a[:, None] + area_b[None, :] - (0 if union_sum else inter)
        return inter / union

    return iou_pixels


def iou_shift_to_continuous(a, b):
    """Inclusive pixels [x0, x1] cover the continuous interval [x0, x1 + 1): shift, then the usual IoU."""
    return ex.iou_corners(a + np.array([0, 0, 1, 1]), b + np.array([0, 0, 1, 1]))


def iou_tf_loops(a, b):
    rows = []
    for box in tf.unstack(tf.constant(a)):
        row = []
        for other in tf.unstack(tf.constant(b)):
            w = tf.nn.relu(tf.minimum(box[2], other[2]) - tf.maximum(box[0], other[0]) + 1)
            h = tf.nn.relu(tf.minimum(box[3], other[3]) - tf.maximum(box[1], other[1]) + 1)
            size = lambda q: (q[2] - q[0] + 1) * (q[3] - q[1] + 1)
            row.append(w * h / (size(box) + size(other) - w * h))
        rows.append(tf.stack(row))
    return tf.stack(rows)


Q1_RIGHT = {
    "NumPy": iou_numpy(),
    "shifted to continuous": iou_shift_to_continuous,
    "TensorFlow loops": iou_tf_loops,
}
Q1_WRONG = {
    "+1 in the areas but not in the intersection": iou_numpy(inter_plus=0),
    "+1 in the intersection but not in the areas": iou_numpy(area_plus=0),
    "no +1 (the continuous convention)": iou_numpy(inter_plus=0, area_plus=0),
    "intersection not clamped at zero": iou_numpy(clamp=False),
    "the overlap counted twice in the union": iou_numpy(union_sum=True),
}


def test_q1_transposed_answers_are_told_so():
    fb = ex.q1.evaluate(lambda a, b: iou_numpy()(b, a))
    assert fb.status == "incorrect" and "transposed" in fb.hint, str(fb)


def test_q1_reference_counts_pixels():
    # a 10 × 10 box and the same box moved by one pixel: 9 × 10 shared pixels of 110
    a, b = np.array([[0, 0, 9, 9]]), np.array([[1, 0, 10, 9]])
    assert ex.iou_pixels_reference(a, b)[0, 0] == pytest.approx(90 / 110)
    assert ex.iou_pixels_reference(np.array([[3, 3, 3, 3]]), np.array([[3, 3, 3, 3]]))[0, 0] == 1.0


# ---------------------------------------------------------------------------------------------
# q2: class-aware NMS
# ---------------------------------------------------------------------------------------------


def batched_with_plain_nms(boxes, scores, classes, iou_threshold):
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.extend(members[ex.nms(boxes[members], scores[members], iou_threshold)])
    return sorted(kept, key=lambda i: -scores[i])


def batched_offset_trick(boxes, scores, classes, iou_threshold):
    """torchvision's trick: move each class's boxes far apart, then one NMS (TensorFlow's) for all."""
    shift = (boxes.max() + 1) * classes.astype("float32")
    moved = boxes + shift[:, None]
    return tf.image.non_max_suppression(moved, scores, len(boxes), iou_threshold=iou_threshold)


def own_nms(boxes, scores, iou_threshold, sort=True, at_threshold=False):
    order = list(np.argsort(-scores)) if sort else list(range(len(scores)))
    kept = []
    for i in order:
        ious = ex.iou_corners(boxes[i : i + 1], boxes[kept])[0] if kept else np.zeros(0)
        too_close = ious >= iou_threshold if at_threshold else ious > iou_threshold
        if not too_close.any():
            kept.append(i)
    return np.array(kept, dtype=int)


def batched_own(per_class=True, local=False, by_score=True, **kw):
    def batched_nms(boxes, scores, classes, iou_threshold):
        if not per_class:
            return own_nms(boxes, scores, iou_threshold, **kw)
        kept = []
        for c in sorted(set(classes.tolist())):
            members = np.where(classes == c)[0]
            found = own_nms(boxes[members], scores[members], iou_threshold, **kw)
            kept += list(found if local else members[found])
        return sorted(kept, key=lambda i: -scores[i]) if by_score and not local else kept

    return batched_nms


Q2_RIGHT = {
    "per class with ex.nms": batched_with_plain_nms,
    "offset trick, tf.image.non_max_suppression": batched_offset_trick,
    "own NMS, loops": batched_own(),
}
Q2_WRONG = {
    "NMS across classes": batched_own(per_class=False),
    "indices within each class, not into the whole list": batched_own(local=True),
    "a box at exactly the threshold dropped (≥ instead of >)": batched_own(at_threshold=True),
    "boxes not sorted by score before suppression": batched_own(sort=False),
    "kept boxes in class order, not by score": batched_own(by_score=False),
}


def test_the_plain_nms_is_tensorflows():
    for boxes, scores, _, threshold in ex._q2_probes():
        theirs = tf.image.non_max_suppression(boxes, scores, len(boxes), iou_threshold=threshold)
        assert ex.nms(boxes, scores, threshold).tolist() == theirs.numpy().tolist()


def test_the_first_q2_probe_tells_every_mistake_apart():
    inputs = ex._q2_probes()[0]
    right = sorted(ex.batched_nms_reference(*inputs).tolist())
    results = [tuple(m.compute(*inputs)) for m in ex.Q2_MISTAKES]
    assert right not in [list(r) for r in results] and len(set(results)) == len(results)
    assert ex.iou_corners(ex.Q2_BOXES[3:4], ex.Q2_BOXES[4:5])[0, 0] == 0.5  # the tie at the threshold


# ---------------------------------------------------------------------------------------------
# q3: average precision
# ---------------------------------------------------------------------------------------------


def ap_numpy(is_tp, n_ground_truths):
    tp = np.cumsum(is_tp)
    precision = tp / np.arange(1, len(is_tp) + 1)
    recall = tp / n_ground_truths
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return np.sum(np.diff(recall, prepend=0) * envelope)


def ap_voc_style(is_tp, n_ground_truths):
    """VOC 2010's code: sentinels, the envelope from the right, a sum where recall changes."""
    tp = np.cumsum(np.asarray(is_tp, float))
    rec = np.concatenate([[0.0], tp / n_ground_truths, [1.0]])
    prec = np.concatenate([[0.0], tp / np.arange(1, len(tp) + 1), [0.0]])
    for i in range(len(prec) - 2, -1, -1):
        prec[i] = max(prec[i], prec[i + 1])
    changes = np.where(rec[1:] != rec[:-1])[0]
    return float(np.sum((rec[changes + 1] - rec[changes]) * prec[changes + 1]))


def ap_loop(is_tp, n_ground_truths):
    """Only true positives add area; each at the best precision reached from it on."""
    flags = [bool(f) for f in is_tp]
    precisions, found = [], 0
    for k, hit in enumerate(flags, start=1):
        found += hit
        precisions.append(found / k)
    total = 0.0
    for k, hit in enumerate(flags):
        if hit:
            total += max(precisions[k:]) / n_ground_truths
    return total


def ap_tf(is_tp, n_ground_truths):
    tp = tf.cumsum(tf.cast(is_tp, tf.float32))
    precision = tp / tf.range(1, tf.size(tp) + 1, dtype=tf.float32)
    envelope = tf.reverse(tf.scan(tf.maximum, tf.reverse(precision, [0])), [0])
    return tf.reduce_sum(tf.cast(is_tp, tf.float32) * envelope) / n_ground_truths


def ap_wrong(method="all", recall_over="truths"):
    def average_precision(is_tp, n_ground_truths):
        tp = np.cumsum(is_tp)
        precision = tp / np.arange(1, len(is_tp) + 1)
        recall = tp / (len(is_tp) if recall_over == "detections" else n_ground_truths)
        if method == "11":
            return sum(max(precision[recall >= t], default=0) for t in np.arange(0, 1.1, 0.1)) / 11
        if method == "all":
            precision = np.maximum.accumulate(precision[::-1])[::-1]
        if method == "left":
            precision = np.maximum.accumulate(precision)
        return np.sum(np.diff(recall, prepend=0) * precision)

    return average_precision


Q3_RIGHT = {"NumPy": ap_numpy, "VOC code": ap_voc_style, "loops": ap_loop, "TensorFlow, float32": ap_tf}
Q3_WRONG = {
    "no interpolation (raw precision)": ap_wrong("raw"),
    "11-point interpolation": ap_wrong("11"),
    "recall divided by the number of detections": ap_wrong(recall_over="detections"),
    "the precision envelope taken from the left": ap_wrong("left"),
}


def test_the_raw_ap_mistake_is_sklearns_average_precision():
    """When every ground truth is among the detections, sklearn's AP is the raw step sum (no envelope)."""
    from sklearn.metrics import average_precision_score

    flags = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0])
    scores = np.linspace(1, 0.1, len(flags))
    assert ex.ap_reference(flags, flags.sum(), method="raw") == pytest.approx(
        average_precision_score(flags, scores)
    )


def test_ap_is_one_for_a_perfect_ranking_and_all_point_is_at_least_raw():
    assert ex.ap_reference([1, 1, 1, 0, 0], 3) == 1.0
    rng = np.random.default_rng(0)
    for _ in range(50):
        flags = rng.random(15) < 0.5
        n = int(flags.sum()) + int(rng.integers(0, 4))
        if n:
            assert ex.ap_reference(flags, n) >= ex.ap_reference(flags, n, method="raw") - 1e-12


# ---------------------------------------------------------------------------------------------
# q4: a soft IoU loss
# ---------------------------------------------------------------------------------------------


def soft_iou_keras_ops(y_true, y_prob):
    ops = keras.ops
    inter = ops.sum(y_true * y_prob)
    union = ops.sum(y_true) + ops.sum(y_prob) - inter
    return 1 - (inter + 1) / (union + 1)


def soft_iou_tf_flat(y_true, y_prob):
    """Flattened, the union as Σ max(p, t) + Σ min(p, t) − Σ p·t (= Σ p + Σ t − Σ p·t)."""
    t, p = tf.reshape(y_true, (-1,)), tf.reshape(y_prob, (-1,))
    overlap = tf.reduce_sum(t * p)
    union = tf.reduce_sum(tf.maximum(t, p) + tf.minimum(t, p)) - overlap
    return 1.0 - (overlap + 1.0) / (union + 1.0)


def soft_iou_wrong(smooth=1.0, score=False, per_image=False, dice=False, union_as_sum=False, rounded=False):
    def soft_iou_loss(y_true, y_prob):
        ops = keras.ops
        p = ops.round(y_prob) if rounded else y_prob
        axes = (1, 2, 3) if per_image else (0, 1, 2, 3)
        inter = ops.sum(y_true * p, axis=axes)
        sizes = ops.sum(p + y_true, axis=axes)
        if dice:
            value = ops.mean((2 * inter + smooth) / (sizes + smooth))
        else:
            value = ops.mean((inter + smooth) / ((sizes if union_as_sum else sizes - inter) + smooth))
        return value if score else 1 - value

    return soft_iou_loss


def soft_iou_numpy(y_true, y_prob):
    t, p = np.asarray(y_true), np.asarray(y_prob)
    inter = (t * p).sum()
    return 1 - (inter + 1) / (t.sum() + p.sum() - inter + 1)


Q4_RIGHT = {"keras.ops": soft_iou_keras_ops, "tf, a loop over images": soft_iou_tf_flat}
Q4_WRONG = {
    "the soft Dice, not the soft IoU": soft_iou_wrong(dice=True),
    "the union without the overlap taken off": soft_iou_wrong(union_as_sum=True),
    "the IoU score, not the loss": soft_iou_wrong(score=True),
    "one IoU per image, averaged": soft_iou_wrong(per_image=True),
    "no smoothing term": soft_iou_wrong(smooth=0.0),
    "probabilities rounded to 0 or 1": soft_iou_wrong(rounded=True),
    "no gradient reaches the probabilities": soft_iou_numpy,
}


def test_the_soft_iou_gradient_is_tensorflows():
    true, prob = ex._mask_probe()
    p = tf.Variable(prob.astype("float64"))
    with tf.GradientTape() as tape:
        loss = soft_iou_keras_ops(tf.constant(true, tf.float64), p)
    assert float(loss) == pytest.approx(ex.soft_iou_reference(true, prob), rel=1e-12)
    np.testing.assert_allclose(tape.gradient(loss, p).numpy(), ex.soft_iou_gradient(true, prob), rtol=1e-10)


def test_a_perfect_prediction_has_no_loss_and_an_empty_batch_needs_the_smoothing():
    true, _ = ex._mask_probe()
    assert ex.soft_iou_reference(true, true) == 0.0
    empty = np.zeros_like(true)
    assert ex.soft_iou_reference(empty, empty) == 0.0
    with np.errstate(invalid="ignore"):
        assert np.isnan(ex.soft_iou_reference(empty, empty, smooth=0.0))  # 0 / 0


# ---------------------------------------------------------------------------------------------
# every question: right answers pass, mistakes are named
# ---------------------------------------------------------------------------------------------

EXERCISES = {"q1": ex.q1, "q2": ex.q2, "q3": ex.q3, "q4": ex.q4}
MISTAKES = {
    "q1": ex.Q1_MISTAKES,
    "q2": [*ex.Q2_MISTAKES, ex.CLASS_ORDER],
    "q3": ex.Q3_MISTAKES,
    "q4": [*ex.Q4_MISTAKES, ex.NO_GRADIENT],
}
RIGHT = [
    (q, name, fn)
    for q, table in (("q1", Q1_RIGHT), ("q2", Q2_RIGHT), ("q3", Q3_RIGHT), ("q4", Q4_RIGHT))
    for name, fn in table.items()
]
WRONG = [
    (q, name, fn)
    for q, table in (("q1", Q1_WRONG), ("q2", Q2_WRONG), ("q3", Q3_WRONG), ("q4", Q4_WRONG))
    for name, fn in table.items()
]


@pytest.mark.parametrize(("q", "name", "answer"), RIGHT, ids=[f"{q}-{n}" for q, n, _ in RIGHT])
def test_right_answers_pass(q, name, answer):
    fb = EXERCISES[q].evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(("q", "name", "answer"), WRONG, ids=[f"{q}-{n}" for q, n, _ in WRONG])
def test_each_mistake_gets_its_own_hint(q, name, answer):
    fb = EXERCISES[q].evaluate(answer)
    hint = next(m.hint for m in MISTAKES[q] if m.name == name)
    assert fb.status == "incorrect" and name in fb.got and fb.hint == hint, str(fb)


def test_every_declared_mistake_is_tested_and_hints_differ():
    tested = {(q, name) for q, name, _ in WRONG}
    for q, mistakes in MISTAKES.items():
        assert {(q, m.name) for m in mistakes} <= tested
        assert len({m.hint for m in mistakes}) == len(mistakes), f"{q}: two mistakes share a hint"


def test_an_unnamed_wrong_answer_gets_the_first_hint():
    fb = ex.q3.evaluate(lambda flags, n: 0.123)
    assert fb.status == "incorrect" and fb.hint == ex.q3.hints[0], str(fb)


def test_wrong_shapes_and_returns_are_explained():
    fb = ex.q1.evaluate(lambda a, b: np.zeros(len(a)))
    assert fb.status == "incorrect" and "shape" in fb.message, str(fb)
    fb = ex.q2.evaluate(lambda boxes, scores, classes, t: boxes[:2])
    assert fb.status == "incorrect" and "indices" in fb.hint, str(fb)
    fb = ex.q4.evaluate(lambda y_true, y_prob: keras.ops.sum(y_true * y_prob, axis=(1, 2, 3)))
    assert fb.status == "incorrect" and fb.expected == "one number", str(fb)


# ---------------------------------------------------------------------------------------------
# placeholders, a learner's own error, strict mode
# ---------------------------------------------------------------------------------------------


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("q", EXERCISES)
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented], ids=["ellipsis", "None", "raise"])
def test_placeholders_are_not_done(q, placeholder):
    fb = EXERCISES[q].evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message, str(fb)


def test_a_learners_typo_is_reported_with_their_line():
    def soft_iou_loss(y_true, y_prob):
        inter = keras.ops.sum(y_true * y_prob, axis=(1, 2, 3))  # noqa: F841 (the typo below)
        return 1 - keras.ops.mean(intr / (keras.ops.sum(y_true + y_prob, axis=(1, 2, 3)) - intr))  # noqa: F821

    fb = ex.q4.evaluate(soft_iou_loss)
    assert fb.status == "error" and "NameError" in fb.message and "intr" in fb.message, str(fb)
    assert "Traceback" not in str(fb) and "utils/checks" not in str(fb)


def test_a_wrong_answer_fails_strict_mode(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    with pytest.raises(AssertionError):
        ex.q3.check(ap_wrong("raw"))


# ---------------------------------------------------------------------------------------------
# under mixed precision (a T4: float16, a TPU: bfloat16)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "answer"),
    [("q1", iou_tf_loops), ("q2", batched_offset_trick), ("q3", ap_tf), ("q4", soft_iou_keras_ops)],
    ids=["q1", "q2", "q3", "q4"],
)
def test_right_answers_pass_under_mixed_precision(mixed_policy, q, answer):
    fb = EXERCISES[q].evaluate(answer)
    assert fb.passed, f"{mixed_policy}: {fb}"


def test_a_mistake_is_named_under_mixed_precision(mixed_policy):
    fb = ex.q4.evaluate(soft_iou_wrong(dice=True))
    assert fb.status == "incorrect" and "Dice" in fb.got, f"{mixed_policy}: {fb}"


# ---------------------------------------------------------------------------------------------
# the lab's references are the lesson's utils.detection: one IoU, one NMS, one AP, one Dice
# ---------------------------------------------------------------------------------------------


def test_the_iou_reference_is_utils_detection_iou():
    from utils import detection

    a, b = ex.Q1_A.astype("float64"), ex.Q1_B.astype("float64")
    np.testing.assert_allclose(ex.iou_corners(a, b), np.asarray(detection.iou(a, b)), rtol=1e-6, atol=1e-12)
    shift = np.array([0, 0, 1, 1])  # inclusive pixels [x0, x1] are the continuous [x0, x1 + 1)
    np.testing.assert_allclose(
        ex.iou_pixels_reference(a, b), np.asarray(detection.iou(a + shift, b + shift)), rtol=1e-6, atol=1e-12
    )


def test_the_nms_references_are_utils_detections():
    from utils import detection

    for boxes, scores, classes, threshold in ex._q2_probes():
        plain = np.asarray(detection.nms(boxes, scores, threshold)).tolist()
        assert plain == ex.nms(boxes, scores, threshold).tolist()
        batched = np.asarray(detection.batched_nms(boxes, scores, classes, threshold)).tolist()
        assert batched == ex.batched_nms_reference(boxes, scores, classes, threshold).tolist()


@pytest.mark.parametrize(("flags", "n"), ex.Q3_PROBES)
def test_the_ap_references_are_utils_detections(flags, n):
    from utils import detection

    recall, precision = ex._curve(flags, n)
    assert float(detection.average_precision(recall, precision, method="all")) == pytest.approx(
        ex.ap_reference(flags, n), abs=1e-9
    )
    assert float(detection.average_precision(recall, precision, method="11")) == pytest.approx(
        ex.ap_reference(flags, n, method="11"), abs=1e-9
    )


def test_the_soft_iou_of_hard_masks_is_utils_detection_iou_and_its_dice_the_lessons_loss():
    """On 0/1 predictions and without smoothing, 1 − the loss is the lesson's IoU of the batch's masks; the
    soft-Dice mistake is the Dice term of the lesson's ``segmentation_loss`` for a binary U-Net."""
    from utils import detection

    true, prob = ex._mask_probe()
    pred = (prob > 0.5).astype("float32")
    ours = 1 - ex.soft_iou_reference(true, pred, smooth=0.0)
    assert ours == pytest.approx(float(detection.mask_iou(pred.reshape(1, -1) > 0, true.reshape(1, -1) > 0)))
    for i in range(len(true)):  # one image at a time, where an image is the whole batch
        if true[i].sum() + pred[i].sum() > 0:
            ours = 1 - ex.soft_iou_reference(true[i : i + 1], pred[i : i + 1], smooth=0.0)
            assert ours == pytest.approx(float(detection.mask_iou(pred[i, ..., 0] > 0, true[i, ..., 0] > 0)))
    two_classes = np.concatenate([1 - prob, prob], axis=-1)  # background, object
    lesson = float(np.asarray(detection.soft_dice(true[..., 0].astype(int), two_classes, 2))[1])
    assert 1 - lesson == pytest.approx(ex.soft_iou_reference(true, prob, dice=True), rel=1e-6)
