"""What a report page was made from, and whether it must be made again.

A page's code runs with an audit hook that lists the files it opens (:func:`record_reads`);
:func:`write_fingerprint` keeps, beside the page (``.<page>.fingerprint.json``), its identity
(notebook, template, parameters, darkflow version) and a digest of each work-directory file it
read; :func:`page_is_stale` compares them with what is there now. Used by
:mod:`darkflow.report`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from darkflow.io.atomic import write_bytes_atomic

__all__ = [
    "IGNORED_COLUMNS",
    "RENDER_VERSION",
    "fingerprint_path",
    "page_is_stale",
    "record_reads",
    "stop_recording",
    "write_fingerprint",
]

TEMPLATE = Path(__file__).parent / "templates" / "offline" / "index.html.j2"

#: bump when pages rendered from the same inputs would come out different
RENDER_VERSION = 1
#: columns of the work directory's CSV files that no page shows: a run's own bookkeeping (was
#: this result reused?), which flips on the first rerun without anything else changing
IGNORED_COLUMNS = frozenset({"cached"})
#: larger files (master FITS, content-addressed) are fingerprinted by size and time, not hashed
HASH_LIMIT = 16 * 2**20

_reads: list[set[str]] = []  # the files the page being rendered has opened (audit hook)
_hook_lock = threading.Lock()
_hooked = False


def _audit(event: str, args: tuple) -> None:
    if not _reads:
        return
    if event == "open":
        path, mode, flags = args[0], args[1], args[2] if len(args) > 2 else 0
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return
        if mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR):
            return  # os.open for writing
        if isinstance(path, str | bytes | os.PathLike) and not isinstance(path, int):
            _reads[-1].add(os.fsdecode(path))
    elif event in ("os.listdir", "os.scandir") and args and args[0] is not None:
        if not isinstance(args[0], int):
            _reads[-1].add(os.fsdecode(args[0]))
    elif event == "sqlite3.connect" and args:
        _reads[-1].add(os.fsdecode(args[0]))


def record_reads() -> set[str]:
    """Start recording the files this process opens; returns the set being filled."""
    global _hooked
    with _hook_lock:
        if not _hooked:  # an audit hook stays for the process; it records only when asked
            sys.addaudithook(_audit)
            _hooked = True
    reads: set[str] = set()
    _reads.append(reads)
    return reads


def stop_recording(reads: set[str]) -> None:
    _reads.remove(reads)


def _digest(path: Path) -> str | None:
    """What a page read of a file: its content (CSV: without :data:`IGNORED_COLUMNS`; big
    files: size and modification time); ``None`` when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    if path.is_dir():
        try:
            names = sorted(os.listdir(path))
        except OSError:
            return None
        return "dir:" + hashlib.sha256("\n".join(names).encode()).hexdigest()
    if st.st_size > HASH_LIMIT:
        return f"stat:{st.st_size}:{st.st_mtime_ns}"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if path.suffix == ".csv":
        data = _without_columns(data, IGNORED_COLUMNS)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _without_columns(data: bytes, drop: frozenset[str]) -> bytes:
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error):
        return data
    if not rows or not drop.intersection(rows[0]):
        return data
    keep = [i for i, name in enumerate(rows[0]) if name not in drop]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in keep if i < len(row)])
    return out.getvalue().encode("utf-8")


def _identity(source: Path, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Everything but the work directory's files that makes a page what it is."""
    from darkflow._version import __version__

    return {
        "render": RENDER_VERSION,
        "darkflow": __version__,
        "notebook": hashlib.sha256(Path(source).read_bytes()).hexdigest(),
        "template": hashlib.sha256(TEMPLATE.read_bytes()).hexdigest(),
        "parameters": json.loads(json.dumps(dict(parameters), default=str)),
    }


def fingerprint_path(html: str | Path) -> Path:
    """Where a page's record of its inputs is kept: ``.<page>.fingerprint.json`` beside it."""
    html = Path(html)
    return html.with_name(f".{html.name}.fingerprint.json")


def page_is_stale(
    html: str | Path,
    *,
    source: str | Path,
    parameters: Mapping[str, Any],
    night_fingerprint: str | None = None,
) -> bool:
    """Whether the page must be rendered (again): the one place that decides it.

    Stale when the page or its record is missing, it failed last time, its notebook, template,
    parameters or darkflow version changed, its BokehJS file is gone, or a file its code read
    differs now. ``night_fingerprint`` (a digest of the night's inputs and results, e.g. the
    nightly runner's) is a shortcut: when the record was made under the same value, the files
    are not compared.
    """
    html = Path(html)
    try:
        record = json.loads(fingerprint_path(html).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    if not html.is_file() or not record.get("ok"):
        return True
    try:
        if record.get("identity") != _identity(Path(source), parameters):
            return True
    except OSError:
        return True
    js = record.get("bokeh_js")
    if js and not (html.parent / js).is_file():
        return True
    if night_fingerprint is not None and record.get("night") == night_fingerprint:
        return False
    files = record.get("files")
    if not isinstance(files, dict):
        return True
    return any(_digest(Path(p)) != d for p, d in files.items())


def write_fingerprint(
    html: Path,
    source: Path,
    parameters: Mapping[str, Any],
    *,
    ok: bool,
    reads: set[str],
    workdir: Path | None,
    bokeh_js: str | None,
    night_fingerprint: str | None,
) -> None:
    root = workdir.resolve() if workdir is not None else None
    files = {}
    for p in sorted(reads):
        path = Path(p)
        full = path if path.is_absolute() else Path.cwd() / path
        try:
            full = full.resolve()
        except OSError:
            continue
        if root is not None and root != full and root not in full.parents:
            continue  # only the work directory's files make a page stale
        files[str(full)] = _digest(full)
    record = {
        "format": 1,
        "ok": ok,
        "identity": _identity(source, parameters),
        "bokeh_js": bokeh_js,
        "night": night_fingerprint,
        "files": files,
    }
    write_bytes_atomic(fingerprint_path(html), json.dumps(record, indent=1).encode("utf-8"))
