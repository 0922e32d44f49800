"""The scipy.special forms of darkflow's scipy.stats tails: the same values as scipy.stats."""

import numpy as np
import pytest
from scipy import stats

from darkflow.stats import _dist

QS = [1e-12, 1e-6, 2.5e-4, 1e-3, 0.0125, 0.3, 0.5, 0.9, 0.999]
DOFS = [1, 2, 3, 7, 15, 40.5, 1000]


@pytest.mark.parametrize("dof", DOFS)
def test_chi2_and_t(dof):
    xs = np.array([0.0, 1e-3, 0.5, 1.0, 3.0, dof, 2.0 * dof + 10.0, 1e4])
    for x in xs:
        assert _dist.chi2_sf(x, dof) == stats.chi2.sf(x, dof)
    np.testing.assert_array_equal(_dist.chi2_cdf(xs, dof + 2), stats.chi2.cdf(xs, dof + 2))
    for q in QS:
        assert _dist.t_isf(q, dof) == float(stats.t.isf(q, dof))
        assert _dist.t_ppf(q, dof) == float(stats.t.ppf(q, dof))
        assert _dist.chi2_ppf(q, dof) == stats.chi2.ppf(q, dof)


def test_norm():
    xs = np.array([-40.0, -5.0, -1.5, -0.0, 0.0, 0.7, 3.0, 3.29, 8.0, 40.0, np.inf, np.nan])
    np.testing.assert_array_equal(_dist.norm_sf(xs), stats.norm.sf(xs))
    for x in xs[:-2]:
        assert _dist.norm_sf(float(x)) == stats.norm.sf(float(x))
        assert _dist.norm_pdf(float(x)) == stats.norm.pdf(float(x))
    for q in QS:
        assert _dist.norm_isf(q) == float(stats.norm.isf(q))


@pytest.mark.parametrize("mu", [1e-3, 0.4, 1.0, 7.5, 300.0, 1e5])
def test_poisson_sf(mu):
    for k in (-5, -1, 0, 1, 2, 7, 30, 301, 100_500):
        assert _dist.poisson_sf(k, mu) == float(stats.poisson.sf(k, mu)), (k, mu)
        assert _dist.poisson_sf(k + 0.5, mu) == float(stats.poisson.sf(k + 0.5, mu)), (k, mu)


@pytest.mark.parametrize("n", [0, 1, 5, 60, 12345, 4_000_000])
def test_binom_isf(n):
    for q in QS:
        for p in (0.0, 1e-7, 0.01, 0.3, 0.5, 1.0):
            assert _dist.binom_isf(q, n, p) == stats.binom.isf(q, n, p), (q, n, p)


def test_binom_isf_outside_its_domain():
    with pytest.raises(ValueError):
        _dist.binom_isf(0.0, 10, 0.5)
