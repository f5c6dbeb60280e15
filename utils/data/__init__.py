"""Datasets for the course: one registry, one cache directory, checksummed downloads, offline stand-ins.

Every dataset the course uses is listed in :data:`REGISTRY` with where it comes from, its licence,
its size and (for downloads) the checksum its publisher or Keras publishes. Three kinds:

- ``download``: the full public datasets (MNIST, Fashion-MNIST, CIFAR-10, IMDB). :func:`fetch`
  downloads them once into :func:`data_dir`, verifies every byte against the checksum and reuses
  the verified copy afterwards without touching the network. A corrupt or partial file is deleted
  and fetched again, never used.
- ``bundled``: real data that ships inside an installed package (scikit-learn's digits and two
  photos, plotly's tips and gapminder tables, the English text that ships with Python). Always
  available, offline too.
- ``generated``: data the course makes itself (:func:`make_spirals`, :func:`make_shapes32`).

Offline (``COURSE_OFFLINE=1``) nothing touches the network: cached downloads are used and
:func:`load_images` falls back to a stand-in and says so. For a room without internet, run
``python -m utils.data fetch --all`` on a machine that has it and copy :func:`data_dir` across
(or point ``COURSE_DATA_MIRROR`` at a local web server or folder holding the files). The copy
needs nothing else: the folder holds only the data files, every file is checked against the
checksums in :data:`REGISTRY` wherever it is, and the check is remembered only in memory.

Files that are not the publisher's (an instructor's own mirror of other versions, the tests'
small fixtures) need their own checksums: ``COURSE_DATA_CHECKSUMS`` names a manifest in
``sha256sum`` format whose entries replace the registry's for the files it lists. Nothing in the
data folder is ever trusted to vouch for itself: the manifest is used only when named.

``import utils.data`` is cheap: NumPy, TensorFlow, pandas, scikit-learn and plotly are imported by
the functions that need them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import inspect
import io
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import numpy as np
    import pandas as pd

__all__ = [
    "REGISTRY",
    "Dataset",
    "DatasetUnavailable",
    "ImageData",
    "RemoteFile",
    "data_dir",
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
    "docstring_families",
    "python_docstrings",
    "python_text",
    "status",
]

# --------------------------------------------------------------------------------------------
# Where data lives, and whether the network may be used
# --------------------------------------------------------------------------------------------


def _resolve_data_dir() -> Path:
    """Return the cache directory's path without creating it (see :func:`data_dir`)."""
    chosen = os.environ.get("COURSE_DATA_DIR", "").strip()
    if chosen:
        return Path(chosen).expanduser()
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
        return Path("/content/course-data")
    return Path.home() / ".cache" / "dl-course" / "data"


