"""Parsing of header values as capture programs really write them.

Numbers written as strings (``'6.00000000000E+001'``), Fortran ``D`` exponents, a decimal comma,
the ASCOM "unset" sentinel ``±1.79769313486232E+308`` (which overflows to ±inf), DATE-OBS with
up to 7 fractional digits, old ``DD/MM/YY`` dates and sexagesimal longitudes.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["parse_fits_datetime", "parse_number"]

_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?$")
_SENTINEL = 1e30  # |value| above this is an "unset" marker such as -1.79769313486232E+308


def _undefined(value: Any) -> bool:
    if value is None:
        return True
    kind = type(value)
    return kind is not str and kind is not float and kind.__name__ == "Undefined"  # astropy


def parse_number(value: Any) -> tuple[float | None, str]:
    """Parse a header value as a number.

    Returns ``(value, status)`` with status ``"ok"``, ``"absent"`` (missing, blank or a
    sentinel beyond ±1e30 or infinite: the ASCOM "unset" value ±1.79769313486232E+308 overflows
    to ±inf when parsed) or ``"invalid"`` (NaN, a logical, text that is not a number).
    Accepts numbers written as strings, Fortran ``D`` exponents and a decimal comma.
    """
    kind = type(value)
    if kind is float or kind is int:
        number = float(value) if kind is float or -(2**1000) < value < 2**1000 else math.inf
    elif _undefined(value):
        return None, "absent"
    elif isinstance(value, bool) or kind.__name__ == "bool_":
        return None, "invalid"
    elif isinstance(value, numbers.Real):
        try:
            number = float(value)
        except (OverflowError, ValueError, TypeError):
            return None, "invalid"
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None, "absent"
        if "," in text and "." not in text and text.count(",") == 1:
            text = text.replace(",", ".")
        if not _NUMBER.match(text):
            return None, "invalid"
        try:
            number = float(text.replace("D", "E").replace("d", "e"))
        except (OverflowError, ValueError):
            return None, "invalid"
    else:
        return None, "invalid"
    if math.isnan(number):
        return None, "invalid"
    if abs(number) >= _SENTINEL:  # includes ±inf: ±1.79769313486232E+308 overflows to inf
        return None, "absent"
    return number, "ok"


def _text(value: Any) -> str | None:
    """Stripped text of a value, ``None`` when blank."""
    if type(value) is str:
        text = " ".join(value.split())
        return text or None
    if _undefined(value) or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = f"{value:g}"
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    else:
        text = str(value)
    text = " ".join(text.split())
    return text or None


_DATE = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_FAST_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?$")
_OLD_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{2})$")  # DD/MM/YY, pre-2000 FITS
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?$")
_MIN_YEAR, _MAX_YEAR = 1900, 2200  # also keeps datetime64[ns] in range


def parse_fits_datetime(text: Any, time_text: Any = None) -> tuple[datetime | None, bool]:
    """Parse a FITS date/time string.

    Returns ``(datetime, has_zone)``: an aware UTC datetime when the text carries a zone
    (``Z`` or ``±HH:MM``), else a naive one; ``(None, False)`` when it cannot be parsed.
    Up to 7 (or more) fractional digits are rounded to microseconds. A date alone is combined
    with ``time_text`` (TIME-OBS/UT) when given; ``DD/MM/YY`` means 19YY.
    """
    if not isinstance(text, str):
        return None, False
    s = text.strip()
    if _FAST_DATE.match(s):  # common case: the C parser (<= 6 fractional digits, no zone)
        try:
            out = datetime.fromisoformat(s)
        except ValueError:
            return None, False
        return (out, False) if _MIN_YEAR <= out.year <= _MAX_YEAR else (None, False)
    m = _DATE.match(s)
    if m:
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
        clock = m.group(4, 5, 6, 7)
        zone = m.group(8)
    else:
        old = _OLD_DATE.match(s)
        if not old:
            return None, False
        day, month, year = int(old.group(1)), int(old.group(2)), 1900 + int(old.group(3))
        clock, zone = (None, None, None, None), None
    if clock[0] is None and isinstance(time_text, str):
        t = _TIME.match(time_text.strip())
        if t:
            clock = t.group(1, 2, 3, 4)
    hour, minute, second = (int(v) if v else 0 for v in clock[:3])
    frac = clock[3] or ""
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return None, False
    try:
        out = datetime(year, month, day, hour, minute, second)
        if frac:
            out += timedelta(microseconds=round(float("0." + frac[:12]) * 1e6))
    except (ValueError, OverflowError):
        return None, False
    if zone is None:
        return out, False
    sign = 1 if zone[0] == "+" else -1
    if zone == "Z":
        offset = timedelta(0)
    else:
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if abs(offset) > timedelta(hours=15):
        return None, False
    return (out - offset).replace(tzinfo=UTC), True


def _mjd_datetime(mjd: float) -> datetime | None:
    if not 15020.0 <= mjd <= 110000.0:  # 1900 .. 2160
        return None
    return datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=mjd)


def _longitude(value: Any) -> float | None:
    number, status = parse_number(value)
    if status == "ok":
        lon = number
    elif isinstance(value, str):
        parts = [p for p in re.split(r"[:\s]+", value.strip()) if p]
        if not 1 <= len(parts) <= 4:
            return None
        sign = -1.0 if parts[0].startswith("-") else 1.0
        try:
            vals = [abs(float(p)) for p in parts[:3]]
        except ValueError:
            return None
        lon = sign * (vals[0] + sum(v / 60**i for i, v in enumerate(vals[1:], start=1)))
    else:
        return None
    if not math.isfinite(lon) or not -360.0 <= lon <= 360.0:
        return None
    if lon > 180.0:
        lon -= 360.0
    elif lon <= -180.0:
        lon += 360.0
    return lon


_cached_longitude = functools.lru_cache(maxsize=64)(_longitude)


def _lon(raw: Any) -> float | None:
    if type(raw) in (str, float):  # hashable, and never confused with True/1 in the cache
        return _cached_longitude(raw)
    return _longitude(raw)
