"""The *prepare* layer of the explorers: pandas/numpy views of a work directory (no ipywidgets).

Everything the explorer shows is computed here from the public API, so it can be used (and
tested) without a browser or ipywidgets:

* :func:`configurations`, :func:`masters_for`, :func:`lights_for`: what to pick from;
* :func:`master_inputs`, :func:`rerun_master`: combine a master's input darks again with other
  clipping settings (:func:`darkflow.master.combine_files`) and compare the acceptance metrics;
* :func:`compare_masters`: difference image, its significance and fixed-pattern spectra;
* :func:`inspect_light`: one light's match decision (every candidate and why it lost) and the
  residuals of its calibrated frame against the noise model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkflow.config import CombineConfig
from darkflow.exceptions import DarkflowError, FitsReadError
from darkflow.io.fits import read_calibrated
from darkflow.model import MasterDark
from darkflow.report.results import Workdir, reason_texts
from darkflow.verify import HIST_EDGES, ResidualStats, residual_analysis
from darkflow.viz.extra import Difference, prepare_difference

from .metrics import MetricContext, compute_metrics

# re-exported: the explorer and notebooks import them from here
from .workdir import _catalog_metas, combine_config_of, master_inputs, open_workdir  # noqa: F401

__all__ = [
    "LightInspection",
    "MasterComparison",
    "RerunResult",
    "compare_masters",
    "configurations",
    "inspect_light",
    "lights_for",
    "master_inputs",
    "masters_for",
    "open_workdir",
    "rerun_master",
]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- pickers
def configurations(wd: Workdir, night: str | None = None, session: str | None = None) -> list[str]:
    """Configuration signatures of the lights of a night/session (sorted)."""
    lights = wd.lights(night=night, session=session)
    if "config_signature" not in lights:
        return []
    return sorted(str(s) for s in lights["config_signature"].dropna().unique())


def lights_for(
    wd: Workdir,
    night: str | None = None,
    session: str | None = None,
    config_signature: str | None = None,
) -> pd.DataFrame:
    """Frame-report rows of a night/session (and configuration), with a short ``name``."""
    lights = wd.lights(night=night, session=session)
    if config_signature is not None and "config_signature" in lights:
        lights = lights[lights["config_signature"] == config_signature]
    lights = lights.reset_index(drop=True).copy()
    lights.insert(0, "name", lights["path"].map(lambda p: Path(str(p)).name))
    return lights


def masters_for(
    wd: Workdir, config_signature: str | None = None, *, night: str | None = None
) -> pd.DataFrame:
    """Masters of a configuration with ``used_by`` (how many lights of the report use them)."""
    masters = wd.masters
    if config_signature is not None:
        masters = masters[masters["config_signature"] == config_signature]
    if night is not None and "night" in masters:
        masters = masters[masters["night"].astype(str) == night]
    masters = masters.reset_index(drop=True).copy()
    fr = wd.frame_report
    used = fr["master_id"].dropna().astype(str).value_counts() if "master_id" in fr else {}
    bias_used = (
        fr["bias_master_id"].dropna().astype(str).value_counts() if "bias_master_id" in fr else {}
    )
    masters["used_by"] = [
        int(used.get(m, 0)) + int(bias_used.get(m, 0)) for m in masters["master_id"].astype(str)
    ]
    return masters


def master_label(row: pd.Series | dict[str, Any]) -> str:
    """``<id> · dark 300s @ -10.0°C · 7 frames`` (what the pickers show)."""
    temp = row.get("temp_c")
    temp_txt = (
        ""
        if temp is None or (isinstance(temp, float) and math.isnan(temp))
        else f" @ {float(temp):.1f}°C"
    )
    kind = row.get("kind", "dark")
    return f"{row['master_id']} · {kind} {float(row['exptime_s']):g}s{temp_txt} · {int(row['n_frames'])} frames"


# ----------------------------------------------------------------------------- re-run
@dataclass(frozen=True, eq=False)
class RerunResult:
    """A master combined again with other settings, with the metrics of both versions."""

    master_id: str
    config: CombineConfig
    original: MasterDark
    rerun: MasterDark
    metrics: pd.DataFrame  # metric, original, rerun, change, better, description
    inputs: tuple[str, ...]
    seconds: float
    difference: Difference = field(repr=False)

    def improved(self) -> dict[str, bool | None]:
        """Per metric: did the re-run improve it (``None`` when the metric has no direction)."""
        out: dict[str, bool | None] = {}
        for _, r in self.metrics.iterrows():
            a, b = r["original"], r["rerun"]
            if not (math.isfinite(a) and math.isfinite(b)) or not r["better"]:
                out[r["metric"]] = None
            elif r["better"] == "lower":
                out[r["metric"]] = bool(b < a)
            elif r["better"] == "higher":
                out[r["metric"]] = bool(b > a)
            else:
                out[r["metric"]] = bool(abs(b - 1) < abs(a - 1))
        return out


def rerun_master(
    wd: Workdir,
    master_id: str,
    config: CombineConfig,
    *,
    max_lights: int = 3,
    metrics: list[str] | None = None,
) -> RerunResult:
    """Combine a master's input darks again with ``config`` and compare the acceptance metrics.

    Nothing is written: the original master, its inputs and the work directory are untouched.

    Raises
    ------
    InsufficientFramesError
        The inputs cannot be found.
    FitsReadError, IncompatibleFramesError
        From :func:`darkflow.master.combine_files`.
    """
    from darkflow.master import as_written, combine_files, output_of

    original = wd.load_master(master_id)
    inputs = master_inputs(wd, master_id)
    found = _catalog_metas(wd, inputs)
    metas = [found[p] for p in inputs] if len(found) == len(inputs) else None
    t0 = time.perf_counter()
    rerun = combine_files(inputs, config=config, allow_few=True, metas=metas)
    seconds = time.perf_counter() - t0
    # the re-run models the same thing as the original (keep its metadata for the dark model),
    # with its planes as the original's file holds them ([output]: quantised, rebuilt)
    rerun = as_written(dataclasses.replace(rerun, meta=original.meta), output_of(original))
    ctx = MetricContext.for_master(wd, master_id, max_lights=max_lights)
    before = compute_metrics(original, ctx, metrics)
    after = compute_metrics(rerun, ctx, metrics)
    table = pd.DataFrame(
        {
            "metric": before["metric"],
            "original": before["value"],
            "rerun": after["value"],
            "change": after["value"] - before["value"],
            "better": before["better"],
            "description": before["description"],
        }
    )
    diff = prepare_difference(
        rerun.data,
        original.data,
        ua=rerun.uncertainty,
        ub=original.uncertainty,
        labels=("re-run", "original"),
    )
    return RerunResult(master_id, config, original, rerun, table, tuple(inputs), seconds, diff)


# ----------------------------------------------------------------------------- compare
@dataclass(frozen=True, eq=False)
class MasterComparison:
    a_id: str
    b_id: str
    a: MasterDark
    b: MasterDark
    summary: pd.DataFrame  # one row per master: exptime, temp, frames, median, ...
    difference: Difference

    @property
    def stats(self) -> dict[str, float]:
        return self.difference.stats


def _master_row(master_id: str, m: MasterDark) -> dict[str, Any]:
    return {
        "master_id": master_id,
        "kind": str(m.meta.frame_kind),
        "exptime_s": m.meta.exptime_s,
        "temp_c": m.meta.temp_c,
        "n_frames": m.meta.n_frames,
        "median_adu": float(np.nanmedian(m.data)),
        "median_uncertainty_adu": float(np.nanmedian(m.uncertainty)),
        "n_hot_stable": int(np.count_nonzero(m.hot_persistence >= 0.9)),
    }


def compare_masters(wd: Workdir, a_id: str, b_id: str) -> MasterComparison:
    """Difference ``a - b`` of two masters, its significance and their fixed-pattern spectra.

    Raises
    ------
    IncompatibleFramesError
        The masters differ in shape.
    """
    a, b = wd.load_master(a_id), wd.load_master(b_id)
    diff = prepare_difference(
        a.data, b.data, ua=a.uncertainty, ub=b.uncertainty, labels=(a_id, b_id)
    )
    summary = pd.DataFrame([_master_row(a_id, a), _master_row(b_id, b)])
    return MasterComparison(a_id, b_id, a, b, summary, diff)


# ----------------------------------------------------------------------------- one light
@dataclass(frozen=True, eq=False)
class LightInspection:
    """One light: its frame-report row, match decision, reasons and residuals."""

    path: str
    row: dict[str, Any]
    decision: dict[str, Any] | None
    candidates: pd.DataFrame
    reasons: pd.DataFrame  # code, description
    residuals: ResidualStats | None
    calibrated: np.ndarray | None = field(default=None, repr=False)
    hist_edges: np.ndarray = field(default_factory=lambda: HIST_EDGES.copy(), repr=False)

    @property
    def status(self) -> str:
        return str(self.row.get("status", ""))


_CANDIDATE_COLUMNS = [
    "master_id",
    "exptime_s",
    "temp_c",
    "delta_exptime_s",
    "delta_temp_c",
    "delta_time_h",
    "dark_mismatch",
    "score",
    "lost_because",
]


def _read_calibrated(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels and uncertainty of a calibrated light, whatever ``[output] light_uncertainty``
    was (a ``scalar`` uncertainty is rebuilt from the header's noise model)."""
    planes = read_calibrated(path)
    return planes.data, planes.uncertainty


