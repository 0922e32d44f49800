"""The explorer apps (the *show* layer): ipywidgets controls over :mod:`darkflow_widgets.data`.

Each panel keeps what it shows as plain state, so it can be driven and checked without a
browser: ``panel.tables`` (name → DataFrame), ``panel.views`` (name → holoviews object),
``panel.error`` (the last error message, also shown in ``panel.status``). In JupyterLab the views
are displayed in the panel's ``Output`` area (bokeh backend); :meth:`Explorer.to_html` writes the
current views and tables to one static, offline HTML page.
"""

from __future__ import annotations

import html
import logging
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from darkflow.config import CombineConfig
from darkflow.exceptions import DarkflowError, MissingDependencyError
from darkflow.report.results import Workdir

try:
    import ipywidgets as W
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingDependencyError("ipywidgets", "the darkflow explorer widgets") from err

from . import data as D

__all__ = ["ComparePanel", "Explorer", "LightPanel", "MasterPanel", "RerunPanel"]

log = logging.getLogger(__name__)

_BACKEND_READY = False
_SERVER_SCRIPT = re.compile(r'<script src="static/[^"]*"></script>\s*')


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    return get_ipython() is not None


def _hv():
    """holoviews with the bokeh backend loaded (BokehJS inline in a notebook, once)."""
    global _BACKEND_READY
    from darkflow import viz
    from darkflow.viz._common import _hv as import_hv

    if not _BACKEND_READY:
        hv = viz.setup_notebook(inline=True)
        _BACKEND_READY = True
        return hv
    return import_hv()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    return html.escape(str(value))


_TABLE_CSS = (
    "table.df-explorer{border-collapse:collapse;font-size:12px;margin:4px 0 10px}"
    "table.df-explorer caption{text-align:left;font-weight:bold;padding:2px 0}"
    "table.df-explorer th,table.df-explorer td{padding:2px 8px;border-bottom:1px solid #ddd;"
    "text-align:right;white-space:nowrap;vertical-align:top}"
    "table.df-explorer th{background:#f3f3f3}"
    # the last column holds the prose (a gate's detail): it wraps, never squeezed to a sliver
    "table.df-explorer td:last-child,table.df-explorer th:last-child{text-align:left;"
    "white-space:normal;min-width:22em}"
    "div.df-explorer-scroll{overflow-x:auto;max-width:100%}"
)


