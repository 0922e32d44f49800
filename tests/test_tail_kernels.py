"""The light checks' tail-count kernels (deep negatives, raw floor) against their numpy twins:
the same counts and the same expected counts, bit for bit."""

import math

import numpy as np
import pytest

from darkflow.stats._tails import (
    deep_negative_terms,
    deep_negative_terms_reference,
    raw_floor_terms,
    raw_floor_terms_reference,
)

FACTOR = 1.1673


def _light(shape, seed):
    rng = np.random.default_rng(seed)
    u = rng.uniform(3.0, 9.0, shape).astype(np.float32)
    bg = rng.normal(2.0, 10.0, shape).astype(np.float32)
    c = (bg + rng.normal(0.0, 1.0, shape) * u).astype(np.float32)
    c[rng.random(shape) < 0.002] -= np.float32(60.0)  # deep negatives
    local = (bg + rng.normal(0.0, 3.0, shape)).astype(np.float32)
    valid = rng.random(shape) < 0.9
    bg.flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, -3.0]
    c.flat[7] = np.nan
    u.flat[8] = np.inf
    valid &= np.isfinite(c) & np.isfinite(u)
    hot = rng.random(shape) < 0.01
    extra = rng.gamma(0.3, 20.0, shape).astype(np.float32)
    extra.flat[9:12] = [np.nan, np.inf, -1.0]
    mdl = rng.normal(30.0, 30.0, shape).astype(np.float32)
    mdl.flat[13] = np.nan
    r = (c + mdl).astype(np.float32)
    r[rng.random(shape) < 0.001] = 0.0
    sources = rng.random(shape) < 0.05
    sources.flat[13] = True  # its model is NaN: counted above the range, not in the floor sum
    return c, u, local, bg, valid, hot, extra, mdl, r, sources


def _equal(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if isinstance(w, float) and math.isnan(w):
            assert math.isnan(g)
        else:
            assert g == w and type(g) is type(w)


@pytest.mark.parametrize("shape", [(4, 5), (64, 97), (513, 300)])
@pytest.mark.parametrize("width", [1.0, 1.37, math.nan, 0.0])
@pytest.mark.parametrize("with_hot", [False, True])
@pytest.mark.parametrize("with_extra", [False, True])
def test_deep_negative_terms_match_reference(shape, width, with_hot, with_extra):
    c, u, local, bg, valid, hot, extra, *_ = _light(shape, seed=shape[0])
    kw = {"model_hot": hot if with_hot else None, "extra_var": extra if with_extra else None}
    got = deep_negative_terms(c, u, local, bg, valid, width, FACTOR, **kw)
    want = deep_negative_terms_reference(c, u, local, bg, valid, width, FACTOR, **kw)
    _equal(got, want)
    if shape[0] > 4:
        assert got[1] > 0 and got[2] > 0  # the test sees deep pixels and a finite expectation


def test_deep_negative_terms_of_other_layouts_match_reference():
    c, u, local, bg, valid, hot, extra, *_ = _light((200, 300), seed=5)
    args = [a[::2, 1::2] for a in (c, u, local, bg, valid)]
    kw = {"model_hot": hot.T.copy().T, "extra_var": extra}
    got = deep_negative_terms(*(a.T for a in (c, u, local, bg, valid)), 1.1, FACTOR)
    want = deep_negative_terms_reference(*(a.T for a in (c, u, local, bg, valid)), 1.1, FACTOR)
    _equal(got, want)
    _equal(
        deep_negative_terms(*args, 1.2, FACTOR),
        deep_negative_terms_reference(*args, 1.2, FACTOR),
    )
    _equal(
        deep_negative_terms(c, u, local, bg, valid, 0.9, FACTOR, **kw),
        deep_negative_terms_reference(c, u, local, bg, valid, 0.9, FACTOR, **kw),
    )


@pytest.mark.parametrize("shape", [(4, 5), (64, 97), (513, 300)])
@pytest.mark.parametrize("width", [1.0, 1.21])
@pytest.mark.parametrize("saturation", [None, 100.0, 65535.0])
def test_raw_floor_terms_match_reference(shape, width, saturation):
    c, u, _, bg, _, _, _, mdl, r, sources = _light(shape, seed=shape[1])
    got = raw_floor_terms(c, u, r, mdl, bg, sources, width, saturation)
    want = raw_floor_terms_reference(c, u, r, mdl, bg, sources, width, saturation)
    _equal(got, want)
    if shape[0] > 4:
        assert got[1] > 0 and got[2] > 0
        if saturation == 100.0:
            assert got[3] > 0


def test_raw_floor_terms_of_float64_inputs_go_to_the_twin():
    c, u, _, bg, _, _, _, mdl, r, sources = _light((50, 60), seed=9)
    args = (c.astype(np.float64), u, r, mdl, bg, sources, 1.0, 700.0)
    _equal(raw_floor_terms(*args), raw_floor_terms_reference(*args))


def test_deep_negative_terms_do_not_depend_on_the_thread_count():
    from helpers.threads import numba_threads, thread_counts

    c, u, local, bg, valid, hot, extra, *_ = _light((700, 400), seed=9)
    kw = {"model_hot": hot, "extra_var": extra}
    found = []
    for n in thread_counts():
        with numba_threads(n):
            found.append(deep_negative_terms(c, u, local, bg, valid, 1.1, FACTOR, **kw))
    want = deep_negative_terms_reference(c, u, local, bg, valid, 1.1, FACTOR, **kw)
    for got in found:
        _equal(got, want)


@pytest.mark.parametrize("with_extra", [False, True])
def test_deep_negative_terms_under_a_bright_sky_match_reference(with_extra):
    """Most terms of a bright sky are exactly 0 (not evaluated): the same sum."""
    c, u, local, bg, valid, hot, extra, *_ = _light((300, 257), seed=5)
    bg[:200] += np.float32(3000.0)  # ndtr(a2) = 0 here, not below
    kw = {"model_hot": hot, "extra_var": extra if with_extra else None}
    got = deep_negative_terms(c, u, local, bg, valid, 1.1, FACTOR, **kw)
    want = deep_negative_terms_reference(c, u, local, bg, valid, 1.1, FACTOR, **kw)
    _equal(got, want)
    assert got[2] > 0


def test_ndtr_is_zero_below_the_skipped_arguments():
    from scipy.special import ndtr

    from darkflow.stats._tails import NDTR_ZERO_BELOW

    x = -np.geomspace(-NDTR_ZERO_BELOW, 1e300, 2000)
    x = np.concatenate([x, [np.nextafter(NDTR_ZERO_BELOW, 0.0), -np.inf]])
    x = x[x < NDTR_ZERO_BELOW]
    assert x.size > 1000
    out = ndtr(x)
    assert (out == 0.0).all() and not np.signbit(out).any()


@pytest.mark.parametrize("saturation", [None, 65535.0])
def test_raw_floor_terms_far_above_the_floor_match_reference(saturation):
    """Most pixels of a frame with a bias level have a floor term of exactly 0 (not
    evaluated): the same sum."""
    c, u, _, bg, _, _, _, mdl, r, sources = _light((300, 257), seed=4)
    mdl[:220] += np.float32(1000.0)
    got = raw_floor_terms(c, u, r, mdl, bg, sources, 1.1, saturation)
    want = raw_floor_terms_reference(c, u, r, mdl, bg, sources, 1.1, saturation)
    _equal(got, want)
    assert got[2] > 0
