"""The vertical-residual kernel (darkflow.stats._vertical) against its numpy twin."""

import numpy as np
import pytest

from darkflow.stats._vertical import vertical_residual_of, vertical_residual_reference


@pytest.mark.parametrize("shape", [(1, 5), (4, 3), (5, 7), (9, 4), (120, 77)])
@pytest.mark.parametrize("step", [1, 2])
def test_vertical_residual_kernel_matches_numpy(shape, step):
    rng = np.random.default_rng(sum(shape) + step)
    data = rng.normal(50, 10, shape).astype(np.float32)
    data[rng.random(shape) < 0.02] = np.inf
    unc = rng.uniform(1, 20, shape).astype(np.float32)
    unc[rng.random(shape) < 0.02] = 0.0  # a zero spread: infinities as numpy gives them
    unc[rng.random(shape) < 0.02] = np.nan
    valid = rng.random(shape) > 0.1
    got = vertical_residual_of(data, unc, valid, step)
    want = vertical_residual_reference(data, unc, valid, step)
    assert got.dtype == want.dtype == np.float32
    assert got.tobytes() == want.tobytes()


def test_vertical_residual_of_other_dtypes_is_the_twins():
    rng = np.random.default_rng(1)
    data = rng.normal(0, 1, (30, 20))  # float64: the numpy path
    unc = np.ones((30, 20))
    valid = np.ones((30, 20), bool)
    np.testing.assert_array_equal(
        vertical_residual_of(data, unc, valid, 1), vertical_residual_reference(data, unc, valid, 1)
    )
