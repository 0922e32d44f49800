"""The nightly HTML reports, read as a user would: every dashboard there, offline, interactive.

One rendering of each report notebook on the tiny night (``tiny_run``), the way ``darkflow
nightly`` renders them (:func:`darkflow.report.build_reports` for the session,
:func:`darkflow.report.run_report` for the night overview: the notebooks' code in the report
worker processes, no kernel), exported to offline HTML. The static tests parse that HTML; the
browser tests open it in headless Chromium and, with a small probe script added to a copy of
the page beside it (as :mod:`helpers.browser` does), move the sliders and click a table header,
then read back what the page shows.

What ``test_pipeline_e2e.py::test_report_notebook_and_offline_html`` and ``test_nightly.py``
already check (the notebook runs, the index pages, a failing notebook still gives a report) is
not repeated here.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bs4
import pytest

from darkflow import viz

pytestmark = pytest.mark.integration  # renders the report notebooks of a calibrated night

SESSION = "zwo-asi2600mm-pro"  # tiny preset: degraded and quarantined lights, two residual frames

# Section headings of the notebooks (markdown cells): the dashboards a reader looks for.
SESSION_SECTIONS = (
    "Thermal drift",
    "Dark current against temperature",
    "Residuals against the noise model",
    "Each light",
    "Hot-pixel persistence",
    "Fixed-pattern spectra of the masters",
    "Match decisions",
    "Confidence table",
    "Quarantine and triage",
)
OVERVIEW_SECTIONS = (
    "Sessions",
    "Top causes of the night",
    "Sensor temperature through the night",
    "Confidence of every light",
    "Masters and their acceptance metrics",
    "Acquisition advisories",
    "Quarantine",
)


# ----------------------------------------------------------------------------- fixtures
@dataclass
class Reports:
    workdir: Path
    night: str
    session: Path  # the session report (HTML)
    overview: Path  # the night overview (HTML)
    lights: Any  # the session's lights (DataFrame)
    night_lights: Any
    masters: Any


@pytest.fixture(scope="module")
def reports(tiny_run, tmp_path_factory) -> Reports:
    from darkflow.report import build_reports, notebook_path, run_report
    from darkflow.report.results import Workdir

    workdir, _, _ = tiny_run
    wd = Workdir(workdir)
    night = wd.nights()[0]
    out = tmp_path_factory.mktemp("reports")
    built = build_reports(
        workdir, output=out, nights=[night], sessions=[SESSION], workers=1, index=False
    )
    assert [(s["session"], s["ok"], s["error"]) for s in built.sessions] == [(SESSION, True, None)]
    html = out / night / "index.html"
    over = run_report(
        notebook_path("night_overview.ipynb"),
        html,
        {"workdir": str(Path(workdir).resolve()), "night": night, "output": str(html.resolve())},
        title=f"darkflow · {night}",
        keep_notebook=out / "notebooks" / "index.ipynb",
    )
    assert over.ok, over.error
    return Reports(
        workdir=Path(workdir),
        night=night,
        session=Path(built.sessions[0]["html"]),
        overview=html,
        lights=wd.lights(night=night, session=SESSION),
        night_lights=wd.lights(night=night),
        masters=wd.masters_of(night),
    )


@dataclass
class Page:
    soup: bs4.BeautifulSoup
    sections: dict[str | None, list[bs4.Tag]]  # heading -> output areas of the cells below it

    def outputs(self, heading: str) -> list[bs4.Tag]:
        assert heading in self.sections, f"no section {heading!r} in {list(self.sections)}"
        return self.sections[heading]

    def roots(self, heading: str) -> list[str]:
        """Ids of the bokeh roots (plots, panel layouts) of a section."""
        return [
            el["data-root-id"] for o in self.outputs(heading) for el in o.select("[data-root-id]")
        ]

    def table(self, heading: str, css_class: str | None = None) -> bs4.Tag:
        tables = [
            t
            for o in self.outputs(heading)
            for t in o.find_all("table")
            if css_class is None or css_class in (t.get("class") or [])
        ]
        assert tables, f"no table {css_class or ''} in section {heading!r}"
        return tables[0]


def parse_page(path: Path) -> Page:
    soup = bs4.BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    sections: dict[str | None, list[bs4.Tag]] = {}
    current = None
    for cell in soup.select("div.jp-Cell"):
        if "jp-MarkdownCell" in cell["class"]:
            heads = cell.find_all(["h1", "h2", "h3"])
            if heads:
                current = heads[-1].get_text().replace("¶", "").strip()
                sections.setdefault(current, [])
            continue
        sections.setdefault(current, []).extend(cell.select("div.jp-OutputArea-output"))
    return Page(soup, sections)


@pytest.fixture(scope="module")
def session_page(reports) -> Page:
    return parse_page(reports.session)


@pytest.fixture(scope="module")
def overview_page(reports) -> Page:
    return parse_page(reports.overview)


# ----------------------------------------------------------------------------- helpers
_DOCS_JSON = re.compile(r"var docs_json = (\{.*?\});\n")


def documents(output: bs4.Tag) -> list[dict[str, Any]]:
    """The bokeh documents (JSON) embedded in an output area."""
    docs = []
    for script in output.find_all("script"):
        match = _DOCS_JSON.search(script.string or "")
        if match:
            docs.extend(json.loads(match.group(1)).values())
    return docs


def bokeh_models(outputs: list[bs4.Tag]) -> list[tuple[str, dict[str, Any]]]:
    """(type name, attributes) of every bokeh model embedded in these output areas."""
    models: list[tuple[str, dict[str, Any]]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "name" in node:
                models.append((node["name"], node.get("attributes") or {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for out in outputs:
        for doc in documents(out):
            walk(doc)
    return models


def attrs(models, name: str, key: str) -> list[Any]:
    return [a[key] for n, a in models if n == name and a.get(key) is not None]


def axis_labels(models) -> set[str]:
    return {a["axis_label"] for _, a in models if isinstance(a.get("axis_label"), str)}


def legend_labels(models) -> set[str]:
    return {lab["value"] for lab in attrs(models, "LegendItem", "label") if isinstance(lab, dict)}


def headers(table: bs4.Tag) -> list[str]:
    return [th.get_text(strip=True) for th in table.find("thead").find_all("tr")[-1].find_all("th")]


def body_rows(table: bs4.Tag) -> list[list[str]]:
    return [
        [td.get_text(strip=True) for td in tr.find_all(["td", "th"])]
        for tr in table.find("tbody").find_all("tr")
    ]


def cell_colours(table: bs4.Tag) -> list[set[str]]:
    """Background colour(s) of each body row, from the pandas Styler's per-cell CSS rules."""
    style = table.find_previous_sibling("style") or table.parent.find("style")
    colour_of: dict[str, str] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", style.get_text() if style else ""):
        match = re.search(r"background-color:\s*(#[0-9a-fA-F]{6})", body)
        if match:
            for sel in selectors.split(","):
                colour_of[sel.strip().lstrip("#")] = match.group(1).lower()
    return [
        {colour_of.get(td.get("id", ""), "none") for td in tr.find_all("td")}
        for tr in table.find("tbody").find_all("tr")
    ]


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def residual_frames(reports: Reports) -> list[tuple[int, str]]:
    """(frame number, file name) of the session's lights with a residual histogram."""
    import numpy as np

    from darkflow.report.results import Workdir

    _, hists = Workdir(reports.workdir).residual_hists(reports.night)
    order = viz.light_order(reports.lights)
    return [
        (int(r["frame"]), Path(r["path"]).name)
        for _, r in order.iterrows()
        if np.sum(hists.get(r["path"], [0])) > 0
    ]


