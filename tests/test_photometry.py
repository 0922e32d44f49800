"""Star detection, centroids, annulus background and before/after comparison (darkflow.verify.photometry)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from darkflow.exceptions import ConfigError
from darkflow.verify.photometry import compare_photometry, detect_stars, measure


def _scene(
    seed=0, shape=(120, 160), stars=((30.3, 40.7, 5e4), (80.6, 100.2, 2e4), (60.0, 140.5, 8e3))
):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.full(shape, 100.0)
    for y0, x0, flux in stars:
        s = 1.4
        truth += (
            flux / (2 * math.pi * s * s) * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * s * s))
        )
    noisy = truth + rng.normal(0, 5.0, shape)
    return truth, noisy, stars


def test_detects_isolated_stars_with_accurate_centroids_and_fluxes():
    _, img, stars = _scene()
    found = detect_stars(img, background=100.0, sigma=5.0)
    assert len(found) == 3
    assert found[0].signal > found[1].signal > found[2].signal  # brightest first
    meas = measure(img, found)
    for (y0, x0, flux), m in zip(sorted(stars, key=lambda s: -s[2]), meas, strict=True):
        assert math.hypot(m.y - y0, m.x - x0) < 0.05
        assert m.flux == pytest.approx(flux * (1 - math.exp(-(4.0**2) / (2 * 1.4**2))), rel=0.02)
        assert m.annulus_median == pytest.approx(100.0, abs=1.0)
        assert m.annulus_sigma == pytest.approx(5.0, rel=0.2)


def test_hot_pixels_cosmics_edges_and_saturation_are_not_stars():
    _, img, _ = _scene()
    img = img.copy()
    img[10, 10] += 5000.0  # a hot pixel
    img[100, 20] += 3000.0  # a cosmic-ray blob with a faint halo
    img[99, 20] += 300.0
    img[5, 80] += 20000.0  # a bright pixel at the edge
    found = detect_stars(img, background=100.0, sigma=5.0)
    assert {(round(s.y), round(s.x)) for s in found} == {(30, 41), (81, 100), (60, 140)}
    raw = img.copy()
    raw[30, 41] = 65535.0
    found = detect_stars(img, background=100.0, sigma=5.0, raw=raw, saturation=60000.0)
    assert (30, 41) not in {(round(s.y), round(s.x)) for s in found}


def test_close_pairs_are_not_isolated():
    _, img, _ = _scene(stars=((40.0, 40.0, 3e4), (40.0, 47.0, 3e4), (90.0, 120.0, 3e4)))
    found = detect_stars(img, background=100.0, sigma=5.0)
    assert [(round(s.y), round(s.x)) for s in found] == [(90, 120)]


def test_compare_identical_and_calibrated_frames():
    truth, img, _ = _scene()
    stars = detect_stars(img, background=100.0, sigma=5.0)
    same = compare_photometry(img, img, stars)
    assert same.n_stars == 3 and same.centroid_shift_px == 0.0 and same.flux_ratio == 1.0
    # a smooth dark model removed: level changes, stars do not
    model = 80.0 + 0.05 * np.mgrid[:120, :160][1]
    after = compare_photometry(img, img - model, stars)
    assert after.flux_ratio == pytest.approx(1.0, abs=1e-3)
    assert after.centroid_shift_px < 0.01
    assert after.annulus_level_after == pytest.approx(
        after.annulus_level_before - 80 - 0.05 * 100, abs=4
    )
    assert after.negative_annulus_frac == 0.0
    # a model holding half of the stars removes half of their flux
    halved = compare_photometry(img, img - 0.5 * (truth - 100.0), stars)
    assert halved.flux_ratio == pytest.approx(0.5, abs=0.02)
    # an over-subtracted background: annuli below zero
    neg = compare_photometry(img, img - 150.0, stars)
    assert neg.negative_annulus_frac == 1.0


def test_bad_pixel_mask_ignores_removed_hot_pixels():
    _, img, _ = _scene()
    stars = detect_stars(img, background=100.0, sigma=5.0)
    hot = np.zeros(img.shape, bool)
    hot[31, 42] = True  # a hot pixel inside the brightest star's aperture
    raw = img.copy()
    raw[31, 42] += 20000.0
    plain = compare_photometry(raw, img, stars)
    masked = compare_photometry(raw, img, stars, bad=hot)
    assert plain.centroid_shift_p90_px > 0.1
    assert masked.centroid_shift_p90_px < 0.02 and masked.flux_ratio == pytest.approx(
        1.0, abs=0.002
    )


def test_degenerate_inputs():
    assert detect_stars(np.full((50, 50), np.nan)) == []
    assert detect_stars(np.zeros((50, 50)), sigma=1.0) == []
    with pytest.raises(ConfigError):
        detect_stars(np.zeros(10))
    with pytest.raises(ConfigError):
        measure(np.zeros((50, 50)), [], r_aperture=5, r_inner=4, r_outer=8)
    empty = compare_photometry(np.zeros((50, 50)), np.zeros((50, 50)), [])
    assert empty.n_stars == 0 and math.isnan(empty.flux_ratio)


def _field(seed: int, n: int = 30, shape=(200, 240)):
    """A field of ``n`` isolated stars (their truth) and a noisy image of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.full(shape, 100.0)
    placed: list[tuple[float, float]] = []
    while len(placed) < n:
        y0, x0 = rng.uniform(15, shape[0] - 15), rng.uniform(15, shape[1] - 15)
        if all(math.hypot(y0 - y, x0 - x) > 16 for y, x in placed):
            placed.append((y0, x0))
            f = rng.uniform(5e3, 5e4)
            truth += (
                f
                / (2 * math.pi * 1.4**2)
                * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * 1.4**2))
            )
    return truth, truth + rng.normal(0.0, 5.0, shape)


