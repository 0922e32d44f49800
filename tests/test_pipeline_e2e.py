"""One tiny simulated night end to end: scan → masters → match → subtract → reports."""

import csv
import json
import os

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from conftest import snapshot

from darkflow.io.fits import read_calibrated
from darkflow.pipeline import FRAME_REPORT_COLUMNS, MASTERS_COLUMNS
from darkflow.simulate import load_truth
from darkflow.stats import mad_std

pytestmark = pytest.mark.integration  # a whole night, its CLI and its report

CONTRACT_STATUSES = {"calibrated", "degraded", "quarantined"}


def _read(workdir, name):
    with open(workdir / name, newline="") as fh:
        return list(csv.DictReader(fh))


def test_frame_report_contract(tiny_run):
    workdir, result, _ = tiny_run
    rows = _read(workdir, "frame_report.csv")
    header = list(rows[0].keys())
    assert header[: len(FRAME_REPORT_COLUMNS)] == FRAME_REPORT_COLUMNS
    for row in rows:
        assert row["status"] in CONTRACT_STATUSES
        assert 0.0 <= float(row["confidence"]) <= 1.0
        if row["status"] == "quarantined":
            assert row["reasons"], row
            assert not row["output_path"]
        else:
            assert row["master_id"] and row["output_path"] and row["scale_mode"]
    assert sum(result.lights.values()) == len(rows)


def test_masters_contract(tiny_run):
    workdir, _, _ = tiny_run
    rows = _read(workdir, "masters.csv")
    assert list(rows[0].keys())[: len(MASTERS_COLUMNS)] == MASTERS_COLUMNS
    for row in rows:
        assert not os.path.isabs(row["path"])  # relative: the work directory can move
        assert (workdir / row["path"]).is_file()
        assert int(row["n_frames"]) >= 1
        assert row["status"] in {"verified", "low_confidence", "superseded", "quarantined"}


def test_every_light_has_exactly_one_row(tiny_night, tiny_run):
    workdir, _, _ = tiny_run
    truth = load_truth(tiny_night)
    lights = {
        str(tiny_night / p) for p in truth.frames.loc[truth.frames["kind"] == "light", "path"]
    }
    reported = [r["path"] for r in _read(workdir, "frame_report.csv")]
    assert len(reported) == len(set(reported))
    # every true light is reported (a light whose IMAGETYP is missing is reported too)
    assert lights <= set(reported)


def test_broken_frames_end_with_reasons_and_nothing_crashes(tiny_night, tiny_run):
    workdir, _, _ = tiny_run
    truth = load_truth(tiny_night)
    broken = truth.frames[truth.frames["broken"].fillna("") != ""]
    catalog = {r["path"]: r for r in _read(workdir, "catalog.csv")}
    report = {r["path"]: r for r in _read(workdir, "frame_report.csv")}
    assert len(broken) >= 5
    for _, frame in broken.iterrows():
        path = str(tiny_night / frame["path"])
        row = report.get(path) if frame["kind"] == "light" else catalog.get(path)
        assert row is not None, f"{frame['broken']}: {path} has no row"
        if frame["broken"] in ("truncated",):
            assert row["status"] in ("rejected", "quarantined") and "truncated" in row["reasons"]
        if frame["broken"] == "nan_data":
            assert "nonfinite_pixels" in row["reasons"] and row["status"] == "degraded"
        if frame["broken"] == "missing_frame_type":
            assert row["status"] in ("isolated", "quarantined") and row["reasons"]


def test_inputs_are_untouched(tiny_night, tiny_run):
    _, _, before = tiny_run
    assert snapshot(tiny_night) == before


def test_calibrated_frames_carry_provenance_and_uncertainty(tiny_run):
    workdir, _, _ = tiny_run
    rows = [r for r in _read(workdir, "frame_report.csv") if r["output_path"]]
    assert rows
    with fits.open(workdir / rows[0]["output_path"]) as hdul:
        assert hdul[0].data.dtype == np.dtype(">f4")
        assert hdul[0].header["DFMASTER"] == rows[0]["master_id"]
        assert "BZERO" not in hdul[0].header
        assert any("darkflow" in str(h) for h in hdul[0].header["HISTORY"])
    # the default [output] light_uncertainty = "scalar": header cards, rebuilt when read
    planes = read_calibrated(workdir / rows[0]["output_path"])
    assert planes.uncertainty_mode == "scalar"
    assert planes.uncertainty.shape == planes.data.shape
    assert np.all(planes.uncertainty[np.isfinite(planes.uncertainty)] > 0)


