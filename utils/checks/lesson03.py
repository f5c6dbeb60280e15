"""Lesson 03's exercises. ``e1`` ``steps``: the gradient steps of one epoch with ``validation_split``
(the split forgotten, rounding down, the validation part counted); ``e2`` ``loss``: the Keras loss for a
logits output and one-hot labels (``from_logits`` missing, the sparse loss, a binary loss)."""

import math
from typing import Any

import numpy as np

from utils.checks import Exercise, LearnerError, Mismatch, Mistake, as_int, as_number, call, judge, softmax

N, SPLIT, BATCH = 1010, 0.2, 32
KEPT = int(N * (1 - SPLIT))  # Keras keeps the first 808 rows for training
E1_MISTAKES = [
    Mistake("the split forgotten", "That counts all the rows; validation_split holds some of them out.",
            lambda: math.ceil(N / BATCH)),
    Mistake("rounded down", "The last, smaller batch is still a step: round up.", lambda: KEPT // BATCH),
    Mistake("the validation rows", "Those are the held-out rows; fit trains on the others.",
            lambda: math.ceil((N - KEPT) / BATCH)),
]  # fmt: skip


def _check_steps(value: Any) -> None:
    got = as_int(value, "the number of steps")
    judge(got, math.ceil(KEPT / BATCH), E1_MISTAKES, what="steps per epoch", tol={"rtol": 0, "atol": 0.5})


e1 = Exercise(
    "Exercise 1 · steps per epoch",
    _check_steps,
    hint=(
        "First find how many rows fit trains on, then how many batches of 32 it takes to see them all.",
        "Keras trains on the first int(1010 × 0.8) rows; a final partial batch counts as a step, so round up.",
    ),
)

LABELS = np.eye(5, dtype="float32")[[0, 3, 1, 4, 2, 2]]  # one-hot rows
LOGITS = np.array([[2, -1, 0.5, 0, 1], [0, 1, -2, 3, 0], [1, 1, 0, 0, -1],
                   [-1, 0, 2, 0, 1], [0, 0, 3, 1, -2], [2, 0, 0, 1, 0]], dtype="float32")  # fmt: skip


def _ce(p):
    return -np.mean(np.sum(LABELS * np.log(np.clip(p, 1e-7, 1)), axis=1))


E2_MISTAKES = [
    Mistake("from_logits missing", "Your loss reads the logits as probabilities: say what it receives.",
            lambda: _ce(LOGITS / LOGITS.sum(axis=1, keepdims=True))),
    Mistake("a binary loss", "A binary cross-entropy scores each class on its own; one class out of five "
            "needs the categorical one.", lambda: _binary()),
]  # fmt: skip
SPARSE = Mistake("the sparse loss", "The sparse loss wants class numbers; these labels are one-hot rows.")


def _binary() -> float:
    return float(np.mean(np.maximum(LOGITS, 0) - LOGITS * LABELS + np.log1p(np.exp(-np.abs(LOGITS)))))


def _check_loss(loss: Any) -> None:
    try:
        got = as_number(call(loss, LABELS, LOGITS), "the loss on the probe")
    except LearnerError:  # the sparse loss raises on one-hot rows
        raise Mismatch(
            "your loss on one-hot rows", expected="a number", got="an error", hint=SPARSE.hint
        ) from None
    judge(
        got, _ce(softmax(LOGITS)), E2_MISTAKES, what="the loss on a probe", tol={"rtol": 1e-4, "atol": 1e-5}
    )


e2 = Exercise(
    "Exercise 2 · the loss for a described output",
    _check_loss,
    hint=(
        "Two questions pick it: are the labels class numbers or one-hot rows, and does the model end in a softmax?",
        "One-hot rows call for the categorical cross-entropy (not the sparse one), and an output without "
        "softmax means logits, which the loss must be told about.",
    ),
)
