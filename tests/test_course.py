"""utils.course: the repository address in one place, the launch links and the Colab bootstrap cell."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from utils import course

REPO = Path(__file__).resolve().parents[1]


def test_every_notebook_carries_the_current_links_and_bootstrap_cell():
    paths = course.notebook_paths(REPO)
    assert len(paths) >= 10
    stale = {p.relative_to(REPO).as_posix(): course.problems(p, REPO) for p in paths}
    stale = {k: v for k, v in stale.items() if v}
    assert not stale, f"out of date (run `python -m utils.course sync`): {stale}"


def test_the_address_is_written_only_in_pyproject():
    repo = course.repository()
    assert repo.clone_url == f"https://github.com/{repo.owner}/{repo.name}"
    hits = []
    for path in [*REPO.glob("utils/**/*.py"), *REPO.glob("tests/**/*.py"), REPO / "Makefile"]:
        if path.name in {"course.py", "test_course.py"}:
            continue
        if f"{repo.owner}/{repo.name}" in path.read_text(encoding="utf-8"):
            hits.append(path.relative_to(REPO).as_posix())
    assert not hits, f"the repository address is hard-coded in {hits}; use utils.course.repository()"


def _notebook(tmp_path: Path, rel: str, first: str) -> Path:
    cells = [
        {"cell_type": "markdown", "id": "x-00", "metadata": {}, "source": first},
        {"cell_type": "markdown", "id": "x-01", "metadata": {}, "source": "## Setup"},
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "x-02",
            "metadata": {},
            "outputs": [],
            "source": "# Setup: load the course helpers.\nimport utils",
        },
    ]
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_sync_moves_a_fork_in_one_edit_and_is_idempotent(tmp_path):
    fork = course.Repository(owner="someone", name="their-course", branch="workshop")
    old = course.launch_links("notebooks/07_x.ipynb")
    path = _notebook(tmp_path, "notebooks/07_x.ipynb", f"# 07 · X\n\n{old}\n\nText.")
    assert course.problems(path, tmp_path, fork)
    assert course.sync_notebook(path, tmp_path, fork) is True
    assert course.problems(path, tmp_path, fork) == []
    assert course.sync_notebook(path, tmp_path, fork) is False  # nothing left to change
    cells = json.loads(path.read_text())["cells"]
    first = "".join(cells[0]["source"])
    assert "github/someone/their-course/blob/workshop/notebooks/07_x.ipynb" in first
    assert "gh/someone/their-course/workshop?urlpath=lab/tree/notebooks/07_x.ipynb" in first
    assert first.endswith("Text.")  # the rest of the cell is kept
    assert [c["id"] for c in cells] == ["x-00", "x-01", "x-colab", "x-02"]
    assert "https://github.com/someone/their-course" in "".join(cells[2]["source"])


def test_a_lab_solution_links_to_the_learner_copy(tmp_path):
    path = _notebook(tmp_path, "labs/solutions/lab09_y.ipynb", "# Lab 09 · Y\n\nNo links yet.")
    course.sync_notebook(path, tmp_path)
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    assert "blob/main/labs/lab09_y.ipynb" in first and "solutions" not in first


def test_check_reports_a_missing_or_edited_bootstrap_cell(tmp_path):
    path = _notebook(tmp_path, "notebooks/01_z.ipynb", "# 01 · Z")
    course.sync_notebook(path, tmp_path)
    nb = json.loads(path.read_text())
    nb["cells"][2]["source"] = "# Colab only: fetch the course helpers. (edited)\n"
    path.write_text(json.dumps(nb))
    assert any("bootstrap" in p for p in course.problems(path, tmp_path))


def test_the_bootstrap_cell_does_nothing_outside_colab():
    code = course.bootstrap_source() + "\nprint(sorted(k for k in globals() if not k.startswith('__')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "['sys']" and out.stderr == ""


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell for the stand-in git")
def test_the_bootstrap_cell_on_a_simulated_colab_makes_utils_importable(tmp_path):
    # Colab is imitated by a `google.colab.output` module that records the widget-manager call,
    # and `git` by a script that copies this checkout (the network is not needed).
    fake = tmp_path / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "output.py").write_text(
        "calls = []\ndef enable_custom_widget_manager():\n    calls.append('enabled')\n"
    )
    bindir = tmp_path / "bin"
    bindir.mkdir()
    git = bindir / "git"
    git.write_text(
        textwrap.dedent(f"""\
            #!/bin/sh
            echo "$@" > {tmp_path}/git-args
            for last; do :; done
            mkdir -p "$last" && cp -r {REPO}/utils "$last"/
            """)
    )
    git.chmod(0o755)
    content = tmp_path / "content"
    source = course.bootstrap_source().replace('"/content/', f'"{content}/')
    code = textwrap.dedent("""\
        import google.colab  # what Colab has imported before any cell runs
        exec(compile(SOURCE, "bootstrap", "exec"))
        exec(compile(SOURCE, "bootstrap", "exec"))  # running it twice is harmless
        import utils
        from google.colab import output
        print(utils.__file__)
        print(output.calls)
        """).replace("SOURCE", repr(source))
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PYTHONPATH": str(fake)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    file, calls = out.stdout.strip().splitlines()
    repo = course.repository()
    assert file == str(content / repo.name / "utils" / "__init__.py")
    assert calls == "['enabled', 'enabled']"
    args = (tmp_path / "git-args").read_text().split()
    assert args[:2] == ["clone", "-q"] and repo.clone_url in args and repo.branch in args