# ----------------------------------------------------------------------------- static HTML
@pytest.mark.parametrize("which", ["session", "overview"])
def test_reports_are_static_and_self_contained(reports, session_page, overview_page, which):
    import bokeh

    path = getattr(reports, which)
    page = session_page if which == "session" else overview_page
    text = path.read_text(encoding="utf-8")
    expected = SESSION_SECTIONS if which == "session" else OVERVIEW_SECTIONS
    assert [h for h in page.sections if h in expected] == list(expected)
    for heading in expected:  # each section shows something: a plot, a table or some text
        outputs = page.outputs(heading)
        assert (
            page.roots(heading)
            or any(o.find("table") for o in outputs)
            or any(len(o.get_text(strip=True)) > 20 for o in outputs)
        ), f"section {heading!r} is empty"
    # no code shown, no error or warning printed
    code_cells = page.soup.select("div.jp-Cell.jp-CodeCell")
    assert code_cells and all("jp-mod-noInput" in c["class"] for c in code_cells)
    assert not [c for c in code_cells if c.select(".jp-InputArea, .jp-CodeMirrorEditor")]
    assert not page.soup.select(".jp-InputArea-editor, .jp-CodeMirrorEditor, div.highlight")
    assert "viz.setup_notebook()" not in text and "Workdir(workdir)" not in text
    assert not page.soup.select('[data-mime-type="application/vnd.jupyter.stderr"]')
    assert "Traceback" not in text
    # nothing fetched: no remote script or stylesheet, BokehJS and panel inline
    remote = ("http:", "https:", "//")
    assert not [
        s["src"] for s in page.soup.find_all("script", src=True) if s["src"].startswith(remote)
    ]
    assert not [
        lk["href"] for lk in page.soup.find_all("link", href=True) if lk["href"].startswith(remote)
    ]
    # BokehJS: one file per report folder, loaded by a relative <script src> of every page
    (src,) = [s["src"] for s in page.soup.find_all("script", src=True)]
    assert "/" not in src and src.startswith(f"bokeh-{bokeh.__version__}-") and src.endswith(".js")
    js = (path.parent / src).read_text(encoding="utf-8")
    for lib in ("bokeh", "bokeh-widgets", "bokeh-tables", "panel"):
        assert f"/* BEGIN {lib}.min.js */" in js, lib
        assert f"/* BEGIN {lib}.min.js */" not in text, lib  # not embedded in the page
    assert f'version="{bokeh.__version__}"' in js  # the BokehJS matches the documents
    assert len(text) < 1_500_000  # the page without its 3 MB of BokehJS
    imported = r'"name":"ImportedStyleSheet","id":"[^"]+","attributes":\{"url":"http'
    assert not re.search(imported, text)  # panel's CDN stylesheets were inlined
    docs = [d for outs in page.sections.values() for o in outs for d in documents(o)]
    assert docs and {d["version"] for d in docs} == {bokeh.__version__}


