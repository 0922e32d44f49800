"""IO at the edges: FITS images, fast header reads, band readers and atomic outputs.

The names below are imported on first use, so a module that needs only
:mod:`darkflow.io.atomic` or :mod:`darkflow.io.paths` (the registry, ``darkflow status``) does
not pay for astropy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_write",
    "find_image_hdu",
    "read_image",
    "remove_stale_temporaries",
    "write_bytes_atomic",
    "write_image",
]

_HOMES = {
    "atomic_path": "darkflow.io.atomic",
    "atomic_write": "darkflow.io.atomic",
    "remove_stale_temporaries": "darkflow.io.atomic",
    "write_bytes_atomic": "darkflow.io.atomic",
    "find_image_hdu": "darkflow.io.fits",
    "read_image": "darkflow.io.fits",
    "write_image": "darkflow.io.fits",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'darkflow.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
