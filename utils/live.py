"""Live training curves from a Keras callback, updated in place.

The figure is shown once through a display handle and replaced after each epoch with
``handle.update``. That needs no widget manager, so it works the same in JupyterLab, classic
Notebook, VS Code and Colab (ipywidgets 7 or 8, or none). With no notebook front end (a script,
a headless run) it prints one line per epoch instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import keras

from utils import viz


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and shell.__class__.__name__ != "TerminalInteractiveShell"


class LivePlot(keras.callbacks.Callback):
    """Draw training and validation curves as training runs.

    ``metrics``: which logged metrics to plot (default: every metric Keras logs).
    ``every``: redraw at most every ``every`` seconds (the last epoch is always drawn).
    After training, ``history`` holds the logged values and ``figure()`` returns the final figure.
    """

    def __init__(
        self, metrics: Sequence[str] | None = None, *, title: str = "Training (live)", every: float = 0.5
    ):
        super().__init__()
        self.metrics = list(metrics) if metrics else None
        self.title, self.every = title, every
        self.history: dict[str, list[float]] = {}
        self.updates = 0
        self._handle: Any = None
        self._last = 0.0
        self._drawn = -1
        self._notebook = _in_notebook()

    def figure(self) -> Any:
        """Return the current figure (a ``plotly.graph_objects.Figure``)."""
        metrics = self.metrics or [
            k for k in self.history if not k.startswith("val_") and k != "learning_rate"
        ]
        return viz.training_curves(self.history, metrics, title=self.title)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.history = {}
        self._handle = None
        self._last = 0.0
        self._drawn = -1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        last_epoch = self.params.get("epochs") if self.params else None
        is_last = last_epoch is not None and epoch + 1 >= last_epoch
        if not is_last and time.monotonic() - self._last < self.every:
            return
        self._draw(epoch)

    def on_train_end(self, logs: dict | None = None) -> None:
        epochs_seen = len(next(iter(self.history.values()), []))
        if epochs_seen - 1 > self._drawn:  # early stopping, or updates skipped by `every`
            self._draw(epochs_seen - 1)

    def _draw(self, epoch: int) -> None:
        self._last = time.monotonic()
        self._drawn = epoch
        if not self._notebook:
            shown = ", ".join(f"{k} {v[-1]:.4f}" for k, v in self.history.items())
            print(f"epoch {epoch + 1}: {shown}")
            self.updates += 1
            return
        from IPython.display import display

        bundle = _mimebundle(self.figure())
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        self.updates += 1


def _mimebundle(fig: Any) -> dict[str, Any]:
    """Return the figure's display data for the current front end.

    A plotly figure displays itself through ``_ipython_display_``, which makes a new output each
    time and ignores display ids; its MIME bundle, displayed raw, can be updated in place.
    """
    try:
        bundle = dict(fig._repr_mimebundle_())  # uses plotly's renderer for this front end
    except Exception:  # an older plotly without it
        bundle = {}
    if not bundle:
        bundle = {"application/vnd.plotly.v1+json": fig.to_plotly_json()}
    bundle.setdefault("text/plain", f"<live training plot: {fig.layout.title.text}>")
    return bundle
