"""Each matching rule added for issue 5: temperature scaling, interpolations, linearity policy,
temperature sources, bad masters, hard constraints, advisories."""

import json
import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from helpers.match import T0, entry, light

from darkflow.config import Config, MatchingConfig
from darkflow.exposure.laws import LinearityReport, LinearityStatus
from darkflow.matching import (
    LOST_INVALID,
    LOST_LINEARITY,
    LOST_STATUS,
    BiasInfo,
    CalibrationIndex,
    MasterEntry,
    MatchReason,
    match_light,
    merge_advisories,
)
from darkflow.model import MasterStatus, ScaleMode
from darkflow.registry.events import to_jsonable
from darkflow.thermal import DarkCurrentLaw, ThermalProfileStore, session_context

H = timedelta(hours=1)
R = MatchReason
SIG = light().config_signature
FITTED = DarkCurrentLaw(6.0, 0.1, "fitted", True, 4, -20.0, 0.0, 0.05)


def index_of(*entries, multi=True, law=None, bias=False, lin=None) -> CalibrationIndex:
    index = CalibrationIndex.from_entries(entries)
    index.multi_master = multi
    if law is not None:
        index.laws[SIG] = law
    if bias:
        index.biases[SIG] = BiasInfo(exptime_s=0.0, noise_adu=1.0)
    if lin is not None:
        index.linearity[SIG] = lin
    return index


def lin_report(status, exposures=(60.0, 180.0), deviation=0.01, bias=True):
    return LinearityReport(SIG, status, tuple(exposures), bias, deviation=deviation)


def test_temperature_scaling_needs_a_supported_law_and_a_bias():
    warm = entry("warm", temp=-7.0)  # 3 °C: mismatch 0.41, beyond the 0.15 gate
    d = match_light(light(), index_of(warm, law=FITTED, bias=True))
    assert d.scale_mode == ScaleMode.TEMPERATURE and not d.expansions
    assert R.TEMPERATURE_SCALED in d.reasons
    assert d.temp_factor == pytest.approx(2 ** (-3 / 6)) and d.terms[0].temp_factor == d.temp_factor
    assert d.dark_law.supports_scaling and d.to_dict()["dark_law"]["source"] == "fitted"
    # the configured default law never scales a master: found only by widening the gate
    for index in (index_of(warm, bias=True), index_of(warm, law=FITTED)):
        d = match_light(light(), index)
        assert d.scale_mode == ScaleMode.NONE and d.expansions and R.EXPANDED_SEARCH in d.reasons
        assert d.degraded


def test_temperature_scaling_limits():
    far = entry("far", temp=2.0)  # 12 °C away: beyond max_temp_scaling_c
    d = match_light(light(), index_of(far, law=FITTED, bias=True))
    assert d.scale_mode != ScaleMode.TEMPERATURE
    narrow = replace(FITTED, temp_min_c=-3.0, temp_max_c=0.0)  # light 7 °C outside the fit
    d = match_light(light(), index_of(entry("w", temp=-7.0), law=narrow, bias=True))
    assert d.scale_mode != ScaleMode.TEMPERATURE


def test_thermal_interpolation_between_bracketing_masters():
    a, b = entry("cold", temp=-12.0), entry("warm", temp=-8.0, when=T0 + 2 * H)
    d = match_light(light(), index_of(a, b))
    assert d.scale_mode == ScaleMode.THERMAL_INTERPOLATE
    assert (d.master_id, d.secondary_master_id) == ("cold", "warm")
    ra, rb = 2 ** (-2 / 6), 2 ** (2 / 6)  # D_master / D_light
    w = (1 - ra) / (rb - ra)
    assert d.terms[1].weight == pytest.approx(w) and d.terms[0].weight == pytest.approx(1 - w)
    assert R.THERMAL_INTERPOLATED in d.reasons and not d.degraded
    assert {c.master_id: c.lost_because for c in d.candidates} == {"cold": (), "warm": ()}
    # the metadata-only index (legacy pipeline) never combines two masters
    assert match_light(light(), index_of(a, b, multi=False)).secondary_master_id is None


