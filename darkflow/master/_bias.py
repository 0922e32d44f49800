"""Bias handling: dark-current masters from a dark master and a master bias (or a proxy)."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path

import numpy as np

from darkflow.exceptions import ConfigError, IncompatibleFramesError
from darkflow.io.fits import read_image
from darkflow.master._engine import summary_stats
from darkflow.model import FrameType, MasterDark, MasterMeta

__all__ = ["load_bias", "make_dark_current_master"]

log = logging.getLogger(__name__)

_GENERIC_SIGNATURES = {"arrays", "unknown", "external"}


def load_bias(bias: MasterDark | str | os.PathLike[str]) -> MasterDark:
    """A master bias from a :class:`MasterDark` or a file.

    A darkflow master file is read with :func:`~darkflow.master.read_master`; any other 2-D FITS
    image is taken as a bias of unknown uncertainty (uncertainty 0, counts 0), exposure from
    EXPTIME (default 0).
    """
    if isinstance(bias, MasterDark):
        return bias
    from darkflow.master._fitsio import NotAMasterError, read_master

    try:
        master = read_master(bias)
    except NotAMasterError:
        pass
    else:
        return dataclasses.replace(master, provenance={**master.provenance, "file": str(bias)})
    data, header = read_image(bias, dtype="float32")
    zeros16 = np.zeros(data.shape, np.uint16)
    exptime = header.get("EXPTIME", header.get("EXPOSURE", 0.0))
    try:
        exptime = float(exptime)
    except (TypeError, ValueError):
        exptime = 0.0
    meta = MasterMeta(
        config_signature="external",
        instrument=str(header.get("INSTRUME", "unknown")),
        exptime_s=exptime,
        temp_c=None,
        set_temp_c=None,
        n_frames=int(header.get("NCOMBINE", 1) or 1),
        frame_kind=FrameType.BIAS,
    )
    log.info("using %s as an external master bias (no uncertainty plane)", bias)
    return MasterDark(
        data=data,
        uncertainty=np.zeros(data.shape, np.float32),
        n_used=zeros16,
        n_low=zeros16,
        n_high=zeros16,
        hot_persistence=np.zeros(data.shape, np.float32),
        meta=meta,
        provenance={"source": "external", "path": str(bias)},
    )


def make_dark_current_master(dark: MasterDark, bias: MasterDark) -> MasterDark:
    """Subtract a master bias from a dark master: a dark-current-only master.

    ``data = dark - bias`` and ``uncertainty = sqrt(u_dark² + u_bias²)`` (float64 arithmetic,
    stored as float32); counts, hot persistence and saturation flags are the dark's. The
    result has ``includes_bias=False, bias_subtracted=True`` and ``bias_exptime_s`` set to the
    bias exposure.

    ``bias`` may be a true master bias (kind BIAS, exposure ~0) or, as a proxy, a master of the
    shortest darks (kind DARK, exposure shorter than the dark's). A proxy holds a little dark
    current itself, so the result is the dark current of ``exptime_s - bias_exptime_s``
    seconds (not ``exptime_s``); scaling must use that difference. Amp glow and other signal
    that does not grow linearly with time is only approximately removed by a proxy.

    Raises
    ------
    IncompatibleFramesError
        Shapes or configurations differ, the dark is already bias-subtracted or is a bias, or a
        proxy is not shorter than the dark.
    """
    dm, bm = dark.meta, bias.meta
    if dm.frame_kind != FrameType.DARK or dm.bias_subtracted:
        raise IncompatibleFramesError(
            "make_dark_current_master needs a dark master that still includes the bias"
        )
    if dark.shape != bias.shape:
        raise IncompatibleFramesError(
            f"master bias shape {bias.shape} differs from the dark's {dark.shape}"
        )
    if (
        dm.config_signature not in _GENERIC_SIGNATURES
        and bm.config_signature not in _GENERIC_SIGNATURES
        and dm.config_signature != bm.config_signature
    ):
        raise IncompatibleFramesError(
            f"master bias configuration {bm.config_signature} differs from the dark's "
            f"{dm.config_signature}"
        )
    proxy = bm.frame_kind != FrameType.BIAS
    bias_exptime = float(bm.exptime_s) if math.isfinite(bm.exptime_s) else 0.0
    if proxy and not (bias_exptime < dm.exptime_s):
        raise IncompatibleFramesError(
            f"a dark used as bias proxy must be shorter than the dark "
            f"({bias_exptime:g}s vs {dm.exptime_s:g}s)"
        )
    data = (dark.data.astype(np.float64) - bias.data).astype(np.float32)
    unc = np.sqrt(
        np.square(dark.uncertainty, dtype=np.float64)
        + np.square(bias.uncertainty, dtype=np.float64)
    ).astype(np.float32)
    meta = dataclasses.replace(
        dm, includes_bias=False, bias_subtracted=True, bias_exptime_s=bias_exptime
    )
    planes = {
        "mean": data,
        "uncertainty": unc,
        "n_used": dark.n_used,
        "n_low": dark.n_low,
        "n_high": dark.n_high,
        "hot": dark.hot_persistence,
        "saturated": dark.saturated if dark.saturated is not None else np.zeros(data.shape, bool),
    }
    stats = {**dark.stats, **summary_stats(planes, dm.n_frames)}
    bias_info = {
        "kind": str(bm.frame_kind),
        "proxy": proxy,
        "exptime_s": bias_exptime,
        "n_frames": bm.n_frames,
        "config_signature": bm.config_signature,
        "path": bias.provenance.get("file") or bias.provenance.get("path"),
        "inputs": [i.get("name") for i in bias.provenance.get("inputs", [])],
        "median": bias.stats.get("median"),
    }
    history = [
        *dark.provenance.get("history", []),
        f"bias subtracted: {'proxy dark' if proxy else 'master bias'} of {bm.n_frames} frames, "
        f"{bias_exptime:g}s",
    ]
    provenance = {**dark.provenance, "bias": bias_info, "history": history}
    if proxy:
        log.info(
            "bias proxy of %gs: the master holds %gs of dark current",
            bias_exptime,
            dm.exptime_s - bias_exptime,
        )
    return MasterDark(
        data=data,
        uncertainty=unc,
        n_used=dark.n_used,
        n_low=dark.n_low,
        n_high=dark.n_high,
        hot_persistence=dark.hot_persistence,
        meta=meta,
        saturated=dark.saturated,
        stats=stats,
        provenance=provenance,
    )


def _bias_path_of(master: MasterDark) -> Path | None:
    path = master.provenance.get("bias", {}).get("path")
    return Path(path) if path else None


def bias_for_update(existing: MasterDark, bias: MasterDark | str | os.PathLike[str] | None):
    """The bias to use for new frames merged into a bias-subtracted ``existing`` master."""
    if not existing.meta.bias_subtracted:
        return None
    if bias is not None:
        return load_bias(bias)
    path = _bias_path_of(existing)
    if path is None:
        raise ConfigError(
            "the existing master is bias-subtracted but records no bias file: pass bias="
        )
    return load_bias(path)
