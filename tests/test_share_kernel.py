"""The variance gate's noise-share kernel (darkflow.stats._shares) against its numpy twin:
every share equal bit for bit."""

import numpy as np
import pytest

from darkflow.stats._shares import noise_share_medians, noise_shares, noise_shares_reference


def _inputs(shape, seed):
    rng = np.random.default_rng(seed)
    u = rng.uniform(2.0, 12.0, shape).astype(np.float32)
    u[rng.random(shape) < 0.02] = 0.0  # no predicted variance: left out
    valid = rng.random(shape) < 0.8
    mvar = rng.gamma(2.0, 3.0, shape).astype(np.float32)
    mvar[rng.random(shape) < 0.01] = 500.0  # beyond u²: a negative shot share clipped to 0
    signal = rng.normal(30.0, 40.0, shape).astype(np.float32)
    if signal.size > 3:
        signal.flat[:3] = [np.nan, np.inf, -np.inf]
        valid.flat[:3] = True
    return u, valid, mvar, signal


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (200, 311)])
@pytest.mark.parametrize("with_signal", [False, True])
@pytest.mark.parametrize("gain", [None, 0.8])
@pytest.mark.parametrize("read_var", [9.0, 200.0])
def test_noise_shares_match_reference(shape, with_signal, gain, read_var):
    u, valid, mvar, signal = _inputs(shape, seed=shape[1])
    kw = {
        "read_var": read_var,
        "common_var": 1.5,
        "dark_signal": signal if with_signal else None,
        "scale_rel_sigma": 0.02,
        "prnu": 0.01,
        "gain": gain,
    }
    got = noise_shares(u, valid, mvar, **kw)
    with np.errstate(over="ignore"):  # the infinite signal's square, as before
        want = noise_shares_reference(u, valid, mvar, **kw)
    assert got.dtype == want.dtype and got.shape == want.shape == (
        4 if gain is None else 5,
        got.shape[1],
    )
    np.testing.assert_array_equal(got, want, strict=True)


def test_noise_shares_of_transposed_inputs_match_reference():
    u, valid, mvar, signal = _inputs((60, 80), seed=2)
    kw = {"read_var": 20.0, "common_var": 0.0, "dark_signal": signal.T, "scale_rel_sigma": 0.1}
    with np.errstate(over="ignore"):
        got = noise_shares(u.T, valid.T, mvar.T, **kw)
    with np.errstate(over="ignore"):
        want = noise_shares_reference(u.T, valid.T, mvar.T, **kw)
    np.testing.assert_array_equal(got, want, strict=True)


@pytest.mark.parametrize("gain", [None, 0.8])
def test_noise_shares_with_the_models_systematic_variance_match_reference(gain):
    """The model's recorded scale term: in the common share, out of the master's."""
    u, valid, mvar, signal = _inputs((90, 120), seed=7)
    rng = np.random.default_rng(8)
    systematic = (mvar * rng.uniform(0.0, 1.2, mvar.shape)).astype(np.float32)  # some > mvar
    systematic.flat[5] = np.nan
    kw = {
        "read_var": 20.0,
        "common_var": 1.0,
        "dark_signal": signal,
        "scale_rel_sigma": 0.15,
        "prnu": 0.01,
        "gain": gain,
        "systematic_var": systematic,
    }
    got = noise_shares(u, valid, mvar, **kw)
    want = noise_shares_reference(u, valid, mvar, **kw)
    np.testing.assert_array_equal(got, want, strict=True)
    with np.errstate(over="ignore"):  # the infinite signal's square, as before
        plain = noise_shares_reference(u, valid, mvar, **{**kw, "systematic_var": None})
    assert np.nanmedian(want[2]) < np.nanmedian(plain[2])  # less of it is the master's noise
    np.testing.assert_array_equal(want[0], plain[0])  # the shot share is the same


def _reference_medians(u, valid, mvar, **kw):
    with np.errstate(over="ignore", invalid="ignore"):
        rows = noise_shares_reference(u, valid, mvar, **kw)
    return [float(np.median(r)) for r in rows]


@pytest.mark.parametrize("gain", [None, 0.8])
@pytest.mark.parametrize("case", ["plain", "signal", "systematic", "odd", "small"])
def test_noise_share_medians_match_the_rows_medians(gain, case):
    """The bracketed medians (no rows of shares) are np.median of the reference's rows."""
    shape = {"odd": (301, 263), "small": (60, 70)}.get(case, (256, 320))
    u, valid, mvar, signal = _inputs(shape, seed=shape[0])
    signal = np.nan_to_num(signal)
    rng = np.random.default_rng(3)
    kw = {
        "read_var": 9.0,
        "common_var": 1.5,
        "dark_signal": signal if case in ("signal", "systematic") else None,
        "scale_rel_sigma": 0.05,
        "prnu": 0.01,
        "gain": gain,
        "systematic_var": (mvar * rng.uniform(0.0, 1.2, shape)).astype(np.float32)
        if case == "systematic"
        else None,
    }
    assert noise_share_medians(u, valid, mvar, **kw) == _reference_medians(u, valid, mvar, **kw)


def test_noise_share_medians_where_the_bracket_cannot_settle():
    """A NaN share, a misleading sample (the sampled rows unlike the others), many equal
    shares and zero medians: numpy's values all the same."""
    u, valid, mvar, _ = _inputs((256, 256), seed=11)
    kw = {"read_var": 9.0, "common_var": 1.5, "prnu": 0.01, "gain": 0.8}
    nan_u = u.copy()
    nan_u[7, 9] = np.inf  # inf / inf: a NaN share
    skewed = u.copy()
    skewed[2::4] = 100.0  # the sampled rows (every 4th from the 2nd) far from the rest
    flat = np.full_like(u, 5.0)  # every share equal: the bracket's ends hold the median
    for arr, m in ((nan_u, mvar), (skewed, mvar), (flat, mvar), (u, np.full_like(mvar, 1e6))):
        got = noise_share_medians(arr, valid, m, **kw)
        want = _reference_medians(arr, valid, m, **kw)
        np.testing.assert_array_equal(got, want)
