"""The catalog: scan, CSV contract, formats, row round trip, groups, nights and sessions."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from helpers.ingest import SAMPLES, card, write_cards, write_sample

from darkflow.config import IngestConfig
from darkflow.exceptions import ConfigError, HeaderError
from darkflow.ingest.catalog import (
    COLUMNS,
    CONTRACT_COLUMNS,
    EXTRA_COLUMNS,
    find_fits_files,
    format_catalog,
    group_frames,
    meta_from_row,
    scan,
    to_contract_csv,
)
from darkflow.ingest.headers import normalise
from darkflow.io.fastheader import read_header_info

ROOT = Path(__file__).resolve().parents[1]

CONTRACT = (
    "path, frame_type, exptime_s, ccd_temp_c, set_temp_c, gain_setting, egain_e_per_adu, "
    "offset, xbin, ybin, readout_mode, instrument, date_obs_utc, shape, dtype, source_program, "
    "config_signature, status, reasons"
).split(", ")


@pytest.fixture
def library(tmp_path):
    """One file per program sample (SharpCap in a ``darks`` folder)."""
    for name in SAMPLES:
        sub = "sharpcap/darks" if name == "sharpcap" else name
        write_sample(tmp_path / sub / f"{name}_001.fits", name)
    return tmp_path


def test_contract_columns_come_first_and_exactly():
    assert list(CONTRACT_COLUMNS) == CONTRACT
    assert list(COLUMNS[: len(CONTRACT)]) == CONTRACT
    assert set(EXTRA_COLUMNS).isdisjoint(CONTRACT)


def test_scan_library(library):
    df = scan(library)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == len(SAMPLES)
    assert df["path"].tolist() == sorted(df["path"].tolist())
    assert df["date_obs"].dtype == "datetime64[ns, UTC]"
    for col in ("exptime_s", "ccd_temp_c", "gain_setting", "egain_e_per_adu"):
        assert df[col].dtype == "float64"
    assert df["xbin"].dtype == "int64" and df["calibrated"].dtype == bool
    by_name = df.set_index(df["path"].map(lambda p: Path(p).stem))
    assert by_name.loc["nina_001", "status"] == "eligible"
    assert by_name.loc["sharpcap_001", "reasons"] == "frame_type_inferred"
    assert by_name.loc["sharpcap_001", "frame_type"] == "dark"
    assert by_name.loc["maxim_calibrated_001", "status"] == "isolated"
    assert by_name.loc["sgp_dslr_001", "reasons"] == "missing_temperature"
    assert by_name.loc["maxim_001", "shape"] == "8x12"
    assert by_name.loc["nina_001", "dtype"] == "uint16"
    assert by_name.loc["nina_001", "date_obs_utc"] == "2024-03-02T22:19:00.455000Z"


def test_scan_matches_normalise_on_astropy_headers(library):
    """The fast path (own parser) and astropy headers give the same metadata."""
    df = scan(library)
    for row in df.to_dict("records"):
        with fits.open(row["path"]) as hdul:
            expected = normalise(hdul[0].header, row["path"]).meta
        assert meta_from_row(row) == expected


def test_meta_from_row_round_trip_for_series_and_dict(library):
    df = scan(library)
    for (_, series), record in zip(df.iterrows(), df.to_dict("records"), strict=True):
        info = read_header_info(record["path"])
        expected = normalise(info.header, record["path"]).meta
        assert meta_from_row(series) == expected
        assert meta_from_row(record) == expected


def test_meta_from_row_without_datetime_column(library):
    """Without the parsed column the ISO text gives the header's own instant."""
    records = scan(library).drop(columns=["date_obs"]).to_dict("records")
    dated = [r for r in records if isinstance(r["date_obs_utc"], str)]
    assert dated
    for record in dated:
        header = read_header_info(record["path"]).header
        expected = normalise(header, record["path"]).meta.date_obs_utc
        assert expected is not None and meta_from_row(record).date_obs_utc == expected


def test_meta_from_row_bad_row_raises_named_error():
    with pytest.raises(HeaderError):
        meta_from_row({"frame_type": "light"})
    with pytest.raises(HeaderError):
        meta_from_row({"path": "x", "frame_type": "spaceship"})


