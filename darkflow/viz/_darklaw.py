"""Dark current against temperature: the masters' dark signal, the fitted law and residuals.

Two measures of each dark master's signal per second, both with the master bias removed:

* **typical pixel**: the median over pixels of ``master - bias`` (what most of the frame
  holds, including anything that does not follow the law: amp glow, an offset);
* **hot pixels**: the median of ``master - bias`` over the stable hot pixels of a reference
  master of the configuration: the pixels matching fits the doubling temperature on, so these
  points follow the law when the law is right.

The law is ``D(T) = D0 * 2**((T - T0) / T_d)`` with the doubling temperature matching used;
its amplitude is fitted to each series (a straight line of known slope in ``ln D``).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkflow.exceptions import DarkflowError
from darkflow.viz._common import add_legend, bokeh_figure, central_rows, is_missing, message, stack

log = logging.getLogger(__name__)

LN2 = math.log(2.0)
DEFAULT_DOUBLING_C = 6.0
TYPICAL, HOT = "typical pixel", "hot pixels"
_SERIES_COLOURS = {TYPICAL: "#1f77b4", HOT: "#d62728"}
MIN_HOT = 20  # fewer stable hot pixels in the reference master: no hot-pixel series


def stored_laws(workdir: str | Path) -> dict[str, dict[str, Any]]:
    """Dark-current laws kept in ``<workdir>/thermal_profiles.json`` (config → law dict).

    A missing or unreadable file gives an empty dict (logged).
    """
    path = Path(workdir) / "thermal_profiles.json"
    if not path.is_file():
        return {}
    try:
        laws = json.loads(path.read_text(encoding="utf-8")).get("laws") or {}
    except (OSError, ValueError, AttributeError) as err:
        log.warning("cannot read the stored dark-current laws in %s: %s", path, err)
        return {}
    return {str(k): v for k, v in laws.items() if isinstance(v, dict)}


def law_for(
    config_signature: str,
    lights: pd.DataFrame,
    decisions: Sequence[Mapping[str, Any]] = (),
    stored: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The law matching used for a configuration: the decisions' ``dark_law`` (the most
    common), else the stored law, else the frame report's ``dark_law_doubling_c``, else 6 °C."""
    used = [
        d["dark_law"]
        for d in decisions
        if d.get("config_signature") == config_signature and isinstance(d.get("dark_law"), dict)
    ]
    if used:
        key, _ = Counter(json.dumps(law, sort_keys=True) for law in used).most_common(1)[0]
        return json.loads(key)
    if stored and config_signature in stored:
        return dict(stored[config_signature])
    if {"dark_law_doubling_c", "config_signature"} <= set(lights.columns):
        mine = lights[lights["config_signature"] == config_signature]
        td = mine["dark_law_doubling_c"].dropna()
        if len(td):
            src = mine.get("dark_law_source", pd.Series(dtype=object)).dropna()
            return {
                "doubling_temp_c": float(td.median()),
                "sigma_doubling_c": None,
                "source": str(src.iloc[0]) if len(src) else "frame report",
            }
    return {"doubling_temp_c": DEFAULT_DOUBLING_C, "sigma_doubling_c": None, "source": "default"}


