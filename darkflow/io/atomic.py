"""Atomic file output: write to a temporary file in the target directory, fsync, rename.

A crash at any moment leaves either the previous file or the complete new one, never half a file;
the temporary name starts with ``.`` and ends with ``.tmp`` so an interrupted run leaves at worst
an orphan that :func:`remove_stale_temporaries` deletes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from darkflow.exceptions import OutputError
from darkflow.io import paths

__all__ = [
    "atomic_path",
    "atomic_write",
    "is_disk_full",
    "remove_stale_temporaries",
    "write_bytes_atomic",
]

TMP_SUFFIX = ".tmp"


_TMP_NAME = re.compile(r"\.(\d+)\.[0-9a-f]{8}\.tmp(\.[A-Za-z0-9]+)?$")


_MAX_NAME = 255  # bytes in one file name on every common file system


def _temp_name(target: Path, keep_suffix: bool = False) -> Path:
    extra = target.suffix if keep_suffix else ""
    tail = f".{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}{extra}"
    name = target.name
    if len(os.fsencode(f".{name}{tail}")) > _MAX_NAME:  # a long target name still fits
        digest = hashlib.blake2b(os.fsencode(name), digest_size=4).hexdigest()
        name = f"{os.fsdecode(os.fsencode(name)[:120])}~{digest}"
    return target.with_name(f".{name}{tail}")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(
    target: str | os.PathLike[str],
    *,
    fsync: bool = True,
    keep_suffix: bool = False,
    written: Callable[[Path], object] | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    ``keep_suffix`` ends the temporary name with the target's suffix too (for writers that
    check it, e.g. papermill wants ``.ipynb``). ``written(tmp)`` is called once the block has
    written the file, before it is synced and renamed (e.g. to hash it meanwhile).

    The caller writes the temporary path with any library (astropy, pandas...). On error the
    temporary file is removed and the error re-raised, wrapped in :class:`OutputError` when it is
    an ``OSError`` (read-only directory, full disk, permission denied).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create directory {target.parent}: {err.strerror or err}"
        ) from err
    tmp = _temp_name(target, keep_suffix)
    try:
        yield tmp
        if written is not None:
            written(tmp)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        if fsync:
            _fsync_dir(target.parent)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OutputError):
            raise
        raise OutputError(f"cannot write {target}: {err.strerror or err}") from err
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_write(
    target: str | os.PathLike[str], mode: str = "w", *, fsync: bool = True, **open_kwargs
) -> Iterator[IO]:
    """Open a temporary file for writing and rename it onto ``target`` when the block succeeds."""
    if "w" not in mode:
        raise ValueError("atomic_write only writes new files (mode must contain 'w')")
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
        # file names are bytes: one that is not UTF-8 is written with its stray bytes as \xNN
        open_kwargs.setdefault("errors", paths.ERRORS)
        open_kwargs.setdefault("newline", "")
    with atomic_path(target, fsync=fsync) as tmp:
        try:
            fh = open(tmp, mode, **open_kwargs)
        except OSError as err:
            raise OutputError(f"cannot write {target}: {err.strerror or err}") from err
        with fh:
            yield fh


_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e)


def is_disk_full(err: BaseException | None) -> bool:
    """Whether ``err`` (or an error it was raised from) says the file system is full or over
    quota: ``ENOSPC``/``EDQUOT``, SQLite's "database or disk is full", or astropy's free-space
    check (an ``OSError`` without errno, raised over a short write)."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
            return True
        if isinstance(err, OSError) and "Not enough space on disk" in str(err):
            return True
        if type(err).__name__ == "OperationalError" and "disk is full" in str(err):
            return True
        # astropy re-raises a failed write without its errno (numpy's "N requested and M
        # written" has none either), saying so in words when the disk has no room left
        if isinstance(err, OSError) and "Not enough space on disk" in str(err):
            return True
        err = err.__cause__ or err.__context__
        seen += 1
    return False


def disk_full_error(err: BaseException) -> Exception:
    """The one message a full disk gives, whichever write hit it first."""
    from darkflow.exceptions import DiskFullError

    return DiskFullError(
        f"disk full: {err}. The run stopped early and is marked failed (interrupted if even "
        "that could not be written); free space on the work directory's disk and run again "
        "(finished masters and lights are kept)."
    )


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``target`` atomically (see :func:`atomic_write`)."""
    mode = "wb" if isinstance(data, bytes) else "w"
    with atomic_write(target, mode) as fh:
        fh.write(data)


def remove_stale_temporaries(
    root: str | os.PathLike[str], *, is_alive: Callable[[int], bool] | None = None
) -> int:
    """Delete temporaries left below ``root`` by dead processes; return how many were removed."""
    alive = is_alive or _pid_alive
    removed = 0
    # one os.walk on strings (every run walks its whole work directory: a year of nights is
    # some ten thousand files); symlinked folders are not followed, as Path.rglob does not
    for folder, dirs, files in os.walk(root):
        for name in (*files, *dirs):
            match = _TMP_NAME.search(name) if name.startswith(".") else None
            if not match:
                continue
            pid = int(match.group(1))
            if alive(pid):  # includes this process: its writers may be busy
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
                removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
