"""A band of a frame's rows gets the local levels it would measure itself from the frame's
(darkflow.stats.noise.FrameLevels): bit for bit, mono and colour, aligned or not."""

import numpy as np
import pytest

from darkflow.stats.noise import frame_levels, local_levels


def _frame(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(100, 5, shape).astype(np.float32)
    a[rng.random(shape) < 0.02] = np.nan
    a[rng.random(shape) < 0.01] += 1000  # stars, hot pixels
    return a


@pytest.mark.parametrize("cfa", [False, True])
@pytest.mark.parametrize(
    "shape", [(200, 70), (131, 45), (64, 33)]
)  # even and odd rows, tiles cut at the frame's end
def test_band_levels_equal_the_bands_own(cfa, shape):
    data = _frame(shape, sum(shape) + cfa)
    levels = frame_levels(data, cfa=cfa)
    smooth, local = local_levels(data, cfa=cfa)
    assert smooth.tobytes() == levels.smooth.tobytes()
    assert local.tobytes() == levels.local.tobytes()
    ny = shape[0]
    bands = [(0, ny), (32, ny), (64, min(ny, 128)), (0, 32), (2, ny - 3), (10, 30), (6, 9)]
    bands += [(s, ny) for s in range(0, ny - 1, 7)]
    for start, stop in bands:
        if start >= stop:
            continue
        band = data[start:stop]
        got = levels.band(slice(start, stop), band)
        want = local_levels(band, cfa=cfa)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            assert g.tobytes() == w.tobytes(), (start, stop)


def test_band_levels_want_a_band_of_the_frame():
    levels = frame_levels(_frame((40, 20), 1))
    with pytest.raises(ValueError, match="contiguous rows"):
        levels.band(slice(0, 40, 2), np.zeros((20, 20), np.float32))
    with pytest.raises(ValueError, match="contiguous rows"):
        levels.band(slice(0, 10), np.zeros((10, 19), np.float32))
