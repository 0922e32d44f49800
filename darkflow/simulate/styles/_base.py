"""Shared machinery of the capture-program styles: context, number formats, base class."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import numpy as np
from astropy.io import fits

from darkflow.simulate.sensors import SensorModel
from darkflow.simulate.spec import Breakage, FramePlan, Program, SessionSpec, Site

SENTINEL_TEMPERATURE = "-1.79769313486232E+308"  # N.I.N.A.'s "no value" (parses as -inf)


@dataclass(frozen=True, eq=False)
class StyleContext:
    """What a style needs to write one frame."""

    plan: FramePlan
    session: SessionSpec
    sensor: SensorModel
    site: Site
    block_start_utc: datetime  # first frame of the block (SharpCap/MaxIm folders)

    @property
    def local(self) -> datetime:
        return self.plan.start_utc + timedelta(hours=self.site.utc_offset_h)

    @property
    def block_local(self) -> datetime:
        return self.block_start_utc + timedelta(hours=self.site.utc_offset_h)

    @property
    def xbin(self) -> int:
        if self.plan.breakage is Breakage.WRONG_BINNING_HEADER:
            return 2
        return self.plan.xbin

    @property
    def is_light(self) -> bool:
        return self.plan.kind == "light"

    @property
    def filter(self) -> str | None:
        return self.plan.filter

    @property
    def target(self) -> str:
        return self.plan.target or self.session.target

    def quirk(self, name: str) -> bool:
        return name in self.session.quirks


# ---------------------------------------------------------------------- formatting helpers
def _raw(key: str, value: str, comment: str | None = None, slash: str = " / ") -> fits.Card:
    """A card with its value written exactly as ``value`` (right-aligned to column 30)."""
    image = f"{key:<8}= {value:>20}"
    if comment is not None:
        image += f"{slash}{comment}"
    return fits.Card.fromstring(image[:80].ljust(80))


def _str(key: str, value: str, comment: str | None = None) -> fits.Card:
    """A string card; the comment is shortened so the card fits in 80 characters."""
    quoted = "'" + str(value).replace("'", "''").ljust(8) + "'"
    image = f"{key:<8}= {quoted:<20}"
    if comment is not None and len(image) + 3 < 80:
        image += f" / {comment}"
    return fits.Card.fromstring(image[:80].ljust(80))


def g15(value: float, *, point: bool = True) -> str:
    """Shortest round-trip style (15 significant digits); ``point`` keeps a ``.0``."""
    text = f"{float(value):.15g}"
    if point and not any(c in text for c in ".eEn"):
        text += ".0"
    return text.replace("e", "E")


def dotnet(value: float) -> str:
    """.NET ``double.ToString()``: ``60`` for 60.0, ``-0.5`` for -0.5."""
    return g15(value, point=False)


def maxim17(value: float) -> str:
    """MaxIm DL: fixed notation with 17 significant digits (``10.000000000000000``)."""
    v = float(value)
    n_int = len(str(int(abs(v))))
    return f"{v:.{max(17 - n_int, 1)}f}"


def exp3(value: float) -> str:
    """Windows C runtime ``%.11E``: ``3.00000000000E+002``."""
    mantissa, exponent = f"{float(value):.11E}".split("E")
    return f"{mantissa}E{int(exponent):+04d}"


def cfitsio(value: float, decimals: int) -> str:
    """cfitsio ``fits_update_key_dbl`` with ``decimals``: ``1.200000E+02``."""
    return f"{float(value):.{decimals}E}"


def f32(value: float) -> str:
    """A float32 value widened to double and printed with 15 digits (``2.90000009536743``)."""
    return g15(float(np.float32(value)))


def iso(dt: datetime, digits: int) -> str:
    """ISO 8601 without zone; ``digits`` fractional second digits (0, 3, 6 or 7)."""
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 0:
        return base
    frac = f"{dt.microsecond:06d}" + "0"
    return f"{base}.{frac[:digits]}"


def julian_date(dt: datetime) -> float:
    return 2440587.5 + (dt - datetime(1970, 1, 1)).total_seconds() / 86400.0


def sexagesimal(deg: float, *, hours: bool = False, sep: str = " ", decimals: int = 0) -> str:
    value = deg / 15.0 if hours else deg
    sign = "-" if value < 0 else ("" if hours else "+")
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = (value - d - m / 60.0) * 3600.0
    sec = f"{s:0{3 + decimals if decimals else 2}.{decimals}f}"
    return f"{sign}{d:02d}{sep}{m:02d}{sep}{sec}"


def sgp_dms(deg: float) -> str:
    """SGP site coordinates: ``'51 3 0.000'`` (no zero padding, 3 decimals)."""
    sign = "-" if deg < 0 else ""
    v = abs(deg)
    d = int(v)
    m = int((v - d) * 60)
    s = (v - d - m / 60.0) * 3600.0
    return f"{sign}{d} {m} {s:.3f}"


def altaz(ctx: StyleContext) -> tuple[float, float, float]:
    """Approximate altitude, azimuth (deg) and airmass of the target at exposure start."""
    dt = ctx.plan.start_utc
    jd = julian_date(dt)
    gmst = (280.46061837 + 360.98564736629 * (jd - 2451545.0)) % 360.0
    lst = (gmst + ctx.site.longitude_deg) % 360.0
    ha = math.radians((lst - ctx.session.target_ra_deg) % 360.0)
    lat = math.radians(ctx.site.latitude_deg)
    dec = math.radians(ctx.session.target_dec_deg)
    sin_alt = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(ha)
    alt = math.asin(max(-1.0, min(1.0, sin_alt)))
    cos_az = (math.sin(dec) - math.sin(alt) * math.sin(lat)) / max(
        math.cos(alt) * math.cos(lat), 1e-9
    )
    az = math.degrees(math.acos(max(-1.0, min(1.0, cos_az))))
    if math.sin(ha) > 0:
        az = 360.0 - az
    airmass = 1.0 / max(math.sin(alt), math.sin(math.radians(5.0)))
    return math.degrees(alt), az, airmass


# ---------------------------------------------------------------------- base class
class CaptureStyle:
    """Header and path conventions of one capture program."""

    program: Program
    display_name: str
    default_version: str
    extension: str = ".fits"
    frame_type_keys: tuple[str, ...] = ("IMAGETYP",)
    temperature_key: str = "CCD-TEMP"
    type_words: ClassVar[dict[str, str]] = {}

    def version(self, ctx: StyleContext) -> str:
        return ctx.session.program_version or self.default_version

    def instrument(self, ctx: StyleContext) -> str:
        return ctx.sensor.name

    def frame_type(self, kind: str) -> str:
        return self.type_words[kind]

    def cards(self, ctx: StyleContext) -> list[fits.Card]:  # pragma: no cover - abstract
        raise NotImplementedError

    def relpath(self, ctx: StyleContext) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def temperature_card(self, ctx: StyleContext, value: float) -> fits.Card:
        return _raw(self.temperature_key, g15(value), "[degC] CCD temperature")

    def header(self, ctx: StyleContext) -> fits.Header:
        """The frame's header, breakages of the header kind applied."""
        header = fits.Header(self.cards(ctx))
        brk = ctx.plan.breakage
        if brk is Breakage.MISSING_FRAME_TYPE:
            for key in self.frame_type_keys:
                header.remove(key, ignore_missing=True, remove_all=True)
        elif brk is Breakage.MISSING_TEMPERATURE:
            header.remove(self.temperature_key, ignore_missing=True)
        elif brk is Breakage.TEMPERATURE_SENTINEL:
            comment = self.temperature_card(ctx, 0.0).comment
            card = _raw(self.temperature_key, SENTINEL_TEMPERATURE, comment)
            if self.temperature_key in header:
                idx = header.index(self.temperature_key)
                del header[idx]
                header.insert(idx, card)
            else:
                header.append(card)
        return header

    def _temp(self, ctx: StyleContext) -> float | None:
        return ctx.plan.measured_temp_c

    def _pix(self, ctx: StyleContext) -> float:
        return ctx.sensor.pixel_size_um * ctx.xbin


def _exptime(ctx: StyleContext, native: str) -> str:
    if ctx.quirk("exptime_e3"):
        return exp3(ctx.plan.exptime_s)
    return native
