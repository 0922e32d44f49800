"""The work directory: stable output names, nights that accumulate, relocation, its place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from astropy.io import fits
from helpers.integrity import NIGHT, camera_night, new_light, outputs

from darkflow.pipeline import run_night
from darkflow.report.quarantine import quarantine_queue

pytestmark = pytest.mark.integration  # every test runs whole nights

CAM_A, CAM_B = "sgp_asi294mc", "maxim_stf8300"


# ----------------------------------------------------------------------------- output names
def test_same_name_in_another_folder_never_overwrites_an_output(tiny_night, tmp_path):
    night = camera_night(tiny_night, tmp_path / "night", CAM_A)
    lights = night / NIGHT / CAM_A / "NGC 7000"
    w = tmp_path / "w"
    run_night(night, workdir=w)
    before = pd.read_csv(w / "frame_report.csv").set_index("path")["output_path"].dropna()
    kept = {p: (w / out).read_bytes() for p, out in before.items()}
    # a different light with the same file name, in a folder of the session that sorts first
    other = new_light(
        lights / "NGC 7000_30sec_1x1_frame1.fit",
        "NGC 7000_30sec_1x1_frame1.fit",
        folder=night / NIGHT / CAM_A / "A first",
    )
    run_night(night, workdir=w)
    after = pd.read_csv(w / "frame_report.csv").set_index("path")["output_path"].dropna()
    assert str(other) in after.index
    assert after.is_unique
    for path, out in before.items():
        assert after[path] == out  # adding a file renames nothing
        assert (w / out).read_bytes() == kept[path]  # and overwrites nothing


def test_output_names_do_not_depend_on_what_else_is_in_the_run(tiny_night, tmp_path):
    night = camera_night(tiny_night, tmp_path / "night", CAM_A, CAM_B)
    whole, part = tmp_path / "whole", tmp_path / "part"
    run_night(night, workdir=whole)
    run_night(night / NIGHT / CAM_A, workdir=part)
    a = pd.read_csv(whole / "frame_report.csv").set_index("path")["output_path"].dropna()
    b = pd.read_csv(part / "frame_report.csv").set_index("path")["output_path"].dropna()
    assert len(b) > 0
    assert (a.loc[b.index] == b).all()


# ----------------------------------------------------------------------------- nights accumulate
def _night_files(workdir: Path) -> dict[str, object]:
    night = workdir / "nights" / NIGHT
    out: dict[str, object] = {}
    for name in ("frame_report.csv", "masters.csv"):
        out[name] = pd.read_csv(night / name)
    out["decisions"] = sorted(
        (json.loads(line) for line in (night / "decisions.jsonl").read_text().splitlines()),
        key=lambda d: d["light_path"],
    )
    out["thermal"] = json.loads((night / "qa" / "thermal.json").read_text())
    out["hists"] = json.loads((night / "qa" / "residual_hists.json").read_text())
    return out


def test_a_night_run_camera_by_camera_equals_the_night_run_at_once(tiny_night, tmp_path):
    night = camera_night(tiny_night, tmp_path / "night", CAM_A, CAM_B)
    parts, once = tmp_path / "parts", tmp_path / "once"
    run_night(night / NIGHT / CAM_A, workdir=parts)
    run_night(night / NIGHT / CAM_B, workdir=parts)
    run_night(night, workdir=once)
    a, b = _night_files(parts), _night_files(once)
    assert set(a["frame_report.csv"]["path"]) == set(b["frame_report.csv"]["path"])
    for name in ("frame_report.csv", "masters.csv"):
        pd.testing.assert_frame_equal(a[name], b[name])
    for name in ("decisions", "thermal", "hists"):
        assert a[name] == b[name], name
    qa, qb = quarantine_queue(parts), quarantine_queue(once)
    pd.testing.assert_frame_equal(qa.lights, qb.lights)
    pd.testing.assert_frame_equal(qa.masters.drop(columns="path"), qb.masters.drop(columns="path"))
    assert [Path(p).relative_to(parts) for p in qa.masters["path"]] == [
        Path(p).relative_to(once) for p in qb.masters["path"]
    ]


def test_rerunning_a_part_replaces_its_rows_only(tiny_night, tmp_path):
    night = camera_night(tiny_night, tmp_path / "night", CAM_A, CAM_B)
    w = tmp_path / "w"
    run_night(night / NIGHT / CAM_A, workdir=w)
    run_night(night / NIGHT / CAM_B, workdir=w)
    n_before = len(pd.read_csv(w / "nights" / NIGHT / "frame_report.csv"))
    gone = sorted((night / NIGHT / CAM_A / "NGC 7000").glob("*.fit"))[-1]
    gone.unlink()  # a light deleted from the input: its row goes when its folder is rerun
    run_night(night / NIGHT / CAM_A, workdir=w)
    report = pd.read_csv(w / "nights" / NIGHT / "frame_report.csv")
    assert len(report) == n_before - 1 and str(gone) not in set(report["path"])
    assert report["path"].str.contains(CAM_B).sum() == 3


# ----------------------------------------------------------------------------- where the workdir is
def test_work_directory_inside_the_input_tree_is_not_scanned(tiny_night, tmp_path):
    night = camera_night(tiny_night, tmp_path / "night", CAM_A)
    w = night / NIGHT / CAM_A / "work"
    first = run_night(night, workdir=w)
    again = run_night(night, workdir=w)
    assert again.n_files == first.n_files
    catalog = pd.read_csv(w / "catalog.csv")
    assert not catalog["path"].str.startswith(str(w)).any()
    assert again.lights_computed == 0 and again.masters_built == 0


def test_work_directory_that_is_the_input_folder(tiny_night, tmp_path):
    """Outputs written beside the frames: the frames are scanned, the outputs are not."""
    night = camera_night(tiny_night, tmp_path / "night", CAM_A)
    w = night / NIGHT / CAM_A
    first = run_night(w, workdir=w)
    again = run_night(w, workdir=w)
    assert first.lights_computed > 0 and again.n_files == first.n_files
    assert again.lights_computed == 0 and again.masters_built == 0


@pytest.mark.parametrize("how", ["copy", "move"])
def test_copied_or_moved_work_directory_reuses_its_cache(tiny_night, tmp_path, how):
    night = camera_night(tiny_night, tmp_path / "night", CAM_A)
    w = tmp_path / "w"
    first = run_night(night, workdir=w)
    assert first.lights_computed > 0
    dest = tmp_path / "elsewhere" / "w2"
    dest.parent.mkdir()
    (shutil.copytree if how == "copy" else shutil.move)(w, dest)
    result = run_night(night, workdir=dest)
    assert result.masters_built == 0 and result.lights_computed == 0
    assert result.lights_reused == first.lights_computed
    # nothing inside points back at the original place
    needle = str(w).encode()
    for path in dest.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path
    report = pd.read_csv(dest / "frame_report.csv")
    assert all((dest / p).is_file() for p in report["output_path"].dropna())
    masters = pd.read_csv(dest / "masters.csv")
    assert all((dest / p).is_file() for p in masters["path"])
    if how == "copy":
        assert outputs(dest) == outputs(w)


def test_results_api_resolves_work_directory_paths(tiny_night, tmp_path):
    from darkflow.report.results import Workdir

    night = camera_night(tiny_night, tmp_path / "night", CAM_A)
    w = tmp_path / "w"
    run_night(night, workdir=w)
    wd = Workdir(w)
    outs = wd.lights()["output_path"].dropna()
    assert len(outs) and all(Path(p).is_absolute() and Path(p).is_file() for p in outs)
    master_id = wd.masters["master_id"].iloc[0]
    assert wd.master_path(master_id).is_file()
    assert wd.load_master(master_id).data.shape == (48, 64)


# ----------------------------------------------------------------------------- the run's log
def test_one_frame_from_1926_does_not_name_the_log(tiny_night, tmp_path):
    night = camera_night(tiny_night, tmp_path / "night", CAM_A)
    src = night / NIGHT / CAM_A / "NGC 7000" / "NGC 7000_30sec_1x1_frame1.fit"
    old = new_light(src, "NGC 7000_30sec_1x1_frame0.fit")
    with fits.open(old, mode="update") as hdul:
        hdul[0].header["DATE-OBS"] = "1926-11-22T20:00:00"
    w = tmp_path / "w"
    run_night(night, workdir=w)
    logs = sorted(p.name for p in (w / "logs").glob("*.jsonl"))
    assert logs == [f"{NIGHT}.jsonl"]


@pytest.mark.slow
def test_nightly_with_two_folders_of_one_night(tiny_night, tmp_path):
    """`darkflow nightly` over two session folders of the same date: one night, reported whole."""
    from darkflow.report.nightly import run_nightly
    from darkflow.report.results import Workdir

    root = tmp_path / "root"
    camera_night(tiny_night, tmp_path / "x", CAM_A, CAM_B)
    shutil.move(tmp_path / "x" / NIGHT / CAM_A, root / f"{NIGHT}-dusk" / CAM_A)
    shutil.move(tmp_path / "x" / NIGHT / CAM_B, root / f"{NIGHT}-late" / CAM_B)
    result = run_nightly(root, workdir=tmp_path / "w", reports=tmp_path / "reports", workers=1)
    assert result.ok, result.summary()
    lights = Workdir(tmp_path / "w").lights(night=NIGHT)
    assert lights["path"].str.contains(CAM_A).sum() == 3
    assert lights["path"].str.contains(CAM_B).sum() == 3
    queue = quarantine_queue(tmp_path / "w", night=NIGHT)
    assert {CAM_A, CAM_B} <= {p.split("/")[-3] for p in queue.lights["path"]}
