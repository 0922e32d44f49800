"""One night end to end: scan → qualified frame sets → masters → match → subtract → reports.

Every artifact is named by its job key (hash of input content hashes + the configuration that
affects it + the algorithm version), so a rerun finds finished work without scanning::

    <workdir>/artifacts/masters/<instrument>/<config-signature>/<key16>.fits
    <workdir>/calibrated/<night>/<session>/<light-name>.fits
    <workdir>/frame_report.csv, masters.csv, catalog.csv, decisions.jsonl, qa/, logs/<night>.jsonl

Every light ends in exactly one state (calibrated, degraded, quarantined) with its reasons;
nothing is dropped. Only this runner catches broadly, and it records the failure against the frame.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkflow._version import ALGORITHM_VERSION, __version__
from darkflow.config import Config
from darkflow.events import EventLog, to_jsonable
from darkflow.exceptions import DarkflowError
from darkflow.hashing import file_hash, job_key, short
from darkflow.io.atomic import atomic_write
from darkflow.io.fits import read_image, write_image
from darkflow.matching import (
    CalibrationIndex,
    MasterEntry,
    MatchDecision,
    MatchReason,
    match_light,
)
from darkflow.model import (
    Eligibility,
    FrameMeta,
    FrameType,
    LightStatus,
    MasterDark,
    MasterStatus,
    ReasonCode,
    ScaleMode,
    slug,
)
from darkflow.subtract import (
    build_dark_model,
    estimate_gain,
    estimate_gain_from_dark,
    noise_model_variance,
    subtract_dark,
)
from darkflow.thermal import fit_temperature_drift
from darkflow.verify import HIST_EDGES, residual_analysis

__all__ = [
    "FRAME_REPORT_COLUMNS",
    "MASTERS_COLUMNS",
    "FrameSet",
    "LightReason",
    "RunResult",
    "build_frame_sets",
    "run_night",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

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
]


class LightReason(ReasonCode):
    """Reasons the runner itself attaches to a light (beyond ingestion and matching)."""

    NOT_ELIGIBLE = ("not_eligible", "Ingestion rejected the frame (see its other reasons).")
    ISOLATED_UNUSED = (
        "isolated_unused",
        "Ingestion isolated the frame and the ingest.use_isolated policy left it out: its "
        "isolation reasons are not shared by its whole configuration group, or the group has no "
        "calibration frames (set use_isolated = 'all' to use it anyway).",
    )
    UNREADABLE = ("unreadable", "The light's pixels could not be read.")
    SHAPE_MISMATCH = ("shape_mismatch", "The light's image shape differs from the master's.")
    NONFINITE_PIXELS = ("nonfinite_pixels", "The light holds NaN/inf pixels; they stay NaN.")
    EXCESS_NOISE = (
        "excess_residual_noise",
        "Background residual noise is above the noise model's prediction (variance ratio gate).",
    )
    OVERSUBTRACTED = (
        "oversubtracted",
        "Too many background pixels far below the background: the dark model is too strong.",
    )
    NO_BIAS_FOR_SCALING = (
        "no_bias_for_scaling",
        "Exposure scaling needs a master bias of the same configuration; none was available.",
    )
    CALIBRATION_FAILED = ("calibration_failed", "An unexpected error stopped this light.")
    GAIN_ESTIMATED = (
        "egain_estimated",
        "The header gives no e-/ADU (EGAIN); it was measured by photon transfer on the dark "
        "stack (egain_source=darks, typically within 5-25%) or, failing that, on the light.",
    )
    NO_GAIN = (
        "no_gain",
        "No e-/ADU in the header and too little signal to measure it: the uncertainty holds "
        "read noise and master uncertainty only.",
    )


class MasterReason(ReasonCode):
    TOO_FEW_FRAMES = (
        "too_few_frames",
        "Fewer darks than combine.min_frames: no outlier rejection is possible.",
    )
    COMBINE_FAILED = ("combine_failed", "The combine failed; see the log for the error.")


# ----------------------------------------------------------------------------- frame sets
@dataclass(frozen=True)
class FrameSet:
    """Calibration frames that qualify to be combined into one master."""

    kind: FrameType
    config_signature: str
    instrument_slug: str
    night: str
    exptime_s: float
    set_temp_c: float | None
    metas: tuple[FrameMeta, ...]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(m.path for m in self.metas)

    @property
    def label(self) -> str:
        temp = "" if self.set_temp_c is None else f" @ {self.set_temp_c:g}°C"
        return f"{self.kind} {self.config_signature} {self.exptime_s:g}s{temp} ({len(self.metas)})"


def _cluster(values: list[float], width: float) -> list[int]:
    """Group sorted-order values into clusters no wider than ``width``; returns labels."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    labels = [0] * len(values)
    label, start = -1, None
    for i in order:
        if start is None or values[i] - start > width:
            label += 1
            start = values[i]
        labels[i] = label
    return labels


