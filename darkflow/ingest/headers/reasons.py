"""Ingestion reason codes and the result of header normalisation.

Every :class:`IngestReason` carries a one-line description and its eligibility consequence
(``isolated`` or ``rejected``); ``docs/ingestion.md`` shows them as one table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from darkflow.model import Eligibility, FrameMeta, ReasonCode

__all__ = ["IngestReason", "NormalisedHeader", "eligibility_of"]

_ISOLATED = Eligibility.ISOLATED
_REJECTED = Eligibility.REJECTED


class IngestReason(ReasonCode):
    """Why a frame is not (fully) eligible. Members are ``(code, description, consequence)``."""

    def __new__(cls, value: str, description: str = "", consequence: str = _ISOLATED):
        """A member with its ``description`` and the eligibility it gives a frame (``consequence``)."""
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        obj.consequence = Eligibility(consequence)
        return obj

    # ---- the file itself (set by darkflow.ingest.catalog.scan)
    EMPTY_FILE = ("empty_file", "Zero-byte file.", _REJECTED)
    UNREADABLE = (
        "unreadable",
        "File cannot be read (permission denied, I/O error, dangling or looping link).",
        _REJECTED,
    )
    NOT_REGULAR_FILE = (
        "not_regular_file",
        "Not a regular file (a FIFO, device, socket or directory with a FITS name); never opened.",
        _REJECTED,
    )
    NOT_FITS = ("not_fits", "Not a FITS file (no SIMPLE = T header, or corrupt).", _REJECTED)
    TRUNCATED = ("truncated", "File is shorter than the data size its header implies.", _REJECTED)
    NO_IMAGE = ("no_image", "No image HDU in the file (NAXIS = 0 everywhere).", _REJECTED)
    NOT_2D = ("not_2d", "Image is not 2-D (e.g. a debayered RGB cube).", _REJECTED)
    DUPLICATE = (
        "duplicate",
        "Same bytes as an earlier path (see duplicate_of); only the first path is used.",
        _REJECTED,
    )
    INTERNAL_ERROR = ("internal_error", "Unexpected error while reading; see the log.", _REJECTED)
    # ---- header content: rejecting
    MISSING_EXPOSURE = (
        "missing_exposure",
        "No EXPTIME/EXPOSURE keyword, or only blank/unset values (±1.8e308, ±inf).",
        _REJECTED,
    )
    INVALID_EXPOSURE = (
        "invalid_exposure",
        "Exposure keyword is not a non-negative number (NaN, negative, text).",
        _REJECTED,
    )
    INCONSISTENT_KEYS = (
        "inconsistent_keys",
        "Keywords that must agree do not (EXPTIME/EXPOSURE, IMAGETYP/FRAME, "
        "XBINNING/CCDXBIN, OFFSET/BLKLEVEL).",
        _REJECTED,
    )
    INVALID_BINNING = ("invalid_binning", "Binning is not a positive integer.", _REJECTED)
    # ---- header content: isolating
    FRAME_TYPE_INFERRED = (
        "frame_type_inferred",
        "No frame-type keyword (SharpCap); type inferred from the path or file name.",
    )
    UNKNOWN_FRAME_TYPE = (
        "unknown_frame_type",
        "Frame type missing or not recognised, and not inferable from the path.",
    )
    MISSING_TEMPERATURE = (
        "missing_temperature",
        "No sensor temperature (CCD-TEMP/TEMPERAT), or a sentinel value (uncooled camera).",
    )
    MISSING_INSTRUMENT = ("missing_instrument", "No INSTRUME keyword: the camera is unknown.")
    MISSING_DATE = ("missing_date", "No usable DATE-OBS or MJD-OBS: cannot place it in time.")
    INCONSISTENT_TIME = ("inconsistent_time", "DATE-OBS and MJD-OBS disagree.")
    INVALID_VALUE = (
        "invalid_value",
        "A keyword holds NaN or an unparseable value (or an impossible temperature); "
        "the value is ignored.",
    )
    EGAIN_UNUSABLE = (
        "egain_unusable",
        "EGAIN holds no e-/ADU (text such as 'High', NaN, zero): the gain is unknown and is "
        "estimated from the frames.",
        Eligibility.ELIGIBLE,
    )
    ALREADY_CALIBRATED = (
        "already_calibrated",
        "Already calibrated (CALSTAT, PEDESTAL+CALSTAT, master frame, darkflow HISTORY): "
        "never recalibrate.",
    )
    STACKED = ("stacked", "An integration of several frames (STACKCNT/NCOMBINE > 1).")


_RANK = {Eligibility.ELIGIBLE: 0, Eligibility.ISOLATED: 1, Eligibility.REJECTED: 2}


def eligibility_of(reasons: Iterable[IngestReason]) -> Eligibility:
    """Worst consequence of ``reasons`` (``eligible`` when there are none)."""
    worst = Eligibility.ELIGIBLE
    for reason in reasons:
        if _RANK[reason.consequence] > _RANK[worst]:
            worst = reason.consequence
    return worst


@dataclass(frozen=True)
class NormalisedHeader:
    """Result of :func:`normalise`.

    ``details`` holds one human-readable line per problem (``"invalid_value: CCD-TEMP='nan'"``),
    ``date_local`` the naive local time from DATE-LOC (used for the night when no site longitude
    is known).
    """

    meta: FrameMeta
    reasons: tuple[IngestReason, ...] = ()
    eligibility: Eligibility = Eligibility.ELIGIBLE
    details: tuple[str, ...] = ()
    date_local: datetime | None = None

    def __repr__(self) -> str:
        codes = ",".join(self.reasons) or "-"
        return f"<NormalisedHeader {self.meta.path} {self.eligibility} [{codes}]>"
