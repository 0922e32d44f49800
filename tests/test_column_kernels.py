"""The banding gate's column sums kernel against its numpy twin: the same values, bit for bit."""

import numpy as np
import pytest

from darkflow.stats._columns import column_sums, column_sums_reference


def _image(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 7.0, shape).astype(dtype)
    a[rng.random(shape) < 0.2] = np.nan
    a[:, min(3, shape[1] - 1)] = np.nan  # a column without values
    a[0, 0] = np.inf
    w = rng.gamma(2.0, 3.0, shape)
    return a, w


def _same(got, want):
    for g, x in zip(got, want, strict=True):
        assert g.dtype == x.dtype
        assert g.shape == x.shape
        np.testing.assert_array_equal(g, x, strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 7), (37, 5), (1001, 300), (64, 1)])
def test_column_sums_match_reference(dtype, shape):
    a, w = _image(shape, dtype, seed=shape[0])
    _same(column_sums(a, w), column_sums_reference(a, w))


def test_column_sums_with_a_mask_match_reference():
    a, w = _image((513, 257), np.float64, seed=1)
    mask, _ = _image((513, 257), np.float32, seed=2)
    _same(column_sums(a, w, mask=mask), column_sums_reference(a, w, mask=mask))


@pytest.mark.parametrize("layout", ["transposed", "strided"])
def test_column_sums_of_other_layouts_match_reference(layout):
    a, w = _image((300, 400), np.float32, seed=3)
    if layout == "transposed":  # numpy sums a contiguous column pairwise: the twin is taken
        a, w = a.T, w.T
    else:
        a, w = a[::2, 1::2], w[::2, 1::2]
    _same(column_sums(a, w), column_sums_reference(a, w))


def test_column_sums_of_a_wide_image_do_not_depend_on_the_thread_count():
    import numba

    a, w = _image((50, 4099), np.float32, seed=4)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = column_sums(a, w)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = column_sums(a, w)
    finally:
        numba.set_num_threads(before)
    _same(one, two)
    _same(one, column_sums_reference(a, w))


def test_column_sums_count_finite_values_only():
    a = np.array([[1.0, np.nan], [np.inf, 2.0], [3.0, 4.0]], np.float32)
    w = np.ones((3, 2))
    n, s, v = column_sums(a, w)
    assert n.tolist() == [2, 2]
    assert s.tolist() == [4.0, 6.0]
    assert v.tolist() == [2.0, 2.0]
    _same((n, s, v), column_sums_reference(a, w))
