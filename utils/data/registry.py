"""The registry of datasets (source, licence, size, checksums, offline stand-in), and where their data lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from utils import settings

# --------------------------------------------------------------------------------------------
# Where data lives, and whether the network may be used
# --------------------------------------------------------------------------------------------


def _resolve_data_dir() -> Path:
    """Return the cache directory's path without creating it (see :func:`data_dir`)."""
    return settings.data_dir()


def data_dir() -> Path:
    """Return the one cache directory for downloaded data, creating it if needed.

    ``$COURSE_DATA_DIR`` if set; else ``/content/course-data`` on Colab; else
    ``~/.cache/dl-course/data`` (read by :func:`utils.settings.data_dir`). Each download dataset
    gets a sub-folder named after it.
    """
    path = _resolve_data_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """Return True when ``$COURSE_OFFLINE`` is on (1, true, yes, on): then nothing touches the network.

    Read by :func:`utils.settings.offline`; a value that is neither on nor off is an error.
    """
    return settings.offline()


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
