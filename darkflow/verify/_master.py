"""Acceptance gates for master darks: hold-out validation, noise model, fixed-pattern stability.

See :func:`assess_master` and ``docs/verification.md`` for the metrics and their tolerances.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darkflow.config import VerifyConfig
from darkflow.exceptions import ConfigError, IncompatibleFramesError
from darkflow.model import FrameType, MasterDark, MasterStatus
from darkflow.verify._fpn import band_energies, hot_scale_fit, row_window
from darkflow.verify._metrics import (
    MASTER_VALUE_COLUMNS,
    Metric,
    VerifyReason,
    gated,
    overall_confidence,
    unavailable,
)
from darkflow.verify._residuals import neighbour_median, robust_std

__all__ = ["MasterAssessment", "assess_master", "holdout_split"]

HoldoutSource = Sequence[np.ndarray] | Callable[[], Iterable[np.ndarray]]

# confidence multiplier when no hold-out frames validate the master
NO_HOLDOUT_PENALTY = 0.9


def holdout_split(
    paths: Sequence[str],
    fraction: float,
    seed: int = 0,
    *,
    min_train: int = 3,
    keys: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split frames into a training set (to combine) and a hold-out set (to validate).

    Deterministic and independent of the order of ``paths``: each frame is ranked by a hash of
    ``(seed, key)`` and the lowest ``round(fraction * n)`` (at least 1 when ``fraction > 0``)
    are held out, as long as ``min_train`` frames remain for the combine; otherwise nothing is
    held out. Both tuples keep the input order.

    ``keys`` (one per path) should be the files' content hashes, as the pipeline passes them:
    then the split, and every verdict built on it, does not depend on where the files are
    (a night copied to another disk is judged the same). Default: the paths themselves.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"hold-out fraction must be in [0, 1), got {fraction!r}")
    paths = [str(p) for p in paths]
    if len(set(paths)) != len(paths):
        raise ConfigError("hold-out split: duplicate paths")
    keys = paths if keys is None else [str(k) for k in keys]
    if len(keys) != len(paths):
        raise ConfigError(f"hold-out split: {len(keys)} keys for {len(paths)} paths")
    n = len(paths)
    n_hold = max(1, round(fraction * n)) if fraction > 0 and n > 0 else 0
    n_hold = min(n_hold, n - min_train)
    if n_hold <= 0:
        return tuple(paths), ()
    rank = sorted(
        range(n), key=lambda i: (hashlib.sha256(f"{seed}\0{keys[i]}".encode()).hexdigest(), i)
    )
    held = {paths[i] for i in rank[:n_hold]}
    return tuple(p for p in paths if p not in held), tuple(p for p in paths if p in held)


@dataclass(frozen=True)
class MasterAssessment:
    """Verdict on one master: metrics, confidences, status and reasons.

    ``values`` holds every measured number (also those without a gate), flat, for
    ``masters.csv``; ``metrics`` the gated metrics with their confidence.
    """

    status: MasterStatus
    confidence: float
    metrics: tuple[Metric, ...]
    reasons: tuple[VerifyReason, ...]
    values: dict[str, float | None] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.status == MasterStatus.VERIFIED

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "confidence": self.confidence,
            "reasons": [str(r) for r in self.reasons],
            "metrics": [m.to_dict() for m in self.metrics],
            "values": dict(self.values),
        }

    def __repr__(self) -> str:
        why = ",".join(self.reasons) or "-"
        return f"<MasterAssessment {self.status} conf={self.confidence:.2f} [{why}]>"


def _clip_variance_factor(k: float) -> float:
    """Fraction of a Gaussian's variance kept by symmetric clipping at +-k sigma."""
    phi = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    return 1.0 - 2.0 * k * phi / math.erf(k / math.sqrt(2))


def _clip_factor(master: MasterDark) -> float:
    params = (master.provenance or {}).get("params") or {}
    try:
        k = min(float(params.get("sigma_low", 3.0)), float(params.get("sigma_high", 3.0)))
    except (TypeError, ValueError):
        k = 3.0
    return _clip_variance_factor(k) if k > 0 and params.get("max_iters", 5) else 1.0


