"""Master dashboards: hot-pixel persistence (with a threshold slider), fixed-pattern spectra,
and the masters' acceptance metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from darkflow.exceptions import IncompatibleFramesError
from darkflow.verify import MASTER_VALUE_COLUMNS
from darkflow.viz._common import (
    MASTER_STATUS_COLORS,
    SORTABLE,
    _hv,
    add_legend,
    block_max,
    bokeh_figure,
    bokeh_pane,
    central_rows,
    fmt_number,
    row_colours,
    stack,
)

# the persistence of a pixel is k / n_darks, stored as float32: compare with a little slack
_EPS = 1e-5


# ----------------------------------------------------------------------------- hot pixels
def prepare_hot_pixels(
    persistence: np.ndarray, *, max_size: int = 400, step: float = 0.05
) -> dict[str, Any]:
    """Block-max image, histogram and counts above each threshold of a persistence map.

    Returns ``image`` (block max, at most ``max_size`` pixels a side), ``factor``, ``hist``
    (edges, counts of the non-zero pixels in bins of ``step``), ``thresholds`` and ``n_above``
    (pixels with persistence ≥ each threshold, at full resolution), ``n_stable`` (≥ 0.9) and
    ``n_transient`` (> 0 and < 0.5).
    """
    persistence = np.asarray(persistence, dtype=float)
    img, factor = block_max(persistence, max_size)
    values = np.sort(persistence[np.isfinite(persistence) & (persistence > 0)])
    n_bins = max(1, round(1.0 / step))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts, _ = np.histogram(np.clip(values + _EPS, 0, 1), bins=edges)
    thresholds = edges[:-1]
    n_above = values.size - np.searchsorted(values, thresholds - _EPS, side="left")
    return {
        "image": img,
        "factor": factor,
        "hist": (edges, counts),
        "thresholds": thresholds,
        "n_above": n_above.astype(int),
        "n_stable": int(np.count_nonzero(persistence >= 0.9 - _EPS)),
        "n_transient": int(np.count_nonzero((persistence > 0) & (persistence < 0.5 - _EPS))),
    }


def _persistence_elements(persistence: np.ndarray, title: str, max_size: int, step: float):
    hv = _hv()
    prep = prepare_hot_pixels(persistence, max_size=max_size, step=step)
    ny, nx = np.shape(persistence)
    image = hv.Image(
        prep["image"][::-1], bounds=(0, 0, nx, ny), kdims=["x", "y"], vdims=["persistence"]
    ).opts(
        cmap="fire",
        colorbar=True,
        clim=(0, 1),
        width=520,
        height=int(520 * ny / max(nx, 1)) + 40,
        tools=["hover"],
        bgcolor="black",
        clipping_colors={"NaN": (0, 0, 0, 0)},
        title=_map_title(title, prep),
    )
    bars, top = _hist_bars(prep)
    hist = hv.Rectangles(bars, ["x0", "y0", "x1", "pixels"], ["persistence"]).opts(
        logy=True,
        width=380,
        height=300,
        tools=["hover"],
        color="#d62728",
        line_color="black",
        xlim=(-0.02, 1.02),
        ylim=(0.5, top),
        xlabel="persistence",
        ylabel="pixels",
        title=_hist_title(prep),
    )
    return image, hist, prep


def _map_title(title: str, prep: Mapping[str, Any]) -> str:
    return f"{title} (block max ×{prep['factor']})" if prep["factor"] > 1 else title


def _hist_title(prep: Mapping[str, Any]) -> str:
    return f"{prep['n_stable']} stable hot, {prep['n_transient']} transient"


def _hist_bars(prep: Mapping[str, Any]) -> tuple[pd.DataFrame, float]:
    """The histogram's bars and the top of its axis."""
    edges, counts = prep["hist"]
    # bars only for the bins that hold pixels: on a log axis an empty bin has no height to draw
    full = counts > 0
    bars = pd.DataFrame(
        {
            "x0": edges[:-1][full],
            "y0": 0.5,
            "x1": edges[1:][full],
            "pixels": counts[full],
            "persistence": edges[:-1][full],
        }
    )
    return bars, max(2.0, float(counts.max(initial=1)) * 2)


