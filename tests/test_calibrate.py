"""darkflow.calibrate.calibrate_light: the one calibrate-a-light step, and its callers agreeing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import benchmark_module
from helpers.verify import (
    GAIN,
    bias_master,
    dark_frames,
    light_frame,
    make_sensor,
    master_of,
    sky_scene,
)

from darkflow.calibrate import LightCalibration, calibrate_light
from darkflow.config import Config
from darkflow.matching import CalibrationIndex, MatchDecision
from darkflow.model import FrameMeta, FrameType, GainEstimate, LightStatus, MasterStatus, ScaleMode
from darkflow.subtract import build_dark_model
from darkflow.verify import AppliedResponse, ResponseAction

META = FrameMeta(
    path="light.fits",
    frame_type=FrameType.LIGHT,
    exptime_s=300.0,
    egain_e_per_adu=GAIN,
    dtype="uint16",
)


def _decision(mode: ScaleMode = ScaleMode.NONE, factor: float = 1.0, **kw) -> MatchDecision:
    return MatchDecision(
        light_path="light.fits",
        config_signature="synthetic",
        master_id="m",
        scale_mode=mode,
        scale_factor=factor,
        confidence=kw.pop("confidence", 0.9),
        exposure_factor=factor,
        **kw,
    )


@pytest.fixture(scope="module")
def night():
    sensor = make_sensor(3)
    bias = bias_master(sensor, seed=11)
    master = master_of(dark_frames(sensor, 16, seed=12))
    raw = light_frame(sensor, sky_scene(background_e=150.0), seed=13)
    return sensor, bias, master, raw


def _run(raw, master, bias, decision=None, **kw) -> LightCalibration:
    kw.setdefault("meta", META)
    return calibrate_light(
        raw,
        kw.pop("meta"),
        decision or _decision(),
        load_master={"m": master}.__getitem__,
        bias=bias,
        index=CalibrationIndex(),
        config=kw.pop("config", Config()),
        **kw,
    )


def test_a_good_light_is_calibrated_with_its_fields(night):
    _, bias, master, raw = night
    before = raw.copy()
    r = _run(raw, master, bias, master_status=MasterStatus.VERIFIED)
    np.testing.assert_array_equal(raw, before)  # the input is not modified
    assert r.status == LightStatus.CALIBRATED and r.delivered, r.reasons
    assert r.response == "none" and r.first_check is r.check
    assert (r.egain_e_per_adu, r.egain_source) == (GAIN, "header")
    model = build_dark_model(master, scale_mode=ScaleMode.NONE)
    np.testing.assert_array_equal(r.calibrated.data, raw.astype(np.float32) - model.data)
    assert np.isfinite(r.calibrated.uncertainty).all()
    # the confidence is the checks' (the weakest measured gate), not a product with the match's
    # (0.9): a clean light's gates sit at random z, the weakest lowers it a little (here the
    # banding projection at z = 2.4, a 2 % event under "all is well")
    assert r.confidence == round(r.check.confidence, 4) == r.fields["confidence"]
    weakest = min(m.confidence for m in r.check.metrics if m.confidence is not None)
    assert r.check.confidence == weakest and r.confidence > 0.8
    assert r.fields["status"] == r.status and r.fields["reasons"] == list(r.reasons)
    assert r.fields["noise_ratio"] == round(r.check.residuals.noise_ratio, 6)
    assert r.hist_counts == r.check.residuals.hist_counts
    assert r.fields["scale_mode"] == "none" and r.fields["egain_source"] == "header"


def test_a_master_that_is_not_verified_degrades_the_light(night):
    _, bias, master, raw = night
    r = _run(raw, master, bias, master_status=MasterStatus.LOW_CONFIDENCE)
    assert r.status == LightStatus.DEGRADED and r.delivered


def test_a_recipe_needing_a_bias_without_one_is_quarantined_before_subtraction(night):
    _, _, master, raw = night
    r = _run(raw, master, None, _decision(ScaleMode.EXPOSURE, 0.5))
    assert r.status == LightStatus.QUARANTINED and not r.delivered
    assert r.calibrated is None and r.check is None and r.hist_counts is None
    assert r.fields == {"status": LightStatus.QUARANTINED, "reasons": ["no_bias_for_scaling"]}


def test_a_light_of_another_shape_is_quarantined(night):
    _, bias, master, raw = night
    r = _run(raw[:-2], master, bias)
    assert r.status == LightStatus.QUARANTINED and r.reasons == ("shape_mismatch",)


def test_without_egain_the_gain_comes_from_the_darks_then_the_light(night):
    _, bias, master, raw = night
    meta = META.replace(egain_e_per_adu=None)
    seen = []

    def from_darks(m):
        seen.append(m)
        return GainEstimate(0.55, 0.01, "darks", 12)

    r = _run(raw, master, bias, meta=meta, dark_gain=from_darks)
    assert seen == [master] and (r.egain_e_per_adu, r.egain_source) == (0.55, "darks")
    assert r.gain == GainEstimate(0.55, 0.01, "darks", 12) and r.fields["egain_sigma"] == 0.01
    assert "egain_estimated" in r.reasons
    r = _run(raw, master, bias, meta=meta, dark_gain=lambda m: None)
    assert r.egain_source == "light" and r.egain_e_per_adu > 0 and r.gain.sigma > 0
    # a loose measurement of the darks is combined with the light's own, by their weights
    r = _run(raw, master, bias, meta=meta, dark_gain=lambda m: GainEstimate(0.55, 0.2, "darks", 3))
    assert r.egain_source == "darks+light" and r.gain.sigma < 0.2
    # the night's measurement (pairs, flats) joins the darks'
    r = _run(
        raw,
        master,
        bias,
        meta=meta,
        dark_gain=from_darks,
        gain=GainEstimate(0.57, 0.01, "flats", 4),
    )
    assert r.egain_source == "flats+darks" and r.egain_e_per_adu == pytest.approx(0.56)


def test_a_header_egain_is_kept_with_its_stated_trust(night):
    _, bias, master, raw = night
    r = _run(raw, master, bias, gain=GainEstimate(0.3, 0.01, "flats", 4))
    assert r.egain_source == "header" and r.gain.rel_sigma == pytest.approx(0.05)
    assert "egain_estimated" not in r.reasons


def test_an_overscaled_dark_is_rescaled_once_and_the_light_degraded():
    sensor = make_sensor(4)
    bias = bias_master(sensor, seed=21)
    strong = master_of(dark_frames(sensor, 16, seed=22, dark_scale=1.5))  # 1.5x the light's dark
    raw = light_frame(sensor, sky_scene(background_e=150.0), seed=23)
    r = _run(raw, strong, bias, master_status=MasterStatus.VERIFIED)
    assert r.response.startswith("rescale_dark"), (r.response, r.reasons)
    assert r.applied == AppliedResponse(ResponseAction.RESCALE_DARK, True, r.applied.value)
    assert r.response == f"rescale_dark x{r.applied.value:.4g}"
    assert r.first_check is not r.check
    assert "dark_overscaled" in r.reasons and "dark_rescaled" in r.reasons
    assert r.status == LightStatus.DEGRADED
    assert abs(r.check.values["dark_scale_error"]) < abs(r.first_check.values["dark_scale_error"])


def test_noise_of_the_first_models_scale_error_is_not_a_second_symptom():
    """A dark 2.8x the light's (warmer darks, no EGAIN): the first check sees the pattern the
    wrong scale leaves as excess noise; the re-check on the rescaled model measures the noise
    again and it passes, so the finding was the scale error and only the scale's is kept."""
    sensor = make_sensor(4)
    bias = bias_master(sensor, seed=21)
    strong = master_of(dark_frames(sensor, 16, seed=22, dark_scale=2.8))
    raw = light_frame(sensor, sky_scene(background_e=150.0), seed=23)
    meta = META.replace(egain_e_per_adu=None)
    r = _run(raw, strong, bias, meta=meta, master_status=MasterStatus.VERIFIED)
    assert r.response.startswith("rescale_dark"), r.reasons
    assert "light_variance_excess" in r.first_check.failed_reasons
    assert r.check.metric("log_variance_ratio").status == "pass"
    assert "dark_overscaled" in r.reasons and "light_variance_excess" not in r.reasons


