"""Exposure: scale, interpolate or reject — measured per pixel population.

A dark master holds three things that behave differently:

* the **bias** (offset and its fixed pattern): the same at every exposure and temperature;
* the **amp glow** (a smooth, bright region near the readout amplifiers): grows with exposure,
  hardly with temperature;
* the **dark current** of normal and hot pixels: grows with exposure and doubles every few °C.

This module measures those populations on masters (numpy only, no IO) and decides what the
exposure law of a configuration allows:

* :func:`block_grid` / :func:`upsample_grid` — the smooth level of an image (medians of
  ``block_px`` blocks, bilinear back to full size); hot pixels are the *excess* over it, the
  amp-glow region the blocks well above the flat dark-current level;
* :func:`choose_reference` — the configuration's hot-pixel set (pixels standing out of their
  5x5 neighbourhood) and glow cells, taken once from its strongest master so every master is
  measured on the same pixels;
* :func:`summarize_master` — per-master levels (:class:`MasterSummary`);
* :func:`fit_glow_model` / :func:`glow_map` — the glow separated from the dark current, from
  masters at several temperatures (per block: ``level / t = glow + D * 2**(T / T_d)``) or, with
  one temperature, as the excess of the glow blocks over the flat level;
* :func:`measure_linearity` — the exposure law per population (:class:`LinearityReport`):
  *proportional* through the bias (exposure scaling demonstrated), *affine* (linear with an
  offset: interpolation between bracketing bins demonstrated, scaling not), *nonlinear*, or
  *unproven* (one exposure bin, or no bias to test against). A deviation counts only when it
  exceeds both ``linearity_tolerance`` of the signal and the per-pixel noise of the master. The
  hot pixels are also binned by signal to find a level above which the response stops being
  linear (``nonlinear_above_adu``): pixels above it are flagged and never trusted when scaled.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from darkflow.config import ScalingConfig
from darkflow.exceptions import IncompatibleFramesError
from darkflow.model import MasterDark
from darkflow.stats import mad_std
from darkflow.thermal import DarkCurrentLaw

__all__ = [
    "GlowModel",
    "LinearityReport",
    "LinearityStatus",
    "MasterSummary",
    "PopulationLinearity",
    "Reference",
    "block_grid",
    "choose_reference",
    "dark_signal",
    "fit_glow_model",
    "glow_block",
    "glow_map",
    "local_median",
    "measure_linearity",
    "sample_grid",
    "summarize_master",
    "upsample_grid",
]


class LinearityStatus(StrEnum):
    PROPORTIONAL = "proportional"  # S = rate * t through the bias: scaling and interpolation
    AFFINE = "affine"  # S = offset + rate * t on >= 3 bins: interpolation only
    AFFINE_UNPROVEN = "affine_unproven"  # 2 bins, not proportional: interpolation unproven
    NONLINEAR = "nonlinear"  # neither law fits: scaling disabled, interpolation unproven
    UNPROVEN = "unproven"  # one exposure bin, or nothing to test against


# ----------------------------------------------------------------------------- smooth levels
def block_grid(image: np.ndarray, block: int) -> np.ndarray:
    """Median of each full ``block x block`` block (partial edge blocks are left out)."""
    ny, nx = image.shape
    b = max(1, min(block, ny, nx))
    gy, gx = ny // b, nx // b
    cut = np.asarray(image[: gy * b, : gx * b], dtype=np.float32)
    cells = cut.reshape(gy, b, gx, b).transpose(0, 2, 1, 3).reshape(gy, gx, b * b)
    if np.isfinite(cells).all():
        return np.median(cells, axis=-1).astype(np.float64)
    with warnings.catch_warnings():  # all-NaN blocks are filled below
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmedian(np.where(np.isfinite(cells), cells, np.nan), axis=-1)
    return np.where(np.isfinite(out), out, np.nanmedian(out) if np.isfinite(out).any() else 0.0)


def _axis_weights(n_cells: int, block: int, coords: np.ndarray, extrapolate: bool = False):
    centers = np.arange(n_cells) * block + (block - 1) / 2.0
    if n_cells == 1:
        zeros = np.zeros(coords.shape, dtype=np.int64)
        return zeros, zeros, np.zeros(coords.shape)
    i0 = np.clip(np.searchsorted(centers, coords) - 1, 0, n_cells - 2)
    lo, hi = (-1.0, 2.0) if extrapolate else (0.0, 1.0)
    w = np.clip((coords - centers[i0]) / block, lo, hi)
    return i0, i0 + 1, w


def upsample_grid(
    grid: np.ndarray, shape: tuple[int, int], block: int, *, extrapolate: bool = False
) -> np.ndarray:
    """Bilinear interpolation of a block grid back to ``shape``.

    Beyond the outermost block centres the value is held constant, or continued linearly with
    ``extrapolate=True`` (a steep amp-glow corner is otherwise flattened).
    """
    ny, nx = shape
    b = max(1, min(block, ny, nx))
    y0, y1, wy = _axis_weights(grid.shape[0], b, np.arange(ny, dtype=np.float64), extrapolate)
    x0, x1, wx = _axis_weights(grid.shape[1], b, np.arange(nx, dtype=np.float64), extrapolate)
    rows = grid[:, x0] * (1.0 - wx) + grid[:, x1] * wx  # (gy, nx)
    out = rows[y0, :] * (1.0 - wy)[:, None] + rows[y1, :] * wy[:, None]
    return out.astype(np.float32)


def sample_grid(grid: np.ndarray, block: int, shape: tuple[int, int], flat_index: np.ndarray):
    """:func:`upsample_grid` evaluated only at some pixels (flat indices)."""
    ny, nx = shape
    b = max(1, min(block, ny, nx))
    yy, xx = np.divmod(np.asarray(flat_index, dtype=np.int64), nx)
    y0, y1, wy = _axis_weights(grid.shape[0], b, yy.astype(np.float64))
    x0, x1, wx = _axis_weights(grid.shape[1], b, xx.astype(np.float64))
    top = grid[y0, x0] * (1 - wx) + grid[y0, x1] * wx
    bottom = grid[y1, x0] * (1 - wx) + grid[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def dark_signal(master: MasterDark, bias: MasterDark | None) -> tuple[np.ndarray, bool]:
    """The master with the bias removed when possible: ``(array, bias_removed)``."""
    data = np.asarray(master.data, dtype=np.float32)
    if not master.meta.includes_bias:
        return data, True
    if bias is not None and bias.data.shape == data.shape:
        return data - np.asarray(bias.data, dtype=np.float32), True
    return data, False


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean(values[mask], dtype=np.float64)) if mask.any() else math.nan


def _robust_sigma(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    if values.size > 200_000:  # a regular subsample is plenty for a scale estimate
        values = values[:: values.size // 200_000]
    return mad_std(values)


def _flat_level(grid: np.ndarray) -> tuple[float, float]:
    """Flat (non-glow) level of a grid and the scatter of its cells."""
    level = float(np.percentile(grid, 10))
    low = grid[grid <= np.median(grid)]
    scatter = mad_std(low, center=level) if low.size else 0.0
    return level, max(scatter, 1e-6)


def glow_block(block: int) -> int:
    """Block size of the glow maps: half the level-map block (a glow corner is steep)."""
    return max(2, block // 2)


def _glow_cells(grid: np.ndarray, bias_removed: bool) -> np.ndarray:
    level, scatter = _flat_level(grid)
    thr = 5.0 * scatter + (0.05 * abs(level) if bias_removed else 0.0)
    return (grid - level) > thr


# ----------------------------------------------------------------------------- reference
@dataclass(frozen=True, eq=False)
class Reference:
    """Pixels every master of a configuration is measured on (from its strongest master)."""

    shape: tuple[int, int]
    block: int
    hot_index: np.ndarray  # flat indices of the hot-pixel set
    glow_cells: np.ndarray  # bool grid: the amp-glow region
    master_id: str = ""

    def glow_pixels(self) -> np.ndarray:
        """The glow cells as a full-size pixel mask (edge pixels take their nearest cell)."""
        gy, gx = self.glow_cells.shape
        ny, nx = self.shape
        rows = np.minimum(np.arange(ny) // self.block, gy - 1)
        cols = np.minimum(np.arange(nx) // self.block, gx - 1)
        return self.glow_cells[np.ix_(rows, cols)]

    def __repr__(self) -> str:
        return (
            f"<Reference {self.shape} block={self.block} hot={self.hot_index.size} "
            f"glow_cells={int(self.glow_cells.sum())}/{self.glow_cells.size}>"
        )


def local_median(image: np.ndarray, flat_index: np.ndarray, radius: int = 2) -> np.ndarray:
    """Median of the ``(2 radius + 1)²`` neighbourhood of some pixels (windows clipped at edges).

    Cheap for a few thousand pixels; the local level under a hot pixel even on a steep
    amp-glow gradient, where a block level is off.
    """
    ny, nx = image.shape
    yy, xx = np.divmod(np.asarray(flat_index, dtype=np.int64), nx)
    offsets = np.arange(-radius, radius + 1)
    rows = np.clip(yy[:, None, None] + offsets[None, :, None], 0, ny - 1)
    cols = np.clip(xx[:, None, None] + offsets[None, None, :], 0, nx - 1)
    window = np.asarray(image, dtype=np.float32)[rows, cols].reshape(len(yy), -1)
    return np.median(window, axis=1).astype(np.float64)


def _unsaturated(master: MasterDark) -> np.ndarray:
    ok = np.isfinite(master.data)
    if master.saturated is not None:
        ok &= ~master.saturated.astype(bool)
    sat = master.provenance.get("sat_level") if isinstance(master.provenance, dict) else None
    if isinstance(sat, int | float) and math.isfinite(sat) and sat > 0:
        ok &= master.data < 0.8 * float(sat)
    return ok


def choose_reference(
    master: MasterDark, bias: MasterDark | None, config: ScalingConfig | None = None,
    *, master_id: str = "",
) -> Reference:  # fmt: skip
    """Hot-pixel set and glow cells of a configuration, measured on ``master``.

    Hot pixels: excess over the smooth level above ``hot_sigma`` robust sigmas, not near
    saturation, stable (``hot_persistence >= 0.5`` when the plane is filled); at most
    ``max_hot_pixels`` of them, evenly spread over the candidates.
    """
    cfg = config or ScalingConfig()
    signal, removed = dark_signal(master, bias)
    block = max(2, min(cfg.block_px, *signal.shape))
    grid = block_grid(signal, block)
    excess = signal - upsample_grid(grid, signal.shape, block)
    ok = _unsaturated(master)
    sigma = _robust_sigma(excess[ok])
    threshold = max(cfg.hot_sigma * sigma, 1e-6)
    cand = ok & (excess > threshold)
    persistence = master.hot_persistence
    if persistence is not None and np.any(persistence > 0):
        cand &= persistence >= 0.5
    idx = np.flatnonzero(cand)
    if idx.size:  # keep pixels that stand out of their 5x5 neighbourhood (not a glow slope)
        local = signal.reshape(-1)[idx] - local_median(signal, idx)
        idx = idx[local > threshold]
    if idx.size > cfg.max_hot_pixels:
        idx = idx[np.linspace(0, idx.size - 1, cfg.max_hot_pixels).astype(np.int64)]
    return Reference(signal.shape, block, idx, _glow_cells(grid, removed), master_id)


# ----------------------------------------------------------------------------- summaries
@dataclass(frozen=True, eq=False)
class MasterSummary:
    """What the index keeps of one master after reading its pixels once.

    Levels are in ADU of the master (its own exposure): ``level_adu`` is the flat level of the
    non-glow blocks (dark signal when ``bias_removed``, bias included otherwise),
    ``glow_adu`` the median excess of the glow blocks over it, ``hot_excess_adu`` the median
    excess of the hot set over the local level, ``signal_rms_adu`` the RMS dark signal (bias
    removed; without a bias, the RMS deviation from the flat level), ``noise_adu`` the median
    of the uncertainty plane, ``transient_rms_adu`` the RMS (over all pixels) of what pixels
    that were high in only some input frames hold above the local level (cosmic-ray or flicker
    residue the clipping could not remove, typical of masters of few frames).
    """

    master_id: str
    exptime_s: float
    temp_c: float | None
    n_frames: int
    bias_removed: bool
    noise_adu: float
    level_adu: float
    glow_adu: float | None
    hot_excess_adu: float | None
    signal_rms_adu: float
    saturated_fraction: float
    n_hot: int
    n_glow_cells: int
    transient_rms_adu: float = 0.0
    grid: np.ndarray | None = field(default=None, repr=False)  # glow_block grid of the signal
    hot_values: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        keys = ("master_id", "exptime_s", "temp_c", "n_frames", "bias_removed", "noise_adu",
                "level_adu", "glow_adu", "hot_excess_adu", "signal_rms_adu",
                "saturated_fraction", "n_hot", "n_glow_cells", "transient_rms_adu")  # fmt: skip
        return {k: getattr(self, k) for k in keys}


def summarize_master(
    master: MasterDark, bias: MasterDark | None, reference: Reference, *, master_id: str = ""
) -> MasterSummary:
    """Measure one master on the configuration's reference pixels."""
    signal, removed = dark_signal(master, bias)
    if signal.shape != reference.shape:
        raise IncompatibleFramesError(
            f"master shape {signal.shape} != shape {reference.shape} of its configuration"
        )
    grid = block_grid(signal, reference.block)
    # means, not medians: the mean of a fixed pixel set is exactly proportional to exposure
    finite = np.isfinite(signal)
    transient = 0.0
    steady = finite
    hp = master.hot_persistence
    if hp is not None and hp.shape == signal.shape and np.any(hp > 0):
        # high in some input frames only and kept: cosmic-ray or flicker residue the clipping
        # could not remove (few frames); its RMS adds to the master's noise for matching. The
        # population levels keep those pixels: which pixels are "high" depends on the exposure
        # (glow, warm pixels), and a fixed pixel set is what makes a mean exactly linear.
        idx = np.flatnonzero(((hp > 0) & (hp < 0.75) & finite).reshape(-1))
        if idx.size:
            local = sample_grid(grid, reference.block, reference.shape, idx)
            excess = signal.reshape(-1)[idx].astype(np.float64) - local
            transient = float(np.sqrt(np.sum(np.square(np.maximum(excess, 0.0))) / signal.size))
    glow_px = reference.glow_pixels()
    flat = steady & ~glow_px
    level = _mean(signal, flat if flat.any() else finite)
    glow = None
    if reference.glow_cells.any() and (steady & glow_px).any():
        glow = _mean(signal, steady & glow_px) - level
    hot_values = hot = None
    if reference.hot_index.size:
        local = local_median(signal, reference.hot_index)
        hot_values = signal.reshape(-1)[reference.hot_index].astype(np.float64) - local
        hot = float(np.median(hot_values))
    centred = signal[finite] if removed else signal[finite] - level
    rms = float(np.sqrt(np.mean(np.square(centred, dtype=np.float64)))) if centred.size else 0.0
    unc = master.uncertainty[np.isfinite(master.uncertainty)]
    meta = master.meta
    sat = 0.0 if master.saturated is None else float(np.mean(master.saturated))
    return MasterSummary(
        master_id=master_id,
        exptime_s=float(meta.exptime_s),
        temp_c=meta.temp_c,
        n_frames=int(meta.n_frames),
        bias_removed=removed,
        noise_adu=float(np.median(unc)) if unc.size else 0.0,
        level_adu=level,
        glow_adu=glow,
        hot_excess_adu=hot,
        signal_rms_adu=rms,
        saturated_fraction=sat,
        n_hot=int(reference.hot_index.size),
        n_glow_cells=int(reference.glow_cells.sum()),
        transient_rms_adu=transient,
        grid=block_grid(signal, glow_block(reference.block)),
        hot_values=hot_values,
    )


