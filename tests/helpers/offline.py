"""What an executed notebook's outputs would fetch from a network when JupyterLab shows them.

JupyterLab (and the classic notebook) render the mime bundles a kernel sent: the BokehJS loader,
each plot's HTML with its bokeh document, and the outputs held by ``ipywidgets.Output`` widgets
(papermill keeps those in the notebook's widget state). Anything in them that names a resource by
an ``http(s)`` URL is requested when the output is shown: at an observatory without a network
that request fails. URLs that only appear as strings inside BokehJS's own code (a font or MathJax
loader used by models darkflow never makes) are not resources of the page and are not listed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

__all__ = ["CDN_HOSTS", "displayed_outputs", "remote_resources", "text_of"]

# CDNs the holoviz stack loads from when asked to (cdn.jsdelivr.net is also named inside BokehJS's
# code for fonts darkflow never uses, so only its resource references count, not its name).
CDN_HOSTS = ("cdn.holoviz.org", "cdn.bokeh.org", "unpkg.com")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

_RESOURCE = [
    # a bokeh document's stylesheet imported by URL (panel's theme, layout, loading spinner)
    re.compile(
        r'"name":\s*"ImportedStyleSheet",\s*"id":\s*"[^"]*",\s*"attributes":\s*\{\s*'
        r'"url":\s*"(?P<url>[^"]+)"'
    ),
    re.compile(r"<link\b[^>]*\bhref=\\?[\"']?(?P<url>(?:https?:)?//[^\"'\\ >]+)", re.I),
    re.compile(r"<script\b[^>]*\bsrc=\\?[\"']?(?P<url>(?:https?:)?//[^\"'\\ >]+)", re.I),
    re.compile(r"@import\s+(?:url\()?\s*\\?[\"']?(?P<url>(?:https?:)?//[^\"'\\)\s]+)", re.I),
    # the BokehJS loader's lists of scripts and stylesheets to fetch
    re.compile(r"\b(?:js_urls|css_urls)\s*=\s*\[[^\]]*?[\"'](?P<url>(?:https?:)?//[^\"']+)"),
]


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return json.dumps(value)


def displayed_outputs(nb: Any) -> Iterator[dict]:
    """Every output a notebook shows: its cells' and those held by its ``Output`` widgets."""
    for cell in nb.cells:
        yield from cell.get("outputs", [])
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for model in state.values():
        if model.get("model_name") == "OutputModel":
            yield from model.get("state", {}).get("outputs", [])


def remote_resources(nb: Any) -> Counter:
    """URL → number of references, for every resource the outputs would fetch from a network,
    and every mention of a :data:`CDN_HOSTS` host at all."""
    found: Counter = Counter()
    for out in displayed_outputs(nb):
        for value in (out.get("data") or {}).values():
            text = text_of(value)
            for pattern in _RESOURCE:
                found.update(m.group("url") for m in pattern.finditer(text))
            for host in CDN_HOSTS:
                found.update(f"(mentions {host})" for _ in range(text.count(host)))
    return found


def page_of(nb: Any, title: str = "notebook outputs") -> str:
    """One HTML page of everything a notebook displays, in order, as JupyterLab renders it:
    scripts run (the BokehJS loader), HTML shown (plots, tables); widget views are skipped (their
    ``Output`` widgets' contents come after the cells)."""
    parts = []
    for out in displayed_outputs(nb):
        data = out.get("data") or {}
        if "application/javascript" in data:
            js = text_of(data["application/javascript"]).replace("</script", "<\\/script")
            parts.append(f'<script type="text/javascript">{js}</script>')
        elif "text/html" in data:
            parts.append(f"<div>{text_of(data['text/html'])}</div>")
    body = "\n".join(parts)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body>{body}</body></html>"
    )
