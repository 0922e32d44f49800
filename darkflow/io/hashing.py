"""Content hashes, fingerprints and job keys.

A job key is the hash of everything that determines a job's output bytes: the content hashes of
its inputs, the configuration subset it depends on, and the algorithm version. Equal keys mean
equal outputs, so a key names its artifact on disk and in the registry.

Keys are built from content only: :func:`fingerprint` encodes numbers exactly (every digit of a
float, every byte of an array) and refuses objects it cannot see into, rather than trusting a
``repr`` that may round. :class:`HashingReader` hashes a file while a reader (astropy) reads it,
so verifying an artifact costs no second read.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path, PurePath
from typing import Any

import numpy as np

__all__ = [
    "HashingReader",
    "code_fingerprint",
    "exact_json",
    "file_hash",
    "fingerprint",
    "hash_in_background",
    "job_key",
    "new_hash",
    "short",
]

_CHUNK = 1 << 20


def new_hash() -> Any:
    """The content hash of darkflow artifacts and inputs: BLAKE2b-160."""
    return hashlib.blake2b(digest_size=20)


def file_hash(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-160 of the file's bytes, hex (reads in 1 MiB chunks)."""
    with open(path, "rb") as fh:
        return _hash_open(fh)


def _hash_open(fh: Any) -> str:
    h = new_hash()
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def hash_in_background(path: str | os.PathLike[str]) -> Callable[[], str]:
    """:func:`file_hash` of a complete file in a thread: the file is opened now (so it may be
    renamed or unlinked meanwhile), its bytes hashed while the caller goes on (an ``fsync``:
    the hash releases the GIL); the returned function waits for the hash and returns it (or
    raises the thread's error)."""
    fh = open(path, "rb")  # closed by the thread
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["hash"] = _hash_open(fh)
        except BaseException as err:  # handed to the caller by wait()
            result["error"] = err
        finally:
            fh.close()

    thread = threading.Thread(target=run, name="darkflow-hash", daemon=True)
    thread.start()

    def wait() -> str:
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["hash"]

    return wait


