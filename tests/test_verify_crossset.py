"""Two masters of one configuration against each other (darkflow.verify._crossset)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers.lights import _master

from darkflow.model import FrameType
from darkflow.verify._crossset import exposure_pair_excess

SHAPE = (96, 128)
BIAS, READ, GAIN = 500.0, 3.0, 1.0


def _sensor(seed: int) -> np.ndarray:
    """Dark current (e-/s) per pixel: a lognormal population with 0.5 % hot pixels and an amp
    glow in one corner (it grows with the exposure like the rest)."""
    rng = np.random.default_rng(seed)
    rate = 0.05 * rng.lognormal(0.0, 0.3, SHAPE)
    hot = rng.random(SHAPE) < 0.005
    rate[hot] *= 50.0
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    return rate + 0.3 * np.exp(-np.hypot(y, x) / 15.0)


def _frames(rate, t, n, rng, extra=0.0):
    out = []
    for _ in range(n):
        e = rng.poisson(rate * t + extra) + rng.normal(0.0, READ, SHAPE)
        out.append(np.clip(np.rint(BIAS + e / GAIN), 0, 65535).astype(np.uint16))
    return out


def _night(
    seed: int, *, leak: float = 0.0, offset: float = 0.0, warm: float = 1.0, columns: float = 0.0
):
    """Long (300 s) and short (60 s) masters and a bias; ``warm`` scales the long darks' dark
    current (amp glow included): a sensor at another temperature; ``columns``: the rms (ADU) of
    a column pattern of the long darks' own (another readout mode, with ``offset``)."""
    rng = np.random.default_rng(seed + 1)
    rate = _sensor(seed)
    ramp = np.linspace(0.5, 1.5, SHAPE[1])[None, :] * np.ones((SHAPE[0], 1))
    bias = _master(_frames(rate, 0.0, 15, rng), FrameType.BIAS, 0.0, GAIN)
    short = _master(_frames(rate, 60.0, 10, rng), FrameType.DARK, 60.0, GAIN)
    pattern = offset + columns * np.random.default_rng(seed + 2).standard_normal(SHAPE[1])
    faulted = [
        f.astype(np.float64) + pattern for f in _frames(rate * warm, 300.0, 10, rng, leak * ramp)
    ]
    long = _master([np.rint(f).astype(np.uint16) for f in faulted], FrameType.DARK, 300.0, GAIN)
    return long, short, bias


def _no_temperature(m):
    return dataclasses.replace(m, meta=dataclasses.replace(m.meta, temp_c=None))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_pair_passes(seed):
    long, short, bias = _night(seed)
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.measured and not r.failed and not r.structured
    assert abs(r.level) < r.threshold * r.spread + r.materiality


def test_light_leak_fails_with_a_pattern():
    long, short, bias = _night(1, leak=20.0)  # 20 e- of stray light, a ramp across the frame
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.failed and r.level > 0 and r.structured
    # the same pair the other way round: the excess is negative (b holds it)
    back = exposure_pair_excess(short, long, bias, bias, false_alarm=1e-4)
    assert back.failed and back.level < 0


def test_another_readout_mode_fails_uniform():
    """An offset with a column pattern of its own: no large-scale structure, not light."""
    long, short, bias = _night(2, offset=12.0, columns=3.0)
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.failed and r.level == pytest.approx(12.0, abs=1.0) and not r.structured