# ----------------------------------------------------------------------------- glow
@dataclass(frozen=True, eq=False)
class GlowModel:
    """Amp-glow rate (ADU/s) per block of a configuration, separated from the dark current."""

    rate_grid: np.ndarray
    block: int
    shape: tuple[int, int]
    method: str  # "decomposed" (several temperatures) | "flat_level" (one temperature)
    n_masters: int

    def adu(self, exposure_s: float) -> np.ndarray:
        """Full-size glow map (ADU) for an effective exposure."""
        glow = upsample_grid(self.rate_grid, self.shape, self.block, extrapolate=True)
        return np.maximum(glow, 0.0) * np.float32(exposure_s)

    def __repr__(self) -> str:
        return f"<GlowModel {self.method} n={self.n_masters} peak={self.rate_grid.max():.3g} ADU/s>"


def fit_glow_model(
    summaries: Sequence[MasterSummary],
    law: DarkCurrentLaw,
    reference: Reference,
    *,
    bias_exptime_s: float = 0.0,
    min_ratio: float = 1.1,
) -> GlowModel | None:
    """Per block, ``level / t = glow + D * 2**((T - T0) / T_d)`` over masters at several T.

    Needs bias-removed masters with a temperature whose dark-current factors differ by at least
    ``min_ratio``; returns ``None`` otherwise (callers then use the single-master estimate of
    :func:`glow_map`).
    """
    use = [
        s for s in summaries
        if s.grid is not None and s.bias_removed and s.temp_c is not None
        and s.exptime_s - bias_exptime_s > 0
    ]  # fmt: skip
    if len(use) < 2:
        return None
    t0 = float(np.median([s.temp_c for s in use]))
    x = np.array([law.factor(s.temp_c - t0) for s in use])
    if x.max() / x.min() < min_ratio:
        return None
    y = np.stack([s.grid / (s.exptime_s - bias_exptime_s) for s in use])  # (k, gy, gx)
    xm = x.mean()
    slope = np.tensordot(x - xm, y - y.mean(axis=0), axes=(0, 0)) / np.sum((x - xm) ** 2)
    # the temperature-independent part of each block: glow, wherever it is (no mask needed)
    glow = np.maximum(y.mean(axis=0) - slope * xm, 0.0)
    return GlowModel(glow, glow_block(reference.block), reference.shape, "decomposed", len(use))


