"""The streaming engine: frame statistics, noise model, band loop over the numba kernel.

Sources are either a :class:`~darkflow.io.bands.BandReader` (files) or an :class:`ArraySource`
(in-memory frames); both serve a deterministic row subsample and consecutive row bands, and the
same kernel path runs on both.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darkflow import stats as K
from darkflow.config import CombineConfig
from darkflow.exceptions import IncompatibleFramesError, odd_frames
from darkflow.io.bands import rows_for_budget

__all__ = [
    "ArraySource",
    "EngineResult",
    "FrameStats",
    "Subset",
    "frame_stats",
    "run_engine",
    "sample_rows",
]

log = logging.getLogger(__name__)

N_SAMPLE_ROWS = 32  # rows of the deterministic subsample (levels, spreads, noise)
SUMMARY_SAMPLES = 1 << 18  # pixels behind the summary quantiles
SAMPLE_COLUMNS = 4096  # at most about this many pixels per sample row (a fixed column stride)
MAX_NOISE_PAIRS = 8  # frame pairs used for the temporal-noise estimate
TYPICAL_LOW, TYPICAL_HIGH = 40.0, 60.0  # percentiles of the pixel level that count as typical
PROCESS_ALLOWANCE = 200 * 2**20  # interpreter, numpy, astropy, numba: counted in the budget
_SMALL_PLANE_BYTES = 3 * 2 + 1  # n_used, n_low, n_high (uint16) + saturated (bool) per pixel
_MODES = {"mad": K.MODE_MAD, "std": K.MODE_STD, "noise": K.MODE_NOISE}


class ArraySource:
    """In-memory frames served like a :class:`~darkflow.io.bands.BandReader`.

    ``frames`` is a 3-D array ``(n, ny, nx)`` or a sequence of equally shaped 2-D arrays; they
    are never modified (bands are copied into a float buffer).
    """

    def __init__(self, frames: np.ndarray | Sequence[np.ndarray]):
        if isinstance(frames, np.ndarray):
            if frames.ndim != 3:
                raise IncompatibleFramesError(
                    f"a stack must be 3-D (n, ny, nx), got {frames.ndim}-D"
                )
            arrays = list(frames)
        else:
            arrays = [np.asarray(f) for f in frames]
        shapes = [a.shape for a in arrays]
        if any(len(s) != 2 for s in shapes):
            raise IncompatibleFramesError("every frame must be a 2-D image")
        if arrays:
            odd = odd_frames([f"frame {i}" for i in range(len(shapes))], shapes, "shape")
            if odd:
                raise IncompatibleFramesError("frames of different shape in one combine", odd)
            self.shape = shapes[0]
        else:
            self.shape = (0, 0)
        kinds = {a.dtype for a in arrays}
        bad = [d for d in kinds if d.kind not in "uif"]
        if bad:
            raise IncompatibleFramesError(f"frames must hold numbers, got dtype {bad[0]}")
        small = all(d.itemsize <= 2 or d == np.float32 for d in kinds)
        self.work_dtype = np.dtype(np.float32 if small else np.float64)
        self.arrays = arrays
        self.raw16 = None
        ints = [d for d in kinds if d.kind in "ui"]
        self.saturation = (
            float(min(np.iinfo(d).max for d in ints)) if ints and len(kinds) == 1 else math.inf
        )

    @property
    def n(self) -> int:
        return len(self.arrays)

    @property
    def band_itemsize(self) -> int:
        return self.work_dtype.itemsize

    def read_rows(self, rows: Sequence[int]) -> np.ndarray:
        rows = sorted(int(r) for r in rows)
        return np.stack([a[rows].astype(self.work_dtype) for a in self.arrays])

    def close(self) -> None:
        pass

    def bands(self, band_rows: int):
        ny, nx = self.shape
        band_rows = max(1, min(int(band_rows), ny))
        stack = np.empty((self.n, band_rows, nx), dtype=self.work_dtype)
        for r0 in range(0, ny, band_rows):
            r1 = min(ny, r0 + band_rows)
            for k, a in enumerate(self.arrays):
                stack[k, : r1 - r0] = a[r0:r1]
            yield r0, r1, stack


@dataclass(frozen=True)
class FrameStats:
    """Per-frame robust level and spread, and the temporal noise, from the row subsample."""

    levels: np.ndarray  # median of each frame (ADU)
    spreads: np.ndarray  # MAD_TO_STD × MAD of each frame (ADU), spatial
    sig0: float  # temporal noise at the typical level (ADU), from frame-pair differences
    level0: float  # median of the frame levels (ADU)
    rows: tuple[int, ...]
    n_pairs: int


def sample_rows(ny: int, count: int = N_SAMPLE_ROWS) -> tuple[int, ...]:
    """Deterministic, evenly spread subsample of row indices (all rows of small images)."""
    if ny <= count:
        return tuple(range(ny))
    return tuple(int(r) for r in np.unique(np.linspace(0, ny - 1, count).round().astype(int)))


def _clipped_std(values: np.ndarray, k: float = 4.0, iters: int = 5) -> float:
    """Standard deviation after iterative ``k``-sigma clipping (not quantised like a MAD)."""
    v = values[np.isfinite(values)]
    if v.size < 2:
        return math.nan
    centre = float(np.median(v))
    scale = K.robust_std(v)
    if not scale > 0:
        scale = float(np.std(v))
    for _ in range(iters):
        kept = v[np.abs(v - centre) <= k * scale]
        if kept.size < 2:
            break
        new = float(np.std(kept))
        if new == scale:
            break
        scale = new
    return scale


def frame_stats(sample: np.ndarray, rows: Sequence[int], quantum: float = 0.0) -> FrameStats:
    """Robust per-frame statistics of the subsample ``sample`` (``(n, rows, nx)``).

    The temporal noise ``sig0`` is the median over up to :data:`MAX_NOISE_PAIRS` frame pairs
    (0,1), (2,3), ... of ``σ(a - b) / sqrt(2)`` over the pixels whose value in a third frame
    (the pair's mean with two frames only) lies between the 40th and 60th percentile (the noise *at the typical level* ``level0``; with a
    skewed dark-current distribution all pixels together would understate it), where ``σ`` is
    the standard deviation after iterative 4-sigma clipping (a MAD of integer data is quantised
    too coarsely): fixed pattern cancels in the difference, the clipping drops hot pixels and
    cosmic rays. It is floored at the
    quantisation noise ``quantum / sqrt(12)`` of integer data. With a single frame, the
    spatial spread stands in (an upper bound).
    """
    n = sample.shape[0]
    levels = np.full(n, np.nan)
    spreads = np.full(n, np.nan)
    for k in range(n):
        v = sample[k][np.isfinite(sample[k])]
        if v.size:
            levels[k] = float(np.median(v))
            spreads[k] = K.mad_std(v, center=levels[k])
    pair_sig = []
    for a in range(0, min(n - 1, 2 * MAX_NOISE_PAIRS), 2):
        fa = sample[a].astype(np.float64).ravel()
        fb = sample[a + 1].astype(np.float64).ravel()
        ok = np.isfinite(fa) & np.isfinite(fb)
        if not ok.any():
            continue
        # the typical level is judged on a third frame when there is one: on integer data
        # saved in steps (a 14-bit ADC times 4), a pair's sum and difference share their
        # parity, so selecting pixels by the pair's own mean in a window narrower than a few
        # steps selects their difference too (only 0 and +-2 steps pass, the noise reads a
        # fraction of itself); a third frame's value is independent of the pair's noise
        c = a + 2 if a + 2 < n else a - 1
        if 0 <= c < n:
            fc = sample[c].astype(np.float64).ravel()
            ok &= np.isfinite(fc)
            mid = fc[ok]
        else:
            mid = 0.5 * (fa[ok] + fb[ok])
        if not ok.any():
            continue
        lo, hi = np.percentile(mid, [TYPICAL_LOW, TYPICAL_HIGH])
        typical = (mid >= lo) & (mid <= hi)  # pixels at the typical level only
        s = _clipped_std((fa[ok] - fb[ok])[typical]) / math.sqrt(2.0)
        if math.isfinite(s):
            pair_sig.append(s)
    if pair_sig:
        sig0 = float(np.median(pair_sig))
    else:
        sig0 = float(np.nanmedian(spreads)) if np.isfinite(spreads).any() else math.nan
    floor = quantum / math.sqrt(12.0)
    if math.isfinite(sig0):
        sig0 = max(sig0, floor)
    level0 = float(np.nanmedian(levels)) if np.isfinite(levels).any() else math.nan
    return FrameStats(levels, spreads, sig0, level0, tuple(rows), len(pair_sig))


@dataclass(frozen=True)
class Subset:
    """A second combine of some of the frames over a band of rows, in the same pass.

    The combine of ``frames`` (indices into the source) restricted to ``rows`` equals, pixel
    for pixel, the rows ``rows`` of a combine of those frames alone: its frame statistics come
    from the same row subsample (the subset of the frames already read), its noise model and
    hot thresholds from those, and each pixel's result depends only on its own values and these
    parameters. The hold-out assessment judges this training master without reading or
    combining the frames again. ``egain``, ``sat_level`` and ``quantum`` are the subset's own
    (as :func:`~darkflow.master.combine_files` would derive them from those frames alone).
    """

    frames: tuple[int, ...]
    rows: slice
    egain: float | None
    sat_level: float
    quantum: float


@dataclass
class EngineResult:
    planes: dict[str, np.ndarray]
    stats: FrameStats
    noise: dict[str, Any]
    band_rows: int
    n_bands: int
    sat_level: float
    seconds: float
    hot_thr: np.ndarray = field(repr=False)
    subset: EngineResult | None = field(default=None, repr=False)  # see :class:`Subset`


def noise_model(
    config: CombineConfig, stats: FrameStats, egain: float | None
) -> tuple[int, dict[str, Any]]:
    """Kernel mode and noise parameters (``sig0_sq``, ``level0``, ``inv_gain``) for a combine."""
    mode_name = config.scale
    gain_ok = egain is not None and math.isfinite(egain) and egain > 0
    sig0 = stats.sig0
    source = "estimated"
    if config.read_noise_e is not None and gain_ok:
        sig0 = config.read_noise_e / egain
        source = "configured"
    info: dict[str, Any] = {
        "scale": mode_name,
        "sig0_adu": sig0,
        "level0_adu": stats.level0,
        "egain_e_per_adu": egain if gain_ok else None,
        "sig0_source": source,
        "n_pairs": stats.n_pairs,
    }
    mode = _MODES[mode_name]
    if mode_name == "noise":
        if not math.isfinite(sig0):
            log.warning("no noise estimate (no valid samples): falling back to the MAD scale")
            mode, info["scale"] = K.MODE_MAD, "mad"
        elif not gain_ok:
            log.info("egain unknown: noise scale = max(temporal noise, robust sigma) per pixel")
            mode, info["scale"] = K.MODE_NOISE_MAD, "noise+mad"
    info["sig0_sq"] = sig0 * sig0 if math.isfinite(sig0) else math.nan
    info["inv_gain"] = 1.0 / egain if gain_ok else 0.0
    return mode, info


def band_rows_for(config: CombineConfig, n: int, shape: tuple[int, int], itemsize: int) -> int:
    """Band height for the memory budget.

    The budget covers the band (buffer or mapped rows), the small output planes and
    :data:`PROCESS_ALLOWANCE` for the interpreter and libraries; the three float output planes
    (master, uncertainty, hot persistence) come on top of it.
    """
    ny, nx = shape
    budget = config.memory_limit_bytes - _SMALL_PLANE_BYTES * ny * nx - PROCESS_ALLOWANCE
    if budget < n * nx * itemsize:
        log.warning(
            "memory limit %s is below the output planes plus one row band: using 1-row bands",
            config.memory_limit,
        )
    return rows_for_budget(max(budget, 0), n, nx, itemsize, ny)


def run_engine(
    source,
    *,
    config: CombineConfig,
    egain: float | None,
    sat_level: float,
    quantum: float,
    progress: Callable[[int, int], None] | None = None,
    band_rows: int | None = None,
    subset: Subset | None = None,
) -> EngineResult:
    """Combine every band of ``source`` into the output planes (see :mod:`darkflow.stats`);
    with ``subset``, also that combine of some frames over some rows (``result.subset``)."""
    t0 = time.perf_counter()
    n = source.n
    ny, nx = source.shape
    rows = sample_rows(ny)
    step = max(1, nx // SAMPLE_COLUMNS)
    sample = source.read_rows(rows)[:, :, ::step]
    main = _Combine(config, frame_stats(sample, rows, quantum), egain, sat_level)
    side = None
    if subset is not None:
        idx = np.asarray(subset.frames, dtype=np.intp)
        sub_stats = frame_stats(np.ascontiguousarray(sample[idx]), rows, subset.quantum)
        side = _Combine(config, sub_stats, subset.egain, subset.sat_level)
        w0, w1, _ = subset.rows.indices(ny)
        side_planes = K.empty_planes((max(w1 - w0, 0), nx))
    if band_rows is None:
        band_rows = band_rows_for(config, n, (ny, nx), source.band_itemsize)
    band_rows = max(1, min(int(band_rows), ny))
    planes = K.empty_planes((ny, nx))
    n_bands = 0
    for r0, r1, stack in source.bands(band_rows):
        main.run(stack, planes, r1 - r0, r0, source.raw16)
        if side is not None and max(r0, w0) < min(r1, w1):
            a, b = max(r0, w0) - r0, min(r1, w1) - r0
            if source.raw16 is not None:  # views of the mapped rows: nothing copied
                part = [stack[k][a:b] for k in subset.frames]
            else:
                part = np.ascontiguousarray(stack[idx, a:b])
            side.run(part, side_planes, b - a, r0 + a - w0, source.raw16)
        n_bands += 1
        if progress is not None:
            progress(r1, ny)
    seconds = time.perf_counter() - t0
    sub = None
    if side is not None:
        sub = side.result(side_planes, band_rows, n_bands, seconds)
    return main.result(planes, band_rows, n_bands, seconds, subset=sub)


class _Combine:
    """Noise model, hot thresholds and kernel parameters of one combine."""

    def __init__(self, config: CombineConfig, stats: FrameStats, egain, sat_level: float):
        self.config, self.stats, self.sat_level = config, stats, sat_level
        self.mode, self.noise = noise_model(config, stats, egain)
        floor = math.sqrt(self.noise["sig0_sq"]) if math.isfinite(self.noise["sig0_sq"]) else 0.0
        spreads = np.where(np.isfinite(stats.spreads), np.maximum(stats.spreads, floor), np.inf)
        self.hot_thr = np.where(
            np.isfinite(stats.levels), stats.levels + config.hot_sigma * spreads, np.inf
        )

    def run(self, stack, planes, nrows: int, row0: int, raw16) -> None:
        config, noise = self.config, self.noise
        K.combine_band(
            stack,
            planes,
            hot_thr=self.hot_thr,
            nrows=nrows,
            row0=row0,
            sat_level=self.sat_level,
            mode=self.mode,
            sigma_low=config.sigma_low,
            sigma_high=config.sigma_high,
            max_iters=config.max_iters,
            sig0_sq=noise["sig0_sq"],
            level0=noise["level0_adu"] if math.isfinite(noise["level0_adu"]) else 0.0,
            inv_gain=noise["inv_gain"],
            raw16=raw16,
        )

    def result(self, planes, band_rows, n_bands, seconds, subset=None) -> EngineResult:
        return EngineResult(
            planes=planes,
            stats=self.stats,
            noise=self.noise,
            band_rows=band_rows,
            n_bands=n_bands,
            sat_level=self.sat_level,
            seconds=seconds,
            hot_thr=self.hot_thr,
            subset=subset,
        )


def summary_stats(planes: dict[str, np.ndarray], n_frames: int) -> dict[str, Any]:
    """Summary statistics of the planes (quantiles from a deterministic pixel subsample)."""
    data = planes["mean"]
    step = max(1, data.size // SUMMARY_SAMPLES)
    sub = data.ravel()[::step]
    sub = sub[np.isfinite(sub)].astype(np.float64)
    unc = planes["uncertainty"].ravel()[::step]
    unc = unc[np.isfinite(unc)]
    n_used = planes["n_used"]
    n_low = int(planes["n_low"].sum(dtype=np.int64))
    n_high = int(planes["n_high"].sum(dtype=np.int64))
    used = int(n_used.sum(dtype=np.int64))
    valid = used + n_low + n_high
    hot = planes["hot"]
    p01, p50, p99 = np.percentile(sub, [1, 50, 99]) if sub.size else (None, None, None)
    robust = K.mad_std(sub, center=p50) if sub.size else None
    return {
        "n_frames": n_frames,
        "median": None if p50 is None else float(p50),
        "p01": None if p01 is None else float(p01),
        "p99": None if p99 is None else float(p99),
        "robust_std": robust,
        "median_uncertainty": float(np.median(unc)) if unc.size else None,
        "n_pixels": int(data.size),
        "n_empty": int(np.count_nonzero(n_used == 0)),
        "n_clipped_low": n_low,
        "n_clipped_high": n_high,
        "clipped_fraction": (n_low + n_high) / valid if valid else 0.0,
        "invalid_fraction": 1.0 - valid / (n_frames * data.size) if n_frames and data.size else 0.0,
        "n_hot_stable": int(np.count_nonzero(hot >= 0.9)),
        "n_hot_transient": int(np.count_nonzero((hot > 0) & (hot < 0.5))),
        "n_saturated": int(np.count_nonzero(planes["saturated"])),
    }
