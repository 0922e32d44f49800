"""The light-pair gain on simulated cameras (darkflow.simulate's physics): coarse ADC steps
under a faint colour sky, a sky near the ADC's full scale, and the pulls over a family of
zoo-like cameras (mono and colour, CCD and CMOS, faint and bright skies, several gains)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from darkflow.simulate.physics import expose, make_sensor_truth
from darkflow.simulate.sensors import SensorKind, SensorModel
from darkflow.subtract.gain import _clipped_var
from darkflow.subtract.lightpair import gain_from_light_pairs, lattice_step, pair_tiles

N_DARKS = 8


def _camera(**changes) -> SensorModel:
    base = {
        "name": "probe",
        "ny": 128,
        "nx": 128,
        "cosmic_rate_per_cm2_s": 1.0,
        "amp_glow_e_per_s": 0.0,
        "flicker_pixels": 0,
    }
    return SensorModel(**(base | changes))


def _night(
    model: SensorModel,
    sky_e: float,
    seed: int,
    *,
    exptime: float = 30.0,
    pairs: int = 2,
    level_offset: float = 0.0,
):
    """Dark-subtracted lights (pairs) of a flat sky with a 20 % gradient, the per-frame noise
    floor (read and dark shot noise, from two darks' difference) and the raw clip level on the
    calibrated scale (the ADC's full scale less the master dark's median). ``level_offset``:
    the master's level is off by this much (ADU: darks of another night, whose bias was
    lower)."""
    rng = np.random.default_rng(seed)
    truth = make_sensor_truth(model, rng)
    ny, nx = model.shape
    rate = sky_e * (1.0 + 0.2 * (np.arange(nx)[None, :] / nx - 0.5)) * np.ones((ny, 1))
    if model.cfa_response is not None:  # RGGB
        r, g, b = model.cfa_response
        phase = np.full((ny, nx), g)
        phase[0::2, 0::2], phase[1::2, 1::2] = r, b
        rate = rate * phase
    darks = [expose(truth, "dark", exptime, -10.0, rng).astype(np.float64) for _ in range(N_DARKS)]
    master = np.mean(darks, axis=0) + level_offset
    floor = _clipped_var((darks[0] - darks[1]).ravel())[0] / 2.0
    lights = [
        expose(truth, "light", exptime, -10.0, rng, rate).astype(np.float64) - master
        for _ in range(2 * pairs)
    ]
    clip = float(model.saturation_adu) - float(np.median(master))
    return lights, floor, floor / N_DARKS, clip


def _estimate(model, sky_e, seed, **kwargs):
    lights, floor, model_var, clip = _night(model, sky_e, seed, **kwargs)
    tiles = [
        pair_tiles(
            lights[i],
            lights[i + 1],
            read_variance=floor,
            model_variance=model_var,
            cfa=model.cfa_response is not None,
            clip=clip,
        )
        for i in range(0, len(lights), 2)
    ]
    return gain_from_light_pairs(tiles), tiles


def _faint_colour_camera(**extra):
    """A 14-bit RGGB camera (stored values in steps of 4 ADU) at 0.64 e-/ADU, 256x256."""
    return _camera(
        bayer_pattern="RGGB",
        cfa_response=(0.46, 1.0, 0.78),
        adc_bits=14,
        egain_e_per_adu=0.64,
        read_noise_e=1.14,
        ny=256,
        nx=256,
        **extra,
    )


def test_faint_colour_sky_with_a_dark_level_off_by_a_bias_drift():
    """A 14-bit colour camera (stored values in steps of 4 ADU) at 0.64 e-/ADU under a sky of
    ~6 ADU (green), calibrated with darks of another night whose bias was 1.4 ADU lower (a
    multi-night zoo tree: 0.95 +- 0.02 against a true 0.64). The level offset moves the sky's
    signal, not its noise: the ratio of sums was off by 10 sigma; the intercept of the
    tiles' excess against their signal shows the offset and the slope gives the gain."""
    model = _faint_colour_camera(bias_adu=248.0, dark_current_e_per_s=0.007)
    (est, why, _), _ = _estimate(model, 4.0, 3, exptime=1.0, level_offset=-1.4)
    assert est is not None, why
    # the ratio of sums read 0.813 +- 0.010 here (17 sigma); the slope 0.702 +- 0.019
    assert abs(est.value - 0.64) < 4.0 * est.sigma, est
    assert est.rel_sigma < 0.15, est


