"""Header normalisation: one :class:`~darkflow.model.FrameMeta` from any capture program's header.

:func:`normalise` reads the keyword aliases of :mod:`darkflow.ingest._keywords` (a data table), converts
values written in every style real programs use (numbers as strings like
``'6.00000000000E+001'``, sentinels like ``-1.79769313486232E+308``, padded frame types in any
case, DATE-OBS with up to 7 fractional digits ...), and records every problem as an
:class:`IngestReason`. Each reason has an eligibility consequence (``isolated`` or
``rejected``); a frame's eligibility is the worst consequence of its reasons. The function never
raises on header content: whatever the values, the result is a :class:`NormalisedHeader`.

Modules: :mod:`~darkflow.ingest.headers.reasons` (reason codes, result object),
:mod:`~darkflow.ingest.headers.values` (value parsing), :mod:`~darkflow.ingest.headers.rules` (the
keyword rules). ``docs/ingestion.md`` has the reason table and the keyword table.
"""

from darkflow.ingest.headers.reasons import IngestReason, NormalisedHeader, eligibility_of
from darkflow.ingest.headers.rules import WANTED_KEYWORDS, normalise
from darkflow.ingest.headers.values import parse_fits_datetime, parse_number

__all__ = [
    "WANTED_KEYWORDS",
    "IngestReason",
    "NormalisedHeader",
    "eligibility_of",
    "normalise",
    "parse_fits_datetime",
    "parse_number",
]
