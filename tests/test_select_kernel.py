"""The bracketed selection (darkflow.stats._select) against numpy: median, nanmedian, mad_std
and robust_std give the same value and type, bit for bit, whatever the data (random, tied,
constant, signed zeros, NaN/inf, float32/float64/integer, odd/even sizes, empty)."""

import contextlib
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from darkflow.stats import MAD_TO_STD, _robust, _select
from darkflow.stats._robust import (
    finite_median,
    finite_squared_median,
    mad_std,
    median,
    median_and_squared,
    nanmedian,
    robust_std,
)


def _ref_median(v):
    """The former darkflow median: np.median's value and type (np.partition, no NaN)."""
    v = np.asarray(v).ravel()
    if v.dtype.kind != "f" or v.size == 0 or np.isnan(v).any():
        return np.median(v)
    return np.mean(_robust._partition_middle(v))


def _ref_mad_std(v, center=None):
    v = np.asarray(v)
    c = _ref_median(v) if center is None else center
    return float(MAD_TO_STD * _ref_median(np.abs(v - c)))


def _ref_robust_std(v, min_size=1):
    v = np.asarray(v)
    v = v[np.isfinite(v)]
    return math.nan if v.size < max(min_size, 1) else _ref_mad_std(v)


def _same(got, want):
    """The same type and bits (a float: the same value, NaN equal to NaN)."""
    if isinstance(want, float):
        return isinstance(got, float) and (got == want or (math.isnan(got) and math.isnan(want)))
    return type(got) is type(want) and np.asarray(got).tobytes() == np.asarray(want).tobytes()


def _check_all(v):
    with warnings.catch_warnings():  # numpy's own warnings (all-NaN, inf - inf) on both sides
        warnings.simplefilter("ignore", RuntimeWarning)
        assert _same(median(v), _ref_median(v))
        assert _same(median(v), np.median(v)) or (
            np.median(v) == 0 and median(v) == 0  # the sign of a zero: np.median's own order
        )
        if v.dtype.kind == "f" and v.size:
            assert _same(nanmedian(v), np.nanmedian(v))
        if v.size:
            assert _same(mad_std(v), _ref_mad_std(v))
            for centre in (1.5, v.dtype.type(0.25), np.float64(0.1)):
                assert _same(mad_std(v, center=centre), _ref_mad_std(v, centre))
        for min_size in (1, 7):
            assert _same(robust_std(v, min_size=min_size), _ref_robust_std(v, min_size))


