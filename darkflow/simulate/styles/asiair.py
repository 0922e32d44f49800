"""ZWO ASIAIR headers and folders.

Modelled on headers written by ZWO's own firmware (ASIAIR/Seestar family): CREATOR and PRODUCER,
XORGSUBF/YORGSUBF, XBINNING and CCDXBIN, XPIXSZ as a float32 widened to double, IMAGETYP
'Light'/'Dark'/'Bias'/'Flat', EXPOSURE and EXPTIME (``300.``), CCD-TEMP, SET-TEMP, DATE-OBS with 6
fractional digits, INSTRUME 'ZWO ASI2600MC Pro', BAYERPAT, GAIN, OFFSET; files under
``Autorun/Light/<target>/Light_<target>_300.0s_Bin1_2600MC_gain100_<date-time>_-10.0C_0001.fit``.
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
    f32,
    g15,
    iso,
)

__all__ = ["AsiairStyle"]


class AsiairStyle(CaptureStyle):
    """Headers, folders and file names as ASIAIR writes them."""

    program = Program.ASIAIR
    display_name = "ASIAIR"
    default_version = "ZWO ASIAIR Plus"
    extension = ".fit"
    type_words: ClassVar[dict[str, str]] = {
        "light": "Light",
        "dark": "Dark",
        "bias": "Bias",
        "flat": "Flat",
    }

    def temperature_card(self, ctx: StyleContext, value: float) -> fits.Card:
        """The sensor-temperature card as ASIAIR writes it."""
        return _raw("CCD-TEMP", g15(value), "sensor temperature in C")

    def cards(self, ctx: StyleContext) -> list[fits.Card]:
        """The header cards of one frame, in ASIAIR's order and formats."""
        p, s, m = ctx.plan, ctx.session, ctx.sensor
        b = str(ctx.xbin)
        exp = _exptime(ctx, f"{p.exptime_s:g}" + ("." if float(p.exptime_s).is_integer() else ""))
        c = [
            _str("CREATOR", self.version(ctx), "Capture software"),
            _str("PRODUCER", "ZWO", "Powered by ZWO"),
            _raw("XORGSUBF", "0", "Subframe X position in binned pixels"),
            _raw("YORGSUBF", "0", "Subframe Y position in binned pixels"),
            _raw("FOCALLEN", f"{s.focal_length_mm:.0f}", "Focal length of telescope in mm"),
            _raw("XBINNING", b, "Camera X Bin"),
            _raw("YBINNING", b, "Camera Y Bin"),
            _raw("CCDXBIN", b, "Camera X Bin"),
            _raw("CCDYBIN", b, "Camera Y Bin"),
            _raw("XPIXSZ", f32(self._pix(ctx)), "pixel size in microns (with binning)"),
            _raw("YPIXSZ", f32(self._pix(ctx)), "pixel size in microns (with binning)"),
            _str("IMAGETYP", self.frame_type(p.kind), "Type of image"),
            _raw("EXPOSURE", exp, "Exposure time in seconds"),
            _raw("EXPTIME", exp, "Exposure time in seconds"),
        ]
        if (t := self._temp(ctx)) is not None:
            c.append(self.temperature_card(ctx, t))
        if m.cooled and p.set_temp_c is not None:
            c.append(_raw("SET-TEMP", g15(p.set_temp_c), "Cooler set temperature in C"))
        if ctx.is_light:
            c += [
                _raw("RA", g15(round(s.target_ra_deg, 6)), "Object Right Ascension in degrees"),
                _raw("DEC", g15(round(s.target_dec_deg, 6)), "Object Declination in degrees"),
            ]
        c += [
            _raw(
                "SITELONG",
                g15(round(ctx.site.longitude_deg, 5)),
                "longitude of the imaging site in degrees",
            ),
            _raw(
                "SITELAT",
                g15(round(ctx.site.latitude_deg, 5)),
                "latitude of the imaging site in degrees",
            ),
            _str("DATE-OBS", iso(p.start_utc, 6), "Image created time"),
        ]
        if ctx.filter:
            c.append(_str("FILTER", ctx.filter, "Filter used when taking image"))
        c.append(_str("INSTRUME", self.instrument(ctx), "Camera model"))
        if m.bayer_pattern:
            c.append(_str("BAYERPAT", m.bayer_pattern, "Bayer pattern"))
        if p.gain_setting is not None:
            c.append(_raw("GAIN", f"{p.gain_setting:.0f}", "Gain Value"))
        if p.offset_setting is not None:
            c.append(_raw("OFFSET", f"{p.offset_setting:.0f}", "Offset Value"))
        c.append(_str("TELESCOP", s.telescope, "Telescope name"))
        if ctx.is_light:
            c.append(_str("OBJECT", ctx.target, "name or catalog number of object being imaged"))
        return c

    def relpath(self, ctx: StyleContext) -> str:
        """The frame's path below the night directory, as ASIAIR names it."""
        p, m = ctx.plan, ctx.sensor
        word = self.type_words[p.kind]
        short = m.name.removeprefix("ZWO ASI").removesuffix(" Pro").replace(" ", "")
        temp = p.measured_temp_c if p.measured_temp_c is not None else 0.0
        gain = f"{p.gain_setting:.0f}" if p.gain_setting is not None else "0"
        exp = f"{p.exptime_s * 1000:.3g}ms" if p.exptime_s < 1 else f"{p.exptime_s:.1f}s"
        stem = f"{exp}_Bin{ctx.xbin}_{short}_gain{gain}_{ctx.local:%Y%m%d-%H%M%S}_{temp:.1f}C_{p.number:04d}"
        if ctx.is_light:
            return f"Autorun/Light/{ctx.target}/Light_{ctx.target}_{stem}{self.extension}"
        return f"Autorun/{word}/{word}_{stem}{self.extension}"
