"""Shared helpers of the ingestion tests: header samples in each capture program's style.

Each sample follows the keyword set and value style that program documents or really writes
(N.I.N.A. 1.10+, Sequence Generator Pro's "Data Stored in the FITS Header" list, MaxIm DL /
SBFITSEXT, SharpCap 4.x, ZWO ASIAIR, INDI ``CCD::addFITSKeywords`` (old: FRAME only; new:
FRAME + IMAGETYP), an observatory pipeline). They are card images (80-column text), not one
template with different values, so quoting, padding and number spelling differ like in real
files. Import explicitly: ``from helpers.ingest import ...``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from astropy.io import fits

BLOCK = 2880


def card(key: str, value: object = None, comment: str = "", *, raw: str | None = None) -> str:
    """One 80-column card. ``raw`` gives the value field verbatim (for odd spellings)."""
    if key in ("COMMENT", "HISTORY", ""):
        return f"{key:<8}{value or ''}"[:80].ljust(80)
    if raw is not None:
        text = raw
    elif isinstance(value, bool):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int | float):
        text = f"{value!r:>20}" if isinstance(value, float) else f"{value:>20}"
    elif value is None:
        text = ""
    else:
        quoted = str(value).replace("'", "''")
        text = f"'{quoted:<8}'"
        text = f"{text:<20}"
    line = f"{key:<8}= {text}"
    if comment:
        line += f" / {comment}"
    return line[:80].ljust(80)


def header_text(cards: list[str]) -> str:
    return "".join(c if len(c) == 80 else c.ljust(80)[:80] for c in cards)


def fits_bytes(cards: list[str], data: np.ndarray | None = None, *, end: bool = True) -> bytes:
    """A complete primary-HDU FITS file from raw cards (structural cards included by caller)."""
    text = header_text([*cards, "END".ljust(80)] if end else cards)
    raw = text.encode("ascii")
    raw += b" " * (-len(raw) % BLOCK)
    if data is not None:
        body = np.ascontiguousarray(data).astype(data.dtype.newbyteorder(">")).tobytes()
        raw += body + b"\0" * (-len(body) % BLOCK)
    return raw


def structural(bitpix: int = 16, shape: tuple[int, ...] = (8, 12), *, bzero: int | None = 32768):
    """SIMPLE/BITPIX/NAXIS cards for an image of numpy ``shape`` (ny, nx)."""
    cards = [card("SIMPLE", True), card("BITPIX", bitpix), card("NAXIS", len(shape))]
    for i, n in enumerate(reversed(shape), start=1):
        cards.append(card(f"NAXIS{i}", n))
    if bzero is not None and bitpix > 0:
        cards += [card("BZERO", bzero), card("BSCALE", 1)]
    return cards


def pixels(shape=(8, 12), bitpix: int = 16, seed: int = 0) -> np.ndarray:
    """Stored (raw, unscaled) pixel array for ``bitpix``: int16 for BZERO=32768 uint16 data."""
    rng = np.random.default_rng(seed)
    dtypes = {8: np.uint8, 16: np.int16, 32: np.int32, -32: np.float32, -64: np.float64}
    return rng.integers(-50, 50, size=shape).astype(dtypes[bitpix])


# --------------------------------------------------------------------------- program samples
def nina_light() -> list[str]:
    """N.I.N.A. 1.10: IMAGETYP 'LIGHT', EXPOSURE+EXPTIME, GAIN setting + EGAIN, BAYERPAT."""
    return [
        card("IMAGETYP", "LIGHT", "Type of exposure"),
        card("EXPOSURE", 120.0, "[s] Exposure duration"),
        card("EXPTIME", 120.0, "[s] Exposure duration"),
        card("DATE-LOC", "2024-03-02T23:19:00.455", "Time of observation (local)"),
        card("DATE-OBS", "2024-03-02T22:19:00.455", "Time of observation (UTC)"),
        card("XBINNING", 1, "X axis binning factor"),
        card("YBINNING", 1, "Y axis binning factor"),
        card("GAIN", 100, "Sensor gain"),
        card("OFFSET", 50, "Sensor gain offset"),
        card("EGAIN", 0.776999998092651, "[e-/ADU] Electrons per A/D unit"),
        card("XPIXSZ", 3.76, "[um] Pixel X axis size"),
        card("INSTRUME", "ZWO ASI2600MC Pro", "Imaging instrument name"),
        card("SET-TEMP", -10.0, "[degC] CCD temperature setpoint"),
        card("CCD-TEMP", -9.8, "[degC] CCD temperature"),
        card("BAYERPAT", "RGGB", "Sensor Bayer pattern"),
        card("XBAYROFF", 0, "Bayer pattern X axis offset"),
        card("YBAYROFF", 0, "Bayer pattern Y axis offset"),
        card("READOUTM", "High Speed", "Sensor readout mode"),
        card("USBLIMIT", 40, "Camera-specific USB setting"),
        card("TELESCOP", "RedCat 51", "Name of telescope"),
        card("SITELAT", 48.2, "[deg] Observation site latitude"),
        card("SITELONG", 16.4, "[deg] Observation site longitude"),
        card("FILTER", "L-eXtreme", "Active filter name"),
        card("OBJECT", "NGC 2244", "Name of the object of interest"),
        card("ROWORDER", "TOP-DOWN", "FITS Image Orientation"),
        card("EQUINOX", 2000.0, "Equinox of celestial coordinate system"),
        card("SWCREATE", "N.I.N.A. 3.0.0.9001", "Software that created this file"),
    ]


def nina_simulator_dark() -> list[str]:
    """N.I.N.A. with the ASCOM simulator: unset setpoint written as -1.79769313486232E+308."""
    return [
        card("IMAGETYP", "DARK", "Type of exposure"),
        card("EXPOSURE", 60.0, "[s] Exposure duration"),
        card("EXPTIME", 60.0, "[s] Exposure duration"),
        card("DATE-OBS", "2024-03-03T01:00:00.000", "Time of observation (UTC)"),
        card("XBINNING", 1),
        card("YBINNING", 1),
        card("EGAIN", 0.8, "[e-/ADU] Electrons per A/D unit"),
        card("INSTRUME", "Camera V2 simulato", "Imaging instrument name"),
        card("SET-TEMP", raw="-1.79769313486232E+308", comment="[degC] CCD temperature setpoint"),
        card("CCD-TEMP", 10, "[degC] CCD temperature"),
        card("SWCREATE", "N.I.N.A. 1.10.1.0", "Software that created this file"),
    ]


def sgp_dark() -> list[str]:
    """Sequence Generator Pro: padded 'DARK    ', EXPOSURE only, CCDXBIN twins, DATE-LOC."""
    return [
        card("OBJECT", "M57     ", "Object name"),
        card("DATE-LOC", "2024-05-30T02:22:49.0968820", "Local observation date"),
        card("DATE-OBS", "2024-05-30T00:22:49.0968820", "UTC observation date"),
        card("IMAGETYP", "DARK    ", "Type of frame"),
        card("CREATOR", "Sequence Generator Pro v4.2.0.1071", "Capture software"),
        card("INSTRUME", "ZWO ASI294MC Pro", "Instrument name"),
        card("SITELAT", "51 3 0.000", "Latitude of the imaging site in degrees"),
        card("SITELONG", "3 43 0.000", "Longitude of the imaging site in degrees"),
        card("EXPOSURE", 300, "Exposure time in seconds"),
        card("CCD-TEMP", -17.5, "Camera cooler temperature"),
        card("SET-TEMP", -18, "Camera cooler target temperature"),
        card("XBINNING", 2, "Camera X Bin"),
        card("CCDXBIN", 2, "Camera X Bin"),
        card("YBINNING", 2, "Camera Y Bin"),
        card("CCDYBIN", 2, "Camera Y Bin"),
        card("GAIN", 120, "Camera gain"),
        card("EGAIN", 3.99000000953674, "Electrons Per ADU"),
        card("OFFSET", 30, "Camera offset"),
    ]


def sgp_dslr_light() -> list[str]:
    """SGP with a Canon DSLR: ISO instead of GAIN, no temperature, BAYERPAT absent."""
    return [
        card("OBJECT", "M31", "Object name"),
        card("DATE-LOC", "2024-09-12T23:40:01.1230000", "Local observation date"),
        card("DATE-OBS", "2024-09-12T21:40:01.1230000", "UTC observation date"),
        card("IMAGETYP", "LIGHT", "Type of frame"),
        card("CREATOR", "Sequence Generator Pro v4.2.0.1071", "Capture software"),
        card("INSTRUME", "Canon EOS 6D", "Instrument name"),
        card("EXPOSURE", 180, "Exposure time in seconds"),
        card("XBINNING", 1, "Camera X Bin (always 1 for Canon cameras)"),
        card("CCDXBIN", 1, "Camera X Bin (always 1 for Canon cameras)"),
        card("YBINNING", 1, "Camera Y Bin (always 1 for Canon cameras)"),
        card("CCDYBIN", 1, "Camera Y Bin (always 1 for Canon cameras)"),
        card("ISO", 800, "The ISO level for this image"),
    ]


def maxim_dark() -> list[str]:
    """MaxIm DL 6: 'Dark Frame', Fortran-style EXPTIME, READOUTM, SBFITSEXT keywords."""
    return [
        card("DATE-OBS", "2024-07-04T14:03:03", "[ISO 8601] UTC date/time of exposure start"),
        card("EXPTIME", raw="   3.00000000000E+002", comment="[sec] Duration of exposure"),
        card("EXPOSURE", raw="   3.00000000000E+002", comment="[sec] Duration of exposure"),
        card("SET-TEMP", raw="  -35.000000000000000", comment="CCD temperature setpoint in C"),
        card("CCD-TEMP", raw="  -34.993802250000002", comment="CCD temperature at start"),
        card("XPIXSZ", 10.8, "Pixel Width in microns (after binning)"),
        card("XBINNING", 2, "Binning level along the X-axis"),
        card("YBINNING", 2, "Binning level along the Y-axis"),
        card("XORGSUBF", 0, "Subframe X position in binned pixels"),
        card("READOUTM", "Monochrome", "Readout mode of image"),
        card("IMAGETYP", "Dark Frame", "Type of image"),
        card("SITELONG", "149 03 52", "Longitude of the imaging location"),
        card("JD", 2460496.0854513887, "Julian Date at start of exposure"),
        card("SWCREATE", "MaxIm DL Version 6.40 230510 26WKQ", "Name of software"),
        card("SBSTDVER", "SBFITSEXT Version 1.0", "Version of SBFITSEXT standard"),
        card("INSTRUME", "SBIG STF-8300M", "Detector instrument name"),
        card("EGAIN", 0.37, "Electronic gain in photoelectrons per ADU"),
        card("CSTRETCH", "Medium", "Initial display stretch mode"),
    ]


def maxim_string_numbers() -> list[str]:
    """MaxIm-style light whose numbers are written as quoted strings ('6.00000000000E+001')."""
    return [
        card("DATE-OBS", "2024-07-04T15:00:00.12", "UTC date/time of exposure start"),
        card("EXPTIME", "6.00000000000E+001", "[sec] Duration of exposure"),
        card("CCD-TEMP", "-2.50000000000E+001", "CCD temperature at start of exposure in C"),
        card("SET-TEMP", "-2.50000000000E+001", "CCD temperature setpoint in C"),
        card("XBINNING", "1", "Binning level along the X-axis"),
        card("YBINNING", "1", "Binning level along the Y-axis"),
        card("IMAGETYP", "Light Frame", "Type of image"),
        card("SWCREATE", "MaxIm DL Version 5.24 140126 0KJR5", "Name of software"),
        card("INSTRUME", "Apogee USB/Net", "Detector instrument name"),
        card("FILTER", "SII", "Filter name"),
    ]


def maxim_calibrated_light() -> list[str]:
    """MaxIm DL light already calibrated: CALSTAT, PEDESTAL and HISTORY lines."""
    return [
        card("DATE-OBS", "2018-07-04T14:03:03", "UTC date/time of exposure start"),
        card("EXPTIME", raw="   3.00000000000E+002", comment="[sec] Duration of exposure"),
        card("CCD-TEMP", -35.0, "CCD temperature at start of exposure in C"),
        card("SET-TEMP", -35.0, "CCD temperature setpoint in C"),
        card("IMAGETYP", "Light Frame", "Type of image"),
        card("INSTRUME", "Apogee USB/Net", "Detector instrument name"),
        card("SWCREATE", "MaxIm DL Version 5.24 140126 0KJR5", "Name of software"),
        card("PEDESTAL", -100, "Correction to add for zero-based ADU"),
        card("HISTORY", " Bias Subtraction (Bias 1, 4864 x 3232, Bin1 x 1, Temp -35C,"),
        card("CALSTAT", "BDF"),
        card("HISTORY", " Dark Subtraction (Dark 10, 4864 x 3232, Bin1 x 1, Temp -35C,"),
    ]


def sharpcap_dark() -> list[str]:
    """SharpCap 4.1: no IMAGETYP, EGAIN at ADC depth + EGAINSAV, BLKLEVEL, CAMID, 7 digits."""
    return [
        card("GAIN", 300),
        card("OFFSET", 8),
        card("BLKLEVEL", 8),
        card("CAMID", "112E900511080900"),
        card("SET-TEMP", 0),
        card("EGAIN", 0.1226, "Electrons per ADU at true ADC bit depth"),
        card("ADCBITS", 12, "Bit depth of camera sensor ADC in current mode"),
        card("BIASADU", 1082.87451171875, "ADU for bias level (no photons) at current sett"),
        card("EGAINSAV", 0.00766, "Electrons per ADU at saved bit depth"),
        card("ROWORDER", "TOP-DOWN"),
        card("EXPTIME", 280, "seconds"),
        card("XBINNING", 1),
        card("YBINNING", 1),
        card("CCD-TEMP", -0.5, "C"),
        card("SWCREATE", "SharpCap v4.1.12946.0, 64 bit"),
        card("DATE-OBS", "2025-03-19T22:51:59.3846323", "System Clock:Est. Frame Start"),
        card("DATE-END", "2025-03-19T23:03:40.4689935", "System Clock:Est. Frame End"),
        card("COLORTYP", "RAW"),
        card("INSTRUME", "ZWO ASI183MM Pro"),
    ]


def asiair_light() -> list[str]:
    """ZWO ASIAIR Plus: 'Light   ', EXPOSURE+EXPTIME, decimal SITELONG, BAYERPAT."""
    return [
        card("CREATOR", "ZWO ASIAIR Plus", "Capture software"),
        card("PRODUCER", "ZWO", "Powered by ZWO"),
        card("XORGSUBF", 0, "Subframe X position in binned pixels"),
        card("XBINNING", 1, "Camera X Bin"),
        card("YBINNING", 1, "Camera Y Bin"),
        card("CCDXBIN", 1, "Camera X Bin"),
        card("CCDYBIN", 1, "Camera Y Bin"),
        card("XPIXSZ", 3.76, "pixel size in microns (with binning)"),
        card("IMAGETYP", "Light", "Type of image"),
        card("EXPOSURE", 300.0, "Exposure time in seconds"),
        card("EXPTIME", 300.0, "Exposure time in seconds"),
        card("CCD-TEMP", -10.1, "sensor temperature in C"),
        card("SET-TEMP", -10.0, "Camera cooler target temperature"),
        card("SITELONG", -111.65, "longitude of the imaging site in degrees"),
        card("SITELAT", 35.2, "latitude of the imaging site in degrees"),
        card("DATE-OBS", "2024-10-05T04:12:00.123456", "Image created time"),
        card("FILTER", "Ha", "Filter used when taking image"),
        card("INSTRUME", "ZWO ASI2600MC Pro", "Camera model"),
        card("BAYERPAT", "RGGB", "Bayer pattern"),
        card("GAIN", 100, "Gain Value"),
        card("OFFSET", 50, "Offset Value"),
        card("OBJECT", "NGC 7000", "name or catalog number of object being imaged"),
    ]


def indi_old_light() -> list[str]:
    """INDI (older drivers): FRAME='Light' only, 'Generated by INDI' comment."""
    return [
        card("INSTRUME", "ZWO CCD ASI294MM Pro", "CCD Name"),
        card("OBSERVER", "Unknown", "Observer name"),
        card("OBJECT", "M 42", "Object name"),
        card("EXPTIME", 1.20000000e2, "Total Exposure Time (s)"),
        card("CCD-TEMP", -15.0, "CCD Temperature (Celsius)"),
        card("PIXSIZE1", 4.63, "Pixel Size 1 (microns)"),
        card("XBINNING", 1, "Binning factor in width"),
        card("YBINNING", 1, "Binning factor in height"),
        card("FRAME", "Light", "Frame Type"),
        card("GAIN", 120, "Gain"),
        card("OFFSET", 30, "Offset"),
        card("DATE-OBS", "2024-01-12T22:01:03.123", "UTC start date of observation"),
        card("COMMENT", "Generated by INDI"),
    ]


def ekos_dark() -> list[str]:
    """Ekos/INDI >= 1.9: FRAME and IMAGETYP ('Dark Frame'), DARKTIME, ROWORDER, SITELONG 0-360."""
    return [
        card("ROWORDER", "TOP-DOWN", "Row Order"),
        card("INSTRUME", "ZWO CCD ASI294MM Pro", "CCD Name"),
        card("EXPTIME", 1.20000000e2, "Total Exposure Time (s)"),
        card("DARKTIME", 1.20000000e2, "Total Dark Exposure Time (s)"),
        card("CCD-TEMP", -15.01, "CCD Temperature (Celsius)"),
        card("XBINNING", 1, "Binning factor in width"),
        card("YBINNING", 1, "Binning factor in height"),
        card("FRAME", "Dark", "Frame Type"),
        card("IMAGETYP", "Dark Frame", "Frame Type"),
        card("GAIN", 120, "Gain"),
        card("OFFSET", 30, "Offset"),
        card("SITELONG", 355.5, "Longitude of the imaging site in degrees"),
        card("DATE-OBS", "2024-01-12T23:30:00.5", "UTC start date of observation"),
        card("COMMENT", "Generated by INDI"),
    ]


def observatory_light() -> list[str]:
    """Observatory pipeline: GAIN is e-/ADU, OBSTYPE-style 'OBJECT', MJD-OBS, CCDXBIN only."""
    return [
        card("ORIGIN", "LCOGT", "Organization responsible for the data"),
        card("INSTRUME", "fa03", "Instrument used"),
        card("OBSTYPE", "EXPOSE", "Observation type"),
        card("IMAGETYP", "OBJECT", "Type of image"),
        card("EXPTIME", 90.0, "[s] Exposure length"),
        card("DARKTIME", 90.5, "[s] Dark current time"),
        card("DATE-OBS", "2024-02-01T03:04:05.678", "[UTC] Start date and time"),
        card("MJD-OBS", 60341.12784349537, "[UTC days] Start date/time (MJD)"),
        card("CCDXBIN", 2, "[pixel] Binning factor, x-axis"),
        card("CCDYBIN", 2, "[pixel] Binning factor, y-axis"),
        card("GAIN", 1.27, "[electrons/count] Pixel gain"),
        card("RDNOISE", 7.1, "[electrons/pixel] Read noise"),
        card("CCD-TEMP", -100.2, "[deg C] CCD temperature"),
        card("SET-TEMP", -100.0, "[deg C] CCD temperature setpoint"),
        card("READMODE", "full_frame", "Readout mode"),
        card("LONG-OBS", -70.8049, "[deg E] Longitude of the site"),
    ]


#: name -> sample builder; used by parametrised tests
SAMPLES = {
    "nina": nina_light,
    "nina_simulator": nina_simulator_dark,
    "sgp": sgp_dark,
    "sgp_dslr": sgp_dslr_light,
    "maxim": maxim_dark,
    "maxim_strings": maxim_string_numbers,
    "maxim_calibrated": maxim_calibrated_light,
    "sharpcap": sharpcap_dark,
    "asiair": asiair_light,
    "indi_old": indi_old_light,
    "ekos": ekos_dark,
    "observatory": observatory_light,
}


def sample_header(name: str, shape=(8, 12), bitpix: int = 16) -> fits.Header:
    """The sample as an astropy Header (with structural cards)."""
    text = header_text([*structural(bitpix, shape), *SAMPLES[name]()])
    return fits.Header.fromstring(text)


def write_sample(path: Path, name: str, *, shape=(8, 12), bitpix: int = 16, seed: int = 0) -> Path:
    """Write a FITS file for the sample ``name`` (raw bytes, exactly the sample's cards)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cards = [*structural(bitpix, shape), *SAMPLES[name]()]
    path.write_bytes(fits_bytes(cards, pixels(shape, bitpix, seed)))
    return path


def write_cards(path: Path, extra: list[str], *, shape=(8, 12), bitpix: int = 16, seed: int = 0):
    """Write a FITS file with structural cards plus ``extra`` cards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fits_bytes([*structural(bitpix, shape), *extra], pixels(shape, bitpix, seed)))
    return path


def gzip_file(src: Path, dst: Path) -> Path:
    dst.write_bytes(gzip.compress(src.read_bytes(), mtime=0))
    return dst