def test_contract_csv(library):
    df = scan(library)
    text = to_contract_csv(df)
    assert text.splitlines()[0] == ",".join(CONTRACT)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(df)
    for row, record in zip(rows, df.to_dict("records"), strict=True):
        assert list(row) == CONTRACT
        assert row["path"] == record["path"]
        assert row["status"] == record["status"]
        assert row["reasons"] == record["reasons"]
        for col in ("exptime_s", "ccd_temp_c", "set_temp_c", "gain_setting", "offset"):
            value = record[col]
            if pd.isna(value):
                assert row[col] == ""
            else:
                assert float(row[col]) == value
    dslr = next(r for r in rows if "sgp_dslr" in r["path"])
    assert dslr["ccd_temp_c"] == "" and dslr["set_temp_c"] == ""
    assert dslr["gain_setting"] == "800"


def test_reasons_are_joined_with_semicolons(tmp_path):
    write_cards(tmp_path / "x.fits", [card("IMAGETYP", "DARK"), card("EXPTIME", 10.0)])
    row = next(csv.DictReader(io.StringIO(to_contract_csv(scan(tmp_path)))))
    assert row["reasons"] == "missing_temperature;missing_instrument;missing_date"
    assert row["instrument"] == "" and row["date_obs_utc"] == ""


def test_json_and_table_formats(library):
    df = scan(library)
    records = json.loads(format_catalog(df, "json"))
    assert len(records) == len(df) and list(records[0]) == list(COLUMNS)
    dslr = next(r for r in records if "sgp_dslr" in r["path"])
    assert dslr["ccd_temp_c"] is None and dslr["gain_setting"] == 800.0
    assert dslr["date_obs"] == "2024-09-12T21:40:01.123000Z"
    table = format_catalog(df, "table")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["file", "type", "exp_s"]
    assert "12 files: 9 eligible, 3 isolated, 0 rejected" in table
    assert any("sharpcap" in line and "frame_type_inferred" in line for line in lines)
    assert format_catalog(df, "csv") == to_contract_csv(df)
    with pytest.raises(ConfigError):
        format_catalog(df, "xml")


def test_empty_catalog(tmp_path):
    df = scan(tmp_path)
    assert list(df.columns) == list(COLUMNS) and len(df) == 0
    assert df["date_obs"].dtype == "datetime64[ns, UTC]"
    assert to_contract_csv(df) == ",".join(CONTRACT) + "\n"
    assert format_catalog(df, "json") == "[]\n"
    assert "0 files" in format_catalog(df, "table")
    assert group_frames(df) == {}


def test_group_frames(library):
    df = scan(library)
    groups = group_frames(df)
    assert list(groups) == sorted(groups)
    assert sum(len(g) for g in groups.values()) == len(df)
    for signature, group in groups.items():
        assert (group["config_signature"] == signature).all()
        assert group["path"].is_monotonic_increasing
    eligible = group_frames(df, status="eligible")
    assert all((g["status"] == "eligible").all() for g in eligible.values())
    both = group_frames(df, status=["eligible", "isolated"])
    assert sum(len(g) for g in both.values()) == len(df)


def test_workers_do_not_change_the_result(library):
    for i in range(12):  # enough files for the thread pool to be used
        write_sample(library / "more" / f"nina_{i:03d}.fits", "nina", seed=i + 1)
    serial = scan(library, workers=1)
    threaded = scan(library, workers=4)
    pd.testing.assert_frame_equal(serial, threaded)
    with pytest.raises(ConfigError):
        scan(library, workers=0)


# --------------------------------------------------------------------------- discovery
def test_hidden_and_ignored_directories_are_skipped(tmp_path):
    write_sample(tmp_path / "lights" / "a.fits", "nina")
    write_sample(tmp_path / ".hidden" / "b.fits", "nina")
    write_sample(tmp_path / "truth" / "c.fits", "nina")
    (tmp_path / "truth" / ".darkflow-ignore").write_text("")
    write_sample(tmp_path / "truth" / "deeper" / "d.fits", "nina")
    write_sample(tmp_path / "lights" / ".partial.fits", "nina")
    (tmp_path / "lights" / "notes.txt").write_text("not a frame")
    write_sample(tmp_path / "lights" / "UPPER.FIT", "nina")
    found = find_fits_files(tmp_path)
    assert [Path(p).name for p in found] == ["UPPER.FIT", "a.fits"]


