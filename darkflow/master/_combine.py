"""Public combine entry points: from files (streaming) and from in-memory arrays."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from darkflow._version import ALGORITHM_VERSION, __version__
from darkflow.config import CombineConfig
from darkflow.exceptions import ConfigError, FitsReadError, InsufficientFramesError
from darkflow.io.bands import BandReader, FrameSource
from darkflow.io.jsonsafe import to_jsonable
from darkflow.master._engine import (
    ArraySource,
    EngineResult,
    Subset,
    run_engine,
    summary_stats,
)
from darkflow.master._frames import check_frames, frames_egain, master_meta, meta_from_header
from darkflow.model import FrameMeta, FrameType, MasterDark, MasterMeta

__all__ = ["combine_arrays", "combine_files", "combine_files_with_training"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _check_count(n: int, config: CombineConfig, allow_few: bool) -> None:
    if n == 0:
        raise InsufficientFramesError("no frames to combine")
    if n < config.min_frames and not allow_few:
        raise InsufficientFramesError(
            f"{n} frame(s) given, at least {config.min_frames} needed for a clipped master "
            "(pass allow_few=True / --allow-few to combine anyway)"
        )


def master_from_planes(
    planes: dict[str, np.ndarray],
    meta: MasterMeta,
    *,
    saturated: np.ndarray | None,
    stats: dict[str, Any],
    provenance: dict[str, Any],
) -> MasterDark:
    """A :class:`MasterDark` from the engine's output planes (combine and incremental update)."""
    return MasterDark(
        data=planes["mean"],
        uncertainty=planes["uncertainty"],
        n_used=planes["n_used"],
        n_low=planes["n_low"],
        n_high=planes["n_high"],
        hot_persistence=planes["hot"],
        meta=meta,
        saturated=saturated,
        stats=to_jsonable(stats),
        provenance=to_jsonable(provenance),
    )


def _assemble(
    result: EngineResult,
    meta: MasterMeta,
    config: CombineConfig,
    provenance: dict[str, Any],
) -> MasterDark:
    planes = result.planes
    stats = summary_stats(planes, meta.n_frames)
    stats["noise_adu"] = result.noise["sig0_adu"]
    provenance = {
        **provenance,
        "darkflow_version": __version__,
        "algorithm_version": ALGORITHM_VERSION,
        # parameters that shape the bytes; memory_limit only sets the band height, which does not
        "params": {k: v for k, v in asdict(config).items() if k != "memory_limit"},
        "noise": {k: v for k, v in result.noise.items() if k not in ("sig0_sq", "inv_gain")},
        "frame_levels": result.stats.levels,
        "frame_spreads": result.stats.spreads,
        "hot_thresholds": result.hot_thr,
        "sample_rows": list(result.stats.rows),
        "sat_level": result.sat_level,
        # how this combine ran: kept in memory, never written (the bytes must not depend on it)
        "execution": {
            "band_rows": result.band_rows,
            "n_bands": result.n_bands,
            "memory_limit": config.memory_limit,
            "seconds": round(result.seconds, 3),
        },
        "history": [
            f"combine: {meta.n_frames} frames, sigma clip scale={result.noise['scale']} "
            f"low={config.sigma_low:g} high={config.sigma_high:g} iters={config.max_iters}"
        ],
    }
    saturated = planes["saturated"] if math.isfinite(result.sat_level) else None
    return master_from_planes(planes, meta, saturated=saturated, stats=stats, provenance=provenance)


def _open_sources(paths: Sequence[str], skip_unreadable: bool):
    sources: list[FrameSource] = []
    rejected: list[dict[str, str]] = []
    try:
        for p in paths:
            try:
                sources.append(FrameSource(p))
            except FitsReadError as err:
                if not skip_unreadable:
                    raise
                log.warning("skipping unreadable frame %s: %s", p, err.reason)
                rejected.append({"path": str(p), "reason": err.reason})
    except BaseException:
        for s in sources:
            s.close()
        raise
    return sources, rejected


