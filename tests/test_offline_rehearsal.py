"""tools/offline_rehearsal.py (what ``.ci/offline`` runs): how it picks the notebooks and judges a run.

The rehearsal itself (a mirror, a copied data folder, every lesson with the network cut) takes
10-20 minutes and runs in ``.ci/offline``; these tests check its pieces.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from tools import offline_rehearsal as rehearsal
from utils import data

REPO = Path(__file__).resolve().parents[1]
PROBE_LINE = 'offline-probe [{"variable": "data", "name": "%s", "stand_in": %s, "shape": [9, 28, 28]}]'


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """No cached data and no network: a loader falls back to its stand-in."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "empty"))
    for name in ("COURSE_DATA_MIRROR", "COURSE_DATA_CHECKSUMS"):
        monkeypatch.delenv(name, raising=False)


def test_the_rehearsal_finds_the_notebooks_that_load_downloads():
    found = {p.name for p in rehearsal.notebooks_that_load_downloads()}
    for path in sorted((REPO / "notebooks").glob("*.ipynb")) + sorted(
        (REPO / "labs" / "solutions").glob("*.ipynb")
    ):
        if "utils.data.load_images(" in path.read_text(encoding="utf-8"):
            assert path.name in found
    if (REPO / "labs" / "solutions" / "lab03_train_a_classifier.ipynb").exists():
        assert "lab03_train_a_classifier.ipynb" in found  # loads MNIST through its checks module


def test_a_lab_counts_through_its_checks_module(tmp_path):
    def notebook(path: Path, code: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell("load_mnist in prose does not count"),
            nbformat.v4.new_code_cell(code),
        ]
        nbformat.write(nb, path)

    notebook(tmp_path / "notebooks" / "01_a.ipynb", "ds = utils.data.load_images('mnist')")
    notebook(tmp_path / "notebooks" / "02_b.ipynb", "x = 1")
    notebook(tmp_path / "labs" / "solutions" / "lab02_b.ipynb", "from utils.checks import lab02")
    notebook(tmp_path / "labs" / "solutions" / "lab03_c.ipynb", "from utils.checks import lab03")
    (tmp_path / "utils" / "checks").mkdir(parents=True)
    (tmp_path / "utils" / "checks" / "lab02.py").write_text(
        "def reference():\n    return load_fashion_mnist()\n"
    )
    (tmp_path / "utils" / "checks" / "lab03.py").write_text("def reference():\n    return 3\n")
    found = [p.relative_to(tmp_path).as_posix() for p in rehearsal.notebooks_that_load_downloads(tmp_path)]
    assert found == ["notebooks/01_a.ipynb", "labs/solutions/lab02_b.ipynb"]


@pytest.mark.slow  # the stand-in is made with utils.data (TensorFlow)
def test_the_judge_tells_real_data_from_stand_ins(empty_cache):
    real = "Using MNIST's 70,000 28×28 handwritten digits.\n" + PROBE_LINE % ("mnist", "false")
    verdict = rehearsal.judge(real)
    assert verdict.ok and verdict.problems == []
    assert verdict.used == ["Using MNIST's 70,000 28×28 handwritten digits."]
    assert verdict.probes == [{"variable": "data", "name": "mnist", "stand_in": False, "shape": [9, 28, 28]}]

    stand_in = data.load_images("mnist", allow_download=False)  # the empty cache: the stand-in
    assert stand_in.stand_in
    problems = rehearsal.judge(stand_in.description + "\n" + PROBE_LINE % ("digits", "true")).problems
    assert any("took a stand-in" in p for p in problems) and any("digits" in p for p in problems)
    # One real dataset and one stand-in in the same notebook is a failure too.
    assert any("took a stand-in" in p for p in rehearsal.judge(real + "\n" + stand_in.description).problems)
    # An error fails the run; the missing probe line is then not a second complaint.
    problems = rehearsal.judge("", "AssertionError: x").problems
    assert problems[0] == "error: AssertionError: x"
    assert not any("probe" in p for p in problems)
    assert any("probe cell printed nothing" in p for p in rehearsal.judge(real.splitlines()[0]).problems)


def test_the_judge_knows_imdb_and_its_stand_in():
    probe = "\noffline-probe []"  # no image dataset left in the namespace
    verdict = rehearsal.judge("Using IMDB film reviews: 300 documents, 394,120 characters" + probe)
    assert verdict.ok and verdict.used == ["Using IMDB film reviews: 300 documents, 394,120 characters"]
    fallback = "IMDB is not available (not in the cache); using Python's docstrings instead.\n"
    problems = rehearsal.judge(fallback + "Using Python's docstrings: 300 documents" + probe).problems
    assert any("took a stand-in" in p for p in problems)
    assert any("no real-dataset description" in p for p in problems)


def test_the_probe_reports_the_datasets_left_in_the_namespace(capsys):
    class Dataset:
        name = "mnist"
        stand_in = False
        x_train = nbformat.NotebookNode(shape=(9, 28, 28))

    namespace = {"data": Dataset(), "Dataset": Dataset, "other": 3}
    exec(rehearsal.PROBE, namespace)
    line = capsys.readouterr().out.strip()
    assert line.startswith("offline-probe ")
    assert json.loads(line.split(" ", 1)[1]) == [
        {"variable": "data", "name": "mnist", "stand_in": False, "shape": [9, 28, 28]}
    ]


def test_missing_datasets_are_read_from_the_status_table():
    names = list(data.REGISTRY)
    status = "\n".join(
        [
            "dataset  kind  available  size",
            f"{names[0]}  download  yes  1 MB",
            f"{names[1]}  download  no  1 MB",
            "",
            "a line that is not a dataset",
        ]
    )
    assert rehearsal.missing_datasets(status) == [names[1]]


def test_ci_offline_is_a_thin_wrapper_of_the_module():
    text = (REPO / ".ci" / "offline").read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash") and "-m tools.offline_rehearsal" in text
    assert len(text.splitlines()) < 20
    out = subprocess.run(["bash", str(REPO / ".ci" / "offline"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: .ci/offline" in out.stdout and "--keep" in out.stdout