def table_html(df: pd.DataFrame, *, title: str = "", colours: list[str] | None = None) -> str:
    """A small HTML table (values formatted to 4 significant digits), rows optionally coloured."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for i, (_, row) in enumerate(df.iterrows()):
        style = f' style="background:{colours[i]}"' if colours and colours[i] else ""
        cells = "".join(f"<td>{_fmt(v)}</td>" for v in row.tolist())
        body.append(f"<tr{style}>{cells}</tr>")
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return (
        f"<style>{_TABLE_CSS}</style>"
        '<div class="df-explorer-scroll"><table class="df-explorer">'
        f"{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


_GOOD, _BAD = "#d9f2d9", "#f9d0d0"
_GATES = "acceptance gates"
_GATES_RERUN = "acceptance gates: original vs re-run"


def _other_metrics() -> list[str]:
    """Registered metrics other than the acceptance gates (shown in their own table)."""
    from .metrics import GATE_NAMES, metric_names

    return [n for n in metric_names() if n not in GATE_NAMES]


def _gate_colours(results: list[str]) -> list[str]:
    """Green where a gate passes (or the master is verified), red where it fails."""
    colour = {"pass": _GOOD, "verified": _GOOD, "fail": _BAD, "low_confidence": _BAD}
    return [colour.get(r, "") for r in results]


def _gates_unavailable(err: Exception) -> pd.DataFrame:
    return pd.DataFrame([{"metric": "overall", "result": "unavailable", "detail": str(err)}])


def _most_used_dark(masters: pd.DataFrame) -> str | None:
    """The dark master most lights used (else the first master), for default selections."""
    if masters.empty:
        return None
    darks = masters[masters["kind"] != "bias"] if "kind" in masters else masters
    pool = darks if not darks.empty else masters
    if "used_by" in pool:
        pool = pool.sort_values("used_by", ascending=False, kind="stable")
    return str(pool["master_id"].iloc[0])


class _Panel:
    """Common state of a panel: tables, views, status line, output area."""

    title = ""

    def __init__(self, wd: Workdir):
        self.wd = wd
        self.tables: dict[str, pd.DataFrame] = {}
        self.views: dict[str, Any] = {}
        self.colours: dict[str, list[str]] = {}
        self.error: str | None = None
        self.status = W.HTML()
        self.table_area = W.HTML()
        self.plots = W.Output()

    def _fail(self, err: Exception) -> None:
        self.error = str(err)
        self.tables, self.views = {}, {}
        self.status.value = f'<span style="color:#b00020">⚠ {html.escape(self.error)}</span>'
        log.warning("%s: %s", type(self).__name__, err)
        self._render()

    def _ok(self, message: str = "") -> None:
        self.error = None
        self.status.value = html.escape(message)

    def _render(self) -> None:
        self.table_area.value = "".join(
            table_html(df, title=name, colours=self.colours.get(name))
            for name, df in self.tables.items()
        )
        if not _in_ipython():  # no frontend: the state above is all there is to show
            return
        self.plots.clear_output(wait=True)
        if self.views:
            from IPython.display import display

            with self.plots:
                for view in self.views.values():
                    display(view)


class MasterPanel(_Panel):
    """Browse the masters of a configuration: image, hot-pixel persistence, acceptance metrics."""

    title = "Masters"

    def __init__(self, wd: Workdir, *, max_lights: int = 3):
        super().__init__(wd)
        self.max_lights = max_lights
        self.master = W.Dropdown(description="master", layout=W.Layout(width="520px"))
        self.master.observe(lambda change: self.refresh(), names="value")
        self.widget = W.VBox([self.master, self.status, self.table_area, self.plots])

    def set_masters(self, masters: pd.DataFrame) -> None:
        self.masters = masters
        options = [(D.master_label(r), str(r["master_id"])) for _, r in masters.iterrows()]
        value = self.master.value if self.master.value in {o[1] for o in options} else None
        self.master.options = options
        self.master.value = value or _most_used_dark(masters)
        if not self.master.value:  # no change event when it was empty already: clear the views
            self.refresh()

    def refresh(self) -> None:
        master_id = self.master.value
        if not master_id:
            self.tables, self.views = {}, {}
            self._render()
            return
        try:
            from darkflow import viz

            from .metrics import MetricContext, compute_metrics

            master = self.wd.load_master(master_id)
            ctx = MetricContext.for_master(self.wd, master_id, max_lights=self.max_lights)
            gates, colours, verdict = self._gates(master_id, master)
            self.tables = {
                "master": pd.DataFrame([D._master_row(master_id, master)]),
                _GATES: gates,
                "acceptance metrics": compute_metrics(master, ctx, _other_metrics())[
                    ["metric", "value", "description"]
                ],
            }
            self.colours = {_GATES: colours}
            from darkflow.viz.extra import make_image

            _hv()
            self.views = {
                "image": make_image(master.data, title=f"master {master_id}", cmap="gray"),
                "hot_pixels": viz.make_hot_pixel_map(
                    master.hot_persistence, title=f"hot-pixel persistence {master_id}"
                ),
            }
        except DarkflowError as err:
            self._fail(err)
            return
        self._ok(f"{master_id}: {_master_label(master)}{verdict}")
        self._render()

    def _gates(self, master_id: str, master: Any) -> tuple[pd.DataFrame, list[str], str]:
        """The pipeline's acceptance gates of the master as built (table, colours, verdict)."""
        from .metrics import assess_acceptance

        try:
            acc = assess_acceptance(master_id, self.wd, master=master)
        except DarkflowError as err:
            log.warning("acceptance of %s: %s", master_id, err)
            return _gates_unavailable(err), [], ""
        verdict = f" · acceptance {acc.status}, confidence {acc.confidence:.3g}"
        return acc.table.copy(), _gate_colours(list(acc.table["result"])), verdict


