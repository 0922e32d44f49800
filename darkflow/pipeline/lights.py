"""Planning the light jobs: the calibration index, thermal context, matching and job keys.

The index (per-configuration dark-current laws, amp glow, linearity, master summaries) is built
from every registered master of the lights' configurations, this night's and earlier nights'
(the registry is a dark library), and cached under a key of its inputs and of the code that
builds and pickles it, so a rerun does not read the masters again; what it measures on each
master is kept apart (:mod:`darkflow.pipeline.indexparts`), so a new night reads its own
masters only. Matching runs here, in the driver; executors only subtract.

A cached light is trusted while its output file keeps the size, mtime and inode recorded when it
was written; when any of them differs the file is hashed again, and a content mismatch makes the
light be recomputed (``darkflow verify`` re-hashes everything, whatever the file metadata says).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pickle
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from darkflow._version import ALGORITHM_VERSION
from darkflow.config import Config
from darkflow.exceptions import ArtifactCorruptError, DarkflowError
from darkflow.io.atomic import atomic_path
from darkflow.io.hashing import (
    code_fingerprint,
    exact_json,
    file_hash,
    fingerprint,
    job_key,
    short,
)
from darkflow.matching import (
    CalibrationIndex,
    LazyMaster,
    MasterEntry,
    MatchDecision,
    MatchReason,
    ModelTerm,
    build_index,
    match_light,
    mid_time,
)
from darkflow.model import ArtifactKind, FrameMeta, FrameType, MasterDark, MasterStatus
from darkflow.pipeline.indexparts import IndexParts
from darkflow.pipeline.jobs import GainSource
from darkflow.pipeline.plan import (
    BiasChoice,
    JobPlan,
    LightJob,
    MasterJob,
    _Known,
    choose_bias,
    known_masters,
    light_key,
    output_params,
    output_path,
)
from darkflow.pipeline.sets import provisional_meta
from darkflow.registry import Registry
from darkflow.thermal import ThermalProfileStore, session_context
from darkflow.triage.reasons import LightReason
from darkflow.verify import config_differences

__all__ = ["index_fingerprint", "plan_lights"]

log = logging.getLogger(__name__)


# Bump when the pickled index changes in a way its modules' sources do not show.
INDEX_CACHE_FORMAT = 2
_INDEX_MODULES = (
    "darkflow.matching",
    "darkflow.exposure",
    "darkflow.thermal",
    "darkflow.model",
)


def index_cache_version() -> str:
    """The index cache's version: its format and the code that builds and unpickles it."""
    return f"{INDEX_CACHE_FORMAT}-{code_fingerprint(*_INDEX_MODULES)}"


class _LRU:
    """Masters by id, a few at a time (build_index reads each once), verified as they are read.

    ``build_index`` leaves an unreadable master out of the index; a corrupt one is remembered in
    ``corrupt`` so the caller rebuilds it instead of caching an index without it.
    """

    def __init__(self, known: Mapping[str, _Known], size: int = 3):
        self.known, self.size = known, size
        self._items: OrderedDict[str, MasterDark] = OrderedDict()
        self.corrupt: list[ArtifactCorruptError] = []

    def __call__(self, master_id: str) -> MasterDark:
        from darkflow.master import read_master_cached

        if master_id not in self._items:
            k = self.known[master_id]
            try:
                self._items[master_id] = read_master_cached(k.path, content_hash=k.content_hash)
            except ArtifactCorruptError as err:
                self.corrupt.append(err)
                raise
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        self._items.move_to_end(master_id)
        return self._items[master_id]


def _bias_choices(known: Sequence[_Known]) -> dict[str, list[BiasChoice]]:
    """Usable master biases per configuration (every night and set-point)."""
    out: dict[str, list[BiasChoice]] = {}
    for k in known:
        if k.kind != ArtifactKind.MASTER_BIAS or k.status not in (
            MasterStatus.VERIFIED,
            MasterStatus.LOW_CONFIDENCE,
        ):
            continue
        out.setdefault(k.meta.config_signature, []).append(
            BiasChoice(
                k.key, k.path, k.night, k.meta, k.status == MasterStatus.VERIFIED, k.content_hash
            )
        )
    return out


