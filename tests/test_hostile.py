"""Hostile inputs and failures: every bad input gets a row with a reason, nothing hangs, nothing
crashes, nothing is lost (the generator is tests/helpers/hostile.py)."""

from __future__ import annotations

import csv
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits
from conftest import snapshot
from helpers.hostile import make_hostile_night

from darkflow.ingest.catalog import scan
from darkflow.io.paths import printable

CLI = [sys.executable, "-m", "darkflow.cli"]


@pytest.fixture(scope="module")
def hostile(tiny_night, tmp_path_factory):
    return make_hostile_night(tiny_night, tmp_path_factory.mktemp("hostile") / "in")


@pytest.fixture(scope="module")
def hostile_run(hostile, tmp_path_factory):
    """The hostile night calibrated once; (workdir, result, error log records, inputs before)."""
    from darkflow.pipeline import run_night

    before = snapshot(hostile.root)
    workdir = tmp_path_factory.mktemp("hostile_work")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(logging.ERROR)
    root = logging.getLogger("darkflow")
    root.addHandler(handler)
    try:
        result = run_night(hostile.root, workdir=workdir)
    finally:
        root.removeHandler(handler)
    return workdir, result, records, before


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:  # strict UTF-8: must decode
        return list(csv.DictReader(fh))


@pytest.mark.integration
def test_the_generator_makes_at_least_sixty_bad_inputs(hostile):
    assert len(hostile.cases) >= 60
    assert len({c.name for c in hostile.cases}) == len(hostile.cases)


@pytest.mark.integration
def test_every_hostile_input_has_a_catalog_row_with_its_reason(hostile):
    rows = {r["path"]: r for r in scan(hostile.root).to_dict("records")}
    for case in hostile.cases:
        row = rows.get(str(case.path))
        if not case.row:
            assert row is None, case.name
            continue
        assert row is not None, f"{case.name}: no catalog row"
        assert "internal_error" not in row["reasons"], (case.name, row["details"])
        if case.status is not None:
            assert row["status"] in case.status, (case.name, row["status"], row["reasons"])
        if case.reason is not None:
            assert case.reason in row["reasons"].split(";"), (case.name, row["reasons"])
        if row["status"] != "eligible":
            assert row["reasons"], case.name


