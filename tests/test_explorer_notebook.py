"""notebooks/explorer.ipynb runs top to bottom with papermill on a real work directory."""

from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.integration  # executes the explorer notebook on a calibrated night

ROOT = Path(__file__).resolve().parents[1]


def test_explorer_notebook_executes(tiny_run, tmp_path):
    import papermill as pm

    workdir, _, _ = tiny_run
    out = tmp_path / "explorer.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "explorer.ipynb"), str(out),
        parameters={"workdir": str(workdir)}, kernel_name="python3", progress_bar=False,
        cwd=str(tmp_path),
    )  # fmt: skip
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    widget_views = [
        o for c in code for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]  # fmt: skip
    assert widget_views, "the explorer cell displays no widget"
    printed = "".join(o.get("text", "") for o in code[-1].get("outputs", []))
    assert "master(s)" in printed
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
