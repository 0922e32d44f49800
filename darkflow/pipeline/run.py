"""Run a night: plan the DAG, execute what is not cached, register, report.

The driver (this module) scans, plans, matches and talks to the registry; executors only run
jobs. Every light ends in exactly one state (calibrated, degraded, quarantined) with its reasons.
An artifact found damaged while it is read (its bytes differ from the content hash recorded when
it was written) is set aside and rebuilt within the same run, with an ``artifact_mismatch``
event in the log.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkflow._version import ALGORITHM_VERSION, __version__
from darkflow.config import Config
from darkflow.exceptions import ArtifactCorruptError, DarkflowError, DiskFullError
from darkflow.io.atomic import (
    atomic_write,
    disk_full_error,
    is_disk_full,
    remove_stale_temporaries,
)
from darkflow.io.hashing import short
from darkflow.matching import MatchDecision
from darkflow.model import (
    ArtifactKind,
    Eligibility,
    FrameMeta,
    FrameType,
    LightStatus,
    MasterStatus,
    slug,
)
from darkflow.pipeline.crosscheck import cross_check_masters
from darkflow.pipeline.executors import Executor, LocalExecutor
from darkflow.pipeline.jobs import LIGHT_BYTES_PER_PIXEL, run_light_job, run_master_job
from darkflow.pipeline.lightpairs import DELIVERED, check_light_pairs
from darkflow.pipeline.lights import plan_lights
from darkflow.pipeline.memo import run_fingerprint, unchanged_run, workdir_state
from darkflow.pipeline.nights import Scope, write_night
from darkflow.pipeline.plan import (
    LIGHT_SECTIONS,
    JobPlan,
    MasterJob,
    master_meta_from_dict,
    master_meta_to_dict,
    master_waves,
    plan_masters,
    resolve_assessment,
)
from darkflow.pipeline.records import (
    FRAME_REPORT_COLUMNS,
    FRAME_REPORT_EXTRA,
    MASTERS_COLUMNS,
    MASTERS_EXTRA,
    fmt,
    light_row,
    reasons_text,
    thermal_entries,
    write_csv,
    write_qa,
)
from darkflow.pipeline.referee import referee_previous
from darkflow.pipeline.result import RunResult
from darkflow.pipeline.sets import accepted_isolated, build_frame_sets, provisional_meta
from darkflow.registry import Registry
from darkflow.registry.events import EventLog, dumps
from darkflow.registry.integrity import discard_corrupt, mark_work_directory, scan_exclusions
from darkflow.thermal import ThermalProfileStore
from darkflow.triage.reasons import LightReason

__all__ = ["RunResult", "log_night", "plan_night", "run_night"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


# ----------------------------------------------------------------------------- shared steps
@dataclass
class _Scanned:
    rows: list[dict[str, Any]]
    metas: dict[str, FrameMeta]
    usable: Callable[[dict[str, Any]], bool]
    catalog_csv: str


def _scan(inputs: Sequence[Path], config: Config, workdir: Path | None = None) -> _Scanned:
    from darkflow.ingest.catalog import meta_from_row, scan, to_contract_csv

    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise DarkflowError(f"input does not exist: {', '.join(missing)}")
    # a work directory inside the input tree holds outputs, not inputs
    exclude = scan_exclusions(workdir, inputs) if workdir else ()
    catalog = scan(list(inputs), config=config.ingest, exclude=exclude)
    rows = catalog.to_dict("records")
    metas: dict[str, FrameMeta] = {}
    for r in rows:
        try:
            metas[r["path"]] = meta_from_row(r)
        except DarkflowError as err:  # a bad row must not stop the run
            log.warning("cannot rebuild metadata of %s: %s", r["path"], err)
    accepted = accepted_isolated(rows, config.ingest.use_isolated)

    def usable(r: dict[str, Any]) -> bool:
        return r["path"] in metas and (r["status"] == Eligibility.ELIGIBLE or r["path"] in accepted)

    return _Scanned(rows, metas, usable, to_contract_csv(catalog))


def _light_working_sets(scanned: _Scanned) -> list[int]:
    """Memory of a light job (:attr:`LightJobSpec.working_set_bytes`) for each usable light."""
    return [
        int(m.shape[0] * m.shape[1] * LIGHT_BYTES_PER_PIXEL)
        for r in scanned.rows
        if scanned.usable(r)
        and (m := scanned.metas[r["path"]]).frame_type == FrameType.LIGHT
        and m.shape
    ]


def _frame_sets(scanned: _Scanned, config: Config):
    return build_frame_sets(
        (
            (r.get("night") or "unknown", scanned.metas[r["path"]])
            for r in scanned.rows
            if scanned.usable(r) and r["frame_type"] in (FrameType.DARK, FrameType.BIAS)
        ),
        config,
    )


def plan_night(
    inputs: str | Path | Sequence[str | Path],
    *,
    workdir: str | Path,
    config: Config | None = None,
    progress: ProgressFn | None = None,
) -> JobPlan:
    """The deterministic job plan of a night (nothing is computed or written but hash caches).

    Masters not yet built enter the matching with their metadata from headers, assumed verified.
    """
    config = config or Config()
    workdir = Path(workdir).absolute()  # artifact paths are registered relative to it
    tick = progress or (lambda stage, done, total: None)
    paths = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
    scanned = _scan(paths, config, workdir)
    with Registry(workdir) as registry:
        master_jobs = plan_masters(
            _frame_sets(scanned, config),
            registry=registry,
            workdir=workdir,
            config=config,
            progress=tick,
        )
        store = ThermalProfileStore(workdir / "thermal_profiles.json")
        plan, *_ = plan_lights(
            scanned.rows,
            scanned.metas,
            scanned.usable,
            registry,
            master_jobs,
            workdir=workdir,
            config=config,
            store=store,
        )
    return plan


# ----------------------------------------------------------------------------- run
MAX_REPAIR_PASSES = 2


@dataclass
class _RunState:
    """What the passes of one run share: each job's outcome, the damaged files found.

    A repair pass plans everything again: a job built by an earlier pass is then cached, and
    still counts as built by this run.
    """

    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (stage, outcome)
    corrupt: list[str] = field(default_factory=list)  # artifact paths that failed verification
    transient: int = 0  # lights whose outcome a later run would try again (not cached)

    def note(self, key: str, stage: str, outcome: str) -> None:
        """``stage`` master or light; ``outcome`` built, judged (a master assessed again, not
        combined), reused or failed. What a job did in an earlier pass of the run counts."""
        if not (outcome == "reused" and self.built(key)):
            self.outcomes[key] = (stage, outcome)

    def built(self, key: str) -> bool:
        return self.outcomes.get(key, ("", ""))[1] in ("built", "judged")

    def count(self, result: RunResult) -> None:
        n = Counter(self.outcomes.values())
        result.masters_built, result.masters_reused = n["master", "built"], n["master", "reused"]
        result.masters_judged = n["master", "judged"]
        result.masters_failed = n["master", "failed"]
        result.lights_computed, result.lights_reused = n["light", "built"], n["light", "reused"]


def log_night(rows: Sequence[dict[str, Any]]) -> str:
    """The night that names a run's log: the night of most of its lights (else of its files).

    A single frame with a wrong clock (DATE-OBS in 1926) must not name the log of a whole run.
    """
    lights = [r.get("night") for r in rows if r.get("frame_type") == FrameType.LIGHT]
    nights = [n for n in lights if isinstance(n, str)] or [
        r["night"] for r in rows if isinstance(r.get("night"), str)
    ]
    if not nights:
        return "unknown"
    counts = Counter(nights)
    return max(counts, key=lambda n: (counts[n], n))


def run_night(
    inputs: str | Path | Sequence[str | Path],
    *,
    workdir: str | Path,
    config: Config | None = None,
    progress: ProgressFn | None = None,
    executor: Executor | None = None,
    force: bool = False,
) -> RunResult:
    """Calibrate every light found under ``inputs``; results and reports go to ``workdir``.

    When nothing changed since the last run into ``workdir`` (:mod:`darkflow.pipeline.memo`:
    the same input files by path, size, mtime and inode, the same configuration, the work
    directory as that run left it), its results are returned without reading a frame;
    ``force`` runs the pipeline anyway (its jobs are still cached one by one).
    """
    t_start = time.monotonic()
    config = config or Config()
    workdir = Path(workdir).absolute()  # artifact paths are registered relative to it
    workdir.mkdir(parents=True, exist_ok=True)
    tick = progress or (lambda stage, done, total: None)
    executor = executor or LocalExecutor()
    paths = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]

    remove_stale_temporaries(workdir)
    mark_work_directory(workdir, paths)
    fingerprint = run_fingerprint(paths, config, workdir)
    if not force and fingerprint is not None:
        unchanged = unchanged_run(paths, workdir, config, fingerprint, executor, t_start)
        if unchanged is not None:
            return unchanged
    t_scan = time.monotonic()
    scanned = _scan(paths, config, workdir)
    with atomic_write(workdir / "catalog.csv") as fh:
        fh.write(scanned.catalog_csv)
    rows = scanned.rows
    scan_seconds = time.monotonic() - t_scan
    # parallel lights: their worker processes' imports overlap the masters
    warm_up = getattr(executor, "warm_up", None)
    if warm_up is not None:
        warm_up(_light_working_sets(scanned))

    with Registry(workdir) as registry:
        registry.verify_files()
        registry.mark_dead_runs()
        run_id = registry.start_run(inputs=[str(p) for p in paths], config=config.to_dict())
        events = EventLog(
            workdir / "logs" / f"{slug(log_night(rows))}.jsonl", run_id=run_id, darkflow=__version__
        )
        events.emit(
            "run_start",
            inputs=[str(p) for p in paths],
            n_files=len(rows),
            executor=getattr(executor, "name", "local"),
        )
        result = RunResult(
            workdir=workdir,
            n_files=len(rows),
            n_rejected=0,
            n_isolated=0,
            run_id=run_id,
            executor=getattr(executor, "name", "local"),
            stage_seconds={"scan": scan_seconds},
        )
        state = _RunState()
        try:
            # a pass finding a damaged artifact sets it aside and plans again (it is rebuilt)
            for attempt in range(MAX_REPAIR_PASSES + 1):
                state.corrupt.clear()
                state.transient = 0
                result.lights.clear()
                t0 = time.monotonic()
                master_jobs = plan_masters(
                    _frame_sets(scanned, config),
                    registry=registry,
                    workdir=workdir,
                    config=config,
                    progress=tick,
                )
                failed = _execute_masters(
                    master_jobs,
                    registry,
                    executor,
                    events,
                    result,
                    run_id,
                    workdir=workdir,
                    config=config,
                    progress=tick,
                    state=state,
                )
                if not state.corrupt:  # masters of one configuration against each other
                    cross_check_masters(master_jobs, registry, config, failed=failed)
                    # a change against the previous night's master: which one changed
                    referee_previous(master_jobs, registry, config, failed=failed)
                store = ThermalProfileStore(workdir / "thermal_profiles.json")
                result._timed("masters", t0)
                t0 = time.monotonic()
                if not state.corrupt:
                    try:
                        plan, decisions, index, contexts = plan_lights(
                            scanned.rows,
                            scanned.metas,
                            scanned.usable,
                            registry,
                            master_jobs,
                            workdir=workdir,
                            config=config,
                            store=store,
                        )
                    except ArtifactCorruptError as err:  # a master read for the index
                        state.corrupt.append(err.path)
                if not state.corrupt:
                    report_rows, hists = _execute_lights(
                        plan,
                        registry,
                        executor,
                        events,
                        result,
                        run_id,
                        workdir=workdir,
                        config=config,
                        progress=tick,
                        usable=scanned.usable,
                        state=state,
                        failed=failed,
                    )
                result._timed("lights", t0)
                if not state.corrupt:
                    break
                if attempt == MAX_REPAIR_PASSES:
                    raise DarkflowError(
                        f"artifacts still fail verification after {attempt} rebuilds "
                        f"({', '.join(sorted(set(state.corrupt)))}): check the disk of {workdir}"
                    )
                result.artifacts_repaired += discard_corrupt(registry, state.corrupt, events)
            state.count(result)
            t0 = time.monotonic()
            _write_reports(
                workdir,
                plan,
                master_jobs,
                registry,
                report_rows,
                decisions,
                hists,
                scanned,
                failed,
                Scope(paths),
            )
            _learn_thermal(store, index, contexts)
            result._timed("outputs", t0)
        except BaseException as err:
            _record_failure(registry, events, run_id, err)
            if is_disk_full(err) and not isinstance(err, DiskFullError):
                raise disk_full_error(err) from err
            raise
        result.frame_report = workdir / "frame_report.csv"
        result.masters_csv = workdir / "masters.csv"
        result.n_rejected = sum(r["status"] == Eligibility.REJECTED for r in rows)
        result.n_isolated = sum(r["status"] == Eligibility.ISOLATED for r in rows)
        result.sessions = tuple(
            sorted(
                {
                    f"{r['night']}/{r['session']}"
                    for r in rows
                    if r["frame_type"] == FrameType.LIGHT and r.get("session")
                }
            )
        )
        result.seconds = time.monotonic() - t_start
        summary = {
            "seconds": round(result.seconds, 3),
            "lights": {str(k): v for k, v in result.lights.items()},
            "masters_built": result.masters_built,
            "masters_reused": result.masters_reused,
            "masters_judged": result.masters_judged,
            "masters_failed": result.masters_failed,
            "lights_computed": result.lights_computed,
            "lights_reused": result.lights_reused,
            "artifacts_repaired": result.artifacts_repaired,
        }
        summary["sessions"] = list(result.sessions)
        summary["n_files"] = result.n_files
        summary["log"] = events.path.name
        summary["retry"] = state.transient + result.masters_failed
        registry.end_run(run_id, outcome="ok", summary=summary)
        events.emit("run_end", **summary)
        if fingerprint is not None:  # what the next run compares itself with
            registry.set_run_memo(
                run_id, fingerprint=fingerprint, state=workdir_state(workdir, registry.generation())
            )
    return result


def _record_failure(registry, events, run_id, err: BaseException) -> None:
    """Mark the run failed (or interrupted) and log it, never hiding ``err`` behind a second
    failure: with a full disk, the registry and the log may not be writable either."""
    interrupted = isinstance(err, KeyboardInterrupt | SystemExit)
    outcome = "interrupted" if interrupted else "failed"
    error = f"{type(err).__name__}: {err}"
    # a full disk says so once (the caller's error); the run then shows as interrupted
    quiet = is_disk_full(err)
    try:
        registry.end_run(run_id, outcome=outcome, summary={"error": error})
    except Exception as second:
        (log.info if quiet else log.error)("could not record the run as %s: %s", outcome, second)
    try:
        events.emit(f"run_{outcome}", error=error)
    except OSError as second:
        (log.info if quiet else log.error)("could not log the run as %s: %s", outcome, second)


def _execute_masters(
    jobs, registry, executor, events, result, run_id, *, workdir, config, progress, state
) -> dict[str, tuple[MasterJob, Any]]:
    """Masters in waves, earlier nights first (:func:`master_waves`); in each wave biases
    first (darks are assessed against them), then darks; register in plan order.

    Before a wave runs, its jobs' assessment inputs are resolved again against the registry,
    which by then holds the verdicts of the earlier waves. Returns the masters that could not be
    built (key -> job, result)."""
    failed: dict[str, tuple[MasterJob, Any]] = {}
    for wave in master_waves(jobs):
        resolve_assessment(wave, jobs, registry=registry, config=config)
        _execute_wave(
            wave,
            registry,
            executor,
            events,
            result,
            run_id,
            workdir=workdir,
            config=config,
            progress=progress,
            state=state,
            failed=failed,
        )
        if state.corrupt:  # the repair pass plans again from the start
            break
    return failed


def _execute_wave(
    jobs, registry, executor, events, result, run_id, *, workdir, config, progress, state, failed
) -> None:
    started = time.time()
    by_key = {}
    for stage, kind in (("biases", FrameType.BIAS), ("masters", FrameType.DARK)):
        todo = [j for j in jobs if not j.cached and j.fset.kind == kind]
        for j in todo:  # a bias built just now is verified with the hash it was written with
            if j.bias_key in by_key and j.bias_hash is None:
                j.bias_hash = by_key[j.bias_key].content_hash
        if todo:
            outcomes = executor.map(
                run_master_job,
                [j.spec(workdir, config) for j in todo],
                stage=stage,
                progress=progress,
            )
            by_key.update({o.key: o for o in outcomes})
    for job in jobs:
        sig = job.fset.config_signature
        if job.cached:
            state.note(job.key, "master", "reused")
            registry.record_job(
                run_id=run_id,
                key=job.key,
                kind=job.kind,
                label=job.fset.label,
                started=time.time(),
                ended=time.time(),
                outcome="cached",
                cache_hit=True,
            )
            events.emit(
                "job",
                kind=job.kind,
                id=job.master_id,
                label=job.fset.label,
                config_signature=sig,
                outcome="cached",
                cache_hit=True,
                seconds=0.0,
                confidence=job.row.confidence if job.row else None,
            )
            continue
        out = by_key[job.key]
        if out.corrupt:  # assessed with a damaged master: set aside, then built again
            state.corrupt.extend(out.corrupt)
            continue
        if out.replaced:
            result.artifacts_repaired += 1
            events.emit(
                "artifact_mismatch",
                kind=job.kind,
                id=job.master_id,
                path=os.path.relpath(job.output, workdir),
                expected=job.output_hash,
                found=out.replaced,
                action="rebuild",
            )
        if out.error is not None:
            state.note(job.key, "master", "failed")
            outcome = "failed"
            failed[job.key] = (job, out)
        else:
            # a master found on disk (built by an earlier run or a concurrent one) was only
            # judged again: its assessment inputs changed
            outcome = "built" if out.built else "judged"
            state.note(job.key, "master", outcome)
            record = {
                "meta": master_meta_to_dict(out.meta),
                "stats": out.stats,
                "reasons": list(out.reasons),
                "set_id": job.fset.identity,
                "night": job.fset.night,
                "label": job.fset.label,
                "assess_key": job.assess_key,
                "assessment": out.assessment,
                "previous_master_id": short(job.previous_key) if job.previous_key else None,
                "bias_master_id": short(job.bias_key) if job.bias_key else None,
            }
            registry.put_artifact(
                key=job.key,
                id=job.master_id,
                kind=job.kind,
                status=str(out.status),
                provenance=job.provenance(config, out.meta),
                path=job.output,
                content_hash=out.content_hash,
                config_signature=sig,
                night=job.fset.night,
                confidence=out.confidence,
                run_id=run_id,
                record=record,
            )
            job.row = registry.get(job.key)
            _supersede(registry, job)
        registry.record_job(
            run_id=run_id,
            key=job.key,
            kind=job.kind,
            label=job.fset.label,
            started=started,
            ended=started + out.seconds,
            outcome=outcome,
            cache_hit=not out.built,
            failures=int(out.error is not None),
            detail={"error": out.error} if out.error else None,
        )
        events.emit(
            "job",
            kind=job.kind,
            id=job.master_id,
            label=job.fset.label,
            config_signature=sig,
            outcome=outcome,
            cache_hit=not out.built,
            seconds=round(out.seconds, 3),
            confidence=out.confidence,
            status=str(out.status),
            error=out.error,
        )


def _failed_master_rows(failed) -> list[dict[str, Any]]:
    """masters.csv rows of the masters that could not be built: status failed, the reason."""
    rows = []
    for job, out in failed.values():
        meta = provisional_meta(job.fset)
        rows.append(
            {
                "master_id": job.master_id,
                "config_signature": job.fset.config_signature,
                "exptime_s": meta.exptime_s,
                "temp_c": meta.temp_c,
                "n_frames": meta.n_frames,
                "status": str(MasterStatus.FAILED),
                "confidence": 0.0,
                "path": None,
                "kind": "bias" if job.fset.kind == FrameType.BIAS else "dark",
                "night": job.fset.night,
                "instrument": meta.instrument,
                "set_temp_c": meta.set_temp_c,
                "reasons": ";".join(out.reasons),
                "cached": False,
                "top_cause": _top_cause(out.reasons),
                "error": out.error,
            }
        )
    return rows


def _failed_master_reasons(row, failed) -> list[str]:
    """Why a light has no master when tonight's master of its configuration failed."""
    codes: list[str] = []
    for job, out in failed.values():
        fs = job.fset
        if (fs.kind, fs.night, fs.config_signature) == (
            FrameType.DARK,
            row.get("night"),
            row.get("config_signature"),
        ):
            codes += [str(LightReason.MASTER_FAILED), *out.reasons]
    return codes


