"""Fast, read-only FITS header reader for catalog scans.

Reads the 2880-byte header blocks up to the ``END`` card itself and parses the 80-character
cards with a small parser (no astropy objects), then derives the image shape and stored dtype
from NAXIS/BITPIX/BZERO/BSCALE. It walks the HDUs only as far as the first 2-D image (primary,
IMAGE extension, or tile-compressed ``.fz`` BINTABLE with ``ZIMAGE = T``), reads gzip streams
(``.fits.gz``) transparently, and compares the file size with the data size the header implies,
so a truncated file is reported without reading its pixels.

Nothing here raises on a bad file: :func:`read_header_info` returns a :class:`HeaderInfo` whose
``error`` names the problem (``"empty"``, ``"unreadable"``, ``"not_fits"``, ``"truncated"``,
``"no_image"``, ``"not_2d"``, ``"not_regular"`` for a FIFO, device, socket or directory). Files are only ever opened for reading, and their timestamps are
left alone.

Parsing rules: strings with ``''`` escapes and ``CONTINUE`` long strings; ``HIERARCH`` keys;
``T``/``F`` logicals; integers; floats (also Fortran ``D`` exponents); blank values as ``None``;
anything else is kept as its text. Quoted numbers such as ``'6.00000000000E+001'`` stay strings
here; :mod:`darkflow.ingest.headers` converts them.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from darkflow.exceptions import FitsReadError
from darkflow.io.paths import NotRegularFileError, file_kind, open_regular

__all__ = [
    "BLOCK",
    "MAX_HEADER_BLOCKS",
    "FastHeader",
    "FitsHeaderError",
    "HeaderInfo",
    "data_size",
    "find_end",
    "parse_header_text",
    "read_header_bytes",
    "read_header_info",
    "stored_dtype",
]

BLOCK = 2880
CARD = 80
_FIRST_READ = BLOCK * 4
MAX_HEADER_BLOCKS = 2000  # 5.7 MB of header: anything longer is not a sane FITS header
_ALWAYS = frozenset(("COMMENT", "HISTORY", "", "CONTINUE", "HIERARCH", "END"))
_AXES = ("NAXIS", "ZNAXIS")
_GZIP_MAGIC = b"\x1f\x8b"


class FastHeader(dict):
    """Keyword → value of one header (first occurrence wins), with its commentary cards.

    ``comments`` maps keyword → the card's comment text, ``history`` and ``comment_cards``
    hold the HISTORY and COMMENT texts in order. Keys are upper case.
    """

    __slots__ = ("comment_cards", "comments", "history")

    def __init__(self) -> None:
        super().__init__()
        self.comments: dict[str, str] = {}
        self.history: list[str] = []
        self.comment_cards: list[str] = []

    def merged(self, other: FastHeader) -> FastHeader:
        """New header with ``other``'s values over this one's (for inherited extension keys)."""
        out = FastHeader()
        out.update(self)
        out.update(other)
        out.comments.update(self.comments)
        out.comments.update(other.comments)
        out.history = [*self.history, *other.history]
        out.comment_cards = [*self.comment_cards, *other.comment_cards]
        return out


@dataclass(frozen=True)
class HeaderInfo:
    """What a header-only read learnt about one file.

    ``header`` is the image HDU's header merged over the primary header (extension keywords
    win), ``None`` when no header could be parsed. ``error`` is ``None`` for a readable 2-D
    image, else one of ``empty``, ``unreadable``, ``not_fits``, ``truncated``, ``no_image``,
    ``not_2d``, with a human-readable ``error_detail``. ``header_digest`` is the CRC-32 of the raw
    header bytes read (cheap first stage of duplicate detection, not a content hash).
    """

    path: str
    file_size: int | None = None
    mtime_ns: int | None = None
    header: FastHeader | None = None
    hdu_index: int = 0
    shape: tuple[int, int] | None = None
    dtype: str | None = None
    compression: str | None = None  # None, "gzip" or "tile"
    data_end: int | None = None  # byte offset where the image data ends (uncompressed stream)
    header_digest: str | None = None
    error: str | None = None
    error_detail: str = ""


class _Crc:
    """CRC-32 accumulator with the ``update``/``hexdigest`` interface of hashlib objects."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


class FitsHeaderError(FitsReadError):
    """The structure of a FITS file is broken where its headers are walked: no ``END`` card
    (the file ends first, or none within ``MAX_HEADER_BLOCKS``), an impossible BITPIX/NAXIS.

    ``code`` is the name :class:`HeaderInfo` reports (``"truncated"``, ``"not_fits"``),
    ``detail`` the human-readable reason; ``path`` is empty when the walker was not given it.
    """

    def __init__(self, code: str, detail: str, path: str = ""):
        super().__init__(path, detail)
        self.code = code
        self.detail = detail


