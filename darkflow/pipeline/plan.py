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

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from darkflow._version import ALGORITHM_VERSION, ASSESSMENT_VERSION, __version__
from darkflow.config import LIGHT_PLANE_KEYS, MASTER_PLANE_KEYS, Config
from darkflow.hashing import exact_json, job_key, short
from darkflow.io.paths import printable
from darkflow.matching import MatchDecision
from darkflow.model import FrameMeta, FrameType, MasterMeta, MasterStatus, slug
from darkflow.pipeline.jobs import LightJobSpec, MasterJobSpec, input_stat_of
from darkflow.pipeline.sets import FrameSet, provisional_meta
from darkflow.registry import ArtifactRow, Registry

__all__ = [
    "LIGHT_SECTIONS",
    "MASTER_SECTIONS",
    "JobPlan",
    "LightJob",
    "MasterJob",
    "light_key",
    "master_key",
]

MASTER_SECTIONS = ("combine", "output")
LIGHT_SECTIONS = ("matching", "scaling", "subtract", "verify", "output")
MASTER_KINDS = {FrameType.DARK: "master_dark", FrameType.BIAS: "master_bias"}


# Keys of a section that change how a job runs, not what it produces.
EXECUTION_ONLY = {"combine": ("memory_limit",)}
# [output] keys that shape the other kind's files only (a light's uncertainty never changes a
# master; a master's planes reach a light through the master's key)
OTHER_KIND = {"master": {"output": LIGHT_PLANE_KEYS}, "light": {"output": MASTER_PLANE_KEYS}}


def output_params(config: Config, *sections: str, kind: str | None = None) -> dict[str, Any]:
    """The configuration a job's output depends on (execution-only keys, and with ``kind``
    (``master`` or ``light``) the other kind's keys, removed)."""
    full = config.to_dict()
    skip = {s: (*EXECUTION_ONLY.get(s, ()), *OTHER_KIND.get(kind or "", {}).get(s, ()))
            for s in sections}  # fmt: skip
    return {s: {k: v for k, v in full[s].items() if k not in skip[s]} for s in sections}


def master_key(fset: FrameSet, input_hashes: Iterable[str], config: Config) -> str:
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
) -> str:
    """Everything that shapes a calibrated light: its bytes, the masters and bias of its dark
    model (with their status, which sets the light's), the decision, the configuration's laws in
    the index, and the light-side configuration."""
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
    return job_key("light", [light_hash], json.loads(json.dumps(params, default=exact_json)),
                   ALGORITHM_VERSION)  # fmt: skip


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
        Path(workdir) / "artifacts" / "masters" / fset.instrument_slug / fset.config_signature
        / f"{short(key)}.fits"
    )  # fmt: skip