def glow_map(
    master: MasterDark,
    bias: MasterDark | None,
    *,
    glow_model: GlowModel | None = None,
    bias_exptime_s: float = 0.0,
    block: int = 16,
) -> np.ndarray:
    """Amp glow (ADU) contained in ``master`` (bias removed): from the model, else measured."""
    t_eff = float(master.meta.exptime_s) - (
        float(master.meta.bias_exptime_s or 0.0) if not master.meta.includes_bias
        else bias_exptime_s
    )  # fmt: skip
    if glow_model is not None and glow_model.shape == master.data.shape:
        return glow_model.adu(max(t_eff, 0.0))
    signal, removed = dark_signal(master, bias)
    b = max(2, min(glow_block(block), *signal.shape))
    grid = block_grid(signal, b)
    level, _ = _flat_level(grid)
    cells = _glow_cells(grid, removed)
    glow = upsample_grid(np.where(cells, grid - level, 0.0), signal.shape, b, extrapolate=True)
    return np.maximum(glow, 0.0)


# ----------------------------------------------------------------------------- linearity
@dataclass(frozen=True)
class PopulationLinearity:
    """Exposure law of one pixel population (levels temperature-corrected to ``temp_c``)."""

    name: str  # normal | hot | glow | raw
    exposures_s: tuple[float, ...]
    levels_adu: tuple[float, ...]
    status: LinearityStatus
    deviation: float | None  # largest relevant deviation from the proportional law
    affine_deviation: float | None  # ... from the affine law (>= 3 bins)
    offset_adu: float | None  # intercept of the affine fit

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exposures_s": list(self.exposures_s),
            "levels_adu": [round(v, 4) for v in self.levels_adu],
            "status": str(self.status),
            "deviation": self.deviation,
            "affine_deviation": self.affine_deviation,
            "offset_adu": self.offset_adu,
        }


