"""darkflow.stats.mad_std / robust_std: darkflow's one robust standard deviation."""

from __future__ import annotations

import math
import re
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.stats import mad_std as astropy_mad_std

from darkflow.stats import MAD_TO_STD, mad_std, robust_std

ROOT = Path(__file__).resolve().parents[1]


def test_the_constant_is_one_over_the_normal_quartile():
    assert MAD_TO_STD == 1.0 / statistics.NormalDist().inv_cdf(0.75)


def test_mad_std_matches_astropy_and_is_gaussian_consistent():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, 200_001)
    assert mad_std(x) == pytest.approx(float(astropy_mad_std(x)), rel=1e-12)
    assert mad_std(x) == pytest.approx(2.0, rel=0.01)
    assert mad_std(x, center=0.0) > mad_std(x)  # around another centre


def test_mad_std_along_an_axis_and_ignoring_nan():
    rng = np.random.default_rng(4)
    a = rng.normal(0.0, 1.0, (5, 101))
    rows = mad_std(a, axis=1)
    assert rows.shape == (5,)
    np.testing.assert_allclose(rows, [mad_std(r) for r in a], rtol=1e-15)
    a[2, :10] = np.nan
    assert math.isnan(mad_std(a, axis=1)[2])
    kept = mad_std(a, axis=1, ignore_nan=True, keepdims=True)
    assert kept.shape == (5, 1) and kept[2, 0] == pytest.approx(mad_std(a[2, 10:]))


def test_robust_std_drops_non_finite_values_and_needs_enough_of_them():
    x = np.array([1.0, 2.0, 3.0, np.nan, np.inf])
    assert robust_std(x) == mad_std([1.0, 2.0, 3.0])
    assert math.isnan(robust_std(x, min_size=4))
    assert math.isnan(robust_std(np.array([np.nan])))


def test_float32_data_keep_their_dtype_until_the_product():
    x = np.array([1.0, 2.5, 4.0, 7.25], dtype=np.float32)
    med = np.median(x)
    assert mad_std(x) == float(MAD_TO_STD * np.median(np.abs(x - med)))


def test_importing_the_robust_sigma_does_not_load_numba():
    import subprocess

    code = "import sys, darkflow.stats; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_other_mad_constant_in_the_code():
    """One implementation: no hand-written 1.4826 outside darkflow/stats/_common.py."""
    pattern = re.compile(r"1\.4826\d*\s*\*|\*\s*1\.4826")
    found = []
    for top in ("darkflow", "widgets", "benchmarks", "tests", "notebooks"):
        for path in (ROOT / top).rglob("*"):
            if path.suffix not in (".py", ".ipynb") or path.name == "test_robust_sigma.py":
                continue
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not found, "\n".join(found)
