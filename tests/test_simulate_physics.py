"""Physics of the simulated sensors, measured from simulated frames (not read from parameters)."""

from __future__ import annotations

import numpy as np
import pytest

from darkflow.exceptions import ConfigError
from darkflow.simulate import (
    SENSOR_PRESETS,
    AmbientSpec,
    SensorModel,
    expose,
    expose_detailed,
    make_sensor_truth,
    simulate_thermal,
)
from darkflow.simulate.physics import apply_nonlinearity
from darkflow.stats import mad_std

CCD = SENSOR_PRESETS["sbig-stf-8300m"].replace(ny=96, nx=128)
CMOS = SENSOR_PRESETS["zwo-asi2600mm-pro"].replace(ny=96, nx=128)


def _truth(model: SensorModel, seed: int = 1):
    return make_sensor_truth(model, np.random.default_rng(seed))


def _frames(truth, kind, exptime, temp, n, seed, sky=None):
    rng = np.random.default_rng(seed)
    return np.array(
        [expose(truth, kind, exptime, temp, rng, sky).astype(np.float64) for _ in range(n)]
    )


def test_dark_current_doubles_per_doubling_temperature():
    truth = _truth(CCD)
    bias = np.median(_frames(truth, "bias", 0.0, 0.0, 5, 10), axis=0)
    temps = (0.0, CCD.doubling_temp_c, 2 * CCD.doubling_temp_c)
    signal = []
    for i, temp in enumerate(temps):
        master = np.median(_frames(truth, "dark", 600.0, temp, 5, 20 + i), axis=0)
        signal.append(np.median(master - bias))
    assert signal[1] / signal[0] == pytest.approx(2.0, rel=0.05)
    assert signal[2] / signal[1] == pytest.approx(2.0, rel=0.05)
    # fit the law log2(S) = T / Td + c and recover the doubling temperature
    slope = np.polyfit(temps, np.log2(signal), 1)[0]
    assert 1.0 / slope == pytest.approx(CCD.doubling_temp_c, rel=0.05)


def test_hot_pixel_fraction_matches():
    model = CCD.replace(ny=120, nx=160, hot_fraction=0.01, column_defects=0)
    truth = _truth(model, seed=3)
    bias = np.median(_frames(truth, "bias", 0.0, 10.0, 5, 30), axis=0)
    master = np.median(_frames(truth, "dark", 600.0, 10.0, 5, 31), axis=0)
    signal = master - bias
    hot = signal > 8.0 * np.median(signal)
    assert hot.mean() == pytest.approx(model.hot_fraction, rel=0.25)
    true_hot = np.zeros(model.shape, bool)
    true_hot[tuple(truth.hot_pixels.T)] = True
    assert (hot & true_hot).sum() >= 0.95 * true_hot.sum()


@pytest.mark.parametrize("key", ["zwo-asi2600mm-pro", "sbig-stf-8300m", "canon-eos-6d"])
def test_read_noise_from_bias_differences(key):
    model = SENSOR_PRESETS[key].replace(ny=96, nx=128)
    truth = _truth(model)
    b1, b2 = _frames(truth, "bias", model.bias_exptime_s, 0.0, 2, 5)
    diff = b1 - b2
    diff -= np.median(diff, axis=1, keepdims=True)  # per-frame row banding
    read_noise_e = mad_std(diff) / np.sqrt(2) * model.egain_e_per_adu
    assert read_noise_e == pytest.approx(model.read_noise_e, rel=0.08)


@pytest.mark.parametrize("key", ["zwo-asi2600mm-pro", "sbig-stf-8300m"])
def test_gain_recovered_from_photon_transfer(key):
    model = SENSOR_PRESETS[key].replace(ny=96, nx=128, cosmic_rate_per_cm2_s=0.0)
    truth = _truth(model)
    bias = np.mean(_frames(truth, "bias", 0.0, -10.0, 4, 7), axis=0)
    means, variances = [], []
    for i, level in enumerate((500.0, 2000.0, 5000.0, 9000.0)):
        sky = np.full(model.shape, level)
        f1, f2 = _frames(truth, "flat", 0.001, -10.0, 2, 100 + i, sky)
        means.append(np.mean((f1 + f2) / 2 - bias))
        variances.append(np.var(f1 - f2) / 2)
    slope = np.polyfit(means, variances, 1)[0]  # ADU^2 per ADU = 1 / gain
    assert 1.0 / slope == pytest.approx(model.egain_e_per_adu, rel=0.05)


def test_amp_glow_grows_linearly_with_exposure():
    model = SENSOR_PRESETS["zwo-asi294mc-pro"].replace(ny=96, nx=128)  # strong top-left glow
    truth = _truth(model)
    glow = []
    for i, t in enumerate((60.0, 300.0)):
        master = np.median(_frames(truth, "dark", t, -10.0, 5, 40 + i), axis=0)
        corner = np.median(master[:8, :8])
        centre = np.median(master[40:56, 56:72])
        glow.append(corner - centre)
    assert glow[0] > 5 * model.read_noise_e / model.egain_e_per_adu / np.sqrt(5)
    assert glow[1] / glow[0] == pytest.approx(5.0, rel=0.1)


