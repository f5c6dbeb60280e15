"""ipywidgets explorers for the lessons, each a thin shell over a pure function.

Every explorer has two halves:

- a *pure* function (``scaling_figure``, ``augmentation_figure``) that takes plain values and
  returns a plotly figure. It has no widgets in it, so tests call it directly and check the
  figure's traces and numbers;
- a *builder* (``scaling_explorer``, ``augmentation_explorer``) that wires sliders and drop-downs
  to that function with ``ipywidgets.interactive`` and returns the widget for the notebook to show.

The builders use only what ipywidgets 7.7 (Colab) and 8.x share: ``interactive`` (which puts
the figure in an ``Output``), ``FloatSlider`` and ``Dropdown``. ipywidgets, plotly and
TensorFlow are imported inside the functions, so ``import utils.widgets`` costs nothing.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported only for type checkers; at run time they are imported lazily
    import pandas as pd
    import plotly.graph_objects as go


def _interactive(fn: Any, **controls: Any) -> Any:
    """``ipywidgets.interactive(fn, **controls)``, drawn once as soon as it is built, on 7.x and 8.x alike.

    ipywidgets 8 calls ``fn`` when the box is built; 7.x (Colab's) only on its first display. Tests and
    learners who keep the box in a variable expect the figure to be there from the start.
    """
    import ipywidgets as w

    box = w.interactive(fn, **controls)
    if int(w.__version__.split(".")[0]) < 8:
        box.update()
    return box


__all__ = [
    "KERNELS",
    "SCALERS",
    "attention_explorer",
    "attention_heatmap",
    "augment_image",
    "augmentation_explorer",
    "augmentation_figure",
    "clip_iqr",
    "convolve_image",
    "kernel_explorer",
    "kernel_figure",
    "positional_encoding_explorer",
    "positional_encoding_figure",
    "scale_values",
    "scaling_explorer",
    "scaling_figure",
    "to_grey",
]

#: The scalers the scaling explorer offers, by the name shown in its drop-down.
SCALERS: tuple[str, ...] = ("none", "standard", "min-max", "robust")


# ----------------------------------------------------------------------------------------------
# Plumbing shared by the builders
# ----------------------------------------------------------------------------------------------


def _show(fig: Any) -> None:
    """Draw ``fig`` in the current output area; outside a Jupyter kernel there is nowhere to draw."""
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is not None:
        display(fig)


def _png_data_uri(image: np.ndarray) -> str:
    """Return an image in [0, 1], (H, W, 3) or grey (H, W, 1), as a ``data:image/png;base64,...`` URI."""
    from PIL import Image

    pixels = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]  # PIL wants grey images as (H, W)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ----------------------------------------------------------------------------------------------
# Scaling and outliers
# ----------------------------------------------------------------------------------------------


def clip_iqr(values: Sequence[float] | np.ndarray, k: float) -> np.ndarray:
    """Return ``values`` clipped to Tukey's fences ``[Q1 - k·IQR, Q3 + k·IQR]``; ``k <= 0`` clips nothing."""
    x = np.asarray(values, dtype=np.float64)
    if k <= 0:
        return x.copy()
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    return np.clip(x, q1 - k * iqr, q3 + k * iqr)


def scale_values(values: Sequence[float] | np.ndarray, scaler: str = "standard") -> np.ndarray:
    """Return ``values`` rescaled by ``scaler`` (one of :data:`SCALERS`), as float64.

    - ``standard``: $(x - \\mu) / \\sigma$ with the population standard deviation (``ddof=0``,
      as scikit-learn's ``StandardScaler`` and Keras's ``Normalization`` use);
    - ``min-max``: $(x - \\min) / (\\max - \\min)$, into [0, 1];
    - ``robust``: $(x - \\text{median}) / \\text{IQR}$, as scikit-learn's ``RobustScaler``;
    - ``none``: unchanged.

    A constant column (zero spread) is only centred, never divided by zero.
    """
    x = np.asarray(values, dtype=np.float64)
    if scaler == "none":
        return x.copy()
    if scaler == "standard":
        centre, spread = x.mean(), x.std()
    elif scaler == "min-max":
        centre, spread = x.min(), x.max() - x.min()
    elif scaler == "robust":
        q1, median, q3 = np.percentile(x, [25, 50, 75])
        centre, spread = median, q3 - q1
    else:
        raise ValueError(f"scaler={scaler!r} is not one of {', '.join(SCALERS)}.")
    return (x - centre) / (spread if spread > 0 else 1.0)


def scaling_figure(
    values: Sequence[float] | np.ndarray,
    *,
    scaler: str = "standard",
    clip_k: float = 0.0,
    name: str = "value",
    unit: str = "",
    nbins: int = 30,
) -> go.Figure:
    """Return a two-panel figure: the histogram of ``values`` before and after clipping + scaling.

    Missing values (NaN) are left out. ``clip_k`` > 0 first clips to Tukey's fences (``clip_iqr``),
    then ``scaler`` rescales.
    The left trace holds the raw values, the right trace the transformed ones (``trace.x``), and
    the figure's ``layout.meta`` holds their mean, standard deviation, minimum and maximum.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    raw = np.asarray(values, dtype=np.float64)
    raw = raw[~np.isnan(raw)]
    if raw.size == 0:
        raise ValueError(f"'{name}' has no values to plot (empty, or all missing).")
    clipped = clip_iqr(raw, clip_k)
    scaled = scale_values(clipped, scaler)
    n_clipped = int(np.sum(clipped != raw))

    def stats(a: np.ndarray) -> dict[str, float]:
        return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}

    before, after = stats(raw), stats(scaled)
    unit_text = f" ({unit})" if unit else ""
    clip_text = (
        f"clipped at Q1−{clip_k:g}·IQR, Q3+{clip_k:g}·IQR ({n_clipped} values)" if clip_k > 0 else "no clip"
    )
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            f"raw: mean {before['mean']:.3g}, std {before['std']:.3g}",
            f"{clip_text}, {scaler}: mean {after['mean']:.3g}, std {after['std']:.3g}",
        ),
    )
    fig.add_trace(go.Histogram(x=raw, nbinsx=nbins, name="before", marker_color="#636EFA"), row=1, col=1)
    fig.add_trace(go.Histogram(x=scaled, nbinsx=nbins, name="after", marker_color="#EF553B"), row=1, col=2)
    fig.update_xaxes(title_text=f"{name}{unit_text}", row=1, col=1)
    fig.update_xaxes(title_text=f"{name}, {scaler} scaled" if scaler != "none" else name, row=1, col=2)
    fig.update_yaxes(title_text="count (rows)", row=1, col=1)
    fig.update_yaxes(title_text="count (rows)", row=1, col=2)
    fig.update_layout(
        title=f"Scaling '{name}': before and after",
        legend_title_text="values",
        height=380,
        bargap=0.05,
        meta={"before": before, "after": after, "n_clipped": n_clipped},
    )
    return fig


def scaling_explorer(
    df: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    units: dict[str, str] | None = None,
) -> Any:
    """Return an ipywidgets explorer: pick a column, a scaler and a clip threshold, see both histograms.

    ``columns`` defaults to the numeric columns of ``df`` that hold at least one value; ``units``
    maps a column to its unit for the axis label. The figure comes from :func:`scaling_figure`.
    """
    import ipywidgets as w

    numeric = list(df.select_dtypes("number").columns)
    options = list(columns) if columns is not None else [c for c in numeric if df[c].notna().any()]
    if not options:
        raise ValueError(
            "scaling_explorer needs at least one numeric column; this DataFrame has none with values."
        )
    missing = [c for c in options if c not in numeric]
    if missing:
        raise ValueError(f"Columns {missing} are not numeric columns of the DataFrame.")
    units = units or {}

    def draw(column: str, scaler: str, clip_k: float) -> None:
        values = df[column].to_numpy(dtype=float, na_value=np.nan)
        _show(scaling_figure(values, scaler=scaler, clip_k=clip_k, name=column, unit=units.get(column, "")))

    for column in options:  # fail here, loudly, rather than inside the widget where errors are hidden
        scaling_figure(df[column].to_numpy(dtype=float, na_value=np.nan), name=column)
    style = {"description_width": "initial"}
    return _interactive(
        draw,
        column=w.Dropdown(options=options, value=options[0], description="column", style=style),
        scaler=w.Dropdown(options=list(SCALERS), value="standard", description="scaler", style=style),
        clip_k=w.FloatSlider(
            value=0.0,
            min=0.0,
            max=4.0,
            step=0.25,
            description="clip k·IQR (0 = off)",
            continuous_update=False,
            style=style,
        ),
    )


# ----------------------------------------------------------------------------------------------
# Image augmentation
# ----------------------------------------------------------------------------------------------


def augment_image(
    image: np.ndarray,
    *,
    rotation_deg: float = 0.0,
    zoom: float = 0.0,
    contrast: float = 1.0,
    flip: bool = False,
) -> np.ndarray:
    """Return ``image`` transformed exactly as chosen, as float32 in [0, 1] with the same shape.

    Uses the Keras preprocessing layers with their random range collapsed to one value, so you
    see what ``RandomRotation``/``RandomZoom`` do at that setting:

    - ``rotation_deg``: counter-clockwise rotation in degrees (``RandomRotation`` takes a
      fraction of a full turn, ``rotation_deg / 360``);
    - ``zoom``: ``RandomZoom`` height and width factor; negative zooms in, positive zooms out;
    - ``contrast``: $(x - \\bar{x}_c) \\cdot c + \\bar{x}_c$ with $\\bar{x}_c$ each channel's
      mean, clipped to [0, 1] (``RandomContrast`` draws $c$ at random);
    - ``flip``: mirror left-right.

    ``image`` may hold integers in [0, 255] (uint8, as decoded) or floats in [0, 1]; shape (H, W, C).
    """
    from utils.env import import_tensorflow

    tf = import_tensorflow()
    import keras

    x = np.asarray(image)
    x = x.astype(np.float32) / 255.0 if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)
    if x.ndim != 3:
        raise ValueError(f"augment_image expects one image of shape (H, W, C); got shape {x.shape}.")
    t = tf.convert_to_tensor(x)
    if flip:
        t = tf.reverse(t, axis=[1])
    if rotation_deg:
        turn = float(rotation_deg) / 360.0
        t = keras.layers.RandomRotation((turn, turn), fill_mode="constant", fill_value=0.0)(t, training=True)
    if zoom:
        t = keras.layers.RandomZoom((zoom, zoom), (zoom, zoom), fill_mode="constant", fill_value=0.0)(
            t, training=True
        )
    if contrast != 1.0:
        mean = tf.reduce_mean(t, axis=(0, 1), keepdims=True)
        t = tf.clip_by_value((t - mean) * float(contrast) + mean, 0.0, 1.0)
    return np.clip(np.asarray(t, dtype=np.float32), 0.0, 1.0)


def augmentation_figure(
    image: np.ndarray,
    *,
    rotation_deg: float = 0.0,
    zoom: float = 0.0,
    contrast: float = 1.0,
    flip: bool = False,
    name: str = "photo",
) -> go.Figure:
    """Return a figure with ``image`` (left) and :func:`augment_image` of it (right), as two ``go.Image``.

    The images are sent as PNG (``trace.source``), which keeps a 640×427 photo small in the
    notebook; ``layout.meta`` records the settings used.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    original = augment_image(image)  # same dtype handling, no transform
    augmented = augment_image(image, rotation_deg=rotation_deg, zoom=zoom, contrast=contrast, flip=flip)
    settings = {"rotation_deg": rotation_deg, "zoom": zoom, "contrast": contrast, "flip": bool(flip)}
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "original",
            f"rotation {rotation_deg:g}°, zoom {zoom:+g}, contrast ×{contrast:g}"
            + (", flipped" if flip else ""),
        ),
    )
    fig.add_trace(go.Image(source=_png_data_uri(original), name="original"), row=1, col=1)
    fig.add_trace(go.Image(source=_png_data_uri(augmented), name="augmented"), row=1, col=2)
    fig.update_xaxes(title_text="x (pixels)", showticklabels=False)
    fig.update_yaxes(title_text="y (pixels)", showticklabels=False)
    fig.update_layout(
        title=f"Augmenting '{name}'", height=360, margin={"l": 20, "r": 20, "t": 70, "b": 40}, meta=settings
    )
    return fig


