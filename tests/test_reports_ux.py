"""What a reader of the reports meets: colours, labels, axes and tables that do not mislead.

Unit checks of the dashboard builders (no browser), a browser check that the probe of
:func:`helpers.browser.check_page` finds cut text and overflowing tables, and the explorer's
first render.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from darkflow import viz


@pytest.fixture(autouse=True, scope="module")
def _bokeh_backend():
    pytest.importorskip("holoviews.plotting.bokeh")  # options need a loaded backend


def test_session_colour_follows_the_share_calibrated():
    assert viz.session_status({"lights": 20, "calibrated": 19, "quarantined": 1}) == "calibrated"
    assert viz.session_status({"lights": 12, "calibrated": 9, "degraded": 2}) == "degraded"
    assert viz.session_status({"lights": 10, "calibrated": 2, "quarantined": 8}) == "quarantined"
    assert viz.session_status({"lights": 0}) == "quarantined"


def test_session_label_is_readable():
    label = viz.session_label("zwo-asi533mc-pro-112e900511080900", "ZWO ASI533MC Pro")
    assert label == "ZWO ASI533MC Pro, camera 112e9005"
    assert viz.session_label("zwo-asi2600mm-pro-2", "ZWO ASI2600MM Pro") == (
        "ZWO ASI2600MM Pro, part 2"
    )
    assert viz.session_label("canon-dslr-eos-6d", "Canon DSLR EOS 6D") == "Canon DSLR EOS 6D"
    assert viz.session_label("odd", None) == "odd"


def test_text_table_shows_whole_text_no_index_no_nan():
    long = "Take 20 darks with Canon DSLR EOS 6D at 120 s, gain 1600, 2x2 binning"
    html = viz.text_table(pd.DataFrame({"temp_c": [np.nan], "text": [long]}), wrap=["text"])
    out = html.to_html()
    assert "2x2 binning" in out and "NaN" not in out and "nan" not in out
    assert "row_heading" not in out  # no raw index column
    assert "white-space: normal" in out


def test_causes_are_shaded_by_severity_never_green():
    lights = pd.DataFrame(
        {
            "path": ["a.fits", "b.fits", "c.fits"],
            "status": ["calibrated", "degraded", "quarantined"],
            "reasons": ["egain_estimated", "master_noise_inflation", "truncated"],
            "top_cause": ["noise_model", "too_few_darks", "file_problem"],
        }
    )
    styler = viz.night_causes_table(lights)
    html = styler.to_html()
    assert viz.STATUS_COLORS["calibrated"] not in html
    table = styler.data.set_index("cause")
    colours = styler._compute().ctx  # (row, col) -> [(prop, value)]
    by_cause = {
        table.index[r]: dict(props)["background-color"]
        for (r, c), props in colours.items()
        if c == 0
    }
    assert by_cause["file_problem"] == viz.SEVERITY_COLORS["error"]
    assert by_cause["too_few_darks"] == viz.SEVERITY_COLORS["warning"]
    assert by_cause["noise_model"] == viz.SEVERITY_COLORS["warning"]


def test_triage_group_counts_lights():
    lights = pd.DataFrame(
        {
            "path": [f"l{i}.fits" for i in range(6)],
            "status": ["degraded"] * 6,
            "reasons": ["light_banding"] * 6,
        }
    )
    html = viz.triage_html(lights)
    assert "<b>6 degraded</b>" in html
    assert "<td>6</td>" in html and "<td>1</td>" not in html


def test_persistence_histogram_draws_no_empty_bins():
    persistence = np.zeros((40, 40))
    persistence[0, :5] = 1.0
    persistence[1, :3] = 0.1
    _, hist, prep = __import__("darkflow.viz._masters", fromlist=["x"])._persistence_elements(
        persistence, "m", 400, 0.05
    )
    bars = hist.dframe()
    assert len(bars) == int(np.count_nonzero(prep["hist"][1])) == 2
    assert sorted(bars["pixels"]) == [3, 5]


def _drift_entry(n: int, *, setpoint: float = -15.0, level: float = -6.5):
    t0 = pd.Timestamp("2026-11-23T20:00:00Z")
    times = [t0 + pd.Timedelta(minutes=5 * i) for i in range(n)]
    fit = {
        "n": n,
        "t0_utc": t0.isoformat(),
        "tau_h": float("inf"),
        "t_inf_c": level,
        "t_start_c": level,
        "drift_c_per_h": 0.0,
        "rms_c": 0.01,
        "r2": None,
        "set_temp_c": setpoint,
        "setpoint_offset_c": level - setpoint,
        "reaches_setpoint": False,
        "ok": n >= 3,
        "model": "line",
    }
    points = [
        {"time": t.isoformat(), "temp_c": level, "path": f"l{i}"} for i, t in enumerate(times)
    ]
    return {"config_signature": "cam_b1x1", "fit": fit, "points": points}


def test_drift_axis_shows_a_missed_setpoint_and_one_light_gets_a_note():
    import holoviews as hv

    from darkflow.thermal import DriftFit

    entry = _drift_entry(6)
    DriftFit.from_dict(entry["fit"])  # the format the thermal module stores
    layout = viz.make_drift_dashboard([entry])
    top = layout.values()[0]
    lo, hi = top.opts.get().kwargs["ylim"]
    assert lo < -15.0 < hi and lo < -6.5 < hi
    single = viz.make_drift_dashboard([_drift_entry(1)])
    kinds = [type(p) for p in single.values()]
    assert hv.Div in kinds  # a note, not a residual panel with 1e-15 ticks
    lo, hi = single.values()[0].opts.get().kwargs["xlim"]
    assert hi - lo >= pd.Timedelta(minutes=30)


def test_short_note_instead_of_a_blank_plot():
    div = viz.message("No sensor temperatures recorded for this session (uncooled camera?).")
    assert div.opts.get().kwargs["height"] < 80


def test_padded_range_never_degenerate():
    lo, hi = viz.padded_range([5.0], min_span=0.2)
    assert lo < 5.0 < hi and hi - lo >= 0.2
    assert viz.padded_range([np.nan, None]) == (0.0, 1.0)


@pytest.mark.integration
def test_workdir_found_from_the_notebooks_folder(tiny_run, tmp_path, monkeypatch):
    import shutil

    from darkflow.report.results import Workdir, find_workdir

    project = tmp_path / "project"
    shutil.copytree(tiny_run[0], project / "demo" / "work")
    (project / "notebooks").mkdir()
    monkeypatch.chdir(project / "notebooks")
    assert find_workdir("demo/work") == project / "demo" / "work"
    assert Workdir("demo/work").path == project / "demo" / "work"
    assert find_workdir("nowhere/work") == type(find_workdir("x"))("nowhere/work")


# ----------------------------------------------------------------------------- browser probe
_BAD_PAGE = """<!DOCTYPE html><html><body>
<div style="overflow:hidden;width:300px"><table><tr><td style="white-space:nowrap">
a very long line of text that cannot fit in three hundred pixels at all, not even close,
and goes on and on well past the right edge of a six hundred pixel wide window</td>
</tr></table></div>
<span style="display:inline-block;width:80px;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap">a title much longer than eighty pixels</span>
<table><tbody><tr><th>0</th><td>NaN</td><td>Take 20 darks with a camera at 120 s,...</td></tr>
</tbody></table></body></html>"""


@pytest.mark.integration
@pytest.mark.browser
def test_layout_probe_finds_what_a_reader_cannot_see(tmp_path):
    from helpers.browser import check_page

    page = tmp_path / "bad.html"
    page.write_text(_BAD_PAGE, encoding="utf-8")
    problems = "\n".join(check_page(page, width=600, height=400).layout)
    assert "table overflows" in problems
    assert "text cut with an ellipsis" in problems
    assert "missing value shown as NaN" in problems
    assert "cell text cut" in problems
    assert "raw index column" in problems


# ----------------------------------------------------------------------------- explorer
@pytest.mark.integration
def test_explorer_first_render_is_consistent(tiny_run):
    from darkflow_widgets import Explorer
    from darkflow_widgets.data import configurations, lights_for, masters_for

    ex = Explorer(tiny_run[0])
    night, session = ex.night.value, ex.session.value
    assert session in ex.session.options
    configs = configurations(ex.wd, night, session)
    assert list(ex.config.options) == configs and ex.config.value == configs[0]
    masters = masters_for(ex.wd, ex.config.value)
    ids = [str(m) for m in masters["master_id"]]
    assert [v for _, v in ex.masters_panel.master.options] == ids
    if len(masters.query("kind == 'dark'")):
        assert ex.masters_panel.master.value in ids
        assert ex.rerun_panel.master.value in ids
    lights = lights_for(ex.wd, night, session, ex.config.value)
    assert [v for _, v in ex.light_panel.light.options] == [str(p) for p in lights["path"]]
    # pickers show a readable label, not a Python repr
    for label, _ in (*ex.masters_panel.master.options, *ex.light_panel.light.options):
        assert "<" not in label and "object at 0x" not in label and "MasterDark(" not in label
    # a configuration with no master empties the master tab instead of keeping the old views
    ex.masters_panel.set_masters(masters.iloc[0:0])
    assert ex.masters_panel.master.value is None and ex.masters_panel.views == {}
