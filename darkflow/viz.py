"""Dashboards in three layers: prepare data (pandas) → make holoviews elements → lay them out.

``prepare_*`` functions turn what :class:`darkflow.results.Workdir` returns into tidy DataFrames
(no plotting imports); ``make_*`` functions build holoviews elements from them; notebooks and
widgets lay the elements out. holoviews and bokeh are imported lazily, so the core package works
headless and a missing plotting stack gives a clear error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from darkflow.exceptions import MissingDependencyError
from darkflow.thermal import DriftFit

if TYPE_CHECKING:  # pragma: no cover
    import holoviews as hv

__all__ = [
    "STATUS_COLORS",
    "confidence_table",
    "make_drift_dashboard",
    "make_hot_pixel_map",
    "make_residual_histograms",
    "prepare_drift",
    "prepare_hot_pixels",
    "prepare_residual_hists",
    "quarantine_table",
    "setup_notebook",
]

STATUS_COLORS = {"calibrated": "#d9f2d9", "degraded": "#fff1c2", "quarantined": "#f9d0d0"}


def _hv():
    try:
        import holoviews as hv
    except ImportError as err:
        raise MissingDependencyError("holoviews", "darkflow dashboards") from err
    return hv


def setup_notebook(*, inline: bool = True):
    """Load the bokeh backend with BokehJS embedded (reports must open offline); returns hv."""
    hv = _hv()
    hv.extension("bokeh", inline=inline, logo=False)
    return hv


# ----------------------------------------------------------------------------- thermal
def prepare_drift(
    entries: Sequence[dict[str, Any]], *, n_model: int = 200
) -> dict[str, pd.DataFrame]:
    """Measured points, fitted model curve and residuals per configuration group."""
    out: dict[str, pd.DataFrame] = {}
    for entry in entries:
        fit = DriftFit.from_dict(entry["fit"])
        pts = pd.DataFrame(entry["points"])
        if pts.empty:
            continue
        pts["time"] = pd.to_datetime(pts["time"], utc=True).dt.tz_localize(None)
        pts = pts.dropna(subset=["temp_c"])
        if pts.empty or fit.t0_utc is None:
            continue
        t0 = (
            pd.Timestamp(fit.t0_utc).tz_convert(None)
            if pd.Timestamp(fit.t0_utc).tzinfo
            else pd.Timestamp(fit.t0_utc)
        )
        hours = (pts["time"] - t0).dt.total_seconds() / 3600.0
        pts["model_c"] = fit.predict(hours.to_numpy())
        pts["residual_c"] = pts["temp_c"] - pts["model_c"]
        grid_h = np.linspace(0.0, max(float(hours.max()), 1e-3), n_model)
        curve = pd.DataFrame(
            {"time": t0 + pd.to_timedelta(grid_h, unit="h"), "model_c": fit.predict(grid_h)}
        )
        out[entry["config_signature"]] = pts.assign(kind="light")
        out[entry["config_signature"] + "::model"] = curve
        out[entry["config_signature"] + "::fit"] = pd.DataFrame([entry["fit"]])
    return out


def describe_drift(fit: dict[str, Any]) -> str:
    """One line for a fitted drift model, in the operator's words."""
    drift = f"{fit['drift_c_per_h']:+.2f} °C/h"
    text = {
        "settling": f"settles with a lag of {(fit.get('tau_h') or 0) * 60:.0f} min, then drifts {drift}",
        "curved": f"drifts {drift} on average, curving (cooler following the ambient?)",
    }.get(fit.get("model", "line"), f"drifts {drift}")
    text += f"; fit rms {fit['rms_c']:.2f} °C"
    if fit.get("reaches_setpoint") is False:
        text += f"; set-point missed by {fit['setpoint_offset_c']:+.1f} °C"
    return text


def make_drift_dashboard(entries: Sequence[dict[str, Any]]) -> hv.Layout | hv.Div:
    """Sensor temperature vs time with the fitted cooler model, and its residuals."""
    hv = _hv()
    prepared = prepare_drift(entries)
    panels = []
    for entry in entries:
        sig = entry["config_signature"]
        if sig not in prepared:
            continue
        pts, curve = prepared[sig], prepared[sig + "::model"]
        fit = entry["fit"]
        title = f"{sig} — {describe_drift(fit)}"
        measured = hv.Scatter(pts, "time", ["temp_c", "path"], label="measured").opts(
            size=6, tools=["hover"], color="#1f77b4"
        )
        model = hv.Curve(curve, "time", "model_c", label="fitted model").opts(color="#d62728")
        overlay = measured * model
        if fit.get("set_temp_c") is not None:
            overlay = overlay * hv.HLine(fit["set_temp_c"]).opts(color="gray", line_dash="dashed")
        overlay = overlay.opts(
            title=title, width=900, height=280, ylabel="sensor °C", xlabel="UTC",
            legend_position="top_left", fontsize={"title": 10},
        )  # fmt: skip
        resid = hv.Scatter(pts, "time", ["residual_c", "path"]).opts(
            width=900, height=140, size=4, color="#555", tools=["hover"], ylabel="residual °C",
            xlabel="UTC",
        )  # fmt: skip
        panels.extend([overlay, resid * hv.HLine(0).opts(color="gray")])
    if not panels:
        return hv.Div("<p>No sensor temperatures recorded for this session (uncooled camera?).</p>")
    return hv.Layout(panels).cols(1).opts(shared_axes=False)