def _frame_variance(master: MasterDark, rows: slice) -> np.ndarray:
    """Per-frame variance of each pixel (the clipped sample variance), NaN where undefined."""
    n = master.n_used[rows].astype(np.float64)
    var = np.square(master.uncertainty[rows].astype(np.float64)) * n
    return np.where(n >= 2, var, np.nan) / _clip_factor(master)


def _trimmed_mean(values: np.ndarray, top: float = 0.005) -> float:
    values = np.sort(values[np.isfinite(values)])
    if values.size == 0:
        return math.nan
    return float(np.mean(values[: max(1, int(values.size * (1.0 - top)))]))


def _typical(master: MasterDark, rows: slice) -> np.ndarray:
    """Pixels between the 20th and 80th level percentile, with nearly all frames used."""
    data = master.data[rows]
    n = master.n_used[rows]
    ok = np.isfinite(data) & (n >= max(2, 0.8 * master.meta.n_frames))
    if master.saturated is not None:
        ok &= ~master.saturated[rows].astype(bool)
    if not ok.any():
        return ok
    lo, hi = np.percentile(data[ok], [20, 80])
    return ok & (data >= lo) & (data <= hi)


def _variance_curve(master: MasterDark, rows: slice, var: np.ndarray):
    """Per-frame variance as a function of the master level (binned, interpolated)."""
    data = master.data[rows].astype(np.float64)
    ok = np.isfinite(data) & np.isfinite(var)
    d, v = data[ok], var[ok]
    if d.size < 50:
        return None
    edges = np.unique(np.percentile(d, np.linspace(0, 100, 21)))
    xs, ys = [], []
    for a, b in itertools.pairwise(edges):
        sel = (d >= a) & (d <= b)
        if np.count_nonzero(sel) >= 10:
            xs.append(float(np.median(d[sel])))
            ys.append(_trimmed_mean(v[sel], 0.02))
    if not xs:
        return None
    xs_a, ys_a = np.array(xs), np.array(ys)

    def curve(level: np.ndarray) -> np.ndarray:
        return np.interp(level, xs_a, ys_a)

    return curve


def _holdout_frames(holdout: HoldoutSource | None) -> Iterable[np.ndarray]:
    if holdout is None:
        return ()
    return holdout() if callable(holdout) else holdout


