"""Residual histograms against the predicted noise model: the session, and each light (slider)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from darkflow.viz._common import _hv, add_legend, bokeh_figure, is_missing, light_name

_XLABEL = "(calibrated − background) / predicted σ"


def prepare_residual_hists(
    edges: np.ndarray, hists: dict[str, list[int]], lights: pd.DataFrame
) -> pd.DataFrame:
    """Density of normalised background residuals: the session total and each light."""
    width = np.diff(edges)
    centres = 0.5 * (edges[:-1] + edges[1:])
    rows = []
    paths = set(lights["path"])
    total = np.zeros(len(centres))
    for path, counts in hists.items():
        if path not in paths:
            continue
        counts = np.asarray(counts, dtype=float)
        total += counts
        if counts.sum() > 0:
            rows.append(
                pd.DataFrame(
                    {"z": centres, "density": counts / counts.sum() / width, "light": path}
                )
            )
    if total.sum() > 0:
        rows.append(
            pd.DataFrame({"z": centres, "density": total / total.sum() / width, "light": "all"})
        )
    return (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=["z", "density", "light"])
    )


def _gaussian(hv, edges: np.ndarray):
    z = np.linspace(edges[0], edges[-1], 400)
    return hv.Curve(
        (z, np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)),
        kdims=["z"],
        vdims=["density"],
        label="noise model N(0,1)",
    ).opts(color="black", line_dash="dashed")


def make_residual_histograms(edges: np.ndarray, hists: dict[str, list[int]], lights: pd.DataFrame):
    """Session-wide residual histogram against the unit Gaussian the noise model predicts, and
    the three lights of highest noise ratio. Returns a bokeh figure."""
    from bokeh.models import Div, HoverTool, Range1d

    data = prepare_residual_hists(edges, hists, lights)
    if data.empty:
        return Div(text="<p>No calibrated lights in this session.</p>", width=900)
    edges = np.asarray(edges, dtype=float)
    fig = bokeh_figure(
        width=1150,
        height=320,
        y_axis_type="log",
        y_range=Range1d(1e-6, 1),
        x_axis_label=_XLABEL,
        y_axis_label="density",
        title="Background residuals against the predicted noise model",
    )
    total = data[data["light"] == "all"]
    density = total["density"].to_numpy()
    items = [
        (
            "all lights",
            [
                fig.step(
                    total["z"].to_numpy(),
                    np.where(density > 0, density, np.nan),
                    mode="center",
                    color="#1f77b4",
                    line_width=3,
                )
            ],
        )
    ]
    items.append(("noise model N(0,1)", [_gaussian_line(fig, edges)]))
    worst = (
        lights.dropna(subset=["noise_ratio"]).sort_values("noise_ratio", ascending=False).head(3)
    )
    for i, path in enumerate(worst["path"]):
        sub = data[data["light"] == path]
        if not sub.empty:
            d = sub["density"].to_numpy()
            line = fig.line(
                sub["z"].to_numpy(),
                np.where(d > 0, d, np.nan),
                alpha=0.8,
                color=_WORST_COLOURS[i % len(_WORST_COLOURS)],
            )
            items.append((f"worst: {light_name(path)}", [line]))
    fig.add_tools(HoverTool(tooltips=[("z", "$x{0.00}"), ("density", "$y{0.000e}")]))
    add_legend(fig, items)
    return fig


_WORST_COLOURS = ("#ff7f0e", "#2ca02c", "#9467bd")


def _gaussian_line(fig, edges: np.ndarray):
    z = np.linspace(edges[0], edges[-1], 400)
    return fig.line(
        z, np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi), color="black", line_dash="dashed"
    )


def light_order(lights: pd.DataFrame) -> pd.DataFrame:
    """Lights in time order (then by path), numbered from 1 in a ``frame`` column."""
    order = lights.copy()
    if "date_obs_utc" in order:
        order["_t"] = pd.to_datetime(order["date_obs_utc"], utc=True, errors="coerce")
        order = order.sort_values(["_t", "path"], na_position="last").drop(columns="_t")
    else:
        order = order.sort_values("path")
    order = order.reset_index(drop=True)
    order.insert(0, "frame", np.arange(1, len(order) + 1))
    return order


def _light_title(row: pd.Series, n: int) -> str:
    parts = [f"light {int(row['frame'])}/{n}: {light_name(row['path'])}", str(row.get("status"))]
    ratio = row.get("noise_ratio")
    if not is_missing(ratio):
        parts.append(f"noise ratio {float(ratio):.3f}")
    if not is_missing(row.get("master_id")):
        parts.append(f"master {row['master_id']}")
    return " · ".join(parts)


def _light_bins(edges, hists, lights, max_lights):
    """Bin edges, centres and widths, and the lights with a histogram in time order (at most
    ``max_lights``, the first in time)."""
    edges = np.asarray(edges, dtype=float)
    order = light_order(lights)
    order = order[order["path"].isin([p for p, c in hists.items() if np.sum(c) > 0])]
    return edges, 0.5 * (edges[:-1] + edges[1:]), np.diff(edges), order.head(max_lights)


def make_residual_holomap(
    edges: np.ndarray,
    hists: dict[str, list[int]],
    lights: pd.DataFrame,
    *,
    max_lights: int = 200,
):
    """Each light's residual histogram against N(0, 1), one frame per light (a slider).

    A holoviews ``HoloMap`` keyed by the light's number in time order: every frame is drawn in
    advance, so the slider works in the static HTML report (no kernel). The session's total is
    drawn in grey behind each light for comparison. Lights without a histogram (quarantined)
    are left out; at most ``max_lights`` frames (the first in time).
    """
    hv = _hv()
    edges, centres, width, order = _light_bins(edges, hists, lights, max_lights)
    if order.empty:
        return hv.Div("<p>No calibrated lights in this session.</p>")
    total = np.sum([np.asarray(hists[p], dtype=float) for p in order["path"]], axis=0)
    total_density = np.where(total > 0, total / total.sum() / width, np.nan)
    session = hv.Curve(
        (centres, total_density), kdims=["z"], vdims=["density"], label="session"
    ).opts(color="#bbbbbb", line_width=4, interpolation="steps-mid")
    gauss = _gaussian(hv, edges)
    frames = {}
    n = int(lights.shape[0])
    for _, row in order.iterrows():
        counts = np.asarray(hists[row["path"]], dtype=float)
        density = np.where(counts > 0, counts / counts.sum() / width, np.nan)
        curve = hv.Curve((centres, density), kdims=["z"], vdims=["density"], label="this light")
        frames[int(row["frame"])] = (
            session * gauss * curve.opts(interpolation="steps-mid", color="#d62728", line_width=2)
        ).opts(title=_light_title(row, n))
    return hv.HoloMap(frames, kdims=["light"]).opts(
        hv.opts.Overlay(
            width=900,
            height=320,
            logy=True,
            ylim=(1e-6, 1),
            xlabel=_XLABEL,
            legend_position="right",
            fontsize={"title": 10},
        ),
        hv.opts.Curve(tools=["hover"]),
    )


_SLIDER_JS = """
const i = Math.min(Math.round(slider.value), keys.length - 1);
shown.data = {z: shown.data.z, density: lights.data[keys[i]]};
fig.title.text = titles[i];
"""


def make_residual_slider(
    edges: np.ndarray,
    hists: dict[str, list[int]],
    lights: pd.DataFrame,
    *,
    max_lights: int = 200,
):
    """Each light's residual histogram against N(0, 1), one light at a time (a slider).

    One bokeh figure: the session's total (grey), the noise model (dashed) and the light
    shown (red). The densities of every light are embedded once, one column per light of a
    ``ColumnDataSource`` (binary, float32); the slider's ``CustomJS`` callback swaps the shown
    column and the title, so it works in the static HTML report without a kernel, and the
    page holds one plot instead of one per light (:func:`make_residual_holomap` draws the
    same as a holoviews ``HoloMap``). The slider steps through the lights in time order; its
    label gives the light's number (lights without a histogram, the quarantined ones, are
    skipped); at most ``max_lights`` (the first in time). Returns a bokeh layout.
    """
    from bokeh.layouts import column
    from bokeh.models import (
        ColumnDataSource,
        CustomJS,
        CustomJSTickFormatter,
        Div,
        HoverTool,
        Range1d,
        Slider,
    )

    edges, centres, width, order = _light_bins(edges, hists, lights, max_lights)
    if order.empty:
        return Div(text="<p>No calibrated lights in this session.</p>", width=900)
    n = int(lights.shape[0])
    keys, titles, columns = [], [], {}
    total = np.zeros(len(centres))
    for _, row in order.iterrows():
        counts = np.asarray(hists[row["path"]], dtype=float)
        total += counts
        key = f"light{int(row['frame'])}"
        keys.append(key)
        titles.append(_light_title(row, n))
        columns[key] = np.where(counts > 0, counts / counts.sum() / width, np.nan).astype(
            np.float32
        )
    session = np.where(total > 0, total / total.sum() / width, np.nan)
    frames = [int(f) for f in order["frame"]]
    per_light = ColumnDataSource(columns)
    shown = ColumnDataSource({"z": centres, "density": columns[keys[0]]})
    fig = bokeh_figure(
        width=900,
        height=320,
        y_axis_type="log",
        title=titles[0],
        x_axis_label=_XLABEL,
        y_axis_label="density",
        y_range=Range1d(1e-6, 1),
    )
    r_session = fig.step(centres, session, mode="center", color="#bbbbbb", line_width=4)
    r_model = _gaussian_line(fig, edges)
    r_light = fig.step("z", "density", source=shown, mode="center", color="#d62728", line_width=2)
    fig.add_tools(
        HoverTool(
            renderers=[r_light], tooltips=[("z", "@z{0.00}"), ("density", "@density{0.000e}")]
        )
    )
    add_legend(
        fig,
        [("session", [r_session]), ("noise model N(0,1)", [r_model]), ("this light", [r_light])],
    )
    slider = Slider(
        start=0,
        end=max(len(keys) - 1, 1),
        value=0,
        step=1,
        title="light",
        width=420,
        format=CustomJSTickFormatter(
            args={"frames": frames}, code="return String(frames[Math.round(tick)])"
        ),
        disabled=len(keys) < 2,
    )
    slider.js_on_change(
        "value",
        CustomJS(
            args={
                "slider": slider,
                "shown": shown,
                "lights": per_light,
                "keys": keys,
                "titles": titles,
                "fig": fig,
            },
            code=_SLIDER_JS,
        ),
    )
    return column(fig, slider)