def _read_bias(bias: BiasChoice, corrupt: list[ArtifactCorruptError]) -> MasterDark:
    """The bias's master, verified against its recorded hash (a corrupt one is remembered)."""
    from darkflow.master import read_master

    try:
        return read_master(bias.path, content_hash=bias.content_hash)
    except ArtifactCorruptError as err:
        corrupt.append(err)
        raise


def _bias_level(bias: LazyMaster) -> float | None:
    """Median level of a master bias (``None`` without a finite pixel)."""
    data = bias.get().data
    finite = data[np.isfinite(data)]
    return float(np.median(finite)) if finite.size else None


def _bias_of_master(choices: Mapping[str, Sequence[BiasChoice]], k: _Known) -> BiasChoice | None:
    m = k.meta
    return choose_bias(
        choices.get(m.config_signature, ()),
        night=k.night,
        set_temp_c=m.set_temp_c,
        temp_c=m.temp_c,
        when=mid_time(m),
    )


def index_fingerprint(index: CalibrationIndex, signature: str) -> str:
    """Exact hash of what the index knows about one configuration (laws, glow, linearity, bias):
    every digit of every number, every pixel of the glow grid."""
    return fingerprint(
        [
            index.laws.get(signature),
            index.glow.get(signature),
            index.linearity.get(signature),
            index.biases.get(signature),
        ]
    )[:16]