def _holdout_metrics(
    master: MasterDark,
    holdout: HoldoutSource | None,
    rows: slice,
    holdout_rows: slice | None,
    var: np.ndarray,
    sigma_frame: float,
    config: VerifyConfig,
) -> tuple[list[Metric], dict[str, float | None]]:
    curve = _variance_curve(master, rows, var)
    widths, shifts, outliers = [], [], []
    data = master.data[rows].astype(np.float32)
    unc2 = np.square(master.uncertainty[rows].astype(np.float32))
    sat = master.saturated[rows].astype(bool) if master.saturated is not None else None
    for frame in _holdout_frames(holdout):
        frame = np.asarray(frame)
        if frame.ndim != 2 or frame.shape[1] != master.shape[1]:
            raise IncompatibleFramesError(
                f"held-out frame of shape {frame.shape} for a master of shape {master.shape}"
            )
        if holdout_rows is not None:
            part = frame  # already the rows [holdout_rows] of a full frame
            sub = slice(holdout_rows.start - rows.start, holdout_rows.stop - rows.start)
            if sub.start < 0 or sub.stop > data.shape[0] or part.shape[0] != sub.stop - sub.start:
                raise ConfigError("holdout_rows must lie inside the analysed band of rows")
        elif frame.shape == master.shape:
            part, sub = frame[rows], slice(0, data.shape[0])
        else:
            raise IncompatibleFramesError(
                f"held-out frame of shape {frame.shape} for a master of shape {master.shape} "
                "(pass holdout_rows for a band of rows)"
            )
        if curve is None:
            break
        m = data[sub]
        resid = part.astype(np.float32) - m
        pred = np.sqrt(curve(m) + unc2[sub])
        with np.errstate(invalid="ignore", divide="ignore"):
            z = resid / pred
        ok = np.isfinite(z)
        if sat is not None:
            ok &= ~sat[sub]
        zf = z[ok]
        if zf.size < 100:
            continue
        widths.append(robust_std(zf))
        shifts.append(float(np.median(resid[ok])) / sigma_frame)
        outliers.append(float(np.count_nonzero(zf > 6.0)) / zf.size)
    values: dict[str, float | None] = {"holdout_n": float(len(widths))}
    if not widths:
        return [unavailable("holdout_width_ratio", VerifyReason.HOLDOUT_UNAVAILABLE)], values
    width = float(np.sqrt(np.mean(np.square(widths))))
    shift = float(max(shifts, key=abs))
    outlier = float(np.mean(outliers))
    values.update(
        holdout_width_ratio=width, holdout_shift_sigma=shift, holdout_outlier_frac=outlier
    )
    lim_w = config.max_residual_width_ratio
    return [
        gated("holdout_width_ratio", width, max(width - 1.0, 0.0), lim_w - 1.0,
              VerifyReason.HOLDOUT_WIDTH, f"<= {lim_w:g}"),
        gated("holdout_shift_sigma", shift, abs(shift), config.max_holdout_shift_sigma,
              VerifyReason.HOLDOUT_SHIFT, f"|x| <= {config.max_holdout_shift_sigma:g}"),
        gated("holdout_outlier_frac", outlier, outlier, config.max_holdout_outlier_frac,
              VerifyReason.HOLDOUT_OUTLIERS, f"<= {config.max_holdout_outlier_frac:g}"),
    ], values  # fmt: skip


def _dark_signal(master: MasterDark, bias: MasterDark | None) -> np.ndarray | None:
    """Dark signal (bias removed) of a master, or None when no bias is known."""
    if not master.meta.includes_bias:
        return master.data.astype(np.float32)
    if bias is None:
        return None
    return master.data.astype(np.float32) - bias.data.astype(np.float32)


def _expected_scale(master: MasterDark, previous: MasterDark, doubling: float) -> float:
    m, p = master.meta, previous.meta
    t_ratio = 1.0
    if m.exptime_s and p.exptime_s and math.isfinite(m.exptime_s) and math.isfinite(p.exptime_s):
        t_new = m.exptime_s - (m.bias_exptime_s or 0.0)
        t_old = p.exptime_s - (p.bias_exptime_s or 0.0)
        t_ratio = t_new / t_old if t_old > 0 else 1.0
    if m.temp_c is not None and p.temp_c is not None:
        return t_ratio * 2.0 ** ((m.temp_c - p.temp_c) / doubling)
    return t_ratio


