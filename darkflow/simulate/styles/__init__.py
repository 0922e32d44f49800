"""Headers, folders and file names in the style of each capture program.

Each :class:`CaptureStyle` builds a header from the keyword set its program documents or is
seen writing, with the program's spelling, order and number formatting (see
``docs/simulator.md`` for sources and assumptions):

* N.I.N.A. 3.x: ``IMAGETYP 'LIGHT'``, EXPOSURE and EXPTIME, DATE-LOC/DATE-OBS with 7 fractional
  digits, GAIN/OFFSET/EGAIN, SET-TEMP/CCD-TEMP, BAYERPAT, ROWORDER, ``SWCREATE 'N.I.N.A. ...'``;
* Sequence Generator Pro 4.x: ``IMAGETYP 'LIGHT'``, only EXPOSURE (no EXPTIME), CCDXBIN,
  sexagesimal SITELAT, the program in ``CREATOR`` (not SWCREATE);
* MaxIm DL 6: ``IMAGETYP 'Light Frame'``, 17-significant-digit numbers, JD, SBSTDVER,
  ``SWCREATE 'MaxIm DL Version 6.40 ...'``; calibrated frames carry CALSTAT, PEDESTAL, HISTORY;
* SharpCap 4.1: no IMAGETYP (type only from the folder), EGAIN at the ADC bit depth plus
  EGAINSAV at the saved depth, ADCBITS, BLKLEVEL, DATE-END/DATE-AVG, JD_UTC;
* Ekos/INDI: ``FRAME 'Light'`` plus ``IMAGETYP 'Light Frame'``, INSTRUME as the INDI device
  name (``'ZWO CCD ASI2600MM Pro'``), cfitsio E-format numbers, PIXSIZE1/2, DATE-OBS in ms,
  ISOSPEED and no CCD-TEMP for a DSLR (gphoto driver);
* ASIAIR: ``IMAGETYP 'Light'``, CREATOR/PRODUCER, CCDXBIN, float32-widened numbers, DATE-OBS
  with 6 fractional digits, ASIAIR's ``Autorun/Light/<target>/Light_..._0001.fit`` names.

Quirks (``SessionSpec.quirks``): ``"exptime_e3"`` writes EXPTIME/EXPOSURE as
``3.00000000000E+002`` (Windows 3-digit exponent, as ACP-driven MaxIm files show);
``"exptime_string"`` writes EXPTIME as the *string* ``'6.00000000000E+001'``.
"""

from __future__ import annotations

from darkflow.simulate.spec import Program
from darkflow.simulate.styles._base import (
    SENTINEL_TEMPERATURE,
    CaptureStyle,
    StyleContext,
)
from darkflow.simulate.styles.asiair import AsiairStyle
from darkflow.simulate.styles.ekos import EkosStyle
from darkflow.simulate.styles.maxim import MaximStyle
from darkflow.simulate.styles.nina import NinaStyle
from darkflow.simulate.styles.sgp import SgpStyle
from darkflow.simulate.styles.sharpcap import SharpCapStyle

__all__ = [
    "SENTINEL_TEMPERATURE",
    "STYLES",
    "AsiairStyle",
    "CaptureStyle",
    "EkosStyle",
    "MaximStyle",
    "NinaStyle",
    "SgpStyle",
    "SharpCapStyle",
    "StyleContext",
    "get_style",
]

STYLES: dict[Program, CaptureStyle] = {
    Program.NINA: NinaStyle(),
    Program.SGP: SgpStyle(),
    Program.MAXIM: MaximStyle(),
    Program.SHARPCAP: SharpCapStyle(),
    Program.EKOS: EkosStyle(),
    Program.ASIAIR: AsiairStyle(),
}


def get_style(program: Program | str) -> CaptureStyle:
    """The :class:`CaptureStyle` of a program."""
    return STYLES[Program(program)]