def test_a_finding_the_recheck_still_makes_or_cannot_make_stays():
    from darkflow.calibrate import _rescale_evidence
    from darkflow.verify import LightAssessment, Response, VerifyReason
    from darkflow.verify._metrics import Metric

    def assessment(**status):
        reasons = {
            "dark_scale_error": VerifyReason.DARK_OVERSCALED,
            "log_variance_ratio": VerifyReason.LIGHT_VARIANCE_EXCESS,
            "column_pattern": VerifyReason.LIGHT_BANDING,
        }
        metrics = tuple(
            Metric(n, 1.0 if s != "nm" else None, "", 0.5 if s != "nm" else None)
            if s != "fail"
            else Metric(n, 1.0, "", 0.1, reasons[n])
            for n, s in status.items()
        )
        return LightAssessment(0.5, metrics, (), 1.0, Response())

    first = assessment(dark_scale_error="fail", log_variance_ratio="fail", column_pattern="fail")
    again = assessment(dark_scale_error="pass", log_variance_ratio="fail", column_pattern="nm")
    assert _rescale_evidence(first, again) == (
        VerifyReason.DARK_OVERSCALED,
        VerifyReason.LIGHT_VARIANCE_EXCESS,
        VerifyReason.LIGHT_BANDING,
    )
    again = assessment(dark_scale_error="pass", log_variance_ratio="pass", column_pattern="pass")
    assert _rescale_evidence(first, again) == (VerifyReason.DARK_OVERSCALED,)