@pytest.mark.integration
def test_the_hostile_night_runs_to_the_end_without_a_traceback(hostile, hostile_run):
    workdir, result, records, before = hostile_run
    tracebacks = [r for r in records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert snapshot(hostile.root) == before  # inputs untouched
    report = {r["path"]: r for r in _csv(workdir / "frame_report.csv")}
    catalog = {r["path"]: r for r in _csv(workdir / "catalog.csv")}
    for case in hostile.cases:
        key = printable(str(case.path))  # a name that is not UTF-8 is written with \xNN
        if case.row:
            assert key in catalog, case.name
        if case.light is None:
            continue
        row = report.get(key)
        assert row is not None, f"{case.name}: no frame-report row"
        assert row["status"] in case.light, (case.name, row["status"], row["reasons"])
        if row["status"] == "quarantined":
            assert row["reasons"], case.name
        assert "calibration_failed" not in row["reasons"], (case.name, row["reasons"])
        if case.light_reason:
            assert case.light_reason in row["reasons"].split(";"), (case.name, row["reasons"])
        if row["output_path"]:
            with fits.open(workdir / row["output_path"]) as hdul:  # relative, printable name
                assert hdul[0].header["CALSTAT"] == "BD"
    assert sum(result.lights.values()) == len(report)


@pytest.mark.integration
def test_a_name_that_is_not_utf8_survives_escaped(hostile, hostile_run):
    workdir, *_ = hostile_run
    case = hostile.by_name()["invalid_utf8_name"]
    text = (workdir / "catalog.csv").read_bytes().decode("utf-8")  # valid UTF-8 throughout
    assert printable(str(case.path)) in text and "\\xff\\xfe" in text
    row = next(r for r in _csv(workdir / "frame_report.csv") if "\\xff\\xfe" in r["path"])
    out = workdir / row["output_path"]  # the output name holds the escaped bytes as text
    assert "\\xff\\xfe" in out.name
    history = "\n".join(str(h) for h in fits.getheader(out)["HISTORY"])
    assert "bad\\xff\\xfe name_0003.fits" in history
    andromede = next(r for r in _csv(workdir / "frame_report.csv") if "Androm" in r["path"])
    assert "Andromède" in andromede["path"]
    history = "\n".join(
        str(h) for h in fits.getheader(workdir / andromede["output_path"])["HISTORY"]
    )
    assert "Androm\\xe8de_0002.fits" in history


@pytest.mark.integration
def test_a_master_that_fails_has_its_row_and_its_lights_say_why(hostile_run):
    from darkflow.triage import rank_causes

    workdir, result, *_ = hostile_run
    assert result.masters_failed == 1
    failed = [r for r in _csv(workdir / "masters.csv") if r["status"] == "failed"]
    assert len(failed) == 1
    assert "inconsistent_set" in failed[0]["reasons"].split(";")
    assert "egain" in failed[0]["error"] and failed[0]["top_cause"] == "inconsistent_set"
    light = next(
        r for r in _csv(workdir / "frame_report.csv") if r["path"].endswith("light_b.fits")
    )
    assert "no_candidate" not in light["reasons"]
    assert str(rank_causes(light["reasons"].split(";"))[0][0]) == "inconsistent_set"
    assert light["top_cause"] != "thermal_mismatch"


@pytest.mark.integration
def test_strict_exits_3_when_lights_were_quarantined(hostile, hostile_run):
    workdir, *_ = hostile_run
    base = [*CLI, "run", str(hostile.root), "--workdir", str(workdir), "--quiet"]
    plain = subprocess.run(base, capture_output=True, text=True, check=False)
    assert plain.returncode == 0, plain.stderr
    strict = subprocess.run([*base, "--strict"], capture_output=True, text=True, check=False)
    assert strict.returncode == 3, strict.stderr
    assert "quarantined" in strict.stderr and "Traceback" not in strict.stderr


@pytest.mark.integration
def test_a_light_deleted_or_changed_after_the_scan_gets_a_reason(hostile, tmp_path):
    from darkflow.pipeline import run_night

    good = hostile.good_lights
    victims = {"masters": good[0], "lights": good[1]}
    saved = {p: p.read_bytes() for p in victims.values()}
    events: list[str] = []

    def tick(stage, done, total):
        path = victims.get(stage)
        if path is not None and path.exists() and stage not in events:
            events.append(stage)
            if stage == "masters":
                path.unlink()  # gone before the plan hashes it
            else:
                path.write_bytes(saved[path][:-2880] + b"\0" * 2880)  # rewritten mid-run

    try:
        run_night(hostile.root, workdir=tmp_path / "w", progress=tick)
    finally:
        for path, content in saved.items():
            path.write_bytes(content)
    assert events == ["masters", "lights"]
    report = {r["path"]: r for r in _csv(tmp_path / "w" / "frame_report.csv")}
    assert "input_vanished" in report[str(victims["masters"])]["reasons"]
    assert "input_changed" in report[str(victims["lights"])]["reasons"]
    assert report[str(victims["lights"])]["status"] == "quarantined"


def test_a_dead_run_shows_interrupted(tmp_path):
    from darkflow.registry import Registry
    from darkflow.report.status import registry_status

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Registry(tmp_path) as reg:
        run_id = reg.start_run(inputs=["x"], config={})
        alive_id = reg.start_run(inputs=["y"], config={})
    with sqlite3.connect(tmp_path / "registry.sqlite") as db:
        db.execute("UPDATE runs SET pid=?, pid_start=NULL WHERE run_id=?", (dead.pid, run_id))
    status = registry_status(tmp_path)
    outcomes = {r["run_id"]: r["outcome"] for r in status["runs"]}
    assert outcomes == {run_id: "interrupted", alive_id: "running"}  # this process still lives
    row = next(r for r in status["runs"] if r["run_id"] == run_id)
    assert row["host"] and str(dead.pid) in row["summary"]


def test_the_event_log_keeps_whole_lines_when_the_disk_fills(tmp_path, monkeypatch):
    from darkflow.registry import events

    log = events.EventLog(tmp_path / "e.jsonl", run="r")
    log.emit("first", n=1)
    real_write = os.write

    def half(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(events.os, "write", half)
    with pytest.raises(OSError):
        log.emit("second", n=2)
    monkeypatch.setattr(events.os, "write", real_write)
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    assert [json.loads(x)["event"] for x in lines] == ["first"]


@pytest.mark.integration
def test_an_unreachable_dask_scheduler_is_a_clear_error(tmp_path):
    pytest.importorskip("distributed")
    import socket

    from darkflow.exceptions import ExecutorError
    from darkflow.pipeline import DaskExecutor

    with socket.socket() as s:  # a free loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler"):
        DaskExecutor(f"tcp://127.0.0.1:{port}", timeout_s=2)


@pytest.mark.integration
def test_cli_error_for_an_unreachable_scheduler_is_one_line(tiny_night, tmp_path):
    pytest.importorskip("distributed")
    proc = subprocess.run(
        [
            *CLI,
            "run",
            str(tiny_night),
            "-w",
            str(tmp_path / "w"),
            "-q",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--dask-timeout",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "cannot reach the Dask scheduler" in proc.stderr