def test_the_same_stars_with_a_noisy_model_pass_both_tests():
    """A model of noise and a gradient (amp glow): removed from every star, a change of none."""
    from darkflow.verify.photometry import centroid_shift_test, flux_change_test

    _, img = _field(1)
    rng = np.random.default_rng(2)
    xx = np.mgrid[:200, :240][1]
    model = 500.0 + 0.2 * xx + rng.normal(0.0, 1.5, img.shape)
    raw = img + model
    stars = detect_stars(img, background=100.0, sigma=5.0)
    assert len(stars) >= 20
    pairs = compare_photometry(
        raw, raw - model, stars, model=model, model_variance=np.full(img.shape, 1.5**2)
    )
    assert len(pairs.dy) == pairs.n_stars == len(pairs.flux_change)
    flux, moved = flux_change_test(pairs), centroid_shift_test(pairs)
    assert abs(flux.value - 1.0) < 4 * flux.spread and abs(flux.deviate) < 3.9
    assert moved.deviate < 3.7 and moved.n == pairs.n_stars


def test_stars_in_the_model_are_a_flux_change_and_a_shifted_copy_a_centroid_shift():
    from darkflow.verify.photometry import centroid_shift_test, flux_change_test

    truth, img = _field(3)
    stars = detect_stars(img, background=100.0, sigma=5.0)
    var = np.full(img.shape, 1.0)
    leak = 0.05 * (truth - 100.0)  # 5 % of the field among the darks
    raw = img + 500.0 + leak
    pairs = compare_photometry(
        raw, raw - 500.0 - leak, stars, model=500.0 + leak, model_variance=var
    )
    flux = flux_change_test(pairs)
    assert flux.value == pytest.approx(0.95, abs=0.01) and flux.deviate > 10
    dithered = 0.05 * (np.roll(truth, 2, axis=1) - 100.0)
    pairs = compare_photometry(
        raw, raw - 500.0 - dithered, stars, model=500.0 + dithered, model_variance=var
    )
    assert centroid_shift_test(pairs).deviate > 10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_var", [False, True])