_ORDER = [LinearityStatus.PROPORTIONAL, LinearityStatus.AFFINE, LinearityStatus.UNPROVEN,
          LinearityStatus.AFFINE_UNPROVEN, LinearityStatus.NONLINEAR]  # fmt: skip


@dataclass(frozen=True)
class LinearityReport:
    """What the exposure law of a configuration allows (see the module docs)."""

    config_signature: str
    status: LinearityStatus
    exposures_s: tuple[float, ...]
    bias_available: bool
    populations: tuple[PopulationLinearity, ...] = ()
    deviation: float | None = None  # largest proportional deviation over populations
    nonlinear_above_adu: float | None = None
    temp_c: float | None = None  # common temperature the levels were corrected to
    reasons: tuple[str, ...] = ()

    @property
    def scaling_demonstrated(self) -> bool:
        return self.status == LinearityStatus.PROPORTIONAL

    @property
    def scaling_possible(self) -> bool:
        """Scaling is not contradicted by the data (proportional or merely unproven)."""
        return self.bias_available and self.status in (
            LinearityStatus.PROPORTIONAL,
            LinearityStatus.UNPROVEN,
        )

    def interpolation_demonstrated(self, t1: float, t2: float) -> bool:
        """Linear behaviour shown between the bins ``t1`` and ``t2`` (both measured)."""
        measured = all(
            any(abs(t - e) <= 0.01 * max(t, e) for e in self.exposures_s) for t in (t1, t2)
        )
        return measured and self.status in (LinearityStatus.PROPORTIONAL, LinearityStatus.AFFINE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config_signature": self.config_signature,
            "status": str(self.status),
            "exposures_s": list(self.exposures_s),
            "bias_available": self.bias_available,
            "deviation": self.deviation,
            "nonlinear_above_adu": self.nonlinear_above_adu,
            "temp_c": self.temp_c,
            "reasons": list(self.reasons),
            "populations": [p.to_dict() for p in self.populations],
        }


