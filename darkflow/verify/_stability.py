"""Fixed-pattern stability of a master against the previous verified master of its camera.

``Delta = D_new - s D_prev`` (``D`` = master minus bias, ``s`` = exposure ratio x
``2^(dT / doubling)``) holds what changed beyond the expected dark-current scaling. Each
statistic is compared with its spread under "same sensor, same pattern": the two masters' own
noise (their uncertainty planes, measured on ``Delta`` itself), their frame-level jitter, the
uncertainty of ``s`` (temperature readings within each set, the doubling temperature's prior)
and the hot-pixel persistence of each set. See ``docs/verification.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from darkflow.config import MatchingConfig, VerifyConfig
from darkflow.exceptions import IncompatibleFramesError
from darkflow.model import MasterDark
from darkflow.stats import robust_std
from darkflow.verify._fpn import band_energies, fit_candidates, hot_scale_fit, iq_mean
from darkflow.verify._gate import combine_spread, median_sd
from darkflow.verify._metrics import Metric, VerifyReason, not_measured, significance_gate
from darkflow.verify._nulls import band_ratio_spread, f_upper_spread
from darkflow.verify._residuals import neighbour_median

__all__ = ["frame_jitter", "previous_gates"]

TILE = 32
HOT_PERSISTENT = 0.9
# |ln s| up to which two masters count as the same exposure and temperature (10 %)
SAME_SCALE = 0.1


def frame_jitter(master: MasterDark) -> float:
    """Standard deviation of the input frames' levels (ADU) recorded by the combine; 0 when
    unknown (fewer than two frames)."""
    levels = (master.provenance or {}).get("frame_levels") or []
    lv = np.array([v for v in levels if v is not None], dtype=np.float64)
    lv = lv[np.isfinite(lv)]
    return float(np.std(lv, ddof=1)) if lv.size >= 2 else 0.0


def _dark_signal(master: MasterDark, bias: MasterDark | None) -> np.ndarray | None:
    if not master.meta.includes_bias:
        return master.data.astype(np.float32)
    if bias is None:
        return None
    return master.data.astype(np.float32) - bias.data.astype(np.float32)


@dataclass(frozen=True)
class _Scale:
    value: float
    rel_sigma: float


def _expected_scale(master: MasterDark, previous: MasterDark, law: MatchingConfig) -> _Scale:
    """``s`` and its relative uncertainty: each set's mean temperature reading (one reading's
    ``matching.temp_reading_sigma_c`` over the frames' count), and the doubling temperature's
    prior (``matching.doubling_temp_c`` +- ``doubling_temp_sigma_c``) when the temperatures
    differ."""
    m, p = master.meta, previous.meta
    t_ratio = 1.0
    if m.exptime_s and p.exptime_s and math.isfinite(m.exptime_s) and math.isfinite(p.exptime_s):
        t_new = m.exptime_s - (m.bias_exptime_s or 0.0)
        t_old = p.exptime_s - (p.bias_exptime_s or 0.0)
        t_ratio = t_new / t_old if t_old > 0 else 1.0
    if m.temp_c is None or p.temp_c is None:
        return _Scale(t_ratio, 0.0)
    d = law.doubling_temp_c
    dt = m.temp_c - p.temp_c
    reading = law.temp_reading_sigma_c
    sigma_t = reading * math.sqrt(1.0 / max(m.n_frames, 1) + 1.0 / max(p.n_frames, 1))
    ln2 = math.log(2.0)
    rel = combine_spread(ln2 / d * sigma_t, ln2 * abs(dt) / d**2 * law.doubling_temp_sigma_c)
    return _Scale(t_ratio * 2.0 ** (dt / d), rel)


def _level_gate(
    level: float, spread: float, with_bias: bool, j_new: float, j_old: float, p: float
) -> Metric:
    return significance_gate(
        "level_shift_sigma",
        level / spread if spread > 0 else math.nan,
        expected=0.0,
        spread=1.0,
        reason=VerifyReason.LEVEL_SHIFT,
        false_alarm=p,
        detail=("bias removed" if with_bias else "raw levels (no bias)")
        + f"; {level:+.3g} ADU against a spread of {spread:.2g} ADU, frame jitter "
        f"{j_new:.2g} / {j_old:.2g} ADU",
    )


def _clip_bias(master: MasterDark, rows: slice) -> float:
    """Bound on the level bias of a clipped mean (ADU): the share of clipped values times the
    clip distance in frame noise. Skewed (Poisson) pixels and cosmic rays are clipped more on
    one side, and a stack of few frames clips more often around its noisy median."""
    params = (master.provenance or {}).get("params") or {}
    n_high = float(master.n_high.sum(dtype=np.int64))
    n_low = float(master.n_low.sum(dtype=np.int64))
    total = n_high + n_low + float(master.n_used.sum(dtype=np.int64))
    if total <= 0 or not params.get("max_iters", 5):
        return 0.0
    k = max(float(params.get("sigma_high", 3.0)), float(params.get("sigma_low", 3.0)))
    var = np.square(master.uncertainty[rows].astype(np.float64)) * master.n_used[rows]
    sigma = math.sqrt(float(np.nanmedian(var))) if np.isfinite(var).any() else 0.0
    return (n_high + n_low) / total * k * sigma


def _tile_flat(values: np.ndarray) -> np.ndarray:
    """A per-tile map flattened like :func:`_tile_split` (its finite split values)."""
    return values.ravel()


def _tiles(image: np.ndarray, tile: int) -> np.ndarray | None:
    """The whole ``tile x tile`` tiles of ``image``: ``(ty, tx, tile, tile)``."""
    img = np.asarray(image, dtype=np.float32)
    ny, nx = img.shape
    ty, tx = ny // tile, nx // tile
    if ty == 0 or tx == 0:
        return None
    return img[: ty * tile, : tx * tile].reshape(ty, tile, tx, tile).transpose(0, 2, 1, 3)


def _tile_levels(image: np.ndarray, tile: int) -> np.ndarray:
    """Interquartile mean of every whole tile (robust like a median, continuous on lattice
    data): the low-frequency map."""
    grid = _tiles(image, tile)
    if grid is None:
        return np.zeros((0, 0))
    ty, tx = grid.shape[:2]
    return iq_mean(grid.reshape(ty, tx, -1), 2)


def _tile_split(image: np.ndarray, tile: int) -> np.ndarray:
    """Per tile: the level of its even rows minus that of its odd rows (flattened, NaN where a
    half is empty). Four times the variance of the tile's level from pixel and row noise;
    smooth structure cancels."""
    grid = _tiles(image, tile)
    if grid is None:
        return np.zeros(0)
    ty, tx = grid.shape[:2]
    even = iq_mean(grid[:, :, 0::2, :].reshape(ty, tx, -1), 2)
    odd = iq_mean(grid[:, :, 1::2, :].reshape(ty, tx, -1), 2)
    return (even - odd).ravel()


def _hot_free(image: np.ndarray, k: float = 6.0) -> np.ndarray:
    """``image`` with pixel-scale outliers (residual hot pixels, cosmics) set to NaN."""
    hf = image - neighbour_median(image)
    s = robust_std(hf)
    out = image.astype(np.float32, copy=True)
    if math.isfinite(s) and s > 0:
        with np.errstate(invalid="ignore"):
            out[np.abs(hf) > k * s] = np.nan
    return out


def band_gate(name: str, ratio: float, length: int, config: VerifyConfig, detail: str) -> Metric:
    """A row/column band ratio against 1 (log-normal null, one-sided: extra pattern)."""
    return significance_gate(
        name,
        ratio,
        expected=1.0,
        spread=band_ratio_spread(length, config.gate_false_alarm),
        reason=VerifyReason.BANDING_CHANGED,
        false_alarm=config.gate_false_alarm,
        side="upper",
        detail=detail,
    )


def _stable_probability(n: int, p: np.ndarray) -> np.ndarray:
    """P(hot in at least 90 % of ``n`` frames) for per-frame probabilities ``p``."""
    from darkflow.stats._dist import binom_sf  # scipy.stats' binom.sf, without its import

    need = math.ceil(HOT_PERSISTENT * n - 1e-9)
    return binom_sf(need - 1, n, p)


def _hot_margins(master: MasterDark, lattice: tuple[float, float]) -> tuple[float, int] | None:
    """The combine's hot threshold above each frame's level (ADU; their mean) and the frames
    behind the persistence; ``None`` when the master does not record them. On integer data
    saved in steps of ``step`` ADU (``lattice = (origin, step)``) a value exceeds a threshold
    when it reaches the next lattice point: the continuous equivalent is half a step below it."""
    prov = master.provenance or {}
    levels = np.array([v if v is not None else np.nan for v in prov.get("frame_levels") or []])
    thr = np.array([v if v is not None else np.nan for v in prov.get("hot_thresholds") or []])
    if levels.size == 0 or levels.size != thr.size:
        return None
    origin, step = lattice
    if step > 0:
        thr = origin + step * np.floor((thr - origin) / step) + 0.5 * step
    margin = thr - levels
    margin = margin[np.isfinite(margin)]
    return (float(np.mean(margin)), int(margin.size)) if margin.size else None


def _hot_overlap_gate(
    master: MasterDark,
    previous: MasterDark,
    rows: slice,
    s: float,
    config: VerifyConfig,
    lattice: tuple[float, float] = (0.0, 0.0),
):
    """Jaccard overlap of the stable hot pixels against its expectation under "same pattern".

    A pixel is hot in a frame when it exceeds the frame's level by the combine's margin
    (``hot_sigma`` x the frame's spread; recorded per frame). Its excess over the level is
    estimated from both masters (the previous one scaled by ``s``, weighted by frame counts),
    its per-frame noise from their planes; then each set's chance to call it stable (hot in
    90 % of its frames) follows, and the overlap's expectation and spread (Bernoulli
    variances, delta method).
    """
    m_new, m_old = _hot_margins(master, lattice), _hot_margins(previous, lattice)
    h_new = master.hot_persistence[rows]
    h_old = previous.hot_persistence[rows]
    stable_new, stable_old = h_new >= HOT_PERSISTENT, h_old >= HOT_PERSISTENT
    inter = int(np.count_nonzero(stable_new & stable_old))
    union = int(np.count_nonzero(stable_new | stable_old))
    overlap = inter / union if union else 1.0
    if m_new is None or m_old is None:
        return not_measured("hot_overlap", None, "hot thresholds not recorded"), overlap
    (marg_new, n_new), (marg_old, n_old) = m_new, m_old
    some = (h_new > 0) | (h_old > 0)
    lv_new = float(np.nanmedian(master.provenance.get("frame_levels")))
    lv_old = float(np.nanmedian(previous.provenance.get("frame_levels")))
    e_new = master.data[rows][some].astype(np.float64) - lv_new
    e_old = s * (previous.data[rows][some].astype(np.float64) - lv_old)
    excess = (n_new * e_new + n_old * e_old) / (n_new + n_old)
    var_new = np.square(master.uncertainty[rows][some].astype(np.float64)) * np.maximum(
        master.n_used[rows][some], 1
    )
    var_old = np.square(previous.uncertainty[rows][some].astype(np.float64)) * np.maximum(
        previous.n_used[rows][some], 1
    )
    quant = lattice[1] ** 2 / 12.0  # the lattice's own noise is in the variances
    sd_new = np.sqrt(np.maximum(var_new - quant, 0.25 * var_new + 1e-12))
    sd_old = np.sqrt(np.maximum(var_old - quant, 0.25 * var_old + 1e-12))
    from darkflow.stats._dist import norm_sf  # scipy.stats' norm.sf, without its import

    pn = _stable_probability(n_new, norm_sf((marg_new - excess) / sd_new))
    po = _stable_probability(n_old, norm_sf((marg_old - excess / s) / sd_old))
    q, u = pn * po, pn + po - pn * po
    e_i, e_u = float(q.sum()), float(u.sum())
    if e_u < 5:
        return not_measured("hot_overlap", None, f"{union} stable hot pixels: too few"), overlap
    j0 = e_i / e_u
    var_i, var_u = float(np.sum(q * (1 - q))), float(np.sum(u * (1 - u)))
    cov = float(np.sum(q * (1 - u)))
    var_j = var_i / e_u**2 + e_i**2 * var_u / e_u**4 - 2 * e_i * cov / e_u**3
    gate = significance_gate(
        "hot_overlap",
        overlap,
        expected=j0,
        spread=math.sqrt(max(var_j, 1e-12)),
        reason=VerifyReason.HOT_PIXELS_CHANGED,
        false_alarm=config.gate_false_alarm,
        side="lower",
        detail=f"{inter} of {union} stable hot pixels shared, {j0:.3f} expected",
    )
    return gate, overlap


def previous_gates(
    master: MasterDark,
    previous: MasterDark,
    bias: MasterDark | None,
    rows: slice,
    config: VerifyConfig,
    *,
    previous_bias: MasterDark | None = None,
    lattice: tuple[float, float] = (0.0, 0.0),
    level_known: bool = True,
    dark_law: MatchingConfig | None = None,
) -> tuple[list[Metric], dict[str, float | None]]:
    """Fixed-pattern stability gates of ``master`` against ``previous`` (module docstring);
    ``lattice``: origin and step of the raw values (integer data saved in steps of a few ADU),
    ``(0, 0)`` when unknown. ``level_known``: each master's level is measured against its own
    night's bias (else the level change between the nights holds the bias drift, which is not
    a fault, and the level-shift gate is not measured). ``dark_law``: the configured dark-current
    law and temperature reading noise of ``[matching]`` (its defaults when ``None``)."""
    if previous.shape != master.shape:
        raise IncompatibleFramesError(
            f"previous master shape {previous.shape} != master shape {master.shape}"
        )
    p = config.gate_false_alarm
    scale = _expected_scale(master, previous, dark_law or MatchingConfig())
    s = scale.value
    new_d = _dark_signal(master, bias)
    old_d = _dark_signal(previous, previous_bias if previous_bias is not None else bias)
    values: dict[str, float | None] = {"previous_expected_scale": s}
    if new_d is None or old_d is None:
        if abs(s - 1.0) > 0.02 or not (master.meta.includes_bias and previous.meta.includes_bias):
            return [not_measured("dark_scale_change", VerifyReason.PREVIOUS_NOT_COMPARABLE)], values
        new_d, old_d, with_bias = master.data.astype(np.float32), previous.data, False
    else:
        with_bias = True
    new_d, old_scaled = new_d[rows], (np.float32(s) * old_d[rows]).astype(np.float32)
    delta = new_d - old_scaled
    noise = np.sqrt(
        np.square(master.uncertainty[rows])
        + np.float32(s * s) * np.square(previous.uncertainty[rows])
    )
    # the change is fitted on the frame-weighted mean of both patterns: its noise is then
    # uncorrelated with the change's (weights inverse to the two masters' variances), so
    # neither the selection of hot pixels nor the fit is biased by either master's noise
    f_new = master.meta.n_frames / (master.meta.n_frames + previous.meta.n_frames / (s * s))
    template = np.float32(f_new) * new_d + np.float32(1.0 - f_new) * old_scaled
    template_local = neighbour_median(template)
    fit = hot_scale_fit(delta, template, noise, template_local=template_local)
    a = fit.alpha if math.isfinite(fit.alpha) else 0.0
    beta = a / (1.0 - a * f_new)  # the change relative to the previous pattern
    # the change's hot-pixel part removed where ``beta`` was measured: the pixels the fit could
    # select. Elsewhere the high band holds no hot pixels but a bias's column and pixel
    # pattern (a master without bias removed), which ``beta`` does not describe: scaled by
    # a beta that is only noise it would put that pattern into the change's bands (two
    # clean biases of one camera read a column change ratio of 2.7)
    old_local = neighbour_median(old_scaled)
    hot, _ = fit_candidates(template - template_local, noise)
    old_hf_removed = delta - np.where(hot, np.float32(beta) * (old_scaled - old_local), 0)
    clean = _hot_free(old_hf_removed)
    bands = band_energies(clean, tile=TILE, low_reference=_hot_free(old_scaled))
    typical_old = float(np.nanmedian(old_scaled))
    level = float(np.nanmedian(delta))
    if with_bias:
        level -= beta * typical_old
    metrics: list[Metric] = []

    # hot-pixel scale: the fit's own error (inflated by its misfit) and the uncertainty of s
    fit_sigma = (
        fit.sigma * math.sqrt(max(fit.red_chi2, 1.0)) if math.isfinite(fit.red_chi2) else fit.sigma
    )
    if math.isfinite(fit.alpha) and fit.n >= 5:
        metrics.append(
            significance_gate(
                "dark_scale_change",
                fit.alpha,
                expected=0.0,
                spread=combine_spread(fit_sigma, scale.rel_sigma * (1.0 + fit.alpha)),
                reason=VerifyReason.DARK_SCALE_CHANGED,
                false_alarm=p,
                detail=f"{fit.n} hot pixels, change {beta:+.3g} beyond the expected scale {s:.3f} "
                f"+- {scale.rel_sigma * s:.2g} (fitted on the weighted mean pattern)",
            )
        )

    # level: what the hot-pixel scale does not explain, against both masters' level noise
    pix_sigma = (
        bands.pixel_sigma if math.isfinite(bands.pixel_sigma) else float(np.nanmedian(noise))
    )
    n_pix = int(np.count_nonzero(np.isfinite(delta)))
    j_new, j_old = frame_jitter(master), frame_jitter(previous)
    level_spread = combine_spread(
        median_sd(pix_sigma, n_pix),
        (fit_sigma if math.isfinite(fit_sigma) else 0.0) * abs(typical_old) if with_bias else 0.0,
        j_new / math.sqrt(max(master.meta.n_frames, 1)),
        s * j_old / math.sqrt(max(previous.meta.n_frames, 1)),
        _clip_bias(master, rows),
        s * _clip_bias(previous, rows),
    )
    if not level_known:
        metrics.append(
            not_measured(
                "level_shift_sigma",
                None,
                "no bias of each master's own night: a level change between nights cannot be told "
                "from bias drift",
            )
        )
    elif abs(math.log(max(s, 1e-6))) > SAME_SCALE:
        # the typical level holds signal that does not follow the dark-current law (amp glow
        # with temperature, a dark-vs-bias offset with exposure): at another scale its change
        # cannot be told from a shift (the hot-pixel scale above is the comparison that holds)
        metrics.append(
            not_measured(
                "level_shift_sigma",
                None,
                f"previous master scaled x{s:.3g}: the typical level mixes thermal and other signal",
            )
        )
    else:
        metrics.append(_level_gate(level, level_spread, with_bias, j_new, j_old, p))

    # low frequencies: RMS of the tile-level map (after c + g x the previous master's smooth
    # structure) against the noise of each tile median: its shape from the masters' own
    # uncertainty in the tile (glow corners are noisier), its scale from the medians of each
    # tile's even and odd rows (pixel and row noise, no smooth structure); an F test (the MAD of
    # the split differences has ~37 % efficiency)
    tiles = _tile_levels(clean, TILE)
    ref = _tile_levels(_hot_free(old_scaled), TILE)
    shape = np.sqrt(_tile_levels(np.where(np.isfinite(clean), noise * noise, np.nan), TILE))
    split = _tile_split(clean, TILE) / _tile_flat(shape)
    ok = np.isfinite(tiles) & np.isfinite(ref) & np.isfinite(shape) & (shape > 0)
    n_tiles = int(np.count_nonzero(ok))
    low_sigma = math.nan
    split = split[np.isfinite(split)]
    scale_sd = robust_std(split) / 2.0 if split.size else math.nan
    if n_tiles >= 6 and math.isfinite(scale_sd) and scale_sd > 0:
        y = tiles[ok].astype(np.float64)
        w = 1.0 / shape[ok].astype(np.float64)
        a = np.column_stack([np.ones(y.size), ref[ok].astype(np.float64)])
        coef, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
        resid = (y - a @ coef) * w
        low_sigma = math.sqrt(float(np.sum(resid**2)) / (n_tiles - 2)) / scale_sd
        metrics.append(
            significance_gate(
                "low_freq_change_sigma",
                low_sigma,
                expected=1.0,
                spread=f_upper_spread(n_tiles - 2, 0.37 * split.size, p),
                reason=VerifyReason.LOW_FREQUENCY_CHANGED,
                false_alarm=p,
                side="upper",
                detail=f"{n_tiles} tiles; 5-95 % range {bands.low_amplitude:.3g} ADU",
            )
        )
    else:
        metrics.append(not_measured("low_freq_change_sigma", None, f"{n_tiles} tiles"))

    metrics.append(
        band_gate(
            "column_change_ratio",
            bands.column_ratio,
            clean.shape[1],
            config,
            "column band of the change",
        )
    )

    if abs(math.log(max(s, 1e-6))) <= SAME_SCALE:
        hot, overlap = _hot_overlap_gate(master, previous, rows, s, config, lattice)
    else:  # the persistence threshold is relative to each frame's noise: other populations
        hot = not_measured("hot_overlap", None, f"previous master scaled x{s:.3g}")
        overlap = None
    metrics.append(hot)
    values.update(
        dark_scale_change=beta if math.isfinite(fit.alpha) else None,
        dark_scale_fit=fit.alpha if math.isfinite(fit.alpha) else None,
        dark_scale_change_sigma=fit_sigma if math.isfinite(fit_sigma) else None,
        previous_scale_rel_sigma=scale.rel_sigma,
        level_shift_adu=level,
        level_shift_sigma=level / level_spread if level_spread > 0 else None,
        low_freq_change_adu=bands.low_amplitude,
        low_freq_change_sigma=low_sigma,
        row_change_ratio=bands.row_ratio,
        column_change_ratio=bands.column_ratio,
        hot_overlap=overlap,
    )
    return metrics, values