def data_dir() -> Path:
    """Return the one cache directory for downloaded data, creating it if needed.

    ``$COURSE_DATA_DIR`` if set; else ``/content/course-data`` on Colab; else
    ``~/.cache/dl-course/data``. Each download dataset gets a sub-folder named after it.
    """
    path = _resolve_data_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """Return True when ``$COURSE_OFFLINE`` is 1/true/yes: then nothing touches the network."""
    return os.environ.get("COURSE_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    """One file of a download dataset.

    ``checksum`` is ``"sha256:<hex>"`` or ``"md5:<hex>"``: whichever the publisher (or Keras, for
    its own copies) publishes. ``size`` in bytes, when known, lets a partial file be rejected
    without reading it.
    """

    filename: str
    url: str
    checksum: str
    size: int | None = None


@dataclass(frozen=True)
class Dataset:
    """A registry entry: where a dataset comes from, under which licence, and what replaces it
    offline. ``kind`` is ``"download"``, ``"bundled"`` or ``"generated"``."""

    name: str
    title: str
    kind: str
    licence: str
    homepage: str
    files: tuple[RemoteFile, ...] = ()
    size_bytes: int | None = None
    offline_alternative: str | None = None
    description: str = ""


_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

# Checksums: MNIST, CIFAR-10 and IMDB are the SHA-256 values (and the word index's MD5) in
# Keras's own loaders (keras/src/datasets/*.py). Fashion-MNIST's are the MD5s the Fashion-MNIST
# project publishes in its README; Keras's copies are byte-identical (the SHA-256 values Keras
# now pins for them are the ones others compute for the publisher's files).
REGISTRY: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        title="MNIST handwritten digits",
        kind="download",
        licence="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
        homepage="http://yann.lecun.com/exdb/mnist/",
        files=(
            RemoteFile(
                "mnist.npz",
                _KERAS + "mnist.npz",
                "sha256:731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                11_490_434,
            ),
        ),
        size_bytes=11_490_434,
        offline_alternative="digits",
        description="70,000 greyscale 28×28 handwritten digits (60,000 train, 10,000 test), "
        "in Keras's npz packaging.",
    ),
    "fashion_mnist": Dataset(
        name="fashion_mnist",
        title="Fashion-MNIST clothing images",
        kind="download",
        licence="MIT (Zalando SE)",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        files=(
            RemoteFile(
                "train-labels-idx1-ubyte.gz",
                _KERAS + "train-labels-idx1-ubyte.gz",
                "md5:25c81989df183df01b3e8a0aad5dffbe",
                29_515,
            ),
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                _KERAS + "train-images-idx3-ubyte.gz",
                "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                26_421_880,
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz",
                _KERAS + "t10k-labels-idx1-ubyte.gz",
                "md5:bb300cfdad3c16e7a12a480ee83cd310",
                5_148,
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz",
                _KERAS + "t10k-images-idx3-ubyte.gz",
                "md5:bef4ecab320f06d8554ea6380940ec79",
                4_422_102,
            ),
        ),
        size_bytes=30_878_645,
        offline_alternative="digits",
        description="70,000 greyscale 28×28 photos of 10 kinds of clothing (60,000 train, "
        "10,000 test), as four gzip-compressed IDX files.",
    ),
    "cifar10": Dataset(
        name="cifar10",
        title="CIFAR-10 tiny colour photos",
        kind="download",
        licence="No licence stated; the CIFAR page asks you to cite Krizhevsky (2009), "
        "'Learning Multiple Layers of Features from Tiny Images'",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        files=(
            RemoteFile(
                "cifar-10-python.tar.gz",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "sha256:6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                170_498_071,
            ),
        ),
        size_bytes=170_498_071,
        offline_alternative="shapes32",
        description="60,000 colour 32×32 photos in 10 classes (50,000 train, 10,000 test), "
        "the 'python version' archive of pickled batches.",
    ),
    "imdb": Dataset(
        name="imdb",
        title="IMDB movie-review sentiment",
        kind="download",
        licence="No licence stated; Large Movie Review Dataset, Maas et al. (ACL 2011), "
        "published for research: cite the paper",
        homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
        files=(
            RemoteFile(
                "imdb.npz",
                _KERAS + "imdb.npz",
                "sha256:69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
                17_464_789,
            ),
            RemoteFile(
                "imdb_word_index.json",
                _KERAS + "imdb_word_index.json",
                "md5:bfafd718b763782e994055a2d397834f",
                1_641_221,
            ),
        ),
        size_bytes=19_106_010,
        offline_alternative="python_text",
        description="50,000 movie reviews labelled positive or negative (25,000 train, 25,000 "
        "test), as word-index sequences, with the word index.",
    ),
    "digits": Dataset(
        name="digits",
        title="scikit-learn handwritten digits (8×8)",
        kind="bundled",
        licence="CC BY 4.0 (UCI ML Repository, Optical Recognition of Handwritten Digits, "
        "Alpaydin & Kaynak 1998); ships with scikit-learn",
        homepage="https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
        description="1,797 real handwritten digits, 8×8 pixels of 17 grey levels.",
    ),
    "sample_photos": Dataset(
        name="sample_photos",
        title="scikit-learn sample photos",
        kind="bundled",
        licence="CC BY 2.0 (Flickr: danielbuechele for china.jpg, vultilion for flower.jpg); "
        "ships with scikit-learn",
        homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_sample_images.html",
        description="Two colour JPEG photos of 427×640 pixels: a Chinese temple and a flower.",
    ),
    "tips": Dataset(
        name="tips",
        title="Restaurant tips",
        kind="bundled",
        licence="No licence stated; from Bryant & Smith (1995), 'Practical Data Analysis: "
        "Case Studies in Business Statistics'; ships with plotly",
        homepage="https://vincentarelbundock.github.io/Rdatasets/doc/reshape2/tips.html",
        description="244 restaurant bills with tip, party size, day and time: a small table "
        "with numeric and categorical columns.",
    ),
    "gapminder": Dataset(
        name="gapminder",
        title="Gapminder life expectancy, GDP and population",
        kind="bundled",
        licence="Data from Gapminder.org; this excerpt (Jennifer Bryan's) is released under "
        "CC0; ships with plotly",
        homepage="https://www.gapminder.org/data/",
        description="1,704 rows: 142 countries every five years from 1952 to 2007.",
    ),
    "python_text": Dataset(
        name="python_text",
        title="English text shipped with Python",
        kind="bundled",
        licence="PSF License (Python's documentation and docstrings)",
        homepage="https://docs.python.org/3/",
        description="About 1,500 documents and 1.3 M characters of real English: the pydoc "
        "help topics and the standard library's docstrings.",
    ),
    "spirals": Dataset(
        name="spirals",
        title="Interleaved spirals (generated)",
        kind="generated",
        licence="Generated by the course: no restrictions",
        homepage="",
        description="Points on K interleaved 2-D spiral arms, one class per arm: a toy set no "
        "straight line can separate.",
    ),
    "shapes32": Dataset(
        name="shapes32",
        title="Coloured shapes 32×32 (generated)",
        kind="generated",
        licence="Generated by the course: no restrictions",
        homepage="",
        description="32×32 colour images of 10 kinds of shape with random colours, sizes, "
        "positions, tilts, backgrounds, noise and specks: CIFAR-10's offline stand-in.",
    ),
}

# How a learner calls each stand-in (named in error messages and descriptions).
_LOADER_CALLS: dict[str, str] = {
    "mnist": "utils.data.load_mnist()",
    "fashion_mnist": "utils.data.load_fashion_mnist()",
    "cifar10": "utils.data.load_cifar10()",
    "imdb": "utils.data.load_imdb()",
    "digits": "utils.data.load_digits()",
    "sample_photos": "utils.data.load_sample_photos()",
    "tips": "utils.data.load_tips()",
    "gapminder": "utils.data.load_gapminder()",
    "python_text": "utils.data.python_text()",
    "spirals": "utils.data.make_spirals()",
    "shapes32": "utils.data.make_shapes32()",
}

# Where a bundled dataset comes from: the package that must be installed for it.
_BUNDLED_IN: dict[str, str | None] = {
    "digits": "sklearn",
    "sample_photos": "sklearn",
    "tips": "plotly",
    "gapminder": "plotly",
    "python_text": None,
}


class DatasetUnavailable(RuntimeError):
    """A download dataset is neither in the cache nor fetchable right now.

    The message names the dataset, the reason and what to do instead. The parts are also
    attributes: ``dataset``, ``reason`` and ``alternative`` (a registry name or None).
    """

    def __init__(self, dataset: str, reason: str, alternative: str | None = None) -> None:
        self.dataset = dataset
        self.reason = reason
        self.alternative = alternative
        super().__init__(_unavailable_message(dataset, reason, alternative))


def _unavailable_message(name: str, reason: str, alternative: str | None) -> str:
    ds = REGISTRY.get(name)
    title = ds.title if ds else name
    folder = _resolve_data_dir()
    advice = []
    if alternative:
        alt = REGISTRY.get(alternative)
        what = f": {alt.title}" if alt else ""
        advice.append(f"Use {_LOADER_CALLS.get(alternative, alternative)} instead (offline stand-in{what})")
    advice.append(
        f"run `python -m utils.data fetch {name}` on a machine with internet and copy the folder "
        f"{folder} to the same place here (or set COURSE_DATA_DIR to where you put it)"
    )
    return f"{title} ({name}) is not available: {reason}. " + ", or ".join(advice) + "."


def _dataset(name: str) -> Dataset:
    key = name.strip().lower().replace("-", "_")
    if key not in REGISTRY:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {', '.join(REGISTRY)}.")
    return REGISTRY[key]


def _folder(ds: Dataset) -> Path:
    return _resolve_data_dir() / ds.name


# --------------------------------------------------------------------------------------------
# Checksums from a manifest (COURSE_DATA_CHECKSUMS)
# --------------------------------------------------------------------------------------------

# Manifest path -> ((size, mtime_ns), parsed entries): re-read only when the file changes.
_MANIFESTS: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}


def _read_manifest(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``/``md5sum`` style manifest: ``<hex>  <name>`` per line.

    ``<name>`` is a file name (``mnist.npz``) or ``<dataset>/<file name>``; a leading ``*``
    (binary mode) and ``./`` are ignored, as are blank lines and lines starting with ``#``.
    64 hex digits are SHA-256, 32 are MD5. Returns name -> ``"sha256:<hex>"``/``"md5:<hex>"``.
    """
    entries: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        hexdigest, _, name = line.partition(" ")
        name = name.strip().lstrip("*").removeprefix("./")
        algorithm = {64: "sha256", 32: "md5"}.get(len(hexdigest))
        try:
            int(hexdigest, 16)
        except ValueError:
            algorithm = None
        if algorithm is None or not name:
            raise ValueError(
                f"{path}, line {number}: expected '<sha256 or md5 hex digest>  <file name>', got {raw!r}"
            )
        entries[name] = f"{algorithm}:{hexdigest.lower()}"
    return entries


def _manifest() -> tuple[Path, dict[str, str]] | None:
    """The manifest named by ``$COURSE_DATA_CHECKSUMS`` and its entries, or None when unset."""
    chosen = os.environ.get("COURSE_DATA_CHECKSUMS", "").strip()
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    try:
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        cached = _MANIFESTS.get(str(path))
        if cached is None or cached[0] != key:
            cached = (key, _read_manifest(path))
            _MANIFESTS[str(path)] = cached
    except OSError as error:
        raise ValueError(
            f"COURSE_DATA_CHECKSUMS is set to {chosen!r}, which cannot be read ({error.strerror or error}). "
            "Point it at a checksum manifest, or unset it to use the publishers' checksums."
        ) from error
    return path, cached[1]


def _expected_files(ds: Dataset) -> tuple[RemoteFile, ...]:
    """``ds.files`` with the checksums of ``$COURSE_DATA_CHECKSUMS`` where it lists a file.

    A listed file gets the manifest's checksum and no expected size (the manifest gives none:
    the checksum alone decides, so a partial or damaged file is still rejected). Files the
    manifest does not list keep the registry's checksum and size.
    """
    found = _manifest()
    if found is None:
        return ds.files
    _, entries = found
    files = []
    for rf in ds.files:
        checksum = entries.get(f"{ds.name}/{rf.filename}") or entries.get(rf.filename)
        files.append(rf if checksum is None else dataclasses.replace(rf, checksum=checksum, size=None))
    return tuple(files)


def _checksum_source(ds: Dataset, rf: RemoteFile) -> str:
    """Where the checksum ``rf`` is checked against comes from, for messages."""
    registry = {f.filename: f.checksum for f in ds.files}
    found = _manifest()
    if found is not None and registry.get(rf.filename) != rf.checksum:
        return f"the manifest {found[0]} (COURSE_DATA_CHECKSUMS)"
    return "the course's registry"


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------

# (path, size, mtime_ns, inode, expected checksum) -> verified. A file that changes on disk gets a
# new key, so repeated checks of an unchanged file cost one stat() call.
_VERIFIED: dict[tuple[str, int, int, int, str], bool] = {}


def _digest(path: Path, algorithm: str) -> str:
    if algorithm == "md5":
        h = hashlib.md5(usedforsecurity=False)
    elif algorithm == "sha256":
        h = hashlib.sha256()
    else:
        raise ValueError(f"Unsupported checksum algorithm {algorithm!r} (use sha256 or md5).")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _split_checksum(checksum: str) -> tuple[str, str]:
    algorithm, _, hexdigest = checksum.partition(":")
    if not hexdigest:
        raise ValueError(f"Checksum {checksum!r} must look like 'sha256:<hex>' or 'md5:<hex>'.")
    return algorithm.lower(), hexdigest.lower()


def _check_file(path: Path, rf: RemoteFile) -> str | None:
    """Return None if ``path`` holds exactly ``rf``'s bytes, else a short reason why not."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    if rf.size is not None and st.st_size != rf.size:
        return f"size {st.st_size:,} bytes, expected {rf.size:,}"
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino, rf.checksum)
    if _VERIFIED.get(key):
        return None
    algorithm, expected = _split_checksum(rf.checksum)
    actual = _digest(path, algorithm)
    if actual != expected:
        return f"{algorithm} {actual}, expected {expected}"
    _VERIFIED[key] = True
    return None


def _remember_verified(path: Path, rf: RemoteFile) -> None:
    """Record that ``path`` (just renamed from a verified ``.part``) holds ``rf``'s bytes."""
    st = path.stat()
    _VERIFIED[(str(path), st.st_size, st.st_mtime_ns, st.st_ino, rf.checksum)] = True


def is_cached(name: str) -> bool:
    """Return True if the dataset can be used without the network right now.

    For a download dataset: all its files are in the cache and verified against their checksums
    (the registry's, or ``$COURSE_DATA_CHECKSUMS``'s where it lists a file). Results are
    remembered in memory by path, size and modification time, so repeated calls are cheap.
    Bundled datasets: True if the package that ships them is installed. Generated datasets:
    always True.
    """
    ds = _dataset(name)
    if ds.kind == "download":
        folder = _folder(ds)
        return all(_check_file(folder / rf.filename, rf) is None for rf in _expected_files(ds))
    if ds.kind == "bundled":
        package = _BUNDLED_IN.get(ds.name)
        return package is None or importlib.util.find_spec(package) is not None
    return True


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------


def _candidate_urls(ds: Dataset, rf: RemoteFile) -> list[str]:
    urls = []
    mirror = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    if mirror:
        if "://" not in mirror:  # a folder: a USB stick, a network share, a copy of data_dir()
            mirror = Path(mirror).expanduser().resolve().as_uri()
        base = mirror.rstrip("/")
        # A flat folder of files, or a copy of data_dir() (one sub-folder per dataset).
        urls += [f"{base}/{rf.filename}", f"{base}/{ds.name}/{rf.filename}"]
    urls.append(rf.url)
    return urls


class _Progress:
    """A one-line text progress bar on stdout (``\\r`` redraws it in terminals and notebooks)."""

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.last = 0.0

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.2):
            return
        self.last = now
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            line = f"\r{self.label} [{bar:<30}] {frac:6.1%} {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            line = f"\r{self.label} {done / 1e6:.1f} MB"
        sys.stdout.write(line + ("\n" if final else ""))
        sys.stdout.flush()