def _persistence_figures(persistence: np.ndarray, title: str, max_size: int, step: float):
    """The map and the histogram of :func:`_persistence_elements` as bokeh figures (drawn
    directly: the report pages show them), and the prepared data."""
    from bokeh.models import ColorBar, ColumnDataSource, HoverTool, LinearColorMapper, Range1d

    try:
        from colorcet import fire as palette
    except ImportError:  # pragma: no cover - holoviews installs colorcet
        from bokeh.palettes import Inferno256 as palette

    prep = prepare_hot_pixels(persistence, max_size=max_size, step=step)
    ny, nx = np.shape(persistence)
    mapper = LinearColorMapper(palette=list(palette), low=0.0, high=1.0, nan_color=(0, 0, 0, 0))
    fig_img = bokeh_figure(
        width=520,
        height=int(520 * ny / max(nx, 1)) + 40,
        title=_map_title(title, prep),
        x_range=Range1d(0, nx),
        y_range=Range1d(0, ny),
        x_axis_label="x",
        y_axis_label="y",
    )
    fig_img.background_fill_color = "black"
    # row 0 of the frame at the bottom, as the holoviews map draws it
    image = np.ascontiguousarray(prep["image"], dtype=np.float32)
    pix = fig_img.image(image=[image], x=0, y=0, dw=nx, dh=ny, color_mapper=mapper)
    fig_img.add_layout(ColorBar(color_mapper=mapper), "right")
    fig_img.add_tools(
        HoverTool(
            renderers=[pix],
            tooltips=[("x", "$x{0}"), ("y", "$y{0}"), ("persistence", "@image{0.00}")],
        )
    )
    bars, top = _hist_bars(prep)
    fig_hist = bokeh_figure(
        width=380,
        height=300,
        y_axis_type="log",
        title=_hist_title(prep),
        x_range=Range1d(-0.02, 1.02),
        y_range=Range1d(0.5, top),
        x_axis_label="persistence",
        y_axis_label="pixels",
    )
    quads = fig_hist.quad(
        left="x0",
        right="x1",
        bottom="y0",
        top="pixels",
        source=ColumnDataSource(bars),
        color="#d62728",
        line_color="black",
    )
    fig_hist.add_tools(
        HoverTool(
            renderers=[quads],
            tooltips=[("persistence", "@persistence{0.00}"), ("pixels", "@pixels")],
        )
    )
    return fig_img, fig_hist, pix.data_source, prep


def make_hot_pixel_map(persistence: np.ndarray, *, title: str = "", max_size: int = 400):
    """Hot-pixel persistence map (fraction of darks in which each pixel was high) + histogram."""
    image, hist, _ = _persistence_elements(persistence, title, max_size, 0.05)
    return (image + hist).opts(shared_axes=False)


_THRESHOLD_JS = """
const store = (window.__dfPersistence = window.__dfPersistence || {});
const im = src.data.image[0];
if (!(src.id in store)) { store[src.id] = Float32Array.from(im); }
const orig = store[src.id];
const t = slider.value;
for (let i = 0; i < im.length; i++) { im[i] = orig[i] >= t - 1e-5 ? orig[i] : NaN; }
src.change.emit();
const k = Math.min(n_above.length - 1, Math.max(0, Math.round(t / step)));
span.location = t;
shade.left = t;
hist.title.text = n_above[k] + ' pixels with persistence ≥ ' + t.toFixed(2) +
                  ' (' + n_stable + ' stable hot, ' + n_transient + ' transient)';
"""


def make_hot_pixel_dashboard(
    persistence: np.ndarray, *, title: str = "", max_size: int = 400, step: float = 0.05
):
    """Persistence map linked to its histogram by a threshold slider that works offline.

    The map is rasterised by block max (hot pixels stay visible on big sensors); moving the
    slider hides the blocks below the threshold, moves the marker on the histogram and shows
    how many pixels (at full resolution) reach it. The link is a bokeh ``CustomJS`` callback
    in the page, so it works in the static HTML report without a kernel. Returns a panel pane
    (a notebook displays it; ``.object`` is the bokeh layout).
    """
    from bokeh.layouts import column, row
    from bokeh.models import BoxAnnotation, CustomJS, Slider, Span

    fig_img, fig_hist, src, prep = _persistence_figures(persistence, title, max_size, step)
    span = Span(location=0.0, dimension="height", line_color="#1f77b4", line_width=2)
    shade = BoxAnnotation(left=0.0, fill_color="#1f77b4", fill_alpha=0.08)
    fig_hist.add_layout(span)
    fig_hist.add_layout(shade)
    slider = Slider(
        start=0.0,
        end=1.0,
        step=step,
        value=0.0,
        width=520,
        title="persistence threshold (show pixels high in at least this fraction of the darks)",
    )
    slider.js_on_change(
        "value",
        CustomJS(
            args={
                "src": src,
                "slider": slider,
                "span": span,
                "shade": shade,
                "hist": fig_hist,
                "n_above": [int(v) for v in prep["n_above"]],
                "step": step,
                "n_stable": prep["n_stable"],
                "n_transient": prep["n_transient"],
            },
            code=_THRESHOLD_JS,
        ),
    )
    return bokeh_pane(column(slider, row(fig_img, fig_hist)))


# ----------------------------------------------------------------------------- spectra
def master_images(
    masters: pd.DataFrame,
    master_ids: Sequence[str],
    load_master: Callable[[str], Any],
    *,
    with_bias: bool = True,
) -> dict[str, np.ndarray]:
    """``{"dark <id>": data, "bias <id>": data, ...}`` of the given masters and their biases.

    ``load_master`` is ``Workdir.load_master`` (or a cached version of it); a master bias
    shared by several darks appears once.
    """
    out: dict[str, np.ndarray] = {}
    rows = masters.drop_duplicates("master_id").set_index("master_id", drop=False)
    for master_id in master_ids:
        master = load_master(str(master_id))
        out[f"{master.meta.frame_kind} {master_id}"] = master.data
        if not with_bias or str(master_id) not in rows.index:
            continue
        bias_id = rows.loc[str(master_id)].get("bias_master_id")
        if isinstance(bias_id, str) and bias_id and f"bias {bias_id}" not in out:
            out[f"bias {bias_id}"] = load_master(bias_id).data
    return out


