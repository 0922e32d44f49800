"""The hot-persistence counts kernels against their numpy twins (bit for bit)."""

import numpy as np
import pytest

from darkflow.master._fitsio import _hot_counts_reference, _hot_from_counts
from darkflow.master._hotkernel import hot_counts, hot_from_counts


def _planes(seed: int, shape=(37, 53)):
    rng = np.random.default_rng(seed)
    n_used = rng.integers(0, 30, shape).astype(np.uint16)
    n_low = rng.integers(0, 3, shape).astype(np.uint16)
    n_high = rng.integers(0, 3, shape).astype(np.uint16)
    valid = (n_used.astype(np.int32) + n_low + n_high).astype(np.float64)
    counts = np.minimum(rng.integers(0, 40, shape), valid).astype(np.uint16)
    hot = _hot_from_counts(counts, valid)
    return {"hot_persistence": hot, "n_used": n_used, "n_low": n_low, "n_high": n_high}, counts


def _kernel(planes):
    return hot_counts(
        planes["hot_persistence"], planes["n_used"], planes["n_low"], planes["n_high"]
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_are_the_twins_and_give_the_plane_back(seed):
    planes, counts = _planes(seed)
    got = _kernel(planes)
    ref = _hot_counts_reference(planes)
    assert got is not None and ref is not None
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(
        got[planes["n_used"] + planes["n_low"] + planes["n_high"] > 0],
        counts[planes["n_used"] + planes["n_low"] + planes["n_high"] > 0],
    )
    back = hot_from_counts(got, planes["n_used"], planes["n_low"], planes["n_high"])
    valid = (planes["n_used"].astype(np.int32) + planes["n_low"] + planes["n_high"]).astype(float)
    np.testing.assert_array_equal(back, _hot_from_counts(got, valid))
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, planes["hot_persistence"])


@pytest.mark.parametrize(
    "spoil",
    [
        lambda h: h.__setitem__((3, 4), np.float32(0.123456)),  # not a count / valid
        lambda h: h.__setitem__((0, 0), np.nan),
        lambda h: h.__setitem__((5, 5), np.inf),
        lambda h: h.__setitem__((6, 6), np.float32(-1.0)),
        lambda h: h.__setitem__((7, 7), np.float32(1e6)),  # beyond uint16
    ],
)
def test_a_plane_counts_cannot_give_back_is_refused_by_both(spoil):
    planes, _ = _planes(4)
    planes["n_used"][:] = np.maximum(planes["n_used"], 1)  # every pixel has frames
    spoil(planes["hot_persistence"])
    with np.errstate(invalid="ignore"):  # numpy casts NaN to an integer on its way
        assert _hot_counts_reference(planes) is None
    assert _kernel(planes) is None


def test_no_valid_frame_needs_a_zero():
    planes, _ = _planes(5)
    empty = (planes["n_used"] + planes["n_low"] + planes["n_high"]) == 0
    assert empty.any()
    assert _kernel(planes) is not None
    planes["hot_persistence"][np.argwhere(empty)[0][0], np.argwhere(empty)[0][1]] = 0.5
    assert _hot_counts_reference(planes) is None and _kernel(planes) is None