def test_report_notebooks_fetch_nothing_when_opened_in_jupyterlab(reports):
    """The executed notebooks kept beside the reports show their plots offline in JupyterLab."""
    import nbformat
    from helpers.offline import displayed_outputs, remote_resources, text_of

    kept = (
        reports.workdir / "reports" / reports.night / f"{SESSION}.ipynb",
        reports.overview.parent.parent / "notebooks" / "index.ipynb",
    )
    for path in kept:
        nb = nbformat.read(path, as_version=4)
        html = [
            text_of(o["data"]["text/html"])
            for o in displayed_outputs(nb)
            if "text/html" in o.get("data", {})
        ]
        assert any("docs_json" in h for h in html), path.name  # its plots are there
        # panel's stylesheets, where a plot uses them, are inline copies, not CDN links
        assert not any('"name":"ImportedStyleSheet"' in h for h in html), path.name
        assert remote_resources(nb) == {}, path.name


def test_session_thermal_and_dark_law_dashboards(session_page):
    drift = bokeh_models(session_page.outputs("Thermal drift"))
    assert len(session_page.roots("Thermal drift")) == 1
    titles = attrs(drift, "Title", "text")
    assert any(SESSION in t for t in titles)  # the fit, titled by its configuration
    assert any("drifts" in t and "fit rms" in t for t in titles)  # the residual panel
    assert {"sensor °C", "residual °C"} <= axis_labels(drift)  # fit and its residual panel
    assert {"measured", "fitted model"} <= legend_labels(drift)

    law = bokeh_models(session_page.outputs("Dark current against temperature"))
    assert len(session_page.roots("Dark current against temperature")) == 1
    assert any("T_d =" in t for t in attrs(law, "Title", "text"))
    assert {"dark current (ADU/s)", "residual from law (%)"} <= axis_labels(law)
    assert "law (typical pixel)" in legend_labels(law) and "typical pixel" in legend_labels(law)