# ----------------------------------------------------------------------------- residuals
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


def make_residual_histograms(edges: np.ndarray, hists: dict[str, list[int]], lights: pd.DataFrame):
    """Session-wide residual histogram against the unit Gaussian the noise model predicts."""
    hv = _hv()
    data = prepare_residual_hists(edges, hists, lights)
    if data.empty:
        return hv.Div("<p>No calibrated lights in this session.</p>")
    z = np.linspace(edges[0], edges[-1], 400)
    gauss = hv.Curve((z, np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)), kdims=["z"], vdims=["density"],
                     label="noise model N(0,1)").opts(color="black", line_dash="dashed")  # fmt: skip
    total = data[data["light"] == "all"]
    centres = 0.5 * (edges[:-1] + edges[1:])
    density = np.where(total["density"].to_numpy() > 0, total["density"].to_numpy(), np.nan)
    plot = hv.Curve((centres, density), kdims=["z"], vdims=["density"], label="all lights").opts(
        interpolation="steps-mid", color="#1f77b4", line_width=3
    )
    worst = (
        lights.dropna(subset=["noise_ratio"]).sort_values("noise_ratio", ascending=False).head(3)
    )
    overlay = plot * gauss
    for path in worst["path"]:
        sub = data[data["light"] == path]
        if not sub.empty:
            name = path.rsplit("/", 1)[-1]
            overlay = overlay * hv.Curve(sub, "z", "density", label=f"worst: {name}").opts(
                alpha=0.8
            )
    return overlay.opts(
        width=900, height=320, logy=True, ylim=(1e-6, 1), xlabel="(calibrated − background) / predicted σ",
        title="Background residuals against the predicted noise model", legend_position="top_right",
        tools=["hover"],
    )  # fmt: skip