def combine_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    config: CombineConfig | None = None,
    bias: MasterDark | str | os.PathLike[str] | None = None,
    allow_few: bool = False,
    metas: Sequence[FrameMeta] | None = None,
    progress: Progress | None = None,
    frame_kind: FrameType | None = None,
    skip_unreadable: bool = False,
    band_rows: int | None = None,
) -> MasterDark:
    """Combine dark (or bias) FITS files into a robust master, streaming row bands.

    Each file is opened once and read band by band; the band height follows
    ``config.memory_limit`` (or ``band_rows``). The result's bytes do not depend on the band
    height or the number of numba threads.

    Parameters
    ----------
    paths
        Input FITS files (16-bit unsigned, 32-bit or float data; primary HDU or first image
        extension; ``.gz`` and tile-compressed ``.fz`` are read through slower fallbacks).
    config
        Combine settings (sigma clipping, scale, memory budget...); default ``CombineConfig()``.
    bias
        A master bias (:class:`MasterDark` of kind BIAS, or shorter darks as a proxy) or the path
        of one: the result is then a bias-subtracted dark-current master, see
        :func:`~darkflow.master.make_dark_current_master`.
    allow_few
        Combine even with fewer than ``config.min_frames`` frames.
    metas
        Normalised headers of the files (same order); when omitted a few keywords are read
        from the headers directly.
    progress
        Called as ``progress(done_rows, total_rows)`` after each band.
    frame_kind
        Force the kind of the master (default: BIAS when all frames are biases, else DARK).
    skip_unreadable
        Leave out unreadable files (recorded in ``provenance["rejected"]``) instead of raising.
    band_rows
        Override the band height computed from the memory budget.

    Returns
    -------
    MasterDark

    Raises
    ------
    FitsReadError
        A file is missing, truncated or corrupt (unless ``skip_unreadable``).
    IncompatibleFramesError
        Frames differ in shape, binning, gain, offset, readout mode or exposure (a stored
        dtype that differs is read in the working dtype).
    InsufficientFramesError
        Fewer than ``config.min_frames`` frames and not ``allow_few``.
    """
    return _combine_files(
        paths,
        config=config,
        bias=bias,
        allow_few=allow_few,
        metas=metas,
        progress=progress,
        frame_kind=frame_kind,
        skip_unreadable=skip_unreadable,
        band_rows=band_rows,
    )[0]


def combine_files_with_training(
    paths: Sequence[str | os.PathLike[str]],
    train: Sequence[str | os.PathLike[str]],
    rows: Callable[[tuple[int, int]], slice],
    *,
    config: CombineConfig | None = None,
    metas: Sequence[FrameMeta] | None = None,
    allow_few: bool = False,
    progress: Progress | None = None,
    band_rows: int | None = None,
) -> tuple[MasterDark, MasterDark | None]:
    """:func:`combine_files`, and in the same pass the master of the frames ``train`` alone
    over the band ``rows(shape)`` of rows (a :class:`MasterDark` of that band's shape).

    The band master equals those rows of ``combine_files(train)`` pixel for pixel (see
    :class:`~darkflow.master._engine.Subset`); its ``provenance["rows"]`` holds ``[start,
    stop]`` and its ``stats`` are the band's. It is ``None`` when it could not be derived
    exactly in this pass (a training frame unreadable or decoded in another precision than
    the set): then combine the training frames themselves. The master of ``paths`` has the
    same bytes as :func:`combine_files` gives.
    """
    return _combine_files(
        paths,
        config=config,
        allow_few=allow_few,
        metas=metas,
        progress=progress,
        band_rows=band_rows,
        train=[str(p) for p in train],
        window=rows,
    )


def _combine_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    config: CombineConfig | None = None,
    bias: MasterDark | str | os.PathLike[str] | None = None,
    allow_few: bool = False,
    metas: Sequence[FrameMeta] | None = None,
    train: Sequence[str] | None = None,
    window: Callable[[tuple[int, int]], slice] | None = None,
    **options: Any,
) -> tuple[MasterDark, MasterDark | None]:
    """:func:`combine_files` (``options``: its ``progress``, ``frame_kind``,
    ``skip_unreadable``, ``band_rows``), with the training band of
    :func:`combine_files_with_training` when ``train`` and ``window`` are given."""
    progress = options.get("progress")
    frame_kind = options.get("frame_kind")
    skip_unreadable = bool(options.get("skip_unreadable", False))
    band_rows = options.get("band_rows")
    config = config or CombineConfig()
    paths = [str(p) for p in paths]
    if metas is not None and len(metas) != len(paths):
        raise ConfigError(f"{len(metas)} metas given for {len(paths)} paths")
    sources, rejected = _open_sources(paths, skip_unreadable)
    reader = None
    try:
        if metas is not None:
            by_path = dict(zip(paths, metas, strict=True))
            used_metas = [by_path[s.path] for s in sources]
        else:
            used_metas = [meta_from_header(s.layout) for s in sources]
        _check_count(len(sources), config, allow_few)
        kind = check_frames(used_metas, [s.layout for s in sources])
        reader = BandReader.from_sources(sources)
        layouts = reader.layouts
        sat = config.saturation_adu
        sat_level = float(sat) if sat is not None else min(lay.saturation for lay in layouts)
        # integer frames are quantised in steps of BSCALE; a float frame among them (the same
        # values saved by another program) does not make the set's quantisation go away
        integer = [lay.bscale for lay in layouts if lay.bitpix > 0]
        quantum = max(integer) if integer else 0.0
        egain = frames_egain(used_metas)
        subset = None
        if train is not None and window is not None:
            subset = _subset(sources, used_metas, train, window(reader.shape), reader, config)
        result = run_engine(
            reader,
            config=config,
            egain=egain,
            sat_level=sat_level,
            quantum=quantum,
            progress=progress,
            band_rows=band_rows,
            subset=subset,
        )
        inputs = [
            {
                "name": Path(s.path).name,
                "path": s.path,
                "size": s.size,
                "fingerprint": s.fingerprint,
            }
            for s in sources
        ]
    finally:
        for s in sources:
            s.close()
    meta = master_meta(used_metas, frame_kind or kind)
    prov: dict[str, Any] = {"inputs": inputs, "rejected": rejected, "source": "files"}
    master = _assemble(result, meta, config, prov)
    trained = None
    if subset is not None and result.subset is not None:
        idx = subset.frames
        t_metas = [used_metas[k] for k in idx]
        t_prov = {
            "inputs": [inputs[k] for k in idx],
            "rejected": [],
            "source": "files",
            "rows": [subset.rows.start, subset.rows.stop],
            "full_rows": reader.shape[0],
        }
        trained = _assemble(result.subset, master_meta(t_metas, frame_kind or kind), config, t_prov)
    log.info(
        "combined %d frames %s in %.2fs (%d bands of %d rows)",
        meta.n_frames,
        reader.shape,
        result.seconds,
        result.n_bands,
        result.band_rows,
    )
    if bias is not None:
        from darkflow.master._bias import load_bias, make_dark_current_master

        master = make_dark_current_master(master, load_bias(bias))
    return master, trained


