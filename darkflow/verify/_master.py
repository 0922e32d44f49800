"""Acceptance gates for master darks: hold-out validation, noise model, fixed-pattern stability.

Every gate is a statistical test (:func:`darkflow.verify.significance_gate`): its statistic,
the statistic's spread under "all is well" for the actual numbers of pixels and frames and the
uncertainty of the inputs (gain, bias level, frame-level jitter), and the false-alarm
probability ``verify.gate_false_alarm``. See :func:`assess_master` and ``docs/verification.md``
for each derivation.
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

from darkflow.config import MatchingConfig, VerifyConfig
from darkflow.exceptions import ConfigError, IncompatibleFramesError
from darkflow.model import FrameType, GainEstimate, MasterDark, MasterStatus
from darkflow.stats._robust import median as _median
from darkflow.subtract.gain import (
    clip_variance_factor,
    dark_bias_level,
    gain_from_dark_stack,
    header_gain,
)
from darkflow.verify._fpn import band_energies, row_window
from darkflow.verify._gate import combine_spread, median_sd, z_threshold
from darkflow.verify._gradient import dark_gradient_gate
from darkflow.verify._holdout import frame_residual, holdout_gates, transient_gate
from darkflow.verify._level import dark_level_gate
from darkflow.verify._metrics import (
    MASTER_VALUE_COLUMNS,
    Metric,
    VerifyReason,
    not_measured,
    overall_confidence,
    significance_gate,
)
from darkflow.verify._stability import _hot_free, band_gate, frame_jitter, previous_gates

__all__ = ["MasterAssessment", "assess_master", "holdout_split"]

FrameSource = Sequence[np.ndarray] | Callable[[], Iterable[np.ndarray]]

# Relative accuracy (1 sigma) of a per-frame variance restored from a sigma-clipped stack
# (uncertainty² x n_used / Gaussian clip factor) against the stack's plain variance: -3 % with
# 3 frames (the clip's centre is a noisy median), -1.4 % for Poisson-skewed pixels of a few
# electrons, within 0.5 % for Gaussian stacks of 10+ frames (docs/verification.md)
CLIPPED_VARIANCE_REL_SD = 0.03
# clipped values of one cosmic-ray hit (a track across a few pixels), and the share of clipped
# values by which the combine's clipping may differ high/low on a clean Gaussian stack
PIXELS_PER_HIT = 5.0
# values this many (smooth-curve) noise sigmas from the clipped master are transients
EXTREME_SIGMA = 10.0
KERNEL_ASYMMETRY = 0.3
HoldoutSource = FrameSource  # the name of the older API


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
    ``masters.csv``; ``metrics`` the gates with their statistic, expectation, spread and
    false-alarm probability. ``reasons`` lists failing gates first, then advisories (stated
    expected errors that do not lower the status, e.g. ``master_noise_inflation``), then the
    informational reasons of gates that could not be measured.
    """

    status: MasterStatus
    confidence: float
    metrics: tuple[Metric, ...]
    reasons: tuple[VerifyReason, ...]
    values: dict[str, float | None] = field(default_factory=dict)
    gain: GainEstimate | None = None

    @property
    def verified(self) -> bool:
        return self.status == MasterStatus.VERIFIED

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        g = self.gain
        return {
            "status": str(self.status),
            "confidence": self.confidence,
            "reasons": [str(r) for r in self.reasons],
            "metrics": [m.to_dict() for m in self.metrics],
            "values": dict(self.values),
            "gain": None if g is None else dataclasses.asdict(g),
        }

    def __repr__(self) -> str:
        why = ",".join(self.reasons) or "-"
        return f"<MasterAssessment {self.status} conf={self.confidence:.2f} [{why}]>"


# ----------------------------------------------------------------------------- planes
def _clip_k(master: MasterDark) -> float | None:
    params = (master.provenance or {}).get("params") or {}
    try:
        k = min(float(params.get("sigma_low", 3.0)), float(params.get("sigma_high", 3.0)))
    except (TypeError, ValueError):
        k = 3.0
    return k if k > 0 and params.get("max_iters", 5) else None


