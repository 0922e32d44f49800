"""Checks on calibrated lights (darkflow.verify.check_light), responses, weights and status."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from helpers.verify import (
    GAIN,
    SHAPE,
    bias_master,
    dark_frames,
    light_frame,
    make_sensor,
    master_of,
    sky_scene,
)

from darkflow.config import VerifyConfig
from darkflow.exceptions import CalibrationError, IncompatibleFramesError
from darkflow.model import FrameMeta, FrameType, LightStatus, MasterMeta, MasterStatus, ScaleMode
from darkflow.subtract import CalibratedFrame, build_dark_model, noise_model_variance, subtract_dark
from darkflow.verify import (
    LIGHT_VALUE_COLUMNS,
    Response,
    ResponseAction,
    VerifyReason,
    apply_response,
    assess_master,
    check_light,
    config_differences,
    frame_weight,
    light_status,
)

R = VerifyReason
META = FrameMeta(
    path="light.fits",
    frame_type=FrameType.LIGHT,
    exptime_s=300.0,
    egain_e_per_adu=GAIN,
    dtype="uint16",
)


@pytest.fixture(scope="module")
def setup():
    sensor = make_sensor(1)
    bias = bias_master(sensor, seed=7)
    master = master_of(dark_frames(sensor, 16, seed=8))
    sky = sky_scene(background_e=150.0)
    raw = light_frame(sensor, sky, seed=9)
    return sensor, bias, master, sky, raw


def _calibrate(raw, master, bias, model=None, *, pedestal=0.0, unc_factor=1.0):
    model = model or build_dark_model(master, scale_mode=ScaleMode.NONE)
    rv, sv = noise_model_variance(master, bias=bias, egain_e_per_adu=GAIN)
    cal = subtract_dark(
        raw,
        model,
        egain_e_per_adu=GAIN,
        read_variance_adu2=rv,
        dark_shot_variance_adu2=sv,
        pedestal_adu=pedestal,
    )
    if unc_factor != 1.0:
        cal = CalibratedFrame(cal.data, cal.uncertainty * np.float32(unc_factor))
    return model, cal


def _scaled_model(master, bias, factor):
    """A dark model whose dark signal is ``factor`` times the master's."""
    model = build_dark_model(master, scale_mode=ScaleMode.NONE)
    return apply_response(model, Response(ResponseAction.RESCALE_DARK, factor=factor), bias=bias)


def test_correct_calibration_passes_every_check(setup):
    _, bias, master, _, raw = setup
    model, cal = _calibrate(raw, master, bias)
    a = check_light(raw, cal, model, meta=META, bias=bias)
    assert a.passed and a.confidence == 1.0, a.to_dict()
    assert a.response.action == ResponseAction.NONE
    v = a.values
    assert v["noise_ratio"] == pytest.approx(1.0, abs=0.05)
    assert abs(v["dark_scale_error"]) < 0.05
    assert v["n_stars"] >= 20
    assert v["centroid_shift_px"] < 0.02 and v["flux_ratio"] == pytest.approx(1.0, abs=0.005)
    assert v["background_sigma"] > 1 and v["negative_frac"] == 0.0
    assert light_status(a) == (LightStatus.CALIBRATED, ())
    assert light_status(a, master=MasterStatus.LOW_CONFIDENCE)[0] == LightStatus.DEGRADED
    assert set(LIGHT_VALUE_COLUMNS) <= set(a.values)
    json.dumps(a.to_dict())


@pytest.mark.parametrize(
    ("factor", "reason"), [(2.0, R.DARK_OVERSCALED), (0.5, R.DARK_UNDERSCALED)]
)
def test_wrong_dark_scale_is_measured_and_the_rescale_response_fixes_it(setup, factor, reason):
    _, bias, master, _, raw = setup
    model, cal = _calibrate(raw, master, bias, _scaled_model(master, bias, factor))
    a = check_light(raw, cal, model, meta=META, bias=bias)
    assert reason in a.failed_reasons
    assert a.values["dark_scale_error"] == pytest.approx(1.0 / factor - 1.0, abs=0.05)
    assert a.response.action == ResponseAction.RESCALE_DARK
    assert a.response.factor == pytest.approx(1.0 / factor, rel=0.05)
    fixed = apply_response(model, a.response, bias=bias)
    model2, cal2 = _calibrate(raw, master, bias, fixed)
    again = check_light(raw, cal2, model2, meta=META, bias=bias)
    assert again.passed, again.to_dict()


