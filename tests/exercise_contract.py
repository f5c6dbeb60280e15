"""What every lesson's checked exercises must satisfy, written once for the test_lesson_exercises_* files.

A lesson's exercise must:

- pass every right answer, however it is written (a loop, NumPy, Keras, a float or an int);
- fail each known mistake as "incorrect", name that mistake, and give that mistake's own hint;
- declare no mistake that no test makes, give each of its mistakes a different hint, belong to a
  lesson, and have at least two general hints;
- call an untouched placeholder "not done yet", and not raise for it even in strict mode.

A test file describes its exercises in three tables and binds the tests below to names starting
with ``test_``, so that pytest collects them there (this module is not a test file):

- ``right``: ``(exercise, answer)`` pairs (or ``pytest.param``s of them);
- ``wrong``: ``(exercise, answer, mistake name)`` triples, the mistake name being the test's id;
- ``mistakes``: each exercise's declared mistakes, ``{exercise: [Mistake, ...]}``.

Each function returns new test functions, so a file may mark its own (``pytest.mark.slow(...)``).
The asserts carry their own messages: pytest rewrites the asserts of test files, not of this module.
"""

import pytest


def right_answers_pass(right):
    @pytest.mark.parametrize(("exercise", "answer"), right)
    def test_right_answers_pass(exercise, answer):
        feedback = exercise.evaluate(answer)
        assert feedback.passed, str(feedback)

    return test_right_answers_pass


def each_mistake_is_named_with_its_own_hint(wrong, mistakes):
    @pytest.mark.parametrize(("exercise", "answer", "name"), wrong, ids=[w[2] for w in wrong])
    def test_each_mistake_is_named_with_its_own_hint(exercise, answer, name):
        feedback = exercise.evaluate(answer)
        mistake = next((m for m in mistakes[exercise] if m.name == name), None)
        assert mistake is not None, f"{name!r} is not a declared mistake of this exercise"
        assert feedback.status == "incorrect" and feedback.got.endswith(name), str(feedback)
        assert feedback.hint == mistake.hint, (feedback.hint, mistake.hint)

    return test_each_mistake_is_named_with_its_own_hint


def every_mistake_is_tested_and_hints_differ(wrong, mistakes):
    def test_every_mistake_is_tested_and_hints_differ():
        tested = {(exercise, name) for exercise, _, name in wrong}
        for exercise, declared in mistakes.items():
            untested = {(exercise, m.name) for m in declared} - tested
            assert not untested, f"declared but never made: {sorted(name for _, name in untested)}"
            assert len({m.hint for m in declared}) == len(declared), "two mistakes share a hint"
            assert exercise.lesson and len(exercise.hints) >= 2, exercise

    return test_every_mistake_is_tested_and_hints_differ


def placeholders_are_not_done_and_do_not_fail_strict_mode(exercises):
    @pytest.mark.parametrize("exercise", list(exercises))
    def test_placeholders_are_not_done_and_do_not_fail_strict_mode(exercise, monkeypatch):
        monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
        feedback = exercise.evaluate(...)
        assert feedback.status == "not_done", str(feedback)
        exercise.check(...)  # a lesson's exercise left open: no AssertionError, even in strict mode

    return test_placeholders_are_not_done_and_do_not_fail_strict_mode


def lesson_exercise_tests(right, wrong, mistakes):
    """The four tests above over one file's tables, in this order: right answers pass, each mistake is
    named with its own hint, every mistake is tested and hints differ, placeholders are not done."""
    return (
        right_answers_pass(right),
        each_mistake_is_named_with_its_own_hint(wrong, mistakes),
        every_mistake_is_tested_and_hints_differ(wrong, mistakes),
        placeholders_are_not_done_and_do_not_fail_strict_mode(mistakes),
    )
