"""Read noise and the light's noise model: the per-frame variance of a master's inputs, the dark
current's shot noise, the variance of a calibrated pixel.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING

import numpy as np

from darkflow.model import MasterDark
from darkflow.stats._dist import chi2_ppf
from darkflow.stats._robust import median as _median
from darkflow.subtract._model import RECENT as _RECENT
from darkflow.subtract._model import DarkModel
from darkflow.subtract.gain import clip_variance_factor

if TYPE_CHECKING:
    pass


def dark_shot_variance(model: DarkModel, egain_e_per_adu: float | None) -> np.ndarray | float:
    """Poisson variance (ADU²) of the dark signal the light itself collected: ``max(S, 0) / g``.

    ``S`` is ``model.dark_signal`` (the model minus the bias); 0 without a gain or without a
    bias-separated model. For models from :func:`dark_model_for` this replaces the
    ``dark_shot_variance_adu2`` of :func:`noise_model_variance` (which assumes one master).
    """
    if model.dark_signal is None or not egain_e_per_adu or egain_e_per_adu <= 0:
        return 0.0
    key = ("dark_shot_variance", float(egain_e_per_adu))
    shot = _RECENT.get(key, (model.dark_signal,))
    if shot is None:
        shot = np.maximum(model.dark_signal, 0.0) / np.float32(egain_e_per_adu)
        shot = _RECENT.put(key, (model.dark_signal,), shot.astype(np.float32))
    return shot


# per master object (immutable, loaded once per process and kept): every light calibrated with
# a master asks for the same full-frame statistics of it
_READ_VARIANCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def read_variance(master: MasterDark) -> float:
    """Per-frame variance of a master's inputs (ADU²) at its typical pixel: the read noise.

    The trimmed mean (top 0.5% of pixels, hot and flickering, removed) of the unbiased per-pixel
    sample variances, corrected for the variance that sigma clipping took away. Computed once
    per master object.
    """
    cached = _READ_VARIANCE.get(master)
    if cached is None:
        cached = _READ_VARIANCE[master] = _read_variance(master)
    return cached


def _typical_count(n: int) -> int:
    """How many of ``n`` per-pixel variances :func:`read_variance` averages: all but the top
    0.5 % (hot and flickering pixels)."""
    return max(1, int(n * 0.995))


# per master object: (pixels, the largest per-pixel variance) of read_variance's selection,
# which _signal_beyond_read_level repeats for the same master (the same pixels when their
# count agrees: its pixels are read_variance's with a finite level)
_TYPICAL_CUT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _read_variance(master: MasterDark) -> float:
    sigma = per_frame_sigma(master)
    sigma = sigma[np.isfinite(sigma) & (master.n_used >= 2)]
    if sigma.size == 0:
        return 0.0
    count = sigma.size
    var = _sorted_squares(sigma)[: _typical_count(count)]
    _TYPICAL_CUT[master] = (count, var[-1])
    params = master.provenance.get("params", {}) if master.provenance else {}
    k = min(params.get("sigma_low", math.inf), params.get("sigma_high", math.inf))
    factor = clip_variance_factor(k) if math.isfinite(k) else 1.0
    return float(np.mean(var)) / factor


def _sorted_squares(sigma: np.ndarray) -> np.ndarray:
    """``np.sort(np.square(sigma, dtype=np.float64))`` of finite float32 values, sorting the
    float32 magnitudes (half the bytes, ~1.6x faster): a float32's square is exact in float64
    and grows with its magnitude, so the order and the values are the same."""
    return np.square(np.sort(np.abs(sigma.astype(np.float32, copy=False))), dtype=np.float64)


_MEDIAN_FRAME_VARIANCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def median_frame_variance(master: MasterDark) -> tuple[float, int, float]:
    """Per-frame variance of a master's inputs at its typical pixel, robust to warm and
    flickering pixels: the median of the per-pixel sample variances over the median of
    ``chi2(n-1) / (n-1)`` (times the share of variance sigma clipping keeps).

    Returns ``(variance, pixels, frames)``; ``(nan, 0, 0)`` with fewer than 100 pixels of two
    frames or more. Computed once per master object.
    """
    cached = _MEDIAN_FRAME_VARIANCE.get(master)
    if cached is None:
        cached = _MEDIAN_FRAME_VARIANCE[master] = _median_frame_variance(master)
    return cached


def _median_frame_variance(master: MasterDark) -> tuple[float, int, float]:
    n = np.asarray(master.n_used)
    var = np.square(per_frame_sigma(master), dtype=np.float64)
    ok = np.isfinite(var) & (n >= 2)
    count = int(np.count_nonzero(ok))
    if count < 100:
        return math.nan, 0, 0.0
    k = float(np.median(n[ok]))
    factor = float(chi2_ppf(0.5, k - 1.0)) / (k - 1.0)
    params = (master.provenance or {}).get("params", {})
    clip = min(params.get("sigma_low", math.inf), params.get("sigma_high", math.inf))
    if math.isfinite(clip):
        factor *= clip_variance_factor(clip)
    return float(_median(var[ok])) / factor, count, k


_PER_FRAME_SIGMA: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def per_frame_sigma(master: MasterDark) -> np.ndarray:
    """Per-pixel scatter of one input frame: standard error times sqrt(frames used).

    Computed once per master object (every light of the master asks, in its noise budget);
    the plane is read-only."""
    cached = _PER_FRAME_SIGMA.get(master)
    if cached is None:
        n = np.maximum(master.n_used, 1).astype(np.float32)
        cached = master.uncertainty.astype(np.float32) * np.sqrt(n)
        cached.setflags(write=False)
        _PER_FRAME_SIGMA[master] = cached
    return cached


def noise_model_variance(
    master: MasterDark,
    *,
    bias: MasterDark | None,
    egain_e_per_adu: float | None,
    scale_factor: float = 1.0,
) -> tuple[float, np.ndarray | float]:
    """Read-noise variance (ADU², scalar) and dark-current shot variance (ADU², per pixel).

    The read variance is the typical per-frame variance of the bias frames
    (:func:`read_variance`). The dark shot variance is the dark signal (master minus bias) over
    the gain: the median level for typical pixels, a pixel's own level where it deviates from the
    median by more than 3 sigma (hot pixels) — a noisy per-pixel value would bias the variance up.
    Without a bias, the dark master's typical variance stands in for the read noise (it then
    includes the typical dark shot noise) and only hot pixels' excess adds to it. Scaled models
    scale the dark shot variance by ``scale_factor``.
    """

    read_var = read_variance(bias) if bias is not None else read_variance(master)
    if not egain_e_per_adu or egain_e_per_adu <= 0:
        return read_var, 0.0
    key = ("noise_model_variance", float(egain_e_per_adu), float(scale_factor))
    shot = _RECENT.get(key, (master, bias))
    if shot is not None:
        return read_var, shot
    shot = _dark_shot_signal(master, bias) * np.float32(scale_factor / egain_e_per_adu)
    if bias is None and master.meta.includes_bias:
        # signed (below the mean level a pixel has less dark shot noise than read_var holds);
        # never below the quietest pixels' measured temporal variance
        floor = _quiet_variance(master) - read_var
        shot = np.maximum(shot, np.float32(min(floor, 0.0)))
    return read_var, _RECENT.put(key, (master, bias), shot.astype(np.float32))


_QUIET_VARIANCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _quiet_variance(master: MasterDark) -> float:
    """The 1st percentile of a master's per-pixel temporal variances (a floor: the pixels'
    sample variances scatter, so it lies below the quietest pixels' true variance). Computed
    once per master object (every light of the master asks)."""
    cached = _QUIET_VARIANCE.get(master)
    if cached is None:
        var = np.square(per_frame_sigma(master), dtype=np.float64)
        var = var[np.isfinite(var) & (master.n_used >= 2)]
        cached = _QUIET_VARIANCE[master] = float(np.percentile(var, 1.0)) if var.size else 0.0
    return cached


# master -> (its bias (weak) or None, the dark signal of noise_model_variance): the same for
# every light of the master
_DARK_SHOT_SIGNAL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _signal_beyond_read_level(master: MasterDark) -> np.ndarray:
    """A bias-including master without its bias: each pixel's level less the mean level of
    the pixels :func:`read_variance` averaged (ADU, either sign).

    :func:`read_variance` is then the mean temporal variance of those pixels, their dark
    current's shot noise included: ``R + mean(D) / g``. A pixel's own is ``R + D_i / g``, i.e.
    ``read_variance + (D_i - mean(D)) / g``, below it for pixels darker than the mean. (The
    former rule added only the positive excess of pixels 3 standard errors above the median:
    on a sensor whose dark current varies from pixel to pixel, a warm DSLR, that counted the
    dark shot noise of half the pixels twice and none of it less for the other half.) The
    master's noise enters the estimate linearly, so it does not bias the variance.
    """
    var = np.square(per_frame_sigma(master), dtype=np.float64)
    data = np.asarray(master.data, dtype=np.float64)
    ok = np.isfinite(var) & np.isfinite(data) & (master.n_used >= 2)
    if not ok.any():
        return np.zeros(master.data.shape, np.float32)
    kept = var[ok]
    count, cut = _TYPICAL_CUT.get(master, (-1, None))
    if count != kept.size:  # read_variance's selection (its largest value)
        m = _typical_count(kept.size)
        cut = np.partition(kept, m - 1)[m - 1]
    level = float(np.mean(data[ok][kept <= cut]))
    out = (data - level).astype(np.float32)
    return np.where(np.isfinite(out), out, np.float32(0.0)).astype(np.float32)


def _dark_shot_signal(master: MasterDark, bias: MasterDark | None) -> np.ndarray:
    """The dark signal (ADU) whose shot noise :func:`noise_model_variance` adds: >= 0, but for
    a bias-including master without its bias (:func:`_signal_beyond_read_level`)."""
    cached = _DARK_SHOT_SIGNAL.get(master)
    if cached is not None and (cached[0]() if cached[0] is not None else None) is bias:
        return cached[1]
    with_bias = bias is not None and master.meta.includes_bias
    if with_bias:
        signal = master.data - bias.data
        sigma = np.sqrt(np.square(master.uncertainty) + np.square(bias.uncertainty))
    else:
        signal = master.data  # bias-free master: dark signal; bias-including: level unknown
        sigma = master.uncertainty
    if with_bias or not master.meta.includes_bias:
        finite = signal[np.isfinite(signal)]
        level = float(_median(finite)) if finite.size else 0.0  # the typical pixel
        deviation = signal - np.float32(level)
        # typical pixels: the mean dark level (their own noisy value would bias the variance
        # up); a pixel far from it (> 3 sigma, hot pixels) keeps its own level
        significant = np.abs(deviation) > 3.0 * sigma
        estimate = np.float32(level) + np.where(significant, deviation, 0.0)
        signal = np.maximum(estimate, 0.0)
    else:
        signal = _signal_beyond_read_level(master)
    signal.flags.writeable = False  # shared by the lights of the master
    _DARK_SHOT_SIGNAL[master] = (None if bias is None else weakref.ref(bias), signal)
    return signal
