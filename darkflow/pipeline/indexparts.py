"""What the calibration index measured on each master, kept in the work directory.

The index of a configuration is fitted on every master of it, so its cache key changes whenever
a night adds a master. What it measures on a master's pixels (the summary with its hot-, warm-
and glow-pixel vectors, the level jitter, the reference pixel sets, a bias's noise and level)
depends only on that master's content, its bias's, the reference master's and the code, so it is
kept per master under those content keys: a new night reads its own masters, and the masters
the others were measured against only when the reference changes.

One small file per part, ``cache/index-parts/<kind>-<key>.part``: a header line, the SHA-256 of
the payload, and the pickled payload, written atomically. A part whose digest or type does not
match is measured again and rewritten; a part that cannot be written only costs a rebuild later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from darkflow.exposure.laws import MasterSummary, Reference
from darkflow.io.atomic import atomic_path
from darkflow.io.hashing import fingerprint
from darkflow.matching._index import BiasInfo

__all__ = ["IndexParts"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_MAGIC = b"darkflow-index-part 1\n"
_MISSING = object()


def _expected(kind: str, value: Any) -> bool:
    """The payload has the type its kind promises (a foreign or stale file is not trusted)."""
    if kind == "summary":
        return (
            isinstance(value, tuple)
            and len(value) == 2
            and isinstance(value[0], MasterSummary)
            and isinstance(value[1], float)
        )
    if kind == "reference":
        return isinstance(value, Reference)
    if kind == "bias_info":
        return isinstance(value, BiasInfo)
    if kind == "bias_level":
        return value is None or isinstance(value, float)
    return False


class IndexParts:
    """An :class:`~darkflow.matching.IndexMemo` in files under ``directory``.

    ``context`` (the configuration sections and code version the measurements depend on) is
    part of every key. ``hits`` and ``misses`` count recalls (what was read vs measured).
    """

    def __init__(self, directory: Path, context: Mapping[str, Any]):
        self.directory = Path(directory)
        self.context = fingerprint(json.loads(json.dumps(context, sort_keys=True)))
        self.hits = 0
        self.misses = 0

    def path(self, kind: str, parts: tuple[str, ...]) -> Path:
        """The file of one part: its kind and a hash of the context and the content keys."""
        blob = json.dumps([self.context, kind, list(parts)], separators=(",", ":"))
        return self.directory / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:40]}.part"

    def recall(self, kind: str, parts: tuple[str | None, ...], compute: Callable[[], _T]) -> _T:
        """What ``compute()`` gave for ``kind`` and ``parts`` (computed and kept when new).

        A part naming no content (``None``: a master not yet written) is never kept."""
        if any(p is None for p in parts):
            return compute()
        path = self.path(kind, parts)  # type: ignore[arg-type]
        value = self._read(path, kind)
        if value is not _MISSING:
            self.hits += 1
            return value  # type: ignore[return-value]
        value = compute()
        self.misses += 1
        self._write(path, value)
        return value

    def _read(self, path: Path, kind: str) -> Any:
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return _MISSING
        except OSError as err:
            log.warning("index part %s unreadable (%s); measuring again", path, err)
            return _MISSING
        head, _, rest = blob.partition(b"\n")
        digest, _, payload = rest.partition(b"\n")
        if head + b"\n" != _MAGIC or hashlib.sha256(payload).hexdigest().encode() != digest:
            log.warning("index part %s damaged (digest mismatch); measuring again", path)
            return _MISSING
        try:
            value = pickle.loads(payload)
        except (
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            ImportError,
            TypeError,
            ValueError,
        ) as err:
            log.warning("index part %s unreadable (%s); measuring again", path, err)
            return _MISSING
        if not _expected(kind, value):
            log.warning("index part %s holds a %s; measuring again", path, type(value).__name__)
            return _MISSING
        return value

    def _write(self, path: Path, value: Any) -> None:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, fsync=False) as tmp, open(tmp, "wb") as fh:
                fh.write(_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        except OSError as err:
            log.warning("index part %s not written (%s)", path, err)
