"""Exercise checks: each exercise is one object with ``check()``, ``hint()`` and ``solution()``.

A check judges the learner's answer and shows one short message: correct; not done yet; or
what was expected, what it got, and one hint. It never shows a traceback from course code. If
the learner's own code raises, the message names the error and the line of *their* code.

A lab's checks live in a module of this package (``utils.checks.lab01``), one
:class:`Exercise` per question. Writing a checker::

    def _check_gradient(fn):
        got = call(fn, w=2.0, x=3.0)              # runs learner code safely
        expect_close(got, 6.0, what="dL/dw at w=2, x=3", hint="Did you multiply by x?")

Set ``COURSE_CHECKS_STRICT=1`` (the test suite does) and a check that does not pass raises
``AssertionError``, so a solution notebook proves its answers pass.
"""

from __future__ import annotations

import html
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils import settings
from utils.env import quiet_stderr

__all__ = [
    "Exercise",
    "Feedback",
    "LearnerError",
    "Mismatch",
    "NotDone",
    "call",
    "checkpoint",
    "expect",
    "expect_close",
    "expect_shape",
    "is_placeholder",
]


class NotDone(Exception):
    """The learner has not answered yet (placeholder still there)."""


class Mismatch(Exception):
    """The answer is wrong in a specific way: what was expected, what came back, one hint."""

    def __init__(self, what: str, expected: Any = None, got: Any = None, hint: str | None = None):
        super().__init__(what)
        self.what, self.expected, self.got, self.hint = what, expected, got, hint


class LearnerError(Exception):
    """The learner's own code raised; carries their exception and the line it came from."""

    def __init__(self, error: BaseException, where: str):
        super().__init__(f"{type(error).__name__}: {error}")
        self.error, self.where = error, where


def is_placeholder(value: Any) -> bool:
    """Return True for an unanswered placeholder: ``...`` (Ellipsis) or ``None``."""
    return value is Ellipsis or value is None


def _library_dirs() -> tuple[str, ...]:
    """Folders whose frames are not the learner's: this package, the standard library, site-packages."""
    paths = sysconfig.get_paths()
    dirs = {str(Path(__file__).resolve().parent.parent)}
    dirs.update(
        str(Path(paths[k]).resolve()) for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths
    )
    return tuple(sorted(dirs))


def _learner_line(exc: BaseException) -> str:
    """Describe the innermost frame of ``exc`` that is the learner's own code."""
    frames = traceback.extract_tb(exc.__traceback__)
    libraries = _library_dirs()
    own = [f for f in frames if not str(Path(f.filename).resolve()).startswith(libraries)]
    if not own:
        return ""
    f = own[-1]
    src = f" → {f.line.strip()}" if f.line else ""
    name = "your cell" if f.filename.startswith("<") or "ipykernel" in f.filename else Path(f.filename).name
    return f"line {f.lineno} of {name}{src}"


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function and return its result.

    Raises :class:`NotDone` if it is a placeholder or raises ``NotImplementedError``,
    :class:`Mismatch` if it is not callable, and :class:`LearnerError` if it raises.
    """
    if is_placeholder(fn):
        raise NotDone
    if not callable(fn):
        raise Mismatch("a function", expected="a function (def ...)", got=type(fn).__name__)
    try:
        with quiet_stderr():  # a failing TensorFlow op also prints a C++ line; the exception says it all
            return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotDone from exc
    except Exception as exc:  # the learner's bug: report it kindly, not as a traceback
        raise LearnerError(exc, _learner_line(exc)) from None


def _to_array(value: Any) -> np.ndarray | None:
    try:
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray) or hasattr(value, "numpy"):
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        with np.printoptions(precision=4, suppress=True, threshold=8, edgeitems=2):
            text = np.array2string(arr, separator=", ")
        return text if arr.ndim == 0 else f"{text} (shape {arr.shape})"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def expect_shape(got: Any, shape: tuple[int, ...], *, what: str, hint: str | None = None) -> None:
    """Raise :class:`Mismatch` unless ``got`` has exactly ``shape``."""
    if is_placeholder(got):
        raise NotDone
    actual = tuple(np.shape(got.numpy() if hasattr(got, "numpy") else got))
    if actual != tuple(shape):
        raise Mismatch(f"the shape of {what}", expected=tuple(shape), got=actual, hint=hint)


def expect_close(
    got: Any,
    expected: Any,
    *,
    what: str,
    hint: str | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Raise :class:`Mismatch` unless ``got`` is numerically close to ``expected``.

    Shapes must match (no silent broadcasting): a (3, 1) answer to a (3,) question is wrong.
    """
    if is_placeholder(got):
        raise NotDone
    exp = np.asarray(expected, dtype=np.float64)
    arr = _to_array(got)
    if arr is None:
        raise Mismatch(
            what, expected="a number or an array", got=f"{type(got).__name__}: {_short(got)}", hint=hint
        )
    if arr.shape != exp.shape:
        raise Mismatch(
            f"the shape of {what}",
            expected=exp.shape,
            got=arr.shape,
            hint=hint or "Check which axes you summed or broadcast over.",
        )
    if not np.all(np.isfinite(arr)):
        raise Mismatch(what, expected=_short(exp), got=_short(arr), hint="Your answer contains NaN or inf.")
    if not np.allclose(arr, exp, rtol=rtol, atol=atol):
        raise Mismatch(what, expected=_short(exp), got=_short(arr), hint=hint)


