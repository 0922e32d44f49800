import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.integration  # the command line in a new process, on a night

SCAN_COLUMNS = (
    "path,frame_type,exptime_s,ccd_temp_c,set_temp_c,gain_setting,egain_e_per_adu,offset,xbin,ybin,"
    "readout_mode,instrument,date_obs_utc,shape,dtype,source_program,config_signature,status,reasons"
)


def darkflow(*args, check=False):
    return subprocess.run(
        [sys.executable, "-m", "darkflow.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=check,
    )


def test_help_lists_the_commands():
    out = darkflow("--help", check=True).stdout
    for cmd in ("simulate", "scan", "combine", "run", "report"):
        assert cmd in out


def test_scan_csv_contract(tiny_night):
    out = darkflow("scan", tiny_night, "--format", "csv", check=True).stdout
    lines = out.splitlines()
    assert lines[0] == SCAN_COLUMNS
    assert len(lines) == 1 + sum(1 for p in tiny_night.rglob("*.fit*") if "_truth" not in p.parts)


def test_scan_other_formats(tiny_night):
    """The JSON and table formats hold the rows of the CSV contract, one per file."""
    import csv
    import io
    import json

    text = darkflow("scan", tiny_night, "--format", "csv", check=True).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    records = json.loads(darkflow("scan", tiny_night, "--format", "json", check=True).stdout)
    assert [r["path"] for r in records] == [r["path"] for r in rows]
    assert [r["frame_type"] for r in records] == [r["frame_type"] for r in rows]
    table = darkflow("scan", tiny_night, "--format", "table", check=True).stdout
    head, rule, *lines = table.splitlines()
    lines, summary = lines[: len(rows)], lines[len(rows) :]
    assert head.split()[:2] == ["file", "type"] and summary[0] == ""
    assert summary[1].startswith(f"{len(rows)} files: ")
    width = rule.index(" ")  # the file column, cut at the left to fit
    for line, row in zip(lines, rows, strict=True):
        assert row["path"].endswith(line[:width].strip().lstrip("…"))
        assert line[width:].split()[0] == row["frame_type"]


def test_combine_is_passed_through(tiny_night, tmp_path):
    help_text = darkflow("combine", "--help", check=True).stdout
    assert "--memory-limit" in help_text and "--sigma-low" in help_text
    darks = sorted(p for p in tiny_night.rglob("*.fits") if "/DARK/" in str(p))[:3]
    out = darkflow(
        "combine", *darks, "-o", tmp_path / "m.fits", "--memory-limit", "64MB", "--allow-few"
    )
    assert out.returncode == 0, out.stderr
    from darkflow.master import combine_files, read_master

    written = read_master(tmp_path / "m.fits")
    direct = combine_files(darks, allow_few=True)  # the library call the command wraps
    assert written.meta.n_frames == 3
    np.testing.assert_array_equal(written.data, direct.data)
    np.testing.assert_array_equal(written.n_used, direct.n_used)


def test_expected_errors_are_one_line_exit_2(tmp_path):
    out = darkflow("report", tmp_path)
    assert out.returncode == 2 and "not a darkflow work directory" in out.stderr
    assert "Traceback" not in out.stderr
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[combine]\nsigma_low = 'x'\n")
    out = darkflow("run", tmp_path, "--workdir", tmp_path / "w", "--config", cfg)
    assert out.returncode == 2 and "combine.sigma_low" in out.stderr


def test_simulate_refuses_foreign_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    out = darkflow("simulate", tmp_path, "--preset", "tiny")
    assert out.returncode == 2 and (tmp_path / "precious.txt").read_text() == "keep me"
