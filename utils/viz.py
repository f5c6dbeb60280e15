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


# ----------------------------------------------------------------------------------------------
# Evaluation and interpretability (lesson 10)
# ----------------------------------------------------------------------------------------------


def _numpy(value: Any, dtype: Any = np.float64) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=dtype)


def confusion_matrix(
    counts: Any,
    class_names: Sequence[str] | None = None,
    *,
    normalise: bool = False,
    title: str = "Confusion matrix",
    size: int = 420,
) -> Any:
    """Return a heatmap of a confusion matrix: rows are the true class, columns the predicted one.

    ``counts[i, j]`` is the number of examples of true class ``i`` predicted as ``j`` (scikit-learn's
    layout). With ``normalise`` each row is divided by its total, so the diagonal shows each class's
    recall; the cells still show the counts. ``layout.meta`` holds ``{"counts", "normalise"}``.
    """
    import plotly.graph_objects as go

    c = _numpy(counts)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion_matrix() expects a square (K, K) array of counts; got shape {c.shape}.")
    k = c.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} entries; the matrix has {k} classes.")
    rows = c.sum(axis=1, keepdims=True)
    z = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0) if normalise else c
    text = [[f"{int(v)}" if float(v).is_integer() else f"{v:.2f}" for v in row] for row in c]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            colorbar={"title": {"text": "fraction of row" if normalise else "count"}},
            hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="predicted class", type="category")
    fig.update_yaxes(title_text="true class", type="category", autorange="reversed")
    fig.update_layout(
        title=title,
        height=size,
        width=size + 80,
        margin={"l": 60, "r": 10, "t": 60, "b": 50},
        meta={"counts": c.tolist(), "normalise": bool(normalise)},
    )
    return fig


def roc_curve(
    fpr: Any,
    tpr: Any,
    *,
    auc: float | None = None,
    point: tuple[float, float] | None = None,
    name: str = "model",
    title: str = "ROC curve",
) -> Any:
    """Return a ROC curve (true-positive rate against false-positive rate) with the chance diagonal.

    ``auc``, if given, goes into the legend; ``point = (fpr, tpr)`` marks one threshold's operating point.
    """
    import plotly.graph_objects as go

    label = f"{name} (AUC {auc:.3f})" if auc is not None else name
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=_numpy(fpr), y=_numpy(tpr), mode="lines", name=label, line={"color": COLOURS[0]})
    )
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": "grey", "dash": "dot"})
    )
    if point is not None:
        fig.add_trace(
            go.Scatter(
                x=[point[0]],
                y=[point[1]],
                mode="markers",
                name="threshold",
                marker={"color": COLOURS[1], "size": 12},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="false-positive rate FP / (FP + TN)",
        yaxis_title="true-positive rate (recall)",
        height=400,
        width=480,
        legend={"x": 0.4, "y": 0.08},
    )
    fig.update_xaxes(range=[-0.02, 1.02])
    fig.update_yaxes(range=[-0.02, 1.02])
    return fig


def pr_curve(
    recall: Any,
    precision: Any,
    *,
    ap: float | None = None,
    base_rate: float | None = None,
    name: str = "model",
    title: str = "Precision-recall curve",
) -> Any:
    """Return a precision-recall curve, drawn as steps (precision held until recall next changes).

    ``ap`` (average precision) goes into the legend; ``base_rate`` (the fraction of positives)
    draws the level a classifier that guesses at random would reach.
    """
    import plotly.graph_objects as go

    label = f"{name} (AP {ap:.3f})" if ap is not None else name
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=_numpy(recall),
            y=_numpy(precision),
            mode="lines",
            line={"shape": "vh", "color": COLOURS[0]},
            name=label,
        )
    )
    if base_rate is not None:
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[base_rate, base_rate],
                mode="lines",
                name=f"chance (positives = {base_rate:.1%})",
                line={"color": "grey", "dash": "dot"},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="recall",
        yaxis_title="precision",
        height=400,
        width=480,
        legend={"x": 0.02, "y": 0.08},
    )
    fig.update_xaxes(range=[-0.02, 1.02])
    fig.update_yaxes(range=[-0.02, 1.05])
    return fig


