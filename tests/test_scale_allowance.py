"""The dark-scale gate when a temperature is unknown: an assumed mismatch is no spread.

The match assumes ``matching.unknown_temp_error`` for a light or master without a temperature;
the light's hot pixels measure the mismatch. The gate's allowance is then the scale error that
moves the typical fitted hot pixel by one sigma of its own noise, not ``z*`` times the guess
(which let darks 6 degrees warmer than the lights, ``alpha = -0.54``, pass).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from darkflow.calibrate import _assumed_thermal_rel_sigma
from darkflow.matching._records import Candidate, MatchDecision
from darkflow.verify import z_threshold
from darkflow.verify._fpn import ScaleFit, hot_scale_fit
from darkflow.verify._lightgates import NoiseBudget, scale_gates
from darkflow.verify._metrics import VerifyReason

P = 1e-4


def _fit(alpha: float, sigma: float = 0.012, rel: float = 0.16) -> ScaleFit:
    return ScaleFit(alpha, sigma, 200, 0.05, rel)


def _unknown(rel: float = 0.15) -> NoiseBudget:
    return NoiseBudget(scale_rel_sigma=rel, scale_assumed_rel_sigma=rel)


def test_darks_warmer_than_lights_of_unknown_temperature_are_overscaled():
    # the nebula-444521638 night of the zoo: alpha -0.54 measured to 1.2 %
    gates, total = scale_gates(_fit(-0.539), _unknown(), false_alarm=P)
    scale = gates[0]
    assert scale.failed and scale.reason == VerifyReason.DARK_OVERSCALED
    assert total == pytest.approx(0.012)  # the guess is not in the spread


def test_a_scale_error_within_one_sigma_of_the_typical_hot_pixel_passes():
    # lights within half a degree of their darks: a few per cent, invisible at the pixels
    for alpha in (-0.06, 0.0, 0.06, 0.15):
        gates, _ = scale_gates(_fit(alpha), _unknown(), false_alarm=P)
        assert not gates[0].failed, alpha


def test_the_allowance_is_the_lights_own_hot_pixel_noise():
    thr = z_threshold(P)
    for rel in (0.05, 0.3):
        edge = rel + thr * 0.012
        inside, _ = scale_gates(_fit(-0.98 * edge, rel=rel), _unknown(), false_alarm=P)
        beyond, _ = scale_gates(_fit(-1.02 * edge, rel=rel), _unknown(), false_alarm=P)
        assert not inside[0].failed and beyond[0].failed, rel


def test_a_measured_scale_uncertainty_still_widens_the_spread():
    # a fitted thermal law's 15 %: a real spread of the model, as before
    known = NoiseBudget(scale_rel_sigma=0.15)
    gates, total = scale_gates(_fit(-0.539), known, false_alarm=P)
    assert not gates[0].failed
    assert total == pytest.approx(math.hypot(0.012, 0.15))
    # the measured part of a mixed budget stays in the spread
    mixed = NoiseBudget(scale_rel_sigma=math.hypot(0.15, 0.1), scale_assumed_rel_sigma=0.15)
    assert mixed.scale_measured_rel_sigma == pytest.approx(0.1)


def test_too_few_hot_pixels_for_the_allowance_is_not_measured():
    gates, total = scale_gates(_fit(-0.5, sigma=0.3, rel=0.3), _unknown(), false_alarm=P)
    assert gates[0].value is None or gates[0].reason == VerifyReason.SCALE_UNMEASURED
    assert math.isnan(total)


def test_hot_scale_fit_states_the_typical_hot_pixels_relative_noise():
    rng = np.random.default_rng(3)
    shape, noise = (96, 96), 5.0
    template = np.zeros(shape, np.float32)
    hot = rng.choice(shape[0] * shape[1], 120, replace=False)
    template.flat[hot] = 10.0 * noise  # every hot pixel 10 sigma above its neighbours
    target = (0.5 * template + rng.normal(0.0, noise, shape)).astype(np.float32)
    fit = hot_scale_fit(target, template, noise)
    assert fit.alpha == pytest.approx(0.5, abs=0.05)
    assert fit.pixel_rel_noise == pytest.approx(0.1, rel=0.1)


def _decision(delta_temp_c: float | None, dark_rel_sigma: float) -> MatchDecision:
    chosen = Candidate("m", 120.0, None, 0.0, delta_temp_c, 1.0, None, 0.2)
    return MatchDecision(
        "light.fits", "sig", "m", None, 1.0, 0.5, chosen=chosen, dark_rel_sigma=dark_rel_sigma
    )


def test_the_assumed_part_is_the_thermal_term_of_an_unknown_temperature():
    assert _assumed_thermal_rel_sigma(_decision(None, 0.15)) == pytest.approx(0.15)
    assert _assumed_thermal_rel_sigma(_decision(1.5, 0.08)) == 0.0


def test_without_a_bias_the_dark_level_is_said_to_be_unmeasured():
    from helpers.lights import NightSpec, _adu, clean_night

    from darkflow.model import FrameMeta, FrameType
    from darkflow.verify import check_light

    raws = []

    def keep(raw, _sky):
        raws.append(_adu(raw))
        return raw

    light = clean_night(NightSpec(seed=5, n_lights=1), false_alarm=P, light_hook=keep)[0]
    names = {m.name for m in light.check.metrics}
    assert "dark_level_offset" not in names  # calibrated with the night's bias
    meta = FrameMeta(path="light.fits", frame_type=FrameType.LIGHT, exptime_s=120.0, dtype="uint16")
    check = check_light(raws[0], light.calibrated, light.model, meta=meta, bias=None)
    level = check.metric("dark_level_offset")
    assert level.reason == VerifyReason.LEVEL_UNMEASURED and level.confidence is None
    assert VerifyReason.LEVEL_UNMEASURED not in check.failed_reasons


@pytest.mark.slow
def test_a_dslr_night_with_warm_darks_and_no_temperatures_is_rescaled_and_flagged(tmp_path):
    """The zoo's nebula-444521638: darks 6.4 C warmer than the lights, no temperature in any
    header, no EGAIN. Every light was calibrated without a flag; each is now rescaled (its
    hot pixels measure the scale to ~1 %), degraded with the cause, and its gain measured on
    the rescaled model (the first model's excess dark noise biased it 13 % low)."""
    import pandas as pd

    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import sample_zoo, zoo_night

    params = next(p for p in sample_zoo(200, 0) if p.name == "nebula-444521638")
    zoo_night(tmp_path / "data", params=params)
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    frames = pd.read_csv(tmp_path / "work" / "frame_report.csv")
    assert len(frames) == 9
    assert (frames["status"] == "degraded").all()
    for reasons, response in zip(frames["reasons"], frames["response"], strict=True):
        assert {"dark_rescaled", "dark_overscaled"} <= set(reasons.split(";"))
        assert "light_variance_low" not in reasons
        assert response.startswith("rescale_dark x0.")
    true_gain = params.camera.egain_e_per_adu
    assert frames["egain_e_per_adu"].between(0.93 * true_gain, 1.07 * true_gain).all()


def _reasons(gates) -> set:
    return {g.reason for g in gates if g.failed}


def test_a_model_of_uncertain_scale_does_not_make_a_present_dark_signal_absent():
    # the zoo's mono_cmos-2467284960 (sample_zoo(60, seed=1)): a 30 s light from 120 s and
    # 180 s darks without a bias, the model extrapolated 4x (~10 % uncertain); the light holds
    # 0.45 +- 0.08 of the model's hot-pixel signal. Under "no dark signal" the fraction is 0
    # whatever the model's scale, so the model's uncertainty is no spread of that zero
    budget = NoiseBudget(scale_rel_sigma=0.1)
    gates, _ = scale_gates(_fit(-0.55, sigma=0.08, rel=0.25), budget, false_alarm=P)
    assert gates[0].reason == VerifyReason.DARK_OVERSCALED
    present = next(g for g in gates if g.name == "dark_signal_fraction")
    assert present.reason is None and present.spread == pytest.approx(0.08)
    assert VerifyReason.NO_DARK_SIGNAL not in _reasons(gates)
    # a light that holds none of it (dark-subtracted by the capture program) still says so
    gates, _ = scale_gates(_fit(-0.99, sigma=0.08, rel=0.25), budget, false_alarm=P)
    assert VerifyReason.NO_DARK_SIGNAL in _reasons(gates)
    # and a model ten times too strong is harmful, not "no signal"
    gates, _ = scale_gates(_fit(-0.9, sigma=0.01, rel=0.25), NoiseBudget(), false_alarm=P)
    assert _reasons(gates) >= {VerifyReason.DARK_OVERSCALED, VerifyReason.HARMFUL_SUBTRACTION}
    assert VerifyReason.NO_DARK_SIGNAL not in _reasons(gates)


@pytest.mark.slow
def test_an_extrapolated_model_without_a_bias_keeps_its_output(tmp_path):
    """The out-of-sample zoo's mono_cmos-2467284960 (``sample_zoo(60, seed=1)``): 30 s lights
    with darks of 120 s and 180 s only (5 each), no bias, no EGAIN. The per-pixel model
    extrapolated 4x over-subtracts the few fitted hot pixels (~0.5 of their signal remains);
    5 of 7 lights were quarantined as holding no dark signal at all. Usable model: every light
    keeps its calibrated frame, those five degraded with the cause."""
    import pandas as pd

    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import sample_zoo, zoo_night

    params = next(p for p in sample_zoo(60, 1) if p.name == "mono_cmos-2467284960")
    zoo_night(tmp_path / "data", params=params)
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    frames = pd.read_csv(tmp_path / "work" / "frame_report.csv")
    assert len(frames) == 14
    assert (frames["status"] != "quarantined").all()
    assert frames["output_path"].notna().all()
    short = frames[frames["exptime_s"] == 30.0]
    assert not short["reasons"].str.contains("no_dark_signal").any()