def test_bias_offset_fails_uniform():
    long, short, bias = _night(2, offset=12.0)  # the long darks' bias 12 ADU higher
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.failed and r.level == pytest.approx(12.0, abs=1.0) and not r.structured


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("fault", "scaled", "structured"),
    [
        ({"warm": 1.3}, True, None),  # another gain or a warmer sensor: E = 0.3 x the dark
        ({"leak": 20.0}, False, True),  # stray light: a pattern that is not the dark's
        ({"offset": 12.0}, False, False),  # a bias offset: a level
        ({"offset": 12.0, "columns": 3.0}, False, False),  # another readout mode
    ],
)
def test_an_excess_that_scales_the_dark_signal_is_told_from_light_and_offsets(
    seed, fault, scaled, structured
):
    """The long darks' dark current x 1.3 (amp glow and hot pixels included) with both
    temperatures recorded and equal: the comparison fails (it did before), and the hot
    pixels' scale explains the excess, leaving no level and no pattern. Stray light and a bias
    offset move no hot pixel's excess over its neighbourhood: not scaled."""
    long, short, bias = _night(seed, **fault)
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.measured and r.failed and r.level > 0, r
    assert r.scaled is scaled, r
    if scaled:
        assert r.scale == pytest.approx(1.3, rel=0.03)
    else:
        assert r.structured is structured and not np.isfinite(r.scale), r


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_clean_pair_is_never_scaled(seed):
    """Only a failed comparison is given a cause: a clean pair neither fails nor scales."""
    long, short, bias = _night(seed)
    for a, b in ((long, short), (short, long)):
        r = exposure_pair_excess(a, b, bias, bias, false_alarm=1e-4)
        assert not r.failed and not r.scaled, r


def test_not_measured_without_a_common_temperature():
    long, short, bias = _night(1)
    warm = dataclasses.replace(
        long, meta=dataclasses.replace(long.meta, temp_c=long.meta.temp_c + 5)
    )
    r = exposure_pair_excess(warm, short, bias, bias, false_alarm=1e-4)
    assert not r.measured and "temperatures" in r.why


@pytest.mark.parametrize("warm", [0.8, 1.3])
@pytest.mark.parametrize(
    ("fault", "failed", "structured"),
    [({}, False, False), ({"leak": 20.0}, True, True), ({"offset": 12.0}, True, False)],
)
def test_uncooled_sets_are_compared_on_their_hot_pixels_scale(warm, fault, failed, structured):
    """Without temperatures (an uncooled camera, the long darks' dark current x ``warm``) the
    scale between the sets is read on the hot pixels: a clean pair passes, stray light fails
    with a pattern, a bias offset uniform."""
    long, short, bias = (_no_temperature(m) for m in _night(1, warm=warm, **fault))
    r = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    assert r.measured and r.thermal_fitted, r.why
    assert r.k == pytest.approx(5.0 * warm, rel=0.02)
    assert r.failed is failed and r.structured is structured, r
    if "offset" in fault:
        assert r.level == pytest.approx(12.0, abs=1.5)


def _leaky_zoo_night(tmp_path, name: str, exposure: float, zoo: tuple[int, int] = (200, 0)):
    """Run the zoo night ``name`` of ``sample_zoo(*zoo)`` (stray light in its darks of
    ``exposure``): its masters and lights (``masters.csv``, ``frame_report.csv``)."""
    import pandas as pd

    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import sample_zoo, zoo_night

    params = next(p for p in sample_zoo(*zoo) if p.name == name)
    assert params.fault == "light_leak" and params.fault_exposure == exposure
    zoo_night(tmp_path / "data", params=params)
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    masters = pd.read_csv(tmp_path / "work" / "masters.csv")
    return masters, pd.read_csv(tmp_path / "work" / "frame_report.csv")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "leaky", "clean", "zoo"),
    [
        # stray light in the 120 s darks, 300 s darks and a bias beside them
        ("mono_cmos-3004197185", 120.0, 300.0, (200, 0)),
        # seed 2: 69 ADU of stray light in the 60 s darks, read 0.075 °C warmer than the 120 s
        # set: the dark law over that difference is bounded by the 120 s master's dark level
        # (1 ADU), not by the leak's, so the pair is compared
        ("mono_cmos-2520480020", 60.0, 120.0, (60, 2)),
    ],
)
def test_pipeline_marks_the_leaky_master_of_a_zoo_night(tmp_path, name, leaky, clean, zoo):
    """A zoo night with stray light in one dark set: the run marks that master, and only it."""
    masters, _ = _leaky_zoo_night(tmp_path, name, leaky, zoo=zoo)
    darks = masters[masters["kind"] == "dark"].set_index("exptime_s")
    assert darks.loc[leaky, "status"] == "low_confidence"
    assert "exposure_excess_patterned" in darks.loc[leaky, "reasons"]
    assert darks.loc[clean, "status"] == "verified"