# ----------------------------------------------------------------------------- hot pixels
def block_max(image: np.ndarray, max_size: int = 400) -> tuple[np.ndarray, int]:
    """Downsample by taking the max of each block (hot pixels stay visible); returns (img, factor)."""
    factor = max(1, math.ceil(max(image.shape) / max_size))
    if factor == 1:
        return image, 1
    ny, nx = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    view = image[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    return np.nanmax(view, axis=(1, 3)), factor


def prepare_hot_pixels(persistence: np.ndarray, *, max_size: int = 400) -> dict[str, Any]:
    img, factor = block_max(np.asarray(persistence, dtype=float), max_size)
    values = persistence[np.isfinite(persistence) & (persistence > 0)]
    counts, edges = np.histogram(values, bins=np.linspace(0, 1, 21))
    return {
        "image": img,
        "factor": factor,
        "hist": (edges, counts),
        "n_stable": int(np.count_nonzero(persistence >= 0.9)),
        "n_transient": int(np.count_nonzero((persistence > 0) & (persistence < 0.5))),
    }


def make_hot_pixel_map(persistence: np.ndarray, *, title: str = "", max_size: int = 400):
    """Hot-pixel persistence map (fraction of darks in which each pixel was high) + histogram."""
    hv = _hv()
    prep = prepare_hot_pixels(persistence, max_size=max_size)
    img = prep["image"]
    ny, nx = persistence.shape
    image = hv.Image(img[::-1], bounds=(0, 0, nx, ny), kdims=["x", "y"], vdims=["persistence"]).opts(
        cmap="fire", colorbar=True, clim=(0, 1), width=520, height=int(520 * ny / max(nx, 1)) + 40,
        tools=["hover"], bgcolor="black",
        title=f"{title} (block max ×{prep['factor']})" if prep["factor"] > 1 else title,
    )  # fmt: skip
    edges, counts = prep["hist"]
    hist = hv.Histogram(
        (edges, np.maximum(counts, 0.5)), kdims=["persistence"], vdims=["pixels"]
    ).opts(
        logy=True, width=380, height=300, tools=["hover"], color="#d62728",
        title=f"{prep['n_stable']} stable hot, {prep['n_transient']} transient",
    )  # fmt: skip
    return (image + hist).opts(shared_axes=False)


# ----------------------------------------------------------------------------- tables
TABLE_COLUMNS = [
    "path", "status", "confidence", "master_id", "scale_mode", "scale_factor",
    "delta_exptime_s", "delta_temp_c", "delta_time_h", "noise_ratio", "reasons",
]  # fmt: skip


def _short_path(path: str) -> str:
    parts = str(path).split("/")
    return "/".join(parts[-2:])


def confidence_table(lights: pd.DataFrame, columns: Sequence[str] = TABLE_COLUMNS):
    """Frame-level confidence table (pandas Styler), rows coloured by status."""
    table = lights[[c for c in columns if c in lights.columns]].copy()
    table["path"] = table["path"].map(_short_path)
    table = table.sort_values(["status", "confidence", "path"], ascending=[True, False, True])

    def colour(row: pd.Series) -> list[str]:
        return [f"background-color: {STATUS_COLORS.get(row['status'], 'white')}"] * len(row)

    return (
        table.style.apply(colour, axis=1)
        .format(precision=3, na_rep="")
        .hide(axis="index")
        .set_table_attributes('class="df-confidence"')
    )


def quarantine_table(
    lights: pd.DataFrame, reason_text: dict[str, str] | None = None
) -> pd.DataFrame:
    """The quarantined lights with their reasons spelled out."""
    q = lights[lights["status"] == "quarantined"][["path", "reasons"]].copy()
    q["path"] = q["path"].map(_short_path)
    if reason_text:
        q["why"] = (
            q["reasons"]
            .fillna("")
            .map(lambda codes: "; ".join(reason_text.get(c, c) for c in str(codes).split(";") if c))
        )
    return q.reset_index(drop=True)


# ----------------------------------------------------------------------------- night overview
def session_table(lights: pd.DataFrame, *, link_reports: bool = True):
    """One row per session: counts by status, median confidence and noise ratio, report link."""
    if lights.empty:
        return pd.DataFrame(columns=["session", "lights"])
    g = lights.groupby("session", dropna=True)
    table = pd.DataFrame(
        {
            "lights": g.size(),
            "calibrated": g["status"].apply(lambda s: int((s == "calibrated").sum())),
            "degraded": g["status"].apply(lambda s: int((s == "degraded").sum())),
            "quarantined": g["status"].apply(lambda s: int((s == "quarantined").sum())),
            "median confidence": g["confidence"].median().round(3),
            "median noise ratio": g["noise_ratio"].median().round(3),
            "instrument": g["instrument"].first(),
        }
    ).reset_index()

    def colour(row: pd.Series) -> list[str]:
        worst = (
            "quarantined" if row["quarantined"] else "degraded" if row["degraded"] else "calibrated"
        )
        return [f"background-color: {STATUS_COLORS[worst]}"] * len(row)

    styler = table.style.apply(colour, axis=1).hide(axis="index").format(precision=3, na_rep="")
    if link_reports:
        styler = styler.format({"session": lambda s: f'<a href="{s}.html">{s}</a>'})
    return styler


def make_night_thermal(entries: Sequence[dict[str, Any]]):
    """Sensor temperature of every session of the night on one time axis."""
    hv = _hv()
    curves = []
    for entry in entries:
        pts = pd.DataFrame(entry["points"]).dropna(subset=["temp_c"])
        if pts.empty:
            continue
        pts["time"] = pd.to_datetime(pts["time"], utc=True).dt.tz_localize(None)
        label = f"{entry['session']}"
        curves.append(
            hv.Curve(pts, "time", "temp_c", label=label).opts(tools=["hover"])
            * hv.Scatter(pts, "time", "temp_c", label=label).opts(size=4)
        )
    if not curves:
        return hv.Div("<p>No sensor temperatures recorded this night.</p>")
    return hv.Overlay(curves).opts(
        width=900, height=320, ylabel="sensor °C", xlabel="UTC", legend_position="right",
        title="Sensor temperature of every session",
    )  # fmt: skip


def make_confidence_timeline(lights: pd.DataFrame):
    """Confidence of every light against time, coloured by status."""
    hv = _hv()
    data = lights.dropna(subset=["date_obs_utc"]).copy()
    if data.empty:
        return hv.Div("<p>No dated lights.</p>")
    data["time"] = pd.to_datetime(data["date_obs_utc"], utc=True).dt.tz_localize(None)
    data["light"] = data["path"].map(_short_path)
    points = [
        hv.Scatter(data[data["status"] == status], "time", ["confidence", "light", "session", "reasons"],
                   label=status).opts(color=color, size=7, tools=["hover"])
        for status, color in (("calibrated", "#2ca02c"), ("degraded", "#e6a700"), ("quarantined", "#d62728"))
        if (data["status"] == status).any()
    ]  # fmt: skip
    return hv.Overlay(points).opts(
        width=900, height=280, ylim=(-0.05, 1.05), xlabel="UTC", legend_position="right",
        title="Confidence of every light",
    )  # fmt: skip


def advisories(decisions: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The acquisition advisories of the night: which darks to take, once per configuration."""
    rows = {}
    for d in decisions:
        adv = d.get("advisory")
        if not adv:
            continue
        key = (adv.get("config_signature"), adv.get("exptime_s"), adv.get("temp_c"))
        entry = rows.setdefault(key, {**adv, "lights": 0})
        entry["lights"] += 1
    columns = ["instrument", "exptime_s", "temp_c", "n_frames", "lights", "text"]
    return pd.DataFrame(list(rows.values()), columns=columns)
