"""Structured JSON-lines event logs: one JSON object per event, appended and flushed.

Library code logs human-readable lines through ``logging``; decisions and job records that tools
and reports read back go through an :class:`EventLog`. Each event is one ``write`` of a whole
line, cut back if the disk fills; only a crash in the middle of that write (kill -9, power loss)
can leave a partial last line, which :func:`read_events` skips.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from darkflow.io.jsonsafe import to_jsonable

__all__ = ["EventLog", "dumps", "read_events", "to_jsonable"]


def _default(obj: Any) -> Any:
    """What the JSON encoder cannot write itself, as :func:`to_jsonable` converts it."""
    if isinstance(obj, Enum | datetime | Path):
        return to_jsonable(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """One compact JSON text of ``obj``, with the conversions of :func:`to_jsonable`.

    The C encoder writes the plain values in one pass and calls back only for the others
    (enums, datetimes, paths, numpy scalars); a value it would write differently from
    :func:`to_jsonable` (a NaN or an infinity, a key that is not a string) sends the whole
    object through :func:`to_jsonable` instead, so the text is the same either way.
    """
    try:
        return json.dumps(
            obj,
            default=_default,
            allow_nan=False,
            sort_keys=sort_keys,
            separators=(",", ":"),
            check_circular=False,
        )
    except (ValueError, TypeError, RecursionError):
        return json.dumps(to_jsonable(obj), sort_keys=sort_keys, separators=(",", ":"))


class EventLog:
    """Append JSON lines to ``path``; thread-safe, flushed after every event."""

    def __init__(self, path: str | os.PathLike[str], **context: Any):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.context = context
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        """Append one event (a JSON line with a timestamp, the logger's context and ``fields``)."""
        record = {"ts": datetime.now(UTC).isoformat(), "event": event, **self.context, **fields}
        line = dumps(record) + "\n"
        with self._lock:
            _append_whole(self.path, line.encode("utf-8"))


def _append_whole(path: Path, data: bytes) -> None:
    """Append ``data`` as one ``write``; if the disk fills (a short or failed write), cut the
    file back to where it was, so the log only ever holds whole lines, then raise."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write (disk full?)", str(path))
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def read_events(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the events of a JSON-lines log, skipping a torn last line."""
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
