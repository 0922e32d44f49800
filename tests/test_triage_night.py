"""The night's ranking of causes: symptoms weighed by the share of the lights that carry them."""

from __future__ import annotations

import pandas as pd
import pytest

from darkflow.triage import Cause, rank_causes, rank_night_causes

# a light leak's lights (camera zoo, multi-night CCD without EGAIN): every light's background
# below zero and its noise below the model, one light with a trace of banding
LEAK_LIGHT = (
    "no_gain;light_variance_low;negative_clipping;negative_background;dark_scale_unmeasured"
)


def _top(ranked):
    return ranked[0][0]


def test_one_light_and_one_master_rank_as_their_codes_together():
    """The night ranking generalises rank_causes: a night of identical lights is one light."""
    cases = [
        (["dark_overscaled;hot_pixel_holes"], ["gain_mismatch;variance_excess"]),
        (["negative_background;light_banding"], []),
        ([], ["bias_level_jump", "banding_changed"]),
        (["no_dark_signal;light_no_temperature"], ["no_previous_master"]),
        (["dark_overscaled"], ["gain_mismatch"]),  # a joint rule across lights and master
    ]
    for lights, masters in cases:
        pooled = [c for row in [*lights, *masters] for c in row.split(";")]
        assert rank_night_causes(lights * 7, masters) == rank_causes(pooled)
        if len(masters) <= 1:
            assert rank_night_causes(lights, masters) == rank_causes(pooled)


def test_a_symptom_of_few_lights_weighs_by_its_share():
    """Banding on 1 light of 20 does not outweigh what every light shows (the old ranking,
    which counted every distinct code once, let it decide)."""
    lights = [LEAK_LIGHT] * 19 + [LEAK_LIGHT + ";light_banding"]
    night = dict(rank_night_causes(lights))
    pooled = dict(rank_causes([c for row in lights for c in row.split(";")]))
    assert night[Cause.READOUT_MODE] == pytest.approx(
        pooled[Cause.READOUT_MODE] - 3 + 3 / 20  # light_banding: readout_mode 3 on 1/20
    )
    assert _top(rank_night_causes(lights)) == Cause.LIGHT_LEAK
    assert _top(rank_causes([c for row in lights for c in row.split(";")])) != Cause.LIGHT_LEAK
    # lights without a reason are lights the fault did not mark: they dilute the share
    quarter = dict(rank_night_causes(["light_banding", None, "", float("nan")]))
    assert quarter[Cause.READOUT_MODE] == pytest.approx(3 / 4)


def test_master_findings_count_in_full_and_once():
    """A master's finding is measured on all its frames: not diluted by how many masters or
    lights there are; a symptom on lights and masters counts once, with the larger weight."""
    assert dict(rank_night_causes(["negative_background"] * 10, ["bias_level_jump", ""]))[
        Cause.BIAS_DRIFT
    ] == pytest.approx(3 + 1)
    one = dict(rank_night_causes([], ["no_gain"]))
    assert dict(rank_night_causes(["no_gain"] * 3, ["no_gain"])) == one


def test_joint_rule_across_master_and_lights_weighs_by_the_lights_share():
    """The darks' photon transfer against EGAIN (a master finding) with the lights' hot pixels
    off scale names the gain, on the share of the lights that show the hot pixels."""
    full = dict(rank_night_causes(["dark_overscaled"] * 4, ["gain_mismatch"]))
    quarter = dict(rank_night_causes(["dark_overscaled", "", "", ""], ["gain_mismatch"]))
    joint = 3.0  # JOINT_RULES: gain_mismatch with the hot-pixel scale
    assert full[Cause.GAIN_MISMATCH] - quarter[Cause.GAIN_MISMATCH] == pytest.approx(
        (1 + joint) * 3 / 4  # dark_overscaled's own gain 1 and the joint's 3, on 3/4 fewer lights
    )


