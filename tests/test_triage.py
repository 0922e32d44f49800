"""Triage: every reason code has causes and a checklist; evidence combines into the right cause."""

from __future__ import annotations

import importlib

import pytest

from darkflow.model import ReasonCode
from darkflow.triage import (
    TRIAGE_TABLE,
    Cause,
    Severity,
    rank_causes,
    render_html,
    render_markdown,
    triage,
    triage_rows,
)

REASON_MODULES = (
    "darkflow.ingest.catalog",
    "darkflow.ingest.headers",
    "darkflow.matching",
    "darkflow.pipeline",
    "darkflow.verify",
)


def _all_reason_codes() -> dict[str, str]:
    for name in REASON_MODULES:
        importlib.import_module(name)
    codes: dict[str, str] = {}
    pending = list(ReasonCode.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for member in cls:
            codes[str(member)] = cls.__name__
    return codes


def test_every_reason_code_of_darkflow_has_a_triage_rule():
    codes = _all_reason_codes()
    assert len(codes) > 60
    missing = sorted(c for c in codes if c not in TRIAGE_TABLE)
    assert not missing, f"reason codes without a triage rule: {missing}"


def test_rules_are_complete_data():
    for code, rule in TRIAGE_TABLE.items():
        assert rule.code == code
        assert rule.checklist, code
        assert all(w > 0 for _, w in rule.causes), code
        if rule.severity != Severity.INFO:
            assert rule.causes or code in {"low_confidence_master", "not_eligible"}, code
    assert len(triage_rows()) == len(TRIAGE_TABLE)


@pytest.mark.parametrize(
    ("reasons", "cause"),
    [
        # the fault benchmark's evidence patterns
        (
            [
                "variance_excess",
                "gain_mismatch",
                "dark_scale_changed",
                "dark_overscaled",
                "hot_pixel_holes",
            ],
            Cause.GAIN_MISMATCH,
        ),
        (["dark_scale_changed", "dark_overscaled", "hot_pixel_holes"], Cause.THERMAL_MISMATCH),
        (["dark_overscaled", "hot_pixel_holes"], Cause.THERMAL_MISMATCH),
        (["dark_level_shift", "low_frequency_changed", "negative_background"], Cause.LIGHT_LEAK),
        (["negative_background", "negative_clipping", "smooth_oversubtraction"], Cause.LIGHT_LEAK),
        (["holdout_outliers", "high_rejection_rate"], Cause.COSMIC_RAYS),
        # an offset without photons: a bias drift alone, another readout mode with its pattern
        (["exposure_excess_uniform", "level_excess", "exposure_law_nonlinear"], Cause.BIAS_DRIFT),
        (
            [
                "exposure_excess_uniform",
                "level_excess",
                "exposure_law_nonlinear",
                "banding_changed",
            ],
            Cause.READOUT_MODE,
        ),
        # an excess proportional to the dark signal: a scale, neither a level nor light; the
        # lights' noise off its model with their hot pixels off scale adds the gain
        (["exposure_excess_scaled", "dark_overscaled"], Cause.THERMAL_MISMATCH),
        (["exposure_excess_scaled", "dark_overscaled", "light_variance_low"], Cause.GAIN_MISMATCH),
        # stray light's pattern against the two sets' dark-current scale
        (["exposure_excess_patterned", "level_excess", "nonlinear_dark"], Cause.LIGHT_LEAK),
        # without a bias, an over-subtraction whose deficit left the light's noise intact
        (
            ["negative_background", "smooth_oversubtraction", "photonless_oversubtraction"],
            Cause.BIAS_DRIFT,
        ),
        (["too_few_frames", "holdout_unavailable"], Cause.TOO_FEW_DARKS),
        # the header's EGAIN wrong for every frame: the darks disagree with it and the lights'
        # noise is off its model, their hot pixels on scale
        (["gain_mismatch", "light_variance_low"], Cause.NOISE_MODEL),
        (["gain_mismatch", "variance_excess", "light_variance_excess"], Cause.NOISE_MODEL),
        (["gain_mismatch"], Cause.NOISE_MODEL),
        # darks at another gain: the same disagreement, and the lights' hot pixels off scale
        (
            ["gain_mismatch", "dark_overscaled", "dark_rescaled", "hot_pixel_holes"],
            Cause.GAIN_MISMATCH,
        ),
        # no EGAIN: the lights' gain is the darks', so their noise is off too
        (
            ["dark_overscaled", "dark_rescaled", "hot_pixel_holes", "light_variance_low"],
            Cause.GAIN_MISMATCH,
        ),
        (["dark_overscaled", "dark_rescaled", "hot_pixel_holes"], Cause.THERMAL_MISMATCH),
        # an uncooled light without temperature holding too little of a warm dark's signal
        (["light_no_temperature", "dark_overscaled", "no_dark_signal"], Cause.THERMAL_MISMATCH),
        (["dark_overscaled", "no_dark_signal"], Cause.ALREADY_PROCESSED),
        # a missing temperature is a header finding: the mismatch it allows is measured by the
        # hot pixels, so cosmic rays the master's rejection counted outweigh it
        (["light_no_temperature"], Cause.HEADER_PROBLEM),
        (["light_no_temperature", "master_no_temperature"], Cause.HEADER_PROBLEM),
        (["light_no_temperature", "high_rejection_rate", "hot_pixel_holes"], Cause.COSMIC_RAYS),
        (["dark_below_bias", "variance_excess"], Cause.BIAS_DRIFT),
        (["light_banding", "negative_background", "negative_clipping"], Cause.READOUT_MODE),
        (["level_excess", "dark_level_shift"], Cause.BIAS_DRIFT),
        (["level_excess"], Cause.BIAS_DRIFT),
        (["level_excess", "banding_changed", "dark_level_shift"], Cause.READOUT_MODE),
        (["no_master_for_config", "config_gain_differs"], Cause.GAIN_MISMATCH),
        (["no_master_for_config", "config_readout_differs"], Cause.READOUT_MODE),
        (["no_candidate"], Cause.THERMAL_MISMATCH),
        # over-subtracted with less noise than the model holds (the darks' noise in it): the
        # darks carry stray light's shot noise; a bias offset has none
        (["negative_background", "negative_clipping", "light_variance_low"], Cause.LIGHT_LEAK),
        (["negative_background", "light_variance_low", "light_banding"], Cause.READOUT_MODE),
        # a jump inside the bias set with its banding changed: one change of the electronics
        (["bias_level_jump", "banding_changed", "negative_background"], Cause.BIAS_DRIFT),
        (["banding_changed", "negative_background"], Cause.READOUT_MODE),
        (["truncated"], Cause.FILE_PROBLEM),
        (["raw_at_floor"], Cause.OFFSET_TOO_LOW),
    ],
)
def test_evidence_combines_into_the_right_cause(reasons, cause):
    ranked = rank_causes(reasons)
    assert ranked[0][0] == cause, ranked


def test_codes_of_one_symptom_count_once():
    """Three codes reporting the hot-pixel scale are one symptom, not three."""
    from darkflow.triage import JOINT_RULES, SYMPTOMS, TRIAGE_TABLE

    one = dict(rank_causes(["dark_overscaled"]))
    assert dict(rank_causes(["dark_overscaled", "dark_rescaled", "harmful_subtraction"])) == {
        c: max(
            dict(TRIAGE_TABLE[k].causes).get(c, 0.0)
            for k in ("dark_overscaled", "dark_rescaled", "harmful_subtraction")
        )
        for c in {**one, **dict(TRIAGE_TABLE["dark_rescaled"].causes)}
    }
    seen = [code for codes in SYMPTOMS.values() for code in codes]
    assert len(seen) == len(set(seen)), "a code belongs to one symptom at most"
    assert all(code in TRIAGE_TABLE for code in seen)
    for joint in JOINT_RULES:
        assert all(codes and codes <= set(TRIAGE_TABLE) for codes in joint.symptoms)
        assert joint.why


def test_ranking_counts_each_code_once_and_ignores_information():
    once = rank_causes(["dark_overscaled"])
    assert rank_causes(["dark_overscaled"] * 5) == once
    assert rank_causes(["no_previous_master", "few_stars", "exposure_scaled"]) == []
    # informational codes with causes (the gain estimated without EGAIN, a bias of another
    # night) say how the result was made, not that something is wrong: no evidence either
    assert rank_causes(["egain_estimated", "bias_other_night", "frame_level_jitter"]) == []
    assert rank_causes(["egain_estimated", "dark_overscaled"]) == once
    assert rank_causes(["no_such_code"]) == [(Cause.UNKNOWN, 1.0)]
    assert rank_causes(["hot_pixel_holes;dark_overscaled"]) == rank_causes(
        ["hot_pixel_holes", "dark_overscaled"]
    )


def test_findings_are_ordered_counted_and_explained():
    from darkflow.verify import VerifyReason

    findings = triage(
        [
            "few_stars",
            VerifyReason.DARK_OVERSCALED,
            "hot_pixel_holes;few_stars",
            None,
            "dark_overscaled",
            "mystery_code",
        ]
    )
    codes = [f.code for f in findings]
    assert codes == ["dark_overscaled", "hot_pixel_holes", "mystery_code", "few_stars"]
    first = findings[0]
    assert first.count == 2 and first.severity == Severity.ERROR
    assert first.causes[0] == Cause.THERMAL_MISMATCH
    assert "over-subtracted" in first.description
    assert any("cooling" in item for item in first.checklist)
    assert findings[2].causes == (Cause.UNKNOWN,) and findings[2].description == ""
    assert triage([]) == []


def test_renderings_escape_and_summarise():
    findings = triage(["dark_overscaled", "variance_excess", "gain_mismatch"])
    md = render_markdown(findings)
    assert "Most likely cause: **gain_mismatch**" in md
    assert "| `dark_overscaled`" in md and "- [ ] " in md
    html = render_html(findings, title="Night <1>")
    assert "Night &lt;1&gt;" in html and "<b>gain_mismatch</b>" in html
    assert "<script" not in html and "http" not in html
    assert "No findings" in render_markdown([]) and "No findings" in render_html([])
    for row in render_markdown(findings).splitlines():
        if row.startswith("| `"):
            assert row.count(" | ") == 3


def test_the_documented_table_is_the_rule_table():
    """docs/verification.md shows every rule with its severity and weights (regenerate with
    ``darkflow.triage.markdown_table()`` after changing a rule)."""
    from pathlib import Path

    from darkflow.triage import markdown_table

    doc = (Path(__file__).resolve().parents[1] / "docs" / "verification.md").read_text()
    assert markdown_table() in doc
