"""The calibration DAG: qualified frame sets → masters → calibrated lights.

A job's key hashes everything that determines its output bytes:

* master: the content hashes of its input frames, the ``[combine]`` configuration, the algorithm
  version;
* light: the light's content hash, the keys of the master(s) and bias it uses, the decision that
  shapes the output (scale mode and factors, confidence, reasons), the light-side configuration
  (``[matching]``, ``[scaling]``, ``[subtract]``, ``[verify]``) and the algorithm version.

So a new dark changes one master's key and, through it, only the lights that use that master; a
master-only parameter changes every master key and so every light; a light-only parameter changes
only light keys. Masters are stored under their key
(``artifacts/masters/<instrument>/<signature>/<key16>.fits``), so finding finished work needs no
scan of the artifact store: a job is cached when its file exists and the registry knows it with
the content hash it was written with (a master is verified against it whenever it is read).

Calibrated lights are named after the input's own identity, never after the other files of a
run: ``calibrated/<night>/<session>/<stem>-<hash10>.fits`` with the first ten hex digits of the
input's content hash, so adding files renames nothing and no light can overwrite another's output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from darkflow._version import ALGORITHM_VERSION, ASSESSMENT_VERSION, __version__
from darkflow.config import DARK_LAW_KEYS, LIGHT_PLANE_KEYS, MASTER_PLANE_KEYS, Config
from darkflow.exceptions import DarkflowError
from darkflow.io.hashing import exact_json, job_key, short
from darkflow.io.paths import printable
from darkflow.matching import MatchDecision, mid_time
from darkflow.model import ArtifactKind, FrameMeta, FrameType, MasterMeta, MasterStatus, slug
from darkflow.pipeline.jobs import GainSource, LightJobSpec, MasterJobSpec, input_stat_of
from darkflow.pipeline.sets import FrameSet, provisional_meta, split_level_jumps
from darkflow.registry import ArtifactRow, MasterRow, Registry

__all__ = [
    "LIGHT_SECTIONS",
    "MASTER_SECTIONS",
    "JobPlan",
    "LightJob",
    "MasterJob",
    "light_key",
    "master_key",
]

log = logging.getLogger(__name__)

MASTER_SECTIONS = ("combine", "output")
LIGHT_SECTIONS = ("matching", "scaling", "subtract", "verify", "output")
MASTER_KINDS = {FrameType.DARK: ArtifactKind.MASTER_DARK, FrameType.BIAS: ArtifactKind.MASTER_BIAS}


# Keys of a section that change how a job runs, not what it produces.
EXECUTION_ONLY = {"combine": ("memory_limit",)}
# [output] keys that shape the other kind's files only (a light's uncertainty never changes a
# master; a master's planes reach a light through the master's key)
OTHER_KIND = {"master": {"output": LIGHT_PLANE_KEYS}, "light": {"output": MASTER_PLANE_KEYS}}


def output_params(config: Config, *sections: str, kind: str | None = None) -> dict[str, Any]:
    """The configuration a job's output depends on (execution-only keys, and with ``kind``
    (``master`` or ``light``) the other kind's keys, removed)."""
    full = config.to_dict()
    skip = {
        s: (*EXECUTION_ONLY.get(s, ()), *OTHER_KIND.get(kind or "", {}).get(s, ()))
        for s in sections
    }
    return {s: {k: v for k, v in full[s].items() if k not in skip[s]} for s in sections}


def master_key(fset: FrameSet, input_hashes: Iterable[str], config: Config) -> str:
    """The content key of a master: its kind, the content hashes of its inputs and the configuration
    its file depends on."""
    return job_key(
        f"master-{fset.kind}",
        input_hashes,
        output_params(config, *MASTER_SECTIONS, kind="master"),
        ALGORITHM_VERSION,
    )


def light_key(
    light_hash: str,
    *,
    recipe: Sequence[tuple[str, str, Any, str]],
    bias: str | None,
    decision: MatchDecision,
    index_fingerprint: str,
    config: Config,
    master_biases: Mapping[str, str] | None = None,
    bias_level_sigma_adu: float = 0.0,
    gain_sources: Sequence[GainSource] = (),
) -> str:
    """Everything that shapes a calibrated light: its bytes, the masters and bias of its dark
    model (with their status, which sets the light's), the bias each master keeps when it is
    not the light's (another night's master) and the level uncertainty of a borrowed bias, the
    decision, the configuration's laws in the index, the light-side configuration, and the
    masters (each with its bias) whose photon transfer measures the gain without EGAIN."""
    essentials = {
        k: v
        for k, v in decision.to_dict().items()
        if k not in ("light_path", "candidates", "options", "advisory")
    }
    params = {
        "recipe": [[key, str(status)] for _, key, _, status in recipe],
        "bias": bias or "",
        "decision": essentials,
        "index": index_fingerprint,
        "config": output_params(config, *LIGHT_SECTIONS, kind="light"),
    }
    if master_biases:  # only when some master keeps its own bias: other keys stay as they were
        params["master_biases"] = dict(sorted(master_biases.items()))
    if bias_level_sigma_adu:
        params["bias_level_sigma_adu"] = round(float(bias_level_sigma_adu), 4)
    if gain_sources:
        params["gain_masters"] = [[g.key, g.status, g.bias_key or ""] for g in gain_sources]
    return job_key(
        "light", [light_hash], json.loads(json.dumps(params, default=exact_json)), ALGORITHM_VERSION
    )


