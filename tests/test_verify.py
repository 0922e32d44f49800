import numpy as np
import pytest

from darkflow.model import FrameType, MasterDark, MasterMeta
from darkflow.subtract import estimate_gain, estimate_gain_from_dark
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
    assert estimate_gain(frame, (rn / g) ** 2) == pytest.approx(g, rel=0.05)
    assert estimate_gain(np.zeros((200, 300)), 1.0) is None


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
    meta = MasterMeta(config_signature="s", instrument="c", exptime_s=60, temp_c=None,
                      set_temp_c=None, n_frames=n, frame_kind=FrameType.DARK)  # fmt: skip
    return MasterDark(
        data=stack.mean(0).astype(np.float32),
        uncertainty=(stack.std(0, ddof=1) / np.sqrt(n)).astype(np.float32),
        n_used=np.full(shape, n, np.uint16), n_low=np.zeros(shape, np.uint16),
        n_high=np.zeros(shape, np.uint16), hot_persistence=np.zeros(shape, np.float32), meta=meta,
    )  # fmt: skip


@pytest.mark.parametrize("gain", [0.25, 1.0, 2.5])
def test_gain_from_dark_stack(gain):
    rng = np.random.default_rng(5)
    fit = estimate_gain_from_dark(_dark_master(rng, gain), clip_sigma=None)
    assert fit is not None and fit[0] == pytest.approx(gain, rel=0.08) and fit[1] > 0.9


def test_gain_from_dark_stack_with_thermal_drift_between_frames():
    """Dark level changing by 3% rms between frames adds variance ~ D^2; the fit separates it."""
    rng = np.random.default_rng(6)
    fit = estimate_gain_from_dark(_dark_master(rng, 0.5, drift=0.03), clip_sigma=None)
    assert fit is not None and fit[0] == pytest.approx(0.5, rel=0.15)
