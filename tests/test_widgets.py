"""The explorer widgets, driven programmatically on the tiny night (no browser except one test)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from darkflow.config import CombineConfig
from darkflow.exceptions import ConfigError, InsufficientFramesError
from darkflow.report.results import Workdir

ROOT = Path(__file__).resolve().parents[1]


def _digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def _tree(root: Path) -> dict[str, str]:
    return _digest(sorted(p for p in Path(root).rglob("*") if p.is_file()))


@pytest.fixture(scope="module")
def wd(tiny_run) -> Workdir:
    return Workdir(tiny_run[0])


@pytest.fixture(scope="module")
def session_with_choice(wd) -> tuple[str, str]:
    """A session whose configuration has at least two dark masters and a calibrated light."""
    from darkflow_widgets.data import configurations, masters_for

    for night, session in wd.sessions():
        for sig in configurations(wd, night, session):
            darks = masters_for(wd, sig).query("kind == 'dark'")
            lights = wd.lights(night=night, session=session)
            if len(darks) >= 2 and (lights["status"] != "quarantined").any():
                return night, session
    pytest.fail("the tiny night has no session with two dark masters")


@pytest.fixture(scope="module")
def rich_master(wd) -> tuple[str, str, str]:
    """(night, session, master_id) of the dark master with the most frames that lights used."""
    used = wd.frame_report.dropna(subset=["master_id"])
    masters = wd.masters[wd.masters["master_id"].isin(used["master_id"])]
    best = masters.sort_values(["n_frames", "master_id"], ascending=[False, True]).iloc[0]
    row = used[used["master_id"] == best["master_id"]].iloc[0]
    assert best["n_frames"] >= 3
    return row["night"], row["session"], best["master_id"]


@pytest.fixture
def explorer(wd, session_with_choice):
    from darkflow_widgets import Explorer

    night, session = session_with_choice
    return Explorer(wd, night=night, session=session, max_lights=2)


# ----------------------------------------------------------------------------- imports
def test_import_widgets_is_light():
    code = (
        "import sys, darkflow_widgets, darkflow_widgets.data, darkflow_widgets.metrics;"
        "print(','.join(m for m in ('ipywidgets', 'holoviews', 'bokeh') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_explorer_without_ipywidgets_says_what_is_missing():
    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"
        "import darkflow_widgets\n"
        "from darkflow.exceptions import MissingDependencyError\n"
        "try:\n    darkflow_widgets.Explorer\nexcept MissingDependencyError as err:\n"
        "    print('OK', err.package, err)\n"
        "import darkflow_widgets.data  # the prepare layer works without it\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("OK ipywidgets"), out.stdout + out.stderr
    assert "pip install ipywidgets" in out.stdout


def test_unknown_attribute():
    import darkflow_widgets

    with pytest.raises(AttributeError):
        darkflow_widgets.NoSuchThing  # noqa: B018
    assert "Explorer" in dir(darkflow_widgets)


# ----------------------------------------------------------------------------- pickers
@pytest.mark.integration
def test_explorer_cascade(explorer, wd, session_with_choice):
    from darkflow_widgets.data import configurations

    night, session = session_with_choice
    assert explorer.night.value == night and explorer.session.value == session
    assert list(explorer.session.options) == [s for n, s in wd.sessions() if n == night]
    assert list(explorer.config.options) == configurations(wd, night, session)
    masters = wd.masters[wd.masters["config_signature"] == explorer.config.value]
    assert {v for _, v in explorer.masters_panel.master.options} == set(masters["master_id"])
    lights = wd.lights(night=night, session=session)
    assert {v for _, v in explorer.light_panel.light.options} == set(lights["path"])
    # the default master is a dark one used by lights, and every panel shows something
    assert explorer.masters_panel.master.value in set(lights["master_id"].dropna())
    for panel in explorer.panels[:1] + explorer.panels[2:]:
        assert panel.error is None, panel.error
        assert panel.tables and panel.views, type(panel).__name__
    assert "calibrated" in explorer.summary.value

    # another session: everything follows
    other = next(s for n, s in wd.sessions() if n == night and s != session)
    explorer.session.value = other
    assert list(explorer.config.options) == configurations(wd, night, other)
    assert explorer.light_panel.light.value in set(wd.lights(night=night, session=other)["path"])


@pytest.mark.integration
def test_master_panel_metrics_follow_selection(explorer, wd):
    panel = explorer.masters_panel
    ids = [v for _, v in panel.master.options]
    for master_id in ids[:2]:
        panel.master.value = master_id
        assert panel.tables["master"]["master_id"].tolist() == [master_id]
        metrics = panel.tables["acceptance metrics"].set_index("metric")["value"]
        master = wd.load_master(master_id)
        assert metrics["n_hot_stable"] == np.count_nonzero(master.hot_persistence >= 0.9)
        assert metrics["min_n_used"] == master.n_used.min()
        assert master_id in panel.status.value
        # a master is named as a reader names it, never as a Python repr
        assert "<MasterDark" not in panel.status.value
        assert f"{master.meta.n_frames} frames" in panel.status.value
    assert panel.master.value in ids[:2]
    if panel.master.value in {v for _, v in explorer.rerun_panel.master.options}:
        assert explorer.rerun_panel.master.value == panel.master.value  # the re-run tab follows


# ----------------------------------------------------------------------------- re-run
@pytest.mark.integration
def test_rerun_changes_the_metrics_and_writes_nothing(wd, rich_master):
    from darkflow_widgets import Explorer
    from darkflow_widgets.metrics import metric_names

    night, session, master_id = rich_master
    explorer = Explorer(wd, night=night, session=session, max_lights=2)
    explorer.masters_panel.master.value = master_id
    panel = explorer.rerun_panel
    assert panel.master.value == master_id  # follows the masters tab
    original = wd.load_master(master_id)
    inputs = [i["path"] for i in original.provenance["inputs"]]
    before_inputs, before_work = _digest(inputs), _tree(wd.path)
    assert panel.sigma_low.value == original.provenance["params"]["sigma_low"]

    panel.max_iters.value = 0  # no clipping at all
    panel.button.click()
    assert panel.error is None, panel.error
    table = panel.result.metrics.set_index("metric")
    assert list(table.index) == metric_names()
    assert (
        table.loc["clipped_high_frac", "rerun"] == 0 and table.loc["clipped_low_frac", "rerun"] == 0
    )
    assert table.loc["min_n_used", "rerun"] == original.meta.n_frames
    # without clipping, cosmic-ray hits stay in the master: its scatter exceeds the noise model
    assert table.loc["noise_outlier_frac", "rerun"] > table.loc["noise_outlier_frac", "original"]
    assert "0 iterations" in panel.status.value
    assert set(panel.views) == {"difference", "hot_pixels"}

    panel.max_iters.value, panel.sigma_low.value, panel.sigma_high.value = 5, 1.5, 1.5
    tight = panel.run()
    t = tight.metrics.set_index("metric")
    assert t.loc["clipped_high_frac", "rerun"] > t.loc["clipped_high_frac", "original"]
    assert t.loc["min_n_used", "rerun"] <= t.loc["min_n_used", "original"]
    assert tight.improved()["clipped_high_frac"] is False
    # the lights were re-subtracted with the re-run master
    assert np.isfinite(t.loc["residual_width", "rerun"])
    assert np.count_nonzero(tight.difference.diff) > 0

    assert _digest(inputs) == before_inputs  # inputs untouched
    assert _tree(wd.path) == before_work  # nothing written to the work directory


@pytest.mark.integration
def test_rerun_with_the_same_settings_reproduces_the_master(wd):
    from darkflow_widgets.data import combine_config_of, rerun_master

    master_id = wd.masters.query("kind == 'dark'")["master_id"].iloc[0]
    result = rerun_master(wd, master_id, combine_config_of(wd.load_master(master_id)))
    np.testing.assert_array_equal(result.rerun.data, result.original.data)
    np.testing.assert_array_equal(result.rerun.n_used, result.original.n_used)
    assert (result.metrics["change"].fillna(0) == 0).all()


@pytest.mark.integration
def test_residual_metric_matches_the_pipeline(wd):
    """Re-subtracting a light with its own master gives the frame report's noise ratio."""
    from darkflow_widgets.metrics import MetricContext

    fr = wd.frame_report.dropna(subset=["noise_ratio", "master_id"])
    master_id = fr["master_id"].value_counts().index[0]
    ctx = MetricContext.for_master(wd, master_id, max_lights=5)
    res = ctx.residuals(wd.load_master(master_id))
    expected = ctx.lights.head(5)["noise_ratio"].dropna().to_numpy()
    assert len(res) == len(expected) > 0
    np.testing.assert_allclose([r.noise_ratio for r in res], expected, atol=2e-3)


