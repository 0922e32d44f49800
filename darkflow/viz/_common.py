"""Shared pieces of the dashboards: lazy holoviews import, status colours, small helpers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darkflow.exceptions import MissingDependencyError

# Row colours of the tables, by light status and by master status.
STATUS_COLORS = {"calibrated": "#d9f2d9", "degraded": "#fff1c2", "quarantined": "#f9d0d0"}
MASTER_STATUS_COLORS = {
    "verified": "#d9f2d9",
    "low_confidence": "#fff1c2",
    "quarantined": "#f9d0d0",
}
# Row colours by severity (triage findings, causes of the night): the report template's own.
SEVERITY_COLORS = {"error": "#fbe3e3", "warning": "#fff6d6", "info": "#f4f4f4"}
# Marker colours of the plots, by light status.
STATUS_MARKERS = {"calibrated": "#2ca02c", "degraded": "#e6a700", "quarantined": "#d62728"}
# Class of tables the offline report template makes sortable (click a column header).
SORTABLE = "df-sortable"


def _hv():
    try:
        import holoviews as hv
    except ImportError as err:
        raise MissingDependencyError("holoviews", "darkflow dashboards") from err
    return hv


def setup_notebook(*, inline: bool = True):
    """Load the bokeh backend with BokehJS embedded (reports must open offline); returns hv.

    ``inline`` also makes every plot and panel pane this kernel displays carry panel's
    stylesheets inline (:func:`offline_displays`): a notebook or the explorer in JupyterLab
    then requests nothing from a network either.
    """
    hv = _hv()
    hv.extension("bokeh", inline=inline, logo=False)
    offline_displays(inline)
    return hv


def _offline_mimebundle(obj: Any):
    """``obj``'s own mime bundle with panel's CDN stylesheets replaced by inline copies."""
    from darkflow.report import inline_panel_stylesheets

    bundle = obj._repr_mimebundle_()
    if bundle is None:  # e.g. a panel object before its extension loaded: the usual fallback
        return None
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
    if isinstance(data.get("text/html"), str):
        data = {**data, "text/html": inline_panel_stylesheets(data["text/html"])}
    return data, metadata


def offline_displays(enable: bool = True) -> bool:
    """Display holoviews objects and panel panes with panel's stylesheets inline (or undo it).

    Even with BokehJS inline, every plot holoviews or panel renders references four stylesheets
    of panel on ``cdn.holoviz.org`` (theme, list layout, loading spinner) that JupyterLab and the
    classic notebook then fetch: at an observatory with no network the fetch fails. Each
    displayed bundle's HTML is rewritten as the report export does it
    (:func:`darkflow.report.inline_panel_stylesheets`, the spinner's SVGs as data URIs);
    ``pn.config.inline`` would not do: the plots holoviews displays never pass through panel's
    own inlining. Registers (or removes) mime-bundle printers on the running IPython shell;
    False when there is none.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - holoviews needs IPython
        return False
    shell = get_ipython()
    if shell is None:
        return False
    from holoviews.core.dimension import Dimensioned
    from panel.viewable import Viewable

    formatter = shell.display_formatter.mimebundle_formatter
    for cls in (Dimensioned, Viewable):
        if enable:
            formatter.for_type(cls, _offline_mimebundle)
        elif formatter.type_printers.get(cls) is _offline_mimebundle:
            formatter.pop(cls)
    return True


def message(text: str, *, width: int = 900):
    """A one-line note in place of a plot: as tall as its text, not a plot's default 300 px."""
    hv = _hv()
    return hv.Div(f"<p style='margin:4px 0;font-size:13px'>{text}</p>").opts(
        width=width, height=32 + 18 * (len(text) // 120)
    )


def padded_range(values, *, pad: float = 0.08, min_span: float = 0.2) -> tuple[float, float]:
    """An axis range around ``values`` (NaN ignored) with a margin, never narrower than ``min_span``.

    A range of one value (or of values equal to the last bit) would otherwise get ticks of
    ``1e-15``: the axis then shows nonsense instead of "nothing varies here".
    """
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return (0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    span = max(hi - lo, min_span)
    mid = (lo + hi) / 2
    half = span * (0.5 + pad)
    return (mid - half, mid + half)


def short_path(path: Any) -> str:
    """The last two components of a path (``session/light.fits``): what a table can show."""
    parts = str(path).split("/")
    return "/".join(parts[-2:])


def light_name(path: Any) -> str:
    return str(path).rsplit("/", 1)[-1]


def is_missing(value: Any) -> bool:
    """None, NaN or an empty string."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def reason_codes(value: Any) -> tuple[str, ...]:
    """Reason codes of a ``;``-separated frame-report cell (empty for NaN/None)."""
    if is_missing(value):
        return ()
    return tuple(c.strip() for c in str(value).split(";") if c.strip())


def fmt_number(value: Any) -> str:
    """Table cell text: 4 significant digits (tiny stacking weights stay readable), blank NaN."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else f"{float(value):.4g}"
    return "" if value is None else str(value)


def wrap_text(styler, columns, *, min_width: str = "16em"):
    """Let the long text columns of a table wrap (left-aligned) so the table fits its page.

    The sortable tables keep numbers on one line; a sentence on one line makes the table wider
    than the page and pushes the rightmost columns out of view.
    """
    present = [c for c in columns if c in styler.data.columns]
    if not present:
        return styler
    return styler.set_properties(
        subset=present,
        **{"white-space": "normal", "text-align": "left", "min-width": min_width},
    )


def row_colours(statuses, palette: dict[str, str], n_columns: int) -> list[list[str]]:
    return [[f"background-color: {palette.get(str(s), 'white')}"] * n_columns for s in statuses]


def block_max(image: np.ndarray, max_size: int = 400) -> tuple[np.ndarray, int]:
    """Downsample by taking the max of each block (hot pixels stay visible); returns (img, factor)."""
    factor = max(1, math.ceil(max(image.shape) / max_size))
    if factor == 1:
        return image, 1
    ny, nx = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    view = image[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    return np.nanmax(view, axis=(1, 3)), factor


def central_rows(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """A central band of rows of ``image`` holding about ``max_pixels`` pixels (a view)."""
    ny, nx = image.shape
    rows = max(8, min(ny, max_pixels // max(nx, 1)))
    start = (ny - rows) // 2
    return image[start : start + rows]


TOOLS = "pan,wheel_zoom,box_zoom,save,reset"


def bokeh_figure(*, title: str | None = None, title_size: str = "10pt", **kwargs: Any):
    """A bokeh figure styled like the holoviews plots of the reports (no grid, no logo, the
    toolbar at the side): the dashboards a page draws with bokeh directly, where holoviews'
    plotting machinery cost most of the page's time."""
    from bokeh.plotting import figure

    fig = figure(tools=TOOLS, toolbar_location="right", title=title, min_border=10, **kwargs)
    fig.grid.grid_line_color = None
    fig.toolbar.logo = None
    if title is not None:
        fig.title.text_font_size = title_size
    return fig


def add_legend(
    fig: Any,
    items: list[tuple[str, list[Any]]],
    *,
    place: str = "right",
    font_size: str | None = None,
) -> None:
    """A legend of ``(label, renderers)`` outside the plot area (``place``: right, below)."""
    from bokeh.models import Legend, LegendItem

    legend = Legend(items=[LegendItem(label=label, renderers=r) for label, r in items])
    legend.click_policy = "mute"
    if place in ("below", "above"):
        legend.orientation = "horizontal"
    if font_size:
        legend.label_text_font_size = font_size
    fig.add_layout(legend, place)


def stack(panels: list[Any], *, ncols: int = 1):
    """Figures in a grid with one toolbar at its side (as a holoviews layout has it: the small
    panels would otherwise each show a toolbar cut to a few tools)."""
    from bokeh.layouts import gridplot

    return gridplot(panels, ncols=ncols, merge_tools=True, toolbar_location="right")


class BokehView:
    """A bokeh model (or a holoviews object, drawn by holoviews' bokeh backend) displayed as a
    static embed: its document's JSON and the script that draws it, nothing else.

    A holoviews object or a panel pane is displayed through panel's notebook machinery (a
    layout of panes, a comm, the embedded state of its widgets), which costs most of a report
    page's CPU time; a report page needs only the drawn document. The output is the one panel
    gives a bokeh model (``panel.io.notebook.render_model``: ``docs_json``, a root per plot,
    drawn once BokehJS and panel are loaded) with panel's stylesheets inline, so it opens
    offline in a report and in JupyterLab alike.
    """

    def __init__(self, obj: Any):
        self.obj = obj

    def model(self) -> Any:
        from bokeh.model import Model

        if isinstance(self.obj, Model):
            return self.obj
        return _hv().render(self.obj, backend="bokeh")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None):
        from bokeh.document import Document
        from panel.io.notebook import render_model

        from darkflow.report import inline_panel_stylesheets

        model = self.model()
        if model.document is None:
            Document().add_root(model)
        data, metadata = render_model(model)
        return {**data, "text/html": inline_panel_stylesheets(data["text/html"])}, metadata


def show(obj: Any) -> BokehView:
    """Display ``obj`` (a holoviews object or a bokeh model) as a static bokeh embed
    (:class:`BokehView`): what the report pages show, at a fraction of the cost."""
    return BokehView(obj)


def bokeh_pane(model: Any):
    """Wrap a bokeh layout so a notebook displays (and an exported report embeds) it."""
    import panel as pn

    return pn.pane.Bokeh(model)
