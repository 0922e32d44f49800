"""A whole simulated night: files, program styles, broken frames, truth, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from darkflow.exceptions import ConfigError, FitsReadError
from darkflow.io import read_image
from darkflow.simulate import (
    PRESETS,
    Block,
    Breakage,
    BrokenFrame,
    LightLeak,
    TemperatureOffset,
    expose,
    iter_rendered,
    load_truth,
    main,
    plan_night,
    sensor_truth,
    simulate_night,
)
from darkflow.simulate.truth import FRAME_COLUMNS

SEED = 1


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    manifest = simulate_night(out, "tiny", seed=SEED)
    return manifest, load_truth(out)


def _raw_cards(path: Path) -> dict[str, str]:
    """Raw 80-character card images of the primary header, by keyword."""
    raw = path.read_bytes()
    cards = {}
    for i in range(0, len(raw), 80):
        card = raw[i : i + 80].decode("ascii")
        if card.startswith("END "):
            break
        cards.setdefault(card[:8].strip(), card)
    return cards


def _rows(truth, **where):
    df = truth.frames
    for key, value in where.items():
        df = df[df[key] == value]
    return df


def _header(manifest, row) -> fits.Header:
    return read_image(manifest.out_dir / row["path"])[1]


# ---------------------------------------------------------------------- files and layout
def test_every_written_file_is_in_the_truth(night):
    manifest, truth = night
    on_disk = {
        p.relative_to(manifest.out_dir).as_posix()
        for p in manifest.night_dir.rglob("*")
        if p.is_file()
    }
    assert on_disk == set(truth.frames["path"])
    assert len(on_disk) == manifest.n_files == truth.manifest["n_files"] == PRESETS["tiny"].n_frames
    assert list(truth.frames.columns) == list(FRAME_COLUMNS)
    marker = manifest.truth_dir / ".darkflow-ignore"
    assert marker.is_file() and marker.stat().st_size == 0
    assert {s.program for s in manifest.sessions} == {
        "nina",
        "sgp",
        "maxim",
        "sharpcap",
        "ekos",
        "asiair",
    }
    assert all(p.startswith(f"{manifest.night_date}/") for p in truth.frames["path"])


def test_three_sensor_families_and_realistic_times(night):
    _manifest, truth = night
    kinds = {truth.sensor(c).kind for c in truth.frames["camera"].unique()}
    assert {str(k) for k in kinds} == {"cmos", "ccd", "dslr"}
    for _, group in truth.frames.groupby("session"):
        times = group.sort_values(["block", "index"])["date_obs_utc"]
        assert times.is_monotonic_increasing
        gaps = times.diff().dt.total_seconds().dropna().to_numpy()
        exps = group.sort_values(["block", "index"])["exptime_s"].to_numpy()[:-1]
        assert np.all(gaps >= exps)  # a frame starts after the previous one ended


def test_unsigned_16bit_round_trip(night):
    manifest, truth = night
    row = _rows(truth, session="nina_asi2600mm", kind="dark", broken="").iloc[0]
    path = manifest.out_dir / row["path"]
    cards = _raw_cards(path)
    assert int(cards["BITPIX"][10:30]) == 16
    assert float(cards["BZERO"][10:30]) == 32768
    assert float(cards["BSCALE"][10:30]) == 1
    data, _ = read_image(path)
    assert data.dtype == np.uint16
    assert data.min() > 400 and np.median(data) > 32767 - 32768 + 400  # bias ~500, no wrap
    lights = _rows(truth, session="nina_asi2600mm", kind="light", broken="")
    light, _ = read_image(manifest.out_dir / lights.iloc[0]["path"])
    assert light.max() == 65535  # saturated star cores stay unsigned


# ---------------------------------------------------------------------- program styles
def _one(truth, session, kind):
    return _rows(truth, session=session, kind=kind, broken="").iloc[0]


def test_nina_style(night):
    manifest, truth = night
    h = _header(manifest, _one(truth, "nina_asi2600mm", "light"))
    assert h["IMAGETYP"] == "LIGHT" and h["EXPOSURE"] == h["EXPTIME"] == 60.0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", h["DATE-OBS"])
    assert h["DATE-LOC"] != h["DATE-OBS"]
    assert h["SWCREATE"].startswith("N.I.N.A. 3.")
    for key in (
        "GAIN",
        "OFFSET",
        "EGAIN",
        "SET-TEMP",
        "CCD-TEMP",
        "XBINNING",
        "INSTRUME",
        "ROWORDER",
        "OBJECT",
        "FILTER",
        "TELESCOP",
        "SITELAT",
        "SITELONG",
    ):
        assert key in h, key
    assert h["INSTRUME"] == "ZWO ASI2600MM Pro"
    dark = _header(manifest, _one(truth, "nina_asi2600mm", "dark"))
    assert dark["IMAGETYP"] == "DARK" and "OBJECT" not in dark
    assert "/Calibration/DARK/" in _one(truth, "nina_asi2600mm", "dark")["path"]


def test_sgp_style(night):
    manifest, truth = night
    h = _header(manifest, _one(truth, "sgp_asi294mc", "dark"))
    assert h["IMAGETYP"] == "DARK"
    assert h["CREATOR"].startswith("Sequence Generator Pro v4")
    assert "EXPOSURE" in h and "EXPTIME" not in h  # SGP writes EXPOSURE only
    assert h["CCDXBIN"] == h["XBINNING"] == 1
    assert re.fullmatch(r"-?\d+ \d+ \d+\.\d{3}", h["SITELAT"])
    assert _one(truth, "sgp_asi294mc", "light")["path"].endswith("_frame1.fit")


def test_maxim_style(night):
    manifest, truth = night
    rows = {k: _one(truth, "maxim_stf8300", k) for k in ("light", "dark", "bias")}
    types = {k: _header(manifest, r)["IMAGETYP"] for k, r in rows.items()}
    assert types == {"light": "Light Frame", "dark": "Dark Frame", "bias": "Bias Frame"}
    h = _header(manifest, rows["dark"])
    assert h["SWCREATE"].startswith("MaxIm DL Version 6")
    assert h["SBSTDVER"] == "SBFITSEXT Version 1.0" and "JD" in h
    cards = _raw_cards(manifest.out_dir / rows["dark"]["path"])
    assert re.search(r"=\s+1\.20000000000E\+002", cards["EXPTIME"])  # exptime_e3 quirk
    assert re.search(r"=\s+-?\d+\.\d+/", cards["CCD-TEMP"])  # 17 digits, no space before '/'
    assert "CALSTAT" not in h


def test_sharpcap_style(night):
    manifest, truth = night
    light, dark = (_one(truth, "sharpcap_asi533mc", k) for k in ("light", "dark"))
    for row in (light, dark):
        h = _header(manifest, row)
        assert "IMAGETYP" not in h and "FRAME" not in h
        assert h["SWCREATE"].startswith("SharpCap v4.1")
        assert h["EGAIN"] == pytest.approx(4 * h["EGAINSAV"])  # 14-bit ADC, saved at 16 bits
        assert h["ADCBITS"] == 14 and h["BLKLEVEL"] == h["OFFSET"]
    assert "/SharpCap Captures/2026-11-23/Darks/" in dark["path"]
    assert re.search(
        r"/SharpCap Captures/2026-11-23/M 45/\d\d_\d\d_\d\d/Light_\d{5}\.fits$", light["path"]
    )


def test_ekos_style_with_a_dslr(night):
    manifest, truth = night
    light, dark = (_one(truth, "ekos_canon6d", k) for k in ("light", "dark"))
    h = _header(manifest, dark)
    assert h["FRAME"] == "Dark" and h["IMAGETYP"] == "Dark Frame"
    assert h["INSTRUME"].startswith("Canon DSLR")
    assert h["ISOSPEED"] == 1600 and "GAIN" not in h
    assert "CCD-TEMP" not in h and "SET-TEMP" not in h  # no temperature sensor
    assert h["EXPTIME"] == "3.00000000000E+001"  # numbers as strings (quirk)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", h["DATE-OBS"])
    assert "Generated by INDI" in str(h["COMMENT"])
    assert re.search(r"/M_33/Light/M_33_Light_30_secs_.*_001\.fits$", light["path"])
    set_temp = truth.frame(manifest.out_dir / dark["path"])["set_temp_c"]
    assert np.isnan(set_temp)  # no set-point for an uncooled camera


def test_ekos_style_with_a_cooled_camera(tmp_path):
    spec = PRESETS["tiny"]
    nina = spec.sessions[0].replace(name="ekos_asi2600mm", program="ekos", broken=())
    out = simulate_night(tmp_path, spec.replace(sessions=(nina,)), seed=SEED)
    h = read_image(out.paths[3])[1]
    assert h["INSTRUME"] == "ZWO CCD ASI2600MM Pro"
    cards = _raw_cards(out.paths[3])
    assert re.search(r"=\s+-?\d\.\d{3}E[+-]\d\d /", cards["CCD-TEMP"])
    assert re.search(r"=\s+1\.000E\+02 /", cards["GAIN"])
    assert h["DARKTIME"] == h["EXPTIME"] == 60.0


def test_asiair_style(night):
    manifest, truth = night
    light = _one(truth, "asiair_asi2600mc", "light")
    h = _header(manifest, light)
    assert h["IMAGETYP"] == "Light" and "ASIAIR" in h["CREATOR"]
    assert h["INSTRUME"] == "ZWO ASI2600MC Pro" and h["BAYERPAT"] == "RGGB"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", h["DATE-OBS"])
    assert h["CCDXBIN"] == 1 and h["GAIN"] == 100 and h["OFFSET"] == 50
    assert re.search(
        r"/Autorun/Light/IC 1805/Light_IC 1805_60\.0s_Bin1_2600MC_gain100_\d{8}-\d{6}_-?\d+\.\dC_\d{4}\.fit$",
        light["path"],
    )
    assert _header(manifest, _one(truth, "asiair_asi2600mc", "dark"))["IMAGETYP"] == "Dark"


def test_measured_temperature_is_the_rounded_reading(night):
    manifest, truth = night
    frames = truth.frames
    cooled = frames[frames["measured_temp_c"].notna() & (frames["broken"] != "truncated")]
    assert len(cooled) > 20
    plan = plan_night(manifest.spec, SEED)
    by_path = {f.relpath: f for f in plan.frames}
    for _, row in cooled.iterrows():
        h = fits.getheader(manifest.out_dir / row["path"])
        assert h["CCD-TEMP"] == pytest.approx(row["measured_temp_c"], abs=1e-6)
        frame = by_path[row["path"]]
        step = truth.sensor(row["camera"]).temp_resolution_c
        reading = plan.traces[row["session"]].sensor_at(frame.t_session_s)  # at exposure start
        assert abs(row["measured_temp_c"] - reading) <= step / 2 + 1e-9
        assert abs(row["measured_temp_c"] - row["true_temp_c"]) < 1.0  # true: exposure mean
    warm = _rows(truth, session="maxim_stf8300")
    assert (warm["true_temp_c"] > warm["set_temp_c"] + 5).all()  # warm night: set-point missed


# ---------------------------------------------------------------------- broken frames
def _broken(night, code):
    manifest, truth = night
    row = _rows(truth, broken=str(code)).iloc[0]
    return manifest, truth, row, manifest.out_dir / row["path"]


def test_truncated_file_is_really_truncated(night):
    _, truth, row, path = _broken(night, Breakage.TRUNCATED)
    raw = path.read_bytes()
    end = next(i for i in range(0, len(raw), 80) if raw[i : i + 8] == b"END     ")
    header_len = (end // 2880 + 1) * 2880
    model = truth.sensor(row["camera"])
    assert len(raw) % 2880 != 0
    assert header_len < len(raw) < header_len + model.ny * model.nx * 2
    with pytest.raises(FitsReadError):
        read_image(path)


def test_nan_data_is_float32_with_nans(night):
    _, _, _, path = _broken(night, Breakage.NAN_DATA)
    assert int(_raw_cards(path)["BITPIX"][10:30]) == -32
    data, header = read_image(path)
    assert data.dtype == np.float32 and np.isnan(data).sum() > 0
    assert np.isfinite(data).mean() > 0.9 and "BZERO" not in header


def test_missing_temperature_and_sentinel(night):
    _manifest, _truth, row, path = _broken(night, Breakage.MISSING_TEMPERATURE)
    h = read_image(path)[1]
    assert "CCD-TEMP" not in h and "SET-TEMP" in h
    assert np.isnan(row["measured_temp_c"])
    _, _, row, path = _broken(night, Breakage.TEMPERATURE_SENTINEL)
    assert "-1.79769313486232E+308" in _raw_cards(path)["CCD-TEMP"]
    assert read_image(path)[1]["CCD-TEMP"] == -np.inf  # overflows a double when parsed
    assert np.isnan(row["measured_temp_c"])


def test_missing_frame_type_in_a_program_that_writes_it(night):
    manifest, truth, row, path = _broken(night, Breakage.MISSING_FRAME_TYPE)
    assert "IMAGETYP" not in read_image(path)[1]
    sibling = _rows(truth, session=row["session"], kind=row["kind"], broken="").iloc[0]
    assert "IMAGETYP" in _header(manifest, sibling)


def test_wrong_binning(night):
    _manifest, truth, row, path = _broken(night, Breakage.WRONG_BINNING_HEADER)
    data, h = read_image(path)
    model = truth.sensor(row["camera"])
    assert h["XBINNING"] == h["YBINNING"] == 2 and data.shape == model.shape
    _, _, row, path = _broken(night, Breakage.BINNED_FRAME)
    data, h = read_image(path)
    model = truth.sensor(row["camera"])
    assert h["XBINNING"] == h["YBINNING"] == 2
    assert data.shape == (model.ny // 2, model.nx // 2)
    assert h["XPIXSZ"] == pytest.approx(2 * model.pixel_size_um)
    siblings = _rows(truth, session=row["session"], kind=row["kind"], broken="")
    assert (siblings["xbin"] == 1).all() and row["xbin"] == 2


def test_already_calibrated_maxim_light(night):
    manifest, truth = night
    row = truth.frames[truth.frames["already_calibrated"]].iloc[0]
    assert row["program"] == "maxim" and row["kind"] == "light"
    data, h = read_image(manifest.out_dir / row["path"])
    assert h["CALSTAT"] == "BD" and h["PEDESTAL"] == -100
    assert any("Dark Subtraction" in str(line) for line in h["HISTORY"])
    sky = truth.sky_e(manifest.out_dir / row["path"])
    gain = truth.sensor(row["camera"]).egain_e_per_adu
    background = np.median(data.astype(float) - sky / gain)
    assert background == pytest.approx(100.0, abs=3.0)  # pedestal only: bias and dark removed


# ---------------------------------------------------------------------- truth
def test_truth_dark_matches_noiseless_exposure_and_data(night):
    manifest, truth = night
    darks = _rows(truth, session="maxim_stf8300", kind="dark", broken="")
    camera = darks.iloc[0]["camera"]
    maps = sensor_truth(manifest.spec, SEED, camera)
    temp = float(darks["true_temp_c"].mean())
    expected = truth.true_dark_adu(camera, 120.0, temp)
    noiseless = expose(maps, "dark", 120.0, temp, np.random.default_rng(), noiseless=True)
    np.testing.assert_allclose(expected, noiseless, rtol=1e-9, atol=1e-6)
    stack = np.array([read_image(manifest.out_dir / p)[0].astype(float) for p in darks["path"]])
    resid = np.median(stack, axis=0) - expected
    sigma = np.sqrt(9.3**2 + 30) / 0.37 / np.sqrt(len(stack))
    assert abs(np.median(resid)) < 0.3 * sigma
    hot = truth.hot_pixels(camera)
    assert len(hot) > 0
    np.testing.assert_allclose(
        hot["dark_current_e_per_s"], truth.dark_current(camera)[hot["y"], hot["x"]], rtol=1e-6
    )
    assert truth.sensor(camera).name == "SBIG STF-8300M"
    assert truth.sensor("SBIG STF-8300M") == truth.sensor(camera)


def test_cosmic_rays_present_in_darks_and_counted(night):
    manifest, truth = night
    darks = _rows(truth, kind="dark", broken="", session="nina_asi2600mm")
    assert (darks["n_cosmic_pixels"] > 0).all()
    row = darks.iloc[0]
    data = read_image(manifest.out_dir / row["path"])[0].astype(float)
    model = truth.sensor(row["camera"])
    resid = data - truth.true_dark_adu(row["camera"], row["exptime_s"], row["true_temp_c"])
    sigma = np.sqrt(model.read_noise_e**2 + 5) / model.egain_e_per_adu
    n_outliers = int((resid > 10 * sigma).sum())
    flicker = len(truth.flicker_pixels(row["camera"]))
    assert 0.8 * row["n_cosmic_pixels"] <= n_outliers <= row["n_cosmic_pixels"] + flicker


def test_sky_truth_of_lights(night):
    _manifest, truth = night
    lights = _rows(truth, kind="light")
    assert (lights["sky_path"] != "").all()
    row = lights.iloc[0]
    sky = truth.sky_e(row["path"])
    assert sky.shape == truth.sensor(row["camera"]).shape and sky.min() > 0
    assert (_rows(truth, kind="dark")["sky_path"] == "").all()
    with pytest.raises(KeyError):
        truth.sky_e(_rows(truth, kind="dark").iloc[0]["path"])


def test_load_truth_errors(tmp_path):
    with pytest.raises(ConfigError, match="no darkflow simulation"):
        load_truth(tmp_path)


# ---------------------------------------------------------------------- determinism
def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_identical_bytes_other_seed_differs(night, tmp_path):
    manifest, _ = night
    again = simulate_night(tmp_path / "again", "tiny", seed=SEED)
    assert _tree_bytes(manifest.out_dir) == _tree_bytes(again.out_dir)
    other = simulate_night(tmp_path / "other", "tiny", seed=SEED + 1)
    a, b = _tree_bytes(manifest.out_dir), _tree_bytes(other.out_dir)
    frames = [k for k in a if not k.startswith("_truth")]
    assert sum(a[k] != b.get(k) for k in frames) > 0.5 * len(frames)


def test_frames_do_not_depend_on_generation_order():
    plan = plan_night(PRESETS["tiny"], seed=SEED)
    picks = [plan.frames[i] for i in (0, 7, 20, 33, 40)]
    forward = [r.data for r in iter_rendered(plan, picks)]
    backward = [r.data for r in iter_rendered(plan, picks[::-1])][::-1]
    for a, b in zip(forward, backward, strict=True):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------- output directory
def test_refuses_a_foreign_non_empty_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        simulate_night(tmp_path, "tiny", seed=SEED)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    file_out = tmp_path / "keep.txt"
    with pytest.raises(ConfigError, match="not a directory"):
        simulate_night(file_out, "tiny")


def test_previous_simulation_needs_overwrite(tmp_path):
    spec = PRESETS["tiny"].replace(sessions=PRESETS["tiny"].sessions[:1])
    first = simulate_night(tmp_path, spec, seed=SEED)
    before = {p: p.read_bytes() for p in first.paths}
    with pytest.raises(ConfigError, match="overwrite"):
        simulate_night(tmp_path, spec, seed=SEED)
    assert all(p.read_bytes() == b for p, b in before.items())  # refused: nothing touched
    second = simulate_night(
        tmp_path, spec.replace(date="2026-11-24"), seed=SEED + 1, overwrite=True
    )
    assert load_truth(tmp_path).manifest["seed"] == SEED + 1
    assert not any(p.exists() for p in first.paths)  # the old night was removed
    on_disk = {p for p in tmp_path.rglob("*.fits")} | {p for p in tmp_path.rglob("*.fit")}
    assert {p for p in on_disk if "_truth" not in p.parts} == set(second.paths)
    assert not (tmp_path / "2026-11-23").exists()


def test_overrides(tmp_path):
    spec = PRESETS["tiny"].replace(sessions=PRESETS["tiny"].sessions[4:5])
    out = simulate_night(tmp_path, spec, shape=(24, 40), write_sky_truth=False)
    assert read_image(out.paths[0])[0].shape == (24, 40)
    assert not list((tmp_path / "_truth").rglob("sky"))
    with pytest.raises(ConfigError, match="unknown override"):
        simulate_night(tmp_path / "x", spec, colour="red")
    with pytest.raises(ConfigError, match="unknown preset"):
        simulate_night(tmp_path / "y", "nope")


def test_binned_block_and_invalid_specs(tmp_path):
    base = PRESETS["tiny"].sessions[4]
    binned = base.replace(blocks=(Block("dark", 30.0, 2, xbin=2),), broken=(), quirks=())
    out = simulate_night(tmp_path, PRESETS["tiny"].replace(sessions=(binned,)), seed=SEED)
    data, h = read_image(out.paths[0])
    assert data.shape == (24, 32) and h["XBINNING"] == 2
    with pytest.raises(ConfigError, match="unknown program"):
        base.replace(program="photoshop")
    with pytest.raises(ConfigError, match="kind"):
        Block("science", 1.0, 1)
    with pytest.raises(ConfigError, match="does not exist"):
        base.replace(broken=(BrokenFrame(9, 0, Breakage.TRUNCATED),))
    with pytest.raises(ConfigError, match="not among"):
        PRESETS["tiny"].replace(sessions=(base.replace(camera="hasselblad"),))
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        PRESETS["tiny"].replace(date="23/11/2026")


# ---------------------------------------------------------------------- faults hook
def test_fault_hook_is_applied_per_frame(tmp_path):
    base = PRESETS["tiny"].sessions[0].replace(broken=())
    faulty = base.replace(faults=(TemperatureOffset(delta_c=8.0), LightLeak(e_per_s=50.0)))
    spec = PRESETS["tiny"].replace(sessions=(faulty,))
    simulate_night(tmp_path, spec, seed=SEED)
    truth = load_truth(tmp_path)
    plan = plan_night(spec.replace(sessions=(base,)), SEED).frames
    clean = {(f.block, f.index): f for f in plan}
    darks = _rows(truth, kind="dark")
    assert (darks["faults"] == "temperature_offset;light_leak").all()
    assert (_rows(truth, kind="light")["faults"] == "").all()
    for _, row in darks.iterrows():
        ref = clean[(row["block"], row["index"])]
        assert row["true_temp_c"] == pytest.approx(ref.true_temp_c + 8.0, abs=1e-3)
        assert row["measured_temp_c"] == pytest.approx(ref.measured_temp_c + 8.0, abs=1e-6)
    row = darks.iloc[0]
    data = read_image(tmp_path / row["path"])[0].astype(float)
    dark = truth.true_dark_adu(row["camera"], row["exptime_s"], row["true_temp_c"])
    leak_adu = 50.0 * row["exptime_s"] / truth.sensor(row["camera"]).egain_e_per_adu
    assert np.median(data - dark) == pytest.approx(leak_adu, rel=0.1)


# ---------------------------------------------------------------------- CLI
def test_cli_main(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main([str(out), "--preset", "tiny", "--seed", "3", "--no-sky-truth"]) == 0
    printed = capsys.readouterr().out
    assert "tiny" in printed and "Ground truth" in printed and "ekos_canon6d" in printed
    assert load_truth(out).manifest["n_files"] == int(re.search(r"(\d+) files in", printed)[1])
    assert load_truth(out).manifest["seed"] == 3
    assert main([str(out), "--preset", "tiny", "-q"]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert main([str(out), "--preset", "tiny", "-q", "--overwrite"]) == 0
    with pytest.raises(SystemExit):
        main([str(out), "--preset", "nope"])