def output_path(workdir: Path, row: Mapping[str, Any], content_hash: str) -> Path:
    """Where a light's calibrated output goes: a function of the light alone.

    ``calibrated/<night>/<session>/<stem>-<hash10>.fits``: the file's name without its FITS or
    compression suffixes, then the first ten hex digits of its content hash (two different
    lights of one session may share a name, e.g. SharpCap's ``Light_00001.fits`` of two
    targets; identical files are rejected as duplicates by the scan). Stray name bytes are
    written as ``\\xNN`` (:func:`darkflow.io.paths.printable`) and a long stem is cut to
    :data:`MAX_STEM_BYTES` so the name stays within every file system's 255-byte limit.
    """
    night = slug(row.get("night") or "unknown")
    session = slug(row.get("session") or "unknown")
    name = Path(row["path"]).name
    for suffix in (".fz", ".gz"):
        name = name.removesuffix(suffix)
    stem = printable(Path(name).stem)
    stem = stem.encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", "ignore")
    return Path(workdir) / "calibrated" / night / session / f"{stem}-{content_hash[:10]}.fits"


# bytes of a light's name kept in its output name (the rest: "-<hash10>.fits" and room for the
# temporary name an atomic write uses)
MAX_STEM_BYTES = 200


def master_path(workdir: Path, fset: FrameSet, key: str) -> Path:
    return (
        Path(workdir)
        / "artifacts"
        / "masters"
        / fset.instrument_slug
        / fset.config_signature
        / f"{short(key)}.fits"
    )


# ----------------------------------------------------------------------------- jobs
@dataclass
class MasterJob:
    """One master of the plan: its frame set, output file, bias and previous master for its assessment,
    and whether it is cached."""

    key: str
    fset: FrameSet
    output: Path
    input_hashes: tuple[str, ...]
    cached: bool = False  # file written, registered, and assessed with the current inputs
    row: ArtifactRow | None = None  # registry row when cached
    assess_key: str = ""  # master key + bias + previous master + [verify] configuration
    bias_key: str | None = None
    bias_file: Path | None = None
    previous_key: str | None = None
    previous_file: Path | None = None
    output_hash: str | None = None  # recorded content hash of an existing output
    bias_hash: str | None = None
    previous_hash: str | None = None
    bias_own_night: bool = True
    previous_bias_key: str | None = None  # the bias of the previous master's own night
    previous_bias_file: Path | None = None
    previous_bias_hash: str | None = None

    @property
    def master_id(self) -> str:
        """The short id of the master."""
        return short(self.key)

    @property
    def kind(self) -> str:
        """The registry kind of the master (``master_dark`` or ``master_bias``)."""
        return MASTER_KINDS[self.fset.kind]

    def spec(self, workdir: Path, config: Config) -> MasterJobSpec:
        """The job's :class:`MasterJobSpec` for a worker."""
        return MasterJobSpec(
            self.key,
            self.fset,
            self.output,
            Path(workdir),
            config,
            assess=True,
            bias_path=self.bias_file,
            previous_path=self.previous_file,
            input_hashes=self.input_hashes,
            output_hash=self.output_hash,
            bias_hash=self.bias_hash,
            previous_hash=self.previous_hash,
            bias_own_night=self.bias_own_night,
            previous_bias_path=self.previous_bias_file,
            previous_bias_hash=self.previous_bias_hash,
        )

    def provenance(self, config: Config, meta: MasterMeta | None) -> dict[str, Any]:
        """The provenance recorded with the master in the registry: its set, inputs, temperatures,
        times and configuration."""
        metas = self.fset.metas
        temps = [m.ccd_temp_c for m in metas if m.ccd_temp_c is not None]
        times = sorted(m.date_obs_utc.isoformat() for m in metas if m.date_obs_utc)
        return {
            "set_id": self.fset.identity,
            "set_label": self.fset.label,
            "inputs": [
                {
                    "path": m.path,
                    "content_hash": h,
                    "header_signature": m.config_signature,
                    "exptime_s": m.exptime_s,
                    "ccd_temp_c": m.ccd_temp_c,
                    "date_obs_utc": m.date_obs_utc.isoformat() if m.date_obs_utc else None,
                }
                for m, h in zip(metas, self.input_hashes, strict=True)
            ],
            "parameters": output_params(config, *MASTER_SECTIONS, kind="master"),
            "environment": {
                "temp_min_c": min(temps) if temps else None,
                "temp_max_c": max(temps) if temps else None,
                "temp_mean_c": sum(temps) / len(temps) if temps else None,
                "time_start_utc": times[0] if times else None,
                "time_end_utc": times[-1] if times else None,
            },
            "meta": master_meta_to_dict(meta) if meta else None,
            "assessed_with": {
                "bias": self.bias_key,
                "previous": self.previous_key,
                "verify": output_params(config, "verify")["verify"],
            },
            "algorithm": ALGORITHM_VERSION,
            "darkflow": __version__,
            "packages": _package_versions(),
        }


