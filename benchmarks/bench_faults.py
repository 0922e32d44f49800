"""Fault-injection benchmark: is every calibration fault detected, with the right cause?

Usage::

    .venv/bin/python benchmarks/bench_faults.py                 # function level, all faults
    .venv/bin/python benchmarks/bench_faults.py --kinds clean bias_drift --no-write
    .venv/bin/python benchmarks/bench_faults.py --pipeline      # also run_night per scenario

Each scenario is :func:`darkflow.simulate.faults.fault_night` (one camera, 15 biases and 12
darks of 300 s, 4 broadband + 4 narrowband lights; one fault injected into the darks) plus the
clean dark library of the night before (:func:`~darkflow.simulate.faults.library_night`, same
sensor, independent noise), whose master is the *previous verified master*.

**Function level**: headers are normalised, darks split into training and hold-out frames
(:func:`holdout_split`), the master combined from the training frames (:func:`combine_arrays`),
judged by :func:`assess_master` against the held-out and training frames (with the session's
master bias when it has the darks'
configuration, and the previous master), entered in a calibration index with its status, and
every light matched (:func:`match_light`) and calibrated by the pipeline's own step
(:func:`darkflow.calibrate.calibrate_light`: header gain, noise model, subtraction, checks, one
corrective response and a second check, status). The first pass is the verdict of the checks
before any response. Then the policy: a ``low_confidence`` master is replaced by the previous
verified master (fallback: the light matched against it and calibrated by the same step),
otherwise the step's outcome stands. The reasons of the master and the lights go through
:func:`darkflow.triage.rank_causes`; the top cause is compared with the fault's cause. Every
scenario also runs *without* a previous master.

**Pipeline level** (``--pipeline``): the night is written (:func:`simulate_faulted_night`),
``darkflow.pipeline.run_night`` runs on it, and ``masters.csv``/``frame_report.csv`` are read:
what the pipeline flags.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from darkflow.calibrate import LightCalibration, calibrate_light
from darkflow.config import CombineConfig, Config
from darkflow.ingest.headers import normalise
from darkflow.master import combine_arrays
from darkflow.matching import (
    CalibrationIndex,
    MasterEntry,
    MatchDecision,
    MatchReason,
    match_light,
)
from darkflow.model import FrameMeta, FrameType, LightStatus, MasterDark, MasterMeta
from darkflow.simulate.faults import (
    FAULT_KINDS,
    fault_night,
    library_night,
    plan_faulted,
    render_faulted,
    simulate_faulted_night,
)
from darkflow.triage import Cause, rank_causes
from darkflow.verify import (
    INFORMATIONAL,
    AppliedResponse,
    MasterAssessment,
    ResponseAction,
    assess_master,
    config_differences,
    holdout_split,
    light_status,
)

EXPECTED: dict[str, Cause | None] = {
    "clean": None,
    "wrong_gain": Cause.GAIN_MISMATCH,
    "wrong_gain_recorded": Cause.GAIN_MISMATCH,
    "warm_darks": Cause.THERMAL_MISMATCH,
    "warm_darks_recorded": Cause.THERMAL_MISMATCH,
    "light_leak": Cause.LIGHT_LEAK,
    "cosmic_rays": Cause.COSMIC_RAYS,
    "too_few_darks": Cause.TOO_FEW_DARKS,
    "bias_drift": Cause.BIAS_DRIFT,
    "readout_mode": Cause.READOUT_MODE,
}
LABELS = {
    "clean": "clean night",
    "wrong_gain": "darks at gain 200 (lights 100), header says 100",
    "wrong_gain_recorded": "darks at gain 200, header says 200",
    "warm_darks": "darks +8 °C, header shows the set-point",
    "warm_darks_recorded": "darks +8 °C, header shows it",
    "light_leak": "light leak in the darks (0.2 e-/s ramp)",
    "cosmic_rays": "heavy cosmic rays in the darks (+100 /cm²/s)",
    "too_few_darks": "too few darks (3)",
    "bias_drift": "bias drift: darks +12 ADU",
    "readout_mode": "darks in another readout mode (unrecorded)",
}
# matching reasons that are normal events, not alarms
_BENIGN_MATCH = {MatchReason.EXPOSURE_SCALED}


@dataclass
class Frames:
    metas: list[FrameMeta]
    data: list[np.ndarray]


@dataclass
class ScenarioResult:
    kind: str
    with_previous: bool
    master_status: str
    master_confidence: float
    master_reasons: tuple[str, ...]
    light_reasons: Counter = field(default_factory=Counter)
    first_pass: Counter = field(default_factory=Counter)  # light statuses before any response
    final: Counter = field(default_factory=Counter)  # after fallback / response + re-check
    action: str = ""
    causes: list[tuple[Cause, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def alarms(self) -> list[str]:
        """Failing (non-informational) reasons of the master and the lights."""
        info = {str(r) for r in INFORMATIONAL} | {str(r) for r in _BENIGN_MATCH}
        codes = [*self.master_reasons, *self.light_reasons]
        return [c for c in dict.fromkeys(codes) if c not in info]

    @property
    def detected(self) -> bool:
        return bool(self.alarms) or self.master_status != "verified"

    @property
    def top_cause(self) -> Cause | None:
        return self.causes[0][0] if self.causes else None

    @property
    def correct(self) -> bool:
        expected = EXPECTED[self.kind]
        if expected is None:  # clean: no alarm, every light calibrated
            return not self.detected and set(self.first_pass) <= {LightStatus.CALIBRATED}
        return self.detected and self.top_cause == expected


def _frames(rendered, kind: str, session: str) -> Frames:
    metas, data = [], []
    for r in rendered:
        if r.plan.kind != kind or r.plan.session != session:
            continue
        meta = normalise(r.header, r.plan.relpath).meta
        metas.append(meta.replace(shape=r.data.shape, dtype=r.data.dtype.name))
        data.append(r.data)
    return Frames(metas, data)


def _master_meta(metas: list[FrameMeta], kind: FrameType) -> MasterMeta:
    first = metas[0]
    temps = [m.ccd_temp_c for m in metas if m.ccd_temp_c is not None]
    dates = [m.date_obs_utc for m in metas if m.date_obs_utc is not None]
    return MasterMeta(
        config_signature=first.config_signature,
        instrument=first.instrument or "unknown",
        exptime_s=float(np.median([m.exptime_s or 0.0 for m in metas])),
        temp_c=float(np.mean(temps)) if temps else None,
        set_temp_c=first.set_temp_c,
        n_frames=len(metas),
        egain_e_per_adu=first.egain_e_per_adu,
        gain_setting=first.gain_setting,
        offset=first.offset,
        readout_mode=first.readout_mode,
        date_start_utc=min(dates) if dates else None,
        date_end_utc=max(dates) if dates else None,
        temp_min_c=min(temps) if temps else None,
        temp_max_c=max(temps) if temps else None,
        frame_kind=kind,
    )


def _combine(frames: Frames, kind: FrameType) -> MasterDark:
    return combine_arrays(
        frames.data, meta=_master_meta(frames.metas, kind), config=CombineConfig(), allow_few=True
    )


@dataclass
class Library:
    master: MasterDark
    bias: MasterDark
    assessment: MasterAssessment


def build_library(seed: int, shape: tuple[int, int]) -> Library:
    """The previous night's verified master (and bias) of the scenario camera."""
    spec = library_night(shape=shape)
    rendered = list(render_faulted(plan_faulted(spec, seed)))
    bias = _combine(_frames(rendered, "bias", "library"), FrameType.BIAS)
    darks = _frames(rendered, "dark", "library")
    master = _combine(darks, FrameType.DARK)
    return Library(master, bias, assess_master(master, training=darks.data, bias=bias))


