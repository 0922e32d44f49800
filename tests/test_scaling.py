"""darkflow.exposure.laws: smooth levels, hot pixels and glow, and the exposure law per population."""

import numpy as np
import pytest
from helpers.match import Camera

from darkflow.config import ScalingConfig
from darkflow.exposure.laws import (
    LinearityStatus,
    MasterSummary,
    block_grid,
    choose_reference,
    glow_map,
    local_median,
    measure_linearity,
    sample_grid,
    summarize_master,
    upsample_grid,
)
from darkflow.thermal import default_law

LAW = default_law(6.0, 1.0)


def test_smooth_level_round_trip():
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    ramp = 100 + 0.5 * xx + 0.25 * yy
    grid = block_grid(ramp, 16)
    assert grid.shape == (4, 6)
    up = upsample_grid(grid, ramp.shape, 16)
    np.testing.assert_allclose(up[8:-8, 8:-8], ramp[8:-8, 8:-8], atol=1e-3)  # interior exact
    assert abs(up[0, 0] - ramp[0, 0]) > 1  # held constant beyond the outer centres ...
    ext = upsample_grid(grid, ramp.shape, 16, extrapolate=True)
    np.testing.assert_allclose(ext, ramp, atol=1e-3)  # ... or continued linearly
    idx = np.array([0, 95, 1000, 64 * 96 - 1])
    np.testing.assert_allclose(
        sample_grid(grid, 16, ramp.shape, idx), up.reshape(-1)[idx], rtol=1e-6
    )
    img = np.zeros((9, 9), np.float32)
    img[4, 4] = 100.0
    assert local_median(img, np.array([40, 0])).tolist() == [0.0, 0.0]
    with_nan = ramp.copy()
    with_nan[:16, :16] = np.nan
    assert np.isfinite(block_grid(with_nan, 16)).all()


@pytest.fixture(scope="module")
def cam():
    return Camera()


def test_reference_finds_hot_pixels_and_the_glow_corner(cam):
    master, bias = cam.master(300.0, -10.0), cam.bias()
    ref = choose_reference(master, bias, ScalingConfig())
    true_hot = {int(y) * 96 + int(x) for y, x in cam.truth.hot_pixels}
    found = set(ref.hot_index.tolist())
    assert found and found <= true_hot | {
        int(i)
        for i in np.flatnonzero(
            cam.truth.dark_current_e_per_s.reshape(-1)
            > 5 * np.median(cam.truth.dark_current_e_per_s)
        )
    }
    assert ref.glow_cells[0, 0] and not ref.glow_cells[-1, -1]  # ASI294 glow: top-left
    assert ref.glow_pixels().shape == master.shape
    glow = glow_map(master, bias)
    true_glow = cam.truth.amp_glow_e_per_s * 300 / cam.model.egain_e_per_adu
    assert glow[0, 0] > 0.5 * true_glow[0, 0] and glow[-1, -1] == 0.0


def test_summary_levels_and_transient_residue(cam):
    bias = cam.bias()
    m = cam.master(120.0, -10.0)
    ref = choose_reference(m, bias)
    s = summarize_master(m, bias, ref, master_id="m")
    assert s.bias_removed and s.transient_rms_adu == 0.0
    # a cosmic ray kept by a combine of few frames: high in half of the frames
    data = m.data.copy()
    data[40, 60] += 5000.0
    hp = np.zeros_like(m.hot_persistence)
    hp[40, 60] = 0.5
    hit = type(m)(**{**m.__dict__, "data": data, "hot_persistence": hp})
    s2 = summarize_master(hit, bias, ref, master_id="hit")
    assert s2.transient_rms_adu == pytest.approx(5000.0 / np.sqrt(data.size), rel=0.05)
    n_flat = int((~ref.glow_pixels()).sum())  # the residue stays in the (fixed-set) mean
    assert s2.level_adu == pytest.approx(s.level_adu + 5000.0 / n_flat, rel=1e-3)


def _summary(
    t,
    level,
    *,
    hot=None,
    glow=None,
    temp=-10.0,
    noise=0.1,
    bias=True,
    n=10,
    hv=None,
    level_sigma=None,
):
    return MasterSummary(
        master_id=f"m{t:g}_{temp}",
        exptime_s=t,
        temp_c=temp,
        n_frames=n,
        bias_removed=bias,
        noise_adu=noise,
        level_adu=level,
        glow_adu=glow,
        hot_excess_adu=hot,
        signal_rms_adu=level,
        saturated_fraction=0.0,
        n_hot=0 if hv is None else hv.size,
        n_glow_cells=0,
        hot_values=hv,
        level_sigma_adu=level_sigma,
        n_level_pixels=5000,
    )


def _lin(summaries, bias=True, **kw):
    return measure_linearity("sig", summaries, LAW, ScalingConfig(), bias_available=bias, **kw)


def _pop(report, name):
    return {p.name: p for p in report.populations}[name]


