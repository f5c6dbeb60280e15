"""Bundled datasets: real data that ships inside an installed package (scikit-learn, plotly)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import numpy as np
    import pandas as pd


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