class RerunPanel(_Panel):
    """Combine a master's input darks again with other clipping settings; compare the metrics
    and the pipeline's acceptance gates (status and confidence) of both settings."""

    title = "Re-run master"

    def __init__(self, wd: Workdir, *, max_lights: int = 3):
        super().__init__(wd)
        self.max_lights = max_lights
        self.result: D.RerunResult | None = None
        self.acceptance: tuple[Any, Any] | None = None  # AcceptanceResult original, re-run
        self.master = W.Dropdown(description="master", layout=W.Layout(width="520px"))
        style = {"description_width": "90px"}
        self.sigma_low = W.FloatSlider(
            3.0, min=1.0, max=10.0, step=0.5, description="sigma low", style=style
        )
        self.sigma_high = W.FloatSlider(
            3.0, min=1.0, max=10.0, step=0.5, description="sigma high", style=style
        )
        self.max_iters = W.IntSlider(5, min=0, max=10, description="iterations", style=style)
        self.scale = W.Dropdown(
            options=["noise", "mad", "std"], value="noise", description="scale", style=style
        )
        self.button = W.Button(description="Re-run master", button_style="primary", icon="refresh")
        self.button.on_click(lambda _: self.run())
        self.master.observe(lambda change: self._load_settings(), names="value")
        controls = W.HBox(
            [
                W.VBox([self.sigma_low, self.sigma_high]),
                W.VBox([self.max_iters, self.scale]),
                self.button,
            ]
        )
        self.widget = W.VBox([self.master, controls, self.status, self.table_area, self.plots])

    def set_masters(self, masters: pd.DataFrame) -> None:
        darks = masters[masters.get("kind", "dark") != "bias"] if "kind" in masters else masters
        options = [(D.master_label(r), str(r["master_id"])) for _, r in darks.iterrows()]
        self.master.options = options
        self.master.value = _most_used_dark(darks)

    def _load_settings(self) -> None:
        """Start from the settings the master was built with."""
        self.result, self.acceptance = None, None
        if not self.master.value:
            return
        try:
            cfg = D.combine_config_of(self.wd.load_master(self.master.value))
        except DarkflowError as err:
            self._fail(err)
            return
        self.sigma_low.value, self.sigma_high.value = cfg.sigma_low, cfg.sigma_high
        self.max_iters.value, self.scale.value = cfg.max_iters, cfg.scale
        self._ok("Change the clipping settings and press “Re-run master”.")
        self.tables, self.views = {}, {}
        self._render()

    @property
    def config(self) -> CombineConfig:
        """The combine settings the controls describe (other keys as the master was built)."""
        base = CombineConfig()
        if self.master.value:
            try:
                base = D.combine_config_of(self.wd.load_master(self.master.value))
            except DarkflowError:
                pass
        from dataclasses import replace

        return replace(
            base,
            sigma_low=float(self.sigma_low.value),
            sigma_high=float(self.sigma_high.value),
            max_iters=int(self.max_iters.value),
            scale=str(self.scale.value),
        )

    def run(self) -> D.RerunResult | None:
        """Re-run the selected master with the current settings (what the button does)."""
        if not self.master.value:
            self._fail(DarkflowError("no master selected"))
            return None
        self.status.value = "combining…"
        try:
            result = D.rerun_master(
                self.wd, self.master.value, self.config, max_lights=self.max_lights
            )
        except DarkflowError as err:
            self._fail(err)
            return None
        from darkflow import viz
        from darkflow.viz.extra import make_difference_view

        _hv()
        self.result = result
        improved = result.improved()
        gates, gate_colours, verdict = self._gates(result)
        others = result.metrics[result.metrics["metric"].isin(_other_metrics())]
        others = others.reset_index(drop=True)
        self.tables = {_GATES_RERUN: gates, "acceptance metrics: original vs re-run": others}
        self.colours = {
            _GATES_RERUN: gate_colours,
            "acceptance metrics: original vs re-run": [
                {True: _GOOD, False: _BAD}.get(improved.get(m), "") if abs(c) > 1e-12 else ""
                for m, c in zip(others["metric"], others["change"].fillna(0), strict=True)
            ],
        }
        self.views = {
            "difference": make_difference_view(
                result.difference, title="re-run − original (ADU)", show_z=False
            ),
            "hot_pixels": viz.make_hot_pixel_map(
                result.rerun.hot_persistence, title="hot-pixel persistence (re-run)"
            ),
        }
        self._ok(
            f"{len(result.inputs)} darks combined in {result.seconds:.2f}s with sigma "
            f"{result.config.sigma_low:g}/{result.config.sigma_high:g}, {result.config.max_iters} "
            f"iterations, scale {result.config.scale}; nothing written{verdict}"
        )
        self._render()
        return result

    def _gates(self, result: D.RerunResult) -> tuple[pd.DataFrame, list[str], str]:
        """The pipeline's acceptance gates with the original and the re-run settings."""
        from .metrics import assess_acceptance, compare_acceptance

        self.acceptance = None
        try:
            before = assess_acceptance(
                result.master_id,
                self.wd,
                D.combine_config_of(result.original),
                master=result.original,
            )
            after = assess_acceptance(result.master_id, self.wd, result.config, master=result.rerun)
        except DarkflowError as err:
            log.warning("acceptance of %s: %s", result.master_id, err)
            return _gates_unavailable(err), [], ""
        self.acceptance = (before, after)
        table = compare_acceptance(before, after)
        colours = _gate_colours([s.split(" → ")[-1] for s in table["status"]])
        verdict = (
            f" · acceptance {before.status} {before.confidence:.3g} → "
            f"{after.status} {after.confidence:.3g}"
        )
        return table, colours, verdict