@pytest.mark.slow
def test_an_uncooled_zoo_night_with_a_faint_leak_keeps_its_gain_and_flags_the_leak(tmp_path):
    """A DSLR zoo night (no sensor temperature, no EGAIN) with stray light in its 30 s darks
    (0.86 sigma of effect on the lights), 180 s darks and a bias beside them. The 30 s master
    was once made low_confidence by its own noise gate only because the darks' photon transfer
    read its gain 8.7 sigma low (0.311 against 0.468: the sensor warming through the sequence);
    leaked photons carry their own shot noise, so an honest noise gate has nothing to find.
    Every light measures its gain within its stated uncertainty; the two uncooled masters'
    comparison (darkflow.verify._uncooled: an excess beyond both the hot pixels' scale and the
    exposures' ratio) marks the 30 s master, and the lights it calibrates are degraded, with
    output."""
    from darkflow.simulate.zoo import sample_zoo

    params = next(p for p in sample_zoo(200, 0) if p.name == "dslr-954163146")
    truth = params.camera.egain_e_per_adu
    masters, lights = _leaky_zoo_night(tmp_path, "dslr-954163146", 30.0)
    darks = masters[masters["kind"] == "dark"].set_index("exptime_s")
    assert darks.loc[30.0, "status"] == "low_confidence"
    assert "exposure_excess_patterned" in darks.loc[30.0, "reasons"]
    assert darks.loc[180.0, "status"] == "verified", darks.loc[180.0, "reasons"]
    pulls = (lights["egain_e_per_adu"] - truth) / lights["egain_sigma"]
    assert len(pulls) and (pulls.abs() < 3.0).all(), pulls.tolist()
    assert set(lights["status"]) == {"degraded"}, lights["status"].value_counts()


def _warmer(m, d_t: float):
    return dataclasses.replace(m, meta=dataclasses.replace(m.meta, temp_c=m.meta.temp_c + d_t))


@pytest.mark.parametrize("leak", [0.0, 200.0])
def test_a_leak_does_not_exempt_its_master_from_the_comparison(leak):
    """Masters 0.1 °C apart, the long darks full of stray light (200 e-: ten times their dark
    signal) and compared as ``b``: the dark law's change over 0.1 °C is bounded by the clean
    master's dark level, not by the leak's, so the pair is measured and the leak fails."""
    long, short, bias = _night(1, leak=leak)
    r = exposure_pair_excess(_warmer(short, 0.1), long, bias, bias, false_alarm=1e-4)
    assert r.measured, r.why
    assert r.failed is bool(leak) and (r.level < 0 if leak else True), r


@pytest.mark.parametrize(
    "fault",
    [{}, {"leak": 20.0}, {"offset": 12.0}, {"offset": 1.5}, {"warm": 1.3}, {"warm": 1.03}],
)
def test_the_verdict_does_not_depend_on_which_master_is_a(fault):
    """``E`` on ``a``'s scale is ``-k`` times ``E`` on ``b``'s: the materiality is the holding
    master's own noise in ``E``'s units, so the pair fails (or not) whichever way round it is
    compared (the pipeline's order once followed the cache keys: zoo seed 2
    ``mono_cmos-4139089315`` changed its verdict with a version bump)."""
    long, short, bias = _night(4, **fault)
    ab = exposure_pair_excess(long, short, bias, bias, false_alarm=1e-4)
    ba = exposure_pair_excess(short, long, bias, bias, false_alarm=1e-4)
    assert ab.measured and ba.measured
    assert ab.failed == ba.failed, (ab, ba)
    if ab.failed:  # the same master holds it
        assert ab.level * ba.level < 0
