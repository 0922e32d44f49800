"""The clipped-width kernel of the master hold-out gates against its numpy twin."""

import math

import numpy as np
import pytest

from darkflow.stats._clip import clipped_width, clipped_width_reference


@pytest.mark.parametrize("n", [2, 3, 4, 11, 1000, 200_001])
@pytest.mark.parametrize("kind", ["gaussian", "lattice", "cosmics", "nan"])
def test_clipped_width_matches_reference(n, kind):
    rng = np.random.default_rng(n)
    v = rng.normal(800.0, 6.0, n).astype(np.float32)
    if kind == "lattice":  # a 12-bit camera saved in steps of 16 ADU
        v = (np.round(v / 16.0) * 16.0).astype(np.float32)
    elif kind == "cosmics":
        v[:: max(2, n // 50)] += 3000.0
    elif kind == "nan":
        v[::7] = np.nan
        v[1::11] = np.inf
    want = clipped_width_reference(v)
    got = clipped_width(v)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_clipped_width_of_too_few_values_is_nan():
    assert math.isnan(clipped_width(np.array([1.0], np.float32)))
    assert math.isnan(clipped_width(np.array([np.nan, np.inf, 3.0], np.float32)))


def test_clipped_width_leaves_cosmic_rays_out():
    rng = np.random.default_rng(0)
    v = rng.normal(0.0, 2.0, 100_000).astype(np.float32)
    v[::100] = 5000.0
    assert clipped_width(v) == pytest.approx(2.0, rel=0.02)
    assert float(np.std(v)) > 100.0


@pytest.mark.parametrize("n", [3, 11, 1000, 200_001])
@pytest.mark.parametrize("kind", ["gaussian", "lattice", "cosmics", "heavy"])
@pytest.mark.parametrize("iters", [1, 2, 6])
def test_settled_rounds_give_the_same_width_bit_for_bit(n, kind, iters):
    """Leaving out the round that would keep the same values changes nothing."""
    from darkflow.stats._clip import _clip_rounds

    rng = np.random.default_rng(n + iters)
    v = rng.normal(800.0, 6.0, n).astype(np.float32)
    if kind == "lattice":
        v = (np.round(v / 16.0) * 16.0).astype(np.float32)
    elif kind == "cosmics":
        v[:: max(2, n // 50)] += 3000.0
    elif kind == "heavy":  # a long tail: many rounds, each leaving a few values out
        v += rng.standard_cauchy(n).astype(np.float32) * 3.0
    centre = np.float32(np.median(v))
    full = _clip_rounds(v, centre, 5.0, iters, False)
    assert _clip_rounds(v, centre, 5.0, iters, True) == full
    for clip in (1.0, 2.5):
        assert _clip_rounds(v, centre, clip, iters, True) == _clip_rounds(
            v, centre, clip, iters, False
        )


@pytest.mark.parametrize("iters", [0, 1, 6])
def test_no_value_beyond_the_first_limit_gives_the_plain_width(iters):
    """Values all within ``clip`` widths: the first round would keep them all (left out)."""
    from darkflow.stats._clip import _clip_rounds

    v = np.random.default_rng(iters).uniform(-1.0, 1.0, 5000).astype(np.float32)
    centre = np.float32(np.median(v))
    want = _clip_rounds(v, centre, 5.0, iters, False)
    assert want == pytest.approx(float(np.std(v.astype(np.float64))), rel=1e-12)
    assert _clip_rounds(v, centre, 5.0, iters, True) == want
