"""The catalog: scan FITS files (headers only) into a pandas DataFrame with eligibility.

:func:`scan` walks files and directories (recursively; hidden directories and directories
holding a ``.darkflow-ignore`` marker are skipped), reads each header with the fast reader of
:mod:`darkflow.io.fastheader`, normalises it with :func:`darkflow.ingest.headers.normalise`, marks
duplicate files, and assigns each frame its observing night and session. Every file found gets
exactly one row, including unreadable ones, sorted by path. A bad file never stops the scan and
no file is ever opened for writing.

The first columns are the CSV contract (:data:`CONTRACT_COLUMNS`, written by
:func:`to_contract_csv` and ``darkflow scan --format csv``); extra columns follow
(:data:`EXTRA_COLUMNS`). :func:`meta_from_row` turns a row back into a
:class:`~darkflow.model.FrameMeta`, :func:`group_frames` splits a catalog by configuration
signature, and :func:`format_catalog` renders ``table``, ``csv`` or ``json``.

Run ``python -m darkflow.catalog DIR [--format table|csv|json]`` for the same output as
``darkflow scan``.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pandas as pd

from darkflow.config import IngestConfig
from darkflow.exceptions import ConfigError
from darkflow.ingest import _cli
from darkflow.ingest import _keywords as kw
from darkflow.ingest._formats import (
    COLUMNS,
    CONTRACT_COLUMNS,
    EXTRA_COLUMNS,
    _iso,
    _missing,
    format_catalog,
    to_contract_csv,
)
from darkflow.ingest.headers import (
    WANTED_KEYWORDS,
    IngestReason,
    NormalisedHeader,
    eligibility_of,
    normalise,
)
from darkflow.io.fastheader import read_header_info
from darkflow.model import FrameMeta, FrameType, SensorConfig

__all__ = [
    "COLUMNS",
    "CONTRACT_COLUMNS",
    "EXTRA_COLUMNS",
    "IGNORE_MARKER",
    "IngestReason",
    "find_fits_files",
    "format_catalog",
    "group_frames",
    "main",
    "meta_from_row",
    "scan",
    "to_contract_csv",
]

log = logging.getLogger(__name__)

IGNORE_MARKER = ".darkflow-ignore"


_META_VALUES = operator.attrgetter(*(f.name for f in fields(FrameMeta) if f.name != "path"))
_FLOAT_COLUMNS = (
    "exptime_s",
    "ccd_temp_c",
    "set_temp_c",
    "gain_setting",
    "egain_e_per_adu",
    "offset",
    "darktime_s",
    "pedestal",
    "site_longitude_deg",
)
_INT_COLUMNS = ("xbin", "ybin", "hdu_index")
_NULLABLE_INT_COLUMNS = ("file_size", "mtime_ns")
_BOOL_COLUMNS = ("frame_type_inferred", "calibrated")
# text columns that may be missing: object dtype holding None (not NaN), so that
# ``row.get("session") or "unknown"`` works on records
_OPTIONAL_TEXT = frozenset(
    (
        "readout_mode",
        "instrument",
        "date_obs_utc",
        "shape",
        "dtype",
        "source_program",
        "night",
        "session",
        "camera_id",
        "bayer_pattern",
        "object_name",
        "filter_name",
        "duplicate_of",
    )
)

_FILE_REASONS = {
    "empty": IngestReason.EMPTY_FILE,
    "unreadable": IngestReason.UNREADABLE,
    "not_regular": IngestReason.NOT_REGULAR_FILE,
    "not_fits": IngestReason.NOT_FITS,
    "truncated": IngestReason.TRUNCATED,
    "no_image": IngestReason.NO_IMAGE,
    "not_2d": IngestReason.NOT_2D,
}


# --------------------------------------------------------------------------- discovery
def _is_fits_name(name: str) -> bool:
    return name.lower().endswith(kw.FITS_EXTENSIONS)


def find_fits_files(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    exclude: Iterable[str | os.PathLike[str]] = (),
) -> list[str]:
    """Absolute paths of the FITS files named by ``inputs``, sorted and unique.

    Directories are walked recursively (symbolic links to directories are not followed);
    hidden directories, directories holding a ``.darkflow-ignore`` marker and the directories
    in ``exclude`` (e.g. a work directory inside the input tree) are skipped, and only files
    with a FITS ending (:data:`darkflow.ingest._keywords.FITS_EXTENSIONS`) are taken from them (FIFOs,
    devices, sockets and directories with such a name too: their rows say
    ``not_regular_file``). Explicitly named files are always included, whatever their name; a
    named path that does not exist is included too (its row says it is unreadable).
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    skip = {os.path.abspath(os.fspath(p)) for p in exclude}
    found: set[str] = set()
    for item in inputs:
        top = os.path.abspath(os.fspath(item))
        if top in skip:
            log.info("skipping %s (excluded)", top)
            continue
        if not os.path.isdir(top):
            if not os.path.exists(top):
                log.warning("input %s does not exist", top)
            found.add(top)
            continue
        if os.path.exists(os.path.join(top, IGNORE_MARKER)):
            log.info("skipping %s (contains %s)", top, IGNORE_MARKER)
            continue
        for root, dirs, files in os.walk(top, onerror=_walk_error):
            dirs[:] = [
                d
                for d in dirs
                if not d.startswith(".")
                and not os.path.exists(os.path.join(root, d, IGNORE_MARKER))
                and os.path.join(root, d) not in skip
            ]
            found.update(
                os.path.join(root, f) for f in files if not f.startswith(".") and _is_fits_name(f)
            )
            # a directory (or a link to one) with a FITS name gets a row saying what it is;
            # its contents are scanned like any other directory's
            found.update(os.path.join(root, d) for d in dirs if _is_fits_name(d))
    return sorted(found)


