"""Band reader: every storage variant decodes like astropy; bad files give FitsReadError."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits

from darkflow.exceptions import FitsReadError, IncompatibleFramesError
from darkflow.io import bands
from darkflow.io.bands import BandReader, FrameSource, rows_for_budget


def astropy_data(path) -> np.ndarray:
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.data is not None and hdu.data.ndim == 2:
                return np.asarray(hdu.data, dtype=np.float64)
    raise AssertionError("no image")


def u16(seed=0, shape=(13, 17)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, shape).astype(np.uint16)


def write(path, data, *, ext=False, header=None):
    if ext:
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header)]).writeto(path)
    else:
        fits.PrimaryHDU(data, header).writeto(path)
    return path


def decoded(src: FrameSource, dtype=np.float64) -> np.ndarray:
    out = np.empty(src.shape, dtype)
    src.read_rows(0, src.shape[0], out)
    return out


@pytest.mark.parametrize("ext", [False, True])
def test_uint16_raw_and_decoded_match_astropy(tmp_path, ext):
    path = write(tmp_path / "a.fits", u16(), ext=ext)
    with FrameSource(path) as src:
        lay = src.layout
        assert (lay.shape, lay.bitpix, lay.bzero, lay.stored_dtype) == (
            (13, 17),
            16,
            32768.0,
            "uint16",
        )
        assert lay.hdu_index == (1 if ext else 0) and lay.raw16_params == (1.0, 32768.0, None)
        assert lay.saturation == 65535.0
        np.testing.assert_array_equal(decoded(src), astropy_data(path))
        raw = np.empty((5, 17), np.uint16)
        src.read_raw16(4, 9, raw)
        back = raw.view(">i2").astype(np.float64) + 32768.0
        np.testing.assert_array_equal(back, astropy_data(path)[4:9])


@pytest.mark.parametrize(
    "data",
    [
        np.array([[1.5, np.nan], [np.inf, -2.0]], np.float32),
        np.array([[1.5, -7.25], [1e300, -2.0]], np.float64),
        np.array([[70000, -5], [2**31 - 1, 0]], np.int32),
        np.array([[0, 255], [7, 9]], np.uint8),
    ],
    ids=["f32", "f64", "i32", "u8"],
)
def test_other_bitpix_match_astropy(tmp_path, data):
    path = write(tmp_path / "b.fits", data)
    with FrameSource(path) as src:
        got = decoded(src)
        assert src.layout.raw16_params is None
    np.testing.assert_array_equal(got, astropy_data(path))


def test_blank_and_bscale(tmp_path):
    data = np.array([[1, -32768], [5, 7]], np.int16)
    h = fits.Header()
    h["BLANK"] = -32768
    path = tmp_path / "c.fits"
    hdu = fits.PrimaryHDU(data, h)
    hdu.header["BSCALE"] = 2.0
    hdu.header["BZERO"] = 10.0
    hdu.writeto(path)
    # rewrite the raw integers (astropy would rescale the array on write)
    raw = bytearray(path.read_bytes())
    raw[2880 : 2880 + 8] = data.astype(">i2").tobytes()
    path.write_bytes(bytes(raw))
    with FrameSource(path) as src:
        got = decoded(src)
    assert np.isnan(got[0, 1])
    np.testing.assert_array_equal(got[[0, 1, 1], [0, 0, 1]], [12.0, 20.0, 24.0])


def test_gzip_and_tile_compressed(tmp_path):
    data = u16(1, (40, 23))
    plain = write(tmp_path / "p.fits", data)
    gz = tmp_path / "p.fits.gz"
    with open(plain, "rb") as fi, gzip.open(gz, "wb") as fo:
        shutil.copyfileobj(fi, fo)
    fz = tmp_path / "p.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, compression_type="RICE_1")]).writeto(
        fz
    )
    for path, kind in ((gz, "gzip"), (fz, "tile")):
        with FrameSource(path) as src:
            assert src.layout.compression == kind and src.shape == (40, 23)
            np.testing.assert_array_equal(decoded(src), data.astype(np.float64))
            part = np.empty((3, 23))
            src.read_rows(30, 33, part)  # forward
            src.read_rows(2, 5, part)  # backward: the gzip stream restarts
            np.testing.assert_array_equal(part, data[2:5])
    with BandReader([plain, gz, fz]) as reader:
        assert reader.raw16 is None  # compressed frames go through the decoded path
        rows = [r1 - r0 for r0, r1, _ in reader.bands(16)]
        assert rows == [16, 16, 8]


@pytest.mark.parametrize(
    "damage,match",
    [
        (lambda b: b[: len(b) - 3000], "truncated"),
        (lambda b: b[:1000], "truncated header"),
        (lambda b: b"NOT A FITS FILE".ljust(2880) + b[2880:], "not a FITS"),
        (lambda b: b[:2880].replace(b"END" + b" " * 77, b" " * 80) + b[2880:], "END|header"),
        (lambda b: b"", "empty"),
    ],
    ids=["data", "header", "magic", "no-end", "empty"],
)
def test_bad_files_name_the_file(tmp_path, damage, match):
    good = write(tmp_path / "g.fits", u16(2, (50, 60)))
    bad = tmp_path / "bad.fits"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(FitsReadError, match=match) as info:
        FrameSource(bad)
    assert info.value.path == str(bad) and str(bad) in str(info.value)


def test_missing_file_and_no_image(tmp_path):
    with pytest.raises(FitsReadError, match="not found"):
        FrameSource(tmp_path / "nope.fits")
    table = tmp_path / "t.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]
    ).writeto(table)
    with pytest.raises(FitsReadError, match="no image"):
        FrameSource(table)


def test_truncated_gzip_stream(tmp_path):
    plain = write(tmp_path / "p.fits", u16(3, (60, 70)))
    gz = tmp_path / "p.fits.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes())[:-4000])
    with pytest.raises(FitsReadError) as info:
        with FrameSource(gz) as src:
            decoded(src)
    assert str(gz) in str(info.value)


def test_band_reader_bands_cover_the_image_and_open_each_file_once(tmp_path, monkeypatch):
    datas = [u16(k, (23, 9)) for k in range(4)]
    paths = [write(tmp_path / f"f{k}.fits", d) for k, d in enumerate(datas)]
    opened = []
    real_open = open

    def counting_open(path, *a, **kw):
        opened.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(bands, "open", counting_open, raising=False)
    with BandReader(paths) as reader:
        assert reader.raw16 == (1.0, 32768.0, None) and reader.band_itemsize == 2
        got = np.zeros((4, 23, 9))
        for r0, r1, frames in reader.bands(5):  # memory-mapped in place, one array per frame
            assert [f.shape for f in frames] == [(r1 - r0, 9)] * 4
            assert all(f.dtype == np.uint16 and f.flags.c_contiguous for f in frames)
            got[:, r0:r1] = np.stack(frames).view(">i2").astype(np.float64) + 32768.0
        sample = reader.read_rows([20, 3])
    assert sorted(opened) == sorted(map(str, paths))  # one open per file for everything
    np.testing.assert_array_equal(got, np.stack(datas).astype(np.float64))
    np.testing.assert_array_equal(sample, np.stack(datas)[:, [3, 20]].astype(np.float32))


def test_band_reader_rejects_shape_mismatch(tmp_path):
    a = write(tmp_path / "a.fits", u16(0, (10, 10)))
    b = write(tmp_path / "b.fits", u16(1, (10, 10)))
    c = write(tmp_path / "c.fits", u16(2, (10, 12)))
    with pytest.raises(IncompatibleFramesError) as info:
        BandReader([a, b, c])
    assert [p for p, _ in info.value.odd_frames] == [str(c)]
    with pytest.raises(FitsReadError):
        BandReader([a, tmp_path / "missing.fits"])


def test_mixed_scaling_uses_decoded_floats(tmp_path):
    a = write(tmp_path / "a.fits", u16(0, (6, 7)))
    b = write(tmp_path / "b.fits", np.arange(42, dtype=np.float32).reshape(6, 7))
    with BandReader([a, b]) as reader:
        assert reader.raw16 is None and reader.work_dtype == np.float32
        ((_, _, stack),) = list(reader.bands(100))
        np.testing.assert_array_equal(stack[1], np.arange(42).reshape(6, 7))


def test_rows_for_budget():
    assert rows_for_budget(10_000, 2, 100, 4, 50) == 12
    assert rows_for_budget(1, 2, 100, 4, 50) == 1
    assert rows_for_budget(10**12, 2, 100, 4, 50) == 50


def test_a_file_is_scanned_once_until_it_changes(tmp_path, monkeypatch):
    """Opening a frame again (the hold-out assessment after the combine) reuses its layout;
    a file written anew at the same path is scanned again."""
    scans = []
    real = bands._scan_layout
    monkeypatch.setattr(bands, "_scan_layout", lambda *a: scans.append(a[1]) or real(*a))
    path = write(tmp_path / "a.fits", u16(1))
    with FrameSource(path) as first, FrameSource(path) as second:
        assert second.layout is first.layout
        np.testing.assert_array_equal(decoded(second), astropy_data(path))
    assert len(scans) == 1
    path.unlink()
    write(path, u16(2, shape=(7, 5)), ext=True)
    with FrameSource(path) as third:
        assert third.shape == (7, 5) and third.layout.hdu_index == 1
        np.testing.assert_array_equal(decoded(third), astropy_data(path))
    assert len(scans) == 2


def test_a_header_changed_in_place_is_scanned_again(tmp_path):
    """Same size, same path, written within the file system's clock tick: the fingerprint
    (first and last 64 KiB) tells the new header from the remembered one."""
    path = write(tmp_path / "a.fits", u16(3))
    with FrameSource(path) as first:
        assert first.layout.bzero == 32768
    raw = bytearray(path.read_bytes())
    at = raw.index(b"SIMPLE  =")
    raw[at : at + 9] = b"SIMPLX  ="
    with open(path, "r+b") as fh:
        fh.write(raw)
    with pytest.raises(FitsReadError, match="SIMPLE"):
        FrameSource(path)