def _previous_metrics(
    master: MasterDark,
    previous: MasterDark,
    bias: MasterDark | None,
    rows: slice,
    sigma_frame: float,
    config: VerifyConfig,
) -> tuple[list[Metric], dict[str, float | None]]:
    if previous.shape != master.shape:
        raise IncompatibleFramesError(
            f"previous master shape {previous.shape} != master shape {master.shape}"
        )
    s = _expected_scale(master, previous, config.doubling_temp_c)
    new_d = _dark_signal(master, bias)
    old_d = _dark_signal(previous, bias)
    values: dict[str, float | None] = {"previous_expected_scale": s}
    if new_d is None or old_d is None:
        if abs(s - 1.0) > 0.02 or not (master.meta.includes_bias and previous.meta.includes_bias):
            return [unavailable("dark_scale_change", VerifyReason.PREVIOUS_NOT_COMPARABLE)], values
        new_d, old_d, with_bias = master.data.astype(np.float32), previous.data, False
    else:
        with_bias = True
    new_d, old_scaled = new_d[rows], (np.float32(s) * old_d[rows]).astype(np.float32)
    delta = new_d - old_scaled
    noise = np.sqrt(
        np.square(master.uncertainty[rows])
        + np.float32(s * s) * np.square(previous.uncertainty[rows])
    )
    fit = hot_scale_fit(delta, old_scaled, noise)
    beta = fit.alpha if math.isfinite(fit.alpha) else 0.0
    old_hf_removed = delta - np.float32(beta) * (old_scaled - neighbour_median(old_scaled))
    # the smooth part of the previous master may scale differently (amp glow does not follow
    # the dark-current law): only structure unlike it counts as a low-frequency change
    bands = band_energies(_hot_free(old_hf_removed), low_reference=_hot_free(old_scaled))
    level = float(np.nanmedian(delta))
    if with_bias:
        level -= beta * float(np.nanmedian(old_scaled))
    hot_new = master.hot_persistence >= 0.9
    hot_old = previous.hot_persistence >= 0.9
    union = np.count_nonzero(hot_new | hot_old)
    overlap = np.count_nonzero(hot_new & hot_old) / union if union else 1.0
    values.update(
        dark_scale_change=fit.alpha if math.isfinite(fit.alpha) else None,
        dark_scale_change_sigma=fit.sigma if math.isfinite(fit.sigma) else None,
        level_shift_adu=level,
        level_shift_sigma=level / sigma_frame,
        low_freq_change_adu=bands.low_amplitude,
        row_change_ratio=bands.row_ratio,
        column_change_ratio=bands.column_ratio,
        hot_overlap=overlap,
    )
    metrics: list[Metric] = []
    lim = config.max_dark_scale_change
    if math.isfinite(fit.alpha) and fit.sigma < lim / 2:
        metrics.append(gated("dark_scale_change", fit.alpha, abs(fit.alpha), lim,
                             VerifyReason.DARK_SCALE_CHANGED, f"|x| <= {lim:g}",
                             f"{fit.n} hot pixels, expected scale {s:.3f}"))  # fmt: skip
    lim = config.max_level_shift_sigma
    metrics.append(gated("level_shift_sigma", level / sigma_frame, abs(level) / sigma_frame, lim,
                         VerifyReason.LEVEL_SHIFT, f"|x| <= {lim:g}",
                         "bias removed" if with_bias else "raw levels (no bias)"))  # fmt: skip
    low = bands.low_amplitude / sigma_frame
    metrics.append(gated("low_freq_change_sigma", low, low, config.max_low_freq_sigma,
                         VerifyReason.LOW_FREQUENCY_CHANGED,
                         f"<= {config.max_low_freq_sigma:g}"))  # fmt: skip
    band = bands.column_ratio
    metrics.append(gated("column_change_ratio", band, max(band - 1.0, 0.0),
                         config.max_fpn_ratio - 1.0, VerifyReason.BANDING_CHANGED,
                         f"<= {config.max_fpn_ratio:g}"))  # fmt: skip
    if master.meta.n_frames >= 5 and previous.meta.n_frames >= 5:
        metrics.append(gated("hot_overlap", overlap, max(1.0 - overlap, 0.0),
                             1.0 - config.min_hot_overlap, VerifyReason.HOT_PIXELS_CHANGED,
                             f">= {config.min_hot_overlap:g}"))  # fmt: skip
    return metrics, values


def _crop(master: MasterDark, rows: slice) -> MasterDark:
    """The master restricted to a band of rows (planes are views, nothing is copied)."""
    if rows.start == 0 and rows.stop >= master.shape[0]:
        return master
    sat = None if master.saturated is None else master.saturated[rows]
    return dataclasses.replace(
        master,
        data=master.data[rows],
        uncertainty=master.uncertainty[rows],
        n_used=master.n_used[rows],
        n_low=master.n_low[rows],
        n_high=master.n_high[rows],
        hot_persistence=master.hot_persistence[rows],
        saturated=sat,
    )