def _walk_error(err: OSError) -> None:
    log.warning("cannot list directory %s: %s", err.filename, err.strerror or err)


# --------------------------------------------------------------------------- one file
@dataclass
class _Entry:
    """What the scan keeps of one file (the parsed header itself is dropped early)."""

    path: str
    norm: NormalisedHeader
    reasons: list[IngestReason]
    details: list[str]
    file_size: int | None = None
    mtime_ns: int | None = None
    header_digest: str | None = None  # only for readable images (duplicate candidates)
    duplicate_of: str | None = None


def _read_one(path: str, config: IngestConfig) -> _Entry:
    """Read and normalise one file. Catches everything: one bad file never stops a scan."""
    try:
        info = read_header_info(path, WANTED_KEYWORDS)
        if info.header is not None:
            norm = normalise(info.header, path, config=config)
            meta = norm.meta
            shape = info.shape if info.shape is not None else meta.shape
            dtype = info.dtype if info.dtype is not None else meta.dtype
            if (info.hdu_index, shape, dtype) != (meta.hdu_index, meta.shape, meta.dtype):
                meta = meta.replace(hdu_index=info.hdu_index, shape=shape, dtype=dtype)
                norm = NormalisedHeader(
                    meta, norm.reasons, norm.eligibility, norm.details, norm.date_local
                )
            reasons, details = list(norm.reasons), list(norm.details)
        else:
            norm = NormalisedHeader(FrameMeta(path=path))
            reasons, details = [], []
        if info.error is not None:
            reason = _FILE_REASONS[info.error]
            if reason in reasons:
                reasons.remove(reason)
            reasons.insert(0, reason)
            details.insert(0, f"{reason}: {info.error_detail}")
        digest = info.header_digest if info.error is None else None
        return _Entry(path, norm, reasons, details, info.file_size, info.mtime_ns, digest)
    except Exception as err:  # the batch runner records the failure against the frame
        log.exception("unexpected error while scanning %s", path)
        reason = IngestReason.INTERNAL_ERROR
        return _Entry(
            path,
            NormalisedHeader(FrameMeta(path=path)),
            [reason],
            [f"{reason}: {type(err).__name__}: {err}"],
        )


# --------------------------------------------------------------------------- duplicates
def _content_hash(path: str) -> str | None:
    digest = hashlib.blake2b(digest_size=20)
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError as err:
        log.warning("cannot hash %s: %s", path, err.strerror or err)
        return None
    return digest.hexdigest()


