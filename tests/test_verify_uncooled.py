"""Two masters of an uncooled camera against each other (darkflow.verify._uncooled)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers.lights import _master

from darkflow.model import FrameType
from darkflow.verify._uncooled import uncooled_pair_excess

SHAPE = (96, 128)
BIAS, READ = 500.0, 3.0


def _frames(rate, t, n, rng, extra=0.0):
    out = []
    for _ in range(n):
        e = rng.poisson(rate * t + extra) + rng.normal(0.0, READ, SHAPE)
        out.append(np.clip(np.rint(BIAS + e), 0, 65535).astype(np.uint16))
    return out


def _uncooled(m):
    return dataclasses.replace(m, meta=dataclasses.replace(m.meta, temp_c=None))


def _pair(
    seed: int,
    *,
    warm: float = 1.0,
    leak: float = 0.0,
    glow: float = 0.3,
    hot: float = 0.005,
    hot_scatter: float = 0.0,
    short_n: int = 10,
):
    """Long (300 s) and short (60 s) uncooled masters and a bias, none with a temperature. The
    long darks' dark current is ``warm`` times the short darks' (the sensor warmer or cooler),
    their amp glow (``glow`` e-/s in one corner) follows the exposure only; ``leak`` electrons
    of stray light across a ramp in the long darks; ``hot_scatter``: the lognormal sigma of
    each hot pixel's own scale in the long darks (hot pixels that disagree)."""
    rng = np.random.default_rng(seed)
    dark = 0.05 * rng.lognormal(0.0, 0.3, SHAPE)
    is_hot = rng.random(SHAPE) < hot
    dark[is_hot] *= 50.0
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    amp = glow * np.exp(-np.hypot(y, x) / 15.0)
    own = np.where(is_hot, rng.lognormal(0.0, hot_scatter, SHAPE), 1.0) if hot_scatter else 1.0
    ramp = np.linspace(0.5, 1.5, SHAPE[1])[None, :] * np.ones((SHAPE[0], 1))
    bias = _master(_frames(dark, 0.0, 15, rng), FrameType.BIAS, 0.0, 1.0)
    short = _master(_frames(dark + amp, 60.0, short_n, rng), FrameType.DARK, 60.0, 1.0)
    long_rate = dark * warm * own + amp
    long = _master(_frames(long_rate, 300.0, 10, rng, leak * ramp), FrameType.DARK, 300.0, 1.0)
    return _uncooled(long), _uncooled(short), _uncooled(bias)


@pytest.mark.parametrize("warm", [0.6, 1.0, 1.6])
def test_a_clean_uncooled_pair_is_no_verdict_whatever_the_temperatures(warm):
    """The sensor 4 °C cooler or warmer for the long darks, amp glow that follows only the
    exposure: the hot pixels' scale leaves the glow's share, the exposures' ratio the dark
    current's, but never both in one direction."""
    long, short, bias = _pair(1, warm=warm)
    for a, b in ((long, short), (short, long)):
        r = uncooled_pair_excess(a, b, bias, bias, false_alarm=1e-3)
        assert r.measured and r.thermal_fitted and not r.verdict, r
        assert np.isfinite(r.exposure_z), r


def test_the_hot_pixel_comparison_alone_would_cry_wolf():
    """Why the verdict needs both comparisons: when the sensor's temperature differs between
    the sets, the hot-pixel scale leaves a share of the amp glow (which follows the exposure
    only) in one master (its ``failed``), which is no fault."""
    long, short, bias = _pair(1, warm=0.6, glow=6.0)
    r = uncooled_pair_excess(long, short, bias, bias, false_alarm=1e-3)
    assert r.measured and r.failed and not r.verdict, r


@pytest.mark.parametrize("warm", [0.6, 1.0, 1.6])
def test_a_light_leak_is_a_verdict_on_the_master_holding_it(warm):
    long, short, bias = _pair(2, warm=warm, leak=40.0)  # 40 e- of stray light, a ramp
    r = uncooled_pair_excess(long, short, bias, bias, false_alarm=1e-3)
    assert r.measured and r.verdict and r.failed and r.level > 0 and r.structured, r
    back = uncooled_pair_excess(short, long, bias, bias, false_alarm=1e-3)
    assert back.verdict and back.level < 0, back  # the other way round: b holds it


def test_the_false_alarm_rate_of_the_verdict_is_bounded():
    """Clean pairs at random temperatures and glow, at a 5 % false-alarm probability: the
    verdict fires on at most a few of 40 (the bound is 5 %; a binomial 40 x 0.05 exceeds 6
    with probability 1.4 %, and the bracket is conservative)."""
    rng = np.random.default_rng(7)
    fired = 0
    for seed in range(40):
        warm = float(rng.uniform(0.5, 2.0))
        long, short, bias = _pair(100 + seed, warm=warm, glow=float(rng.uniform(0, 0.5)))
        r = uncooled_pair_excess(long, short, bias, bias, false_alarm=0.05)
        assert r.measured, r.why
        fired += r.verdict
    assert fired <= 6


def test_not_measured_with_too_few_hot_pixels():
    long, short, bias = _pair(3, leak=40.0, hot=0.0005)
    r = uncooled_pair_excess(long, short, bias, bias, false_alarm=1e-3)
    assert not r.measured and not r.verdict and "hot pixels" in r.why, r


def test_the_verdict_is_not_measured_when_the_hot_pixels_disagree():
    """Hot pixels whose scales scatter by a factor e (few of them): ``k``'s uncertainty times
    the short master's level exceeds the materiality, so no verdict is given."""
    long, short, bias = _pair(4, leak=40.0, hot=0.003, hot_scatter=1.0)
    r = uncooled_pair_excess(short, long, bias, bias, false_alarm=1e-3)
    assert not r.verdict and "too uncertain" in r.why, r
