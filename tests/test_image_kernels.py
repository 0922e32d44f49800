"""numba image kernels against their numpy references."""

import numpy as np
import pytest
from helpers.threads import numba_threads, thread_counts

from darkflow.stats._image import (
    grid_interp,
    grid_interp_reference,
    neighbour_median8,
    neighbour_median8_reference,
    tile_levels,
    tile_levels_reference,
)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (2, 2), (37, 53), (128, 96)])
def test_neighbour_median_matches_reference(shape):
    rng = np.random.default_rng(sum(shape))
    data = rng.normal(100, 10, shape).astype(np.float32)
    data.ravel()[rng.choice(data.size, max(1, data.size // 20), replace=False)] = np.nan
    np.testing.assert_array_equal(neighbour_median8(data), neighbour_median8_reference(data))


def test_neighbour_median_of_all_nan_is_nan():
    out = neighbour_median8(np.full((3, 3), np.nan, np.float32))
    assert np.isnan(out).all()


@pytest.mark.parametrize(("shape", "tile"), [((64, 64), 16), ((100, 130), 32), ((5, 7), 32)])
def test_tile_levels_match_reference(shape, tile):
    rng = np.random.default_rng(shape[0])
    data = rng.normal(500, 20, shape)
    data += 0.3 * np.arange(shape[1])[None, :]  # gradient
    data.ravel()[rng.choice(data.size, data.size // 50, replace=False)] += 5000  # stars
    data.ravel()[rng.choice(data.size, data.size // 100, replace=False)] = np.nan
    data = data.astype(np.float32)
    np.testing.assert_allclose(
        tile_levels(data, tile), tile_levels_reference(data, tile), rtol=1e-9
    )


def test_tile_levels_nan_for_empty_and_the_same_for_any_thread_count():
    data = np.full((40, 40), np.nan, np.float32)
    data[:20, :20] = 3.0
    grid = tile_levels(data, 20)
    assert grid[0, 0] == 3.0 and np.isnan(grid[1, 1])
    rng = np.random.default_rng(0)
    big = rng.normal(0, 1, (300, 300)).astype(np.float32)
    reference = tile_levels_reference(big, 32)
    for threads in thread_counts():
        with numba_threads(threads):
            got = tile_levels(big, 32)
        np.testing.assert_allclose(got, reference, rtol=1e-9)
        assert got.tobytes() == tile_levels(big, 32).tobytes()


def test_neighbour_median_by_hand():
    data = np.arange(9, dtype=np.float32).reshape(3, 3)  # 0 1 2 / 3 4 5 / 6 7 8
    out = neighbour_median8(data)
    # centre: neighbours 0 1 2 3 5 6 7 8, median (3 + 5) / 2; corner (0, 0), edges reflected:
    # neighbours 4 3 4 1 1 4 3 4 -> sorted 1 1 3 3 4 4 4 4, median (3 + 4) / 2
    assert out[1, 1] == 4.0 and out[0, 0] == 3.5
    data[0, 1] = np.nan  # a NaN neighbour is left out: 7 values, the middle one
    assert neighbour_median8(data)[1, 1] == 5.0  # 0 2 3 5 6 7 8


def test_tile_level_is_the_background_of_noise_with_stars():
    """On Gaussian noise the clipped mode is the mean within its sampling spread; a few bright
    stars (1 % of the pixels) move it by much less than the noise."""
    rng = np.random.default_rng(11)
    tile, sigma = 64, 10.0
    data = rng.normal(500.0, sigma, (tile * 4, tile * 4))
    data.ravel()[rng.choice(data.size, data.size // 100, replace=False)] += 3000.0
    grid = tile_levels(data.astype(np.float32), tile)
    # the mode estimator 2.5 med - 1.5 mean is noisier than the mean: ~ 2 sigma / sqrt(n)
    spread = 2.0 * sigma / tile
    assert np.all(np.abs(grid - 500.0) < 5 * spread)
    assert np.all(tile_levels(np.full((64, 64), 7.5, np.float32), 32) == 7.5)


def test_background_map_is_the_kernels_and_follows_a_gradient():
    from darkflow.verify._residuals import (
        background_map,
        neighbour_median,
        neighbour_median_reference,
    )

    rng = np.random.default_rng(5)
    ny, nx, tile = 96, 160, 32
    yy, xx = np.mgrid[:ny, :nx]
    truth = 300.0 + 0.5 * xx + 0.25 * yy  # a linear sky gradient (ADU)
    data = (truth + rng.normal(0, 3.0, (ny, nx))).astype(np.float32)
    data[10:14, 20:24] += 4000  # a star
    np.testing.assert_allclose(neighbour_median(data), neighbour_median_reference(data), atol=1e-4)
    # the map is the tile levels of the kernel, interpolated by the grid kernel
    expected = grid_interp_reference(tile_levels_reference(data, tile), tile, (ny, nx))
    got = background_map(data, tile=tile)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # bilinear between tile centres reproduces a linear gradient up to each tile's noise
    inner = (slice(tile // 2, ny - tile // 2), slice(tile // 2, nx - tile // 2))
    assert np.max(np.abs(got[inner] - truth[inner])) < 5 * 2.0 * 3.0 / tile + 0.01
    # a tile with no finite pixel takes the median of the others
    holed = data.copy()
    holed[:tile, :tile] = np.nan
    grid = tile_levels_reference(holed, tile)
    grid[0, 0] = np.nanmedian(grid)
    np.testing.assert_allclose(
        background_map(holed, tile=tile), grid_interp_reference(grid, tile, (ny, nx)), rtol=1e-6
    )


@pytest.mark.parametrize("shape", [(3, 3), (64, 80), (257, 129)])
def test_neighbour_median_inside_without_nan_matches_reference(shape):
    # the branch-free path of the kernel (every neighbour finite), ties and infinities included
    rng = np.random.default_rng(shape[1])
    data = np.round(rng.normal(100, 3, shape)).astype(np.float32)
    data.ravel()[:: max(1, data.size // 7)] = np.inf
    data.ravel()[3 :: max(1, data.size // 5)] = -np.inf
    np.testing.assert_array_equal(neighbour_median8(data), neighbour_median8_reference(data))


@pytest.mark.parametrize(
    ("shape", "tile"), [((1, 1), 32), ((5, 7), 32), ((100, 130), 32), ((33, 64), 16), ((96, 40), 8)]
)
def test_grid_interp_matches_reference(shape, tile):
    ty, tx = -(-shape[0] // tile), -(-shape[1] // tile)
    grid = np.random.default_rng(tile).normal(100, 5, (ty, tx))
    np.testing.assert_array_equal(
        grid_interp(grid, tile, shape), grid_interp_reference(grid, tile, shape)
    )


def test_tile_levels_of_negative_values_and_zeros_match_reference():
    # the radix sort of the tiles orders float bit patterns: negatives, -0.0 and +0.0, ties
    rng = np.random.default_rng(11)
    data = np.round(rng.normal(-3, 4, (70, 90))).astype(np.float32)
    data[::7, ::5] = -0.0
    data[3::9, ::4] = np.inf
    data[5::11, 2::3] = -np.inf
    data[:16, :16] = rng.normal(-1e6, 1e-3, (16, 16)).astype(np.float32)
    for tile in (8, 16, 32):
        np.testing.assert_allclose(
            tile_levels(data, tile), tile_levels_reference(data, tile), rtol=1e-9
        )


@pytest.mark.parametrize("n", [1, 2, 255, 256, 1024])
def test_radix_sort_of_float_keys_equals_np_sort(n):
    from darkflow.stats._image import _radix_sort_keys

    rng = np.random.default_rng(n)
    values = rng.normal(0, 1e3, n).astype(np.float32)
    values[:: max(1, n // 5)] = 0.0
    values[1 :: max(2, n // 3)] = -0.0
    bits = values.view(np.uint32)
    keys = np.where(bits & 0x80000000, ~bits, bits | 0x80000000).astype(np.uint32)
    _radix_sort_keys(keys, np.empty_like(keys), n, np.empty((4, 256), np.int64))
    back = np.where(keys & 0x80000000, keys & 0x7FFFFFFF, ~keys).astype(np.uint32)
    np.testing.assert_array_equal(back.view(np.float32), np.sort(values))


@pytest.mark.parametrize("seed", range(6))
def test_mad_of_sorted_values_is_the_median_of_the_deviations(seed):
    # the bisection over the two sorted runs of deviations finds the values a sort gives,
    # ties (integer data) and ranges inside the array included
    from darkflow.stats._image import _mad_sorted

    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        v = rng.integers(-3, 4, n).astype(np.float64) if seed % 2 else rng.normal(0, 1, n)
        v.sort()
        lo = int(rng.integers(0, n))
        hi = int(rng.integers(lo + 1, n + 1))
        med = float(np.median(v[lo:hi]))
        expected = float(np.median(np.sort(np.abs(v[lo:hi] - med))))
        assert _mad_sorted(v, lo, hi, med) == expected


# ----------------------------------------------------------------------------- row medians
def _rows_with_gaps(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 5.0, shape)
    a[: shape[0] // 3] = np.round(a[: shape[0] // 3])  # ties (integer data)
    a[rng.random(shape) < 0.1] = np.nan
    if shape[0] > 3:
        a[1] = np.nan  # a row without values
        a[2, :3] = np.inf  # infinities are values
    return a.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (4, 1), (5, 17), (33, 64), (70, 301)])
def test_row_medians_equal_a_sort_of_every_row(shape, dtype):
    from darkflow.stats._image import (
        centre_rows,
        centre_rows_reference,
        row_medians,
        row_medians_reference,
    )
    from darkflow.verify._residuals import nanmedian_along

    a = _rows_with_gaps(shape, dtype, sum(shape))
    np.testing.assert_array_equal(row_medians(a), nanmedian_along(a, 1))
    np.testing.assert_array_equal(row_medians_reference(a), nanmedian_along(a, 1))
    for arr in (a, a.T):  # a transposed view: the same values and the same memory layout
        got, ref = centre_rows(arr), centre_rows_reference(arr)
        assert got.dtype == ref.dtype and got.strides == ref.strides
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (4, 1), (5, 17), (33, 64), (70, 301), (300, 260)])
def test_centre_rows_where_equals_the_float64_copies(shape, dtype):
    """Each row of ``values`` where ``like`` is finite, minus its float64 median: equal bit for
    bit to the copies it replaces (ties, NaN and inf in both, rows without values, views of a
    colour plane, odd and even counts)."""
    from darkflow.stats._image import (
        centre_rows_reference as reference,
    )
    from darkflow.stats._image import (
        centre_rows_where,
        centre_rows_where_reference,
    )

    values = _rows_with_gaps(shape, dtype, sum(shape) + 1)
    like = _rows_with_gaps(shape, np.float32, sum(shape) + 2)
    for v, lk in ((values, like), (values[::2, 1::2], like[::2, 1::2]), (values.T, like.T)):
        if not v.size:
            continue
        got, want = centre_rows_where(v, lk), centre_rows_where_reference(v, lk)
        assert got.dtype == want.dtype == np.float64 and got.flags.c_contiguous
        assert got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        # and the values of a sort of every row (a zero's sign aside)
        np.testing.assert_array_equal(got, centre_rows_where_reference(v, lk, reference))
    if shape[0] > 3:  # the float32 values' median is not float32's (the mean of two middles)
        two = np.array([[1.0, 1.0000001, np.nan]], np.float32)
        mid = centre_rows_where(two, np.zeros((1, 3), np.float32))[0]
        assert mid[0] == (np.float64(two[0, 0]) - np.float64(two[0, 1])) / 2.0


def test_row_medians_the_same_for_any_thread_count():
    from darkflow.stats._image import centre_rows_where, row_medians

    a = _rows_with_gaps((700, 200), np.float32, 5)  # rows for 2 threads at least
    like = _rows_with_gaps((700, 200), np.float32, 6)
    reference, centred = row_medians(a), centre_rows_where(a, like)
    for threads in thread_counts():
        with numba_threads(threads):
            assert row_medians(a).tobytes() == reference.tobytes()
            assert centre_rows_where(a, like).tobytes() == centred.tobytes()


def test_row_median_by_hand():
    from darkflow.stats._image import row_medians

    a = np.array([[3.0, np.nan, 1.0, 2.0], [4.0, 1.0, np.nan, np.nan], [np.nan] * 4])
    np.testing.assert_array_equal(row_medians(a), [2.0, 2.5, np.nan])


# ----------------------------------------------------------------------------- residual summary
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_summary_equals_numpy_histogram(dtype):
    from darkflow.stats._image import residual_summary, residual_summary_reference
    from darkflow.verify._residuals import HIST_EDGES

    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 2.5, (120, 170)).astype(dtype)
    z[0, : HIST_EDGES.size] = HIST_EDGES.astype(dtype)  # values on the edges
    z[1, :6] = [6.0, -6.0, 7.5, -9.0, np.nextafter(6.0, 0.0), np.nextafter(-6.0, 0.0)]
    valid = rng.random(z.shape) < 0.7
    valid[:2] = True
    got = residual_summary(z, valid, HIST_EDGES, -6.0)
    ref = residual_summary_reference(z, valid, HIST_EDGES, -6.0)
    assert got[0].tobytes() == ref[0].tobytes() and got[1] == ref[1]
    np.testing.assert_array_equal(got[2], ref[2])
    assert got[2].sum() == np.count_nonzero(valid)


def test_residual_summary_leaves_nan_to_the_reference():
    from darkflow.stats._image import residual_summary

    z = np.zeros((4, 4), np.float32)
    z[0, 0] = np.nan
    valid = np.ones(z.shape, bool)
    values, below, counts = residual_summary(z, valid, np.linspace(-1.0, 1.0, 5), -0.5)
    assert values.size == 16 and below == 0 and counts.sum() == 15  # numpy drops the NaN


def test_content_cache_reuses_results_of_equal_inputs_only():
    from darkflow.stats._image import ContentCache

    calls = []

    def fn(a):
        calls.append(a.copy())
        return neighbour_median8(a)

    cache = ContentCache(2)
    rng = np.random.default_rng(3)
    a = rng.normal(100, 10, (40, 30)).astype(np.float32)
    a[5, 7] = np.nan
    first = cache.get("nm", a, fn)
    again = cache.get("nm", a.copy(), fn)  # another array, the same bytes: reused
    assert again is first and len(calls) == 1
    assert not first.flags.writeable  # a caller cannot change what the next one gets
    np.testing.assert_array_equal(first, neighbour_median8(a))
    b = a.copy()
    b[-1, -1] += 1  # one value differs (not among the sampled ones): computed anew
    np.testing.assert_array_equal(cache.get("nm", b, fn), neighbour_median8(b))
    assert len(calls) == 2
    assert cache.get("other", a, fn) is not first and len(calls) == 3  # tags apart
    cache.get("nm", a.astype(np.float64), fn)  # same values, another dtype: not the same input
    assert len(calls) == 4
    a[0, 0] += 1  # the caller changes its array afterwards: the cache kept its own copy
    cache.get("nm", a, fn)
    assert len(calls) == 5
    # bounded: two inputs per tag; the least recently used is dropped
    assert len(cache._entries["nm"]) == 2
    cache.get("nm", b, fn)
    assert len(calls) == 6  # b was dropped by the two later inputs
    # inputs beyond the byte bound are computed each time and never kept
    small = ContentCache(2, max_bytes=a.nbytes - 1)
    small.get("nm", a, fn)
    small.get("nm", a, fn)
    assert len(calls) == 8 and not small._entries.get("nm")


@pytest.mark.parametrize("colour", [False, True])
def test_model_results_shared_between_equal_models_are_the_computed_ones(colour):
    from darkflow.stats import cfa, robust_std
    from darkflow.stats._robust import nanmedian
    from darkflow.verify._lightgates import _MODEL_RESULTS, model_hot_planes, template_levels

    rng = np.random.default_rng(11)
    model = rng.normal(50, 2, (64, 48)).astype(np.float32)
    model.ravel()[rng.choice(model.size, 40, replace=False)] += 500  # hot pixels
    _MODEL_RESULTS.clear()
    for _ in range(2):  # computed, then shared: the same values both times
        local, near, level = template_levels(model.copy(), colour)
        want_near = neighbour_median8(model)
        want_local = cfa.per_plane(neighbour_median8, model) if colour else want_near
        np.testing.assert_array_equal(near, want_near)
        np.testing.assert_array_equal(local, want_local)
        assert level == float(nanmedian(model))
        hots = model_hot_planes(model.copy(), colour)
        planes = cfa.planes(model) if colour else [model]
        assert len(hots) == len(planes)
        for hot, plane in zip(hots, planes, strict=True):
            hf = plane.astype(np.float64) - neighbour_median8(plane)
            spread = robust_std(hf)
            assert np.count_nonzero(hot) > 0
            np.testing.assert_array_equal(hot, np.abs(hf) > 5.0 * spread)
    _MODEL_RESULTS.clear()
