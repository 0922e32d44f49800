"""What the pipeline writes for people and tools: CSV reports, decision log, QA files.

``frame_report.csv`` starts with the contract columns (names that users and scripts rely on; new
ones are only ever appended), one row per light; ``masters.csv`` one row per master used or built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkflow.io.atomic import atomic_write
from darkflow.model import FrameMeta, FrameType, LightStatus
from darkflow.registry.events import to_jsonable
from darkflow.thermal import fit_temperature_drift
from darkflow.verify import HIST_EDGES, LIGHT_VALUE_COLUMNS, MASTER_VALUE_COLUMNS

__all__ = [
    "FRAME_REPORT_COLUMNS",
    "FRAME_REPORT_EXTRA",
    "MASTERS_COLUMNS",
    "MASTERS_EXTRA",
    "light_row",
    "reasons_text",
    "thermal_entries",
    "write_csv",
    "write_qa",
    "write_qa_files",
]

FRAME_REPORT_COLUMNS = [
    "path",
    "status",
    "master_id",
    "master_exptime_s",
    "master_temp_c",
    "scale_mode",
    "scale_factor",
    "delta_exptime_s",
    "delta_temp_c",
    "delta_time_h",
    "confidence",
    "reasons",
    "output_path",
]
FRAME_REPORT_EXTRA = [
    "night",
    "session",
    "config_signature",
    "instrument",
    "exptime_s",
    "ccd_temp_c",
    "set_temp_c",
    "date_obs_utc",
    "noise_ratio",
    "neg_tail_frac",
    "background_adu",
    "bias_master_id",
    "egain_e_per_adu",
    "egain_source",
    "egain_sigma",
    # the header's EGAIN against photon transfer on pairs of the session's lights
    "pair_gain_e_per_adu",
    "pair_gain_sigma",
    "pair_gain_z",
    "pair_gain_check",
    "pair_gain_saturated_tiles",
    "job_key",
    "cached",
    # matching
    "secondary_master_id",
    "interp_weight",
    "exposure_factor",
    "temp_factor",
    "temp_used_c",
    "temp_sigma_c",
    "temp_source",
    "dark_law_doubling_c",
    "dark_law_source",
    "linearity_status",
    "predicted_dark_error",
    "dark_level_sigma_adu",
    "n_expansions",
    # verification
    *LIGHT_VALUE_COLUMNS,
    "response",
    "top_cause",
    # colour sensors: the Bayer pattern the light's checks used (the contract catalog.csv has none)
    "bayer_pattern",
]
MASTERS_COLUMNS = [
    "master_id",
    "config_signature",
    "exptime_s",
    "temp_c",
    "n_frames",
    "status",
    "confidence",
    "path",
]
MASTERS_EXTRA = [
    "kind",
    "night",
    "instrument",
    "set_temp_c",
    "temp_min_c",
    "temp_max_c",
    "date_start_utc",
    "date_end_utc",
    "reasons",
    "cached",
    "n_hot_stable",
    "median_adu",
    "previous_master_id",
    "bias_master_id",
    "top_cause",
    # acceptance metrics
    *MASTER_VALUE_COLUMNS,
    "error",  # why a master with status failed could not be built
]


def reasons_text(reasons: Iterable[object]) -> str:
    """Reason codes joined by ``;``, in order, each once."""
    seen: list[str] = []
    for r in reasons:
        for part in str(r).split(";"):
            if part and part not in seen:
                seen.append(part)
    return ";".join(seen)


def fmt(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def light_row(row: dict[str, Any]) -> dict[str, Any]:
    """A frame-report row for a light, before matching and calibration fill it in."""
    return {
        "path": row["path"],
        "status": LightStatus.QUARANTINED,
        "master_id": None,
        "master_exptime_s": None,
        "master_temp_c": None,
        "scale_mode": None,
        "scale_factor": None,
        "delta_exptime_s": None,
        "delta_temp_c": None,
        "delta_time_h": None,
        "confidence": 0.0,
        "reasons": row.get("reasons") or "",
        "output_path": None,
        "night": row.get("night"),
        "session": row.get("session"),
        "config_signature": row.get("config_signature"),
        "instrument": row.get("instrument"),
        "exptime_s": fmt(row.get("exptime_s")),
        "ccd_temp_c": fmt(row.get("ccd_temp_c")),
        "set_temp_c": fmt(row.get("set_temp_c")),
        "date_obs_utc": row.get("date_obs_utc"),
        "noise_ratio": None,
        "neg_tail_frac": None,
        "background_adu": None,
        "bias_master_id": None,
        "egain_e_per_adu": fmt(row.get("egain_e_per_adu")),
        "egain_source": None,
        "egain_sigma": None,
        "job_key": None,
        "cached": None,
        "bayer_pattern": row.get("bayer_pattern"),
    }


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """Write ``rows`` as a CSV with exactly ``columns``, atomically; return ``path``."""
    frame = pd.DataFrame(rows, columns=columns)
    with atomic_write(path) as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")
    return path


def thermal_entries(
    rows: list[dict[str, Any]], metas: dict[str, FrameMeta]
) -> list[dict[str, Any]]:
    """Thermal drift fits of the lights, per night, session and configuration (sorted)."""
    groups: dict[tuple[str, str, str], list[FrameMeta]] = {}
    for r in rows:
        meta = metas.get(r["path"])
        if meta is None or r["frame_type"] != FrameType.LIGHT or meta.date_obs_utc is None:
            continue
        key = (r.get("night") or "unknown", r.get("session") or "unknown", meta.config_signature)
        groups.setdefault(key, []).append(meta)
    thermal = []
    for (night, session, signature), members in sorted(groups.items()):
        set_temps = [m.set_temp_c for m in members if m.set_temp_c is not None]
        fit = fit_temperature_drift(
            [m.date_obs_utc for m in members],
            [m.ccd_temp_c for m in members],
            set_temp_c=float(np.median(set_temps)) if set_temps else None,
        )
        thermal.append(
            {
                "night": night,
                "session": session,
                "config_signature": signature,
                "fit": fit.to_dict(),
                "points": [
                    {"path": m.path, "time": m.date_obs_utc.isoformat(), "temp_c": m.ccd_temp_c}
                    for m in sorted(members, key=lambda m: m.date_obs_utc)
                ],
            }
        )
    return thermal


def write_qa(
    workdir: Path,
    rows: list[dict[str, Any]],
    metas: dict[str, FrameMeta],
    hists: dict[str, list[int]],
) -> None:
    """Thermal drift fits per night/session/configuration and residual histograms."""
    write_qa_files(workdir, thermal_entries(rows, metas), hists)


def write_qa_files(
    workdir: Path, thermal: list[dict[str, Any]], hists: dict[str, list[int]]
) -> None:
    """Write ``qa/thermal.json`` (temperature traces) and ``qa/residual_hists.json`` (residual
    histograms) atomically."""
    qa = workdir / "qa"
    with atomic_write(qa / "thermal.json") as fh:
        json.dump(to_jsonable(thermal), fh, indent=1)
    with atomic_write(qa / "residual_hists.json") as fh:
        json.dump({"edges": HIST_EDGES.tolist(), "lights": hists}, fh)
