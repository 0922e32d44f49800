"""Fault injection in the simulator (darkflow.simulate.faults), and the pipeline's verdicts on
the faulted nights: every fault detected, with its cause."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astropy.io import fits
from conftest import benchmark_module

from darkflow.exceptions import ConfigError
from darkflow.ingest.headers import normalise
from darkflow.pipeline import run_night
from darkflow.report.results import Workdir
from darkflow.simulate import plan_night, sensor_truth, simulate_night
from darkflow.simulate.faults import (
    CAMERA,
    FAULT_KINDS,
    BiasDrift,
    CosmicRayShower,
    WrongGain,
    fault_night,
    library_night,
    plan_faulted,
    render_faulted,
    simulate_faulted_night,
)
from darkflow.triage import rank_causes

SMALL = {"shape": (48, 64), "n_darks": 10, "n_lights": 1}


def _render(kind: str, seed: int = 3, **kw):
    spec = fault_night(kind, seed=seed, **{**SMALL, **kw})
    return spec, list(render_faulted(plan_faulted(spec, seed)))


def _kind(frames, kind):
    return [r for r in frames if r.plan.kind == kind]


def test_every_scenario_plans_and_unknown_kinds_fail():
    for kind in FAULT_KINDS:
        spec = fault_night(kind, **SMALL)
        json.dumps(spec.to_dict())  # the manifest must stay plain JSON (no sensor maps)
        plan = plan_faulted(spec, 0)
        darks = [f for f in plan.frames if f.kind == "dark"]
        assert len(darks) == (3 if kind == "too_few_darks" else 10)
        faulted = {code for f in plan.frames for code in f.faults}
        assert (not faulted) == (kind in ("clean", "too_few_darks")), kind
        assert all(not f.faults for f in plan.frames if f.kind != "dark")
    with pytest.raises(ConfigError):
        fault_night("gremlins")


def test_wrong_gain_scales_signal_and_noise_like_a_real_gain_change():
    spec, frames = _render("wrong_gain", n_darks=16, shape=(96, 128))
    truth = sensor_truth(spec, 3, CAMERA)
    fault = spec.sessions[0].faults[0]
    k = fault.adu_factor
    assert k == pytest.approx(10 ** (100 / 200))  # gain 200 vs 100: 3.16x ADU per e-
    darks = np.array([r.data for r in _kind(frames, "dark")], dtype=np.float64)
    model = truth.model
    other = model.at_gain(200.0)
    dark_e = truth.dark_electrons(
        300.0, float(np.mean([r.plan.true_temp_c for r in _kind(frames, "dark")]))
    )
    signal = np.median(darks, axis=0) - truth.bias_adu  # the median drops cosmic rays
    hot = dark_e > 50.0  # where the Poisson median equals the mean
    ratio = signal[hot].sum() / (dark_e[hot].sum() / model.egain_e_per_adu)
    assert ratio == pytest.approx(k, rel=0.03)
    var = darks.var(axis=0, ddof=1)
    expected = k * k * (dark_e + other.read_noise_e**2) / model.egain_e_per_adu**2
    expected += model.row_banding_adu**2 + 1 / 12
    chi2_median = 0.956  # median of chi2(15) / 15: per-pixel variances of 16 frames

    def ratio_of(sel):  # medians: pixels hit by a cosmic ray drop out
        return float(np.median(var[sel] / expected[sel])) / chi2_median

    assert ratio_of(hot) == pytest.approx(1.0, abs=0.2)  # shot-noise dominated: exact
    typical = dark_e < np.percentile(dark_e, 90)  # ~2 e-: the added noise is clipped at 0 e-
    assert 0.85 < ratio_of(typical) < 0.97
    header = _kind(frames, "dark")[0].header
    assert header["GAIN"] == 100 and header["EGAIN"] == pytest.approx(0.25)


def test_wrong_gain_recorded_changes_the_header_and_the_configuration():
    _, frames = _render("wrong_gain_recorded")
    dark, light = _kind(frames, "dark")[0], _kind(frames, "light")[0]
    dmeta = normalise(dark.header, dark.plan.relpath).meta
    lmeta = normalise(light.header, light.plan.relpath).meta
    assert dmeta.gain_setting == 200 and dmeta.egain_e_per_adu == pytest.approx(0.25 / 10**0.5)
    assert dmeta.config_signature != lmeta.config_signature
    with pytest.raises(ConfigError, match="fixed maps"):
        plan_night(
            fault_night("clean", **SMALL).replace(
                sessions=(fault_night("clean", **SMALL).sessions[0].replace(faults=(WrongGain(),)),)
            ),
            0,
        )


def test_bias_drift_is_an_exact_offset_of_the_darks_only():
    _, clean = _render("clean")
    _, drift = _render("bias_drift")
    for a, b in zip(clean, drift, strict=True):
        diff = b.data.astype(np.int64) - a.data.astype(np.int64)
        assert np.all(diff == (12 if a.plan.kind == "dark" else 0)), a.plan.relpath


def test_readout_mode_change_is_a_fixed_column_pattern_offset_and_more_noise():
    _, clean = _render("clean")
    _, other = _render("readout_mode")
    diffs = np.array(
        [
            b.data.astype(float) - a.data.astype(float)
            for a, b in zip(_kind(clean, "dark"), _kind(other, "dark"), strict=True)
        ]
    )
    columns = np.median(diffs, axis=1)  # (frames, nx): the pattern of each frame
    assert np.median(diffs) == pytest.approx(30.0, abs=1.0)
    assert np.std(columns.mean(axis=0)) == pytest.approx(3.0, rel=0.35)
    assert np.std(columns - columns.mean(axis=0), axis=0).mean() < 1.5  # the same in every frame
    read = 1.5 / 0.25
    assert np.std(diffs - columns[:, None, :]) == pytest.approx(
        read * np.sqrt(1.4**2 - 1), rel=0.15
    )
    assert all(
        np.array_equal(a.data, b.data)
        for a, b in zip(_kind(clean, "bias"), _kind(other, "bias"), strict=True)
    )


def test_cosmic_ray_shower_adds_hits():
    _, clean = _render("clean")
    _, hit = _render("cosmic_rays")

    def n_hits(frames):
        return sum(int(np.count_nonzero(r.data > 1500)) for r in _kind(frames, "dark"))

    assert n_hits(hit) > 5 * max(n_hits(clean), 1)
    assert (
        CosmicRayShower(rate_per_cm2_s=0.0).electrons(
            _kind(clean, "dark")[0].plan, (48, 64), np.random.default_rng(0)
        )
        is None
    )


def test_adu_faults_are_refused_by_simulate_night_before_writing(tmp_path):
    out = tmp_path / "night"
    with pytest.raises(ConfigError, match="ADU"):
        simulate_night(out, fault_night("bias_drift", **SMALL), 0)
    assert not out.exists() or not any(out.iterdir())


def test_simulate_faulted_night_writes_the_same_bytes_and_the_faults(tmp_path):
    spec = fault_night("warm_darks", **SMALL)  # electron/plan faults only
    a = simulate_night(tmp_path / "a", spec, 5)
    b = simulate_faulted_night(tmp_path / "b", spec, 5)
    assert [p.relative_to(a.out_dir) for p in a.paths] == [
        p.relative_to(b.out_dir) for p in b.paths
    ]
    for pa, pb in zip(a.paths, b.paths, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    for name in ("frames.csv", "manifest.json"):
        assert (a.truth_dir / name).read_bytes() == (b.truth_dir / name).read_bytes()
    drift = fault_night("bias_drift", **SMALL)
    m = simulate_faulted_night(tmp_path / "c", drift, 5)
    rendered = {r.plan.relpath: r for r in render_faulted(plan_faulted(drift, 5))}
    for path in m.paths:
        rel = path.relative_to(m.out_dir).as_posix()
        with fits.open(path) as hdul:
            assert np.array_equal(hdul[0].data, rendered[rel].data)
    frames_csv = (m.truth_dir / "frames.csv").read_text()
    assert frames_csv.count("bias_drift") == 10
    with pytest.raises(ConfigError):
        simulate_faulted_night(tmp_path / "c", drift, 5)  # not empty
    assert BiasDrift(delta_adu=-5.0).to_dict() == {
        "code": "bias_drift",
        "class": "BiasDrift",
        "delta_adu": -5.0,
        "kinds": ["dark"],
    }


# ----------------------------------------------------------------------------- the pipeline
SHAPE = (200, 300)
SEED = 2  # the library night and the faulted night share the sensor maps of this seed


@pytest.fixture(scope="module")
def library_workdir(tmp_path_factory):
    """A work directory holding the night before: a clean, verified dark library."""
    root = tmp_path_factory.mktemp("library")
    simulate_faulted_night(root / "night", library_night(shape=SHAPE), SEED)
    run_night(root / "night", workdir=root / "work")
    return root / "work"


def _run_faulted(kind: str, tmp_path, library_workdir, *, with_previous: bool):
    """The faulted night through ``run_night``; its dark masters, its lights, ranked causes."""
    work = tmp_path / "work"
    if with_previous:  # the registry holds the previous night's verified master
        shutil.copytree(library_workdir, work)
    spec = fault_night(kind, seed=SEED, shape=SHAPE)
    simulate_faulted_night(tmp_path / "night", spec, SEED)
    run_night(tmp_path / "night", workdir=work)
    wd = Workdir(work)
    masters = wd.masters
    darks = masters[(masters["kind"] == "dark") & (masters["night"] == spec.date)]
    lights = wd.frame_report
    texts = [t for t in [*darks["reasons"], *lights["reasons"]] if isinstance(t, str)]
    reasons = [r for text in texts for r in text.split(";") if r]
    causes = [cause for cause, weight in rank_causes(reasons) if weight > 0]
    return darks, lights, causes


def _check_verdict(kind, darks, lights, causes, *, with_previous):
    expected = benchmark_module("bench_faults").EXPECTED[kind]  # the fault -> cause table
    statuses = set(lights["status"])
    if expected is None:  # clean: no alarm, every light calibrated with the new master
        assert set(darks["status"]) == {"verified"} and statuses == {"calibrated"}
        assert causes == [], causes
        return
    flagged = set(darks["status"]) != {"verified"} or statuses != {"calibrated"}
    assert flagged or causes, "fault not detected"
    assert causes and causes[0] == expected, causes
    if with_previous and kind != "too_few_darks":
        # the lights are rescued by the previous verified master (or calibrated regardless)
        assert statuses == {"calibrated"}, lights[["status", "reasons"]]


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["clean", "warm_darks", "bias_drift", "wrong_gain_recorded"])
def test_pipeline_detects_the_fault_with_its_cause(kind, tmp_path, library_workdir):
    darks, lights, causes = _run_faulted(kind, tmp_path, library_workdir, with_previous=True)
    _check_verdict(kind, darks, lights, causes, with_previous=True)


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("with_previous", [True, False])
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_pipeline_detects_every_fault(kind, with_previous, tmp_path, library_workdir):
    found = _run_faulted(kind, tmp_path, library_workdir, with_previous=with_previous)
    _check_verdict(kind, *found, with_previous=with_previous)