def test_uniform_oversubtraction_is_negative_background_not_a_scale_error(setup):
    sensor, bias, master, _, _ = setup
    raw = light_frame(sensor, sky_scene(background_e=20.0), seed=11)  # a faint sky: 40 ADU
    model = build_dark_model(master, scale_mode=ScaleMode.NONE)
    model = dataclasses.replace(model, data=model.data + np.float32(80.0))  # darks +80 ADU
    model, cal = _calibrate(raw, master, bias, model)
    a = check_light(raw, cal, model, meta=META, bias=bias)
    failed = set(a.failed_reasons)
    assert {R.NEGATIVE_BACKGROUND, R.SMOOTH_OVERSUBTRACTION} <= failed
    assert not failed & {R.DARK_OVERSCALED, R.DARK_UNDERSCALED}
    assert a.response.action == ResponseAction.USE_PREVIOUS_MASTER
    assert a.response.alternative == ResponseAction.ADD_PEDESTAL and a.response.pedestal_adu > 40
    # the hot pixels are right: subtraction does more good than harm, the light is degraded
    assert light_status(a)[0] == LightStatus.DEGRADED


def test_clipped_negative_values_are_a_pile_up(setup):
    sensor, bias, master, _, _ = setup
    raw = light_frame(sensor, sky_scene(background_e=10.0), seed=12)
    model, cal = _calibrate(raw, master, bias)
    clipped = CalibratedFrame(np.maximum(cal.data, 0.0), cal.uncertainty)
    a = check_light(raw, clipped, model, meta=META, bias=bias)
    assert R.NEGATIVE_CLIPPING in a.failed_reasons
    assert R.NEGATIVE_CLIPPING not in check_light(raw, cal, model, meta=META, bias=bias).reasons


def test_raw_at_adc_zero_and_pedestal(setup):
    _, bias, master, _, raw = setup
    model, cal = _calibrate(raw, master, bias, pedestal=100.0)
    plain = check_light(raw, *_calibrate(raw, master, bias)[::-1], meta=META, bias=bias)
    with_pedestal = check_light(raw, cal, model, meta=META, bias=bias, pedestal_adu=100.0)
    assert with_pedestal.values["background_adu"] == pytest.approx(
        plain.values["background_adu"], abs=0.01
    )
    low = raw.copy()
    low[:, :20] = 0  # the offset too low: the ADC clips
    model, cal = _calibrate(low, master, bias)
    assert R.RAW_AT_FLOOR in check_light(low, cal, model, meta=META, bias=bias).failed_reasons


def test_column_pattern_of_another_readout_mode_is_banding(setup):
    _, bias, master, _, raw = setup
    columns = np.random.default_rng(4).normal(0.0, 6.0, SHAPE[1]).astype(np.float32)
    model = build_dark_model(master, scale_mode=ScaleMode.NONE)
    model = dataclasses.replace(model, data=model.data + columns[None, :])
    model, cal = _calibrate(raw, master, bias, model)
    a = check_light(raw, cal, model, meta=META, bias=bias)
    assert R.LIGHT_BANDING in a.failed_reasons
    assert a.values["column_ratio"] > 3
    assert a.values["column_pattern_z"] < -5  # minus the darks' extra pattern is left