def test_session_residual_dashboards(reports, session_page):
    hist = bokeh_models(session_page.outputs("Residuals against the noise model"))
    (title,) = attrs(hist, "Title", "text")
    assert title == "Background residuals against the predicted noise model"
    assert {"all lights", "noise model N(0,1)"} <= legend_labels(hist)

    # the per-light HoloMap: a slider, and every frame embedded in the page (one per light
    # with a histogram, in time order), so the slider needs no kernel
    frames = residual_frames(reports)
    assert len(frames) >= 2
    assert len(session_page.roots("Each light")) == 1
    holomap = bokeh_models(session_page.outputs("Each light"))
    (slider,) = [a for n, a in holomap if n == "Slider"]
    assert (slider["start"], slider["end"]) == (0, len(frames) - 1)
    script = "".join(
        s.string or "" for o in session_page.outputs("Each light") for s in o.find_all("script")
    )
    n = len(reports.lights)
    for frame, name in frames:
        assert f"light {frame}/{n}: {name}" in script, f"frame of light {frame} not embedded"
    assert {"session", "noise model N(0,1)", "this light"} <= legend_labels(holomap)


def test_session_master_dashboards(session_page):
    # hot-pixel persistence: map + histogram per master, linked by a threshold slider (CustomJS)
    hot = bokeh_models(session_page.outputs("Hot-pixel persistence"))
    assert len(session_page.roots("Hot-pixel persistence")) >= 1
    sliders = [a for n, a in hot if n == "Slider"]
    assert sliders and all(s["title"].startswith("persistence threshold") for s in sliders)
    assert (sliders[0]["start"], sliders[0]["end"]) == (0.0, 1.0)
    assert any("pixels with persistence" in c for c in attrs(hot, "CustomJS", "code"))
    assert any(t.startswith("master ") for t in attrs(hot, "Title", "text"))
    assert any("stable hot" in t for t in attrs(hot, "Title", "text"))
    assert {"persistence", "pixels"} <= axis_labels(hot)

    # fixed-pattern spectra: the ratio table and the column/row profile spectra
    table = session_page.table("Fixed-pattern spectra of the masters")
    assert headers(table) == ["master", "column pattern / white floor", "row pattern / white floor"]
    rows = body_rows(table)
    assert {r[0].split()[0] for r in rows} == {"dark", "bias"}
    spectra = bokeh_models(session_page.outputs("Fixed-pattern spectra of the masters"))
    titles = attrs(spectra, "Title", "text")
    assert any("column profile" in t for t in titles) and any("row profile" in t for t in titles)


def test_session_match_decisions(reports, session_page):
    models = bokeh_models(session_page.outputs("Match decisions"))
    assert attrs(models, "Title", "text") == ["Master used by each light (colour: scale mode)"]
    assert {"Δ temperature (°C)", "Δ exposure (s)", "Δ time (h)"} <= axis_labels(models)
    modes = set(reports.lights["scale_mode"].dropna())
    assert modes and modes <= legend_labels(models)  # one colour per scale mode

    table = session_page.table("Match decisions", "df-decisions")
    assert "df-sortable" in table["class"]
    cols = headers(table)
    assert {
        "frame",
        "light",
        "status",
        "master_id",
        "scale_mode",
        "scale_factor",
        "delta_exptime_s",
        "delta_temp_c",
        "delta_time_h",
        "temp_source",
        "n_candidates",
    } <= set(cols)
    rows = body_rows(table)
    assert len(rows) == len(reports.lights)
    assert [r[cols.index("frame")] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]


def test_session_confidence_table(reports, session_page):
    table = session_page.table("Confidence table", "df-confidence")
    assert "df-sortable" in table["class"]
    cols = headers(table)
    assert cols == [c for c in viz.TABLE_COLUMNS if c in reports.lights.columns]
    assert {"status", "confidence", "weight", "scale_mode", "top_cause"} <= set(cols)
    rows = body_rows(table)
    assert len(rows) == len(reports.lights)
    statuses = [r[cols.index("status")] for r in rows]
    assert set(statuses) == set(reports.lights["status"])
    # every cell of a row has the colour of its status
    assert cell_colours(table) == [{viz.STATUS_COLORS[s]} for s in statuses]