def test_thermal_extrapolation_is_bounded():
    a, b = entry("c1", temp=-14.0), entry("c2", temp=-12.5)
    d = match_light(light(ccd_temp_c=-4.0), index_of(a, b))  # w ~ 6: far outside [0, 1]
    assert d.scale_mode != ScaleMode.THERMAL_INTERPOLATE


def test_timing_interpolation_when_the_temperature_is_unknown():
    before = entry("before", temp=None, when=T0 - H)
    after = entry("after", temp=None, when=T0 + H)
    d = match_light(
        light(ccd_temp_c=None, set_temp_c=None, date_obs_utc=T0 + 0.5 * H), index_of(before, after)
    )
    assert d.scale_mode == ScaleMode.THERMAL_INTERPOLATE
    assert d.terms[1].weight == pytest.approx(0.75)
    assert {R.TIME_INTERPOLATED, R.LIGHT_NO_TEMPERATURE} <= set(d.reasons)
    assert d.temperature.source == "none"
    alone = match_light(light(ccd_temp_c=None, set_temp_c=None), index_of(before))
    assert alone.confidence < match_light(light(), index_of(entry("a"))).confidence


def test_exposure_interpolation_and_the_linearity_policy():
    m60, m180 = entry("m60", exptime=60.0), entry("m180", exptime=180.0)
    shown = lin_report(LinearityStatus.PROPORTIONAL)
    d = match_light(light(), index_of(m60, m180, lin=shown, bias=True))
    assert d.scale_mode == ScaleMode.INTERPOLATE and d.terms[1].weight == pytest.approx(0.5)
    assert R.EXPOSURE_INTERPOLATED in d.reasons and not d.degraded
    # no linearity report: interpolation is unproven -> degraded expectation, recorded
    d = match_light(light(), index_of(m60, m180))
    assert d.scale_mode == ScaleMode.INTERPOLATE and R.INTERPOLATION_UNPROVEN in d.reasons
    assert d.degraded and d.to_dict()["degraded"] is True
    # "reject": never used
    cfg = Config().with_overrides(scaling={"unproven_linearity": "reject"})
    d = match_light(light(), index_of(m60, m180), cfg)
    assert d.scale_mode != ScaleMode.INTERPOLATE


def test_single_exposure_dark_set_scales_only_with_lowered_confidence():
    m60 = entry("m60", exptime=60.0, scalable=True)
    unproven = lin_report(LinearityStatus.UNPROVEN, exposures=(60.0,), deviation=None)
    d = match_light(light(), index_of(m60, lin=unproven, bias=True))
    assert d.scale_mode == ScaleMode.EXPOSURE and d.exposure_factor == pytest.approx(2.0)
    assert {R.EXPOSURE_SCALED, R.EXPOSURE_LINEARITY_UNPROVEN} <= set(d.reasons) and d.degraded
    shown = lin_report(LinearityStatus.PROPORTIONAL, exposures=(60.0, 300.0))
    proven = match_light(light(), index_of(m60, lin=shown, bias=True))
    assert not proven.degraded and proven.confidence > d.confidence
    cfg = Config().with_overrides(scaling={"unproven_linearity": "reject"})
    rejected = match_light(light(), index_of(m60, lin=unproven, bias=True), cfg)
    assert rejected.scale_mode != ScaleMode.EXPOSURE  # at most unscaled, after widening
    assert rejected.master_id is None or (rejected.expansions and rejected.degraded)