def _supersede(registry: Registry, job: MasterJob) -> None:
    """A new master of the same frame set (e.g. a dark was added) supersedes the older ones."""
    # a frame set's identity includes its night: only that night's rows are read
    for row in registry.artifacts(
        kind=job.kind, config_signature=job.fset.config_signature, night=job.fset.night
    ):
        if row.key == job.key or not row.record or row.record.get("set_id") != job.fset.identity:
            continue
        if row.status in (MasterStatus.VERIFIED, MasterStatus.LOW_CONFIDENCE):
            registry.set_status(
                row.key,
                str(MasterStatus.SUPERSEDED),
                reason=f"superseded by {job.master_id} (frame set changed)",
            )


def _decision_fields(decision: MatchDecision, meta_of_master) -> dict[str, Any]:
    chosen = decision.chosen
    master_meta = meta_of_master(decision.master_id)
    temp = decision.temperature
    law = decision.dark_law
    extra = {
        "secondary_master_id": decision.secondary_master_id,
        "interp_weight": decision.secondary_weight,
        "exposure_factor": round(decision.exposure_factor, 6),
        "temp_factor": round(decision.temp_factor, 6),
        "temp_used_c": None if temp is None else _round(temp.temp_c, 3),
        "temp_sigma_c": None if temp is None else _round(temp.sigma_c, 3),
        "temp_source": None if temp is None else temp.source,
        "dark_law_doubling_c": None if law is None else _round(law.doubling_temp_c, 3),
        "dark_law_source": None if law is None else law.source,
        "linearity_status": decision.linearity_status,
        "predicted_dark_error": _round(decision.predicted_error, 5),
        "n_expansions": len(decision.expansions),
    }
    return extra | {
        "master_id": decision.master_id,
        "master_exptime_s": master_meta.exptime_s if master_meta else None,
        "master_temp_c": fmt(master_meta.temp_c) if master_meta else None,
        "scale_mode": str(decision.scale_mode),
        "scale_factor": round(decision.scale_factor, 6),
        "delta_exptime_s": round(chosen.delta_exptime_s, 6) if chosen else None,
        "delta_temp_c": None
        if chosen is None or chosen.delta_temp_c is None
        else round(chosen.delta_temp_c, 3),
        "delta_time_h": None
        if chosen is None or chosen.delta_time_h is None
        else round(chosen.delta_time_h, 4),
        "confidence": round(decision.confidence, 4),
    }