@pytest.mark.integration
def test_rerun_error_is_shown_not_raised(explorer, monkeypatch):
    import darkflow_widgets.data as data

    def gone(wd, master_id):
        raise InsufficientFramesError(f"master {master_id}: none of its input darks can be found")

    monkeypatch.setattr(data, "master_inputs", gone)
    panel = explorer.rerun_panel
    panel.button.click()
    assert panel.result is None or panel.error is not None
    assert "input darks can be found" in panel.error
    assert "⚠" in panel.status.value and panel.tables == {}


@pytest.mark.integration
def test_master_inputs_fall_back_to_the_catalog(wd, tmp_path):
    """A master whose provenance paths are gone finds its darks in the catalog."""
    from darkflow.master import write_master
    from darkflow_widgets.data import master_inputs

    row = wd.masters.query("kind == 'dark'").iloc[0]
    master = wd.load_master(row["master_id"])
    real = sorted(i["path"] for i in master.provenance["inputs"])
    moved = replace(
        master,
        provenance={**master.provenance, "inputs": [{"path": str(tmp_path / "gone.fits")}]},
    )
    work = tmp_path / "work"
    work.mkdir()
    for name in ("frame_report.csv", "catalog.csv", "decisions.jsonl"):
        shutil.copy(wd.path / name, work / name)
    masters = wd.masters.copy()
    new_path = write_master(moved, work / "m.fits")
    masters.loc[masters["master_id"] == row["master_id"], "path"] = str(new_path)
    masters.to_csv(work / "masters.csv", index=False)
    assert master_inputs(Workdir(work), row["master_id"]) == real

    masters.loc[:, "date_start_utc"] = "1999-01-01T00:00:00+00:00"
    masters.loc[:, "date_end_utc"] = "1999-01-02T00:00:00+00:00"
    masters.to_csv(work / "masters.csv", index=False)
    with pytest.raises(InsufficientFramesError, match="none of its input darks"):
        master_inputs(Workdir(work), row["master_id"])