def test_calibration_is_accurate_against_truth(tiny_night, tiny_run):
    """Calibrated light minus the true sky is noise around zero for a clean cooled camera."""
    workdir, _, _ = tiny_run
    truth = load_truth(tiny_night)
    # every delivered light (calibrated or degraded: the tiny night's masters have 2-3 darks)
    rows = [
        r for r in _read(workdir, "frame_report.csv") if r["output_path"] and "asi294" in r["path"]
    ]
    assert rows
    for row in rows:
        rel = row["path"].split(str(tiny_night) + "/", 1)[1]
        frame = truth.frame(rel)
        gain = truth.sensor(frame["camera"]).egain_e_per_adu
        sky_adu = truth.sky_e(rel) / gain
        planes = read_calibrated(workdir / row["output_path"])
        cal, unc = planes.data.astype(float), planes.uncertainty.astype(float)
        resid = (cal - sky_adu) / unc
        core = np.isfinite(resid) & (sky_adu < np.percentile(sky_adu, 90))  # no star cores
        assert abs(np.median(resid[core])) < 0.1
        assert mad_std(resid[core]) == pytest.approx(1.0, abs=0.1)


def test_decisions_log_every_light_that_was_matched(tiny_run):
    workdir, _, _ = tiny_run
    decisions = [
        json.loads(line) for line in (workdir / "decisions.jsonl").read_text().splitlines()
    ]
    matched = [r for r in _read(workdir, "frame_report.csv") if r["master_id"]]
    by_path = {d["light_path"]: d for d in decisions}
    for row in matched:
        d = by_path[row["path"]]
        assert d["master_id"] == row["master_id"]
        assert any(
            c["master_id"] == row["master_id"] and not c["lost_because"] for c in d["candidates"]
        )


def test_qa_files_for_the_report(tiny_run):
    workdir, _, _ = tiny_run
    thermal = json.loads((workdir / "qa" / "thermal.json").read_text())
    assert thermal and all("fit" in t and t["points"] for t in thermal)
    hists = json.loads((workdir / "qa" / "residual_hists.json").read_text())
    assert len(hists["edges"]) == len(next(iter(hists["lights"].values()))) + 1


def test_rerun_reuses_masters_and_gives_same_bytes(tiny_night, tiny_run, tmp_path):
    from darkflow.pipeline import run_night

    workdir, first, _ = tiny_run
    again = run_night(tiny_night, workdir=workdir)
    assert (
        again.masters_built == 0
        and again.masters_reused == first.masters_built + first.masters_reused
    )
    fresh = run_night(tiny_night, workdir=tmp_path / "w2")
    a = pd.read_csv(workdir / "frame_report.csv")
    b = pd.read_csv(tmp_path / "w2" / "frame_report.csv")
    assert list(a["status"]) == list(b["status"])
    for pa, pb in zip(a["output_path"].dropna(), b["output_path"].dropna(), strict=True):
        assert pa == pb  # outputs are named after their input alone
        with fits.open(workdir / pa) as ha, fits.open(tmp_path / "w2" / pb) as hb:
            assert ha[0].data.tobytes() == hb[0].data.tobytes()
    assert fresh.masters_built == first.masters_built


def test_cli_run_and_summary(tiny_night, tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "darkflow.cli",
            "run",
            str(tiny_night),
            "--workdir",
            str(tmp_path / "w"),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "calibrated" in out.stdout and "quarantined" in out.stdout and "masters:" in out.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "darkflow.cli",
            "run",
            str(tmp_path / "missing"),
            "--workdir",
            str(tmp_path / "w3"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "does not exist" in bad.stderr


@pytest.mark.browser
def test_report_notebook_and_offline_html(tiny_run, tmp_path):
    """The session notebook runs (no kernel), and its HTML draws its plots with no network."""
    from helpers.browser import check_page

    from darkflow.report import build_reports

    workdir, _, _ = tiny_run
    reports = build_reports(workdir, output=tmp_path / "reports", sessions=["zwo-asi294mc-pro"])
    assert [s["ok"] for s in reports.sessions] == [True]
    html = reports.paths[0]
    text = html.read_text()
    assert "cdn." not in text.split("<body", 1)[0]  # no CDN script or stylesheet in <head>
    assert "Traceback" not in text and "Error" not in text.split("<body", 1)[1][:2000]
    check = check_page(html, screenshot=tmp_path / "report.png")
    assert check.requests == ()
    assert check.canvases >= 4, check  # drift, residuals, hot-pixel map and histogram at least
    assert check.screenshot is not None and check.screenshot.stat().st_size > 10_000
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "2026-11-23" in index  # the top index lists the night of the report
