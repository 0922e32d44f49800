"""Residual histograms against the predicted noise model: the session, and each light (HoloMap)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from darkflow.viz._common import _hv, is_missing, light_name

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
    return hv.Curve((z, np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)), kdims=["z"], vdims=["density"],
                    label="noise model N(0,1)").opts(color="black", line_dash="dashed")  # fmt: skip


def make_residual_histograms(edges: np.ndarray, hists: dict[str, list[int]], lights: pd.DataFrame):
    """Session-wide residual histogram against the unit Gaussian the noise model predicts."""
    hv = _hv()
    data = prepare_residual_hists(edges, hists, lights)
    if data.empty:
        return hv.Div("<p>No calibrated lights in this session.</p>")
    total = data[data["light"] == "all"]
    centres = 0.5 * (edges[:-1] + edges[1:])
    density = np.where(total["density"].to_numpy() > 0, total["density"].to_numpy(), np.nan)
    plot = hv.Curve((centres, density), kdims=["z"], vdims=["density"], label="all lights").opts(
        interpolation="steps-mid", color="#1f77b4", line_width=3
    )
    worst = (
        lights.dropna(subset=["noise_ratio"]).sort_values("noise_ratio", ascending=False).head(3)
    )
    overlay = plot * _gaussian(hv, edges)
    for path in worst["path"]:
        sub = data[data["light"] == path]
        if not sub.empty:
            overlay = overlay * hv.Curve(
                sub, "z", "density", label=f"worst: {light_name(path)}"
            ).opts(alpha=0.8)
    return overlay.opts(
        width=1150, height=320, logy=True, ylim=(1e-6, 1), xlabel=_XLABEL,
        title="Background residuals against the predicted noise model", legend_position="right",
        tools=["hover"],
    )  # fmt: skip


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
    edges = np.asarray(edges, dtype=float)
    centres = 0.5 * (edges[:-1] + edges[1:])
    width = np.diff(edges)
    order = light_order(lights)
    order = order[order["path"].isin([p for p, c in hists.items() if np.sum(c) > 0])]
    if order.empty:
        return hv.Div("<p>No calibrated lights in this session.</p>")
    order = order.head(max_lights)
    total = np.sum([np.asarray(hists[p], dtype=float) for p in order["path"]], axis=0)
    total_density = np.where(total > 0, total / total.sum() / width, np.nan)
    session = hv.Curve((centres, total_density), kdims=["z"], vdims=["density"],
                       label="session").opts(color="#bbbbbb", line_width=4,
                                             interpolation="steps-mid")  # fmt: skip
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
        hv.opts.Overlay(width=900, height=320, logy=True, ylim=(1e-6, 1), xlabel=_XLABEL,
                        legend_position="right", fontsize={"title": 10}),
        hv.opts.Curve(tools=["hover"]),
    )  # fmt: skip