def augmentation_explorer(image: np.ndarray, *, name: str = "photo") -> Any:
    """Return an ipywidgets explorer with rotation, zoom and contrast sliders and a flip switch.

    The figure comes from :func:`augmentation_figure`; each change redraws it.
    """
    import ipywidgets as w

    def draw(rotation_deg: float, zoom: float, contrast: float, flip: str) -> None:
        _show(
            augmentation_figure(
                image, rotation_deg=rotation_deg, zoom=zoom, contrast=contrast, flip=flip == "yes", name=name
            )
        )

    augment_image(image)  # fail here, loudly, if the image is not (H, W, C)
    style = {"description_width": "initial"}

    def slider(value: float, lo: float, hi: float, step: float, label: str) -> Any:
        return w.FloatSlider(
            value=value, min=lo, max=hi, step=step, description=label, continuous_update=False, style=style
        )

    return _interactive(
        draw,
        rotation_deg=slider(0.0, -45.0, 45.0, 5.0, "rotation (degrees)"),
        zoom=slider(0.0, -0.5, 0.5, 0.05, "zoom (− in, + out)"),
        contrast=slider(1.0, 0.2, 2.0, 0.1, "contrast ×"),
        flip=w.Dropdown(options=["no", "yes"], value="no", description="flip left-right", style=style),
    )


