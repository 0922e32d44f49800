import numpy as np
import pytest

from darkflow.exceptions import CalibrationError
from darkflow.model import FrameType, MasterDark, MasterMeta, ScaleMode
from darkflow.subtract import build_dark_model, noise_model_variance, subtract_dark


def master(data, sigma, *, n=20, exptime=60.0, kind=FrameType.DARK, includes_bias=True):
    data = np.asarray(data, np.float32)
    shape = data.shape
    meta = MasterMeta(
        config_signature="sig",
        instrument="cam",
        exptime_s=exptime,
        temp_c=-10.0,
        set_temp_c=-10.0,
        n_frames=n,
        includes_bias=includes_bias,
        frame_kind=kind,
    )
    return MasterDark(
        data=data,
        uncertainty=np.full(shape, sigma / np.sqrt(n), np.float32),
        n_used=np.full(shape, n, np.uint16),
        n_low=np.zeros(shape, np.uint16),
        n_high=np.zeros(shape, np.uint16),
        hot_persistence=np.zeros(shape, np.float32),
        meta=meta,
    )


def test_exposure_scaling_scales_dark_current_not_bias():
    bias = master(np.full((4, 4), 500.0), 3.0, exptime=0.0, kind=FrameType.BIAS)
    dark = master(np.full((4, 4), 510.0), 3.2, exptime=60.0)  # 10 ADU of dark current
    model = build_dark_model(dark, scale_mode=ScaleMode.EXPOSURE, scale_factor=3.0, bias=bias)
    np.testing.assert_allclose(model.data, 530.0)
    # var = (1-f)^2 var_B + f^2 var_D
    expected = (1 - 3) ** 2 * (3.0 / np.sqrt(20)) ** 2 + 9 * (3.2 / np.sqrt(20)) ** 2
    np.testing.assert_allclose(model.variance, expected, rtol=1e-5)


def test_scaling_without_bias_is_refused():
    dark = master(np.full((4, 4), 510.0), 3.2)
    with pytest.raises(CalibrationError, match="bias"):
        build_dark_model(dark, scale_mode=ScaleMode.EXPOSURE, scale_factor=2.0)


def test_subtraction_and_uncertainty_against_simulated_noise():
    rng = np.random.default_rng(3)
    shape = (200, 200)
    gain, read_e, bias_level, dark_e, sky_e = 0.8, 3.0, 500.0, 40.0, 400.0
    read_adu = read_e / gain
    bias = master(np.full(shape, bias_level), read_adu, n=50, exptime=0.0, kind=FrameType.BIAS)
    dark_mean = bias_level + dark_e / gain
    dark = master(np.full(shape, dark_mean), np.sqrt(read_adu**2 + dark_e / gain**2), n=50)
    electrons = rng.poisson(dark_e + sky_e, shape) + rng.normal(0, read_e, shape)
    light = (bias_level + electrons / gain).astype(np.float32)
    before = light.copy()
    model = build_dark_model(dark, scale_mode=ScaleMode.NONE)
    read_var, shot_var = noise_model_variance(dark, bias=bias, egain_e_per_adu=gain)
    out = subtract_dark(
        light,
        model,
        egain_e_per_adu=gain,
        read_variance_adu2=read_var,
        dark_shot_variance_adu2=shot_var,
    )
    np.testing.assert_array_equal(light, before)  # input untouched
    assert out.data.dtype == np.float32 and out.uncertainty.dtype == np.float32
    assert np.mean(out.data) == pytest.approx(sky_e / gain, rel=0.01)
    # predicted vs measured scatter within a few percent
    assert np.std(out.data) / np.median(out.uncertainty) == pytest.approx(1.0, abs=0.04)


def test_shape_mismatch_is_calibration_error():
    model = build_dark_model(master(np.zeros((4, 4)), 1.0), scale_mode=ScaleMode.NONE)
    with pytest.raises(CalibrationError, match="shape"):
        subtract_dark(np.zeros((4, 5)), model, egain_e_per_adu=1.0, read_variance_adu2=1.0)


def test_nan_pixels_stay_nan_and_are_counted():
    model = build_dark_model(master(np.zeros((4, 4)), 1.0), scale_mode=ScaleMode.NONE)
    light = np.ones((4, 4), np.float32)
    light[1, 2] = np.nan
    out = subtract_dark(light, model, egain_e_per_adu=1.0, read_variance_adu2=1.0)
    assert out.stats["n_nonfinite"] == 1 and np.isnan(out.data[1, 2])


def test_noise_model_variance_repeated_is_the_same_read_only_plane():
    """The lights of one master ask for the same dark shot plane: the previous one is given
    again (read-only), equal to a fresh computation; another gain or scale computes anew."""
    from darkflow.subtract import _readnoise

    rng = np.random.default_rng(5)
    dark = master(500.0 + rng.gamma(2.0, 5.0, (60, 70)), 3.0)
    _readnoise._RECENT.clear()
    r1, s1 = noise_model_variance(dark, bias=None, egain_e_per_adu=1.5)
    r2, s2 = noise_model_variance(dark, bias=None, egain_e_per_adu=1.5)
    assert s2 is s1 and r2 == r1 and not s1.flags.writeable
    _readnoise._RECENT.clear()
    _, fresh = noise_model_variance(dark, bias=None, egain_e_per_adu=1.5)
    assert fresh is not s1
    np.testing.assert_array_equal(fresh, s1)
    _, other = noise_model_variance(dark, bias=None, egain_e_per_adu=1.5, scale_factor=2.0)
    assert other is not fresh and not np.array_equal(other, fresh)
    _, gained = noise_model_variance(dark, bias=None, egain_e_per_adu=3.0)
    assert not np.array_equal(gained, fresh)
