"""The star-detection kernels (darkflow.stats._stars) against their scipy twins: equal bit for bit."""

import numpy as np
import pytest
from scipy import ndimage

from darkflow.stats._stars import (
    local_max5_at,
    local_max5_at_reference,
    region_peaks,
    region_peaks_reference,
)

SHAPES = [(1, 1), (1, 5), (2, 3), (7, 1), (37, 53), (120, 90)]


@pytest.mark.parametrize("shape", SHAPES)
def test_local_max5_at_matches_maximum_filter(shape):
    rng = np.random.default_rng(sum(shape))
    a = np.round(rng.normal(0, 3, shape))  # ties: equal neighbours keep a maximum
    ys, xs = np.nonzero(rng.random(shape) < 0.4)
    np.testing.assert_array_equal(local_max5_at(a, ys, xs), local_max5_at_reference(a, ys, xs))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_sat", [True, False])
def test_region_peaks_match_find_objects_and_argmax(shape, with_sat):
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    box = np.round(rng.normal(0, 4, shape))  # ties: the first maximum in raster order wins
    labels, n = ndimage.label(box > 1)
    sat = None
    if with_sat:
        sat = rng.normal(100, 30, shape).astype(np.float32)
        sat[rng.random(shape) < 0.3] = np.nan
        sat[rng.random(shape) < 0.05] = np.inf
    got = region_peaks(labels, box, sat, n)
    want = region_peaks_reference(labels, box, sat, n)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_region_peaks_of_an_absent_label():
    labels = np.zeros((4, 4), np.int32)
    labels[1, 1] = 2
    py, px, sat = region_peaks(labels, np.ones((4, 4)), np.ones((4, 4)), 2)
    assert (py[0], px[0], sat[0]) == (-1, -1, -np.inf) and (py[1], px[1], sat[1]) == (1, 1, 1.0)
