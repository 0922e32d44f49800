"""Per-light dashboards: match decisions, the confidence table, night overview tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from darkflow.model import LightStatus
from darkflow.viz._common import (
    SORTABLE,
    STATUS_COLORS,
    STATUS_MARKERS,
    _hv,
    add_legend,
    bokeh_figure,
    fmt_number,
    is_missing,
    light_name,
    padded_range,
    row_colours,
    short_path,
    stack,
    wrap_text,
)

TABLE_COLUMNS = [
    "path",
    "status",
    "confidence",
    "weight",
    "master_id",
    "scale_mode",
    "scale_factor",
    "delta_exptime_s",
    "delta_temp_c",
    "delta_time_h",
    "noise_ratio",
    "top_cause",
    "reasons",
]


def _styled(table: pd.DataFrame, statuses, css_class: str, palette=STATUS_COLORS):
    colours = row_colours(list(statuses), palette, table.shape[1])
    return (
        table.style.apply(lambda r: colours[r.name], axis=1)
        .format(fmt_number)
        .hide(axis="index")
        .set_table_attributes(f'class="{css_class} {SORTABLE}"')
    )


def confidence_table(lights: pd.DataFrame, columns: Sequence[str] = TABLE_COLUMNS):
    """Frame-level confidence table (pandas Styler): rows coloured by status, sortable.

    The offline report template makes every table of class ``df-sortable`` sortable by a click
    on a column header (a small inline script; the colours follow their rows).
    """
    table = lights[[c for c in columns if c in lights.columns]].copy()
    table["path"] = table["path"].map(short_path)
    table = table.sort_values(["status", "confidence", "path"], ascending=[True, False, True])
    table = table.reset_index(drop=True)
    return wrap_text(
        _styled(table, table["status"], "df-confidence"), ["reasons"], min_width="12em"
    )


def text_table(table: pd.DataFrame, *, wrap: Sequence[str] = (), css_class: str = "df-text"):
    """A plain table for a report: no index column, a dash for a missing value, long text wrapped.

    Nothing is cut: a sentence is shown whole (pandas would cut it at 50 characters with
    "..."), wrapping inside its column.
    """

    def cell(value: Any) -> str:
        return "—" if is_missing(value) else fmt_number(value)

    styler = (
        table.reset_index(drop=True)
        .style.format(cell)
        .hide(axis="index")
        .set_table_attributes(f'class="{css_class}"')
    )
    return wrap_text(styler, wrap)


def quarantine_table(
    lights: pd.DataFrame, reason_text: dict[str, str] | None = None
) -> pd.DataFrame:
    """The quarantined lights with their reasons spelled out."""
    q = lights[lights["status"] == LightStatus.QUARANTINED][["path", "reasons"]].copy()
    q["path"] = q["path"].map(short_path)
    if reason_text:
        q["why"] = (
            q["reasons"]
            .fillna("")
            .map(
                lambda codes: " ".join(
                    reason_text.get(c, c).rstrip(".") + "." for c in str(codes).split(";") if c
                )
            )
        )
    return q.reset_index(drop=True)


# ----------------------------------------------------------------------------- match decisions
DECISION_COLUMNS = [
    "frame",
    "light",
    "time",
    "status",
    "master",
    "master_id",
    "secondary_master_id",
    "interp_weight",
    "scale_mode",
    "scale_factor",
    "delta_exptime_s",
    "delta_temp_c",
    "delta_time_h",
    "temp_used_c",
    "temp_source",
    "dark_law_doubling_c",
    "dark_law_source",
    "n_candidates",
    "predicted_dark_error",
]


def _master_label(master_id: Any, masters: pd.DataFrame) -> str:
    if is_missing(master_id):
        return "none"
    rows = masters[masters["master_id"].astype(str) == str(master_id)] if len(masters) else masters
    if rows.empty:
        return str(master_id)
    r = rows.iloc[0]
    temp = "" if is_missing(r.get("temp_c")) else f" @ {float(r['temp_c']):.1f}°C"
    return f"{master_id} · {float(r['exptime_s']):g}s{temp}"


def prepare_decisions(
    lights: pd.DataFrame,
    decisions: Sequence[Mapping[str, Any]] = (),
    masters: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per light: which master it used and how (see ``DECISION_COLUMNS``).

    ``master`` labels the primary master with its exposure and temperature (``none`` for a
    light no master calibrated); ``n_candidates`` counts the masters matching compared
    (from the decisions). Rows are in time order, numbered by ``frame`` as in the per-light
    residual slider.
    """
    from darkflow.viz._residuals import light_order

    masters = masters if masters is not None else pd.DataFrame(columns=["master_id"])
    by_path = {d.get("light_path"): d for d in decisions}
    order = light_order(lights)
    out = pd.DataFrame({"frame": order["frame"], "light": order["path"].map(light_name)})
    times = order["date_obs_utc"] if "date_obs_utc" in order else pd.Series(None, order.index)
    out["time"] = pd.to_datetime(times, utc=True, errors="coerce").dt.tz_localize(None)
    out["master"] = [_master_label(m, masters) for m in order.get("master_id", [None] * len(out))]
    out["n_candidates"] = [
        len(by_path.get(p, {}).get("candidates") or []) if p in by_path else None
        for p in order["path"]
    ]
    for col in DECISION_COLUMNS:
        if col not in out and col in order:
            out[col] = order[col]
    return out[[c for c in DECISION_COLUMNS if c in out]]