def test_session_triage_checklists(reports, session_page):
    lights = reports.lights
    problems = lights[lights["status"].isin(["degraded", "quarantined"])]
    assert len(problems), "the tiny session should have degraded or quarantined lights"
    outputs = session_page.outputs("Quarantine and triage")
    # the quarantine table lists each quarantined light with its reasons spelled out
    quarantined = lights[lights["status"] == "quarantined"]
    assert len(quarantined)
    table = session_page.table("Quarantine and triage")
    assert headers(table) == ["path", "reasons", "why"]
    assert sorted(r[0] for r in body_rows(table)) == sorted(
        map(viz.short_path, quarantined["path"])
    )

    # one checklist per group of lights with identical (status, reasons)
    groups = viz.triage_groups(lights)
    details = [d for o in outputs for d in o.select("div.df-triage-list details.df-group")]
    assert len(details) == len(groups) >= 1
    for (_, group), el in zip(groups.iterrows(), details, strict=True):
        assert f"df-status-{group['status']}" in el["class"]
        assert (
            el.find("summary")
            .get_text(" ", strip=True)
            .startswith(f"{group['n']} {group['status']}")
        )
        assert {c.get_text() for c in el.find("summary").find_all("code")} == set(group["codes"])
        assert set(group["lights"]) <= set(el.find("p", class_="df-lights").get_text().split(", "))
        findings = el.select("div.df-triage table tr")[1:]
        assert {tr.find("code").get_text() for tr in findings} == set(group["codes"])
        assert all(tr.find("ul") is not None for tr in findings)  # what to check
        assert any(tr.find("li") for tr in findings)


def test_night_overview_tables(reports, overview_page):
    night_lights, masters = reports.night_lights, reports.masters
    # sessions: one row each, linked to its report
    table = overview_page.table("Sessions")
    sessions = sorted(night_lights["session"].dropna().unique())
    assert [r[0] for r in body_rows(table)] == sessions
    assert {a["href"] for a in table.find_all("a")} == {f"{s}.html" for s in sessions}
    assert {"calibrated", "degraded", "quarantined", "median confidence"} <= set(headers(table))

    # top causes of the night and the night's checklist
    causes = overview_page.table("Top causes of the night", "df-causes")
    assert "df-sortable" in causes["class"]
    assert headers(causes) == [
        "cause",
        "description",
        "evidence",
        "quarantined",
        "degraded",
        "calibrated",
        "masters",
        "example",
    ]
    expected = viz.night_causes(night_lights, masters)
    assert len(expected) and [r[0] for r in body_rows(causes)] == list(expected["cause"])
    outputs = overview_page.outputs("Top causes of the night")
    (checklist,) = [s for o in outputs for s in o.select("div.df-triage section")]
    assert checklist.find("h3").get_text() == "Checklist for the night"
    listed = {tr.find("code").get_text() for tr in checklist.find_all("tr")[1:]}
    assert listed == set(viz.night_reason_codes(night_lights, masters))

    # masters with their acceptance metrics, coloured by status
    table = overview_page.table("Masters and their acceptance metrics", "df-masters")
    assert "df-sortable" in table["class"]
    cols = headers(table)
    assert [c for c in cols if c in viz.ACCEPTANCE_COLUMNS] == list(viz.ACCEPTANCE_COLUMNS)
    assert {"master_id", "kind", "status", "confidence"} <= set(cols) and cols[-1] == "reasons"
    rows = body_rows(table)
    assert sorted(r[0] for r in rows) == sorted(masters["master_id"].astype(str).unique())
    statuses = [r[cols.index("status")] for r in rows]
    assert cell_colours(table) == [{viz.MASTER_STATUS_COLORS[s]} for s in statuses]

    # the two night plots
    for heading, title in (
        ("Sensor temperature through the night", "Sensor temperature of every session"),
        ("Confidence of every light", "Confidence of every light"),
    ):
        assert attrs(bokeh_models(overview_page.outputs(heading)), "Title", "text") == [title]


# ----------------------------------------------------------------------------- in Chromium
@pytest.fixture(scope="module")
def chromium() -> str:
    from helpers.browser import find_chromium

    # without Chromium the browser tests never get here: conftest skips them, or fails on CI
    return find_chromium()


def plot_roots(page: Page, sections) -> list[str]:
    return [root for heading in sections for root in page.roots(heading)]


