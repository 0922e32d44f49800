"""Thermal dashboards: the cooler's drift through a session and through the night."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from darkflow.thermal import DriftFit
from darkflow.viz._common import _hv, add_legend, bokeh_figure, message, padded_range, stack


# ----------------------------------------------------------------------------- drift
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


def _drift_panels(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each configuration's drift panels show (points, model, set-point, axis ranges,
    titles, a note for too few points): one description for both drawings of the dashboard."""
    prepared = prepare_drift(entries)
    panels = []
    for entry in entries:
        sig = entry["config_signature"]
        if sig not in prepared:
            continue
        pts, curve = prepared[sig], prepared[sig + "::model"]
        fit = entry["fit"]
        setpoint = fit.get("set_temp_c")
        n = len(pts)
        panels.append(
            {
                "sig": sig,
                "pts": pts,
                "setpoint": setpoint,
                # a drift fitted through one or two points is not worth drawing
                "curve": curve if n >= 3 else None,
                # the set-point belongs on the axis even when the cooler missed it by many degrees
                "ylim": padded_range([*pts["temp_c"], *curve["model_c"], setpoint], min_span=0.5),
                "xlim": _time_range(pts["time"]),
                "note": (
                    f"{n} light{'s' * (n != 1)} with a temperature: too few to fit a drift."
                    if n < 3
                    else None
                ),
                "fit_title": f"fit: {describe_drift(fit)}",
                "resid_ylim": padded_range([*pts["residual_c"], 0.0], min_span=0.05),
            }
        )
    return panels


_NO_DRIFT = "No sensor temperatures recorded for this session (uncooled camera?)."


def make_drift_dashboard(entries: Sequence[dict[str, Any]]):
    """Sensor temperature vs time with the fitted cooler model, and its residuals (holoviews;
    :func:`make_drift_figures` draws the same with bokeh directly)."""
    hv = _hv()
    panels = []
    for p in _drift_panels(entries):
        pts, xlim, setpoint = p["pts"], p["xlim"], p["setpoint"]
        measured = hv.Scatter(pts, "time", ["temp_c", "path"], label="measured").opts(
            size=6, tools=["hover"], color="#1f77b4"
        )
        overlay = measured
        if p["curve"] is not None:
            overlay = overlay * hv.Curve(p["curve"], "time", "model_c", label="fitted model").opts(
                color="#d62728"
            )
        if setpoint is not None:
            overlay = overlay * hv.Curve(
                pd.DataFrame({"time": list(xlim), "model_c": [setpoint] * 2}),
                "time",
                "model_c",
                label=f"set-point {setpoint:g} °C",
            ).opts(color="gray", line_dash="dashed")
        overlay = overlay.opts(
            title=p["sig"],
            width=900,
            height=280,
            ylabel="sensor °C",
            xlabel="UTC",
            legend_position="right",
            fontsize={"title": 10},
            ylim=p["ylim"],
            xlim=xlim,
            yticks=6,
        )
        panels.append(overlay)
        if p["note"]:
            panels.append(message(p["note"]))
            continue
        resid = hv.Scatter(pts, "time", ["residual_c", "path"]).opts(
            width=900,
            height=170,
            size=4,
            color="#555",
            tools=["hover"],
            ylabel="residual °C",
            xlabel="UTC",
            title=p["fit_title"],
            fontsize={"title": 9},
            ylim=p["resid_ylim"],
            xlim=xlim,
            yticks=4,
        )
        panels.append(resid * hv.HLine(0).opts(color="gray"))
    if not panels:
        return message(_NO_DRIFT)
    return hv.Layout(panels).cols(1).opts(shared_axes=False)


def make_drift_figures(entries: Sequence[dict[str, Any]]):
    """The drift dashboard (:func:`make_drift_dashboard`) drawn with bokeh directly, as the
    report pages show it: a column of figures (or a note). Returns a bokeh layout."""
    from bokeh.models import ColumnDataSource, Div, HoverTool, Range1d, Span

    tips = [("UTC", "@time{%F %T}"), ("light", "@path")]
    fmt = {"@time": "datetime"}
    panels: list[Any] = []
    for p in _drift_panels(entries):
        pts, xlim, setpoint = p["pts"], p["xlim"], p["setpoint"]
        source = ColumnDataSource(pts[["time", "temp_c", "residual_c", "path"]])
        fig = bokeh_figure(
            width=900,
            height=280,
            title=p["sig"],
            x_axis_type="datetime",
            x_range=Range1d(*xlim),
            y_range=Range1d(*p["ylim"]),
            x_axis_label="UTC",
            y_axis_label="sensor °C",
        )
        fig.yaxis.ticker.desired_num_ticks = 6
        dots = fig.scatter("time", "temp_c", source=source, size=6, color="#1f77b4")
        items = [("measured", [dots])]
        if p["curve"] is not None:
            c = p["curve"]
            items.append(("fitted model", [fig.line(c["time"], c["model_c"], color="#d62728")]))
        if setpoint is not None:
            line = fig.line(list(xlim), [setpoint] * 2, color="gray", line_dash="dashed")
            items.append((f"set-point {setpoint:g} °C", [line]))
        fig.add_tools(
            HoverTool(renderers=[dots], tooltips=[*tips, ("sensor °C", "@temp_c")], formatters=fmt)
        )
        add_legend(fig, items)
        panels.append(fig)
        if p["note"]:
            panels.append(
                Div(text=f"<p style='margin:4px 0;font-size:13px'>{p['note']}</p>", width=900)
            )
            continue
        resid = bokeh_figure(
            width=900,
            height=170,
            title=p["fit_title"],
            title_size="9pt",
            x_axis_type="datetime",
            x_range=Range1d(*xlim),
            y_range=Range1d(*p["resid_ylim"]),
            x_axis_label="UTC",
            y_axis_label="residual °C",
        )
        resid.yaxis.ticker.desired_num_ticks = 4
        resid.add_layout(Span(location=0, dimension="width", line_color="gray"))
        rdots = resid.scatter("time", "residual_c", source=source, size=4, color="#555")
        resid.add_tools(
            HoverTool(
                renderers=[rdots],
                formatters=fmt,
                tooltips=[*tips, ("residual °C", "@residual_c{0.000}")],
            )
        )
        panels.append(resid)
    if not panels:
        return Div(text=f"<p style='margin:4px 0;font-size:13px'>{_NO_DRIFT}</p>", width=900)
    return stack(panels)


def _time_range(times: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The lights' time span with a margin; at least half an hour (one light: centred on it)."""
    lo, hi = times.min(), times.max()
    span = max(hi - lo, pd.Timedelta(minutes=30))
    mid = lo + (hi - lo) / 2
    return (mid - span * 0.55, mid + span * 0.55)


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
        return message("No sensor temperatures recorded this night (uncooled cameras only).")
    return hv.Overlay(curves).opts(
        width=900,
        height=320,
        ylabel="sensor °C",
        xlabel="UTC",
        legend_position="right",
        title="Sensor temperature of every session",
    )
