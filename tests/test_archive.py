"""An archive of nights: every verdict cached, nothing read twice, nightly by the frames' dates."""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import benchmark_module

from darkflow.config import Config
from darkflow.pipeline import run_night
from darkflow.registry import Registry
from darkflow.report.nightly import night_files, night_fingerprint, run_nightly


def _archive(root: Path, nights, *, seed: int = 2026) -> Path:
    bench = benchmark_module("bench_archive")
    return bench.simulate_archive(root, nights, shape=(40, 48), seed=seed, frames=5)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return _archive(tmp_path_factory.mktemp("archive") / "data", range(3))


@pytest.fixture(scope="module")
def calibrated(archive, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("w") / "w"
    return workdir, run_night(archive, workdir=workdir)


def _counting(monkeypatch, target: str) -> list[str]:
    """Replace ``module.name`` by a wrapper that records its first argument."""
    import importlib

    module_name, name = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    calls: list[str] = []

    def wrapper(*args, **kwargs):
        calls.append(str(args[0]) if args else "")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _masters(workdir: Path, night: str) -> list[tuple[str, ...]]:
    with open(workdir / "nights" / night / "masters.csv", newline="") as fh:
        return sorted(
            (
                r["master_id"],
                r["status"],
                r["confidence"],
                r["reasons"],
                r["previous_master_id"],
                r["bias_master_id"],
            )
            for r in csv.DictReader(fh)
            if r["night"] == night  # its own masters
        )


def _fits_opened(monkeypatch, root: Path) -> list[str]:
    """Record every opening of a file under ``root`` (``open`` and ``os.open``)."""
    import builtins

    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open
    prefix = str(root)

    def spy_open(file, *args, **kwargs):
        if isinstance(file, str | os.PathLike) and str(file).startswith(prefix):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        if str(path).startswith(prefix):
            opened.append(str(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return opened


@pytest.mark.integration
def test_rerun_recomputes_and_reads_nothing(calibrated, archive, monkeypatch):
    workdir, first = calibrated
    assert first.masters_built == 6 and first.lights_computed == 15

    hashed = _counting(monkeypatch, "darkflow.registry.file_hash")
    headers = _counting(monkeypatch, "darkflow.ingest.catalog.read_header_info")
    again = run_night(archive, workdir=workdir, force=True)  # through the whole pipeline
    assert (again.masters_built, again.masters_judged, again.lights_computed) == (0, 0, 0)
    assert again.masters_reused == 6 and again.lights_reused == 15
    assert "0 built, 6 reused" in again.summary() and "(0 computed, 15 reused)" in again.summary()
    assert hashed == []  # every input hash came from the stat cache: no pixel byte read
    assert len(headers) == 45  # the scan reads headers only

    with Registry(workdir) as reg:
        jobs = reg.jobs(again.run_id)
    assert jobs and all(j["cache_hit"] for j in jobs)

    headers.clear()
    opened = _fits_opened(monkeypatch, archive)
    memo = run_night(archive, workdir=workdir)  # nothing changed: not even a header is read
    assert memo.unchanged_since == again.run_id
    assert memo.lights == again.lights and memo.lights_reused == 15
    assert "unchanged since run" in memo.summary()
    assert hashed == [] and headers == [] and opened == []
    from darkflow.report.status import format_status

    assert f"nothing changed since run {again.run_id}" in format_status(workdir)


@pytest.mark.integration
def test_a_touched_input_is_hashed_again_and_nothing_recomputed(calibrated, archive, monkeypatch):
    workdir, _ = calibrated
    light = sorted(archive.rglob("LIGHT/*.fits"))[0]
    st = light.stat()
    os.utime(light, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    hashed = _counting(monkeypatch, "darkflow.registry.file_hash")
    result = run_night(archive, workdir=workdir)
    assert result.unchanged_since is None  # its mtime changed: the pipeline runs
    assert hashed == [str(light)]  # the one file whose identity changed, and only it
    assert result.lights_computed == 0 and result.masters_built == 0  # same bytes, same keys
    assert run_night(archive, workdir=workdir).unchanged_since == result.run_id


@pytest.mark.integration
def test_a_verify_change_judges_masters_again_and_says_so(calibrated, archive):
    workdir, _ = calibrated
    stricter = Config().with_overrides(verify={"max_fpn_ratio": 1.9})
    result = run_night(archive, workdir=workdir, config=stricter)
    assert (result.masters_built, result.masters_judged, result.masters_reused) == (0, 6, 0)
    assert "0 built, 6 judged again, 0 reused" in result.summary()
    again = run_night(archive, workdir=workdir, config=stricter, force=True)
    assert (again.masters_built, again.masters_judged, again.masters_reused) == (0, 0, 6)
    run_night(archive, workdir=workdir)  # back to the defaults: the module's other tests


@pytest.mark.integration
def test_a_file_deleted_from_the_work_directory_is_not_trusted(calibrated, archive):
    workdir, _ = calibrated
    output = sorted((workdir / "calibrated").rglob("*.fits"))[0]
    output.unlink()
    result = run_night(archive, workdir=workdir)
    assert result.unchanged_since is None and result.lights_computed == 1
    assert output.exists()


@pytest.mark.integration
def test_low_confidence_verdicts_are_cached(tmp_path):
    """Another camera the next night: its masters are judged against the first night's
    (low confidence) and that verdict is reused, not judged again on every rerun."""
    root = _archive(tmp_path / "data", [0], seed=11)
    _archive(root, [1], seed=12)
    workdir = tmp_path / "w"
    first = run_night(root, workdir=workdir)
    with Registry(workdir) as reg:
        statuses = {r.status for r in reg.artifacts(kind="master_bias")}
        statuses |= {r.status for r in reg.artifacts(kind="master_dark")}
    assert "low_confidence" in statuses, statuses
    again = run_night(root, workdir=workdir, force=True)
    assert (again.masters_built, again.masters_judged) == (0, 0)
    assert again.masters_reused == first.masters_built
    assert again.lights == first.lights


@pytest.mark.integration
def test_masters_judged_at_once_as_night_by_night(archive, calibrated, tmp_path):
    """Waves: one run over three nights judges each master as three runs in order do."""
    at_once, _ = calibrated
    one_by_one = tmp_path / "w"
    for night in sorted(p for p in archive.iterdir() if p.is_dir()):
        run_night(night, workdir=one_by_one)
    for night in ("2026-01-01", "2026-01-02", "2026-01-03"):
        assert _masters(at_once, night) == _masters(one_by_one, night)


# ----------------------------------------------------------------------------- nightly
@pytest.fixture
def no_reports(monkeypatch):
    """Report notebooks are tested elsewhere: here, which nights get reports built."""
    built: list[str] = []

    def fake(night, *, workdir, reports, workers):
        html = reports / night / "index.html"
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text("report")
        built.append(night)
        return {
            "headline": "",
            "counts": {},
            "n_sessions": 1,
            "index": html,
            "reports_ok": True,
            "failed": [],
        }

    monkeypatch.setattr("darkflow.report.nightly._night_reports", fake)
    return built


@pytest.mark.integration
def test_nightly_calibrates_new_or_changed_nights_only(archive, tmp_path, no_reports):
    root = tmp_path / "root"
    shutil.copytree(archive, root, ignore=shutil.ignore_patterns("2026-01-03"))
    workdir, reports = tmp_path / "w", tmp_path / "r"

    first = run_nightly(root, workdir=workdir, reports=reports)
    assert first.why == {"2026-01-01": "new", "2026-01-02": "new"} and first.ok
    assert no_reports == ["2026-01-01", "2026-01-02"]
    assert "2026-01-02" in (reports / "index.html").read_text()

    no_reports.clear()
    again = run_nightly(root, workdir=workdir, reports=reports)
    assert again.runs == {} and again.unchanged == ["2026-01-01", "2026-01-02"]
    assert no_reports == []  # results unchanged: reports left as they are

    shutil.copytree(archive / "2026-01-03", root / "2026-01-03")
    added = run_nightly(root, workdir=workdir, reports=reports)
    assert added.why == {"2026-01-03": "new"} and no_reports == ["2026-01-03"]
    assert "2026-01-03" in (reports / "index.html").read_text()

    light = sorted((root / "2026-01-03").rglob("LIGHT/*.fits"))[0]
    st = light.stat()
    os.utime(light, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    no_reports.clear()
    touched = run_nightly(root, workdir=workdir, reports=reports)
    assert touched.why == {"2026-01-03": "inputs changed"}
    assert touched.runs["2026-01-03"].lights_computed == 0
    assert no_reports == []  # recalibrated from its cache: the same results, the same reports

    forced = run_nightly(root, workdir=workdir, reports=reports, force=True, nights=["2026-01-02"])
    assert forced.why == {"2026-01-02": "forced"} and forced.unchanged == []
    with pytest.raises(Exception, match="1999-01-01"):
        run_nightly(root, workdir=workdir, reports=reports, nights=["1999-01-01"])

    changed = Config().with_overrides(subtract={"pedestal_adu": 1.0})
    other = run_nightly(root, workdir=workdir, reports=reports, config=changed)
    assert set(other.why.values()) == {"configuration or algorithm changed"}
    assert len(other.why) == 3


@pytest.mark.integration
def test_nightly_nights_come_from_dates_not_folders(archive, calibrated, tmp_path, no_reports):
    """A camera folder, a night folder or the archive: the same nights, the same results."""
    camera = next((archive / "2026-01-02").iterdir())
    workdir = tmp_path / "w"
    result = run_nightly(camera, workdir=workdir, reports=tmp_path / "r")
    assert list(result.runs) == ["2026-01-02"]
    assert result.runs["2026-01-02"].lights["quarantined"] < 5  # not every light quarantined
    with Registry(workdir) as reg:
        groups, _ = night_files(archive, workdir=workdir, config=Config(), registry=reg)
    assert sorted(groups) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert all(len(files) == 15 for files in groups.values())
    whole = run_nightly(archive, workdir=workdir, reports=tmp_path / "r")
    # night 1 came after night 2: night 2's masters are judged again against night 1's
    assert whole.why == {
        "2026-01-01": "new",
        "2026-01-02": "an earlier night's masters changed",
        "2026-01-03": "new",
    }
    for night in sorted(groups):  # as if the archive had been calibrated at once
        assert _masters(workdir, night) == _masters(calibrated[0], night)


def test_night_files_read_no_header_twice(archive, tmp_path, monkeypatch):
    with Registry(tmp_path / "w") as reg:
        first, _ = night_files(archive, workdir=tmp_path / "w", config=Config(), registry=reg)
        headers = _counting(monkeypatch, "darkflow.ingest.catalog.read_header_info")
        again, _ = night_files(archive, workdir=tmp_path / "w", config=Config(), registry=reg)
    assert again == first and headers == []


@pytest.mark.integration
def test_night_fingerprint_ignores_how_rows_were_obtained(calibrated, archive, tmp_path):
    workdir, _ = calibrated
    before = night_fingerprint(workdir, "2026-01-02")
    assert before is not None and night_fingerprint(workdir, "1999-01-01") is None
    copy = tmp_path / "w"
    shutil.copytree(workdir / "nights", copy / "nights")
    report = copy / "nights" / "2026-01-02" / "frame_report.csv"
    text = report.read_text()
    report.write_text(text.replace(",False,", ",True,"))  # the `cached` column only
    assert night_fingerprint(copy, "2026-01-02") == before
    report.write_text(text.replace("calibrated", "quarantined", 1))
    assert night_fingerprint(copy, "2026-01-02") != before


# ----------------------------------------------------------------------------- registry
_OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE artifacts (key TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, path TEXT,
    content_hash TEXT, config_signature TEXT, night TEXT, session TEXT, status TEXT NOT NULL,
    confidence REAL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, run_id TEXT,
    provenance TEXT NOT NULL, record TEXT);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, ended_at TEXT,
    pid INTEGER, inputs TEXT, config TEXT, outcome TEXT, summary TEXT);
"""


def test_an_older_registry_gets_its_indexes(tmp_path):
    db = sqlite3.connect(tmp_path / "registry.sqlite")
    db.executescript(_OLD_SCHEMA)
    db.close()
    with Registry(tmp_path) as reg:
        queries = {
            "SELECT * FROM artifacts WHERE kind=? AND config_signature=? AND status IN (?)": 3,
            "SELECT * FROM artifacts WHERE id=? ORDER BY updated_at DESC LIMIT 1": 1,
            "DELETE FROM artifacts WHERE path=? AND key<>?": 2,
            "SELECT * FROM artifacts WHERE path=? ORDER BY updated_at DESC LIMIT 1": 1,
            "SELECT * FROM runs WHERE outcome<>'running' ORDER BY started_at DESC LIMIT 1": 0,
            "SELECT run_id FROM runs WHERE outcome='running'": 0,
            "SELECT * FROM jobs WHERE run_id=?": 1,
            "SELECT hash FROM file_hashes WHERE path IN (?)": 1,
            "SELECT night FROM file_nights WHERE path IN (?)": 1,
        }
        db = reg._connect()
        for sql, n in queries.items():
            plan = " ".join(r[-1] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", ("x",) * n))
            assert "USING" in plan, (sql, plan)  # an index, not a scan of the table
        start = reg.generation()
        path = tmp_path / "a.fits"
        path.write_bytes(b"x")
        reg.put_artifact(
            key="k", id="k", kind="master_dark", status="verified", provenance={}, path=path
        )
        assert reg.generation() > start


def test_events_dumps_as_to_jsonable():
    import datetime as dt
    import json
    import math

    import numpy as np

    from darkflow.model import LightStatus
    from darkflow.registry.events import dumps, to_jsonable

    values = [
        {"a": 1, "b": [1.5, "x", None, True], "c": (1, 2), "s": LightStatus.CALIBRATED},
        {
            "t": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "p": Path("/x/y"),
            "n": np.float32(2.5),
            "i": np.int64(3),
            "k": np.bool_(True),
            5: "int key",
        },
        {"nan": math.nan, "inf": [np.float64("inf")], "nested": {"x": np.float32("nan")}},
        {LightStatus.DEGRADED: 1, "set": {3}},
    ]
    for value in values:
        for sort_keys in (False, True):
            expected = json.dumps(to_jsonable(value), sort_keys=sort_keys, separators=(",", ":"))
            assert dumps(value, sort_keys=sort_keys) == expected
