"""IO at the edges: FITS images, fast header reads, band readers and atomic outputs.

The names below are imported on first use, so a module that needs only
:mod:`darkflow.io.atomic` or :mod:`darkflow.io.paths` (the registry, ``darkflow status``) does
not pay for astropy.
"""

from __future__ import annotations

from darkflow._lazy import lazy_names

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
    "atomic_path": "atomic",
    "atomic_write": "atomic",
    "remove_stale_temporaries": "atomic",
    "write_bytes_atomic": "atomic",
    "find_image_hdu": "fits",
    "read_image": "fits",
    "write_image": "fits",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals(), __all__)
