"""Execute report notebooks with papermill and export them as self-contained, offline HTML.

The HTML opens with no network: the ``offline`` nbconvert template (``darkflow/templates``) drops
require.js, MathJax, mermaid and the widget manager; BokehJS is embedded by
``hv.extension('bokeh', inline=True)``; and the few stylesheets panel references on its CDN are
replaced by inline copies of panel's own local files (:func:`inline_panel_stylesheets`). Code
cells are hidden. A notebook that fails still yields a report: papermill keeps the executed part
and marks the failing cell, and the HTML says what failed.
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from darkflow.exceptions import DarkflowError, MissingDependencyError
from darkflow.io.atomic import atomic_path, write_bytes_atomic

__all__ = [
    "ReportResult",
    "ReportSet",
    "build_reports",
    "execute_notebook",
    "export_html",
    "inline_panel_stylesheets",
    "notebook_path",
]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
SESSION_NOTEBOOK = "session_report.ipynb"


class ReportError(DarkflowError, RuntimeError):
    """A report could not be produced at all (not even an error report)."""


def notebook_path(name: str) -> Path:
    """Locate a report notebook: the package's copy, else the source tree's ``notebooks/``."""
    candidates = [
        Path(__file__).parent / "notebooks" / name,
        Path(__file__).resolve().parent.parent / "notebooks" / name,
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise ReportError(
        f"report notebook {name!r} not found (looked in {', '.join(map(str, candidates))})"
    )


@dataclass(frozen=True)
class ReportResult:
    html: Path
    notebook: Path
    ok: bool
    error: str | None = None


def execute_notebook(
    source: str | Path,
    output: str | Path,
    parameters: Mapping[str, Any],
    *,
    cwd: str | Path | None = None,
    timeout_s: int = 900,
) -> tuple[bool, str | None]:
    """Run ``source`` with papermill into ``output``; return (ok, error message)."""
    try:
        import papermill as pm
    except ImportError as err:  # pragma: no cover - papermill is a core dependency
        raise MissingDependencyError("papermill", "executing report notebooks") from err
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(source),
            str(output),
            parameters=dict(parameters),
            kernel_name="python3",
            cwd=str(cwd) if cwd else None,
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout_s,
            # the kernel app's start-up chatter (e.g. its TCP transport warning on loopback) is
            # not for report readers; cell errors still reach the notebook and the report
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except pm.PapermillExecutionError as err:
        return False, f"{err.ename}: {err.evalue}"
    return True, None


@lru_cache(maxsize=1)
def _panel_dist() -> Path | None:
    try:
        import panel
    except ImportError:
        return None
    return Path(panel.__file__).parent / "dist"


_ASSET = re.compile(r"url\(['\"]?\.\./assets/([A-Za-z0-9_.-]+\.svg)['\"]?\)")
_IMPORTED = re.compile(
    r'"name":"ImportedStyleSheet","id":"(?P<id>[^"]+)","attributes":\{"url":"'
    r'https://cdn\.holoviz\.org/panel/[^/"]+/dist/(?P<rel>[^"?]+)(?:\?[^"]*)?"\}'
)


def _css_inline(rel: str) -> str | None:
    dist = _panel_dist()
    if dist is None:
        return None
    path = dist / rel
    try:
        css = path.read_text(encoding="utf-8")
    except OSError:
        return None

    def data_uri(match: re.Match[str]) -> str:
        asset = dist / "assets" / match.group(1)
        try:
            encoded = base64.b64encode(asset.read_bytes()).decode()
        except OSError:
            return "none"
        return f"url('data:image/svg+xml;base64,{encoded}')"

    return _ASSET.sub(data_uri, css)


def inline_panel_stylesheets(page: str) -> str:
    """Replace panel's CDN ``ImportedStyleSheet`` references by inline copies of its local files."""

    def replace(match: re.Match[str]) -> str:
        css = _css_inline(match.group("rel"))
        if css is None:
            return match.group(0)
        literal = json.dumps(css).replace("</", "<\\/")
        return (
            f'"name":"InlineStyleSheet","id":"{match.group("id")}","attributes":{{"css":{literal}}}'
        )

    return _IMPORTED.sub(replace, page)


def export_html(notebook: str | Path, html: str | Path, *, title: str | None = None) -> Path:
    """Convert an executed notebook to offline HTML with the code cells hidden (atomic write)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    if title:
        nb.metadata["title"] = title
    nb.metadata.pop("widgets", None)  # no widget manager in static reports
    for cell in nb.cells:  # displays with no data (comm bookkeeping) cannot be rendered
        if cell.get("outputs"):
            cell.outputs = [
                o
                for o in cell.outputs
                if o.get("output_type") not in ("display_data",) or o.get("data")
            ]
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    body = inline_panel_stylesheets(body)
    write_bytes_atomic(html, body.encode("utf-8"))
    return Path(html)


def run_report(
    notebook: str | Path,
    html: str | Path,
    parameters: Mapping[str, Any],
    *,
    title: str,
    keep_notebook: str | Path | None = None,
) -> ReportResult:
    """Execute and export one report; a failing notebook still gives an HTML saying what failed."""
    html = Path(html)
    executed = Path(keep_notebook) if keep_notebook else html.with_suffix(".ipynb")
    with atomic_path(executed, fsync=False, keep_suffix=True) as tmp_nb:
        ok, error = execute_notebook(notebook, tmp_nb, parameters)
    export_html(executed, html, title=title)
    if not ok:
        log.error("report %s failed: %s", html, error)
    return ReportResult(html=html, notebook=executed, ok=ok, error=error)


# ----------------------------------------------------------------------------- index pages
_INDEX_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1100px;
       margin: 2em auto; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 6px 10px; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #f4f4f4; }
.calibrated { color: #176317; } .degraded { color: #8a6100; } .quarantined { color: #a61b1b; }
.fail { background: #f9d0d0; }
"""