@dataclass
class LightJob:
    """One light of the plan: its decision, the masters of its recipe, its output file and its key."""

    key: str
    row: dict[str, Any]
    meta: FrameMeta
    decision: MatchDecision
    recipe: tuple[tuple[str, str, Path, str], ...]  # (master id, key, file, status), primary first
    bias_key: str | None
    bias_file: Path | None
    output: Path
    index: Any = None  # CalibrationIndex the decision was made with
    cached_record: dict[str, Any] | None = None
    amplitude_limit_sigma: float | None = None  # conservative alternative: limit the dark signal
    hashes: dict[str, str | None] = field(default_factory=dict)  # master id -> content hash
    bias_hash: str | None = None
    # master id -> (bias key, file, content hash) of a master keeping its own night's bias
    master_biases: dict[str, tuple[str, Path, str | None]] = field(default_factory=dict)
    bias_level_sigma_adu: float = 0.0  # level uncertainty of biases borrowed from other nights
    gain_sources: tuple[GainSource, ...] = ()  # the masters the darks' gain is measured on

    @property
    def cached(self) -> bool:
        """Whether a previous run's result of this very job can stand."""
        return self.cached_record is not None

    @property
    def master_key(self) -> str:
        """The content key of the primary master."""
        return self.recipe[0][1]

    @property
    def master_file(self) -> Path:
        """The file of the primary master."""
        return self.recipe[0][2]

    def spec(self, workdir: Path, config: Config) -> LightJobSpec:
        """The job's :class:`LightJobSpec` for a worker."""
        return LightJobSpec(
            key=self.key,
            meta=self.meta,
            decision=self.decision,
            master_paths={mid: path for mid, _, path, _ in self.recipe},
            master_status=self.recipe[0][3],
            bias_path=self.bias_file,
            bias_id=short(self.bias_key) if self.bias_key else None,
            output=self.output,
            workdir=Path(workdir),
            config=config,
            index=self.index,
            amplitude_limit_sigma=self.amplitude_limit_sigma,
            master_hashes=dict(self.hashes),
            bias_hash=self.bias_hash,
            input_stat=input_stat_of(self.row),
            master_bias_paths={mid: path for mid, (_, path, _) in self.master_biases.items()},
            master_bias_hashes={mid: h for mid, (_, _, h) in self.master_biases.items()},
            bias_level_sigma_adu=self.bias_level_sigma_adu,
            gain_sources=self.gain_sources,
        )


