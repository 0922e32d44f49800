"""FITS images in and out.

Reading keeps unsigned 16-bit data unsigned (BITPIX=16 with BZERO=32768 → ``uint16``, never
wrapped), finds the first HDU holding a 2-D image, and turns every astropy/OS failure into a
:class:`~darkflow.exceptions.FitsReadError` that says what is wrong. Writing is atomic.

A calibrated light (:func:`write_calibrated`, :func:`read_calibrated`) is the float32 image in
the primary HDU and its 1-sigma uncertainty, written as ``[output] light_uncertainty`` says:
``full`` (an ``UNCERT`` image extension, which ccdproc's ``CCDData.read`` takes as its
uncertainty), ``compressed`` (the same extension tile-compressed, quantised) or ``scalar`` (no
extension: header cards from which :func:`read_calibrated` rebuilds the plane).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from darkflow.exceptions import FitsReadError
from darkflow.io.atomic import atomic_path
from darkflow.io.planes import plane_hdu, plane_mode_of

__all__ = [
    "CalibratedPlanes",
    "find_image_hdu",
    "read_calibrated",
    "read_image",
    "write_calibrated",
    "write_image",
]


def find_image_hdu(hdul: fits.HDUList) -> int:
    """Index of the first HDU with 2-D image data (primary or an image/compressed extension)."""
    for i, hdu in enumerate(hdul):
        if isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
            naxis = hdu.header.get("ZNAXIS" if isinstance(hdu, fits.CompImageHDU) else "NAXIS", 0)
            if naxis == 2 or (isinstance(hdu, fits.CompImageHDU) and hdu.header.get("NAXIS") == 2):
                return i
    raise ValueError("no 2-D image HDU")


def read_image(
    path: str | os.PathLike[str], *, hdu: int | None = None, dtype: str | None = None
) -> tuple[np.ndarray, fits.Header]:
    """Read the 2-D image of ``path`` with its header.

    Parameters
    ----------
    path
        FITS file (also ``.fits.gz`` and tile-compressed ``.fz``).
    hdu
        HDU index; by default the first HDU with a 2-D image.
    dtype
        Convert to this dtype (e.g. ``"float32"``); by default the stored, scaled type is kept
        (``uint16`` for BZERO=32768 data).

    Raises
    ------
    FitsReadError
        Missing, unreadable, truncated or corrupt file, or no 2-D image in it.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                truncated = [w for w in caught if "truncated" in str(w.message)]
                if truncated:
                    raise FitsReadError(str(path), f"truncated file ({truncated[0].message})")
                index = find_image_hdu(hdul) if hdu is None else hdu
                header = hdul[index].header.copy()
                data = hdul[index].data
                if data is None or data.ndim != 2:
                    raise FitsReadError(str(path), "HDU holds no 2-D image")
                data = np.array(data, dtype=dtype, copy=True)
    except FitsReadError:
        raise
    except FileNotFoundError as err:
        raise FitsReadError(str(path), "file not found") from err
    except PermissionError as err:
        raise FitsReadError(str(path), "permission denied") from err
    except (OSError, ValueError, TypeError, IndexError, KeyError) as err:
        raise FitsReadError(str(path), f"unreadable FITS image ({err})") from err
    if data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    return data, header