def _bins(values: Sequence[float], rel_tol: float) -> list[list[int]]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out: list[list[int]] = []
    for i in order:
        if out and values[i] - values[out[-1][0]] <= rel_tol * max(values[i], 1e-12):
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _population(name, t, s, floor, tol, proportional_possible) -> PopulationLinearity:
    t, s, floor = np.asarray(t), np.asarray(s), np.asarray(floor)
    scale = np.maximum(np.abs(s), floor)
    dev = aff = offset = None
    if len(t) >= 2 and proportional_possible:
        rate = float(np.sum(s * t) / np.sum(t * t))
        dev = float(np.max(np.abs(s - rate * t) / scale))
    if len(t) >= 3:
        coef = np.polyfit(t, s, 1)
        offset = float(coef[1])
        aff = float(np.max(np.abs(s - np.polyval(coef, t)) / scale))
    if dev is not None and dev <= tol:
        status = LinearityStatus.PROPORTIONAL
    elif aff is not None:
        status = LinearityStatus.AFFINE if aff <= tol else LinearityStatus.NONLINEAR
    elif dev is not None:
        status = LinearityStatus.AFFINE_UNPROVEN
    else:
        status = LinearityStatus.UNPROVEN
    return PopulationLinearity(name, tuple(map(float, t)), tuple(map(float, s)), status, dev,
                               aff, offset)  # fmt: skip


