"""A finished work directory as the explorer reads it: the directory itself, a master's input
darks and their normalised headers, a master's combine settings. Below both the prepare layer
(:mod:`darkflow_widgets.data`) and the metrics (:mod:`darkflow_widgets.metrics`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from darkflow.config import CombineConfig
from darkflow.exceptions import DarkflowError, InsufficientFramesError
from darkflow.model import MasterDark
from darkflow.report.results import Workdir

__all__ = ["combine_config_of", "master_inputs", "open_workdir"]

log = logging.getLogger(__name__)


def open_workdir(workdir: str | Path | Workdir) -> Workdir:
    """A :class:`~darkflow.report.results.Workdir` from a path (or the object itself)."""
    return workdir if isinstance(workdir, Workdir) else Workdir(workdir)


def master_inputs(wd: Workdir, master_id: str) -> list[str]:
    """Input files of a master: from its provenance, else from the catalog.

    The catalog fallback takes the frames of the master's configuration and kind whose exposure
    is within 1% of the master's and whose time lies within the master's time span.

    Raises
    ------
    InsufficientFramesError
        No input file of the master exists any more.
    """
    master = wd.load_master(master_id)
    paths = [
        str(item["path"])
        for item in master.provenance.get("inputs", [])
        if isinstance(item, dict) and item.get("path")
    ]
    existing = [p for p in paths if Path(p).is_file()]
    if existing:
        if len(existing) < len(paths):
            log.warning(
                "%d input(s) of master %s are missing", len(paths) - len(existing), master_id
            )
        return existing
    row = wd.masters[wd.masters["master_id"] == master_id].iloc[0]
    cat = wd.catalog
    kind = str(row.get("kind", "dark"))
    sel = (cat["config_signature"] == row["config_signature"]) & (cat["frame_type"] == kind)
    exptime = float(row["exptime_s"])
    sel &= (pd.to_numeric(cat["exptime_s"], errors="coerce") - exptime).abs() <= 0.01 * max(
        exptime, 1e-6
    )
    times = pd.to_datetime(cat["date_obs_utc"], utc=True, errors="coerce", format="ISO8601")
    start = pd.to_datetime(row.get("date_start_utc"), utc=True, errors="coerce")
    end = pd.to_datetime(row.get("date_end_utc"), utc=True, errors="coerce")
    if pd.notna(start) and pd.notna(end):
        sel &= (times >= start) & (times <= end)
    found = [p for p in cat.loc[sel, "path"].astype(str) if Path(p).is_file()]
    if not found:
        raise InsufficientFramesError(
            f"master {master_id}: none of its input darks can be found "
            f"({len(paths)} in its provenance, none in the catalog)"
        )
    return sorted(found)


def _catalog_metas(wd: Workdir, paths: list[str]) -> dict[str, Any]:
    """Normalised headers of ``paths`` from the catalog, by path (those that can be rebuilt)."""
    from darkflow.ingest.catalog import meta_from_row

    cat = wd.catalog.set_index("path", drop=False)
    # the contract catalog.csv has no Bayer pattern: the frame report carries the lights'
    fr = wd.frame_report
    bayer = {}
    if "bayer_pattern" in fr.columns:
        bayer = {
            p: b
            for p, b in zip(fr["path"], fr["bayer_pattern"], strict=True)
            if isinstance(b, str) and b
        }
    metas = {}
    for p in paths:
        if p not in cat.index:
            continue
        try:
            meta = meta_from_row(cat.loc[p].to_dict())
        except DarkflowError:
            continue
        if meta.bayer_pattern is None and p in bayer:
            meta = meta.replace(bayer_pattern=bayer[p])
        metas[p] = meta
    return metas


def combine_config_of(master: MasterDark) -> CombineConfig:
    """The combine settings recorded in a master's provenance (defaults for unknown keys)."""
    params = master.provenance.get("params") or {}
    known = {f.name for f in dataclasses.fields(CombineConfig)}
    try:
        return CombineConfig(**{k: v for k, v in params.items() if k in known})
    except (TypeError, DarkflowError):
        return CombineConfig()
