"""The calibration DAG: invalidation rules, crash safety, concurrent runs, provenance, Dask."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from darkflow.config import Config
from darkflow.io.hashing import file_hash
from darkflow.pipeline import run_night
from darkflow.registry import Registry

pytestmark = pytest.mark.integration  # every test runs whole nights


@pytest.fixture
def night(tiny_night, tmp_path):
    """A private copy of the tiny night (tests add frames to it)."""
    dest = tmp_path / "night"
    shutil.copytree(tiny_night, dest)
    return dest


def _outputs(workdir: Path) -> dict[str, bytes]:
    """Bytes of every artifact a run produced, by path relative to the work directory."""
    out = {}
    for sub in ("artifacts", "calibrated"):
        for p in sorted((workdir / sub).rglob("*.fits")):
            out[str(p.relative_to(workdir))] = p.read_bytes()
    return out


def _add_dark(src: Path) -> Path:
    """A new dark in the set of ``src``: a copy with fresh noise (a new content hash)."""
    with fits.open(src) as hdul:
        data = hdul[0].data.astype(np.int32)
        header = hdul[0].header.copy()
    rng = np.random.default_rng(99)
    data = np.clip(data + rng.integers(-3, 4, data.shape), 0, 65535).astype(np.uint16)
    new = src.with_name(f"{src.stem}_extra{src.suffix}")
    fits.PrimaryHDU(data, header).writeto(new)
    return new


def test_nothing_changed_recomputes_nothing(night, tmp_path):
    w = tmp_path / "w"
    first = run_night(night, workdir=w)
    again = run_night(night, workdir=w, force=True)  # through the pipeline: every job cached
    assert first.masters_built > 0 and first.lights_computed > 0
    assert again.masters_built == 0 and again.lights_computed == 0
    assert again.lights_reused == first.lights_computed
    assert pd.read_csv(w / "frame_report.csv")["cached"].dropna().all()
    report = (w / "frame_report.csv").read_bytes()
    memo = run_night(night, workdir=w)  # nothing changed: the last run's results stand
    assert memo.unchanged_since == again.run_id and memo.lights_reused == again.lights_reused
    assert (w / "frame_report.csv").read_bytes() == report


def test_one_new_dark_recomputes_its_master_and_its_lights_only(night, tmp_path):
    w = tmp_path / "w"
    run_night(night, workdir=w)
    before = pd.read_csv(w / "frame_report.csv").set_index("path")
    used = before["master_id"].value_counts().index[0]  # the master most lights use
    with Registry(w) as reg:
        old = reg.get_by_id(used)
    _add_dark(Path(old.provenance["inputs"][0]["path"]))
    result = run_night(night, workdir=w)
    assert result.masters_built == 1
    after = pd.read_csv(w / "frame_report.csv").set_index("path")
    users = before.index[before["master_id"] == old.id]
    assert len(users) > 0
    assert result.lights_computed == len(users)
    assert set(after.index[after["cached"] == False]) == set(users)  # noqa: E712
    with Registry(w) as reg:
        assert reg.get(old.key).status == "superseded"


def test_master_parameter_recomputes_masters_and_lights(night, tmp_path):
    w = tmp_path / "w"
    first = run_night(night, workdir=w)
    changed = Config().with_overrides(combine={"sigma_high": 4.0})
    result = run_night(night, workdir=w, config=changed)
    assert result.masters_built == first.masters_built
    assert result.lights_computed == first.lights_computed


def test_memory_limit_changes_nothing(night, tmp_path):
    """The memory budget sets the band height, which does not change a byte: no rebuild."""
    w = tmp_path / "w"
    run_night(night, workdir=w)
    before = _outputs(w)
    changed = Config().with_overrides(combine={"memory_limit": "2MB"})
    result = run_night(night, workdir=w, config=changed)
    assert result.masters_built == 0 and result.lights_computed == 0
    fresh = tmp_path / "fresh"
    run_night(night, workdir=fresh, config=changed)  # built with tiny bands: same bytes
    assert _outputs(fresh) == before


def test_light_parameter_recomputes_only_lights(night, tmp_path):
    w = tmp_path / "w"
    first = run_night(night, workdir=w)
    changed = Config().with_overrides(subtract={"pedestal_adu": 100.0})
    result = run_night(night, workdir=w, config=changed)
    assert result.masters_built == 0
    assert result.lights_computed == first.lights_computed


def test_provenance_is_complete(night, tmp_path):
    w = tmp_path / "w"
    run_night(night, workdir=w)
    with Registry(w) as reg:
        masters = reg.artifacts(kind="master_dark") + reg.artifacts(kind="master_bias")
        lights = reg.artifacts(kind="calibrated_light")
    assert masters and lights
    for m in masters:
        p = m.provenance
        assert p["inputs"] and p["algorithm"] and p["darkflow"] and p["packages"]["numpy"]
        for item in p["inputs"]:
            assert item["content_hash"] == file_hash(item["path"])
            assert item["header_signature"] == m.config_signature
        expected = dict(Config().to_dict()["combine"])
        expected.pop("memory_limit")  # sets the band height only: not part of the output
        assert p["parameters"]["combine"] == expected
        # how its planes are written is part of a master; a light's uncertainty is not
        assert "uncertainty" in p["parameters"]["output"]
        assert "light_uncertainty" not in p["parameters"]["output"]
        assert "temp_mean_c" in p["environment"] and p["environment"]["time_start_utc"]
        assert (w / m.path).exists()
    for light in lights:
        p = light.provenance
        assert p["master"] and p["decision"]["master_id"] and p["input"]["path"]
        assert set(p["parameters"]) == {"matching", "scaling", "subtract", "verify", "output"}


def _run_cli(night, workdir, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "darkflow.cli",
            "run",
            str(night),
            "--workdir",
            str(workdir),
            "-q",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def larger_night(tmp_path_factory):
    """The tiny night at 600x800: long enough to be interrupted mid-way."""
    from darkflow.simulate import simulate_night

    out = tmp_path_factory.mktemp("larger") / "data"
    simulate_night(out, preset="tiny", seed=3, shape=(600, 800))
    return out


def test_killed_run_leaves_no_half_artifact_and_rerun_gives_same_bytes(larger_night, tmp_path):
    reference = tmp_path / "reference"
    run_night(larger_night, workdir=reference)
    crashed = tmp_path / "crashed"
    proc = _run_cli(larger_night, crashed)
    deadline = time.monotonic() + 120
    masters = crashed / "artifacts" / "masters"
    while time.monotonic() < deadline and proc.poll() is None:
        if masters.exists() and any(masters.rglob("*.fits")):
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()  # reap it and close its pipes
    # no registry row points at a missing file; only temporaries can be incomplete
    with Registry(crashed) as reg:
        assert reg.verify_files() == []
        assert reg.runs(1)[0]["outcome"] == "running"  # the killed run never finished
    for p in (crashed / "artifacts").rglob("*.fits"):
        with fits.open(p) as hdul:
            hdul.verify("exception")
    result = run_night(larger_night, workdir=crashed)
    assert result.masters_failed == 0
    assert not list(crashed.rglob("*.tmp*"))
    assert _outputs(crashed) == _outputs(reference)


def test_two_concurrent_runs_on_one_workdir(night, tmp_path):
    reference = tmp_path / "reference"
    run_night(night, workdir=reference)
    shared = tmp_path / "shared"
    procs = [_run_cli(night, shared) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    db = sqlite3.connect(shared / "registry.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    outcomes = [r[0] for r in db.execute("SELECT outcome FROM runs")]
    assert outcomes == ["ok", "ok"]
    built = db.execute("SELECT COUNT(*) FROM jobs WHERE outcome='built'").fetchone()[0]
    n_masters = db.execute("SELECT COUNT(*) FROM artifacts WHERE kind LIKE 'master%'").fetchone()[0]
    assert built == n_masters  # each master built once: the other run waited for it
    db.close()
    assert _outputs(shared) == _outputs(reference)
    with Registry(shared) as reg:
        assert reg.verify_files() == []


def test_dask_executor_gives_identical_bytes(night, tmp_path):
    pytest.importorskip("distributed")
    from darkflow.pipeline import DaskExecutor

    local = tmp_path / "local"
    run_night(night, workdir=local)
    executor = DaskExecutor(workers=2)
    try:
        result = run_night(night, workdir=tmp_path / "dask", executor=executor)
    finally:
        executor.close()
    assert result.executor == "dask" and result.masters_built > 0
    assert _outputs(tmp_path / "dask") == _outputs(local)
    a = pd.read_csv(local / "frame_report.csv").drop(columns=["output_path"])
    b = pd.read_csv(tmp_path / "dask" / "frame_report.csv").drop(columns=["output_path"])
    pd.testing.assert_frame_equal(a, b)


def test_verdicts_do_not_depend_on_where_the_files_are(tiny_night, tmp_path):
    """The hold-out split is ranked by content hash: a night copied elsewhere is judged the same."""
    config = Config().with_overrides(verify={"min_train_frames": 2})  # hold out on tiny sets
    runs = {}
    for name in ("first-disk", "an/other/place"):
        root = tmp_path / name / "night"
        shutil.copytree(tiny_night, root)
        run_night(root, workdir=tmp_path / name / "w", config=config)
        masters = pd.read_csv(tmp_path / name / "w" / "masters.csv").set_index("master_id")
        lights = pd.read_csv(tmp_path / name / "w" / "frame_report.csv")
        lights["rel"] = [os.path.relpath(p, root) for p in lights["path"]]
        runs[name] = masters, lights.set_index("rel").sort_index()
    (m1, l1), (m2, l2) = runs.values()
    held = m1["holdout_width_ratio"].notna()
    assert held.any(), "no master held frames out: the test would prove nothing"
    cols = ["status", "confidence", "reasons", "holdout_width_ratio", "gain_deviation"]
    pd.testing.assert_frame_equal(m1[cols].sort_index(), m2.loc[m1.index, cols].sort_index())
    pd.testing.assert_frame_equal(
        l1[["status", "confidence", "reasons", "master_id"]],
        l2[["status", "confidence", "reasons", "master_id"]],
    )


def test_relative_work_directory(tiny_night, tmp_path, monkeypatch):
    """`make demo` passes relative paths (demo/data, demo/work)."""
    shutil.copytree(tiny_night, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    result = run_night("data", workdir="work")
    assert result.masters_built > 0
    again = run_night("data", workdir="work")
    assert again.masters_built == 0 and again.lights_computed == 0
    report = pd.read_csv(tmp_path / "work" / "frame_report.csv")
    assert all((tmp_path / "work" / p).exists() for p in report["output_path"].dropna())