def measure_linearity(
    config_signature: str,
    summaries: Sequence[MasterSummary],
    law: DarkCurrentLaw,
    config: ScalingConfig | None = None,
    *,
    bias_available: bool,
    bias_exptime_s: float = 0.0,
    exptime_rel_tol: float = 0.01,
    temp_window_c: float | None = None,
) -> LinearityReport:
    """The exposure law of one configuration from its master summaries (see module docs).

    With ``temp_window_c``, only masters within that window of one common temperature are
    compared (the temperature covering the most exposure bins, then the most frames), so the
    law's uncertainty over a wide temperature range cannot fake a non-linearity; small
    differences inside the window are corrected with ``law``.
    """
    cfg = config or ScalingConfig()
    tol = cfg.linearity_tolerance
    use = [s for s in summaries if s.exptime_s > 0 and math.isfinite(s.level_adu)]
    reasons: list[str] = []
    if not bias_available:
        reasons.append("no_bias")
    temps = [s.temp_c for s in use if s.temp_c is not None]
    t0 = None
    if temps and temp_window_c is not None:
        use = [s for s in use if s.temp_c is not None]

        def coverage(tc: float) -> tuple[int, int, float]:
            near = [s for s in use if abs(s.temp_c - tc) <= temp_window_c]
            n_bins = len(_bins([s.exptime_s for s in near], exptime_rel_tol))
            return n_bins, sum(s.n_frames for s in near), -tc

        t0 = float(max(temps, key=coverage))
        use = [s for s in use if abs(s.temp_c - t0) <= temp_window_c]
    elif temps:
        t0 = float(np.median(temps))

    def corr(s: MasterSummary) -> float:
        if t0 is None or s.temp_c is None:
            return 1.0
        return law.factor(t0 - s.temp_c)

    groups = _bins([s.exptime_s for s in use], exptime_rel_tol)
    exposures = tuple(float(np.mean([use[i].exptime_s for i in g])) for g in groups)
    if len(groups) < 2:
        reasons.append("single_exposure" if groups else "no_exposure")

    def agg(g: list[int], value) -> float | None:
        vals = [value(use[i]) for i in g]
        if any(v is None for v in vals):
            return None
        w = np.array([use[i].n_frames for i in g], dtype=float)
        return float(np.average(vals, weights=w))

    t_eff = [t - bias_exptime_s for t in exposures]
    pops: list[PopulationLinearity] = []
    noise = [agg(g, lambda s: s.noise_adu) or 0.0 for g in groups]
    removed = bias_available and all(use[i].bias_removed for g in groups for i in g)
    hot_level = {id(s): s.hot_excess_adu for s in use}
    vectors = [s.hot_values for s in use if s.hot_values is not None]
    if use and len(vectors) == len(use) and len({v.size for v in vectors}) == 1 and vectors[0].size:
        # the same hot pixels in every master: the median of per-pixel ratios to the strongest
        # master (a ratio of medians would pick different pixels at different exposures)
        ref = max(use, key=lambda s: s.exptime_s)
        ref_level = float(np.median(ref.hot_values))
        with np.errstate(all="ignore"):
            for s in use:
                ratio = s.hot_values / ref.hot_values
                ok = np.isfinite(ratio) & (ref.hot_values > 0)
                if ok.any():
                    hot_level[id(s)] = float(np.median(ratio[ok])) * ref_level
    series = {
        "normal": lambda s: s.level_adu * corr(s) if removed else None,
        "hot": lambda s: None if hot_level[id(s)] is None else hot_level[id(s)] * corr(s),
        "glow": lambda s: s.glow_adu if removed else None,
        "raw": lambda s: None if removed else s.level_adu,
    }
    for name, value in series.items():
        levels = [agg(g, value) for g in groups]
        if not groups or any(v is None for v in levels):
            continue
        if name == "glow" and max(abs(v) for v in levels) <= 3 * max(noise):
            continue  # no measurable glow
        floor = list(noise) if name != "hot" else [0.0] * len(noise)
        # hot and raw: proportionality is tested relative to the local level / needs no bias
        proportional_possible = name in ("normal", "glow", "hot") and (removed or name == "hot")
        tt = t_eff if name != "hot" else list(exposures)
        pops.append(_population(name, tt, levels, floor, tol, proportional_possible))
    if pops and len(groups) >= 2:
        status = max((p.status for p in pops), key=_ORDER.index)
        if not removed and status == LinearityStatus.PROPORTIONAL:
            status = LinearityStatus.UNPROVEN  # without a bias the dark current is not isolated
    else:
        status = LinearityStatus.UNPROVEN
    devs = [p.deviation for p in pops if p.deviation is not None]
    return LinearityReport(
        config_signature=config_signature,
        status=status,
        exposures_s=exposures,
        bias_available=bias_available,
        populations=tuple(pops),
        deviation=max(devs) if devs else None,
        nonlinear_above_adu=_nonlinear_onset(use, groups, corr, tol),
        temp_c=t0,
        reasons=tuple(reasons),
    )


