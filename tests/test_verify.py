import numpy as np
import pytest

from darkflow.model import FrameType, MasterDark, MasterMeta
from darkflow.subtract.gain import gain_from_dark_stack, gain_from_light
from darkflow.verify import NEIGHBOUR_VAR_FACTOR, neighbour_median, residual_analysis, robust_std


def test_neighbour_variance_factor():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 1000)).astype(np.float32)
    d = (x - neighbour_median(x))[1:-1, 1:-1]
    assert d.var() == pytest.approx(NEIGHBOUR_VAR_FACTOR, rel=0.01)


def _sky(rng, shape=(200, 300)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    sky = 300 + 0.5 * xx + 200 * np.exp(-((xx - 150) ** 2 + (yy - 100) ** 2) / 2000.0)
    for _ in range(30):  # stars
        y0, x0 = rng.uniform(5, shape[0] - 5), rng.uniform(5, shape[1] - 5)
        sky += rng.uniform(500, 20000) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / 3.0)
    return sky


def test_correct_noise_model_gives_unit_width_and_no_holes():
    rng = np.random.default_rng(1)
    gain, read_adu = 0.5, 4.0
    sky = _sky(rng)
    data = (rng.poisson(sky * gain) / gain + rng.normal(0, read_adu, sky.shape)).astype(np.float32)
    unc = np.sqrt(read_adu**2 + np.maximum(data, 0) / gain).astype(np.float32)
    res = residual_analysis(data, unc)
    assert res.noise_ratio == pytest.approx(1.0, abs=0.03)
    assert res.neg_tail_frac < 1e-4
    assert 0.005 < res.source_frac < 0.3
    # an underestimated noise model is seen as excess noise
    assert residual_analysis(data, unc / 1.3).noise_ratio == pytest.approx(1.3, rel=0.05)


def test_oversubtracted_hot_pixels_are_holes():
    rng = np.random.default_rng(2)
    data = rng.normal(100, 5, (200, 300)).astype(np.float32)
    unc = np.full_like(data, 5.0)
    idx = rng.choice(data.size, 300, replace=False)
    data.ravel()[idx] -= 200  # 300 hot pixels subtracted with a too-strong dark
    res = residual_analysis(data, unc)
    assert res.neg_tail_frac == pytest.approx(300 / data.size, rel=0.1)


def test_robust_std_ignores_nan_and_outliers():
    v = np.random.default_rng(3).normal(0, 2, 10000)
    v[:50] = 1e6
    v[50:60] = np.nan
    assert robust_std(v) == pytest.approx(2.0, rel=0.05)


def test_gain_within_frame_on_smooth_sky():
    rng = np.random.default_rng(4)
    g, rn = 0.25, 3.5
    sky_e = 150 + 100 * np.linspace(0, 1, 300)[None, :] * np.ones((200, 1))
    frame = (rng.poisson(sky_e) + rng.normal(0, rn, sky_e.shape)) / g
    est = gain_from_light(frame, (rn / g) ** 2)
    assert est.value == pytest.approx(g, rel=0.05) and est.source == "light"
    assert abs(est.value - g) < 4 * est.sigma
    assert gain_from_light(np.zeros((200, 300)), 1.0) is None


def _dark_master(rng, gain, *, n=20, drift=0.0):
    """Stack statistics of n darks: bias 500, dark current with a hot tail, read noise 3 e-."""
    shape = (300, 300)
    dark_e = rng.lognormal(np.log(20), 0.3, shape)
    hot = rng.random(shape) < 0.01
    dark_e[hot] *= rng.lognormal(np.log(40), 0.8, hot.sum())
    frames = []
    for _i in range(n):
        scale = 1.0 + drift * rng.normal()
        e = rng.poisson(dark_e * scale) + rng.normal(0, 3.0, shape)
        frames.append(500 + e / gain)
    stack = np.array(frames)
    meta = MasterMeta(
        config_signature="s",
        instrument="c",
        exptime_s=60,
        temp_c=None,
        set_temp_c=None,
        n_frames=n,
        frame_kind=FrameType.DARK,
    )
    return MasterDark(
        data=stack.mean(0).astype(np.float32),
        uncertainty=(stack.std(0, ddof=1) / np.sqrt(n)).astype(np.float32),
        n_used=np.full(shape, n, np.uint16),
        n_low=np.zeros(shape, np.uint16),
        n_high=np.zeros(shape, np.uint16),
        hot_persistence=np.zeros(shape, np.float32),
        meta=meta,
    )


@pytest.mark.parametrize("gain", [0.25, 1.0, 2.5])
def test_gain_from_dark_stack(gain):
    rng = np.random.default_rng(5)
    fit = gain_from_dark_stack(_dark_master(rng, gain), clip_sigma=None)
    assert fit is not None and fit.value == pytest.approx(gain, rel=0.08)
    assert abs(fit.value - gain) < 4 * fit.sigma and fit.rel_sigma < 0.05


def test_gain_from_dark_stack_with_thermal_drift_between_frames():
    """Dark level changing by 3% rms between frames adds variance ~ D^2; the fit separates it."""
    rng = np.random.default_rng(6)
    fit = gain_from_dark_stack(_dark_master(rng, 0.5, drift=0.03), clip_sigma=None)
    assert fit is not None and fit.value == pytest.approx(0.5, rel=0.15)
    assert abs(fit.value - 0.5) < 4 * fit.sigma


