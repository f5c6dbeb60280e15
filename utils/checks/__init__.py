"""Exercise checks: each exercise is one object with ``check()``, ``hint()`` and ``solution()``.

A check judges the learner's answer and shows one short message: correct; not done yet; or
what was expected, what it got, and one hint. It never shows a traceback from course code. If
the learner's own code raises, the message names the error and the line of *their* code.

A lab's checks live in a module of this package (``utils.checks.lab01``), one
:class:`Exercise` per question. Writing a checker::

    def _check_gradient(fn):
        got = call(fn, w=2.0, x=3.0)              # runs learner code safely
        expect_close(got, 6.0, what="dL/dw at w=2, x=3", hint="Did you multiply by x?")

The toolkit every checks module shares, so a module holds only its probes, its reference and
its known mistakes:

* running learner code: :func:`call`;
* converting answers: :func:`as_array`, :func:`as_number`, :func:`as_int` (each raises a
  :class:`Mismatch` that says what was expected instead of a ``TypeError``);
* comparing: :func:`answer_tolerance` (the precision the answer was computed in, so the checks hold
  under ``mixed_float16`` and ``mixed_bfloat16``), :func:`distance`, :func:`softmax`;
* known mistakes, declared as data: a list of :class:`Mistake` (what the mistake computes on the
  probe, and the hint it earns), judged by :func:`judge`, which names the nearest one;
* :class:`Exercise`: its lab and solution id come from where it is defined (``q1`` in
  ``utils.checks.lab06`` is lab06's ``q1``); its hints come in steps (``hint()``, then
  ``hint()`` again or ``hint(2)`` for a stronger one), and none contains a line of the answer.

Set ``COURSE_CHECKS_STRICT=1`` (the test suite does) and a check that does not pass raises
``AssertionError``, so a solution notebook proves its answers pass. A lesson's own exercises
(modules ``lessonNN``) are published unanswered, so there "not done yet" does not raise.
"""

from __future__ import annotations

import html
import sys
import sysconfig
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils import settings
from utils.env import quiet_stderr

__all__ = [
    "variants",
    "Exercise",
    "Feedback",
    "LearnerError",
    "Mismatch",
    "Mistake",
    "NotDone",
    "answer_tolerance",
    "as_array",
    "as_int",
    "as_number",
    "call",
    "checkpoint",
    "distance",
    "dtype_name",
    "expect",
    "expect_close",
    "expect_shape",
    "is_placeholder",
    "judge",
    "keras_module",
    "softmax",
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


def _from_placeholder(exc: BaseException) -> bool:
    """True if ``exc`` came from a placeholder's bare ``raise NotImplementedError`` (Keras may re-raise
    it with a longer message, keeping the traceback), not from a library that cannot do something."""
    if not str(exc):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and (frames[-1].line or "").strip() == "raise NotImplementedError"


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function and return its result.

    Raises :class:`NotDone` if it is a placeholder or raises a bare ``NotImplementedError``,
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
        if _from_placeholder(exc):
            raise NotDone from exc
        # a library's (NumPy fed a symbolic tensor in a graph, say): the learner's bug
        raise LearnerError(exc, _learner_line(exc)) from None
    except Exception as exc:  # the learner's bug: report it kindly, not as a traceback
        raise LearnerError(exc, _learner_line(exc)) from None


def _to_array(value: Any, dtype: Any = np.float64) -> np.ndarray | None:
    try:
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=dtype)
    except (TypeError, ValueError, AttributeError):
        return None
    return arr


# ---------------------------------------------------------------------------------------------
# converting answers
# ---------------------------------------------------------------------------------------------


def as_array(
    value: Any,
    what: str,
    *,
    dtype: Any = np.float64,
    shape: tuple[int, ...] | None = None,
    hint: str | None = None,
) -> np.ndarray:
    """Return the learner's answer as a NumPy array (from NumPy, TensorFlow, Keras or a list).

    Raises :class:`NotDone` for a placeholder and :class:`Mismatch` for something that is not an
    array of numbers (``what`` names it in the message), or, with ``shape``, one of another shape.
    ``dtype=bool`` reads a mask: 0/1 numbers are accepted, other values are not.
    """
    if is_placeholder(value):
        raise NotDone
    if dtype is bool:
        arr = _to_array(value, None)
        if arr is None or not (arr.dtype == bool or (arr.dtype.kind in "iuf" and np.isin(arr, (0, 1)).all())):
            raise Mismatch(
                what,
                expected="a boolean array (True where allowed)",
                got=f"{type(value).__name__}: {_short(value)}",
                hint=hint,
            )
        arr = arr.astype(bool)
    else:
        arr = _to_array(value, dtype)
        if arr is None:
            raise Mismatch(
                what,
                expected="an array of numbers",
                got=f"{type(value).__name__}: {_short(value)}",
                hint=hint,
            )
    if shape is not None and arr.shape != tuple(shape):
        raise Mismatch(
            f"the shape of {what}",
            expected=tuple(shape),
            got=arr.shape,
            hint=hint or "Check which axes you kept, summed or broadcast over.",
        )
    return arr