def master_dark_signals(
    masters: pd.DataFrame,
    load_master: Callable[[str], Any],
    *,
    configs: Iterable[str] | None = None,
    max_pixels: int = 2_000_000,
) -> dict[str, dict[str, float]]:
    """Dark signal of each dark master, bias removed: typical pixel and hot pixels.

    Parameters
    ----------
    masters
        ``masters.csv`` rows (``master_id``, ``kind``, ``config_signature``, ``n_frames``,
        ``bias_master_id``).
    load_master
        ``Workdir.load_master``.
    configs
        Only masters of these configurations (default: all).
    max_pixels
        Big frames are measured on a central band of rows of about this many pixels.

    Returns
    -------
    dict
        master id → ``{"typical": ADU, "hot": ADU or NaN, "seconds": s}``: the median of the
        per-pixel ``master - bias`` (not the difference of the medians, which integer ADU
        quantise), its median over the stable hot pixels (persistence ≥ 0.9) of the
        configuration's reference master (the one with the most frames), and the exposure it
        accumulated (the master's minus the bias's). Masters that still hold the bias and have
        no master bias, or cannot be read, are left out (logged).
    """
    wanted = None if configs is None else set(configs)
    kinds = masters["kind"].astype(str) if "kind" in masters else pd.Series("dark", masters.index)
    darks = masters[kinds == "dark"].drop_duplicates("master_id")
    if wanted is not None:
        darks = darks[darks["config_signature"].astype(str).isin(wanted)]
    darks = darks.sort_values(["n_frames", "master_id"], ascending=[False, True])
    out: dict[str, dict[str, float]] = {}
    cache: dict[str, Any] = {}
    hot_sets: dict[str, np.ndarray | None] = {}

    def load(master_id: str):
        if master_id not in cache:
            cache[master_id] = load_master(master_id)
        return cache[master_id]

    for _, row in darks.iterrows():
        master_id, sig = str(row["master_id"]), str(row["config_signature"])
        try:
            master = load(master_id)
            data = central_rows(master.data, max_pixels).astype(np.float64)
            if not master.meta.includes_bias:
                diff = data
                seconds = master.meta.exptime_s - (master.meta.bias_exptime_s or 0.0)
            elif not is_missing(row.get("bias_master_id")):
                bias = load(str(row["bias_master_id"]))
                if bias.data.shape != master.data.shape:
                    continue
                diff = data - central_rows(bias.data, max_pixels)
                seconds = master.meta.exptime_s - (bias.meta.exptime_s or 0.0)
            else:
                continue
            if sig not in hot_sets:  # the first (most frames) master of the configuration
                hot = central_rows(master.hot_persistence, max_pixels) >= 0.9 - 1e-5
                hot_sets[sig] = hot if np.count_nonzero(hot) >= MIN_HOT else None
        except DarkflowError as err:
            log.warning("dark signal of master %s: %s", master_id, err)
            continue
        hot = hot_sets.get(sig)
        out[master_id] = {
            "typical": float(np.nanmedian(diff)),
            "hot": float(np.nanmedian(diff[hot])) if hot is not None else math.nan,
            "seconds": float(seconds),
        }
    return out


