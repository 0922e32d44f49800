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
from darkflow.exceptions import DarkflowError, OutputError
from darkflow.io.paths import card_text
from darkflow.matching import MatchDecision
from darkflow.model import FrameMeta, LightStatus, MasterDark, MasterStatus
from darkflow.pipeline.reasons import LightReason, MasterReason
from darkflow.pipeline.sets import FrameSet

__all__ = [
    "LightJobResult",
    "LightJobSpec",
    "MasterJobResult",
    "MasterJobSpec",
    "input_stat_of",
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
    assess: bool = True  # (re)assess the master (missing or stale assessment)
    bias_path: Path | None = None  # master bias of the configuration (assessment only)
    previous_path: Path | None = None  # previous verified master of the configuration
    input_hashes: tuple[str, ...] = ()  # content hashes of fset.paths (the hold-out split's keys)

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
    assessment: dict[str, Any] | None = None
    error: str | None = None


def _assess(spec: MasterJobSpec, master: MasterDark) -> Any:
    """Acceptance gates: a master from the training frames against the held-out frames."""
    from darkflow.io.fits import read_image
    from darkflow.master import combine_files
    from darkflow.verify import assess_master, holdout_split

    v = spec.config.verify
    paths = list(spec.fset.paths)
    train, held = holdout_split(paths, v.holdout_fraction, seed=0, min_train=v.min_train_frames,
                                keys=spec.input_hashes or None)  # fmt: skip
    judged = master
    if held:
        metas = [m for m in spec.fset.metas if m.path in set(train)]
        judged = combine_files(list(train), config=spec.config.combine, allow_few=True, metas=metas)

    def holdout():
        for path in held:
            yield read_image(path, dtype="float32")[0]

    previous = _load(spec.previous_path) if spec.previous_path else None
    bias = _load(spec.bias_path) if spec.bias_path else None
    if previous is not None and previous.data.shape != master.data.shape:
        previous = None
    if bias is not None and bias.data.shape != master.data.shape:
        bias = None
    return assess_master(
        judged, holdout=holdout if held else None, previous=previous, bias=bias, config=v
    )


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
        assessment = _assess(spec, master) if spec.assess else None
    except Exception as err:  # the batch runner: the failure is recorded against the master
        _raise_if_disk_full(err)
        reason = _master_failure(err)
        if reason == MasterReason.COMBINE_FAILED:
            log.exception("master %s failed", spec.fset.label)
        else:
            log.error("master %s failed (%s): %s", spec.fset.label, reason, err)
        return MasterJobResult(
            key=spec.key, built=False, seconds=time.monotonic() - t0,
            status=MasterStatus.FAILED, confidence=0.0,
            reasons=(*reasons, str(reason)), error=f"{type(err).__name__}: {err}",
        )  # fmt: skip
    if assessment is not None:
        status, confidence = assessment.status, assessment.confidence
        reasons.extend(str(r) for r in assessment.reasons)
    else:
        status, confidence = MasterStatus.VERIFIED, 1.0
    if few:
        status = MasterStatus.LOW_CONFIDENCE
        confidence = min(confidence, 0.5)
    return MasterJobResult(
        key=spec.key,
        built=built,
        seconds=time.monotonic() - t0,
        status=status,
        confidence=round(float(confidence), 4),
        reasons=tuple(dict.fromkeys(reasons)),
        meta=master.meta,
        stats=dict(master.stats),
        assessment=None if assessment is None else assessment.to_dict(),
    )


def _master_failure(err: Exception) -> MasterReason:
    """The reason code of a failed master: what went wrong, so triage names the right cause."""
    from darkflow.exceptions import FitsReadError, IncompatibleFramesError, OutputError

    if isinstance(err, IncompatibleFramesError):
        return MasterReason.INCONSISTENT_SET
    if isinstance(err, FitsReadError):
        return MasterReason.UNREADABLE_FRAME
    if isinstance(err, OutputError | OSError):
        return MasterReason.OUTPUT_FAILED
    return MasterReason.COMBINE_FAILED


def _raise_if_disk_full(err: BaseException) -> None:
    """A full disk fails every later job too: stop the run with one error instead."""
    from darkflow.exceptions import DiskFullError
    from darkflow.io.atomic import is_disk_full

    if isinstance(err, DiskFullError):
        raise err
    if is_disk_full(err):
        raise disk_full_error(err) from err


def disk_full_error(err: BaseException) -> Exception:
    """The one message a full disk gives, whichever write hit it first."""
    from darkflow.exceptions import DiskFullError

    return DiskFullError(
        f"disk full: {err}. The run stopped early and is marked failed (interrupted if even "
        "that could not be written); free space on the work directory's disk and run again "
        "(finished masters and lights are kept)."
    )


# ----------------------------------------------------------------------------- lights
@dataclass(frozen=True)
class LightJobSpec:
    key: str
    meta: FrameMeta
    decision: MatchDecision
    master_paths: dict[str, Path]  # master id -> file, for every master of the recipe
    master_status: str  # registry status of the primary master
    bias_path: Path | None
    bias_id: str | None
    output: Path
    workdir: Path
    config: Config
    index: Any  # the configuration's CalibrationIndex (laws, glow, linearity, biases)
    amplitude_limit_sigma: float | None = None  # conservative alternative (see SubtractConfig)
    input_stat: tuple[int, int] | None = None  # (size, mtime_ns) of the light when scanned

    @property
    def master_path(self) -> Path:
        return self.master_paths[self.decision.master_id]


@dataclass(frozen=True)
class LightJobResult:
    key: str
    fields: dict[str, Any]  # frame-report fields computed by the job
    hist_counts: list[int] | None
    seconds: float
    computed: bool


def input_stat_of(row: dict[str, Any]) -> tuple[int, int] | None:
    """(size, mtime_ns) of a catalog row: what the light's metadata and cache key describe."""
    size, mtime = row.get("file_size"), row.get("mtime_ns")
    try:
        return int(size), int(mtime)
    except (TypeError, ValueError):  # missing (NA, None): nothing to compare against
        return None


def _stat_now(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of ``path`` now; ``None`` when it is gone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


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


def run_light_job(spec: LightJobSpec) -> LightJobResult:
    """Subtract the chosen dark model from one light, check it, write it; never raises."""
    t0 = time.monotonic()
    try:
        fields, hist = _calibrate(spec)
    except Exception as err:
        _raise_if_disk_full(err)
        if isinstance(err, OutputError):  # the environment, not a bug: no traceback
            log.error("light %s: %s", spec.meta.path, err)
            reason = LightReason.OUTPUT_FAILED
        else:
            log.exception("light %s failed", spec.meta.path)
            reason = LightReason.CALIBRATION_FAILED
        fields = {
            "status": LightStatus.QUARANTINED,
            "reasons": [*map(str, spec.decision.reasons), str(reason)],
            "error": repr(err),
        }
        hist = None
    return LightJobResult(spec.key, fields, hist, time.monotonic() - t0, True)


def limit_dark_amplitude(model: Any, bias: MasterDark | None, k: float) -> Any:
    """The conservative alternative's model: its dark signal kept within ``k`` robust sigmas
    of the typical level, so a master whose hot pixels do not fit the light cannot over-subtract
    them by much (they are left partly uncorrected instead). Capped pixels are flagged
    :data:`~darkflow.subtract.FLAG_LIMITED` and kept out of the hot-pixel scale check."""
    import dataclasses

    from darkflow.subtract import FLAG_LIMITED

    base = (
        bias.data.astype(np.float32) if bias is not None else np.float32(np.nanmedian(model.data))
    )
    signal = model.data - base
    finite = signal[np.isfinite(signal)]
    if finite.size == 0:
        return model
    level = float(np.median(finite))
    spread = 1.4826 * float(np.median(np.abs(finite - level)))
    lo, hi = level - k * spread, level + k * spread
    with np.errstate(invalid="ignore"):
        capped = (signal < lo) | (signal > hi)
    limited = np.clip(signal, lo, hi)
    flags = np.zeros(signal.shape, np.uint8) if model.flags is None else model.flags.copy()
    flags |= np.where(capped, FLAG_LIMITED, 0).astype(np.uint8)
    dark_signal = None
    if model.dark_signal is not None:
        dark_signal = (model.dark_signal - (signal - limited)).astype(np.float32)
    notes = {**model.notes, "amplitude_limit": {"sigma": k, "level": level, "spread": spread,
                                                 "n_capped": int(np.count_nonzero(capped))}}  # fmt: skip
    return dataclasses.replace(model, data=(base + limited).astype(np.float32), flags=flags,
                               dark_signal=dark_signal, notes=notes)  # fmt: skip


def _quarantine(reasons: list[object], extra: object) -> tuple[dict[str, Any], None]:
    return {"status": LightStatus.QUARANTINED, "reasons": [*map(str, reasons), str(extra)]}, None


def _calibrate(spec: LightJobSpec) -> tuple[dict[str, Any], list[int] | None]:
    from darkflow.exceptions import CalibrationError
    from darkflow.io.fits import read_image, write_image
    from darkflow.subtract import (
        dark_model_for,
        dark_shot_variance,
        estimate_gain,
        noise_model_variance,
        subtract_dark,
    )
    from darkflow.triage import rank_causes
    from darkflow.verify import ResponseAction, apply_response, check_light, light_status

    meta, decision, config = spec.meta, spec.decision, spec.config
    reasons: list[object] = list(decision.reasons)

    def load(master_id: str) -> MasterDark:
        return _load(spec.master_paths[master_id])

    master = load(decision.master_id)
    bias = _load(spec.bias_path) if spec.bias_path else None
    if bias is not None and bias.data.shape != master.data.shape:
        bias = None
    try:
        model = dark_model_for(decision, load_master=load, bias=bias, index=spec.index)
    except CalibrationError as err:
        log.warning("%s: %s", meta.path, err)
        return _quarantine(reasons, LightReason.NO_BIAS_FOR_SCALING)
    if spec.amplitude_limit_sigma is not None:
        model = limit_dark_amplitude(model, bias, spec.amplitude_limit_sigma)
    before = _stat_now(meta.path)
    if before is None:
        log.warning("%s: deleted or moved after the scan", meta.path)
        return _quarantine(reasons, LightReason.INPUT_VANISHED)
    try:
        data, header = read_image(meta.path, hdu=meta.hdu_index, dtype="float32")
    except DarkflowError as err:
        log.warning("%s", err)
        gone = _stat_now(meta.path) is None
        return _quarantine(reasons, LightReason.INPUT_VANISHED if gone else LightReason.UNREADABLE)
    after = _stat_now(meta.path)
    # bytes other than the scanned ones (rewritten before or while being read) would be
    # calibrated under a cache key and metadata that describe the old file
    if after != before or (spec.input_stat is not None and before != spec.input_stat):
        log.warning("%s: changed after the scan (size/mtime differ); not calibrated", meta.path)
        reason = LightReason.INPUT_VANISHED if after is None else LightReason.INPUT_CHANGED
        return _quarantine(reasons, reason)
    if data.shape != model.data.shape:
        return _quarantine(reasons, LightReason.SHAPE_MISMATCH)
    if not np.isfinite(data).any():
        return _quarantine(reasons, LightReason.NO_FINITE_PIXELS)

    egain, source = meta.egain_e_per_adu, "header"
    if not egain or egain <= 0:
        egain, source = _gain_of(spec.master_path, master, config.combine.sigma_high), "darks"
        if egain is None:
            read_only, _ = noise_model_variance(master, bias=bias, egain_e_per_adu=None)
            egain, source = estimate_gain(data - model.data, read_only), "light"
        reasons.append(LightReason.GAIN_ESTIMATED if egain else LightReason.NO_GAIN)

    def calibrate(model, pedestal: float):
        read_var, shot = noise_model_variance(
            master, bias=bias, egain_e_per_adu=egain, scale_factor=model.scale_factor
        )
        if model.dark_signal is not None and egain:
            shot = dark_shot_variance(model, egain)
        cal = subtract_dark(
            data, model, egain_e_per_adu=egain, read_variance_adu2=read_var,
            dark_shot_variance_adu2=shot, pedestal_adu=pedestal,
        )  # fmt: skip
        check = check_light(data, cal, model, meta=meta, config=config.verify, bias=bias,
                            pedestal_adu=pedestal)  # fmt: skip
        return cal, check

    pedestal = config.subtract.pedestal_adu
    calibrated, check = calibrate(model, pedestal)
    response = check.response
    applied = "none"
    first_findings = check.failed_reasons  # the evidence behind a response stays on record
    # one corrective response, then check again (recorded either way)
    if response.action == ResponseAction.RESCALE_DARK and response.factor:
        model = apply_response(model, response, bias=bias)
        calibrated, check = calibrate(model, pedestal)
        applied = f"rescale_dark x{response.factor:.4g}"
        reasons.append(LightReason.DARK_RESCALED)
    elif response.action == ResponseAction.ADD_PEDESTAL and response.pedestal_adu:
        pedestal += float(response.pedestal_adu)
        calibrated, check = calibrate(model, pedestal)
        applied = f"add_pedestal {response.pedestal_adu:.4g}"
        reasons.append(LightReason.PEDESTAL_ADDED)
    elif response.action != ResponseAction.NONE:
        applied = f"suggested: {response.action}"
    status, _failed = light_status(check, master=spec.master_status, config=config.verify)
    if applied != "none":
        reasons.extend(first_findings)
    reasons.extend(check.reasons)
    if calibrated.stats["n_nonfinite"]:
        reasons.append(LightReason.NONFINITE_PIXELS)
        if status == LightStatus.CALIBRATED:
            status = LightStatus.DEGRADED
    if status == LightStatus.CALIBRATED and (
        decision.degraded
        or applied.startswith(("rescale_dark", "add_pedestal"))
        or spec.amplitude_limit_sigma is not None
    ):
        status = LightStatus.DEGRADED  # calibrated, with a degraded expectation (reasons say why)
    confidence = round(float(decision.confidence * check.confidence), 4)
    causes = rank_causes(reasons)
    res = check.residuals
    fields: dict[str, Any] = {
        "status": status,
        "confidence": confidence,
        "reasons": [str(r) for r in reasons],
        "noise_ratio": None if res is None else round(res.noise_ratio, 4),
        "neg_tail_frac": None if res is None else round(res.neg_tail_frac, 6),
        "background_adu": None if res is None else round(res.background_adu, 3),
        "egain_e_per_adu": None if egain is None else round(float(egain), 4),
        "egain_source": source if egain else None,
        "scale_mode": str(model.scale_mode),
        "response": applied,
        "top_cause": str(causes[0][0]) if causes else None,
        **{k: (None if v is None else round(float(v), 6)) for k, v in check.values.items()},
    }
    if status == LightStatus.QUARANTINED:  # not delivered: no calibrated file
        return fields, None if res is None else res.hist_counts
    header = _output_header(header, meta, decision, model, spec.bias_id, confidence, check)
    write_image(spec.output, calibrated.data, header, extensions={"UNCERT": calibrated.uncertainty})
    st = os.stat(spec.output)
    fields.update(output_path=str(spec.output), output_size=st.st_size,
                  output_mtime_ns=st.st_mtime_ns)  # fmt: skip
    return fields, None if res is None else res.hist_counts


def _output_header(header, meta, decision, model, bias_id, confidence, check):
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
    res = check.residuals
    ratio = res.noise_ratio if res is not None and math.isfinite(res.noise_ratio) else -1.0
    header["DFNRATIO"] = (round(ratio, 4), "background noise / predicted")
    weight = check.weight if math.isfinite(check.weight) else 0.0
    header["DFWEIGHT"] = (float(f"{weight:.6g}"), "stacking weight 1/(u_bg^2 max(1, ratio^2))")
    if decision.secondary_master_id:
        header["DFMASTR2"] = (decision.secondary_master_id, "second master of the dark model")
    header["HISTORY"] = f"darkflow {__version__}: dark subtracted with master {decision.master_id}"
    header["HISTORY"] = f"darkflow: scale {model.scale_mode} x{model.scale_factor:.6g}"
    # a FITS card holds printable ASCII only: the name is escaped (\xe8, \xff) to fit
    header["HISTORY"] = f"darkflow: input {card_text(Path(meta.path).name)}"
    return header
