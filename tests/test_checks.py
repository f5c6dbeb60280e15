"""utils.checks: specific, friendly feedback, and never a traceback from course code."""

import numpy as np
import pytest

from utils.checks import Exercise, Feedback, Mismatch, call, checkpoint, expect, expect_close, expect_shape


def _check_double(fn):
    got = call(fn, np.array([1.0, 2.0, 3.0]))
    expect_shape(got, (3,), what="the result", hint="Return one value per input.")
    if np.allclose(np.asarray(got), [1.0, 4.0, 9.0]):
        raise Mismatch("the result", expected="[2, 4, 6]", got="[1, 4, 9]", hint="Double, don't square.")
    expect_close(got, [2.0, 4.0, 6.0], what="the result for [1, 2, 3]")


ex = Exercise("Double it", _check_double, hint="Multiply by 2.", lab=None)


def test_right_answers_written_differently_pass():
    assert ex.evaluate(lambda x: 2 * x).passed
    assert ex.evaluate(lambda x: x + x).passed
    assert ex.evaluate(lambda x: [2.0 * v for v in x]).passed  # a list is fine too


@pytest.mark.parametrize("placeholder", [..., None])
def test_placeholders_are_not_done(placeholder):
    fb = ex.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_not_implemented_is_not_done():
    def answer(x):
        raise NotImplementedError

    assert ex.evaluate(answer).status == "not_done"


def test_a_known_mistake_gets_its_own_message():
    fb = ex.evaluate(lambda x: x**2)
    assert fb.status == "incorrect"
    assert fb.hint == "Double, don't square." and fb.expected == "[2, 4, 6]"


def test_wrong_shape_is_reported_as_shape():
    fb = ex.evaluate(lambda x: (2 * x)[:, None])
    assert fb.status == "incorrect" and "shape" in fb.message
    assert fb.expected == "(3,)" and fb.got == "(3, 1)"


def test_learner_exception_names_their_line_not_course_code():
    def answer(x):
        return x / undefined_name  # noqa: F821

    fb = ex.evaluate(answer)
    assert fb.status == "error"
    assert "NameError" in fb.message and "undefined_name" in fb.message
    assert "test_checks.py" in fb.message  # the learner's file, here this test
    assert "utils/checks" not in str(fb) and "Traceback" not in str(fb)


def test_unexpected_answer_type_gets_feedback_not_a_crash():
    fb = ex.evaluate(lambda x: "six")
    assert fb.status in ("incorrect", "error") and "Traceback" not in str(fb)
    assert ex.evaluate(42).status == "incorrect"  # not a function


def test_nan_is_called_out():
    fb = ex.evaluate(lambda x: x * np.nan)
    assert fb.status == "incorrect" and "NaN" in fb.hint


def test_check_displays_and_strict_mode_raises(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_CHECKS_STRICT", raising=False)
    ex.check(lambda x: x**2)  # shows feedback, no exception for a learner
    assert "not quite" in capsys.readouterr().out
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    with pytest.raises(AssertionError, match="Double it"):
        ex.check(lambda x: x**2)
    ex.check(lambda x: 2 * x)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["on", "TRUE", "yes"])
def test_strict_mode_reads_every_true_word_of_a_flag(monkeypatch, value):
    # COURSE_OFFLINE took 'on' and COURSE_CHECKS_STRICT did not: one meaning now (utils.settings).
    monkeypatch.setenv("COURSE_CHECKS_STRICT", value)
    with pytest.raises(AssertionError, match="Double it"):
        ex.check(lambda x: x**2)


def test_strict_mode_off_shows_feedback(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "off")
    ex.check(lambda x: x**2)
    assert "not quite" in capsys.readouterr().out


def test_feedback_renders_as_html_and_text():
    fb = Feedback("incorrect", "Q<1>", "not quite", expected="1", got="2", hint="a < b")
    html = fb._repr_html_()
    assert "Q&lt;1&gt;" in html and "a &lt; b" in html
    assert "expected: 1" in str(fb) and "got:      2" in str(fb)


def test_expect_raises_mismatch_with_details():
    with pytest.raises(Mismatch) as info:
        expect(False, "the sign", expected="+", got="-", hint="flip it")
    assert info.value.expected == "+" and info.value.hint == "flip it"


