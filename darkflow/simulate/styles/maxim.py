"""MaxIm DL 6 headers and folders.

Keywords from the MaxIm DL help page "FITS File Header Definitions" (SBIG SBFITSEXT 1.0
extensions): IMAGETYP 'Light Frame'/'Dark Frame'/'Bias Frame'/'Flat Frame', EXPTIME and EXPOSURE,
SET-TEMP, CCD-TEMP (at exposure start), XPIXSZ/YPIXSZ, XBINNING/YBINNING, XORGSUBF/YORGSUBF,
READOUTM, JD, EGAIN, SWCREATE, SBSTDVER, CSTRETCH/CBLACK/CWHITE, and for calibrated images
PEDESTAL, CALSTAT, SWMODIFY and HISTORY. Numbers use MaxIm's 17-significant-digit fixed format
(``10.000000000000000``); DATE-OBS has whole seconds.
"""

from __future__ import annotations

import math
from typing import ClassVar

from astropy.io import fits

from darkflow.simulate.spec import Program
from darkflow.simulate.styles._base import (
    CaptureStyle,
    StyleContext,
    _exptime,
    _raw,
    _str,
    iso,
    julian_date,
    maxim17,
    sexagesimal,
)

__all__ = ["MaximStyle"]


class MaximStyle(CaptureStyle):
    """Headers, folders and file names as MaxIm DL writes them."""

    program = Program.MAXIM
    display_name = "MaxIm DL"
    default_version = "6.40 230107 27YT7"
    extension = ".fit"
    type_words: ClassVar[dict[str, str]] = {
        "light": "Light Frame",
        "dark": "Dark Frame",
        "bias": "Bias Frame",
        "flat": "Flat Frame",
    }

    def temperature_card(self, ctx: StyleContext, value: float) -> fits.Card:
        """The sensor-temperature card as MaxIm DL writes it."""
        return _raw("CCD-TEMP", maxim17(value), "CCD temperature at start of exposure in C", "/")

    def cards(self, ctx: StyleContext) -> list[fits.Card]:
        """The header cards of one frame, in MaxIm DL's order and formats."""
        p, s, m = ctx.plan, ctx.session, ctx.sensor
        exp = _exptime(ctx, maxim17(p.exptime_s))
        pix = maxim17(self._pix(ctx))
        b = str(ctx.xbin)
        c = [
            _str("DATE-OBS", iso(p.start_utc, 0), "YYYY-MM-DDThh:mm:ss observation start, UT"),
            _raw("EXPTIME", exp, "Exposure time in seconds", "/"),
            _raw("EXPOSURE", exp, "Exposure time in seconds", "/"),
        ]
        if p.set_temp_c is not None:
            c.append(_raw("SET-TEMP", maxim17(p.set_temp_c), "CCD temperature setpoint in C", "/"))
        if (t := self._temp(ctx)) is not None:
            c.append(self.temperature_card(ctx, t))
        c += [
            _raw("XPIXSZ", pix, "Pixel Width in microns (after binning)", "/"),
            _raw("YPIXSZ", pix, "Pixel Height in microns (after binning)", "/"),
            _raw("XBINNING", b, "Binning factor in width", "/"),
            _raw("YBINNING", b, "Binning factor in height", "/"),
            _raw("XORGSUBF", "0", "Subframe X position in binned pixels", "/"),
            _raw("YORGSUBF", "0", "Subframe Y position in binned pixels", "/"),
        ]
        if m.readout_mode:
            c.append(_str("READOUTM", m.readout_mode, "Readout mode of image"))
        if ctx.filter:
            c.append(_str("FILTER", ctx.filter, "Filter used when taking image"))
        c += [
            _str("IMAGETYP", self.frame_type(p.kind), "Type of image"),
            _str("SITELAT", sexagesimal(ctx.site.latitude_deg), "Latitude of the imaging location"),
            _str(
                "SITELONG", sexagesimal(ctx.site.longitude_deg), "Longitude of the imaging location"
            ),
            _raw("JD", maxim17(julian_date(p.start_utc)), "Julian Date at start of exposure", "/"),
        ]
        if ctx.is_light:
            area = math.pi * (s.aperture_mm / 2) ** 2
            c += [
                _raw(
                    "FOCALLEN", maxim17(s.focal_length_mm), "Focal length of telescope in mm", "/"
                ),
                _raw("APTDIA", maxim17(s.aperture_mm), "Aperture diameter of telescope in mm", "/"),
                _raw("APTAREA", maxim17(area), "Aperture area of telescope in mm^2", "/"),
            ]
        c += [
            _raw(
                "EGAIN",
                maxim17(m.egain_e_per_adu),
                "Electronic gain in photoelectrons per ADU",
                "/",
            ),
            _str(
                "SWCREATE",
                f"MaxIm DL Version {self.version(ctx)}",
                "Name of software that created the image",
            ),
            _str("SBSTDVER", "SBFITSEXT Version 1.0", "Version of SBFITSEXT standard in effect"),
        ]
        if ctx.is_light:
            c += [
                _str("OBJECT", ctx.target, "Target object name"),
                _str("TELESCOP", s.telescope, "Telescope name"),
            ]
        c += [
            _str("INSTRUME", self.instrument(ctx), "Detector instrument name"),
            _str("OBSERVER", "Remote Observer", "Observer name"),
            _str("SWOWNER", ctx.site.name, "Licensed owner of software"),
            _str("CSTRETCH", "Medium", "Initial display stretch mode"),
            _raw("CBLACK", str(int(m.bias_adu)), "Initial display black level in ADUs", "/"),
            _raw("CWHITE", str(int(m.bias_adu + 1500)), "Initial display white level in ADUs", "/"),
        ]
        if p.calibrated:
            c += [
                _raw("PEDESTAL", "-100", "Correction to add for zero-based ADU", "/"),
                _str(
                    "SWMODIFY",
                    f"MaxIm DL Version {self.version(ctx)}",
                    "Name of software that modified the image",
                ),
                _str("CALSTAT", "BD"),
            ]
        return c

    def header(self, ctx: StyleContext) -> fits.Header:
        """The frame's header, with MaxIm's calibration HISTORY on frames it calibrated."""
        header = super().header(ctx)
        if ctx.plan.calibrated:
            temp = ctx.plan.set_temp_c if ctx.plan.set_temp_c is not None else 0.0
            nx = ctx.sensor.nx // ctx.xbin
            ny = ctx.sensor.ny // ctx.xbin
            header.add_history(
                f"Bias Subtraction (Bias 1, {nx} x {ny}, Bin{ctx.xbin} x {ctx.xbin}, Temp {temp:.0f}C,"
            )
            header.add_history(" Exp Time 0ms)")
            header.add_history(
                f"Dark Subtraction (Dark 1, {nx} x {ny}, Bin{ctx.xbin} x {ctx.xbin}, Temp {temp:.0f}C,"
            )
            header.add_history(f" Exp Time {ctx.plan.exptime_s:g}s)")
        return header

    def relpath(self, ctx: StyleContext) -> str:
        """The frame's path below the night directory, as MaxIm DL users name it."""
        p = ctx.plan
        if ctx.is_light:
            t = ctx.target.replace(" ", "")
            filt = f"-{ctx.filter}" if ctx.filter else ""
            return f"{ctx.target}/{t}-{p.number:03d}{filt}{self.extension}"
        if p.kind == "bias":
            return f"Calibration/Bias-{p.number:03d}{self.extension}"
        word = p.kind.capitalize()
        return f"Calibration/{word}-{p.exptime_s:g}s-{p.number:03d}{self.extension}"