class ComparePanel(_Panel):
    """Two masters side by side: difference image, its significance, fixed-pattern spectra."""

    title = "Compare masters"

    def __init__(self, wd: Workdir):
        super().__init__(wd)
        self.result: D.MasterComparison | None = None
        self.a = W.Dropdown(description="master A", layout=W.Layout(width="520px"))
        self.b = W.Dropdown(description="master B", layout=W.Layout(width="520px"))
        self._hold = False
        for w in (self.a, self.b):
            w.observe(lambda change: self.refresh(), names="value")
        self.widget = W.VBox([self.a, self.b, self.status, self.table_area, self.plots])

    def set_masters(self, masters: pd.DataFrame) -> None:
        options = [(D.master_label(r), str(r["master_id"])) for _, r in masters.iterrows()]
        first = _most_used_dark(masters)
        rest = masters[masters["master_id"].astype(str) != first] if first else masters
        second = _most_used_dark(rest) or first
        self._hold = True
        try:
            self.a.options, self.b.options = options, options
            self.a.value, self.b.value = first, second
        finally:
            self._hold = False
        self.refresh()

    def refresh(self) -> None:
        if self._hold:
            return
        if not self.a.value or not self.b.value:
            self.tables, self.views = {}, {}
            self._render()
            return
        try:
            result = D.compare_masters(self.wd, self.a.value, self.b.value)
        except DarkflowError as err:
            self._fail(err)
            return
        from darkflow.viz.extra import make_difference_view, make_spectra

        _hv()
        self.result = result
        stats = pd.DataFrame([{k: float(v) for k, v in result.stats.items()}])
        self.tables = {"masters": result.summary, "difference A − B": stats}
        self.views = {
            "difference": make_difference_view(result.difference, title="A − B (ADU)"),
            "spectra": make_spectra(result.difference.spectra),
        }
        self._ok(f"A = {self.a.value}, B = {self.b.value}")
        self._render()