def test_checkpoint_passes_and_fails_with_a_clear_message(capsys):
    assert checkpoint("accuracy", 0.95, at_least=0.9) == 0.95
    assert "checkpoint · accuracy = 0.95  (expected ≥ 0.9)" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="accuracy = 0.5 is outside"):
        checkpoint("accuracy", 0.5, at_least=0.9)
    with pytest.raises(AssertionError):
        checkpoint("loss", float("nan"), at_most=1.0)


# --- the shared toolkit -------------------------------------------------------------------------

from utils.checks import Mistake, NotDone, as_array, as_int, as_number, judge, softmax  # noqa: E402

SQUARE_MISTAKES = [
    Mistake("squared", "You squared; the exercise doubles.", lambda x: x**2),
    Mistake("halved", "You divided by two.", lambda x: x / 2),
]
stepped = Exercise(
    "Stepped",
    lambda fn: judge(
        as_array(call(fn, np.array([1.0, 3.0])), "f(x)"),
        [2.0, 6.0],
        SQUARE_MISTAKES,
        what="f(x)",
        inputs=(np.array([1.0, 3.0]),),
    ),
    hint=("Look at what the function should do to each value.", "One multiplication is enough."),
)


def test_converters_say_what_they_expected():
    assert as_array([[1, 0]], "m", dtype=bool).dtype == bool
    with pytest.raises(Mismatch, match="m") as info:
        as_array([[2, 0]], "m", dtype=bool)
    assert "boolean" in info.value.expected
    with pytest.raises(Mismatch) as info:
        as_array(np.zeros((2, 3)), "x", shape=(3, 2))
    assert info.value.expected == (3, 2) and info.value.got == (2, 3)
    with pytest.raises(NotDone):
        as_array(..., "x")
    assert as_int(np.float32(3.0), "n") == 3 and as_number(np.array([2.5]), "v") == 2.5
    with pytest.raises(Mismatch, match="n"):
        as_int(2.5, "n")
    with pytest.raises(Mismatch):
        as_number([1, 2], "v")


def test_judge_names_the_nearest_declared_mistake():
    assert stepped.evaluate(lambda x: x * 2).passed
    fb = stepped.evaluate(lambda x: x**2)
    assert (
        fb.status == "incorrect" and fb.hint == "You squared; the exercise doubles." and "squared" in fb.got
    )
    fb = stepped.evaluate(lambda x: x + 5)
    assert fb.hint == stepped.hints[0]  # no known mistake: the first, gentlest hint


def test_softmax_gives_masked_entries_zero_weight():
    w = softmax(np.array([0.0, 0.0, -np.inf]))
    assert np.allclose(w, [0.5, 0.5, 0.0])


def test_hints_come_in_steps(capsys):
    stepped.hint()
    assert "hint 1 of 2" in capsys.readouterr().out
    stepped.hint()
    out = capsys.readouterr().out
    assert "One multiplication" in out and "hint 2 of 2" in out
    stepped.hint(1)
    assert "Look at what" in capsys.readouterr().out
    stepped.hint(9)  # past the last: the strongest
    assert "One multiplication" in capsys.readouterr().out


def test_lab_and_solution_id_come_from_where_the_exercise_is_defined():
    from utils.checks import lab06

    assert (lab06.q1.lab, lab06.q1.solution_id) == ("lab06", "q1")
    assert stepped.lab is None and stepped.solution_id == "stepped"  # defined outside utils.checks


def test_a_lesson_exercise_left_open_does_not_fail_strict_mode(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CHECKS_STRICT", "1")
    lesson = Exercise("L", _check_double, hint=("a", "b"), lab="lesson99")
    lesson.check(...)  # the published lesson leaves it open: shown, not raised
    assert "not done yet" in capsys.readouterr().out
    with pytest.raises(AssertionError):
        lesson.check(lambda x: x**2)  # a wrong answer still fails
    with pytest.raises(AssertionError):
        ex.check(...)  # and a lab's open answer fails in its solution notebook


def test_a_library_not_implemented_error_is_the_learners_bug_not_a_placeholder():
    def answer(x):
        raise NotImplementedError("Cannot convert a symbolic tf.Tensor to a numpy array.")

    fb = ex.evaluate(answer)
    assert fb.status == "error" and "symbolic" in fb.message