@contextlib.contextmanager
def _small_kernel():
    """The kernel on small arrays, with a small sample (its bracket then misses often)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_select, "MIN_SIZE", 1)
        mp.setattr(_select, "SAMPLE", 8)
        mp.setattr(_robust, "_SELECT_MIN", 1)
        yield


_TIED = [-np.inf, -1.0, -0.0, 0.0, 1e-30, 0.5, 1.0, 3.0, np.inf, np.nan]


@st.composite
def _arrays(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n = draw(st.integers(0, 120))
    kind = draw(st.sampled_from(["random", "tied", "constant", "mixed"]))
    if kind == "random":
        elements = st.floats(
            allow_nan=draw(st.booleans()),
            allow_infinity=draw(st.booleans()),
            width=32 if dtype == np.float32 else 64,
        )
        return draw(hnp.arrays(dtype, n, elements=elements))
    pool = draw(st.lists(st.sampled_from(_TIED), min_size=1, max_size=4))
    if kind == "constant":
        pool = pool[:1]
    values = draw(hnp.arrays(np.float64, n, elements=st.sampled_from(pool)))
    if kind == "mixed":
        noise = draw(hnp.arrays(np.float64, n, elements=st.floats(-2, 2, width=32)))
        values = np.where(np.arange(n) % 3 == 0, noise, values)
    return values.astype(dtype)


@settings(max_examples=400, deadline=None)
@given(v=_arrays())
def test_the_kernel_equals_numpy_on_any_array(v):
    with _small_kernel():
        _check_all(v)


@settings(max_examples=200, deadline=None)
@given(v=_arrays())
def test_finite_median_and_squared_median_equal_numpy(v):
    with _small_kernel(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        level, n = finite_median(v)
        keep = v[np.isfinite(v)]
        assert n == keep.size
        assert _same(level, _ref_median(keep)) if keep.size else math.isnan(level)
        u = np.abs(v) if draw_abs(v) else v
        got = median_and_squared(u)
        want = (_ref_median(u), _ref_median(np.square(u, dtype=np.float64)))
        assert _same(got[0], want[0]) and _same(got[1], want[1])
        squares = np.square(u.astype(np.float64))
        squares = squares[np.isfinite(squares)]
        want = _ref_median(squares) if squares.size else math.nan
        assert _same(finite_squared_median(u), want)


def draw_abs(v):
    """Half the cases with no negative value (the one-selection path)."""
    return v.size % 2 == 0


@settings(max_examples=60, deadline=None)
@given(v=hnp.arrays(st.sampled_from([np.int16, np.int64, np.uint16]), st.integers(1, 50)))
def test_integer_arrays_take_numpys_path(v):
    with _small_kernel():
        assert _same(median(v), np.median(v))
        assert _same(mad_std(v), _ref_mad_std(v))


def _large_cases(rng, n):
    yield "normal", rng.normal(100.0, 10.0, n)
    yield "gamma", rng.gamma(2.0, 1.0, n)
    yield "cauchy", rng.standard_cauchy(n)
    yield "half zeros", np.maximum(rng.normal(0.0, 1.0, n), 0.0)
    yield "mostly zeros", np.where(rng.random(n) < 0.9, 0.0, rng.gamma(2.0, 1.0, n))
    yield "signed zeros", np.where(rng.random(n) < 0.6, -0.0, rng.normal(0.0, 1.0, n))
    yield "both zeros", np.where(rng.random(n) < 0.5, -0.0, 0.0)
    yield "clipped at 1", np.minimum(rng.gamma(2.0, 1.0, n), 1.0)
    yield "few values", np.round(rng.normal(0.0, 3.0, n))
    yield "two values", np.where(rng.random(n) < 0.5, 1.0, 2.0)
    yield "constant", np.full(n, 7.0)
    yield "sorted", np.sort(rng.normal(0.0, 1.0, n))
    yield "columns", np.tile(np.arange(256.0), n // 256 + 1)[:n]  # aliases a strided sample
    yield "nan", np.where(rng.random(n) < 0.01, np.nan, rng.normal(0.0, 1.0, n))
    yield (
        "infinities",
        np.where(rng.random(n) < 0.3, np.inf, np.where(rng.random(n) < 0.4, 0.0, -np.inf)),
    )
    yield "inf tail", np.where(rng.random(n) < 0.45, np.inf, rng.normal(0.0, 1.0, n))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [_select.MIN_SIZE, _select.MIN_SIZE + 1, 47_001, 300_001, 300_000])
def test_the_kernel_equals_numpy_on_large_arrays(n, dtype):
    rng = np.random.default_rng(n)
    for name, a in _large_cases(rng, n):
        v = a.astype(dtype)
        try:
            _check_all(v)
        except AssertionError as err:
            raise AssertionError(name) from err


def test_the_kernel_takes_large_float_arrays_and_leaves_numpy_the_rest():
    rng = np.random.default_rng(1)
    v = rng.normal(0.0, 1.0, _select.MIN_SIZE)
    middle, n = _select.select_middle(v)
    assert n == v.size and middle.dtype == v.dtype and middle.size == 2
    assert _select.select_middle(v[:-1]) is None  # small: numpy's partition is as fast
    assert _select.select_middle(v.astype(np.int64)) is None
    v[5] = np.nan
    assert _select.select_middle(v) is None  # numpy's median is NaN
    middle, n = _select.select_middle(v, skip=_select.SKIP_NAN)
    assert n == v.size - 1 and middle.size == 1
    both = np.where(rng.random(v.size) < 0.5, -0.0, 0.0)
    assert _select.select_middle(both) is None  # which zero: numpy's selection order


def test_the_robust_module_knows_the_kernels_constants():
    assert _robust._SELECT_MIN == _select.MIN_SIZE
    assert (_robust._SKIP_NAN, _robust._SKIP_NONFINITE) == (
        _select.SKIP_NAN,
        _select.SKIP_NONFINITE,
    )


def test_an_empty_array_is_numpys():
    for dtype in (np.float32, np.float64):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert _same(median(np.array([], dtype)), np.median(np.array([], dtype)))
        assert math.isnan(robust_std(np.array([], dtype)))