# ----------------------------------------------------------------------------- metrics
@pytest.mark.integration
def test_metric_registry_is_pluggable(wd):
    from darkflow_widgets.data import rerun_master
    from darkflow_widgets.metrics import compute_metrics, register_metric, unregister_metric

    master_id = wd.masters.query("kind == 'dark'")["master_id"].iloc[0]
    register_metric("p99_adu", lambda m, ctx: float(np.percentile(m.data, 99)), better=None)
    try:
        with pytest.raises(ConfigError, match="already registered"):
            register_metric("p99_adu", lambda m, ctx: 0.0)
        with pytest.raises(ConfigError):
            register_metric("bad", "not callable")  # type: ignore[arg-type]
        master = wd.load_master(master_id)
        table = compute_metrics(master, names=["p99_adu", "min_n_used"]).set_index("metric")
        assert table.loc["p99_adu", "value"] == pytest.approx(np.percentile(master.data, 99))
        result = rerun_master(wd, master_id, CombineConfig(sigma_low=2.0, sigma_high=2.0))
        assert "p99_adu" in set(result.metrics["metric"])
        with pytest.raises(ConfigError, match="unknown metric"):
            compute_metrics(master, names=["nope"])
    finally:
        unregister_metric("p99_adu")


@pytest.mark.integration
def test_failing_metric_gives_nan(wd):
    from darkflow.exceptions import DarkflowError
    from darkflow_widgets.metrics import compute_metrics, register_metric, unregister_metric

    def broken(master, ctx):
        raise DarkflowError("cannot compute")

    register_metric("broken", broken)
    try:
        master = wd.load_master(wd.masters["master_id"].iloc[0])
        table = compute_metrics(master, names=["broken", "min_n_used"]).set_index("metric")
        assert np.isnan(table.loc["broken", "value"]) and np.isfinite(
            table.loc["min_n_used", "value"]
        )
    finally:
        unregister_metric("broken")


