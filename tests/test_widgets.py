"""Tests of utils.widgets: the pure figure functions directly, and that the builders make working widgets."""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from utils import widgets as W


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(20, 5, size=200), [95.0, 120.0]])  # two clear outliers
    return pd.DataFrame(
        {"bill": values, "size": rng.integers(1, 6, size=202), "day": ["Sat", "Sun"] * 101, "empty": np.nan}
    )


@pytest.fixture
def photo() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list:
    """Capture the figures the builders would draw (outside a kernel they draw nothing)."""
    figures: list = []
    monkeypatch.setattr(W, "_show", figures.append)
    return figures


def _decode_png(uri: str) -> np.ndarray:
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


# ------------------------------------------------------------------------------------------------
# import cost
# ------------------------------------------------------------------------------------------------


def test_import_is_cheap() -> None:
    code = (
        "import sys, utils.widgets; "
        "heavy = [m for m in ('tensorflow', 'plotly', 'ipywidgets', 'keras', 'pandas') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# scaling: pure functions
# ------------------------------------------------------------------------------------------------


def test_clip_iqr_uses_tukeys_fences(table: pd.DataFrame) -> None:
    x = table["bill"].to_numpy()
    q1, q3 = np.percentile(x, [25, 75])
    clipped = W.clip_iqr(x, 1.5)
    assert clipped.max() == pytest.approx(q3 + 1.5 * (q3 - q1))
    assert np.sum(clipped != x) >= 2  # the two outliers at least
    np.testing.assert_array_equal(W.clip_iqr(x, 0), x)  # k = 0: nothing clipped
    assert W.clip_iqr(x, 0) is not x  # a copy, never the caller's array


@pytest.mark.parametrize(
    ("name", "sklearn_scaler"),
    [("standard", "StandardScaler"), ("min-max", "MinMaxScaler"), ("robust", "RobustScaler")],
)
def test_scale_values_matches_sklearn(table: pd.DataFrame, name: str, sklearn_scaler: str) -> None:
    import sklearn.preprocessing

    x = table["bill"].to_numpy()
    expected = getattr(sklearn.preprocessing, sklearn_scaler)().fit_transform(x[:, None])[:, 0]
    np.testing.assert_allclose(W.scale_values(x, name), expected, atol=1e-12)


def test_scale_values_standard_uses_population_std() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    z = W.scale_values(x, "standard")
    assert z.std(ddof=0) == pytest.approx(1.0)
    assert z.std(ddof=1) != pytest.approx(1.0)


def test_scale_values_edge_cases() -> None:
    np.testing.assert_array_equal(W.scale_values([3.0, 3.0, 3.0], "standard"), [0.0, 0.0, 0.0])  # no 0/0
    np.testing.assert_array_equal(W.scale_values([1.0, 5.0], "none"), [1.0, 5.0])
    with pytest.raises(ValueError, match="not one of"):
        W.scale_values([1.0, 2.0], "log")


def test_scaling_figure_traces_and_values(table: pd.DataFrame) -> None:
    import plotly.graph_objects as go

    x = table["bill"].to_numpy()
    fig = W.scaling_figure(x, scaler="min-max", clip_k=1.5, name="bill", unit="$")
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["histogram", "histogram"]
    assert [t.name for t in fig.data] == ["before", "after"]
    np.testing.assert_allclose(fig.data[0].x, x)
    np.testing.assert_allclose(fig.data[1].x, W.scale_values(W.clip_iqr(x, 1.5), "min-max"))
    assert fig.layout.meta["after"]["min"] == pytest.approx(0.0)
    assert fig.layout.meta["after"]["max"] == pytest.approx(1.0)
    assert fig.layout.meta["n_clipped"] >= 2
    assert "bill" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "bill ($)"
    assert fig.layout.yaxis.title.text and fig.layout.xaxis2.title.text


def test_scaling_figure_skips_missing_values() -> None:
    fig = W.scaling_figure(np.array([1.0, np.nan, 3.0]), scaler="none")
    np.testing.assert_array_equal(fig.data[0].x, [1.0, 3.0])
    with pytest.raises(ValueError, match="no values"):
        W.scaling_figure(np.array([np.nan]))


def test_scaling_figure_standard_stats(table: pd.DataFrame) -> None:
    meta = W.scaling_figure(table["bill"], scaler="standard").layout.meta
    assert meta["after"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert meta["after"]["std"] == pytest.approx(1.0)
    assert meta["n_clipped"] == 0


# ------------------------------------------------------------------------------------------------
# scaling: the widget
# ------------------------------------------------------------------------------------------------


def test_scaling_explorer_builds_and_redraws(table: pd.DataFrame, shown: list) -> None:
    import ipywidgets

    explorer = W.scaling_explorer(table, units={"bill": "$"})
    assert isinstance(explorer, ipywidgets.Widget)
    controls = {c.description: c for c in explorer.children if hasattr(c, "description")}
    assert set(controls) == {"column", "scaler", "clip k·IQR (0 = off)"}
    assert list(controls["column"].options) == ["bill", "size"]  # numeric columns holding values
    assert len(shown) == 1  # drawn once when built

    controls["scaler"].value = "min-max"
    controls["clip k·IQR (0 = off)"].value = 1.5
    latest = shown[-1]
    assert latest.layout.meta["after"]["max"] == pytest.approx(1.0)
    assert latest.layout.meta["n_clipped"] >= 2


def test_scaling_explorer_with_chosen_columns_and_errors(table: pd.DataFrame, shown: list) -> None:
    explorer = W.scaling_explorer(table, columns=["size"])
    assert list(explorer.children[0].options) == ["size"]
    with pytest.raises(ValueError, match="not numeric"):
        W.scaling_explorer(table, columns=["day"])
    with pytest.raises(ValueError, match="at least one numeric"):
        W.scaling_explorer(table[["day"]])
    with pytest.raises(ValueError, match="no values"):
        W.scaling_explorer(table, columns=["empty"])


# ------------------------------------------------------------------------------------------------
# augmentation: pure functions
# ------------------------------------------------------------------------------------------------


def test_augment_image_identity_and_dtype(photo: np.ndarray) -> None:
    out = W.augment_image(photo)
    assert out.shape == photo.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, photo / 255.0, atol=1e-6)
    np.testing.assert_allclose(W.augment_image(photo / 255.0), out, atol=1e-6)  # float input in [0, 1]


def test_augment_image_geometry(photo: np.ndarray) -> None:
    x = photo / 255.0
    np.testing.assert_allclose(W.augment_image(photo, flip=True), x[:, ::-1], atol=1e-6)
    np.testing.assert_allclose(W.augment_image(photo, rotation_deg=180), x[::-1, ::-1], atol=1e-4)
    # positive angles turn counter-clockwise, like np.rot90
    np.testing.assert_allclose(
        W.augment_image(photo, rotation_deg=90), np.rot90(x, 1, axes=(0, 1)), atol=1e-4
    )


def test_augment_image_zoom() -> None:
    square = np.zeros((32, 32, 1), dtype=np.float32)
    square[12:20, 12:20] = 1.0  # an 8×8 bright square in the centre
    zoomed_in = W.augment_image(square, zoom=-0.5)  # shows the central half, twice as large
    zoomed_out = W.augment_image(square, zoom=0.5)
    assert (zoomed_in > 0.5).sum() == pytest.approx(4 * 64, rel=0.15)
    assert (zoomed_out > 0.5).sum() < 64
    assert zoomed_in.shape == square.shape


def test_augment_image_contrast_formula(photo: np.ndarray) -> None:
    x = photo / 255.0
    mean = x.mean(axis=(0, 1), keepdims=True)
    expected = np.clip((x - mean) * 1.7 + mean, 0, 1)
    np.testing.assert_allclose(W.augment_image(photo, contrast=1.7), expected, atol=1e-5)
    flat = W.augment_image(photo, contrast=0.0)
    np.testing.assert_allclose(flat, np.broadcast_to(mean, x.shape), atol=1e-5)


def test_augmentation_figure_grey_and_integer_images() -> None:
    grey = np.arange(64, dtype=np.int64).reshape(8, 8, 1) * 4  # integers 0..252, one channel
    np.testing.assert_allclose(W.augment_image(grey), grey / 255.0, atol=1e-6)
    fig = W.augmentation_figure(grey, flip=True)
    np.testing.assert_array_equal(_decode_png(fig.data[0].source), grey[..., 0])
    np.testing.assert_array_equal(_decode_png(fig.data[1].source), grey[:, ::-1, 0])


def test_augment_image_rejects_batches(photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        W.augment_image(photo[None])


def test_augmentation_figure(photo: np.ndarray) -> None:
    import plotly.graph_objects as go

    fig = W.augmentation_figure(photo, rotation_deg=90, contrast=1.5, flip=True, name="test")
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["image", "image"]
    original, augmented = (_decode_png(t.source) for t in fig.data)
    np.testing.assert_array_equal(original, photo)  # PNG is lossless
    expected = W.augment_image(photo, rotation_deg=90, contrast=1.5, flip=True)
    assert np.abs(augmented / 255.0 - expected).max() <= 0.5 / 255 + 1e-6  # rounding to 8 bits only
    assert fig.layout.meta == {"rotation_deg": 90, "zoom": 0.0, "contrast": 1.5, "flip": True}
    assert "test" in fig.layout.title.text


# ------------------------------------------------------------------------------------------------
# augmentation: the widget
# ------------------------------------------------------------------------------------------------


def test_augmentation_explorer_builds_and_redraws(photo: np.ndarray, shown: list) -> None:
    import ipywidgets

    explorer = W.augmentation_explorer(photo, name="test")
    assert isinstance(explorer, ipywidgets.Widget)
    controls = {c.description: c for c in explorer.children if hasattr(c, "description")}
    assert {"rotation (degrees)", "zoom (− in, + out)", "contrast ×", "flip left-right"} <= set(controls)
    assert len(shown) == 1

    controls["rotation (degrees)"].value = 30.0
    controls["flip left-right"].value = "yes"
    assert shown[-1].layout.meta["rotation_deg"] == 30.0
    assert shown[-1].layout.meta["flip"] is True


def test_augmentation_explorer_rejects_bad_image(shown: list) -> None:
    with pytest.raises(ValueError):
        W.augmentation_explorer(np.zeros((4, 4)))
    assert shown == []


def test_show_outside_a_kernel_draws_nothing() -> None:
    W._show(object())  # no IPython here: must neither fail nor print


# ------------------------------------------------------------------------------------------------
# convolution kernels: pure functions
# ------------------------------------------------------------------------------------------------


def test_to_grey_uses_luma_weights_and_accepts_every_layout(photo: np.ndarray) -> None:
    grey = W.to_grey(photo)
    assert grey.shape == photo.shape[:2] and grey.dtype == np.float64
    np.testing.assert_allclose(grey, (photo / 255.0) @ [0.299, 0.587, 0.114])
    np.testing.assert_allclose(W.to_grey(grey[..., None]), grey)
    np.testing.assert_allclose(W.to_grey(grey), grey)
    with pytest.raises(ValueError, match="one image"):
        W.to_grey(photo[None])


@pytest.mark.parametrize("kernel_shape", [(3, 3), (4, 4), (2, 5)])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_convolve_image_matches_keras_conv2d(kernel_shape: tuple[int, int], padding: str) -> None:
    import keras

    rng = np.random.default_rng(3)
    image = rng.random((9, 11))
    kernel = rng.normal(size=kernel_shape)
    layer = keras.layers.Conv2D(1, kernel_shape, padding=padding, use_bias=False)
    layer.build((None, 9, 11, 1))
    layer.set_weights([kernel[:, :, None, None]])
    expected = np.asarray(layer(image[None, :, :, None].astype("float32")))[0, :, :, 0]
    got = W.convolve_image(image, kernel, padding=padding)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_convolve_image_is_a_cross_correlation() -> None:
    from scipy.signal import convolve2d, correlate2d

    rng = np.random.default_rng(4)
    image, kernel = rng.random((6, 7)), rng.normal(size=(3, 3))
    got = W.convolve_image(image, kernel, padding="valid")
    np.testing.assert_allclose(got, correlate2d(image, kernel, mode="valid"))
    assert not np.allclose(got, convolve2d(image, kernel, mode="valid"))  # the kernel is not flipped
    np.testing.assert_allclose(got, convolve2d(image, kernel[::-1, ::-1], mode="valid"))


def test_convolve_image_presets_do_what_their_names_say() -> None:
    step = np.zeros((8, 8))
    step[:, 4:] = 1.0  # dark left half, bright right half: one vertical edge
    np.testing.assert_allclose(W.convolve_image(step, W.KERNELS["identity"]), step)
    sobel_x = W.convolve_image(step, W.KERNELS["Sobel x (vertical edges)"], padding="valid")
    sobel_y = W.convolve_image(step, W.KERNELS["Sobel y (horizontal edges)"], padding="valid")
    assert sobel_x.max() == pytest.approx(4.0) and np.all(sobel_x >= 0)  # brighter to the right: positive
    np.testing.assert_allclose(sobel_y, 0.0)  # no horizontal edge
    for name in ("box blur", "Gaussian blur", "sharpen"):
        assert np.sum(W.KERNELS[name]) == pytest.approx(1.0)  # keep the brightness of a flat area
    assert np.sum(W.KERNELS["outline (Laplacian)"]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="same' or 'valid"):
        W.convolve_image(step, W.KERNELS["identity"], padding="full")
    with pytest.raises(ValueError, match="2-D"):
        W.convolve_image(step, np.ones((3, 3, 1)))
    with pytest.raises(ValueError, match="does not fit"):
        W.convolve_image(np.ones((2, 2)), np.ones((3, 3)), padding="valid")


def test_kernel_figure_panels_and_scales(photo: np.ndarray) -> None:
    import plotly.graph_objects as go

    blur = W.kernel_figure(photo, W.KERNELS["box blur"], name="test")
    assert isinstance(blur, go.Figure)
    assert [t.name for t in blur.data] == ["input", "kernel", "output"]
    np.testing.assert_allclose(blur.data[2].z, W.convolve_image(photo, W.KERNELS["box blur"]))
    assert blur.data[2].zmin == 0 and blur.data[2].zmax == 1  # keeps brightness: grey scale
    assert blur.layout.meta["sum"] == pytest.approx(1.0) and "test" in blur.layout.title.text

    edges = W.kernel_figure(photo, W.KERNELS["Sobel y (horizontal edges)"])
    assert edges.data[2].zmin == -edges.data[2].zmax  # signed output: centred scale
    assert edges.layout.meta["min"] < 0 < edges.layout.meta["max"]
    np.testing.assert_allclose(edges.data[1].z, W.KERNELS["Sobel y (horizontal edges)"])
    assert edges.layout.xaxis.title.text == "x (pixels)" and edges.layout.yaxis.title.text


# ------------------------------------------------------------------------------------------------
# convolution kernels: the widget
# ------------------------------------------------------------------------------------------------


def _kernel_boxes(explorer) -> list:
    grid = explorer.children[1].children[1]
    return [box for row in grid.children for box in row.children]


def test_kernel_explorer_presets_and_edits_redraw(photo: np.ndarray, shown: list) -> None:
    import ipywidgets

    explorer = W.kernel_explorer(photo, name="test", preset="identity")
    assert isinstance(explorer, ipywidgets.Widget)
    menu, boxes = explorer.children[0], _kernel_boxes(explorer)
    assert list(menu.options) == list(W.KERNELS) and len(boxes) == 9
    assert len(shown) == 1
    np.testing.assert_allclose(shown[-1].data[2].z, W.to_grey(photo))  # identity

    menu.value = "sharpen"
    assert len(shown) == 2  # one redraw for the preset, not one per box
    np.testing.assert_allclose(shown[-1].layout.meta["kernel"], W.KERNELS["sharpen"])
    assert [b.value for b in boxes] == pytest.approx(np.ravel(W.KERNELS["sharpen"]))

    boxes[4].value = 9.0  # edit the centre
    expected = np.array(W.KERNELS["sharpen"], dtype=float)
    expected[1, 1] = 9.0
    np.testing.assert_allclose(shown[-1].layout.meta["kernel"], expected)
    np.testing.assert_allclose(shown[-1].data[2].z, W.convolve_image(photo, expected))


def test_kernel_explorer_rejects_bad_input(shown: list) -> None:
    with pytest.raises(ValueError, match="not one of"):
        W.kernel_explorer(np.zeros((4, 4)), preset="blurry")
    with pytest.raises(ValueError, match="one image"):
        W.kernel_explorer(np.zeros((2, 4, 4, 3)))
    assert shown == []


# ------------------------------------------------------------------------------------------------
# attention and positional encoding (lesson 06)
# ------------------------------------------------------------------------------------------------


def _pe(length: int, d_model: int) -> np.ndarray:
    """The paper's encoding, written independently for these tests."""
    pos, two_i = np.arange(length)[:, None], np.arange(0, d_model, 2)[None, :]
    pe = np.zeros((length, d_model))
    pe[:, 0::2] = np.sin(pos / 10000 ** (two_i / d_model))
    pe[:, 1::2] = np.cos(pos / 10000 ** (two_i / d_model))
    return pe


def test_attention_heatmap_rows_are_queries() -> None:
    a = np.array([[1.0, 0.0, 0.0], [0.2, 0.8, 0.0], [0.1, 0.2, 0.7]])
    fig = W.attention_heatmap(a, ["the", "cat", "the"], title="t")
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z), a)
    assert list(heat.y) == ["0·the", "1·cat", "2·the"] and list(heat.x) == list(heat.y)
    assert fig.layout.yaxis.autorange == "reversed" and "query" in fig.layout.yaxis.title.text
    assert fig.layout.title.text == "t"
    with pytest.raises(ValueError, match="do not match"):
        W.attention_heatmap(a, ["a", "b"])
    rect = W.attention_heatmap(np.full((2, 3), 1 / 3), ["q1", "q2"], ["k1", "k2", "k3"])
    assert list(rect.data[0].x) == ["0·k1", "1·k2", "2·k3"]
    small, long = W.attention_heatmap(a, list("abc")), W.attention_heatmap(np.eye(200), ["w"] * 200)
    assert small.layout.height == 320 and long.layout.height == 900  # a long text stays on the screen
    assert long.layout.meta["weights"][5][5] == 1.0