def write_image(
    path: str | os.PathLike[str],
    data: np.ndarray,
    header: fits.Header | None = None,
    *,
    extensions: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]] = (),
    extension_headers: Mapping[str, fits.Header] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``data`` as the primary HDU (plus named image extensions) atomically."""
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(path)
    if header is not None and np.asarray(data).dtype.kind == "f":
        header = header.copy()
        for key in ("BZERO", "BSCALE", "BLANK"):  # integer scaling does not apply to float data
            header.remove(key, ignore_missing=True, remove_all=True)
    primary = fits.PrimaryHDU(data=data, header=header)
    hdus = [primary]
    items = extensions.items() if isinstance(extensions, Mapping) else extensions
    for name, plane in items:
        ext_header = (extension_headers or {}).get(name)
        hdus.append(fits.ImageHDU(data=plane, header=ext_header, name=name))
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, output_verify="silentfix", checksum=False)
    return path


# ----------------------------------------------------------------------------- calibrated lights
@dataclass(frozen=True, eq=False)
class CalibratedPlanes:
    """A calibrated light as read: pixels, 1-sigma uncertainty, and how the latter was stored
    (``full``, ``compressed``, or ``scalar``: rebuilt from the header's noise model)."""

    data: np.ndarray
    uncertainty: np.ndarray
    uncertainty_mode: str
    header: fits.Header = field(repr=False)


def write_calibrated(
    path: str | os.PathLike[str],
    data: np.ndarray,
    uncertainty: np.ndarray,
    header: fits.Header,
    *,
    mode: str = "full",
    cards: Mapping[str, tuple[Any, str]] | None = None,
    quantize_level: float = 16.0,
    written: Callable[[Path], object] | None = None,
) -> Path:
    """Write a calibrated light atomically: float32 pixels, the uncertainty as ``mode`` says.

    ``cards`` (:func:`darkflow.subtract.uncertainty_cards`) summarise the uncertainty in the
    header, so that a ``scalar`` one can be rebuilt; ``DFUMODE`` says how it was written.
    ``written``: see :func:`darkflow.io.atomic.atomic_path`.
    """
    header = header.copy()
    for key in ("BZERO", "BSCALE", "BLANK"):  # integer scaling does not apply to float data
        header.remove(key, ignore_missing=True, remove_all=True)
    for key, card in (cards or {}).items():
        header[key] = card
    header["DFUMODE"] = (mode, "UNCERT plane: full, compressed or scalar")
    ext = fits.Header()
    ext["COMMENT"] = "1-sigma uncertainty of the calibrated light (ADU)"
    hdus = [fits.PrimaryHDU(data=np.asarray(data, dtype=np.float32), header=header)]
    unc = plane_hdu(
        np.asarray(uncertainty, dtype=np.float32),
        "UNCERT",
        mode,
        header=ext,
        quantize_level=quantize_level,
        lossless=False,
    )
    if unc is not None:
        hdus.append(unc)
    path = Path(path)
    with atomic_path(path, written=written) as tmp:
        fits.HDUList(hdus).writeto(tmp, output_verify="silentfix", checksum=False)
    return path


def read_calibrated(path: str | os.PathLike[str]) -> CalibratedPlanes:
    """Read a calibrated light written by darkflow with its uncertainty, whatever its mode.

    A ``scalar`` uncertainty is rebuilt per pixel from the header's noise model
    (:func:`darkflow.stats.noise.rebuild_uncertainty`).

    Raises
    ------
    FitsReadError
        Unreadable, or neither an ``UNCERT`` extension nor the header cards to rebuild it.
    """
    path = Path(path)
    data, header = read_image(path, hdu=0, dtype="float32")
    mode = str(header.get("DFUMODE", "full"))
    if mode != "scalar":
        try:
            with fits.open(path, memmap=False) as hdul:
                hdu = hdul["UNCERT"]
                unc = np.array(hdu.data, dtype=np.float32)
                stored = plane_mode_of(hdu)
        except KeyError as err:
            raise FitsReadError(str(path), "no UNCERT extension (not a calibrated light?)") from err
        except (OSError, ValueError, TypeError) as err:
            raise FitsReadError(str(path), f"unreadable UNCERT extension ({err})") from err
        return CalibratedPlanes(data, unc, stored, header)
    if "DFUNV0" not in header and "DFUNCMED" not in header:
        raise FitsReadError(str(path), "DFUMODE = 'scalar' without DFUNV0 / DFUNCMED cards")
    from darkflow.stats.noise import rebuild_uncertainty  # the noise model of the cards

    return CalibratedPlanes(data, rebuild_uncertainty(data, header), "scalar", header)
