"""Photometry's bad-pixel filling kernel (darkflow.verify._photkernels) against its numpy twin:
equal bit for bit."""

import numpy as np
import pytest

from darkflow.verify._photkernels import fill_bad, fill_bad_reference


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (3, 3), (23, 23), (40, 17)])
@pytest.mark.parametrize("share", [0.05, 0.4, 1.0])
def test_fill_bad_matches_reference(shape, share):
    rng = np.random.default_rng(shape[0] * 100 + int(share * 10))
    cut = np.round(rng.normal(100.0, 10.0, shape), 1)  # ties among the neighbours
    cut[rng.random(shape) < 0.1] = np.nan
    if cut.size > 3:
        cut.flat[2] = np.inf
        cut.flat[3] = -np.inf
    bad = rng.random(shape) < share
    got = fill_bad(cut, bad)
    np.testing.assert_array_equal(got, fill_bad_reference(cut, bad), strict=True)
    np.testing.assert_array_equal(got[~bad], cut[~bad])
    assert cut is not got


def test_fill_bad_of_float32_goes_to_the_twin():
    rng = np.random.default_rng(1)
    cut = rng.normal(0.0, 1.0, (9, 9)).astype(np.float32)
    bad = rng.random((9, 9)) < 0.3
    np.testing.assert_array_equal(fill_bad(cut, bad), fill_bad_reference(cut, bad), strict=True)
