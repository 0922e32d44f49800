"""SharpCap 4.1 headers and folders.

SharpCap writes no IMAGETYP: the frame type is only in the folder and file name. Keywords seen
in SharpCap 4.1 files: SWCREATE 'SharpCap v4.1.xxxxx.0, 64 bit', INSTRUME, CAMID, GAIN, OFFSET and
BLKLEVEL, SET-TEMP, CCD-TEMP, EGAIN (e-/ADU at the ADC's true bit depth), ADCBITS, BIASADU,
EGAINSAV (e-/ADU at the saved 16-bit depth), RELGAIN, ROWORDER, EXPTIME, XPIXSZ, XBINNING,
DATE-OBS/DATE-END/DATE-AVG (7 fractional digits), JD_UTC, RDNOISE, BAYERPAT. Numbers use .NET
formatting (``EXPTIME = 60``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from astropy.io import fits

from darkflow.simulate.spec import Program
from darkflow.simulate.styles._base import (
    CaptureStyle,
    StyleContext,
    _exptime,
    _raw,
    _str,
    dotnet,
    g15,
    iso,
    julian_date,
)

__all__ = ["SharpCapStyle"]


class SharpCapStyle(CaptureStyle):
    """Headers, folders and file names as SharpCap writes them."""

    program = Program.SHARPCAP
    display_name = "SharpCap"
    default_version = "4.1.13007.0, 64 bit"
    frame_type_keys = ()
    type_words: ClassVar[dict[str, str]] = {
        "light": "Light",
        "dark": "Dark",
        "bias": "Bias",
        "flat": "Flat",
    }

    def temperature_card(self, ctx: StyleContext, value: float) -> fits.Card:
        """The sensor-temperature card as SharpCap writes it."""
        return _raw("CCD-TEMP", dotnet(value), "C")

    def cards(self, ctx: StyleContext) -> list[fits.Card]:
        """The header cards of one frame, in SharpCap's order and formats."""
        p, s, m = ctx.plan, ctx.session, ctx.sensor
        end = p.start_utc + timedelta(seconds=p.exptime_s)
        mid = p.start_utc + timedelta(seconds=p.exptime_s / 2)
        c = [
            _str("SWCREATE", f"SharpCap v{self.version(ctx)}"),
            _str("INSTRUME", self.instrument(ctx)),
            _str("CAMID", m.serial),
        ]
        if ctx.is_light:
            c.append(_str("OBJECT", ctx.target))
        if p.gain_setting is not None:
            c.append(_raw("GAIN", f"{p.gain_setting:.0f}", ""))
            relgain = 10 ** (p.gain_setting / 200.0)
            c.append(
                _raw("RELGAIN", g15(round(relgain, 3)), "Multiplicative gain relative to minumum")
            )
        if p.offset_setting is not None:
            c += [
                _raw("OFFSET", f"{p.offset_setting:.0f}", ""),
                _raw("BLKLEVEL", f"{p.offset_setting:.0f}", ""),
            ]
        if m.cooled and p.set_temp_c is not None:
            c.append(_raw("SET-TEMP", dotnet(p.set_temp_c), ""))
        c += [
            _raw(
                "EGAIN",
                dotnet(round(m.egain_adc_e_per_adu, 4)),
                "Electrons per ADU at true ADC bit depth",
            ),
            _raw("ADCBITS", str(m.adc_bits), "Bit depth of camera sensor ADC in current mode"),
            _raw("BIASADU", g15(m.bias_adu), "ADU for bias level (no photons) at current settings"),
            _raw(
                "EGAINSAV",
                dotnet(round(m.egain_e_per_adu, 5)),
                "Electrons per ADU at saved bit depth",
            ),
        ]
        if ctx.is_light:
            c.append(_raw("FOCALLEN", dotnet(s.focal_length_mm), ""))
        c += [
            _str("ROWORDER", "TOP-DOWN", ""),
            _raw("EXPTIME", _exptime(ctx, dotnet(p.exptime_s)), "seconds"),
            _raw("XPIXSZ", dotnet(self._pix(ctx)), "microns, includes binning if any"),
            _raw("YPIXSZ", dotnet(self._pix(ctx)), "microns, includes binning if any"),
            _raw("XBINNING", str(ctx.xbin), ""),
            _raw("YBINNING", str(ctx.xbin), ""),
        ]
        if (t := self._temp(ctx)) is not None:
            c.append(self.temperature_card(ctx, t))
        c += [
            _raw("DATE-OBS", f"'{iso(p.start_utc, 7)}'", "System Clock:Est. Frame Start"),
            _raw("DATE-END", f"'{iso(end, 7)}'", "System Clock:Est. Frame End"),
            _raw("DATE-AVG", f"'{iso(mid, 7)}'", "System Clock:Est. Frame Mid Point"),
            _raw("JD_UTC", g15(julian_date(mid)), "Julian Date at mid exposure"),
            _raw("RDNOISE", dotnet(round(m.read_noise_e, 2)), "Read noise in electrons"),
        ]
        if m.bayer_pattern:
            c.append(_str("BAYERPAT", m.bayer_pattern))
        return c

    def relpath(self, ctx: StyleContext) -> str:
        """The frame's path below the night directory, as SharpCap names it."""
        p = ctx.plan
        day = f"{ctx.block_local:%Y-%m-%d}"
        stamp = f"{ctx.block_local:%H_%M_%S}"
        word = self.type_words[p.kind]
        folder = ctx.target if ctx.is_light else f"{word}s" if p.kind != "bias" else "Bias"
        return f"SharpCap Captures/{day}/{folder}/{stamp}/{word}_{p.index + 1:05d}{self.extension}"
