"""The deep-negative gate (over-subtraction) against real sensors' flickering pixels."""

import numpy as np

from darkflow.verify._lightgates import deep_negative_gate


def _frame(seed: int, n_flicker: int, amplitude: float):
    """A dark-subtracted frame with true signal zero: white noise of 1 ADU plus pixels that
    scatter ``amplitude`` ADU more from read to read (flickering pixels of real CCDs)."""
    rng = np.random.default_rng(seed)
    shape = (400, 400)
    c = rng.normal(0.0, 1.0, shape)
    flicker = np.zeros(shape, dtype=bool)
    idx = rng.choice(c.size, n_flicker, replace=False)
    flicker.flat[idx] = True
    c[flicker] += rng.normal(0.0, amplitude, n_flicker)
    u = np.ones(shape)
    # what the darks show of each pixel's scatter beyond its predicted noise
    extra = np.where(flicker, amplitude**2, 0.0)
    local = np.full(shape, -0.1)  # every neighbourhood slightly negative: the worst case
    background = np.zeros(shape)
    valid = np.ones(shape, dtype=bool)
    return c, u, local, background, valid, extra


def test_flickering_pixels_known_from_the_darks_are_no_over_subtraction():
    c, u, local, bg, valid, extra = _frame(1, n_flicker=200, amplitude=6.0)
    blind, _ = deep_negative_gate(c, u, local, bg, valid, 1.0, false_alarm=1e-4)
    assert blind.failed  # a fifth of the flickering pixels below -5 sigma looks like holes...
    told, _ = deep_negative_gate(c, u, local, bg, valid, 1.0, false_alarm=1e-4, extra_var=extra)
    assert not told.failed  # ...unless their scatter in the darks is taken into account
    hot = extra > 0  # or when they are left to the hole gate
    apart, _ = deep_negative_gate(c, u, local, bg, valid, 1.0, false_alarm=1e-4, model_hot=hot)
    assert not apart.failed


def test_a_real_over_subtraction_is_still_found_with_the_extra_scatter():
    c, u, local, bg, valid, extra = _frame(2, n_flicker=200, amplitude=16.0)
    shifted = c - 3.0  # 3 sigma over-subtracted everywhere: many pixels below -5 sigma
    metric, frac = deep_negative_gate(
        shifted, u, local, bg, valid, 1.0, false_alarm=1e-4, extra_var=extra
    )
    assert metric.failed and frac > 0.01


def test_read_noise_spread_of_a_coarsely_quantised_master(monkeypatch):
    """A master whose pixels read the same value in every frame (median per-pixel variance 0)
    states only the sampling of the read variance (it crashed every light of such a night)."""
    import math

    import darkflow.subtract as subtract
    from darkflow.verify import _lightgates

    monkeypatch.setattr(subtract, "median_frame_variance", lambda master: (0.0, 1000, 5.0))
    rel = _lightgates._read_rel_sigma(object(), read_var=2.0)
    assert rel == math.sqrt(2.0 / (4.0 * 1000))
