"""The banding gate's residual kernel (darkflow.stats._banding) against its numpy twin: the
residuals and variances equal bit for bit."""

import numpy as np
import pytest

from darkflow.stats._banding import banding_inputs, banding_inputs_reference


def _inputs(shape, seed):
    rng = np.random.default_rng(seed)
    bg = rng.normal(100.0, 5.0, shape).astype(np.float32)
    u = rng.uniform(2.0, 12.0, shape).astype(np.float32)
    c = (bg + rng.normal(0.0, 1.0, shape) * u * 3.0).astype(np.float32)
    if c.size > 6:
        c.flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
        u.flat[4:6] = [0.0, np.nan]  # a zero and an unknown uncertainty
        bg.flat[3] = -0.0
    valid = rng.random(shape) < 0.85
    columns = rng.random(shape[1]) < 0.1
    return c, bg, u, valid, columns


def _same(got, want):
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (130, 211)])
@pytest.mark.parametrize("with_columns", [False, True])
@pytest.mark.parametrize("w2", [1.0, 1.37])
def test_banding_inputs_match_reference(shape, with_columns, w2):
    c, bg, u, valid, columns = _inputs(shape, seed=shape[1])
    cols = columns if with_columns else None
    _same(
        banding_inputs(c, bg, u, valid, cols, w2),
        banding_inputs_reference(c, bg, u, valid, cols, w2),
    )


def test_banding_inputs_of_other_dtypes_and_views_match_reference():
    c, bg, u, valid, columns = _inputs((40, 60), seed=4)
    cases = [
        (c.astype(np.float64), bg, u, valid),  # numpy's path (float64 differences)
        (c[:, ::2], bg[:, ::2], u[:, ::2], valid[:, ::2]),  # strided views
        (c.T, bg.T, u.T, valid.T),
    ]
    for a, b, s, v in cases:
        cols = columns[: a.shape[1]] if a.shape[1] <= columns.size else None
        _same(
            banding_inputs(a, b, s, v, cols, 1.2),
            banding_inputs_reference(a, b, s, v, cols, 1.2),
        )
