"""The mask kernels (darkflow.stats._masks) against their numpy twins: the same masks and
values, bit for bit."""

import numpy as np
import pytest

from darkflow.stats._masks import (
    dilate,
    dilate_reference,
    finite_float64,
    finite_float64_reference,
)
from darkflow.verify._residuals import _dilate


def _mask(shape, seed, density):
    return np.random.default_rng(seed).random(shape) < density


# the twin's shifted slices need a frame wider than the radius
CASES = [
    (shape, radius)
    for shape in [(2, 2), (3, 7), (7, 3), (6, 5), (37, 53), (130, 257)]
    for radius in (1, 2, 3)
    if radius < min(shape)
]


@pytest.mark.parametrize(("shape", "radius"), CASES)
@pytest.mark.parametrize("density", [0.0, 0.03, 0.3, 1.0])
def test_dilate_matches_reference(shape, radius, density):
    mask = _mask(shape, shape[0] * shape[1], density)
    got = dilate(mask, radius)
    want = dilate_reference(mask, radius)
    assert got.dtype == want.dtype == np.bool_ and got is not mask
    np.testing.assert_array_equal(got, want, strict=True)


def test_dilate_of_views_and_edges():
    mask = _mask((64, 90), 5, 0.02)
    mask[0, 0] = mask[-1, -1] = mask[0, -1] = mask[-1, 0] = True  # corners cut the square
    for view in (mask, np.asfortranarray(mask), mask[:, ::3], mask[5:40, 7:70].T):
        np.testing.assert_array_equal(dilate(view, 2), dilate_reference(view, 2), strict=True)
    before = mask.copy()
    _dilate(mask, 2)
    np.testing.assert_array_equal(mask, before)  # the input is not modified


def test_dilate_grows_a_pixel_into_its_square():
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    got = dilate(mask, 2)
    assert got.sum() == 25 and got[2:7, 2:7].all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (1, 1), (5, 7), (200, 311)])
def test_finite_float64_matches_reference(dtype, shape):
    rng = np.random.default_rng(3)
    v = rng.normal(0.0, 1e3, shape).astype(dtype)
    if v.size > 4:
        v.flat[:5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]
        v[rng.random(shape) < 0.1] = np.nan
    got = finite_float64(v)
    want = finite_float64_reference(v)
    assert got.dtype == want.dtype == np.float64 and got.ndim == 1
    assert got.tobytes() == want.tobytes()  # -0.0 kept as -0.0
    assert finite_float64(v.T).tobytes() == finite_float64_reference(v.T).tobytes()
