"""Loaders of the download datasets (MNIST, Fashion-MNIST, CIFAR-10, IMDB): the genuine file formats,
parsed here from the verified store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from utils.data.store import fetch

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import numpy as np

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
