"""The propagated uncertainty of calibrated lights against the simulator's truth.

Lights are subtracted the way the pipeline does it (master dark and master bias from the
simulated night, ``noise_model_variance`` + ``subtract_dark`` with the header's EGAIN, which
is the true gain), then ``calibrated - truth`` (the noiseless sky plus the light's true dark
minus the darks' true dark) is compared with the propagated uncertainty.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from darkflow.model import FrameMeta, FrameType, MasterMeta, ScaleMode
from darkflow.simulate import sensor_truth
from darkflow.simulate.faults import (
    CAMERA,
    fault_night,
    library_night,
    plan_faulted,
    render_faulted,
)
from darkflow.subtract import build_dark_model, noise_model_variance, subtract_dark
from darkflow.verify import check_light

SEED = 11


@pytest.fixture(scope="module")
def night():
    from darkflow.master import combine_arrays

    spec = fault_night("clean", seed=SEED, shape=(200, 300), n_darks=12, n_lights=2)
    frames = list(render_faulted(plan_faulted(spec, SEED)))
    truth = sensor_truth(spec, SEED, CAMERA)
    g = frames[0].header["EGAIN"]
    assert g == truth.model.egain_e_per_adu  # the header carries the true gain

    def master(kind, frame_kind):
        data = [r.data for r in frames if r.plan.kind == kind]
        meta = MasterMeta(
            config_signature="s",
            instrument="c",
            exptime_s=300.0,
            temp_c=None,
            set_temp_c=None,
            n_frames=len(data),
            egain_e_per_adu=g,
            frame_kind=frame_kind,
        )
        return combine_arrays(data, meta=meta)

    bias, dark = master("bias", FrameType.BIAS), master("dark", FrameType.DARK)
    dark_truth = np.mean(
        [truth.true_dark_adu(300.0, r.plan.true_temp_c) for r in frames if r.plan.kind == "dark"],
        axis=0,
    )
    return frames, truth, g, bias, dark, dark_truth


def _calibrate(frame, night):
    _, truth, g, bias, dark, dark_truth = night
    model = build_dark_model(dark, scale_mode=ScaleMode.NONE)
    read_var, shot_var = noise_model_variance(dark, bias=bias, egain_e_per_adu=g)
    cal = subtract_dark(
        frame.data,
        model,
        egain_e_per_adu=g,
        read_variance_adu2=read_var,
        dark_shot_variance_adu2=shot_var,
    )
    sky = frame.sky_e / g if frame.sky_e is not None else 0.0
    expected = sky + truth.true_dark_adu(300.0, frame.plan.true_temp_c) - dark_truth
    return model, cal, expected


def _variance_ratio(resid: np.ndarray, predicted_var: np.ndarray) -> float:
    """Measured variance of the residuals over the mean predicted variance (ADU² / ADU²).

    Values beyond 6 predicted sigma (cosmic-ray hits of the lights) are left out.
    """
    ok = np.isfinite(resid) & (np.abs(resid) < 6.0 * np.sqrt(predicted_var))
    return float(np.var(resid[ok]) / np.mean(predicted_var[ok]))


def test_predicted_variance_matches_the_measured_residual_within_5_percent(night):
    frames, truth, _g, *_ = night
    lights = [r for r in frames if r.plan.kind == "light"]
    assert len(lights) == 4
    resid, pred, skies = [], [], []
    for frame in lights:
        _, cal, expected = _calibrate(frame, night)
        ok = frame.data < 0.9 * truth.model.saturation_adu  # no saturated star cores
        resid.append((cal.data - expected)[ok])
        pred.append(np.square(cal.uncertainty[ok], dtype=np.float64))
        skies.append(frame.sky_e[ok])
    r, v, sky = np.concatenate(resid), np.concatenate(pred), np.concatenate(skies)
    assert _variance_ratio(r, v) == pytest.approx(1.0, abs=0.05)
    # across the whole range of signal: faint narrowband sky to bright star wings (binned by
    # the noiseless sky, so the binning does not select noise fluctuations)
    edges = np.quantile(sky, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    for lo, hi in itertools.pairwise(edges):
        sel = (sky >= lo) & (sky < hi)
        assert _variance_ratio(r[sel], v[sel]) == pytest.approx(1.0, abs=0.05), (lo, hi)
    assert abs(float(np.median(r / np.sqrt(v)))) < 0.05  # and no bias


def test_the_light_check_sees_the_same_agreement(night):
    frames, *_ = night
    frame = next(r for r in frames if r.plan.kind == "light")
    model, cal, _ = _calibrate(frame, night)
    meta = FrameMeta(path="l", frame_type=FrameType.LIGHT, dtype="uint16", egain_e_per_adu=night[2])
    a = check_light(frame.data, cal, model, meta=meta, bias=night[3])
    assert a.values["noise_ratio"] == pytest.approx(1.0, abs=0.03)
    assert a.passed


def test_read_noise_limited_frame(night):
    """A dark calibrated as if it were a light: no sky, read noise and dark shot noise only.

    The darks come from the library night: same sensor (same seed), other session names, so
    their noise is independent of the darks in the master (a frame sharing its noise with one
    of the master's inputs would correlate with it and shrink the residual).
    """
    spec = library_night(shape=(200, 300), n_darks=3)
    darks = [r for r in render_faulted(plan_faulted(spec, SEED)) if r.plan.kind == "dark"]
    resid, pred = [], []
    for frame in darks:
        _, cal, expected = _calibrate(frame, night)
        resid.append(cal.data - expected)
        pred.append(np.square(cal.uncertainty, dtype=np.float64))
    ratio = _variance_ratio(np.concatenate(resid), np.concatenate(pred))
    assert ratio == pytest.approx(1.0, abs=0.05)