def test_detected_nonlinearity_disables_scaling():
    m60, m180 = entry("m60", exptime=60.0), entry("m180", exptime=180.0)
    nonlinear = lin_report(LinearityStatus.AFFINE, exposures=(60.0, 180.0, 300.0))
    # one master: scaled anyway (a model with its error beats no output), degraded, the
    # deviation carried as the exposure error
    d = match_light(light(exptime_s=90.0), index_of(m60, lin=nonlinear, bias=True))
    assert d.scale_mode == ScaleMode.EXPOSURE and R.EXPOSURE_LAW_NONLINEAR in d.reasons
    assert d.degraded and d.exposure_rel_sigma == pytest.approx(0.05 * math.log2(1.5))
    strict = Config.from_dict({"scaling": {"unproven_linearity": "reject"}})
    d = match_light(light(exptime_s=90.0), index_of(m60, lin=nonlinear, bias=True), strict)
    assert d.master_id is None or d.scale_mode == ScaleMode.UNSCALED
    assert LOST_LINEARITY in d.candidates[0].lost_because or d.scale_mode == ScaleMode.UNSCALED
    d = match_light(light(), index_of(m60, m180, lin=nonlinear, bias=True))
    assert d.scale_mode == ScaleMode.INTERPOLATE and R.NONLINEAR_DARK in d.reasons


def test_temperature_sources_from_the_session():
    times = [T0 + i * timedelta(minutes=5) for i in range(24)]
    temps = [-10.0 + 0.05 * i for i in range(24)]
    lights = [
        light(path=f"/n/l{i}.fits", date_obs_utc=t, ccd_temp_c=v)
        for i, (t, v) in enumerate(zip(times, temps, strict=True))
    ]
    lights[5] = replace(lights[5], ccd_temp_c=None)
    lights[9] = replace(lights[9], ccd_temp_c=+8.0)  # an outlier reading
    ctx = session_context(lights)
    index = index_of(entry("a", temp=-9.5, when=T0 + H))
    d = match_light(lights[5], index, session_context=ctx)
    assert d.temperature.source == "session_fit" and d.temperature.temp_c == pytest.approx(
        temps[5], abs=0.1
    )
    assert {R.LIGHT_NO_TEMPERATURE, R.LIGHT_TEMPERATURE_ESTIMATED} <= set(d.reasons)
    d = match_light(lights[9], index, session_context=ctx)
    assert R.TEMPERATURE_READING_OUTLIER in d.reasons
    assert d.temperature.temp_c == pytest.approx(temps[9], abs=0.1)
    # noisy readings: the smoothed readings are used
    rng = np.random.default_rng(0)
    noisy = [
        replace(x, ccd_temp_c=v + float(rng.normal(0, 1.0)))
        for x, v in zip(lights, temps, strict=True)
        if x.ccd_temp_c is not None
    ]
    d = match_light(noisy[3], index, session_context=session_context(noisy))
    assert R.NOISY_TEMPERATURE_READINGS in d.reasons
    assert abs(d.temperature.temp_c - temps[3]) < abs(noisy[3].ccd_temp_c - temps[3]) + 0.3
    # no reading anywhere, but a set-point
    d = match_light(light(ccd_temp_c=None), index)
    assert d.temperature.source == "setpoint" and R.LIGHT_TEMPERATURE_FROM_SETPOINT in d.reasons


def test_temperature_from_stored_profiles(tmp_path):
    store = ThermalProfileStore(tmp_path / "thermal_profiles.json")
    from darkflow.thermal import fit_temperature_drift

    hours = np.linspace(0, 3, 30)
    for night, offset in enumerate((0.0, 0.4)):
        t0 = T0 - (night + 1) * timedelta(days=1)
        fit = fit_temperature_drift(
            [t0 + h * H for h in hours], list(-10 + offset + 1.5 * hours), set_temp_c=-10.0
        )
        store.update("Cam A", fit, session=f"night{night}")
    first = light(path="/n/first.fits", date_obs_utc=T0, ccd_temp_c=None)
    later = light(path="/n/later.fits", date_obs_utc=T0 + 2 * H, ccd_temp_c=None)
    ctx = session_context([first, later], profiles=store)
    index = index_of(entry("a", temp=-7.0, when=T0 + 2 * H))
    d = match_light(later, index, session_context=ctx)
    assert d.temperature.source == "profile" and R.LIGHT_TEMPERATURE_FROM_PROFILE in d.reasons
    assert d.temperature.temp_c == pytest.approx(-10 + 0.2 + 3.0, abs=0.15)
    assert d.temperature.sigma_c >= 0.5


