"""darkflow.stats.median: np.median's value and type, whatever the data."""

import warnings

import numpy as np
import pytest

from darkflow.stats import median, nanmedian


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 10, 11, 1000, 100001, 100002])
def test_median_equals_numpy(dtype, n):
    rng = np.random.default_rng(n)
    for values in (
        rng.normal(100, 10, n),
        np.round(rng.normal(0, 2, n)),  # ties
        rng.standard_cauchy(n),
        np.concatenate([rng.normal(0, 1, n - n // 3), np.full(n // 3, np.inf)]),
    ):
        v = values.astype(dtype)
        got, want = median(v), np.median(v)
        assert type(got) is type(want)
        assert got.tobytes() == want.tobytes(), (got, want)


def test_median_of_other_arrays_is_numpys():
    for v in (np.arange(7), np.array([1.0, np.nan, 2.0]), np.array([[3.0, 1.0], [2.0, 5.0]])):
        np.testing.assert_equal(median(v), np.median(v))
    with warnings.catch_warnings():  # numpy warns about both (an empty mean, inf - inf)
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(median(np.array([], dtype=np.float32)))
        assert np.isnan(median(np.array([-np.inf, np.inf]))) and np.isnan(
            np.median(np.array([-np.inf, np.inf]))
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 1000, 20001])
def test_nanmedian_equals_numpy(dtype, n):
    rng = np.random.default_rng(n + 1)
    v = rng.normal(5, 3, n).astype(dtype)
    for share in (0.0, 0.3):
        w = v.copy()
        w[rng.random(n) < share] = np.nan
        if np.isnan(w).all():
            continue
        got, want = nanmedian(w), np.nanmedian(w)
        assert type(got) is type(want) and got.tobytes() == want.tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(nanmedian(np.full(4, np.nan, dtype)))
    assert nanmedian(np.array([[1.0, np.nan], [3.0, 2.0]])) == 2.0