@pytest.mark.browser
def test_session_report_in_chromium(reports, session_page, chromium, tmp_path):
    from helpers.browser import check_page

    plots = plot_roots(session_page, SESSION_SECTIONS)
    assert len(plots) >= len(SESSION_SECTIONS) - 2  # every section but the two of tables
    shot = tmp_path / "session.png"
    check = check_page(reports.session, screenshot=shot, height=2400)
    assert check.requests == (), check.requests
    assert check.roots >= len(plots)
    assert check.canvases >= len(plots), check  # each plot root draws at least one canvas
    assert check.screenshot == shot.resolve()
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1280, 2400)
    assert len(png) > 40_000  # a drawn page, not a blank one


_PROBE = """
<script>
(function () {
  "use strict";
  const ARGS = __ARGS__;
  function deep(root, selector, out) {
    for (const el of root.querySelectorAll("*")) {
      if (el.matches(selector)) { out.push(el); }
      if (el.shadowRoot) { deep(el.shadowRoot, selector, out); }
    }
    return out;
  }
  function host(id) { return document.querySelector('[data-root-id="' + id + '"]'); }
  function hash(text) {
    let h = 0;
    for (let i = 0; i < text.length; i++) { h = (h * 31 + text.charCodeAt(i)) | 0; }
    return h;
  }
  function plot(id) {
    const el = host(id);
    const canvases = el ? deep(el, "canvas", []).filter(c => c.width > 0 && c.height > 0) : [];
    const titles = [];
    for (const doc of Bokeh.documents) {
      if (doc.get_model_by_id(id) === null) { continue; }
      for (const m of doc.all_models) { if (m.type === "Title" && m.text) { titles.push(m.text); } }
    }
    const labels = el ? deep(el, "div", []).map(d => d.textContent.trim())
                                          .filter(t => /^light: ?\\d+$/.test(t)) : [];
    return {canvases: canvases.length, pixels: canvases.map(c => hash(c.toDataURL())),
            titles: titles, labels: labels};
  }
  function slide(id) {  // a key press on the slider's handle, as a user would
    const handles = deep(host(id), ".noUi-handle", []);
    if (handles.length) {
      handles[0].dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowRight", bubbles: true,
                                                             cancelable: true}));
    }
    return handles.length;
  }
  function table() {
    const t = document.querySelector(ARGS.table);
    const heads = Array.from(t.tHead.rows[t.tHead.rows.length - 1].cells);
    return {headers: heads.map(h => h.textContent.trim()),
            sort: heads.map(h => h.getAttribute("aria-sort")),
            rows: Array.from(t.tBodies[0].rows).map(r => ({
              cells: Array.from(r.cells).map(c => c.textContent.trim()),
              colour: getComputedStyle(r.cells[0]).backgroundColor}))};
  }
  function click(name) {
    const t = document.querySelector(ARGS.table);
    const th = Array.from(t.tHead.rows[t.tHead.rows.length - 1].cells)
                    .find(h => h.textContent.trim() === name);
    th.click();
    return table();
  }
  function report(result) {
    const pre = document.createElement("pre");
    pre.id = "dfprobe";
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  }
  function bound() {  // the page's sorter has bound its headers (it titles them)
    const t = document.querySelector(ARGS.table);
    const rows = t && t.tHead ? t.tHead.rows : [];
    return rows.length > 0 && rows[rows.length - 1].cells[0].title === "click to sort";
  }
  function whenBound(then, tries) {  // a loaded machine may run the probe first
    if (bound() || tries <= 0) { then(); } else { setTimeout(() => whenBound(then, tries - 1), 250); }
  }
  window.addEventListener("load", function () {
    setTimeout(() => whenBound(function () {
      const result = {canvases: {}, sorted: [], bound: bound()};
      try {
        for (const id of ARGS.plots) { result.canvases[id] = plot(id).canvases; }
        result.holomap = {before: plot(ARGS.holomap), handles: slide(ARGS.holomap)};
        result.threshold = {before: plot(ARGS.threshold), handles: slide(ARGS.threshold)};
        result.table = table();
        for (const name of ARGS.clicks) { result.sorted.push(click(name)); }
      } catch (err) {
        result.error = String(err) + "\\n" + err.stack;
        report(result);
        return;
      }
      setTimeout(function () {
        result.holomap.after = plot(ARGS.holomap);
        result.threshold.after = plot(ARGS.threshold);
        report(result);
      }, 1500);
    }, 20), 3000);
  });
})();
</script>
"""