_MODE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def make_decisions(prepared: pd.DataFrame):
    """Which master each light used (by time, coloured by scale mode) and the three deltas.

    Drawn with bokeh directly (a report page shows it; holoviews' layout machinery cost most
    of its time): a column of figures sharing the time axis. Returns a bokeh layout.
    """
    from bokeh.models import ColumnDataSource, Div, HoverTool, Range1d, Span

    data = prepared.dropna(subset=["time"]).copy()
    if data.empty:
        return Div(text="<p>No dated lights in this session.</p>", width=900)
    data["scale_mode"] = data["scale_mode"].fillna("—") if "scale_mode" in data else "—"
    data = data.reset_index(drop=True)
    hover = [
        c
        for c in (
            "light",
            "status",
            "scale_mode",
            "scale_factor",
            "secondary_master_id",
            "temp_source",
            "delta_exptime_s",
            "delta_temp_c",
            "delta_time_h",
        )
        if c in data
    ]
    when = ("UTC", "@time{%F %T}")
    second = data.dropna(subset=["secondary_master_id"]) if "secondary_master_id" in data else []
    if len(second):
        second = second.assign(master=second["secondary_master_id"].astype(str) + " (secondary)")
    factors = sorted(set(data["master"].astype(str)) | set(second["master"] if len(second) else ()))
    used = bokeh_figure(
        width=1150,
        height=max(150, 80 + 32 * len(factors)),
        y_range=factors,
        x_axis_type="datetime",
        x_axis_label="UTC",
        title="Master used by each light (colour: scale mode)",
    )
    items = []
    for i, (mode, part) in enumerate(data.groupby("scale_mode", sort=True)):
        r = used.scatter(
            "time",
            "master",
            source=ColumnDataSource(part),
            size=10,
            color=_MODE_COLOURS[i % len(_MODE_COLOURS)],
        )
        items.append((str(mode), [r]))
    if len(second):
        r = used.scatter(
            "time",
            "master",
            source=ColumnDataSource(second.reset_index(drop=True)),
            marker="x",
            size=10,
            color="black",
        )
        items.append(("secondary master", [r]))
    used.add_tools(
        HoverTool(
            tooltips=[when, ("master", "@master"), *[(c, f"@{{{c}}}") for c in hover]],
            formatters={"@time": "datetime"},
        )
    )
    add_legend(used, items, font_size="9pt")
    panels = [used]
    for col, label, span in (
        ("delta_temp_c", "Δ temperature (°C)", 1.0),
        ("delta_exptime_s", "Δ exposure (s)", 10.0),
        ("delta_time_h", "Δ time (h)", 0.5),
    ):
        if col not in data or data[col].isna().all():
            continue
        # zero (the reference line) on the axis, and a sensible span when nothing varies
        ylim = padded_range([*data[col], 0.0], min_span=span)
        fig = bokeh_figure(
            width=1150,
            height=190,
            x_axis_type="datetime",
            x_range=used.x_range,
            y_range=Range1d(*ylim),
            x_axis_label="UTC",
            y_axis_label=label,
        )
        fig.yaxis.ticker.desired_num_ticks = 4
        fig.add_layout(Span(location=0, dimension="width", line_color="gray", line_width=1))
        for status, part in data.dropna(subset=[col]).groupby("status", sort=True):
            fig.scatter(
                "time",
                col,
                source=ColumnDataSource(part[["time", col, "light", "master"]]),
                size=6,
                color=STATUS_MARKERS.get(status, "#555"),
            )
        fig.add_tools(
            HoverTool(
                tooltips=[when, (label, f"@{{{col}}}"), ("light", "@light"), ("master", "@master")],
                formatters={"@time": "datetime"},
            )
        )
        panels.append(fig)
    return stack(panels)