def test_a_rescaled_model_carries_the_measured_scale_error():
    """A match stating 10 % on the dark scale, a light holding 0.4x of it: after the rescale
    the model's systematic term is the hot-pixel fit's error of the factor, not the 10 %."""
    sensor = make_sensor(4)
    bias = bias_master(sensor, seed=21)
    strong = master_of(dark_frames(sensor, 16, seed=22, dark_scale=2.5))
    raw = light_frame(sensor, sky_scene(background_e=150.0), seed=23)
    r = _run(raw, strong, bias, _decision(dark_rel_sigma=0.1), master_status=MasterStatus.VERIFIED)
    assert r.response.startswith("rescale_dark"), r.reasons
    rel = r.first_check.values["dark_scale_fit_sigma"] / r.applied.value
    assert 0 < rel < 0.05
    sv, signal = r.model.systematic_variance, r.model.dark_signal
    np.testing.assert_allclose(sv, np.square(np.float32(rel) * signal), rtol=1e-4, atol=1e-6)
    # the uncertainty plane carries it: on the hot pixels, where the scale term dominates,
    # the light's variance is below the stated 10 % term alone
    hot = signal > np.percentile(signal, 99.5)
    assert np.median(r.calibrated.uncertainty[hot] ** 2) < np.median(np.square(0.1 * signal[hot]))


def test_the_amplitude_limit_leaves_the_light_at_best_degraded(night):
    _, bias, master, raw = night
    r = _run(raw, master, bias, master_status=MasterStatus.VERIFIED, amplitude_limit_sigma=5.0)
    assert r.status == LightStatus.DEGRADED and r.model.notes["amplitude_limit"]["n_capped"] > 0