def run_probe(chromium: str, page: Path, args: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Open a copy of ``page`` with the probe added, offline; return what the probe reported."""
    from helpers.browser import _FLAGS  # the same offline browser flags as check_page

    source = page.read_text(encoding="utf-8")
    end = source.rfind("</body>")
    probe = page.with_name(f".{page.stem}.probe.html")  # beside it: its BokehJS file is there
    probe.write_text(
        source[:end] + _PROBE.replace("__ARGS__", json.dumps(args)) + source[end:], encoding="utf-8"
    )
    command = [
        chromium,
        *_FLAGS,
        f"--user-data-dir={tmp / 'profile'}",
        "--window-size=1280,2400",
        "--virtual-time-budget=12000",
        "--dump-dom",
        probe.as_uri(),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    finally:
        probe.unlink(missing_ok=True)
    match = re.search(r'<pre id="dfprobe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"the probe did not report (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(html_lib.unescape(match.group(1)))
    assert "error" not in result, result["error"]
    return result


def _column(state: dict[str, Any], name: str) -> list[str]:
    i = state["headers"].index(name)
    return [row["cells"][i] for row in state["rows"]]


def _numbers(values: list[str]) -> list[float]:
    blanks = [v == "" for v in values]
    assert blanks == sorted(blanks), f"blanks not last: {values}"
    return [float(v) for v in values if v]


@pytest.mark.browser
def test_sliders_and_table_sorter_work_offline(reports, session_page, chromium, tmp_path):
    frames = residual_frames(reports)
    (holomap,) = session_page.roots("Each light")
    threshold = session_page.roots("Hot-pixel persistence")[0]
    plots = plot_roots(session_page, SESSION_SECTIONS)
    clicks = ["confidence", "confidence", "weight"]
    args = {"plots": plots, "holomap": holomap, "threshold": threshold, "clicks": clicks}
    result = run_probe(
        chromium, reports.session, {**args, "table": "table.df-confidence"}, tmp_path
    )
    # every plot drew
    assert set(result["canvases"]) == set(plots)
    assert all(n >= 1 for n in result["canvases"].values()), result["canvases"]

    # the HoloMap slider: a key press on its handle shows the next light, drawn anew
    n = len(reports.lights)
    (first, _), (second, _) = frames[:2]
    before, after = result["holomap"]["before"], result["holomap"]["after"]
    assert result["holomap"]["handles"] == 1
    assert [t.split(":")[0] for t in before["titles"]] == [f"light {first}/{n}"]
    assert [t.split(":")[0] for t in after["titles"]] == [f"light {second}/{n}"]
    assert before["labels"][-1:] == [f"light: {first}"]  # the slider's label follows
    assert after["labels"][-1:] == [f"light: {second}"]
    assert before["pixels"] != after["pixels"]  # the plot was redrawn with the other light

    # the hot-pixel threshold slider (bokeh CustomJS): the histogram's title counts the pixels
    before, after = result["threshold"]["before"], result["threshold"]["after"]
    assert result["threshold"]["handles"] == 1
    assert not any("pixels with persistence" in t for t in before["titles"])
    assert any("pixels with persistence ≥ 0.05" in t for t in after["titles"]), after["titles"]

    # the table sorter: a click sorts by the column (numbers numerically), a second click
    # reverses, blanks go last, and each row keeps its status colour
    assert result["bound"], "the table sorter never bound its headers"
    initial, (ascending, descending, by_weight) = result["table"], result["sorted"]
    conf_up = _numbers(_column(ascending, "confidence"))
    conf_down = _numbers(_column(descending, "confidence"))
    assert conf_up == sorted(conf_up) and conf_down == sorted(conf_down, reverse=True)
    assert _column(ascending, "path") != _column(initial, "path")  # the order did change
    assert ascending["sort"][ascending["headers"].index("confidence")] == "ascending"
    assert descending["sort"][descending["headers"].index("confidence")] == "descending"
    weights = _numbers(_column(by_weight, "weight"))
    assert weights == sorted(weights) and "" in _column(by_weight, "weight")  # quarantined: blank
    for state in (initial, ascending, descending, by_weight):
        assert sorted(map(json.dumps, state["rows"])) == sorted(map(json.dumps, initial["rows"]))
        for status, row in zip(_column(state, "status"), state["rows"], strict=True):
            assert row["colour"] == rgb(viz.STATUS_COLORS[status])


# ----------------------------------------------------------------------------- incremental
def test_pages_are_rendered_again_only_when_their_inputs_change(tiny_run, tmp_path):
    import shutil

    from darkflow.report import build_reports, fingerprint_path, page_is_stale

    workdir = tmp_path / "work"
    shutil.copytree(tiny_run[0], workdir)
    session = "sbig-stf-8300m"
    out = tmp_path / "reports"
    ticks = []

    def build():
        built = build_reports(
            workdir,
            output=out,
            sessions=[session],
            workers=1,
            index=False,
            progress=lambda *a: ticks.append(a),
        )
        ((row),) = built.sessions
        assert row["ok"], row["error"]
        return row

    assert build()["rendered"] is True
    assert ticks[-1] == ("reports", 1, 1)
    html = Path(build()["html"])  # nothing changed: kept
    assert build()["rendered"] is False
    night = html.parent.name
    record = json.loads(fingerprint_path(html).read_text())
    read = set(record["files"])
    report = workdir / "nights" / night / "frame_report.csv"
    assert str(report.resolve()) in read  # what the page's code opened
    assert not any("/nights/" in p and f"/nights/{night}/" not in p for p in read)
    assert str((workdir / "frame_report.csv").resolve()) not in read  # no other night's files

    # a run's bookkeeping (`cached`) flips on a rerun: not shown, so the page stays
    import pandas as pd

    table = pd.read_csv(report, dtype=str, keep_default_na=False)
    table["cached"] = ["True" if v == "False" else "False" for v in table["cached"]]
    table.to_csv(report, index=False)
    assert build()["rendered"] is False
    # a value the page shows changes: rendered again
    table.loc[table["session"] == session, "confidence"] = "0.123"
    table.to_csv(report, index=False)
    params = record["identity"]["parameters"]
    source = Path(__file__).parents[1] / "notebooks" / "session_report.ipynb"
    assert page_is_stale(html, source=source, parameters=params)
    assert build()["rendered"] is True
    # one BokehJS file for the folder, referenced by the page
    (js,) = html.parent.glob("bokeh-*.js")
    assert f'src="{js.name}"' in html.read_text(encoding="utf-8")
    # the page without its BokehJS file is stale (it could not draw)
    js.unlink()
    assert page_is_stale(html, source=source, parameters=params)


def test_night_fingerprint_is_a_shortcut(tmp_path, monkeypatch):
    from darkflow import report

    html = tmp_path / "page.html"
    html.write_text("<html></html>")
    source = tmp_path / "nb.ipynb"
    source.write_text("{}")
    watched = tmp_path / "table.csv"
    watched.write_text("a,b\n1,2\n")
    params = {"workdir": str(tmp_path)}
    report.write_fingerprint(
        html,
        source,
        params,
        ok=True,
        reads={str(watched)},
        workdir=tmp_path,
        bokeh_js=None,
        night_fingerprint="n1",
    )
    assert not report.page_is_stale(html, source=source, parameters=params)
    watched.write_text("a,b\n1,3\n")
    assert report.page_is_stale(html, source=source, parameters=params)
    assert not report.page_is_stale(html, source=source, parameters=params, night_fingerprint="n1")
    assert report.page_is_stale(html, source=source, parameters=params, night_fingerprint="n2")
    assert report.page_is_stale(html, source=source, parameters={**params, "night": "x"})
    source.write_text('{"cells": []}')  # the notebook changed
    assert report.page_is_stale(html, source=source, parameters=params, night_fingerprint="n1")


@pytest.mark.browser
def test_no_table_overflows_and_no_text_is_cut(reports, chromium):
    """Every table fits its page or scrolls sideways in its container; no text is cut."""
    from helpers.browser import check_page

    for page in (reports.session, reports.overview):
        check = check_page(page)
        assert check.layout == (), (page.name, check.layout)
        assert check.height > 2400  # the probe measured the whole page
