"""darkflow.stats.cfa: colour phases of a Bayer frame, their names and superpixels."""

from __future__ import annotations

import numpy as np
import pytest

from darkflow.stats import cfa
from darkflow.verify import residual_parts


def test_phases_cut_and_merge_back():
    a = np.arange(7 * 10, dtype=np.float32).reshape(7, 10)
    parts = cfa.planes(a)
    assert [p.shape for p in parts] == [(4, 5), (4, 5), (3, 5), (3, 5)]
    assert parts[1][0, 0] == a[0, 1] and parts[2][0, 0] == a[1, 0]
    np.testing.assert_array_equal(cfa.merge_planes(parts, a.shape), a)
    doubled = cfa.per_plane(lambda p: 2 * p, a)
    np.testing.assert_array_equal(doubled, 2 * a)


def test_channel_names_and_patterns():
    assert cfa.channel_names("RGGB") == ("R", "G1", "G2", "B")
    assert cfa.channel_names("gbrg") == ("G1", "B", "R", "G2")
    assert cfa.is_cfa("BGGR") and not cfa.is_cfa(None) and not cfa.is_cfa("RGB")
    with pytest.raises(ValueError):
        cfa.channel_names("CMYK")


def test_superpixels():
    a = np.arange(5 * 6, dtype=np.float64).reshape(5, 6)
    s = cfa.superpixel(a)
    assert s.shape == (2, 3) and s[0, 0] == a[0, 0] + a[0, 1] + a[1, 0] + a[1, 1]
    m = np.zeros((5, 6), bool)
    m[3, 5] = True
    assert cfa.superpixel_any(m)[1, 2] and cfa.superpixel_any(m).sum() == 1
    up = cfa.upsample_superpixel(s, (5, 6))
    assert up.shape == (5, 6) and up[1, 1] == s[0, 0] and up[4, 5] == s[1, 2]


def test_a_colour_sky_has_no_residual_structure_per_phase():
    """A flat sky seen through RGGB: each phase flat, the 4 phases at different levels."""
    rng = np.random.default_rng(0)
    levels = np.array([[60.0, 100.0], [100.0, 70.0]])
    sky = np.tile(levels, (64, 80))
    frame = (sky + rng.normal(0.0, 1.0, sky.shape)).astype(np.float32)
    unc = np.ones_like(frame)
    mono = residual_parts(frame, unc)
    colour = residual_parts(frame, unc, cfa=True)
    assert np.nanstd(colour.z[colour.valid]) == pytest.approx(1.0, abs=0.05)
    assert colour.valid.mean() > 0.95
    # mixing colours: half the pixels are "sources" and the rest far from their neighbours
    assert mono.valid.mean() < 0.6
    assert np.nanstd(mono.z[np.isfinite(mono.z)]) > 5
    assert colour.cfa and not mono.cfa
