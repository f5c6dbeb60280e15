"""A room without internet: fill a data folder from a mirror, copy it, use the copy offline.

The real datasets are unreachable here, so the mirror is a web server on 127.0.0.1 holding small
files in the genuine formats (tests/fixtures/genuine_data.py), with their own checksum manifest
given through ``COURSE_DATA_CHECKSUMS``. The official addresses in the registry are replaced by a
closed local port, so nothing here can reach the internet. The lessons themselves run on such a
copy in ``.ci/offline`` (too slow for the main suite).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from utils import data

REPO = Path(__file__).resolve().parents[1]
# Loaded by path: another installed package may also be called "tests".
_spec = importlib.util.spec_from_file_location(
    "genuine_data", REPO / "tests" / "fixtures" / "genuine_data.py"
)
genuine_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(genuine_data)
serve, write_mirror = genuine_data.serve, genuine_data.write_mirror
DOWNLOADS = [name for name, ds in data.REGISTRY.items() if ds.kind == "download"]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory):
    """A folder of genuine-format files with SHA256SUMS, and the arrays they hold."""
    root = tmp_path_factory.mktemp("mirror")
    return root, write_mirror(root, "small")


@pytest.fixture(scope="module")
def served(mirror):
    with serve(mirror[0]) as url:
        yield url


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def hermetic(monkeypatch, tmp_path):
    """Online as far as the course knows, but the official addresses lead nowhere."""
    dead = f"http://127.0.0.1:{_closed_port()}/"
    for name in DOWNLOADS:
        ds = data.REGISTRY[name]
        files = tuple(dataclasses.replace(rf, url=dead + rf.filename) for rf in ds.files)
        monkeypatch.setitem(data.REGISTRY, name, dataclasses.replace(ds, files=files))
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "prepared"))
    for name in ("COURSE_DATA_MIRROR", "COURSE_DATA_CHECKSUMS"):
        monkeypatch.delenv(name, raising=False)
    data._VERIFIED.clear()
    yield
    data._VERIFIED.clear()


def _flip_a_byte(path: Path) -> None:
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))


def _status_in_a_new_process(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "utils.data", "status"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _available(status_text: str) -> dict[str, bool]:
    rows = {}
    for line in status_text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in data.REGISTRY:
            rows[parts[0]] = parts[2] == "yes"
    return rows


@pytest.mark.slow
def test_fetch_all_copy_and_use_the_copy_offline(mirror, served, monkeypatch, tmp_path, capsys):
    root, arrays = mirror
    monkeypatch.setenv("COURSE_DATA_MIRROR", served)
    monkeypatch.setenv("COURSE_DATA_CHECKSUMS", str(root / "SHA256SUMS"))
    assert data.main(["fetch", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("verified") == len(DOWNLOADS) and "set COURSE_DATA_DIR" in out
    prepared = tmp_path / "prepared"
    for name in DOWNLOADS:
        for rf in data.REGISTRY[name].files:
            assert (prepared / name / rf.filename).read_bytes() == (root / name / rf.filename).read_bytes()
    assert not list(prepared.rglob("*.part"))

    # Another machine: a copy somewhere else, the original gone, no mirror, offline.
    copy = tmp_path / "elsewhere" / "course-data"
    shutil.copytree(prepared, copy)
    shutil.rmtree(prepared)
    monkeypatch.setenv("COURSE_DATA_DIR", str(copy))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA_MIRROR")
    data._VERIFIED.clear()  # nothing remembered from the fetch

    assert all(row["available"] for row in data.status())
    for name, prefix in (("mnist", "mnist"), ("fashion_mnist", "fashion"), ("cifar10", "cifar")):
        images = data.load_images(name)
        assert images.stand_in is False and images.name == name and images.description.startswith("Using ")
        np.testing.assert_array_equal(images.x_train, arrays[f"{prefix}_x_train"])
        np.testing.assert_array_equal(images.y_test, arrays[f"{prefix}_y_test"].astype(np.int64))
    (x_train, y_train), _ = data.load_imdb()
    assert len(x_train) == len(arrays["imdb_x_train"])
    assert sorted(int(y) for y in y_train) == sorted(int(y) for y in arrays["imdb_y_train"])
    assert data.imdb_word_index()["the"] == 1
    assert not (prepared).exists()

    # A new process knows nothing of this one: it verifies the copy against the manifest.
    env = {
        "COURSE_DATA_DIR": str(copy),
        "COURSE_OFFLINE": "1",
        "COURSE_DATA_CHECKSUMS": str(root / "SHA256SUMS"),
    }
    rows = _available(_status_in_a_new_process(env))
    assert set(rows) == set(data.REGISTRY) and all(rows.values())
    # Without the manifest the files are not the publishers': the registry rejects them.
    env["COURSE_DATA_CHECKSUMS"] = ""
    rows = _available(_status_in_a_new_process(env))
    assert not any(rows[name] for name in DOWNLOADS) and rows["digits"]

    # A copied file damaged on the way is found and not used.
    _flip_a_byte(copy / "mnist" / "mnist.npz")
    data._VERIFIED.clear()
    assert not data.is_cached("mnist") and data.is_cached("cifar10")
    images = data.load_images("mnist")
    assert images.stand_in is True and images.name == "digits"


def test_generated_files_are_rejected_without_a_manifest(mirror, served, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_MIRROR", served)
    with pytest.raises(data.DatasetUnavailable, match="did not match its checksum") as caught:
        data.fetch("mnist", progress=False)
    # The generated file is smaller than the real one: rejected by size before hashing.
    assert f"expected {data.REGISTRY['mnist'].files[0].size:,}" in str(caught.value)
    assert "the course's registry" in str(caught.value)
    assert list((tmp_path / "prepared" / "mnist").iterdir()) == []


def test_a_corrupt_download_is_rejected_against_the_manifest(mirror, monkeypatch, tmp_path):
    root, _ = mirror
    bad = tmp_path / "bad-mirror"
    shutil.copytree(root, bad)
    _flip_a_byte(bad / "cifar10" / "cifar-10-python.tar.gz")  # SHA256SUMS still lists the good file
    monkeypatch.setenv("COURSE_DATA_CHECKSUMS", str(bad / "SHA256SUMS"))
    with serve(bad) as url:
        monkeypatch.setenv("COURSE_DATA_MIRROR", url)
        with pytest.raises(data.DatasetUnavailable, match="did not match its checksum") as caught:
            data.fetch("cifar10", progress=False)
        assert "COURSE_DATA_CHECKSUMS" in str(caught.value)
        assert list((tmp_path / "prepared" / "cifar10").iterdir()) == []
        # A truncated file is rejected too, though the manifest gives no size.
        path = bad / "mnist" / "mnist.npz"
        path.write_bytes(path.read_bytes()[:-10])
        with pytest.raises(data.DatasetUnavailable, match="did not match its checksum"):
            data.fetch("mnist", progress=False)
        assert data.fetch("imdb", progress=False)  # the intact files still arrive


def test_a_mirror_can_be_a_local_folder(mirror, monkeypatch, tmp_path):
    root, arrays = mirror
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(root))  # a path, as for a USB stick
    monkeypatch.setenv("COURSE_DATA_CHECKSUMS", str(root / "SHA256SUMS"))
    (x_train, _), _ = data.load_fashion_mnist()
    np.testing.assert_array_equal(x_train, arrays["fashion_x_train"])
    monkeypatch.setenv("COURSE_DATA_MIRROR", root.as_uri())  # or a file:// URL
    assert data.fetch("mnist", progress=False)["mnist.npz"].is_file()


def test_the_manifest_replaces_only_what_it_lists(mirror, served, monkeypatch, tmp_path):
    import hashlib

    root, _ = mirror
    lines = (root / "SHA256SUMS").read_text().splitlines()
    partial = tmp_path / "partial.sums"
    # A plain file name works as well as dataset/file name, "*name" (binary mode) too, and md5sum lines.
    sha = next(line for line in lines if line.endswith("mnist/mnist.npz")).split()[0]
    md5 = hashlib.md5((root / "imdb" / "imdb.npz").read_bytes()).hexdigest()
    partial.write_text(f"# my mirror\n\n{sha} *mnist.npz\n{md5}  imdb/imdb.npz\n")
    monkeypatch.setenv("COURSE_DATA_MIRROR", served)
    monkeypatch.setenv("COURSE_DATA_CHECKSUMS", str(partial))
    assert data.fetch("mnist", progress=False)
    with pytest.raises(data.DatasetUnavailable, match="did not match its checksum"):
        data.fetch("fashion_mnist", progress=False)  # not listed: the registry's checksum applies
    with pytest.raises(data.DatasetUnavailable) as caught:
        data.fetch("imdb", progress=False)
    # imdb.npz passed its md5; the word index is not listed, so the registry's checksum rejects it.
    assert "imdb_word_index.json is not in the cache" in str(caught.value)
    assert (tmp_path / "prepared" / "imdb" / "imdb.npz").is_file()
    assert not (tmp_path / "prepared" / "imdb" / "imdb_word_index.json").exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not-hex  mnist.npz\n", "line 1"),
        ("# ok\n" + "a" * 64 + "\n", "line 2"),
        ("abc  mnist.npz\n", "line 1"),
    ],
)
def test_a_malformed_manifest_is_a_clear_error(monkeypatch, tmp_path, content, problem):
    sums = tmp_path / "SUMS"
    sums.write_text(content)
    monkeypatch.setenv("COURSE_DATA_CHECKSUMS", str(sums))
    with pytest.raises(ValueError, match=problem):
        data.is_cached("mnist")


def test_a_missing_manifest_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_DATA_CHECKSUMS", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="COURSE_DATA_CHECKSUMS"):
        data.fetch("mnist")
    assert data.main(["status"]) == 1
    assert "cannot be read" in capsys.readouterr().out
