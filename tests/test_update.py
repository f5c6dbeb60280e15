"""Tests of utils.update: updating a git clone of the course never loses a learner's edits.

Each test builds a tiny course in temporary folders: a bare repository as the "server", the
author's clone that publishes new versions, and the learner's clone that is updated. No network:
the server is a local path. The course's own ``utils/labs.py`` is copied in, so the labs are
rebuilt by the code the update brings, as in a real course folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from utils import update

REPO = Path(__file__).resolve().parents[1]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Course Author",
    "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "Course Author",
    "GIT_COMMITTER_EMAIL": "author@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def notebook(*sources: str) -> str:
    cells = [
        {
            "cell_type": "code",
            "id": f"c{i}",
            "metadata": {},
            "source": s,
            "outputs": [],
            "execution_count": None,
        }
        for i, s in enumerate(sources)
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1) + "\n"


def lab_solution(answer: str) -> str:
    return notebook(f"def f():\n    # BEGIN SOLUTION q1\n    return {answer}\n    # END SOLUTION\n")


def build_labs(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "utils.labs", "build"], cwd=root, check=True, capture_output=True)


def write(root: Path, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text, encoding="utf-8")


class Course:
    """The server, the author's clone and the learner's clone."""

    def __init__(self, tmp: Path) -> None:
        self.server, self.author, self.learner = tmp / "server.git", tmp / "author", tmp / "learner"
        git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(self.server))
        git(tmp, "clone", "--quiet", str(self.server), str(self.author))
        write(self.author, "utils/__init__.py", "")
        shutil.copy(REPO / "utils" / "labs.py", self.author / "utils" / "labs.py")
        write(self.author, ".gitignore", "__pycache__/\nlabs/backups/\nbackups/\n")
        write(self.author, "notebooks/01_start.ipynb", notebook("print('version 1')"))
        write(self.author, "notebooks/02_more.ipynb", notebook("x = 2"))
        write(self.author, "labs/solutions/lab01_first.ipynb", lab_solution("1"))
        build_labs(self.author)
        self.publish("version 1")
        git(tmp, "clone", "--quiet", str(self.server), str(self.learner))

    def publish(self, message: str) -> None:
        git(self.author, "add", "-A")
        git(self.author, "commit", "--quiet", "-m", message)
        git(self.author, "push", "--quiet", "origin", "main")

    def release_version_2(self) -> None:
        write(self.author, "notebooks/01_start.ipynb", notebook("print('version 2')"))
        write(self.author, "notebooks/03_new.ipynb", notebook("print('new lesson')"))
        write(self.author, "labs/solutions/lab01_first.ipynb", lab_solution("2"))
        build_labs(self.author)
        self.publish("version 2")


@pytest.fixture
def course(tmp_path: Path) -> Course:
    return Course(tmp_path)


def run(root: Path, *args: str) -> tuple[int, str]:
    lines: list[str] = []
    code = update.update(root, dry_run="--dry-run" in args, say=lines.append)
    return code, "\n".join(lines)


def backups(root: Path) -> list[Path]:
    folder = root / "backups"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_changed_notebooks_are_kept_then_the_course_is_updated(course):
    learner = course.learner
    course.release_version_2()
    mine = notebook("print('my own work on lesson 1')")
    write(learner, "notebooks/01_start.ipynb", mine)
    filled_lab = (
        (learner / "labs/lab01_first.ipynb").read_text().replace("raise NotImplementedError", "return 1")
    )
    write(learner, "labs/lab01_first.ipynb", filled_lab)
    (learner / "notebooks/02_more.ipynb").unlink()  # deleted by mistake
    write(learner, "notebooks/my_experiment.ipynb", notebook("print('untracked, mine')"))

    code, out = run(learner)
    assert code == 0, out
    assert git(learner, "rev-parse", "HEAD") == git(course.author, "rev-parse", "HEAD")
    assert "version 2" in (learner / "notebooks/01_start.ipynb").read_text()
    assert (learner / "notebooks/03_new.ipynb").exists()
    assert (learner / "notebooks/02_more.ipynb").exists()  # restored
    assert (learner / "notebooks/my_experiment.ipynb").read_text() == notebook("print('untracked, mine')")
    kept = backups(learner)
    assert len(kept) == 2 and len({p.relative_to(learner / "backups").parts[0] for p in kept}) == 1
    by_name = {p.name: p for p in kept}
    assert by_name["01_start.ipynb"].read_text() == mine
    assert by_name["lab01_first.ipynb"].read_text() == filled_lab
    assert str(by_name["01_start.ipynb"].relative_to(learner)) in out
    assert "02_more.ipynb" in out and "Updated the course" in out
    # The new version's lab was built, from the new solution (its stripped answer).
    assert "lab01_first: " in out
    assert git(learner, "status", "--porcelain", "--untracked-files=no") == ""


def test_dry_run_changes_nothing(course):
    learner = course.learner
    course.release_version_2()
    mine = notebook("print('mine')")
    write(learner, "notebooks/01_start.ipynb", mine)
    head = git(learner, "rev-parse", "HEAD")
    code, out = run(learner, "--dry-run")
    assert code == 0
    assert "notebooks/01_start.ipynb (modified)" in out and "version 2" in out and "Dry run" in out
    assert git(learner, "rev-parse", "HEAD") == head
    assert (learner / "notebooks/01_start.ipynb").read_text() == mine
    assert backups(learner) == [] and not (learner / "backups").exists()


def test_up_to_date_touches_nothing(course):
    mine = notebook("print('mine')")
    write(course.learner, "notebooks/01_start.ipynb", mine)
    code, out = run(course.learner)
    assert code == 0 and "up to date" in out
    assert (course.learner / "notebooks/01_start.ipynb").read_text() == mine
    assert not (course.learner / "backups").exists()


def test_not_a_clone(course, tmp_path):
    copy = tmp_path / "zip-download"
    shutil.copytree(course.learner, copy, ignore=shutil.ignore_patterns(".git"))
    code, out = run(copy)
    assert code == update.NOT_POSSIBLE
    assert "not a git clone" in out and "download the course again" in out
    assert "Colab" in out


def test_offline_changes_nothing(course, tmp_path):
    learner = course.learner
    course.release_version_2()
    git(learner, "remote", "set-url", "origin", str(tmp_path / "unreachable.git"))
    mine = notebook("print('mine')")
    write(learner, "notebooks/01_start.ipynb", mine)
    head = git(learner, "rev-parse", "HEAD")
    code, out = run(learner)
    assert code == update.FAILED
    assert "Could not reach" in out and "offline" in out and "Nothing has been changed" in out
    assert (learner / "notebooks/01_start.ipynb").read_text() == mine
    assert git(learner, "rev-parse", "HEAD") == head and not (learner / "backups").exists()


def test_own_commits_are_not_touched(course):
    learner = course.learner
    course.release_version_2()
    write(learner, "notebooks/01_start.ipynb", notebook("print('committed by me')"))
    git(learner, "commit", "--quiet", "-am", "my work")
    head = git(learner, "rev-parse", "HEAD")
    code, out = run(learner)
    assert code == update.FAILED and "commit(s) of your own" in out and "Nothing has been changed" in out
    assert git(learner, "rev-parse", "HEAD") == head
    assert "committed by me" in (learner / "notebooks/01_start.ipynb").read_text()


def test_a_failed_move_puts_everything_back(course, monkeypatch):
    learner = course.learner
    course.release_version_2()
    mine = notebook("print('mine')")
    write(learner, "notebooks/01_start.ipynb", mine)
    (learner / "notebooks/02_more.ipynb").unlink()
    head = git(learner, "rev-parse", "HEAD")

    def refuse(root, target):
        raise update._GitError(["merge"], subprocess.CompletedProcess([], 1, "", "fatal: simulated failure"))

    monkeypatch.setattr(update, "_fast_forward", refuse)
    code, out = run(learner)
    assert code == update.FAILED and "simulated failure" in out and "Nothing was lost" in out
    assert git(learner, "rev-parse", "HEAD") == head
    assert (learner / "notebooks/01_start.ipynb").read_text() == mine
    assert not (learner / "notebooks/02_more.ipynb").exists()  # as the learner left it
    assert [p.read_text() for p in backups(learner)] == [mine]


def test_an_untracked_file_in_the_way_is_moved_to_the_backup(course):
    learner = course.learner
    course.release_version_2()
    theirs = notebook("print('my own lesson 3')")
    write(learner, "notebooks/03_new.ipynb", theirs)  # the update brings a file of this name
    code, out = run(learner)
    assert code == 0, out
    assert "new lesson" in (learner / "notebooks/03_new.ipynb").read_text()
    assert [p.read_text() for p in backups(learner)] == [theirs]
    assert "notebooks/03_new.ipynb" in out


def test_a_staged_new_file_is_kept(course):
    learner = course.learner
    course.release_version_2()
    write(learner, "notebooks/03_new.ipynb", notebook("print('staged, mine')"))
    git(learner, "add", "notebooks/03_new.ipynb")
    code, out = run(learner)
    assert code == 0, out
    assert "new lesson" in (learner / "notebooks/03_new.ipynb").read_text()
    assert [p.read_text() for p in backups(learner)] == [notebook("print('staged, mine')")]


def test_command_line(course, capsys):
    course.release_version_2()
    assert update.main(["--root", str(course.learner), "--dry-run"]) == 0
    assert "Dry run" in capsys.readouterr().out


def test_a_renamed_notebook_is_kept_and_the_original_restored(course):
    learner = course.learner
    course.release_version_2()
    git(learner, "mv", "notebooks/02_more.ipynb", "notebooks/02_renamed.ipynb")
    code, out = run(learner)
    assert code == 0, out
    assert (learner / "notebooks/02_more.ipynb").exists()  # the course's file is back
    assert (learner / "notebooks/02_renamed.ipynb").exists()  # the learner's copy stays, untracked
    assert [p.name for p in backups(learner)] == ["02_renamed.ipynb"]
    assert "02_more.ipynb" in out and git(learner, "status", "--porcelain", "--untracked-files=no") == ""
