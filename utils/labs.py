"""Build the learners' lab notebooks from their single source, and check they are in sync.

The source of a lab is ``labs/solutions/labNN_topic.ipynb``. Answers are marked in two ways:

* a block inside a function::

      def gradient(w, x, y):
          # BEGIN SOLUTION q1
          return 2 * x * (w * x - y)
          # END SOLUTION

  becomes ``# YOUR CODE HERE`` and ``raise NotImplementedError`` at the same indentation,
  which a check reports as "not done yet";
* one top-level assignment: ``lr = 0.1  # SOLUTION q2`` becomes ``lr = ...  # YOUR CODE HERE``.

The id after the marker (``q1``) lets ``Exercise.solution()`` show that answer.
``python -m utils.labs build`` writes ``labs/labNN_topic.ipynb``; if a learner has changed
that file, a dated copy is kept first, so no edit is ever lost. ``python -m utils.labs check``
exits non-zero when a generated copy is out of date.

A lesson's own exercises have their single source in ``labs/solutions/lessonNN_topic.ipynb`` too
(title, bootstrap and setup cells, then the exercise cells, answers marked). ``build`` puts the
learner's version of those cells at the end of ``notebooks/NN_*.ipynb``, just before its
``## Next`` cell, replacing the previous ones; a lesson whose exercise cells a learner has edited
is kept in ``labs/backups/`` first.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LESSONS_DIR = ROOT / "notebooks"
LABS_DIR = ROOT / "labs"
SOLUTIONS_DIR = LABS_DIR / "solutions"
BACKUP_DIR = LABS_DIR / "backups"

_BEGIN = re.compile(r"^(?P<indent>\s*)#\s*BEGIN SOLUTION\b\s*(?P<id>\S*)\s*$")
_END = re.compile(r"^\s*#\s*END SOLUTION\s*$")
_INLINE = re.compile(r"^(?P<lhs>\s*[^#=]+?=)\s*(?P<rhs>[^#].*?)\s*#\s*SOLUTION\b\s*(?P<id>\S*)\s*$")
PLACEHOLDER = "# YOUR CODE HERE"


class MarkerError(ValueError):
    """A solution source has unbalanced or misplaced answer markers."""


def strip_solutions(source: str, *, where: str = "cell") -> str:
    """Return ``source`` with every marked answer replaced by its placeholder."""
    out: list[str] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        begin = _BEGIN.match(line)
        if begin:
            indent = begin["indent"]
            if not indent:
                raise MarkerError(
                    f"{where}: a BEGIN SOLUTION block must be inside a function; mark a "
                    "top-level answer inline instead: `name = value  # SOLUTION id`."
                )
            j = i + 1
            while j < len(lines) and not _END.match(lines[j]):
                if _BEGIN.match(lines[j]):
                    raise MarkerError(f"{where}: BEGIN SOLUTION inside another block (line {j + 1}).")
                j += 1
            if j == len(lines):
                raise MarkerError(f"{where}: BEGIN SOLUTION on line {i + 1} has no END SOLUTION.")
            out += [f"{indent}{PLACEHOLDER}", f"{indent}raise NotImplementedError"]
            i = j + 1
            continue
        if _END.match(line):
            raise MarkerError(f"{where}: END SOLUTION on line {i + 1} without BEGIN SOLUTION.")
        inline = _INLINE.match(line)
        if inline:
            out.append(f"{inline['lhs']} ...  {PLACEHOLDER}")
        else:
            out.append(line)
        i += 1
    return "\n".join(out)


def solution_blocks(source: str) -> dict[str, str]:
    """Return the marked answers in ``source`` keyed by their id (unnamed ones are skipped)."""
    found: dict[str, list[str]] = {}
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        begin = _BEGIN.match(lines[i])
        if begin:
            j = i + 1
            while j < len(lines) and not _END.match(lines[j]):
                j += 1
            body = lines[i + 1 : j]
            width = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
            if begin["id"]:
                found.setdefault(begin["id"], []).append("\n".join(b[width:] for b in body))
            i = j + 1
            continue
        inline = _INLINE.match(lines[i])
        if inline and inline["id"]:
            found.setdefault(inline["id"], []).append(f"{inline['lhs'].strip()} {inline['rhs']}")
        i += 1
    return {key: "\n\n".join(parts) for key, parts in found.items()}


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def build_notebook(solution: dict[str, Any], *, name: str = "lab") -> dict[str, Any]:
    """Return the learner's notebook made from a solution notebook (a new dict; no outputs)."""
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        cell["source"] = strip_solutions(_source(cell), where=f"{name}, cell {index}")
        cell["outputs"] = []
        cell["execution_count"] = None
    return nb


def _dumps(nb: dict[str, Any]) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def _fingerprint(nb: dict[str, Any]) -> str:
    """Return a hash of ``nb`` without its own fingerprint field (what the generator wrote)."""
    clean = copy.deepcopy(nb)
    meta = clean.get("metadata", {})
    meta.get("dl_course", {}).pop("generated", None)
    if meta.get("dl_course") == {}:
        del meta["dl_course"]
    return hashlib.sha256(_dumps(clean).encode()).hexdigest()[:16]


