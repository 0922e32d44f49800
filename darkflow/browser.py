"""Open an HTML report in headless Chromium, offline, and say what it did.

Used by the tests (and to take the README's screenshots): the page is loaded from a file with the
browser's own background traffic disabled and a network log recorded, so any request the page
makes (a CDN script, a stylesheet, a font) is listed. A probe script, added to a temporary copy of
the page, counts the bokeh plots that actually drew a canvas (bokeh renders into shadow roots,
which ``--dump-dom`` does not show) and writes the count into the page title.
"""

from __future__ import annotations

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
  function canvases(root) {
    let n = 0;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { n += canvases(el.shadowRoot); }
      if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) { n += 1; }
    }
    return n;
  }
  window.addEventListener('load', function () {
    setTimeout(function () {
      const roots = document.querySelectorAll('.bk-root, [data-root-id]').length;
      document.title = 'DFPROBE canvases=' + canvases(document) + ' roots=' + roots;
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
) -> BrowserCheck:
    """Load ``html`` in headless Chromium with no network and report what it drew and fetched."""
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
            shot_path = None
            if screenshot is not None:
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
        match = re.search(r"DFPROBE canvases=(\d+) roots=(\d+)", dom.stdout)
        canvases, roots = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        urls = [
            u
            for u in _netlog_urls(netlog)
            if not u.startswith(("file:", "data:", "blob:", "about:", "chrome:"))
            and not _BROWSER_HOSTS.match(u)
        ]
    return BrowserCheck(
        page=html,
        canvases=canvases,
        roots=roots,
        requests=tuple(urls),
        screenshot=shot_path if screenshot is not None and shot_path.exists() else None,
        console=dom.stderr[-4000:],
    )
