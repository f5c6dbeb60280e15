"""utils.viz: figures are returned, titled and labelled."""

import numpy as np

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