def test_explicit_files_and_missing_inputs(tmp_path):
    odd = write_sample(tmp_path / "frame.dat", "nina")
    nested = write_sample(tmp_path / "sub" / "x.fits", "nina")
    df = scan([odd, tmp_path / "sub", nested, tmp_path / "gone.fits"])
    assert df["path"].tolist() == sorted(map(str, [odd, nested, tmp_path / "gone.fits"]))
    gone = df[df["path"].str.endswith("gone.fits")].iloc[0]
    assert gone["status"] == "rejected" and gone["reasons"] == "unreadable"


# --------------------------------------------------------------------------- bad input
@pytest.fixture
def bad_library(tmp_path):
    """Every kind of bad input the issue lists, next to good files."""
    d = tmp_path / "bad"
    good = write_sample(d / "good.fits", "nina")
    (d / "empty.fits").write_bytes(b"")
    full = write_sample(d / "full.fits", "sgp", shape=(64, 64)).read_bytes()
    (d / "full.fits").unlink()
    (d / "truncated.fits").write_bytes(full[: len(full) - 4000])
    (d / "notes.fits").write_text("SIMPLE? no, this is a text file\n" * 50)
    (d / "good_copy.fits").write_bytes(good.read_bytes())
    (d / "zz_copy2.fits").write_bytes(good.read_bytes())
    write_cards(
        d / "nan.fits",
        [
            card("IMAGETYP", "DARK"),
            card("EXPTIME", 60.0),
            card("CCD-TEMP", raw="                 NAN"),
            card("GAIN", "inf"),
            card("INSTRUME", "cam"),
            card("DATE-OBS", "2024-01-01T00:00:00"),
        ],
    )
    write_cards(
        d / "nanexp.fits",
        [card("IMAGETYP", "DARK"), card("EXPTIME", "NaN"), card("CCD-TEMP", -10.0)],
    )
    gz = d / "good2.fits.gz"
    gz.write_bytes(gzip.compress(write_sample(d / "tmp.fits", "asiair").read_bytes(), mtime=0))
    (d / "tmp.fits").unlink()
    data = np.arange(32 * 16, dtype=np.uint16).reshape(32, 16)
    hdr = fits.Header()
    for k, v in (("IMAGETYP", "BIAS"), ("EXPTIME", 0.0), ("CCD-TEMP", -5.0)):
        hdr[k] = v
    hdr["INSTRUME"] = "cam"
    hdr["DATE-OBS"] = "2024-01-01T00:00:00"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, hdr)]).writeto(d / "bias.fits.fz")
    mef = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, hdr)])
    mef.writeto(d / "mef.fits")
    fits.PrimaryHDU(np.zeros((3, 4, 5), np.int16)).writeto(d / "cube.fits", overwrite=True)
    readonly = write_sample(d / "readonly.fits", "asiair", seed=5)
    readonly.chmod(0o444)
    locked = write_sample(d / "locked.fits", "asiair", seed=6)
    locked.chmod(0)
    yield d
    locked.chmod(0o644)
    readonly.chmod(0o644)


def _snapshot(folder):
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        content = p.read_bytes() if os.access(p, os.R_OK) else None
        out[str(p)] = (st.st_mtime_ns, st.st_size, st.st_mode, content)
    return out