def _fallback_reason(job, master_jobs, registry) -> list[str]:
    """``fallback_previous_master`` when tonight's master of the light's configuration and
    exposure failed its gates and matching chose an earlier night's verified master."""
    night = job.row.get("night")
    primary = registry.get(job.master_key)
    if primary is None or not night or not primary.night or primary.night >= night:
        return []
    for mj in master_jobs:
        fs = mj.fset
        if fs.kind != FrameType.DARK or fs.night != night:
            continue
        if fs.config_signature != job.meta.config_signature:
            continue
        row = registry.get(mj.key)
        if row is not None and row.status in (
            MasterStatus.LOW_CONFIDENCE,
            MasterStatus.QUARANTINED,
        ):
            return [str(LightReason.FALLBACK_MASTER)]
    return []


def _metric_values(values: dict[str, Any]) -> dict[str, Any]:
    from darkflow.verify import MASTER_VALUE_COLUMNS

    return {k: values.get(k) for k in MASTER_VALUE_COLUMNS}


def _top_cause(reasons) -> str | None:
    from darkflow.triage import rank_causes

    causes = rank_causes(reasons)
    return str(causes[0][0]) if causes else None


def _round(value: Any, ndigits: int) -> Any:
    return None if value is None else round(float(value), ndigits)


def _learn_thermal(store: ThermalProfileStore, index, contexts) -> None:
    """Keep this run's session drift fits and fitted dark-current laws for later sessions."""
    for (night, session, _sig, setpoint), ctx in contexts:
        if ctx.drift is not None and ctx.drift.ok and ctx.instrument:
            name = f"{night}/{session}" + (f"@{setpoint}" if setpoint else "")
            store.update(ctx.instrument, ctx.drift, session=name)
    for sig, law in sorted(index.laws.items()):
        store.update_law(sig, law)


