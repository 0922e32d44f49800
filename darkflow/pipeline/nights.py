"""Per-night files that accumulate across runs: ``<workdir>/nights/<night>/``.

A night may be calibrated in several runs into one work directory (camera by camera, session by
session, a folder added later). Each run merges its rows into the night's files instead of
replacing them: a row about a file inside this run's inputs is replaced by this run's view (and
dropped when the file is no longer there), a row about any other file is kept. The files are
written in one canonical order, so a night run in parts gives the same ``frame_report.csv``,
``masters.csv``, ``decisions.jsonl`` and ``qa/`` files as the night run at once, and so the same
reports and quarantine queue.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkflow.io.atomic import atomic_write
from darkflow.io.paths import ERRORS
from darkflow.pipeline.records import (
    FRAME_REPORT_COLUMNS,
    FRAME_REPORT_EXTRA,
    MASTERS_COLUMNS,
    MASTERS_EXTRA,
    write_qa_files,
)
from darkflow.registry import Registry
from darkflow.registry.events import dumps, read_events, to_jsonable

__all__ = ["Scope", "write_night"]


class Scope:
    """The files a run looked at: everything below its input paths (absolute, as scanned)."""

    def __init__(self, inputs: Iterable[str | os.PathLike[str]]):
        self.roots = sorted({os.path.abspath(os.fspath(p)) for p in inputs})

    def __contains__(self, path: object) -> bool:
        p = str(path)
        return any(p == r or p.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots)


def _text_table(rows: Sequence[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Rows as the CSV text they are written as (so kept rows and new rows compare as text)."""
    buf = io.StringIO()
    pd.DataFrame(list(rows), columns=columns).to_csv(buf, index=False, lineterminator="\n")
    # as the file holds it: stray file-name bytes written as \xNN (darkflow.io.paths)
    text = buf.getvalue().encode("utf-8", ERRORS).decode("utf-8")
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=columns, dtype=str)
    old = pd.read_csv(path, dtype=str, keep_default_na=False)
    return old.reindex(columns=columns, fill_value="")  # written by an older darkflow: new columns


def _rows(table: pd.DataFrame, mask: Sequence[bool]) -> pd.DataFrame:
    return table.loc[np.asarray(mask, dtype=bool)]


def _write_table(path: Path, table: pd.DataFrame) -> None:
    with atomic_write(path) as fh:
        table.to_csv(fh, index=False, lineterminator="\n")


def _merge_lights(dest: Path, lights: Sequence[dict[str, Any]], scope: Scope) -> pd.DataFrame:
    columns = FRAME_REPORT_COLUMNS + FRAME_REPORT_EXTRA
    new = _text_table(lights, columns)
    old = _read_table(dest / "frame_report.csv", columns)
    new_paths = set(new["path"])
    kept = _rows(old, [p not in new_paths and p not in scope for p in old["path"]])
    merged = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    return merged.sort_values("path", kind="stable").reset_index(drop=True)


def _built_elsewhere(registry: Registry, master_id: str, scope: Scope) -> bool:
    """The master is registered and none of its frames lies in this run's inputs."""
    row = registry.get_by_id(master_id)
    if row is None:
        return False
    return not any(item.get("path") in scope for item in row.provenance.get("inputs", []))


def _merge_masters(
    dest: Path,
    masters: Sequence[dict[str, Any]],
    lights: pd.DataFrame,
    scope: Scope,
    registry: Registry,
) -> pd.DataFrame:
    columns = MASTERS_COLUMNS + MASTERS_EXTRA
    new = _text_table(masters, columns)
    old = _read_table(dest / "masters.csv", columns)
    used = (
        set(lights["master_id"])
        | set(lights["bias_master_id"])
        | set(lights["secondary_master_id"])
    )
    new_ids = set(new["master_id"])
    old = _rows(old, [mid not in new_ids for mid in old["master_id"]])
    keep = [mid in used or _built_elsewhere(registry, mid, scope) for mid in old["master_id"]]
    merged = pd.concat([_rows(old, keep), new], ignore_index=True) if any(keep) else new
    order = merged.assign(_bias=merged["kind"] != "bias")
    order = order.sort_values(["_bias", "config_signature", "master_id"], kind="stable")
    return order.drop(columns="_bias").reset_index(drop=True)


def _merge_records(
    old: Iterable[dict[str, Any]],
    new: Sequence[dict[str, Any]],
    key,
    paths,
    scope: Scope,
) -> list[dict[str, Any]]:
    """New records, plus the old ones of other keys that touch no file of this run's inputs."""
    new_keys = {key(r) for r in new}
    kept = [r for r in old if key(r) not in new_keys and not any(p in scope for p in paths(r))]
    return sorted([*kept, *new], key=key)


def _merge_decisions(
    path: Path, decisions: Sequence[dict[str, Any]], texts: Sequence[str], scope: Scope
) -> list[str]:
    """The night's decision lines: this run's (``texts``, the records as
    :func:`darkflow.registry.events.dumps` writes them), and the file's others about no file of this
    run's inputs, one line per light in the order of their paths.

    A run's lines are written as they were encoded, never decoded and encoded again: a
    decision lists every master of its configuration (~130 KB a light at a year of nights)."""

    def key(d: dict[str, Any]) -> str:
        return d.get("light_path") or ""

    new = [(key(d), text) for d, text in zip(decisions, texts, strict=True)]
    new_keys = {k for k, _ in new}
    kept = [
        (key(r), json.dumps(r, separators=(",", ":")))
        for r in read_events(path)
        if key(r) not in new_keys and r.get("light_path") not in scope
    ]
    return [text for _, text in sorted([*kept, *new], key=lambda item: item[0])]


def write_night(
    dest: Path,
    *,
    lights: Sequence[dict[str, Any]],
    masters: Sequence[dict[str, Any]],
    decisions: Sequence[dict[str, Any]],
    thermal: Sequence[dict[str, Any]],
    hists: dict[str, list[int]],
    scope: Scope,
    registry: Registry,
    decision_texts: Sequence[str] | None = None,
) -> None:
    """Merge one run's rows of a night into ``dest`` (``nights/<night>/``).

    ``decision_texts``: the JSON texts of ``decisions`` (:func:`darkflow.registry.events.dumps`), when
    the caller has them."""
    report = _merge_lights(dest, lights, scope)
    master_table = _merge_masters(dest, masters, report, scope, registry)
    texts = decision_texts if decision_texts is not None else [dumps(d) for d in decisions]
    decision_lines = _merge_decisions(dest / "decisions.jsonl", decisions, texts, scope)
    thermal_path = dest / "qa" / "thermal.json"
    old_thermal = json.loads(thermal_path.read_text()) if thermal_path.is_file() else []
    thermal_records = _merge_records(
        old_thermal,
        to_jsonable(list(thermal)),
        key=lambda e: (e["night"], e["session"], e["config_signature"]),
        paths=lambda e: [p["path"] for p in e.get("points", [])],
        scope=scope,
    )
    hist_path = dest / "qa" / "residual_hists.json"
    old_hists = json.loads(hist_path.read_text())["lights"] if hist_path.is_file() else {}
    merged_hists = {p: h for p, h in old_hists.items() if p not in hists and p not in scope}
    merged_hists.update(hists)

    _write_table(dest / "frame_report.csv", report)
    _write_table(dest / "masters.csv", master_table)
    with atomic_write(dest / "decisions.jsonl") as fh:
        fh.writelines(line + "\n" for line in decision_lines)
    write_qa_files(dest, thermal_records, dict(sorted(merged_hists.items())))
