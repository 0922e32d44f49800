"""Serialisation rule for spec fields added after truth format 1.

The truth of a night (``manifest.json``, ``sensor.json``) lists every field of the specs. Fields
added later (colour response, Bayer offset, sky colour, slit spectra) carry
:data:`OMIT_AT_DEFAULT` in their dataclass metadata and are written only when they differ from
their default, so a night that does not use them writes the same bytes as before they existed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["OMIT_AT_DEFAULT", "omitted"]

OMIT_AT_DEFAULT = {"omit_at_default": True}


def omitted(f: dataclasses.Field, value: Any) -> bool:
    """True when field ``f`` is marked :data:`OMIT_AT_DEFAULT` and ``value`` is its default."""
    if not f.metadata.get("omit_at_default"):
        return False
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return False
    return bool(value == default)