def _stamped(nb: dict[str, Any]) -> str:
    """Return the generated notebook's text, fingerprinted so an unedited copy is recognised."""
    nb = copy.deepcopy(nb)
    nb.setdefault("metadata", {}).setdefault("dl_course", {})["generated"] = _fingerprint(nb)
    return _dumps(nb)


def _untouched(text: str) -> bool:
    """Return True if ``text`` is a generated copy nobody has changed since it was written."""
    try:
        nb = json.loads(text)
    except ValueError:
        return False
    recorded = nb.get("metadata", {}).get("dl_course", {}).get("generated")
    return recorded is not None and recorded == _fingerprint(nb)


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def generated_path(solution: Path) -> Path:
    """Return where the learner's copy of ``solution`` lives."""
    return LABS_DIR / solution.name


def solution_sources() -> list[Path]:
    """Return the lab solution notebooks, in order."""
    return sorted(SOLUTIONS_DIR.glob("lab*.ipynb"))


def exercise_sources() -> list[Path]:
    """Return the sources of the lessons' own exercises (``labs/solutions/lessonNN_*.ipynb``), in order."""
    return sorted(SOLUTIONS_DIR.glob("lesson*.ipynb"))


def lesson_for(source: Path, lessons_dir: Path | None = None) -> Path:
    """Return the lesson notebook that ``lessonNN_topic.ipynb``'s exercises belong to."""
    number = source.name.split("_")[0][len("lesson") :]  # "05", or "05a"
    found = sorted((lessons_dir or LESSONS_DIR).glob(f"{number}_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"{source.name}: no lesson notebooks/{number}_*.ipynb for these exercises")
    return found[0]


def _is_exercise_cell(cell: dict[str, Any]) -> bool:
    return "exercise" in cell.get("metadata", {}).get("dl_course", {})


def _exercise_fingerprint(cells: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps([_source(c) for c in cells], ensure_ascii=False).encode()).hexdigest()[
        :16
    ]


def exercise_cells(
    source_nb: dict[str, Any], prefix: str, *, name: str = "exercises"
) -> list[dict[str, Any]]:
    """Return the learner's exercise cells made from a lesson-exercise source, for lesson ``prefix``.

    The cells after the source's setup cell, answers stripped, ids ``<prefix>-901``, ``-902``, ...
    and marked ``metadata.dl_course.exercise`` (the source cell's id); the first also records a
    fingerprint of what was generated, so a learner's edits are recognised.
    """
    cells = build_notebook(source_nb, name=name)["cells"]
    setup = next(
        (
            i
            for i, c in enumerate(cells)
            if c["cell_type"] == "code" and "cfg = utils.env.setup(" in _source(c)
        ),
        None,
    )
    if setup is None:
        raise MarkerError(f"{name}: an exercise source needs the setup cell before its exercises")
    out = []
    for i, cell in enumerate(cells[setup + 1 :], start=1):
        cell = copy.deepcopy(cell)
        cell["source"] = _source(cell).splitlines(keepends=True)
        cell.setdefault("metadata", {})["dl_course"] = {"exercise": cell.get("id", str(i))}
        cell["id"] = f"{prefix}-{900 + i}"
        out.append(cell)
    if out:
        out[0]["metadata"]["dl_course"]["generated"] = _exercise_fingerprint(out)
    return out


def splice_exercises(
    lesson: dict[str, Any], source_nb: dict[str, Any], *, name: str = "exercises"
) -> dict[str, Any]:
    """Return ``lesson`` with its exercise cells replaced by those generated from ``source_nb``.

    They go where the old ones were, else just before the ``## Next`` cell, else at the end.
    """
    nb = copy.deepcopy(lesson)
    ids = [c.get("id", "") for c in nb["cells"] if not _is_exercise_cell(c)]
    prefix = next((i.rpartition("-")[0] for i in ids if re.fullmatch(r"[a-z][a-z0-9_]*-\d{2,3}", i)), "ex")
    new = exercise_cells(source_nb, prefix, name=name)
    old_at = [i for i, c in enumerate(nb["cells"]) if _is_exercise_cell(c)]
    kept = [c for c in nb["cells"] if not _is_exercise_cell(c)]
    if old_at:
        at = old_at[0]
    else:
        at = next(
            (
                i
                for i, c in enumerate(kept)
                if c.get("cell_type") == "markdown" and _source(c).lstrip().startswith("## Next")
            ),
            len(kept),
        )
    nb["cells"] = kept[:at] + new + kept[at:]
    return nb


def _lesson_text(nb: dict[str, Any]) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _exercises_untouched(lesson: dict[str, Any]) -> bool:
    """True if the lesson's exercise cells are as generated (or it has none): nothing to keep."""
    cells = [c for c in lesson["cells"] if _is_exercise_cell(c)]
    if not cells:
        return True
    recorded = cells[0].get("metadata", {}).get("dl_course", {}).get("generated")
    clean = copy.deepcopy(cells)
    clean[0]["metadata"]["dl_course"].pop("generated", None)
    return recorded == _exercise_fingerprint(clean)


def _backup(backups: Path, stem: str, text: str) -> Path:
    backups.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = backups / f"{stem}.{stamp}.ipynb"
    n = 1
    while backup.exists():
        backup = backups / f"{stem}.{stamp}-{n}.ipynb"
        n += 1
    backup.write_text(text, encoding="utf-8")
    return backup


def build_exercises(
    *, lessons_dir: Path | None = None, backups: Path | None = None, sources: list[Path] | None = None
) -> list[BuildResult]:
    """Put every lesson's generated exercise cells into its notebook; return what was done.

    A lesson whose exercise cells were edited since they were generated is kept in ``backups``
    (``labs/backups/`` by default) before they are replaced; the rest of the lesson is untouched.
    """
    backups = backups or BACKUP_DIR
    results = []
    for src in sources if sources is not None else exercise_sources():
        target = lesson_for(src, lessons_dir)
        old = target.read_text(encoding="utf-8")
        lesson = json.loads(old)
        text = _lesson_text(splice_exercises(lesson, _load(src), name=src.name))
        if text == old:
            results.append(BuildResult(target.stem, "unchanged"))
            continue
        backup = None if _exercises_untouched(lesson) else _backup(backups, target.stem, old)
        target.write_text(text, encoding="utf-8")
        results.append(BuildResult(target.stem, "updated", backup))
    return results


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did to one lab: 'unchanged', 'created', 'updated' (with backup or not)."""

    lab: str
    action: str
    backup: Path | None = None


def build(*, labs_dir: Path | None = None, solutions: list[Path] | None = None) -> list[BuildResult]:
    """Write every learner notebook from its solution; return what was done to each.

    A copy that has been changed since it was generated (its fingerprint no longer matches) is
    kept as ``labs/backups/<name>.<YYYYmmdd-HHMMSS>.ipynb`` before it is replaced, so no edit
    is lost; an older copy nobody touched is simply replaced.
    """
    target_dir = labs_dir or LABS_DIR
    backups = target_dir / "backups"
    results = []
    for src in solutions or solution_sources():
        text = _stamped(build_notebook(_load(src), name=src.name))
        target = target_dir / src.name
        if target.exists():
            old = target.read_text(encoding="utf-8")
            if old == text:
                results.append(BuildResult(src.stem, "unchanged"))
                continue
            if _untouched(old):  # an older generated copy nobody edited: nothing to keep
                target.write_text(text, encoding="utf-8")
                results.append(BuildResult(src.stem, "updated"))
                continue
            backup = _backup(backups, src.stem, old)
            target.write_text(text, encoding="utf-8")
            results.append(BuildResult(src.stem, "updated", backup))
        else:
            target.write_text(text, encoding="utf-8")
            results.append(BuildResult(src.stem, "created"))
    return results


def out_of_sync(*, labs_dir: Path | None = None) -> list[str]:
    """Return the names of labs whose generated copy is missing or differs from its source."""
    target_dir = labs_dir or LABS_DIR
    stale = []
    for src in solution_sources():
        target = target_dir / src.name
        want = _stamped(build_notebook(_load(src), name=src.name))
        if not target.exists() or target.read_text(encoding="utf-8") != want:
            stale.append(src.name)
    for src in exercise_sources():
        target = lesson_for(src)
        old = target.read_text(encoding="utf-8")
        if _lesson_text(splice_exercises(json.loads(old), _load(src), name=src.name)) != old:
            stale.append(f"{target.name} (exercises from {src.name})")
    return stale


def solution_text(lab: str, solution_id: str) -> str | None:
    """Return the model answer ``solution_id`` of ``lab`` (e.g. 'lab01'), or None if not released."""
    matches = sorted(SOLUTIONS_DIR.glob(f"{lab}_*.ipynb"))
    if not matches:
        return None
    for cell in _load(matches[0])["cells"]:
        if cell.get("cell_type") == "code":
            blocks = solution_blocks(_source(cell))
            if solution_id in blocks:
                return blocks[solution_id]
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m utils.labs build`` or ``python -m utils.labs check``."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["build"]:
        for r in build() + build_exercises():
            extra = f" (your previous copy is kept as {r.backup.relative_to(ROOT)})" if r.backup else ""
            print(f"{r.lab}: {r.action}{extra}")
        return 0
    if args == ["check"]:
        stale = out_of_sync()
        for name in stale:
            print(f"{name}: generated copy is out of date; run `python -m utils.labs build`")
        if not stale:
            print(
                f"all {len(solution_sources())} labs and {len(exercise_sources())} lessons' exercises in sync"
            )
        return 1 if stale else 0
    print("usage: python -m utils.labs build | check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