def test_every_bad_input_gets_a_row_and_nothing_is_modified(bad_library):
    before = _snapshot(bad_library)
    df = scan(bad_library)
    assert _snapshot(bad_library) == before
    rows = {Path(p).name: r for p, r in zip(df["path"], df.to_dict("records"), strict=True)}
    assert len(rows) == len(before)

    def check(name, status, code):
        assert rows[name]["status"] == status, rows[name]
        assert code in rows[name]["reasons"].split(";"), rows[name]

    assert rows["good.fits"]["status"] == "eligible"
    check("empty.fits", "rejected", "empty_file")
    check("truncated.fits", "rejected", "truncated")
    check("notes.fits", "rejected", "not_fits")
    assert pd.isna(rows["good.fits"]["duplicate_of"])  # first in path order: kept
    for copy in ("good_copy.fits", "zz_copy2.fits"):
        check(copy, "rejected", "duplicate")
        assert rows[copy]["reasons"] == "duplicate"
        assert rows[copy]["duplicate_of"] == str(bad_library / "good.fits")
    check("nan.fits", "isolated", "invalid_value")
    assert "missing_temperature" in rows["nan.fits"]["reasons"]
    check("nanexp.fits", "rejected", "invalid_exposure")
    assert rows["good2.fits.gz"]["status"] == "eligible"
    assert rows["bias.fits.fz"]["status"] == "eligible"
    assert rows["bias.fits.fz"]["hdu_index"] == 1 and rows["bias.fits.fz"]["shape"] == "32x16"
    assert rows["mef.fits"]["status"] == "eligible" and rows["mef.fits"]["hdu_index"] == 1
    check("cube.fits", "rejected", "not_2d")
    assert rows["readonly.fits"]["status"] == "eligible"
    if os.geteuid() != 0:
        check("locked.fits", "rejected", "unreadable")
    else:  # root reads anything; the monkeypatched test covers the refusal
        assert rows["locked.fits"]["status"] == "eligible"


def test_internal_error_is_recorded_not_raised(tmp_path, monkeypatch):
    write_sample(tmp_path / "a.fits", "nina")
    write_sample(tmp_path / "b.fits", "sgp")

    def boom(header, path, *, config=None):
        if path.endswith("a.fits"):
            raise RuntimeError("simulated bug")
        return normalise(header, path, config=config)

    monkeypatch.setattr("darkflow.ingest.catalog.normalise", boom)
    df = scan(tmp_path)
    assert df["status"].tolist() == ["rejected", "eligible"]
    assert df["reasons"].iloc[0] == "internal_error"
    assert "simulated bug" in df["details"].iloc[0]


# --------------------------------------------------------------------------- nights, sessions
def _frame(folder, name, when, *, imagetyp="LIGHT", instrument="ZWO ASI2600MM Pro", extra=()):
    cards = [
        card("IMAGETYP", imagetyp),
        card("EXPTIME", 120.0),
        card("CCD-TEMP", -10.0),
        card("INSTRUME", instrument),
        card("DATE-OBS", when.strftime("%Y-%m-%dT%H:%M:%S.%f")),
        *extra,
    ]
    return write_cards(folder / f"{name}.fits", cards, seed=zlib.crc32(name.encode()))


def test_night_from_longitude_date_loc_or_utc(tmp_path):
    utc = datetime(2024, 3, 3, 2, 30)
    _frame(tmp_path, "lon_east", utc, extra=[card("SITELONG", 150.0)])  # local 12:30 on the 3rd
    _frame(tmp_path, "lon_west", utc, extra=[card("SITELONG", "-111 39 00")])  # 19:04 on 2nd
    _frame(tmp_path, "dateloc", utc, extra=[card("DATE-LOC", "2024-03-03T13:30:00")])
    _frame(tmp_path, "utc_only", utc)
    df = scan(tmp_path)
    nights = dict(zip(df["path"].map(lambda p: Path(p).stem), df["night"], strict=True))
    assert nights == {
        "lon_east": "2024-03-03",
        "lon_west": "2024-03-02",
        "dateloc": "2024-03-03",
        "utc_only": "2024-03-02",
    }
    shifted = scan(tmp_path, config=IngestConfig(night_offset_h=0.0))  # calendar date
    assert shifted["night"].tolist() == ["2024-03-03", "2024-03-03", "2024-03-02", "2024-03-03"]
    assert shifted["path"].map(lambda p: Path(p).stem).tolist() == [
        "dateloc",
        "lon_east",
        "lon_west",
        "utc_only",
    ]


