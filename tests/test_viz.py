"""utils.viz: figures are returned, titled and labelled."""

import numpy as np
import pytest

from utils import viz


def test_training_curves_from_a_dict():
    history = {
        "loss": [1.0, 0.5, 0.25],
        "val_loss": [1.1, 0.7, 0.6],
        "accuracy": [0.5, 0.7, 0.9],
        "val_accuracy": [0.4, 0.6, 0.8],
    }
    fig = viz.training_curves(history)
    assert fig.layout.title.text == "Training curves"
    assert len(fig.data) == 4
    names = {(t.name, tuple(t.y)) for t in fig.data}
    assert ("validation", (1.1, 0.7, 0.6)) in names
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.yaxis.title.text == "loss"


def test_training_curves_accepts_a_keras_history_like_object():
    class History:
        history = {"loss": [3, 2]}

    fig = viz.training_curves(History(), title="t")
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[0].y) == [3.0, 2.0]


def test_image_grid_grey_and_colour():
    grey = np.random.default_rng(0).random((5, 8, 8))
    fig = viz.image_grid(grey, labels=list("abcde"), ncols=3, title="grey")
    assert len(fig.data) == 5 and fig.data[0].type == "heatmap"
    assert [a.text for a in fig.layout.annotations] == list("abcde")
    colour = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    fig = viz.image_grid(colour, ncols=2)
    assert fig.data[0].type == "image"
    single_channel = grey[..., None]
    assert len(viz.image_grid(single_channel).data) == 5


def test_loss_curves_and_table():
    fig = viz.loss_curves({"lr=0.1": [3, 2, 1], "lr=1": [3, 5, 9]}, log_y=True, title="rates")
    assert [t.name for t in fig.data] == ["lr=0.1", "lr=1"] and fig.layout.yaxis.type == "log"
    tab = viz.table([("a", 1), ("b", 2)], header=["item", "value"])
    assert list(tab.data[0].cells.values[0]) == ["a", "b"]


def test_filters_draws_each_filter_on_one_scale_centred_on_zero():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 1, 5))
    fig = viz.filters(kernel, ncols=3, title="first layer")
    assert len(fig.data) == 5 and all(t.type == "heatmap" for t in fig.data)
    np.testing.assert_allclose(fig.data[2].z, kernel[:, :, 0, 2])  # row 0 of the filter is row 0 of z
    limit = np.abs(kernel).max()
    assert all(t.zmin == -limit and t.zmax == limit for t in fig.data)
    assert [a.text for a in fig.layout.annotations] == [f"filter {i}" for i in range(5)]
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.title.text == "row"
    assert "first layer" in fig.layout.title.text and "5 of 5" in fig.layout.title.text
    assert fig.data[0].texttemplate  # 3×3 weights are written in the cells
    assert fig.layout.meta["n_filters"] == 5 and fig.layout.meta["shape"] == [3, 3, 1, 5]


def test_filters_with_several_input_channels_and_limits():
    kernel = np.random.default_rng(1).normal(size=(5, 5, 3, 40))
    mean = viz.filters(kernel)
    assert len(mean.data) == 32  # max_filters
    np.testing.assert_allclose(mean.data[0].z, kernel[:, :, :, 0].mean(axis=2))
    assert "mean over the 3 input channels" in mean.layout.title.text
    second = viz.filters(kernel, in_channel=1, max_filters=4)
    np.testing.assert_allclose(second.data[3].z, kernel[:, :, 1, 3])
    assert "input channel 1" in second.layout.title.text
    single = viz.filters(np.eye(3))
    assert len(single.data) == 1
    with pytest.raises(ValueError, match="out of range"):
        viz.filters(kernel, in_channel=3)
    with pytest.raises(ValueError, match="k_h, k_w"):
        viz.filters(np.ones((3, 3, 2)))


def test_feature_maps_one_panel_per_channel():
    maps = np.random.default_rng(2).random((1, 6, 10, 20)).astype("float32")
    fig = viz.feature_maps(maps, max_maps=12, ncols=4, title="conv 1")
    assert len(fig.data) == 12 and fig.data[0].type == "heatmap"
    np.testing.assert_allclose(fig.data[5].z, maps[0, :, :, 5], rtol=1e-6)
    assert fig.layout.meta["shape"] == [6, 10, 20] and len(fig.layout.meta["max"]) == 12
    assert "12 of 20" in fig.layout.title.text and fig.layout.xaxis9.title.text == "x (pixels)"
    named = viz.feature_maps(maps[0, :, :, :2], names=["edges", "blobs"])
    assert [a.text for a in named.layout.annotations] == ["edges", "blobs"]
    assert len(viz.feature_maps(maps[0, :, :, 0]).data) == 1
    with pytest.raises(ValueError, match="one image"):
        viz.feature_maps(np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match="names"):
        viz.feature_maps(maps, names=["only one"])
