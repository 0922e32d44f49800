"""closed_bins (numba) against its twin: the same values, in the same order, per bin."""

import numpy as np
import pytest

from darkflow.stats._bins import closed_bins, closed_bins_reference


def _cases():
    rng = np.random.default_rng(11)
    d = rng.gamma(2.0, 10.0, 5000)
    yield d, np.unique(np.percentile(d, np.linspace(0, 100, 21)))
    lattice = np.round(rng.normal(100, 3, 4000)) * 16.0  # many values on the edges
    yield lattice, np.unique(np.percentile(lattice, np.linspace(0, 100, 21)))
    yield lattice, np.array([lattice.min(), lattice.max()])  # one bin
    yield d, np.array([5.0, 10.0, 10.5, 30.0])  # values outside the edges are in no bin
    yield d, np.array([7.0])  # no bin


@pytest.mark.parametrize("case", range(5))
def test_closed_bins_are_the_twins(case):
    d, edges = list(_cases())[case]
    v = np.arange(d.size, dtype=np.float64)  # tells the values apart
    got = list(closed_bins(d, v, edges))
    ref = list(closed_bins_reference(d, v, edges))
    assert len(got) == len(ref) == max(edges.size - 1, 0)
    for (dg, vg), (dr, vr) in zip(got, ref, strict=True):
        np.testing.assert_array_equal(dg, dr)
        np.testing.assert_array_equal(vg, vr)
    if case == 1:  # inner edges hold values counted in both bins
        assert sum(b[0].size for b in got) > d.size