_BadFile = FitsHeaderError  # this module's name for it: a file the scan reports, never raises


# --------------------------------------------------------------------------- card parsing
_NUMBER_START = frozenset("+-.0123456789")


def _parse_value(text: str) -> tuple[Any, str]:
    """Value and comment of the value field of a card (the part after ``= ``)."""
    s = text.lstrip()
    if not s:
        return None, ""
    first = s[0]
    if first == "'":
        j = s.find("'", 1)
        if j > 0 and s[j + 1 : j + 2] != "'":  # common case: no embedded quote
            value, rest = s[1:j], s[j + 1 :]
        else:
            parts: list[str] = []
            i, n, rest = 1, len(s), ""
            while True:
                j = s.find("'", i)
                if j < 0:  # unterminated string: keep what is there
                    parts.append(s[i:])
                    break
                if j + 1 < n and s[j + 1] == "'":
                    parts.append(s[i : j + 1])
                    i = j + 2
                    continue
                parts.append(s[i:j])
                rest = s[j + 1 :]
                break
            value = "".join(parts)
        slash = rest.find("/")
        return value.rstrip(), (rest[slash + 1 :].strip() if slash >= 0 else "")
    slash = s.find("/")
    if slash >= 0:
        token, comment = s[:slash].strip(), s[slash + 1 :].strip()
    else:
        token, comment = s.rstrip(), ""
    if not token:
        return None, comment
    if first in _NUMBER_START:
        if token.isascii() and (token.isdigit() or (first in "+-" and token[1:].isdigit())):
            return int(token), comment
        if "D" in token or "d" in token:
            token = token.replace("D", "E").replace("d", "e")
        try:
            return float(token), comment
        except ValueError:
            pass
        return s[:slash].strip() if slash >= 0 else s.rstrip(), comment
    if token == "T":
        return True, comment
    if token == "F":
        return False, comment
    return token, comment


def parse_header_text(text: str, keys: frozenset[str] | None = None) -> tuple[FastHeader, bool]:
    """Parse header cards from ``text`` (a multiple of 80 characters).

    ``keys`` restricts parsing to those keywords (plus the structural NAXISn/ZNAXISn, the
    HISTORY/COMMENT cards and CONTINUE cards of kept strings); ``None`` parses everything.
    The first occurrence of a keyword wins. Returns the header and whether an ``END`` card
    was found. Never raises.
    """
    header = FastHeader()
    comments = header.comments
    long_key: str | None = None  # keyword of a string value continued with CONTINUE cards
    filtered = keys is not None
    for start in range(0, len(text) - CARD + 1, CARD):
        key = text[start : start + 8].rstrip()
        if filtered and key not in keys and key not in _ALWAYS and not key.startswith(_AXES):
            long_key = None
            continue
        if text[start + 8 : start + 9] == "=" and key not in _ALWAYS:  # plain value card
            long_key = None
            key = key.upper()
            if key in header:
                continue
            value, comment = _parse_value(text[start + 9 : start + CARD])
            header[key] = value
            if comment:
                comments[key] = comment
            if type(value) is str and value.endswith("&"):
                long_key = key
            continue
        card = text[start : start + CARD]
        if key == "END":  # the rule of find_end: the keyword alone decides
            return header, True
        if key == "CONTINUE" and long_key is not None:
            value, comment = _parse_value(card[8:])
            prev = header[long_key]
            if type(value) is str:
                header[long_key] = prev[:-1] + value
                if comment:
                    comments[long_key] = (comments.get(long_key, "") + " " + comment).strip()
                if not value.endswith("&"):
                    long_key = None
                continue
        long_key = None
        if key == "HISTORY":
            header.history.append(card[8:].rstrip())
        elif key in ("COMMENT", ""):
            if card[8:].strip():
                header.comment_cards.append(card[8:].strip())
        elif key == "HIERARCH" or card.startswith("HIERARCH "):
            eq = card.find("=")
            if eq < 0:
                continue
            key = " ".join(card[9:eq].split()).upper()
            if key and key not in header:
                value, comment = _parse_value(card[eq + 1 :])
                header[key] = value
                if comment:
                    comments[key] = comment
    return header, False