@dataclass
class JobPlan:
    """The jobs of a night: masters, lights, unmatched lights and extra reasons (``darkflow plan``)."""

    masters: list[MasterJob] = field(default_factory=list)
    lights: list[LightJob] = field(default_factory=list)
    unmatched: list[tuple[dict[str, Any], MatchDecision | None]] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # light path -> extra reasons
    # cached lights whose file no longer has its recorded content hash (recomputed)
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def format(self, fmt: str = "table", config: Config | None = None) -> str:
        """The plan as text: ``table`` (one line per job) or ``json`` (records with their inputs and
        configuration hashes)."""
        records = []
        cfg = config or Config()
        for job in self.masters:
            records.append(
                {
                    "kind": job.kind,
                    "id": job.master_id,
                    "key": job.key,
                    "inputs": [
                        {"path": m.path, "content_hash": h}
                        for m, h in zip(job.fset.metas, job.input_hashes, strict=True)
                    ],
                    "config": {s: cfg.section_hash(s) for s in MASTER_SECTIONS},
                    "cached": job.cached,
                    "label": job.fset.label,
                    "output": str(job.output),
                }
            )
        for job in self.lights:
            records.append(
                {
                    "kind": ArtifactKind.CALIBRATED_LIGHT,
                    "id": short(job.key),
                    "key": job.key,
                    "inputs": [{"path": job.meta.path}]
                    + [{"master": short(key)} for _, key, _, _ in job.recipe]
                    + ([{"bias": short(job.bias_key)}] if job.bias_key else []),
                    "config": {s: cfg.section_hash(s) for s in LIGHT_SECTIONS},
                    "cached": job.cached,
                    "label": Path(job.meta.path).name,
                    "output": str(job.output),
                }
            )
        for row, decision in self.unmatched:
            reasons = [str(r) for r in decision.reasons] if decision else []
            records.append(
                {
                    "kind": "unmatched_light",
                    "id": "",
                    "key": "",
                    "inputs": [{"path": row["path"]}],
                    "config": {},
                    "cached": None,
                    "label": Path(row["path"]).name,
                    "output": ";".join(reasons) or row.get("reasons") or "",
                }
            )
        if fmt == "json":
            return json.dumps(records, indent=1) + "\n"
        n_m = len(self.masters)
        n_mc = sum(j.cached for j in self.masters)
        n_l = len(self.lights)
        n_lc = sum(j.cached for j in self.lights)
        lines = [
            f"plan: {n_m} master jobs ({n_mc} cached, {n_m - n_mc} to build), "
            f"{n_l} light jobs ({n_lc} cached, {n_l - n_lc} to run), "
            f"{len(self.unmatched)} lights without a job (quarantined)",
            f"{'kind':<16} {'id':<16} {'cached':<6} {'inputs':>6}  {'config':<26} label",
        ]
        for r in records:
            cached = "-" if r["cached"] is None else ("yes" if r["cached"] else "no")
            conf = ",".join(f"{k}={v[:8]}" for k, v in r["config"].items())
            lines.append(
                f"{r['kind']:<16} {r['id']:<16} {cached:<6} {len(r['inputs']):>6}  {conf:<26} "
                f"{r['label']}"
            )
        return "\n".join(lines) + "\n"


def _package_versions() -> dict[str, str]:
    import astropy
    import numpy

    versions = {"numpy": numpy.__version__, "astropy": astropy.__version__}
    try:
        import numba

        versions["numba"] = numba.__version__
    except ImportError:  # pragma: no cover - numba is a core dependency
        pass
    return versions


# ----------------------------------------------------------------------------- metadata
def master_meta_to_dict(meta: MasterMeta) -> dict[str, Any]:
    out = {}
    for name in MasterMeta.__dataclass_fields__:
        value = getattr(meta, name)
        out[name] = (
            value.isoformat()
            if isinstance(value, datetime)
            else (str(value) if name == "frame_kind" else value)
        )
    return out


def master_meta_from_dict(data: Mapping[str, Any]) -> MasterMeta:
    values = {k: v for k, v in data.items() if k in MasterMeta.__dataclass_fields__}
    for key in ("date_start_utc", "date_end_utc"):
        if isinstance(values.get(key), str):
            values[key] = datetime.fromisoformat(values[key])
    values["frame_kind"] = FrameType(values.get("frame_kind", "dark"))
    return MasterMeta(**values)


# ----------------------------------------------------------------------------- planning
def plan_masters(
    fsets: Sequence[FrameSet],
    *,
    registry: Registry,
    workdir: Path,
    config: Config,
    progress: Callable[[str, int, int], None],
) -> list[MasterJob]:
    """Master jobs (biases first): keys, the bias and previous master each is assessed with,
    and whether the registry already holds the master with a current assessment.

    The assessment inputs are resolved against the registry as it is now; a run resolves them
    again, wave by wave (:func:`master_waves`), as the masters of earlier nights are judged.
    """
    jobs = []
    fsets = split_bias_sets(fsets, registry=registry, workdir=workdir, config=config)
    paths = [m.path for fset in fsets for m in fset.metas]
    hashes_of = registry.content_hashes(paths, progress=progress)
    for fset in fsets:
        hashes = [hashes_of[m.path] for m in fset.metas]
        key = master_key(fset, hashes, config)
        jobs.append(MasterJob(key, fset, master_path(workdir, fset, key), tuple(hashes)))
    jobs.sort(key=lambda j: (j.fset.kind != FrameType.BIAS, j.fset.config_signature, j.key))
    resolve_assessment(jobs, jobs, registry=registry, config=config)
    return jobs


