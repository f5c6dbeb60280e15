"""Lesson 05c's own exercises: right answers in several styles pass, each named mistake gets its own hint,
placeholders are "not done yet" (and do not fail strict mode in a lesson), and the references agree with the
lesson's ``utils.detection`` (its grid layout, its matching rule and its COCO thresholds)."""

import math

import numpy as np
import pytest
from exercise_contract import lesson_exercise_tests

from utils.checks import lesson05c

# ---------------------------------------------------------------------------------------------
# Exercise 1: the size of a detection head
# ---------------------------------------------------------------------------------------------


def head_outputs(image_size, stride, boxes_per_cell, n_classes):
    grid = image_size // stride
    return grid * grid * boxes_per_cell * (5 + n_classes)


def head_outputs_as_a_shape(image_size, stride, boxes_per_cell, n_classes):
    """The shape of the head's output tensor, (S, S, B, 5 + C), multiplied out: a NumPy integer."""
    shape = (image_size / stride, image_size / stride, boxes_per_cell, 4 + 1 + n_classes)
    return np.prod(shape)  # a float64 that is a whole number


def head_outputs_by_loops(image_size, stride, boxes_per_cell, n_classes):
    total = 0
    for _row in range(0, image_size, stride):
        for _col in range(0, image_size, stride):
            total += boxes_per_cell * (4 + 1 + n_classes)
    return total


E1_RIGHT = [
    (lesson05c.e1, head_outputs),
    (lesson05c.e1, head_outputs_as_a_shape),
    (lesson05c.e1, head_outputs_by_loops),
]
E1_WRONG = [
    (lesson05c.e1, lambda s, st, b, c: (s // st) ** 2 * b * (4 + c), "no objectness score"),
    (lesson05c.e1, lambda s, st, b, c: (s // st) * b * (5 + c), "grid not squared"),
    (lesson05c.e1, lambda s, st, b, c: (s // st) ** 2 * (5 * b + c), "class scores once per cell"),
    (lesson05c.e1, lambda s, st, b, c: st**2 * b * (5 + c), "the stride taken as the number of cells"),
]

# ---------------------------------------------------------------------------------------------
# Exercise 2: mAP@[.5:.95] of one detection
# ---------------------------------------------------------------------------------------------


def coco_map_one(iou):
    thresholds = np.linspace(0.5, 0.95, 10)
    return np.mean(iou >= thresholds)


def coco_map_one_arange(iou):
    """np.arange with a stop past 0.95: 0.6000000000000001 and the like, harmless between thresholds."""
    return float(np.mean([iou >= t for t in np.arange(0.5, 0.96, 0.05)]))


def coco_map_one_counting(iou):
    """Whole numbers only: the thresholds are 50, 55, ..., 95 hundredths."""
    return sum(1 for k in range(50, 100, 5) if iou * 100 >= k - 1e-9) / 10


def coco_map_one_closed_form(iou):
    return min(max(math.floor((iou - 0.5) / 0.05 + 1e-9) + 1, 0), 10) / 10


E2_RIGHT = [
    (lesson05c.e2, coco_map_one),
    (lesson05c.e2, coco_map_one_arange),
    (lesson05c.e2, coco_map_one_counting),
    (lesson05c.e2, coco_map_one_closed_form),
]
E2_WRONG = [
    (lesson05c.e2, lambda u: np.mean(u >= np.arange(0.5, 0.95, 0.05)), "nine thresholds (0.95 left out)"),
    (lesson05c.e2, lambda u: 1.0 if u >= 0.5 else 0.0, "mAP@0.5 alone"),
    (
        lesson05c.e2,
        lambda u: np.mean(u <= np.linspace(0.5, 0.95, 10)),
        "the thresholds above the IoU counted",
    ),
    (
        lesson05c.e2,
        lambda u: np.mean(u > np.linspace(0.5, 0.95, 10)),
        "a match needs IoU strictly above the threshold",
    ),
    (
        lesson05c.e2,
        lambda u: int(np.sum(u >= np.linspace(0.5, 0.95, 10))),
        "the count of thresholds, not their mean",
    ),
]

RIGHT = E1_RIGHT + E2_RIGHT
WRONG = E1_WRONG + E2_WRONG
MISTAKES = {lesson05c.e1: lesson05c.E1_MISTAKES, lesson05c.e2: lesson05c.E2_MISTAKES}

(
    test_right_answers_pass,
    test_each_mistake_is_named_with_its_own_hint,
    test_every_mistake_is_tested_and_hints_differ,
    test_placeholders_are_not_done_and_do_not_fail_strict_mode,
) = lesson_exercise_tests(RIGHT, WRONG, MISTAKES)


def test_a_wrong_answer_fails_strict_mode(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    with pytest.raises(AssertionError):
        lesson05c.e2.check(lambda iou: 0.5)


def test_an_unnamed_wrong_answer_gets_the_first_hint():
    feedback = lesson05c.e1.evaluate(lambda *head: 7)
    assert feedback.status == "incorrect" and feedback.hint == lesson05c.e1.hints[0]


def test_a_learners_exception_names_their_line():
    def head_outputs(image_size, stride, boxes_per_cell, n_classes):
        return (image_size // (stride - stride)) ** 2

    feedback = lesson05c.e1.evaluate(head_outputs)
    assert feedback.status == "error" and "stride - stride" in feedback.message
    assert "utils/checks" not in str(feedback)


def test_the_probes_tell_every_mistake_apart():
    for mistakes, right in ((lesson05c.E1_MISTAKES, lesson05c._per_head()()), (lesson05c.E2_MISTAKES, None)):
        results = [tuple(m.compute()) for m in mistakes]
        assert len(set(results)) == len(results)
        if right is not None:
            assert tuple(right) not in results
    assert all(size // stride != stride for size, stride, _, _ in lesson05c.HEADS)


# ---------------------------------------------------------------------------------------------
# the references are the lesson's utils.detection
# ---------------------------------------------------------------------------------------------


def test_one_box_per_cell_is_the_lessons_grid_layout():
    from utils import detection

    image_size, grid, n_classes = 64, 8, len(detection.DETECTION_CLASSES)
    target = detection.encode_grid(
        np.array([[8.0, 8.0, 24.0, 30.0]]), np.array([1]), grid, image_size, n_classes
    )
    assert target.size == lesson05c.head_outputs_variant(image_size, image_size // grid, 1, n_classes)


def test_the_thresholds_are_the_lessons_coco_thresholds():
    from utils import detection

    np.testing.assert_allclose(lesson05c.THRESHOLDS, detection.COCO_IOU_THRESHOLDS)


@pytest.mark.parametrize("iou", [0.5, 0.62, 0.81, 0.97, 0.43])
def test_the_coco_reference_is_utils_detection_mean_average_precision(iou):
    """One image, one object, one detection built to overlap it at exactly `iou` (a box shrunk inside it)."""
    from utils import detection

    truth = np.array([[0.0, 0.0, 10.0, 10.0]])
    found = np.array([[0.0, 0.0, 10.0, 10.0 * iou]])  # inside the object: IoU = its area / 100
    assert detection.iou(found, truth)[0, 0] == pytest.approx(iou, abs=1e-12)
    detections = [(found, np.array([0.9]), np.array([0]))]
    truths = [(truth, np.array([0]))]
    ours = lesson05c._per_iou(lambda u: np.mean(u >= lesson05c.THRESHOLDS))()[lesson05c.IOUS.index(iou)]
    theirs = detection.mean_average_precision(
        detections, truths, iou_thresholds=detection.COCO_IOU_THRESHOLDS, n_classes=1
    )
    assert theirs == pytest.approx(ours)
