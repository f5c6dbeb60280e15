"""utils.labs: generating learner copies, keeping them in sync, never losing a learner's edits."""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from utils import labs

SOURCE = '''def gradient(w, x, y):
    """Return dL/dw."""
    # BEGIN SOLUTION q1
    error = w * x - y
    return 2 * error * x
    # END SOLUTION

learning_rate = 0.1  # SOLUTION q2
steps = 10'''


def test_blocks_and_inline_answers_become_placeholders():
    out = labs.strip_solutions(SOURCE)
    assert "error = w * x - y" not in out and "0.1" not in out
    assert "    # YOUR CODE HERE\n    raise NotImplementedError" in out
    assert "learning_rate = ...  # YOUR CODE HERE" in out
    assert '"""Return dL/dw."""' in out and "steps = 10" in out
    compile(out, "lab", "exec")  # the learner's copy is valid Python


def test_solution_blocks_are_found_by_id():
    blocks = labs.solution_blocks(SOURCE)
    assert blocks["q1"] == "error = w * x - y\nreturn 2 * error * x"
    assert blocks["q2"] == "learning_rate = 0.1"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "inside a function"),
        ("def f():\n    # BEGIN SOLUTION\n    return 1", "no END SOLUTION"),
        ("def f():\n    return 1\n    # END SOLUTION", "without BEGIN"),
    ],
)
def test_bad_markers_are_reported(source, message):
    with pytest.raises(labs.MarkerError, match=message):
        labs.strip_solutions(source)


def _solution_notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(body)
    cell["id"] = "c1"
    cell["outputs"] = [nbformat.v4.new_output("stream", text="old output")]
    nb.cells = [cell]
    nbformat.write(nb, path)


def test_build_creates_then_keeps_a_copy_of_learner_edits(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    src = solutions / "lab99_demo.ipynb"
    _solution_notebook(src, SOURCE)

    first = labs.build(labs_dir=tmp_path, solutions=[src])
    assert [r.action for r in first] == ["created"]
    target = tmp_path / "lab99_demo.ipynb"
    generated = json.loads(target.read_text())
    assert generated["cells"][0]["outputs"] == [] and "YOUR CODE HERE" in "".join(
        generated["cells"][0]["source"]
    )

    assert [r.action for r in labs.build(labs_dir=tmp_path, solutions=[src])] == ["unchanged"]

    # A new version of the lab replaces an untouched copy without keeping a backup ...
    _solution_notebook(src, SOURCE + "\nprint('version 2')")
    assert [(r.action, r.backup) for r in labs.build(labs_dir=tmp_path, solutions=[src])] == [
        ("updated", None)
    ]
    assert not (tmp_path / "backups").exists()

    # ... but a copy the learner has edited is kept, byte for byte, before it is replaced.
    edited = target.read_text().replace("raise NotImplementedError", "return 2 * (w * x - y) * x")
    target.write_text(edited)
    _solution_notebook(src, SOURCE + "\nprint('new in this version')")
    result = labs.build(labs_dir=tmp_path, solutions=[src])[0]
    assert result.action == "updated" and result.backup is not None
    assert result.backup.read_text() == edited  # the learner's work is kept, byte for byte
    assert "new in this version" in target.read_text()


def test_committed_labs_are_in_sync():
    assert labs.solution_sources(), "no lab solutions found"
    assert labs.out_of_sync() == [], "run `make labs` (python -m utils.labs build) and commit the result"


@pytest.fixture(scope="module")
def lab_kernel():
    """One kernel for every untouched lab: TensorFlow is imported once instead of once per lab (about
    10 s each here). The kernel runs in the labs' folder, without COURSE_CHECKS_STRICT, as a learner's
    would; each lab then starts from an empty namespace and a cleared Keras session (LAB_NAMESPACE_RESET)."""
    environment = {k: v for k, v in os.environ.items() if k != "COURSE_CHECKS_STRICT"}
    client = NotebookClient(
        nbformat.v4.new_notebook(),
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(labs.LABS_DIR)}},
    )
    with client.setup_kernel(env=environment):
        yield client