def _download(url: str, part: Path, rf: RemoteFile, timeout: float, progress: bool) -> None:
    """Stream ``url`` into ``part``. Raises OSError (URLError, timeouts, HTTP errors) on failure."""
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "dl-course-data/1.0"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = rf.size or (int(length) if length and length.isdigit() else None)
        bar = _Progress(f"Downloading {rf.filename}", total, progress)
        done = 0
        with open(part, "wb") as out:
            while True:
                block = response.read(1 << 16)
                if not block:
                    break
                done += len(block)
                if rf.size is not None and done > rf.size:
                    raise OSError(f"{url} sent more than the expected {rf.size:,} bytes")
                out.write(block)
                bar.update(done)
        bar.update(done, final=True)


def _remove_stale_parts(folder: Path, filename: str, older_than: float = 600.0) -> None:
    """Delete ``filename.*.part`` files left behind by an interrupted download."""
    now = time.time()
    for stale in folder.glob(f"{filename}.*.part"):
        with contextlib.suppress(OSError):
            if now - stale.stat().st_mtime > older_than:
                stale.unlink()


def _reason_text(error: BaseException) -> str:
    import urllib.error

    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, FileNotFoundError):
        return "no such file in the mirror folder"  # a file:// mirror
    if isinstance(error, urllib.error.URLError):
        return f"network unreachable ({error.reason})"
    if isinstance(error, TimeoutError):
        return "no answer within the time limit (network unreachable or too slow)"
    return str(error) or type(error).__name__


