"""The checked exercises of lessons 00 and 02: right answers in several styles pass, each known mistake gets
its own hint, placeholders are "not done yet" (and do not fail strict mode in a lesson)."""

import numpy as np
import pytest
from exercise_contract import right_answers_pass
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler

from utils.checks import lesson00, lesson02


def _not_implemented(*args):
    raise NotImplementedError


RIGHT = [
    (lesson00.e1, lambda p, y: np.mean(np.abs(p - y))),
    (lesson00.e1, lambda p, y: sum(abs(a - b) for a, b in zip(p, y, strict=True)) / len(p)),
    (lesson00.e2, lambda probs, labels: np.mean(np.argmax(probs, axis=-1) == labels)),
    (lesson00.e2, lambda probs, labels: float((probs.argmax(1) == labels).sum() / len(labels))),
    (lesson02.e1, lambda x: RobustScaler().fit_transform(x)),
    (lesson02.e1, lambda x: (x - np.median(x, 0)) / np.subtract(*np.percentile(x, [75, 25], axis=0))),
    (lesson02.e2, lambda train, test: MinMaxScaler().fit(train).transform(test)),
    (lesson02.e2, lambda train, test: (test - np.min(train, 0)) / np.ptp(train, 0)),
    (lesson02.e3, lambda tr, v: (np.array(v)[:, None] == np.unique(tr)[None]).astype(int)),
    (
        lesson02.e3,
        lambda tr, v: (
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            .fit(np.array(tr)[:, None])
            .transform(np.array(v)[:, None])
        ),
    ),
]


test_right_answers_pass = right_answers_pass(RIGHT)


MISTAKES = [
    (lesson00.e1, lambda p, y: np.mean(p - y), "cancel out"),
    (lesson00.e1, lambda p, y: np.sum(np.abs(p - y)), "the total"),
    (lesson00.e1, lambda p, y: np.mean((p - y) ** 2), "squares"),
    (lesson00.e2, lambda probs, labels: (probs.argmax(-1) == labels).sum(), "how many are right"),
    (lesson00.e2, lambda probs, labels: np.mean(probs.argmax(-1) != labels), "wrong"),
    (lesson02.e1, lambda x: (x - x.mean(0)) / x.std(0), "(x − mean) / σ"),
    (lesson02.e1, lambda x: x - np.median(x, 0), "not divided"),
    (lesson02.e1, lambda x: RobustScaler().fit_transform(x.T).T, "along the rows"),
    (lesson02.e2, lambda train, test: MinMaxScaler().fit_transform(test), "own min and max"),
    (
        lesson02.e2,
        lambda tr, te: MinMaxScaler().fit(np.vstack([tr, te])).transform(te),
        "include the new rows",
    ),
    (
        lesson02.e3,
        lambda tr, v: (np.array(v)[:, None] == np.unique(tr + v)[None]).astype(int),
        "added columns",
    ),
]


@pytest.mark.parametrize(("exercise", "answer", "phrase"), MISTAKES)
def test_each_mistake_is_named(exercise, answer, phrase):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect" and phrase in fb.hint, str(fb)


EXERCISES = [lesson00.e1, lesson00.e2, lesson02.e1, lesson02.e2, lesson02.e3]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: f"{e.lab}.{e.solution_id}")
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done_and_do_not_fail_a_lesson(exercise, placeholder, monkeypatch):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    exercise.check(placeholder)  # a lesson's untouched exercise does not raise, even in strict mode


def test_hints_come_in_steps(capsys):
    exercise = lesson00.e1
    exercise._hints_shown = 0
    exercise.hint()
    exercise.hint()
    shown = capsys.readouterr().out
    assert exercise.hints[0] in shown and exercise.hints[1] in shown and "hint 2 of 2" in shown