# What a fresh kernel would not have: the last lab's names, models and Keras state (modules stay imported).
# The cell fails if anything but IPython's own names is left.
LAB_NAMESPACE_RESET = """%reset -f
import sys

if "keras" in sys.modules:  # imported by the last lab: clear its models, layer names and policy
    sys.modules["keras"].backend.clear_session()
del sys
assert not set(k for k in dir() if not k.startswith("_")) - {"In", "Out", "exit", "quit", "open", "get_ipython"}"""


def _run_from_a_clean_namespace(kernel: NotebookClient, path: Path) -> list:
    """Empty the shared kernel's namespace (asserted), run the notebook at `path` in it cell by cell (an
    error raises CellExecutionError, naming the cell), and return its check cells' texts, in order."""
    reset = nbformat.v4.new_code_cell(LAB_NAMESPACE_RESET)
    kernel.nb = nbformat.v4.new_notebook(cells=[reset])  # execute_cell writes the cell into .nb
    kernel.execute_cell(reset, 0)  # raises if the namespace is not empty
    assert not reset.outputs, f"resetting the shared kernel printed {reset.outputs}"
    nb = kernel.nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            kernel.execute_cell(cell, index)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], f"stderr in {path.name}"
    check_cells = [c for c in nb.cells if c.cell_type == "code" and ".check(" in c.source]
    assert check_cells, f"{path.name} has no checks"
    return [
        (
            cell.id,
            json.dumps(
                [o.get("data", {}).get("text/plain", o.get("text", "")) for o in cell.outputs],
                ensure_ascii=False,
            ),
        )
        for cell in check_cells
    ]


@pytest.mark.slow
@pytest.mark.parametrize("solution", labs.solution_sources(), ids=lambda p: p.stem)
def test_untouched_lab_says_not_done_yet_without_errors(solution, lab_kernel):
    """A learner who runs an untouched lab top to bottom sees 'not done yet', not a wall of red."""
    for cell_id, text in _run_from_a_clean_namespace(lab_kernel, labs.generated_path(solution)):
        assert "not done yet" in text, f"check cell {cell_id} shows {text[:300]}"


@pytest.fixture(scope="module")
def strict_kernel():
    """One kernel for every lesson's exercise solutions (labs/solutions/lessonNN_*.ipynb), in their folder,
    with COURSE_CHECKS_STRICT=1 inherited from conftest.py: a wrong answer raises. The root conftest.py
    keeps these notebooks out of nbval's collection, which would start a kernel and import TensorFlow
    for each (about 6 s each, for a few checks of under a second)."""
    client = NotebookClient(
        nbformat.v4.new_notebook(),
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(labs.SOLUTIONS_DIR)}},
    )
    with client.setup_kernel():
        yield client


@pytest.mark.slow
@pytest.mark.parametrize("source", labs.exercise_sources(), ids=lambda p: p.stem)
def test_lesson_exercise_solutions_pass_their_checks(source, strict_kernel):
    """Every answer in a lesson's exercise solutions passes its check: strict mode raises on a wrong one,
    and a check left "not done yet" (which strict mode lets through for a lesson) fails here."""
    for cell_id, text in _run_from_a_clean_namespace(strict_kernel, source):
        assert "✅" in text and "not done yet" not in text, f"check cell {cell_id} shows {text[:300]}"


def test_solution_text_is_read_from_the_solution_notebook():
    sources = labs.solution_sources()
    stem = sources[0].stem.split("_")[0]
    blocks = {}
    for cell in nbformat.read(sources[0], as_version=4).cells:
        blocks.update(labs.solution_blocks(cell.source))
    key = sorted(blocks)[0]
    assert labs.solution_text(stem, key) == blocks[key]
    assert labs.solution_text("lab00-missing", "q1") is None


