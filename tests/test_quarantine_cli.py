"""`darkflow quarantine W`: the queue across nights, with causes, checklist and advisories."""

import csv
import io
import json

import pandas as pd
import pytest

from darkflow.cli import main
from darkflow.config import Config
from darkflow.exceptions import DarkflowError
from darkflow.pipeline import run_night
from darkflow.report.quarantine import QUEUE_COLUMNS, format_queue, quarantine_queue
from darkflow.simulate.faults import fault_night, simulate_faulted_night
from darkflow.triage import triage

pytestmark = pytest.mark.integration  # on a calibrated night


def test_queue_matches_the_frame_report(tiny_run):
    workdir, _, _ = tiny_run
    report = pd.read_csv(workdir / "frame_report.csv")
    queue = quarantine_queue(workdir)
    quarantined = report[report["status"] == "quarantined"]
    assert len(quarantined) > 0, "the tiny night should quarantine something"
    assert sorted(queue.lights["path"]) == sorted(quarantined["path"])
    assert (queue.lights["top_cause"] != "").all()
    with_degraded = quarantine_queue(workdir, include_degraded=True)
    assert len(with_degraded.lights) == int(
        report["status"].isin(["quarantined", "degraded"]).sum()
    )
    masters = pd.read_csv(workdir / "masters.csv")
    assert set(queue.masters["master_id"]) == set(
        masters.loc[masters["status"] != "verified", "master_id"].astype(str)
    )
    # every reason code of the queue gets a checklist entry
    codes = {c for rs in queue.lights["reasons"] for c in rs.split(";") if c}
    assert codes <= {f.code for f in queue.findings}


def test_cli_formats(tiny_run, capsys):
    workdir, _, _ = tiny_run
    assert main(["quarantine", str(workdir)]) == 0
    table = capsys.readouterr().out
    assert "quarantined" in table and "Triage checklist:" in table and "[ ]" in table

    assert main(["quarantine", str(workdir), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and list(rows[0]) == QUEUE_COLUMNS
    assert {r["status"] for r in rows} == {"quarantined"}

    assert main(["quarantine", str(workdir), "--format", "json", "--degraded"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"lights", "masters", "top_causes", "checklist", "advisories"} <= set(data)
    assert all(item["checklist"] for item in data["checklist"] if item["severity"] != "info")


def test_unknown_night_is_a_clear_error(tiny_run):
    workdir, _, _ = tiny_run
    with pytest.raises(DarkflowError, match="no night"):
        quarantine_queue(workdir, night="1999-01-01")
    assert main(["quarantine", str(workdir), "--night", "1999-01-01"]) != 0


def test_unmatched_lights_carry_an_acquisition_advisory(tmp_path):
    root = tmp_path / "data"
    simulate_faulted_night(root, fault_night("warm_darks_recorded", seed=4, shape=(60, 80)), 4)
    # without the assumed dark-current law the warm darks are no model for the lights
    config = Config.from_dict({"matching": {"assume_dark_law": False}})
    run_night(root, workdir=tmp_path / "w", config=config)
    queue = quarantine_queue(tmp_path / "w")
    assert len(queue.lights) > 0 and (queue.lights["advisory"] != "").all()
    assert queue.advisories and queue.advisories[0]["n_lights"] == len(queue.lights)
    assert str(queue.causes[0][0]) == "thermal_mismatch"
    text = format_queue(queue)
    assert "Acquisition advisories" in text and "Take " in text


def test_empty_queue(tmp_path, tiny_run):
    workdir, _, _ = tiny_run
    queue = quarantine_queue(workdir)
    queue.lights, queue.masters = queue.lights.iloc[:0], queue.masters.iloc[:0]
    queue.findings = triage([])
    assert "the queue is empty" in format_queue(queue)
