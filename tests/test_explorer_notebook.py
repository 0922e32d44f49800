"""notebooks/explorer.ipynb runs top to bottom with papermill on a real work directory, and
what it shows in JupyterLab needs no network."""

from pathlib import Path

import nbformat
import pytest
from helpers.offline import displayed_outputs, page_of, remote_resources, text_of

pytestmark = pytest.mark.integration  # executes the explorer notebook on a calibrated night

ROOT = Path(__file__).resolve().parents[1]
EXEC_MIME = "application/vnd.holoviews_exec.v0+json"


@pytest.fixture(scope="module")
def executed(tiny_run, tmp_path_factory):
    """The explorer notebook run once in a real kernel (papermill keeps the widgets' state)."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    workdir, _, _ = tiny_run
    tmp = tmp_path_factory.mktemp("explorer_nb")
    out = tmp / "explorer.ipynb"

    def run():
        pm.execute_notebook(
            str(ROOT / "notebooks" / "explorer.ipynb"),
            str(out),
            parameters={"workdir": str(workdir)},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(tmp),
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
            execution_timeout=300,
        )

    # Now and then ipykernel 7 leaves an execute request unread (the kernel sits idle, the client
    # waits for its reply for ever; ipykernel#1554): a bounded wait, then a fresh kernel, once.
    try:
        run()
    except CellTimeoutError:
        run()
    return nbformat.read(out, as_version=4)


def _plots(nb) -> list[str]:
    """HTML of every holoviews/panel plot the notebook shows (in cells or in Output widgets)."""
    return [
        text_of(o["data"]["text/html"])
        for o in displayed_outputs(nb)
        if EXEC_MIME in o.get("data", {}) and '"name":"Figure"' in text_of(o["data"]["text/html"])
    ]


def test_explorer_notebook_executes(executed):
    code = [c for c in executed.cells if c.cell_type == "code"]
    widget_views = [
        o
        for c in code
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widget_views, "the explorer cell displays no widget"
    printed = "".join(o.get("text", "") for o in code[-1].get("outputs", []))
    assert "master(s)" in printed
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_explorer_in_jupyterlab_fetches_nothing(executed):
    """An observatory has no network: BokehJS and panel's stylesheets come with the outputs."""
    assert remote_resources(executed) == {}
    plots = _plots(executed)
    assert len(plots) >= 4, "the explorer's panels show no plots"  # image, hot pixels, ...
    assert all('"name":"InlineStyleSheet"' in p for p in plots)  # panel's css, inline
    loaders = [
        text_of(o["data"]["application/javascript"])
        for o in displayed_outputs(executed)
        if "application/javascript" in o.get("data", {})
    ]
    assert any("/* BEGIN bokeh.min.js */" in js for js in loaders)  # BokehJS itself, inline


@pytest.mark.browser
def test_explorer_outputs_draw_with_no_network(executed, tmp_path):
    """The explorer's outputs, shown as JupyterLab shows them, in Chromium: no request at all."""
    from helpers.browser import check_page

    page = tmp_path / "explorer-outputs.html"
    page.write_text(page_of(executed, "darkflow explorer"), encoding="utf-8")
    check = check_page(page, screenshot=tmp_path / "explorer.png", width=1300, height=3000)
    assert check.requests == ()
    assert check.canvases >= len(_plots(executed)) >= 4, check


def test_remote_resources_finds_every_kind_of_reference():
    """The check above can fail: each way an output names a remote resource is found."""
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    imported = (
        '{"type":"object","name":"ImportedStyleSheet","id":"p1","attributes":'
        '{"url":"https://cdn.holoviz.org/panel/1.9.4/dist/css/loading.css?v=1.9.4"}}'
    )
    html = (
        '<link rel="stylesheet" href="https://unpkg.com/x.css">'
        "<script src='//cdn.jsdelivr.net/npm/y.js'></script>"
        "<style>@import url(https://fonts.example.org/z.css);</style>" + imported
    )
    loader = 'const js_urls = ["https://cdn.bokeh.org/bokeh/release/bokeh-3.9.2.min.js"];'
    nb = new_notebook(
        cells=[
            new_code_cell(
                outputs=[
                    new_output("display_data", data={"text/html": html}),
                    new_output("display_data", data={"application/javascript": loader}),
                ]
            )
        ]
    )
    found = remote_resources(nb)
    assert set(found) == {
        "https://unpkg.com/x.css",
        "//cdn.jsdelivr.net/npm/y.js",
        "https://fonts.example.org/z.css",
        "https://cdn.holoviz.org/panel/1.9.4/dist/css/loading.css?v=1.9.4",
        "https://cdn.bokeh.org/bokeh/release/bokeh-3.9.2.min.js",
        "(mentions unpkg.com)",
        "(mentions cdn.holoviz.org)",
        "(mentions cdn.bokeh.org)",
    }
    offline = new_notebook(
        cells=[
            new_code_cell(
                outputs=[
                    new_output(
                        "display_data",
                        data={
                            "text/html": imported.replace("Imported", "Inline").replace(
                                '"url":"https://cdn.holoviz.org', '"css":"'
                            )
                        },
                    ),
                ]
            )
        ]
    )
    assert remote_resources(offline) == {}


def test_setup_notebook_inlines_what_holoviews_and_panel_display(tmp_path):
    """Plots and panel panes come with panel's stylesheets inline; ``inline=False`` gives
    panel's CDN references back (cells run in darkflow's report shell, in a fresh process)."""
    import subprocess
    import sys

    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_code_cell(c)
            for c in (
                "import numpy as np\nfrom darkflow import viz\nhv = viz.setup_notebook()",
                "hv.Curve([1, 2, 3])",
                "viz.make_hot_pixel_dashboard(np.eye(8) * 0.5)",
                "hv = viz.setup_notebook(inline=False)",
                "hv.Curve([1, 2, 3])",
                "viz.make_hot_pixel_dashboard(np.eye(8) * 0.5)",
            )
        ]
    )
    source, out = tmp_path / "nb.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    script = (
        "import sys, nbformat\nfrom darkflow.report._render import run_notebook\n"
        "nb, error = run_notebook(sys.argv[1], {})\nassert error is None, error\n"
        "nbformat.write(nb, sys.argv[2])"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = [  # the value each cell showing a plot or a pane displayed
        text_of(o["data"]["text/html"])
        for c in nbformat.read(out, as_version=4).cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "execute_result"
    ]
    assert len(results) == 4
    for html in results[:2]:
        assert '"name":"InlineStyleSheet"' in html and "ImportedStyleSheet" not in html
        assert "cdn.holoviz.org" not in html and "../assets/" not in html
    for html in results[2:]:
        assert "https://cdn.holoviz.org/panel/" in html