def resolve_assessment(
    jobs: Sequence[MasterJob],
    planned: Sequence[MasterJob],
    *,
    registry: Registry,
    config: Config,
) -> None:
    """Set each job's bias, previous master, assessment key and ``cached`` from the registry.

    ``planned`` are all the master jobs of the run: a dark is assessed with tonight's bias job
    even before that bias is built. A master is cached whatever its verdict (verified,
    low_confidence, quarantined) while its file and its assessment inputs are unchanged: a
    verdict is an artifact like the master itself.
    """
    pool = _BiasPool(planned, registry)
    # the previous-master gate scales by [matching]'s dark-current law: a verdict depends on it
    verify_params = {
        **output_params(config, "verify"),
        "dark_law": {k: getattr(config.matching, k) for k in DARK_LAW_KEYS},
    }
    for job in jobs:
        sig, night = job.fset.config_signature, job.fset.night
        job.bias_key = job.bias_file = job.bias_hash = None
        job.previous_key = job.previous_file = job.previous_hash = None
        job.previous_bias_key = job.previous_bias_file = job.previous_bias_hash = None
        job.bias_own_night = True
        is_dark = job.fset.kind == FrameType.DARK
        if is_dark:
            meta = provisional_meta(job.fset)
            bias = pool.choose(
                sig,
                night=night,
                set_temp_c=meta.set_temp_c,
                temp_c=meta.temp_c,
                when=mid_time(meta),
            )
            if bias is not None:  # a bias of this run has its hash once it is built
                job.bias_key, job.bias_file = bias.key, bias.path
                job.bias_hash = _recorded_hash(registry, bias.key)
                job.bias_own_night = bias.night == night
        prev = _previous_verified(registry, job)
        if prev is not None:
            job.previous_key, job.previous_file = prev.key, registry.file_of(prev)
            job.previous_hash = prev.content_hash
            own = pool.of_night(sig, prev.night) if is_dark else []
            pmeta = master_meta_from_dict(prev.record["meta"]) if "meta" in prev.record else None
            pbias = (
                choose_bias(
                    own,
                    night=prev.night,
                    set_temp_c=pmeta.set_temp_c,
                    temp_c=pmeta.temp_c,
                    when=mid_time(pmeta),
                )
                if is_dark and own and pmeta is not None
                else None
            )
            if pbias is not None:
                job.previous_bias_key, job.previous_bias_file = pbias.key, pbias.path
                job.previous_bias_hash = _recorded_hash(registry, pbias.key)
        job.assess_key = job_key(
            "assess",
            [
                job.key,
                job.bias_key or "",
                job.previous_key or "",
                *job.fset.notes,
                job.previous_bias_key or "",
                "" if job.bias_own_night else "bias-borrowed",
            ],
            verify_params,
            f"{ALGORITHM_VERSION}/{ASSESSMENT_VERSION}",
        )
        row = registry.get(job.key)
        job.output_hash = row.content_hash if row is not None else None
        job.cached = (
            row is not None
            and row.content_hash is not None  # verified whenever it is read
            and job.output.exists()
            and bool(row.record)
            and row.record.get("assess_key") == job.assess_key
        )
        job.row = row if job.cached else None


def _recorded_hash(registry: Registry, key: str) -> str | None:
    """The recorded content hash of a master (``None``: built by this run, not yet written)."""
    row = registry.get(key)
    return row.content_hash if row else None