def test_column_structure_of_the_scene_is_not_banding(setup):
    """A slit spectrum's continuum and lines run along the columns: structure in every column
    mean, but not the dark model's pattern, so the light's banding check passes (the
    white-noise column ratio, recorded as a value, sees it and was the gate before)."""
    _, bias, master, _, raw = setup
    rng = np.random.default_rng(5)
    spectrum = np.maximum(40.0 + 15.0 * rng.normal(size=SHAPE[1]), 0.0)  # e- per pixel
    scene = rng.poisson(np.broadcast_to(spectrum, SHAPE)) / GAIN  # ADU, with its shot noise
    lit = np.clip(raw.astype(np.float64) + scene, 0, 65535).astype(np.uint16)
    model, cal = _calibrate(lit, master, bias)
    a = check_light(lit, cal, model, meta=META, bias=bias)
    assert a.values["column_ratio"] > 3  # the scene's columns
    assert R.LIGHT_BANDING not in a.failed_reasons
    assert abs(a.values["column_pattern_z"]) < 3.9


@pytest.mark.parametrize(
    ("factor", "reason"), [(0.7, R.LIGHT_VARIANCE_EXCESS), (1.5, R.LIGHT_VARIANCE_LOW)]
)
def test_uncertainty_against_measured_noise(setup, factor, reason):
    _, bias, master, _, raw = setup
    model, cal = _calibrate(raw, master, bias, unc_factor=factor)
    a = check_light(raw, cal, model, meta=META, bias=bias)
    assert reason in a.failed_reasons
    assert a.values["noise_ratio"] == pytest.approx(1.0 / factor, rel=0.06)


def test_stars_in_the_dark_model_remove_flux(setup):
    _sensor, bias, master, sky, raw = setup
    model = build_dark_model(master, scale_mode=ScaleMode.NONE)
    # a light among the darks: 30% of the scene leaked into the master
    model = dataclasses.replace(
        model, data=model.data + np.float32(0.3 / GAIN) * sky.astype(np.float32)
    )
    model, cal = _calibrate(raw, master, bias, model)
    a = check_light(raw, cal, model, meta=META, bias=bias)
    assert R.FLUX_CHANGE in a.failed_reasons
    assert a.values["flux_ratio"] == pytest.approx(0.7, abs=0.05)


def test_few_stars_is_informational(setup):
    sensor, bias, master, _, _ = setup
    raw = light_frame(sensor, sky_scene(n_stars=2), seed=13)
    model, cal = _calibrate(raw, master, bias)
    a = check_light(raw, cal, model, meta=META, bias=bias)
    assert R.FEW_STARS in a.reasons and a.passed