@pytest.mark.parametrize(
    ("lights", "masters", "cause"),
    [
        # camera zoo nights whose top cause the old ranking got wrong (bench_trust --faulty)
        # multi_night-3323995209, light leak: the darks hold a level and its noise
        ([LEAK_LIGHT] * 19 + [LEAK_LIGHT + ";light_banding"], ["no_previous_master"], "light_leak"),
        # spectra-4273225918, darks of another readout mode: their banding on the calibrated
        # lights; the long lights found no usable model (the broken pair of exposures)
        (
            ["no_gain;light_variance_low;light_banding;negative_background;few_stars"] * 7
            + ["no_candidate"] * 7,
            ["no_previous_master"],
            "readout_mode",
        ),
        # multi_night-3752830274, a jump inside the bias set: both bias masters show it, one
        # with its banding changed; the lights over-subtracted
        (
            ["negative_clipping;negative_background;dark_scale_unmeasured"] * 10,
            ["banding_changed;bias_level_jump", "bias_level_jump"],
            "bias_drift",
        ),
    ],
)
def test_zoo_nights_rank_the_right_cause(lights, masters, cause):
    assert str(_top(rank_night_causes(lights, masters))) == cause


def test_pooled_evidence_of_these_nights_was_wrong():
    """The same nights ranked as before (rank_causes over every code once) miss the cause:
    the ranking, not only the rules, decides."""
    lights = [LEAK_LIGHT] * 19 + [LEAK_LIGHT + ";light_banding"]
    assert _top(rank_causes([c for row in lights for c in row.split(";")])) == Cause.READOUT_MODE


def test_night_causes_table_is_ordered_by_the_night_evidence():
    from darkflow.viz import night_causes

    lights = pd.DataFrame(
        {
            "path": [f"/n/light_{i}.fits" for i in range(6)],
            "status": ["degraded"] * 5 + ["quarantined"],
            "reasons": [LEAK_LIGHT] * 5 + ["light_banding;negative_background"],
            "top_cause": [None] * 6,
        }
    )
    masters = pd.DataFrame({"status": ["verified"], "reasons": ["no_previous_master"]})
    table = night_causes(lights, masters)
    assert table["cause"].iloc[0] == "light_leak"
    assert list(table["evidence"]) == sorted(table["evidence"], reverse=True)
    ranked = rank_night_causes(list(lights["reasons"]), [])
    assert table.set_index("cause")["evidence"].to_dict() == {
        str(c): round(w, 3) for c, w in ranked
    } | {c: 0.0 for c in table["cause"] if c not in {str(k) for k, _ in ranked}}
    # the counts still say what each cause cost: the lights whose own top cause it is
    assert table["quarantined"].sum() == 1 and table["degraded"].sum() == 5


def test_the_night_checklist_leads_with_the_night_cause():
    from darkflow.viz import night_causes
    from darkflow.viz._triage import night_checklist_html

    lights = pd.DataFrame(
        {
            "path": [f"/n/light_{i}.fits" for i in range(20)],
            "status": ["degraded"] * 20,
            "reasons": [LEAK_LIGHT] * 19 + [LEAK_LIGHT + ";light_banding"],
        }
    )
    html = night_checklist_html(lights)
    lead = html.split("Most likely cause:", 1)[1].split("</p>", 1)[0]
    assert lead.startswith(" <b>light_leak</b>")
    assert night_causes(lights)["cause"].iloc[0] == "light_leak"