# ----------------------------------------------------------------------------- compare, light
@pytest.mark.integration
def test_compare_masters(explorer, wd):
    panel = explorer.compare_panel
    ids = [v for _, v in panel.a.options]
    assert len(ids) >= 2 and panel.a.value != panel.b.value
    stats = panel.tables["difference A − B"].iloc[0]
    a, b = wd.load_master(panel.a.value), wd.load_master(panel.b.value)
    assert stats["mean_adu"] == pytest.approx(
        float(np.mean(a.data.astype(float) - b.data)), rel=1e-6
    )
    assert list(panel.tables["masters"]["master_id"]) == [panel.a.value, panel.b.value]
    assert set(panel.views) == {"difference", "spectra"}
    spectra = panel.result.difference.spectra
    assert set(spectra["axis"]) == {"column", "row"} and len(set(spectra["label"])) == 3

    panel.b.value = panel.a.value  # a master against itself: no difference at all
    assert panel.result.stats["robust_std_adu"] == 0 and panel.result.stats["z_width"] == 0


@pytest.mark.integration
def test_light_panel_calibrated_and_quarantined(explorer, wd):
    panel = explorer.light_panel
    lights = wd.lights(night=explorer.night.value, session=explorer.session.value)
    done = lights.dropna(subset=["noise_ratio"]).iloc[0]
    panel.light.value = done["path"]
    assert panel.error is None
    # the file's uncertainty is rebuilt from header values (``[output] light_uncertainty =
    # "scalar"``): the dark's per-pixel variance at its typical value, a stated approximation
    assert panel.result.residuals.noise_ratio == pytest.approx(done["noise_ratio"], abs=1e-2)
    assert {"residuals", "calibrated"} <= set(panel.views)
    cands = panel.tables["match candidates (lowest score wins)"]
    recipe = {done["master_id"], done.get("secondary_master_id")} - {None}
    recipe = {m for m in recipe if isinstance(m, str)}
    assert set(cands.loc[cands["chosen"], "master_id"]) == recipe
    assert (cands.loc[~cands["chosen"], "lost_because"] != "").all()

    fr = wd.frame_report
    quarantined = fr[(fr["status"] == "quarantined") & fr["config_signature"].notna()].iloc[0]
    explorer.night.value = quarantined["night"]
    explorer.session.value = quarantined["session"]
    explorer.config.value = quarantined["config_signature"]
    panel.light.value = quarantined["path"]
    assert panel.result.residuals is None and "residuals" not in panel.views
    reasons = panel.tables["reasons"]
    assert len(reasons) and (reasons["description"].str.len() > 0).any()
    assert panel.status.value.startswith("quarantined")


@pytest.mark.integration
def test_inspect_unknown_light_is_a_clear_error(wd):
    from darkflow.exceptions import DarkflowError
    from darkflow_widgets.data import inspect_light

    with pytest.raises(DarkflowError, match="is not a light"):
        inspect_light(wd, "/nowhere/light.fits")


# ----------------------------------------------------------------------------- static page
@pytest.mark.integration
def test_to_html_is_self_contained(explorer, tmp_path):
    explorer.rerun_panel.run()
    page = explorer.to_html(tmp_path / "explorer.html")
    text = page.read_text()
    assert "darkflow explorer" in text and explorer.config.value in text
    # BokehJS is inline: no script or stylesheet is loaded from anywhere (the browser test
    # below checks that the page makes no request at all)
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=", text)
    assert "BEGIN bokeh.min.js" in text
    assert "acceptance metrics: original vs re-run" in text
    assert explorer.session.value in text


@pytest.mark.integration
@pytest.mark.browser
def test_explorer_page_draws_offline(explorer, tmp_path):
    from helpers.browser import check_page

    explorer.rerun_panel.max_iters.value = 0
    explorer.rerun_panel.run()
    page = explorer.to_html(tmp_path / "explorer.html")
    check = check_page(page, screenshot=tmp_path / "explorer.png", width=1300, height=2000)
    assert check.requests == ()
    n_views = sum(len(p.views) for p in explorer.panels)
    assert check.canvases >= n_views >= 8, check
    assert check.screenshot is not None and check.screenshot.stat().st_size > 20_000


def test_tables_render_html():
    from darkflow_widgets.explorer import table_html

    html = table_html(pd.DataFrame({"a": [1.234567, float("nan")], "b": ["<x>", "y"]}), title="t")
    assert "1.235" in html and "&lt;x&gt;" in html and "<caption>t</caption>" in html


@pytest.mark.integration
def test_every_session_and_configuration_opens(explorer, wd):
    for night, session in wd.sessions():
        explorer.night.value = night
        explorer.session.value = session
        for config in explorer.config.options:
            explorer.config.value = config
            for panel in explorer.panels:
                assert panel.error is None, (session, config, type(panel).__name__, panel.error)
            assert explorer.light_panel.result is not None