def as_number(value: Any, what: str, *, hint: str | None = None) -> float:
    """Return a single number (a Python, NumPy or tensor scalar, or a one-element array) as ``float``."""
    arr = as_array(value, what, hint=hint)
    if arr.size != 1:
        raise Mismatch(what, expected="one number", got=f"an array of shape {arr.shape}", hint=hint)
    return float(arr.reshape(()))


def as_int(value: Any, what: str, *, hint: str | None = None) -> int:
    """Return a single whole number (``3``, ``np.int64(3)``, ``3.0``, a scalar tensor) as ``int``."""
    number = as_number(value, what, hint=hint)
    if not np.isfinite(number) or number != round(number):
        raise Mismatch(what, expected="a whole number", got=_short(value), hint=hint)
    return int(round(number))


def dtype_name(value: Any) -> str:
    """Return the dtype name of a NumPy array or tensor ('float16', 'bfloat16', ...), else ''."""
    dtype = getattr(value, "dtype", None)
    return "" if dtype is None else str(getattr(dtype, "name", dtype))


def keras_module() -> Any:
    """Return ``keras``, imported on first use with TensorFlow's start-up noise hidden (a checks
    module stays cheap to import; only the checks that build or train a model pay for Keras)."""
    from utils.env import import_tensorflow

    import_tensorflow()
    import keras

    return keras


# ---------------------------------------------------------------------------------------------
# comparing
# ---------------------------------------------------------------------------------------------

HALF = ("float16", "bfloat16")  # the compute dtypes of the mixed-precision policies


def answer_tolerance(*answers: Any, rtol: float = 1e-5, atol: float = 1e-6) -> dict[str, float]:
    """Return ``{"rtol", "atol"}`` for answers at the precision they were computed in.

    The given float32 tolerance; looser (:func:`utils.env.tolerance`) if an answer is a float16 or
    bfloat16 array, or if Keras is loaded and its policy computes in one of them (the learner's
    Keras layers then do, even when they hand back float32).
    """
    from utils.env import compute_dtype, tolerance

    dtypes = {dtype_name(a) for a in answers}
    if "keras" in sys.modules:
        dtypes.add(compute_dtype())
    tol = {"rtol": rtol, "atol": atol}
    for dtype in HALF:
        if dtype in dtypes:
            tol = {k: max(v, tolerance(dtype)[k]) for k, v in tol.items()}
    return tol


def distance(got: Any, ref: Any, tol: dict[str, float]) -> float:
    """Return the largest error of ``got`` in units of the tolerance (≤ 1 is close; other shape: inf)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        same = (got == ref) | (np.isnan(got) & np.isnan(ref))  # equal infinities are no error
        d = np.where(same, 0.0, np.abs(got - ref) / (tol["atol"] + tol["rtol"] * np.abs(ref)))
    return float("inf") if np.isnan(d).any() else float(np.max(d))


def softmax(x: Any, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` in float64; −∞ entries get weight 0 (a row of only −∞ gives NaN)."""
    x = np.asarray(x, dtype=np.float64)
    top = np.max(np.where(np.isneginf(x), -1e300, x), axis=axis, keepdims=True)
    e = np.exp(x - top)
    with np.errstate(invalid="ignore", divide="ignore"):
        return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------------