def master_waves(jobs: Sequence[MasterJob]) -> list[list[MasterJob]]:
    """The master jobs in waves that can run together, earlier nights first.

    A master's verdict depends on the masters judged before it: the previous verified master of
    its kind and configuration (an earlier night) and, for a dark, the bias of its night or the
    latest earlier one. Running in waves makes a run of many nights judge each master exactly
    as a night-by-night history would, so a rerun finds every verdict current (nothing is
    judged twice) whatever order the nights were first calibrated in. Jobs of other
    configurations do not wait for each other.
    """
    level: dict[str, int] = {}
    # per configuration: the highest wave of its biases / of all its masters, of the nights
    # before the current one and of the current night
    seen: dict[str, dict[str, Any]] = {}
    for job in sorted(jobs, key=lambda j: (j.fset.night, j.fset.kind != FrameType.BIAS)):
        is_bias = job.fset.kind == FrameType.BIAS
        st = seen.setdefault(
            job.fset.config_signature,
            {"night": None, "bias_before": -1, "all_before": -1, "bias_now": -1, "all_now": -1},
        )
        if st["night"] != job.fset.night:
            st["bias_before"] = max(st["bias_before"], st["bias_now"])
            st["all_before"] = max(st["all_before"], st["all_now"])
            st["bias_now"] = st["all_now"] = -1
            st["night"] = job.fset.night
        after = st["bias_before"] if is_bias else max(st["all_before"], st["bias_now"])
        level[job.key] = after + 1
        if is_bias:
            st["bias_now"] = max(st["bias_now"], after + 1)
        st["all_now"] = max(st["all_now"], after + 1)
    waves: list[list[MasterJob]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for job in jobs:  # plan order inside a wave
        waves[level[job.key]].append(job)
    return waves


def _usable(registry: Registry, row: ArtifactRow) -> bool:
    return bool(row.path and row.record and (registry.workdir / row.path).exists())


def _usable_rows(
    registry: Registry, kind: str, sig: str, night: str | None = None
) -> list[MasterRow]:
    rows = registry.master_rows(
        kind=kind,
        config_signature=sig,
        night=night,
        status=[MasterStatus.VERIFIED, MasterStatus.LOW_CONFIDENCE],
    )  # indexed
    return [r for r in rows if r.path and _exists(registry.workdir, r.path)]


def _exists(workdir: Path, rel: str) -> bool:
    """``workdir / rel`` exists (os.path on strings: a run asks this of every master)."""
    return os.path.exists(os.path.join(workdir, rel))


def split_bias_sets(
    fsets: Sequence[FrameSet], *, registry: Registry, workdir: Path, config: Config
) -> list[FrameSet]:
    """Bias sets split where their frames' levels jump (:func:`~darkflow.pipeline.sets.
    split_level_jumps`, at ``verify.gate_false_alarm``); each frame's level is read once and
    kept in ``cache/bias-levels/<key>.json`` under the set's content (one file a set: a new
    night reads and writes its own sets only)."""
    out: list[FrameSet] = []
    cache = _BiasLevels(Path(workdir) / "cache")
    for fset in fsets:
        if fset.kind != FrameType.BIAS or len(fset.metas) < 4:
            out.append(fset)
            continue
        try:
            hashes = [registry.content_hash(m.path) for m in fset.metas]
        except OSError as err:  # vanished since the scan: the master job reports it
            log.warning("bias set %s: %s", fset.label, err)
            out.append(fset)
            continue
        key = short(job_key("bias-levels", sorted(hashes), {}, ALGORITHM_VERSION))
        entry = cache.get(key)
        if entry is None or not all(h in entry["levels"] for h in hashes):
            measured = _frame_levels(fset)
            if measured is None:
                out.append(fset)
                continue
            entry = {"levels": dict(zip(hashes, measured[0], strict=True)), "noise": measured[1]}
            cache.put(key, entry)
        levels = [entry["levels"][h] for h in hashes]
        parts = split_level_jumps(
            fset, levels, float(entry["noise"]), false_alarm=config.verify.gate_false_alarm
        )
        if len(parts) > 1 or parts[0].notes != fset.notes:
            log.info("bias set %s: level jump, %d part(s)", fset.label, len(parts))
        out.extend(parts)
    return out


MAX_LEVEL_PIXELS = 250_000  # a regular subsample of each frame is plenty for its level
MAX_NOISE_PAIRS = 4


def _frame_levels(fset: FrameSet) -> tuple[list[float], float] | None:
    """Per frame its level (mean after 5-sigma clipping around the median, over a regular
    subsample) and the temporal noise of one frame (the clipped spread of consecutive frame
    differences over sqrt 2, median over a few pairs)."""
    from darkflow.io.fits import read_image
    from darkflow.stats import robust_std

    levels: list[float] = []
    noise: list[float] = []
    previous = None
    for m in fset.metas:
        try:
            data, _ = read_image(m.path, hdu=m.hdu_index, dtype="float32")
        except (DarkflowError, OSError) as err:
            log.warning("bias frame %s unreadable for its level: %s", m.path, err)
            return None
        step = max(1, math.ceil(math.sqrt(data.size / MAX_LEVEL_PIXELS)))
        sub = np.asarray(data[::step, ::step], dtype=np.float64)
        values = sub[np.isfinite(sub)]
        if values.size == 0:
            return None
        centre = float(np.median(values))
        spread = robust_std(values)
        kept = values[np.abs(values - centre) <= 5.0 * spread] if spread > 0 else values
        levels.append(float(np.mean(kept)))
        if previous is not None and previous.shape == sub.shape and len(noise) < MAX_NOISE_PAIRS:
            diff = previous - sub
            diff = diff[np.isfinite(diff)]
            if diff.size:
                noise.append(robust_std(diff) / math.sqrt(2.0))
        previous = sub
    return levels, float(np.median(noise)) if noise else 0.0


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from darkflow.io.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, fsync=False) as fh:  # a cache: a lost file is measured again
        fh.write(json.dumps(data, sort_keys=True))


