"""add_within (numba) against its numpy twin, bit for bit."""

import numpy as np
import pytest

from darkflow.stats._accumulate import add_within, add_within_reference


def _frames(seed: int, shape=(61, 83), n=5):
    rng = np.random.default_rng(seed)
    centre = rng.normal(500.0, 20.0, shape).astype(np.float32)
    limit = rng.uniform(1.0, 30.0, shape).astype(np.float32)
    frames = []
    for _ in range(n):
        x = (centre + rng.normal(0.0, 15.0, shape)).astype(np.float32)
        x.flat[rng.integers(0, x.size, 20)] = np.nan
        x.flat[rng.integers(0, x.size, 5)] = np.inf
        edge = rng.integers(0, x.size, 50)  # exactly on the limit: kept
        x.flat[edge] = centre.flat[edge] + limit.flat[edge]
        frames.append(x)
    return centre, limit, frames


@pytest.mark.parametrize("seed", [0, 1])
def test_add_within_is_its_twin(seed):
    centre, limit, frames = _frames(seed)
    totals = [np.zeros(centre.shape, np.float64) for _ in range(2)]
    counts = [np.zeros(centre.shape, np.int32) for _ in range(2)]
    for x in frames:
        add_within(x, centre, limit, totals[0], counts[0])
        add_within_reference(x, centre, limit, totals[1], counts[1])
    np.testing.assert_array_equal(counts[0], counts[1])
    assert totals[0].tobytes() == totals[1].tobytes()
    assert 0 < counts[0].sum() < centre.size * len(frames)  # some values left out


def test_other_types_take_the_twins_way():
    centre, limit, frames = _frames(2)
    x = frames[0].astype(np.float64)
    total, count = np.zeros(centre.shape), np.zeros(centre.shape, np.int32)
    ref_total, ref_count = np.zeros(centre.shape), np.zeros(centre.shape, np.int32)
    add_within(x, centre, limit, total, count)
    add_within_reference(x, centre, limit, ref_total, ref_count)
    assert total.tobytes() == ref_total.tobytes()
    np.testing.assert_array_equal(count, ref_count)