def fetch(name: str, *, force: bool = False, progress: bool = True, timeout: float = 10.0) -> dict[str, Path]:
    """Make sure a download dataset is in the cache, verified; return its paths by filename.

    A file already cached and verified is used as is: no network. A cached file that is partial
    or corrupt (wrong size or checksum) is deleted and downloaded again. Each download goes to a
    ``.part`` file, is verified, then renamed into place, so a half-written file is never used.
    With ``$COURSE_DATA_MIRROR`` set (a base URL), ``<mirror>/<filename>`` and
    ``<mirror>/<dataset>/<filename>`` are tried before the official URL (a local folder works
    too: a path or a ``file://`` URL). With ``$COURSE_DATA_CHECKSUMS`` set (a manifest, see
    :func:`_read_manifest`), the files it lists are checked against its checksums instead of the
    registry's; everything else is checked as before. ``force=True``
    downloads again even when the cache is good (the old copy stays until the new one verifies).
    ``timeout`` (seconds) bounds each connection attempt and each read, so a missing network
    fails fast. Bundled and generated datasets need no download: their result is ``{}``.

    Raises :class:`DatasetUnavailable` when offline (``$COURSE_OFFLINE``) and not cached, when
    the network is unreachable, or when the downloaded bytes do not match the checksum (the bad
    file is deleted; the message gives the expected and actual checksums).
    """
    ds = _dataset(name)
    if ds.kind != "download":
        return {}
    folder = _folder(ds)
    paths: dict[str, Path] = {}
    for rf in _expected_files(ds):
        path = folder / rf.filename
        problem = _check_file(path, rf)
        if problem is None and not force:
            paths[rf.filename] = path
            continue
        note = ""
        if problem not in (None, "missing"):
            # Never used: a partial or damaged file goes, and is fetched again below.
            with contextlib.suppress(OSError):
                path.unlink()
            note = f" (the cached {rf.filename} was damaged: {problem}; it has been deleted)"
        if offline():
            if problem is None:  # force=True offline: keep using the good copy
                paths[rf.filename] = path
                continue
            raise DatasetUnavailable(
                ds.name,
                f"the course is offline (COURSE_OFFLINE is set) and {rf.filename} is not in the cache{note}",
                ds.offline_alternative,
            )
        paths[rf.filename] = _download_verified(ds, rf, path, timeout, progress, note)
    return paths


def _download_verified(
    ds: Dataset, rf: RemoteFile, path: Path, timeout: float, progress: bool, note: str
) -> Path:
    import http.client

    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(path.parent, rf.filename)
    part = path.with_name(f"{rf.filename}.{os.getpid()}.part")
    failures: list[str] = []
    mismatch = False
    for url in _candidate_urls(ds, rf):
        try:
            _download(url, part, rf, timeout, progress)
            problem = _check_file(part, rf)
            if problem is None:
                os.replace(part, path)
                _remember_verified(path, rf)
                return path
            mismatch = True
            failures.append(f"{url}: sent the wrong bytes ({problem}, per {_checksum_source(ds, rf)})")
        except (OSError, ValueError, http.client.HTTPException) as error:
            # URLError, HTTPError and timeouts are OSErrors; a cut-off response is an HTTPException.
            failures.append(f"{url}: {_reason_text(error)}")
        finally:
            with contextlib.suppress(OSError):
                part.unlink()
    what = "the download did not match its checksum" if mismatch else "it could not be downloaded"
    raise DatasetUnavailable(
        ds.name,
        f"{rf.filename} is not in the cache{note} and {what} ({'; '.join(failures)})",
        ds.offline_alternative,
    )


# --------------------------------------------------------------------------------------------
# Loaders of the download datasets (the genuine file formats, parsed here)
# --------------------------------------------------------------------------------------------


def load_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return MNIST as ``((x_train, y_train), (x_test, y_test))``, exactly as Keras does.

    ``x``: uint8 (N, 28, 28), 0-255; ``y``: uint8 (N,), 0-9. Downloads 11 MB once.
    Raises :class:`DatasetUnavailable` if it is neither cached nor fetchable.
    """
    import numpy as np

    path = fetch("mnist")["mnist.npz"]
    with np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def _read_idx(path: Path) -> np.ndarray:
    """Return the array in a (gzip-compressed) IDX file, the format of (Fashion-)MNIST."""
    import gzip

    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes:
        raise ValueError(f"{path.name} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    return data.reshape(dims).astype(np.dtype(dtypes[raw[2]]).newbyteorder("="))


def load_fashion_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``, as Keras does.

    ``x``: uint8 (N, 28, 28); ``y``: uint8 (N,), 0-9 (see ``FASHION_MNIST_CLASSES``).
    Downloads 31 MB once. Raises :class:`DatasetUnavailable` if neither cached nor fetchable.
    """
    paths = fetch("fashion_mnist")
    x_train = _read_idx(paths["train-images-idx3-ubyte.gz"])
    y_train = _read_idx(paths["train-labels-idx1-ubyte.gz"])
    x_test = _read_idx(paths["t10k-images-idx3-ubyte.gz"])
    y_test = _read_idx(paths["t10k-labels-idx1-ubyte.gz"])
    return (x_train, y_train), (x_test, y_test)


