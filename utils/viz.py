"""Plotly figure factories. Each returns a ``plotly.graph_objects.Figure``; the notebook shows it.

Every figure has a title, labelled axes and, where there is more than one line, a legend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _history_dict(history: Any) -> dict[str, list[float]]:
    """Accept a Keras ``History``, a dict of lists, or a pandas DataFrame."""
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if hasattr(history, "to_dict") and not isinstance(history, Mapping):
        history = history.to_dict(orient="list")
    return {str(k): [float(v) for v in vals] for k, vals in dict(history).items()}


def _label(metric: str) -> str:
    return metric.replace("_", " ")


def training_curves(
    history: Any,
    metrics: Sequence[str] | None = None,
    *,
    title: str = "Training curves",
) -> Any:
    """Return a figure with one panel per metric, training (solid) and validation (dashed).

    ``history`` is a Keras ``History``, or a dict ``{"loss": [...], "val_loss": [...], ...}``.
    ``metrics`` defaults to every metric that has no ``val_`` prefix.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    logs = _history_dict(history)
    if metrics is None:
        metrics = [k for k in logs if not k.startswith("val_") and k not in ("learning_rate", "lr")]
    metrics = list(metrics)
    fig = make_subplots(rows=1, cols=max(len(metrics), 1), subplot_titles=[_label(m) for m in metrics])
    for col, metric in enumerate(metrics, start=1):
        for key, name, dash, colour in (
            (metric, "training", "solid", COLOURS[0]),
            (f"val_{metric}", "validation", "dash", COLOURS[1]),
        ):
            if key not in logs:
                continue
            values = logs[key]
            fig.add_trace(
                go.Scatter(
                    x=list(range(1, len(values) + 1)),
                    y=values,
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"dash": dash, "color": colour},
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="epoch", row=1, col=col)
        fig.update_yaxes(title_text=_label(metric), row=1, col=col)
    fig.update_layout(title=title, height=360, legend={"orientation": "h", "y": -0.25}, margin={"t": 70})
    return fig


def image_grid(
    images: Any,
    labels: Sequence[Any] | None = None,
    *,
    ncols: int = 8,
    title: str = "Images",
    size: int = 110,
    cmap: str = "gray",
) -> Any:
    """Return a grid of images with their labels as panel titles.

    ``images`` is an array (N, H, W) or (N, H, W, C) with values in [0, 1] or [0, 255];
    grey images use ``cmap``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    arr = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    n = len(arr)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    titles = [str(labels[i]) for i in range(n)] if labels is not None else None
    fig = make_subplots(
        rows=nrows, cols=ncols, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.06
    )
    scale = 255.0 if arr.max() > 1.0 else 1.0
    for i in range(n):
        row, col = divmod(i, ncols)
        img = arr[i].astype(np.float64) / scale
        if img.ndim == 2:
            colours = [[0, "black"], [1, "white"]] if cmap == "gray" else cmap
            trace = go.Heatmap(z=img[::-1], colorscale=colours, showscale=False, zmin=0, zmax=1)
        else:
            trace = go.Image(z=np.clip(img * 255, 0, 255).astype(np.uint8))
        fig.add_trace(trace, row=row + 1, col=col + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_yaxes(scaleanchor="x", selector={"type": "linear"})
    fig.update_layout(
        title=title,
        height=size * nrows + 80,
        width=max(size * ncols, 300),
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    return fig


def loss_curves(
    curves: Mapping[str, Sequence[float]],
    *,
    title: str = "Loss",
    xlabel: str = "step",
    ylabel: str = "loss",
    log_y: bool = False,
) -> Any:
    """Return one line per named curve (for comparing runs: learning rates, optimisers...)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (name, values) in enumerate(curves.items()):
        values = [float(v) for v in values]
        fig.add_trace(
            go.Scatter(
                x=list(range(len(values))),
                y=values,
                mode="lines",
                name=str(name),
                line={"color": COLOURS[i % len(COLOURS)]},
            )
        )
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=380)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], *, title: str | None = None) -> Any:
    """Return a plotly table figure (for reports that should look the same everywhere)."""
    import plotly.graph_objects as go

    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in header]
    fig = go.Figure(
        go.Table(header={"values": list(header), "align": "left"}, cells={"values": columns, "align": "left"})
    )
    fig.update_layout(
        title=title,
        height=40 + 28 * (len(rows) + 2) + (40 if title else 0),
        margin={"l": 10, "r": 10, "t": 50 if title else 10, "b": 10},
    )
    return fig


# ----------------------------------------------------------------------------------------------
# Convolutional networks: filters and feature maps (lesson 04)
# ----------------------------------------------------------------------------------------------


