"""numba kernels against their numpy references, astropy's sigma_clip and themselves (threads)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.stats import sigma_clip
from helpers.threads import numba_threads, thread_counts

from darkflow import stats as K

MODES = [K.MODE_MAD, K.MODE_STD, K.MODE_NOISE, K.MODE_NOISE_MAD]


def nasty_stack(n: int, rows: int, nx: int, seed: int, dtype=np.float32) -> np.ndarray:
    """Integer-valued data with ties, NaN, +-inf, outliers, saturation and empty pixels."""
    rng = np.random.default_rng(seed)
    st = np.round(rng.normal(1000.0, 8.0, (n, rows, nx)))
    st[rng.random(st.shape) < 0.03] = np.nan
    st[rng.random(st.shape) < 0.005] = np.inf
    st[rng.random(st.shape) < 0.005] = -np.inf
    st[rng.random(st.shape) < 0.02] += 6000.0  # cosmic rays
    st[rng.random(st.shape) < 0.01] -= 300.0  # low outliers
    st[:, 0, :4] = 1000.0  # all ties
    st[:, 0, 4] = np.nan  # no valid value at all
    st[:, 1, :2] = 65535.0  # saturated everywhere
    st[: max(1, n // 2), 1, 2] = 65535.0  # saturated in some frames
    st[:, 2, :3] += 20000.0  # stable hot pixels
    return st.astype(dtype)


def params(mode: int, **kw) -> dict:
    base = {
        "hot_thr": np.full(kw.pop("n"), 1040.0),
        "sat_level": 65535.0,
        "mode": mode,
        "sigma_low": 3.0,
        "sigma_high": 2.5,
        "max_iters": 5,
        "sig0_sq": 64.0,
        "level0": 1000.0,
        "inv_gain": 0.8,
    }
    base.update(kw)
    return base


def assert_planes_equal(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for name in got:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 20, 33])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_combine_band_matches_reference(n, mode, dtype):
    st = nasty_stack(n, 5, 37, seed=n * 10 + mode, dtype=dtype)
    kw = params(mode, n=n)
    out = K.empty_planes((5, 37))
    K.combine_band(st, out, **kw)
    assert_planes_equal(out, K.combine_band_reference(st, **kw))


@pytest.mark.parametrize("n", [1, 3, 20])
@pytest.mark.parametrize("mode", [K.MODE_MAD, K.MODE_NOISE])
@pytest.mark.parametrize(
    "scaling", [(1.0, 32768.0, None), (1.0, 32768.0, -32768), (1.0, -100.0, 7)]
)
def test_combine_band_raw16_matches_reference(n, mode, scaling):
    st = nasty_stack(n, 4, 29, seed=n + mode)
    stored = np.nan_to_num(st, nan=0.0, posinf=65535.0, neginf=0.0) - 32768.0
    stored = np.clip(stored, -32768, 32767).astype(">i2")
    raw = stored.view(np.uint16).copy()  # native view of the big-endian file bytes
    kw = params(mode, n=n, raw16=scaling)
    out = K.empty_planes((4, 29))
    K.combine_band(raw, out, **kw)
    want = K.combine_band_reference(raw, **kw)
    assert_planes_equal(out, want)
    if scaling[2] is not None:  # stored BLANK values are ignored
        blank = stored == scaling[2]
        nv = (~blank).sum(axis=0)
        np.testing.assert_array_equal(out["n_used"] + out["n_low"] + out["n_high"], nv)


@pytest.mark.parametrize("shape", [(6, 11), (130, 2049)])  # the serial and the threaded kernel
def test_decode_be16_matches_reference(shape):
    rng = np.random.default_rng(3)
    stored = rng.integers(-32768, 32768, shape).astype(">i2")
    stored[0, 0] = 5
    raw = stored.view(np.uint16)
    for scaling in [(1.0, 32768.0, None), (2.0, -3.0, 5)]:
        a = np.empty(shape, np.float32)
        b = np.empty(shape, np.float32)
        K.decode_be16(raw, a, bscale=scaling[0], bzero=scaling[1], blank=scaling[2])
        K.decode_be16_reference(raw, b, bscale=scaling[0], bzero=scaling[1], blank=scaling[2])
        np.testing.assert_array_equal(a, b)
    expected = stored.astype(np.float64) + 32768.0
    a = np.empty(shape, np.float64)
    K.decode_be16(raw, a, bzero=32768.0)
    np.testing.assert_array_equal(a, expected)
    assert np.isnan(b[0, 0])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 31, 64, 100])
def test_sorting_network_sorts(n):
    rng = np.random.default_rng(n)
    v = rng.integers(0, 5, (n, 300)).astype(np.float32)  # many ties
    v[rng.random(v.shape) < 0.1] = np.nan
    np.testing.assert_array_equal(K.sort_columns(v), K.sort_columns_reference(v))
    ci, cj = K.sorting_network(n)
    assert np.all(ci < cj) and (cj.max(initial=0) < n)


@pytest.mark.parametrize("stdfunc,mode", [("mad_std", K.MODE_MAD), ("std", K.MODE_STD)])
@pytest.mark.parametrize("sigmas", [(3.0, 3.0), (2.0, 2.5)])
def test_agrees_with_astropy_sigma_clip(stdfunc, mode, sigmas):
    rng = np.random.default_rng(42)
    n, rows, nx = 15, 20, 40
    st = rng.normal(100.0, 5.0, (n, rows, nx))  # continuous: no ties
    hit = rng.random(st.shape) < 0.05
    st[hit] += rng.uniform(30.0, 300.0, hit.sum())
    st[rng.random(st.shape) < 0.02] -= 40.0
    lo, hi = sigmas
    clipped = sigma_clip(
        st, sigma_lower=lo, sigma_upper=hi, maxiters=5, cenfunc="median", stdfunc=stdfunc, axis=0
    )
    out = K.empty_planes((rows, nx))
    K.combine_band(
        st, out, **params(mode, n=n, sigma_low=lo, sigma_high=hi, hot_thr=np.full(n, 1e9))
    )
    kept = (~clipped.mask).sum(axis=0)
    np.testing.assert_array_equal(out["n_used"], kept)
    # same values kept: the clipped ones lie below (n_low) and above (n_high) the kept range
    lowest_kept = clipped.min(axis=0).filled(np.inf)
    np.testing.assert_array_equal(out["n_low"], (clipped.mask & (st < lowest_kept)).sum(axis=0))
    np.testing.assert_array_equal(out["n_high"], (clipped.mask & (st > lowest_kept)).sum(axis=0))
    np.testing.assert_allclose(out["mean"], clipped.mean(axis=0).filled(np.nan), rtol=1e-6)
    assert (out["n_used"] < n).sum() > 50  # the comparison exercised clipping


def test_empty_single_and_saturated_pixels():
    st = np.full((4, 1, 4), 500.0, np.float32)
    st[:, 0, 0] = np.nan  # nothing valid
    st[1:, 0, 1] = np.nan  # one valid value
    st[:, 0, 2] = 65535.0  # saturated everywhere
    st[0, 0, 3] = 9000.0  # cosmic ray
    out = K.empty_planes((1, 4))
    K.combine_band(st, out, **params(K.MODE_NOISE, n=4, sig0_sq=9.0, level0=500.0, inv_gain=1.0))
    assert np.isnan(out["mean"][0, 0]) and np.isnan(out["uncertainty"][0, 0])
    assert out["n_used"][0, 0] == out["n_low"][0, 0] == out["n_high"][0, 0] == 0
    assert out["hot"][0, 0] == 0.0 and not out["saturated"][0, 0]
    assert out["mean"][0, 1] == 500.0 and out["n_used"][0, 1] == 1
    assert out["uncertainty"][0, 1] == pytest.approx(3.0)  # model noise for a single value
    assert out["saturated"][0, 2] and out["n_used"][0, 2] == 4 and out["mean"][0, 2] == 65535.0
    assert out["n_high"][0, 3] == 1 and out["mean"][0, 3] == 500.0
    assert out["hot"][0, 3] == pytest.approx(0.25)


def test_deterministic_across_thread_counts():
    st = nasty_stack(20, 64, 301, seed=9)
    kw = params(K.MODE_NOISE, n=20)
    results = []
    for threads in thread_counts():
        with numba_threads(threads):
            out = K.empty_planes((64, 301))
            K.combine_band(st, out, **kw)
            results.append({k: v.tobytes() for k, v in out.items()})
    assert len(results) >= 2 and all(r == results[0] for r in results)


def test_band_offsets_write_only_their_rows():
    st = nasty_stack(5, 6, 10, seed=1)
    out = K.empty_planes((9, 10))
    for arr in out.values():
        arr[...] = 0
    K.combine_band(st, out, nrows=4, row0=3, **params(K.MODE_MAD, n=5))
    ref = K.combine_band_reference(st[:, :4].copy(), **params(K.MODE_MAD, n=5))
    np.testing.assert_array_equal(out["mean"][3:7], ref["mean"])
    assert not out["n_used"][:3].any() and not out["n_used"][7:].any()


@pytest.mark.parametrize(
    "change,match",
    [
        ({"mode": 9}, "mode"),
        ({"max_iters": -1}, "max_iters"),
        ({"mode": K.MODE_NOISE, "sig0_sq": float("nan")}, "sig0_sq"),
        ({"row0": 8}, "outside"),
        ({"hot_thr": np.zeros(2)}, "threshold"),
    ],
)
def test_bad_arguments(change, match):
    st = nasty_stack(3, 3, 5, seed=0)
    kw = params(K.MODE_MAD, n=3)
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        K.combine_band(st, K.empty_planes((4, 5)), **kw)
    with pytest.raises(ValueError, match="float32"):
        K.combine_band(
            np.zeros((3, 3, 5), np.int32), K.empty_planes((3, 5)), **params(K.MODE_MAD, n=3)
        )
    with pytest.raises(ValueError, match="uint16"):
        K.combine_band(st, K.empty_planes((3, 5)), raw16=(1.0, 0.0, None), **params(0, n=3))
    raw = np.zeros((3, 3, 5), np.uint16)
    with pytest.raises(ValueError, match="BSCALE"):
        K.combine_band(raw, K.empty_planes((3, 5)), raw16=(0.5, 0.0, None), **params(0, n=3))


def test_temporal_noise_of_coarse_integer_steps_is_not_selected_away():
    """Frames saved in steps of 4 ADU with 1.7 ADU of noise: selecting typical pixels by the
    pair's own mean would keep only differences of 0 and +-8 (a pair's sum and difference share
    their parity) and read a fraction of the noise; a third frame's level keeps it unbiased."""
    from darkflow.master._engine import frame_stats, sample_rows

    rng = np.random.default_rng(5)
    ny, nx, sigma = 64, 400, 1.7
    offset = 100.0 + rng.normal(0.0, 1.0, (ny, nx))  # fixed pattern
    frames = np.stack(
        [4.0 * np.rint((offset + rng.normal(0, sigma, (ny, nx))) / 4.0) for _ in range(4)]
    )
    rows = sample_rows(ny)
    sig0 = frame_stats(frames[:, list(rows), :], rows, 4.0).sig0
    expected = math.sqrt(sigma**2 + 16.0 / 12.0)  # noise plus quantisation (Sheppard)
    assert abs(sig0 / expected - 1.0) < 0.1, (sig0, expected)
