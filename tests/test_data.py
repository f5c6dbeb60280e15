"""Tests of utils.data: the registry, checksummed downloads, offline behaviour and the loaders.

No test touches the internet or the user's cache. Downloads are tested against a real HTTP
server on 127.0.0.1 that serves small files in the genuine formats (Keras's npz files, gzip IDX,
the CIFAR-10 python tar.gz of pickled batches), written here, and each test gets its own empty
cache directory.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import json
import os
import pickle
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from utils import data

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------
# Small files in the genuine formats
# --------------------------------------------------------------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file (the MNIST format): zero, zero, type 0x08 (ubyte), rank, big-endian dims."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _object_array(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _cifar_bytes(train: list[tuple[np.ndarray, list[int]]], test: tuple[np.ndarray, list[int]]) -> bytes:
    """cifar-10-python.tar.gz: cifar-10-batches-py/ with pickled dicts keyed by bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:

        def add(name: str, payload: bytes) -> None:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))

        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
        names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
        meta = {b"num_cases_per_batch": 2, b"label_names": names, b"num_vis": 3072}
        add("batches.meta", pickle.dumps(meta, protocol=2))
        batches = [(f"data_batch_{i + 1}", b) for i, b in enumerate(train)] + [("test_batch", test)]
        for name, (pixels, labels) in batches:
            batch = {
                b"batch_label": name.encode(),
                b"labels": labels,
                b"data": pixels,
                b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
            }
            add(name, pickle.dumps(batch, protocol=2))
        add("readme.html", b"<html>CIFAR-10</html>")
    return buffer.getvalue()


@dataclasses.dataclass
class Served:
    url: str
    root: Path
    requests: dict[str, int]
    arrays: dict[str, np.ndarray]
    files: dict[str, dict[str, bytes]]  # dataset name -> filename -> bytes

    def count(self, filename: str) -> int:
        return sum(n for path, n in self.requests.items() if path.endswith("/" + filename))