def _csv_signals(darks: pd.DataFrame, masters: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Typical signal from ``median_adu`` differences (used when no signals were measured)."""
    unique = masters.drop_duplicates("master_id")
    by_id = unique.set_index(unique["master_id"].astype(str))
    out = {}
    for _, m in darks.iterrows():
        bias_id = m.get("bias_master_id")
        if is_missing(bias_id) or str(bias_id) not in by_id.index:
            continue
        bias = by_id.loc[str(bias_id)]
        out[str(m["master_id"])] = {
            "typical": float(m["median_adu"]) - float(bias["median_adu"]),
            "hot": math.nan,
            "seconds": float(m["exptime_s"]) - float(bias.get("exptime_s") or 0.0),
        }
    return out


def _fit_series(pts: pd.DataFrame, slope: float) -> tuple[pd.DataFrame, float]:
    log_d = np.log(pts["dark_rate_adu_s"].to_numpy())
    t = pts["temp_c"].to_numpy()
    intercept = float(np.mean(log_d - slope * t))
    resid = log_d - (intercept + slope * t)
    return pts.assign(
        model_adu_s=np.exp(intercept + slope * t),
        residual_pct=100.0 * np.expm1(resid),
        residual_c=resid / slope,
    ), intercept


def prepare_dark_law(
    masters: pd.DataFrame,
    lights: pd.DataFrame,
    decisions: Sequence[Mapping[str, Any]] = (),
    stored: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    signals: Mapping[str, Mapping[str, float]] | None = None,
    n_model: int = 100,
) -> dict[str, dict[str, Any]]:
    """Dark current per second of the masters against temperature, with the law and residuals.

    Parameters
    ----------
    masters, lights
        ``Workdir.masters_of(night)`` and ``Workdir.lights(night=, session=)``.
    decisions, stored
        ``Workdir.decisions(night)`` and :func:`stored_laws`: where the law comes from
        (:func:`law_for`).
    signals
        :func:`master_dark_signals`; without it the typical signal is ``median_adu`` minus the
        bias master's (coarse: integer ADU quantise the medians) and there is no hot-pixel
        series.

    Returns
    -------
    dict
        config signature → ``{"points", "curve", "law", "lights_temp", "skipped"}``: points
        (``series, master_id, temp_c, exptime_s, n_frames, status, dark_rate_adu_s,
        model_adu_s, residual_pct, residual_c``), the law's curve per series (``series,
        temp_c, model_adu_s``), the law dict, the lights' (min, max) temperature and the number
        of dark masters without a usable signal (no temperature, no master bias).
    """
    out: dict[str, dict[str, Any]] = {}
    if lights.empty or "config_signature" not in lights or masters.empty:
        return out
    kinds = masters["kind"].astype(str) if "kind" in masters else pd.Series("dark", masters.index)
    for sig in sorted(lights["config_signature"].dropna().astype(str).unique()):
        darks = masters[(masters["config_signature"] == sig) & (kinds == "dark")]
        darks = darks.drop_duplicates("master_id")
        measured = dict(signals) if signals is not None else _csv_signals(darks, masters)
        rows, skipped, no_temp = [], 0, 0
        for _, m in darks.iterrows():
            s = measured.get(str(m["master_id"]))
            if s is None or is_missing(m.get("temp_c")) or not s["seconds"] > 0:
                skipped += 1
                no_temp += is_missing(m.get("temp_c"))
                continue
            for series, key in ((TYPICAL, "typical"), (HOT, "hot")):
                value = s[key] / s["seconds"]
                if math.isfinite(value) and value > 0:
                    rows.append(
                        {
                            "series": series,
                            "master_id": str(m["master_id"]),
                            "temp_c": float(m["temp_c"]),
                            "exptime_s": m.get("exptime_s"),
                            "n_frames": m.get("n_frames"),
                            "status": m.get("status"),
                            "dark_rate_adu_s": value,
                        }
                    )
        mine = lights[lights["config_signature"] == sig]
        col = "temp_used_c" if "temp_used_c" in mine else "ccd_temp_c"
        temps = pd.to_numeric(mine[col], errors="coerce").dropna() if col in mine else []
        lights_temp = (float(min(temps)), float(max(temps))) if len(temps) else None
        law = law_for(sig, lights, decisions, stored)
        slope = LN2 / float(law.get("doubling_temp_c") or DEFAULT_DOUBLING_C)
        parts, curves = [], []
        for series, pts in pd.DataFrame(rows).groupby("series", sort=False) if rows else []:
            fitted, intercept = _fit_series(pts, slope)
            parts.append(fitted)
            lo, hi = float(pts["temp_c"].min()), float(pts["temp_c"].max())
            if lights_temp:
                lo, hi = min(lo, lights_temp[0]), max(hi, lights_temp[1])
            grid = np.linspace(lo - 1.0, hi + 1.0, n_model)
            curves.append(
                pd.DataFrame(
                    {
                        "series": series,
                        "temp_c": grid,
                        "model_adu_s": np.exp(intercept + slope * grid),
                    }
                )
            )
        out[sig] = {
            "points": pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(rows),
            "curve": pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
            "law": law,
            "lights_temp": lights_temp,
            "skipped": skipped,
            "skipped_no_temp": no_temp,
            "n_darks": len(darks),
        }
    return out


def describe_law(law: Mapping[str, Any]) -> str:
    """``T_d = 5.94 ± 0.08 °C (fitted; supports scaling)`` for a law dict."""
    td, sigma = law.get("doubling_temp_c"), law.get("sigma_doubling_c")
    text = f"T_d = {float(td):.2f}" if not is_missing(td) else "T_d = ?"
    if not is_missing(sigma):
        text += f" ± {float(sigma):.2f}"
    notes = [str(law.get("source") or "default")]
    if law.get("supports_scaling"):
        notes.append("supports scaling")
    elif law.get("reasons"):
        notes.append("no scaling: " + ", ".join(map(str, law["reasons"])))
    return f"{text} °C ({'; '.join(notes)})"


def _why_no_law(prepared: Mapping[str, Mapping[str, Any]]) -> str:
    """Why no configuration has a point: said for this session's camera, not in general."""
    entries = list(prepared.values())
    head = "The dark current cannot be plotted against temperature: "
    if not entries or not sum(e.get("n_darks", 1) for e in entries):
        return head + "no dark master of this session's configuration."
    cooled = any(e.get("lights_temp") for e in entries)
    no_temp = sum(e.get("skipped_no_temp", 0) for e in entries)
    if not cooled and no_temp:
        return head + "the camera records no sensor temperature (uncooled camera)."
    if no_temp >= sum(e.get("skipped", 0) for e in entries):
        return head + "its dark masters have no sensor temperature."
    return head + (
        "no master bias of this configuration, so the dark signal cannot be separated from "
        "the offset (take bias frames with the darks)."
    )


