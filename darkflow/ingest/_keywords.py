"""Keyword alias table for header normalisation (data, not logic).

Every normalised field lists the FITS keywords that may hold it, in priority order; the first
usable one wins, and keywords that must agree with each other are checked by
:mod:`darkflow.ingest.headers`. Frame-type values, capture-program signatures, path tokens and
"already calibrated" markers live here too, so supporting a new program means adding rows here
(and a test sample), never an ``if``-chain. ``docs/ingestion.md`` shows the same table; a test
checks that every keyword below is documented there.

Sources: the programs' own documentation and real headers (SGP "Data Stored in the FITS
Header", MaxIm DL / SBFITSEXT keyword definitions, N.I.N.A. 1.10+ files, SharpCap 4.x files,
INDI ``CCD::addFITSKeywords``, ZWO ASIAIR/Seestar files, APT files).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CALIBRATED_HISTORY_MARKERS",
    "CALIBRATED_KEYWORDS",
    "CONSISTENT_KEYWORDS",
    "DEFAULT_PROGRAM",
    "FIELD_KEYWORDS",
    "FITS_EXTENSIONS",
    "FRAME_TYPE_VALUES",
    "PATH_TYPE_TOKENS",
    "PROGRAMS",
    "PROGRAM_KEYWORDS",
    "STACK_COUNT_KEYWORDS",
    "ProgramRule",
]

# --------------------------------------------------------------------------- field aliases
#: normalised field -> keywords, highest priority first.
FIELD_KEYWORDS: dict[str, tuple[str, ...]] = {
    # frame type: IMAGETYP (N.I.N.A., SGP, MaxIm, APT, ASIAIR, INDI >= 1.9), FRAME (INDI)
    "frame_type": ("IMAGETYP", "FRAME", "FRAMETYP", "IMGTYPE", "OBSTYPE"),
    # exposure in seconds; EXPTIME and EXPOSURE must agree when both are present
    "exptime_s": ("EXPTIME", "EXPOSURE", "EXPOSED", "EXP"),
    "darktime_s": ("DARKTIME",),
    # measured sensor temperature (SGP writes TEMPERAT)
    "ccd_temp_c": ("CCD-TEMP", "CCD_TEMP", "CCDTEMP", "TEMPERAT", "SENSTEMP", "DET-TEMP"),
    "set_temp_c": ("SET-TEMP", "SET_TEMP", "SETTEMP", "TEMP_SET", "CCD-SET"),
    # GAIN: camera setting in amateur files, e-/ADU in observatory files (see PROGRAMS)
    "gain": ("GAIN",),
    # e-/ADU of the saved values (EGAIN for most programs; SharpCap: EGAINSAV, see PROGRAMS)
    "egain": ("EGAIN", "E-GAIN", "CVF"),
    # DSLR sensitivity: used as the gain setting when no GAIN setting exists
    "iso": ("ISO", "ISOSPEED", "ISO-SPEE"),
    # offset / black level; OFFSET and BLKLEVEL must agree when both are present
    "offset": ("OFFSET", "BLKLEVEL"),
    "pedestal": ("PEDESTAL",),
    "xbin": ("XBINNING", "CCDXBIN", "BINX", "HBIN"),
    "ybin": ("YBINNING", "CCDYBIN", "BINY", "VBIN"),
    "binning": ("BINNING",),  # combined form, e.g. '2*2' or '2x2'
    "readout_mode": ("READOUTM", "READMODE", "READOUT"),
    "instrument": ("INSTRUME", "CAMERA"),
    "camera_id": ("CAMERAID", "CAMID", "CAMSN", "INSTRSN", "SERIALNO"),
    "date_obs": ("DATE-OBS", "DATE_OBS", "DATE-BEG"),
    "time_obs": ("TIME-OBS", "UT", "UTSTART"),  # only when DATE-OBS holds a date alone
    "mjd_obs": ("MJD-OBS", "MJD_OBS"),
    "date_loc": ("DATE-LOC", "DATE_LOC"),
    "bayer_pattern": ("BAYERPAT", "CFAIMAGE", "COLORTYP", "BAYER"),
    "row_order": ("ROWORDER",),
    "bayer_xoffset": ("XBAYROFF", "BAYOFFX"),
    "bayer_yoffset": ("YBAYROFF", "BAYOFFY"),
    "site_longitude": ("SITELONG", "LONG-OBS", "OBSLONG", "GEOLON"),
    "object_name": ("OBJECT", "OBJNAME"),
    "filter_name": ("FILTER", "FILTERS", "FILT-1"),
}

#: keywords that must agree when both are present (else the frame is rejected as inconsistent);
#: later aliases in FIELD_KEYWORDS that are not listed here are fallbacks only
CONSISTENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "frame_type": ("IMAGETYP", "FRAME"),
    "exptime_s": ("EXPTIME", "EXPOSURE"),
    "offset": ("OFFSET", "BLKLEVEL"),
    "xbin": ("XBINNING", "CCDXBIN"),
    "ybin": ("YBINNING", "CCDYBIN"),
}

#: keywords that name the capture program
PROGRAM_KEYWORDS: tuple[str, ...] = ("SWCREATE", "CREATOR", "SOFTWARE", "PROGRAM", "ORIGIN")


@dataclass(frozen=True)
class ProgramRule:
    """How one capture program writes its headers.

    ``patterns`` are case-insensitive substrings of the program keywords (or COMMENT cards)
    that identify it. ``gain`` says what GAIN means: ``"setting"`` (camera gain setting),
    ``"e_per_adu"`` or ``"auto"`` (decided from the other keywords). ``egain`` lists the
    keywords holding e-/ADU of the *saved* values; ``egain_adc`` is a (keyword, bit-depth
    keyword) pair holding e-/ADU at the ADC bit depth, scaled to 16-bit saved values when the
    saved-value keyword is missing.
    """

    name: str
    patterns: tuple[str, ...]
    gain: str = "setting"
    egain: tuple[str, ...] = ("EGAIN",)
    egain_adc: tuple[str, str] | None = None


PROGRAMS: tuple[ProgramRule, ...] = (
    ProgramRule("N.I.N.A.", ("N.I.N.A", "NINA ")),
    ProgramRule("SGP", ("SEQUENCE GENERATOR",)),
    ProgramRule("MaxIm DL", ("MAXIM DL", "MAXIMDL", "MAXIM_DL")),
    # SharpCap: EGAIN is e-/ADU at the ADC bit depth (ADCBITS), EGAINSAV at the saved depth
    ProgramRule("SharpCap", ("SHARPCAP",), egain=("EGAINSAV",), egain_adc=("EGAIN", "ADCBITS")),
    ProgramRule("ASIAIR", ("ASIAIR",)),
    ProgramRule("Seestar", ("SEESTAR",)),
    ProgramRule("Ekos", ("KSTARS", "EKOS")),
    ProgramRule("INDI", ("GENERATED BY INDI", "INDI ")),
    ProgramRule("APT", ("ASTRO PHOTOGRAPHY TOOL", "APT V")),
    ProgramRule("Voyager", ("VOYAGER",)),
    ProgramRule("CCDciel", ("CCDCIEL",)),
    ProgramRule("TheSkyX", ("THESKYX", "THE SKY X")),
    ProgramRule("FireCapture", ("FIRECAPTURE",)),
    ProgramRule("PixInsight", ("PIXINSIGHT",), gain="auto"),
    ProgramRule("Siril", ("SIRIL",), gain="auto"),
    ProgramRule("Astro Pixel Processor", ("ASTRO PIXEL PROCESSOR",), gain="auto"),
    ProgramRule("darkflow", ("DARKFLOW",), gain="auto"),
)

#: rule for files whose program is unknown (observatories, home-made scripts)
DEFAULT_PROGRAM = ProgramRule("", (), gain="auto", egain=("EGAIN", "E-GAIN", "CVF"))

# --------------------------------------------------------------------------- frame types
#: upper-cased IMAGETYP/FRAME value (spaces collapsed, a trailing " FRAME" removed)
#: -> (frame type, is a master/calibrated product)
FRAME_TYPE_VALUES: dict[str, tuple[str, bool]] = {
    "LIGHT": ("light", False),
    "OBJECT": ("light", False),
    "SCIENCE": ("light", False),
    "SNAPSHOT": ("light", False),  # N.I.N.A. snapshot
    "DARK": ("dark", False),
    "BIAS": ("bias", False),
    "ZERO": ("bias", False),
    "OFFSET": ("bias", False),
    "FLAT": ("flat", False),
    "FLAT FIELD": ("flat", False),
    "FLATFIELD": ("flat", False),
    "SKY FLAT": ("flat", False),
    "SKYFLAT": ("flat", False),
    "DOME FLAT": ("flat", False),
    "DOMEFLAT": ("flat", False),
    "TWILIGHT FLAT": ("flat", False),
    "DARKFLAT": ("darkflat", False),
    "DARK FLAT": ("darkflat", False),
    "FLATDARK": ("darkflat", False),
    "FLAT DARK": ("darkflat", False),
    "DARK-FLAT": ("darkflat", False),
    "FLAT-DARK": ("darkflat", False),
    "MASTER LIGHT": ("light", True),
    "MASTER DARK": ("dark", True),
    "MASTERDARK": ("dark", True),
    "MASTER BIAS": ("bias", True),
    "MASTERBIAS": ("bias", True),
    "MASTER FLAT": ("flat", True),
    "MASTERFLAT": ("flat", True),
    "MASTER DARKFLAT": ("darkflat", True),
    "MASTER DARK FLAT": ("darkflat", True),
}

#: file/directory name tokens -> frame type, for files without a frame-type keyword
#: (SharpCap). Checked on the file name first, then on up to three parent directories.
PATH_TYPE_TOKENS: dict[str, str] = {
    "darkflat": "darkflat",
    "darkflats": "darkflat",
    "flatdark": "darkflat",
    "flatdarks": "darkflat",
    "dark": "dark",
    "darks": "dark",
    "bias": "bias",
    "biases": "bias",
    "biass": "bias",
    "flat": "flat",
    "flats": "flat",
    "light": "light",
    "lights": "light",
}

# --------------------------------------------------------------------------- calibrated frames
#: keywords whose (non-empty) presence means the frame was already calibrated (MaxIm CALSTAT,
#: Astro Pixel Processor CALFRAME)
CALIBRATED_KEYWORDS: tuple[str, ...] = ("CALSTAT", "CALFRAME")

#: case-insensitive HISTORY substrings that mean the frame was already calibrated
CALIBRATED_HISTORY_MARKERS: tuple[str, ...] = (
    "darkflow",  # written by darkflow itself
    "dark subtraction",  # MaxIm DL
    "bias subtraction",  # MaxIm DL
    "imagecalibration",  # PixInsight
    "dark-subtracted",
    "dark subtracted",
    "calibrated with",
)

#: keywords counting frames stacked into this file; a value > 1 means an integration
STACK_COUNT_KEYWORDS: tuple[str, ...] = ("STACKCNT", "SNAPSHOT", "NCOMBINE", "NUMFRAME")

# --------------------------------------------------------------------------- files
#: lower-case file name endings scanned in directories (explicitly named files are always read)
FITS_EXTENSIONS: tuple[str, ...] = (
    ".fits",
    ".fit",
    ".fts",
    ".fits.gz",
    ".fit.gz",
    ".fts.gz",
    ".fz",
)