def build_frame_sets(
    metas_by_night: Iterable[tuple[str, FrameMeta]], config: Config
) -> list[FrameSet]:
    """Group eligible darks and biases by configuration, night, exposure and temperature.

    Exposures within ``matching.exptime_rel_tol`` form one set; temperatures group by set-point
    (0.5 °C bins) or, without one, by measured temperature in clusters no wider than the
    temperature gate; frames without any temperature form their own set.
    """
    from darkflow.matching import temperature_gate_c

    gate = temperature_gate_c(config.matching.max_dark_mismatch, config.matching.doubling_temp_c)
    groups: dict[tuple, list[FrameMeta]] = {}
    for night, meta in metas_by_night:
        kind = FrameType.BIAS if meta.frame_type == FrameType.BIAS else FrameType.DARK
        groups.setdefault((kind, meta.config_signature, night), []).append(meta)

    sets: list[FrameSet] = []
    for (kind, signature, night), metas in sorted(groups.items(), key=lambda kv: str(kv[0])):
        metas = sorted(metas, key=lambda m: m.path)
        exptimes = [m.exptime_s or 0.0 for m in metas]
        if kind == FrameType.BIAS:
            exp_labels = [0] * len(metas)
        else:
            exp_labels = []
            for label in _cluster_relative(exptimes, config.matching.exptime_rel_tol):
                exp_labels.append(label)
        by_exp: dict[int, list[FrameMeta]] = {}
        for label, meta in zip(exp_labels, metas, strict=True):
            by_exp.setdefault(label, []).append(meta)
        for members in by_exp.values():
            for temp_key, tmembers in _split_by_temperature(members, gate).items():
                exptime = float(np.median([m.exptime_s or 0.0 for m in tmembers]))
                sets.append(
                    FrameSet(
                        kind=kind,
                        config_signature=signature,
                        instrument_slug=tmembers[0].config.instrument_slug,
                        night=night,
                        exptime_s=exptime,
                        set_temp_c=temp_key,
                        metas=tuple(tmembers),
                    )
                )
    sets.sort(key=lambda s: (s.config_signature, s.night, s.kind, s.exptime_s, s.set_temp_c or 0.0))
    return sets


def _cluster_relative(values: list[float], rel_tol: float) -> list[int]:
    logs = [math.log(v) if v > 0 else -1e9 for v in values]
    return _cluster(logs, math.log1p(rel_tol) * 2)


def _split_by_temperature(
    metas: list[FrameMeta], gate_c: float
) -> dict[float | None, list[FrameMeta]]:
    out: dict[float | None, list[FrameMeta]] = {}
    with_set = [m for m in metas if m.set_temp_c is not None]
    measured = [m for m in metas if m.set_temp_c is None and m.ccd_temp_c is not None]
    neither = [m for m in metas if m.set_temp_c is None and m.ccd_temp_c is None]
    for m in with_set:
        out.setdefault(round(m.set_temp_c * 2) / 2, []).append(m)
    if measured:
        labels = _cluster([m.ccd_temp_c for m in measured], max(gate_c, 0.1))
        clusters: dict[int, list[FrameMeta]] = {}
        for label, m in zip(labels, measured, strict=True):
            clusters.setdefault(label, []).append(m)
        for members in clusters.values():
            key = round(float(np.median([m.ccd_temp_c for m in members])), 1)
            out.setdefault(key, []).extend(members)
    if neither:
        out.setdefault(None, []).extend(neither)
    return out


# Isolation reasons that can be a property of a camera or capture program rather than a fault.
SYSTEMIC_REASONS = frozenset({"missing_temperature", "frame_type_inferred"})