def _mark_duplicates(entries: Sequence[_Entry]) -> None:
    """Later paths with the same bytes as an earlier one get ``duplicate`` (rejected).

    Cheap first stage: only files with equal size and equal header bytes are hashed in full.
    """
    candidates: dict[tuple[int, str], list[_Entry]] = defaultdict(list)
    for entry in entries:
        if entry.header_digest and entry.file_size is not None:
            candidates[(entry.file_size, entry.header_digest)].append(entry)
    for group in candidates.values():
        if len(group) < 2:
            continue
        by_hash: dict[str, list[_Entry]] = defaultdict(list)
        for entry in group:
            content = _content_hash(entry.path)
            if content is not None:
                by_hash[content].append(entry)
        for same in by_hash.values():
            same.sort(key=lambda e: e.path)
            for entry in same[1:]:
                entry.duplicate_of = same[0].path
                entry.reasons.append(IngestReason.DUPLICATE)
                entry.details.append(f"{IngestReason.DUPLICATE}: same bytes as {same[0].path}")


# --------------------------------------------------------------------------- nights, sessions
def _night(meta: FrameMeta, date_local: datetime | None, config: IngestConfig) -> str | None:
    """Local night (YYYY-MM-DD): SITELONG solar time, else DATE-LOC, else UTC, plus the offset."""
    utc = meta.date_obs_utc
    shift = timedelta(hours=config.night_offset_h)
    if utc is not None and meta.site_longitude_deg is not None:
        local = utc.astimezone(UTC).replace(tzinfo=None) + timedelta(
            hours=meta.site_longitude_deg / 15.0
        )
    elif date_local is not None:
        local = date_local
    elif utc is not None:
        local = utc.astimezone(UTC).replace(tzinfo=None)
    else:
        return None
    try:
        return (local + shift).date().isoformat()
    except OverflowError:
        return None


_CONFIG_MEMO: dict[tuple, tuple[str, str]] = {}


def _config_of(meta: FrameMeta) -> tuple[str, str]:
    """(config signature, instrument slug), memoised: most frames share a configuration."""
    key = (
        meta.instrument,
        meta.camera_id,
        meta.xbin,
        meta.ybin,
        meta.gain_setting,
        meta.offset,
        meta.readout_mode,
        meta.shape,
    )
    hit = _CONFIG_MEMO.get(key)
    if hit is None:
        if len(_CONFIG_MEMO) > 10_000:
            _CONFIG_MEMO.clear()
        config = SensorConfig.from_meta(meta)
        hit = _CONFIG_MEMO[key] = (config.signature, config.instrument_slug)
    return hit


def _assign_sessions(
    entries: Sequence[_Entry], nights: list[str | None], config: IngestConfig
) -> list[str | None]:
    """Session names: lights of one instrument and night, split where gaps exceed the limit.

    Other frames get the session of the same instrument and night nearest in time, if any.
    """
    gap = timedelta(hours=config.session_gap_h)
    slugs = [_config_of(e.norm.meta)[1] for e in entries]
    lights: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        meta = entry.norm.meta
        if meta.frame_type == FrameType.LIGHT and meta.date_obs_utc is not None and nights[i]:
            lights[(slugs[i], nights[i])].append(i)
    out: list[str | None] = [None] * len(entries)
    spans: dict[tuple[str, str], list[tuple[datetime, datetime, str]]] = {}
    for key, idx in lights.items():
        idx.sort(key=lambda i: (entries[i].norm.meta.date_obs_utc, entries[i].path))
        runs: list[list[int]] = [[idx[0]]]
        for prev, cur in pairwise(idx):
            t0, t1 = entries[prev].norm.meta.date_obs_utc, entries[cur].norm.meta.date_obs_utc
            if t1 - t0 > gap:
                runs.append([])
            runs[-1].append(cur)
        spans[key] = []
        for k, run in enumerate(runs, start=1):
            name = key[0] if k == 1 else f"{key[0]}-{k}"
            for i in run:
                out[i] = name
            first, last = run[0], run[-1]
            spans[key].append(
                (entries[first].norm.meta.date_obs_utc, entries[last].norm.meta.date_obs_utc, name)
            )
    for i, entry in enumerate(entries):
        meta = entry.norm.meta
        key = (slugs[i], nights[i] or "")
        if out[i] is not None or key not in spans or meta.date_obs_utc is None:
            continue
        t = meta.date_obs_utc

        def distance(span: tuple[datetime, datetime, str], t: datetime = t) -> float:
            start, end, _ = span
            if start <= t <= end:
                return 0.0
            return min(abs((t - start).total_seconds()), abs((t - end).total_seconds()))

        out[i] = min(spans[key], key=distance)[2]
    return out