def _calibrate(
    light: np.ndarray,
    meta: FrameMeta,
    decision: MatchDecision,
    *,
    masters: dict[str, MasterDark],
    bias: MasterDark | None,
    index: CalibrationIndex,
    master_status: MasterAssessment,
    config: Config,
) -> LightCalibration:
    """The pipeline's own step on one light, with the masters in memory."""
    return calibrate_light(
        light,
        meta,
        decision,
        load_master=masters.__getitem__,
        bias=bias,
        index=index,
        config=config,
        master_status=master_status,
    )


def _index(master_id: str, master: MasterDark, assessment: MasterAssessment) -> CalibrationIndex:
    entry = MasterEntry(
        master_id, master.meta, status=assessment.status, confidence=assessment.confidence
    )
    return CalibrationIndex.from_entries([entry])


def _response_action(applied: AppliedResponse | None) -> str:
    if applied is None or not applied.applied:
        return ""
    if applied.action == ResponseAction.RESCALE_DARK:
        return "rescale dark (response)"
    if applied.action == ResponseAction.ADD_PEDESTAL:
        return "add pedestal (response)"
    return ""


def run_scenario(
    kind: str,
    *,
    seed: int = 1,
    shape: tuple[int, int] = (300, 400),
    library: Library | None = None,
    with_previous: bool = True,
    n_darks: int = 12,
    n_lights: int = 4,
) -> ScenarioResult:
    """One fault scenario at the function level (see the module docstring)."""
    t0 = time.perf_counter()
    config = Config()
    vcfg = config.verify
    library = library or build_library(seed, shape)
    spec = fault_night(kind, seed=seed, shape=shape, n_darks=n_darks, n_lights=n_lights)
    rendered = list(render_faulted(plan_faulted(spec, seed)))
    bias_frames = _frames(rendered, "bias", "calib")
    darks = _frames(rendered, "dark", "calib")
    bias = _combine(bias_frames, FrameType.BIAS)
    names = [m.path for m in darks.metas]
    train, hold = holdout_split(
        names, vcfg.holdout_fraction, seed=0, min_train=vcfg.min_train_frames
    )
    pick = {n: i for i, n in enumerate(names)}
    master = _combine(
        Frames([darks.metas[pick[n]] for n in train], [darks.data[pick[n]] for n in train]),
        FrameType.DARK,
    )
    signature = master.meta.config_signature
    m_bias = bias if bias.meta.config_signature == signature else None
    previous = library.master if with_previous else None
    if previous is not None and previous.meta.config_signature != signature:
        previous = None
    assessment = assess_master(
        master,
        holdout=[darks.data[pick[n]] for n in hold] or None,
        training=[darks.data[pick[n]] for n in train],
        previous=previous,
        bias=m_bias,
        config=vcfg,
    )
    index = _index("new", master, assessment)
    previous_index = _index("previous", library.master, library.assessment)
    result = ScenarioResult(
        kind,
        with_previous,
        str(assessment.status),
        assessment.confidence,
        tuple(str(r) for r in assessment.reasons),
    )
    can_fall_back = with_previous and library.assessment.verified
    fallback = can_fall_back and not assessment.verified
    fallback = fallback and library.master.meta.config_signature == signature

    def with_previous_master(raw: np.ndarray, meta: FrameMeta) -> LightStatus:
        """The light calibrated with the registry's previous verified master instead."""
        decision = match_light(meta, previous_index, config)
        if not decision.matched:
            return LightStatus.QUARANTINED
        return _calibrate(
            raw,
            meta,
            decision,
            masters={"previous": library.master},
            bias=library.bias,
            index=previous_index,
            master_status=library.assessment,
            config=config,
        ).status

    for session in ("lights_broad", "lights_narrow"):
        lights = _frames(rendered, "light", session)
        for meta, raw in zip(lights.metas, lights.data, strict=True):
            decision = match_light(meta, index, config)
            reasons = [str(r) for r in decision.reasons]
            if not decision.matched:
                reasons += [str(r) for r in config_differences(meta, [master.meta])]
                result.light_reasons.update(reasons)
                result.first_pass[LightStatus.QUARANTINED] += 1
                status2 = LightStatus.QUARANTINED
                if can_fall_back and library.master.meta.config_signature == meta.config_signature:
                    status2 = with_previous_master(raw, meta)
                    result.action = "previous master of the light's config"
                result.final[status2] += 1
                continue
            cal = _calibrate(
                raw,
                meta,
                decision,
                masters={"new": master},
                bias=m_bias,
                index=index,
                master_status=assessment,
                config=config,
            )
            if cal.first_check is None:  # quarantined before subtraction
                result.light_reasons.update(cal.reasons)
                result.first_pass[cal.status] += 1
                result.final[cal.status] += 1
                continue
            status, _ = light_status(cal.first_check, master=assessment, config=vcfg)
            result.first_pass[status] += 1
            result.light_reasons.update([*reasons, *(str(r) for r in cal.first_check.reasons)])
            # the policy: fall back to the previous verified master, else the step's response
            if fallback:
                status2 = with_previous_master(raw, meta)
                result.action = "fallback to previous master"
            else:
                status2 = cal.status
                result.action = result.action or _response_action(cal.applied)
            result.final[status2] += 1
    result.causes = rank_causes([*result.master_reasons, *result.light_reasons])
    result.causes = [(c, w) for c, w in result.causes if w > 0]
    result.seconds = time.perf_counter() - t0
    return result