# ----------------------------------------------------------------------------- FPN bands
def test_band_energies_of_noise_patterns_and_smooth_structure():
    from darkflow.verify import band_energies

    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 5.0, (256, 320)).astype(np.float32)
    b = band_energies(noise)
    assert b.row_ratio == pytest.approx(1.0, abs=0.35)
    assert b.column_ratio == pytest.approx(1.0, abs=0.35)
    assert b.pixel_sigma == pytest.approx(5.0, rel=0.05)
    assert b.low_amplitude < 2.0
    cols = noise + rng.normal(0.0, 2.0, 320)[None, :].astype(np.float32)
    assert band_energies(cols).column_ratio > 10 and band_energies(cols).row_ratio < 1.5
    rows = noise + rng.normal(0.0, 2.0, 256)[:, None].astype(np.float32)
    assert band_energies(rows).row_ratio > 10 and band_energies(rows).column_ratio < 1.5
    ramp = noise + np.linspace(0.0, 50.0, 320)[None, :].astype(np.float32)
    rb = band_energies(ramp)
    assert rb.low_amplitude == pytest.approx(45.0, abs=4.0)  # 5th-95th percentile of 0..50
    assert rb.column_ratio < 1.5  # a smooth trend is not banding
    hot = noise.copy()
    hot.ravel()[rng.choice(hot.size, 800, replace=False)] += 500.0
    hb = band_energies(hot)
    assert hb.row_ratio < 1.5 and hb.column_ratio < 1.5 and hb.low_amplitude < 2.0
    # a reference structure at another scale is removed from the low band
    glow = np.exp(-np.hypot(*np.mgrid[:256, :320]) / 60.0).astype(np.float32) * 80.0
    assert band_energies(noise + 2.5 * glow).low_amplitude > 20
    assert band_energies(noise + 2.5 * glow, low_reference=glow).low_amplitude < 3.0


def test_hot_scale_fit_recovers_the_scale_of_a_hot_pixel_pattern():
    from darkflow.verify import hot_scale_fit

    rng = np.random.default_rng(8)
    shape = (200, 200)
    template = np.zeros(shape, np.float32)
    idx = rng.choice(template.size, 400, replace=False)
    template.ravel()[idx] = rng.uniform(50.0, 500.0, idx.size)
    for alpha in (-0.6, 0.0, 0.4):
        target = (alpha * template + rng.normal(0.0, 5.0, shape)).astype(np.float32)
        target.ravel()[idx[:5]] += 5000.0  # outliers (cosmic rays) are clipped
        fit = hot_scale_fit(target, template, 5.0)
        assert fit.alpha == pytest.approx(alpha, abs=4 * fit.sigma + 0.005)
        assert 0 < fit.sigma < 0.01 and fit.n >= 380
    flat = hot_scale_fit(rng.normal(0, 5.0, shape), np.zeros(shape), 5.0)
    assert np.isnan(flat.alpha) and flat.n == 0


def test_residual_parts_mask_sources_and_keep_unit_residuals():
    from darkflow.verify import residual_parts

    rng = np.random.default_rng(9)
    sky = _sky(rng)
    data = (rng.poisson(sky) + rng.normal(0, 3.0, sky.shape)).astype(np.float32)
    unc = np.sqrt(9.0 + np.maximum(data, 0)).astype(np.float32)
    parts = residual_parts(data, unc)
    bright = sky > sky.min() + 2000  # star cores
    assert parts.sources[bright].all() and not parts.valid[bright].any()
    assert not (parts.valid & parts.sources).any()
    assert robust_std(parts.z[parts.valid]) == pytest.approx(1.0, abs=0.03)
    assert np.abs(parts.background - sky)[~parts.sources].mean() < 20


def test_neighbour_median_equals_numpy_median_of_the_shifted_copies():
    import itertools
    import warnings

    from darkflow.verify._residuals import SORT8, nanmedian_along

    # the network sorts every 0/1 input (0-1 principle: it sorts everything)
    for bits in itertools.product((0, 1), repeat=8):
        v = list(bits)
        for i, j in SORT8:
            v[i], v[j] = min(v[i], v[j]), max(v[i], v[j])
        assert v == sorted(bits)
    rng = np.random.default_rng(10)
    a = rng.normal(0, 1, (37, 53)).astype(np.float32)
    padded = np.pad(a, 1, mode="reflect")
    stack = np.stack(
        [
            padded[1 + dy : 38 + dy, 1 + dx : 54 + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)
        ]
    )
    assert np.array_equal(neighbour_median(a), np.median(stack, axis=0))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[:3, :3] = np.nan
    padded = np.pad(a, 1, mode="reflect")
    stack = np.stack(
        [
            padded[1 + dy : 38 + dy, 1 + dx : 54 + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(stack, axis=0)
        assert np.array_equal(neighbour_median(a), expected, equal_nan=True)
        assert np.array_equal(nanmedian_along(a, 1), np.nanmedian(a, axis=1), equal_nan=True)
