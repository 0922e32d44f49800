"""Auxiliary image planes (uncertainty, counts, masks) written full or tile-compressed.

A plane is ``full`` (an image HDU as it is), ``compressed`` (a tile-compressed image HDU of the
same ``EXTNAME``, which astropy, ccdproc and cfitsio-based programs read like an image) or
``scalar`` (no HDU: the writer puts summary values in the header and the reader rebuilds an
approximate plane from them; see :mod:`darkflow.master._fitsio` and
:func:`darkflow.io.fits.read_calibrated`).

Compression is lossless for integer planes (Rice) and for floating-point planes written with
``lossless=True`` (gzip, slower); an uncertainty plane is quantised (Rice after subtractive
dithering with a fixed seed, so the bytes are reproducible): the quantisation step of each tile
is its own pixel-to-pixel noise divided by ``quantize_level``, so the error is at most half a
step, 1/32 of the plane's own scatter at the default 16, far below the statistical error of the
uncertainty itself.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

__all__ = ["MODES", "TILE_ROWS", "plane_hdu", "plane_mode_of"]

MODES = ("full", "compressed", "scalar")
#: rows per compression tile: few enough tiles that per-tile overhead stays small
TILE_ROWS = 64
#: seed of the subtractive dither of quantised planes (fixed: the same bytes every time)
DITHER_SEED = 7919


def plane_hdu(
    data: np.ndarray,
    name: str,
    mode: str,
    *,
    header: fits.Header | None = None,
    quantize_level: float = 16.0,
    lossless: bool = True,
) -> fits.ImageHDU | fits.CompImageHDU | None:
    """The HDU of one plane in ``mode`` (``None`` for ``scalar``: nothing is written).

    ``lossless=False`` quantises a floating-point plane (see the module docstring); integer
    planes are always stored exactly.
    """
    if mode == "scalar":
        return None
    data = np.ascontiguousarray(data)
    if mode == "full":
        return fits.ImageHDU(data=data, header=header, name=name)
    if mode != "compressed":
        raise ValueError(f"unknown plane mode {mode!r} (one of {', '.join(MODES)})")
    tile = (min(TILE_ROWS, data.shape[0]), data.shape[1])
    if data.dtype.kind in "iub":
        return fits.CompImageHDU(
            data=data, header=header, name=name, compression_type="RICE_1", tile_shape=tile
        )
    if lossless:
        return fits.CompImageHDU(
            data=data,
            header=header,
            name=name,
            compression_type="GZIP_2",
            quantize_level=0.0,
            tile_shape=tile,
        )
    return fits.CompImageHDU(
        data=data,
        header=header,
        name=name,
        compression_type="RICE_1",
        quantize_level=float(quantize_level),
        quantize_method=2,
        dither_seed=DITHER_SEED,
        tile_shape=tile,
    )


def plane_mode_of(hdu: fits.hdu.base.ExtensionHDU | fits.PrimaryHDU) -> str:
    """``compressed`` or ``full``: how a plane read from a file was stored."""
    return "compressed" if isinstance(hdu, fits.CompImageHDU) else "full"