# ----------------------------------------------------------------------------- pipeline level
def run_pipeline(
    kind: str, *, seed: int, shape: tuple[int, int], tmp: Path, with_previous: bool = True
) -> ScenarioResult:
    """The scenario through ``darkflow.pipeline.run_night``, judged from its reports.

    With ``with_previous`` the clean dark library of the night before is run first into the
    same work directory, so the registry holds the previous verified master (fallback and
    fixed-pattern stability). Detection and cause come from the reasons in ``masters.csv``
    (this night's dark masters) and ``frame_report.csv``.
    """
    import pandas as pd

    from darkflow.pipeline import run_night

    root = tmp / f"{kind}-{'prev' if with_previous else 'noprev'}"
    work = root / "work"
    t0 = time.perf_counter()
    if with_previous:
        simulate_faulted_night(root / "library", library_night(shape=shape), seed)
        run_night(root / "library", workdir=work, config=Config())
    spec = fault_night(kind, seed=seed, shape=shape)
    simulate_faulted_night(root / "data", spec, seed)
    run_night(root / "data", workdir=work, config=Config())
    seconds = time.perf_counter() - t0
    masters = pd.read_csv(work / "masters.csv", dtype={"night": str})
    frames = pd.read_csv(work / "frame_report.csv")
    darks = masters[(masters["kind"] == "dark") & (masters["night"] == spec.date)]
    master_reasons = tuple(
        dict.fromkeys(r for text in darks["reasons"].dropna() for r in str(text).split(";") if r)
    )
    light_reasons: Counter = Counter()
    for text in frames["reasons"].dropna():
        light_reasons.update(list(dict.fromkeys(r for r in str(text).split(";") if r)))
    order = {"verified": 0, "low_confidence": 1, "superseded": 1, "quarantined": 2}
    worst = max(darks["status"], key=lambda st: order.get(st, 3)) if len(darks) else "none"
    statuses = Counter(LightStatus(s) for s in frames["status"])
    actions = Counter(
        a for a in frames.get("response", pd.Series(dtype=str)).dropna() if a != "none"
    )
    result = ScenarioResult(
        kind=kind,
        with_previous=with_previous,
        master_status=str(worst),
        master_confidence=float(darks["confidence"].min()) if len(darks) else 0.0,
        master_reasons=master_reasons,
        light_reasons=light_reasons,
        first_pass=statuses,
        final=statuses,
        action=", ".join(f"{a} x{n}" for a, n in actions.most_common(2)),
        seconds=seconds,
    )
    result.causes = rank_causes([*master_reasons, *light_reasons])
    return result