# known mistakes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    """A mistake learners make, declared as data: ``Mistake("no √d_k", "hint...", compute)``.

    ``compute`` returns what the mistaken answer gives on the probe (it receives the same inputs
    as the reference), so :func:`judge` recognises the mistake by its result, however it was
    written. ``hint`` is what the learner is told; it names the slip without giving the answer.
    """

    name: str
    hint: str
    compute: Callable[..., Any] | None = None

    def fail(self, what: str, *, expected: Any = None, got: Any = None) -> None:
        """Raise the :class:`Mismatch` of this mistake, found by behaviour: ``got`` is named after it."""
        shown = self.name if got is None else f"{got} ({self.name})"
        raise Mismatch(what, expected=expected, got=shown, hint=self.hint)


def variants(fn: Callable[..., Any]) -> Callable[..., Mistake]:
    """``M = variants(f)``; ``M(name, hint, **kw)`` is the mistake that computes ``f(*inputs, **kw)``.

    One reference function with switches (``f(x, squared=True)``) then declares many mistakes.
    """
    return lambda name, hint, **kw: Mistake(name, hint, lambda *inputs: fn(*inputs, **kw))


def judge(
    got: Any,
    expected: Any,
    mistakes: Sequence[Mistake] = (),
    *,
    what: str,
    inputs: tuple = (),
    tol: dict[str, float] | None = None,
    hint: str | None = None,
    describe: str | None = None,
) -> None:
    """Pass if ``got`` is ``expected`` within ``tol``; else raise a :class:`Mismatch` naming the mistake.

    Each mistake's ``compute(*inputs)`` is what that mistake gives; the nearest one within the
    tolerance names the hint. ``describe`` replaces the printed expected value (for big arrays).
    ``got`` must already be an array (see :func:`as_array`); shapes must match exactly.
    """
    tol = tol or answer_tolerance(got)
    got_arr = np.asarray(got, dtype=np.float64)
    ref = np.asarray(expected, dtype=np.float64)
    if distance(got_arr, ref, tol) <= 1:
        return
    near = [(distance(got_arr, m.compute(*inputs), tol), m) for m in mistakes if m.compute is not None]
    near = [(d, m) for d, m in near if d <= 1]
    if near:
        found = min(near, key=lambda pair: pair[0])[1]
        raise Mismatch(
            what, expected=describe or _short(ref), got=f"{_short(got_arr)}: {found.name}", hint=found.hint
        )
    if got_arr.shape != ref.shape:
        raise Mismatch(
            f"the shape of {what}",
            expected=ref.shape,
            got=got_arr.shape,
            hint=hint or "Check which axes you kept, summed or broadcast over.",
        )
    if not np.isfinite(got_arr).all() and np.isfinite(ref).all():
        raise Mismatch(
            what,
            expected=describe or _short(ref),
            got=_short(got_arr),
            hint="Your answer contains NaN or inf.",
        )
    raise Mismatch(what, expected=describe or _short(ref), got=_short(got_arr), hint=hint)


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
    condition: bool, what: str, expected: Any = None, got: Any = None, hint: str | None = None
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
    :class:`Mismatch` / :class:`NotDone` (directly or through :func:`call`, the converters,
    :func:`judge` and the ``expect_*`` helpers) when it is not.

    ``hint`` is one hint or several, from a nudge to a strong hint: ``hint()`` shows the next
    one each time it is called, ``hint(2)`` the second. A wrong answer that matches no known
    mistake gets the first. The lab (``lab06``) and the solution id (``q1``) come from the module
    and the name the exercise is assigned to; pass ``lab`` and ``solution_id`` to override them.
    """

    def __init__(
        self,
        title: str,
        checker: Callable[[Any], None],
        *,
        hint: str | Sequence[str],
        solution_id: str | None = None,
        lab: str | None = None,
        not_done: str = "not done yet. Replace the placeholder with your answer, then run this cell again.",
    ):
        self.title, self._checker, self._not_done = title, checker, not_done
        self.hints: tuple[str, ...] = (hint,) if isinstance(hint, str) else tuple(hint)
        if not self.hints:
            raise ValueError(f"{title}: an exercise needs at least one hint")
        self._module = sys._getframe(1).f_globals.get("__name__", "")
        defined_in = self._module.rpartition(".")[2]
        self.lab = (
            lab if lab is not None else (defined_in if self._module.startswith("utils.checks.") else None)
        )
        self._solution_id = solution_id
        self._hints_shown = 0

    @property
    def solution_id(self) -> str | None:
        """The id of this exercise's answer in its solution notebook: given, or the name it is bound to."""
        if self._solution_id is None:
            module = sys.modules.get(self._module)
            names = [k for k, v in vars(module).items() if v is self] if module else []
            return names[0] if names else None
        return self._solution_id

    @property
    def lesson(self) -> bool:
        """True for a lesson's own exercise (module ``lessonNN``), published unanswered."""
        return bool(self.lab) and self.lab.startswith("lesson")

    def evaluate(self, answer: Any) -> Feedback:
        """Judge ``answer`` and return the :class:`Feedback` (shows nothing)."""
        first = self.hints[0]
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
                hint=m.hint or first,
            )
        except LearnerError as e:
            where = f" ({e.where})" if e.where else ""
            return Feedback("error", self.title, f"your code raised {e}{where}.", hint=first)
        except Exception as exc:  # an answer of a shape the checker did not foresee
            return Feedback(
                "error",
                self.title,
                f"your answer could not be checked ({type(exc).__name__}: {exc}).",
                hint="Check that it has the type and shape the exercise asks for. " + first,
            )
        return Feedback("correct", self.title, "correct, well done!")

    def check(self, answer: Any) -> None:
        """Show feedback on ``answer``. In strict mode (tests) a wrong answer raises.

        "Not done yet" raises too, except for a lesson's own exercises, which the published lesson
        leaves for the learner (their solution notebook answers every one).
        """
        feedback = self.evaluate(answer)
        _display(feedback)
        if _strict() and not feedback.passed and not (self.lesson and feedback.status == "not_done"):
            raise AssertionError(str(feedback))

    def hint(self, level: int | None = None) -> None:
        """Show the next hint (or hint number ``level``, from 1); later ones say more."""
        if level is None:
            level = min(self._hints_shown + 1, len(self.hints))
        level = max(1, min(int(level), len(self.hints)))
        self._hints_shown = max(self._hints_shown, level)
        more = (
            f" (hint {level} of {len(self.hints)}; call hint() again for a stronger one)"
            if level < len(self.hints)
            else (f" (hint {level} of {len(self.hints)})" if len(self.hints) > 1 else "")
        )
        _display(Feedback("not_done", self.title, "hint" + more, hint=self.hints[level - 1]))

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
