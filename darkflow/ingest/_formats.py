"""The catalog's columns and how a catalog is written: the CSV contract, JSON records, a table.

:data:`CONTRACT_COLUMNS` are the CSV contract of ``darkflow scan --format csv`` (exactly these
columns, in this order); :data:`EXTRA_COLUMNS` follow them in the DataFrame
:func:`darkflow.ingest.catalog.scan` returns. Every name here is importable from
:mod:`darkflow.ingest.catalog` too.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from darkflow.exceptions import ConfigError
from darkflow.io.paths import printable
from darkflow.model import Eligibility

__all__ = ["COLUMNS", "CONTRACT_COLUMNS", "EXTRA_COLUMNS", "format_catalog", "to_contract_csv"]

#: the CSV contract of ``darkflow scan --format csv``: exactly these columns, in this order
CONTRACT_COLUMNS: tuple[str, ...] = (
    "path",
    "frame_type",
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
    "date_obs_utc",
    "shape",
    "dtype",
    "source_program",
    "config_signature",
    "status",
    "reasons",
)

#: columns after the contract ones (pipeline extras)
EXTRA_COLUMNS: tuple[str, ...] = (
    "night",
    "session",
    "darktime_s",
    "camera_id",
    "bayer_pattern",
    "hdu_index",
    "frame_type_inferred",
    "calibrated",
    "pedestal",
    "file_size",
    "mtime_ns",
    "header_hash",
    "object_name",
    "filter_name",
    "date_obs",
    "site_longitude_deg",
    "duplicate_of",
    "details",
)

COLUMNS: tuple[str, ...] = CONTRACT_COLUMNS + EXTRA_COLUMNS


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _cell(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def to_contract_csv(df: pd.DataFrame) -> str:
    """The catalog as CSV with exactly :data:`CONTRACT_COLUMNS` (empty fields empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CONTRACT_COLUMNS)
    columns = [df[c].tolist() for c in CONTRACT_COLUMNS]
    for values in zip(*columns, strict=True):
        writer.writerow([_cell(v) for v in values])
    return buf.getvalue()


def _json_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return _iso(value.to_pydatetime())
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):  # stray file-name bytes as \xNN text: valid JSON, valid UTF-8
        return printable(value)
    return value


def _to_json(df: pd.DataFrame) -> str:
    columns = list(df.columns)
    lines = []
    for values in zip(*(df[c].tolist() for c in columns), strict=True):
        record = {c: _json_value(v) for c, v in zip(columns, values, strict=True)}
        lines.append(json.dumps(record, allow_nan=False, ensure_ascii=False))
    return "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _to_table(df: pd.DataFrame) -> str:
    spec = [  # column, title, width, right-aligned
        ("path", "file", 36, False),
        ("frame_type", "type", 8, False),
        ("exptime_s", "exp_s", 7, True),
        ("ccd_temp_c", "temp", 6, True),
        ("gain_setting", "gain", 6, True),
        ("offset", "offs", 5, True),
        ("bin", "bin", 3, False),
        ("instrument", "instrument", 20, False),
        ("status", "status", 8, False),
        ("reasons", "reasons", 40, False),
    ]
    common = os.path.commonpath(df["path"].tolist()) if len(df) else ""
    if common and os.path.isfile(common):
        common = os.path.dirname(common)
    lines = ["  ".join(t.rjust(w) if r else t.ljust(w) for _, t, w, r in spec)]
    lines.append("  ".join("-" * w for _, _, w, _ in spec))
    for rec in df.to_dict("records"):
        cells = []
        for col, _, width, right in spec:
            if col == "bin":
                text = f"{rec['xbin']}x{rec['ybin']}"
            elif col == "path":
                text = os.path.relpath(rec["path"], common) if common else rec["path"]
            elif isinstance(rec[col], float) and not _missing(rec[col]):
                text = f"{rec[col]:.5g}"
            else:
                text = _cell(rec[col])
            text = _clip(text, width)
            cells.append(text.rjust(width) if right else text.ljust(width))
        lines.append("  ".join(cells).rstrip())
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in Eligibility)
    groups = (
        df.loc[df["status"] == Eligibility.ELIGIBLE, "config_signature"].nunique() if len(df) else 0
    )
    lines.append("")
    lines.append(f"{len(df)} files: {summary}; {groups} eligible configuration group(s)")
    if common:
        lines.append(f"paths relative to {common}")
    return "\n".join(lines) + "\n"


def format_catalog(df: pd.DataFrame, fmt: str) -> str:
    """Render a catalog: ``"csv"`` (the contract columns), ``"json"`` (records) or ``"table"``.

    Raises
    ------
    ConfigError
        Unknown format.
    """
    if fmt == "csv":
        return to_contract_csv(df)
    if fmt == "json":
        return _to_json(df)
    if fmt == "table":
        return _to_table(df)
    raise ConfigError(f"unknown catalog format {fmt!r}; use table, csv or json")
