"""The amp-glow model: glow separated from the dark current, per block of a configuration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darkflow.exposure._grid import (
    _flat_level,
    _glow_cells,
    block_grid,
    dark_signal,
    glow_block,
    upsample_grid,
)
from darkflow.exposure._reference import MasterSummary, Reference
from darkflow.model import MasterDark
from darkflow.thermal import DarkCurrentLaw


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
        s
        for s in summaries
        if s.grid is not None
        and s.bias_removed
        and s.temp_c is not None
        and s.exptime_s - bias_exptime_s > 0
    ]
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
        float(master.meta.bias_exptime_s or 0.0)
        if not master.meta.includes_bias
        else bias_exptime_s
    )
    if glow_model is not None and glow_model.shape == master.data.shape:
        return glow_model.adu(max(t_eff, 0.0))
    signal, removed = dark_signal(master, bias)
    b = max(2, min(glow_block(block), *signal.shape))
    grid = block_grid(signal, b)
    level, _ = _flat_level(grid)
    cells = _glow_cells(grid, removed)
    glow = upsample_grid(np.where(cells, grid - level, 0.0), signal.shape, b, extrapolate=True)
    return np.maximum(glow, 0.0)
