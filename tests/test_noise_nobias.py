"""The light's noise model without a master bias, on a sensor whose dark current varies from
pixel to pixel (a warm DSLR): each pixel's predicted variance follows its own dark signal."""

from __future__ import annotations

import itertools

import numpy as np

from darkflow.master import combine_arrays
from darkflow.subtract import noise_model_variance

GAIN = 0.65  # e-/ADU
READ_E = 2.0
BIAS = 512.0


def _warm_darks(n: int = 24, shape=(96, 128), seed: int = 3):
    """Darks of a log-normal dark current (sigma 0.35 in log, ~120 ADU typical) on a bias."""
    rng = np.random.default_rng(seed)
    dark_e = 75.0 * np.exp(rng.normal(0.0, 0.35, shape))
    frames = []
    for _ in range(n):
        e = rng.poisson(dark_e) + rng.normal(0.0, READ_E, shape)
        frames.append(np.rint(BIAS + e / GAIN).astype(np.uint16))
    true_var = (READ_E / GAIN) ** 2 + dark_e / GAIN / GAIN  # ADU²: read + dark shot
    return np.stack(frames), true_var


def test_pixel_variance_follows_its_dark_signal_without_a_bias():
    frames, true_var = _warm_darks()
    master = combine_arrays(frames, egain=GAIN, allow_few=True)
    assert master.meta.includes_bias
    read_var, shot = noise_model_variance(master, bias=None, egain_e_per_adu=GAIN)
    predicted = read_var + np.broadcast_to(shot, true_var.shape)
    ratio = predicted / true_var
    # by decile of the true variance: the former rule gave every pixel at least the mean
    # temporal variance (x1.8 in the darkest decile) and added the excess of the pixels above
    # the median on top of a mean that already held part of it (x1.03-1.05 above the median)
    edges = np.quantile(true_var, np.linspace(0.0, 1.0, 11))
    for lo, hi in itertools.pairwise(edges):
        sel = (true_var >= lo) & (true_var <= hi)
        assert abs(float(np.median(ratio[sel])) - 1.0) < 0.02, (lo, hi, np.median(ratio[sel]))
    assert abs(float(np.median(ratio)) - 1.0) < 0.05
    assert float(predicted.min()) > 0.0


def test_pixel_variance_never_below_the_quietest_pixels():
    frames, _ = _warm_darks(seed=5)
    master = combine_arrays(frames, egain=GAIN, allow_few=True)
    read_var, shot = noise_model_variance(master, bias=None, egain_e_per_adu=GAIN)
    per_pixel = np.square(master.uncertainty * np.sqrt(master.n_used), dtype=np.float64)
    floor = np.percentile(per_pixel, 1.0)
    assert float(np.min(read_var + shot)) >= floor - 1e-3


def test_the_level_beyond_the_read_level_does_not_depend_on_read_variance_first():
    """read_variance's selection of pixels is reused for the same master: the same signal as
    computed alone, also when some levels are not finite (then fewer pixels: selected anew)."""
    import dataclasses

    from darkflow.subtract import _readnoise

    frames, _ = _warm_darks(seed=7)
    master = combine_arrays(frames, egain=GAIN, allow_few=True)
    var = np.square(_readnoise.per_frame_sigma(master), dtype=np.float64)
    data = master.data.copy()
    data[var >= np.quantile(var, 0.98)] = np.nan  # the noisiest pixels' levels unknown
    holed = dataclasses.replace(master, data=data)
    for m in (master, holed):
        alone = _readnoise._signal_beyond_read_level(m)
        assert m not in _readnoise._TYPICAL_CUT
        _readnoise.read_variance(m)
        assert m in _readnoise._TYPICAL_CUT
        assert np.array_equal(_readnoise._signal_beyond_read_level(m), alone)


def test_read_variance_sorts_magnitudes_to_the_same_values():
    """The read variance sorts the float32 per-frame sigmas, not their float64 squares: the same
    sorted squares (zeros, ties, signs) and the same variance as the float64 sort."""
    import math

    from darkflow.subtract import _readnoise
    from darkflow.subtract.gain import clip_variance_factor

    rng = np.random.default_rng(11)
    sigma = rng.gamma(4.0, 1.5, 5000).astype(np.float32)
    sigma[:50] = 0.0
    sigma[50:60] = -0.0
    sigma[60:200] = sigma[200:340]  # ties
    sigma[340:400] *= -1.0
    assert np.array_equal(
        _readnoise._sorted_squares(sigma), np.sort(np.square(sigma, dtype=np.float64))
    )
    frames, _ = _warm_darks(seed=9)
    master = combine_arrays(frames, egain=GAIN, allow_few=True)
    var = np.square(_readnoise.per_frame_sigma(master), dtype=np.float64)
    var = np.sort(var[np.isfinite(var) & (master.n_used >= 2)])
    var = var[: _readnoise._typical_count(var.size)]
    params = master.provenance["params"]
    factor = clip_variance_factor(min(params["sigma_low"], params["sigma_high"]))
    expected = float(np.mean(var)) / factor
    assert math.isfinite(expected)
    assert _readnoise.read_variance(master) == expected
    assert _readnoise._TYPICAL_CUT[master][1] == var[-1]