def test_attention_explorer_picks_example_layer_and_head(shown: list) -> None:
    rng = np.random.default_rng(0)
    layers = [rng.random((2, 3, 5, 5)) for _ in range(2)]
    tokens = [["a", "b", "c"], ["d", "e", "f", "g", "h"]]
    explorer = W.attention_explorer(layers, tokens, example_names=["first", "second"])
    explorer.children[0].value = 1  # example
    explorer.children[1].value = 1  # layer
    explorer.children[2].value = 2  # head
    fig = shown[-1]
    np.testing.assert_allclose(np.asarray(fig.data[0].z), layers[1][1, 2])
    assert fig.layout.title.text == "second: layer 2, head 3"
    explorer.children[0].value = 0  # the first example has 3 tokens: padding is cut off
    np.testing.assert_allclose(np.asarray(shown[-1].data[0].z), layers[1][0, 2, :3, :3])
    explorer.children[2].value = -1  # the mean of the heads
    np.testing.assert_allclose(np.asarray(shown[-1].data[0].z), layers[1][0, :, :3, :3].mean(0))
    assert shown[-1].layout.title.text == "first: layer 2, mean of the heads"
    with pytest.raises(ValueError, match="token lists"):
        W.attention_explorer(layers, tokens[:1])
    with pytest.raises(ValueError, match="one \\(examples"):
        W.attention_explorer([layers[0][0]], tokens)


def test_positional_encoding_figure_shows_the_pair(shown: list) -> None:
    pe = _pe(50, 16)
    fig = W.positional_encoding_figure(pe, pair=3)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), pe)
    np.testing.assert_allclose(np.asarray(fig.data[1].y), pe[:, 6])
    np.testing.assert_allclose(np.asarray(fig.data[2].y), pe[:, 7])
    assert fig.layout.meta["columns"] == [6, 7]
    assert fig.layout.meta["wavelength"] == pytest.approx(2 * np.pi * 10000 ** (6 / 16))
    with pytest.raises(ValueError, match="pair 8"):
        W.positional_encoding_figure(pe, pair=8)
    explorer = W.positional_encoding_explorer(_pe, max_length=64, d_models=(8, 16))
    explorer.children[0].value = 8  # d_model
    explorer.children[2].value = 7  # pair beyond d_model 8: clipped to the last pair, 3
    fig = shown[-1]
    assert np.asarray(fig.data[0].z).shape[1] == 8 and fig.layout.meta["pair"] == 3