# ----------------------------------------------------------------------------------------------
# Convolution kernels (lesson 04)
# ----------------------------------------------------------------------------------------------

#: The kernel explorer's presets: 3×3 kernels, applied as Keras applies them (cross-correlation).
KERNELS: dict[str, tuple[tuple[float, ...], ...]] = {
    "identity": ((0, 0, 0), (0, 1, 0), (0, 0, 0)),
    "box blur": ((1 / 9, 1 / 9, 1 / 9), (1 / 9, 1 / 9, 1 / 9), (1 / 9, 1 / 9, 1 / 9)),
    "Gaussian blur": ((1 / 16, 2 / 16, 1 / 16), (2 / 16, 4 / 16, 2 / 16), (1 / 16, 2 / 16, 1 / 16)),
    "sharpen": ((0, -1, 0), (-1, 5, -1), (0, -1, 0)),
    "Sobel x (vertical edges)": ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1)),
    "Sobel y (horizontal edges)": ((-1, -2, -1), (0, 0, 0), (1, 2, 1)),
    "emboss": ((-2, -1, 0), (-1, 1, 1), (0, 1, 2)),
    "outline (Laplacian)": ((-1, -1, -1), (-1, 8, -1), (-1, -1, -1)),
}


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a grey float64 array (H, W) in [0, 1].

    Accepts (H, W), (H, W, 1) or RGB (H, W, 3), as uint8 0-255 or floats in [0, 1]. RGB is mixed
    with the luma weights 0.299 R + 0.587 G + 0.114 B (as ``tf.image.rgb_to_grayscale``).
    """
    x = np.asarray(image)
    x = x.astype(np.float64) / 255.0 if np.issubdtype(x.dtype, np.integer) else x.astype(np.float64)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    elif x.ndim == 3 and x.shape[-1] == 3:
        x = x @ np.array([0.299, 0.587, 0.114])
    if x.ndim != 2:
        raise ValueError(f"expected one image (H, W), (H, W, 1) or (H, W, 3); got shape {x.shape}.")
    return x


def convolve_image(image: np.ndarray, kernel: Any, *, padding: str = "same") -> np.ndarray:
    """Return ``image`` convolved with ``kernel`` exactly as ``keras.layers.Conv2D`` does it, float64.

    The image is first made grey with :func:`to_grey`. Like Keras, this is a cross-correlation
    (the kernel is not flipped): $y_{i,j} = \\sum_{u,v} x_{i+u,\\,j+v}\\,K_{u,v}$. ``padding`` is
    ``"same"`` (zeros around the image; for a kernel of even size the extra row and column go
    at the bottom and right) or ``"valid"`` (no padding; the output is $k-1$ smaller).
    """
    x = to_grey(image)
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2:
        raise ValueError(f"the kernel must be 2-D (k_h, k_w); got shape {k.shape}.")
    kh, kw = k.shape
    if padding == "same":
        top, left = (kh - 1) // 2, (kw - 1) // 2
        x = np.pad(x, ((top, kh - 1 - top), (left, kw - 1 - left)))
    elif padding != "valid":
        raise ValueError(f"padding={padding!r} must be 'same' or 'valid'.")
    if x.shape[0] < kh or x.shape[1] < kw:
        raise ValueError(f"a {kh}×{kw} kernel does not fit in an image of {x.shape[0]}×{x.shape[1]} pixels.")
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw))  # (H_out, W_out, kh, kw)
    return np.einsum("ijuv,uv->ij", windows, k)


def kernel_figure(image: np.ndarray, kernel: Any, *, name: str = "photo") -> go.Figure:
    """Return three panels: the grey ``image``, the ``kernel`` with its numbers, and the convolved image.

    The output uses a grey scale from 0 to 1 when the kernel's weights sum to about 1 (it keeps
    the brightness: blur, sharpen, identity), and a red-blue scale centred on 0 otherwise (edge
    detectors, whose output is signed; the colours saturate at the 99.5th percentile of |output|). ``layout.meta`` holds the kernel, its sum and the output's
    minimum and maximum; ``fig.data[2].z`` is the output of :func:`convolve_image`.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    grey = to_grey(image)
    k = np.asarray(kernel, dtype=np.float64)
    out = convolve_image(grey, k)
    total = float(k.sum())
    keeps_brightness = abs(total - 1.0) < 0.05
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.42, 0.16, 0.42],
        subplot_titles=("input (grey)", f"kernel (sum {total:.3g})", "output = input ⋆ kernel"),
        horizontal_spacing=0.09,
    )
    fig.add_trace(
        go.Heatmap(z=grey, colorscale="gray", zmin=0, zmax=1, showscale=False, name="input"), row=1, col=1
    )
    fig.add_trace(
        go.Heatmap(
            z=k,
            colorscale="RdBu_r",
            zmid=0,
            showscale=False,
            text=k,
            texttemplate="%{text:.3g}",
            name="kernel",
        ),
        row=1,
        col=2,
    )
    if keeps_brightness:
        style = {"colorscale": "gray", "zmin": 0.0, "zmax": 1.0}
    else:
        # Centred on 0, saturating at the 99.5th percentile of |output|, so that the few strong
        # responses along the image's border (where the padding zeros meet the photo) don't wash
        # out the edges inside it. Hovering shows the true values.
        limit = float(np.percentile(np.abs(out), 99.5)) or float(np.abs(out).max()) or 1.0
        style = {"colorscale": "RdBu_r", "zmin": -limit, "zmax": limit}
    fig.add_trace(
        go.Heatmap(z=out, showscale=True, colorbar={"title": {"text": "output"}}, name="output", **style),
        row=1,
        col=3,
    )
    fig.update_yaxes(autorange="reversed")
    for col in (1, 3):
        fig.update_xaxes(title_text="x (pixels)", row=1, col=col)
        fig.update_yaxes(title_text="y (pixels)", scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
    fig.update_xaxes(title_text="v (column)", dtick=1, row=1, col=2)
    fig.update_yaxes(title_text="u (row)", dtick=1, row=1, col=2)
    fig.update_layout(
        title=f"Convolving '{name}' with a {k.shape[0]}×{k.shape[1]} kernel",
        height=380,
        margin={"l": 40, "r": 20, "t": 80, "b": 40},
        meta={"kernel": k.tolist(), "sum": total, "min": float(out.min()), "max": float(out.max())},
    )
    return fig


def kernel_explorer(
    image: np.ndarray, *, name: str = "photo", preset: str = "Sobel x (vertical edges)"
) -> Any:
    """Return an ipywidgets explorer: pick a preset 3×3 kernel or edit its nine numbers, see the result.

    The figure comes from :func:`kernel_figure`; choosing a preset fills the nine boxes, and
    editing any box redraws. The widget is a ``VBox``: the preset drop-down, three rows of three
    ``FloatText`` boxes, and an ``Output`` holding the figure.
    """
    import ipywidgets as w

    if preset not in KERNELS:
        raise ValueError(f"preset={preset!r} is not one of: {', '.join(KERNELS)}.")
    to_grey(image)  # fail here, loudly, if the image has the wrong shape
    style = {"description_width": "initial"}
    menu = w.Dropdown(options=list(KERNELS), value=preset, description="preset kernel", style=style)
    boxes = [
        [
            w.FloatText(value=float(KERNELS[preset][r][c]), step=0.1, layout=w.Layout(width="90px"))
            for c in range(3)
        ]
        for r in range(3)
    ]
    out = w.Output()
    state = {"filling": False}

    def current() -> np.ndarray:
        return np.array([[box.value for box in row] for row in boxes], dtype=np.float64)

    def redraw(*_: Any) -> None:
        if state["filling"]:
            return
        with out:
            out.clear_output(wait=True)
            _show(kernel_figure(image, current(), name=name))

    def fill(change: dict) -> None:
        state["filling"] = True
        try:
            for r in range(3):
                for c in range(3):
                    boxes[r][c].value = float(KERNELS[change["new"]][r][c])
        finally:
            state["filling"] = False
        redraw()

    menu.observe(fill, names="value")
    for row in boxes:
        for box in row:
            box.observe(redraw, names="value")
    redraw()
    grid = w.VBox([w.HBox(row) for row in boxes])
    return w.VBox([menu, w.HBox([w.Label("kernel K[u, v] (row u, column v):"), grid]), out])


# ----------------------------------------------------------------------------------------------
# Attention and positional encoding (lesson 06)
# ----------------------------------------------------------------------------------------------


def attention_heatmap(
    weights: Any,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str] | None = None,
    *,
    title: str = "Attention weights",
) -> go.Figure:
    """Return a heatmap of one head's attention weights (query, key): row q is what query q looks at.

    Rows are the queries (top to bottom, in order), columns the keys; each cell is a weight in
    [0, 1] and each row sums to 1 (masked keys get 0). Token labels are made unique by their
    position ("3·the"), so repeated words get their own rows. ``layout.meta["weights"]`` holds the
    matrix.
    """
    import plotly.graph_objects as go

    a = np.asarray(weights, dtype=np.float64)
    key_tokens = query_tokens if key_tokens is None else key_tokens
    if a.ndim != 2 or a.shape != (len(query_tokens), len(key_tokens)):
        raise ValueError(
            f"attention weights of shape {a.shape} do not match {len(query_tokens)} query and "
            f"{len(key_tokens)} key tokens; pass one head's (query, key) matrix."
        )
    rows = [f"{i}·{t}" for i, t in enumerate(query_tokens)]
    cols = [f"{i}·{t}" for i, t in enumerate(key_tokens)]
    fig = go.Figure(
        go.Heatmap(
            z=a,
            x=cols,
            y=rows,
            zmin=0.0,
            zmax=float(max(a.max(), 1e-9)),
            colorscale="Blues",
            colorbar={"title": "weight"},
            hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
        )
    )
    size = min(900, max(320, 18 * max(len(rows), len(cols)) + 160))  # long texts: labels thin out
    fig.update_layout(
        title=title,
        xaxis_title="key (the token looked at)",
        yaxis_title="query (the token looking)",
        yaxis_autorange="reversed",
        height=size,
        width=size + 80,
        meta={"weights": a.tolist()},
    )
    fig.update_xaxes(tickangle=-60, type="category")
    fig.update_yaxes(type="category")
    return fig