@pytest.mark.parametrize(
    ("lights", "masters", "cause"),
    [
        # camera zoo seed 4, dslr-1853863002 (darks' bias 7.6 sigma high): the master's level
        # above its shot noise and the lights' noise below a model that gives it shot noise,
        # against a dark scaled without proof of linearity (no deviation measured)
        (
            [
                "light_no_temperature;exposure_scaled;exposure_linearity_unproven;"
                "low_confidence_master;egain_estimated;light_variance_low"
            ]
            * 6,
            ["level_excess;no_previous_master"],
            Cause.BIAS_DRIFT,
        ),
        # seed 4, colour_cmos-2603539678 (darks in another readout mode): a patterned excess
        # with the master's column pattern changed, the lights over-subtracted with banding
        (
            [
                "low_confidence_master;egain_estimated;light_variance_low;negative_clipping;"
                "light_banding;negative_background;smooth_oversubtraction"
            ]
            * 9,
            ["exposure_excess_patterned;banding_changed;no_previous_master"],
            Cause.READOUT_MODE,
        ),
        # seed 4, dslr-886136803 (cosmic rays in one dark set): the master's rejection rate
        # (3, measured) against the exposure law (2) and the hot-pixel scale (1): a tie
        (
            [
                "light_no_temperature;exposure_scaled;exposure_law_nonlinear;egain_estimated;"
                "dark_rescaled;dark_overscaled"
            ]
            * 4,
            ["high_rejection_rate;frame_level_jitter;no_previous_master"],
            Cause.COSMIC_RAYS,
        ),
        # seed 3, colour_cmos-628502548 (warm darks, recorded): the set-point not reached
        # against an interpolation whose linearity is merely not demonstrated
        (
            [
                "exposure_interpolated;interpolation_unproven;temperature_scaled;"
                "setpoint_not_reached;few_stars"
            ]
            * 7,
            ["no_previous_master"],
            Cause.THERMAL_MISMATCH,
        ),
        # guards: the header's EGAIN wrong makes the same pair, its photon transfer names it;
        # stray light's patterned excess without a changed column pattern stays light
        (
            ["exposure_interpolated;light_variance_low;egain_pair_mismatch"] * 7,
            ["level_excess"],
            Cause.NOISE_MODEL,
        ),
        (
            ["negative_background;smooth_oversubtraction;light_variance_low"] * 5,
            ["exposure_excess_patterned"],
            Cause.LIGHT_LEAK,
        ),
    ],
)
def test_zoo_nights_whose_fault_lost_to_a_tie_or_an_unmeasured_hint(lights, masters, cause):
    assert _top(rank_night_causes(lights, masters)) == cause, rank_night_causes(lights, masters)


def test_a_tie_goes_to_the_stronger_single_evidence():
    """Equal sums: one measurement that establishes a cause (3) before 2 + 1 of weaker hints,
    whatever the order of the causes' enum."""
    ranked = rank_causes(
        ["high_rejection_rate", "exposure_scaled", "exposure_law_nonlinear", "dark_overscaled"]
    )
    scores = dict(ranked)
    assert scores[Cause.COSMIC_RAYS] == scores[Cause.EXPOSURE_MISMATCH] == 3
    assert scores[Cause.THERMAL_MISMATCH] == 3
    assert ranked[0][0] == Cause.COSMIC_RAYS
    assert list(Cause).index(Cause.THERMAL_MISMATCH) < list(Cause).index(Cause.COSMIC_RAYS)


def test_hot_pixels_off_scale_point_at_the_exposure_only_where_the_model_crossed_it():
    """Camera zoo seed 4, spectra-189601495: the 120 s darks 8 °C warmer than their header.
    The 120 s lights, calibrated with them unscaled, have their hot pixels off scale; the 30 s
    lights, scaled from the 60 s darks, carry the exposure law that the warm set broke. A
    sensor whose dark signal is not proportional to exposure calibrates the 120 s lights
    exactly: their hot pixels say nothing of the exposure."""
    lights = ["exposure_scaled;exposure_law_nonlinear;dark_scale_unmeasured"] * 6 + [
        "dark_rescaled;dark_overscaled"
    ] * 6
    masters = ["master_noise_inflation;holdout_unavailable;no_previous_master"]
    assert _top(rank_night_causes(lights, masters)) == Cause.THERMAL_MISMATCH
    assert Cause.EXPOSURE_MISMATCH not in dict(rank_causes(["dark_overscaled"]))
    assert Cause.EXPOSURE_MISMATCH in dict(rank_causes(["dark_overscaled", "exposure_scaled"]))