def write_index(
    path: str | Path, title: str, rows: Iterable[Mapping[str, Any]], columns: list[str]
) -> Path:
    """A small static HTML table of links (no scripts, no network)."""
    head = "".join(f"<th>{html_lib.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c, "")
            link = row.get(f"{c}_href")
            text = html_lib.escape("" if value is None else str(value))
            cells.append(
                f'<td><a href="{html_lib.escape(link)}">{text}</a></td>'
                if link
                else f"<td>{text}</td>"
            )
        css = ' class="fail"' if row.get("failed") else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html_lib.escape(title)}"
        f"</title><style>{_INDEX_STYLE}</style></head><body><h1>{html_lib.escape(title)}</h1>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<p><small>darkflow, {stamp}</small></p></body></html>"
    )
    write_bytes_atomic(path, page.encode("utf-8"))
    return Path(path)


@dataclass(frozen=True)
class ReportSet:
    """What ``build_reports`` wrote: one entry per session, plus the index page."""

    sessions: tuple[dict[str, Any], ...]
    index: Path | None

    @property
    def paths(self) -> list[Path]:
        return [Path(s["html"]) for s in self.sessions] + ([self.index] if self.index else [])

    def summary(self) -> str:
        lines = [f"reports: {len(self.sessions)} session(s) -> {self.index}"]
        for s in self.sessions:
            flag = "" if s["ok"] else f"  REPORT FAILED: {s['error']}"
            lines.append(
                f"  {s['night']}  {s['session']:<34} {s['calibrated']:>4} calibrated "
                f"{s['degraded']:>4} degraded {s['quarantined']:>4} quarantined  {s['html']}{flag}"
            )
        return "\n".join(lines)


def _report_task(args: tuple) -> tuple[str, bool, str | None]:
    """Process-pool entry point: one session report (module level so it pickles)."""
    source, html, parameters, title, keep = args
    result = run_report(source, html, parameters, title=title, keep_notebook=keep)
    return str(result.html), result.ok, result.error


def build_reports(
    workdir: str | Path,
    *,
    output: str | Path = "reports",
    sessions: Iterable[str] | None = None,
    nights: Iterable[str] | None = None,
    notebook: str | Path | None = None,
    workers: int | None = None,
    index: bool = True,
) -> ReportSet:
    """Write ``<output>/<night>/<session>.html`` for each session of ``workdir`` and an index.

    Sessions run in parallel processes (``workers``, default 2); a failing session still gets a
    report saying what failed, and the others go on.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from darkflow.results import Workdir

    wd = Workdir(workdir)
    output = Path(output)
    wanted = set(sessions or ())
    source = Path(notebook) if notebook else notebook_path(SESSION_NOTEBOOK)
    wanted_nights = set(nights or ())
    todo = [
        (night, session)
        for night, session in wd.sessions()
        if (not wanted or session in wanted or f"{night}/{session}" in wanted)
        and (not wanted_nights or night in wanted_nights)
    ]
    tasks = []
    for night, session in todo:
        html = output / night / f"{session}.html"
        parameters = {"workdir": str(Path(workdir).resolve()), "night": night,
                      "session": session, "output": str(html.resolve())}  # fmt: skip
        keep = Path(workdir) / "reports" / night / f"{session}.ipynb"
        tasks.append(
            (str(source), str(html), parameters, f"darkflow · {night} · {session}", str(keep))
        )
    # Separate processes, not threads: exporting compiles Jinja templates, and CPython 3.11's
    # compiler is not thread-safe; processes also export in parallel for real.
    n_workers = max(1, min(workers or 2, len(tasks)))
    if n_workers == 1:
        outcomes = [_report_task(t) for t in tasks]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
            outcomes = list(pool.map(_report_task, tasks))
    rows = []
    for (night, session), (html, ok, error) in zip(todo, outcomes, strict=True):
        rows.append({
            "night": night, "session": session, "session_href": f"{night}/{session}.html",
            "html": html, **wd.status_counts(night=night, session=session), "ok": ok,
            "error": error, "report": "ok" if ok else f"failed: {error}", "failed": not ok,
        })  # fmt: skip
    index_path = None
    if rows and index:
        index_path = write_index(
            output / "index.html",
            "darkflow reports",
            rows,
            ["night", "session", "calibrated", "degraded", "quarantined", "report"],
        )
    return ReportSet(sessions=tuple(rows), index=index_path)