def inspect_light(wd: Workdir, light_path: str) -> LightInspection:
    """Everything the explorer shows about one light.

    The residuals are recomputed from the calibrated frame and its ``UNCERT`` plane with
    :func:`darkflow.verify.residual_analysis` (``None`` when the light was not calibrated or the
    file is gone).

    Raises
    ------
    DarkflowError
        ``light_path`` is not in the frame report.
    """
    fr = wd.frame_report
    rows = fr[fr["path"] == light_path]
    if rows.empty:
        raise DarkflowError(f"{light_path} is not a light of {wd.path}")
    row = {
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rows.iloc[0].items()
    }
    decision = wd.decision_for(light_path)
    cands = pd.DataFrame((decision or {}).get("candidates", []))
    if not cands.empty:
        cands["lost_because"] = cands.get("lost_because", pd.Series(dtype=object)).map(
            lambda v: ", ".join(v) if isinstance(v, list) else ("" if v is None else str(v))
        )
        cands = cands[[c for c in _CANDIDATE_COLUMNS if c in cands.columns]]
        # every master of the dark model's recipe (an interpolation uses two)
        chosen = {(decision or {}).get("master_id"), (decision or {}).get("secondary_master_id")}
        cands.insert(0, "chosen", cands["master_id"].isin(chosen - {None}))
    texts = reason_texts()
    codes = [c for c in str(row.get("reasons") or "").split(";") if c]
    reasons = pd.DataFrame(
        {"code": codes, "description": [texts.get(c, "") for c in codes]},
        columns=["code", "description"],
    )
    residuals, calibrated = None, None
    out = row.get("output_path")
    if out and Path(str(out)).is_file():
        try:
            planes = _read_calibrated(str(out))
        except FitsReadError as err:
            log.warning("cannot read calibrated light %s: %s", out, err)
            planes = None
        if planes is not None:
            calibrated = planes[0]
            residuals = residual_analysis(planes[0], planes[1])
    return LightInspection(light_path, row, decision, cands, reasons, residuals, calibrated)