class _BiasLevels:
    """The bias frames' levels of each set, one file a set under ``cache/bias-levels/``.

    A work directory written by an older darkflow keeps them all in one file,
    ``cache/bias_levels.json``, which every new night read and wrote whole; its sets are
    moved into their own files the first time it is found (then it is removed)."""

    def __init__(self, cache: Path):
        self.dir = cache / "bias-levels"
        self.legacy = cache / "bias_levels.json"
        self._migrated = False

    def get(self, key: str) -> dict[str, Any] | None:
        self._migrate()
        entry = _read_json(self.dir / f"{key}.json")
        ok = isinstance(entry.get("levels"), dict) and isinstance(entry.get("noise"), float | int)
        return entry if ok else None

    def put(self, key: str, entry: dict[str, Any]) -> bool:
        try:
            _write_json(self.dir / f"{key}.json", entry)
        except OSError as err:  # a cache: measured again next time
            log.warning("bias levels of %s not kept: %s", key, err)
            return False
        return True

    def _migrate(self) -> None:
        if self._migrated:
            return
        self._migrated = True
        if not self.legacy.is_file():
            return
        moved = [
            (self.dir / f"{key}.json").exists() or self.put(key, entry)
            for key, entry in _read_json(self.legacy).items()
        ]
        if all(moved):
            with contextlib.suppress(OSError):
                self.legacy.unlink()


class _BiasPool:
    """The master biases a dark set may be assessed with, per configuration: this run's
    (every night and set-point) and the registry's verified or low-confidence ones.

    The registry's are read a night at a time, as they are asked for: a dark is assessed with
    its own night's bias whenever that night has one at its temperature (:func:`bias_rank`),
    so a new night reads its own biases and those of its previous master's night, and the
    whole library only for a night without one."""

    def __init__(self, jobs: Sequence[MasterJob], registry: Registry):
        self.registry = registry
        self.planned: dict[str, dict[str, BiasChoice]] = {}
        for j in jobs:
            if j.fset.kind == FrameType.BIAS:
                self.planned.setdefault(j.fset.config_signature, {})[j.key] = BiasChoice(
                    j.key, j.output, j.fset.night, provisional_meta(j.fset), not j.fset.notes
                )
        self._all: dict[str, list[BiasChoice]] = {}
        self._nights: dict[tuple[str, str], list[BiasChoice]] = {}

    def _with_registry(self, sig: str, rows: Iterable[MasterRow], planned) -> list[BiasChoice]:
        out = dict(planned)
        for row in rows:
            if row.key not in self.planned.get(sig, {}):
                out[row.key] = BiasChoice(
                    row.key,
                    self.registry.file_of(row),
                    row.night,
                    master_meta_from_dict(row.meta),
                    row.status == MasterStatus.VERIFIED,
                    row.content_hash,
                )
        return list(out.values())

    def all(self, sig: str) -> list[BiasChoice]:
        if sig not in self._all:
            self._all[sig] = self._with_registry(
                sig,
                _usable_rows(self.registry, ArtifactKind.MASTER_BIAS, sig),
                self.planned.get(sig, {}),
            )
        return self._all[sig]

    def of_night(self, sig: str, night: str | None) -> list[BiasChoice]:
        """Those of ``night``: the same as ``[b for b in self.all(sig) if b.night == night]``."""
        if night is None or sig in self._all:
            return [b for b in self.all(sig) if b.night == night]
        if (sig, night) not in self._nights:
            planned = {k: b for k, b in self.planned.get(sig, {}).items() if b.night == night}
            rows = _usable_rows(self.registry, ArtifactKind.MASTER_BIAS, sig, night=night)
            self._nights[sig, night] = self._with_registry(sig, rows, planned)
        return self._nights[sig, night]

    def choose(self, sig: str, **frame: Any) -> BiasChoice | None:
        """:func:`choose_bias` among all of ``sig`` for a frame (``night``, ``set_temp_c``,
        ``temp_c``, ``when``), from its night's alone when one of them is at its temperature
        (it then ranks before every other)."""
        best = choose_bias(self.of_night(sig, frame["night"]), **frame)
        if best is not None and not bias_rank(best, **frame)[0]:
            return best
        return choose_bias(self.all(sig), **frame)


def _previous_verified(registry: Registry, job: MasterJob) -> ArtifactRow | None:
    """The verified master of the same kind and configuration from the latest earlier night,
    closest in exposure (fixed-pattern stability is judged against it)."""
    latest, rows = None, []
    for r in registry.latest_before(
        kind=job.kind,
        config_signature=job.fset.config_signature,
        night=job.fset.night,
        status=[MasterStatus.VERIFIED],
    ):
        if latest is not None and r.night != latest:
            break
        if _usable(registry, r):
            latest = r.night
            rows.append(r)
    if not rows:
        return None

    def exposure_distance(r: ArtifactRow) -> float:
        t = (r.record.get("meta") or {}).get("exptime_s") or 0.0
        return abs(math.log(max(t, 1e-6) / max(job.fset.exptime_s, 1e-6)))

    return min(rows, key=lambda r: (exposure_distance(r), r.key))