#: outcomes of a light job that say nothing about the light: they are not kept, so the next
#: run tries again (the file came back, the disk has room, a bug was fixed)
TRANSIENT_REASONS = frozenset(
    map(
        str,
        (
            LightReason.INPUT_VANISHED,
            LightReason.INPUT_CHANGED,
            LightReason.OUTPUT_FAILED,
            LightReason.CALIBRATION_FAILED,
            LightReason.UNREADABLE,
        ),
    )
)


def _transient(fields: dict[str, Any]) -> bool:
    return not TRANSIENT_REASONS.isdisjoint(map(str, fields.get("reasons") or ()))


def _execute_lights(
    plan,
    registry,
    executor,
    events,
    result,
    run_id,
    *,
    workdir,
    config,
    progress,
    usable,
    state,
    failed,
):
    metas_by_id: dict[str, Any] = {}

    def meta_of_master(master_id: str):
        if master_id not in metas_by_id:
            row = registry.get_by_id(master_id)
            metas_by_id[master_id] = (
                master_meta_from_dict(row.record["meta"]) if row and row.record else None
            )
        return metas_by_id[master_id]

    for mismatch in plan.mismatches:  # cached lights whose file changed: recomputed below
        result.artifacts_repaired += 1
        events.emit("artifact_mismatch", **mismatch, action="rebuild")
    todo = [j for j in plan.lights if not j.cached]
    light_params = {s: config.to_dict()[s] for s in LIGHT_SECTIONS}
    started = time.time()
    specs = [j.spec(workdir, config) for j in todo]
    n_workers = getattr(executor, "n_workers", None)
    if n_workers is None or n_workers(specs, "lights") > 1:
        from darkflow.master import forget_masters

        forget_masters()  # the workers read their own: this process keeps no planes meanwhile
    outcomes = executor.map(run_light_job, specs, stage="lights", progress=progress)
    by_key = {o.key: o for o in outcomes}
    rows: dict[str, dict[str, Any]] = {}
    hists: dict[str, list[int]] = {}
    for job in plan.lights:
        row = light_row(job.row)
        row.update(_decision_fields(job.decision, meta_of_master))
        row["bias_master_id"] = short(job.bias_key) if job.bias_key else None
        row["job_key"] = short(job.key)
        fallback = _fallback_reason(job, plan.masters, registry)
        if job.cached:
            fields = dict(job.cached_record)
            seconds, cache_hit = 0.0, not state.built(job.key)
            state.note(job.key, "light", "reused")
        else:
            out = by_key[job.key]
            if out.corrupt:  # its master is damaged: rebuilt, then this light is computed
                state.corrupt.extend(out.corrupt)
                continue
            fields = dict(out.fields)
            seconds, cache_hit = out.seconds, False
            state.note(job.key, "light", "built")
            fields["hist_counts"] = out.hist_counts
        if _transient(fields):
            state.transient += 1
        elif not job.cached:  # a verdict, whatever it is, is kept
            registry.put_artifact(
                key=job.key,
                id=short(job.key),
                kind=ArtifactKind.CALIBRATED_LIGHT,
                status=str(fields["status"]),
                provenance={
                    "input": {"path": job.meta.path, "config_signature": job.meta.config_signature},
                    "master": job.master_key,
                    "masters": [key for _, key, _, _ in job.recipe],
                    "bias": job.bias_key,
                    # without the candidates (every master of the configuration: the whole
                    # dark library); the full decision is in the night's decisions.jsonl
                    "decision": {
                        k: v
                        for k, v in job.decision.to_dict().items()
                        if k not in ("candidates", "options")
                    },
                    "parameters": light_params,
                    "algorithm": ALGORITHM_VERSION,
                    "darkflow": __version__,
                },
                path=fields.get("output_path"),
                content_hash=fields.get("output_hash"),
                config_signature=job.meta.config_signature,
                night=job.row.get("night"),
                session=job.row.get("session"),
                confidence=fields.get("confidence"),
                run_id=run_id,
                record=fields,
            )
        hist = fields.pop("hist_counts", None)
        if hist:
            hists[job.meta.path] = hist
        for k in ("output_size", "output_mtime_ns", "output_inode", "output_hash", "error"):
            fields.pop(k, None)
        notes = plan.notes.get(job.meta.path, [])
        fields["reasons"] = reasons_text([*(fields.get("reasons") or []), *fallback, *notes])
        row.update(fields)
        row["cached"] = cache_hit
        rows[job.meta.path] = row
        registry.record_job(
            run_id=run_id,
            key=job.key,
            kind=ArtifactKind.CALIBRATED_LIGHT,
            label=Path(job.meta.path).name,
            started=started,
            ended=started + seconds,
            outcome=str(row["status"]),
            cache_hit=cache_hit,
        )
        events.emit(
            "job",
            kind=ArtifactKind.CALIBRATED_LIGHT,
            id=short(job.key),
            path=job.meta.path,
            config_signature=job.meta.config_signature,
            master_id=row["master_id"],
            outcome=str(row["status"]),
            cache_hit=cache_hit,
            seconds=round(seconds, 3),
            confidence=row["confidence"],
            reasons=row["reasons"],
        )
    for r, decision in plan.unmatched:
        row = light_row(r)
        reasons: list[object] = [r.get("reasons") or ""]
        if r["status"] == Eligibility.REJECTED:
            reasons.append(LightReason.NOT_ELIGIBLE)
        elif not usable(r):
            reasons.append(LightReason.ISOLATED_UNUSED)
        broken = _failed_master_reasons(r, failed) if usable(r) else []
        if decision is not None and not decision.matched:  # why no master would do
            # a master that failed to build explains the missing candidate better than
            # temperature or exposure: triage must not send the operator to take new darks
            reasons.extend(x for x in decision.reasons if not broken or x != "no_candidate")
        reasons.extend(broken)
        reasons.extend(plan.notes.get(r["path"], []))
        if not TRANSIENT_REASONS.isdisjoint(map(str, reasons)):
            state.transient += 1
        row["reasons"] = reasons_text(reasons)
        rows[r["path"]] = row
        events.emit(
            "light",
            path=r["path"],
            outcome="quarantined",
            reasons=row["reasons"],
            advisory=decision.advisory if decision else None,
        )
    ordered = [rows[p] for p in sorted(rows)]
    # the header's EGAIN against the lights' own photon transfer, per session (degrades)
    check_light_pairs(
        ordered,
        workdir=workdir,
        false_alarm=config.verify.gate_false_alarm,
        header_rel_sigma=config.verify.header_gain_rel_sigma,
        top_cause=_top_cause,
    )
    _sync_pair_verdicts(registry, plan, ordered)
    for row in ordered:
        result.lights[LightStatus(row["status"])] += 1
    return ordered, hists