class LightPanel(_Panel):
    """One light: status, reasons, the match decision with every candidate, and its residuals."""

    title = "Light"

    def __init__(self, wd: Workdir):
        super().__init__(wd)
        self.result: D.LightInspection | None = None
        self.light = W.Dropdown(description="light", layout=W.Layout(width="720px"))
        self.light.observe(lambda change: self.refresh(), names="value")
        self.widget = W.VBox([self.light, self.status, self.table_area, self.plots])

    def set_lights(self, lights: pd.DataFrame) -> None:
        options = [(f"{r['name']} · {r['status']}", str(r["path"])) for _, r in lights.iterrows()]
        self.light.options = options
        done = lights[lights["status"] != "quarantined"] if "status" in lights else lights
        first = done if not done.empty else lights
        self.light.value = str(first["path"].iloc[0]) if options else None

    def refresh(self) -> None:
        path = self.light.value
        if not path:
            self.tables, self.views = {}, {}
            self._render()
            return
        try:
            result = D.inspect_light(self.wd, path)
        except DarkflowError as err:
            self._fail(err)
            return
        from darkflow.viz.extra import make_image, make_z_histogram

        _hv()
        self.result = result
        keys = [
            "status",
            "confidence",
            "master_id",
            "scale_mode",
            "scale_factor",
            "delta_exptime_s",
            "delta_temp_c",
            "delta_time_h",
            "noise_ratio",
            "neg_tail_frac",
        ]
        self.tables = {"light": pd.DataFrame([{k: result.row.get(k) for k in keys}])}
        if len(result.reasons):
            self.tables["reasons"] = result.reasons
        if len(result.candidates):
            self.tables["match candidates (lowest score wins)"] = result.candidates
        self.views = {}
        if result.residuals is not None:
            r = result.residuals
            self.views["residuals"] = make_z_histogram(
                result.hist_edges,
                {"background pixels": r.hist_counts},
                title=f"residuals / predicted σ: width {r.noise_ratio:.3f}, "
                f"tail < −6σ {r.neg_tail_frac:.1e}",
            )
        if result.calibrated is not None:
            self.views["calibrated"] = make_image(
                result.calibrated, title="calibrated light", cmap="gray"
            )
        advisory = (result.decision or {}).get("advisory")
        self._ok(f"{result.status}" + (f" — advisory: {advisory}" if advisory else ""))
        self._render()