class HashingReader:
    """A read-only binary file that hashes its bytes as a reader consumes them.

    Each byte is hashed once, in file order: a read that goes back over hashed bytes adds
    nothing, a seek forward hashes the skipped bytes first (FITS padding, usually nothing), and
    :meth:`hexdigest` hashes whatever was never read. It deliberately is no ``io.FileIO``, so
    astropy reads through :meth:`read` instead of handing the descriptor to ``numpy.fromfile``.
    """

    mode = "rb"

    def __init__(self, path: str | os.PathLike[str]):
        self.name = os.fspath(path)
        self._fh = open(path, "rb")  # closed by close()
        self._hash = new_hash()
        self._done = 0  # bytes [0, _done) are hashed
        self.tail = 0  # bytes hashed without being read by the reader (skipped or left over)

    def _catch_up(self, pos: int) -> None:
        if pos <= self._done:
            return
        self._fh.seek(self._done)
        while self._done < pos:
            chunk = self._fh.read(min(_CHUNK, pos - self._done))
            if not chunk:
                break
            self._hash.update(chunk)
            self._done += len(chunk)
            self.tail += len(chunk)
        self._fh.seek(pos)

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all when negative), hashing whatever had not been hashed yet."""
        pos = self._fh.tell()
        self._catch_up(pos)
        data = self._fh.read(size)
        end = pos + len(data)
        if end > self._done:
            self._hash.update(memoryview(data)[self._done - pos :])
            self._done = end
        return data

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` (see :meth:`read`); return the number of bytes read."""
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the read position (the hash catches up on the next read)."""
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        """The current read position."""
        return self._fh.tell()

    def readable(self) -> bool:
        """Always true: the file is read."""
        return True

    def seekable(self) -> bool:
        """Always true: readers may seek (the hash stays in file order)."""
        return True

    def writable(self) -> bool:
        """Always false: the file is never written."""
        return False

    def flush(self) -> None:
        """Nothing to flush (read only)."""
        pass

    @property
    def closed(self) -> bool:
        """Whether the underlying file is closed."""
        return self._fh.closed

    def hexdigest(self) -> str:
        """The hash of the whole file (the bytes never read are read now)."""
        if not self._fh.closed:
            pos = self._fh.tell()
            self._catch_up(os.fstat(self._fh.fileno()).st_size)
            self._fh.seek(pos)
        return self._hash.hexdigest()

    def close(self) -> None:
        """Close the file, hashing the bytes never read first (astropy closes it when done)."""
        if not self._fh.closed:
            self.hexdigest()
            self._fh.close()

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- fingerprints
def _canonical(obj: Any) -> Any:
    """A JSON-able form of ``obj`` that keeps everything that makes it different."""
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, enum.Enum):
        return {"~enum": type(obj).__qualname__, "value": _canonical(obj.value)}
    if isinstance(obj, int | str):
        return obj
    if isinstance(obj, float):
        return {"~float": obj.hex()}  # every bit, NaN and infinities included
    if isinstance(obj, np.generic):
        return _canonical(obj.item()) if obj.dtype.kind in "biuf" else _array(np.asarray(obj))
    if isinstance(obj, np.ndarray):
        return _array(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            "~dataclass": type(obj).__qualname__,
            "fields": {f.name: _canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }
    if isinstance(obj, Mapping):
        items = [(_dump(_canonical(k)), _canonical(v)) for k, v in obj.items()]
        return {"~map": sorted(items, key=lambda kv: kv[0])}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return {"~set": sorted(_dump(_canonical(v)) for v in obj)}
    if isinstance(obj, datetime | date):
        return {"~time": obj.isoformat()}
    if isinstance(obj, PurePath):
        return {"~path": str(obj)}
    raise TypeError(
        f"cannot fingerprint a {type(obj).__qualname__}: give it a to_dict or use a dataclass"
    )


def _array(arr: np.ndarray) -> dict[str, Any]:
    if arr.dtype.hasobject:
        raise TypeError("cannot fingerprint an object array")
    data = np.ascontiguousarray(arr)
    h = new_hash()
    h.update(data.view(np.uint8).reshape(-1) if data.size else b"")
    return {"~array": data.dtype.str, "shape": list(data.shape), "bytes": h.hexdigest()}


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def fingerprint(obj: Any) -> str:
    """SHA-256 of an exact, canonical encoding of ``obj`` (hex).

    Handles ``None``, booleans, numbers (floats bit for bit), strings, enums, numpy scalars and
    arrays (dtype, shape and bytes), dataclasses (every field), mappings (order-free), lists,
    tuples, sets, dates and paths, nested. Anything else raises ``TypeError``: an object the
    fingerprint cannot see into could change without changing the key.
    """
    return hashlib.sha256(_dump(_canonical(obj)).encode()).hexdigest()


@functools.cache
def code_fingerprint(*modules: str) -> str:
    """Hash of the source files of these modules (a package: every ``.py`` file in it).

    Versions a cache of pickled objects and results with the code that makes and reads them.
    Without the sources (a zip import) the installed darkflow version stands in.
    """
    from darkflow._version import __version__

    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        if origin is None or not origin.is_file():
            h.update(f"{name}:{__version__}".encode())
            continue
        files = sorted(origin.parent.glob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def exact_json(obj: Any) -> Any:
    """``json.dumps`` ``default=``: what JSON cannot hold goes in as its exact fingerprint."""
    return {"~fingerprint": fingerprint(obj)}


def job_key(kind: str, inputs: Iterable[str], params: Mapping[str, Any], algorithm: str) -> str:
    """Deterministic key of a job: kind + input hashes (order-free) + parameters + algorithm."""
    blob = json.dumps(
        {"kind": kind, "inputs": sorted(inputs), "params": params, "algorithm": algorithm},
        sort_keys=True,
        separators=(",", ":"),
        default=exact_json,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def short(key: str, n: int = 16) -> str:
    """The first ``n`` characters of a key: the id shown in reports and file names."""
    return key[:n]