# --------------------------------------------------------------------------- rows
def _header_hash(meta: FrameMeta) -> str:
    """Stable hash of the normalised metadata (path excluded, so a moved file keeps it).

    Built from the ``repr`` of the field values in field order (floats, strings, datetimes
    and enums have stable reprs), which is several times faster than a JSON dump.
    """
    return hashlib.blake2b(repr(_META_VALUES(meta)).encode(), digest_size=16).hexdigest()


def _shape_text(shape: tuple[int, int] | None) -> str | None:
    return f"{shape[0]}x{shape[1]}" if shape else None


def _frame(
    entries: Sequence[_Entry], nights: list[str | None], sessions: list[str | None]
) -> pd.DataFrame:
    """Build the catalog column by column (much faster than from row dicts)."""
    metas = [e.norm.meta for e in entries]
    col: dict[str, list[Any]] = {}
    for name in (
        "path",
        "exptime_s",
        "ccd_temp_c",
        "set_temp_c",
        "gain_setting",
        "egain_e_per_adu",
        "offset",
        "xbin",
        "ybin",
        "readout_mode",
        "instrument",
        "dtype",
        "source_program",
        "darktime_s",
        "camera_id",
        "bayer_pattern",
        "hdu_index",
        "frame_type_inferred",
        "calibrated",
        "pedestal",
        "object_name",
        "filter_name",
        "site_longitude_deg",
    ):
        col[name] = [getattr(m, name) for m in metas]
    col["frame_type"] = [str(m.frame_type) for m in metas]
    col["date_obs_utc"] = [_iso(m.date_obs_utc) for m in metas]
    col["shape"] = [_shape_text(m.shape) for m in metas]
    col["config_signature"] = [_config_of(m)[0] for m in metas]
    col["status"] = [str(eligibility_of(e.reasons)) for e in entries]
    col["reasons"] = [";".join(e.reasons) for e in entries]
    col["night"] = list(nights)
    col["session"] = list(sessions)
    col["file_size"] = [e.file_size for e in entries]
    col["mtime_ns"] = [e.mtime_ns for e in entries]
    col["header_hash"] = [_header_hash(m) for m in metas]
    col["date_obs"] = [m.date_obs_utc for m in metas]
    col["duplicate_of"] = [e.duplicate_of for e in entries]
    col["details"] = ["; ".join(e.details) for e in entries]
    df = pd.DataFrame(
        {
            name: pd.Series(col[name], dtype=object) if name in _OPTIONAL_TEXT else col[name]
            for name in COLUMNS
        }
    )
    for name in _NULLABLE_INT_COLUMNS:  # directly: through float64 a ns mtime loses its last digits
        df[name] = pd.array(col[name], dtype="Int64")
    for name in _FLOAT_COLUMNS:
        df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
    for name in _INT_COLUMNS:
        df[name] = df[name].astype("int64")
    for name in _BOOL_COLUMNS:
        df[name] = df[name].astype(bool)
    df["date_obs"] = pd.to_datetime(df["date_obs"], utc=True).astype("datetime64[ns, UTC]")
    for name in ("reasons", "details"):
        df[name] = df[name].astype(str)
    return df


def scan(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    config: IngestConfig | None = None,
    workers: int | None = None,
    exclude: Iterable[str | os.PathLike[str]] = (),
) -> pd.DataFrame:
    """Scan FITS files (headers only) into a catalog DataFrame.

    Parameters
    ----------
    inputs
        A file or directory, or a list of them. Directories are walked recursively, skipping
        hidden directories and directories containing ``.darkflow-ignore``.
    config
        Ingestion settings (``night_offset_h``, ``session_gap_h``, ``infer_type_from_path``,
        ``gain_keyword``); defaults to :class:`~darkflow.config.IngestConfig()`.
    workers
        Reader threads (IO overlap); ``None`` picks a small default, ``1`` reads serially. The
        result does not depend on it.
    exclude
        Directories not to walk into (``darkflow run`` passes its work directory).

    Returns
    -------
    pandas.DataFrame
        One row per file found (unreadable ones included), sorted by path, with the columns
        :data:`COLUMNS` (the CSV contract first).

    Raises
    ------
    ConfigError
        ``workers`` is not a positive integer.
    """
    config = config or IngestConfig()
    if workers is None:
        workers = 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    paths = find_fits_files(inputs, exclude=exclude)
    if workers == 1 or len(paths) < 8:
        entries = [_read_one(p, config) for p in paths]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="darkflow-scan") as pool:
            entries = list(pool.map(_read_one, paths, [config] * len(paths), chunksize=16))
    _mark_duplicates(entries)
    nights = [_night(e.norm.meta, e.norm.date_local, config) for e in entries]
    sessions = _assign_sessions(entries, nights, config)
    df = _frame(entries, nights, sessions)
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    log.info("scanned %d files: %s", len(df), counts)
    return df