def _nonlinear_onset(use, groups, corr, tol: float, min_pixels: int = 20) -> float | None:
    """Lowest hot-pixel signal (ADU) above which the exposure response departs from linear."""
    if len(groups) < 2:
        return None
    best = None
    for gi in range(len(groups)):
        for gj in range(gi + 1, len(groups)):
            a, b = use[groups[gi][0]], use[groups[gj][0]]
            if a.hot_values is None or b.hot_values is None or a.hot_values.size < min_pixels:
                continue
            with np.errstate(all="ignore"):
                q = (
                    (b.hot_values * corr(b))
                    / (a.hot_values * corr(a))
                    / (b.exptime_s / a.exptime_s)
                )
            level = b.hot_values
            ok = np.isfinite(q) & (a.hot_values > 0) & (level > 0)
            if ok.sum() < 2 * min_pixels:
                continue
            q, level = q[ok], level[ok]
            edges = np.quantile(level, np.linspace(0, 1, max(2, min(8, q.size // min_pixels)) + 1))
            onset = None
            for lo, hi in zip(edges[-2::-1], edges[:0:-1], strict=True):  # from the top down
                sel = (level >= lo) & (level <= hi)
                if sel.sum() >= min_pixels and abs(float(np.median(q[sel])) - 1.0) > tol:
                    onset = float(lo)
                else:
                    break
            if onset is not None and onset > float(np.min(level)):
                best = onset if best is None else min(best, onset)
    return best
