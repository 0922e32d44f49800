"""`darkflow status W`: masters by status, lights by outcome, last jobs, cache hit rate."""

import json

import pandas as pd
import pytest

from darkflow.cli import main


@pytest.mark.integration
def test_status_table_and_json(tiny_run, capsys):
    workdir, result, _ = tiny_run
    assert main(["status", str(workdir), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    report = pd.read_csv(workdir / "frame_report.csv")
    assert status["last_run_lights"] == report["status"].value_counts().to_dict()
    registered = {k: n for k, n in status["lights"].items()}
    computed = report[report["job_key"].notna()]["status"].value_counts().to_dict()
    assert registered == computed  # every light job's result is a registered artifact
    masters = pd.read_csv(workdir / "masters.csv")
    assert sum(status["masters"].values()) >= len(masters)
    assert status["last_run"]["outcome"] == "ok"
    assert status["last_run_jobs"]["total"] >= result.masters_built
    assert 0.0 <= (status["cache_hit_rate"] or 0.0) <= 1.0

    assert main(["status", str(workdir)]) == 0
    table = capsys.readouterr().out
    assert "masters:" in table and "last run's lights (frame_report.csv):" in table
    assert "cache hit rate" in table


def test_status_of_a_directory_without_registry(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "no registry" in capsys.readouterr().err
