"""What the labs and lesson exercises ask, tested: no answer is a copy of a lesson cell, no hint
gives a line of the answer away, and every exercise has a solution, hints in steps and a title.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import utils.checks
from utils import labs
from utils.checks import Exercise, Mistake

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOURCES = labs.solution_sources() + labs.exercise_sources()
WINDOW = 4  # more than three consecutive normalised lines in common is a copy


def _normalise(code: str) -> list[str]:
    """Code lines without comments, docstring-only lines or blank lines, spaces removed."""
    out = []
    for line in code.splitlines():
        line = re.sub(r"(?<![\"'])#.*$", "", line).strip()
        if not line or line.startswith(('"""', "'''")) or line in ("else:", "try:", "pass"):
            continue
        out.append(re.sub(r"\s+", "", line))
    return out


def _lesson_cells() -> list[tuple[str, list[str]]]:
    found = []
    for path in LESSONS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code" and "exercise" not in cell.get("metadata", {}).get(
                "dl_course", {}
            ):
                found.append((f"{path.name} {cell['id']}", _normalise("".join(cell["source"]))))
    return found


def _blocks(path: Path) -> dict[str, str]:
    blocks: dict[str, str] = {}
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code":
            blocks.update(labs.solution_blocks("".join(cell["source"])))
    return blocks


def copied_from_lessons(answer: str, cells: list[tuple[str, list[str]]]) -> str | None:
    """Name the lesson cell ``answer`` repeats: WINDOW lines in a row, or a short answer whole."""
    lines = _normalise(answer)
    if not lines:
        return None
    size = min(WINDOW, len(lines))
    if size < WINDOW and sum(map(len, lines)) < 20:  # too short to be told from a coincidence
        return None
    windows = {tuple(lines[i : i + size]) for i in range(len(lines) - size + 1)}
    for where, cell in cells:
        for i in range(len(cell) - size + 1):
            if tuple(cell[i : i + size]) in windows:
                return where
    return None


def test_the_copy_detector_finds_copies_and_passes_new_code():
    cells = [
        (
            "lesson",
            _normalise("def f(x):\n    y = x + 1\n    z = y * 2  # twice\n    w = z - 3\n    return w"),
        )
    ]
    assert copied_from_lessons("y = x + 1\nz = y * 2\nw = z - 3\nreturn w", cells) == "lesson"
    assert (
        copied_from_lessons(
            "    return   np.tril(np.ones((n, n), dtype=bool))",
            [("l", ["returnnp.tril(np.ones((n,n),dtype=bool))"])],
        )
        == "l"
    )
    assert copied_from_lessons("y = x + 1\nz = y * 3\nw = z - 3\nreturn w", cells) is None
    assert copied_from_lessons("return w", cells) is None


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_answer_repeats_a_lesson_cell(source):
    cells = _lesson_cells()
    copies = {
        key: where for key, answer in _blocks(source).items() if (where := copied_from_lessons(answer, cells))
    }
    assert not copies, f"{source.name}: answers that repeat a lesson cell (scroll-up answers): {copies}"


def _exercises() -> list[tuple[str, Exercise, list[Mistake]]]:
    found = []
    for info in pkgutil.iter_modules(utils.checks.__path__):
        if not re.match(r"(lab|lesson)\d\d[a-z]?$", info.name):
            continue
        module = importlib.import_module(f"utils.checks.{info.name}")
        mistakes = [m for v in vars(module).values() for m in _mistakes_in(v)]
        for name, value in vars(module).items():
            if isinstance(value, Exercise):
                found.append((f"{info.name}.{name}", value, mistakes))
    return found


def _mistakes_in(value: object) -> list[Mistake]:
    if isinstance(value, Mistake):
        return [value]
    if isinstance(value, list | tuple):
        return [m for v in value for m in _mistakes_in(v)]
    if isinstance(value, dict):
        return [m for v in value.values() for m in _mistakes_in(v)]
    return []


EXERCISES = _exercises()


@pytest.mark.parametrize(("name", "exercise", "mistakes"), EXERCISES, ids=[e[0] for e in EXERCISES])
def test_hints_nudge_and_never_give_a_line_of_the_answer(name, exercise, mistakes):
    assert exercise.lab and exercise.solution_id, f"{name}: lab and solution id not found"
    answer = labs.solution_text(exercise.lab, exercise.solution_id)
    assert answer, (
        f"{name}: no solution marked '{exercise.solution_id}' in labs/solutions/{exercise.lab}_*.ipynb"
    )
    assert len(exercise.hints) >= 2, f"{name}: hints come in steps (a nudge, then a stronger one)"
    lines = [line for line in _normalise(answer) if len(line) >= 12]
    for hint in list(exercise.hints) + [m.hint for m in mistakes]:
        flat = re.sub(r"\s+", "", hint).replace("`", "")
        given = [line for line in lines if line in flat]
        assert not given, f"{name}: a hint gives away a line of the answer: {given[0]!r} in {hint!r}"
