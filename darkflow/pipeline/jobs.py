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
import dataclasses
import fcntl
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from darkflow._version import ALGORITHM_VERSION, __version__
from darkflow.calibrate import limit_dark_amplitude  # noqa: F401  (its former home)
from darkflow.config import Config
from darkflow.exceptions import ArtifactCorruptError, DarkflowError, OutputError
from darkflow.io.atomic import disk_full_error
from darkflow.io.hashing import file_hash, hash_in_background
from darkflow.io.paths import card_text, file_identity
from darkflow.matching import MatchDecision
from darkflow.model import FrameMeta, GainEstimate, LightStatus, MasterDark, MasterStatus
from darkflow.pipeline.sets import FrameSet
from darkflow.registry.integrity import set_aside
from darkflow.triage.reasons import LightReason, MasterReason

__all__ = [
    "GainSource",
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
    """Everything a worker needs to build (or reuse) and assess one master."""

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
    bias_own_night: bool = True  # the bias was taken on the master's night
    previous_bias_path: Path | None = None  # the bias of the previous master's night
    previous_bias_hash: str | None = None

    @property
    def master_id(self) -> str:
        """The short id of the master (the first 16 characters of its key)."""
        return self.key[:16]


@dataclass(frozen=True)
class MasterJobResult:
    """What a master job did: built or found, its verdict, its assessment values, any error."""

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
    """Acceptance gates: the master, and the held-out frames against the training frames."""
    from darkflow.verify import assess_master_set

    return assess_master_set(
        spec.fset.paths,
        master=master,
        combine_config=spec.config.combine,
        config=spec.config.verify,
        dark_law=spec.config.matching,
        keys=spec.input_hashes or None,
        metas={m.path: m for m in spec.fset.metas},
        previous=_load(spec.previous_path, spec.previous_hash) if spec.previous_path else None,
        bias=_load(spec.bias_path, spec.bias_hash) if spec.bias_path else None,
        previous_bias=(
            _load(spec.previous_bias_path, spec.previous_bias_hash)
            if spec.previous_bias_path
            else None
        ),
        bias_own_night=spec.bias_own_night,
        # a level is known against each night's own bias; without biases, within one night
        previous_level_known=spec.previous_bias_path is not None
        or (spec.bias_path is None and spec.previous_path is None),
    )


def _build(spec: MasterJobSpec) -> Any:
    """Combine, write and return ``(master, content hash)``; the frames are combined once (the
    hold-out assessment needs no master of the training frames)."""
    from darkflow.master import combine_files, write_master

    master = combine_files(
        list(spec.fset.paths),
        config=spec.config.combine,
        allow_few=True,
        metas=list(spec.fset.metas),
    )
    output = spec.config.output
    write_master(master, spec.output, output=output)
    if all(mode == "full" for mode in output.master_planes().values()):
        # just written: read back from the page cache
        return master, file_hash(spec.output)
    # a quantised or rebuilt plane: assess what the file holds, what every light will use
    # (and what a later run reads back), hashing it in the same pass
    from darkflow.master import read_master_hashed, remember_master

    master, digest = read_master_hashed(spec.output)
    remember_master(spec.output, digest, master)  # the lights' planning reads it next
    return master, digest


def run_master_job(spec: MasterJobSpec) -> MasterJobResult:
    """Combine the set into a master (unless the file already exists) and assess it.

    An existing output is verified against its recorded hash as it is read; a damaged one is set
    aside and rebuilt (``replaced`` says so).
    """
    from darkflow.master import read_master_hashed

    t0 = time.monotonic()
    few = len(spec.fset.metas) < spec.config.combine.min_frames
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
        judged = _assess(spec, master) if spec.assess else None
    except ArtifactCorruptError as err:  # the bias or previous master it is assessed with
        log.warning("master %s waits for a damaged master to be rebuilt: %s", spec.fset.label, err)
        return MasterJobResult(
            key=spec.key,
            built=False,
            seconds=time.monotonic() - t0,
            status=MasterStatus.QUARANTINED,
            confidence=0.0,
            reasons=(str(MasterReason.TOO_FEW_FRAMES),) if few else (),
            error=str(err),
            corrupt=(err.path,),
        )
    except Exception as err:  # the batch runner: the failure is recorded against the master
        _raise_if_disk_full(err)
        reason = _master_failure(err)
        if reason == MasterReason.COMBINE_FAILED:
            log.exception("master %s failed", spec.fset.label)
        else:
            log.error("master %s failed (%s): %s", spec.fset.label, reason, err)
        return MasterJobResult(
            key=spec.key,
            built=False,
            seconds=time.monotonic() - t0,
            status=MasterStatus.FAILED,
            confidence=0.0,
            reasons=(*([str(MasterReason.TOO_FEW_FRAMES)] if few else []), str(reason)),
            error=f"{type(err).__name__}: {err}",
        )
    if judged is not None:
        status, confidence, reasons = judged.status, judged.confidence, judged.reasons
    else:  # not re-assessed: only the too-few-frames rule
        from darkflow.verify import master_verdict

        status, confidence, reasons = master_verdict(
            None, n_frames=len(spec.fset.metas), min_frames=spec.config.combine.min_frames
        )
    if spec.fset.notes:  # findings about the set itself (a bias level jump): not verified
        reasons = (*reasons, *(n for n in spec.fset.notes if n not in reasons))
        if status == MasterStatus.VERIFIED:
            status = MasterStatus.LOW_CONFIDENCE
    return MasterJobResult(
        key=spec.key,
        built=built,
        seconds=time.monotonic() - t0,
        status=status,
        confidence=confidence,
        reasons=reasons,
        meta=master.meta,
        stats=dict(master.stats),
        assessment=None if judged is None else judged.assessment.to_dict(),
        content_hash=digest,
        replaced=replaced,
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


# ----------------------------------------------------------------------------- lights
#: peak memory of one light job per pixel, measured (benchmarks/bench_night.py): the light, its
#: uncertainty and the dark model's planes in float32/float64 while it is checked
LIGHT_BYTES_PER_PIXEL = 80


@dataclass(frozen=True)
class GainSource:
    """A dark master of the light's configuration whose photon-transfer gain the light's
    measured gain combines, with the master bias it is measured against (its own)."""

    master_id: str
    key: str  # the master's job key (its content key): part of the light's key
    path: Path
    content_hash: str | None = None
    status: str = ""
    bias_key: str | None = None
    bias_path: Path | None = None
    bias_hash: str | None = None


@dataclass(frozen=True)
class LightJobSpec:
    """Everything a worker needs to calibrate one light."""

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
    master_hashes: dict[str, str | None] = field(default_factory=dict)  # master id -> content hash
    bias_hash: str | None = None
    # masters of another night keep their own night's bias; a borrowed bias's level uncertainty
    master_bias_paths: dict[str, Path] = field(default_factory=dict)
    master_bias_hashes: dict[str, str | None] = field(default_factory=dict)
    bias_level_sigma_adu: float = 0.0
    # every dark master of the configuration the gain is measured on (none: the primary's only)
    gain_sources: tuple[GainSource, ...] = ()

    @property
    def master_path(self) -> Path:
        """The file of the primary master of the light's decision."""
        return self.master_paths[self.decision.master_id]

    @property
    def working_set_bytes(self) -> int:
        """Memory one light job needs at its peak (pixels, uncertainty, model, check planes):
        how many the local executor runs at once."""
        shape = self.meta.shape
        return int(shape[0] * shape[1] * LIGHT_BYTES_PER_PIXEL) if shape else 0


@dataclass(frozen=True)
class LightJobResult:
    """What a light job gives back: its frame-report fields, residual histogram and timing."""

    key: str
    fields: dict[str, Any]  # frame-report fields computed by the job
    hist_counts: list[int] | None
    seconds: float
    computed: bool
    corrupt: tuple[str, ...] = ()  # masters whose bytes are not the recorded ones (not used)


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


_GAINS: dict[tuple, float | None] = {}


def _load(path: Path, content_hash: str | None = None) -> MasterDark:
    """Masters are read (and verified) once per process, a few kept, least recently used dropped
    (:func:`darkflow.master.read_master_cached`): kept under the file's identity (size, mtime,
    inode) and its recorded hash, so a file replaced or rewritten since is read and verified
    again."""
    from darkflow.master import read_master_cached

    return read_master_cached(path, content_hash=content_hash)


def _gain_of(
    path: Path,
    master: Callable[[], MasterDark],
    clip_sigma: float,
    bias_path: Path | None,
    bias: Callable[[], MasterDark | None],
) -> GainEstimate | None:
    """The photon-transfer gain of a dark master with a master bias, computed once per pair of
    files and process (``master`` and ``bias`` read only then)."""
    from darkflow.calibrate import gain_from_darks

    key = (file_identity(path), None if bias_path is None else file_identity(bias_path))
    if key not in _GAINS:
        _GAINS[key] = gain_from_darks(master(), clip_sigma=clip_sigma, bias=bias())
    return _GAINS[key]


def _configuration_gain(spec: LightJobSpec, clip_sigma: float) -> GainEstimate | None:
    """The darks' gain of the light's configuration: every master of ``spec.gain_sources``
    measured against its own bias, combined by their uncertainties (inflated by their
    disagreement, :func:`darkflow.subtract.gain.combine_gains`), in the sources' order. A
    master that cannot be read is left out (a damaged one is rebuilt first)."""
    from darkflow.subtract.gain import DARKS, combine_gains

    estimates = []
    for s in spec.gain_sources:
        try:
            estimates.append(
                _gain_of(
                    s.path,
                    partial(_load, s.path, s.content_hash),
                    clip_sigma,
                    s.bias_path,
                    partial(_load, s.bias_path, s.bias_hash) if s.bias_path else lambda: None,
                )
            )
        except ArtifactCorruptError:
            raise
        except (DarkflowError, OSError) as err:
            log.warning("gain of master %s not measured: %s", s.master_id, err)
    combined = combine_gains(estimates)
    return None if combined is None else dataclasses.replace(combined, source=DARKS)


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


def _quarantine(reasons: list[object], extra: object) -> tuple[dict[str, Any], None]:
    return {"status": LightStatus.QUARANTINED, "reasons": [*map(str, reasons), str(extra)]}, None


def _calibrate(spec: LightJobSpec) -> tuple[dict[str, Any], list[int] | None]:
    """IO around :func:`darkflow.calibrate.calibrate_light`: read the light, write the result."""
    from darkflow.calibrate import calibrate_light
    from darkflow.io.fits import read_image, write_calibrated
    from darkflow.stats.cfa import is_cfa
    from darkflow.subtract import uncertainty_cards
    from darkflow.verify import ResponseAction

    meta, decision, config = spec.meta, spec.decision, spec.config
    before = _stat_now(meta.path)
    if before is None:
        log.warning("%s: deleted or moved after the scan", meta.path)
        return _quarantine(list(decision.reasons), LightReason.INPUT_VANISHED)
    try:
        data, header = read_image(meta.path, hdu=meta.hdu_index, dtype="float32")
    except DarkflowError as err:
        log.warning("%s", err)
        gone = _stat_now(meta.path) is None
        reason = LightReason.INPUT_VANISHED if gone else LightReason.UNREADABLE
        return _quarantine(list(decision.reasons), reason)
    after = _stat_now(meta.path)
    # bytes other than the scanned ones (rewritten before or while being read) would be
    # calibrated under a cache key and metadata that describe the old file
    if after != before or (spec.input_stat is not None and before != spec.input_stat):
        log.warning("%s: changed after the scan (size/mtime differ); not calibrated", meta.path)
        reason = LightReason.INPUT_VANISHED if after is None else LightReason.INPUT_CHANGED
        return _quarantine(list(decision.reasons), reason)
    if not np.isfinite(data).any():
        return _quarantine(list(decision.reasons), LightReason.NO_FINITE_PIXELS)
    bias = _load(spec.bias_path, spec.bias_hash) if spec.bias_path else None
    result = calibrate_light(
        data,
        meta,
        decision,
        load_master=lambda master_id: _load(
            spec.master_paths[master_id], spec.master_hashes.get(master_id)
        ),
        bias=bias,
        index=spec.index,
        config=config,
        master_status=spec.master_status,
        amplitude_limit_sigma=spec.amplitude_limit_sigma,
        dark_gain=lambda master: (
            _configuration_gain(spec, config.combine.sigma_high)
            if spec.gain_sources
            else _gain_of(
                spec.master_path,
                lambda: master,
                config.combine.sigma_high,
                spec.bias_path,
                lambda: bias,
            )
        ),
        master_biases={
            mid: _load(path, spec.master_bias_hashes.get(mid))
            for mid, path in spec.master_bias_paths.items()
        },
        bias_level_sigma_adu=spec.bias_level_sigma_adu,
    )
    fields = dict(result.fields)
    if not result.delivered:  # quarantined: no calibrated file
        return fields, result.hist_counts
    header = _output_header(
        header,
        meta,
        decision,
        result.model,
        spec.bias_id,
        result.confidence,
        result.check,
        dark_median=result.calibrated.stats.get("dark_model_median_adu"),
    )
    cal = result.calibrated
    pedestal = config.subtract.pedestal_adu
    applied = result.applied
    if applied is not None and applied.applied and applied.action == ResponseAction.ADD_PEDESTAL:
        pedestal += float(applied.value or 0.0)
    cards = uncertainty_cards(
        cal.data,
        cal.uncertainty,
        egain_e_per_adu=result.egain_e_per_adu,
        pedestal_adu=pedestal,
        cfa=is_cfa(meta.bayer_pattern),
        levels=cal.band_levels,
    )
    hashing = []  # the file's hash, computed while it is synced to disk
    write_calibrated(
        spec.output,
        cal.data,
        cal.uncertainty,
        header,
        cards=cards,
        mode=config.output.light_uncertainty,
        quantize_level=config.output.quantize_level,
        written=lambda tmp: hashing.append(hash_in_background(tmp)),
    )
    st = os.stat(spec.output)
    # recorded relative to the work directory (it may be moved), with what identifies the file
    fields.update(
        output_path=os.path.relpath(spec.output, spec.workdir),
        output_size=st.st_size,
        output_mtime_ns=st.st_mtime_ns,
        output_inode=st.st_ino,
        output_hash=hashing[0]() if hashing else file_hash(spec.output),
    )
    return fields, result.hist_counts


def _output_header(header, meta, decision, model, bias_id, confidence, check, dark_median=None):
    # dark_median: np.median(model.data) when the subtraction already measured it
    from darkflow.subtract._model import plane_median

    if dark_median is None:
        dark_median = float(plane_median(model.data))
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
    header["DFDKMED"] = (round(float(dark_median), 3), "[adu] median dark model")
    header["DFDKSIG"] = (
        round(float(np.sqrt(plane_median(model.variance))), 4),
        "[adu] median dark model uncertainty",
    )
    res = check.residuals
    ratio = res.noise_ratio if res is not None and math.isfinite(res.noise_ratio) else -1.0
    header["DFNRATIO"] = (round(ratio, 4), "background noise / predicted")
    weight = check.weight if math.isfinite(check.weight) else 0.0
    header["DFWEIGHT"] = (float(f"{weight:.6g}"), "stacking weight 1/(u_bg^2 max(1, ratio^2))")
    if decision.secondary_master_id:
        header["DFMASTR2"] = (decision.secondary_master_id, "second master of the dark model")
    level = float(model.notes.get("level_sigma_adu", 0.0) or 0.0)
    if level:
        header["DFLVLSIG"] = (round(level, 4), "[adu] uniform level uncertainty of the dark")
    header["HISTORY"] = f"darkflow {__version__}: dark subtracted with master {decision.master_id}"
    header["HISTORY"] = f"darkflow: scale {model.scale_mode} x{model.scale_factor:.6g}"
    # a FITS card holds printable ASCII only: the name is escaped (\xe8, \xff) to fit
    header["HISTORY"] = f"darkflow: input {card_text(Path(meta.path).name)}"
    return header