def _grid_shape(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return int(np.ceil(n / ncols)), ncols


def filters(
    kernel: Any,
    *,
    in_channel: int | None = None,
    max_filters: int = 32,
    ncols: int = 8,
    title: str = "Filters",
    show_values: bool | None = None,
) -> Any:
    """Return one heatmap per filter of a convolution kernel, on one shared colour scale centred on 0.

    ``kernel`` has Keras's layout ``(k_h, k_w, c_in, c_out)`` (``layer.get_weights()[0]``), or is a
    single 2-D filter ``(k_h, k_w)``. With several input channels, ``in_channel`` picks the one to
    show; ``None`` shows the mean over the input channels (and the title says so). Row 0 of each
    filter is drawn at the top, as in the array. Weights are written in the cells when
    ``show_values`` is true (default: for filters of at most 5×5). ``layout.meta`` holds
    ``{"n_filters", "shape", "in_channel", "max_abs"}``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    k = np.asarray(kernel.numpy() if hasattr(kernel, "numpy") else kernel, dtype=np.float64)
    if k.ndim == 2:
        k = k[:, :, None, None]
    if k.ndim != 4:
        raise ValueError(
            f"filters() expects a kernel of shape (k_h, k_w, c_in, c_out) or (k_h, k_w); got shape {k.shape}."
        )
    kh, kw, c_in, c_out = k.shape
    if in_channel is None:
        shown = k.mean(axis=2)
        note = f" (mean over the {c_in} input channels)" if c_in > 1 else ""
    else:
        if not 0 <= in_channel < c_in:
            raise ValueError(
                f"in_channel={in_channel} is out of range: the kernel has {c_in} input channels."
            )
        shown = k[:, :, in_channel, :]
        note = f" (input channel {in_channel})" if c_in > 1 else ""
    n = min(c_out, max_filters)
    nrows, ncols = _grid_shape(n, ncols)
    limit = float(np.abs(shown[..., :n]).max()) or 1.0
    values = kh * kw <= 25 if show_values is None else show_values
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=[f"filter {i}" for i in range(n)],
        horizontal_spacing=0.02,
        vertical_spacing=0.08,
    )
    for i in range(n):
        row, col = divmod(i, ncols)
        z = shown[:, :, i]
        fig.add_trace(
            go.Heatmap(
                z=z,
                colorscale="RdBu_r",
                zmin=-limit,
                zmax=limit,
                showscale=i == 0,
                colorbar={"title": {"text": "weight"}},
                text=z if values else None,
                texttemplate="%{text:.2f}" if values else None,
                hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra>filter " + str(i) + "</extra>",
            ),
            row=row + 1,
            col=col + 1,
        )
    fig.update_xaxes(showticklabels=False, title_text="")
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    for col in range(1, ncols + 1):
        fig.update_xaxes(title_text="column", row=nrows, col=col)
    for row in range(1, nrows + 1):
        fig.update_yaxes(title_text="row", row=row, col=1)
    fig.update_layout(
        title=f"{title}: {n} of {c_out} filters, {kh}×{kw}{note}",
        height=130 * nrows + 110,
        width=max(115 * ncols + 120, 360),
        margin={"l": 40, "r": 10, "t": 80, "b": 40},
        meta={"n_filters": n, "shape": [kh, kw, c_in, c_out], "in_channel": in_channel, "max_abs": limit},
    )
    return fig


def feature_maps(
    maps: Any,
    *,
    names: Sequence[str] | None = None,
    max_maps: int = 16,
    ncols: int = 8,
    title: str = "Feature maps",
    size: int = 120,
) -> Any:
    """Return one heatmap per channel of a layer's output, each on its own colour scale.

    ``maps`` is one image's activations ``(H, W, C)``, or a batch of one ``(1, H, W, C)``, or a
    single map ``(H, W)``. Shows the first ``max_maps`` channels; ``names`` titles the panels
    (default ``map i``). Pixel row 0 is at the top, as in an image. ``layout.meta`` holds
    ``{"n_maps", "shape", "max"}`` with the largest value of each map shown.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    a = np.asarray(maps.numpy() if hasattr(maps, "numpy") else maps, dtype=np.float64)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(
            f"feature_maps() expects (H, W, C), (1, H, W, C) or (H, W); got shape {a.shape}. "
            "For a batch, pass one image: maps[0]."
        )
    h, w, c = a.shape
    n = min(c, max_maps)
    if names is not None and len(names) < n:
        raise ValueError(f"names has {len(names)} entries; {n} maps are shown.")
    labels = [str(names[i]) for i in range(n)] if names is not None else [f"map {i}" for i in range(n)]
    nrows, ncols = _grid_shape(n, ncols)
    fig = make_subplots(
        rows=nrows, cols=ncols, subplot_titles=labels, horizontal_spacing=0.02, vertical_spacing=0.08
    )
    for i in range(n):
        row, col = divmod(i, ncols)
        fig.add_trace(
            go.Heatmap(
                z=a[:, :, i],
                colorscale="Viridis",
                showscale=False,
                hovertemplate="y %{y}, x %{x}: %{z:.3f}<extra>" + labels[i] + "</extra>",
            ),
            row=row + 1,
            col=col + 1,
        )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_yaxes(scaleanchor="x", selector={"type": "linear"})
    for col in range(1, ncols + 1):
        fig.update_xaxes(title_text="x (pixels)", row=nrows, col=col)
    for row in range(1, nrows + 1):
        fig.update_yaxes(title_text="y (pixels)", row=row, col=1)
    aspect = h / w
    fig.update_layout(
        title=f"{title}: {n} of {c} channels, {h}×{w} (bright = strong response)",
        height=int(size * aspect * nrows) + 120,
        width=max(size * ncols + 80, 360),
        margin={"l": 40, "r": 10, "t": 80, "b": 40},
        meta={"n_maps": n, "shape": [h, w, c], "max": [float(a[:, :, i].max()) for i in range(n)]},
    )
    return fig