def load_cifar10() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return CIFAR-10 as ``((x_train, y_train), (x_test, y_test))``, as Keras does.

    ``x``: uint8 (N, 32, 32, 3), channels last; ``y``: uint8 (N, 1), 0-9 (see
    ``CIFAR10_CLASSES``). Read straight from the verified archive (batches ``data_batch_1`` to
    ``_5`` for training, ``test_batch`` for testing). Downloads 170 MB once.
    Raises :class:`DatasetUnavailable` if neither cached nor fetchable.
    """
    import pickle
    import tarfile

    import numpy as np

    path = fetch("cifar10")["cifar-10-python.tar.gz"]
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    wanted = {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch"}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            base = member.name.rsplit("/", 1)[-1]
            if base not in wanted or not member.isfile():
                continue
            with archive.extractfile(member) as f:  # type: ignore[union-attr]
                # Safe to unpickle: the archive's checksum was verified before we opened it.
                batch = pickle.load(f, encoding="bytes")
            images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch[b"labels"], dtype=np.uint8).reshape(-1, 1)
            batches[base] = (images.transpose(0, 2, 3, 1), labels)
    missing = wanted - set(batches)
    if missing:
        raise ValueError(f"{path.name} lacks {', '.join(sorted(missing))}")
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), batches["test_batch"]


def load_imdb(
    num_words: int | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return IMDB reviews as ``((x_train, y_train), (x_test, y_test))``, as Keras does.

    Each ``x`` is an object array of lists of word indices: every review starts with 1 (start),
    words are their frequency rank + 3 (so 3 is the most frequent word), 0 is left for padding
    and 2 marks a word outside the ``num_words`` most frequent (out of vocabulary). ``y``: 0
    (negative) or 1 (positive). Both splits are shuffled with Keras's seed (113), so the order
    matches ``keras.datasets.imdb.load_data``. :func:`imdb_word_index` maps words to ranks.
    Downloads 19 MB once. Raises :class:`DatasetUnavailable` if neither cached nor fetchable.
    """
    import numpy as np

    start_char, oov_char, index_from = 1, 2, 3
    path = fetch("imdb")["imdb.npz"]
    # Safe to unpickle (the sequences are object arrays): the checksum was verified.
    with np.load(path, allow_pickle=True) as f:
        splits = [(f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])]
    rng = np.random.RandomState(113)
    shuffled = []
    for x, y in splits:
        order = np.arange(len(x))
        rng.shuffle(order)
        shuffled.append(([[start_char] + [w + index_from for w in x[i]] for i in order], y[order]))
    result = []
    for x, y in shuffled:
        if num_words:
            x = [[w if w < num_words else oov_char for w in s] for s in x]
        seqs = np.empty(len(x), dtype=object)
        seqs[:] = x
        result.append((seqs, y))
    return result[0], result[1]


def imdb_word_index() -> dict[str, int]:
    """Return IMDB's word index: word -> frequency rank (1 = most frequent).

    In :func:`load_imdb`'s sequences a word of rank ``r`` appears as ``r + 3``.
    """
    import json

    path = fetch("imdb")["imdb_word_index.json"]
    with open(path, encoding="utf-8") as f:
        return json.load(f)


MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
SHAPES32_CLASSES = [
    "disk",
    "square",
    "triangle",
    "diamond",
    "plus",
    "ring",
    "cross",
    "frame",
    "bar",
    "corner",
]

# --------------------------------------------------------------------------------------------
# Bundled datasets
# --------------------------------------------------------------------------------------------


