"""The two job kinds, as picklable specs and module-level functions.

Executors (in-process or Dask workers) run :func:`run_master_job` and :func:`run_light_job`.
Jobs write their artifact atomically and return a plain result; only the driver talks to the
registry, so workers never open SQLite. A per-artifact file lock (``<workdir>/locks``) lets two
runs on one work directory share the work instead of doing it twice: the second waits, then finds
the finished artifact.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from darkflow._version import ALGORITHM_VERSION, __version__
from darkflow.config import Config
from darkflow.exceptions import DarkflowError
from darkflow.matching import MatchDecision, MatchReason
from darkflow.model import FrameMeta, LightStatus, MasterDark, MasterStatus, ScaleMode
from darkflow.pipeline.reasons import LightReason, MasterReason
from darkflow.pipeline.sets import FrameSet

__all__ = [
    "LightJobResult",
    "LightJobSpec",
    "MasterJobResult",
    "MasterJobSpec",
    "job_lock",
    "run_light_job",
    "run_master_job",
]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def job_lock(workdir: Path, key: str) -> Iterator[None]:
    """Exclusive lock for one job key, across processes (blocks until free)."""
    lock_dir = Path(workdir) / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{key[:24]}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# ----------------------------------------------------------------------------- masters
@dataclass(frozen=True)
class MasterJobSpec:
    key: str
    fset: FrameSet
    output: Path
    workdir: Path
    config: Config

    @property
    def master_id(self) -> str:
        return self.key[:16]


@dataclass(frozen=True)
class MasterJobResult:
    key: str
    built: bool  # False: another run (or an earlier one) had already written it
    seconds: float
    status: MasterStatus
    confidence: float
    reasons: tuple[str, ...]
    meta: Any = None  # MasterMeta of the built master
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_master_job(spec: MasterJobSpec) -> MasterJobResult:
    """Combine the set into a master (unless the file already exists) and assess it."""
    from darkflow.master import combine_files, read_master, write_master

    t0 = time.monotonic()
    reasons: list[str] = []
    few = len(spec.fset.metas) < spec.config.combine.min_frames
    if few:
        reasons.append(str(MasterReason.TOO_FEW_FRAMES))
    try:
        with job_lock(spec.workdir, spec.key):
            if spec.output.exists():
                master, built = read_master(spec.output), False
            else:
                master = combine_files(
                    list(spec.fset.paths),
                    config=spec.config.combine,
                    allow_few=True,
                    metas=list(spec.fset.metas),
                )
                write_master(master, spec.output)
                built = True
    except (DarkflowError, OSError, ValueError) as err:
        log.error("master %s failed: %s", spec.fset.label, err)
        return MasterJobResult(
            key=spec.key, built=False, seconds=time.monotonic() - t0,
            status=MasterStatus.QUARANTINED, confidence=0.0,
            reasons=(*reasons, str(MasterReason.COMBINE_FAILED)), error=str(err),
        )  # fmt: skip
    status = MasterStatus.LOW_CONFIDENCE if few else MasterStatus.VERIFIED
    return MasterJobResult(
        key=spec.key,
        built=built,
        seconds=time.monotonic() - t0,
        status=status,
        confidence=0.5 if few else 1.0,
        reasons=tuple(reasons),
        meta=master.meta,
        stats=dict(master.stats),
    )


# ----------------------------------------------------------------------------- lights
@dataclass(frozen=True)
class LightJobSpec:
    key: str
    meta: FrameMeta
    decision: MatchDecision
    master_path: Path
    bias_path: Path | None
    bias_id: str | None
    output: Path
    workdir: Path
    config: Config


@dataclass(frozen=True)
class LightJobResult:
    key: str
    fields: dict[str, Any]  # frame-report fields computed by the job
    hist_counts: list[int] | None
    seconds: float
    computed: bool


_CACHE: OrderedDict[str, MasterDark] = OrderedDict()
_GAINS: dict[str, float | None] = {}
_CACHE_SIZE = 4


def _load(path: Path) -> MasterDark:
    """Masters are read once per process (a few kept, least recently used dropped)."""
    from darkflow.master import read_master

    key = str(path)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    master = read_master(path)
    _CACHE[key] = master
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return master


def _gain_of(path: Path, master: MasterDark, clip_sigma: float) -> float | None:
    from darkflow.subtract import estimate_gain_from_dark

    key = str(path)
    if key not in _GAINS:
        fit = estimate_gain_from_dark(master, clip_sigma=clip_sigma)
        _GAINS[key] = fit[0] if fit and fit[1] > 0.8 else None
    return _GAINS[key]


DEGRADING = frozenset(
    {
        MatchReason.EXPANDED_SEARCH,
        MatchReason.EXPOSURE_UNSCALED,
        MatchReason.LOW_CONFIDENCE_MASTER,
        LightReason.NO_BIAS_FOR_SCALING,
    }
)


def run_light_job(spec: LightJobSpec) -> LightJobResult:
    """Subtract the chosen dark model from one light, check it, write it; never raises."""
    t0 = time.monotonic()
    try:
        fields, hist = _calibrate(spec)
    except Exception as err:
        log.exception("light %s failed", spec.meta.path)
        fields = {
            "status": LightStatus.QUARANTINED,
            "reasons": [*map(str, spec.decision.reasons), str(LightReason.CALIBRATION_FAILED)],
            "error": repr(err),
        }
        hist = None
    return LightJobResult(spec.key, fields, hist, time.monotonic() - t0, True)


def _calibrate(spec: LightJobSpec) -> tuple[dict[str, Any], list[int] | None]:
    from darkflow.io.fits import read_image, write_image
    from darkflow.subtract import (
        build_dark_model,
        estimate_gain,
        noise_model_variance,
        subtract_dark,
    )
    from darkflow.verify import residual_analysis

    meta, decision, config = spec.meta, spec.decision, spec.config
    reasons: list[object] = list(decision.reasons)
    master = _load(spec.master_path)
    bias = _load(spec.bias_path) if spec.bias_path else None
    scale_mode = decision.scale_mode
    if scale_mode == ScaleMode.EXPOSURE and bias is None:
        scale_mode = ScaleMode.UNSCALED
        reasons.append(LightReason.NO_BIAS_FOR_SCALING)
    model = build_dark_model(
        master, scale_mode=scale_mode, scale_factor=decision.scale_factor, bias=bias,
        master_id=decision.master_id,
    )  # fmt: skip
    try:
        data, header = read_image(meta.path, hdu=meta.hdu_index, dtype="float32")
    except DarkflowError as err:
        log.warning("%s", err)
        return {"status": LightStatus.QUARANTINED,
                "reasons": [*map(str, reasons), str(LightReason.UNREADABLE)]}, None  # fmt: skip
    if data.shape != master.data.shape:
        return {"status": LightStatus.QUARANTINED,
                "reasons": [*map(str, reasons), str(LightReason.SHAPE_MISMATCH)]}, None  # fmt: skip

    egain, source = meta.egain_e_per_adu, "header"
    if not egain or egain <= 0:
        egain, source = _gain_of(spec.master_path, master, config.combine.sigma_high), "darks"
        if egain is None:
            read_only, _ = noise_model_variance(master, bias=bias, egain_e_per_adu=None)
            egain, source = estimate_gain(data - model.data, read_only), "light"
        reasons.append(LightReason.GAIN_ESTIMATED if egain else LightReason.NO_GAIN)
    read_var, dark_shot_var = noise_model_variance(
        master, bias=bias, egain_e_per_adu=egain, scale_factor=model.scale_factor
    )
    calibrated = subtract_dark(
        data, model, egain_e_per_adu=egain, read_variance_adu2=read_var,
        dark_shot_variance_adu2=dark_shot_var, pedestal_adu=config.subtract.pedestal_adu,
    )  # fmt: skip
    res = residual_analysis(calibrated.data, calibrated.uncertainty)
    degraded = [r for r in reasons if r in DEGRADING]
    if calibrated.stats["n_nonfinite"]:
        reasons.append(LightReason.NONFINITE_PIXELS)
        degraded.append(LightReason.NONFINITE_PIXELS)
    if res.noise_ratio**2 > config.verify.max_variance_ratio:
        reasons.append(LightReason.EXCESS_NOISE)
        degraded.append(LightReason.EXCESS_NOISE)
    if res.neg_tail_frac > 1e-3:
        reasons.append(LightReason.OVERSUBTRACTED)
        degraded.append(LightReason.OVERSUBTRACTED)
    confidence = decision.confidence * (0.6 if degraded else 1.0)
    header = _output_header(header, meta, decision, model, spec.bias_id, confidence, res)
    write_image(spec.output, calibrated.data, header, extensions={"UNCERT": calibrated.uncertainty})
    st = os.stat(spec.output)
    fields = {
        "status": LightStatus.DEGRADED if degraded else LightStatus.CALIBRATED,
        "confidence": round(confidence, 4),
        "reasons": [str(r) for r in reasons],
        "output_path": str(spec.output),
        "output_size": st.st_size,
        "output_mtime_ns": st.st_mtime_ns,
        "noise_ratio": round(res.noise_ratio, 4),
        "neg_tail_frac": round(res.neg_tail_frac, 6),
        "background_adu": round(res.background_adu, 3),
        "egain_e_per_adu": None if egain is None else round(float(egain), 4),
        "egain_source": source if egain else None,
        "scale_mode": str(model.scale_mode),
    }
    return fields, res.hist_counts


def _output_header(header, meta, decision, model, bias_id, confidence, res):
    header = header.copy()
    header["CALSTAT"] = ("BD", "darkflow: bias and dark subtracted")
    header["DFVERS"] = (__version__, "darkflow version")
    header["DFALGO"] = (ALGORITHM_VERSION, "darkflow algorithm version")
    header["DFMASTER"] = (decision.master_id, "darkflow master dark id")
    if bias_id is not None:
        header["DFBIAS"] = (bias_id, "darkflow master bias id")
    header["DFSCMODE"] = (str(model.scale_mode), "dark scale mode")
    header["DFSCALE"] = (round(model.scale_factor, 6), "dark scale factor")
    header["DFCONF"] = (round(confidence, 4), "calibration confidence 0..1")
    header["DFDKMED"] = (round(float(np.median(model.data)), 3), "[adu] median dark model")
    header["DFDKSIG"] = (
        round(float(np.sqrt(np.median(model.variance))), 4),
        "[adu] median dark model uncertainty",
    )
    ratio = res.noise_ratio if math.isfinite(res.noise_ratio) else -1.0
    header["DFNRATIO"] = (round(ratio, 4), "background noise / predicted")
    header["HISTORY"] = f"darkflow {__version__}: dark subtracted with master {decision.master_id}"
    header["HISTORY"] = f"darkflow: scale {model.scale_mode} x{model.scale_factor:.6g}"
    header["HISTORY"] = f"darkflow: input {Path(meta.path).name}"
    return header
