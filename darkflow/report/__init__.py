"""Report pages: notebooks run without a kernel, exported as offline HTML, rebuilt when stale.

A page is one of the report notebooks (``notebooks/session_report.ipynb``,
``night_overview.ipynb``) executed with its parameters and exported by nbconvert. Pages are
rendered in worker processes that are kept for the life of this process (the nightly command
renders every page of every night in them): each runs the notebook's code cells in an in-process
IPython shell (:mod:`darkflow.report._render`), so no kernel starts and holoviews, bokeh and panel are
imported once per worker, not once per page. :func:`execute_notebook` (papermill, a real
kernel) stays available.

The HTML opens with no network: the ``offline`` nbconvert template (``darkflow/report/templates``) drops
require.js, MathJax, mermaid and the widget manager; BokehJS (with panel's JavaScript, ~3 MB) is
written once per report folder as ``bokeh-<versions>-<hash>.js`` and referenced relatively by
every page of the folder; the few stylesheets panel references on its CDN are replaced by inline
copies of panel's own local files (:func:`inline_panel_stylesheets`). Code cells are hidden. A
notebook that fails still yields a page: the executed part, the failing cell marked, and what
failed.

Each page records beside it (``.<page>.fingerprint.json``) what it was rendered from: the
notebook, template, parameters and darkflow version, and a digest of every work-directory file
its code read. :func:`page_is_stale` compares them with the files as they are now; an up-to-date
page is not rendered again.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import html as html_lib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from darkflow.exceptions import DarkflowError, MissingDependencyError
from darkflow.io.atomic import atomic_path, write_bytes_atomic
from darkflow.report._page_inputs import (
    IGNORED_COLUMNS,
    RENDER_VERSION,
    fingerprint_path,
    page_is_stale,
    record_reads,
    stop_recording,
    write_fingerprint,
)

__all__ = [
    "IGNORED_COLUMNS",
    "RENDER_VERSION",
    "ReportResult",
    "ReportSet",
    "build_reports",
    "close_report_workers",
    "execute_notebook",
    "export_html",
    "fingerprint_path",
    "inline_panel_stylesheets",
    "notebook_path",
    "page_is_stale",
    "prestart_report_workers",
    "render_page",
    "run_report",
]

ProgressFn = Callable[[str, int, int], None]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
_PACKAGE = Path(__file__).resolve().parent.parent  # darkflow/: notebooks/ beside it when installed
SESSION_NOTEBOOK = "session_report.ipynb"


class ReportError(DarkflowError, RuntimeError):
    """A report could not be produced at all (not even an error report)."""


def notebook_path(name: str) -> Path:
    """Locate a report notebook: the package's copy, else the source tree's ``notebooks/``."""
    candidates = [
        _PACKAGE / "notebooks" / name,
        _PACKAGE.parent / "notebooks" / name,
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise ReportError(
        f"report notebook {name!r} not found (looked in {', '.join(map(str, candidates))})"
    )


@dataclass(frozen=True)
class ReportResult:
    """One rendered report page: its HTML and notebook, whether it succeeded, and whether it was
    rendered anew."""

    html: Path
    notebook: Path
    ok: bool
    error: str | None = None
    rendered: bool = True  # False: the page was up to date (its inputs had not changed)
    seconds: float = 0.0


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


@lru_cache(maxsize=1)
def _exporter():
    """One HTML exporter per process: its Jinja templates are compiled once."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    return exporter


def export_html(
    notebook: Any, html: str | Path, *, title: str | None = None, shared_js: bool = True
) -> Path:
    """Convert an executed notebook (a path or a notebook node) to offline HTML with the code
    cells hidden (atomic write).

    With ``shared_js`` BokehJS goes to one file beside the page (:func:`share_bokeh_js`)."""
    import copy

    import nbformat

    if isinstance(notebook, str | os.PathLike):
        nb = nbformat.read(str(notebook), as_version=4)
    else:
        nb = copy.deepcopy(notebook)
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
    if shared_js:
        share_bokeh_js(nb, Path(html).parent)
    body, _ = _exporter().from_notebook_node(nb)
    body = inline_panel_stylesheets(body)
    write_bytes_atomic(html, body.encode("utf-8"))
    return Path(html)


# ----------------------------------------------------------------------------- shared BokehJS
LOAD_MIME = "application/vnd.holoviews_load.v0+json"
_BUNDLE_MARK = "/* BEGIN bokeh.min.js */"
_bundle: dict[str, str] = {}  # this process's full BokehJS loader, once a page has shown it


