"""Another gain or a warmer sensor behind a scaled cross-set excess (darkflow.verify._gainpair)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.lights import _master

from darkflow.model import FrameType
from darkflow.verify._crossset import exposure_pair_excess
from darkflow.verify._gainpair import GAIN, THERMAL, gain_or_thermal

SHAPE = (96, 128)
BIAS, READ = 500.0, 3.0


def _frames(rate, t, n, rng, *, adu_per_e=1.0, offset=0.0):
    """``n`` darks of ``t`` s: Poisson dark current and Gaussian read noise (electrons), read
    out at ``adu_per_e``, plus an ``offset`` (ADU)."""
    out = []
    for _ in range(n):
        e = rng.poisson(rate * t) + rng.normal(0.0, READ, SHAPE)
        out.append(np.clip(np.rint(BIAS + offset + e * adu_per_e), 0, 65535).astype(np.uint16))
    return out


def _pair(seed, *, warm=1.0, adu_per_e=1.0, offset=0.0, n_long=10, hot=0.01):
    """Long (300 s) and short (60 s) masters and a bias of one camera, both temperatures
    recorded equal; the long darks' dark current is ``warm`` times larger (a warmer sensor) or
    read out at ``adu_per_e`` ADU per electron (another gain, with its read noise in ADU),
    ``offset`` ADU higher."""
    rng = np.random.default_rng(seed)
    rate = 0.05 * rng.lognormal(0.0, 0.3, SHAPE)
    rate[rng.random(SHAPE) < hot] *= 60.0
    bias = _master(_frames(rate, 0.0, 15, rng), FrameType.BIAS, 0.0, 1.0)
    short = _master(_frames(rate, 60.0, 10, rng), FrameType.DARK, 60.0, 1.0)
    frames = _frames(rate * warm, 300.0, n_long, rng, adu_per_e=adu_per_e, offset=offset)
    return _master(frames, FrameType.DARK, 300.0, 1.0), short, bias


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("fault", "cause"),
    [({"warm": 2.0}, THERMAL), ({"adu_per_e": 2.0}, GAIN)],
)
def test_a_scaled_excess_is_named_by_the_hot_pixels_photon_transfer(seed, fault, cause):
    """Twice the dark signal in the long master: twice the electrons (warmer: the hot pixels'
    variance over level unchanged) or twice the ADU per electron (another gain: variance over
    level doubled). Each must be named for what it is, and not the other."""
    long, short, bias = _pair(seed, **fault)
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.failed and r.scaled and r.scale == pytest.approx(2.0, rel=0.05), r
    assert r.scale_cause == cause, r


@pytest.mark.parametrize("seed", [1, 2])
def test_another_gain_with_its_own_offset_is_still_a_gain(seed):
    """A gain change that moves the offset too (the typical pixels then do not follow the hot
    pixels' scale): no scale explains the excess, the photon transfer still names the gain."""
    long, short, bias = _pair(seed, adu_per_e=2.0, offset=15.0)
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.failed and not np.isfinite(r.scale) and r.scale_cause == GAIN and r.scaled, r


def test_a_warm_set_with_an_offset_is_not_named_thermal():
    """A temperature explains no offset: only a gain is named past one."""
    long, short, bias = _pair(1, warm=2.0, offset=15.0)
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.failed and not r.scaled and r.scale_cause == "", r


def _hot_inputs(long, short, bias):
    from darkflow.verify._crossset import _common_hot

    d_a = (long.data - bias.data).astype(np.float64)
    d_b = (short.data - bias.data).astype(np.float64)
    return _common_hot(long, short, d_a, d_b, 1)


def test_not_measured_when_the_two_causes_cannot_be_told():
    """A small scale (1.15) on few frames: both causes fit within their spreads."""
    long, short, bias = _pair(4, adu_per_e=1.15, n_long=4)
    r = gain_or_thermal(
        long, short, *_hot_inputs(long, short, bias), 5.0 * 1.15 / 5.0, 0.01, false_alarm=1e-4
    )
    assert not r.measured and r.why == "both causes fit", r
    assert abs(r.z_thermal) <= r.threshold and abs(r.z_gain) <= r.threshold


def test_not_measured_with_too_few_hot_pixels():
    long, short, bias = _pair(5, adu_per_e=2.0, hot=0.001)
    hot, ex_a, ex_b = _hot_inputs(long, short, bias)
    r = gain_or_thermal(long, short, hot, ex_a, ex_b, 2.0, 0.02, false_alarm=1e-4)
    assert not r.measured and "common hot pixels" in r.why and r.n_pixels < 20, r


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_the_thermal_null_holds_its_false_alarm_rate(seed):
    """No change at all between the sets, tested against a hypothetical scale of 2: the
    photon-transfer ratio is 1 within its spread (never a gain), and the gain null fails."""
    long, short, bias = _pair(seed)
    r = gain_or_thermal(long, short, *_hot_inputs(long, short, bias), 2.0, 0.02, false_alarm=1e-4)
    assert abs(r.z_thermal) <= r.threshold and r.cause == THERMAL, r
    assert r.ratio == pytest.approx(1.0, abs=4 * r.ratio_sd)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "zoo", "code"),
    [
        # darks of 30 s at gain 404 instead of 300 (3.3x ADU per electron): their typical pixels
        # do not follow the hot pixels' scale, the photon transfer still names the gain
        ("mono_cmos-408810553", (60, 3), "exposure_excess_gain"),
        # 120 s darks of a colour camera at another gain
        ("colour_cmos-1179198021", (60, 1), "exposure_excess_gain"),
        # warm darks of a CCD, the header at the set-point (seed 2's mono_cmos-4139089315, a
        # 0.68-sigma warm set, is below the cross-check's materiality since the verdict no
        # longer depends on which master of the pair is ``a``)
        ("ccd-4009479766", (60, 3), "exposure_excess_thermal"),
    ],
)
def test_zoo_nights_name_the_gain_or_the_temperature(tmp_path, name, zoo, code):
    """The faulted master of a zoo night is marked with the cause its hot pixels show."""
    import pandas as pd

    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import sample_zoo, zoo_night

    params = next(p for p in sample_zoo(*zoo) if p.name == name)
    zoo_night(tmp_path / "data", params=params)
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    masters = pd.read_csv(tmp_path / "work" / "masters.csv")
    darks = masters[masters["kind"] == "dark"].set_index("exptime_s")
    assert code in darks.loc[params.fault_exposure, "reasons"]
    others = darks.drop(index=params.fault_exposure)
    assert not others["reasons"].fillna("").str.contains("exposure_excess").any()