def attention_explorer(
    attention: Sequence[Any],
    tokens: Sequence[Sequence[str]],
    *,
    example_names: Sequence[str] | None = None,
) -> Any:
    """Return an ipywidgets explorer of a model's attention: pick the example, the layer and the head.

    ``attention[layer]`` is an array (examples, heads, query, key) (e.g. each block's
    ``last_attention`` after a call on a batch), ``tokens[e]`` the tokens of example e; padded
    positions beyond ``len(tokens[e])`` are cut off. The head picker ends with "mean", the average
    of the heads (rows still sum to 1). The figure comes from :func:`attention_heatmap`.
    """
    import ipywidgets as w

    layers = [np.asarray(a, dtype=np.float64) for a in attention]
    if not layers or any(a.ndim != 4 for a in layers):
        raise ValueError("attention must be a list with one (examples, heads, query, key) array per layer.")
    n_examples, n_heads = layers[0].shape[:2]
    if len(tokens) != n_examples:
        raise ValueError(f"{len(tokens)} token lists for {n_examples} examples.")
    names = list(example_names) if example_names is not None else [f"example {e}" for e in range(n_examples)]

    def figure(example: int, layer: int, head: int) -> go.Figure:
        n = len(tokens[example])
        heads = layers[layer][example, :, :n, :n]
        return attention_heatmap(
            heads.mean(0) if head < 0 else heads[head],
            list(tokens[example]),
            title=f"{names[example]}: layer {layer + 1}, "
            + ("mean of the heads" if head < 0 else f"head {head + 1}"),
        )

    figure(0, 0, 0)  # fail here, loudly, rather than inside the widget
    style = {"description_width": "initial"}
    return _interactive(
        lambda example, layer, head: _show(figure(example, layer, head)),
        example=w.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=0, description="example"),
        layer=w.Dropdown(
            options=[(f"layer {i + 1}", i) for i in range(len(layers))],
            value=0,
            description="layer",
            style=style,
        ),
        head=w.ToggleButtons(
            options=[(f"head {h + 1}", h) for h in range(n_heads)] + [("mean", -1)],
            value=0,
            description="head",
        ),
    )


