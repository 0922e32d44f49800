"""Header normalisation proper: keyword aliases → :class:`~darkflow.model.FrameMeta` + reasons."""

from __future__ import annotations

import functools
import logging
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from darkflow.config import IngestConfig
from darkflow.ingest import _keywords as kw
from darkflow.ingest.headers.reasons import IngestReason, NormalisedHeader, eligibility_of
from darkflow.ingest.headers.values import (
    _lon,
    _mjd_datetime,
    _text,
    _undefined,
    parse_fits_datetime,
    parse_number,
)
from darkflow.io.fastheader import FastHeader, stored_dtype
from darkflow.model import FrameMeta, FrameType

__all__ = ["WANTED_KEYWORDS", "normalise"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- header access
@dataclass
class _Cards:
    values: dict[str, Any]
    comments: dict[str, str]
    history: list[str]
    comment_cards: list[str]


def _commentary(value: Any) -> list[str]:
    if _undefined(value):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


def _cards_of(header: Any) -> _Cards:
    """Upper-case keyword view of an astropy Header, a FastHeader or any mapping."""
    if isinstance(header, FastHeader):
        return _Cards(header, header.comments, header.history, header.comment_cards)
    values: dict[str, Any] = {}
    comments: dict[str, str] = {}
    history: list[str] = []
    comment_cards: list[str] = []
    cards = getattr(header, "cards", None)
    if cards is not None and hasattr(header, "tostring"):  # astropy Header
        from astropy.io.fits.verify import VerifyError

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for card in cards:
                try:
                    key, value, comment = card.keyword, card.value, card.comment
                except (ValueError, TypeError, IndexError, KeyError, VerifyError):
                    continue
                _add(values, comments, history, comment_cards, key, value, comment)
    elif isinstance(header, Mapping):
        for key, value in header.items():
            _add(values, comments, history, comment_cards, key, value, "")
    return _Cards(values, comments, history, comment_cards)


def _add(values, comments, history, comment_cards, key, value, comment) -> None:
    key = str(key).strip().upper()
    if key == "HISTORY":
        history.extend(_commentary(value))
    elif key in ("COMMENT", ""):
        comment_cards.extend(_commentary(value))
    elif key not in values:
        values[key] = None if _undefined(value) else value
        if comment:
            comments[key] = str(comment)


class _Problems:
    def __init__(self) -> None:
        self.reasons: list[IngestReason] = []
        self.details: list[str] = []

    def add(self, reason: IngestReason, detail: str = "") -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        if detail:
            self.details.append(f"{reason}: {detail}")


def _present(cards: _Cards, field: str) -> list[tuple[str, Any]]:
    """(keyword, value) of the field's aliases that hold a value (blank values are ``None``)."""
    values = cards.values
    return [(k, v) for k in kw.FIELD_KEYWORDS[field] if (v := values.get(k)) is not None]


def _number_field(
    cards: _Cards, field: str, problems: _Problems, *, nan_is_absent: bool = False
) -> tuple[str | None, float | None]:
    """First usable number among a field's aliases; invalid values are recorded."""
    for key, raw in _present(cards, field):
        number, status = parse_number(raw)
        if status == "ok":
            return key, number
        if status == "invalid" and not (nan_is_absent and _is_nan(raw)):
            problems.add(IngestReason.INVALID_VALUE, f"{key}={raw!r}")
    return None, None


def _is_nan(raw: Any) -> bool:
    if isinstance(raw, str):
        return raw.strip().lower() == "nan"
    return isinstance(raw, float) and math.isnan(raw)


def _text_field(cards: _Cards, field: str) -> str | None:
    for _, raw in _present(cards, field):
        text = _text(raw)
        if text is not None:
            return text
    return None


def _consistent(values: list[tuple[str, float]], rel: float = 1e-6) -> bool:
    first = values[0][1]
    return all(abs(v - first) <= rel * max(1.0, abs(first)) for _, v in values[1:])


# --------------------------------------------------------------------------- fields
@functools.lru_cache(maxsize=512)
def _frame_type_value(text: str) -> tuple[FrameType, bool] | None:
    t = " ".join(text.upper().replace("_", " ").split())
    for suffix in (" FRAMES", " FRAME"):
        if t.endswith(suffix):
            t = t[: -len(suffix)]
    hit = kw.FRAME_TYPE_VALUES.get(t) or (
        kw.FRAME_TYPE_VALUES.get(t[:-1]) if t.endswith("S") else None
    )
    return (FrameType(hit[0]), hit[1]) if hit else None


def _type_from_path(path: str) -> FrameType | None:
    parts = PurePath(path).parts
    names = [parts[-1].split(".")[0]] if parts else []
    names += list(reversed(parts[-4:-1]))
    for name in names:
        tokens = [t for t in re.split(r"[^a-z]+", name.lower()) if t]
        for i, token in enumerate(tokens):
            if i + 1 < len(tokens) and token + tokens[i + 1] in kw.PATH_TYPE_TOKENS:
                return FrameType(kw.PATH_TYPE_TOKENS[token + tokens[i + 1]])
            if token in kw.PATH_TYPE_TOKENS:
                return FrameType(kw.PATH_TYPE_TOKENS[token])
    return None


def _frame_type(
    cards: _Cards, path: str, config: IngestConfig, problems: _Problems
) -> tuple[FrameType, bool, bool]:
    """(frame type, inferred from path, is a master/calibrated product)."""
    found: list[tuple[str, Any, tuple[FrameType, bool] | None]] = []
    for key, raw in _present(cards, "frame_type"):
        text = _text(raw)
        if text is not None:
            found.append((key, raw, _frame_type_value(text)))
    known = [(k, raw, v) for k, raw, v in found if v is not None]
    checked = [(k, raw, v) for k, raw, v in known if k in kw.CONSISTENT_KEYWORDS["frame_type"]]
    if len({v[0] for _, _, v in checked}) > 1:
        problems.add(
            IngestReason.INCONSISTENT_KEYS,
            " vs ".join(f"{k}={raw!r}" for k, raw, _ in checked),
        )
    if known:
        _, _, (ftype, master) = known[0]
        return ftype, False, master
    if found:
        problems.add(IngestReason.UNKNOWN_FRAME_TYPE, f"{found[0][0]}={found[0][1]!r}")
        return FrameType.UNKNOWN, False, False
    inferred = _type_from_path(path) if config.infer_type_from_path else None
    if inferred is None:
        problems.add(IngestReason.UNKNOWN_FRAME_TYPE, "no frame-type keyword")
        return FrameType.UNKNOWN, False, False
    problems.add(IngestReason.FRAME_TYPE_INFERRED, f"{inferred} from path")
    return inferred, True, False


def _exposure(cards: _Cards, problems: _Problems) -> float | None:
    present = _present(cards, "exptime_s")
    if not present:
        problems.add(IngestReason.MISSING_EXPOSURE)
        return None
    good: list[tuple[str, float]] = []
    for key, raw in present:
        number, status = parse_number(raw)
        if status == "invalid" or (status == "ok" and number < 0):
            problems.add(IngestReason.INVALID_EXPOSURE, f"{key}={raw!r}")
            return None
        if status == "ok":
            good.append((key, number))
    if not good:
        problems.add(IngestReason.MISSING_EXPOSURE, "exposure keyword blank or unset")
        return None
    checked = [(k, v) for k, v in good if k in kw.CONSISTENT_KEYWORDS["exptime_s"]]
    if len(checked) > 1 and not _consistent(checked):
        problems.add(IngestReason.INCONSISTENT_KEYS, " vs ".join(f"{k}={v:g}" for k, v in checked))
    return good[0][1]


def _temperature(cards: _Cards, field: str, problems: _Problems, *, nan_is_absent: bool):
    key, value = _number_field(cards, field, problems, nan_is_absent=nan_is_absent)
    if value is not None and not -273.15 <= value <= 150.0:
        problems.add(IngestReason.INVALID_VALUE, f"{key}={value!r} outside -273..150 C")
        return None
    return value


def _binning(cards: _Cards, axis: str, problems: _Problems) -> int:
    field = "xbin" if axis == "x" else "ybin"
    present = _present(cards, field)
    if len(present) == 1 and type(present[0][1]) is int and 1 <= present[0][1] <= 64:
        return present[0][1]  # the common case: one integer keyword
    values: list[tuple[str, float]] = []
    for key, raw in present:
        number, status = parse_number(raw)
        if status != "ok" or not number.is_integer() or not 1 <= number <= 64:
            if status != "absent":
                problems.add(IngestReason.INVALID_BINNING, f"{key}={raw!r}")
                return 1
            continue
        values.append((key, number))
    if not values:
        combined = _text_field(cards, "binning")
        if combined:
            parts = re.split(r"\s*[*xX×]\s*", combined)
            pick = parts[0] if axis == "x" or len(parts) == 1 else parts[1]
            number, status = parse_number(pick)
            if status == "ok" and number.is_integer() and 1 <= number <= 64:
                return int(number)
            problems.add(IngestReason.INVALID_BINNING, f"BINNING={combined!r}")
        return 1
    checked = [(k, v) for k, v in values if k in kw.CONSISTENT_KEYWORDS[field]]
    if len(checked) > 1 and not _consistent(checked):
        problems.add(IngestReason.INCONSISTENT_KEYS, " vs ".join(f"{k}={v:g}" for k, v in checked))
    return int(values[0][1])


_PROGRAM_RE = re.compile(
    "|".join(
        f"(?P<r{i}>{'|'.join(re.escape(p) for p in rule.patterns)})"
        for i, rule in enumerate(kw.PROGRAMS)
    )
)


_PROGRAM_MEMO: dict[tuple, tuple[str | None, kw.ProgramRule]] = {}


def _program(cards: _Cards) -> tuple[str | None, kw.ProgramRule]:
    values = cards.values
    key = (tuple(values.get(k) for k in kw.PROGRAM_KEYWORDS), tuple(cards.comment_cards))
    try:
        hit = _PROGRAM_MEMO.get(key)
    except TypeError:  # unhashable values in a plain mapping
        return _find_program(cards)
    if hit is None:
        if len(_PROGRAM_MEMO) > 1024:
            _PROGRAM_MEMO.clear()
        hit = _PROGRAM_MEMO[key] = _find_program(cards)
    return hit


def _find_program(cards: _Cards) -> tuple[str | None, kw.ProgramRule]:
    texts = [_text(cards.values.get(key)) for key in kw.PROGRAM_KEYWORDS]
    texts = [t for t in texts if t]
    for text in [*texts, *cards.comment_cards]:
        hits = [int(m.lastgroup[1:]) for m in _PROGRAM_RE.finditer(f"{text.upper()} ")]
        if hits:
            rule = kw.PROGRAMS[min(hits)]
            return rule.name, rule
    return (texts[0][:80] if texts else None), kw.DEFAULT_PROGRAM


def _gain(
    cards: _Cards, rule: kw.ProgramRule, config: IngestConfig, problems: _Problems
) -> tuple[float | None, float | None]:
    """(gain setting, e-/ADU of the saved values)."""
    gain_key, gain = _number_field(cards, "gain", problems)
    egain = None
    for key in rule.egain:
        number, status = parse_number(cards.values.get(key))
        if status == "ok" and number > 0:
            egain = number
            break
        if status == "invalid" or (status == "ok" and number <= 0):
            # e.g. QSI's EGAIN = 'High' (a gain setting's name): the gain is unknown and is
            # estimated from the frames; the frame stays usable
            problems.add(IngestReason.EGAIN_UNUSABLE, f"{key}={cards.values.get(key)!r}")
    if egain is None and rule.egain_adc is not None:
        adc_egain, s1 = parse_number(cards.values.get(rule.egain_adc[0]))
        bits, s2 = parse_number(cards.values.get(rule.egain_adc[1]))
        bitpix, _ = parse_number(cards.values.get("BITPIX"))
        if s1 == s2 == "ok" and adc_egain > 0 and bitpix == 16 and 8 <= bits <= 16:
            egain = adc_egain / 2 ** (16 - int(bits))
    semantics = config.gain_keyword if config.gain_keyword != "auto" else rule.gain
    if semantics == "auto" and gain is not None:
        comment = cards.comments.get(gain_key or "", "").lower()
        any_egain = any(k in cards.values for k in (*rule.egain, *kw.DEFAULT_PROGRAM.egain))
        if any_egain:
            semantics = "setting"
        elif "e-/adu" in comment or "e/adu" in comment or "electron" in comment:
            semantics = "e_per_adu"
        else:
            semantics = "setting" if gain.is_integer() else "e_per_adu"
    if semantics == "e_per_adu":
        if egain is None and gain is not None and gain > 0:
            egain = gain
        gain = None
    if gain is None:
        _, gain = _number_field(cards, "iso", problems)
    return gain, egain


def _offset(cards: _Cards, problems: _Problems) -> float | None:
    values: list[tuple[str, float]] = []
    for key, raw in _present(cards, "offset"):
        number, status = parse_number(raw)
        if status == "ok":
            values.append((key, number))
        elif status == "invalid":
            problems.add(IngestReason.INVALID_VALUE, f"{key}={raw!r}")
    if not values:
        return None
    if len(values) > 1 and not _consistent(values):
        problems.add(IngestReason.INCONSISTENT_KEYS, " vs ".join(f"{k}={v:g}" for k, v in values))
    return values[0][1]


def _date_obs(
    cards: _Cards, exptime: float | None, problems: _Problems
) -> tuple[datetime | None, datetime | None]:
    """(UTC start time, naive local time from DATE-LOC)."""
    time_text = next((raw for _, raw in _present(cards, "time_obs") if isinstance(raw, str)), None)
    date = None
    for key, raw in _present(cards, "date_obs"):
        parsed, has_zone = parse_fits_datetime(raw, time_text)
        if parsed is None:
            problems.add(IngestReason.INVALID_VALUE, f"{key}={raw!r}")
            continue
        date = parsed if has_zone else parsed.replace(tzinfo=UTC)
        break
    _, mjd = _number_field(cards, "mjd_obs", problems)
    mjd_date = _mjd_datetime(mjd) if mjd is not None else None
    if mjd is not None and mjd_date is None:
        problems.add(IngestReason.INVALID_VALUE, f"MJD-OBS={mjd!r} out of range")
    if date is None:
        date = mjd_date
    elif mjd_date is not None:
        tolerance = 60.0 + (exptime or 0.0)
        if abs((date - mjd_date).total_seconds()) > tolerance:
            problems.add(
                IngestReason.INCONSISTENT_TIME, f"DATE-OBS {date:%Y-%m-%dT%H:%M:%S} vs MJD {mjd}"
            )
    if date is None:
        problems.add(IngestReason.MISSING_DATE)
    local = None
    for _, raw in _present(cards, "date_loc"):
        parsed, _ = parse_fits_datetime(raw)
        if parsed is not None:
            local = parsed.replace(tzinfo=None)
            break
    return date, local


_BAYER = re.compile(r"^[RGB]{4}$")


def _bayer(cards: _Cards, shape: tuple[int, int] | None) -> str | None:
    """The colour pattern of the stored array's first 2x2 cell.

    ``BAYERPAT`` is read from the sensor's first pixel in readout (top-down) order, shifted by
    ``XBAYROFF``/``YBAYROFF``; a ``ROWORDER = 'BOTTOM-UP'`` file stores that readout's last row
    first, so with an even number of rows its first stored row has the other row colours.
    """
    text = _text_field(cards, "bayer_pattern")
    if not text or not _BAYER.match(text.upper()):
        return None
    pattern = text.upper()
    _, xoff = _number_field(cards, "bayer_xoffset", _Problems())
    _, yoff = _number_field(cards, "bayer_yoffset", _Problems())
    if xoff is not None and xoff.is_integer() and int(xoff) % 2:
        pattern = pattern[1] + pattern[0] + pattern[3] + pattern[2]
    if yoff is not None and yoff.is_integer() and int(yoff) % 2:
        pattern = pattern[2:] + pattern[:2]
    order = (_text_field(cards, "row_order") or "").upper().replace("_", "-")
    if order == "BOTTOM-UP" and shape is not None and shape[0] % 2 == 0:
        pattern = pattern[2:] + pattern[:2]
    return pattern


def _calibrated(cards: _Cards, master: bool, problems: _Problems) -> bool:
    why = []
    for key in kw.CALIBRATED_KEYWORDS:
        text = _text(cards.values.get(key))
        if text:
            why.append(f"{key}={text!r}")
    history = " ".join(cards.history).lower()
    why += [f"HISTORY mentions {m!r}" for m in kw.CALIBRATED_HISTORY_MARKERS if m in history]
    if master:
        why.append("master frame type")
    if why:
        problems.add(IngestReason.ALREADY_CALIBRATED, "; ".join(why))
    return bool(why)


def _dtype_of(bitpix: Any, bzero: Any, bscale: Any) -> str | None:
    if all(type(x) in (int, float) for x in (bitpix, bzero, bscale)):
        return _cached_dtype(bitpix, bzero, bscale)
    return stored_dtype(bitpix, bzero, bscale)


_cached_dtype = functools.lru_cache(maxsize=64)(stored_dtype)


def _shape_dtype(cards: _Cards, problems: _Problems) -> tuple[tuple[int, int] | None, str | None]:
    v = cards.values
    tiled = v.get("ZIMAGE") is True
    if not tiled and v.get("NAXIS") == 2:  # common case: plain integer cards
        nx, ny = v.get("NAXIS1"), v.get("NAXIS2")
        if type(nx) is int and type(ny) is int and nx > 0 and ny > 0:
            return (ny, nx), _dtype_of(v.get("BITPIX"), v.get("BZERO"), v.get("BSCALE"))
    prefix = "Z" if tiled else ""
    naxis, status = parse_number(v.get(f"{prefix}NAXIS"))
    if status != "ok":
        return None, None
    dtype = stored_dtype(v.get(f"{prefix}BITPIX"), v.get("BZERO"), v.get("BSCALE"))
    if naxis == 0:
        problems.add(IngestReason.NO_IMAGE, f"{prefix}NAXIS = 0")
        return None, dtype
    if naxis != 2:
        problems.add(IngestReason.NOT_2D, f"{prefix}NAXIS = {naxis:g}")
        return None, dtype
    nx, s1 = parse_number(v.get(f"{prefix}NAXIS1"))
    ny, s2 = parse_number(v.get(f"{prefix}NAXIS2"))
    if s1 == s2 == "ok" and nx.is_integer() and ny.is_integer() and nx > 0 and ny > 0:
        return (int(ny), int(nx)), dtype
    return None, dtype


#: every keyword :func:`normalise` looks at (fast readers may skip parsing the others)
WANTED_KEYWORDS: frozenset[str] = frozenset(
    {k for keys in kw.FIELD_KEYWORDS.values() for k in keys}
    | set(kw.PROGRAM_KEYWORDS)
    | set(kw.CALIBRATED_KEYWORDS)
    | set(kw.STACK_COUNT_KEYWORDS)
    | {k for rule in (*kw.PROGRAMS, kw.DEFAULT_PROGRAM) for k in rule.egain}
    | {k for rule in kw.PROGRAMS if rule.egain_adc for k in rule.egain_adc}
    | {"BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "BZERO", "BSCALE", "ZIMAGE", "ZBITPIX", "ZNAXIS"}
    | {"ZNAXIS1", "ZNAXIS2"}
)


# --------------------------------------------------------------------------- public API
def normalise(
    header: Any, path: str | PurePath, *, config: IngestConfig | None = None
) -> NormalisedHeader:
    """Normalise one header to a :class:`~darkflow.model.FrameMeta` with eligibility reasons.

    Parameters
    ----------
    header
        An astropy ``Header``, a :class:`~darkflow.io.fastheader.FastHeader` or any mapping of
        keyword to value (keys are matched case-insensitively). Anything else counts as empty.
    path
        The file the header belongs to (also used to infer the frame type when no keyword
        names it, e.g. SharpCap files in a ``darks`` folder).
    config
        Ingestion settings; defaults to :class:`~darkflow.config.IngestConfig()`.

    Returns
    -------
    NormalisedHeader
        The normalised metadata, the reasons found, and the resulting eligibility. Never
        raises on any header content.
    """
    config = config or IngestConfig()
    path = str(path)
    cards = _cards_of(header)
    problems = _Problems()

    frame_type, inferred, master = _frame_type(cards, path, config, problems)
    exptime = _exposure(cards, problems)
    _, darktime = _number_field(cards, "darktime_s", problems)
    ccd_temp = _temperature(cards, "ccd_temp_c", problems, nan_is_absent=False)
    if ccd_temp is None:
        problems.add(IngestReason.MISSING_TEMPERATURE)
    set_temp = _temperature(cards, "set_temp_c", problems, nan_is_absent=True)
    program, rule = _program(cards)
    gain, egain = _gain(cards, rule, config, problems)
    offset = _offset(cards, problems)
    _, pedestal = _number_field(cards, "pedestal", problems)
    xbin = _binning(cards, "x", problems)
    ybin = _binning(cards, "y", problems)
    instrument = _text_field(cards, "instrument")
    if instrument is None:
        problems.add(IngestReason.MISSING_INSTRUMENT)
    date, date_local = _date_obs(cards, exptime, problems)
    shape, dtype = _shape_dtype(cards, problems)
    calibrated = _calibrated(cards, master, problems)
    for key in kw.STACK_COUNT_KEYWORDS:
        raw = cards.values.get(key)
        if raw is None:
            continue
        count, status = parse_number(raw)
        if status == "ok" and count > 1:
            problems.add(IngestReason.STACKED, f"{key}={count:g}")
            break
    longitude = next(
        (lon for _, raw in _present(cards, "site_longitude") if (lon := _lon(raw)) is not None),
        None,
    )

    meta = FrameMeta(
        path=path,
        frame_type=frame_type,
        frame_type_inferred=inferred,
        exptime_s=exptime,
        darktime_s=darktime,
        ccd_temp_c=ccd_temp,
        set_temp_c=set_temp,
        gain_setting=gain,
        egain_e_per_adu=egain,
        offset=offset,
        xbin=xbin,
        ybin=ybin,
        readout_mode=_text_field(cards, "readout_mode"),
        instrument=instrument,
        camera_id=_text_field(cards, "camera_id"),
        date_obs_utc=date,
        shape=shape,
        dtype=dtype,
        bayer_pattern=_bayer(cards, shape),
        source_program=program,
        calibrated=calibrated,
        pedestal=pedestal,
        site_longitude_deg=longitude,
        object_name=_text_field(cards, "object_name"),
        filter_name=_text_field(cards, "filter_name"),
    )
    reasons = tuple(problems.reasons)
    if reasons:
        log.debug("%s: %s", path, "; ".join(problems.details) or ",".join(reasons))
    return NormalisedHeader(
        meta=meta,
        reasons=reasons,
        eligibility=eligibility_of(reasons),
        details=tuple(problems.details),
        date_local=date_local,
    )