@dataclass
class _Known:
    """A master the index knows: from the registry (any night) or planned in this run."""

    key: str
    kind: str
    meta: MasterMeta
    path: Path
    status: MasterStatus
    confidence: float
    content_hash: str | None = None  # None: built by this run's plan, not yet written
    night: str | None = None


def known_masters(
    registry: Registry,
    signatures: Iterable[str],
    pending: Sequence[MasterJob] = (),
) -> list[_Known]:
    """Masters of these configurations: registered ones (this and earlier runs) + pending jobs."""
    wanted = set(signatures)
    known: dict[str, _Known] = {}
    rows = [
        row
        for kind in MASTER_KINDS.values()
        for sig in sorted(s for s in wanted if s)
        for row in registry.master_rows(kind=kind, config_signature=sig)  # indexed
    ]
    for row in rows:
        path = registry.file_of(row)
        if path is None or not _exists(registry.workdir, str(path)):
            continue
        known[row.key] = _Known(
            row.key,
            row.kind,
            master_meta_from_dict(row.meta),
            path,
            MasterStatus(row.status),
            row.confidence or 0.0,
            row.content_hash,
            row.night,
        )
    for job in pending:
        if job.key not in known and job.fset.config_signature in wanted:
            status = MasterStatus.LOW_CONFIDENCE if job.fset.notes else MasterStatus.VERIFIED
            known[job.key] = _Known(
                job.key,
                job.kind,
                provisional_meta(job.fset),
                job.output,
                status,
                1.0,
                None,
                job.fset.night,
            )
    return sorted(known.values(), key=lambda k: k.key)


@dataclass(frozen=True)
class BiasChoice:
    """A master bias as the bias choice sees it (a registered master or a planned one)."""

    key: str
    path: Path | None
    night: str | None
    meta: MasterMeta
    verified: bool
    content_hash: str | None = None  # recorded hash of the file (None: built by this run)

    @property
    def mid_time(self) -> datetime | None:
        return mid_time(self.meta)


SETPOINT_MATCH_C = 0.5  # bias sets are split by set-point in 0.5 °C bins
MEASURED_MATCH_C = 2.0  # without set-points: measured temperatures this close match


def bias_rank(
    bias: BiasChoice,
    *,
    night: str | None,
    set_temp_c: float | None,
    temp_c: float | None,
    when: datetime | None,
) -> tuple:
    """Sort key of a bias for a frame (lower is better): the bias of the frame's set-point,
    then of its night, then verified, then nearest in time, then the most frames.

    The set-point comes first: a CCD's bias level moves with its temperature (the STL-1001E
    reads 1000 ADU at 0 °C and 1028 ADU at +10 °C), more than it drifts between nights.
    """
    m = bias.meta
    if set_temp_c is not None and m.set_temp_c is not None:
        dt = abs(set_temp_c - m.set_temp_c)
        off_temp = dt > SETPOINT_MATCH_C
    elif temp_c is not None and m.temp_c is not None:
        dt = abs(temp_c - m.temp_c)
        off_temp = dt > MEASURED_MATCH_C
    else:
        dt, off_temp = 0.0, False
    mid = bias.mid_time
    hours = abs((when - mid).total_seconds()) / 3600.0 if when and mid else math.inf
    return (
        off_temp,
        bias.night != night,
        dt if off_temp else 0.0,
        not bias.verified,
        hours,
        -m.n_frames,
        bias.key,
    )


def choose_bias(
    candidates: Sequence[BiasChoice],
    *,
    night: str | None,
    set_temp_c: float | None,
    temp_c: float | None,
    when: datetime | None,
) -> BiasChoice | None:
    """The bias a frame (light or dark master) is calibrated or assessed with: see
    :func:`bias_rank`. Every frame gets its own night's and set-point's bias, nearest in time;
    never one bias for a whole multi-night run."""
    if not candidates:
        return None

    def rank(b: BiasChoice) -> tuple:
        return bias_rank(b, night=night, set_temp_c=set_temp_c, temp_c=temp_c, when=when)

    # A bias of the frame's night at its temperature ranks before every other, so when the
    # night has one, the night's biases decide: a dark library of a year is not ranked for
    # each of its masters (the same choice as ranking all, at a few comparisons a candidate).
    own = [b for b in candidates if b.night == night]
    if own:
        best = min(own, key=rank)
        if not rank(best)[0]:
            return best
    return min(candidates, key=rank)