class Explorer:
    """Pick a night, session and configuration; browse, re-run and compare masters; inspect lights.

    Parameters
    ----------
    workdir
        A darkflow work directory (path or :class:`~darkflow.report.results.Workdir`).
    night, session
        Initial selection (default: the first session).
    max_lights
        Lights re-subtracted per master for the residual metrics.

    Examples
    --------
    >>> from darkflow_widgets import Explorer                          # doctest: +SKIP
    >>> ex = Explorer("demo/work", session="zwo-asi2600mm-pro")        # doctest: +SKIP
    >>> ex                                                             # doctest: +SKIP
    """

    def __init__(
        self,
        workdir: str | Path | Workdir,
        *,
        night: str | None = None,
        session: str | None = None,
        max_lights: int = 3,
    ):
        self.wd = D.open_workdir(workdir)
        night, session = self.wd.resolve_session(night, session)
        self.masters_panel = MasterPanel(self.wd, max_lights=max_lights)
        self.rerun_panel = RerunPanel(self.wd, max_lights=max_lights)
        self.compare_panel = ComparePanel(self.wd)
        self.light_panel = LightPanel(self.wd)
        self.panels = [self.masters_panel, self.rerun_panel, self.compare_panel, self.light_panel]
        sessions = self.wd.sessions()
        self.night = W.Dropdown(
            options=sorted({n for n, _ in sessions}), value=night, description="night"
        )
        self.session = W.Dropdown(description="session", layout=W.Layout(width="420px"))
        self.config = W.Dropdown(
            description="configuration",
            layout=W.Layout(width="620px"),
            style={"description_width": "90px"},
        )
        self.summary = W.HTML()
        self.tabs = W.Tab(children=[p.widget for p in self.panels])
        for i, p in enumerate(self.panels):
            self.tabs.set_title(i, p.title)
        self.widget = W.VBox(
            [
                W.HTML(f"<b>darkflow explorer</b> · <code>{html.escape(str(self.wd.path))}</code>"),
                W.HBox([self.night, self.session]),
                self.config,
                self.summary,
                self.tabs,
            ]
        )
        self.night.observe(lambda change: self._night_changed(), names="value")
        self.session.observe(lambda change: self._session_changed(), names="value")
        self.config.observe(lambda change: self._config_changed(), names="value")
        self.masters_panel.master.observe(self._follow_master, names="value")
        self._night_changed(session)

    def __repr__(self) -> str:
        return (
            f"<Explorer {self.wd.path} {self.night.value}/{self.session.value} {self.config.value}>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------ cascade
    def _night_changed(self, session: str | None = None) -> None:
        options = [s for n, s in self.wd.sessions() if n == self.night.value]
        self.session.options = options
        self.session.value = session if session in options else (options[0] if options else None)

    def _session_changed(self) -> None:
        configs = D.configurations(self.wd, self.night.value, self.session.value)
        self.config.options = configs
        self.config.value = configs[0] if configs else None
        counts = self.wd.status_counts(night=self.night.value, session=self.session.value)
        self.summary.value = " · ".join(f"{v} {k}" for k, v in counts.items())

    def _config_changed(self) -> None:
        masters = (
            D.masters_for(self.wd, self.config.value)
            if self.config.value
            else pd.DataFrame(
                columns=["master_id", "kind", "exptime_s", "temp_c", "n_frames", "used_by"]
            )
        )
        self.masters = masters
        self.masters_panel.set_masters(masters)
        self.rerun_panel.set_masters(masters)
        self.compare_panel.set_masters(masters)
        self.light_panel.set_lights(
            D.lights_for(self.wd, self.night.value, self.session.value, self.config.value)
        )

    def _follow_master(self, change: dict[str, Any]) -> None:
        """The re-run tab follows the master picked in the masters tab (darks only)."""
        if change["new"] in {v for _, v in self.rerun_panel.master.options}:
            self.rerun_panel.master.value = change["new"]

    # ------------------------------------------------------------------ static snapshot
    def to_html(self, path: str | Path, *, panels: tuple[str, ...] | None = None) -> Path:
        """Write the current tables and plots to one self-contained HTML page (BokehJS inline).

        Python callbacks need a kernel, so the page shows the explorer's state, not its controls:
        a line with the selected night/session/configuration/master and settings, then each
        panel's tables and (interactive, zoomable) bokeh plots. ``panels`` picks panels by title.
        """
        from bokeh.embed import file_html
        from bokeh.layouts import column
        from bokeh.models import Div
        from bokeh.resources import INLINE

        from darkflow.io.atomic import atomic_write

        hv = _hv()
        cfg = self.rerun_panel.config
        state = (
            "<h2 style='margin:4px 0'>darkflow explorer <span style='font-size:13px;"
            "font-weight:normal;color:#666'>static snapshot of the current selection (the "
            "controls are live in JupyterLab)</span></h2><p style='font-size:13px'>"
            f"<b>night</b> {_fmt(self.night.value)} · <b>session</b> {_fmt(self.session.value)} · "
            f"<b>configuration</b> {_fmt(self.config.value)}<br><b>master</b> "
            f"{_fmt(self.masters_panel.master.value)} · <b>re-run</b> sigma {cfg.sigma_low:g}/"
            f"{cfg.sigma_high:g}, {cfg.max_iters} iterations, scale {cfg.scale} · "
            f"<b>compare</b> {_fmt(self.compare_panel.a.value)} vs {_fmt(self.compare_panel.b.value)}"
            f" · <b>light</b> {_fmt(Path(str(self.light_panel.light.value)).name)}</p>"
        )
        items: list[Any] = [Div(text=state, width=1200)]
        for panel in self.panels:
            if panels is not None and panel.title not in panels:
                continue
            note = f"<p style='color:#b00020'>{html.escape(panel.error)}</p>" if panel.error else ""
            tables = "".join(
                table_html(df, title=name, colours=panel.colours.get(name))
                for name, df in panel.tables.items()
            )
            items.append(
                Div(
                    text=f"<h3 style='margin:8px 0 2px'>{html.escape(panel.title)}</h3>{note}{tables}",
                    width=1200,
                )
            )
            items.extend(hv.render(view, backend="bokeh") for view in panel.views.values())
        page = file_html(column(*items), resources=INLINE, title="darkflow explorer")
        # panel (imported by holoviews) registers a module-shim script under a server-relative
        # path; a static page cannot serve it and bokeh plots do not need it
        page = _SERVER_SCRIPT.sub("", page)
        path = Path(path)
        with atomic_write(path) as fh:
            fh.write(page)
        return path


def _master_label(master: Any) -> str:
    """A master as a reader names it: kind, exposure, temperature, frames (not a Python repr)."""
    meta = getattr(master, "meta", None)
    if meta is None:
        return "master"
    parts = [str(getattr(meta, "frame_kind", "") or "master")]
    exptime = getattr(meta, "exptime_s", None)
    if exptime is not None:
        parts.append(f"{exptime:g} s")
    temp = getattr(meta, "temp_c", None)
    if temp is not None:
        parts.append(f"{temp:.1f} °C")
    frames = getattr(meta, "n_frames", None)
    if frames:
        parts.append(f"{frames} frames")
    return ", ".join(parts)