def _js_text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def bokeh_js_name(js: str) -> str:
    """File name of a BokehJS bundle: the versions it loads and a digest of its bytes."""
    import bokeh

    digest = hashlib.sha256(js.encode("utf-8")).hexdigest()[:12]
    return f"bokeh-{bokeh.__version__}-{digest}.js"


def share_bokeh_js(nb: Any, folder: Path) -> str | None:
    """Move the BokehJS loader out of a page into ``folder/bokeh-<version>-<hash>.js``.

    The loader holoviews displays (BokehJS, its widgets, tables, GL and panel, ~3 MB) becomes a
    ``<script src>`` to one file per folder, written once (atomically; the name changes with
    its content). A page whose notebook ran after another in the same process shows a shorter
    reload loader instead; it gets the same file, so every page stands alone. Returns the file's
    name (``None``: no loader in the page, nothing changed).
    """
    name = None
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            js = _js_text(data.get("application/javascript", ""))
            if LOAD_MIME not in data or "load_libs(" not in js:
                kept.append(out)
                continue
            if _BUNDLE_MARK in js:
                _bundle.setdefault("js", js)
            if "js" not in _bundle:  # no full loader seen in this process: keep it inline
                kept.append(out)
                continue
            if name is None:
                name = bokeh_js_name(_bundle["js"])
                target = folder / name
                if not target.is_file():
                    write_bytes_atomic(target, _bundle["js"].encode("utf-8"))
                out = {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"text/html": f'<script src="{name}"></script>'},
                }
                kept.append(_as_output(out))
            # a second loader in one page: dropped, the file is loaded once
        if "outputs" in cell:
            cell.outputs = kept
    return name


def _as_output(out: dict[str, Any]) -> Any:
    from nbformat import from_dict

    return from_dict(out)


# ----------------------------------------------------------------------------- rendering
def render_page(
    source: str | Path,
    html: str | Path,
    parameters: Mapping[str, Any],
    *,
    title: str,
    keep_notebook: str | Path | None = None,
    night_fingerprint: str | None = None,
) -> ReportResult:
    """Run a report notebook in this process (no kernel) and export it; record its inputs.

    Runs in the report worker processes (:func:`run_report` and :func:`build_reports` send
    pages there); it also works in any process that is not itself a Jupyter kernel.
    """
    import nbformat

    from darkflow.report._render import run_notebook

    t0 = time.monotonic()
    source, html = Path(source), Path(html)
    executed = Path(keep_notebook) if keep_notebook else html.with_suffix(".ipynb")
    workdir = parameters.get("workdir")
    reads = record_reads()
    try:
        nb, error = run_notebook(source, parameters)
    finally:
        stop_recording(reads)
    bokeh_js = share_bokeh_js(nb, html.parent)
    with atomic_path(executed, fsync=False, keep_suffix=True) as tmp:
        nbformat.write(nb, str(tmp))
    export_html(nb, html, title=title, shared_js=False)
    ok = error is None
    message = None if ok else f"{error.ename}: {error.evalue}"
    if not ok:
        log.error("report %s failed: %s", html, message)
    write_fingerprint(
        html,
        source,
        parameters,
        ok=ok,
        reads=reads,
        workdir=Path(workdir) if workdir else None,
        bokeh_js=bokeh_js,
        night_fingerprint=night_fingerprint,
    )
    return ReportResult(
        html=html,
        notebook=executed,
        ok=ok,
        error=message,
        rendered=True,
        seconds=time.monotonic() - t0,
    )


def _render_task(task: tuple) -> ReportResult:
    """Worker-process entry point (module level so it pickles)."""
    source, html, parameters, title, keep, night = task
    return render_page(
        source, html, parameters, title=title, keep_notebook=keep, night_fingerprint=night
    )


_pool: Any = None
_pool_size = 0