def _hot_free(image: np.ndarray, k: float = 6.0) -> np.ndarray:
    """``image`` with pixel-scale outliers (residual hot pixels, cosmics) set to NaN."""
    hf = image - neighbour_median(image)
    s = robust_std(hf)
    out = image.astype(np.float32, copy=True)
    if math.isfinite(s) and s > 0:
        with np.errstate(invalid="ignore"):
            out[np.abs(hf) > k * s] = np.nan
    return out


def _noise_metrics(
    master: MasterDark,
    bias: MasterDark | None,
    rows: slice,
    var: np.ndarray,
    typical: np.ndarray,
    config: VerifyConfig,
) -> tuple[list[Metric], dict[str, float | None]]:
    metrics: list[Metric] = []
    values: dict[str, float | None] = {}
    g = master.meta.egain_e_per_adu
    is_dark = master.meta.frame_kind != FrameType.BIAS
    if is_dark and bias is not None and g and g > 0 and master.meta.includes_bias:
        if bias.shape != master.shape:
            raise IncompatibleFramesError(
                f"master bias shape {bias.shape} != master shape {master.shape}"
            )
        bias_var = _frame_variance(bias, rows)
        ok = typical & np.isfinite(bias_var)
        if np.count_nonzero(ok) >= 100:
            v_d = _trimmed_mean(var[ok])
            v_b = _trimmed_mean(bias_var[ok])
            level = float(np.median((master.data[rows] - bias.data[rows])[ok]))
            predicted = v_b + max(level, 0.0) / g
            ratio = v_d / predicted if predicted > 0 else math.nan
            values.update(dark_signal_adu=level, frame_var_adu2=v_d, bias_var_adu2=v_b,
                          master_variance_ratio=ratio)  # fmt: skip
            lo, hi = config.min_master_variance_ratio, config.max_master_variance_ratio
            reason = VerifyReason.VARIANCE_EXCESS if ratio > 1 else VerifyReason.LEVEL_EXCESS
            limit = math.log(hi) if ratio > 1 else -math.log(lo)
            metrics.append(gated("master_variance_ratio", ratio, abs(math.log(ratio)), limit,
                                 reason, f"{lo:g}..{hi:g}"))  # fmt: skip
        bands = band_energies(_hot_free((master.data[rows] - bias.data[rows]).astype(np.float32)))
        band = bands.column_ratio
        values.update(bias_row_ratio=bands.row_ratio, bias_column_ratio=band)
        metrics.append(gated("bias_column_ratio", band, max(band - 1.0, 0.0),
                             config.max_fpn_ratio - 1.0, VerifyReason.BANDING_CHANGED,
                             f"<= {config.max_fpn_ratio:g}"))  # fmt: skip
    if is_dark and g and g > 0:
        from darkflow.subtract import estimate_gain_from_dark

        k = min(float((master.provenance.get("params") or {}).get("sigma_high", 3.0)), 10.0)
        fit = estimate_gain_from_dark(_crop(master, rows), clip_sigma=k)
        if fit is not None and fit[1] > 0.8:
            dev = g / fit[0] - 1.0
            values.update(ptc_egain=fit[0], ptc_r2=fit[1], gain_deviation=dev)
            metrics.append(gated("gain_deviation", dev, abs(dev), config.max_gain_deviation,
                                 VerifyReason.GAIN_MISMATCH,
                                 f"|x| <= {config.max_gain_deviation:g}"))  # fmt: skip
    return metrics, values