def _sync_pair_verdicts(registry, plan, ordered) -> None:
    """The registry's status of each calibrated light as this run's verdict on it.

    The light-pair gain check judges a session, not a light's inputs: it may degrade a light
    whose artifact was kept as ``calibrated`` (or pass one an earlier run degraded, when the
    session's pairs changed). The artifact's stored record keeps the light's own verdict, which
    every run starts from; its status column follows the latest run, so ``darkflow status``
    counts what the frame report says.
    """
    keys = {j.meta.path: j.key for j in plan.lights}
    wanted = {}
    for row in ordered:
        key = keys.get(row.get("path"))
        if key and row.get("output_path") and str(row.get("status")) in DELIVERED:
            wanted[short(key)] = (key, str(row["status"]), row.get("pair_gain_check"))
    if not wanted:
        return
    current = registry.statuses_by_id(wanted)
    for aid, (key, status, check) in sorted(wanted.items()):
        have = current.get(aid) or []
        if have and status not in have:
            registry.set_status(key, status, reason=f"light-pair gain check: {check}")


def _write_reports(
    workdir, plan, master_jobs, registry, report_rows, decisions, hists, scanned, failed, scope
):
    """The run's reports at the top of the work directory, and per night under ``nights/``.

    Top level: this run (the contract files). ``nights/<night>/``: every run's rows of one night,
    merged (:mod:`darkflow.pipeline.nights`), so a night calibrated in parts is reported whole.
    Paths of work-directory files are relative to the work directory.
    """
    used = {j.master_key for j in plan.lights} | {j.bias_key for j in plan.lights if j.bias_key}
    keys = [j.key for j in master_jobs] + sorted(used - {j.key for j in master_jobs})
    built_now = {j.key for j in master_jobs if not j.cached}
    master_rows = []
    for key in keys:
        art = registry.get(key)
        if art is None or not art.record:
            continue
        meta = art.record["meta"]
        master_rows.append(
            {
                "master_id": art.id,
                "config_signature": art.config_signature,
                "exptime_s": meta["exptime_s"],
                "temp_c": meta.get("temp_c"),
                "n_frames": meta["n_frames"],
                "status": art.status,
                "confidence": art.confidence,
                "path": art.path,
                "kind": str(meta.get("frame_kind", "dark")),
                "night": art.night,
                "instrument": meta.get("instrument"),
                "set_temp_c": meta.get("set_temp_c"),
                "temp_min_c": meta.get("temp_min_c"),
                "temp_max_c": meta.get("temp_max_c"),
                "date_start_utc": meta.get("date_start_utc"),
                "date_end_utc": meta.get("date_end_utc"),
                "reasons": ";".join(art.record.get("reasons", [])),
                "cached": key not in built_now,
                "n_hot_stable": art.record.get("stats", {}).get("n_hot_stable"),
                "median_adu": art.record.get("stats", {}).get("median"),
                "previous_master_id": art.record.get("previous_master_id"),
                "bias_master_id": art.record.get("bias_master_id"),
                "top_cause": _top_cause(art.record.get("reasons", [])),
                **_metric_values((art.record.get("assessment") or {}).get("values") or {}),
            }
        )
    master_rows += _failed_master_rows(failed)
    by_path = {r["path"]: r for r in scanned.rows}
    decision_records = [
        {
            "night": by_path.get(p, {}).get("night"),
            "session": by_path.get(p, {}).get("session"),
            **decisions[p].to_dict(),
        }
        for p in sorted(decisions)
    ]
    # each decision encoded once (a light's lists every master of its configuration: at a
    # year of nights ~130 KB), for the run's file and its night's
    decision_texts = [dumps(record) for record in decision_records]
    _write_outputs(
        workdir, report_rows, master_rows, decision_texts, scanned.rows, scanned.metas, hists
    )
    thermal = thermal_entries(scanned.rows, scanned.metas)
    for night in sorted({r.get("night") for r in report_rows if r.get("night")}):
        lights = [r for r in report_rows if r.get("night") == night]
        used_ids = {r["master_id"] for r in lights} | {r["bias_master_id"] for r in lights}
        masters = [m for m in master_rows if m["night"] == night or m["master_id"] in used_ids]
        paths = {r["path"] for r in lights}
        write_night(
            workdir / "nights" / slug(night),
            lights=lights,
            masters=masters,
            decisions=[d for d in decision_records if d["night"] == night],
            decision_texts=[
                t
                for d, t in zip(decision_records, decision_texts, strict=True)
                if d["night"] == night
            ],
            thermal=[e for e in thermal if e["night"] == night],
            hists={p: h for p, h in hists.items() if p in paths},
            scope=scope,
            registry=registry,
        )


def _write_outputs(dest, report_rows, master_rows, decision_texts, rows, metas, hists) -> None:
    write_csv(dest / "frame_report.csv", report_rows, FRAME_REPORT_COLUMNS + FRAME_REPORT_EXTRA)
    write_csv(dest / "masters.csv", master_rows, MASTERS_COLUMNS + MASTERS_EXTRA)
    with atomic_write(dest / "decisions.jsonl") as fh:
        fh.writelines(text + "\n" for text in decision_texts)
    write_qa(dest, rows, metas, hists)