def _exercise_source(path: Path, answer: str) -> None:
    nb = nbformat.v4.new_notebook()
    cells = [
        nbformat.v4.new_markdown_cell("# Lesson 99 · exercises"),
        nbformat.v4.new_code_cell("import utils\n\ncfg = utils.env.setup()"),
        nbformat.v4.new_markdown_cell("**Exercise 1.** Double it."),
        nbformat.v4.new_code_cell(
            f"def double(x):\n    # BEGIN SOLUTION e1\n    {answer}\n    # END SOLUTION"
        ),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"e99-{i:02d}"
    nb.cells = cells
    nbformat.write(nb, path)


def _lesson(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 99 · demo"),
        nbformat.v4.new_markdown_cell("## Summary\n\n- it doubles"),
        nbformat.v4.new_markdown_cell("## Next\n\nLesson 100."),
    ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"l99-{i:02d}"
    path.write_text(json.dumps(nbformat.from_dict(nb), indent=1, ensure_ascii=False) + "\n")


def test_lesson_exercises_go_before_next_and_keep_a_learners_edits(tmp_path):
    solutions, lessons = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    lessons.mkdir()
    src, lesson = solutions / "lesson99_demo.ipynb", lessons / "99_demo.ipynb"
    _exercise_source(src, "return 2 * x")
    _lesson(lesson)

    first = labs.build_exercises(lessons_dir=lessons, backups=tmp_path / "backups", sources=[src])
    assert [(r.action, r.backup) for r in first] == [("updated", None)]
    cells = json.loads(lesson.read_text())["cells"]
    assert [c["id"] for c in cells] == ["l99-00", "l99-01", "l99-901", "l99-902", "l99-02"]  # before Next
    assert "raise NotImplementedError" in "".join(cells[3]["source"]) and "2 * x" not in lesson.read_text()
    again = labs.build_exercises(lessons_dir=lessons, backups=tmp_path / "backups", sources=[src])
    assert [r.action for r in again] == ["unchanged"]

    # A new version replaces untouched exercise cells in place, without a backup ...
    _exercise_source(src, "return x + x")
    assert (
        labs.build_exercises(lessons_dir=lessons, backups=tmp_path / "backups", sources=[src])[0].backup
        is None
    )
    # ... but a learner's answer is kept, byte for byte, before it is replaced.
    answered = lesson.read_text().replace("raise NotImplementedError", "return 2 * x")
    lesson.write_text(answered)
    _exercise_source(src, "return x * 2")
    result = labs.build_exercises(lessons_dir=lessons, backups=tmp_path / "backups", sources=[src])[0]
    assert result.backup is not None and result.backup.read_text() == answered
    assert [c["id"] for c in json.loads(lesson.read_text())["cells"]].count("l99-901") == 1


@pytest.mark.slow
def test_untouched_lesson_exercises_say_not_done_yet_even_in_strict_mode():
    """A lesson is published with its exercises open: each check says "not done yet", and the
    lesson still passes the strict test run (a wrong answer there would fail it). One kernel runs
    every lesson's exercise cells, in lesson order."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import utils\n\ncfg = utils.env.setup()")]
    origin = {}
    for source in labs.exercise_sources():
        lesson = json.loads(labs.lesson_for(source).read_text(encoding="utf-8"))
        cells = [c for c in lesson["cells"] if "exercise" in c.get("metadata", {}).get("dl_course", {})]
        assert cells, f"{source.name}: its exercises are not in the lesson; run `make labs`"
        assert any(".check(" in "".join(c["source"]) for c in cells), f"{source.name}: no checked exercise"
        for c in cells:
            origin[len(nb.cells)] = source.name
            nb.cells.append(nbformat.from_dict({**c, "source": "".join(c["source"])}))
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(labs.LESSONS_DIR)}}
    ).execute()  # COURSE_CHECKS_STRICT=1 is inherited: an error here fails the test
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("name") == "stderr"], "stderr in untouched exercises"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and ".check(" in cell.source:
            text = json.dumps([o.get("data", {}).get("text/plain", o.get("text", "")) for o in cell.outputs])
            assert "not done yet" in text, f"{origin[index]}: a check shows {text[:300]}"