def test_linearity_statuses():
    prop = [_summary(t, 0.1 * t, hot=5.0 * t) for t in (60.0, 180.0, 300.0)]
    r = _lin(prop)
    assert r.status == LinearityStatus.PROPORTIONAL and r.scaling_demonstrated
    assert r.interpolation_demonstrated(60.0, 180.0) and not r.interpolation_demonstrated(60, 90)
    assert _pop(r, "hot").role == "verdict" and _pop(r, "normal").role == "level"
    assert _pop(r, "hot").p_value > 0.5 and r.false_alarm == 1e-4
    # the hot pixels scale: an offset of the faint normal pixels is a level offset, carried
    offset = [_summary(t, 20.0 + 0.1 * t, hot=5.0 * t) for t in (60.0, 180.0, 300.0)]
    r = _lin(offset)
    assert r.status == LinearityStatus.PROPORTIONAL and r.scaling_possible
    assert r.offset_adu == pytest.approx(20.0, abs=0.5) and r.level_error_adu >= 20.0
    assert _pop(r, "normal").status == LinearityStatus.AFFINE
    # ... it decides only when no population with signal exists
    r = _lin([_summary(t, 20.0 + 0.1 * t) for t in (60.0, 180.0, 300.0)])
    assert r.status == LinearityStatus.AFFINE and not r.scaling_possible
    # an offset within the bias level's uncertainty is no non-linearity
    r = _lin([_summary(t, 0.5 + 0.1 * t, level_sigma=0.5) for t in (60.0, 180.0, 300.0)])
    assert r.status == LinearityStatus.PROPORTIONAL
    # a curvature of the normal pixels no offset can absorb is a non-linearity
    curved = [_summary(t, 0.1 * t + 1e-4 * t * t, hot=5.0 * t) for t in (60.0, 180.0, 300.0)]
    r = _lin(curved)
    assert r.status == LinearityStatus.NONLINEAR and "normal_pixels_curved" in r.reasons
    hot_curved = [_summary(t, 0.1 * t, hot=5.0 * t + 6e-3 * t * t) for t in (60.0, 180.0, 300.0)]
    assert _lin(hot_curved).status == LinearityStatus.NONLINEAR
    two = [_summary(t, 0.1 * t, hot=20.0 + 5.0 * t) for t in (60.0, 300.0)]
    assert _lin(two).status == LinearityStatus.AFFINE_UNPROVEN
    one = _lin([_summary(120.0, 12.0)])
    assert one.status == LinearityStatus.UNPROVEN and "single_exposure" in one.reasons
    assert one.scaling_possible and not one.scaling_demonstrated  # possible, with degrade
    # no bias: the hot pixels (an excess over their neighbours) still show the law ...
    raw = [_summary(t, 500.0 + 0.1 * t, hot=5.0 * t, bias=False) for t in (60.0, 180.0, 300.0)]
    r = _lin(raw, bias=False)
    assert r.status == LinearityStatus.PROPORTIONAL and not r.scaling_possible
    assert r.interpolation_demonstrated(60.0, 300.0) and _pop(r, "raw").role == "info"
    # ... the raw level alone proves nothing
    r = _lin([_summary(t, 500.0 + 0.1 * t, bias=False) for t in (60.0, 180.0)], bias=False)
    assert r.status == LinearityStatus.UNPROVEN and "no_population_with_signal" in r.reasons
    # a deviation within the temperature readings' uncertainty (single frames: 0.2 °C, 2.3 %)
    wobble = [
        _summary(t, 0.1 * t, hot=5.0 * t * (1.02 if t == 180 else 1.0), n=1)
        for t in (60.0, 180.0, 300.0)
    ]
    assert _lin(wobble).status == LinearityStatus.PROPORTIONAL
    many = [
        _summary(t, 0.1 * t, hot=5.0 * t * (1.02 if t == 180 else 1.0), n=400)
        for t in (60.0, 180.0, 300.0)
    ]
    assert _lin(many).status != LinearityStatus.PROPORTIONAL  # 20 averaged readings: resolved


def test_linearity_compares_masters_at_one_temperature():
    # 60 s and 300 s at -10 °C; a 180 s master at +2 °C would look 4x too bright
    s = [_summary(60.0, 6.0), _summary(300.0, 30.0), _summary(180.0, 18.0 * 4, temp=2.0)]
    r = _lin(s, temp_window_c=1.2)
    assert r.status == LinearityStatus.PROPORTIONAL and r.temp_c == -10.0
    assert r.exposures_s == (60.0, 300.0)


def test_nonlinear_regime_of_hot_pixels_is_detected():
    rng = np.random.default_rng(0)
    rate = np.exp(rng.uniform(np.log(1.0), np.log(200.0), 400))  # ADU/s of 400 hot pixels
    knee = 20000.0

    def response(signal):  # linear up to the knee, then rolling off
        return np.where(signal < knee, signal, knee + 0.3 * (signal - knee))

    a = _summary(60.0, 6.0, hot=1.0, hv=response(rate * 60.0))
    b = _summary(300.0, 30.0, hot=1.0, hv=response(rate * 300.0))
    r = _lin([a, b])
    assert r.nonlinear_above_adu is not None
    assert 0.5 * knee <= r.nonlinear_above_adu <= 1.5 * knee
    clean = _lin([_summary(60.0, 6.0, hv=rate * 60.0), _summary(300.0, 30.0, hv=rate * 300.0)])
    assert clean.nonlinear_above_adu is None
