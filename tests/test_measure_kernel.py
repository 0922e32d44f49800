"""Star measurement (darkflow.verify.photometry.measure) by its numba kernel against the
former numpy loop: every field equal bit for bit."""

import math

import numpy as np
import pytest

from darkflow.verify._photkernels import measure_windows
from darkflow.verify.photometry import Star, _measure_reference, measure


def _field(shape, dtype, seed, n_stars=60):
    rng = np.random.default_rng(seed)
    img = rng.normal(100.0, 5.0, shape)
    ys = rng.uniform(-3, shape[0] + 3, n_stars)
    xs = rng.uniform(-3, shape[1] + 3, n_stars)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for y, x in zip(ys, xs, strict=True):
        img += rng.uniform(50, 5000) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.0)
    img[rng.random(shape) < 0.01] = np.nan
    img[rng.random(shape) < 0.002] = -1e4  # deep holes: negative weights
    img = (
        img.astype(dtype)
        if np.dtype(dtype).kind == "f"
        else np.clip(np.nan_to_num(img), 0, 6e4).astype(dtype)
    )
    bad = rng.random(shape) < 0.03
    stars = [Star(float(y), float(x), 1.0, 1.0, 9) for y, x in zip(ys, xs, strict=True)]
    stars.append(Star(30.0, 30.0, 1.0, 1.0, 9))
    return img, bad, stars


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for a, b in zip(
            (g.y, g.x, g.flux, g.annulus_median, g.annulus_sigma, g.annulus_n),
            (w.y, w.x, w.flux, w.annulus_median, w.annulus_sigma, w.annulus_n),
            strict=True,
        ):
            assert type(a) is type(b)
            assert (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
@pytest.mark.parametrize("with_bad", [False, True])
@pytest.mark.parametrize(
    "radii",
    [
        {},
        {"r_aperture": 3.0, "r_inner": 5.0, "r_outer": 8.0},
        {"r_aperture": 2.5, "r_inner": 4.2, "r_outer": 6.7},
    ],
)
def test_measure_matches_the_numpy_loop(dtype, with_bad, radii):
    img, bad, stars = _field((90, 120), dtype, seed=len(radii) + with_bad)
    mask = bad if with_bad else None
    got = measure(img, stars, bad=mask, **radii)
    r_ap, r_in, r_out = (
        (radii or {}).get("r_aperture", 4.0),
        radii.get("r_inner", 7.0),
        radii.get("r_outer", 11.0),
    )
    half = math.ceil(r_out)
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    rr = np.hypot(dy, dx)
    want = _measure_reference(
        np.asarray(img), stars, r_ap, (rr >= r_in) & (rr <= r_out), rr <= r_ap, half, mask
    )
    _same(got, want)
    assert sum(math.isfinite(m.flux) for m in got) > 20  # the test measures real stars


def test_measure_of_a_window_without_annulus_values():
    img = np.full((40, 40), np.nan)
    img[15:26, 15:26] = 50.0
    got = measure(img, [Star(20.0, 20.0, 1.0, 1.0, 9)])
    half = 11
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    rr = np.hypot(dy, dx)
    want = _measure_reference(
        img, [Star(20.0, 20.0, 1.0, 1.0, 9)], 4.0, (rr >= 7) & (rr <= 11), rr <= 4, half, None
    )
    _same(got, want)
    assert math.isnan(got[0].y)  # no positive weight left


def test_measure_windows_declines_what_it_does_not_take():
    cube = np.zeros((3, 4, 4))
    assert (
        measure_windows(
            cube,
            None,
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            1,
            1.0,
            np.ones((3, 3), bool),
            np.ones((3, 3), bool),
            1.0,
        )
        is None
    )


def test_the_kernels_sum_is_numpys_pairwise_sum():
    from darkflow.verify._photkernels import _np_sum

    rng = np.random.default_rng(5)
    for n in [*range(0, 140), 255, 256, 257, 529, 1000, 4099, 20000]:
        a = rng.normal(0.0, 1.0, n) * 10.0 ** rng.integers(-3, 8, n)
        got, want = _np_sum(a, n), np.sum(a)
        assert got == want and np.signbit(got) == np.signbit(want), n
    zeros = np.array([-0.0, -0.0, -0.0])
    assert np.signbit(_np_sum(zeros, 3)) == np.signbit(np.sum(zeros))