def test_faint_colour_sky_on_a_coarse_adc():
    """The same camera and sky with the right dark level: the tile means (not medians, which
    sit on the lattice of the stored values) give the truth."""
    model = _faint_colour_camera()
    (est, why, _), _ = _estimate(model, 4.0, 4, exptime=1.0)
    assert est is not None, why
    assert abs(est.value - 0.64) < 3.0 * est.sigma, est


def test_sky_near_full_scale_leaves_out_clipped_tiles():
    """A 12-bit camera at 0.0196 e-/ADU whose sky rises towards the ADC's full scale across
    the frame: tiles near the clip are left out (and counted), the rest give the truth."""
    model = _camera(adc_bits=12, egain_e_per_adu=0.0196, read_noise_e=3.4, bias_adu=500.0)
    sky_e = 0.92 * 65520 * 0.0196  # the gradient takes the right side to the clip
    (est, why, _), tiles = _estimate(model, sky_e, 5, exptime=1.0)
    assert sum(t.saturated for t in tiles) > 0
    assert est is not None, why
    assert abs(est.value - 0.0196) < 3.0 * est.sigma, est


def test_lattice_step_is_read_on_the_difference():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.3, (64, 64))  # the model's per-pixel level, common to both
    a = 16.0 * rng.integers(0, 5, (64, 64)) - base
    b = 16.0 * rng.integers(0, 5, (64, 64)) - base
    assert lattice_step(a, b) == 16
    assert lattice_step(a + rng.normal(0, 1, a.shape), b) == 1


def _zoo_like(i: int) -> tuple[SensorModel, float, float]:
    """The ``i``-th camera of the family: mono/colour, CMOS/CCD, 12/14/16 bits, gains from
    0.02 to 3 e-/ADU, skies from a few ADU to near the full scale."""
    rng = np.random.default_rng(1000 + i)
    colour = bool(i % 2)
    ccd = i % 4 == 3
    bits = 16 if ccd else int(rng.choice([12, 14, 16]))
    gain = float(np.exp(rng.uniform(math.log(0.02), math.log(3.0))))
    step = 2 ** (16 - bits)
    full_scale = (2**bits - 1) * step
    # sky level in ADU: faint (a few steps, shot noise still at least the read noise) to near
    # full scale
    read_e = float(rng.uniform(1.0, 9.0 if ccd else 3.5))
    faint = max(4.0 * step, 3.0 * read_e**2 / gain, 6.0)
    level = float(np.exp(rng.uniform(math.log(faint), math.log(0.95 * full_scale))))
    model = _camera(
        kind=SensorKind.CCD if ccd else SensorKind.CMOS,
        adc_bits=bits,
        egain_e_per_adu=gain,
        read_noise_e=read_e,
        bias_adu=float(rng.uniform(100, 1500)),
        bayer_pattern="RGGB" if colour else None,
        cfa_response=(0.5, 1.0, 0.8) if colour else None,
        full_well_e=1e9,  # the ADC clips first; non-linearity is not this test's subject
    )
    return model, level * gain, gain


def test_pair_gain_pulls_over_a_family_of_cameras():
    """(estimate - truth) / sigma over 40 cameras: centred (|mean| < 0.5), width near 1."""
    pulls, measured = [], 0
    for i in range(40):
        model, sky_e, gain = _zoo_like(i)
        (est, _, _), _ = _estimate(model, sky_e, i, exptime=1.0)
        if est is None:
            continue
        measured += 1
        pulls.append((est.value - gain) / est.sigma)
    pulls = np.array(pulls)
    assert measured >= 30
    assert abs(pulls.mean()) < 0.5, pulls.round(1)
    assert 0.6 < pulls.std() < 1.4, pulls.round(1)
    assert np.max(np.abs(pulls)) < 4.0, pulls.round(1)


@pytest.mark.parametrize("bits", [12, 14])
def test_lattice_adds_uncertainty_only_where_the_noise_is_narrower_than_a_step(bits):
    model = _camera(adc_bits=bits, egain_e_per_adu=0.5, read_noise_e=6.0)
    _, tiles = _estimate(model, 2000.0, 1, exptime=1.0)  # a bright sky: noise >> step
    assert all(t.lattice_rel < 1e-3 for t in tiles)