def _subset(sources, metas, train, rows: slice, reader: BandReader, config) -> Subset | None:
    """The training frames of a same-pass combine (:class:`Subset`), with the saturation
    level, quantisation and gain :func:`combine_files` would derive from them alone; ``None``
    when their combine could differ from the band's (another working precision)."""
    index = {s.path: k for k, s in enumerate(sources)}
    if len(set(train)) != len(train) or any(p not in index for p in train) or not train:
        return None
    idx = tuple(index[p] for p in train)
    layouts = [sources[k].layout for k in idx]
    wide = any(lay.work_dtype == np.float64 for lay in layouts)
    if np.dtype(np.float64 if wide else np.float32) != reader.work_dtype:
        return None
    sat = config.saturation_adu
    sat_level = float(sat) if sat is not None else min(lay.saturation for lay in layouts)
    integer = [lay.bscale for lay in layouts if lay.bitpix > 0]
    return Subset(
        frames=idx,
        rows=rows,
        egain=frames_egain([metas[k] for k in idx]),
        sat_level=sat_level,
        quantum=max(integer) if integer else 0.0,
    )


def combine_arrays(
    frames: np.ndarray | Sequence[np.ndarray],
    *,
    config: CombineConfig | None = None,
    meta: MasterMeta | None = None,
    egain: float | None = None,
    allow_few: bool = False,
    progress: Progress | None = None,
    band_rows: int | None = None,
    bias: MasterDark | None = None,
) -> MasterDark:
    """Combine in-memory frames with the same kernels as :func:`combine_files`.

    Parameters
    ----------
    frames
        A stack ``(n, ny, nx)`` or a sequence of 2-D frames of one shape; never modified.
        Integer frames get a saturation flag at their dtype's maximum (unless
        ``config.saturation_adu`` is set); NaN/inf values are ignored.
    config
        Combine settings.
    meta
        Metadata of the result; a placeholder (``instrument="arrays"``) by default.
    egain
        e-/ADU for the noise model (default ``meta.egain_e_per_adu``); without it the
        ``noise`` scale falls back to ``max(temporal noise, MAD)`` per pixel.
    allow_few, progress, band_rows, bias
        As in :func:`combine_files`.
    """
    config = config or CombineConfig()
    source = ArraySource(frames)
    _check_count(source.n, config, allow_few)
    if meta is None:
        meta = MasterMeta(
            config_signature="arrays",
            instrument="arrays",
            exptime_s=math.nan,
            temp_c=None,
            set_temp_c=None,
            n_frames=source.n,
            egain_e_per_adu=egain,
        )
    elif meta.n_frames != source.n:
        meta = MasterMeta(**{**asdict(meta), "n_frames": source.n})
    if egain is None:
        egain = meta.egain_e_per_adu
    sat_level = (
        float(config.saturation_adu) if config.saturation_adu is not None else source.saturation
    )
    kinds = {a.dtype.kind for a in source.arrays}
    quantum = 1.0 if kinds <= {"u", "i"} else 0.0
    result = run_engine(
        source,
        config=config,
        egain=egain,
        sat_level=sat_level,
        quantum=quantum,
        progress=progress,
        band_rows=band_rows,
    )
    master = _assemble(result, meta, config, {"inputs": [], "rejected": [], "source": "arrays"})
    if bias is not None:
        from darkflow.master._bias import make_dark_current_master

        master = make_dark_current_master(master, bias)
    return master