# --------------------------------------------------------------------------- row -> meta
def _opt_float(value: Any) -> float | None:
    return None if _missing(value) else float(value)


def _opt_str(value: Any) -> str | None:
    return None if _missing(value) or value == "" else str(value)


def meta_from_row(row: Mapping[str, Any] | pd.Series) -> FrameMeta:
    """Rebuild the :class:`~darkflow.model.FrameMeta` of a catalog row (inverse of the scan).

    Raises
    ------
    HeaderError
        The row lacks a column the metadata needs or holds an unusable value.
    """
    from darkflow.exceptions import HeaderError

    try:
        date = row.get("date_obs")
        if _missing(date):
            text = _opt_str(row.get("date_obs_utc"))
            date = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
        else:
            date = pd.Timestamp(date).tz_convert("UTC").to_pydatetime()
        shape_text = _opt_str(row.get("shape"))
        shape = None
        if shape_text:
            ny, nx = shape_text.split("x")
            shape = (int(ny), int(nx))
        return FrameMeta(
            path=str(row["path"]),
            frame_type=FrameType(_opt_str(row.get("frame_type")) or "unknown"),
            frame_type_inferred=bool(row.get("frame_type_inferred", False)),
            exptime_s=_opt_float(row.get("exptime_s")),
            darktime_s=_opt_float(row.get("darktime_s")),
            ccd_temp_c=_opt_float(row.get("ccd_temp_c")),
            set_temp_c=_opt_float(row.get("set_temp_c")),
            gain_setting=_opt_float(row.get("gain_setting")),
            egain_e_per_adu=_opt_float(row.get("egain_e_per_adu")),
            offset=_opt_float(row.get("offset")),
            xbin=int(row.get("xbin", 1)),
            ybin=int(row.get("ybin", 1)),
            readout_mode=_opt_str(row.get("readout_mode")),
            instrument=_opt_str(row.get("instrument")),
            camera_id=_opt_str(row.get("camera_id")),
            date_obs_utc=date,
            shape=shape,
            dtype=_opt_str(row.get("dtype")),
            bayer_pattern=_opt_str(row.get("bayer_pattern")),
            source_program=_opt_str(row.get("source_program")),
            hdu_index=int(row.get("hdu_index", 0)),
            calibrated=bool(row.get("calibrated", False)),
            pedestal=_opt_float(row.get("pedestal")),
            site_longitude_deg=_opt_float(row.get("site_longitude_deg")),
            object_name=_opt_str(row.get("object_name")),
            filter_name=_opt_str(row.get("filter_name")),
        )
    except (KeyError, ValueError, TypeError) as err:
        raise HeaderError(f"catalog row cannot be turned into FrameMeta: {err}") from err


def group_frames(
    df: pd.DataFrame, *, status: str | Iterable[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Split a catalog by ``config_signature`` (sorted by signature, rows sorted by path).

    ``status`` keeps only rows with that status (or statuses), e.g. ``"eligible"``.
    """
    if status is not None:
        wanted = {status} if isinstance(status, str) else set(status)
        df = df[df["status"].isin(wanted)]
    groups = {}
    for signature, sub in df.groupby("config_signature", sort=True):
        groups[str(signature)] = sub.sort_values("path", kind="stable").reset_index(drop=True)
    return groups


# --------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m darkflow.catalog DIR... [--format table|csv|json]``; returns the exit code."""
    return _cli.main(argv, scan)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
