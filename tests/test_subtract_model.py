"""dark_model_for: every scale mode against the exact expected dark of a simulated sensor."""

from datetime import timedelta

import numpy as np
import pytest
from helpers.match import T0, Camera, library, rms

from darkflow.config import Config
from darkflow.exceptions import CalibrationError
from darkflow.matching import (
    CalibrationIndex,
    MatchDecision,
    ModelTerm,
    build_index,
    match_light,
)
from darkflow.model import ScaleMode
from darkflow.subtract import (
    FLAG_GLOW,
    FLAG_NONLINEAR,
    FLAG_SATURATED,
    build_dark_model,
    dark_model_for,
    dark_shot_variance,
)

H = timedelta(hours=1)


@pytest.fixture(scope="module")
def cam():
    return Camera()  # ASI294MC: strong amp glow in one corner


def _decision(cam, mode, terms, **kw):
    return MatchDecision(
        light_path="/l.fits",
        config_signature=cam.signature,
        master_id=terms[0].master_id,
        scale_mode=mode,
        scale_factor=kw.pop("scale_factor", 1.0),
        confidence=1.0,
        terms=tuple(terms),
        **kw,
    )


def _index(cam, entries, masters, bias):
    return build_index(
        entries, load_master=masters.__getitem__, biases={cam.signature: bias}, config=Config()
    )


def test_interpolations_are_exact_per_pixel_and_need_no_bias(cam):
    """bias + glow * t + D * 2**(T/Td) * t is linear in t and in 2**(T/Td): two masters
    reproduce any light between them exactly, amp glow and hot pixels included."""
    entries, masters = library(
        cam,
        [
            ("a", 60.0, -10.0, T0),
            ("b", 180.0, -10.0, T0),
            ("c", 120.0, -14.0, T0),
            ("d", 120.0, -8.0, T0 + H),
        ],
    )
    index = CalibrationIndex.from_entries(entries)
    w = 0.5  # 120 s between 60 s and 180 s
    d = _decision(cam, ScaleMode.INTERPOLATE, [ModelTerm("a", 1 - w), ModelTerm("b", w)])
    model = dark_model_for(d, load_master=masters.__getitem__, bias=None, index=index)
    assert rms(model.data - cam.true_dark(120.0, -10.0)) < 1e-3
    np.testing.assert_allclose(model.variance, (1 - w) ** 2 * 0.25 + w**2 * 0.25, rtol=1e-5)
    assert model.dark_signal is None and model.weights == (0.5, 0.5)
    # thermal: weights from the dark-current law (the simulated sensor doubles every 6 °C)
    ra, rb = 2 ** (-14 / 6 + 11 / 6), 2 ** (-8 / 6 + 11 / 6)  # D_k / D_light at -11 °C
    w = (1 - ra) / (rb - ra)
    d = _decision(cam, ScaleMode.THERMAL_INTERPOLATE, [ModelTerm("c", 1 - w), ModelTerm("d", w)])
    model = dark_model_for(d, load_master=masters.__getitem__, bias=None, index=index)
    assert rms(model.data - cam.true_dark(120.0, -11.0)) < 1e-3


def test_exposure_scaling_keeps_the_bias_and_scales_glow_and_dark(cam):
    entries, masters = library(cam, [("m", 60.0, -10.0, T0)])
    bias = cam.bias()
    index = CalibrationIndex.from_entries(entries)
    d = _decision(cam, ScaleMode.EXPOSURE, [ModelTerm("m", 1.0, 3.0, 1.0)], scale_factor=3.0)
    model = dark_model_for(d, load_master=masters.__getitem__, bias=bias, index=index)
    assert rms(model.data - cam.true_dark(180.0, -10.0)) < 1e-3
    np.testing.assert_allclose(model.variance, (1 - 3) ** 2 * 0.25 + 9 * 0.25, rtol=1e-5)
    np.testing.assert_allclose(model.dark_signal, model.data - bias.data, atol=1e-3)
    with pytest.raises(CalibrationError, match="bias"):
        dark_model_for(d, load_master=masters.__getitem__, bias=None, index=index)