def test_saturation_clips_at_adc_maximum():
    truth = _truth(CMOS)
    rng = np.random.default_rng(0)
    sky = np.zeros(CMOS.shape)
    sky[10:20, 10:20] = 1e7  # a very bright star core
    data = expose(truth, "light", 60.0, -10.0, rng, sky)
    assert data.dtype == np.uint16
    assert data.max() == 65535
    assert np.all(data[10:20, 10:20] == 65535)
    scaled = SENSOR_PRESETS["zwo-asi533mc-pro"].replace(ny=32, nx=32)  # 14-bit ADC x 4
    data14 = expose(_truth(scaled), "light", 10.0, -5.0, rng, np.full((32, 32), 1e7))
    assert scaled.saturation_adu == 65532
    assert np.all(data14 == 65532)
    dslr = SENSOR_PRESETS["canon-eos-6d"].replace(ny=32, nx=32)  # unscaled 14-bit raw
    data_dslr = expose(_truth(dslr), "light", 10.0, 10.0, rng, np.full((32, 32), 1e7))
    assert np.all(data_dslr == 16383)


def test_quantisation_follows_the_adc_step():
    model = SENSOR_PRESETS["zwo-asi533mc-pro"].replace(ny=32, nx=48)
    data = expose(_truth(model), "dark", 60.0, -5.0, np.random.default_rng(2))
    assert np.all(data % 4 == 0)
    assert len(np.unique(data)) > 10


def test_nonlinearity_rolls_off_near_full_well():
    e = np.linspace(0, 2 * CCD.full_well_e, 2001)
    out = apply_nonlinearity(e, CCD)
    knee = CCD.nonlinearity_start * CCD.full_well_e
    assert np.allclose(out[e <= knee], e[e <= knee])
    assert np.all(np.diff(out) >= 0) and out.max() <= CCD.full_well_e
    at_fw = np.interp(CCD.full_well_e, e, out)
    assert 0.9 * CCD.full_well_e < at_fw < 0.98 * CCD.full_well_e
    # measured on frames: a flat at the full well reads low compared with a linear response
    model = CCD.replace(ny=32, nx=32, egain_e_per_adu=0.5, cosmic_rate_per_cm2_s=0.0)
    truth = _truth(model)
    rng = np.random.default_rng(4)
    low = expose(truth, "flat", 1.0, -10.0, rng, np.full((32, 32), 0.3 * model.full_well_e))
    high = expose(truth, "flat", 1.0, -10.0, rng, np.full((32, 32), 0.98 * model.full_well_e))
    ratio = (high.mean() - model.bias_adu) / (low.mean() - model.bias_adu)
    expected = apply_nonlinearity(np.array([0.98 * model.full_well_e]), model)[0]
    assert ratio == pytest.approx(expected / (0.3 * model.full_well_e), rel=0.01)
    assert ratio < 0.97 * (0.98 / 0.3)  # ~4 % below a linear response


def test_cosmic_rays_are_counted_and_visible():
    model = CCD.replace(cosmic_rate_per_cm2_s=200.0)
    truth = _truth(model)
    rng = np.random.default_rng(8)
    exp = expose_detailed(truth, "dark", 300.0, -10.0, rng)
    assert exp.n_cosmic_pixels > 0
    assert exp.n_cosmic_pixels == int(np.count_nonzero(exp.cosmic_e))
    expected = truth.true_dark_adu(300.0, -10.0)
    resid = exp.data - expected
    sigma = np.sqrt(model.read_noise_e**2 + 60.0) / model.egain_e_per_adu
    outliers = resid > 8 * sigma
    outliers[tuple(truth.flicker_yx.T)] = False
    hit = exp.cosmic_e > 0
    assert (outliers & hit).sum() >= 0.9 * hit.sum()
    assert (outliers & ~hit).sum() <= 0.02 * hit.sum() + 2


def test_flickering_pixels_toggle_between_frames():
    truth = _truth(CMOS)
    rng = np.random.default_rng(9)
    states = np.array(
        [expose_detailed(truth, "dark", 10.0, -10.0, rng).flicker_on for _ in range(30)]
    )
    assert states.shape[1] == CMOS.flicker_pixels
    assert np.all(states.any(axis=0)) and np.all((~states).any(axis=0))


