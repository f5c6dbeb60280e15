"""Repository hygiene: committed notebooks are clean and follow the course template, and ruff is happy.

- No outputs or execution counts are committed (rendering with outputs is a build step).
- Cell ids are stable: ``<prefix>-NN``, one prefix per notebook, unique, so diffs stay readable and
  a re-save in JupyterLab does not churn them.
- Every lesson opens with its title, launch links, objectives, time per profile, the Colab
  bootstrap cell and the one setup cell, and closes with a summary and what comes next; every lab
  has its title, links, time, bootstrap cell and setup cell. The links and the bootstrap cell are
  generated from the one place the repository's address is written (``utils.course``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from utils import course

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LAB_SOURCES = sorted((ROOT / "labs" / "solutions").glob("lab*.ipynb"))
EXERCISE_SOURCES = sorted((ROOT / "labs" / "solutions").glob("lesson*.ipynb"))  # lessons' own exercises
LAB_COPIES = sorted((ROOT / "labs").glob("*.ipynb"))
ALL = LESSONS + LAB_SOURCES + EXERCISE_SOURCES + LAB_COPIES

SETUP_CELL = (
    "# Setup: load the course helpers and configure TensorFlow for this machine (run this first).\n"
    "import utils\n\ncfg = utils.env.setup()"
)
ID_PATTERN = re.compile(r"^([a-z][a-z0-9_]*)-(\d{2,3}|colab)$")  # <prefix>-colab: the bootstrap cell


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", ALL, ids=_name)
def test_no_outputs_committed(path):
    dirty = [
        c.get("id")
        for c in _cells(path)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{_name(path)}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", ALL, ids=_name)
def test_cell_ids_are_stable(path):
    ids = [c.get("id") for c in _cells(path)]
    assert all(ids), f"{_name(path)}: some cells have no id"
    assert len(set(ids)) == len(ids), f"{_name(path)}: duplicate cell ids"
    bad = [i for i in ids if not ID_PATTERN.match(i)]
    assert not bad, f"{_name(path)}: ids {bad[:5]} are not of the form <prefix>-NN"
    prefixes = {ID_PATTERN.match(i).group(1) for i in ids}
    assert len(prefixes) == 1, f"{_name(path)}: several id prefixes {sorted(prefixes)}"


def _launch_links_ok(text: str, rel: str) -> bool:
    return course.launch_links(rel) in text


def _code_cells(cells: list[dict]) -> list[str]:
    return [_text(c).strip() for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", LESSONS, ids=_name)
def test_lesson_follows_the_template(path):
    cells = _cells(path)
    first, rel = _text(cells[0]), _name(path)
    number = path.name.split("_")[0]  # "05", or "05a" for a lesson inserted after 05
    assert cells[0]["cell_type"] == "markdown" and first.startswith(f"# {number} · "), (
        f"{rel}: the first cell must be the title '# {number} · …'"
    )
    assert _launch_links_ok(first, rel), f"{rel}: the title cell needs Colab and Binder links to {rel}"
    assert "**What you will learn**" in first, f"{rel}: the title cell needs 'What you will learn'"
    time_line = next((line for line in first.splitlines() if line.startswith("**Time:**")), "")
    assert "cpu" in time_line and "smoke" in time_line, f"{rel}: '**Time:**' must give the time per profile"
    code = _code_cells(cells)
    assert code[0] == course.bootstrap_source(), (
        f"{rel}: the first code cell must be the Colab bootstrap cell"
    )
    assert code[1] == SETUP_CELL and code.count(SETUP_CELL) == 1, (
        f"{rel}: the second code cell must be the setup cell"
    )
    headings = [line.strip() for c in cells if c["cell_type"] == "markdown" for line in _text(c).splitlines()]
    assert "## Summary" in headings, f"{rel}: no '## Summary' section"
    assert "## Next" in headings, f"{rel}: no '## Next' section"
    assert headings.index("## Summary") < headings.index("## Next"), f"{rel}: Summary must come before Next"


@pytest.mark.parametrize("path", LAB_SOURCES, ids=_name)
def test_lab_follows_the_template(path):
    cells = _cells(path)
    first, rel = _text(cells[0]), _name(path)
    generated = f"labs/{path.name}"  # learners open the generated copy
    number = path.name[3:].split("_")[0]  # 05, or 05a for a lab with a letter
    assert first.startswith(f"# Lab {number} · "), f"{rel}: the first cell must be '# Lab {number} · …'"
    assert _launch_links_ok(first, generated), (
        f"{rel}: the title cell needs Colab and Binder links to {generated}"
    )
    assert "**Time:**" in first, f"{rel}: the title cell needs '**Time:**'"
    code = _code_cells(cells)
    assert code[0] == course.bootstrap_source(), (
        f"{rel}: the first code cell must be the Colab bootstrap cell"
    )
    assert code[1] == SETUP_CELL, f"{rel}: the second code cell must be the setup cell"


@pytest.mark.parametrize("path", EXERCISE_SOURCES, ids=_name)
def test_lesson_exercise_source_follows_the_template(path):
    cells = _cells(path)
    number, rel = path.name.split("_")[0][len("lesson") :], _name(path)
    assert _text(cells[0]).startswith(f"# Lesson {number} · exercises"), (
        f"{rel}: the first cell must be '# Lesson {number} · exercises …'"
    )
    code = _code_cells(cells)
    assert code[0] == course.bootstrap_source() and code[1] == SETUP_CELL, (
        f"{rel}: the bootstrap cell, then the setup cell, as in a lab (the source runs on its own)"
    )
    assert any(".check(" in c for c in code), f"{rel}: no checked exercise"
    lesson = next((ROOT / "notebooks").glob(f"{number}_*.ipynb"), None)
    assert lesson is not None, f"{rel}: no lesson notebooks/{number}_*.ipynb for these exercises"


def test_every_lesson_and_lab_is_found():
    assert len(LESSONS) >= 3 and LAB_SOURCES, "the notebook globs found nothing"
    assert [p.name for p in LAB_COPIES] == [p.name for p in LAB_SOURCES], (
        "every lab source has one generated copy"
    )


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(command):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is not installed next to this Python; it is in requirements.txt"
    done = subprocess.run(
        [ruff, *command, "utils", "tests", "benchmarks", "notebooks", "labs", "conftest.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