def decisions_table(prepared: pd.DataFrame):
    """The match decisions as a sortable table coloured by status."""
    table = prepared.drop(columns=[c for c in ("master", "time") if c in prepared]).copy()
    statuses = table["status"] if "status" in table else [""] * len(table)
    return _styled(table.reset_index(drop=True), statuses, "df-decisions")


# ----------------------------------------------------------------------------- night overview
SESSION_GOOD_SHARE = 0.9  # share of lights calibrated for a session to read as a good one
SESSION_USABLE_SHARE = 0.5  # share of lights calibrated or degraded below which it failed


def session_label(session: str, instrument: Any = None) -> str:
    """A session's name for a reader: ``ZWO ASI533MC Pro, camera 112e9005`` for
    ``zwo-asi533mc-pro-112e900511080900`` (the file name keeps the full camera id, which
    tells two cameras of one model apart; a title needs only its first characters)."""
    from darkflow.model import slug

    if is_missing(instrument):
        return str(session)
    base = slug(instrument)
    rest = str(session)[len(base) :].strip("-") if str(session).startswith(base) else ""
    if not rest:
        return str(instrument)
    camera, _, split = rest.partition("-")  # "-2", "-3": a session split by a gap
    parts = []
    if camera and not camera.isdigit():
        parts.append(f"camera {camera[:8]}")
    if camera.isdigit():
        split = camera
    if split:
        parts.append(f"part {split}")
    return f"{instrument}, {', '.join(parts)}" if parts else str(instrument)


def session_status(counts: Mapping[str, Any]) -> str:
    """A session's colour by the share of its lights calibrated, not by its worst light.

    One quarantined light out of twenty (a truncated file) leaves a good session:
    ``calibrated`` when at least 90 % of its lights are calibrated, ``quarantined`` (red) when
    fewer than half are usable (calibrated or degraded), ``degraded`` (yellow) in between.
    """
    n = int(counts.get("lights") or 0)
    if n == 0:
        return "quarantined"
    calibrated, degraded = int(counts.get("calibrated") or 0), int(counts.get("degraded") or 0)
    if calibrated >= SESSION_GOOD_SHARE * n:
        return "calibrated"
    if calibrated + degraded >= SESSION_USABLE_SHARE * n:
        return "degraded"
    return "quarantined"


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
        return [f"background-color: {STATUS_COLORS[session_status(row)]}"] * len(row)

    styler = (
        table.style.apply(colour, axis=1)
        .hide(axis="index")
        .format(fmt_number)
        .set_table_attributes(f'class="df-sessions {SORTABLE}"')
    )
    if link_reports:  # subset=: a dict would reset the other columns' number format
        styler = styler.format(lambda s: f'<a href="{s}.html">{s}</a>', subset=["session"])
    return styler


def make_confidence_timeline(lights: pd.DataFrame):
    """Confidence of every light against time, coloured by status."""
    hv = _hv()
    data = lights.dropna(subset=["date_obs_utc"]).copy()
    if data.empty:
        return hv.Div("<p>No dated lights.</p>")
    data["time"] = pd.to_datetime(data["date_obs_utc"], utc=True).dt.tz_localize(None)
    data["light"] = data["path"].map(short_path)
    points = [
        hv.Scatter(
            data[data["status"] == status],
            "time",
            ["confidence", "light", "session", "reasons"],
            label=status,
        ).opts(color=color, size=7, tools=["hover"])
        for status, color in STATUS_MARKERS.items()
        if (data["status"] == status).any()
    ]
    return hv.Overlay(points).opts(
        width=900,
        height=280,
        ylim=(-0.05, 1.05),
        xlabel="UTC",
        legend_position="right",
        title="Confidence of every light",
    )


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
