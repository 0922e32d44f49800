"""Each matching rule on hand-made metadata: hard constraints, the temperature gate, scoring,
expansion steps and the acquisition advisory."""

from datetime import UTC, datetime, timedelta

import pytest

from darkflow.config import MatchingConfig
from darkflow.matching import (
    LOST_EXPOSURE,
    LOST_NOT_SCALABLE,
    LOST_SCORE,
    LOST_TEMPERATURE,
    LOST_TIME,
    CalibrationIndex,
    MasterEntry,
    MatchReason,
    dark_current_ratio,
    match_light,
    temperature_gate_c,
)
from darkflow.model import FrameMeta, FrameType, MasterMeta, MasterStatus, ScaleMode

T0 = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)


def light(**kw) -> FrameMeta:
    base = dict(
        path="/n/light.fits",
        frame_type=FrameType.LIGHT,
        exptime_s=120.0,
        ccd_temp_c=-10.0,
        set_temp_c=-10.0,
        gain_setting=100,
        offset=50,
        instrument="Cam A",
        shape=(100, 150),
        date_obs_utc=T0,
        egain_e_per_adu=0.8,
    )
    base.update(kw)
    return FrameMeta(**base)


def entry(master_id, *, exptime=120.0, temp=-10.0, when=T0, scalable=False, sig=None, **kw):
    sig = sig or light().config_signature
    meta = MasterMeta(
        config_signature=sig,
        instrument="Cam A",
        exptime_s=exptime,
        temp_c=temp,
        set_temp_c=temp,
        n_frames=20,
        date_start_utc=when - timedelta(minutes=10),
        date_end_utc=when + timedelta(minutes=10),
    )
    return MasterEntry(master_id=master_id, meta=meta, scalable=scalable, **kw)


def test_gate_follows_the_doubling_law():
    assert dark_current_ratio(6.0, 6.0) == pytest.approx(2.0)
    gate = temperature_gate_c(0.15, 6.0)
    assert dark_current_ratio(gate, 6.0) == pytest.approx(1.15)
    assert gate == pytest.approx(1.2098, abs=1e-3)


def test_exact_match_wins_and_every_loser_says_why():
    index = CalibrationIndex.from_entries(
        [
            entry("exact"),
            entry("warm", temp=-5.0),  # 5 °C warmer: dark current x1.78 > gate
            entry("short", exptime=30.0),  # not scalable (no bias)
            entry("far", exptime=1200.0, scalable=True),  # 10x: out of exposure range
            entry("old", when=T0 - timedelta(days=60)),
            entry("other-config", sig="other"),
        ]
    )
    d = match_light(light(), index)
    assert d.master_id == "exact"
    assert d.scale_mode == ScaleMode.NONE and d.scale_factor == 1.0
    why = {c.master_id: c.lost_because for c in d.candidates}
    assert why["exact"] == ()
    assert LOST_TEMPERATURE in why["warm"]
    assert LOST_NOT_SCALABLE in why["short"]
    assert LOST_EXPOSURE in why["far"]
    assert LOST_TIME in why["old"]
    assert "other-config" not in why  # a different configuration is never a candidate
    assert d.confidence > 0.9


def test_nearest_temperature_and_time_decide_between_passing_candidates():
    index = CalibrationIndex.from_entries(
        [
            entry("a", temp=-10.8),
            entry("b", temp=-10.1),
            entry("c", temp=-10.1, when=T0 - timedelta(days=3)),
        ]
    )
    d = match_light(light(), index)
    assert d.master_id == "b"
    losers = {c.master_id: c.lost_because for c in d.candidates}
    assert losers["a"] == (LOST_SCORE,) and losers["c"] == (LOST_SCORE,)


def test_exposure_scaling_when_no_exact_dark():
    index = CalibrationIndex.from_entries([entry("m60", exptime=60.0, scalable=True)])
    d = match_light(light(exptime_s=180.0), index)
    assert d.master_id == "m60"
    assert d.scale_mode == ScaleMode.EXPOSURE and d.scale_factor == pytest.approx(3.0)
    assert MatchReason.EXPOSURE_SCALED in d.reasons


def test_expansion_then_advisory():
    cfg = MatchingConfig()
    # 3 °C warmer: mismatch 0.41 > 0.15 and > 0.3, < 0.6 → found at expansion step 2
    index = CalibrationIndex.from_entries([entry("warm", temp=-7.0)])
    d = match_light(light(), index, cfg)
    assert d.master_id == "warm"
    assert len(d.expansions) == 2 and MatchReason.EXPANDED_SEARCH in d.reasons
    assert d.confidence <= 1.0 - 2 * cfg.expansion_confidence_penalty + 1e-9
    # 10 °C warmer: mismatch 2.2 — nothing passes even the widest step
    index = CalibrationIndex.from_entries([entry("hot", temp=0.0)])
    d = match_light(light(), index, cfg)
    assert d.master_id is None and d.reasons == (MatchReason.NO_CANDIDATE,)
    assert d.advisory["exptime_s"] == 120.0 and d.advisory["n_frames"] >= 10
    assert "120 s" in d.advisory["text"]


def test_no_master_for_configuration():
    d = match_light(light(), CalibrationIndex())
    assert d.master_id is None and d.reasons == (MatchReason.NO_MASTER_FOR_CONFIG,)
    assert d.advisory is not None


@pytest.mark.parametrize("exptime", [None, 0.0, -5.0])
def test_invalid_exposure_is_a_decision_not_an_exception(exptime):
    d = match_light(light(exptime_s=exptime), CalibrationIndex.from_entries([entry("a")]))
    assert d.master_id is None and d.reasons == (MatchReason.INVALID_EXPOSURE,)


def test_light_without_temperature_is_matched_with_lower_confidence():
    index = CalibrationIndex.from_entries([entry("a")])
    d = match_light(light(ccd_temp_c=None), index)
    assert d.master_id == "a" and MatchReason.LIGHT_NO_TEMPERATURE in d.reasons
    assert d.confidence < match_light(light(), index).confidence


def test_quarantined_master_is_never_chosen():
    index = CalibrationIndex.from_entries([entry("bad", status=MasterStatus.QUARANTINED)])
    d = match_light(light(), index)
    assert d.master_id is None


def test_decision_serialises():
    d = match_light(light(), CalibrationIndex.from_entries([entry("a")]))
    out = d.to_dict()
    assert out["master_id"] == "a" and out["candidates"][0]["lost_because"] == []


def test_lost_reasons_are_an_enum_written_as_their_stable_strings():
    """The decision log keeps its strings; the aliases are the members."""
    import json

    from darkflow import matching

    assert {getattr(matching, f"LOST_{m.name}") for m in matching.LostReason} == set(
        matching.LostReason
    )
    cand = matching.Candidate(
        "m1",
        60.0,
        -10.0,
        0.0,
        0.0,
        1.0,
        0.0,
        None,
        lost_because=(matching.LOST_TIME, matching.LOST_HARM),
    )
    text = json.dumps(cand.to_dict()["lost_because"])
    assert text == '["time_window", "model_noise_exceeds_signal"]'
