"""The pixels a configuration's masters are measured on (hot, warm and glow sets of its strongest
master) and what the index keeps of each master measured on them (:class:`MasterSummary`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darkflow.config import ScalingConfig
from darkflow.exceptions import IncompatibleFramesError
from darkflow.exposure._grid import (
    _glow_cells,
    _mean,
    _robust_sigma,
    block_grid,
    dark_signal,
    glow_block,
    sample_grid,
    upsample_grid,
)
from darkflow.model import MasterDark

WARM_SIGMA = 5.0
"""Lower edge of the warm-pixel set in robust sigmas of the excess: a normal pixel exceeds
5 sigma with probability 3e-7, fewer than one per 3 megapixels."""
MIN_POPULATION_PIXELS = 10
"""A hot or warm set of fewer pixels is not tested (its median's spread is not estimable)."""
WARM_MIN_SNR = 30.0
"""A warm pixel's excess in the reference master must also be this many of its own standard
errors: pixels are *selected* on that master, so those picked near a threshold are picked for
their upward noise and their ratio to the other masters is biased low; at 30 standard errors
that bias stays below about 1 % of the pixel's signal (measured on simulated cameras: the
selection bias of a 5-sigma warm set without it reached 16-80 %)."""


# ----------------------------------------------------------------------------- reference
@dataclass(frozen=True, eq=False)
class Reference:
    """Pixels every master of a configuration is measured on (from its strongest master)."""

    shape: tuple[int, int]
    block: int
    hot_index: np.ndarray  # flat indices of the hot-pixel set
    glow_cells: np.ndarray  # bool grid: the amp-glow region
    master_id: str = ""
    warm_index: np.ndarray | None = None  # flat indices of the warm-pixel set

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
            f"warm={0 if self.warm_index is None else self.warm_index.size} "
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
    master: MasterDark,
    bias: MasterDark | None,
    config: ScalingConfig | None = None,
    *,
    master_id: str = "",
) -> Reference:
    """Hot- and warm-pixel sets and glow cells of a configuration, measured on ``master``.

    Hot pixels: excess over the smooth level above ``hot_sigma`` robust sigmas; warm pixels:
    between :data:`WARM_SIGMA` and ``hot_sigma`` robust sigmas. Both: not near saturation,
    stable (``hot_persistence >= 0.5`` when the plane is filled), standing out of their 5x5
    neighbourhood (not a glow slope); at most ``max_hot_pixels`` of each, evenly spread over
    the candidates.
    """
    cfg = config or ScalingConfig()
    signal, removed = dark_signal(master, bias)
    block = max(2, min(cfg.block_px, *signal.shape))
    grid = block_grid(signal, block)
    excess = signal - upsample_grid(grid, signal.shape, block)
    ok = _unsaturated(master)
    sigma = _robust_sigma(excess[ok])
    persistence = master.hot_persistence
    stable = ok
    if persistence is not None and np.any(persistence > 0):
        stable = ok & (persistence >= 0.5)
    hot_thr = max(cfg.hot_sigma * sigma, 1e-6)
    warm_thr = max(min(WARM_SIGMA, cfg.hot_sigma) * sigma, 1e-6)

    unc = np.asarray(master.uncertainty, dtype=np.float32).reshape(-1)

    def pick(lo: float, hi: float, snr: float = 0.0) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            idx = np.flatnonzero(stable & (excess > lo) & (excess <= hi))
        if idx.size:  # keep pixels that stand out of their 5x5 neighbourhood
            local = signal.reshape(-1)[idx] - local_median(signal, idx)
            keep = local > lo
            if snr:
                with np.errstate(invalid="ignore"):
                    keep &= local >= snr * unc[idx]
            idx = idx[keep]
        if idx.size > cfg.max_hot_pixels:
            idx = idx[np.linspace(0, idx.size - 1, cfg.max_hot_pixels).astype(np.int64)]
        return idx

    hot = pick(hot_thr, np.inf)
    warm = pick(warm_thr, hot_thr, WARM_MIN_SNR) if warm_thr < hot_thr else np.zeros(0, np.int64)
    return Reference(signal.shape, block, hot, _glow_cells(grid, removed), master_id, warm)


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
    warm_values: np.ndarray | None = field(default=None, repr=False)
    warm_excess_adu: float | None = None
    n_warm: int = 0
    level_sigma_adu: float | None = None  # uncertainty of the bias level under level_adu
    n_level_pixels: int = 0  # pixels averaged into level_adu
    n_glow_pixels: int = 0  # pixels averaged into glow_adu
    level_se_adu: float | None = None  # standard error of level_adu (the master's noise)
    glow_se_adu: float | None = None  # standard error of glow_adu

    def to_dict(self) -> dict[str, Any]:
        keys = (
            "master_id",
            "exptime_s",
            "temp_c",
            "n_frames",
            "bias_removed",
            "noise_adu",
            "level_adu",
            "glow_adu",
            "hot_excess_adu",
            "signal_rms_adu",
            "saturated_fraction",
            "n_hot",
            "n_glow_cells",
            "transient_rms_adu",
            "warm_excess_adu",
            "n_warm",
            "level_sigma_adu",
        )
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
    unc_plane = np.asarray(master.uncertainty, dtype=np.float64)
    if removed and bias is not None and master.meta.includes_bias:
        unc_plane = np.hypot(unc_plane, np.asarray(bias.uncertainty, dtype=np.float64))

    def mean_se(mask: np.ndarray) -> float:
        u = unc_plane[mask & np.isfinite(unc_plane)]
        return float(np.sqrt(np.sum(np.square(u))) / u.size) if u.size else 0.0

    level_mask = flat if flat.any() else finite
    level_se = mean_se(level_mask)
    glow = glow_se = None
    if reference.glow_cells.any() and (steady & glow_px).any():
        glow = _mean(signal, steady & glow_px) - level
        glow_se = math.hypot(mean_se(steady & glow_px), level_se)
    hot_values = hot = None
    if reference.hot_index.size:
        local = local_median(signal, reference.hot_index)
        hot_values = signal.reshape(-1)[reference.hot_index].astype(np.float64) - local
        hot = float(np.median(hot_values))
    warm_values = warm = None
    if reference.warm_index is not None and reference.warm_index.size:
        local = local_median(signal, reference.warm_index)
        warm_values = signal.reshape(-1)[reference.warm_index].astype(np.float64) - local
        warm = float(np.median(warm_values))
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
        warm_values=warm_values,
        warm_excess_adu=warm,
        n_warm=0 if warm_values is None else int(warm_values.size),
        n_level_pixels=int(np.count_nonzero(flat if flat.any() else finite)),
        n_glow_pixels=0 if glow is None else int(np.count_nonzero(steady & glow_px)),
        level_se_adu=level_se,
        glow_se_adu=glow_se,
    )