def _frame_variance(master: MasterDark, rows: slice) -> np.ndarray:
    """Per-frame variance of each pixel (the clipped sample variance, restored for what the
    clipping removed), NaN where undefined."""
    n = master.n_used[rows].astype(np.float64)
    var = np.square(master.uncertainty[rows].astype(np.float64)) * n
    return np.where(n >= 2, var, np.nan) / clip_variance_factor(_clip_k(master))


def _mean_sd(values: np.ndarray) -> tuple[float, float]:
    """Mean of the finite values and its standard error (empirical)."""
    v = values[np.isfinite(values)]
    if v.size < 2:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) / math.sqrt(v.size)


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


def _variance_curve(master: MasterDark, rows: slice, var: np.ndarray, min_width: float = 0.0):
    """Per-frame variance as a function of the master level (binned medians, interpolated):
    a smooth noise-by-level scale that weights pixels equally in the hold-out residuals.

    ``min_width``: the narrowest bin of levels. On integer data saved in steps of ``q`` ADU a
    pixel's level (the mean of its frames) and its sample variance are not independent: the
    pixels whose frames all read one value sit exactly on the lattice with variance 0, so a bin
    holding one lattice level reads no noise at all. Bins at least three steps wide hold every
    residue of the lattice.
    """
    data = master.data[rows].astype(np.float64)
    ok = np.isfinite(data) & np.isfinite(var)
    d, v = data[ok], var[ok]
    if d.size < 50:
        return None
    edges = np.unique(np.percentile(d, np.linspace(0, 100, 21)))
    if min_width > 0 and edges.size > 2:
        kept = [edges[0]]
        for e in edges[1:-1]:
            if e - kept[-1] >= min_width and edges[-1] - e >= min_width:
                kept.append(e)
        kept.append(edges[-1])
        edges = np.array(kept)
    xs, ys = [], []
    from darkflow.stats._bins import closed_bins  # numba: loaded when needed

    for d_bin, v_bin in closed_bins(d, v, edges):
        if d_bin.size >= 10:
            xs.append(float(_median(d_bin)))
            ys.append(float(_median(v_bin)))
    if not xs:
        return None
    xs_a, ys_a = np.array(xs), np.maximum(np.array(ys), 1e-12)

    def curve(level: np.ndarray) -> np.ndarray:
        return np.interp(level, xs_a, ys_a)

    return curve


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