def prepare_master_spectra(
    images: Mapping[str, np.ndarray], *, max_pixels: int = 4_000_000
) -> pd.DataFrame:
    """Column and row profile spectra of master images (label → 2-D array), one table.

    Frames above ``max_pixels`` are analysed on a central band of rows (the column profile
    then averages fewer rows; its white floor says so). Images that are too small are left out.
    """
    from darkflow.viz.extra import fixed_pattern_spectra

    parts = []
    for label, image in images.items():
        a = np.asarray(image)
        if a.ndim != 2:
            continue
        try:
            parts.append(fixed_pattern_spectra(central_rows(a, max_pixels), label=label))
        except IncompatibleFramesError:
            continue
    if not parts:
        return pd.DataFrame(columns=["label", "axis", "freq", "power", "floor"])
    return pd.concat(parts, ignore_index=True)


def spectra_summary(spectra: pd.DataFrame) -> pd.DataFrame:
    """Per image: mean power of the column/row profile over its white floor (1 = no pattern)."""
    rows = []
    for label, part in spectra.groupby("label", sort=False):
        row: dict[str, Any] = {"master": label}
        for axis in ("column", "row"):
            sub = part[part["axis"] == axis]
            floor = float(sub["floor"].iloc[0]) if len(sub) else float("nan")
            row[f"{axis} pattern / white floor"] = (
                float(sub["power"].mean() / floor) if len(sub) and floor > 0 else float("nan")
            )
        rows.append(row)
    return pd.DataFrame(rows)


def make_master_spectra(spectra: pd.DataFrame, *, title: str = "Masters", width: int = 520):
    """Fixed-pattern spectra of the masters: column and row profiles side by side, every
    master overlaid, each one's white floor dashed in its colour (what
    :func:`darkflow.viz.extra.make_spectra` draws with holoviews, here drawn with bokeh
    directly for the report pages). Returns a bokeh layout."""
    from bokeh.models import Div, HoverTool

    from darkflow.viz.extra import _PALETTE

    panels = []
    for axis_name in ("column", "row"):
        sub = spectra[spectra["axis"] == axis_name] if len(spectra) else spectra
        if sub.empty:
            continue
        fig = bokeh_figure(
            width=width,
            height=340,
            y_axis_type="log",
            title=f"{title}: {axis_name} profile (dashed: white floor)",
            x_axis_label="frequency (cycles / pixel)",
            y_axis_label="power (ADU²)",
        )
        items, lines = [], []
        for i, (label, part) in enumerate(sub.groupby("label", sort=False)):
            name, colour = str(label) or "image", _PALETTE[i % len(_PALETTE)]
            freq = part["freq"].to_numpy()
            line = fig.line(freq, part["power"].to_numpy(), line_width=1.5, color=colour)
            fig.line(
                freq, part["floor"].to_numpy(), line_width=1.5, color=colour, line_dash="dashed"
            )
            items.append((name, [line]))
            lines.append(line)
        # a spectrum fills its whole frame: the legend goes below the axes
        add_legend(fig, items, place="below", font_size="8pt")
        fig.add_tools(
            HoverTool(
                renderers=lines, tooltips=[("frequency", "$x{0.000}"), ("power", "$y{0.00e}")]
            )
        )
        panels.append(fig)
    if not panels:
        return Div(text="<p>No spectra.</p>")
    return stack(panels, ncols=len(panels))


# ----------------------------------------------------------------------------- acceptance
# The masters' acceptance metrics (columns of ``masters.csv``): verify owns the list.
ACCEPTANCE_COLUMNS = MASTER_VALUE_COLUMNS
MASTER_ID_COLUMNS = (
    "master_id",
    "kind",
    "instrument",
    "exptime_s",
    "temp_c",
    "n_frames",
    "status",
    "confidence",
    "top_cause",
)


def masters_acceptance_table(
    masters: pd.DataFrame, columns: Sequence[str] = (*MASTER_ID_COLUMNS, *ACCEPTANCE_COLUMNS)
):
    """The masters with their acceptance metrics (``masters.csv``), coloured by status, sortable.

    Verified masters are green, low-confidence ones yellow, quarantined ones red; ``reasons``
    comes last. Metrics a master could not measure (no hold-out, no previous master) are blank.
    """
    cols = [c for c in (*columns, "reasons") if c in masters.columns]
    table = masters[cols].copy()
    if "kind" in table:
        table = table.sort_values(["kind", "master_id"], ascending=[False, True])
    table = table.reset_index(drop=True)
    statuses = table["status"] if "status" in table else [""] * len(table)
    colours = row_colours(statuses, MASTER_STATUS_COLORS, len(cols))
    return (
        table.style.apply(lambda r: colours[r.name], axis=1)
        .format(fmt_number)
        .hide(axis="index")
        .set_table_attributes(f'class="df-masters {SORTABLE}"')
    )