def assess_master(
    master: MasterDark,
    *,
    holdout: HoldoutSource | None = None,
    previous: MasterDark | None = None,
    bias: MasterDark | None = None,
    config: VerifyConfig | None = None,
    holdout_rows: slice | None = None,
) -> MasterAssessment:
    """Acceptance gates of a master dark (or bias): metrics, confidences, status, reasons.

    Parameters
    ----------
    master
        The master to judge (built from the *training* frames when ``holdout`` is given).
    holdout
        Held-out raw frames of the same set (arrays, or a callable returning an iterable of
        them, read lazily); full frames, or the rows ``holdout_rows`` of each frame.
    previous
        The previous verified master of the same configuration (fixed-pattern stability).
    bias
        A master bias of the same configuration taken with the lights (noise-model and
        bias-level checks; scaling of ``previous`` to this master's exposure/temperature).
    config
        Tolerance bands (``VerifyConfig``).
    holdout_rows
        Which rows the held-out arrays hold (a band inside the analysed window), for big frames.

    Returns
    -------
    MasterAssessment
        ``VERIFIED`` when every available gated metric is inside its band, else
        ``LOW_CONFIDENCE``; ``confidence`` is the weakest metric's (x0.9 without hold-out).

    Raises
    ------
    IncompatibleFramesError
        A held-out frame, the bias or the previous master does not match the master's shape.
    """
    config = config or VerifyConfig()
    rows = row_window(master.shape, config.max_analysis_pixels)
    var = _frame_variance(master, rows)
    typical = _typical(master, rows)
    frame_var = _trimmed_mean(var[typical]) if typical.any() else math.nan
    sigma_frame = math.sqrt(frame_var) if frame_var > 0 else 1.0
    metrics: list[Metric] = []
    values: dict[str, float | None] = {"n_frames": float(master.meta.n_frames),
                                       "frame_sigma_adu": sigma_frame}  # fmt: skip

    # hold-out validation
    hold, hold_values = _holdout_metrics(
        master, holdout, rows, holdout_rows, var, sigma_frame, config
    )
    metrics += hold
    values.update(hold_values)

    # combine statistics: cosmic-ray contamination, master noise
    n_high = float(master.n_high.sum(dtype=np.int64))
    n_low = float(master.n_low.sum(dtype=np.int64))
    total = n_high + n_low + float(master.n_used.sum(dtype=np.int64))
    # values clipped high beyond those clipped low: one-sided transients (cosmic rays)
    rate = (n_high - n_low) / total if total else math.nan
    lim = config.max_high_reject_excess
    metrics.append(gated("high_reject_excess", rate, max(rate, 0.0), lim,
                         VerifyReason.HIGH_REJECTIONS, f"<= {lim:g}"))  # fmt: skip
    unc2 = np.square(master.uncertainty[rows].astype(np.float64))
    inflation = 1.0 + _trimmed_mean(unc2[typical]) / frame_var if frame_var > 0 else math.nan
    lim = config.max_noise_inflation
    metrics.append(gated("noise_inflation", inflation, max(inflation - 1.0, 0.0), lim - 1.0,
                         VerifyReason.NOISE_INFLATION, f"<= {lim:g}"))  # fmt: skip
    values.update(high_reject_excess=rate, noise_inflation=inflation,
                  n_hot_stable=float(np.count_nonzero(master.hot_persistence >= 0.9)))  # fmt: skip

    # noise model: variance vs level (with a bias), photon-transfer gain
    noise, noise_values = _noise_metrics(master, bias, rows, var, typical, config)
    metrics += noise
    values.update(noise_values)

    # fixed-pattern stability against the previous verified master
    if previous is None:
        metrics.append(unavailable("dark_scale_change", VerifyReason.NO_PREVIOUS))
    else:
        prev, prev_values = _previous_metrics(master, previous, bias, rows, sigma_frame, config)
        metrics += prev
        values.update(prev_values)

    reasons = tuple(dict.fromkeys(m.reason for m in metrics if m.reason is not None))
    failed = any(m.failed for m in metrics)
    have_holdout = any(m.name == "holdout_width_ratio" and m.value is not None for m in metrics)
    confidence = overall_confidence(metrics, 1.0 if have_holdout else NO_HOLDOUT_PENALTY)
    status = MasterStatus.LOW_CONFIDENCE if failed else MasterStatus.VERIFIED
    clean = dict.fromkeys(MASTER_VALUE_COLUMNS)
    clean.update({k: (None if v is None or not math.isfinite(v) else round(float(v), 6))
                  for k, v in values.items()})  # fmt: skip
    return MasterAssessment(status, confidence, tuple(metrics), reasons, clean)
