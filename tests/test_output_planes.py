"""[output]: master planes and light uncertainty written full, compressed or as header scalars."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from helpers.darks import write_darks

from darkflow.config import MASTER_PLANE_KEYS, Config, OutputConfig
from darkflow.exceptions import ConfigError, FitsReadError
from darkflow.io.fits import read_calibrated, write_calibrated
from darkflow.master import combine_files, read_master, write_master
from darkflow.subtract import read_variance, uncertainty_cards
from darkflow.subtract.gain import gain_from_dark_stack

LOSSLESS = ("n_used", "n_low", "n_high", "hot_persistence", "saturated")


def _all(mode: str) -> OutputConfig:
    return OutputConfig(**dict.fromkeys(MASTER_PLANE_KEYS, mode))


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    # hot pixels (persistence 1) and cosmic rays (persistence 1/n) in every plane
    lab = write_darks(tmp_path_factory.mktemp("darks"), n=12, shape=(150, 170), seed=11)
    return combine_files(lab.paths)


def test_output_config_is_validated():
    with pytest.raises(ConfigError, match=r"output\.uncertainty"):
        Config.from_dict({"output": {"uncertainty": "zip"}})
    with pytest.raises(ConfigError, match="quantize_level"):
        OutputConfig(quantize_level=0)
    assert Config().output.light_uncertainty == "scalar"
    assert set(Config().output.master_planes()) == set(MASTER_PLANE_KEYS)


def test_default_master_is_smaller_and_lossless_but_for_the_uncertainty(master, tmp_path):
    full = write_master(master, tmp_path / "full.fits", output=_all("full"))
    default = write_master(master, tmp_path / "default.fits")
    assert default.stat().st_size < 0.6 * full.stat().st_size
    r = read_master(default)
    assert r.provenance["planes"] == dict.fromkeys(MASTER_PLANE_KEYS, "compressed")
    np.testing.assert_array_equal(r.data, master.data, strict=True)  # always full
    for attr in LOSSLESS:
        np.testing.assert_array_equal(getattr(r, attr), getattr(master, attr), strict=True)
    # quantised: within a small fraction of the uncertainty's own statistical error
    # (1 / sqrt(2 (n - 1)) = 21% for 12 frames)
    u, v = master.uncertainty, r.uncertainty
    ok = np.isfinite(u) & (u > 0)
    rel = np.abs(v[ok] - u[ok]) / u[ok]
    assert np.median(rel) < 0.01 and np.percentile(rel, 99.9) < 0.1
    assert np.array_equal(np.isfinite(u), np.isfinite(v))
    # the same bytes every time (fixed dither seed)
    again = write_master(master, tmp_path / "again.fits")
    assert again.read_bytes() == default.read_bytes()
    # the names a FITS reader looks for are kept; ccdproc takes UNCERT as its uncertainty
    with fits.open(default) as hdul:
        assert [h.name for h in hdul] == [
            "PRIMARY",
            "UNCERT",
            "NUSED",
            "NLOW",
            "NHIGH",
            "HOTPERS",
            "SATUR",
        ]
        assert hdul[0].header["DFPLUNC"] == "compressed"
        assert isinstance(hdul["UNCERT"], fits.CompImageHDU)


def test_ccdproc_reads_the_compressed_uncertainty(master, tmp_path):
    ccdproc = pytest.importorskip("ccdproc")
    path = write_master(master, tmp_path / "m.fits")
    ccd = ccdproc.CCDData.read(path, unit="adu")
    np.testing.assert_array_equal(ccd.data, master.data)
    assert ccd.uncertainty is not None
    np.testing.assert_allclose(ccd.uncertainty.array, master.uncertainty, rtol=0.15)


def test_scalar_planes_are_rebuilt_and_say_so(master, tmp_path):
    full = write_master(master, tmp_path / "full.fits", output=_all("full"))
    path = write_master(master, tmp_path / "scalar.fits", output=_all("scalar"))
    assert path.stat().st_size < 0.25 * full.stat().st_size
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY"]
    r = read_master(path)
    assert r.provenance["planes"] == dict.fromkeys(MASTER_PLANE_KEYS, "scalar")
    for attr in ("uncertainty", "n_used", "n_low", "n_high", "hot_persistence"):
        assert getattr(r, attr).shape == master.data.shape
    # the read noise the noise model takes from a master is kept
    assert read_variance(r) == pytest.approx(read_variance(master), rel=0.02)
    assert np.median(r.n_used) == np.median(master.n_used)
    # stable hot pixels are found again from the master's level
    hot = master.hot_persistence >= 0.9
    assert np.count_nonzero(r.hot_persistence[hot] == 1.0) >= 0.9 * np.count_nonzero(hot)
    # a noise-model uncertainty cannot give a photon-transfer gain (it would be circular)
    assert gain_from_dark_stack(r) is None


def test_a_master_without_a_plane_and_no_scalar_card_is_an_error(master, tmp_path):
    path = write_master(master, tmp_path / "m.fits", output=_all("full"))
    with fits.open(path) as hdul:
        del hdul["NLOW"]
        hdul.writeto(tmp_path / "broken.fits")
    with pytest.raises(FitsReadError, match="NLOW"):
        read_master(tmp_path / "broken.fits")


@pytest.mark.parametrize("mode", ["full", "compressed", "scalar"])
def test_calibrated_light_uncertainty_modes(mode, tmp_path):
    rng = np.random.default_rng(3)
    gain, read_var, pedestal = 1.5, 9.0, 100.0
    yy, xx = np.mgrid[0:160, 0:200]
    signal = 50.0 + 0.5 * xx + 0.2 * yy  # a sky gradient
    for y, x in rng.integers(10, 150, (12, 2)):  # and a few stars
        signal += 3000.0 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.0)
    unc = np.sqrt(read_var + signal / gain).astype(np.float32)
    data = (pedestal + signal + rng.normal(0, 1, signal.shape) * unc).astype(np.float32)
    data[5, 7] = np.nan
    unc[5, 7] = np.nan
    header = fits.Header({"OBJECT": "test", "BZERO": 32768})
    cards = uncertainty_cards(data, unc, egain_e_per_adu=gain, pedestal_adu=pedestal)
    assert cards["DFUNV0"][0] == pytest.approx(read_var, rel=0.1)
    path = write_calibrated(tmp_path / f"{mode}.fits", data, unc, header, mode=mode, cards=cards)
    planes = read_calibrated(path)
    assert planes.uncertainty_mode == mode
    np.testing.assert_array_equal(planes.data, data)
    assert planes.header["DFUMODE"] == mode and "BZERO" not in planes.header
    assert planes.header["DFUNCMED"] == pytest.approx(np.nanmedian(unc), rel=1e-5)
    ok = np.isfinite(unc)
    rel = np.abs(planes.uncertainty[ok] - unc[ok]) / unc[ok]
    if mode == "full":
        np.testing.assert_array_equal(planes.uncertainty, unc)
    elif mode == "compressed":
        assert np.median(rel) < 0.01
    else:  # rebuilt from the noise model (smooth sky, stars with their own value)
        assert np.median(rel) < 0.02 and np.percentile(rel, 99) < 0.25
        assert np.isnan(planes.uncertainty[5, 7])
    with fits.open(path) as hdul:
        assert ("UNCERT" in hdul) == (mode != "scalar")


def test_a_light_without_uncertainty_is_an_error(tmp_path):
    path = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(path)
    with pytest.raises(FitsReadError, match="UNCERT"):
        read_calibrated(path)


def test_output_settings_are_part_of_the_keys():
    from darkflow.pipeline.plan import output_params

    base, light_only = Config(), Config.from_dict({"output": {"light_uncertainty": "full"}})
    master_only = Config.from_dict({"output": {"n_used": "full"}})
    assert output_params(base, "output", kind="master") == output_params(
        light_only, "output", kind="master"
    )
    assert output_params(base, "output", kind="master") != output_params(
        master_only, "output", kind="master"
    )
    assert output_params(base, "output", kind="light") != output_params(
        light_only, "output", kind="light"
    )
