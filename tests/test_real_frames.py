"""The real-frame test bed (benchmarks/realdata.py, realscores.py): sets, extraction, layout, scores.

The scores and the extraction are checked on synthetic cases (always run); the extracted public
frames are checked when the cache exists (``$DARKFLOW_REAL_DATA`` or ``~/.cache/darkflow/real``,
filled by ``python benchmarks/realdata.py extract``), and skipped with that hint otherwise.
The issue's targets for darkflow's verdicts on these frames are not asserted here.
"""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits


def _bench_module(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


rd = _bench_module("realdata")
sc = _bench_module("realscores")


def _fits_bytes(data: np.ndarray, **cards) -> bytes:
    """16-bit unsigned frame as a capture program writes it (BZERO 32768)."""
    hdu = fits.PrimaryHDU(data.astype(np.uint16))  # stored as int16 + BZERO 32768
    for key, value in cards.items():
        hdu.header[key.replace("_", "-")] = value
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


# ----------------------------------------------------------------------------- set descriptions
@pytest.mark.parametrize("name", sorted(rd.SETS))
def test_set_descriptions_are_consistent(name):
    rs = rd.SETS[name]
    assert rs.source in rd.SOURCES
    paths = [f.rel_path for f in rs.frames]
    assert len(paths) == len(set(paths)), "two frames land on the same path"
    answers = {f.file_name for f in rs.by_role(rd.Role.ANSWER)}
    for f in rs.frames:
        assert f.role is rd.Role.LIGHT or not (f.exact_dark or f.truth_zero or f.answer)
        assert (f.role is rd.Role.ANSWER) == (f.folder == "")
        assert not f.relabel or f.truth_zero, "a relabelled dark is a light of zero truth"
        assert f.role is rd.Role.LIGHT or not (f.precalibrated or f.no_dark_signal)
        if f.answer:
            assert f.answer in answers
        if f.implied:
            assert f.role is rd.Role.DARK and rs.pedestal > 0
    assert rs.lights, "every set has lights to judge"


def test_every_light_with_an_answer_or_exact_dark_is_countable():
    lights = [f for rs in rd.SETS.values() for f in rs.lights]
    assert sum(f.exact_dark for f in lights) >= 20
    assert sum(f.truth_zero for f in lights) >= 25
    assert sum(bool(f.answer) for f in lights) == 2


# ----------------------------------------------------------------------------- derived frames
def test_edit_header_keeps_data_bytes_and_other_cards():
    rng = np.random.default_rng(0)
    data = rng.integers(900, 1100, size=(20, 30))
    blob = _fits_bytes(data, IMAGETYP="Dark Frame", EXPTIME=60.0, CCD_TEMP=-5.2)
    out = rd.edit_header(blob, {"IMAGETYP": "Light Frame"}, ["realdata: a test"])
    assert out[rd.data_offset(out) :] == blob[rd.data_offset(blob) :]
    with fits.open(io.BytesIO(out)) as hdul:
        h = hdul[0].header
        assert h["IMAGETYP"] == "Light Frame"
        assert h["EXPTIME"] == 60.0 and h["CCD-TEMP"] == -5.2
        assert "realdata: a test" in str(h["HISTORY"])
        assert np.array_equal(hdul[0].data, data)
    assert "darkflow" not in out[: rd.data_offset(out)].decode().lower()  # not "calibrated"


def test_edit_header_grows_the_header_by_a_block_when_full():
    blob = _fits_bytes(np.zeros((4, 4)), IMAGETYP="Dark Frame")
    end = rd.header_end(blob)
    free = (rd.data_offset(blob) - end) // 80 - 1
    out = rd.edit_header(blob, {}, [f"line {i}" for i in range(free + 3)])
    assert rd.data_offset(out) == rd.data_offset(blob) + 2880
    with fits.open(io.BytesIO(out)) as hdul:
        assert len(hdul[0].header["HISTORY"]) == free + 3
        assert np.array_equal(hdul[0].data, np.zeros((4, 4)))


def test_implied_dark_is_raw_minus_copy_plus_pedestal():
    rng = np.random.default_rng(1)
    dark = rng.integers(8000, 8400, size=(10, 12))
    signal = rng.integers(0, 5000, size=(10, 12))
    raw = _fits_bytes(dark + signal, IMAGETYP="Light Frame", EXPTIME=5.0)
    auto = _fits_bytes(signal + 100, IMAGETYP="Light Frame", EXPTIME=5.0)
    out = rd.implied_dark(raw, auto, 100.0)
    with fits.open(io.BytesIO(out)) as hdul:
        assert hdul[0].header["IMAGETYP"] == "Dark Frame"
        assert hdul[0].header["EXPTIME"] == 5.0
        assert np.array_equal(hdul[0].data, dark)
    clipped = _fits_bytes(np.maximum(signal - 2000, 0), IMAGETYP="Light Frame")
    with pytest.raises(ValueError, match="clipped"):
        rd.implied_dark(raw, clipped, 100.0)


def test_git_blob_id_is_gits():
    if shutil.which("git") is None:
        pytest.skip("needs git")
    data = b"SIMPLE  =                    T\x00\x01"
    out = subprocess.run(
        ["git", "hash-object", "--stdin"], input=data, capture_output=True, check=True
    )
    assert rd.git_blob_id(data) == out.stdout.decode().strip()


# ----------------------------------------------------------------------------- extraction
@pytest.fixture()
def snapshot(tmp_path):
    """A tiny 'fetched snapshot': a bare-like git directory with three frames at one commit."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    work = tmp_path / "clone"
    (work / "data").mkdir(parents=True)
    rng = np.random.default_rng(2)
    frames = {
        "bias.FIT": _fits_bytes(rng.integers(990, 1010, (8, 8)), IMAGETYP="Bias Frame"),
        "dark1.FIT": _fits_bytes(rng.integers(1000, 1100, (8, 8)), IMAGETYP="Dark Frame"),
        "dark2.FIT": _fits_bytes(rng.integers(1000, 1100, (8, 8)), IMAGETYP="Dark Frame"),
    }
    for name, blob in frames.items():
        (work / "data" / name).write_bytes(blob)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "frames"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    mirrors = tmp_path / "mirrors"
    (mirrors / "someone+frames").mkdir(parents=True)
    shutil.move(work, mirrors / "someone+frames" / "repo")
    source = rd.Source("someone/frames", commit.stdout.strip())
    rs = rd.RealSet(
        "toy",
        "toy",
        "data",
        "toy camera",
        "toy set",
        (
            rd.Frame("bias.FIT", rd.Role.BIAS, "2020-01-01"),
            rd.Frame("dark1.FIT", rd.Role.DARK, "2020-01-01"),
            rd.Frame(
                "dark2.FIT",
                rd.Role.LIGHT,
                "2020-01-01",
                relabel="Light Frame",
                exact_dark=True,
                truth_zero=True,
            ),
        ),
    )
    return rs, source, mirrors, frames


def test_extraction_lays_out_verifies_and_detects_damage(snapshot, tmp_path):
    rs, source, mirrors, frames = snapshot
    git_dir = rd.find_snapshot(source, [mirrors])
    cache = tmp_path / "cache"
    root = rd.extract_set(rs, git_dir, cache, source=source)
    assert root == cache / "sets" / "toy"
    assert (root / "input/2020-01-01/bias.FIT").read_bytes() == frames["bias.FIT"]
    light = (root / "input/2020-01-01/dark2.FIT").read_bytes()
    assert fits.getheader(io.BytesIO(light))["IMAGETYP"] == "Light Frame"
    assert (
        light[rd.data_offset(light) :] == frames["dark2.FIT"][rd.data_offset(frames["dark2.FIT"]) :]
    )
    manifest = rd.load_manifest(rs, cache)
    entry = {e["path"]: e for e in manifest["files"]}["input/2020-01-01/bias.FIT"]
    assert entry["sha256"] == rd.sha256(frames["bias.FIT"])
    assert entry["blob"] == rd.git_blob_id(frames["bias.FIT"])
    assert rd.verify_set(rs, cache) == []

    (root / "input/2020-01-01/bias.FIT").write_bytes(b"damaged")
    (root / "input/2020-01-01/stray.fits").write_bytes(b"x")
    problems = rd.verify_set(rs, cache)
    assert any("bias.FIT: sha256" in p for p in problems)
    assert any("stray.fits: not part of the set" in p for p in problems)
    rd.extract_set(rs, git_dir, cache, source=source)  # a fresh extraction repairs both
    assert rd.verify_set(rs, cache) == []


def test_missing_snapshot_says_which_fetch_to_run(tmp_path):
    source = rd.Source("someone/absent", "0" * 40)
    with pytest.raises(rd.MissingSnapshot, match=r"fetch github:someone/absent"):
        rd.find_snapshot(source, [tmp_path])


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(rd.ENV_CACHE, str(tmp_path))
    assert rd.cache_root() == tmp_path
    assert rd.cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(rd.ENV_CACHE)
    assert rd.cache_root() == rd.DEFAULT_CACHE.expanduser()


# ----------------------------------------------------------------------------- scores
def _dark_stack(rng, n=6, shape=(64, 64), hot=((10, 10), (20, 30), (40, 50))):
    frames = []
    for _ in range(n):
        frame = 1000.0 + rng.normal(0.0, 5.0, shape)
        for y, x in hot:
            frame[y, x] += 400.0
        frames.append(frame)
    return frames


def test_stable_hot_pixels_need_every_frame():
    rng = np.random.default_rng(3)
    darks = _dark_stack(rng)
    darks[2][33, 33] += 5000.0  # a cosmic ray in one frame only
    darks[0][1, 1] += 5000.0  # a hot pixel on the border
    hot = sc.stable_hot_pixels(darks)
    assert {tuple(p) for p in np.argwhere(hot)} == {(10, 10), (20, 30), (40, 50)}


def test_hot_pixel_residual_measures_what_is_left():
    rng = np.random.default_rng(4)
    hot = np.zeros((64, 64), bool)
    hot[[10, 20, 40], [10, 30, 50]] = True
    flat = np.full((64, 64), 500.0)
    exact = sc.hot_pixel_residual(flat, hot)
    assert exact.rms == 0.0 and exact.median == 0.0 and exact.n == 3
    left = flat.copy()
    left[10, 10] += 30.0  # under-subtracted
    left[20, 30] -= 40.0  # over-subtracted
    r = sc.hot_pixel_residual(left, hot)
    assert r.rms == pytest.approx(np.sqrt((30.0**2 + 40.0**2) / 3))
    assert r.median == 0.0 and r.p90 == pytest.approx(np.percentile([30, 40, 0], 90))
    noisy = flat + rng.normal(0.0, 1.0, flat.shape)  # a gradient and noise are not residual
    noisy += np.linspace(0.0, 50.0, 64)[None, :]
    assert sc.hot_pixel_residual(noisy, hot).rms < 3.0
    assert sc.hot_pixel_residual(flat, np.zeros_like(hot)).n == 0


def test_quiet_and_scored_pixels_drop_stars_and_saturation():
    rng = np.random.default_rng(5)
    raw = 1000.0 + rng.normal(0.0, 5.0, (64, 64))
    hot = np.zeros_like(raw, bool)
    hot[[10, 30, 50], [10, 30, 50]] = True
    raw[hot] += 300.0
    raw[29:32, 31:34] += 5000.0  # a star right beside the hot pixel (30, 30)
    raw[50, 50] = 65535.0  # saturated in the light
    quiet = sc.quiet_pixels(raw, hot)
    assert quiet[10, 10] and not quiet[30, 30]
    scored = sc.scored_hot_pixels(hot, raw)
    assert {tuple(p) for p in np.argwhere(scored)} == {(10, 10)}


def test_background_noise_scales_with_the_noise_and_ignores_the_scene():
    rng = np.random.default_rng(6)
    base = rng.normal(0.0, 1.0, (200, 200))
    one, three = sc.background_noise(1000.0 + base), sc.background_noise(1000.0 + 3 * base)
    assert three / one == pytest.approx(3.0, rel=1e-5)
    assert 1.0 < one < 1.2  # the neighbour median adds ~6% (the same for every tool)
    scene = 1000.0 + np.linspace(0.0, 100.0, 200)[None, :] + np.linspace(0.0, 50.0, 200)[:, None]
    assert sc.background_noise(scene + 3 * base) == pytest.approx(three, rel=0.05)


def test_dark_signal_fraction_tells_raw_from_dark_subtracted_lights():
    rng = np.random.default_rng(8)
    darks = _dark_stack(rng, hot=[(y, x) for y in range(5, 60, 9) for x in range(4, 60, 11)])
    stable = sc.stable_hot_pixels(darks)
    expected = sc.excess(np.mean(darks, axis=0)) * 0.5  # a light of half the darks' exposure
    sky = 3000.0 + rng.normal(0.0, 5.0, (64, 64))
    raw = sky + 200.0 * stable  # half of the darks' 400 ADU
    assert sc.dark_signal_fraction(raw, expected, stable) == pytest.approx(1.0, abs=0.05)
    assert sc.dark_signal_fraction(sky, expected, stable) == pytest.approx(0.0, abs=0.05)
    assert np.isnan(sc.dark_signal_fraction(sky, expected, np.zeros_like(stable)))


def test_answer_key_difference_with_pedestal_clipping_and_saturation():
    rng = np.random.default_rng(7)
    truth = rng.normal(50.0, 10.0, (40, 40))
    key = truth + 100.0  # the capture program's copy: pedestal 100
    key[0, :5] = 0.0  # clipped in the copy: not informative
    raw = np.full_like(truth, 9000.0)
    raw[1, :3] = 65535.0  # saturated in the raw light
    image = truth + 0.5
    image[0, :5] = -1e4  # whatever a tool did where the key is clipped does not count
    image[1, :3] = 1e4
    d = sc.answer_key_difference(image, key, pedestal=100.0, raw=raw)
    assert d.median == pytest.approx(0.5) and d.rms == pytest.approx(0.5)
    assert d.n == 40 * 40 - 5 - 3
    assert sc.answer_key_difference(truth, key, pedestal=100.0).rms == pytest.approx(0.0, abs=1e-9)
    same = sc.image_difference(image, image)
    assert same.median == 0.0 and same.rms == 0.0 and same.n == image.size


# ----------------------------------------------------------------------------- the cache
def _extracted(name: str):
    rs = rd.SETS[name]
    if rd.load_manifest(rs) is None:
        pytest.skip(
            f"real frames not extracted under {rd.cache_root()}: set ${rd.ENV_CACHE} or run "
            "`python benchmarks/realdata.py extract` (needs the fetched snapshots: "
            + "; ".join(f"fetch github:{s.repo}" for s in rd.SOURCES.values())
            + ")"
        )
    return rs


@pytest.mark.parametrize("name", sorted(rd.SETS))
def test_cached_layout_matches_the_description(name):
    rs = _extracted(name)
    manifest = rd.load_manifest(rs)
    assert manifest["commit"] == rd.SOURCES[rs.source].commit
    files = {e["path"]: e for e in manifest["files"]}
    assert set(files) == {f.rel_path for f in rs.frames}
    root = rd.set_dir(rs)
    for f in rs.frames:
        path = root / f.rel_path
        assert path.stat().st_size == files[f.rel_path]["size"]
        h = fits.getheader(path)
        if f.relabel:
            assert h["IMAGETYP"] == f.relabel
            assert "held-out dark" in str(h["HISTORY"])
        if f.role is rd.Role.BIAS:
            assert h["EXPTIME"] == 0.0
        if f.role is rd.Role.DARK:
            assert h["IMAGETYP"].startswith("Dark")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(rd.SETS))
def test_cached_files_have_their_sha256(name):
    rs = _extracted(name)
    assert rd.verify_set(rs) == []


@pytest.mark.parametrize("name", sorted(rd.SETS))
def test_darkflow_reads_the_layout_as_described(name):
    """Headers only: frame types, nights (from DATE-OBS) and the pre-calibrated frames."""
    from darkflow.ingest.catalog import scan

    rs = _extracted(name)
    root = rd.set_dir(rs)
    catalog = scan([root / "input"]).set_index("path")
    want = {
        rd.Role.BIAS: "bias",
        rd.Role.DARK: "dark",
        rd.Role.LIGHT: "light",
        rd.Role.FLAT: "flat",
    }
    for f in rs.frames:
        if f.role is rd.Role.ANSWER:
            continue
        row = catalog.loc[str(root / f.rel_path)]
        assert str(row["frame_type"]) == want[f.role], f.rel_path
        if f.folder != "library":
            assert row["night"] == f.folder, f.rel_path
        assert ("already_calibrated" in str(row["reasons"])) == f.precalibrated, f.rel_path


def test_the_file_names_that_lie_about_the_exposure():
    rs = _extracted("ast443-stl1001e")
    root = rd.set_dir(rs)
    for f in rs.frames:
        if "darks-expos1-" in f.src:
            assert fits.getheader(root / f.rel_path)["EXPTIME"] == 60.0


@pytest.mark.slow
def test_scores_on_a_real_held_out_dark():
    """The master of 8 real darks removes most of a held-out dark's hot-pixel signal."""
    rs = _extracted("ylo-stl1001e-holdout")
    root = rd.set_dir(rs)
    darks = [fits.getdata(root / f.rel_path).astype(float) for f in rs.by_role(rd.Role.DARK)]
    light = next(f for f in rs.lights if f.exact_dark)
    raw = fits.getdata(root / light.rel_path).astype(float)
    hot = sc.scored_hot_pixels(sc.stable_hot_pixels(darks), raw)
    assert hot.sum() > 1000
    calibrated = raw - np.mean(darks, axis=0)
    before, after = sc.hot_pixel_residual(raw, hot), sc.hot_pixel_residual(calibrated, hot)
    assert after.p90 < before.p90 / 5
    assert abs(np.median(calibrated)) < 2.0  # truth zero: no level left


@pytest.mark.slow
def test_the_lights_without_dark_signal_are_the_flagged_ones():
    """The 23 s flats of 2017-09-08 and the red flats hold none of the darks' hot pixels."""
    for name in ("ast443-stl1001e", "ast443-st402-spectra"):
        rs = _extracted(name)
        root = rd.set_dir(rs)
        darks = {}
        for f in rs.by_role(rd.Role.DARK):
            h = fits.getheader(root / f.rel_path)
            darks.setdefault(h["EXPTIME"], []).append(fits.getdata(root / f.rel_path).astype(float))
        t_ref = max(darks, key=lambda t: (len(darks[t]), t))
        stack = darks[t_ref]
        stable = sc.stable_hot_pixels(stack)
        ref = sc.excess(np.mean(stack, axis=0))
        for f in rs.lights:
            if f.precalibrated and not f.no_dark_signal:
                continue  # star and arc frames: too short to tell
            raw = fits.getdata(root / f.rel_path).astype(float)
            t = fits.getheader(root / f.rel_path)["EXPTIME"]
            hot = sc.scored_hot_pixels(stable, raw)
            frac = sc.dark_signal_fraction(raw, ref * t / t_ref, hot)
            assert (frac < 0.1) == f.no_dark_signal, (f.rel_path, frac)
