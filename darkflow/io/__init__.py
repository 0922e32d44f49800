"""IO at the edges: FITS images, fast header reads, band readers and atomic outputs."""

from darkflow.io.atomic import (
    atomic_path,
    atomic_write,
    remove_stale_temporaries,
    write_bytes_atomic,
)
from darkflow.io.fits import find_image_hdu, read_image, write_image

__all__ = [
    "atomic_path",
    "atomic_write",
    "find_image_hdu",
    "read_image",
    "remove_stale_temporaries",
    "write_bytes_atomic",
    "write_image",
]