def _cached_index(
    darks: Sequence[_Known],
    bias_of: Mapping[str, BiasChoice | None],
    *,
    workdir: Path,
    config: Config,
    store: ThermalProfileStore,
) -> CalibrationIndex:
    """The index, each master measured against its own bias (``bias_of``: dark key -> bias),
    from ``cache/`` when it was built before with the same inputs and code. Otherwise it is
    assembled from what was measured on each master (``cache/index-parts/``, see
    :mod:`darkflow.pipeline.indexparts`): only masters measured for no earlier index are read.

    Raises
    ------
    ArtifactCorruptError
        A master read for the index is not the file the registry recorded (nothing is cached).
    """

    sigs = sorted({k.meta.config_signature for k in darks})
    laws = {s: (store.law(s).to_dict() if store.law(s) else None) for s in sigs}
    pairs = [
        f"{k.key}:{k.status}:{k.confidence}:{b.key if (b := bias_of.get(k.key)) else ''}"
        for k in darks
    ]
    key = job_key(
        "index",
        pairs,
        {
            "config": output_params(config, "matching", "scaling", "verify"),
            "stored_laws": json.loads(json.dumps(laws, default=exact_json)),
            "version": index_cache_version(),
        },
        ALGORITHM_VERSION,
    )
    path = workdir / "cache" / f"index-{short(key)}.pkl"
    if path.exists():
        try:
            with open(path, "rb") as fh:
                cached = pickle.load(fh)
        except (
            OSError,
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            ImportError,
            TypeError,
            ValueError,
        ) as err:
            log.warning("index cache %s unreadable (%s); rebuilding", path, err)
        else:
            if isinstance(cached, CalibrationIndex):
                return cached
            log.warning("index cache %s holds a %s; rebuilding", path, type(cached).__name__)

    parts = IndexParts(
        workdir / "cache" / "index-parts",
        {
            "config": output_params(config, "matching", "scaling", "verify"),
            "version": index_cache_version(),
        },
    )
    load = _LRU({short(k.key): k for k in darks})
    # a bias is read only when a part of the index measured against it is not kept: its level
    # kept under its content hash says it was read and verified with that content before
    handles: dict[str, LazyMaster] = {}
    levels: dict[str, float | None] = {}
    for b in {b.key: b for b in bias_of.values() if b is not None}.values():
        handle = LazyMaster(b.content_hash or "", partial(_read_bias, b, load.corrupt))
        try:
            levels[b.key] = parts.recall(
                "bias_level", (b.content_hash,), partial(_bias_level, handle)
            )
        except ArtifactCorruptError:
            raise
        except (DarkflowError, OSError) as err:
            log.warning("bias %s unusable: %s", short(b.key), err)
            continue
        if b.content_hash is None:  # not written yet: no key a memo could trust
            handles[b.key] = handle.get()  # type: ignore[assignment]
        else:
            handles[b.key] = handle
    master_biases: dict[str, MasterDark | LazyMaster | None] = {}
    level_sigmas: dict[str, float] = {}
    usage: dict[str, Counter] = {}
    for k in darks:
        b = bias_of.get(k.key)
        mid = short(k.key)
        master_biases[mid] = handles.get(b.key) if b is not None else None
        if b is not None and b.key in handles:
            usage.setdefault(k.meta.config_signature, Counter())[b.key] += 1
            if b.night != k.night:  # another night's bias: the level under it is unknown here
                level_sigmas[mid] = math.inf
    # the configuration's bias for matching (exposure of a bias proxy, its noise): the most used
    biases = {sig: handles[c.most_common(1)[0][0]] for sig, c in usage.items()}
    entries = [
        MasterEntry(
            master_id=short(k.key),
            meta=k.meta,
            path=os.path.relpath(k.path, workdir),
            status=k.status,
            confidence=k.confidence,
            scalable=master_biases.get(short(k.key)) is not None,
        )
        for k in darks
    ]
    index = build_index(
        entries,
        load_master=load,
        biases=biases,
        config=config,
        thermal_profiles=store,
        master_biases=master_biases,
        level_sigmas=level_sigmas,
        memo=parts,
        master_keys={short(k.key): k.content_hash for k in darks if k.content_hash},
    )
    if load.corrupt:
        raise load.corrupt[0]
    for k in darks:
        b = bias_of.get(k.key)
        if b is not None and b.key in handles:
            index.master_bias[short(k.key)] = short(b.key)
    for bkey in handles:
        if levels[bkey] is not None:
            index.bias_levels[short(bkey)] = levels[bkey]  # type: ignore[assignment]
    log.info("index parts: %d kept, %d measured", parts.hits, parts.misses)
    with atomic_path(path, fsync=False) as tmp, open(tmp, "wb") as fh:
        pickle.dump(index, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return index


class _NightOffsets:
    """The bias level of a night without its own bias, relative to the bias it borrows.

    Measured on the night's dark masters (their flat level minus that bias): the dark signal
    expected at their exposure and temperature, from masters of the configuration measured
    against their own night's bias (same exposure preferred, so a level offset of the law
    cancels; temperature-corrected with the law), leaves the level difference ``delta`` with
    the spread of those predictions and their temperature uncertainty. Without such masters,
    the scatter of the configuration's bias levels over the nights (two nights or more) stands
    in; otherwise the difference is unknown (``None``). The value carried is
    ``hypot(delta, sigma)``.
    """

    def __init__(
        self,
        index: CalibrationIndex,
        darks: Sequence[_Known],
        bias_of: Mapping[str, BiasChoice | None],
        choices,
        config: Config,
    ):
        self.index, self.darks, self.bias_of, self.config = index, darks, bias_of, config
        self.choices = choices
        self._cache: dict[tuple[str, str | None, str], tuple[float, bool] | None] = {}

    def __call__(self, sig: str, night: str | None, bias: BiasChoice) -> tuple[float, bool] | None:
        key = (sig, night, bias.key)
        if key not in self._cache:
            self._cache[key] = self._measure(sig, night, bias)
        return self._cache[key]

    def _measure(self, sig, night, bias) -> tuple[float, bool] | None:
        index, mcfg = self.index, self.config.matching
        law = index.law_for(sig, mcfg)
        bias_t = index.bias_exptime(sig)

        def summary(k):
            s = index.summaries.get(short(k.key))
            ok = s is not None and s.bias_removed and s.exptime_s - bias_t > 0
            return s if ok and math.isfinite(s.level_adu) else None

        here, refs = [], []
        for k in self.darks:
            b = self.bias_of.get(k.key)
            if k.meta.config_signature != sig or b is None or summary(k) is None:
                continue
            if k.night == night and b.key == bias.key:
                here.append(summary(k))
            elif b.night == k.night:
                refs.append(summary(k))
        if here and refs:
            deltas, sigmas = [], []
            for s in here:
                same = [
                    r
                    for r in refs
                    if abs(r.exptime_s - s.exptime_s) <= mcfg.exptime_rel_tol * s.exptime_s
                ] or refs
                preds, errs = [], []
                for r in same:
                    f = (s.exptime_s - bias_t) / (r.exptime_s - bias_t)
                    dt = (
                        (s.temp_c - r.temp_c)
                        if s.temp_c is not None and r.temp_c is not None
                        else 0.0
                    )
                    pred = r.level_adu * f * law.factor(dt)
                    sig_t = mcfg.temp_reading_sigma_c * math.sqrt(
                        1.0 / max(s.n_frames, 1) + 1.0 / max(r.n_frames, 1)
                    )
                    preds.append(pred)
                    errs.append(abs(pred) * law.factor_rel_sigma(dt, sig_t))
                pred = float(np.median(preds))
                spread = float(np.std(preds, ddof=1)) if len(preds) > 1 else 0.0
                deltas.append(s.level_adu - pred)
                sigmas.append(math.hypot(float(np.median(errs)), spread))
            delta = float(np.mean(deltas))
            sigma = math.sqrt(float(np.mean(np.square(sigmas)))) / math.sqrt(len(deltas))
            return math.hypot(delta, sigma), True
        levels: dict[str | None, float] = {}
        for b in self.choices.get(sig, ()):
            lev = index.bias_levels.get(short(b.key))
            if lev is not None and (
                b.meta.set_temp_c is None
                or bias.meta.set_temp_c is None
                or abs(b.meta.set_temp_c - bias.meta.set_temp_c) <= 0.5
            ):
                levels.setdefault(b.night, lev)
        if len(levels) >= 2:
            return float(np.std(list(levels.values()), ddof=1)), True
        return None


def plan_lights(
    rows: Sequence[dict[str, Any]],
    metas: Mapping[str, FrameMeta],
    usable: Callable[[dict[str, Any]], bool],
    registry: Registry,
    master_jobs: Sequence[MasterJob],
    *,
    workdir: Path,
    config: Config,
    store: ThermalProfileStore,
) -> tuple[JobPlan, dict[str, MatchDecision], CalibrationIndex, list[Any]]:
    """Match every usable light and key its job; returns the plan, decisions, index, contexts."""
    light_rows = [r for r in rows if r["frame_type"] in (FrameType.LIGHT, FrameType.UNKNOWN)]
    signatures = {r.get("config_signature") for r in light_rows if r.get("config_signature")}
    known = known_masters(registry, signatures, pending=[j for j in master_jobs if not j.cached])
    choices = _bias_choices(known)
    darks = [k for k in known if k.kind == ArtifactKind.MASTER_DARK]
    bias_of = {k.key: _bias_of_master(choices, k) for k in darks}
    index = _cached_index(darks, bias_of, workdir=workdir, config=config, store=store)
    offsets = _NightOffsets(index, darks, bias_of, choices, config)
    by_id = {short(k.key): k for k in known}
    plan = JobPlan(masters=list(master_jobs))
    decisions: dict[str, MatchDecision] = {}

    # thermal context per session, configuration and cooler set-point (readings of two
    # set-points are two temperature series, not one noisy one), from earlier sessions'
    # profiles only
    def context_key(r: dict[str, Any], meta: FrameMeta) -> tuple[str, str, str, str]:
        setpoint = "" if meta.set_temp_c is None else f"{meta.set_temp_c:g}"
        return (r.get("night") or "", r.get("session") or "", meta.config_signature, setpoint)

    groups: dict[tuple[str, str, str, str], list[FrameMeta]] = {}
    for r in light_rows:
        meta = metas.get(r["path"])
        if meta is not None and r["frame_type"] == FrameType.LIGHT and usable(r):
            groups.setdefault(context_key(r, meta), []).append(meta)
    contexts: dict[tuple[str, str, str, str], Any] = {}
    for key, members in sorted(groups.items()):
        times = [m.date_obs_utc for m in members if m.date_obs_utc is not None]
        view = store.earlier_than(min(times)) if times else store
        contexts[key] = session_context(members, profiles=view, config_signature=key[2])

    # tonight's dark masters of each camera: lights whose configuration differs from all of them
    # learn why (darks taken at another gain, offset or readout mode), matched or not
    tonight: dict[tuple[str, str], list[Any]] = {}
    for job in master_jobs:
        if job.fset.kind == FrameType.DARK:
            meta = provisional_meta(job.fset)
            tonight.setdefault((job.fset.night, meta.instrument), []).append(meta)
    # darks that built no master (no light of their configuration: isolated) say so too: a
    # set taken at another gain than the lights is the commonest reason nothing matches
    built = {(k, m.config_signature) for k, ms in tonight.items() for m in ms}
    for r in rows:
        dark = metas.get(r["path"]) if r["frame_type"] == FrameType.DARK else None
        if dark is None:
            continue
        key = (r.get("night") or "", dark.instrument or "unknown")
        if (key, dark.config_signature) not in built:
            built.add((key, dark.config_signature))
            tonight.setdefault(key, []).append(dark)
    plan.notes = {}
    for row in light_rows:
        meta = metas.get(row["path"])
        if meta is None or row["frame_type"] != FrameType.LIGHT:
            continue
        same_camera = tonight.get((row.get("night") or "", meta.instrument or "unknown"), [])
        differences = config_differences(
            meta, same_camera, exptime_rel_tol=config.matching.exptime_rel_tol
        )
        if differences:
            plan.notes[row["path"]] = [str(r) for r in differences]

    fingerprints: dict[str, str] = {}
    _hash_lights(registry, [r for r in light_rows if _light_of(r, metas) and usable(r)])
    for row in light_rows:
        meta = metas.get(row["path"])
        if not (_light_of(row, metas) and usable(row)):
            decision = None
            if _light_of(row, metas):
                decision = match_light(meta, index, config)  # what it would have been
                decisions[row["path"]] = decision  # recorded: its advisory says what to take
            plan.unmatched.append((row, decision))
            continue
        ctx = contexts.get(context_key(row, meta))
        decision = match_light(meta, index, config, session_context=ctx)
        conservative = False
        if not decision.matched and config.subtract.conservative_fallback:
            fallback = _conservative_decision(decision, meta, index, config)
            if fallback is not None:
                decision, conservative = fallback, True
        decisions[row["path"]] = decision
        if not decision.matched:
            if MatchReason.NO_CANDIDATE in decision.reasons and row["path"] not in plan.notes:
                same_camera = tonight.get((row.get("night") or "", meta.instrument or "unknown"))
                differences = config_differences(meta, same_camera or (), unmatched=True)
                if differences:
                    plan.notes[row["path"]] = [str(r) for r in differences]
            plan.unmatched.append((row, decision))
            continue
        recipe = tuple(
            (mid, by_id[mid].key, by_id[mid].path, str(by_id[mid].status))
            for mid in decision.master_ids
        )
        sig = meta.config_signature
        night = row.get("night") or None
        bias = choose_bias(
            choices.get(sig, ()),
            night=night,
            set_temp_c=meta.set_temp_c,
            temp_c=meta.ccd_temp_c,
            when=meta.date_obs_utc,
        )
        plan_bias = _plan_biases(decision, index, bias, bias_of, by_id, night, offsets)
        decision = plan_bias.decision
        decisions[row["path"]] = decision
        if sig not in fingerprints:
            fingerprints[sig] = index_fingerprint(index, sig)
        gain_sources = _gain_sources(meta, darks, bias_of, night, decision.master_ids)
        try:
            light_hash = registry.content_hash(meta.path)
        except OSError as err:  # deleted or made unreadable since the scan: the night goes on
            log.warning("light %s vanished after the scan: %s", meta.path, err)
            plan.notes.setdefault(row["path"], []).append(str(LightReason.INPUT_VANISHED))
            plan.unmatched.append((row, decision))
            continue
        key = light_key(
            light_hash,
            recipe=recipe,
            bias=bias.key if bias else None,
            decision=decision,
            index_fingerprint=fingerprints[sig],
            config=config,
            master_biases={mid: k for mid, (k, _, _) in plan_bias.master_biases.items()},
            bias_level_sigma_adu=plan_bias.level_sigma_adu,
            gain_sources=gain_sources,
        )
        job = LightJob(
            key,
            row,
            meta,
            decision,
            recipe,
            bias.key if bias else None,
            bias.path if bias else None,
            output_path(workdir, row, light_hash),
            index=index,
            amplitude_limit_sigma=(
                config.subtract.conservative_amplitude_sigma if conservative else None
            ),
            hashes={mid: by_id[mid].content_hash for mid in decision.master_ids},
            bias_hash=bias.content_hash if bias else None,
            master_biases=plan_bias.master_biases,
            bias_level_sigma_adu=plan_bias.level_sigma_adu,
            gain_sources=gain_sources,
        )
        job.cached_record = _cached_record(registry, key, plan.mismatches)
        plan.lights.append(job)
    return plan, decisions, index, list(contexts.items())


def _gain_sources(
    meta: FrameMeta,
    darks: Sequence[_Known],
    bias_of: Mapping[str, BiasChoice | None],
    night: str | None,
    recipe: Sequence[str],
) -> tuple[GainSource, ...]:
    """The dark masters a light without EGAIN measures its gain on: those of its recipe and the
    verified or low-confidence ones of its configuration and night (one sensor at one gain
    setting, offset, binning and readout mode), each with its own bias, in key order. None for
    a light whose header gives the gain (the masters' photon transfer is not used)."""
    from darkflow.subtract.gain import header_gain

    if header_gain(meta) is not None:
        return ()
    usable = (MasterStatus.VERIFIED, MasterStatus.LOW_CONFIDENCE)
    out = []
    for k in darks:
        if k.meta.config_signature != meta.config_signature:
            continue
        if short(k.key) not in recipe and not (k.night == night and k.status in usable):
            continue
        b = bias_of.get(k.key)
        out.append(
            GainSource(
                short(k.key),
                k.key,
                k.path,
                k.content_hash,
                str(k.status),
                None if b is None else b.key,
                None if b is None else b.path,
                None if b is None else b.content_hash,
            )
        )
    return tuple(sorted(out, key=lambda g: g.key))


@dataclass
class _PlannedBias:
    decision: MatchDecision
    master_biases: dict[
        str, tuple[str, Path]
    ]  # master id -> (bias key, file), when not the light's
    level_sigma_adu: float = 0.0


def _plan_biases(decision, index, bias, bias_of, by_id, night, offsets) -> _PlannedBias:
    """Which bias each master of the recipe keeps (its own night's, when not the light's) and
    the level uncertainty the recipe carries from biases borrowed from other nights.

    The model is ``B_L + sum_k a_k (M_k - b_k B_k)``: the light's bias enters once, each
    bias-holding master's own bias with ``-a_k``. A bias used for a frame of another night is
    off by that night's level difference (:class:`_NightOffsets`); uses of one bias for frames
    of one night share it (their coefficients add: the night's offset cancels for a plain
    interpolation), uses for different nights do not. The carried uncertainty is
    ``sqrt(sum_g (c_g sigma_g)²)`` over those (bias, night) groups.
    """
    terms = decision.terms or (
        ModelTerm(decision.master_id, 1.0, decision.exposure_factor, decision.temp_factor),
    )
    groups: dict[tuple[str, str | None], list] = {}  # (bias key, night) -> [bias, coefficient]

    def use(b: BiasChoice | None, frame_night: str | None, c: float) -> None:
        if b is None:
            return
        groups.setdefault((b.key, frame_night), [b, 0.0])[1] += c

    use(bias, night, 1.0)
    master_biases: dict[str, tuple[str, Path, str | None]] = {}
    for t in terms:
        k, entry = by_id.get(t.master_id), index.entry(t.master_id)
        if k is None or entry is None or not entry.meta.includes_bias:
            continue
        own = bias_of.get(k.key)
        if bias is not None and own is not None and own.key != bias.key:
            master_biases[t.master_id] = (own.key, own.path, own.content_hash)
        use(
            own if own is not None and bias is not None else bias,
            k.night,
            -t.weight * t.exposure_factor * t.temp_factor,
        )
    var, reasons = 0.0, []
    for (_, frame_night), (b, c) in groups.items():
        if abs(c) <= 1e-6 or b.night == frame_night:
            continue
        measured = offsets(decision.config_signature, frame_night, b)
        if measured is None:
            reasons.append(MatchReason.BIAS_LEVEL_UNKNOWN)
        else:
            var += (c * measured[0]) ** 2
            reasons.append(MatchReason.BIAS_OTHER_NIGHT)
    if reasons:
        new = tuple(dict.fromkeys((*decision.reasons, *reasons)))
        decision = dataclasses.replace(decision, reasons=new)
    return _PlannedBias(decision, master_biases, math.sqrt(var))


def _conservative_decision(
    decision: MatchDecision, meta: FrameMeta, index: CalibrationIndex, config: Config
) -> MatchDecision | None:
    """The conservative alternative: the latest verified master of the light's configuration,
    same exposure (or exposure-scaled with a bias), when the gates rejected every candidate."""
    import dataclasses

    from darkflow.matching import MatchReason
    from darkflow.model import ScaleMode
    from darkflow.triage.reasons import LightReason

    if MatchReason.NO_CANDIDATE not in decision.reasons or not meta.exptime_s:
        return None
    verified = [
        e
        for e in index.for_config(meta.config_signature)
        if e.status == MasterStatus.VERIFIED
        and e.meta.exptime_s
        and e.master_id not in index.unusable
    ]
    if not verified:
        return None
    has_bias = meta.config_signature in index.biases

    def rank(e):
        ratio = meta.exptime_s / e.meta.exptime_s
        same = abs(ratio - 1.0) <= config.matching.exptime_rel_tol
        start = e.meta.date_start_utc.isoformat() if e.meta.date_start_utc else ""
        return (same, has_bias, start, e.master_id)

    best = max(verified, key=rank)
    factor = meta.exptime_s / best.meta.exptime_s
    same = abs(factor - 1.0) <= config.matching.exptime_rel_tol
    if not same and not has_bias:
        return None
    return dataclasses.replace(
        decision,
        master_id=best.master_id,
        scale_mode=ScaleMode.NONE if same else ScaleMode.EXPOSURE,
        scale_factor=1.0 if same else factor,
        exposure_factor=1.0 if same else factor,
        temp_factor=1.0,
        terms=(),
        confidence=config.subtract.conservative_confidence,
        reasons=(*decision.reasons, LightReason.CONSERVATIVE_FALLBACK),
    )


def _cached_record(
    registry: Registry, key: str, mismatches: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The registered result of a light job, if its output is still the file it wrote.

    Trusted on (size, mtime, inode); when any differs the file is hashed: the same bytes (a
    copied work directory, a touched file) refresh the record, other bytes are a mismatch
    (appended to ``mismatches``) and the light is recomputed.
    """
    cached = registry.get(key)
    if cached is None or cached.record is None:
        return None
    rec = cached.record
    out = rec.get("output_path")
    if out is None:
        return rec
    full = registry.workdir / out  # relative to the work directory (older records: absolute)
    try:
        st = full.stat()
    except OSError:
        return None
    stat = {"output_size": st.st_size, "output_mtime_ns": st.st_mtime_ns, "output_inode": st.st_ino}
    if cached.content_hash is not None and all(rec.get(k) == v for k, v in stat.items()):
        return rec
    found = file_hash(full)
    legacy = cached.content_hash is None  # written before hashes were recorded
    if legacy and (rec.get("output_size"), rec.get("output_mtime_ns")) != (
        st.st_size,
        st.st_mtime_ns,
    ):
        return None  # nothing to check it against: recompute
    if legacy or found == cached.content_hash:
        rec = {**rec, **stat, "output_path": os.path.relpath(full, registry.workdir)}
        registry.refresh(key, content_hash=found, record=rec)
        return rec
    mismatches.append(
        {
            "kind": cached.kind,
            "id": cached.id,
            "path": cached.path,
            "expected": cached.content_hash,
            "found": found,
        }
    )
    return None


def _light_of(row: dict[str, Any], metas: Mapping[str, FrameMeta]) -> bool:
    return metas.get(row["path"]) is not None and row["frame_type"] == FrameType.LIGHT


def _hash_lights(registry: Registry, rows: Sequence[dict[str, Any]]) -> None:
    """Hash the lights to key at once (in threads): the registry then knows each light's hash
    when its job is keyed. A light that cannot be read now is left to its own lookup."""
    try:
        registry.content_hashes([r["path"] for r in rows])
    except OSError:
        pass