# ----------------------------------------------------------------------------- jobs
@dataclass
class MasterJob:
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

    @property
    def master_id(self) -> str:
        return short(self.key)

    @property
    def kind(self) -> str:
        return MASTER_KINDS[self.fset.kind]

    def spec(self, workdir: Path, config: Config) -> MasterJobSpec:
        return MasterJobSpec(
            self.key, self.fset, self.output, Path(workdir), config, assess=True,
            bias_path=self.bias_file, previous_path=self.previous_file,
            input_hashes=self.input_hashes, output_hash=self.output_hash,
            bias_hash=self.bias_hash, previous_hash=self.previous_hash,
        )  # fmt: skip

    def provenance(self, config: Config, meta: MasterMeta | None) -> dict[str, Any]:
        metas = self.fset.metas
        temps = [m.ccd_temp_c for m in metas if m.ccd_temp_c is not None]
        times = sorted(m.date_obs_utc.isoformat() for m in metas if m.date_obs_utc)
        return {
            "set_id": self.fset.identity,
            "set_label": self.fset.label,
            "inputs": [
                {"path": m.path, "content_hash": h, "header_signature": m.config_signature,
                 "exptime_s": m.exptime_s, "ccd_temp_c": m.ccd_temp_c,
                 "date_obs_utc": m.date_obs_utc.isoformat() if m.date_obs_utc else None}
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
            "assessed_with": {"bias": self.bias_key, "previous": self.previous_key,
                              "verify": output_params(config, "verify")["verify"]},
            "algorithm": ALGORITHM_VERSION,
            "darkflow": __version__,
            "packages": _package_versions(),
        }  # fmt: skip


@dataclass
class LightJob:
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

    @property
    def cached(self) -> bool:
        return self.cached_record is not None

    @property
    def master_key(self) -> str:
        return self.recipe[0][1]

    @property
    def master_file(self) -> Path:
        return self.recipe[0][2]

    def spec(self, workdir: Path, config: Config) -> LightJobSpec:
        return LightJobSpec(
            key=self.key, meta=self.meta, decision=self.decision,
            master_paths={mid: path for mid, _, path, _ in self.recipe},
            master_status=self.recipe[0][3], bias_path=self.bias_file,
            bias_id=short(self.bias_key) if self.bias_key else None, output=self.output,
            workdir=Path(workdir), config=config, index=self.index,
            amplitude_limit_sigma=self.amplitude_limit_sigma, master_hashes=dict(self.hashes),
            bias_hash=self.bias_hash, input_stat=input_stat_of(self.row),
        )  # fmt: skip


@dataclass
class JobPlan:
    masters: list[MasterJob] = field(default_factory=list)
    lights: list[LightJob] = field(default_factory=list)
    unmatched: list[tuple[dict[str, Any], MatchDecision | None]] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # light path -> extra reasons
    # cached lights whose file no longer has its recorded content hash (recomputed)
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def format(self, fmt: str = "table", config: Config | None = None) -> str:
        records = []
        cfg = config or Config()
        for job in self.masters:
            records.append({
                "kind": job.kind, "id": job.master_id, "key": job.key,
                "inputs": [{"path": m.path, "content_hash": h}
                           for m, h in zip(job.fset.metas, job.input_hashes, strict=True)],
                "config": {s: cfg.section_hash(s) for s in MASTER_SECTIONS},
                "cached": job.cached, "label": job.fset.label, "output": str(job.output),
            })  # fmt: skip
        for job in self.lights:
            records.append({
                "kind": "calibrated_light", "id": short(job.key), "key": job.key,
                "inputs": [{"path": job.meta.path}]
                + [{"master": short(key)} for _, key, _, _ in job.recipe]
                + ([{"bias": short(job.bias_key)}] if job.bias_key else []),
                "config": {s: cfg.section_hash(s) for s in LIGHT_SECTIONS},
                "cached": job.cached, "label": Path(job.meta.path).name,
                "output": str(job.output),
            })  # fmt: skip
        for row, decision in self.unmatched:
            reasons = [str(r) for r in decision.reasons] if decision else []
            records.append({"kind": "unmatched_light", "id": "", "key": "",
                            "inputs": [{"path": row["path"]}], "config": {},
                            "cached": None, "label": Path(row["path"]).name,
                            "output": ";".join(reasons) or row.get("reasons") or ""})  # fmt: skip
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
        out[name] = value.isoformat() if isinstance(value, datetime) else (
            str(value) if name == "frame_kind" else value)  # fmt: skip
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
    and whether the registry already holds the master with a current assessment."""
    jobs = []
    total = sum(len(f.metas) for f in fsets)
    done = 0
    for fset in fsets:
        hashes = []
        for m in fset.metas:
            hashes.append(registry.content_hash(m.path))
            done += 1
            progress("hashing", done, total)
        key = master_key(fset, hashes, config)
        jobs.append(MasterJob(key, fset, master_path(workdir, fset, key), tuple(hashes)))
    progress("hashing", total, total)
    jobs.sort(key=lambda j: (j.fset.kind != FrameType.BIAS, j.fset.config_signature, j.key))
    tonight_bias = {
        (j.fset.config_signature, j.fset.night): j for j in jobs if j.fset.kind == FrameType.BIAS
    }
    verify_params = output_params(config, "verify")
    for job in jobs:
        sig, night = job.fset.config_signature, job.fset.night
        if job.fset.kind == FrameType.DARK:
            bias = tonight_bias.get((sig, night))
            if bias is not None:  # its hash is known once it is built (or from its row)
                job.bias_key, job.bias_file = bias.key, bias.output
                bias_row = registry.get(bias.key)
                job.bias_hash = bias_row.content_hash if bias_row else None
            else:
                row = _latest(registry, "master_bias", sig, before=night, inclusive=True)
                if row is not None:
                    job.bias_key, job.bias_file = row.key, registry.file_of(row)
                    job.bias_hash = row.content_hash
        prev = _previous_verified(registry, job)
        if prev is not None:
            job.previous_key, job.previous_file = prev.key, registry.file_of(prev)
            job.previous_hash = prev.content_hash
        job.assess_key = job_key(
            "assess", [job.key, job.bias_key or "", job.previous_key or ""], verify_params,
            f"{ALGORITHM_VERSION}/{ASSESSMENT_VERSION}",
        )  # fmt: skip
        row = registry.get(job.key)
        job.output_hash = row.content_hash if row is not None else None
        job.cached = (
            row is not None
            and row.content_hash is not None  # verified whenever it is read
            and job.output.exists()
            and row.status != MasterStatus.QUARANTINED
            and bool(row.record)
            and row.record.get("assess_key") == job.assess_key
        )
        job.row = row if job.cached else None
    return jobs


def _usable_rows(registry: Registry, kind: str, sig: str) -> list[ArtifactRow]:
    rows = registry.artifacts(
        kind=kind, config_signature=sig, status=[MasterStatus.VERIFIED, MasterStatus.LOW_CONFIDENCE]
    )
    return [r for r in rows if r.path and (registry.workdir / r.path).exists() and r.record]


def _latest(
    registry: Registry, kind: str, sig: str, *, before: str, inclusive: bool = False
) -> ArtifactRow | None:
    rows = [
        r for r in _usable_rows(registry, kind, sig)
        if r.night is not None and (r.night < before or (inclusive and r.night == before))
    ]  # fmt: skip
    return max(rows, key=lambda r: (r.night, r.key)) if rows else None


def _previous_verified(registry: Registry, job: MasterJob) -> ArtifactRow | None:
    """The verified master of the same kind and configuration from the latest earlier night,
    closest in exposure (fixed-pattern stability is judged against it)."""
    rows = [
        r for r in _usable_rows(registry, job.kind, job.fset.config_signature)
        if r.status == MasterStatus.VERIFIED and r.night is not None and r.night < job.fset.night
    ]  # fmt: skip
    if not rows:
        return None
    latest = max(r.night for r in rows)
    rows = [r for r in rows if r.night == latest]

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


def known_masters(
    registry: Registry,
    signatures: Iterable[str],
    pending: Sequence[MasterJob] = (),
) -> list[_Known]:
    """Masters of these configurations: registered ones (this and earlier runs) + pending jobs."""
    wanted = set(signatures)
    known: dict[str, _Known] = {}
    for kind in MASTER_KINDS.values():
        for row in registry.artifacts(kind=kind):
            if row.config_signature not in wanted or not row.record or "meta" not in row.record:
                continue
            path = registry.file_of(row)
            if path is None or not path.exists():
                continue
            known[row.key] = _Known(row.key, kind, master_meta_from_dict(row.record["meta"]),
                                    path, MasterStatus(row.status), row.confidence or 0.0,
                                    row.content_hash)  # fmt: skip
    for job in pending:
        if job.key not in known and job.fset.config_signature in wanted:
            known[job.key] = _Known(job.key, job.kind, provisional_meta(job.fset), job.output,
                                    MasterStatus.VERIFIED, 1.0)  # fmt: skip
    return sorted(known.values(), key=lambda k: k.key)
