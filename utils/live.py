"""Live training curves from a Keras callback, updated in place.

The figure is shown once through a display handle and replaced after each epoch with
``handle.update``. That needs no widget manager, so it works the same in JupyterLab, classic
Notebook, VS Code and Colab (ipywidgets 7 or 8, or none). With no notebook front end (a script,
a headless run) it prints one line per epoch instead.

JupyterLab (and Notebook 7) keep an output's renderer when an update has the same MIME type, and
plotly's renderer ignores new data once it has drawn (plotly/plotly.py#3053): updating the figure
alone would leave the first epoch on screen. Each update therefore first swaps in a blank of the
figure's height (another MIME type, so the page does not jump), then the new figure, which gets a
fresh renderer. ``tests/browser`` checks this in a real browser.
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

        fig = self.figure()
        bundle = _mimebundle(fig)
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            if _PLOTLY_MIME in bundle:  # see the module docstring: force a fresh renderer
                self._handle.update(_blank(fig), raw=True)
            self._handle.update(bundle, raw=True)
        self.updates += 1


_PLOTLY_MIME = "application/vnd.plotly.v1+json"
_PLOTLY_DEFAULT_HEIGHT = 360  # what JupyterLab's plotly renderer uses for a figure without a height


def _blank(fig: Any) -> dict[str, str]:
    """Return display data for an empty block as tall as ``fig`` (HTML, not a plotly figure)."""
    height = int(fig.layout.height or _PLOTLY_DEFAULT_HEIGHT)
    return {"text/html": f'<div style="height: {height}px"></div>', "text/plain": ""}


def _mimebundle(fig: Any) -> dict[str, Any]:
    """Return the figure's display data for the current front end.

    A plotly figure displays itself through ``_ipython_display_``, which makes a new output each
    time and ignores display ids; its MIME bundle, displayed raw, can be updated in place.
    """
    try:
        import plotly.io as pio

        # The bundle of plotly's default renderer(s) for this front end. Not fig._repr_mimebundle_():
        # plotly 5 (Colab's) re-activates its renderers on every call, and in Jupyter the "notebook"
        # renderer then adds one more output (a <script>) per update.
        bundle = dict(pio.renderers._build_mime_bundle(fig.to_dict()))
    except Exception:  # a plotly without it
        bundle = {}
    if not bundle:
        bundle = {_PLOTLY_MIME: fig.to_plotly_json()}
    bundle.setdefault("text/plain", f"<live training plot: {fig.layout.title.text}>")
    return bundle