# ----------------------------------------------------------------------------- hold-out
def value_lattice(frame: np.ndarray, sample: int = 20_000) -> tuple[float, float]:
    """Origin and step of integer data saved in steps of a few ADU (a 12-bit ADC scaled to 16
    bits saves multiples of 16): the greatest common divisor of a deterministic sample of
    value differences; ``(0, 0)`` for data that are not integers."""
    v = np.asarray(frame, dtype=np.float64).ravel()
    v = v[np.isfinite(v)][:: max(1, v.size // sample)]
    if v.size < 2 or not np.all(v == np.round(v)):
        return 0.0, 0.0
    origin = float(v.min())
    step = int(np.gcd.reduce((v - origin).astype(np.int64)))
    return (origin, float(step)) if step > 1 else (0.0, 0.0)


def _frames_of(source: FrameSource | None) -> Iterable[np.ndarray]:
    if source is None:
        return ()
    return source() if callable(source) else source


def _holdout_metrics(
    master: MasterDark,
    holdout: FrameSource | None,
    training: FrameSource | None,
    rows: slice,
    frame_rows: slice | None,
    var: np.ndarray,
    sigma_frame: float,
    config: VerifyConfig,
) -> tuple[list[Metric], dict[str, float | None], list, tuple[float, float]]:
    band = frame_rows if frame_rows is not None else rows
    if band.start < rows.start or band.stop > rows.stop:
        raise ConfigError("holdout_rows must lie inside the analysed band of rows")
    sub = slice(band.start - rows.start, band.stop - rows.start)
    m = master.data[rows][sub].astype(np.float32)
    n_used = master.n_used[rows][sub]
    valid = np.isfinite(m) & (n_used >= 2)
    if master.saturated is not None:
        valid &= ~master.saturated[rows][sub].astype(bool)

    def bands(source: FrameSource | None) -> Iterable[np.ndarray]:
        for frame in _frames_of(source):
            frame = np.asarray(frame)
            if frame.ndim != 2 or frame.shape[1] != master.shape[1]:
                raise IncompatibleFramesError(
                    f"frame of shape {frame.shape} for a master of shape {master.shape}"
                )
            if frame_rows is not None:
                if frame.shape[0] != band.stop - band.start:
                    raise ConfigError("frames must hold exactly the rows holdout_rows")
                yield frame
            elif frame.shape == master.shape:
                yield frame[band]
            else:
                raise IncompatibleFramesError(
                    f"frame of shape {frame.shape} for a master of shape {master.shape} "
                    "(pass holdout_rows for a band of rows)"
                )

    # the plain mean of the training frames (first pass; the residual law needs it), without
    # values beyond EXTREME_SIGMA of the clipped master (cosmic rays: a plain mean would carry
    # each of them into every residual of its pixel); noise never reaches that far
    total = np.zeros(m.shape, np.float64)
    count = np.zeros(m.shape, np.int32)
    # the raw values' lattice (first training frame) sets the noise curve's narrowest bin
    train_frames = iter(bands(training)) if training is not None else iter(())
    first = next(train_frames, None)
    lattice = value_lattice(first) if first is not None else (0.0, 0.0)
    curve = _variance_curve(master, rows, var, min_width=3.0 * lattice[1])
    scale = np.sqrt(curve(m)).astype(np.float32) if curve is not None else np.ones_like(m)
    # the pixel's own scatter where it exceeds the smooth curve (hot, flickering pixels)
    own = np.sqrt(np.where(np.isfinite(var[sub]), var[sub], 0.0)).astype(np.float32)
    own = np.maximum(scale, own)
    extreme = EXTREME_SIGMA * own
    if first is not None:
        from darkflow.stats._accumulate import add_within  # numba: loaded when needed

        for part in itertools.chain((first,), train_frames):
            add_within(part, m, extreme, total, count)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total / count).astype(np.float32)
    valid &= count >= 2
    residuals = []
    if training is not None and valid.any():

        def one(held: bool, part: np.ndarray):
            return frame_residual(
                part,
                mean,
                scale,
                count,
                valid,
                held=held,
                master=None if held else m,
                event_scale=own,
            )

        frames = (
            (held, part)
            for held, source in ((False, training), (True, holdout))
            for part in bands(source)
        )
        found = _in_order(one, frames)
        residuals = [res for res in found if res is not None]
    metrics, values = holdout_gates(
        residuals,
        sigma_frame=sigma_frame,
        false_alarm=config.gate_false_alarm,
        jitter_materiality=config.max_noise_inflation - 1.0,
    )
    values["adc_step_adu"] = lattice[1]
    return metrics, values, residuals, lattice


def _in_order(fn, items: Iterable[tuple], *, ahead: int = 2) -> list:
    """``[fn(*item) for item in items]``, up to ``ahead`` items at once in threads (the frames'
    residual statistics are numba ``nogil`` passes and numpy selections, which let go of the
    GIL; each frame's result depends on its own inputs only, so the list is the serial one).
    At most ``ahead`` items (frames read from disk, each with its temporaries) are in flight
    at once: memory stays bounded."""
    from concurrent.futures import ThreadPoolExecutor

    from darkflow.stats._common import kernel_threads

    workers = max(1, min(ahead, kernel_threads()))
    if workers == 1:
        return [fn(*item) for item in items]
    out: list = []
    pending: list = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for item in items:
            pending.append(pool.submit(fn, *item))
            if len(pending) >= workers:
                out.append(pending.pop(0).result())
        out.extend(f.result() for f in pending)
    return out


# ----------------------------------------------------------------------------- combine
def _mean_skewness(
    master: MasterDark,
    bias: MasterDark | None,
    rows: slice,
    var: np.ndarray,
    g: GainEstimate | None,
) -> float | None:
    """Mean standardised skewness of the pixels' frame-to-frame noise: Poisson noise of a
    signal ``S`` ADU (``S g`` electrons) has third cumulant ``S / g²`` ADU³. ``S`` is the master
    minus the bias; without a bias, ``g`` times the variance above its 5th percentile (the read
    floor). ``None`` without a gain."""
    if g is None or not g.value > 0:
        return None
    data = master.data[rows].astype(np.float64)
    if not master.meta.includes_bias:
        signal = data
    elif bias is not None:
        signal = data - bias.data[rows]
    else:
        floor = float(np.nanpercentile(var, 5)) if np.isfinite(var).any() else 0.0
        signal = (var - floor) * g.value
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.maximum(signal, 0.0) / g.value**2 / np.power(var, 1.5)
    gamma = gamma[np.isfinite(gamma)]
    return float(np.mean(gamma)) if gamma.size else None


def _rejection_metric(
    master: MasterDark, config: VerifyConfig, skewness: float | None
) -> tuple[Metric, dict[str, Any]]:
    """Values clipped high beyond those clipped low: one-sided transients (cosmic rays).

    Under "all is well" the difference has a binomial spread and an expected value from two
    sources: the skewness ``gamma`` of Poisson noise (Edgeworth: a ``k``-sigma clip keeps
    ``gamma/6 (k² - 1) phi(k)`` more on the high side, per side; 30 % of it counted as its
    uncertainty) and a frame-level jitter of the inputs (a frame offset by ``d`` noise sigmas is
    clipped high ``Q(k - d) - Q(k)`` more often). The materiality is the highest cosmic-ray
    rate of a healthy sensor for the exposure plus its readout (hits x :data:`PIXELS_PER_HIT`
    clipped values each). Used only without the frames themselves (:func:`transient_gate` counts
    events in the training frames).
    """
    n_high = float(master.n_high.sum(dtype=np.int64))
    n_low = float(master.n_low.sum(dtype=np.int64))
    total = n_high + n_low + float(master.n_used.sum(dtype=np.int64))
    if total <= 0:
        return not_measured("high_reject_excess", None, "no values"), {}
    rate = (n_high - n_low) / total
    clipped = n_high + n_low
    spread = math.sqrt(max(clipped - (n_high - n_low) ** 2 / total, 1.0)) / total
    prov = master.provenance or {}
    params = prov.get("params") or {}
    sig0 = (prov.get("noise") or {}).get("sig0_adu")
    levels = np.array([v for v in prov.get("frame_levels") or [] if v is not None], float)
    jitter_term = skew_term = 0.0
    clipping = bool(params.get("max_iters", 5))
    k_hi = float(params.get("sigma_high", 3.0))
    k_lo = float(params.get("sigma_low", 3.0))
    if clipping:
        # scipy.stats' norm.sf and norm.pdf, without its import
        from darkflow.stats._dist import norm_pdf, norm_sf

        if sig0 and sig0 > 0 and levels.size >= 2:
            d = (levels - np.median(levels)) / float(sig0)
            base = norm_sf(k_hi) - norm_sf(k_lo)
            jitter_term = float(np.mean(norm_sf(k_hi - d) - norm_sf(k_lo + d)) - base)
        if skewness:
            edge = (k_hi**2 - 1) * norm_pdf(k_hi) + (k_lo**2 - 1) * norm_pdf(k_lo)
            skew_term = skewness / 6.0 * edge
    expected = jitter_term + skew_term
    # the noise-model clip of the combine is not exactly symmetric on Gaussian stacks (up to
    # ~0.3 of the clipped values' share, measured on 5-12 frames): counted as uncertainty
    spread = combine_spread(spread, 0.3 * skew_term, KERNEL_ASYMMETRY * clipped / total)
    exposure = max(master.meta.exptime_s or 0.0, 0.0) + config.cosmic_readout_s
    cosmic = config.cosmic_rate_px_s * PIXELS_PER_HIT * exposure
    gate = significance_gate(
        "high_reject_excess",
        rate,
        expected=expected,
        spread=spread,
        materiality=cosmic,
        reason=VerifyReason.HIGH_REJECTIONS,
        false_alarm=config.gate_false_alarm,
        side="upper",
        detail=f"{int(n_high)} high, {int(n_low)} low of {int(total)} values; "
        f"cosmic-ray allowance {cosmic:.2g} for {exposure:g} s",
    )
    return gate, {
        "high_reject_excess": rate,
        "high_reject_expected": expected,
        "noise_skewness": skewness,
        "cosmic_allowance": cosmic,
    }


def _noise_inflation(
    master: MasterDark, rows: slice, typical: np.ndarray, frame_var: float, config: VerifyConfig
) -> tuple[Metric, dict[str, float | None]]:
    """What the master's own noise adds to a light without sky: a stated expected error.

    ``1 + mean(unc²) / mean(frame variance)`` ≈ ``1 + 1/N``. Not a fault (a master from few
    darks is noisy but unbiased): above ``verify.max_noise_inflation`` it is an *advisory*
    (``master_noise_inflation``: take more darks), which never lowers the status.
    """
    unc2 = np.square(master.uncertainty[rows].astype(np.float64))[typical]
    n_eff = float(np.mean(master.n_used[rows][typical])) if typical.any() else math.nan
    if not (frame_var > 0 and unc2.size):
        return not_measured("noise_inflation", None, "no typical pixels"), {}
    value = 1.0 + float(np.mean(unc2)) / frame_var
    advisory = value > config.max_noise_inflation
    detail = (
        f"expected error: the master adds {100 * (value - 1):.0f} % of a dark frame's variance "
        f"to every light ({n_eff:.1f} frames per pixel)"
    )
    metric = Metric(
        "noise_inflation",
        round(value, 6),
        f"advisory above {config.max_noise_inflation:g}",
        1.0,
        VerifyReason.NOISE_INFLATION if advisory else None,
        detail,
        expected=round(1.0 + 1.0 / n_eff, 6) if n_eff > 0 else None,
    )
    return metric, {"noise_inflation": value, "n_used_mean": n_eff}


# ----------------------------------------------------------------------------- noise model
def _variance_metric(
    master: MasterDark,
    bias: MasterDark,
    rows: slice,
    var: np.ndarray,
    typical: np.ndarray,
    gain: GainEstimate,
    config: VerifyConfig,
    step: float = 0.0,
) -> tuple[list[Metric], dict[str, float | None]]:
    """Per-frame pixel variance of the darks against read noise (the biases') + shot noise.

    Frame-level jitter (the level of a whole frame moving, measured by the combine) is in each
    pixel's temporal variance but not in its noise: it is removed from both. Spread: the
    empirical standard errors of both mean variances, the accuracy of a variance restored from
    a sigma-clipped stack (:data:`CLIPPED_VARIANCE_REL_SD`), the gain's uncertainty on the shot
    term and the uncertainty of the dark level (the two sets' level jitter over their frame
    counts). Values saved in steps of ``step`` ADU add ``step²/12`` to both variances, exactly
    only while the noise spans several steps; half of it is counted as uncertainty of each.
    """
    bias_var = _frame_variance(bias, rows)
    ok = typical & np.isfinite(bias_var) & np.isfinite(var)
    if np.count_nonzero(ok) < 100:
        return [not_measured("master_variance_ratio", None, "fewer than 100 typical pixels")], {}
    v_d, sd_d = _mean_sd(var[ok])
    v_b, sd_b = _mean_sd(bias_var[ok])
    j_d, j_b = frame_jitter(master), frame_jitter(bias)
    n_d, n_b = max(master.meta.n_frames, 2), max(bias.meta.n_frames, 2)
    v_d_pix, v_b_pix = v_d - j_d**2, v_b - j_b**2
    sd_d = combine_spread(sd_d, j_d**2 * math.sqrt(2.0 / (n_d - 1)))
    sd_b = combine_spread(sd_b, j_b**2 * math.sqrt(2.0 / (n_b - 1)))
    signal = (master.data[rows] - bias.data[rows])[ok].astype(np.float64)
    level = float(np.mean(signal))  # the variance is linear in the level: its mean, not median
    shot = max(level, 0.0) / gain.value
    predicted = v_b_pix + shot
    values: dict[str, float | None] = {
        "dark_signal_adu": level,
        "frame_var_adu2": v_d,
        "bias_var_adu2": v_b,
        "dark_jitter_adu": j_d,
        "bias_jitter_adu": j_b,
    }
    if not (predicted > 0 and v_d_pix > 0):
        return [not_measured("master_variance_ratio", None, "no positive variance")], values
    ratio = v_d_pix / predicted
    sd_level = combine_spread(
        j_d / math.sqrt(n_d), j_b / math.sqrt(n_b), median_sd(math.sqrt(v_d), signal.size)
    )
    rel = combine_spread(
        sd_d / v_d_pix,
        sd_b / predicted,
        combine_spread(CLIPPED_VARIANCE_REL_SD * v_d, step**2 / 24.0) / v_d_pix,
        combine_spread(CLIPPED_VARIANCE_REL_SD * v_b, step**2 / 24.0) / predicted,
        shot * gain.rel_sigma / predicted,
        sd_level / gain.value / predicted if level > 0 else 0.0,
    )
    values["master_variance_ratio"] = ratio
    metric = significance_gate(
        "master_variance_ratio",
        ratio,
        expected=1.0,
        spread=ratio * rel,
        reason=VerifyReason.VARIANCE_EXCESS,
        reason_low=VerifyReason.LEVEL_EXCESS,
        false_alarm=config.gate_false_alarm,
        detail=f"dark signal {level:.3g} ADU, gain {gain.value:.3g} +- {gain.sigma:.2g} "
        f"({gain.source})",
    )
    return [metric], values


def _gain_metric(
    header: GainEstimate | None, ptc: GainEstimate | None, config: VerifyConfig
) -> tuple[Metric, dict[str, float | None]]:
    """Header EGAIN against the darks' photon transfer, in units of both uncertainties.

    Not measured without both, or when the estimate is too noisy to see the effect looked for:
    a gain wrong by a factor of two (``z* x sigma > 1``).
    """
    values: dict[str, float | None] = {}
    if ptc is not None:
        values.update(ptc_egain=ptc.value, ptc_egain_sigma=ptc.sigma)
    if header is None or ptc is None:
        why = "no header EGAIN" if header is None else "no photon-transfer estimate (no lever arm)"
        return not_measured("gain_deviation", None, why), values
    dev = header.value / ptc.value - 1.0
    rel = combine_spread(header.rel_sigma, ptc.rel_sigma)
    values["gain_deviation"] = dev
    if z_threshold(config.gate_false_alarm) * rel > 1.0:
        # recorded, not judged: the deviation is shown with why it cannot be judged
        why = (
            f"photon-transfer estimate +-{100 * ptc.rel_sigma:.0f} %: too noisy to see a "
            "gain wrong by a factor of two"
        )
        return Metric("gain_deviation", round(dev, 6), "", None, None, why), values
    metric = significance_gate(
        "gain_deviation",
        dev,
        expected=0.0,
        spread=(1.0 + dev) * rel,
        reason=VerifyReason.GAIN_MISMATCH,
        false_alarm=config.gate_false_alarm,
        detail=f"header {header.value:.4g}, photon transfer {ptc.value:.4g} +- {ptc.sigma:.2g}",
    )
    return metric, values


# ----------------------------------------------------------------------------- assessment
def assess_master(
    master: MasterDark,
    *,
    holdout: FrameSource | None = None,
    training: FrameSource | None = None,
    previous: MasterDark | None = None,
    bias: MasterDark | None = None,
    previous_bias: MasterDark | None = None,
    gain: GainEstimate | None = None,
    config: VerifyConfig | None = None,
    holdout_rows: slice | None = None,
    bias_own_night: bool = True,
    previous_level_known: bool = True,
    dark_law: MatchingConfig | None = None,
) -> MasterAssessment:
    """Acceptance gates of a master dark (or bias): metrics, confidences, status, reasons.

    Parameters
    ----------
    master
        The master to judge (built from the *training* frames when ``holdout`` is given).
    holdout, training
        Held-out raw frames of the same set and the training frames ``master`` was combined
        from (arrays, or callables returning an iterable of them, read lazily); full frames,
        or the rows ``holdout_rows`` of each frame. The hold-out gates compare the two.
    previous
        The previous verified master of the same configuration (fixed-pattern stability).
    bias
        A master bias of the same configuration taken with the lights (noise-model and
        bias-level checks; scaling of ``previous`` to this master's exposure/temperature).
    previous_bias
        The master bias of ``previous``'s night (default ``bias``): a bias drift between the
        two nights then is not taken for a dark-level change.
    gain
        e-/ADU the noise model is judged with (default: the header's EGAIN, trusted to
        ``verify.header_gain_rel_sigma``; else the darks' own photon transfer).
    config
        ``VerifyConfig``: ``gate_false_alarm`` and the physical allowances.
    holdout_rows
        Which rows the frame arrays hold (a band inside the analysed window), for big frames.
    bias_own_night
        ``bias`` was taken on the master's own night. A bias borrowed from another night sits
        at an unknown offset from the darks' (the bias level drifts between nights): the gates
        that depend on the dark level above it (the noise model's shot term, the level
        change against ``previous``) are then not measured.
    previous_level_known
        ``previous`` has its own night's bias (``previous_bias``), or no bias is involved
        within one night: else a level change between the two nights cannot be told from
        bias drift and the level-shift gate is not measured.
    dark_law
        ``[matching]``'s dark-current law and temperature reading noise, which scale
        ``previous`` to this master's temperature (their defaults when ``None``).

    Returns
    -------
    MasterAssessment
        ``VERIFIED`` unless a gate fails (``LOW_CONFIDENCE``); the confidence is the weakest
        measured gate's. Gates that cannot be measured and advisories change neither.

    Raises
    ------
    IncompatibleFramesError
        A frame, the bias or the previous master does not match the master's shape.
    """
    config = config or VerifyConfig()
    rows = row_window(master.shape, config.max_analysis_pixels)
    var = _frame_variance(master, rows)
    typical = _typical(master, rows)
    frame_var = _mean_sd(var[typical])[0] if typical.any() else math.nan
    sigma_frame = math.sqrt(frame_var) if frame_var > 0 else 1.0
    metrics: list[Metric] = []
    values: dict[str, float | None] = {
        "n_frames": float(master.meta.n_frames),
        "frame_sigma_adu": sigma_frame,
    }
    if bias is not None and bias.shape != master.shape:
        raise IncompatibleFramesError(
            f"master bias shape {bias.shape} != master shape {master.shape}"
        )
    if previous_bias is not None and previous_bias.shape != master.shape:
        previous_bias = None

    # hold-out validation
    hold, hold_values, residuals, lattice = _holdout_metrics(
        master, holdout, training, rows, holdout_rows, var, sigma_frame, config
    )
    metrics += hold
    values.update(hold_values)

    # the gain of the noise model: header (trusted to header_gain_rel_sigma), else photon
    # transfer on the darks; the header is checked against photon transfer
    is_dark = master.meta.frame_kind != FrameType.BIAS
    header = header_gain(master.meta, rel_sigma=config.header_gain_rel_sigma)
    ptc = None
    if is_dark:
        k = min(float((master.provenance.get("params") or {}).get("sigma_high", 3.0)), 10.0)
        cropped = _crop(master, rows)
        level = dark_bias_level(master, bias)
        ptc = gain_from_dark_stack(
            cropped,
            clip_sigma=k,
            bias_level=level,
            bias=None if bias is None else _crop(bias, rows),
        )
        gate, gvalues = _gain_metric(header, ptc, config)
        metrics.append(gate)
        values.update(gvalues)
    g = gain or header or ptc
    if g is not None:
        values.update(gain_e_per_adu=g.value, gain_sigma=g.sigma)

    # combine statistics: transients, the master's own noise (an expected error)
    skew = _mean_skewness(master, bias if is_dark else None, rows, var, g) if is_dark else 0.0
    exposure = max(master.meta.exptime_s or 0.0, 0.0) + config.cosmic_readout_s
    transient = transient_gate(
        residuals,
        allowance=config.cosmic_rate_px_s * exposure,
        false_alarm=config.gate_false_alarm,
    )
    rejection, rej_values = _rejection_metric(master, config, skew)
    if transient is not None:  # the frames themselves: the clipping counts are recorded only
        rejection = Metric(
            "high_reject_excess",
            rejection.value,
            "",
            None,
            None,
            "recorded; judged on the training frames' transient events (transient_excess)",
        )
        metrics.append(transient[0])
        rej_values.update(transient[1])
    inflation, infl_values = _noise_inflation(master, rows, typical, frame_var, config)
    metrics += [rejection, inflation]
    values.update(rej_values)
    values.update(infl_values)
    values["n_hot_stable"] = float(np.count_nonzero(master.hot_persistence >= 0.9))

    # noise model: variance vs read + shot noise, column banding against the bias
    if is_dark and bias is not None and master.meta.includes_bias:
        if g is not None and not bias_own_night:
            metrics.append(
                not_measured(
                    "master_variance_ratio",
                    None,
                    "bias of another night: the dark level under it (the shot term) is unknown",
                )
            )
        elif g is not None:
            vm, vv = _variance_metric(master, bias, rows, var, typical, g, config, lattice[1])
            metrics += vm
            values.update(vv)
        if bias_own_night:  # a bias of another night sits at an unknown level
            level, level_values = dark_level_gate(master, bias, rows, typical, frame_var, config)
            metrics.append(level)
            values.update(level_values)
        raw_diff = (master.data[rows] - bias.data[rows]).astype(np.float32)
        diff = _hot_free(raw_diff)
        if bias_own_night:
            gradient, gradient_values = dark_gradient_gate(
                diff, rows, master, frame_var, config, raw=raw_diff
            )
            metrics.append(gradient)
            values.update(gradient_values)
        bands = band_energies(diff)
        values.update(bias_row_ratio=bands.row_ratio, bias_column_ratio=bands.column_ratio)
        metrics.append(
            band_gate(
                "bias_column_ratio",
                bands.column_ratio,
                diff.shape[1],
                config,
                "column band of master - bias",
            )
        )

    # fixed-pattern stability against the previous verified master
    if previous is None:
        metrics.append(not_measured("dark_scale_change", VerifyReason.NO_PREVIOUS))
    else:
        prev, prev_values = previous_gates(
            master,
            previous,
            bias,
            rows,
            config,
            previous_bias=previous_bias,
            lattice=lattice,
            level_known=bias_own_night and previous_level_known,
            dark_law=dark_law,
        )
        metrics += prev
        values.update(prev_values)

    failing = [m.reason for m in metrics if m.failed]
    advisory = [m.reason for m in metrics if m.reason is not None and m.advisory]
    info = [m.reason for m in metrics if m.reason is not None and not m.failed and not m.advisory]
    reasons = tuple(dict.fromkeys([*failing, *advisory, *info]))
    status = MasterStatus.LOW_CONFIDENCE if failing else MasterStatus.VERIFIED
    clean = dict.fromkeys(MASTER_VALUE_COLUMNS)
    clean.update(
        {
            k: (None if v is None or not math.isfinite(v) else round(float(v), 6))
            for k, v in values.items()
        }
    )
    return MasterAssessment(status, overall_confidence(metrics), tuple(metrics), reasons, clean, g)