def test_noiseless_exposure_is_the_expected_dark():
    truth = _truth(CMOS)
    rng = np.random.default_rng(0)
    noiseless = expose(truth, "dark", 300.0, -10.0, rng, noiseless=True)
    assert noiseless.dtype == np.float64
    np.testing.assert_allclose(noiseless, truth.true_dark_adu(300.0, -10.0))
    frames = _frames(truth, "dark", 300.0, -10.0, 8, 11)
    resid = np.median(frames, axis=0) - noiseless
    assert abs(np.median(resid)) < 0.5  # ADU; the noise is ~6 ADU per frame


def test_same_generator_state_same_frame():
    truth = _truth(CMOS)
    a = expose(truth, "dark", 60.0, -10.0, np.random.default_rng(5))
    b = expose(truth, "dark", 60.0, -10.0, np.random.default_rng(5))
    c = expose(truth, "dark", 60.0, -10.0, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "science"}, "kind"),
        ({"exptime_s": -1.0}, "exposure"),
        ({"exptime_s": float("nan")}, "exposure"),
        ({"sky_e": np.zeros((3, 3))}, "shape"),
    ],
)
def test_expose_rejects_bad_input(kwargs, match):
    args = {"kind": "dark", "exptime_s": 1.0, "sky_e": None} | kwargs
    with pytest.raises(ConfigError, match=match):
        expose(
            _truth(CMOS),
            args["kind"],
            args["exptime_s"],
            0.0,
            np.random.default_rng(),
            args["sky_e"],
        )


@pytest.mark.parametrize(
    "changes",
    [{"egain_e_per_adu": 0.0}, {"ny": 2}, {"amp_glow_corner": "middle"}, {"adc_bits": 20}],
)
def test_sensor_model_validates(changes):
    with pytest.raises(ConfigError):
        CMOS.replace(**changes)


def test_at_gain_follows_the_zwo_decibel_law():
    high = CMOS.at_gain(200.0)
    assert high.egain_e_per_adu == pytest.approx(CMOS.egain_e_per_adu / np.sqrt(10), rel=1e-6)
    assert high.bias_adu == CMOS.bias_adu and high.gain_setting == 200.0
    with pytest.raises(ConfigError):
        CCD.at_gain(100.0)


# ---------------------------------------------------------------------- cooler model
def _trace(model, ambient, set_c, hours, **kw):
    return simulate_thermal(
        model, ambient, [(0.0, set_c)], hours * 3600.0, np.random.default_rng(1), **kw
    )


def test_cooler_lags_towards_the_set_point():
    model = CMOS.replace(regulation_noise_c=0.0, ambient_coupling=0.0)
    trace = _trace(model, AmbientSpec(10.0, 10.0, wobble_c=0.0), -10.0, 1.0)
    start = trace.sensor_c[0]
    assert start == pytest.approx(10.0 + model.electronics_warm_c)
    at_tau = trace.sensor_at(model.cooler_tau_s)
    progress = (start - at_tau) / (start - (-10.0))
    assert progress == pytest.approx(1 - np.exp(-1), abs=0.03)
    assert np.all(np.diff(trace.sensor_c) <= 1e-9)  # monotonic approach, no overshoot
    assert trace.sensor_at(3000.0) == pytest.approx(-10.0, abs=0.05)


def test_cooler_cannot_reach_set_point_on_a_warm_night():
    model = CCD
    ambient = AmbientSpec(27.0, 21.0, tau_h=5.0, wobble_c=0.4)
    trace = _trace(model, ambient, -15.0, 6.0)
    settled = trace.t_s > 1800.0
    floor = trace.ambient_c[settled] - model.max_delta_c
    assert np.all(trace.sensor_c[settled] > -15.0 + 2.0)
    assert np.abs(trace.sensor_c[settled] - floor).max() < 1.0
    # it follows the ambient down through the night
    assert trace.sensor_c[settled][-1] < trace.sensor_c[settled][0] - 3.0


def test_cooler_drifts_and_wanders():
    model = CMOS.replace(regulation_noise_c=0.05)
    trace = _trace(model, AmbientSpec(5.0, 5.0, wobble_c=0.0), -10.0, 4.0, drift_c_per_h=1.0)
    later = trace.sensor_at(3 * 3600.0) - trace.sensor_at(1 * 3600.0)
    assert later == pytest.approx(2.0, abs=0.3)
    steady = _trace(model, AmbientSpec(5.0, 5.0, wobble_c=0.0), -10.0, 4.0)
    settled = steady.sensor_c[steady.t_s > 1800]
    assert 0.01 < settled.std() < 0.2  # a small random walk around the set-point


def test_uncooled_sensor_follows_ambient_and_self_heats():
    dslr = SENSOR_PRESETS["canon-eos-6d"]
    trace = _trace(dslr, AmbientSpec(8.0, 8.0, wobble_c=0.0), None, 3.0)
    assert np.all(np.isnan(trace.set_c))
    warm_up = trace.sensor_at(3 * 3600.0) - trace.sensor_at(0.0)
    assert warm_up == pytest.approx(dslr.self_heating_c * (1 - np.exp(-6)), abs=0.3)