def _write_fixtures(root: Path) -> tuple[dict[str, np.ndarray], dict[str, dict[str, bytes]]]:
    rng = np.random.default_rng(42)
    arrays: dict[str, np.ndarray] = {}

    # mnist.npz: Keras's keys, uint8
    for split, n in (("train", 5), ("test", 3)):
        arrays[f"mnist_x_{split}"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"mnist_y_{split}"] = rng.integers(0, 10, n, dtype=np.uint8)
    mnist = _npz_bytes(
        x_train=arrays["mnist_x_train"],
        y_train=arrays["mnist_y_train"],
        x_test=arrays["mnist_x_test"],
        y_test=arrays["mnist_y_test"],
    )

    # Fashion-MNIST: four gzip-compressed IDX files
    fashion = {}
    for prefix, n in (("train", 4), ("t10k", 2)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        arrays[f"fashion_x_{prefix}"], arrays[f"fashion_y_{prefix}"] = images, labels
        fashion[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(_idx_bytes(images), mtime=0)
        fashion[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(_idx_bytes(labels), mtime=0)

    # CIFAR-10: five training batches of 2 images, a test batch of 3, rows of 3072 bytes
    train = []
    for _ in range(5):
        train.append(
            (rng.integers(0, 256, (2, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, 2)])
        )
    test = (rng.integers(0, 256, (3, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, 3)])
    arrays["cifar_rows_train"] = np.concatenate([p for p, _ in train])
    arrays["cifar_labels_train"] = np.array(sum((lab for _, lab in train), []))
    arrays["cifar_rows_test"], arrays["cifar_labels_test"] = test[0], np.array(test[1])
    cifar = _cifar_bytes(train, test)

    # imdb.npz: object arrays of word-rank lists (1 = most frequent word), int labels
    reviews = {
        "train": [[1, 2, 3, 4], [5, 1, 9], [2, 2, 7, 8, 1], [4, 6], [3]],
        "test": [[1, 1, 2], [8, 9, 10], [6, 5, 4, 3]],
    }
    labels = {"train": np.array([1, 0, 1, 0, 1]), "test": np.array([0, 1, 1])}
    imdb = _npz_bytes(
        x_train=_object_array(reviews["train"]),
        y_train=labels["train"],
        x_test=_object_array(reviews["test"]),
        y_test=labels["test"],
    )
    words = ["the", "and", "a", "of", "to", "is", "film", "good", "bad", "plot"]
    word_index = json.dumps({w: i + 1 for i, w in enumerate(words)}).encode()
    for split in ("train", "test"):
        arrays[f"imdb_y_{split}"] = labels[split]
        arrays[f"imdb_x_{split}"] = _object_array(reviews[split])

    files = {
        "mnist": {"mnist.npz": mnist},
        "fashion_mnist": fashion,
        "cifar10": {"cifar-10-python.tar.gz": cifar},
        "imdb": {"imdb.npz": imdb, "imdb_word_index.json": word_index},
    }
    for per_dataset in files.values():
        for filename, payload in per_dataset.items():
            (root / filename).write_bytes(payload)
    # The same MNIST file with one byte changed: a server that sends the wrong bytes.
    (root / "tampered").mkdir()
    (root / "tampered" / "mnist.npz").write_bytes(mnist[:-1] + bytes([mnist[-1] ^ 0xFF]))
    (root / "empty").mkdir()
    return arrays, files


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A real HTTP server on 127.0.0.1 serving the genuine-format files; counts requests."""
    root = tmp_path_factory.mktemp("served")
    arrays, files = _write_fixtures(root)
    requests: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            with lock:
                requests[self.path] = requests.get(self.path, 0) + 1
            super().do_GET()

        def log_message(self, *args):  # keep the test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}/", root, requests, arrays, files)
    finally:
        server.shutdown()
        server.server_close()


def _checksum(payload: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, payload).hexdigest()}"


def _point_registry_at(monkeypatch, name: str, base_url: str, files: dict[str, bytes], algorithm="sha256"):
    entry = data.REGISTRY[name]
    remote = tuple(
        data.RemoteFile(fn, base_url + fn, _checksum(payload, algorithm), len(payload))
        for fn, payload in files.items()
    )
    monkeypatch.setitem(data.REGISTRY, name, dataclasses.replace(entry, files=remote))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Every test: its own empty cache, online unless it says otherwise, no mirror."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    data._VERIFIED.clear()
    yield tmp_path / "cache"
    data._VERIFIED.clear()


@pytest.fixture
def local(served, monkeypatch):
    """The registry's download entries, pointed at the local server with the tiny files' checksums."""
    served.requests.clear()
    for name, files in served.files.items():
        # Fashion-MNIST is checked by MD5, as its publisher does; the others by SHA-256.
        _point_registry_at(
            monkeypatch, name, served.url, files, "md5" if name == "fashion_mnist" else "sha256"
        )
    return served


# --------------------------------------------------------------------------------------------
# Registry and cache directory
# --------------------------------------------------------------------------------------------


def test_registry_entries_are_complete_and_consistent():
    expected = {"mnist", "fashion_mnist", "cifar10", "imdb", "digits", "sample_photos", "tips"}
    expected |= {"gapminder", "python_text", "spirals", "shapes32"}
    assert expected <= set(data.REGISTRY)
    for name, ds in data.REGISTRY.items():
        assert ds.name == name and ds.title and ds.licence and ds.description
        assert ds.kind in ("download", "bundled", "generated")
        if ds.kind != "download":
            assert ds.files == ()
            continue
        assert ds.files and ds.offline_alternative in data.REGISTRY
        assert data.REGISTRY[ds.offline_alternative].kind != "download"
        assert len({rf.filename for rf in ds.files}) == len(ds.files)
        assert ds.size_bytes == sum(rf.size for rf in ds.files)
        for rf in ds.files:
            assert rf.url.startswith("https://") and rf.url.endswith("/" + rf.filename)
            algorithm, hexdigest = rf.checksum.split(":")
            assert len(hexdigest) == {"sha256": 64, "md5": 32}[algorithm]
            int(hexdigest, 16)


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "chosen"))
    assert data.data_dir() == tmp_path / "chosen" and (tmp_path / "chosen").is_dir()
    monkeypatch.delenv("COURSE_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert data._resolve_data_dir() == tmp_path / "home" / ".cache" / "dl-course" / "data"
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    assert data._resolve_data_dir() == Path("/content/course-data")  # resolved, not created


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("off", False), ("", False)],
)
def test_offline_switch(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_OFFLINE", value)
    assert data.offline() is expected


def test_offline_typo_is_an_error_not_online(monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "of")
    with pytest.raises(ValueError, match="COURSE_OFFLINE='of' is neither on nor off"):
        data.offline()


# Every name utils/data.py defined before it became a package (its dir(), less the standard
# library's). The public ones, and the private ones tests and the offline rehearsal use, are still
# reached through utils.data; the other private ones live on in the sub-module that uses them.
PRIVATE_NAMES_STILL_IN_UTILS_DATA = (
    "_IMAGE_SETS",
    "_VERIFIED",
    "_python_documents",
    "_python_module_docstrings",
    "_resolve_data_dir",
)
NAMES_BEFORE_THE_SPLIT = (
    "CIFAR10_CLASSES",
    "DOCSTRING_FAMILIES",
    "Dataset",
    "DatasetUnavailable",
    "FASHION_MNIST_CLASSES",
    "ImageData",
    "MNIST_CLASSES",
    "REGISTRY",
    "RemoteFile",
    "SHAPES32_CLASSES",
    "_BUNDLED_IN",
    "_IMAGE_SETS",
    "_KERAS",
    "_LOADER_CALLS",
    "_MANIFESTS",
    "_Progress",
    "_TEXT_SKIP",
    "_VERIFIED",
    "_candidate_urls",
    "_check_file",
    "_checksum_source",
    "_dataset",
    "_digest",
    "_docstrings",
    "_download",
    "_download_verified",
    "_expected_files",
    "_folder",
    "_human_size",
    "_image_data",
    "_manifest",
    "_python_documents",
    "_python_module_docstrings",
    "_read_idx",
    "_read_manifest",
    "_reason_text",
    "_remember_verified",
    "_remove_stale_parts",
    "_render_shape",
    "_resolve_data_dir",
    "_shape_mask",
    "_skip_text_module",
    "_sklearn_images_dir",
    "_split_checksum",
    "_status_table",
    "_stdlib_docstrings",
    "_unavailable_message",
    "data_dir",
    "docstring_families",
    "fetch",
    "imdb_word_index",
    "is_cached",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_gapminder",
    "load_images",
    "load_imdb",
    "load_mnist",
    "load_sample_photos",
    "load_tips",
    "main",
    "make_shapes32",
    "make_spirals",
    "offline",
    "python_docstrings",
    "python_text",
    "status",
)


def test_every_name_of_the_single_module_is_still_importable_from_utils_data():
    import importlib
    import pkgutil

    public = [name for name in NAMES_BEFORE_THE_SPLIT if not name.startswith("_")]
    missing = [name for name in public + list(PRIVATE_NAMES_STILL_IN_UTILS_DATA) if not hasattr(data, name)]
    assert not missing, f"utils.data no longer exports: {', '.join(missing)}"
    assert sorted(data.__all__) == sorted(public)
    for name in data.__all__:
        exec(f"from utils.data import {name}", {})
    names = [m.name for m in pkgutil.iter_modules(data.__path__) if m.name != "__main__"]
    parts = [importlib.import_module(f"utils.data.{name}") for name in names]
    lost = [n for n in NAMES_BEFORE_THE_SPLIT if not any(hasattr(part, n) for part in parts)]
    assert not lost, f"gone from every part of utils.data: {lost}"


@pytest.mark.slow
def test_the_command_line_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "utils.data", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("usage: python -m utils.data") and "fetch" in out.stdout


def test_import_is_cheap():
    code = (
        "import sys, utils.data; "
        "print(sorted(m for m in ('numpy', 'tensorflow', 'keras', 'pandas', 'sklearn', 'plotly') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and out.stderr == ""


# --------------------------------------------------------------------------------------------
# Downloads: fetch, verify, cache, re-fetch what is damaged, fail fast and clearly
# --------------------------------------------------------------------------------------------


def test_fetch_downloads_verifies_caches_and_parses_mnist(local, isolated, capsys):
    paths = data.fetch("mnist", progress=False)
    assert paths == {"mnist.npz": isolated / "mnist" / "mnist.npz"}
    assert paths["mnist.npz"].read_bytes() == local.files["mnist"]["mnist.npz"]
    assert local.count("mnist.npz") == 1
    assert sorted(p.name for p in (isolated / "mnist").iterdir()) == ["mnist.npz"]  # no .part left
    assert capsys.readouterr().out == ""  # progress=False: silent

    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert local.count("mnist.npz") == 1  # the second call used the cache: no request
    assert x_train.dtype == np.uint8 and x_train.shape == (5, 28, 28) and y_train.shape == (5,)
    np.testing.assert_array_equal(x_train, local.arrays["mnist_x_train"])
    np.testing.assert_array_equal(y_train, local.arrays["mnist_y_train"])
    np.testing.assert_array_equal(x_test, local.arrays["mnist_x_test"])
    np.testing.assert_array_equal(y_test, local.arrays["mnist_y_test"])
    assert data.is_cached("mnist")


def test_progress_bar_goes_to_stdout(local, capsys):
    data.fetch("mnist")
    captured = capsys.readouterr()
    assert "mnist.npz" in captured.out and "100.0%" in captured.out and captured.err == ""


def test_verification_is_remembered(local, monkeypatch):
    data.fetch("mnist", progress=False)
    assert data.is_cached("mnist")

    def no_hashing(*args):
        raise AssertionError("an unchanged, verified file was hashed again")

    # Patched where fetch and is_cached look it up: the store module.
    monkeypatch.setattr(data.store, "_digest", no_hashing)
    assert data.is_cached("mnist")
    assert data.fetch("mnist", progress=False)
    assert local.count("mnist.npz") == 1


def test_fashion_mnist_idx_files_parse(local):
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    assert x_train.shape == (4, 28, 28) and x_test.shape == (2, 28, 28)
    assert x_train.dtype == y_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, local.arrays["fashion_x_train"])
    np.testing.assert_array_equal(y_train, local.arrays["fashion_y_train"])
    np.testing.assert_array_equal(x_test, local.arrays["fashion_x_t10k"])
    np.testing.assert_array_equal(y_test, local.arrays["fashion_y_t10k"])
    assert all(local.count(fn) == 1 for fn in local.files["fashion_mnist"])


def test_cifar10_archive_parses_channels_last(local):
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    assert x_train.shape == (10, 32, 32, 3) and x_test.shape == (3, 32, 32, 3)
    assert y_train.shape == (10, 1) and y_test.shape == (3, 1)
    assert x_train.dtype == y_train.dtype == np.uint8
    rows = local.arrays["cifar_rows_train"]
    # A row is 1024 red, then 1024 green, then 1024 blue values, each 32 rows of 32 pixels.
    for i, r, c, ch in [(0, 0, 0, 0), (3, 5, 7, 1), (9, 31, 31, 2), (6, 16, 2, 2)]:
        assert x_train[i, r, c, ch] == rows[i, ch * 1024 + r * 32 + c]
    np.testing.assert_array_equal(x_train.transpose(0, 3, 1, 2).reshape(10, 3072), rows)
    np.testing.assert_array_equal(
        x_test.transpose(0, 3, 1, 2).reshape(3, 3072), local.arrays["cifar_rows_test"]
    )
    np.testing.assert_array_equal(y_train[:, 0], local.arrays["cifar_labels_train"])
    np.testing.assert_array_equal(y_test[:, 0], local.arrays["cifar_labels_test"])


def test_imdb_follows_keras_conventions(local):
    (x_train, y_train), (x_test, y_test) = data.load_imdb()
    assert x_train.dtype == object and len(x_train) == 5 and len(x_test) == 3
    for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        original = {
            (tuple(s), int(y))
            for s, y in zip(local.arrays[f"imdb_x_{split}"], local.arrays[f"imdb_y_{split}"], strict=True)
        }
        # Shuffled, but each review keeps its label; start_char 1, words shifted by index_from 3.
        assert all(s[0] == 1 for s in xs)
        assert {(tuple(w - 3 for w in s[1:]), int(y)) for s, y in zip(xs, ys, strict=True)} == original
    (x_train2, _), _ = data.load_imdb()
    assert [list(s) for s in x_train2] == [list(s) for s in x_train]  # a fixed shuffle

    (x_small, _), (x_small_test, _) = data.load_imdb(num_words=6)
    for full, small in zip(list(x_train) + list(x_test), list(x_small) + list(x_small_test), strict=True):
        assert small == [w if w < 6 else 2 for w in full]  # 2 marks out-of-vocabulary words
    assert data.imdb_word_index()["the"] == 1


def test_truncated_cache_file_is_fetched_again(local, isolated):
    path = data.fetch("mnist", progress=False)["mnist.npz"]
    path.write_bytes(path.read_bytes()[:100])  # a partial file
    assert not data.is_cached("mnist")
    (x_train, _), _ = data.load_mnist()
    np.testing.assert_array_equal(x_train, local.arrays["mnist_x_train"])
    assert local.count("mnist.npz") == 2
    assert path.read_bytes() == local.files["mnist"]["mnist.npz"]


def test_flipped_bytes_in_cache_are_detected(local):
    path = data.fetch("mnist", progress=False)["mnist.npz"]
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(payload))
    stat = path.stat()
    # Writing changes the modification time; make sure it differs even on a coarse clock.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert not data.is_cached("mnist")
    (x_train, _), _ = data.load_mnist()
    np.testing.assert_array_equal(x_train, local.arrays["mnist_x_train"])
    assert local.count("mnist.npz") == 2


def test_force_downloads_again(local):
    data.fetch("mnist", progress=False)
    data.fetch("mnist", progress=False, force=True)
    assert local.count("mnist.npz") == 2


def test_wrong_bytes_from_server_are_rejected_and_not_kept(local, monkeypatch, isolated):
    good = local.files["mnist"]["mnist.npz"]
    entry = data.REGISTRY["mnist"]
    tampered = data.RemoteFile("mnist.npz", local.url + "tampered/mnist.npz", _checksum(good), len(good))
    monkeypatch.setitem(data.REGISTRY, "mnist", dataclasses.replace(entry, files=(tampered,)))
    with pytest.raises(data.DatasetUnavailable) as caught:
        data.fetch("mnist", progress=False)
    message = str(caught.value)
    actual = hashlib.sha256((local.root / "tampered" / "mnist.npz").read_bytes()).hexdigest()
    assert "checksum" in message and hashlib.sha256(good).hexdigest() in message and actual in message
    assert "load_digits()" in message
    assert list((isolated / "mnist").iterdir()) == []  # neither the file nor a .part remains


def test_offline_reuses_the_cache(local, monkeypatch):
    data.fetch("mnist", progress=False)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    data._VERIFIED.clear()  # as in a new session
    (x_train, _), _ = data.load_mnist()
    np.testing.assert_array_equal(x_train, local.arrays["mnist_x_train"])
    assert local.count("mnist.npz") == 1


def test_offline_uncached_fails_at_once_and_names_the_stand_in(local, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailable) as caught:
        data.load_mnist()
    assert time.monotonic() - start < 2.0
    message = str(caught.value)
    assert "MNIST" in message and "offline" in message
    assert "utils.data.load_digits()" in message and "python -m utils.data fetch mnist" in message
    assert caught.value.alternative == "digits" and caught.value.dataset == "mnist"
    assert local.requests == {}  # not one request
    with pytest.raises(data.DatasetUnavailable, match=r"utils\.data\.make_shapes32\(\)"):
        data.fetch("cifar10")
    with pytest.raises(data.DatasetUnavailable, match=r"utils\.data\.python_text\(\)"):
        data.fetch("imdb")
    assert capsys.readouterr().out == ""


def test_offline_damaged_cache_is_deleted_not_used(local, monkeypatch):
    path = data.fetch("mnist", progress=False)["mnist.npz"]
    path.write_bytes(b"not an npz")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(data.DatasetUnavailable, match="damaged"):
        data.load_mnist()
    assert not path.exists()


def test_unreachable_server_fails_within_seconds(local, monkeypatch, isolated):
    dead = f"http://127.0.0.1:{_closed_port()}/"
    _point_registry_at(monkeypatch, "mnist", dead, local.files["mnist"])
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailable, match="unreachable") as caught:
        data.fetch("mnist", progress=False)
    assert time.monotonic() - start < 3.0
    assert "load_digits()" in str(caught.value)
    assert list((isolated / "mnist").iterdir()) == []


def test_silent_server_times_out(local, monkeypatch):
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        _point_registry_at(
            monkeypatch, "mnist", f"http://127.0.0.1:{silent.getsockname()[1]}/", local.files["mnist"]
        )
        start = time.monotonic()
        with pytest.raises(data.DatasetUnavailable):
            data.fetch("mnist", progress=False, timeout=0.5)
        assert time.monotonic() - start < 3.0


def test_mirror_is_tried_first(local, monkeypatch):
    dead = f"http://127.0.0.1:{_closed_port()}/"
    _point_registry_at(monkeypatch, "mnist", dead, local.files["mnist"])
    monkeypatch.setenv("COURSE_DATA_MIRROR", local.url)
    (x_train, _), _ = data.load_mnist()
    np.testing.assert_array_equal(x_train, local.arrays["mnist_x_train"])
    assert local.requests == {"/mnist.npz": 1}


def test_mirror_without_the_file_falls_back_to_the_official_url(local, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_MIRROR", local.url + "empty")
    data.fetch("mnist", progress=False)
    assert local.requests == {"/empty/mnist.npz": 1, "/empty/mnist/mnist.npz": 1, "/mnist.npz": 1}


def test_status_and_is_cached(local):
    rows = {row["name"]: row for row in data.status()}
    assert set(rows) == set(data.REGISTRY)
    for row in rows.values():
        assert {"name", "title", "kind", "available", "size", "licence", "offline_alternative"} <= set(row)
    assert rows["mnist"]["available"] is False and rows["digits"]["available"] is True
    assert rows["spirals"]["available"] is True and rows["mnist"]["offline_alternative"] == "digits"
    data.fetch("mnist", progress=False)
    assert {row["name"]: row for row in data.status()}["mnist"]["available"] is True
    assert data.fetch("digits") == {}  # nothing to download


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="Known datasets"):
        data.fetch("mnits")


# --------------------------------------------------------------------------------------------
# load_images: the real dataset when possible, the stand-in otherwise, never an error
# --------------------------------------------------------------------------------------------


def test_load_images_falls_back_to_digits_offline(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    images = data.load_images("mnist")
    assert images.stand_in is True and images.name == "digits"
    assert "not available offline" in images.description and "1,797" in images.description
    assert images.x_train.shape == (1437, 8, 8) and images.x_train.dtype == np.uint8
    assert images.y_train.dtype == np.int64 and images.y_train.shape == (1437,)
    assert images.class_names == [str(d) for d in range(10)]
    assert capsys.readouterr().out == ""


def test_load_images_uses_the_cache_offline(local, monkeypatch):
    data.fetch("mnist", progress=False)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    images = data.load_images("mnist")
    assert images.stand_in is False and images.name == "mnist" and images.x_train.shape == (5, 28, 28)


def test_load_images_downloads_when_allowed(local):
    images = data.load_images("fashion_mnist")
    assert images.stand_in is False and images.class_names[0] == "T-shirt/top"
    assert images.y_train.dtype == np.int64


@pytest.mark.slow
def test_load_images_when_the_network_fails(local, monkeypatch):
    _point_registry_at(monkeypatch, "cifar10", f"http://127.0.0.1:{_closed_port()}/", local.files["cifar10"])
    images = data.load_images("cifar10")
    assert images.stand_in is True and images.name == "shapes32"
    assert "could not be downloaded" in images.description
    assert images.x_train.shape[1:] == (32, 32, 3) and len(images.class_names) == 10
    no_download = data.load_images("mnist", allow_download=False)
    assert no_download.stand_in is True and local.count("mnist.npz") == 0


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def test_cli_status(capsys):
    assert data.main(["status"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in data.REGISTRY) and "Data cache:" in out


def test_cli_fetch_all_and_failure(local, monkeypatch, capsys):
    assert data.main(["fetch", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == 4 and "verified" in out
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert data.main(["fetch", "mnist", "cifar10"]) == 0  # cached: fine offline
    data._VERIFIED.clear()
    next(Path(os.environ["COURSE_DATA_DIR"], "mnist").iterdir()).unlink()
    assert data.main(["fetch", "mnist"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "offline" in out and "load_digits()" in out


# --------------------------------------------------------------------------------------------
# Bundled and generated data
# --------------------------------------------------------------------------------------------


def test_load_digits_split():
    (x_train, y_train), (x_test, y_test) = data.load_digits()
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() == 1.0
    assert np.bincount(y_test).min() >= 35  # stratified: about 36 of each digit
    (x_again, _), _ = data.load_digits()
    np.testing.assert_array_equal(x_train, x_again)


def test_sample_photos_decode():
    photos = data.load_sample_photos()
    assert set(photos) == {"china", "flower"}
    for photo in photos.values():
        assert photo.shape == (427, 640, 3) and photo.dtype == np.uint8 and photo.std() > 20


def test_tables():
    tips, gapminder = data.load_tips(), data.load_gapminder()
    assert tips.shape == (244, 7) and "tip" in tips.columns
    assert len(gapminder) == 1704 and {"country", "year", "lifeExp"} <= set(gapminder.columns)


@pytest.mark.slow
def test_python_text_is_large_deterministic_and_quiet(capsys, recwarn):
    data._python_documents.cache_clear()
    documents = data.python_text()
    assert len(documents) > 1000 and sum(map(len, documents)) > 1_000_000
    assert min(map(len, documents)) >= 200 and len(set(documents)) == len(documents)
    assert data.python_text() == documents
    assert len(data.python_text(min_chars=1000)) < len(documents)
    assert capsys.readouterr() == ("", "") and len(recwarn) == 0


@pytest.mark.slow
def test_python_text_in_a_fresh_interpreter_prints_and_warns_nothing():
    code = "import utils.data as d; docs = d.python_text(); assert len(docs) > 1000"
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


def test_make_spirals():
    X, y = data.make_spirals(n_per_class=50, n_classes=4, seed=1)
    assert X.shape == (200, 2) and X.dtype == np.float32 and np.abs(X).max() < 2
    assert np.bincount(y).tolist() == [50] * 4
    X2, y2 = data.make_spirals(n_per_class=50, n_classes=4, seed=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, data.make_spirals(n_per_class=50, n_classes=4, seed=2)[0])


@pytest.mark.slow
def test_make_shapes32():
    (x_train, y_train), (x_test, y_test) = data.make_shapes32(n=200, seed=3)
    assert x_train.shape == (160, 32, 32, 3) and x_test.shape == (40, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(np.concatenate([y_train, y_test])).tolist() == [20] * 10
    assert x_train.std() > 30  # real images, not blank
    (x_again, y_again), _ = data.make_shapes32(n=200, seed=3)
    np.testing.assert_array_equal(x_train, x_again)
    np.testing.assert_array_equal(y_train, y_again)
    assert not np.array_equal(x_train, data.make_shapes32(n=200, seed=4)[0][0])
    # Colour says nothing about the class: mean colour per class is about the same.
    means = np.array([x_train[y_train == k].mean() for k in range(10)])
    assert means.std() < 15