def test_errors_and_inputs_untouched(setup):
    _, bias, master, _, raw = setup
    model, cal = _calibrate(raw, master, bias)
    keep = (raw.copy(), cal.data.copy(), cal.uncertainty.copy(), model.data.copy())
    check_light(raw, cal, model, meta=META, bias=bias)
    for a, b in zip(keep, (raw, cal.data, cal.uncertainty, model.data), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(IncompatibleFramesError):
        check_light(raw[:, :100], cal, model, meta=META)
    with pytest.raises(CalibrationError):
        apply_response(model, Response(ResponseAction.RESCALE_DARK, factor=-1.0))
    same = apply_response(model, Response(ResponseAction.USE_PREVIOUS_MASTER))
    assert same is model


def test_rescale_without_bias_keeps_the_median_level(setup):
    _, _, master, _, _ = setup
    model = build_dark_model(master, scale_mode=ScaleMode.NONE)
    scaled = apply_response(model, Response(ResponseAction.RESCALE_DARK, factor=0.5))
    med = np.median(model.data)
    assert np.median(scaled.data) == pytest.approx(med, abs=0.5)
    hot = model.data > med + 200
    base = np.broadcast_to(np.median(model.data, axis=0), model.data.shape)  # column levels
    assert np.allclose(scaled.data[hot] - base[hot], 0.5 * (model.data - base)[hot], rtol=1e-4)
    assert np.allclose(scaled.variance, 0.25 * model.variance)
    assert scaled.scale_factor == pytest.approx(0.5 * model.scale_factor)


def test_rescale_without_bias_keeps_the_column_pattern(setup):
    """Without a bias the model's column offsets are the readout's, which no dark current
    moves: a rescale keeps them whole (scaled, they would be left in the light as banding)."""
    import dataclasses as dc

    _, _, master, _, _ = setup
    model = build_dark_model(master, scale_mode=ScaleMode.NONE)
    columns = np.random.default_rng(5).normal(0.0, 4.0, model.data.shape[1]).astype(np.float32)
    striped = dc.replace(model, data=model.data + columns[None, :])
    response = Response(ResponseAction.RESCALE_DARK, factor=0.4)
    a, b = apply_response(model, response), apply_response(striped, response)
    kept = np.median(b.data - a.data, axis=0)
    np.testing.assert_allclose(kept, columns, atol=0.3)


def test_a_measured_rescale_replaces_the_stated_scale_term(setup):
    """After a rescale the model's scale term is the measured factor's error times the
    rescaled dark signal, in the variance and its systematic part; a pixel above the linear
    range keeps its own larger error."""
    import dataclasses as dc

    from darkflow.subtract import FLAG_NONLINEAR

    _, bias, master, _, _ = setup
    model = build_dark_model(master, scale_mode=ScaleMode.NONE, bias=bias)
    stated = np.square(np.float32(0.15) * model.dark_signal)  # an assumed 15 % scale error
    flags = np.zeros(model.data.shape, np.uint8)
    flags[0, :4] = FLAG_NONLINEAR
    model = dc.replace(
        model, variance=model.variance + stated, systematic_variance=stated, flags=flags
    )
    response = Response(ResponseAction.RESCALE_DARK, factor=0.5)
    out = apply_response(model, response, bias=bias, scale_rel_sigma=0.02)
    expected = np.square(np.float32(0.02) * out.dark_signal)
    rest = ~((flags & FLAG_NONLINEAR) != 0)
    np.testing.assert_allclose(out.systematic_variance[rest], expected[rest], rtol=1e-5)
    noise = 0.25 * (model.variance - stated)  # the masters' own noise, rescaled
    np.testing.assert_allclose(out.variance[rest], (noise + expected)[rest], rtol=1e-4)
    np.testing.assert_allclose(out.systematic_variance[~rest], 0.25 * stated[~rest], rtol=1e-5)
    # without a measurement the stated term is only rescaled, as before
    plain = apply_response(model, response, bias=bias)
    np.testing.assert_allclose(plain.systematic_variance, 0.25 * stated, rtol=1e-6)


def test_frame_weight_is_inverse_background_variance():
    unc = np.full((10, 10), 4.0, np.float32)
    mask = np.ones((10, 10), bool)
    assert frame_weight(unc, mask, 1.0) == pytest.approx(1 / 16)
    assert frame_weight(unc, mask, 0.9) == pytest.approx(1 / 16)  # never rewarded below 1
    assert frame_weight(unc, mask, 1.2) == pytest.approx(1 / (16 * 1.44))
    assert frame_weight(unc, np.zeros((10, 10), bool), 1.0) == 0.0


def test_light_status_policy(setup):
    sensor, bias, master, _, raw = setup
    model, cal = _calibrate(raw, master, bias)
    ok = check_light(raw, cal, model, meta=META, bias=bias)
    weak_master = assess_master(master_of(dark_frames(sensor, 12, seed=20, gain=0.2)))
    assert light_status(ok, master=weak_master)[0] == LightStatus.DEGRADED
    # 1.5x the dark signal: over-subtracted, but by less than the half it removes: degraded
    over = _calibrate(raw, master, bias, _scaled_model(master, bias, 1.5))
    worse = check_light(raw, over[1], over[0], meta=META, bias=bias)
    status, reasons = light_status(worse, config=VerifyConfig())
    assert status == LightStatus.DEGRADED and R.DARK_OVERSCALED in reasons
    # 3x: the light holds a third of what was subtracted, subtraction did more harm than good
    bad = _calibrate(raw, master, bias, _scaled_model(master, bias, 3.0))
    worst = check_light(raw, bad[1], bad[0], meta=META, bias=bias)
    status, reasons = light_status(worst)
    assert status == LightStatus.QUARANTINED
    assert {R.DARK_OVERSCALED, R.HARMFUL_SUBTRACTION} <= set(reasons)
    assert R.NO_DARK_SIGNAL not in reasons  # it holds some: the rescale response can fix it
    assert worst.response.action == ResponseAction.RESCALE_DARK


def test_config_differences_name_the_setting():
    light = FrameMeta(
        path="l",
        frame_type=FrameType.LIGHT,
        instrument="Cam",
        gain_setting=100.0,
        offset=50.0,
        readout_mode=None,
        shape=(10, 10),
    )

    def master(**kw):
        m = light.replace(**kw)
        return MasterMeta(
            config_signature=m.config_signature,
            instrument="Cam",
            exptime_s=60.0,
            temp_c=None,
            set_temp_c=None,
            n_frames=10,
            gain_setting=m.gain_setting,
            offset=m.offset,
            readout_mode=m.readout_mode,
        )

    assert config_differences(light, [master(gain_setting=0.0)]) == (R.CONFIG_GAIN_DIFFERS,)
    assert config_differences(light, [master(offset=10.0), master(readout_mode="HCG")]) == (
        R.CONFIG_OFFSET_DIFFERS,
        R.CONFIG_READOUT_DIFFERS,
    )
    assert config_differences(light, [master(shape=(5, 5))]) == (R.CONFIG_OTHER_DIFFERS,)
    assert config_differences(light, [master(), master(gain_setting=0.0)]) == ()
    assert config_differences(light, []) == ()


def test_a_sky_piled_up_at_the_clip_is_not_too_little_noise(setup):
    """A light whose sky reaches the camera's clip below the storage type's maximum (a 12-bit
    ADC scaled to 16 bits, a full well): the pixels at and near the clip have a cut
    distribution, so they are no background for the noise check; the rest is judged."""
    _, bias, master, _, raw = setup
    clip = float(np.percentile(raw, 60))  # 40 % of the pixels pile up at the clip
    clipped = np.minimum(raw, clip).astype(raw.dtype)
    model, cal = _calibrate(clipped, master, bias)
    a = check_light(clipped, cal, model, meta=META, bias=bias)
    assert not a.failed_reasons, a.failed_reasons  # the unclipped pixels are a clean light
    assert a.values["variance_pixels"] < 0.6 * raw.size


def test_hot_pixels_saturated_in_light_and_darks_are_no_clipping(setup):
    """A hot pixel full in the light and in every dark reads exactly 0 after subtraction: many
    such pixels are a pile-up at 0 but no clipped sky (a warm DSLR's 240 s lights)."""
    _, bias, master, _, raw = setup
    full = np.iinfo(raw.dtype).max
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(8, raw.shape[0] - 8, 60), rng.integers(8, raw.shape[1] - 8, 60)
    light = raw.copy()
    light[ys, xs] = full
    data = master.data.copy()
    data[ys, xs] = np.float32(full)
    hot_master = dataclasses.replace(master, data=data)
    model, cal = _calibrate(light, hot_master, bias)
    assert int(np.count_nonzero(cal.data == 0)) >= 50
    a = check_light(light, cal, model, meta=META, bias=bias)
    assert R.NEGATIVE_CLIPPING not in a.reasons, a.failed_reasons


def test_levels_of_the_subtraction_give_the_checks_their_own_values(setup):
    """The background and neighbours' median the noise model measured are reused by the light
    checks: the very values the checks compute without them (mono, and a Bayer frame per
    colour phase); not reused where they are not those of the analysed pixels."""
    from darkflow.stats.noise import local_levels
    from darkflow.verify._light import _known_levels
    from darkflow.verify._residuals import residual_parts

    _, bias, master, _, raw = setup
    model, plain = _calibrate(raw, master, bias)
    assert plain.levels is None  # not kept unless asked for
    rv, sv = noise_model_variance(master, bias=bias, egain_e_per_adu=GAIN)
    kw = {"egain_e_per_adu": GAIN, "read_variance_adu2": rv, "dark_shot_variance_adu2": sv}
    cal = subtract_dark(raw, model, keep_levels=True, **kw)
    assert cal.levels is not None
    assert np.array_equal(cal.data, plain.data) and np.array_equal(
        cal.uncertainty, plain.uncertainty
    )
    with_levels = check_light(raw, cal, model, meta=META, bias=bias)
    without = check_light(
        raw, CalibratedFrame(cal.data, cal.uncertainty), model, meta=META, bias=bias
    )
    assert json.dumps(with_levels.to_dict(), sort_keys=True) == json.dumps(
        without.to_dict(), sort_keys=True
    )
    for cfa in (False, True):
        smooth, local = local_levels(cal.data, cfa=cfa)
        a = residual_parts(cal.data, cal.uncertainty, cfa=cfa, levels=(smooth, local))
        b = residual_parts(cal.data, cal.uncertainty, cfa=cfa)
        for name in ("background", "sources", "valid", "z", "local"):
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    ny = cal.data.shape[0]
    assert _known_levels(cal, slice(0, ny), 0.0, False) is not None
    assert _known_levels(cal, slice(1, ny), 0.0, False) is None  # a band of rows
    assert _known_levels(cal, slice(0, ny), 100.0, False) is None  # a pedestal in between
    assert _known_levels(cal, slice(0, ny), 0.0, True) is None  # other colour handling
    assert subtract_dark(raw, model, keep_levels=True, pedestal_adu=100.0, **kw).levels is None
    # a central band of rows: its levels come from the frame's (band_levels), the same values
    ny, nx = raw.shape
    for cfa in (False, True):
        banded = subtract_dark(raw, model, keep_band_levels=True, cfa=cfa, **kw)
        assert banded.levels is None and banded.band_levels is not None
        plain = CalibratedFrame(banded.data, banded.uncertainty)
        meta = dataclasses.replace(META, bayer_pattern="RGGB" if cfa else None)
        for rows in (ny // 3, ny // 2, ny - 64):  # tiles of the frame's or not
            config = VerifyConfig(max_analysis_pixels=max(rows * nx, 10_000))
            got = check_light(raw, banded, model, meta=meta, bias=bias, config=config)
            want = check_light(raw, plain, model, meta=meta, bias=bias, config=config)
            assert json.dumps(got.to_dict(), sort_keys=True) == json.dumps(
                want.to_dict(), sort_keys=True
            )
    with_pedestal = subtract_dark(raw, model, keep_band_levels=True, pedestal_adu=1.0, **kw)
    assert with_pedestal.band_levels is None


def test_config_differences_at_the_lights_exposure():
    """Darks of the light's exposure taken at another gain are named even when darks of the
    light's own gain (of other exposures) calibrated it; darks of its exposure and gain, or
    other-gain darks of other exposures only, say nothing."""
    light = FrameMeta(
        path="l", frame_type=FrameType.LIGHT, instrument="Cam", gain_setting=100.0, exptime_s=300.0
    )

    def master(exptime_s, **kw):
        m = light.replace(**kw)
        return MasterMeta(
            config_signature=m.config_signature,
            instrument="Cam",
            exptime_s=exptime_s,
            temp_c=None,
            set_temp_c=None,
            n_frames=10,
            gain_setting=m.gain_setting,
        )

    own_120, other_300 = master(120.0), master(300.0, gain_setting=0.0)
    tol = {"exptime_rel_tol": 0.01}
    assert config_differences(light, [own_120, other_300]) == ()  # without the exposure: as before
    assert config_differences(light, [own_120, other_300], **tol) == (R.CONFIG_GAIN_DIFFERS,)
    assert config_differences(light, [own_120, master(299.0, gain_setting=0.0)], **tol) == (
        R.CONFIG_GAIN_DIFFERS,
    )
    assert config_differences(light, [own_120, other_300, master(300.0)], **tol) == ()
    assert config_differences(light, [own_120, master(120.0, gain_setting=0.0)], **tol) == ()


# ---- over-subtraction by stray light or by a bias offset, told apart by the light's noise
# (darkflow.verify._photonless), without a master bias
def _check_no_bias(darks, raw):
    master = master_of(darks)
    model = build_dark_model(master, scale_mode=ScaleMode.NONE)
    rv, sv = noise_model_variance(master, bias=None, egain_e_per_adu=GAIN)
    cal = subtract_dark(
        raw, model, egain_e_per_adu=GAIN, read_variance_adu2=rv, dark_shot_variance_adu2=sv
    )
    return check_light(raw, cal, model, meta=META)
