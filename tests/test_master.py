"""combine_files / combine_arrays: determinism, accuracy vs truth, bad input, round trip."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from helpers.darks import PLANE_ATTRS, header, planes_bytes, write_darks, write_u16
from helpers.threads import numba_threads, thread_counts

from darkflow.config import MASTER_PLANE_KEYS, CombineConfig, OutputConfig
from darkflow.exceptions import (
    ArtifactCorruptError,
    FitsReadError,
    IncompatibleFramesError,
    InsufficientFramesError,
)
from darkflow.master import combine_arrays, combine_files, read_master, write_master
from darkflow.model import FrameMeta, FrameType


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    return write_darks(tmp_path_factory.mktemp("darks"), n=9, shape=(37, 41), seed=3)


def test_bytes_identical_for_any_band_height_and_thread_count(darks):
    ref = planes_bytes(combine_files(darks.paths))
    for threads in thread_counts():
        with numba_threads(threads):
            for rows in (1, 4, 13, 37):
                assert planes_bytes(combine_files(darks.paths, band_rows=rows)) == ref
    tiny = CombineConfig(memory_limit="20kB")  # budget-driven band height, 1-row bands
    assert planes_bytes(combine_files(darks.paths, config=tiny)) == ref


def test_rejects_cosmics_keeps_hot_pixels_flags_saturation(darks):
    m = combine_files(darks.paths)
    n = len(darks.paths)
    for _k, y, x in darks.cosmics:
        assert m.n_high[y, x] >= 1
        assert abs(m.data[y, x] - darks.truth[y, x]) < 6 * 3.0 / np.sqrt(n - 1)
        assert m.hot_persistence[y, x] == pytest.approx(1 / n)
    for y, x in darks.hot:  # shot noise is part of the model: at most a 3-sigma fluke is clipped
        assert m.n_used[y, x] >= n - 1 and m.hot_persistence[y, x] == 1.0
        assert abs(m.data[y, x] - darks.truth[y, x]) < 5 * np.sqrt(
            darks.truth[y, x] - 500 + 9
        ) / np.sqrt(n)
    (ys, xs) = darks.saturated[0]
    assert m.saturated[ys, xs] and m.n_used[ys, xs] == n and m.data[ys, xs] == 65535.0
    assert m.saturated.sum() == 1
    clean = np.ones(m.shape, bool)
    for y, x in [*darks.hot, *darks.saturated] + [(y, x) for _, y, x in darks.cosmics]:
        clean[y, x] = False
    floor = np.sqrt((9.0 + (darks.truth - 500.0) + 1 / 12) / n)  # read + shot + quantisation
    z = ((m.data - darks.truth) / floor)[clean]
    assert abs(np.median(z)) < 0.2 and 0.8 < np.std(z) < 1.3  # at the statistical floor
    assert m.stats["n_saturated"] == 1 and m.stats["n_hot_stable"] >= len(darks.hot)
    assert m.meta.frame_kind == FrameType.DARK and m.meta.n_frames == n
    assert m.meta.exptime_s == 60.0 and m.meta.temp_c == pytest.approx(-10 + 0.05 * 4)
    assert m.meta.egain_e_per_adu == 1.0 and m.meta.includes_bias


def test_noise_scale_without_gain_still_keeps_hot_pixels(tmp_path):
    hdrs = [header(egain=None) for _ in range(7)]
    ds = write_darks(tmp_path, n=7, seed=5, headers=hdrs, hot_level=20000.0)
    m = combine_files(ds.paths)
    assert m.provenance["noise"]["scale"] == "noise+mad"
    for y, x in ds.hot:
        assert m.n_used[y, x] >= 6
    for _, y, x in ds.cosmics:
        assert m.n_high[y, x] >= 1


def test_arrays_and_files_give_identical_bytes(darks):
    a = combine_arrays(darks.frames.astype(np.uint16), egain=1.0)
    f = combine_files(darks.paths)
    assert planes_bytes(a) == planes_bytes(f)
    frames = darks.frames.copy()
    combine_arrays(list(frames), band_rows=3)
    np.testing.assert_array_equal(frames, darks.frames)  # inputs untouched


def test_nan_and_inf_are_ignored(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.normal(100.0, 2.0, (5, 8, 9)).astype(np.float32)
    frames[0, 1, 1] = np.nan
    frames[2, 1, 1] = np.inf
    frames[:, 2, 2] = np.nan
    paths = []
    for k, f in enumerate(frames):
        p = tmp_path / f"f{k}.fits"
        fits.PrimaryHDU(f, header()).writeto(p)
        paths.append(p)
    m = combine_files(paths)
    assert m.n_used[1, 1] + m.n_low[1, 1] + m.n_high[1, 1] == 3
    assert np.isfinite(m.data[1, 1]) and np.isfinite(m.uncertainty[1, 1])
    assert np.isnan(m.data[2, 2]) and m.n_used[2, 2] == 0 and m.stats["n_empty"] == 1
    assert m.saturated is None  # float data: no saturation level known
    assert np.isfinite(m.data[~np.isnan(m.data)]).all()


@pytest.mark.parametrize(
    "change,what",
    [
        ({"xbin": 2, "ybin": 2}, "binning"),
        ({"gain": 200}, "gain_setting"),
        ({"exptime": 120.0}, "exptime_s"),
        ({"readoutm": "Fast"}, "readout_mode"),
    ],
)
def test_incompatible_frames_are_named(tmp_path, change, what):
    hdrs = [header() for _ in range(4)]
    odd = header(
        **{k: v for k, v in change.items() if k != "exptime"}, exptime=change.get("exptime", 60.0)
    )
    hdrs[2] = odd
    ds = write_darks(tmp_path, n=4, seed=1, headers=hdrs)
    with pytest.raises(IncompatibleFramesError, match=what) as info:
        combine_files(ds.paths)
    assert [p for p, _ in info.value.odd_frames] == [str(ds.paths[2])]


def test_shape_mismatch_is_refused_and_a_mixed_dtype_set_is_converted(tmp_path):
    ds = write_darks(tmp_path, n=4, seed=2)
    other = write_u16(tmp_path / "small.fits", np.zeros((10, 10)))
    with pytest.raises(IncompatibleFramesError, match="shape") as info:
        combine_files([*ds.paths, other])
    assert info.value.odd_frames[0][0] == str(other)
    f32 = tmp_path / "f32.fits"
    fits.PrimaryHDU(ds.frames[0].astype(np.float32), header()).writeto(f32)
    # the same values saved as float32 by another program: read in the working dtype, the
    # master is the one of the all-uint16 set, bit for bit
    mixed = combine_files([f32, *ds.paths[1:]], allow_few=True)
    plain = combine_files(list(ds.paths), allow_few=True)
    assert np.array_equal(mixed.data, plain.data)
    assert np.array_equal(mixed.uncertainty, plain.uncertainty)
    bias = tmp_path / "bias.fits"
    write_u16(bias, ds.frames[0], header(imagetyp="Bias Frame", exptime=0.0))
    with pytest.raises(IncompatibleFramesError):
        combine_files([*ds.paths, bias])


def test_too_few_frames_and_allow_few(darks):
    with pytest.raises(InsufficientFramesError, match="at least 3"):
        combine_files(darks.paths[:2])
    m = combine_files(darks.paths[:1], allow_few=True)
    np.testing.assert_array_equal(m.data, darks.frames[0].astype(np.float32))
    assert (m.n_used == 1).all()
    with pytest.raises(InsufficientFramesError):
        combine_files([], allow_few=True)


def test_unreadable_frame_raises_or_is_skipped(darks, tmp_path):
    bad = tmp_path / "cut.fits"
    bad.write_bytes(darks.paths[0].read_bytes()[:5000])
    with pytest.raises(FitsReadError, match="truncated") as info:
        combine_files([*darks.paths[:4], bad])
    assert info.value.path == str(bad)
    m = combine_files([*darks.paths[:4], bad], skip_unreadable=True)
    assert m.meta.n_frames == 4 and m.provenance["rejected"][0]["path"] == str(bad)


def test_metas_are_used_when_given(darks):
    metas = [
        FrameMeta(
            path=str(p),
            frame_type=FrameType.DARK,
            exptime_s=30.0,
            ccd_temp_c=-5.0,
            egain_e_per_adu=1.0,
            instrument="Given",
            shape=(37, 41),
            dtype="uint16",
        )
        for p in darks.paths
    ]
    m = combine_files(darks.paths, metas=metas)
    assert m.meta.exptime_s == 30.0 and m.meta.temp_c == -5.0 and m.meta.instrument == "Given"
    metas[1] = metas[1].replace(gain_setting=300.0)
    with pytest.raises(IncompatibleFramesError, match="gain_setting"):
        combine_files(darks.paths, metas=metas)


def test_bias_frames_make_a_bias_master(tmp_path):
    hdrs = [header(imagetyp="Bias Frame", exptime=0.0) for _ in range(5)]
    ds = write_darks(tmp_path, n=5, dark=0.0, n_hot=0, headers=hdrs)
    m = combine_files(ds.paths)
    assert m.meta.frame_kind == FrameType.BIAS and m.meta.exptime_s == 0.0


def test_progress_reports_rows(darks):
    calls = []
    combine_files(
        darks.paths, band_rows=10, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(10, 37), (20, 37), (30, 37), (37, 37)]


def test_write_read_round_trip(darks, tmp_path):
    m = combine_files(darks.paths)
    full = OutputConfig(**dict.fromkeys(MASTER_PLANE_KEYS, "full"))
    path = write_master(m, tmp_path / "sub" / "master.fits", output=full)
    assert [p.name for p in path.parent.iterdir()] == ["master.fits"]  # no temporaries left
    r = read_master(path)
    written = {k: v for k, v in m.provenance.items() if k != "execution"}  # how it ran: not saved
    planes = r.provenance.pop("planes")
    assert planes == dict.fromkeys(MASTER_PLANE_KEYS, "full")
    assert r.meta == m.meta and r.stats == m.stats and r.provenance == written
    assert "execution" in m.provenance and "band_rows" in m.provenance["execution"]
    for attr in PLANE_ATTRS:
        np.testing.assert_array_equal(getattr(r, attr), getattr(m, attr), strict=True)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == [
            "PRIMARY",
            "UNCERT",
            "NUSED",
            "NLOW",
            "NHIGH",
            "HOTPERS",
            "SATUR",
        ]
        h = hdul[0].header
        assert h["NCOMBINE"] == 9 and h["EXPTIME"] == 60.0 and h["IMAGETYP"] == "Master Dark"
        assert h["DFIN0001"] == darks.paths[0].name and h["CLIPSCAL"] == "noise"
        assert h["DFALGO"] and h["DFVERS"] and "combine: 9 frames" in str(h["HISTORY"])
        assert hdul[0].data.dtype.name.endswith("float32") and hdul["NUSED"].data.dtype == np.uint16


def test_read_master_cached_reads_once_and_again_after_a_rewrite(darks, tmp_path):
    from darkflow.master import forget_masters, read_master_cached, read_master_hashed

    forget_masters()
    path = write_master(combine_files(darks.paths), tmp_path / "master.fits")
    digest = read_master_hashed(path)[1]
    first = read_master_cached(path, content_hash=digest)
    assert read_master_cached(path, content_hash=digest) is first
    assert read_master_cached(path) is not first  # kept under the hash it was verified against
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[:-2880] + bytes(2880))  # another file (inode, bytes) at the same path
    with pytest.raises(ArtifactCorruptError):
        read_master_cached(path, content_hash=digest)
    forget_masters()


def test_read_master_rejects_other_files(tmp_path):
    plain = write_u16(tmp_path / "x.fits", np.zeros((4, 4)))
    with pytest.raises(FitsReadError, match="not a darkflow master"):
        read_master(plain)
    with pytest.raises(FitsReadError, match="not found"):
        read_master(tmp_path / "missing.fits")


def test_compressed_and_wide_inputs_give_the_same_master(darks, tmp_path):
    """gzip, tile-compressed and 32-bit copies of the frames go through the decoding readers."""
    import gzip
    import shutil

    ref = combine_files(darks.paths[:5])
    gz, fz, i32 = [], [], []
    for k, p in enumerate(darks.paths[:5]):
        gz.append(tmp_path / f"f{k}.fits.gz")
        with open(p, "rb") as fi, gzip.open(gz[-1], "wb") as fo:
            shutil.copyfileobj(fi, fo)
        data, hdr = fits.getdata(p, header=True)
        fz.append(tmp_path / f"f{k}.fits.fz")
        fits.HDUList([fits.PrimaryHDU(header=hdr), fits.CompImageHDU(data)]).writeto(fz[-1])
        i32.append(tmp_path / f"f{k}_i32.fits")
        fits.PrimaryHDU(data.astype(np.int32), hdr).writeto(i32[-1])
    for paths in (gz, fz):
        got = combine_files(paths, band_rows=7)
        assert planes_bytes(got) == planes_bytes(ref)
    wide = combine_files(i32, band_rows=7)  # float64 path: same values, same clipping
    for attr in ("n_used", "n_low", "n_high", "hot_persistence"):
        np.testing.assert_array_equal(getattr(wide, attr), getattr(ref, attr))
    np.testing.assert_array_equal(wide.data, ref.data)


@pytest.mark.slow
def test_large_frames_bytes_identical_across_bands_and_threads(tmp_path):
    ds = write_darks(tmp_path, n=12, shape=(700, 1100), seed=21, n_cosmics=400)
    ref = planes_bytes(combine_files(ds.paths))
    for threads in thread_counts():
        with numba_threads(threads):
            for rows in (1, 33, 256):
                assert planes_bytes(combine_files(ds.paths, band_rows=rows)) == ref


def test_one_egain_rule_for_a_master_and_its_plan(darks):
    """The combine and the pipeline's plan take a master's e-/ADU from the same rule: the first
    known value when all known values agree within the combine's tolerance, else none."""
    from darkflow.master._frames import frames_egain, master_meta
    from darkflow.pipeline.sets import FrameSet, provisional_meta

    def meta(i, egain):
        return FrameMeta(
            path=f"/d/{i}.fits",
            frame_type=FrameType.DARK,
            exptime_s=30.0,
            ccd_temp_c=-5.0 + 0.1 * i,
            egain_e_per_adu=egain,
            instrument="cam",
            shape=(37, 41),
        )

    assert frames_egain([meta(0, 1.0), meta(1, 1.0004)]) == 1.0  # within 1e-3: the first
    assert frames_egain([meta(0, 1.0), meta(1, 1.01)]) is None  # no one gain
    assert frames_egain([meta(0, None), meta(1, 0.8)]) == 0.8  # unknown ones do not vote
    assert frames_egain([meta(0, None)]) is None
    metas = tuple(meta(i, 1.0 + 1e-4 * i) for i in range(4))
    fset = FrameSet(FrameType.DARK, metas[0].config_signature, "cam", "n1", 30.0, -5.0, metas)
    assert provisional_meta(fset) == master_meta(metas, FrameType.DARK)
    assert provisional_meta(fset).egain_e_per_adu == 1.0
    files = [meta(i, 1.0 + 1e-4 * i).replace(path=str(p)) for i, p in enumerate(darks.paths)]
    assert combine_files(darks.paths, metas=files).meta.egain_e_per_adu == 1.0
