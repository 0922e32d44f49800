"""The camera zoo (darkflow.simulate.zoo) and colour imaging through the CFA."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from darkflow.exceptions import ConfigError
from darkflow.ingest.headers import normalise
from darkflow.simulate import PRESETS, SENSOR_PRESETS, plan_night, render_frame
from darkflow.simulate._zoo_truth import classify_light
from darkflow.simulate.faults import EgainKeyword, plan_faulted, render_faulted
from darkflow.simulate.sky import ColourFilter, SkySpec, make_target_field, render_sky, star_rgb
from darkflow.simulate.spec import _jsonable
from darkflow.simulate.zoo import (
    BAYER_PATTERNS,
    EXPECTED_CAUSE,
    FAMILIES,
    FAULTS,
    SCENARIOS,
    load_zoo_truth,
    sample_zoo,
    zoo_night,
    zoo_params,
    zoo_specs,
)
from darkflow.triage import Cause


def small(params, ny=48, nx=64):
    """The same zoo night on small frames (tests stay fast)."""
    return params.replace(camera=params.camera.replace(ny=ny, nx=nx))


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------- colour sensors
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_cfa_channels_follow_pattern_and_offsets(pattern):
    model = SENSOR_PRESETS["zwo-asi2600mc-pro"].replace(ny=10, nx=12, bayer_pattern=pattern)
    ch = model.cfa_channels()
    assert "".join("RGB"[c] for c in (ch[0, 0], ch[0, 1], ch[1, 0], ch[1, 1])) == pattern
    shifted = model.replace(bayer_offset=(1, 1)).cfa_channels()
    assert np.array_equal(shifted[:-1, :-1], ch[1:, 1:])  # the image starts one pixel in


@pytest.mark.parametrize("offset", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_stored_pattern_is_what_ingestion_reads(offset):
    params = small(zoo_params("colour_cmos", 3, fault="clean"))
    camera = params.camera.replace(bayer_pattern="GRBG", bayer_offset=offset)
    params = params.replace(camera=camera, program="nina")
    plan = plan_faulted(zoo_specs(params)[0], params.seed)
    light = next(f for f in plan.frames if f.kind == "light")
    header = next(render_faulted(plan, [light])).header
    assert header["BAYERPAT"] == "GRBG"
    assert (header["XBAYROFF"], header["YBAYROFF"]) == offset
    assert header["ROWORDER"] == "TOP-DOWN"
    assert normalise(header, light.relpath).meta.bayer_pattern == camera.stored_bayer_pattern


def test_sky_differs_per_channel_by_the_response_and_colour():
    sky = SkySpec(
        background_e_per_s=2.0, nebula_e_per_s=0.0, gradient=0.0, star_density_per_mpx=100.0
    )
    model = SENSOR_PRESETS["zwo-asi2600mc-pro"].replace(
        ny=96, nx=128, bayer_pattern="BGGR", cfa_response=(0.6, 1.0, 0.7)
    )
    field = make_target_field(model.shape, sky, np.random.default_rng(1))
    cfa = ColourFilter(model.cfa_channels(), model.cfa_response)
    image = render_sky(field, 100.0, np.random.default_rng(2), cfa=cfa)
    grey = render_sky(field, 100.0, np.random.default_rng(2))
    ch = model.cfa_channels()
    level = {c: np.median(image[ch == c]) / np.median(grey[ch == c]) for c in range(3)}
    rgb = sky.colour.background_rgb
    for c in range(3):  # background = grey sky x filter response x sky colour
        assert level[c] == pytest.approx(model.cfa_response[c] * rgb[c], rel=0.02)
    assert level[0] != pytest.approx(level[1], rel=0.1)
    assert level[2] != pytest.approx(level[1], rel=0.1)


def test_star_colours_span_blue_to_red():
    rgb = star_rgb(np.array([-0.2, 0.65, 1.8]))
    assert rgb[1].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert rgb[0, 2] > 1.5 > rgb[2, 2]  # a hot star is blue
    assert rgb[2, 0] > 1.5 > rgb[0, 0]  # a cool star is red


def test_darks_do_not_see_the_filter_array():
    base = PRESETS["tiny"]
    key = "zwo-asi2600mc-pro"
    colour = dict(base.cameras)
    colour[key] = colour[key].replace(cfa_response=(0.5, 1.0, 0.6))
    session = next(s for s in base.sessions if s.camera == key)
    grey_spec = base.replace(sessions=(session,))
    colour_spec = grey_spec.replace(cameras=colour)
    grey, col = plan_night(grey_spec, 5), plan_night(colour_spec, 5)
    for f_grey, f_col in zip(grey.frames, col.frames, strict=True):
        a, b = render_frame(grey, f_grey).data, render_frame(col, f_col).data
        if f_grey.kind == "light":
            assert not np.array_equal(a, b)
        else:
            assert np.array_equal(a, b)


def test_new_fields_stay_out_of_legacy_truth():
    """Nights that do not use the colour or spectrum fields write the same truth as before."""
    for model in SENSOR_PRESETS.values():
        assert "cfa_response" not in model.to_dict() and "bayer_offset" not in model.to_dict()
    assert set(_jsonable(SkySpec())) == {
        "background_e_per_s",
        "star_density_per_mpx",
        "star_flux_min_e_per_s",
        "star_flux_max_e_per_s",
        "star_flux_slope",
        "fwhm_px",
        "moffat_beta",
        "nebula_e_per_s",
        "nebula_blobs",
        "gradient",
        "dither_px",
    }
    model = SENSOR_PRESETS["zwo-asi294mc-pro"].replace(cfa_response=(0.6, 1.0, 0.7))
    assert model.to_dict()["cfa_response"] == (0.6, 1.0, 0.7)
    assert type(model).from_dict(json.loads(json.dumps(model.to_dict()))) == model


def test_invalid_colour_settings_are_refused():
    mono = SENSOR_PRESETS["zwo-asi2600mm-pro"]
    with pytest.raises(ConfigError, match="cfa_response needs a bayer_pattern"):
        mono.replace(cfa_response=(0.5, 1.0, 0.6))
    with pytest.raises(ConfigError, match="bayer_pattern"):
        mono.replace(bayer_pattern="RGGX")
    with pytest.raises(ConfigError, match="monochrome"):
        mono.cfa_channels()


def test_egain_keyword_removed_or_scaled():
    session = next(s for s in PRESETS["tiny"].sessions if s.program == "sharpcap")
    spec = PRESETS["tiny"].replace(sessions=(session,))
    plan = plan_night(spec, 1)
    frame = plan.frames[0]
    header = render_frame(plan, frame).header
    removed = EgainKeyword(None).header(header.copy(), frame)
    assert "EGAIN" not in removed and "EGAINSAV" not in removed
    scaled = EgainKeyword(2.0).header(header.copy(), frame)
    assert scaled["EGAINSAV"] == pytest.approx(2.0 * header["EGAINSAV"], rel=1e-5)
    assert scaled["EGAIN"] == pytest.approx(2.0 * header["EGAIN"], rel=1e-5)


# ----------------------------------------------------------------------------- parameters
def test_params_are_deterministic_and_seeded():
    assert zoo_params("ccd", 11) == zoo_params("ccd", 11)
    assert zoo_params("ccd", 11) != zoo_params("ccd", 12)
    a, b = sample_zoo(14, seed=3), sample_zoo(14, seed=3)
    assert a == b and a != sample_zoo(14, seed=4)
    assert [p.family for p in a] == [*FAMILIES, *FAMILIES]


def test_sample_covers_the_zoo():
    draws = sample_zoo(140, seed=0)
    cams = {p.camera.kind for p in draws}
    assert {str(k) for k in cams} == {"cmos", "ccd", "dslr"}
    assert {p.camera.bayer_pattern for p in draws} >= {None, *BAYER_PATTERNS}
    assert {p.egain for p in draws} == {"present", "absent", "wrong"}
    assert any(n.n_bias == 0 for p in draws for n in p.nights)
    assert any(n.n_bias > 0 for p in draws for n in p.nights)
    assert {p.scene for p in draws} == {"stars", "nebula", "spectra"}
    assert {p.grid for p in draws} == {"exact", "bracket", "mixed", "scaled"}
    shapes = [p.shape for p in draws]
    assert min(min(s) for s in shapes) == 128 and max(max(s) for s in shapes) <= 2048
    assert any(max(s) >= 1024 for s in shapes)
    assert np.median([s[0] * s[1] for s in shapes]) <= 512 * 512  # mostly small: a run is fast
    assert min(p.n_darks for p in draws) >= 3 and max(p.n_darks for p in draws) <= 40
    assert max(len(p.nights) for p in draws) >= 3
    assert 0.15 < np.mean([p.fault is not None for p in draws]) < 0.45
    drifts = [n.bias_offset_adu for p in draws for n in p.nights[1:]]
    assert drifts and 0.5 < np.std(drifts) < 6.0  # a few ADU between nights


def test_unknown_family_and_impossible_fault_are_refused():
    with pytest.raises(ConfigError, match="unknown zoo family"):
        zoo_params("pinhole", 0)
    with pytest.raises(ConfigError, match="unknown zoo fault"):
        zoo_params("ccd", 0, fault="gremlins")
    with pytest.raises(ConfigError, match="not possible"):
        zoo_params("ccd", 0, fault="wrong_gain")  # a CCD has no gain setting


def test_expected_causes_are_triage_causes():
    assert set(FAULTS) == set(EXPECTED_CAUSE)
    assert set(EXPECTED_CAUSE.values()) <= {c.value for c in Cause}


# ----------------------------------------------------------------------------- nights and truth
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_builds_with_its_truth(family, tmp_path):
    params = small(zoo_params(family, 1, fault="clean"))
    night = zoo_night(tmp_path / "z", params=params)
    truth = load_zoo_truth(tmp_path / "z")
    assert truth == json.loads(json.dumps(night.truth))
    assert truth["family"] == family and truth["clean"] and truth["fault"] is None
    written = {
        str(p.relative_to(tmp_path / "z"))
        for p in (tmp_path / "z").rglob("*.fit*")
        if "_truth" not in p.parts
    }
    lights = {light["path"] for light in truth["lights"]}
    assert lights and lights <= written
    assert len(written) == sum(n["n_files"] for n in truth["nights"]) == night.n_files
    n_lights = sum(len(n.light_exposures) * params.n_lights for n in params.nights)
    assert len(lights) == n_lights
    for light in truth["lights"]:
        expected = light["expected_status"]
        assert expected == (
            ["calibrated"]
            if light["provable"]
            else ["calibrated", "degraded"]
            if light["usable"]
            else ["quarantined"]
        )
        assert set(light["sources"]) <= {m["id"] for m in truth["masters"]}
    assert all(m["clean"] for m in truth["masters"])
    assert len(truth["nights"]) == len(params.nights)


def test_zoo_night_is_byte_identical_for_a_seed(tmp_path):
    params = small(zoo_params("colour_cmos", 5, fault="bias_drift"))
    zoo_night(tmp_path / "a", params=params)
    zoo_night(tmp_path / "b", params=params)
    assert tree_hashes(tmp_path / "a") == tree_hashes(tmp_path / "b")
    with pytest.raises(ConfigError, match="empty"):
        zoo_night(tmp_path / "a", params=params)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_lands_where_the_truth_says(fault):
    family = {
        "wrong_gain": "mono_cmos",
        "wrong_gain_recorded": "colour_cmos",
        "wrong_egain": "ccd",
    }.get(fault, "multi_night")
    seed = next(s for s in range(200) if _possible(family, s, fault))
    params = small(zoo_params(family, seed, fault=fault))
    from darkflow.simulate._zoo_truth import build_truth

    plans = [plan_faulted(s, params.seed) for s in zoo_specs(params)]
    clean = [plan_faulted(s, params.seed) for s in zoo_specs(params, with_faults=False)]
    truth = build_truth(params, plans, clean, expected_cause=EXPECTED_CAUSE)
    assert not truth["clean"] and truth["fault"]["expected_cause"] == EXPECTED_CAUSE[fault]
    target = truth["fault"]["target"]
    hit = [(k, f) for k, p in enumerate(plans) for f in p.frames if f.faults]
    if target["kind"] == "all":
        assert truth["fault"]["codes"] == ["egain_keyword"]
        assert all(light["affected_by_fault"] for light in truth["lights"])
    else:
        codes = {c for _, f in hit for c in f.faults} - {"egain_keyword"}
        assert codes and codes == set(truth["fault"]["codes"])
        injected = [(k, f) for k, f in hit if set(f.faults) & codes]
        assert {f.kind for _, f in injected} == {target["kind"]}
        assert {plans[k].spec.date for k, _ in injected} == {target["night"]}
        if target["kind"] == "dark":
            assert {f.exptime_s for _, f in injected} == {target["exptime_s"]}
            assert any(light["affected_by_fault"] for light in truth["lights"])
        unclean = [m for m in truth["masters"] if not m["clean"]]
        assert [m["id"] for m in unclean] == [target["id"]]


def _possible(family, seed, fault):
    try:
        zoo_params(family, seed, fault=fault)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_plan_as_described(name):
    params = zoo_params(name, 0)
    from darkflow.simulate._zoo_truth import build_truth

    plans = [plan_faulted(s, 0) for s in zoo_specs(params)]
    clean = [plan_faulted(s, 0) for s in zoo_specs(params, with_faults=False)]
    truth = build_truth(params, plans, clean, expected_cause=EXPECTED_CAUSE)
    models = truth["dark_models"]
    lights = truth["lights"]
    if name.startswith("osc-rggb"):
        assert models == {"exact": 13} and truth["bayer_pattern"] == "RGGB"
        assert truth["egain"]["header"] == ("absent" if "no-egain" in name else "present")
        assert params.shape == ((384, 384) if "384" in name else (256, 256))
    elif name.startswith("ccd-three-nights"):
        assert len(truth["nights"]) == 3 and params.shape == (1024, 1024)
        assert truth["egain"]["header"] == "absent"
        offsets = [n["bias_offset_adu"] for n in truth["nights"]]
        assert len(set(offsets)) == 3
        by_exp = {light["exptime_s"]: light["dark_model"] for light in lights}
        assert by_exp == {30.0: "exact", 60.0: "exact", 600.0: "extrapolated"}
        assert truth["clean"] == (name == "ccd-three-nights")
    elif name == "spectra-120":
        assert models == {"exact": 5} and not any(m["kind"] == "bias" for m in truth["masters"])
        assert [m["n_frames"] for m in truth["masters"]] == [11]
    else:
        assert models == {"interpolated_unproven": 3, "extrapolated": 3}
        assert {m["exptime_s"] for m in truth["masters"]} == {300.0, 900.0}


def test_spectra_are_traces_without_stars():
    params = small(zoo_params("spectra-120", 0), ny=60, nx=90)
    plan = plan_faulted(zoo_specs(params)[0], 0)
    light = next(f for f in plan.frames if f.kind == "light")
    sky = next(render_faulted(plan, [light])).sky_e
    rows = sky.sum(axis=1)
    assert (rows == 0).sum() >= 4  # outside the slit: no light at all
    peaks = rows > 5 * np.median(rows[rows > 0])
    assert 1 <= np.count_nonzero(np.diff(peaks.astype(int)) == 1) <= 4  # a few bright traces
    cols = np.median(sky[rows > 0], axis=0)  # the sky along the slit, traces aside
    assert cols.max() > 2 * np.median(cols)  # sky lines across the slit


# ----------------------------------------------------------------------------- classification
def _src(night, t, temp=-10.0):
    return {"id": f"n{night}/{t:g}", "night_index": night, "exptime_s": t, "temp_c": temp}


@pytest.mark.parametrize(
    ("sources", "bias", "night", "t", "expected"),
    [
        ([_src(0, 300)], set(), 0, 300, "exact"),
        ([_src(1, 300)], {0, 1}, 0, 300, "exact_other_night"),
        ([_src(1, 300)], {1}, 0, 300, "uncorrected"),
        ([_src(0, 60), _src(0, 300)], set(), 0, 120, "interpolated_unproven"),
        ([_src(0, 60), _src(0, 300)], {0}, 0, 120, "interpolated"),
        ([_src(0, 60), _src(0, 300), _src(0, 600)], set(), 0, 120, "interpolated"),
        ([_src(1, 60), _src(1, 300)], set(), 0, 120, "uncorrected"),
        ([_src(0, 60), _src(1, 300)], set(), 0, 120, "none"),
        ([_src(1, 60), _src(1, 300)], {0, 1}, 0, 120, "interpolated"),
        ([_src(0, 30), _src(0, 60)], set(), 0, 600, "extrapolated"),
        ([_src(0, 300)], {0}, 0, 120, "scaled"),
        ([_src(0, 300)], set(), 0, 120, "none"),
        ([_src(0, 300, temp=-4.0)], set(), 0, 300, "thermal_scaled"),
        ([], {0}, 0, 300, "none"),
    ],
)
def test_classify_light(sources, bias, night, t, expected):
    category, used = classify_light(night, float(t), -10.0, sources, bias)
    assert category == expected
    assert bool(used) == (expected != "none")


@pytest.mark.integration
def test_lights_learn_that_their_only_darks_were_taken_at_another_gain(tmp_path):
    """Darks recorded at another gain than the lights build no master (no light of their
    configuration): the lights that find no dark model still learn why (config_gain_differs)."""
    import pandas as pd

    from darkflow.config import Config
    from darkflow.pipeline import run_night

    params = small(zoo_params("mono_cmos", 0, fault="wrong_gain_recorded"))
    zoo_night(tmp_path / "data", params=params)
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    reasons = pd.read_csv(tmp_path / "work" / "frame_report.csv")["reasons"].fillna("")
    unmatched = [
        set(r.split(";"))
        for r in reasons
        if {"no_master_for_config", "no_candidate"} & set(r.split(";"))
    ]
    assert unmatched, "the night should leave lights without a dark model"
    assert all("config_gain_differs" in r for r in unmatched), unmatched