def accepted_isolated(rows: Sequence[dict[str, Any]], policy: str) -> set[str]:
    """Paths of *isolated* frames that the ``ingest.use_isolated`` policy lets the pipeline use.

    ``systemic``: a frame is used when each of its isolation reasons is one that can describe a
    camera or program (:data:`SYSTEMIC_REASONS`) and is shared by every frame of its
    configuration group that night, and that group holds lights *and* calibration frames: an
    uncooled sensor without temperature, a program that never writes IMAGETYP. The same reason
    on only some frames of a group is an anomaly, and those frames stay out; reasons such as
    ``already_calibrated`` are never systemic.
    """
    if policy == "none":
        return set()
    isolated = [r for r in rows if r["status"] == Eligibility.ISOLATED]
    if policy == "all":
        return {r["path"] for r in isolated}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == Eligibility.REJECTED or not r.get("config_signature"):
            continue
        groups.setdefault((r.get("night") or "unknown", r["config_signature"]), []).append(r)

    def reasons_of(r: dict[str, Any]) -> set[str]:
        return set(filter(None, str(r.get("reasons") or "").split(";")))

    common: dict[tuple[str, str], set[str]] = {}
    for key, members in groups.items():
        kinds = {str(r["frame_type"]) for r in members}
        if FrameType.LIGHT in kinds and kinds & {FrameType.DARK, FrameType.BIAS}:
            common[key] = set.intersection(*(reasons_of(r) for r in members)) & SYSTEMIC_REASONS
    accepted = set()
    for r in isolated:
        reasons = reasons_of(r)
        key = (r.get("night") or "unknown", r.get("config_signature"))
        if reasons and reasons <= common.get(key, set()):
            accepted.add(r["path"])
    return accepted


# ----------------------------------------------------------------------------- results
@dataclass
class RunResult:
    workdir: Path
    n_files: int
    n_rejected: int
    n_isolated: int
    lights: Counter = field(default_factory=Counter)
    masters_built: int = 0
    masters_reused: int = 0
    masters_failed: int = 0
    frame_report: Path | None = None
    masters_csv: Path | None = None
    seconds: float = 0.0
    sessions: tuple[str, ...] = ()

    def summary(self) -> str:
        total = sum(self.lights.values())
        lines = [
            f"darkflow run: {self.n_files} files scanned in {self.seconds:.1f}s "
            f"({self.n_rejected} rejected, {self.n_isolated} isolated), "
            f"{len(self.sessions)} session(s)",
            f"  masters: {self.masters_built} built, {self.masters_reused} reused"
            + (f", {self.masters_failed} failed" if self.masters_failed else "")
            + f"  -> {self.masters_csv}",
            f"  lights:  {total} total: {self.lights[LightStatus.CALIBRATED]} calibrated, "
            f"{self.lights[LightStatus.DEGRADED]} degraded, "
            f"{self.lights[LightStatus.QUARANTINED]} quarantined  -> {self.frame_report}",
            f"  calibrated frames: {self.workdir / 'calibrated'}",
        ]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers
class _MasterCache:
    """A few masters in memory (least recently used go first)."""

    def __init__(self, size: int = 4):
        self.size = size
        self._items: OrderedDict[str, MasterDark] = OrderedDict()

    def get(self, key: str, loader: Callable[[], MasterDark]) -> MasterDark:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = loader()
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


@dataclass
class _MasterRecord:
    master_id: str
    key: str
    fset: FrameSet
    path: Path
    status: MasterStatus
    confidence: float
    reasons: tuple[str, ...]
    cached: bool
    master_meta: Any
    stats: dict[str, Any]


def _reasons_text(reasons: Iterable[object]) -> str:
    seen: list[str] = []
    for r in reasons:
        s = str(r)
        if s and s not in seen:
            seen.append(s)
    return ";".join(seen)


def _output_name(meta: FrameMeta, taken: set[str]) -> str:
    name = Path(meta.path).name
    for suffix in (".fz", ".gz"):
        name = name.removesuffix(suffix)
    stem = Path(name).stem
    candidate = f"{stem}.fits"
    if candidate in taken:
        candidate = f"{stem}-{short(job_key('name', [meta.path], {}, ''), 8)}.fits"
    taken.add(candidate)
    return candidate


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    with atomic_write(path) as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")
    return path