def positional_encoding_figure(encoding: Any, pair: int = 0) -> go.Figure:
    """Return a two-panel figure of a sinusoidal positional encoding (positions, d_model).

    Left: the whole matrix as a heatmap (position down, dimension across). Right: columns 2·pair
    (sine) and 2·pair + 1 (cosine) against the position, the pair that shares one frequency.
    ``layout.meta`` holds ``pair``, the wavelength of that pair in positions and the two columns.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pe = np.asarray(encoding, dtype=np.float64)
    length, d_model = pe.shape
    if not 0 <= 2 * pair + 1 < d_model:
        raise ValueError(f"pair {pair} needs columns {2 * pair} and {2 * pair + 1}; d_model is {d_model}.")
    wavelength = 2 * np.pi * 10000 ** (2 * pair / d_model)
    positions = np.arange(length)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.55, 0.45],
        subplot_titles=(
            f"PE, {length} positions × d_model = {d_model}",
            f"columns {2 * pair} (sin) and {2 * pair + 1} (cos): wavelength {wavelength:,.1f} positions",
        ),
    )
    fig.add_trace(
        go.Heatmap(
            z=pe, zmin=-1, zmax=1, colorscale="RdBu", colorbar={"title": "value", "x": 0.5}, name="PE"
        ),
        row=1,
        col=1,
    )
    fig.add_trace(go.Scatter(x=positions, y=pe[:, 2 * pair], name=f"sin, column {2 * pair}"), row=1, col=2)
    fig.add_trace(
        go.Scatter(x=positions, y=pe[:, 2 * pair + 1], name=f"cos, column {2 * pair + 1}"), row=1, col=2
    )
    fig.update_xaxes(title_text="dimension (column)", row=1, col=1)
    fig.update_yaxes(title_text="position", autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="position", row=1, col=2)
    fig.update_yaxes(title_text="value", range=[-1.1, 1.1], row=1, col=2)
    fig.update_layout(
        title="Sinusoidal positional encoding",
        height=420,
        legend={"x": 1.0, "y": 1.0},
        meta={"pair": pair, "wavelength": float(wavelength), "columns": [2 * pair, 2 * pair + 1]},
    )
    return fig


def positional_encoding_explorer(
    encode: Any,
    *,
    max_length: int = 200,
    d_models: Sequence[int] = (16, 32, 64, 128),
) -> Any:
    """Return an ipywidgets explorer of ``encode(length, d_model)`` (a positional-encoding function).

    Sliders pick the number of positions and the frequency pair; a drop-down picks d_model.
    The figure comes from :func:`positional_encoding_figure`.
    """
    import ipywidgets as w

    d_models = list(d_models)
    positional_encoding_figure(encode(8, d_models[0]))  # fail here, loudly

    def draw(d_model: int, length: int, pair: int) -> None:
        _show(positional_encoding_figure(encode(length, d_model), pair=min(pair, d_model // 2 - 1)))

    style = {"description_width": "initial"}
    return _interactive(
        draw,
        d_model=w.Dropdown(
            options=d_models, value=d_models[min(2, len(d_models) - 1)], description="d_model"
        ),
        length=w.IntSlider(
            value=min(100, max_length),
            min=4,
            max=max_length,
            step=4,
            description="positions",
            continuous_update=False,
        ),
        pair=w.IntSlider(
            value=0,
            min=0,
            max=max(d_models) // 2 - 1,
            description="pair i (columns 2i, 2i+1)",
            continuous_update=False,
            style=style,
        ),
    )
