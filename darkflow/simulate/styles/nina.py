"""N.I.N.A. (Nighttime Imaging 'N' Astronomy) 3.x headers and folders.

Keywords from the N.I.N.A. documentation ("Advanced > File formats > FITS") and headers it writes:
IMAGETYP LIGHT/DARK/BIAS/FLAT, EXPOSURE and EXPTIME, DATE-LOC and DATE-OBS with 7 fractional
digits (.NET round-trip format), GAIN, OFFSET, EGAIN, XPIXSZ, SET-TEMP, CCD-TEMP, READOUTM,
BAYERPAT/XBAYROFF/YBAYROFF, USBLIMIT, telescope/site/target/focuser keywords, ROWORDER, EQUINOX
and SWCREATE. Default file pattern ``$$TARGETNAME$$/$$IMAGETYPE$$/$$DATETIME$$_$$FILTER$$_
$$SENSORTEMP$$_$$EXPOSURETIME$$s_$$FRAMENR$$``.
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
    g15,
    iso,
    sexagesimal,
)

__all__ = ["NinaStyle"]


class NinaStyle(CaptureStyle):
    """Headers, folders and file names as N.I.N.A. writes them."""

    program = Program.NINA
    display_name = "N.I.N.A."
    default_version = "3.1.2.9001"
    type_words: ClassVar[dict[str, str]] = {
        "light": "LIGHT",
        "dark": "DARK",
        "bias": "BIAS",
        "flat": "FLAT",
    }

    def cards(self, ctx: StyleContext) -> list[fits.Card]:
        """The header cards of one frame, in N.I.N.A.'s order and formats."""
        p, s, m = ctx.plan, ctx.session, ctx.sensor
        exp = _exptime(ctx, g15(p.exptime_s))
        c = [
            _str("IMAGETYP", self.frame_type(p.kind), "Type of exposure"),
            _raw("EXPOSURE", exp, "[s] Exposure duration"),
            _raw("EXPTIME", exp, "[s] Exposure duration"),
            _str("DATE-LOC", iso(ctx.local, 7), "Time of observation (local)"),
            _str("DATE-OBS", iso(p.start_utc, 7), "Time of observation (UTC)"),
            _raw("XBINNING", str(ctx.xbin), "X axis binning factor"),
            _raw("YBINNING", str(ctx.xbin), "Y axis binning factor"),
        ]
        if p.gain_setting is not None:
            c.append(_raw("GAIN", f"{p.gain_setting:.0f}", "Sensor gain"))
        if p.offset_setting is not None:
            c.append(_raw("OFFSET", f"{p.offset_setting:.0f}", "Sensor gain offset"))
        c += [
            _raw("EGAIN", g15(m.egain_e_per_adu), "[e-/ADU] Electrons per A/D unit"),
            _raw("XPIXSZ", g15(self._pix(ctx)), "[um] Pixel X axis size"),
            _raw("YPIXSZ", g15(self._pix(ctx)), "[um] Pixel Y axis size"),
            _str("INSTRUME", self.instrument(ctx), "Imaging instrument name"),
        ]
        if m.cooled and p.set_temp_c is not None:
            c.append(_raw("SET-TEMP", g15(p.set_temp_c), "[degC] CCD temperature setpoint"))
        if (t := self._temp(ctx)) is not None:
            c.append(self.temperature_card(ctx, t))
        if m.readout_mode:
            c.append(_str("READOUTM", m.readout_mode, "Sensor readout mode"))
        if m.bayer_pattern:
            c += [
                _str("BAYERPAT", m.bayer_pattern, "Sensor Bayer pattern"),
                _raw("XBAYROFF", str(m.bayer_offset[0]), "Bayer pattern X axis offset"),
                _raw("YBAYROFF", str(m.bayer_offset[1]), "Bayer pattern Y axis offset"),
            ]
        c.append(_raw("USBLIMIT", "40", "Camera-specific USB setting"))
        c += [
            _str("TELESCOP", s.telescope, "Name of telescope"),
            _raw("FOCALLEN", g15(s.focal_length_mm), "[mm] Focal length"),
            _raw("FOCRATIO", g15(round(s.focal_length_mm / s.aperture_mm, 2)), "Focal ratio"),
        ]
        if ctx.is_light:
            alt, az, airmass = altaz(ctx)
            c += [
                _raw("RA", g15(round(s.target_ra_deg, 6)), "[deg] RA of telescope"),
                _raw("DEC", g15(round(s.target_dec_deg, 6)), "[deg] Declination of telescope"),
                _raw("CENTALT", g15(round(alt, 6)), "[deg] Altitude of telescope"),
                _raw("CENTAZ", g15(round(az, 6)), "[deg] Azimuth of telescope"),
                _raw("AIRMASS", g15(round(airmass, 6)), "Airmass at frame center (Gueymard 1993)"),
                _str("PIERSIDE", "West", "Telescope pointing state"),
            ]
        c += [
            _raw("SITEELEV", g15(ctx.site.elevation_m), "[m] Observation site elevation"),
            _raw("SITELAT", g15(ctx.site.latitude_deg), "[deg] Observation site latitude"),
            _raw("SITELONG", g15(ctx.site.longitude_deg), "[deg] Observation site longitude"),
        ]
        if ctx.filter:
            c += [
                _str("FWHEEL", "ZWO EFW", "Filter Wheel name"),
                _str("FILTER", ctx.filter, "Active filter name"),
            ]
        if ctx.is_light:
            c += [
                _str("OBJECT", ctx.target, "Name of the object of interest"),
                _str(
                    "OBJCTRA",
                    sexagesimal(s.target_ra_deg, hours=True),
                    "[H M S] RA of imaged object",
                ),
                _str(
                    "OBJCTDEC",
                    sexagesimal(s.target_dec_deg),
                    "[D M S] Declination of imaged object",
                ),
                _str("FOCNAME", "ZWO EAF", "Focusing equipment name"),
                _raw("FOCPOS", "12840", "[step] Focuser position"),
                _raw("FOCUSPOS", "12840", "[step] Focuser position"),
                _raw("FOCTEMP", g15(round(p.ambient_c, 2)), "[degC] Focuser temperature"),
            ]
        c += [
            _str("ROWORDER", "TOP-DOWN", "FITS Image Orientation"),
            _raw("EQUINOX", "2000.0", "Equinox of celestial coordinate system"),
            _str(
                "SWCREATE", f"N.I.N.A. {self.version(ctx)} (x64)", "Software that created this file"
            ),
        ]
        return c

    def relpath(self, ctx: StyleContext) -> str:
        """The frame's path below the night directory, from N.I.N.A.'s file pattern."""
        p = ctx.plan
        folder = ctx.target if ctx.is_light else "Calibration"
        temp = p.measured_temp_c if p.measured_temp_c is not None else 0.0
        name = (
            f"{ctx.local:%Y-%m-%d_%H-%M-%S}_{ctx.filter or ''}_{temp:.2f}_"
            f"{p.exptime_s:.2f}s_{p.number:04d}{self.extension}"
        )
        return f"{folder}/{self.frame_type(p.kind)}/{name}"
