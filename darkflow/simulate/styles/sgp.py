"""Sequence Generator Pro 4.x headers and folders.

Modelled on SGP headers seen in the wild: the program is named in ``CREATOR`` (SGP does not
write SWCREATE), only ``EXPOSURE`` carries the exposure time (no EXPTIME), binning is written
twice (XBINNING and CCDXBIN), site coordinates are sexagesimal strings ('51 3 0.000'), EGAIN is
a float32 value widened to double (3.99000000953674).
"""

from __future__ import annotations

from typing import ClassVar

from astropy.io import fits

from darkflow.simulate.spec import Program
from darkflow.simulate.styles._base import (
    CaptureStyle,
    StyleContext,
    _exptime,
    _raw,
    _str,
    altaz,
    dotnet,
    f32,
    g15,
    iso,
    sexagesimal,
    sgp_dms,
)

__all__ = ["SgpStyle"]


class SgpStyle(CaptureStyle):
    """Headers, folders and file names as Sequence Generator Pro writes them."""

    program = Program.SGP
    display_name = "Sequence Generator Pro"
    default_version = "4.2.0.1024"
    extension = ".fit"
    type_words: ClassVar[dict[str, str]] = {
        "light": "LIGHT",
        "dark": "DARK",
        "bias": "BIAS",
        "flat": "FLAT",
    }

    def temperature_card(self, ctx: StyleContext, value: float) -> fits.Card:
        """The sensor-temperature card as SGP writes it (.NET number format)."""
        return _raw("CCD-TEMP", dotnet(value), "Camera cooler temperature")

    def cards(self, ctx: StyleContext) -> list[fits.Card]:
        """The header cards of one frame, in SGP's order and formats."""
        p, s, m = ctx.plan, ctx.session, ctx.sensor
        c = []
        if ctx.is_light:
            c.append(_str("OBJECT", ctx.target, "Object name"))
        c += [
            _str("DATE-LOC", iso(ctx.local, 7), "Local observation date"),
            _str("DATE-OBS", iso(p.start_utc, 7), "UTC observation date"),
            _str("IMAGETYP", self.frame_type(p.kind), "Type of frame"),
            _str("CREATOR", f"Sequence Generator Pro v{self.version(ctx)}", "Capture software"),
            _str("INSTRUME", self.instrument(ctx), "Instrument name"),
            _str("OBSERVER", "Observer", "Observer name"),
            _str("SITENAME", ctx.site.name, "Observatory name"),
            _raw(
                "SITEELEV", dotnet(ctx.site.elevation_m), "Elevation of the imaging site in meters"
            ),
            _str(
                "SITELAT", sgp_dms(ctx.site.latitude_deg), "Latitude of the imaging site in degrees"
            ),
            _str(
                "SITELONG",
                sgp_dms(ctx.site.longitude_deg),
                "Longitude of the imaging site in degrees",
            ),
        ]
        if ctx.is_light:
            c += [
                _str("FOCUSER", "ASCOM Driver for SestoSenso", "Focuser name"),
                _raw("FOCPOS", "827840", "Absolute focuser position"),
                _raw("FOCTEMP", dotnet(round(p.ambient_c, 3)), "Focuser temperature"),
            ]
        if ctx.filter:
            c += [
                _str("FWHEEL", "Manual Filter Wheel", "Filter Wheel name"),
                _str("FILTER", ctx.filter, "Filter name"),
            ]
        c.append(_raw("EXPOSURE", _exptime(ctx, dotnet(p.exptime_s)), "Exposure time in seconds"))
        if (t := self._temp(ctx)) is not None:
            c.append(self.temperature_card(ctx, t))
        if p.set_temp_c is not None:
            c.append(_raw("SET-TEMP", dotnet(p.set_temp_c), "Camera cooler target temperature"))
        b = str(ctx.xbin)
        c += [
            _raw("XBINNING", b, "Camera X Bin"),
            _raw("CCDXBIN", b, "Camera X Bin"),
            _raw("YBINNING", b, "Camera Y Bin"),
            _raw("CCDYBIN", b, "Camera Y Bin"),
        ]
        if ctx.is_light:
            alt, _, airmass = altaz(ctx)
            c += [
                _str("TELESCOP", "EQMOD ASCOM HEQ5/6", "Telescope name"),
                _raw("RA", g15(s.target_ra_deg), "Object Right Ascension in degrees"),
                _raw("DEC", g15(s.target_dec_deg), "Object Declination in degrees"),
                _str(
                    "OBJCTRA",
                    sexagesimal(s.target_ra_deg, hours=True, decimals=3),
                    "Object Right Ascension in hms",
                ),
                _str(
                    "OBJCTDEC",
                    sexagesimal(s.target_dec_deg, decimals=3),
                    "Object Declination in degrees",
                ),
                _raw("AIRMASS", g15(airmass), "Average airmass"),
                _raw("OBJCTALT", g15(alt), "Altitude of the object"),
                _raw(
                    "FOCALLEN", dotnet(s.focal_length_mm), "The focal length of the telescope in mm"
                ),
            ]
        if p.gain_setting is not None:
            c.append(_raw("GAIN", f"{p.gain_setting:.0f}", "Camera gain"))
        c.append(_raw("EGAIN", f32(m.egain_e_per_adu), "Electrons Per ADU"))
        if p.offset_setting is not None:
            c.append(_raw("OFFSET", f"{p.offset_setting:.0f}", "Camera offset"))
        return c

    def relpath(self, ctx: StyleContext) -> str:
        """The frame's path below the night directory, as SGP names it."""
        p = ctx.plan
        b = f"{ctx.xbin}x{ctx.xbin}"
        exp = f"{p.exptime_s:g}sec"
        if ctx.is_light:
            t = ctx.target
            filt = f"_{ctx.filter}" if ctx.filter else ""
            return f"{t}/{t}_{exp}_{b}{filt}_frame{p.number}{self.extension}"
        word = p.kind.capitalize()
        if p.kind == "bias":
            return f"Calibration/{word}_{b}_frame{p.number}{self.extension}"
        return f"Calibration/{word}_{exp}_{b}_frame{p.number}{self.extension}"