@pytest.mark.parametrize("with_bad", [False, True])
def test_model_effect_kernel_matches_the_former_loop(dtype, with_var, with_bad):
    """The model's effect on each star (numba passes around numpy's lstsq) equals the former
    per-star loop bit for bit: bad pixels filled, NaN in some annuli (a plane of its own), NaN
    variance, stars at the edge, without a centroid before, or with no pixel above the annulus
    median (no centroid shift)."""
    from darkflow.verify.photometry import _model_effect, _model_effect_reference

    _, img = _field(3, n=25)
    rng = np.random.default_rng(4)
    xx = np.mgrid[:200, :240][1]
    model = (500.0 + 0.2 * xx + rng.normal(0.0, 1.5, img.shape)).astype(dtype)
    model[rng.random(img.shape) < 0.003] += 300.0  # hot pixels
    raw = (img + model).astype(dtype)
    stars = detect_stars(img, background=100.0, sigma=5.0)
    assert len(stars) >= 15
    bad = (model > 700.0) if with_bad else None
    var = np.full(img.shape, 2.25, dtype) if with_var else None
    s0, s1 = stars[0], stars[1]
    model[round(s0.y) + 8, round(s0.x)] = np.nan  # an annulus pixel: its own plane
    if var is not None:
        var[round(s1.y) + 9, round(s1.x) - 1] = np.nan
        var[round(s1.y), round(s1.x)] = np.nan
    stars.append(type(s0)(3.0, 5.0, 1.0, 1.0, 1))  # at the edge
    stars.append(type(s0)(100.0, 120.0, 1.0, 1.0, 1))  # blank sky: nothing above the median
    before = measure(raw, stars, bad=bad)
    before[2] = type(before[2])(math.nan, math.nan, 1.0, 1.0, 1.0, 10)  # no centroid before
    before[-1] = type(before[-1])(100.0, 120.0, 1.0, 1e9, 1.0, 10)
    got = _model_effect(raw, model, var, stars, before, bad)
    want = _model_effect_reference(raw, model, var, stars, before, bad)
    assert len(got) == len(want) == len(stars)
    assert got[2] is None and got[-2] is None and want[2] is None
    assert math.isnan(got[-1].dy) and math.isfinite(got[-1].flux)
    assert sum(g is not None and math.isfinite(g.dy) for g in got) >= 15
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if g is not None:
            assert (
                np.array([g.flux, g.flux_sigma, g.dy, g.dx]).tobytes()
                == np.array([w.flux, w.flux_sigma, w.dy, w.dx]).tobytes()
            ), (g, w)


def test_the_brightest_stars_are_kept_and_equal_ones_in_raster_order():
    """Only the ``max_stars`` brightest isolated stars: the first of the whole sorted list
    (brightest first; equal signals in the candidates' raster order)."""
    shape = (200, 240)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, 100.0)
    spots = [(y, x) for y in range(20, 190, 25) for x in range(20, 230, 25)]
    for k, (y0, x0) in enumerate(spots):
        flux = 2e4 if k % 3 else 4e4  # every third one brighter; the others all equal
        img += flux / (2 * math.pi * 1.4**2) * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 3.92)
    every = detect_stars(img, background=100.0, sigma=5.0, max_stars=1000)
    assert len(every) == len(spots)
    signals = [s.signal for s in every]
    assert signals == sorted(signals, reverse=True)
    bright = [s for s in every if s.signal == every[0].signal]
    assert len(bright) == len(spots[::3])
    assert [(s.y, s.x) for s in bright] == sorted((s.y, s.x) for s in bright)
    for k in (0, 1, 7, 30, len(spots) + 5, -3):
        assert detect_stars(img, background=100.0, sigma=5.0, max_stars=k) == every[:k]