def load_digits() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return scikit-learn's 1,797 handwritten digits as ``((x_train, y_train), (x_test, y_test))``.

    ``x``: float32 (N, 8, 8) in [0, 1] (the 17 grey levels 0-16 divided by 16); ``y``: int64
    (N,), 0-9. A fixed stratified split: 1,437 training and 360 test images (random_state=0).
    """
    import numpy as np
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=360, stratify=y, random_state=0)
    return (x_train, y_train), (x_test, y_test)


def _sklearn_images_dir() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("scikit-learn is not installed; `pip install scikit-learn` to get it.")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "images"


def load_sample_photos() -> dict[str, np.ndarray]:
    """Return scikit-learn's two sample photos: ``{"china": ..., "flower": ...}``.

    Each is a uint8 array (427, 640, 3), RGB. Decoded with TensorFlow (imported on first use).
    """
    import numpy as np

    from utils.env import import_tensorflow

    tf = import_tensorflow()
    folder = _sklearn_images_dir()
    photos = {}
    for name in ("china", "flower"):
        data = (folder / f"{name}.jpg").read_bytes()
        photos[name] = np.asarray(tf.io.decode_jpeg(data, channels=3).numpy(), dtype=np.uint8)
    return photos


def load_tips() -> pd.DataFrame:
    """Return the restaurant-tips table (244 rows) that ships with plotly, as a pandas DataFrame.

    Columns: total_bill, tip, sex, smoker, day, time, size.
    """
    import plotly.data

    return plotly.data.tips()


def load_gapminder() -> pd.DataFrame:
    """Return the Gapminder table (1,704 rows) that ships with plotly, as a pandas DataFrame.

    Columns: country, continent, year, lifeExp, pop, gdpPercap, iso_alpha, iso_num.
    """
    import plotly.data

    return plotly.data.gapminder()


# Standard-library modules that do something when imported (print, open a browser, need a
# display, write files) or hold no prose worth reading; their sub-modules are skipped too.
_TEXT_SKIP = frozenset(
    {
        "antigravity",
        "this",
        "idlelib",
        "tkinter",
        "turtle",
        "turtledemo",
        "test",
        "tests",
        "lib2to3",
        "readline",
        "rlcompleter",
        "ensurepip",
        "venv",
        "pydoc_data",
        "site",
        "sitecustomize",
        "usercustomize",
        "distutils",
        "curses",
        "pty",
        "tty",
        "encodings",
        "msilib",
        "winreg",
        "winsound",
        "msvcrt",
        "nt",
    }
)


def _skip_text_module(name: str) -> bool:
    return any(p.startswith(("_", "test")) or p in _TEXT_SKIP for p in name.split("."))


@functools.lru_cache(maxsize=1)
def _stdlib_docstrings() -> tuple[tuple[str, str], ...]:
    """(module name, cleaned docstring) for every standard-library module the corpus reads, in order.

    One walk serves both :func:`python_text` and :func:`python_docstrings`, so the labelled texts
    are always among the unlabelled ones. Every module is imported before any docstring is read:
    importing a module can add docstrings to another (on Python 3.13 asyncio's C types get theirs).
    """
    import pkgutil

    quiet = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        warnings.simplefilter("ignore")
        modules = []
        queue = sorted(n for n in sys.stdlib_module_names if not _skip_text_module(n))
        while queue:
            name = queue.pop(0)
            try:
                module = importlib.import_module(name)
            except (Exception, SystemExit):  # absent on this platform, or refuses to import
                continue
            modules.append(module)
            if hasattr(module, "__path__"):  # a package: read its sub-modules too
                subs = sorted(info.name for info in pkgutil.iter_modules(module.__path__, name + "."))
                queue[0:0] = [s for s in subs if not _skip_text_module(s)]
        pairs = []
        for module in modules:
            for text in _docstrings(module):
                cleaned = inspect.cleandoc(text).strip()
                if cleaned:
                    pairs.append((module.__name__, cleaned))
    return tuple(pairs)


@functools.lru_cache(maxsize=1)
def _python_documents() -> tuple[str, ...]:
    """All documents, deduplicated, in a fixed order: pydoc topics, then modules by name."""
    from pydoc_data.topics import topics

    texts = [inspect.cleandoc(topics[key]).strip() for key in sorted(topics)]
    texts += [text for _, text in _stdlib_docstrings()]
    seen: set[str] = set()
    documents = []
    for text in texts:
        if text and text not in seen:
            seen.add(text)
            documents.append(text)
    return tuple(documents)


def _docstrings(module: Any) -> list[str]:
    """The docstrings of a module and of the public classes, functions and methods it defines."""
    found = [module.__doc__] if isinstance(module.__doc__, str) else []
    for key, value in sorted(vars(module).items()):
        if key.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if not (inspect.isclass(value) or inspect.isroutine(value)):
            continue
        if isinstance(value.__doc__, str):
            found.append(value.__doc__)
        if inspect.isclass(value):
            for attr, member in sorted(vars(value).items()):
                if attr.startswith("_"):
                    continue
                if inspect.isroutine(member) or isinstance(member, property):
                    doc = getattr(member, "__doc__", None)
                    if isinstance(doc, str):
                        found.append(doc)
    return found


def python_text(min_chars: int = 200) -> list[str]:
    """Return real English documents that ship with Python, each at least ``min_chars`` long.

    The pydoc help topics (``pydoc_data.topics``) and the docstrings of the standard library's
    modules and of the public classes, functions and methods they define; deduplicated, in a
    fixed order. Reading them imports the standard library quietly (no prints, no warnings),
    skipping modules with side effects (``antigravity``, ``this``, ``tkinter``, tests, ...).
    About 1,500 documents and 1.3 M characters at the default ``min_chars``; under a second
    the first time, instant afterwards.
    """
    return [doc for doc in _python_documents() if len(doc) >= min_chars]


@functools.lru_cache(maxsize=1)
def _python_module_docstrings() -> tuple[tuple[str, str], ...]:
    """(module name, docstring) for every standard-library module the text corpus reads.

    The same walk as :func:`_python_documents`; a text found in more than one module (a
    docstring shared or re-exported) is dropped, since its module is ambiguous.
    """
    pairs = _stdlib_docstrings()
    owners: dict[str, set[str]] = {}
    for name, text in pairs:
        owners.setdefault(text, set()).add(name)
    seen: set[str] = set()
    result = []
    for name, text in pairs:
        if len(owners[text]) == 1 and text not in seen:
            seen.add(text)
            result.append((name, text))
    return tuple(result)


def python_docstrings(min_chars: int = 200) -> list[tuple[str, str]]:
    """Return ``(module_name, docstring)`` pairs from the standard library, each text at least ``min_chars`` long.

    Real labelled English: the label is the module that defines the documented object (for
    example ``"email.message"`` or ``"asyncio.tasks"``), so "which module (or package) is this
    docstring from?" is a classification task whose labels nobody invented. The texts are those
    :func:`python_text` reads (without the pydoc help topics); a text defined in more than one
    module is left out. Deterministic order; quiet (no prints, no warnings).
    """
    return [(name, text) for name, text in _python_module_docstrings() if len(text) >= min_chars]


# Standard-library packages grouped by what they are about: the classes of :func:`docstring_families`.
DOCSTRING_FAMILIES: dict[str, tuple[str, ...]] = {
    "concurrency": ("asyncio", "threading", "multiprocessing", "concurrent", "queue", "subprocess", "sched"),
    "email": ("email", "smtplib", "imaplib", "poplib", "mailbox", "mimetypes"),
    "files": ("pathlib", "os", "shutil", "tarfile", "zipfile", "glob", "tempfile", "gzip", "bz2", "lzma"),
    "logging": ("logging",),
    "network": ("http", "urllib", "socket", "socketserver", "ssl", "ftplib", "nntplib", "wsgiref"),
    "numeric": ("decimal", "math", "statistics", "random", "fractions", "numbers", "cmath"),
    "testing": ("unittest", "doctest", "pdb", "bdb", "traceback"),
    "xml/html": ("xml", "html", "xmlrpc"),
}


def docstring_families(min_chars: int = 80) -> tuple[list[str], np.ndarray, list[str]]:
    """A real, offline text-classification task: which family of the standard library a docstring is from.

    Returns ``(texts, labels, class_names)``: the docstrings of the modules listed in
    :data:`DOCSTRING_FAMILIES` (``asyncio`` and its sub-modules are "concurrency", ``email``
    and ``smtplib`` are "email", ...), each at least ``min_chars`` long, labelled with their
    family's index in ``class_names`` (sorted). About 1,400 texts in 8 classes at the default
    ``min_chars`` on Python 3.11; the exact count depends on the Python version. Nobody wrote
    the labels for this task: a docstring's module is a fact about the code it documents.
    """
    import numpy as np

    class_names = sorted(DOCSTRING_FAMILIES)
    family_of = {m: i for i, f in enumerate(class_names) for m in DOCSTRING_FAMILIES[f]}
    texts, labels = [], []
    for module, text in python_docstrings(min_chars):
        top = module.split(".")[0]
        if top in family_of:
            texts.append(text)
            labels.append(family_of[top])
    return texts, np.asarray(labels, dtype="int64"), class_names


# --------------------------------------------------------------------------------------------
# Generated datasets
# --------------------------------------------------------------------------------------------


def make_spirals(
    n_per_class: int = 200, n_classes: int = 3, noise: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(X, y)``: points on ``n_classes`` interleaved spiral arms, one class per arm.

    ``X``: float32 (n_per_class * n_classes, 2), roughly within [-1, 1]; ``y``: int64 class
    index. Each arm winds 1.5 turns outwards from the centre; ``noise`` is the standard deviation
    of the angle jitter in radians (0.2 is learnable by a small MLP; at 0 the classes never
    overlap). The same ``seed`` gives the same points.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.05, 1.0, n_per_class), n_classes)
    y = np.repeat(np.arange(n_classes), n_per_class)
    angle = 2 * np.pi * (y / n_classes + 1.5 * radius) + rng.normal(0.0, noise, y.size)
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return X.astype(np.float32), y.astype(np.int64)


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of shape ``kind`` in unit coordinates (the shape fits in [-1, 1]²)."""
    import numpy as np

    a, b = np.abs(u), np.abs(v)
    r = np.hypot(u, v)
    if kind == 0:  # disk
        return r <= 1.0
    if kind == 1:  # square
        return np.maximum(a, b) <= 0.8
    if kind == 2:  # triangle, apex up
        return (v >= -0.75) & (v <= 0.95 - 1.9 * a)
    if kind == 3:  # diamond
        return a + b <= 1.0
    if kind == 4:  # plus
        return ((a <= 0.28) & (b <= 1.0)) | ((b <= 0.28) & (a <= 1.0))
    if kind == 5:  # ring
        return (r <= 1.0) & (r >= 0.55)
    if kind == 6:  # diagonal cross
        p, q = np.abs(u + v) / np.sqrt(2), np.abs(u - v) / np.sqrt(2)
        return ((p <= 0.22) & (q <= 1.0)) | ((q <= 0.22) & (p <= 1.0))
    if kind == 7:  # hollow square
        m = np.maximum(a, b)
        return (m <= 0.85) & (m >= 0.5)
    if kind == 8:  # bar
        return (a <= 1.0) & (b <= 0.3)
    if kind == 9:  # corner (an L)
        return ((u >= -0.8) & (u <= -0.3) & (v >= -0.8) & (v <= 0.9)) | (
            (u >= -0.8) & (u <= 0.9) & (v >= -0.8) & (v <= -0.3)
        )
    raise ValueError(f"no shape {kind}")


def _render_shape(kind: int, rng: np.random.Generator) -> np.ndarray:
    """One 32×32×3 uint8 image of shape ``kind``: random colours, place, size, tilt and noise."""
    import numpy as np

    size, ss = 32, 2  # render at 2× and average 2×2 blocks: smooth (anti-aliased) edges
    grid = (np.arange(size * ss) + 0.5) / ss
    xx, yy = np.meshgrid(grid, grid)
    scale = rng.uniform(5.5, 11.0)
    cx, cy = rng.uniform(scale + 1, size - scale - 1, 2)
    tilt = np.deg2rad(rng.uniform(-15, 15))
    dx, dy = (xx - cx) / scale, (cy - yy) / scale
    u = np.cos(tilt) * dx + np.sin(tilt) * dy
    v = -np.sin(tilt) * dx + np.cos(tilt) * dy
    cover = _shape_mask(kind, u, v).astype(np.float32)
    cover = cover.reshape(size, ss, size, ss).mean(axis=(1, 3))[..., None]

    background = rng.uniform(0, 255, 3)
    while True:  # a foreground colour that stands out from the background, but not always much
        foreground = rng.uniform(0, 255, 3)
        if np.linalg.norm(foreground - background) > 90:
            break
    ramp = np.linspace(-1, 1, size)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    image = background + rng.uniform(0, 40) * gradient[..., None] * rng.uniform(-1, 1, 3)
    image = image * (1 - cover) + foreground * cover
    for _ in range(rng.integers(0, 4)):  # small specks of colour that are not the shape
        sx, sy = rng.integers(0, size - 2, 2)
        image[sy : sy + 2, sx : sx + 2] = rng.uniform(0, 255, 3)
    image += rng.normal(0, rng.uniform(3, 12), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def make_shapes32(
    n: int = 5000, seed: int = 0, test_fraction: float = 0.2
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``n`` generated 32×32 colour images of 10 shapes as ``((x_train, y_train), (x_test,
    y_test))``: CIFAR-10's offline stand-in, in its layout.

    ``x``: uint8 (N, 32, 32, 3); ``y``: int64 (N,), 0-9 (``SHAPES32_CLASSES``: disk, square,
    triangle, diamond, plus, ring, cross, frame, bar, corner). Colours, size, position, a tilt of
    up to 15°, background gradient, specks and noise vary at random, so colour says nothing about
    the class: logistic regression scores about 14 %, while a small CNN (three convolutions)
    reaches about 70 % test accuracy after 12 epochs on 3,000 images and about 96 % on 10,000.
    Generating 1,000 images takes about 0.25 s. Classes are balanced; ``test_fraction`` of the images form the test split. The same ``seed`` gives the
    same images.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    images = (
        np.stack([_render_shape(int(k), rng) for k in labels]) if n else np.zeros((0, 32, 32, 3), np.uint8)
    )
    n_test = int(round(n * test_fraction))
    n_train = n - n_test
    return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])


# --------------------------------------------------------------------------------------------
# One call for "some images": the real dataset when possible, else its stand-in
# --------------------------------------------------------------------------------------------


@dataclass
class ImageData:
    """Images ready for a lesson, and an honest note of where they came from.

    ``x_train``/``x_test`` are uint8 in 0-255 whatever the source (greyscale (N, H, W), colour
    (N, H, W, 3)); ``y_train``/``y_test`` are int64 (N,). ``stand_in`` is True when an offline
    stand-in replaced the dataset asked for, and ``description`` says so in a sentence.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    stand_in: bool
    description: str

    def __repr__(self) -> str:
        return (
            f"ImageData(name={self.name!r}, x_train={self.x_train.shape}, "
            f"x_test={self.x_test.shape}, classes={len(self.class_names)}, "
            f"stand_in={self.stand_in})"
        )


_IMAGE_SETS: dict[str, tuple[Any, list[str], str]] = {
    # name -> (loader, class names, what it is, for the description)
    "mnist": (load_mnist, MNIST_CLASSES, "MNIST's 70,000 28×28 handwritten digits"),
    "fashion_mnist": (
        load_fashion_mnist,
        FASHION_MNIST_CLASSES,
        "Fashion-MNIST's 70,000 28×28 clothing photos",
    ),
    "cifar10": (load_cifar10, CIFAR10_CLASSES, "CIFAR-10's 60,000 32×32 colour photos"),
    "digits": (load_digits, MNIST_CLASSES, "scikit-learn's 1,797 real 8×8 handwritten digits"),
    "shapes32": (
        make_shapes32,
        SHAPES32_CLASSES,
        "the course's generated 32×32 colour images of 10 shapes",
    ),
}


def _image_data(name: str, stand_in: bool, description: str) -> ImageData:
    import numpy as np

    loader, classes, _ = _IMAGE_SETS[name]
    (x_train, y_train), (x_test, y_test) = loader()
    if x_train.dtype != np.uint8:  # digits: 0-1 floats -> 0-255 like the others
        x_train = np.rint(x_train * 255).astype(np.uint8)
        x_test = np.rint(x_test * 255).astype(np.uint8)
    return ImageData(
        name=name,
        x_train=x_train,
        y_train=np.asarray(y_train).reshape(-1).astype(np.int64),
        x_test=x_test,
        y_test=np.asarray(y_test).reshape(-1).astype(np.int64),
        class_names=list(classes),
        stand_in=stand_in,
        description=description,
    )


def load_images(preferred: str = "mnist", *, allow_download: bool = True) -> ImageData:
    """Return an image-classification dataset: ``preferred`` if possible, else its stand-in.

    ``preferred`` is ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``, ``"digits"`` or
    ``"shapes32"``. A download dataset is used when it is cached, or fetched when
    ``allow_download`` is true and the course is not offline. Otherwise (or if the download
    fails) its offline alternative is used (digits for the MNISTs, shapes32 for CIFAR-10), with
    ``stand_in=True`` and a ``description`` that says so plainly. Never raises for lack of a
    network.
    """
    ds = _dataset(preferred)
    if ds.name not in _IMAGE_SETS:
        raise ValueError(f"{preferred!r} is not an image dataset. Choose one of: {', '.join(_IMAGE_SETS)}.")
    what = _IMAGE_SETS[ds.name][2]
    if ds.kind != "download":
        return _image_data(ds.name, False, f"Using {what}.")
    why = "is not available offline"
    if is_cached(ds.name) or (allow_download and not offline()):
        try:
            return _image_data(ds.name, False, f"Using {what}.")
        except DatasetUnavailable as error:
            why = f"could not be downloaded ({error.reason})"
    elif not allow_download and not offline():
        why = "is not in the data cache and downloading was not allowed"
    alternative = ds.offline_alternative or "digits"
    alt_what = _IMAGE_SETS[alternative][2]
    title = ds.title.split(" ")[0]
    note = " (digits, not clothes)" if ds.name == "fashion_mnist" else ""
    return _image_data(alternative, True, f"{title} {why}; using {alt_what} instead{note}.")


# --------------------------------------------------------------------------------------------
# Status, and the command line
# --------------------------------------------------------------------------------------------


def _human_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def status() -> list[dict[str, Any]]:
    """Return one row per registry entry, for a table of what can be used here and now.

    Keys: name, title, kind, available (usable without the network right now: a verified cached
    download, an installed package's data, or generated data; ``cached`` is the same value under
    the name :func:`is_cached` uses), size (text) and size_bytes (download size), licence,
    offline_alternative.
    """
    rows = []
    for ds in REGISTRY.values():
        available = is_cached(ds.name)
        rows.append(
            {
                "name": ds.name,
                "title": ds.title,
                "kind": ds.kind,
                "available": available,
                "cached": available,
                "size": _human_size(ds.size_bytes),
                "size_bytes": ds.size_bytes,
                "licence": ds.licence,
                "offline_alternative": ds.offline_alternative,
            }
        )
    return rows


def _status_table() -> str:
    rows = status()
    header = ("name", "kind", "available", "size", "offline stand-in", "title")
    lines = [
        (
            r["name"],
            r["kind"],
            "yes" if r["available"] else "no",
            r["size"],
            r["offline_alternative"] or "-",
            r["title"],
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line).rstrip() for line in lines]
    mode = "offline (COURSE_OFFLINE is set)" if offline() else "online if reachable"
    out.append(f"\nData cache: {_resolve_data_dir()}   mode: {mode}")
    found = _manifest()
    if found is not None:
        out.append(f"Checksums: {found[0]} (COURSE_DATA_CHECKSUMS) for the {len(found[1])} file(s) it lists")
    mirror = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    if mirror:
        out.append(f"Mirror: {mirror} (COURSE_DATA_MIRROR), tried before the official addresses")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """The command line: ``python -m utils.data status`` or ``... fetch NAME [NAME ...] | --all``.

    Returns the exit code: 0 when everything asked for is cached and verified, 1 otherwise.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m utils.data",
        description="The course's datasets: see what is available, fetch downloads into the "
        "cache. For a room without internet: fetch --all into COURSE_DATA_DIR, copy the folder.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="show every dataset and whether it is usable here")
    fetch_cmd = commands.add_parser("fetch", help="download and verify datasets")
    fetch_cmd.add_argument("names", nargs="*", help="dataset names (see status)")
    fetch_cmd.add_argument("--all", action="store_true", help="every download dataset")
    fetch_cmd.add_argument("--force", action="store_true", help="download again even if cached")
    fetch_cmd.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt")
    args = parser.parse_args(argv)

    if args.command == "status":
        try:
            print(_status_table())
        except ValueError as error:  # an unreadable COURSE_DATA_CHECKSUMS manifest
            print(f"FAILED  {error}")
            return 1
        return 0
    names = [d.name for d in REGISTRY.values() if d.kind == "download"] if args.all else args.names
    if not names:
        parser.error("name at least one dataset, or use --all")
    failed = 0
    for name in names:
        try:
            ds = _dataset(name)
            if ds.kind != "download":
                print(f"ok      {ds.name}: {ds.kind}, nothing to download")
                continue
            paths = fetch(ds.name, force=args.force, timeout=args.timeout)
            size = sum(p.stat().st_size for p in paths.values())
            print(f"ok      {ds.name}: {len(paths)} file(s), {_human_size(size)}, verified, in {_folder(ds)}")
        except (DatasetUnavailable, ValueError) as error:
            failed += 1
            print(f"FAILED  {name}: {error}")
    if args.all and not failed:
        print(
            f"\nEverything is in {_resolve_data_dir()}. For a machine without internet, copy that "
            "folder to the same place there, or anywhere and set COURSE_DATA_DIR to it."
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
