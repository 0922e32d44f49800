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


@pytest.mark.parametrize("dof", DOFS)
def test_t_tails_and_chi2_isf(dof):
    xs = np.array([-40.0, -5.0, -3.1, -1.0, -0.0, 0.0, 0.4, 2.0, 7.0, 40.0, np.inf, -np.inf])
    np.testing.assert_array_equal(_dist.t_cdf(xs, dof), stats.t.cdf(xs, dof))
    np.testing.assert_array_equal(_dist.t_sf(xs, dof), stats.t.sf(xs, dof))
    # float32 input: scipy.stats works in float64, so does the scipy.special form
    np.testing.assert_array_equal(
        _dist.t_cdf(xs.astype(np.float32), dof), stats.t.cdf(xs.astype(np.float32), dof)
    )
    for x in xs:
        assert _dist.t_sf(float(x), dof) == stats.t.sf(float(x), dof)
    for q in QS:
        assert _dist.chi2_isf(q, dof) == float(stats.chi2.isf(q, dof))


@pytest.mark.parametrize(("dfn", "dfd"), [(1, 1), (2, 2), (2, 17), (5, 40.5), (40, 1000)])
def test_f(dfn, dfd):
    for x in (-1.0, 0.0, 1e-4, 0.5, 1.0, 3.7, 50.0, 1e6):
        assert _dist.f_sf(x, dfn, dfd) == float(stats.f.sf(x, dfn, dfd)), x
    for q in QS:
        assert _dist.f_isf(q, dfn, dfd) == float(stats.f.isf(q, dfn, dfd)), q


@pytest.mark.parametrize("n", [0, 1, 2, 5, 17, 200])
def test_binom_sf(n):
    ps = np.array([0.0, 1e-9, 0.1, 0.5, 0.9, 1.0])
    for k in range(-2, n + 2):
        for p in ps:
            assert _dist.binom_sf(k, n, float(p)) == float(stats.binom.sf(k, n, p)), (k, p)
        assert _dist.binom_sf(k + 0.5, n, 0.3) == float(stats.binom.sf(k + 0.5, n, 0.3))
        np.testing.assert_array_equal(_dist.binom_sf(k, n, ps), stats.binom.sf(k, n, ps))


def test_night_never_imports_scipy_stats(tiny_night, tmp_path):
    """A whole night (driver, masters, light checks, in this one process) calls only the
    scipy.special forms: ``import scipy.stats`` costs ~0.8 s in every process that does it."""
    import subprocess
    import sys

    code = (
        "import sys; from darkflow.pipeline import run_night; "
        "from darkflow.pipeline.executors import LocalExecutor; "
        f"run_night({str(tiny_night)!r}, workdir={str(tmp_path / 'work')!r}, "
        "executor=LocalExecutor(workers=1)); "
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]
