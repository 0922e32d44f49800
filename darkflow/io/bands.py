"""Band readers: open every FITS file once and read it row band by row band.

A combine never holds the full stack of frames in memory. :class:`BandReader` opens each input
once (one OS file handle per frame for the whole combine), parses the headers itself to find the
first 2-D image HDU and the byte offset of its data, and then serves row bands:

* plain 16-bit integer files (the capture-program case): the rows of the band are
  memory-mapped in place (``mmap`` with ``MAP_POPULATE``; ``numpy.memmap`` cannot pass that
  flag, and without it every page faults separately inside the worker threads) and handed to
  the kernel raw, big-endian bytes in native ``uint16`` arrays, with no copy; the mapping is
  released before the next band, so resident memory stays at the band size;
* other plain files (BITPIX 8, 32, -32, -64, or 16-bit with non-unit BSCALE): the rows are
  read with ``preadv`` and decoded here (big-endian conversion, BLANK → NaN, BSCALE/BZERO)
  into a reused float band buffer;
* gzip-compressed files (``.gz``): the same layout read through a decompressing stream, forward
  only (a backward jump restarts the stream);
* tile-compressed images (``.fz``, a ``BINTABLE`` with ``ZIMAGE = T``): astropy's
  ``CompImageHDU.section``, which decompresses only the tiles of the requested rows.

Truncated or corrupt files raise :class:`~darkflow.exceptions.FitsReadError` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import mmap
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning

from darkflow.exceptions import FitsReadError, IncompatibleFramesError, odd_frames
from darkflow.io.fastheader import BLOCK, data_size, find_end, read_header_bytes, stored_dtype
from darkflow.stats import decode_be16, raw16_exact

__all__ = ["BandReader", "FrameSource", "ImageLayout", "rows_for_budget"]

log = logging.getLogger(__name__)

_RAW_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


@dataclass(frozen=True, eq=False)
class ImageLayout:
    """Where and how the 2-D image of one file is stored."""

    path: str
    header: fits.Header
    hdu_index: int
    shape: tuple[int, int]  # (ny, nx)
    bitpix: int
    bscale: float = 1.0
    bzero: float = 0.0
    blank: int | None = None
    data_offset: int | None = None  # byte offset of the data (None: tile-compressed)
    compression: str = "none"  # "none", "gzip" or "tile"
    primary_header: fits.Header | None = None  # when the image is in an extension

    def get(self, key: str, default=None):
        """Header value of the image HDU, else of the primary HDU (extension images)."""
        if key in self.header:
            return self.header[key]
        if self.primary_header is not None and key in self.primary_header:
            return self.primary_header[key]
        return default

    @property
    def stored_dtype(self) -> str:
        """numpy dtype name of the scaled values, e.g. ``uint16`` for BITPIX=16, BZERO=32768,
        ``int8`` for BITPIX=8, BZERO=-128 (:func:`~darkflow.io.fastheader.stored_dtype`)."""
        return stored_dtype(self.bitpix, self.bzero, self.bscale) or "float64"

    @property
    def work_dtype(self) -> np.dtype:
        """Float type that holds every value exactly (float32 up to 16-bit integers)."""
        if self.bitpix in (8, 16, -32):
            return np.dtype(np.float32)
        return np.dtype(np.float64)

    @property
    def saturation(self) -> float:
        """Largest representable value of integer data (inf for float data)."""
        if self.bitpix < 0:
            return math.inf
        top = 2**self.bitpix - 1 if self.bitpix == 8 else 2 ** (self.bitpix - 1) - 1
        return top * self.bscale + self.bzero

    @property
    def raw16_params(self) -> tuple[float, float, int | None] | None:
        """``(bscale, bzero, blank)`` when the raw bytes can go to the 16-bit kernel directly."""
        if (
            self.bitpix == 16
            and self.compression == "none"
            and raw16_exact(self.bscale, self.bzero)
        ):
            return (self.bscale, self.bzero, self.blank)
        return None


def _read_header_blocks(fh, path: str, offset: int, first: bool) -> bytes:
    """The header blocks of the HDU at byte ``offset`` of the open stream ``fh``."""

    def read_at(pos: int, n: int) -> bytes:
        fh.seek(pos)
        return fh.read(n)

    head = read_at(offset, 80)
    if not head:
        raise FitsReadError(path, "empty file" if first else "no image HDU found")
    if first and not head.startswith(b"SIMPLE  ="):
        raise FitsReadError(path, "not a FITS file (no SIMPLE card)")
    # one block at a time: a gzip stream is never read past the header and sought back
    return read_header_bytes(read_at, offset, chunk=BLOCK, path=path)


def _parse_header(raw: bytes, path: str) -> fits.Header:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as err:
        raise FitsReadError(path, "header is not ASCII (not a FITS file?)") from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            warnings.simplefilter("ignore", AstropyUserWarning)
            return fits.Header.fromstring(text)
    except (ValueError, KeyError, IndexError) as err:
        raise FitsReadError(path, f"corrupt header ({err})") from err


def _int_card(header: fits.Header, key: str, path: str, default: int | None = None) -> int:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise FitsReadError(path, f"header keyword {key} missing or not an integer")
    return int(value)


def _scan_layout(fh, path: str, compression: str) -> ImageLayout:
    """Walk the HDUs of an open stream to the first 2-D image and describe it."""
    offset = 0
    index = 0
    primary = None
    while True:
        raw = _read_header_blocks(fh, path, offset, index == 0)
        header = _parse_header(raw[: find_end(raw)], path)  # the cards before END only
        primary = header if index == 0 else primary
        offset += len(raw)
        naxis = header.get("NAXIS", 0)
        xt = str(header.get("XTENSION", "")).strip().upper()
        if xt == "BINTABLE" and header.get("ZIMAGE") is True and header.get("ZNAXIS") == 2:
            return ImageLayout(
                path,
                header,
                index,
                (0, 0),
                int(header.get("ZBITPIX", 0)),
                compression="tile",
                primary_header=primary,
            )
        if naxis == 2 and (index == 0 or xt == "IMAGE"):
            bitpix = _int_card(header, "BITPIX", path)
            if bitpix not in _RAW_DTYPES:
                raise FitsReadError(path, f"unsupported BITPIX {bitpix}")
            shape = (_int_card(header, "NAXIS2", path), _int_card(header, "NAXIS1", path))
            if min(shape) < 1:
                raise FitsReadError(path, f"empty image of shape {shape}")
            blank = header.get("BLANK") if bitpix > 0 else None
            return ImageLayout(
                path=path,
                header=header,
                hdu_index=index,
                shape=shape,
                bitpix=bitpix,
                bscale=float(header.get("BSCALE", 1.0)),
                bzero=float(header.get("BZERO", 0.0)),
                blank=int(blank)
                if isinstance(blank, int) and not isinstance(blank, bool)
                else None,
                data_offset=offset,
                compression=compression,
                primary_header=primary if index > 0 else None,
            )
        offset += -(-data_size(header, index == 0, path) // BLOCK) * BLOCK
        index += 1


# layouts of plain files already scanned in this process (a master's frames are opened by
# the combine and twice by its hold-out assessment), by the file's identity, change times and
# quick fingerprint (its first and last 64 KiB): a rewritten file is scanned again
_LAYOUTS: dict[tuple, ImageLayout] = {}
_LAYOUTS_MAX = 512


def _known_layout(fh, path: str, st: os.stat_result, fingerprint: str) -> ImageLayout:
    """:func:`_scan_layout` of a plain (not gzip) stream, once per file version."""
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, fingerprint)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _scan_layout(fh, path, "none")
        if layout.compression == "none":
            if len(_LAYOUTS) >= _LAYOUTS_MAX:
                _LAYOUTS.pop(next(iter(_LAYOUTS)), None)  # the oldest
            _LAYOUTS[key] = layout
    return layout


class FrameSource:
    """One input frame, opened once; serves decoded or raw row ranges.

    Use as a context manager or call :meth:`close`. Raises :class:`FitsReadError` on open
    when the file is missing, not FITS, without a 2-D image, or truncated.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = str(path)
        self._fh = None
        self._gz = None
        self._hdul = None
        try:
            self._fh = open(self.path, "rb")  # kept open for the whole combine
            st = os.fstat(self._fh.fileno())
            self.size = st.st_size
            self.fingerprint = self._quick_fingerprint()
            magic = self._fh.read(2)
            self._fh.seek(0)
            if magic == b"\x1f\x8b":
                self._gz = gzip.GzipFile(fileobj=self._fh, mode="rb")
                layout = _scan_layout(self._gz, self.path, "gzip")
            else:
                layout = _known_layout(self._fh, self.path, st, self.fingerprint)
                if layout.compression == "none":
                    need = (
                        layout.data_offset
                        + layout.shape[0] * layout.shape[1] * abs(layout.bitpix) // 8
                    )
                    if self.size < need:
                        raise FitsReadError(
                            self.path,
                            f"truncated: image data needs {need} bytes, file has {self.size}",
                        )
            if layout.compression == "tile":
                layout = self._open_tiled(layout)
            self.layout = layout
        except FitsReadError:
            self.close()
            raise
        except FileNotFoundError as err:
            self.close()
            raise FitsReadError(self.path, "file not found") from err
        except PermissionError as err:
            self.close()
            raise FitsReadError(self.path, "permission denied") from err
        except (OSError, EOFError, ValueError) as err:
            self.close()
            raise FitsReadError(self.path, f"unreadable FITS image ({err})") from err

    def _quick_fingerprint(self, chunk: int = 1 << 16) -> str:
        """SHA-256 of the size and the first and last 64 KiB: cheap identity, not a full hash."""
        h = hashlib.sha256(str(self.size).encode())
        h.update(os.pread(self._fh.fileno(), chunk, 0))
        if self.size > chunk:
            h.update(os.pread(self._fh.fileno(), chunk, max(chunk, self.size - chunk)))
        return h.hexdigest()[:24]

    def _open_tiled(self, layout: ImageLayout) -> ImageLayout:
        self._fh.close()
        self._fh = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            self._hdul = fits.open(self.path, memmap=False, lazy_load_hdus=True)
            hdu = self._hdul[layout.hdu_index]
        if not isinstance(hdu, fits.CompImageHDU):
            raise FitsReadError(self.path, "tile-compressed HDU could not be opened")
        header = hdu.header
        shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        bitpix = int(header["BITPIX"])
        return ImageLayout(
            path=self.path,
            header=header.copy(),
            hdu_index=layout.hdu_index,
            shape=shape,
            bitpix=bitpix,
            bscale=float(header.get("BSCALE", 1.0)),
            bzero=float(header.get("BZERO", 0.0)),
            blank=None,
            data_offset=None,
            compression="tile",
            primary_header=layout.primary_header,
        )

    # ------------------------------------------------------------------ reading
    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the image."""
        return self.layout.shape

    def _row_bytes(self) -> int:
        return self.layout.shape[1] * abs(self.layout.bitpix) // 8

    def _check_rows(self, r0: int, r1: int) -> None:
        if not 0 <= r0 <= r1 <= self.layout.shape[0]:
            raise ValueError(f"rows {r0}:{r1} outside the image of {self.layout.shape[0]} rows")

    def _stream_read(self, r0: int, r1: int, out: np.ndarray) -> None:
        """Read raw big-endian bytes of rows ``r0:r1`` into ``out`` (any dtype, right size)."""
        lay = self.layout
        start = lay.data_offset + r0 * self._row_bytes()
        view = memoryview(out).cast("B")
        if self._gz is not None:
            self._gz.seek(start)  # forward: decompress and skip; backward: restart the stream
            got = self._gz.readinto(view)
            while got < len(view):
                more = self._gz.readinto(view[got:])
                if not more:
                    break
                got += more
            if got < len(view):
                raise FitsReadError(self.path, "truncated compressed data")
            return
        got = os.preadv(self._fh.fileno(), [view], start)
        if got < len(view):
            raise FitsReadError(self.path, f"truncated data (rows end at byte {start + len(view)})")

    def map_raw16(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of plain 16-bit data, memory-mapped in place (read-only, no copy).

        The array holds the file bytes seen as native ``uint16`` (the kernel swaps and
        scales them). The mapping is populated up front (``MAP_POPULATE`` where available:
        one bulk operation instead of a page fault per page in the worker threads) and
        unmapped when the array is released.
        """
        self._check_rows(r0, r1)
        lay = self.layout
        if lay.raw16_params is None:
            raise ValueError(f"{self.path}: not plain 16-bit integer data")
        row_bytes = self._row_bytes()
        start = lay.data_offset + r0 * row_bytes
        aligned = start - start % mmap.ALLOCATIONGRANULARITY
        length = (r1 - r0) * row_bytes
        if length == 0:
            return np.empty((0, lay.shape[1]), np.uint16)
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        try:
            mm = mmap.mmap(
                self._fh.fileno(),
                length + start - aligned,
                flags=flags,
                prot=mmap.PROT_READ,
                offset=aligned,
            )
        except (OSError, ValueError) as err:
            raise FitsReadError(self.path, f"cannot map rows {r0}:{r1} ({err})") from err
        arr = np.frombuffer(mm, dtype=np.uint16, count=length // 2, offset=start - aligned)
        return arr.reshape(r1 - r0, lay.shape[1])

    def read_raw16(self, r0: int, r1: int, out: np.ndarray) -> None:
        """Copy the stored big-endian 16-bit integers of rows ``r0:r1`` into ``out`` (uint16).

        ``out`` must be C-contiguous with shape ``(r1 - r0, nx)``; its values are the file bytes
        seen as native integers (the kernel swaps and scales them).
        """
        self._check_rows(r0, r1)
        if self.layout.raw16_params is None:
            raise ValueError(f"{self.path}: not plain 16-bit integer data")
        if out.dtype != np.uint16 or out.shape != (r1 - r0, self.layout.shape[1]):
            raise ValueError("out must be uint16 with shape (rows, nx)")
        out[...] = self.map_raw16(r0, r1)

    def read_rows(self, r0: int, r1: int, out: np.ndarray) -> None:
        """Decode rows ``r0:r1`` into the float array ``out`` (shape ``(r1 - r0, nx)``).

        Big-endian conversion, BLANK (integer data) → NaN, then BSCALE/BZERO; float data keep
        their NaN/inf (the combine ignores them).
        """
        self._check_rows(r0, r1)
        lay = self.layout
        if out.shape != (r1 - r0, lay.shape[1]) or out.dtype.kind != "f":
            raise ValueError("out must be a float array with shape (rows, nx)")
        try:
            if lay.compression == "tile":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", AstropyUserWarning)
                    out[...] = self._hdul[lay.hdu_index].section[r0:r1, :]
                return
            raw = np.empty((r1 - r0, lay.shape[1]), dtype=_RAW_DTYPES[lay.bitpix])
            self._stream_read(r0, r1, raw)
        except FitsReadError:
            raise
        except (OSError, EOFError, ValueError, TypeError) as err:
            raise FitsReadError(self.path, f"cannot read rows {r0}:{r1} ({err})") from err
        if lay.bitpix < 0:
            out[...] = raw
            if lay.bscale != 1.0 or lay.bzero != 0.0:
                out *= lay.bscale
                out += lay.bzero
            return
        if lay.bitpix == 16:
            decode_be16(
                raw.view(np.uint16), out, bscale=lay.bscale, bzero=lay.bzero, blank=lay.blank
            )
            return
        values = raw.astype(np.float64) * lay.bscale + lay.bzero
        if lay.blank is not None:
            values[raw == lay.blank] = np.nan
        out[...] = values

    def close(self) -> None:
        """Close the file handles (safe to call twice)."""
        for attr in ("_gz", "_fh", "_hdul"):
            obj = getattr(self, attr, None)
            if obj is not None:
                try:
                    obj.close()
                except OSError:  # pragma: no cover - closing a read-only handle
                    pass
                setattr(self, attr, None)

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        lay = getattr(self, "layout", None)
        what = f"{lay.shape} BITPIX={lay.bitpix} {lay.compression}" if lay else "closed"
        return f"<FrameSource {Path(self.path).name} {what}>"


def rows_for_budget(budget_bytes: int, n_frames: int, nx: int, itemsize: int, ny: int) -> int:
    """Band height whose buffer (``n_frames × rows × nx × itemsize``) fits ``budget_bytes``.

    At least one row, at most ``ny``.
    """
    per_row = max(1, n_frames * nx * itemsize)
    return int(max(1, min(ny, budget_bytes // per_row)))


class BandReader:
    """All input frames of one combine, each opened once, served as row bands.

    Parameters
    ----------
    paths
        The FITS files, in combine order.

    Raises
    ------
    FitsReadError
        A file cannot be opened (every file opened so far is closed again).
    IncompatibleFramesError
        The images do not all have the same shape.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]]):
        sources: list[FrameSource] = []
        try:
            for p in paths:
                sources.append(FrameSource(p))
        except BaseException:
            for src in sources:
                src.close()
            raise
        self._setup(sources)

    @classmethod
    def from_sources(cls, sources: Sequence[FrameSource]) -> BandReader:
        """A reader over already opened sources (it takes over closing them)."""
        reader = cls.__new__(cls)
        reader._setup(list(sources))
        return reader

    def _setup(self, sources: list[FrameSource]) -> None:
        self.sources = sources
        if not sources:
            raise ValueError("BandReader needs at least one file")
        shapes = [s.shape for s in sources]
        odd = odd_frames([s.path for s in sources], shapes, "shape")
        if odd:
            self.close()
            raise IncompatibleFramesError("frames of different shape in one combine", odd)
        self.shape = shapes[0]
        params = {s.layout.raw16_params for s in sources}
        self.raw16: tuple[float, float, int | None] | None = (
            params.pop() if len(params) == 1 and None not in params else None
        )
        wide = any(s.layout.work_dtype == np.float64 for s in sources)
        self.work_dtype = np.dtype(np.float64 if wide else np.float32)

    @property
    def n(self) -> int:
        """The number of frames."""
        return len(self.sources)

    @property
    def layouts(self) -> list[ImageLayout]:
        """The image layout of each frame, in order."""
        return [s.layout for s in self.sources]

    @property
    def band_itemsize(self) -> int:
        """Bytes per value in the band buffer (2 for raw 16-bit data, else 4 or 8)."""
        return 2 if self.raw16 is not None else self.work_dtype.itemsize

    def read_rows(self, rows: Sequence[int]) -> np.ndarray:
        """Decoded values of the given rows of every frame: array ``(n, len(rows), nx)``.

        Rows are read in increasing order (cheap for compressed streams).
        """
        rows = sorted(int(r) for r in rows)
        out = np.empty((self.n, len(rows), self.shape[1]), dtype=self.work_dtype)
        for k, src in enumerate(self.sources):
            for i, r in enumerate(rows):
                src.read_rows(r, r + 1, out[k, i : i + 1])
        return out

    def bands(self, band_rows: int) -> Iterator[tuple[int, int, np.ndarray | list[np.ndarray]]]:
        """Yield ``(r0, r1, stack)`` for consecutive bands of at most ``band_rows`` rows.

        With :attr:`raw16` set, ``stack`` is a list of memory-mapped ``(r1 - r0, nx)``
        ``uint16`` arrays, one per frame (the file bytes, read in place); the list is emptied
        (and the bands unmapped) when the next band is requested. Otherwise ``stack`` is one
        reused C-contiguous buffer ``(n, band_rows, nx)`` of decoded floats whose first
        ``r1 - r0`` rows hold the band.
        """
        ny, nx = self.shape
        band_rows = max(1, min(int(band_rows), ny))
        if self.raw16 is not None:
            for r0 in range(0, ny, band_rows):
                r1 = min(ny, r0 + band_rows)
                frames = [src.map_raw16(r0, r1) for src in self.sources]
                yield r0, r1, frames
                frames.clear()  # release the mappings before the next band is mapped
            return
        stack = np.empty((self.n, band_rows, nx), dtype=self.work_dtype)
        for r0 in range(0, ny, band_rows):
            r1 = min(ny, r0 + band_rows)
            for k, src in enumerate(self.sources):
                src.read_rows(r0, r1, stack[k, : r1 - r0])
            yield r0, r1, stack

    def close(self) -> None:
        """Close every frame's file."""
        for src in self.sources:
            src.close()

    def __enter__(self) -> BandReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BandReader {self.n} frames {self.shape} raw16={self.raw16 is not None}>"