def _worker_start() -> None:
    """A report worker: the darkflow logger on stderr, like the command that started it; then
    what every page needs (holoviews, bokeh, panel, the shell, the export templates: ~3 s of
    CPU), so a worker started ahead (:func:`prestart_report_workers`) has it done before its
    first page."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("darkflow")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.WARNING)
    # jsonschema (under nbformat) imports rfc3987_syntax when it is installed, only to check
    # "iri" formats, and that module builds a parser at import: ~1 s of CPU per worker. No
    # notebook schema uses the format; jsonschema leaves it unchecked without the module.
    if "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        from darkflow.report._render import report_shell

        # the shell first: holoviews and panel look for a running IPython when imported (and
        # load their notebook extension only then)
        report_shell()
        import importlib

        import nbformat

        # what the pages' notebooks import, loaded before the first page: names (data), not a
        # dependency of this package on the layers above it (viz draws what report runs)
        for name in _PAGE_MODULES:
            importlib.import_module(name)
        _exporter().from_notebook_node(nbformat.v4.new_notebook())  # compiles the templates
    except Exception:  # a missing extra or a broken import: the first page reports it
        log.debug("report worker warm-up failed", exc_info=True)
    import gc

    # what the imports made lives as long as the worker: the collector's full passes while
    # pages are drawn (bokeh models are full of reference cycles) need not walk it every time
    gc.collect()
    gc.freeze()


_PAGE_MODULES = ("holoviews.plotting.bokeh", "darkflow.report.results", "darkflow.viz")
"""Modules the report notebooks import (``notebooks/*.ipynb``), warmed up in every worker."""


def _ready() -> bool:
    return True


def prestart_report_workers(n: int = 2) -> None:
    """Start ``n`` report workers now (they import what pages need in the background), e.g.
    while a night is calibrated: its pages then find them ready. Idempotent."""
    pool = _workers(max(1, n))
    for _ in range(max(1, n)):  # each submission starts a worker process while none is idle
        pool.submit(_ready)


def _workers(n: int):
    """The report worker processes, started on first use and kept for this process's life.

    Separate processes, not threads: a page's code runs in an IPython shell (one per process)
    and exporting compiles Jinja templates, which CPython 3.11's compiler does not do safely
    in threads; processes also render in parallel for real. ``spawn``: a worker never inherits
    a Jupyter kernel's shell from the process that asks for reports.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _pool, _pool_size
    if _pool is None or _pool_size < n:
        close_report_workers()
        _pool = ProcessPoolExecutor(
            max_workers=n,
            initializer=_worker_start,
            mp_context=multiprocessing.get_context("spawn"),
        )
        _pool_size = n
    return _pool


def close_report_workers() -> None:
    """Stop the report worker processes (they are started again when needed)."""
    global _pool, _pool_size
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
    _pool, _pool_size = None, 0


atexit.register(close_report_workers)


def _render_all(
    tasks: list[tuple],
    *,
    workers: int,
    progress: ProgressFn | None,
    done: int = 0,
    total: int | None = None,
) -> list[ReportResult]:
    """Render ``tasks`` in the worker processes, in order; ``progress('reports', n, total)``.

    When the workers die (a process that cannot start them, e.g. a script read from stdin, or a
    crash), the pool is dropped and the pages left are rendered in this process if it runs no
    IPython shell of its own, else they fail with the reason.
    """
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    total = len(tasks) + done if total is None else total
    tick = progress or (lambda stage, n, of: None)
    if not tasks:
        return []
    pool = _workers(max(1, min(workers, len(tasks))))
    futures = {pool.submit(_render_task, t): i for i, t in enumerate(tasks)}
    results: list[Any] = [None] * len(tasks)
    broken: list[tuple[int, BaseException]] = []
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                i = futures[future]
                try:
                    results[i] = future.result()
                except BrokenProcessPool as err:
                    broken.append((i, err))
                    continue
                done += 1
                tick("reports", done, total)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    if broken:
        close_report_workers()
    for i, err in sorted(broken):
        results[i] = _render_here(tasks[i], err)
        done += 1
        tick("reports", done, total)
    return results


def _render_here(task: tuple, err: BaseException) -> ReportResult:
    """A page whose worker died: rendered in this process when it can be, else failed."""
    from IPython import get_ipython

    html = Path(task[1])
    if get_ipython() is None:
        log.warning("report workers unavailable (%s); rendering %s in this process", err, html)
        return _render_task(task)
    log.error("report %s could not be rendered: %s", html, err)
    return ReportResult(html, html.with_suffix(".ipynb"), False, f"{type(err).__name__}: {err}")


def run_report(
    notebook: str | Path,
    html: str | Path,
    parameters: Mapping[str, Any],
    *,
    title: str,
    keep_notebook: str | Path | None = None,
    force: bool = False,
    night_fingerprint: str | None = None,
    progress: ProgressFn | None = None,
) -> ReportResult:
    """Render one report page unless it is up to date (:func:`page_is_stale`).

    A failing notebook still gives an HTML page saying what failed (``ok`` False).
    """
    html = Path(html)
    executed = Path(keep_notebook) if keep_notebook else html.with_suffix(".ipynb")
    if not force and not page_is_stale(
        html, source=notebook, parameters=parameters, night_fingerprint=night_fingerprint
    ):
        if progress:
            progress("reports", 1, 1)
        return ReportResult(html=html, notebook=executed, ok=True, rendered=False)
    task = (
        str(notebook),
        str(html),
        dict(parameters),
        title,
        str(keep_notebook) if keep_notebook else None,
        night_fingerprint,
    )
    (result,) = _render_all([task], workers=1, progress=progress)
    return result


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
        """Every page written: the sessions' and the index."""
        return [Path(s["html"]) for s in self.sessions] + ([self.index] if self.index else [])

    def summary(self) -> str:
        """A few lines for the terminal: each session's page (and failures), then the index."""
        lines = [f"reports: {len(self.sessions)} session(s) -> {self.index}"]
        for s in self.sessions:
            flag = "" if s["ok"] else f"  REPORT FAILED: {s['error']}"
            lines.append(
                f"  {s['night']}  {s['session']:<34} {s['calibrated']:>4} calibrated "
                f"{s['degraded']:>4} degraded {s['quarantined']:>4} quarantined  {s['html']}{flag}"
            )
        return "\n".join(lines)


def build_reports(
    workdir: str | Path,
    *,
    output: str | Path = "reports",
    sessions: Iterable[str] | None = None,
    nights: Iterable[str] | None = None,
    notebook: str | Path | None = None,
    workers: int | None = None,
    index: bool = True,
    force: bool = False,
    progress: ProgressFn | None = None,
    night_fingerprint: Callable[[Path, str], str] | None = None,
) -> ReportSet:
    """Write ``<output>/<night>/<session>.html`` for each session of ``workdir`` and an index.

    Pages whose inputs did not change since they were written are kept (:func:`page_is_stale`;
    ``force`` renders them all); the others are rendered in ``workers`` processes (default 2),
    ``progress("reports", done, total)`` after each. A failing session still gets a page saying
    what failed, and the others go on. ``night_fingerprint(workdir, night)``, when given, lets
    an unchanged night skip comparing each page's files.
    """
    from darkflow.report.results import Workdir

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
    night_prints: dict[str, str | None] = {}
    tasks, stale, results = [], [], {}
    for night, session in todo:
        html = output / night / f"{session}.html"
        parameters = {
            "workdir": str(Path(workdir).resolve()),
            "night": night,
            "session": session,
            "output": str(html.resolve()),
        }
        keep = Path(workdir) / "reports" / night / f"{session}.ipynb"
        if night not in night_prints:
            night_prints[night] = (
                night_fingerprint(Path(workdir), night) if night_fingerprint else None
            )
        task = (
            str(source),
            str(html),
            parameters,
            f"darkflow · {night} · {session}",
            str(keep),
            night_prints[night],
        )
        tasks.append(task)
        if force or page_is_stale(
            html, source=source, parameters=parameters, night_fingerprint=night_prints[night]
        ):
            stale.append(task)
        else:
            results[str(html)] = ReportResult(html, keep, True, rendered=False)
    if progress and todo:
        progress("reports", len(results), len(todo))
    for task, result in zip(
        stale,
        _render_all(
            stale, workers=workers or 2, progress=progress, done=len(results), total=len(todo)
        ),
        strict=True,
    ):
        results[task[1]] = result
    rows = []
    for (night, session), task in zip(todo, tasks, strict=True):
        r = results[task[1]]
        rows.append(
            {
                "night": night,
                "session": session,
                "session_href": f"{night}/{session}.html",
                "html": str(r.html),
                **wd.status_counts(night=night, session=session),
                "ok": r.ok,
                "error": r.error,
                "report": "ok" if r.ok else f"failed: {r.error}",
                "failed": not r.ok,
                "rendered": r.rendered,
                "seconds": round(r.seconds, 2),
            }
        )
    index_path = None
    if rows and index:
        index_path = write_index(
            output / "index.html",
            "darkflow reports",
            rows,
            ["night", "session", "calibrated", "degraded", "quarantined", "report"],
        )
    return ReportSet(sessions=tuple(rows), index=index_path)