def expect(
    condition: bool, what: str, *, expected: Any = None, got: Any = None, hint: str | None = None
) -> None:
    """Raise :class:`Mismatch` with the given details unless ``condition`` holds."""
    if not condition:
        raise Mismatch(what, expected=expected, got=got, hint=hint)


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer. ``status`` is 'correct', 'incorrect', 'not_done' or 'error'."""

    status: str
    title: str
    message: str
    expected: str | None = None
    got: str | None = None
    hint: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    _ICONS = {"correct": "✅", "incorrect": "❌", "not_done": "⏳", "error": "⚠️"}
    _COLOURS = {"correct": "#1b7f3b", "incorrect": "#b3261e", "not_done": "#6b6b6b", "error": "#b36b00"}

    def __str__(self) -> str:
        lines = [f"{self._ICONS[self.status]} {self.title}: {self.message}"]
        if self.expected is not None:
            lines.append(f"   expected: {self.expected}")
        if self.got is not None:
            lines.append(f"   got:      {self.got}")
        if self.hint:
            lines.append(f"   hint: {self.hint}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour = self._COLOURS[self.status]
        parts = [
            f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
            f'<b style="color:{colour}">{self._ICONS[self.status]} {html.escape(self.title)}</b>: '
            f"{html.escape(self.message)}"
        ]
        for label, value in (("expected", self.expected), ("got", self.got), ("hint", self.hint)):
            if value is not None:
                parts.append(f"<br><b>{label}:</b> <code>{html.escape(value)}</code>")
        return "".join(parts) + "</div>"


def _strict() -> bool:
    """``$COURSE_CHECKS_STRICT`` is on (1, true, yes or on, as every flag of the course)."""
    return settings.checks_strict()


def _display(obj: Any) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(obj)
            return
    except ImportError:
        pass
    print(obj)


class Exercise:
    """One exercise: ``check(answer)``, ``hint()``, ``solution()``.

    ``checker(answer)`` returns normally when the answer is right and raises
    :class:`Mismatch` / :class:`NotDone` (directly or through :func:`call` and the
    ``expect_*`` helpers) when it is not.
    """

    def __init__(
        self,
        title: str,
        checker: Callable[[Any], None],
        *,
        hint: str,
        solution_id: str | None = None,
        lab: str | None = None,
        not_done: str = "not done yet. Replace the placeholder with your answer, then run this cell again.",
    ):
        self.title, self._checker, self._hint = title, checker, hint
        self.solution_id, self.lab, self._not_done = solution_id, lab, not_done

    def evaluate(self, answer: Any) -> Feedback:
        """Judge ``answer`` and return the :class:`Feedback` (shows nothing)."""
        try:
            self._checker(answer)
        except NotDone:
            return Feedback("not_done", self.title, self._not_done)
        except Mismatch as m:
            return Feedback(
                "incorrect",
                self.title,
                f"not quite: {m.what} is not right.",
                expected=None if m.expected is None else str(m.expected),
                got=None if m.got is None else str(m.got),
                hint=m.hint or self._hint,
            )
        except LearnerError as e:
            where = f" ({e.where})" if e.where else ""
            return Feedback("error", self.title, f"your code raised {e}{where}.", hint=self._hint)
        except Exception as exc:  # an answer of a shape the checker did not foresee
            return Feedback(
                "error",
                self.title,
                f"your answer could not be checked ({type(exc).__name__}: {exc}).",
                hint="Check that it has the type and shape the exercise asks for. " + self._hint,
            )
        return Feedback("correct", self.title, "correct, well done!")

    def check(self, answer: Any) -> None:
        """Show feedback on ``answer``. In strict mode (tests) a wrong answer raises."""
        feedback = self.evaluate(answer)
        _display(feedback)
        if _strict() and not feedback.passed:
            raise AssertionError(str(feedback))

    def hint(self) -> None:
        """Show this exercise's hint."""
        _display(Feedback("not_done", self.title, "hint", hint=self._hint))

    def solution(self) -> None:
        """Show the model answer, if the instructor has released the lab's solutions."""
        from utils import labs

        text = None
        if self.lab and self.solution_id:
            text = labs.solution_text(self.lab, self.solution_id)
        if text is None:
            print(f"{self.title}: the solution is not available here (your instructor releases it).")
            return
        try:
            from IPython.display import Markdown

            _display(Markdown(f"**{self.title}, a model answer:**\n\n```python\n{text}\n```"))
        except ImportError:
            print(text)


def checkpoint(
    name: str,
    value: float,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    unit: str = "",
) -> float:
    """Assert a notebook's stated result and show it: ``checkpoint("val accuracy", acc, at_least=0.9)``.

    Prints one line starting with ``checkpoint ·`` (the benchmark script collects these) and
    raises ``AssertionError`` naming the bound if ``value`` falls outside it. Returns ``value``.
    """
    value = float(value)
    bounds = []
    if at_least is not None:
        bounds.append(f"≥ {at_least:g}")
    if at_most is not None:
        bounds.append(f"≤ {at_most:g}")
    shown = f"{value:.4g}{unit}"
    print(f"checkpoint · {name} = {shown}" + (f"  (expected {' and '.join(bounds)})" if bounds else ""))
    if (at_least is not None and not value >= at_least) or (at_most is not None and not value <= at_most):
        raise AssertionError(
            f"{name} = {shown} is outside the expected range ({' and '.join(bounds)}). The lesson's "
            "claim does not hold on this run: check the cells above, or the profile's sizes."
        )
    return value