# --------------------------------------------------------------------------- data sizes
def stored_dtype(bitpix: Any, bzero: Any = 0, bscale: Any = 1) -> str | None:
    """numpy dtype name of the data as astropy presents it (unsigned for BZERO offsets)."""
    try:
        bz = float(bzero if bzero is not None else 0)
        bs = float(bscale if bscale is not None else 1)
        bitpix = int(bitpix)
    except (TypeError, ValueError, OverflowError):
        return None
    ints = {8: "uint8", 16: "int16", 32: "int32", 64: "int64"}
    if bitpix == -32:
        return "float32"
    if bitpix == -64:
        return "float64"
    if bitpix not in ints:
        return None
    if bs == 1.0:
        if bz == 0.0:
            return ints[bitpix]
        unsigned = {8: -128.0, 16: 32768.0, 32: 2147483648.0, 64: 9223372036854775808.0}
        if bz == unsigned[bitpix]:
            return "int8" if bitpix == 8 else f"uint{bitpix}"
    return "float32" if bitpix in (8, 16) else "float64"


def _int(header: FastHeader, key: str, default: int | None = None) -> int | None:
    value = header.get(key, default)
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def data_size(header: Any, primary: bool, path: str = "") -> int:
    """Bytes of data following ``header`` (any mapping of its keywords; unpadded), per the FITS
    standard: random groups, and PCOUNT/GCOUNT of extensions only.

    Raises
    ------
    FitsHeaderError
        ``not_fits``: BITPIX, NAXIS or an axis length is missing or impossible.
    """
    bitpix = _int(header, "BITPIX")
    naxis = _int(header, "NAXIS")
    if bitpix is None or bitpix not in (8, 16, 32, 64, -32, -64):
        raise _BadFile("not_fits", f"invalid BITPIX {header.get('BITPIX')!r}", path)
    if naxis is None or not 0 <= naxis <= 999:
        raise _BadFile("not_fits", f"invalid NAXIS {header.get('NAXIS')!r}", path)
    if naxis == 0:
        return 0
    dims = []
    for i in range(1, naxis + 1):
        n = _int(header, f"NAXIS{i}")
        if n is None or n < 0:
            raise _BadFile("not_fits", f"invalid NAXIS{i} {header.get(f'NAXIS{i}')!r}", path)
        dims.append(n)
    groups = primary and header.get("GROUPS") is True and dims[0] == 0
    if groups:
        dims = dims[1:]
    count = 1
    for n in dims:
        count *= n
    pcount = _int(header, "PCOUNT", 0) or 0
    gcount = _int(header, "GCOUNT", 1) or 1
    if primary and not groups:
        pcount, gcount = 0, 1
    return abs(bitpix) // 8 * gcount * (pcount + count)