# ----------------------------------------------------------------------------- output
def _counts(c: Counter) -> str:
    order = (LightStatus.CALIBRATED, LightStatus.DEGRADED, LightStatus.QUARANTINED)
    return "/".join(str(c.get(s, 0)) for s in order)


def _cause_text(r: ScenarioResult) -> str:
    if not r.causes:
        return "-"
    return ", ".join(f"{c} ({w:g})" for c, w in r.causes[:2])


def table(results: list[ScenarioResult]) -> str:
    lines = [
        "| fault | previous master | detected | master (confidence) | alarms | top causes "
        "(score) | right cause | lights C/D/Q first pass | action | lights C/D/Q after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        alarms = ", ".join(f"`{a}`" for a in r.alarms) or "none"
        expected = EXPECTED[r.kind]
        right = (
            ("yes" if r.correct else "**NO**")
            if expected is not None
            else ("no false alarm" if r.correct else "**FALSE ALARM**")
        )
        lines.append(
            f"| {LABELS[r.kind]} | {'yes' if r.with_previous else 'no'} | "
            f"{'yes' if r.detected else 'no'} | {r.master_status} ({r.master_confidence:.2f}) | "
            f"{alarms} | {_cause_text(r)} | {right} | {_counts(r.first_pass)} | "
            f"{r.action or '-'} | {_counts(r.final)} |"
        )
    return "\n".join(lines)


SECTION = "## Fault injection and verification (`bench_faults.py`)"


def write_results(text: str, path: Path) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others alone."""
    from darkflow.io.atomic import atomic_write

    old = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"{re.escape(SECTION)}\n.*?(?=\n## |\Z)", re.S)
    block = f"{SECTION}\n\n{text.strip()}\n"
    new = (
        pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + f"\n\n{block}"
    )
    with atomic_write(path) as fh:
        fh.write(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="*", default=list(FAULT_KINDS), choices=FAULT_KINDS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shape", default="300x400", help="frame size NYxNX")
    parser.add_argument("--pipeline", action="store_true", help="also run run_night per fault")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)
    ny, nx = (int(v) for v in args.shape.lower().split("x"))
    shape = (ny, nx)
    t0 = time.perf_counter()
    library = build_library(args.seed, shape)
    if not library.assessment.verified:
        print(f"warning: the library master is not verified: {library.assessment}")
    results = []
    for with_previous in (True, False):
        for kind in args.kinds:
            r = run_scenario(
                kind, seed=args.seed, shape=shape, library=library, with_previous=with_previous
            )
            results.append(r)
            print(
                f"{kind:22s} prev={with_previous!s:5s} detected={r.detected!s:5s} "
                f"top={r.top_cause} ok={r.correct} ({r.seconds:.1f}s)",
                file=sys.stderr,
            )
    wall = time.perf_counter() - t0
    main_rows = [r for r in results if r.with_previous]
    ok = sum(r.correct for r in main_rows)
    ok_np = sum(r.correct for r in results if not r.with_previous)
    load = os.getloadavg()
    text = [
        f"Function level, seed {args.seed}, {ny}x{nx} (rows x columns) frames, 12 darks (3 for `too_few_darks`; "
        "20% held out), 15 biases, 4+4 lights of 300 s per scenario; previous master = clean "
        "dark library of the night before. Measured "
        f"{time.strftime('%Y-%m-%d')} in {wall:.0f} s wall on 2 shared cores "
        f"(load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}).",
        "",
        f"**{ok}/{len(main_rows)} scenarios right with a previous master, "
        f"{ok_np}/{len(results) - len(main_rows)} without** (right = every fault detected "
        "with the expected top cause; clean night: no alarm, every light calibrated).",
        "",
        table(results),
        "",
        "C/D/Q = calibrated/degraded/quarantined lights (8 per night). First pass: checks with "
        "the new master, before any response. Lights are calibrated by the pipeline's own step "
        "(`darkflow.calibrate.calibrate_light`, with its one response and second check). "
        "Action: fallback to the previous verified master when the new one is "
        "`low_confidence` (the light calibrated again by the same step), else the step's "
        "response. Scores: `darkflow.triage.rank_causes` over the distinct reasons of the "
        "master and the lights.",
    ]
    if args.pipeline:
        t1 = time.perf_counter()
        pipe = []
        with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
            for with_previous in (True, False):
                for kind in args.kinds:
                    r = run_pipeline(
                        kind,
                        seed=args.seed,
                        shape=shape,
                        tmp=Path(tmp),
                        with_previous=with_previous,
                    )
                    pipe.append(r)
                    print(
                        f"pipeline {kind:22s} prev={with_previous!s:5s} "
                        f"detected={r.detected!s:5s} top={r.top_cause} ok={r.correct}",
                        file=sys.stderr,
                    )
        ok_p = sum(r.correct for r in pipe if r.with_previous)
        ok_pn = sum(r.correct for r in pipe if not r.with_previous)
        n_p = sum(r.with_previous for r in pipe)
        text += [
            "",
            f"**Pipeline level** (`darkflow.pipeline.run_night` on the written nights; with a "
            "previous master the clean library night is run first into the same work directory; "
            f"{time.perf_counter() - t1:.0f} s): **{ok_p}/{n_p} right with a previous master, "
            f"{ok_pn}/{len(pipe) - n_p} without.** Lights C/D/Q are final (after the pipeline's "
            "one response); the action column lists the responses applied.",
            "",
            table(pipe),
        ]
    out = "\n".join(text)
    print(out)
    if not args.no_write:
        write_results(out, Path(__file__).with_name("RESULTS.md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