def test_bad_masters_are_never_chosen():
    zero = MasterEntry(
        "zero", entry("x").meta.__class__(**{**entry("x").meta.__dict__, "exptime_s": 0.0})
    )
    gone = entry("gone")
    index = index_of(zero, gone)
    index.unusable.add("gone")
    d = match_light(light(), index)
    why = {c.master_id: c.lost_because for c in d.candidates}
    assert d.master_id is None and LOST_INVALID in why["zero"] and LOST_STATUS in why["gone"]
    assert d.advisory["n_frames"] == MatchingConfig().advisory_n_frames


def test_master_temperature_from_its_setpoint():
    m = entry("m")
    m = replace(m, meta=replace(m.meta, temp_c=None, set_temp_c=-10.0))
    d = match_light(light(), index_of(m))
    assert d.master_id == "m" and "temperature_from_setpoint" in d.chosen.notes


def test_expansion_of_the_exposure_ratio():
    cfg = MatchingConfig(
        expansion_mismatch=(0.3,), expansion_time_h=(2160.0,), expansion_exptime_ratio=(10.0,)
    )
    far = entry("far", exptime=1200.0, scalable=True)
    d = match_light(light(), index_of(far, multi=False), cfg)
    assert (
        d.master_id == "far"
        and len(d.expansions) == 1
        and "max_exptime_ratio=10" in (d.expansions[0])
    )
    strict = MatchingConfig(expansion_exptime_ratio=())
    assert match_light(light(), index_of(far, multi=False), strict).master_id is None
    d = match_light(light(), index_of(far, multi=False))  # the default widens to 10, then 30
    assert d.master_id == "far" and d.degraded and "max_exptime_ratio=10" in d.expansions[0]


def test_advisory_follows_the_real_temperature_and_merges():
    cold_target = light(ccd_temp_c=-4.0, set_temp_c=-15.0)  # set-point not reached
    d = match_light(cold_target, CalibrationIndex())
    assert d.advisory["temp_c"] == pytest.approx(-4.0)
    others = [
        match_light(light(path=f"/n/{i}.fits", exptime_s=t), CalibrationIndex()).advisory
        for i, t in enumerate((120.0, 120.0, 300.0))
    ]
    merged = merge_advisories([*others, None])
    assert [(m["exptime_s"], m["n_lights"]) for m in merged] == [(120.0, 2), (300.0, 1)]


@pytest.mark.parametrize("seed", range(4))
def test_hard_constraints_hold_for_random_libraries(seed):
    """Whatever the library and the light, a chosen master has the light's configuration, an
    exposure ratio within the (widest) limit and a usable status; nothing raises."""
    rng = np.random.default_rng(seed)
    cfg = MatchingConfig(expansion_exptime_ratio=(6.0, 6.0))
    statuses = list(MasterStatus)
    entries = []
    for i in range(12):
        sig = SIG if rng.random() < 0.8 else "other-config"
        t = float(rng.choice([0.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0]))
        temp = None if rng.random() < 0.15 else float(rng.uniform(-20, 5))
        entries.append(
            entry(
                f"m{i}",
                exptime=t,
                temp=temp,
                sig=sig,
                when=T0 + float(rng.uniform(-48, 48)) * H,
                status=statuses[int(rng.integers(len(statuses)))],
                scalable=bool(rng.random() < 0.5),
            )
        )
    index = index_of(*entries, law=FITTED if seed % 2 else None, bias=bool(seed % 2))
    by_id = {e.master_id: e for e in entries}
    for _ in range(40):
        exptime = float(rng.choice([-1.0, 0.0, 45.0, 120.0, 240.0, 900.0, math.nan]))
        lt = light(
            exptime_s=exptime, ccd_temp_c=None if rng.random() < 0.2 else float(rng.uniform(-20, 5))
        )
        d = match_light(lt, index, cfg)
        json.dumps(to_jsonable(d.to_dict()))
        for mid in d.master_ids:
            e = by_id[mid]
            assert e.meta.config_signature == lt.config_signature
            assert 1 / 6.0 <= lt.exptime_s / e.meta.exptime_s <= 6.0
            assert e.status not in (MasterStatus.QUARANTINED, MasterStatus.SUPERSEDED)
        if not d.matched:
            assert d.reasons and (d.advisory or R.INVALID_EXPOSURE in d.reasons)


