"""File names as the real world writes them, and files that are not files.

Two hazards at the edge of every scan:

* **File name bytes.** POSIX names are bytes; Python decodes the ones that are not UTF-8 with
  ``surrogateescape`` (``b"\\xff"`` becomes ``"\\udcff"``), which no UTF-8 writer, SQLite or
  FITS card accepts. :func:`printable` turns such a name into text every format takes, with each
  undecodable byte written as ``\\xNN``; :func:`card_text` also escapes everything that is not
  printable ASCII, which is all a FITS card may hold. The ``darkflow-bytes`` codec error handler
  does the same inside any text stream (``open(..., errors="darkflow-bytes")``).
* **Special files.** Opening a FIFO blocks until a writer appears, a device can stream forever,
  a socket cannot be opened at all. :func:`open_regular` opens without blocking and refuses
  anything that is not a regular file, so a scan never hangs on a named pipe called ``x.fits``.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from typing import BinaryIO

__all__ = [
    "NotRegularFileError",
    "card_text",
    "check_regular",
    "file_identity",
    "file_kind",
    "from_printable",
    "open_regular",
    "printable",
]

_ERRORS = "darkflow-bytes"


def _escape_bytes(err: UnicodeError) -> tuple[str, int]:
    """Codec error handler: an escaped byte (``\\udcNN``) as ``\\xNN``, anything else as ``\\u``."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = []
    for ch in err.object[err.start : err.end]:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that surrogateescape could not decode
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out), err.end


codecs.register_error(_ERRORS, _escape_bytes)

#: the codec error handler that writes undecodable file-name bytes as ``\\xNN``
ERRORS = _ERRORS


def printable(text: str) -> str:
    """``text`` unchanged when it is valid Unicode, else with each stray byte as ``\\xNN``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", _ERRORS).decode("utf-8")
    return text


_ESCAPED_BYTE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")


def from_printable(text: str) -> str:
    """Inverse of :func:`printable` (for names stored as text, e.g. in SQLite): ``\\xNN`` with
    NN >= 80 back to the byte it stood for. A name that really holds those four characters
    comes back changed, which only costs a recomputation where it is used as a cache path."""
    if "\\x" not in text:
        return text
    return _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m[1], 16)), text)


def card_text(text: str) -> str:
    """``text`` as printable ASCII for a FITS card: other characters escaped (``\\xe8``,
    ``\\u2013``), stray name bytes as ``\\xNN``."""
    escaped = printable(text).encode("ascii", "backslashreplace").decode("ascii")
    return "".join(ch if " " <= ch <= "~" else f"\\x{ord(ch):02x}" for ch in escaped)


class NotRegularFileError(OSError):
    """The path exists but is a FIFO, device, socket or directory (never opened for data)."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` describes, in words (``"a regular file"``, ``"a socket"`` ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _refuse(path: str, mode: int) -> NotRegularFileError:
    return NotRegularFileError(errno.EINVAL, f"{file_kind(mode)}, not a regular file", path)


def check_regular(path: str | os.PathLike[str]) -> None:
    """Raise :class:`NotRegularFileError` (or the ``OSError`` of ``stat``) unless ``path`` is a
    regular file (symbolic links followed). A dangling link raises ``FileNotFoundError``."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(os.fspath(path), st.st_mode)


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once (it would otherwise wait for a writer);
    the open descriptor is then checked, so a file swapped for a pipe after a ``stat`` is caught
    too. On a regular file ``O_NONBLOCK`` changes nothing.
    """
    spath = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(spath, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(spath, st.st_mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_identity(path: str | os.PathLike[str]) -> tuple[str, int, int, int] | None:
    """``(path, size, mtime_ns, inode)``: what tells a file replaced or rewritten since it was
    read from the same file (``None`` when it is gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
