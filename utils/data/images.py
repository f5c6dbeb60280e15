"""One call for "some images": the real dataset when possible, else its offline stand-in, said plainly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from utils.data.bundled import load_digits
from utils.data.downloads import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
)
from utils.data.generated import SHAPES32_CLASSES, make_shapes32
from utils.data.registry import DatasetUnavailable, _dataset, offline
from utils.data.store import is_cached

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import numpy as np

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