def _log_range(fig, *series) -> None:
    """An explicit log range around the positive values, ticks at 1, 2 and 5 of each decade.

    Bokeh's automatic range on a log axis is computed over every glyph's data; a law curve
    that reaches zero or below leaves it a range whose ticks crowd into one decade.
    """
    from bokeh.models import FixedTicker, PrintfTickFormatter, Range1d

    values = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in series])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return
    lo, hi = float(values.min()) / 1.5, float(values.max()) * 1.5
    fig.y_range = Range1d(lo, hi)
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    ticks = [m * 10.0**e for e in decades for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]
    fig.yaxis.ticker = FixedTicker(ticks=ticks)
    fig.yaxis.formatter = PrintfTickFormatter(format="%g")


def make_dark_law(prepared: Mapping[str, Mapping[str, Any]]):
    """Dark current against temperature with the law and the lights' temperatures, + residuals.

    Per configuration: the masters' dark current per second (log scale; blue: typical pixel,
    red: hot pixels), the law through each series, the band of the session's light
    temperatures, and the residuals from the law (percent; hover for °C). Drawn with bokeh
    directly (a column of figures; a note when there is nothing to draw).
    """
    from bokeh.models import BoxAnnotation, ColumnDataSource, HoverTool, Span

    panels = []
    for sig, entry in prepared.items():
        pts, law = entry["points"], entry["law"]
        if pts.empty:
            continue
        fig = bokeh_figure(
            width=900,
            height=300,
            y_axis_type="log",
            title=str(sig),
            x_axis_label="sensor °C (band: this session's lights)",
            y_axis_label="dark current (ADU/s)",
        )
        resid = bokeh_figure(
            width=900,
            height=170,
            title=f"law: {describe_law(law)}",
            title_size="9pt",
            x_axis_label="sensor °C",
            y_axis_label="residual from law (%)",
        )
        resid.yaxis.ticker.desired_num_ticks = 4
        resid.add_layout(Span(location=0, dimension="width", line_color="gray"))
        if entry.get("lights_temp"):
            lo, hi = entry["lights_temp"]
            fig.add_layout(
                BoxAnnotation(
                    left=lo - 0.05,
                    right=hi + 0.05,
                    fill_color="#1f77b4",
                    fill_alpha=0.12,
                    line_alpha=0,
                )
            )
        items, dots, rdots = [], [], []
        vdims = ["dark_rate_adu_s", "master_id", "exptime_s", "n_frames", "status", "residual_pct"]
        for series, part in pts.groupby("series", sort=False):
            colour = _SERIES_COLOURS.get(str(series), "#555")
            curve = entry["curve"][entry["curve"]["series"] == series]
            law_line = fig.line(
                curve["temp_c"].to_numpy(),
                curve["model_adu_s"].to_numpy(),
                color=colour,
                line_dash="dashed",
            )
            source = ColumnDataSource(
                part[[c for c in ("temp_c", *vdims, "residual_c") if c in part]].reset_index(
                    drop=True
                )
            )
            dot = fig.scatter("temp_c", "dark_rate_adu_s", source=source, size=9, color=colour)
            rdots.append(
                resid.scatter("temp_c", "residual_pct", source=source, size=7, color=colour)
            )
            items += [(f"law ({series})", [law_line]), (f"{series}", [dot])]
            dots.append(dot)
        tips = [("sensor °C", "@temp_c{0.00}")]
        fig.add_tools(
            HoverTool(renderers=dots, tooltips=tips + [(c, f"@{{{c}}}") for c in vdims if c in pts])
        )
        rtips = [
            *tips,
            ("residual %", "@residual_pct{0.0}"),
            ("residual °C", "@residual_c{0.00}"),
            ("master_id", "@master_id"),
        ]
        resid.add_tools(HoverTool(renderers=rdots, tooltips=rtips))
        _log_range(fig, pts["dark_rate_adu_s"], entry["curve"]["model_adu_s"])
        add_legend(fig, items)
        panels += [fig, resid]
    if not panels:
        return message(_why_no_law(prepared))
    return stack(panels)
