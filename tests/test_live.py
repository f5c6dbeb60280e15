"""utils.live: the live plot updates one display in place in a notebook, and prints in a script."""

import json
import subprocess
import sys
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient

FIT = """
import numpy as np, keras
from utils.live import LivePlot
keras.utils.set_random_seed(0)
x = np.random.rand(64, 3).astype("float32"); y = (x.sum(1) > 1.5).astype("float32")
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
live = LivePlot(every=0)
model.fit(x, y, validation_split=0.25, epochs=3, verbose=0, callbacks=[live])
"""


@pytest.mark.slow
def test_live_plot_updates_in_place_in_a_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import utils; cfg = utils.env.setup(verbose=False)"),
        nbformat.v4.new_code_cell(FIT),
        nbformat.v4.new_code_cell("print(live.updates)"),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    fit_outputs = nb.cells[1].outputs
    displays = [o for o in fit_outputs if o.output_type == "display_data" and "text/plain" in o.data]
    # plotly 5's "notebook" renderer (Colab's plotly, in Jupyter) also displays its loader <script>, once.
    loaders = [o for o in fit_outputs if o.output_type == "display_data" and "text/plain" not in o.data]
    assert len(loaders) <= 1, "plotly's loader script must be displayed once, not once per epoch"
    assert len(displays) == 1, "the plot must be one display, updated in place, not one per epoch"
    figure = displays[0].data["application/vnd.plotly.v1+json"]
    losses = [t for t in figure["data"] if t["name"] == "training" and t.get("xaxis", "x") == "x"]
    assert len(losses[0]["y"]) == 3, "the display shows the last epoch's curve"
    assert nb.cells[2].outputs[0].text.strip() == "3"
    assert not [
        o for c in nb.cells for o in c.outputs if o.get("name") == "stderr" or o.output_type == "error"
    ]


@pytest.mark.slow
def test_live_plot_prints_a_line_per_epoch_headless():
    code = "import utils; utils.env.setup(verbose=False)\n" + textwrap.dedent(FIT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in lines] == ["epoch 1", "epoch 2", "epoch 3"]
    assert "val_loss" in lines[-1]
    json.dumps(lines)
