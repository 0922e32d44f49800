"""The two job kinds, as picklable specs and module-level functions.

Executors (in-process or Dask workers) run :func:`run_master_job` and :func:`run_light_job`.
Jobs write their artifact atomically and return a plain result with the artifact's content hash;
only the driver talks to the registry, so workers never open SQLite. Every master a job reads is
verified against the content hash the driver passes (hashed as it is read); a mismatch comes
back in the result's ``corrupt`` paths, never as a calibration with a damaged master. A per-artifact file lock (``<workdir>/locks``) lets two
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
from darkflow.exceptions import ArtifactCorruptError, DarkflowError
from darkflow.hashing import file_hash
from darkflow.integrity import set_aside
from darkflow.matching import MatchDecision
from darkflow.model import FrameMeta, LightStatus, MasterDark, MasterStatus
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
    assess: bool = True  # (re)assess the master (missing or stale assessment)
    bias_path: Path | None = None  # master bias of the configuration (assessment only)
    previous_path: Path | None = None  # previous verified master of the configuration
    input_hashes: tuple[str, ...] = ()  # content hashes of fset.paths (the hold-out split's keys)
    output_hash: str | None = None  # recorded content hash of an existing output
    bias_hash: str | None = None
    previous_hash: str | None = None

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
    content_hash: str | None = None  # of the master file as written (or as read, when it existed)
    corrupt: tuple[str, ...] = ()  # artifacts read by the job whose bytes are not the recorded ones
    replaced: str | None = None  # hash of a damaged existing output that was rebuilt


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

    previous = _load(spec.previous_path, spec.previous_hash) if spec.previous_path else None
    bias = _load(spec.bias_path, spec.bias_hash) if spec.bias_path else None
    if previous is not None and previous.data.shape != master.data.shape:
        previous = None
    if bias is not None and bias.data.shape != master.data.shape:
        bias = None
    return assess_master(
        judged, holdout=holdout if held else None, previous=previous, bias=bias, config=v
    )


def _build(spec: MasterJobSpec) -> Any:
    from darkflow.master import combine_files, write_master

    master = combine_files(
        list(spec.fset.paths), config=spec.config.combine, allow_few=True,
        metas=list(spec.fset.metas),
    )  # fmt: skip
    write_master(master, spec.output)
    return master, file_hash(spec.output)  # just written: read back from the page cache


def run_master_job(spec: MasterJobSpec) -> MasterJobResult:
    """Combine the set into a master (unless the file already exists) and assess it.

    An existing output is verified against its recorded hash as it is read; a damaged one is set
    aside and rebuilt (``replaced`` says so).
    """
    from darkflow.master import read_master_hashed

    t0 = time.monotonic()
    reasons: list[str] = []
    few = len(spec.fset.metas) < spec.config.combine.min_frames
    if few:
        reasons.append(str(MasterReason.TOO_FEW_FRAMES))
    replaced = None
    try:
        with job_lock(spec.workdir, spec.key):
            built = not spec.output.exists()
            if not built:
                try:
                    master, digest = read_master_hashed(spec.output, content_hash=spec.output_hash)
                except ArtifactCorruptError as err:
                    log.warning("master %s is damaged (%s); rebuilding it", spec.output, err)
                    set_aside(spec.workdir, spec.output)
                    replaced, built = err.found, True
            if built:
                master, digest = _build(spec)
        assessment = _assess(spec, master) if spec.assess else None
    except ArtifactCorruptError as err:  # the bias or previous master it is assessed with
        log.warning("master %s waits for a damaged master to be rebuilt: %s", spec.fset.label, err)
        return MasterJobResult(
            key=spec.key, built=False, seconds=time.monotonic() - t0,
            status=MasterStatus.QUARANTINED, confidence=0.0, reasons=tuple(reasons),
            error=str(err), corrupt=(err.path,),
        )  # fmt: skip
    except (DarkflowError, OSError, ValueError) as err:
        log.error("master %s failed: %s", spec.fset.label, err)
        return MasterJobResult(
            key=spec.key, built=False, seconds=time.monotonic() - t0,
            status=MasterStatus.QUARANTINED, confidence=0.0,
            reasons=(*reasons, str(MasterReason.COMBINE_FAILED)), error=str(err),
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
        content_hash=digest,
        replaced=replaced,
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
    master_hashes: dict[str, str | None] = field(default_factory=dict)  # master id -> content hash
    bias_hash: str | None = None

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
    corrupt: tuple[str, ...] = ()  # masters whose bytes are not the recorded ones (not used)


_CACHE: OrderedDict[tuple, MasterDark] = OrderedDict()
_GAINS: dict[tuple, float | None] = {}
_CACHE_SIZE = 4


def _load(path: Path, content_hash: str | None = None) -> MasterDark:
    """Masters are read (and verified) once per process, a few kept, least recently used dropped.

    Kept under the file's identity (size, mtime, inode) and its recorded hash: a file replaced
    or rewritten since is read and verified again.
    """
    from darkflow.master import read_master

    key = _identity(path, content_hash)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    master = read_master(path, content_hash=content_hash)
    if key is not None:
        _CACHE[key] = master
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return master


def _identity(path: Path, content_hash: str | None) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path), content_hash, st.st_size, st.st_mtime_ns, st.st_ino)


def _gain_of(path: Path, master: MasterDark, clip_sigma: float) -> float | None:
    from darkflow.subtract import estimate_gain_from_dark

    key = _identity(path, None)
    if key not in _GAINS:
        fit = estimate_gain_from_dark(master, clip_sigma=clip_sigma)
        _GAINS[key] = fit[0] if fit and fit[1] > 0.8 else None
    return _GAINS[key]


def run_light_job(spec: LightJobSpec) -> LightJobResult:
    """Subtract the chosen dark model from one light, check it, write it; never raises."""
    t0 = time.monotonic()
    try:
        fields, hist = _calibrate(spec)
    except ArtifactCorruptError as err:  # not calibrated: the driver rebuilds the master first
        log.warning("light %s waits for a damaged master to be rebuilt: %s", spec.meta.path, err)
        fields = {
            "status": LightStatus.QUARANTINED,
            "reasons": [*map(str, spec.decision.reasons), str(LightReason.CALIBRATION_FAILED)],
            "error": str(err),
        }
        return LightJobResult(spec.key, fields, None, time.monotonic() - t0, True, (err.path,))
    except Exception as err:
        log.exception("light %s failed", spec.meta.path)
        fields = {
            "status": LightStatus.QUARANTINED,
            "reasons": [*map(str, spec.decision.reasons), str(LightReason.CALIBRATION_FAILED)],
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
        return _load(spec.master_paths[master_id], spec.master_hashes.get(master_id))

    master = load(decision.master_id)
    bias = _load(spec.bias_path, spec.bias_hash) if spec.bias_path else None
    if bias is not None and bias.data.shape != master.data.shape:
        bias = None
    try:
        model = dark_model_for(decision, load_master=load, bias=bias, index=spec.index)
    except CalibrationError as err:
        log.warning("%s: %s", meta.path, err)
        return _quarantine(reasons, LightReason.NO_BIAS_FOR_SCALING)
    if spec.amplitude_limit_sigma is not None:
        model = limit_dark_amplitude(model, bias, spec.amplitude_limit_sigma)
    try:
        data, header = read_image(meta.path, hdu=meta.hdu_index, dtype="float32")
    except DarkflowError as err:
        log.warning("%s", err)
        return _quarantine(reasons, LightReason.UNREADABLE)
    if data.shape != model.data.shape:
        return _quarantine(reasons, LightReason.SHAPE_MISMATCH)

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
    # recorded relative to the work directory (it may be moved), with what identifies the file
    fields.update(output_path=os.path.relpath(spec.output, spec.workdir), output_size=st.st_size,
                  output_mtime_ns=st.st_mtime_ns, output_inode=st.st_ino,
                  output_hash=file_hash(spec.output))  # fmt: skip
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
    header["HISTORY"] = f"darkflow: input {Path(meta.path).name}"
    return header
