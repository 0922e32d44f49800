"""The star-detection front kernel (darkflow.stats._detect) against its numpy/scipy twin:
the residual, the box mean and the detection mask equal bit for bit."""

import numpy as np
import pytest

from darkflow.stats._detect import detection_maps, detection_maps_reference

SHAPES = [(1, 1), (1, 5), (2, 3), (7, 1), (3, 3), (37, 53), (256, 301)]


def _frame(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    bg = rng.normal(100.0, 20.0, shape).astype(np.float32)
    img = (bg + rng.normal(0.0, 5.0, shape) + 80.0 * (rng.random(shape) < 0.05)).astype(dtype)
    sig = rng.uniform(2.0, 7.0, shape).astype(np.float32)
    img[rng.random(shape) < 0.03] = np.nan
    if img.size > 4:
        img.flat[1] = np.inf
        bg.flat[2] = np.nan
        sig.flat[3] = 0.0
    return img, bg, sig


def _same(got, want):
    for g, w in zip(got, want, strict=True):
        if isinstance(w, np.ndarray):
            assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w, strict=True)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_detection_maps_match_uniform_filter(shape, dtype):
    img, bg, sig = _frame(shape, dtype, seed=shape[0] * 31 + shape[1])
    got = detection_maps(img, bg, sig, 5.0)
    _same(got, detection_maps_reference(img, bg, sig, 5.0))
    if min(shape) > 30:
        assert got[2].any() and not got[2].all()


def test_detection_maps_of_scalars_and_views_go_to_the_twin():
    img, bg, sig = _frame((40, 50), np.float32, seed=3)
    _same(detection_maps(img, 100.0, 4.0, 5.0), detection_maps_reference(img, 100.0, 4.0, 5.0))
    views = (img[::2, 1::2], bg[::2, 1::2], sig[::2, 1::2])
    _same(detection_maps(*views, 3.0), detection_maps_reference(*views, 3.0))
