"""benchmarks/: run_notebooks' table and exit code (on tiny notebooks), and that every benchmark imports.

The benchmarks run from the repository's root (``python benchmarks/run_notebooks.py``); here they are
imported as the namespace package ``benchmarks`` (the root is on the path under ``python -m pytest``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import nbformat
import pytest

from tools.memory import MB, Peak
from tools.notebook_runner import RunResult

run_notebooks = importlib.import_module("benchmarks.run_notebooks")


def write_notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nbformat.write(nb, path)
    return path


def executed(*outputs: dict) -> nbformat.NotebookNode:
    """A notebook of one executed cell with ``outputs``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nb.cells = [cell]
    return nb


@pytest.mark.parametrize("name", ["run_notebooks", "gpu_shapes", "startup"])
def test_every_benchmark_imports(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(module.main)


def test_the_table_has_both_memory_columns_and_labels_a_fallback():
    head = run_notebooks.header()
    assert "| peak PSS kernel (MB) | peak PSS kernel + children (MB) |" in head
    assert head.splitlines()[0].count("|") == head.splitlines()[1].count("|")
    head = run_notebooks.header(gpu=True, measure="rss", rss=True)
    assert "peak RSS kernel (MB)" in head and "summed RSS" in head and "peak GPU memory" in head
    assert head.splitlines()[0].count("|") == head.splitlines()[1].count("|")

    nb = executed(
        {"output_type": "stream", "name": "stdout", "text": "checkpoint · accuracy 0.91 ≥ 0.9\nother\n"},
        {"output_type": "stream", "name": "stderr", "text": "a warning\n"},
        {
            "output_type": "stream",
            "name": "stdout",
            "text": "checkpoint · loss 0.2 ≤ 0.5\ngpu-peak · 1048576\n",
        },
    )
    peak = Peak(kernel=700 * MB, tree=1500 * MB, tree_rss=2400 * MB, samples=10)
    result = RunResult(path=Path("09_x.ipynb"), nb=nb, seconds=12.34, memory=peak)
    line = run_notebooks.row(result, gpu=True, rss=True)
    assert line == (
        "| 09_x.ipynb | 12.3 | 700 | 1500 | 2400 | 1 | ok (stderr: 'a warning') | "
        "accuracy 0.91 ≥ 0.9; loss 0.2 ≤ 0.5 |"
    )
    assert line.count("|") == run_notebooks.header(gpu=True, rss=True).splitlines()[0].count("|")
    # A notebook measured by RSS under a PSS header says so; a failed one says why.
    result.memory = Peak(kernel=700 * MB, tree=900 * MB, measure="rss", samples=3)
    result.error = "cell 3 (id ab): ValueError: bad"
    line = run_notebooks.row(result)
    assert "| 700 (RSS) | 900 (RSS) |" in line and "FAILED: cell 3 (id ab): ValueError: bad" in line
    result.memory = None
    assert "| n/a | n/a |" in run_notebooks.row(result)


def test_the_kernels_get_the_profile_offline_and_strict(monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    env = run_notebooks.kernel_env("smoke", online=True)
    assert env["COURSE_PROFILE"] == "smoke" and env["COURSE_CHECKS_STRICT"] == "1"
    assert "COURSE_OFFLINE" not in env
    assert run_notebooks.kernel_env("cpu", online=False)["COURSE_OFFLINE"] == "1"


@pytest.mark.slow
def test_run_notebooks_prints_the_table_and_exits_1_when_one_fails(tmp_path, capsys):
    good = write_notebook(
        tmp_path / "good.ipynb",
        "import os\nprint('checkpoint · profile', os.environ['COURSE_PROFILE'], os.environ['COURSE_OFFLINE'])",
    )
    bad = write_notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('on purpose')")
    assert run_notebooks.main(["--profile", "smoke", "--timeout", "60", str(good)]) == 0
    out = capsys.readouterr().out
    assert "profile smoke" in out and "1 notebooks" in out and "0 failed" in out
    [line] = [ln for ln in out.splitlines() if ln.startswith("| good.ipynb")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[0] == "good.ipynb" and float(cells[1]) > 0
    assert 0 < float(cells[2]) <= float(cells[3])  # the kernel alone, then with its children
    assert cells[4] == "ok" and cells[5] == "profile smoke 1"

    assert run_notebooks.main(["--profile", "smoke", "--timeout", "60", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    [line] = [ln for ln in out.splitlines() if ln.startswith("| bad.ipynb")]
    assert "FAILED: cell 1 (id " in line and "ValueError: on purpose" in line
    assert "1 failed" in out


@pytest.mark.slow
def test_the_shape_run_reports_failing_cells_by_their_index_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPE_RUN_LOG", "")  # run() sets it for the kernel; restored afterwards
    gpu_shapes = importlib.import_module("benchmarks.gpu_shapes")
    path = write_notebook(tmp_path / "shapes.ipynb", "x = 1", "raise ValueError('at gpu size')", "y = 2")
    result = gpu_shapes.run(path, timeout=60, log_dir=tmp_path, hook=False)
    assert result["aborted"] is None and result["cells"] == 3 and result["records"] == []
    assert result["errors"] == [
        {"cell": 1, "source": "raise ValueError('at gpu size')", "error": "ValueError: at gpu size"}
    ]
    assert {index for index, _ in result["slowest_cells"]} == {0, 1, 2}  # every cell ran
