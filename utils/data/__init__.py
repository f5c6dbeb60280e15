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

The package is cut along those lines: :mod:`~utils.data.registry` (the datasets, where their
data lives), :mod:`~utils.data.store` (checksums, verification, downloads and the mirror),
:mod:`~utils.data.downloads` (the download datasets' loaders), :mod:`~utils.data.bundled`,
:mod:`~utils.data.pytext` (Python's text), :mod:`~utils.data.generated`,
:mod:`~utils.data.images` (:func:`load_images`) and :mod:`~utils.data.cli` (``python -m
utils.data``). Every name is re-exported here, so ``utils.data.load_mnist`` and the rest are
used as before; to replace a function in a test, patch it in the module that defines it, where
its callers look it up.
"""

from __future__ import annotations

# Every public name, from the module that defines it; ``x as x``: the private names tests and the
# offline rehearsal reach into (a cache to clear, the folder without creating it, the image sets).
from utils.data.bundled import load_digits, load_gapminder, load_sample_photos, load_tips
from utils.data.cli import main, status
from utils.data.downloads import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    imdb_word_index,
    load_cifar10,
    load_fashion_mnist,
    load_imdb,
    load_mnist,
)
from utils.data.generated import SHAPES32_CLASSES, make_shapes32, make_spirals
from utils.data.images import _IMAGE_SETS as _IMAGE_SETS
from utils.data.images import ImageData, load_images
from utils.data.pytext import DOCSTRING_FAMILIES, docstring_families, python_docstrings, python_text
from utils.data.pytext import _python_documents as _python_documents
from utils.data.pytext import _python_module_docstrings as _python_module_docstrings
from utils.data.registry import REGISTRY, Dataset, DatasetUnavailable, RemoteFile, data_dir, offline
from utils.data.registry import _resolve_data_dir as _resolve_data_dir
from utils.data.store import _VERIFIED as _VERIFIED
from utils.data.store import fetch, is_cached

__all__ = [
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
]
