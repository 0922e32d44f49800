"""Frame metadata for a combine: the small header fallback, consistency checks, MasterMeta."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from darkflow.exceptions import IncompatibleFramesError, odd_frames
from darkflow.io.bands import ImageLayout
from darkflow.model import FrameMeta, FrameType, MasterMeta

__all__ = ["check_frames", "frames_egain", "master_meta", "meta_from_header"]

log = logging.getLogger(__name__)

EXPTIME_REL_TOL = 0.01  # exposures within 1% (or 1 ms) count as equal
EXPTIME_ABS_TOL = 0.001
EGAIN_REL_TOL = 1e-3


def _number(header, *keys: str) -> float | None:
    for key in keys:
        value = header.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            num = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(num) and abs(num) < 1e30:  # -1.8e308 style sentinels mean "absent"
            return num
    return None


def _text(header, key: str) -> str | None:
    value = header.get(key)
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def _frame_type(text: str | None) -> FrameType:
    t = (text or "").lower()
    for words, kind in (
        (("bias", "offset", "zero"), FrameType.BIAS),
        (("flat dark", "darkflat", "dark flat"), FrameType.DARKFLAT),
        (("dark",), FrameType.DARK),
        (("flat",), FrameType.FLAT),
        (("light", "object", "science"), FrameType.LIGHT),
    ):
        if any(w in t for w in words):
            return kind
    return FrameType.UNKNOWN


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def meta_from_header(layout: ImageLayout) -> FrameMeta:
    """Minimal :class:`FrameMeta` from the few header keywords a combine needs.

    Used only when the caller passes no normalised metadata (``darkflow.ingest.headers.normalise``
    does the full job, capture-program quirks included).
    """
    h = layout  # image HDU keywords first, then the primary header's (extension images)
    xbin = _number(h, "XBINNING")
    ybin = _number(h, "YBINNING")
    return FrameMeta(
        path=layout.path,
        frame_type=_frame_type(_text(h, "IMAGETYP")),
        exptime_s=_number(h, "EXPTIME", "EXPOSURE"),
        ccd_temp_c=_number(h, "CCD-TEMP"),
        set_temp_c=_number(h, "SET-TEMP"),
        gain_setting=_number(h, "GAIN"),
        egain_e_per_adu=_number(h, "EGAIN"),
        offset=_number(h, "OFFSET"),
        xbin=int(xbin) if xbin else 1,
        ybin=int(ybin) if ybin else 1,
        readout_mode=_text(h, "READOUTM"),
        instrument=_text(h, "INSTRUME"),
        date_obs_utc=_date(_text(h, "DATE-OBS")),
        shape=layout.shape,
        dtype=layout.stored_dtype,
        hdu_index=layout.hdu_index,
    )


def _odd_ones(
    names: Sequence[str], values: Sequence[Any], what: str, same=lambda a, b: a == b
) -> list[tuple[str, str]]:
    return odd_frames(names, values, what, same)


def _close(rel: float, absolute: float = 0.0):
    def same(a, b) -> bool:
        if a is None or b is None:
            return a is b
        return abs(a - b) <= max(rel * max(abs(a), abs(b)), absolute)

    return same


def check_frames(
    metas: Sequence[FrameMeta], layouts: Sequence[ImageLayout] | None = None
) -> FrameType:
    """Raise :class:`IncompatibleFramesError` naming the odd frames; return the frame kind.

    Shape comes from the files when ``layouts`` is given (the truth), else from ``metas``. The
    stored dtype may differ (a dark saved as float32 by another program among uint16 ones):
    every frame is read in the working dtype, which holds any of them exactly. Binning, gain, offset, readout mode, e-/ADU, instrument and camera must agree,
    exposures within 1% or 1 ms (not checked for biases). All frames must be darks or all biases (unknown types are accepted).
    """
    names = [m.path for m in metas]
    shapes = [lay.shape for lay in layouts] if layouts else [m.shape for m in metas]
    odd: list[tuple[str, str]] = []
    odd += _odd_ones(names, shapes, "shape")
    odd += _odd_ones(names, [(m.xbin, m.ybin) for m in metas], "binning")
    for attr in ("gain_setting", "offset", "readout_mode", "instrument", "camera_id"):
        odd += _odd_ones(names, [getattr(m, attr) for m in metas], attr)
    odd += _odd_ones(names, [m.egain_e_per_adu for m in metas], "egain", _close(EGAIN_REL_TOL))
    kinds = {m.frame_type for m in metas} - {FrameType.UNKNOWN}
    exps = [m.exptime_s for m in metas]
    if kinds != {FrameType.BIAS} and any(e is not None for e in exps):  # bias: any exposure
        odd += _odd_ones(names, exps, "exptime_s", _close(EXPTIME_REL_TOL, EXPTIME_ABS_TOL))
    if odd:
        raise IncompatibleFramesError(
            f"{len({o[0] for o in odd})} of {len(metas)} frames differ from the others", odd
        )
    if kinds - {FrameType.DARK, FrameType.BIAS}:
        bad = [
            (m.path, f"frame type {m.frame_type}")
            for m in metas
            if m.frame_type in kinds - {FrameType.DARK, FrameType.BIAS}
        ]
        raise IncompatibleFramesError("only darks or biases can be combined into a master", bad)
    if len(kinds) > 1:
        raise IncompatibleFramesError(
            "darks and biases mixed in one combine",
            _odd_ones(names, [m.frame_type for m in metas], "frame_type"),
        )
    return kinds.pop() if kinds else FrameType.DARK


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return float(statistics.fmean(got)) if got else None


def frames_egain(metas: Sequence[FrameMeta]) -> float | None:
    """The e-/ADU of a master combined from ``metas``: the first known value, when every known
    value agrees with it within ``EGAIN_REL_TOL`` (the rule :func:`check_frames` enforces on a
    combine), else ``None`` (frames that disagree have no one gain)."""
    known = [m.egain_e_per_adu for m in metas if m.egain_e_per_adu is not None]
    if not known:
        return None
    same = _close(EGAIN_REL_TOL)
    return known[0] if all(same(known[0], g) for g in known) else None


def master_meta(metas: Sequence[FrameMeta], kind: FrameType) -> MasterMeta:
    """The :class:`MasterMeta` of a master combined from frames described by ``metas``.

    The one builder of a master's metadata: the combine calls it on the frames it read, and the
    pipeline on a planned frame set before the master exists (``provisional_meta``), so a plan
    and the master it builds agree on exposure, temperatures, times and e-/ADU.
    """
    first = metas[0]
    temps = [m.ccd_temp_c for m in metas if m.ccd_temp_c is not None]
    sets = [m.set_temp_c for m in metas if m.set_temp_c is not None]
    exps = [m.exptime_s for m in metas if m.exptime_s is not None]
    dates = [m.date_obs_utc for m in metas if m.date_obs_utc is not None]
    try:
        signature = first.config_signature
    except (TypeError, ValueError):  # pragma: no cover - defensive: odd shapes
        signature = "unknown"
    return MasterMeta(
        config_signature=signature,
        instrument=first.instrument or "unknown",
        exptime_s=float(statistics.median(exps))
        if exps
        else (0.0 if kind == FrameType.BIAS else math.nan),
        temp_c=_mean(temps),
        set_temp_c=float(statistics.median(sets)) if sets else None,
        n_frames=len(metas),
        egain_e_per_adu=frames_egain(metas),
        gain_setting=first.gain_setting,
        offset=first.offset,
        readout_mode=first.readout_mode,
        date_start_utc=min(dates) if dates else None,
        date_end_utc=max(dates) if dates else None,
        temp_min_c=min(temps) if temps else None,
        temp_max_c=max(temps) if temps else None,
        includes_bias=True,
        bias_subtracted=False,
        frame_kind=kind,
    )