def _padded(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


# --------------------------------------------------------------------------- file access
class _Reader:
    """Byte access to a plain or gzip-compressed file; the first chunk read is kept."""

    def __init__(self, fh: BinaryIO, first: bytes, gz: bool):
        self.fh = fh
        self.gz = gz
        self.first = b"" if gz else first
        self.stream: Any = gzip.GzipFile(fileobj=fh, mode="rb") if gz else fh

    def read_at(self, pos: int, n: int) -> bytes:
        if pos + n <= len(self.first):
            return self.first[pos : pos + n]
        try:
            self.stream.seek(pos)
            return self.stream.read(n)
        except EOFError as err:
            raise _BadFile("truncated", f"compressed stream ends early ({err})") from err
        except gzip.BadGzipFile as err:
            raise _BadFile("not_fits", f"not a valid gzip stream ({err})") from err
        except zlib.error as err:
            raise _BadFile("not_fits", f"corrupt compressed stream ({err})") from err


_END_KEY = b"END     "


def find_end(buf: bytes, start: int = 0) -> int:
    """Offset of the END card in ``buf`` (searched from ``start``, a card boundary), or -1.

    The END card is the first card whose keyword field (columns 1-8) is ``END``; what follows
    it on the card is not looked at (astropy reads such files too).
    """
    at = buf.find(_END_KEY, start)
    while at >= 0:
        if at % CARD == 0:
            return at
        at = buf.find(_END_KEY, at + 1)
    return -1


def read_header_bytes(
    read_at: Callable[[int, int], bytes], pos: int, *, chunk: int = _FIRST_READ, path: str = ""
) -> bytes:
    """The header blocks of the HDU starting at byte ``pos``, through the block of its END card.

    ``read_at(offset, n)`` returns up to ``n`` bytes at ``offset`` (fewer at the end of the
    file); it is asked for ``chunk`` bytes (whole blocks) at a time.

    Raises
    ------
    FitsHeaderError
        ``truncated``: the file ends before the END card (or holds less than one block at
        ``pos``); ``not_fits``: no END card within ``MAX_HEADER_BLOCKS`` blocks.
    """
    buf = b""
    while True:
        got = read_at(pos + len(buf), chunk)
        usable = len(got) - len(got) % BLOCK
        if usable == 0:
            if buf:
                raise _BadFile(
                    "truncated", "truncated header: the file ends before its END card", path
                )
            raise _BadFile(
                "truncated", f"truncated header: less than one 2880-byte block at byte {pos}", path
            )
        searched = len(buf)  # a card never spans two blocks: search the new blocks only
        buf += got[:usable]
        end = find_end(buf, searched)
        if end >= 0:
            return buf[: _padded(end + CARD)]
        if len(got) < chunk:
            raise _BadFile("truncated", "truncated header: the file ends before its END card", path)
        if len(buf) >= MAX_HEADER_BLOCKS * BLOCK:
            raise _BadFile(
                "not_fits", f"no END card within the first {MAX_HEADER_BLOCKS} header blocks", path
            )


def _read_header(
    reader: _Reader, pos: int, digest: Any, keys: frozenset[str] | None
) -> tuple[FastHeader, int]:
    """Parse the header starting at ``pos``; return it and its length in bytes."""
    raw = read_header_bytes(reader.read_at, pos)
    digest.update(raw)
    header, _ = parse_header_text(raw.decode("latin-1"), keys)
    return header, len(raw)


_STRUCTURE = frozenset(
    (
        "SIMPLE",
        "BITPIX",
        "EXTEND",
        "GROUPS",
        "PCOUNT",
        "GCOUNT",
        "XTENSION",
        "BZERO",
        "BSCALE",
        "ZIMAGE",
        "ZBITPIX",
    )
)
_KEYS_CACHE: dict[frozenset[str], frozenset[str]] = {}


def _with_structure(keys: frozenset[str] | None) -> frozenset[str] | None:
    if keys is None:
        return None
    out = _KEYS_CACHE.get(keys)
    if out is None:
        out = _KEYS_CACHE[keys] = frozenset(keys) | _STRUCTURE
    return out


def _gzip_isize(fh: BinaryIO, size: int) -> int | None:
    """Uncompressed size (mod 2**32) from the gzip trailer, or None when too short."""
    if size < 18:
        return None
    fh.seek(size - 4)
    tail = fh.read(4)
    return int.from_bytes(tail, "little") if len(tail) == 4 else None


def _gzip_total_size(fh: BinaryIO) -> int | None:
    """Exact uncompressed length by streaming the whole gzip file (slow path)."""
    fh.seek(0)
    total = 0
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            while block := gz.read(1 << 20):
                total += len(block)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        return None
    return total


def _image_of(header: FastHeader, index: int) -> tuple[str, tuple[int, ...], str | None] | None:
    """("plain"|"tile", dims (NAXIS1 first), dtype) when the HDU holds an image, else None."""
    if index > 0:
        xt = str(header.get("XTENSION", "")).strip().upper()
        if xt == "BINTABLE" and header.get("ZIMAGE") is True:
            zn = _int(header, "ZNAXIS", 0) or 0
            dims = tuple(_int(header, f"ZNAXIS{i}", 0) or 0 for i in range(1, zn + 1))
            dtype = stored_dtype(header.get("ZBITPIX"), header.get("BZERO"), header.get("BSCALE"))
            return "tile", dims, dtype
        if xt not in ("IMAGE", "IUEIMAGE"):
            return None
    n = _int(header, "NAXIS", 0) or 0
    if n == 0:
        return None
    dims = tuple(_int(header, f"NAXIS{i}", 0) or 0 for i in range(1, n + 1))
    return (
        "plain",
        dims,
        stored_dtype(header.get("BITPIX"), header.get("BZERO"), header.get("BSCALE")),
    )


def read_header_info(
    path: str | os.PathLike[str], keys: frozenset[str] | None = None
) -> HeaderInfo:
    """Read the headers of ``path`` up to its first 2-D image, without reading pixel data.

    ``keys`` limits the keywords parsed (see :func:`parse_header_text`); structural keywords
    are always parsed. Never raises for a bad or unreadable file: problems are returned in
    ``error``.
    """
    spath = os.fspath(path)
    try:
        fh = open_regular(spath)  # read only; never written, mtime untouched; never a FIFO
    except OSError as err:
        return _unopenable(spath, err)
    with fh:
        st = os.fstat(fh.fileno())
        size, mtime = st.st_size, st.st_mtime_ns
        if size == 0:
            return HeaderInfo(spath, 0, mtime, error="empty", error_detail="zero-byte file")
        digest = _Crc()
        header: FastHeader | None = None
        try:
            first = fh.read(_FIRST_READ)
            gz = first[:2] == _GZIP_MAGIC
            if gz:
                fh.seek(0)
            reader = _Reader(fh, first, gz)
            if not reader.read_at(0, CARD).startswith(b"SIMPLE  ="):
                raise _BadFile("not_fits", "does not start with a SIMPLE card")
            primary, plen = _read_header(reader, 0, digest, _with_structure(keys))
            header = primary
            if primary.get("SIMPLE") is not True:
                raise _BadFile("not_fits", "SIMPLE is not T")
            result = _walk(reader, size, primary, plen, digest, _with_structure(keys))
            index, header, dims, dtype, kind, data_end = result
            if len(dims) != 2:
                raise _BadFile("not_2d", f"image has {len(dims)} axes {dims}, not 2")
            compression = "gzip" if gz else ("tile" if kind == "tile" else None)
            _check_size(fh, size, gz, data_end)
            return HeaderInfo(
                spath,
                size,
                mtime,
                header=header,
                hdu_index=index,
                shape=(dims[1], dims[0]),
                dtype=dtype,
                compression=compression,
                data_end=data_end,
                header_digest=digest.hexdigest(),
            )
        except _BadFile as bad:
            return HeaderInfo(
                spath,
                size,
                mtime,
                header=header,
                header_digest=digest.hexdigest(),
                error=bad.code,
                error_detail=bad.detail,
            )
        except OSError as err:
            return HeaderInfo(
                spath, size, mtime, error="unreadable", error_detail=err.strerror or str(err)
            )


def _unopenable(path: str, err: OSError) -> HeaderInfo:
    """Why a file could not be opened: not a regular file, a dangling or looping link, ..."""
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        st = size = mtime = None
    if isinstance(err, NotRegularFileError) or (st is not None and not stat.S_ISREG(st.st_mode)):
        kind = file_kind(st.st_mode) if st is not None else "not a regular file"
        return HeaderInfo(path, None, mtime, error="not_regular", error_detail=kind)
    detail = err.strerror or str(err)
    if err.errno == errno.ELOOP:
        detail = "symbolic link loop"
    elif isinstance(err, FileNotFoundError) and os.path.islink(path):
        detail = f"dangling symbolic link to {os.readlink(path)!r}"
    return HeaderInfo(path, size, mtime, error="unreadable", error_detail=detail)


def _walk(
    reader: _Reader,
    size: int,
    primary: FastHeader,
    plen: int,
    digest: Any,
    keys: frozenset[str] | None,
) -> tuple[int, FastHeader, tuple[int, ...], str | None, str, int]:
    """Find the first 2-D image HDU; return (index, merged header, dims, dtype, kind, data end)."""
    header, hlen, pos, index = primary, plen, 0, 0
    saw_cube: tuple[int, ...] | None = None
    while True:
        data = data_size(header, primary=index == 0)
        image = _image_of(header, index)
        if image is not None:
            kind, dims, dtype = image
            if len(dims) == 2 and all(d > 0 for d in dims):
                merged = header if index == 0 else primary.merged(header)
                return index, merged, dims, dtype, kind, pos + hlen + data
            if len(dims) > 2 and saw_cube is None:
                saw_cube = dims
        pos += hlen + _padded(data)
        if not reader.gz and pos >= size:
            break
        if reader.gz:
            probe = reader.read_at(pos, 8)
            if len(probe) < 8:
                break
        index += 1
        try:
            header, hlen = _read_header(reader, pos, digest, keys)
        except _BadFile:
            break  # trailing junk after the last HDU: no further image
        if "XTENSION" not in header:
            break
    if saw_cube is not None:
        return index, primary, saw_cube, None, "plain", 0
    raise _BadFile("no_image", "no 2-D image HDU in the file")


def _check_size(fh: BinaryIO, size: int, gz: bool, data_end: int) -> None:
    if not gz:
        if size < data_end:
            raise _BadFile(
                "truncated", f"file has {size} bytes, header implies at least {data_end}"
            )
        return
    isize = _gzip_isize(fh, size)
    if isize is not None and isize in (data_end % 2**32, _padded(data_end) % 2**32):
        return  # the trailer says the stream ends right after the (padded) image data
    # slow path (more HDUs after the image, multi-member streams, or really truncated)
    total = _gzip_total_size(fh)
    if total is None or total < data_end:
        got = "unreadable" if total is None else f"{total} bytes"
        raise _BadFile("truncated", f"gzip stream holds {got}, header implies at least {data_end}")
