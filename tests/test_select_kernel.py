"""The bracketed median (darkflow.stats._select) against numpy's median: the same value and
type, whether the array has many ties at its median or none."""

import numpy as np
import pytest

from darkflow.stats._robust import median
from darkflow.stats._select import MIN_SIZE, window_median


def _cases(rng, n):
    yield "gamma", rng.gamma(2.0, 1.0, n)
    yield "half zeros", np.maximum(rng.normal(0.0, 1.0, n), 0.0)
    yield "mostly zeros", np.where(rng.random(n) < 0.9, 0.0, rng.gamma(2.0, 1.0, n))
    yield "signed zeros", np.where(rng.random(n) < 0.6, -0.0, rng.normal(0.0, 1.0, n))
    yield "clipped at 1", np.minimum(rng.gamma(2.0, 1.0, n), 1.0)
    yield "few values f32", (np.round(rng.normal(5.0, 2.0, n) * 4) / 4).astype(np.float32)
    yield "few values", np.round(rng.normal(0.0, 3.0, n))
    yield "two values", np.where(rng.random(n) < 0.5, 1.0, 2.0)
    yield "sorted ties", np.sort(np.where(rng.random(n) < 0.4, 3.0, rng.normal(3.0, 1.0, n)))
    yield (
        "infinities",
        np.where(rng.random(n) < 0.3, np.inf, np.where(rng.random(n) < 0.4, 0.0, -np.inf)),
    )


@pytest.mark.parametrize("n", [MIN_SIZE, MIN_SIZE + 1, 300_001, 300_000])
def test_window_median_equals_numpys_median(n):
    rng = np.random.default_rng(n)
    for name, a in _cases(rng, n):
        want = np.median(a)
        got = window_median(a)
        if got is not None:
            assert type(got) is type(want), name
            assert got == want or (np.isnan(want) and np.isnan(got)), name
        viaflow = median(a)
        assert type(viaflow) is type(want) and (viaflow == want or np.isnan(want)), name


def test_window_median_takes_the_tied_arrays_only():
    rng = np.random.default_rng(1)
    assert window_median(rng.normal(0.0, 1.0, 100_000)) is None  # numpy's selection is as fast
    assert window_median(np.zeros(100)) is None  # small
    assert window_median(np.where(rng.random(100_000) < 0.8, 0.0, 1.0)) == 0.0