def threshold_view(
    y_true: Any,
    scores: Any,
    threshold: float,
    *,
    class_names: Sequence[str] = ("negative", "positive"),
    title: str = "Choosing a threshold",
) -> Any:
    """Return two panels for one decision threshold: the confusion matrix and the ROC curve with its point.

    An example is predicted positive when ``score >= threshold``. ``layout.meta`` holds
    ``{"tn", "fp", "fn", "tp", "fpr", "tpr", "precision", "threshold"}`` (precision 0 when nothing is
    predicted positive). The pure function behind the lesson's threshold slider.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    y = _numpy(y_true).astype(int).ravel()
    s = _numpy(scores).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} labels but scores has {s.size} entries.")
    pred = s >= threshold
    tp, fp = int(np.sum(pred & (y == 1))), int(np.sum(pred & (y == 0)))
    fn, tn = int(np.sum(~pred & (y == 1))), int(np.sum(~pred & (y == 0)))
    tpr, fpr = tp / max(tp + fn, 1), fp / max(fp + tn, 1)
    precision = tp / (tp + fp) if tp + fp else 0.0
    # the whole ROC curve: one point per distinct score, from the highest threshold down
    order = np.argsort(-s, kind="stable")
    distinct = np.r_[np.diff(s[order]) != 0, True]
    tps, fps = np.cumsum(y[order] == 1)[distinct], np.cumsum(y[order] == 0)[distinct]
    curve_tpr = np.r_[0, tps] / max(tps[-1], 1)
    curve_fpr = np.r_[0, fps] / max(fps[-1], 1)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[f"confusion matrix at threshold {threshold:.2f}", "ROC curve"],
        horizontal_spacing=0.18,
    )
    names = [str(n) for n in class_names]
    counts = np.array([[tn, fp], [fn, tp]])
    fig.add_trace(
        go.Heatmap(
            z=counts,
            x=names,
            y=names,
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=curve_fpr, y=curve_tpr, mode="lines", name="ROC curve", line={"color": COLOURS[0]}),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": "grey", "dash": "dot"}),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=[fpr], y=[tpr], mode="markers", name="this threshold", marker={"color": COLOURS[1], "size": 12}
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="predicted class", type="category", row=1, col=1)
    fig.update_yaxes(title_text="true class", type="category", autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="false-positive rate", range=[-0.02, 1.02], row=1, col=2)
    fig.update_yaxes(title_text="true-positive rate (recall)", range=[-0.02, 1.02], row=1, col=2)
    fig.update_layout(
        title=f"{title}: recall {tpr:.2f}, false-positive rate {fpr:.2f}, precision {precision:.2f}",
        height=400,
        width=860,
        legend={"orientation": "h", "y": -0.2},
        meta={
            "tn": tn,
            "fp": fp,
            "fn": fn,
            "tp": tp,
            "fpr": fpr,
            "tpr": tpr,
            "precision": precision,
            "threshold": float(threshold),
        },
    )
    return fig


def reliability_diagram(
    confidence: Any,
    accuracy: Any,
    counts: Any,
    *,
    ece: float | None = None,
    title: str = "Reliability diagram",
) -> Any:
    """Return a reliability diagram: each confidence bin's accuracy against its mean confidence.

    ``confidence``, ``accuracy`` and ``counts`` have one entry per bin (bins with no examples are
    skipped). Bars show accuracy; the diagonal is perfect calibration; the bar's gap to the diagonal
    is the bin's |acc − conf|. ``ece`` goes into the title.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    conf, acc, n = _numpy(confidence), _numpy(accuracy), _numpy(counts)
    if not conf.shape == acc.shape == n.shape:
        raise ValueError("confidence, accuracy and counts need one entry per bin each.")
    keep = n > 0
    conf, acc, n = conf[keep], acc[keep], n[keep]
    fig = make_subplots(rows=2, cols=1, row_heights=[0.75, 0.25], shared_xaxes=True, vertical_spacing=0.06)
    fig.add_trace(
        go.Scatter(
            x=conf,
            y=acc,
            mode="lines+markers",
            name="model",
            line={"color": COLOURS[0]},
            hovertemplate="confidence %{x:.3f}: accuracy %{y:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"color": "grey", "dash": "dot"},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(x=conf, y=n, name="examples per bin", marker={"color": COLOURS[2]}, width=0.02),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="accuracy in the bin", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="examples", row=2, col=1)
    fig.update_xaxes(title_text="mean confidence in the bin", range=[0, 1.02], row=2, col=1)
    suffix = f" (ECE {ece:.3f})" if ece is not None else ""
    fig.update_layout(title=title + suffix, height=480, width=520, legend={"x": 0.02, "y": 0.98})
    return fig


def upsample(heat: Any, shape: tuple[int, int]) -> np.ndarray:
    """Return the 2-D map ``heat`` resized to ``shape`` (H, W) by bilinear interpolation (float64)."""
    h = _numpy(heat)
    if h.ndim != 2:
        raise ValueError(f"upsample() expects a 2-D map; got shape {h.shape}.")
    out_h, out_w = shape
    # the centre of output pixel i, in the input's pixel coordinates
    rows = np.clip((np.arange(out_h) + 0.5) * h.shape[0] / out_h - 0.5, 0, h.shape[0] - 1)
    cols = np.clip((np.arange(out_w) + 0.5) * h.shape[1] / out_w - 0.5, 0, h.shape[1] - 1)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, h.shape[0] - 1), np.minimum(c0 + 1, h.shape[1] - 1)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = h[r0][:, c0] * (1 - fc) + h[r0][:, c1] * fc
    bottom = h[r1][:, c0] * (1 - fc) + h[r1][:, c1] * fc
    return top * (1 - fr) + bottom * fr


def heatmap_overlay(
    images: Any,
    heatmaps: Any,
    *,
    labels: Sequence[Any] | None = None,
    alpha: float = 0.5,
    ncols: int = 6,
    title: str = "Where the model looks",
    size: int = 150,
) -> Any:
    """Return a grid of images, each with its heat map (saliency, Grad-CAM) laid over it in red-yellow.

    ``images`` is (N, H, W) or (N, H, W, C) in [0, 1] or [0, 255]; ``heatmaps`` is (N, h, w), each
    map resized to the image's H×W (bilinear) and scaled to [0, 1] by its own maximum. ``alpha``
    is the heat map's opacity. ``layout.meta`` holds ``{"n", "alpha"}``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    imgs = _numpy(images)
    heat = _numpy(heatmaps)
    if imgs.ndim == 2:
        imgs, heat = imgs[None], heat[None] if heat.ndim == 2 else heat
    if imgs.ndim == 4 and imgs.shape[-1] == 1:
        imgs = imgs[..., 0]
    if heat.ndim != 3 or len(heat) != len(imgs):
        raise ValueError(
            f"need one 2-D heat map per image: {len(imgs)} images, heat maps of shape {heat.shape}."
        )
    n = len(imgs)
    nrows, ncols = _grid_shape(n, ncols)
    titles = [str(labels[i]) for i in range(n)] if labels is not None else None
    fig = make_subplots(
        rows=nrows, cols=ncols, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.08
    )
    scale = 255.0 if imgs.max() > 1.0 else 1.0
    for i in range(n):
        row, col = divmod(i, ncols)
        img = imgs[i] / scale
        grey = img if img.ndim == 2 else img @ np.array([0.299, 0.587, 0.114])
        big = upsample(heat[i], grey.shape)
        top = big.max()
        big = big / top if top > 0 else big
        rgb = np.repeat(grey[..., None], 3, axis=-1) if img.ndim == 2 else img
        colour = np.stack([np.ones_like(big), big, np.zeros_like(big)], axis=-1)  # red (weak) to yellow
        weight = alpha * big[..., None]
        mixed = rgb * (1 - weight) + colour * weight
        fig.add_trace(go.Image(z=np.clip(mixed * 255, 0, 255).astype(np.uint8)), row=row + 1, col=col + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(
        title=title,
        height=size * nrows + 90,
        width=max(size * ncols, 320),
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
        meta={"n": n, "alpha": float(alpha)},
    )
    return fig


def attention_heatmap(
    weights: Any,
    tokens: Sequence[str] | None = None,
    *,
    query_tokens: Sequence[str] | None = None,
    title: str = "Attention weights",
) -> Any:
    """Return a heatmap of one head's attention weights (query, key): row q is where query q looks.

    ``tokens`` labels the keys (and the queries unless ``query_tokens`` is given). Each row sums to 1.
    """
    import plotly.graph_objects as go

    w = _numpy(weights)
    if w.ndim != 2:
        raise ValueError(f"attention_heatmap() expects (query, key) weights; got shape {w.shape}.")
    keys = [f"{i}:{t}" for i, t in enumerate(tokens)] if tokens is not None else list(range(w.shape[1]))
    queries = query_tokens if query_tokens is not None else (keys if w.shape[0] == w.shape[1] else None)
    queries = [str(q) for q in queries] if queries is not None else list(range(w.shape[0]))
    fig = go.Figure(
        go.Heatmap(
            z=w,
            x=keys,
            y=queries,
            colorscale="Viridis",
            zmin=0,
            colorbar={"title": {"text": "weight"}},
            hovertemplate="query %{y} → key %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="key (attended to)", type="category")
    fig.update_yaxes(title_text="query", type="category", autorange="reversed")
    fig.update_layout(
        title=title, height=max(260, 22 * len(queries) + 140), width=max(420, 26 * len(keys) + 160)
    )
    return fig