def test_temperature_scaling_leaves_the_glow_alone(cam):
    """Scaling the whole dark signal would scale the amp glow too; with the glow model (from
    masters at two temperatures) only the dark current is scaled."""
    entries, masters = library(cam, [("cold", 120.0, -15.0, T0), ("warm", 120.0, -9.0, T0)])
    bias = cam.bias()
    index = _index(cam, entries, masters, bias)
    assert cam.signature in index.glow and index.glow[cam.signature].method == "decomposed"
    f = 2 ** (3 / 6)  # -9 → -6 °C
    d = _decision(cam, ScaleMode.TEMPERATURE, [ModelTerm("warm", 1.0, 1.0, f)], scale_factor=f)
    model = dark_model_for(d, load_master=masters.__getitem__, bias=bias, index=index)
    truth = cam.true_dark(120.0, -6.0)
    naive = build_dark_model(
        masters["warm"], scale_mode=ScaleMode.TEMPERATURE, temp_factor=f, bias=bias
    )
    signal = rms(truth - cam.truth.bias_adu)
    assert rms(model.data - truth) < 0.01 * signal
    assert rms(naive.data - truth) > 5 * rms(model.data - truth)  # the glow matters
    assert np.any(model.flags & FLAG_GLOW)
    # exposure + temperature, and interpolation + temperature
    d = _decision(cam, ScaleMode.EXPOSURE_TEMPERATURE, [ModelTerm("warm", 1.0, 0.5, f)])
    model = dark_model_for(d, load_master=masters.__getitem__, bias=bias, index=index)
    assert rms(model.data - cam.true_dark(60.0, -6.0)) < 0.01 * signal
    fc = 2 ** (9 / 6)
    d = _decision(
        cam,
        ScaleMode.INTERPOLATE_TEMPERATURE,
        [ModelTerm("cold", 0.5, 1.0, fc), ModelTerm("warm", 0.5, 1.0, f)],
    )
    model = dark_model_for(d, load_master=masters.__getitem__, bias=bias, index=index)
    assert rms(model.data - cam.true_dark(120.0, -6.0)) < 0.02 * signal  # glow error x |1-f|


def test_variance_includes_factor_uncertainty_and_flags(cam):
    entries, masters = library(cam, [("m", 60.0, -10.0, T0)])
    sat = masters["m"].data > np.percentile(masters["m"].data, 99.9)
    masters["m"] = type(masters["m"])(**{**masters["m"].__dict__, "saturated": sat})
    bias = cam.bias()
    index = CalibrationIndex.from_entries(entries)
    base = _decision(cam, ScaleMode.NONE, [ModelTerm("m", 1.0)])
    plain = dark_model_for(base, load_master=masters.__getitem__, bias=bias, index=index)
    wide = dark_model_for(
        _decision(cam, ScaleMode.NONE, [ModelTerm("m", 1.0)], dark_rel_sigma=0.1),
        load_master=masters.__getitem__,
        bias=bias,
        index=index,
    )
    dark = masters["m"].data - bias.data
    np.testing.assert_allclose(
        wide.variance - plain.variance, (0.1 * dark) ** 2, rtol=1e-3, atol=1e-3
    )
    assert np.array_equal(plain.flags & FLAG_SATURATED > 0, sat)
    index.linearity[cam.signature] = type("L", (), {"nonlinear_above_adu": 50.0})()
    scaled = dark_model_for(
        _decision(cam, ScaleMode.EXPOSURE, [ModelTerm("m", 1.0, 2.0)], scale_factor=2.0),
        load_master=masters.__getitem__,
        bias=bias,
        index=index,
    )
    flagged = (scaled.flags & FLAG_NONLINEAR) > 0
    assert flagged.any() and np.all(scaled.dark_signal[flagged] > 50.0)
    shot = dark_shot_variance(scaled, 0.25)
    np.testing.assert_allclose(shot, np.maximum(scaled.dark_signal, 0) / 0.25, rtol=1e-6)
    assert dark_shot_variance(plain, None) == 0.0


def test_inputs_untouched_and_errors(cam):
    entries, masters = library(cam, [("m", 60.0, -10.0, T0)])
    bias = cam.bias()
    before = masters["m"].data.copy(), bias.data.copy()
    index = CalibrationIndex.from_entries(entries)
    d = _decision(cam, ScaleMode.EXPOSURE, [ModelTerm("m", 1.0, 2.0)])
    dark_model_for(d, load_master=masters.__getitem__, bias=bias, index=index)
    assert np.array_equal(masters["m"].data, before[0]) and np.array_equal(bias.data, before[1])
    unmatched = MatchDecision("/l", cam.signature, None, None, float("nan"), 0.0)
    with pytest.raises(CalibrationError, match="no master"):
        dark_model_for(unmatched, load_master=masters.__getitem__, bias=bias, index=index)
    small = Camera(shape=(32, 48)).bias()
    with pytest.raises(CalibrationError, match="shape"):
        dark_model_for(d, load_master=masters.__getitem__, bias=small, index=index)