# ----------------------------------------------------------------------------- one step, three callers
def _same(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # NaN where NaN, else equal


@pytest.mark.integration
def test_pipeline_widget_and_benchmark_calibrate_a_light_identically(tiny_run):
    """A simulated light: the pipeline's light job, the explorer's residual metric and the
    fault benchmark's calibration all give the bytes and numbers of one calibrate_light."""
    from astropy.io import fits

    from darkflow.ingest.catalog import meta_from_row
    from darkflow.io.fits import read_image
    from darkflow.pipeline.records import reasons_text
    from darkflow.report.results import Workdir
    from darkflow_widgets.metrics import MetricContext, decision_from_record

    wd = Workdir(tiny_run[0])
    fr = wd.frame_report
    # unscaled single-master recipes: a metadata-only index builds the pipeline's model exactly
    rows = fr[fr["scale_mode"].isin(["none", "unscaled"]) & fr["noise_ratio"].notna()]
    assert len(rows) >= 3
    catalog = wd.catalog.set_index("path", drop=False)
    bench = benchmark_module("bench_faults")
    n_files = 0
    for _, row in rows.iterrows():
        path, master_id = row["path"], row["master_id"]
        meta = meta_from_row(catalog.loc[path].to_dict())
        if isinstance(row["bayer_pattern"], str):  # the contract catalog has no Bayer pattern
            meta = meta.replace(bayer_pattern=row["bayer_pattern"])
        decision = decision_from_record(wd.decision_for(path))
        assert decision.master_ids == (master_id,)
        master = wd.load_master(master_id)
        bias_id = row["bias_master_id"]
        bias = wd.load_master(bias_id) if isinstance(bias_id, str) else None
        status = wd.masters.set_index("master_id").loc[master_id, "status"]
        data, _ = read_image(path, hdu=meta.hdu_index, dtype="float32")
        step = calibrate_light(
            data,
            meta,
            decision,
            load_master={master_id: master}.__getitem__,
            bias=bias,
            index=CalibrationIndex(),
            config=Config(),
            master_status=status,
        )

        # the pipeline's light job: its frame-report fields and its calibrated file
        assert step.status == row["status"]
        assert row["reasons"].startswith(reasons_text(step.reasons))  # the runner may add notes
        assert step.confidence == row["confidence"]
        assert step.fields["noise_ratio"] == row["noise_ratio"]
        assert step.fields["egain_source"] == (
            row["egain_source"] if isinstance(row["egain_source"], str) else None
        )
        if step.delivered:
            with fits.open(row["output_path"]) as hdul:
                _same(hdul[0].data, step.calibrated.data)
                # [output] light_uncertainty = "scalar" (the default): its summary in the header
                assert "UNCERT" not in hdul and hdul[0].header["DFUMODE"] == "scalar"
                unc = step.calibrated.uncertainty
                median = float(np.median(unc[np.isfinite(unc) & np.isfinite(data)]))
                assert hdul[0].header["DFUNCMED"] == float(f"{median:.6g}")
                assert hdul[0].header["DFCONF"] == step.confidence
            n_files += 1
        else:
            assert not isinstance(row["output_path"], str)

        # the explorer's residual metric (the light re-calibrated with its own master)
        ctx = MetricContext(wd, master_id, fr[fr["path"] == path].reset_index(drop=True), 1)
        (res,) = ctx.residuals(master)
        np.testing.assert_equal(res.to_dict(), step.check.residuals.to_dict())  # NaN == NaN
        _same(ctx.calibrate(master, row).calibrated.data, step.calibrated.data)

        # the fault benchmark's calibration
        got = bench._calibrate(
            data,
            meta,
            decision,
            masters={master_id: master},
            bias=bias,
            index=CalibrationIndex(),
            master_status=status,
            config=Config(),
        )
        _same(got.calibrated.data, step.calibrated.data)
        _same(got.calibrated.uncertainty, step.calibrated.uncertainty)
        assert (got.status, got.reasons, got.fields) == (step.status, step.reasons, step.fields)
    assert n_files >= 2


def test_the_recorded_response_text_is_the_one_frame_reports_always_had():
    """``frame_report.csv`` keeps its ``response`` strings; readers use the record instead."""
    assert str(AppliedResponse()) == "none"
    assert (
        str(AppliedResponse(ResponseAction.RESCALE_DARK, True, 0.912345)) == "rescale_dark x0.9123"
    )
    assert str(AppliedResponse(ResponseAction.ADD_PEDESTAL, True, np.float64(12.5))) == (
        "add_pedestal 12.5"
    )
    assert str(AppliedResponse(ResponseAction.USE_PREVIOUS_MASTER)) == (
        "suggested: use_previous_master"
    )
    assert str(AppliedResponse(ResponseAction.RESCALE_DARK)) == "suggested: rescale_dark"


def _no_gain_run(raw, master, bias):
    meta = FrameMeta(path="light.fits", frame_type=FrameType.LIGHT, exptime_s=300.0, dtype="uint16")
    return _run(raw, master, bias, meta=meta, dark_gain=lambda m: None)


def test_no_gain_is_not_a_flag_when_the_light_shows_no_shot_noise(night, monkeypatch):
    """A light without signal (a held-out dark) calibrated without a bias needs no gain: the
    darks' temporal variance, its uncertainty, holds the dark current's shot noise. With the
    bias the uncertainty is read noise only and the dark's shot noise shows: still a flag."""
    sensor, bias, master, _ = night
    held_out = dark_frames(sensor, 1, seed=99)[0]
    r = _no_gain_run(held_out, master, None)
    assert r.egain_e_per_adu is None
    assert "gain_not_needed" in r.reasons and "no_gain" not in r.reasons, r.reasons
    assert r.status == LightStatus.CALIBRATED
    with_bias = _no_gain_run(held_out, master, bias)
    assert "no_gain" in with_bias.reasons and "gain_not_needed" not in with_bias.reasons


def test_no_gain_stays_a_flag_when_a_sky_shows_shot_noise(night, monkeypatch):
    """A sky whose shot noise the read-only uncertainty lacks: the light says so."""
    import darkflow.subtract.gain as gain_module

    _, bias, master, raw = night  # 150 e- of sky
    monkeypatch.setattr(gain_module, "gain_from_light", lambda *a, **k: None)
    r = _no_gain_run(raw, master, bias)
    assert r.egain_e_per_adu is None
    assert "no_gain" in r.reasons and "gain_not_needed" not in r.reasons, r.reasons
