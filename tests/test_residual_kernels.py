"""The hold-out residual kernels against their numpy twins: the same values, bit for bit."""

import numpy as np
import pytest

from darkflow.stats._residual import (
    compact_residuals,
    compact_residuals_reference,
    outlier_events,
    outlier_events_reference,
)
from darkflow.verify._holdout import frame_residual, frame_residual_reference


def _band(seed, shape=(96, 130), *, invalid_rows=True):
    rng = np.random.default_rng(seed)
    mean = rng.normal(500.0, 3.0, shape).astype(np.float32)
    x = (mean + rng.normal(0.0, 6.0, shape)).astype(np.float32)
    x = np.round(x / 4.0).astype(np.float32) * 4  # a 14-bit camera's steps
    # cosmic rays (tracks of a few pixels), hot pixels, holes
    for y, c in zip(
        rng.integers(1, shape[0] - 3, 12), rng.integers(1, shape[1] - 3, 12), strict=True
    ):
        x[y : y + 2, c : c + 3] += 3000.0
    x[rng.random(shape) < 0.002] -= 400.0
    x[5, 7] = np.nan
    x[6, 8] = np.inf
    scale = rng.uniform(4.0, 8.0, shape).astype(np.float32)
    n_mean = rng.integers(1, 12, shape).astype(np.int32)
    valid = rng.random(shape) > 0.05
    if invalid_rows:
        valid[10:14] = False
        valid[-1] = False
    master = (mean + rng.normal(0.0, 1.0, shape)).astype(np.float32)
    return x, mean, scale, n_mean, valid, master


def _same_arrays(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w, strict=True)


@pytest.mark.parametrize("held", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compact_residuals_match_reference(held, seed):
    x, mean, scale, n_mean, valid, _ = _band(seed)
    _same_arrays(
        compact_residuals(x, mean, scale, n_mean, valid, held=held),
        compact_residuals_reference(x, mean, scale, n_mean, valid, held=held),
    )


@pytest.mark.parametrize("held", [True, False])
@pytest.mark.parametrize("with_master", [True, False])
def test_outlier_events_match_reference(held, with_master):
    x, mean, scale, n_mean, valid, master = _band(3)
    kw = dict(
        held=held,
        t_out=6.0 * 1.03,
        master=master if with_master else None,
        t_up=10.0 * 0.9,
        t_down=-10.0 * 0.9,
    )
    got_at: list = []
    want_at: list = []
    got = outlier_events(x, mean, scale, n_mean, valid, **kw, where=got_at)
    assert got == outlier_events_reference(x, mean, scale, n_mean, valid, **kw, where=want_at)
    _same_arrays(got_at, want_at)
    assert [a.size > 0 for a in got_at] == [with_master, with_master]
    assert got[0] > 0
    if with_master:
        assert got[1] > 0 and got[2] > 0


def test_outlier_events_count_8_connected_groups():
    x = np.zeros((6, 8), np.float32)
    x[1, 1] = x[2, 2] = 10.0  # diagonal neighbours: one event
    x[4, 5] = x[4, 6] = x[5, 6] = 10.0  # an L: one event
    x[0, 7] = 10.0  # a corner pixel alone
    ones = np.ones_like(x)
    kw = dict(held=True, t_out=5.0)
    args = (x, np.zeros_like(x), ones, np.full(x.shape, 4, np.int32), np.ones(x.shape, bool))
    assert outlier_events(*args, **kw) == (3, 0, 0)
    assert outlier_events_reference(*args, **kw) == (3, 0, 0)


@pytest.mark.parametrize("held", [True, False])
@pytest.mark.parametrize("seed", [0, 4])
def test_frame_residual_matches_reference(held, seed):
    x, mean, scale, n_mean, valid, master = _band(seed, shape=(160, 150))
    own = np.maximum(scale, np.float32(1.3) * scale[::-1]).astype(np.float32)
    for m in (None, master):
        for es in (None, own):
            kw = dict(held=held, master=m, event_scale=es)
            got = frame_residual(x, mean, scale, n_mean, valid, **kw)
            want = frame_residual_reference(x, mean, scale, n_mean, valid, **kw)
            assert got == want
            assert got is not None and got.outliers > 0
    # the transients are counted in the event scale (and only they)
    narrow = frame_residual(x, mean, scale, n_mean, valid, held=held, master=master)
    wide = frame_residual(
        x, mean, scale, n_mean, valid, held=held, master=master, event_scale=np.float32(1e6) * scale
    )
    assert narrow.up + narrow.down > 0 and wide.up == wide.down == 0
    assert wide.outliers == narrow.outliers


def test_frame_residual_of_other_dtypes_takes_the_twin():
    x, mean, scale, n_mean, valid, _ = _band(5)
    args = (x.astype(np.float64), mean.astype(np.float64), scale, n_mean.astype(np.float32), valid)
    assert frame_residual(*args, held=True) == frame_residual_reference(*args, held=True)


def test_frame_residual_of_too_few_pixels_is_none():
    x, mean, scale, n_mean, valid, _ = _band(6)
    valid[:] = False
    valid[0, :50] = True
    assert frame_residual(x, mean, scale, n_mean, valid, held=True) is None