def test_match_then_model_end_to_end(cam):
    """The decision's recipe reproduces the truth for lights between masters."""
    entries, masters = library(
        cam,
        [
            ("dusk", 120.0, -10.0, T0),
            ("dawn", 120.0, -5.0, T0 + 4 * H),
            ("s60", 60.0, -10.0, T0),
            ("s300", 300.0, -10.0, T0),
        ],
    )
    bias = cam.bias()
    index = _index(cam, entries, masters, bias)
    config = Config()
    signal = rms(cam.true_dark(120.0, -7.0) - cam.truth.bias_adu)
    for exptime, temp, when, mode in [
        (120.0, -7.0, T0 + 2 * H, ScaleMode.THERMAL_INTERPOLATE),
        (200.0, -10.0, T0, (ScaleMode.INTERPOLATE, ScaleMode.PIXEL_FIT)),  # 3 bins: a fit
        (120.0, -5.0, T0 + 4 * H, ScaleMode.NONE),
    ]:
        d = match_light(cam.light_meta(exptime, temp, when=when), index, config)
        modes = mode if isinstance(mode, tuple) else (mode,)
        assert d.scale_mode in modes, d.to_dict()["options"][:3]
        model = dark_model_for(d, load_master=masters.__getitem__, bias=bias, index=index)
        assert rms(model.data - cam.true_dark(exptime, temp)) < 0.02 * signal


def test_a_recipe_repeated_shares_the_model_planes_and_not_the_notes(cam):
    """The lights of one recipe get the planes of the previous light's model (computed once),
    equal to a fresh evaluation; the stated scale uncertainty is the light's own; another
    scale or another master object (a master read again) computes anew; notes are each
    light's own."""
    from darkflow.subtract import _model

    entries, masters = library(cam, [("m", 60.0, -10.0, T0), ("n", 120.0, -10.0, T0)])
    bias = cam.bias()
    index = CalibrationIndex.from_entries(entries)

    def model_of(terms, load=masters.__getitem__, **kw):
        d = _decision(cam, ScaleMode.EXPOSURE, terms, scale_factor=terms[0].exposure_factor, **kw)
        return dark_model_for(d, load_master=load, bias=bias, index=index)

    def same(a, b):
        for name in ("data", "variance", "flags", "dark_signal", "systematic_variance"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_array_equal(x, y)
        assert a.notes == b.notes

    term = [ModelTerm("m", 1.0, 3.0, 1.0)]
    _model.RECENT.clear()
    first = model_of(term)
    again = model_of(term)
    assert again.data is first.data and again.variance is first.variance
    assert again.notes == first.notes and again.notes is not first.notes
    assert not first.data.flags.writeable
    shot = dark_shot_variance(first, 1.5)
    assert dark_shot_variance(again, 1.5) is shot and not shot.flags.writeable
    np.testing.assert_array_equal(shot, np.maximum(first.dark_signal, 0) / np.float32(1.5))
    wide = model_of(term, dark_rel_sigma=0.05)  # the same planes, its own scale error
    assert wide.data is first.data
    _model.RECENT.clear()
    fresh = model_of(term)
    assert fresh.data is not first.data
    same(fresh, first)
    _model.RECENT.clear()
    same(model_of(term, dark_rel_sigma=0.05), wide)
    assert wide.systematic_variance is not None and wide.systematic_variance.any()
    scaled = model_of([ModelTerm("m", 1.0, 2.0, 1.0)])
    assert scaled.data is not fresh.data and not np.array_equal(scaled.data, fresh.data)
    # the same recipe with another master object (a master read again): computed anew
    copy = dict(masters)
    copy["m"] = type(masters["m"])(**masters["m"].__dict__)
    model_of(term)
    moved = model_of(term, load=copy.__getitem__)
    assert moved.data is not fresh.data
    same(moved, fresh)


def test_plane_median_is_the_median_once_per_array():
    from darkflow.stats._robust import median
    from darkflow.subtract._model import plane_median

    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 301)).astype(np.float32)
    b = a + np.float32(1.0)
    assert plane_median(a) == median(a) and type(plane_median(a)) is type(median(a))
    assert plane_median(b) == median(b) != plane_median(a)
