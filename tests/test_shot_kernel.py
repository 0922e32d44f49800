"""The shot-signal kernel (darkflow.stats._shot) against its numpy twin: the same values."""

import numpy as np
import pytest

from darkflow.stats._shot import shot_signal_of, shot_signal_of_reference


def _frame(shape, seed):
    rng = np.random.default_rng(seed)
    cal = rng.normal(40, 12, shape).astype(np.float32)
    cal[rng.random(shape) < 0.01] += 3000  # stars and hot pixels
    cal[rng.random(shape) < 0.01] = np.nan
    cal[rng.random(shape) < 0.002] = -np.inf
    smooth = np.full(shape, 38, np.float32) + rng.normal(0, 2, shape).astype(np.float32)
    smooth[rng.random(shape) < 0.05] = np.nan  # the pixel's own value stands in
    smooth[:2] = -5  # a negative background
    local = cal + rng.normal(0, 5, shape).astype(np.float32)
    local[rng.random(shape) < 0.01] = np.nan
    var = rng.uniform(5, 50, shape).astype(np.float32)
    return cal, smooth, local, var


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (64, 90)])
@pytest.mark.parametrize("base_kind", ["array32", "scalar", "array64"])
@pytest.mark.parametrize("gain", [1.7, np.float64(0.23), np.float32(3.1)])
def test_shot_signal_kernel_matches_numpy(shape, base_kind, gain):
    cal, smooth, local, var = _frame(shape, sum(shape))
    base = {"array32": var, "scalar": 21.5, "array64": var.astype(np.float64)}[base_kind]
    got = shot_signal_of(cal, smooth, local, base, gain, 0.409)
    want = shot_signal_of_reference(cal, smooth, local, base, gain, 0.409)
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_shot_signal_kernel_without_background():
    cal, _, local, var = _frame((20, 30), 4)
    smooth = np.full(cal.shape, np.nan, np.float32)
    np.testing.assert_array_equal(
        shot_signal_of(cal, smooth, local, var, 2.0, 0.409),
        shot_signal_of_reference(cal, smooth, local, var, 2.0, 0.409),
    )


def test_shot_signal_of_a_float64_frame_keeps_numpy_promotion():
    cal, smooth, local, var = _frame((10, 12), 9)
    cal64 = cal.astype(np.float64)
    np.testing.assert_array_equal(
        shot_signal_of(cal64, smooth, local, var, 1.3, 0.409),
        shot_signal_of_reference(cal64, smooth, local, var, 1.3, 0.409),
    )
