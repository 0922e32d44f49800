"""Content hashes and job keys.

A job key is the hash of everything that determines a job's output bytes: the content hashes of
its inputs, the configuration subset it depends on, and the algorithm version. Equal keys mean
equal outputs, so a key names its artifact on disk and in the registry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["file_hash", "job_key", "short"]

_CHUNK = 1 << 20


def file_hash(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-160 of the file's bytes, hex (reads in 1 MiB chunks)."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def job_key(kind: str, inputs: Iterable[str], params: Mapping[str, Any], algorithm: str) -> str:
    """Deterministic key of a job: kind + input hashes (order-free) + parameters + algorithm."""
    blob = json.dumps(
        {"kind": kind, "inputs": sorted(inputs), "params": params, "algorithm": algorithm},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def short(key: str, n: int = 16) -> str:
    return key[:n]
