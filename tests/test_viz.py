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


@pytest.mark.slow
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


# ---------------------------------------------------------------------------------------------
# Evaluation and interpretability (lesson 10)
# ---------------------------------------------------------------------------------------------


def test_confusion_matrix_rows_are_true_classes():
    counts = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 4]])
    fig = viz.confusion_matrix(counts, ["a", "b", "c"], title="cm")
    np.testing.assert_array_equal(fig.data[0].z, counts)
    assert list(fig.data[0].y) == ["a", "b", "c"] and fig.layout.yaxis.title.text == "true class"
    assert fig.layout.xaxis.title.text == "predicted class" and fig.data[0].text[1][2] == "1"
    normed = viz.confusion_matrix(counts, normalise=True)
    np.testing.assert_allclose(np.asarray(normed.data[0].z).sum(axis=1), 1.0)
    assert normed.data[0].text[1][1] == "7" and normed.layout.meta["normalise"] is True
    assert list(viz.confusion_matrix(np.zeros((2, 2))).data[0].x) == ["0", "1"]
    with pytest.raises(ValueError, match="square"):
        viz.confusion_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="class_names"):
        viz.confusion_matrix(counts, ["a", "b"])


def test_roc_and_pr_curves():
    fig = viz.roc_curve([0, 0.5, 1], [0, 0.8, 1], auc=0.8, point=(0.5, 0.8))
    assert len(fig.data) == 3 and "AUC 0.800" in fig.data[0].name
    assert fig.data[2].x == (0.5,) and "false-positive" in fig.layout.xaxis.title.text
    pr = viz.pr_curve([0, 0.5, 1], [1, 1, 0.5], ap=0.75, base_rate=0.2)
    assert "AP 0.750" in pr.data[0].name and pr.data[0].line.shape == "vh"
    assert pr.data[1].y == (0.2, 0.2) and pr.layout.yaxis.title.text == "precision"


def test_threshold_view_counts_match_the_threshold():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.6, 0.4, 0.9, 0.3, 0.7])
    fig = viz.threshold_view(y, s, 0.5)
    m = fig.layout.meta
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 2)
    assert m["tpr"] == pytest.approx(2 / 3) and m["fpr"] == pytest.approx(1 / 3)
    assert m["precision"] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(fig.data[0].z, [[2, 1], [1, 2]])
    roc = fig.data[1]
    assert roc.x[0] == 0 and roc.y[0] == 0 and roc.x[-1] == 1 and roc.y[-1] == 1
    assert (fig.data[3].x[0], fig.data[3].y[0]) == (m["fpr"], m["tpr"])
    nothing = viz.threshold_view(y, s, 0.95).layout.meta
    assert nothing["tp"] + nothing["fp"] == 0 and nothing["precision"] == 0.0
    everything = viz.threshold_view(y, s, 0.0).layout.meta
    assert everything["tpr"] == 1 and everything["fpr"] == 1
    with pytest.raises(ValueError, match="labels"):
        viz.threshold_view(y, s[:3], 0.5)


def test_reliability_diagram_skips_empty_bins():
    fig = viz.reliability_diagram([0.15, 0.5, 0.95], [0.1, 0.0, 0.9], [10, 0, 30], ece=0.05)
    assert list(fig.data[0].x) == [0.15, 0.95] and list(fig.data[2].y) == [10, 30]
    assert "ECE 0.050" in fig.layout.title.text
    with pytest.raises(ValueError, match="one entry per bin"):
        viz.reliability_diagram([0.1], [0.2, 0.3], [1])


def test_upsample_keeps_constant_maps_and_corners():
    np.testing.assert_allclose(viz.upsample(np.full((2, 3), 4.0), (8, 12)), 4.0)
    ramp = np.array([[0.0, 1.0], [2.0, 3.0]])
    big = viz.upsample(ramp, (4, 4))
    assert big.shape == (4, 4) and big[0, 0] == 0.0 and big[-1, -1] == 3.0
    assert np.all(np.diff(big, axis=1) >= 0) and np.all(np.diff(big, axis=0) >= 0)
    np.testing.assert_allclose(viz.upsample(ramp, (2, 2)), ramp)
    with pytest.raises(ValueError, match="2-D"):
        viz.upsample(np.zeros(3), (2, 2))


def test_heatmap_overlay_colours_the_hot_spot():
    images = np.zeros((2, 8, 8, 3))
    heat = np.zeros((2, 2, 2))
    heat[:, 0, 0] = 1.0  # the top-left quarter is hot
    fig = viz.heatmap_overlay(images, heat, labels=["a", "b"], alpha=0.6)
    assert len(fig.data) == 2 and fig.data[0].type == "image" and fig.layout.meta["n"] == 2
    z = np.asarray(fig.data[0].z)
    assert z[0, 0, 0] > 100 and z[-1, -1].sum() == 0  # red over the hot corner, the cold corner untouched
    assert [a.text for a in fig.layout.annotations] == ["a", "b"]
    grey = viz.heatmap_overlay(np.ones((1, 8, 8)), np.ones((1, 4, 4)))
    assert np.asarray(grey.data[0].z).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="one 2-D heat map per image"):
        viz.heatmap_overlay(images, heat[:1])


def test_attention_heatmap_labels_queries_and_keys():
    w = np.full((3, 3), 1 / 3)
    fig = viz.attention_heatmap(w, ["a", "b", "c"])
    assert list(fig.data[0].x) == ["0:a", "1:b", "2:c"] and list(fig.data[0].y) == list(fig.data[0].x)
    one_query = viz.attention_heatmap(w[:1], ["a", "b", "c"], query_tokens=["[CLS]"])
    assert list(one_query.data[0].y) == ["[CLS]"]
    with pytest.raises(ValueError, match="query, key"):
        viz.attention_heatmap(np.zeros((2, 2, 2)))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_figures_take_the_16_bit_arrays_of_mixed_precision(dtype):
    """Under mixed_float16 / mixed_bfloat16, layers return float16 / bfloat16 arrays: plot them as they are."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dt = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    rng = np.random.default_rng(0)
    figures = [
        viz.image_grid(rng.random((3, 8, 8, 3)).astype(dt)),
        viz.filters(rng.normal(size=(3, 3, 1, 4)).astype(dt)),
        viz.feature_maps(rng.random((1, 6, 6, 4)).astype(dt)),
        viz.threshold_view(np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.6, 0.4]).astype(dt), 0.5),
        viz.heatmap_overlay(rng.random((2, 8, 8, 3)).astype(dt), rng.random((2, 2, 2)).astype(dt)),
        viz.attention_heatmap(np.full((3, 3), 1 / 3).astype(dt)),
    ]
    for fig in figures:
        fig.to_json()  # every array in the figure can be serialised for the browser
    assert figures[3].layout.meta["tp"] == 2 and figures[3].layout.meta["fp"] == 0
