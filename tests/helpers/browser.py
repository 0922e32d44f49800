"""Open an HTML report in headless Chromium, offline, and say what it did.

Used by the tests (and to take the README's screenshots): the page is loaded from a file with the
browser's own background traffic disabled and a network log recorded, so any request the page
makes (a CDN script, a stylesheet, a font) is listed. A probe script, added to a temporary copy of
the page, counts the bokeh plots that actually drew a canvas (bokeh renders into shadow roots,
which ``--dump-dom`` does not show), measures the page and its layout, and writes what it found into the page.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from darkflow.exceptions import MissingDependencyError

__all__ = ["BrowserCheck", "check_page", "find_chromium"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
    "--metrics-recording-only",
    "--hide-scrollbars",
)
# Chromium itself (not the page) may still try these; they are not the report's requests.
_BROWSER_HOSTS = re.compile(
    r"^https?://([a-z0-9-]+\.)*(google\.com|googleapis\.com|gvt1\.com|gstatic\.com|"
    r"googleusercontent\.com|chromium\.org)(/|$)"
)

_PROBE = """
<script>
(function () {
  function walk(root, visit) {
    for (const el of root.querySelectorAll('*')) {
      visit(el);
      if (el.shadowRoot) { walk(el.shadowRoot, visit); }
    }
  }
  function label(el) {
    const text = (el.textContent || '').trim().replace(/\\s+/g, ' ');
    return el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '') + ': ' + text.slice(0, 80);
  }
  function scrolls(el) {  // can the reader scroll this element sideways?
    const o = getComputedStyle(el).overflowX;
    return o === 'auto' || o === 'scroll';
  }
  function layout() {
    const problems = [];
    const page = document.documentElement;
    if (page.scrollWidth > page.clientWidth + 1) {
      problems.push('page wider than the window: ' + page.scrollWidth + ' > ' + page.clientWidth);
    }
    // a table wider than its container is only readable when a container scrolls sideways
    for (const table of document.querySelectorAll('table')) {
      const right = table.getBoundingClientRect().right;
      let el = table.parentElement, ok = right <= page.clientWidth + 1;
      while (el && !ok) {
        if (scrolls(el)) { ok = true; break; }
        if (el.getBoundingClientRect().right < right - 1 &&
            getComputedStyle(el).overflowX !== 'visible') { break; }
        el = el.parentElement;
      }
      if (!ok) { problems.push('table overflows: ' + label(table)); }
    }
    // table cells a reader should never see: text cut by pandas ("..."), "NaN", a raw index
    for (const cell of document.querySelectorAll('td, th')) {
      const text = cell.textContent.trim();
      if (/(\\.\\.\\.|\u2026)$/.test(text)) { problems.push('cell text cut: ' + label(cell)); }
      if (/^(nan|NaN|None|<NA>|NaT)$/.test(text)) { problems.push('missing value shown as ' + text + ': ' + label(cell)); }
    }
    const indexed = new Set();
    for (const th of document.querySelectorAll('tbody tr > th:first-child')) {
      if (/^\\d+$/.test(th.textContent.trim())) { indexed.add(th.closest('table')); }
    }
    indexed.forEach(t => problems.push('raw index column: ' + label(t)));
    // text cut: an ellipsis, or a clipping element whose own text is wider than it is
    walk(document, function (el) {
      const style = getComputedStyle(el);
      if (el.clientWidth === 0 || style.display === 'none' || style.visibility === 'hidden') {
        return;
      }
      const own = Array.from(el.childNodes).some(
        n => n.nodeType === 3 && n.textContent.trim() !== '');
      if (!own || scrolls(el)) { return; }
      const wide = el.scrollWidth > el.clientWidth + 1;
      if (style.textOverflow === 'ellipsis' && wide) {
        problems.push('text cut with an ellipsis: ' + label(el));
      } else if (wide && (style.overflowX === 'hidden' || style.overflowX === 'clip')) {
        problems.push('text clipped: ' + label(el));
      }
    });
    return problems;
  }
  function canvases(root) {
    let n = 0;
    walk(root, function (el) { if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) { n += 1; } });
    return n;
  }
  window.addEventListener('load', function () {
    setTimeout(function () {
      const result = {
        canvases: canvases(document),
        roots: document.querySelectorAll('.bk-root, [data-root-id]').length,
        height: Math.ceil(document.documentElement.scrollHeight),
        layout: layout(),
      };
      const pre = document.createElement('pre');
      pre.id = 'dfprobe';
      pre.textContent = JSON.stringify(result);
      document.body.appendChild(pre);
    }, 2500);
  });
})();
</script>
"""


def find_chromium() -> str:
    """Path of a Chromium/Chrome executable, or raise MissingDependencyError."""
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise MissingDependencyError(
        "chromium", "checking reports in a headless browser (Debian: apt-get install chromium)"
    )


@dataclass(frozen=True)
class BrowserCheck:
    page: Path
    canvases: int  # bokeh canvases drawn (each plot draws at least one)
    roots: int  # bokeh/panel roots found in the page
    requests: tuple[str, ...]  # network requests the page made (browser's own traffic excluded)
    screenshot: Path | None
    height: int = 0  # height of the whole page (px) at the window's width
    layout: tuple[str, ...] = ()  # tables wider than the page, text cut by an ellipsis or clipped
    console: str = field(default="", repr=False)

    @property
    def offline(self) -> bool:
        return not self.requests


def _netlog_urls(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    text = text.rstrip().rstrip(",")
    if not text.endswith("}"):
        text += "]}"  # a net log cut short by the browser's exit
    try:
        events = json.loads(text).get("events", [])
    except json.JSONDecodeError:
        return sorted(set(re.findall(r'"url":"([^"]+)"', text)))
    urls = {e.get("params", {}).get("url") for e in events}
    return sorted(u for u in urls if u)


def check_page(
    html: str | Path,
    *,
    screenshot: str | Path | None = None,
    width: int = 1280,
    height: int = 2400,
    budget_ms: int = 8000,
    timeout_s: float = 120.0,
    full_page: bool = False,
) -> BrowserCheck:
    """Load ``html`` in headless Chromium with no network and report what it drew and fetched.

    ``full_page``: the screenshot is as tall as the page (measured first), not ``height``.
    The layout probe lists what a reader cannot see: a table wider than the window with no
    sideways scroll in any container, and text cut with an ellipsis or clipped by its box
    (elements in bokeh's shadow roots included; text drawn on a canvas cannot be seen).
    """
    exe = find_chromium()
    html = Path(html).resolve()
    with tempfile.TemporaryDirectory(prefix="darkflow-browser-") as tmp:
        tmpdir = Path(tmp)
        probe_page = html.with_name(f".{html.stem}.probe.html")
        source = html.read_text(encoding="utf-8")
        body_end = source.rfind("</body>")
        probed = (
            source[:body_end] + _PROBE + source[body_end:] if body_end >= 0 else source + _PROBE
        )
        probe_page.write_text(probed, encoding="utf-8")
        netlog = tmpdir / "netlog.json"
        base = [exe, *_FLAGS, f"--user-data-dir={tmpdir / 'profile'}", f"--log-net-log={netlog}"]
        base += [f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}"]
        try:
            dom = subprocess.run(
                [*base, "--dump-dom", probe_page.as_uri()],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            match = re.search(r'<pre id="dfprobe">(.*?)</pre>', dom.stdout, re.S)
            probe = json.loads(html_lib.unescape(match.group(1))) if match else {}
            shot_path = None
            if screenshot is not None:
                if full_page and probe.get("height"):
                    size = f"--window-size={width},{probe['height']}"
                    base = [size if a.startswith("--window-size=") else a for a in base]
                shot_path = Path(screenshot).resolve()
                shot_path.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    [*base, f"--screenshot={shot_path}", html.as_uri()],
                    capture_output=True,
                    timeout=timeout_s,
                    check=False,
                )
        finally:
            probe_page.unlink(missing_ok=True)
        urls = [
            u
            for u in _netlog_urls(netlog)
            if not u.startswith(("file:", "data:", "blob:", "about:", "chrome:"))
            and not _BROWSER_HOSTS.match(u)
        ]
    return BrowserCheck(
        page=html,
        canvases=int(probe.get("canvases", 0)),
        roots=int(probe.get("roots", 0)),
        requests=tuple(urls),
        screenshot=shot_path if screenshot is not None and shot_path.exists() else None,
        console=dom.stderr[-4000:],
        height=int(probe.get("height", 0)),
        layout=tuple(probe.get("layout", ())),
    )