def _fmt(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------- the run
def run_night(
    inputs: str | Path | Sequence[str | Path],
    *,
    workdir: str | Path,
    config: Config | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Calibrate every light found under ``inputs`` and write the reports into ``workdir``."""
    from darkflow.catalog import meta_from_row, scan, to_contract_csv

    t_start = time.monotonic()
    config = config or Config()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tick = progress or (lambda stage, done, total: None)

    paths = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise DarkflowError(f"input does not exist: {', '.join(missing)}")
    catalog = scan(paths, config=config.ingest)
    with atomic_write(workdir / "catalog.csv") as fh:
        fh.write(to_contract_csv(catalog))

    rows = catalog.to_dict("records")
    nights = sorted({r["night"] for r in rows if isinstance(r.get("night"), str)}) or ["unknown"]
    events = EventLog(workdir / "logs" / f"{nights[0]}.jsonl", darkflow=__version__)
    events.emit("run_start", inputs=[str(p) for p in paths], n_files=len(rows))

    metas: dict[str, FrameMeta] = {}
    for r in rows:
        try:
            metas[r["path"]] = meta_from_row(r)
        except Exception as err:
            log.warning("cannot rebuild metadata of %s: %s", r["path"], err)

    accepted = accepted_isolated(rows, config.ingest.use_isolated)

    def usable(r: dict) -> bool:
        return r["path"] in metas and (r["status"] == Eligibility.ELIGIBLE or r["path"] in accepted)

    def usable_calibration(r: dict) -> bool:
        return usable(r) and r["frame_type"] in (FrameType.DARK, FrameType.BIAS)

    fsets = build_frame_sets(
        ((r.get("night") or "unknown", metas[r["path"]]) for r in rows if usable_calibration(r)),
        config,
    )

    # --- masters
    from darkflow.master import combine_files, read_master, write_master

    hashes: dict[str, str] = {}

    def content_hash(path: str) -> str:
        if path not in hashes:
            hashes[path] = file_hash(path)
        return hashes[path]

    combine_params = {"combine": config.section_hash("combine")}
    records: list[_MasterRecord] = []
    result = RunResult(workdir=workdir, n_files=len(rows), n_rejected=0, n_isolated=0)
    for i, fset in enumerate(fsets):
        tick("masters", i, len(fsets))
        key = job_key(
            f"master-{fset.kind}",
            [content_hash(p) for p in fset.paths],
            combine_params,
            ALGORITHM_VERSION,
        )
        master_id = short(key)
        path = (
            workdir
            / "artifacts"
            / "masters"
            / fset.instrument_slug
            / fset.config_signature
            / f"{master_id}.fits"
        )
        reasons: list[str] = []
        few = len(fset.metas) < config.combine.min_frames
        if few:
            reasons.append(str(MasterReason.TOO_FEW_FRAMES))
        cached = path.exists()
        t0 = time.monotonic()
        try:
            if cached:
                master = read_master(path)
                result.masters_reused += 1
            else:
                master = combine_files(
                    list(fset.paths), config=config.combine, allow_few=True, metas=list(fset.metas)
                )
                write_master(master, path)
                result.masters_built += 1
        except (DarkflowError, OSError, ValueError) as err:
            log.error("master %s failed: %s", fset.label, err)
            events.emit("master_failed", set=fset.label, error=str(err))
            result.masters_failed += 1
            continue
        status = MasterStatus.LOW_CONFIDENCE if few else MasterStatus.VERIFIED
        confidence = 0.5 if few else 1.0
        records.append(
            _MasterRecord(
                master_id,
                key,
                fset,
                path,
                status,
                confidence,
                tuple(reasons),
                cached,
                master.meta,
                dict(master.stats),
            )
        )
        events.emit(
            "master",
            master_id=master_id,
            kind=fset.kind,
            config_signature=fset.config_signature,
            n_frames=len(fset.metas),
            cached=cached,
            seconds=round(time.monotonic() - t0, 3),
            status=status,
        )
    tick("masters", len(fsets), len(fsets))

    cache = _MasterCache()
    by_id = {r.master_id: r for r in records}

    def load(master_id: str) -> MasterDark:
        return cache.get(master_id, lambda: read_master(by_id[master_id].path))

    measured_gains: dict[str, float | None] = {}

    def gain_of_master(master_id: str, master: MasterDark) -> float | None:
        """e-/ADU by photon transfer on the master's dark stack (once per master)."""
        if master_id not in measured_gains:
            fit = estimate_gain_from_dark(master, clip_sigma=config.combine.sigma_high)
            measured_gains[master_id] = fit[0] if fit and fit[1] > 0.8 else None
        return measured_gains[master_id]

    biases: dict[str, list[_MasterRecord]] = {}
    for rec in records:
        if rec.fset.kind == FrameType.BIAS:
            biases.setdefault(rec.fset.config_signature, []).append(rec)
    index = CalibrationIndex.from_entries(
        MasterEntry(
            master_id=rec.master_id,
            meta=rec.master_meta,
            path=str(rec.path),
            status=rec.status,
            confidence=rec.confidence,
            scalable=rec.fset.config_signature in biases,
        )
        for rec in records
        if rec.fset.kind == FrameType.DARK
    )

    # --- lights
    # Frames of unknown type may be lights: they get a (quarantined) row too, never dropped.
    light_rows = [r for r in rows if r["frame_type"] in (FrameType.LIGHT, FrameType.UNKNOWN)]
    report_rows: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    hists: dict[str, list[int]] = {}
    names_taken: dict[tuple[str, str], set[str]] = {}
    for i, row in enumerate(light_rows):
        tick("lights", i, len(light_rows))
        meta = metas.get(row["path"]) if usable(row) else None
        report = _light_report(row)
        try:
            _calibrate_one(
                row,
                meta,
                metas.get(row["path"]),
                report,
                index=index,
                biases=biases,
                load=load,
                gain_of_master=gain_of_master,
                config=config,
                workdir=workdir,
                names_taken=names_taken,
                decisions=decisions,
                hists=hists,
            )
        except Exception as err:
            log.exception("light %s failed", row["path"])
            report["status"] = LightStatus.QUARANTINED
            report["reasons"] = _reasons_text([report["reasons"], LightReason.CALIBRATION_FAILED])
            events.emit("light_failed", path=row["path"], error=repr(err))
        events.emit(
            "light",
            path=row["path"],
            status=report["status"],
            master_id=report["master_id"],
            confidence=report["confidence"],
            reasons=report["reasons"],
        )
        result.lights[LightStatus(report["status"])] += 1
        report_rows.append(report)
    tick("lights", len(light_rows), len(light_rows))

    # --- reports
    frame_report = pd.DataFrame(report_rows, columns=FRAME_REPORT_COLUMNS + FRAME_REPORT_EXTRA)
    result.frame_report = _write_csv(workdir / "frame_report.csv", frame_report)
    result.masters_csv = _write_csv(workdir / "masters.csv", _masters_frame(records))
    with atomic_write(workdir / "decisions.jsonl") as fh:
        for d in decisions:
            fh.write(json.dumps(to_jsonable(d), separators=(",", ":")) + "\n")
    _write_qa(workdir, rows, metas, hists)

    result.n_rejected = sum(r["status"] == Eligibility.REJECTED for r in rows)
    result.n_isolated = sum(r["status"] == Eligibility.ISOLATED for r in rows)
    result.sessions = tuple(
        sorted({f"{r['night']}/{r['session']}" for r in light_rows if r.get("session")})
    )
    result.seconds = time.monotonic() - t_start
    events.emit(
        "run_end",
        seconds=round(result.seconds, 3),
        lights={str(k): v for k, v in result.lights.items()},
        masters_built=result.masters_built,
        masters_reused=result.masters_reused,
    )
    return result


def _light_report(row: dict[str, Any]) -> dict[str, Any]:
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
        "exptime_s": _fmt(row.get("exptime_s")),
        "ccd_temp_c": _fmt(row.get("ccd_temp_c")),
        "set_temp_c": _fmt(row.get("set_temp_c")),
        "date_obs_utc": row.get("date_obs_utc"),
        "noise_ratio": None,
        "neg_tail_frac": None,
        "background_adu": None,
        "bias_master_id": None,
        "egain_e_per_adu": _fmt(row.get("egain_e_per_adu")),
        "egain_source": None,
    }


def _nearest_bias(candidates: list[_MasterRecord], meta: FrameMeta) -> _MasterRecord | None:
    if not candidates:
        return None
    if meta.date_obs_utc is None:
        return candidates[0]

    def distance(rec: _MasterRecord) -> float:
        start = rec.master_meta.date_start_utc
        return abs((meta.date_obs_utc - start).total_seconds()) if start else math.inf

    return min(candidates, key=lambda r: (distance(r), r.master_id))


def _calibrate_one(
    row: dict[str, Any],
    meta: FrameMeta | None,
    header_meta: FrameMeta | None,
    report: dict[str, Any],
    *,
    index: CalibrationIndex,
    biases: dict[str, list[_MasterRecord]],
    load: Callable[[str], MasterDark],
    gain_of_master: Callable[[str, MasterDark], float | None],
    config: Config,
    workdir: Path,
    names_taken: dict[tuple[str, str], set[str]],
    decisions: list[dict[str, Any]],
    hists: dict[str, list[int]],
) -> None:
    """Match, subtract, check and write one light, filling ``report`` in place."""
    if meta is None or row["frame_type"] != FrameType.LIGHT:
        reasons: list[object] = [row.get("reasons") or ""]
        if row["status"] == Eligibility.ISOLATED:
            reasons.append(LightReason.ISOLATED_UNUSED)
            if header_meta is not None and row["frame_type"] == FrameType.LIGHT:
                # say what matching would have found, so the operator sees the whole story
                would = match_light(header_meta, index, config.matching)
                reasons.extend(r for r in would.reasons if r != MatchReason.EXPOSURE_SCALED)
        else:
            reasons.append(LightReason.NOT_ELIGIBLE)
        report["reasons"] = _reasons_text(reasons)
        return

    decision: MatchDecision = match_light(meta, index, config.matching)
    decisions.append(
        {"night": row.get("night"), "session": row.get("session"), **decision.to_dict()}
    )
    reasons: list[object] = list(decision.reasons)
    report["confidence"] = round(decision.confidence, 4)
    if not decision.matched:
        report["reasons"] = _reasons_text(reasons)
        return

    chosen = decision.chosen
    master = load(decision.master_id)
    report.update(
        master_id=decision.master_id,
        master_exptime_s=master.meta.exptime_s,
        master_temp_c=_fmt(master.meta.temp_c),
        scale_mode=str(decision.scale_mode),
        scale_factor=round(decision.scale_factor, 6),
        delta_exptime_s=round(chosen.delta_exptime_s, 6),
        delta_temp_c=None if chosen.delta_temp_c is None else round(chosen.delta_temp_c, 3),
        delta_time_h=None if chosen.delta_time_h is None else round(chosen.delta_time_h, 4),
    )
    bias_rec = _nearest_bias(biases.get(meta.config_signature, []), meta)
    bias = load(bias_rec.master_id) if bias_rec else None
    if bias_rec:
        report["bias_master_id"] = bias_rec.master_id
    scale_mode = decision.scale_mode
    if scale_mode == ScaleMode.EXPOSURE and bias is None:
        scale_mode = ScaleMode.UNSCALED
        reasons.append(LightReason.NO_BIAS_FOR_SCALING)
    model = build_dark_model(
        master,
        scale_mode=scale_mode,
        scale_factor=decision.scale_factor,
        bias=bias,
        master_id=decision.master_id,
    )

    try:
        data, header = read_image(meta.path, hdu=meta.hdu_index, dtype="float32")
    except DarkflowError as err:
        reasons.append(LightReason.UNREADABLE)
        report["reasons"] = _reasons_text(reasons)
        log.warning("%s", err)
        return
    if data.shape != master.data.shape:
        reasons.append(LightReason.SHAPE_MISMATCH)
        report["reasons"] = _reasons_text(reasons)
        return

    egain, egain_source = meta.egain_e_per_adu, "header"
    if not egain or egain <= 0:
        egain, egain_source = gain_of_master(decision.master_id, master), "darks"
        if egain is None:
            read_only, _ = noise_model_variance(master, bias=bias, egain_e_per_adu=None)
            egain, egain_source = estimate_gain(data - model.data, read_only), "light"
        reasons.append(LightReason.GAIN_ESTIMATED if egain else LightReason.NO_GAIN)
    report["egain_e_per_adu"] = None if egain is None else round(egain, 4)
    report["egain_source"] = egain_source if egain else None
    read_var, dark_shot_var = noise_model_variance(
        master, bias=bias, egain_e_per_adu=egain, scale_factor=model.scale_factor
    )
    calibrated = subtract_dark(
        data,
        model,
        egain_e_per_adu=egain,
        read_variance_adu2=read_var,
        dark_shot_variance_adu2=dark_shot_var,
        pedestal_adu=config.subtract.pedestal_adu,
    )
    res = residual_analysis(calibrated.data, calibrated.uncertainty)
    degraded = [r for r in reasons if r in _DEGRADING]
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

    night = slug(row.get("night") or "unknown")
    session = slug(row.get("session") or "unknown")
    taken = names_taken.setdefault((night, session), set())
    out = workdir / "calibrated" / night / session / _output_name(meta, taken)
    header = _output_header(header, meta, decision, model, bias_rec, confidence, res)
    write_image(out, calibrated.data, header, extensions={"UNCERT": calibrated.uncertainty})

    hists[row["path"]] = res.hist_counts
    report.update(
        status=LightStatus.DEGRADED if degraded else LightStatus.CALIBRATED,
        confidence=round(confidence, 4),
        reasons=_reasons_text(reasons),
        output_path=str(out),
        noise_ratio=round(res.noise_ratio, 4),
        neg_tail_frac=round(res.neg_tail_frac, 6),
        background_adu=round(res.background_adu, 3),
    )


_DEGRADING = {
    MatchReason.EXPANDED_SEARCH,
    MatchReason.EXPOSURE_UNSCALED,
    MatchReason.LOW_CONFIDENCE_MASTER,
    LightReason.NO_BIAS_FOR_SCALING,
}


def _output_header(header, meta, decision, model, bias_rec, confidence, res):
    header = header.copy()
    header["CALSTAT"] = ("BD", "darkflow: bias and dark subtracted")
    header["DFVERS"] = (__version__, "darkflow version")
    header["DFALGO"] = (ALGORITHM_VERSION, "darkflow algorithm version")
    header["DFMASTER"] = (decision.master_id, "darkflow master dark id")
    if bias_rec is not None:
        header["DFBIAS"] = (bias_rec.master_id, "darkflow master bias id")
    header["DFSCMODE"] = (str(model.scale_mode), "dark scale mode")
    header["DFSCALE"] = (round(model.scale_factor, 6), "dark scale factor")
    header["DFCONF"] = (round(confidence, 4), "calibration confidence 0..1")
    header["DFDKMED"] = (round(float(np.median(model.data)), 3), "[adu] median dark model")
    header["DFDKSIG"] = (
        round(float(np.sqrt(np.median(model.variance))), 4),
        "[adu] median dark model uncertainty",
    )
    header["DFNRATIO"] = (round(res.noise_ratio, 4), "background noise / predicted")
    header["HISTORY"] = f"darkflow {__version__}: dark subtracted with master {decision.master_id}"
    header["HISTORY"] = f"darkflow: scale {model.scale_mode} x{model.scale_factor:.6g}"
    header["HISTORY"] = f"darkflow: input {Path(meta.path).name}"
    return header


def _masters_frame(records: list[_MasterRecord]) -> pd.DataFrame:
    rows = []
    for rec in records:
        m = rec.master_meta
        rows.append(
            {
                "master_id": rec.master_id,
                "config_signature": m.config_signature,
                "exptime_s": m.exptime_s,
                "temp_c": _fmt(m.temp_c),
                "n_frames": m.n_frames,
                "status": str(rec.status),
                "confidence": rec.confidence,
                "path": str(rec.path),
                "kind": str(rec.fset.kind),
                "night": rec.fset.night,
                "instrument": m.instrument,
                "set_temp_c": _fmt(m.set_temp_c),
                "temp_min_c": _fmt(m.temp_min_c),
                "temp_max_c": _fmt(m.temp_max_c),
                "date_start_utc": m.date_start_utc.isoformat() if m.date_start_utc else None,
                "date_end_utc": m.date_end_utc.isoformat() if m.date_end_utc else None,
                "reasons": ";".join(rec.reasons),
                "cached": rec.cached,
                "n_hot_stable": rec.stats.get("n_hot_stable"),
                "median_adu": rec.stats.get("median"),
            }
        )
    return pd.DataFrame(rows, columns=MASTERS_COLUMNS + MASTERS_EXTRA)


def _write_qa(
    workdir: Path,
    rows: list[dict[str, Any]],
    metas: dict[str, FrameMeta],
    hists: dict[str, list[int]],
) -> None:
    """Thermal drift fits per night/session/configuration and residual histograms."""
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
    qa = workdir / "qa"
    with atomic_write(qa / "thermal.json") as fh:
        json.dump(to_jsonable(thermal), fh, indent=1)
    with atomic_write(qa / "residual_hists.json") as fh:
        json.dump({"edges": HIST_EDGES.tolist(), "lights": hists}, fh)