def _summary(master_id: str, exptime: float, *, rms: float, noise: float, bias_removed: bool):
    from darkflow.exposure.laws import MasterSummary

    return MasterSummary(
        master_id=master_id,
        exptime_s=exptime,
        temp_c=-10.0,
        n_frames=8,
        bias_removed=bias_removed,
        noise_adu=noise,
        level_adu=0.0,
        glow_adu=None,
        hot_excess_adu=None,
        signal_rms_adu=rms,
        saturated_fraction=0.0,
        n_hot=0,
        n_glow_cells=0,
    )


def test_the_harm_of_a_scaled_dark_is_judged_beyond_the_bias_it_subtracts_anyway():
    """A short light, one longer dark and a bias of 8 frames each: the scaled model's noise is
    mostly the bias's, which every light carries with or without a dark. Its dark part adds
    less than the (small) dark signal it removes, so the model is used, not refused."""
    m30 = entry("m30", exptime=30.0, scalable=True, n=8)
    unproven = lin_report(LinearityStatus.UNPROVEN, exposures=(30.0,), deviation=None)
    index = index_of(m30, lin=unproven, bias=True)
    index.biases[SIG] = BiasInfo(exptime_s=0.0, noise_adu=0.35)
    index.summaries["m30"] = _summary("m30", 30.0, rms=0.6, noise=0.35, bias_removed=True)
    d = match_light(light(exptime_s=10.0), index)
    assert d.master_id == "m30" and d.scale_mode == ScaleMode.EXPOSURE
    # the same model judged by its whole noise (as before) was refused as harmful
    e_n = math.hypot(0.35 / 3, 0.35 * 2 / 3) / (0.6 / 3)
    assert e_n >= 1.0
    # a dark whose own noise exceeds what it removes is still refused
    index.summaries["m30"] = _summary("m30", 30.0, rms=0.6, noise=3.0, bias_removed=True)
    refused = match_light(light(exptime_s=10.0), index)
    assert refused.scale_mode != ScaleMode.EXPOSURE


def test_without_a_bias_the_fixed_pattern_is_not_scaled_with_the_exposure():
    """Masters at 120 and 300 s without a bias: their RMS structure is a fixed bias pattern plus
    dark signal; at 30 s the fixed pattern is still there for the model to remove."""
    from darkflow.matching._match import _Evaluator, _steps
    from darkflow.thermal import SessionContext

    m120, m300 = entry("m120", exptime=120.0), entry("m300", exptime=300.0)
    index = index_of(m120, m300)
    a, r2 = 10.0, 0.005  # rms² = A + r² t²
    for e in (m120, m300):
        t = e.meta.exptime_s
        index.summaries[e.master_id] = _summary(
            e.master_id, t, rms=math.sqrt(a + r2 * t * t), noise=3.0, bias_removed=False
        )
    lt = light(exptime_s=30.0)
    law = index.law_for(SIG, MatchingConfig())
    temp = SessionContext().estimate(lt, MatchingConfig())
    ev = _Evaluator(
        lt,
        temp,
        index,
        SIG,
        law,
        None,
        MatchingConfig(),
        Config().scaling,
        _steps(MatchingConfig())[0],
    )
    for e in (m120, m300):
        ev.master(e)
    assert ev.signal_rms == pytest.approx(math.sqrt(a + r2 * 30.0**2), rel=1e-6)
