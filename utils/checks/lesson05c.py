"""Lesson 05c's own exercises. Tasks and the mistakes they name:

* ``e1`` ``head_outputs(image_size, stride, boxes_per_cell, n_classes)``: how many numbers a YOLO-style head
  with several boxes per cell outputs for one image: no objectness score, the grid not squared, class scores
  once per cell (YOLOv1's layout), the stride taken as the number of cells.
* ``e2`` ``coco_map_one(iou)``: mAP@[.5:.95] of a class with one object found once at that IoU: nine
  thresholds (0.95 left out), mAP@0.5 alone, the thresholds above the IoU counted, "above" taken strictly,
  the count of thresholds instead of their mean.
"""

import numpy as np

from utils.checks import Exercise, Mistake, as_int, as_number, call, judge

# (image_size, stride, boxes_per_cell, n_classes): the grid (image_size / stride) is never the stride
HEADS = [(64, 16, 1, 4), (416, 32, 3, 20), (96, 8, 2, 3), (320, 32, 5, 80)]


def head_outputs_variant(image_size, stride, boxes, classes, *, objectness=1, squared=True, classes_per="box",
                         grid_from="size") -> int:  # fmt: skip
    """grid² × boxes × (4 + 1 + classes), grid = image_size / stride; the keywords make the known mistakes."""
    grid = image_size // stride if grid_from == "size" else stride
    cells = grid * grid if squared else grid
    per_cell = boxes * (4 + objectness + classes) if classes_per == "box" else boxes * 5 + classes
    return cells * per_cell


def _per_head(**mistake: object) -> object:
    return lambda: np.array([head_outputs_variant(*h, **mistake) for h in HEADS], dtype=np.float64)


E1_MISTAKES = [
    Mistake("no objectness score", "Each box also carries its objectness, the probability that an object is "
            "there at all: 4 box numbers, 1 objectness, then the class scores.", _per_head(objectness=0)),
    Mistake("grid not squared", "The cells tile the image in two directions: image_size / stride of them across "
            "and as many down.", _per_head(squared=False)),
    Mistake("class scores once per cell", "That is YOLOv1's head, with one set of class scores shared by the "
            "cell's boxes. Here every box has its own class scores.", _per_head(classes_per="cell")),
    Mistake("the stride taken as the number of cells", "The stride is the size of a cell in pixels; the number "
            "of cells across is image_size / stride.", _per_head(grid_from="stride")),
]  # fmt: skip


def _check_head(fn: object) -> None:
    got = np.array([as_int(call(fn, *h), f"head_outputs{h}") for h in HEADS], dtype=np.float64)
    judge(got, _per_head()(), E1_MISTAKES, tol={"rtol": 0, "atol": 0.5},
          what="head_outputs(image_size, stride, boxes_per_cell, n_classes) for " + ", ".join(map(str, HEADS)))  # fmt: skip


e1 = Exercise(
    "Exercise 1 · The size of a detection head",
    _check_head,
    hint=(
        "Count the cells first (how many of `stride` pixels fit across the image, and down), then the numbers "
        "one cell outputs, and multiply.",
        "One box needs 4 numbers for its position and size, 1 for its objectness and one score per class; a "
        "cell predicts boxes_per_cell of them.",
    ),
)

# IoUs of the one detection with its object: 0.5 exactly (a threshold), the others between thresholds
IOUS = [0.5, 0.62, 0.81, 0.97, 0.43, 0.731]
THRESHOLDS = np.round(np.arange(10) * 0.05 + 0.5, 2)  # 0.50, 0.55, ..., 0.95


def _per_iou(f: object) -> object:
    return lambda: np.array([f(u) for u in IOUS], dtype=np.float64)


E2_MISTAKES = [
    Mistake("nine thresholds (0.95 left out)", "COCO averages over ten thresholds, 0.50 to 0.95 *included*. "
            "np.arange(0.5, 0.95, 0.05) stops before 0.95.",
            _per_iou(lambda u: np.mean(u >= THRESHOLDS[:9]))),
    Mistake("mAP@0.5 alone", "That is VOC's mAP@0.5. mAP@[.5:.95] repeats the evaluation at each of the ten "
            "thresholds and averages the ten results.", _per_iou(lambda u: float(u >= 0.5))),
    Mistake("the thresholds above the IoU counted", "The detection is a true positive at a threshold its IoU "
            "reaches (IoU ≥ t): those are the thresholds *at or below* the IoU.",
            _per_iou(lambda u: np.mean(u <= THRESHOLDS))),
    Mistake("a match needs IoU strictly above the threshold", "A detection matches when its IoU is at least "
            "the threshold: at IoU exactly 0.5 it counts at 0.5.", _per_iou(lambda u: np.mean(u > THRESHOLDS))),
    Mistake("the count of thresholds, not their mean", "mAP is an average: a number between 0 and 1, the mean "
            "of the ten APs (each 0 or 1 here).", _per_iou(lambda u: np.sum(u >= THRESHOLDS))),
]  # fmt: skip


def _check_coco(fn: object) -> None:
    hint = "One number between 0 and 1."
    got = np.array([as_number(call(fn, u), f"coco_map_one({u})", hint=hint) for u in IOUS])
    judge(got, _per_iou(lambda u: np.mean(u >= THRESHOLDS))(), E2_MISTAKES, tol={"rtol": 0, "atol": 1e-6},
          what="coco_map_one(iou) for iou in " + ", ".join(map(str, IOUS)))  # fmt: skip


e2 = Exercise(
    "Exercise 2 · mAP@[.5:.95] of one detection",
    _check_coco,
    hint=(
        "With one object and one detection, the AP at a threshold t is 1 if the detection matches (IoU ≥ t) "
        "and 0 if it does not. mAP@[.5:.95] averages that over COCO's thresholds.",
        "The thresholds are 0.50, 0.55, …, 0.95: ten of them. Count those the IoU reaches and divide by ten.",
    ),
)
