"""tools/notebook_runner.py and tools/memory.py: one runner for every tool that executes a notebook.

Each run starts a real (plain Python) kernel, so those tests take a second or more: one notebook
run serves several tests through a module-scoped fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tools import memory
from tools.notebook_runner import child_env, run_notebook

# The child writes its 60 MB (b"x" * n touches every page; bytearray(n) would not), then waits.
CHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import time; x = b\"x\" * (60 * 2**20); time.sleep(2.5)'])\n"
    "time.sleep(2)\n"
    "child.wait()"
)


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook of a markdown title then ``cells`` as code cells (so code cell k has index k)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a tiny notebook")]
    nb.cells += [nbformat.v4.new_code_cell(code) for code in cells]
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------------------------
# tools.memory, on this process: no kernel
# --------------------------------------------------------------------------------------------


def test_memory_of_this_process_is_positive_and_labelled():
    figure = memory.process_memory(os.getpid())
    assert figure is not None
    value, measure, rss = figure
    assert value > 0 and rss > 0
    if Path("/proc/self/smaps_rollup").exists():
        assert measure == "pss"
        assert value <= rss  # a shared page counts in full in RSS, in part in PSS


def test_a_tree_counts_the_children_and_a_sampler_keeps_the_peak():
    child = subprocess.Popen([sys.executable, "-c", "import time; x = b'x' * (40 * 2**20); time.sleep(30)"])
    try:
        time.sleep(0.5)
        sample = memory.tree_memory(os.getpid())
        assert sample is not None and sample.tree >= sample.kernel > 0
        sampler = memory.PeakSampler(os.getpid(), interval=0.01)
        with sampler:
            time.sleep(0.1)
        peak = sampler.peak
        assert peak.samples >= 1
        assert 0 < peak.kernel <= peak.tree <= peak.tree_rss
        assert "kernel" in str(peak) and "MB" in str(peak)
    finally:
        child.kill()
        child.wait()


def test_a_gone_process_has_no_figure():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert memory.process_memory(child.pid) is None
    assert memory.tree_memory(child.pid) is None
    sampler = memory.PeakSampler(lambda: None)
    sampler.sample()  # no process yet: nothing recorded, no error
    assert sampler.peak.samples == 0


def test_who_else_maps_a_file(tmp_path):
    mapped = tmp_path / "course-mapped-file.bin"
    mapped.write_bytes(b"x" * 4096)
    code = f"import mmap, time; f = open({str(mapped)!r}, 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); print(flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # mapped
        assert memory.processes_mapping(mapped.name) == [child.pid]
        assert memory.processes_mapping(mapped.name, exclude=os.getpid()) == []  # a descendant
    finally:
        child.kill()
        child.wait()


def test_child_env_sets_and_removes():
    env = child_env(COURSE_TEST_A="1", COURSE_TEST_B=None, HOME=None)
    assert env["COURSE_TEST_A"] == "1" and "HOME" not in env and "COURSE_TEST_B" not in env
    assert "HOME" in os.environ  # this process's environment is untouched


# --------------------------------------------------------------------------------------------
# run_notebook, with real kernels
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """One successful run: an environment variable, a printed line, and a child process."""
    path = write_notebook(
        tmp_path_factory.mktemp("good") / "good.ipynb",
        "import os\nprint('course test value:', os.environ.get('COURSE_RUNNER_TEST'))",
        "import os\nprint('cwd:', os.getcwd())",
        CHILD,
    )
    env = child_env(COURSE_RUNNER_TEST="42")
    return run_notebook(path, env=env, timeout=60, memory=True)


@pytest.mark.slow
def test_a_notebook_that_runs(good_run):
    assert good_run.ok and good_run.error is None and not good_run.timed_out
    assert set(good_run.cell_seconds) == {1, 2, 3}  # code cells, by index in the file
    assert good_run.cell_seconds[3] >= 1.5  # the child's cell waits about 2 s
    assert good_run.seconds >= sum(good_run.cell_seconds.values())
    assert f"cwd: {good_run.path.parent}" in good_run.stream()  # the notebook's own folder


@pytest.mark.slow
def test_the_environment_reaches_the_kernel(good_run):
    assert "course test value: 42" in good_run.stream("stdout")


@pytest.mark.slow
def test_memory_figures_are_positive_and_the_kernel_alone_is_not_more(good_run):
    peak = good_run.memory
    assert peak is not None and peak.samples > 0
    assert 0 < peak.kernel <= peak.tree
    # The child wrote 60 MB of its own while the kernel waited: the tree's peak holds most of it.
    assert peak.tree - peak.kernel > 40 * memory.MB


@pytest.mark.slow
def test_a_failing_cell_is_reported_with_its_index_and_error(tmp_path):
    path = write_notebook(tmp_path / "bad.ipynb", "print('first')", "1 / 0", "print('never')")
    result = run_notebook(path, timeout=60)
    assert not result.ok and not result.timed_out
    assert result.error.startswith("cell 2 (id ") and "ZeroDivisionError: division by zero" in result.error
    [error] = result.errors
    assert (error.index, error.ename, error.source) == (2, "ZeroDivisionError", "1 / 0")
    assert result.stream() == "first\n"  # the run stopped at the failing cell

    # allow_errors: the run goes on; the error is listed but stopped nothing.
    result = run_notebook(path, timeout=60, allow_errors=True, after=["raise KeyError('probe')"])
    assert result.error is None and not result.ok
    assert result.stream() == "first\nnever\n"
    assert [(e.index, e.added, e.ename) for e in result.errors] == [
        (2, None, "ZeroDivisionError"),
        (None, "after", "KeyError"),
    ]


@pytest.mark.slow
def test_a_cell_that_runs_too_long_is_stopped_and_named(tmp_path):
    path = write_notebook(tmp_path / "slow.ipynb", "x = 1", "import time\ntime.sleep(60)")
    start = time.perf_counter()
    result = run_notebook(path, timeout=2, before=["y = 2"])
    assert time.perf_counter() - start < 30
    assert result.timed_out and not result.ok
    assert "cell 2 (id " in result.error and "2 s" in result.error
    assert 1 in result.cell_seconds and 2 not in result.cell_seconds  # indices ignore the added cell