def test_sessions_split_on_gaps_and_calibration_frames_join(tmp_path):
    t0 = datetime(2024, 3, 2, 20, 0)  # UTC, no longitude: night 2024-03-02
    for i in range(3):
        _frame(tmp_path, f"l1_{i}", t0 + timedelta(minutes=10 * i))
    for i in range(2):
        _frame(tmp_path, f"l2_{i}", t0 + timedelta(hours=6, minutes=10 * i))
    _frame(tmp_path, "other_cam", t0, instrument="QHY268M")
    _frame(tmp_path, "dark_early", t0 - timedelta(hours=1), imagetyp="DARK")
    _frame(tmp_path, "dark_late", t0 + timedelta(hours=9), imagetyp="DARK")
    _frame(tmp_path, "dark_alone", t0 + timedelta(days=5), imagetyp="DARK")
    _frame(tmp_path, "flat_other", t0, imagetyp="FLAT", instrument="Atik 460EX")
    df = scan(tmp_path)
    sessions = dict(zip(df["path"].map(lambda p: Path(p).stem), df["session"], strict=True))
    assert {sessions[f"l1_{i}"] for i in range(3)} == {"zwo-asi2600mm-pro"}
    assert {sessions[f"l2_{i}"] for i in range(2)} == {"zwo-asi2600mm-pro-2"}
    assert sessions["other_cam"] == "qhy268m"
    assert sessions["dark_early"] == "zwo-asi2600mm-pro"
    assert sessions["dark_late"] == "zwo-asi2600mm-pro-2"
    assert pd.isna(sessions["dark_alone"]) and pd.isna(sessions["flat_other"])
    one = scan(tmp_path, config=IngestConfig(session_gap_h=12.0))
    assert "zwo-asi2600mm-pro-2" not in set(one["session"].dropna())


def test_header_hash_is_stable_and_path_independent(tmp_path):
    a = write_sample(tmp_path / "a" / "x.fits", "nina")
    b = tmp_path / "b" / "y.fits"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    df = scan(tmp_path)
    assert df["header_hash"].nunique() == 1
    assert scan(tmp_path)["header_hash"].tolist() == df["header_hash"].tolist()
    c = write_sample(tmp_path / "c.fits", "sgp")
    assert scan(c)["header_hash"].iloc[0] != df["header_hash"].iloc[0]


# --------------------------------------------------------------------------- command line
def test_command_line_csv(library):
    result = subprocess.run(
        [sys.executable, "-m", "darkflow.ingest.catalog", str(library), "--format", "csv"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == to_contract_csv(scan(library))


def test_command_line_table_and_json(library):
    for fmt in ("table", "json"):
        result = subprocess.run(
            [sys.executable, "-m", "darkflow.ingest.catalog", str(library), "--format", fmt],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == format_catalog(scan(library), fmt)


def test_command_line_bad_format_exits_nonzero(library):
    result = subprocess.run(
        [sys.executable, "-m", "darkflow.ingest.catalog", str(library), "--format", "xml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0 and "invalid choice" in result.stderr


def test_dates_survive_the_dataframe(library):
    df = scan(library)
    nina = df[df["path"].str.endswith("nina_001.fits")].iloc[0]
    assert nina["date_obs"] == pd.Timestamp(datetime(2024, 3, 2, 22, 19, 0, 455000, tzinfo=UTC))


def test_same_header_different_pixels_is_not_a_duplicate(tmp_path):
    a = write_sample(tmp_path / "a.fits", "nina", seed=1)
    b = write_sample(tmp_path / "b.fits", "nina", seed=2)
    assert a.read_bytes()[:2880] == b.read_bytes()[:2880]
    assert a.read_bytes() != b.read_bytes()
    df = scan(tmp_path)
    assert df["status"].tolist() == ["eligible", "eligible"]
    assert df["duplicate_of"].isna().all()


def test_missing_text_is_none_in_records(tmp_path):
    """``row.get("session") or "unknown"`` must work on records: missing text is None."""
    _frame(tmp_path, "dark", datetime(2024, 3, 2, 20, 0), imagetyp="DARK")
    record = scan(tmp_path).to_dict("records")[0]
    for col in ("session", "readout_mode", "camera_id", "bayer_pattern", "duplicate_of"):
        assert record[col] is None, col
    assert record["night"] == "2024-03-02"
