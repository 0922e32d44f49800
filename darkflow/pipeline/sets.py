"""Qualified frame sets: which darks and biases combine into one master.

A frame set is darks (or biases) of one configuration signature, one night, one exposure (within
``matching.exptime_rel_tol``) and one temperature bin (set-point, or measured-temperature clusters
no wider than the temperature gate). Its *identity* (kind, signature, night, exposure, temperature)
names the master it makes across reruns: a new dark in the set makes a new master (a new key) that
supersedes the old one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from darkflow.config import Config
from darkflow.io.hashing import job_key, short
from darkflow.model import Eligibility, FrameMeta, FrameType, MasterMeta
from darkflow.thermal import thermal_groups

__all__ = [
    "BIAS_LEVEL_JUMP",
    "SYSTEMIC_REASONS",
    "FrameSet",
    "LevelJump",
    "accepted_isolated",
    "build_frame_sets",
    "find_level_jump",
    "provisional_meta",
    "split_level_jumps",
]

BIAS_LEVEL_JUMP = "bias_level_jump"  # note of a bias set whose frame levels jump


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
    notes: tuple[str, ...] = ()  # findings about the set itself (e.g. a bias level jump)

    @property
    def paths(self) -> tuple[str, ...]:
        """The paths of the set's frames."""
        return tuple(m.path for m in self.metas)

    @property
    def identity(self) -> str:
        """Stable name of the set across reruns (not of its contents): a dark added at the end
        keeps it, so the new master supersedes the old one."""
        temp = "na" if self.set_temp_c is None else f"{self.set_temp_c:g}"
        times = [m.date_obs_utc for m in self.metas if m.date_obs_utc is not None]
        start = min(times).strftime("%Y%m%dT%H%M") if times else "na"
        return short(
            job_key(
                "frame-set",
                [],
                {
                    "kind": str(self.kind),
                    "sig": self.config_signature,
                    "night": self.night,
                    "exptime": round(self.exptime_s, 4),
                    "temp": temp,
                    "start": start,
                },
                "",
            )
        )

    @property
    def label(self) -> str:
        """A one-line description of the set for logs and reports."""
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

    Biases form one set per configuration, night and set-point (a level jump inside a set is
    found on the pixels: :func:`split_level_jumps`, called by the planner).
    Exposures within ``matching.exptime_rel_tol`` form one set; darks are then split into thermal
    groups (:func:`darkflow.thermal.thermal_groups`: time gaps over
    ``matching.thermal_group_gap_h``, set-point changes, and drift beyond the temperature gate),
    so dusk and dawn darks at one set-point become two masters that matching can interpolate.
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
            if kind == FrameType.BIAS:
                # one bias master per set-point: the bias level moves with the sensor's
                # temperature (a -10 and a -5 °C set merged would fit neither)
                by_set: dict[float | None, list[FrameMeta]] = {}
                for m in members:
                    key = None if m.set_temp_c is None else round(m.set_temp_c * 2) / 2
                    by_set.setdefault(key, []).append(m)
                parts = [
                    sorted(v, key=_time_key)
                    for _, v in sorted(by_set.items(), key=lambda kv: (kv[0] is None, kv[0] or 0.0))
                ]
            else:
                # time gaps, set-point changes and drift split a dark series into thermal groups
                parts = thermal_groups(
                    members, gate_c=gate, max_gap_h=config.matching.thermal_group_gap_h
                )
            for part in parts:
                tmembers = sorted(part, key=lambda m: m.path)
                exptime = float(np.median([m.exptime_s or 0.0 for m in tmembers]))
                sets.append(
                    FrameSet(
                        kind=kind,
                        config_signature=signature,
                        instrument_slug=tmembers[0].config.instrument_slug,
                        night=night,
                        exptime_s=exptime,
                        set_temp_c=_temperature_key(tmembers),
                        metas=tuple(tmembers),
                    )
                )
    sets.sort(key=lambda s: (s.config_signature, s.night, s.kind, s.exptime_s, s.set_temp_c or 0.0))
    return sets


def _cluster_relative(values: list[float], rel_tol: float) -> list[int]:
    logs = [math.log(v) if v > 0 else -1e9 for v in values]
    return _cluster(logs, math.log1p(rel_tol) * 2)


def _time_key(meta: FrameMeta) -> tuple:
    return (meta.date_obs_utc is None, meta.date_obs_utc or 0, meta.path)


def _temperature_key(metas: Sequence[FrameMeta]) -> float | None:
    """The set's temperature label: its set-point (0.5 °C bins), else its median reading."""
    sets = [m.set_temp_c for m in metas if m.set_temp_c is not None]
    if sets:
        return round(float(np.median(sets)) * 2) / 2
    temps = [m.ccd_temp_c for m in metas if m.ccd_temp_c is not None]
    return round(float(np.median(temps)), 1) if temps else None


@dataclass(frozen=True)
class LevelJump:
    """The most significant single step in a series of frame levels (time order).

    ``at``: the first frame after the step; ``delta`` the difference of the two parts' mean
    levels (ADU); ``z`` in units of its standard error from the frame-to-frame jitter;
    ``threshold`` the value ``z`` must exceed (the false-alarm probability over the ``n - 1``
    possible positions, Student t with the jitter's degrees of freedom); ``material`` the
    smallest level error that matters (the per-pixel noise of the set's master,
    ``sigma / sqrt(n)``), compared with the error the jump leaves in a master of the whole set
    for the frames of its larger part, ``|delta| * n_smaller / n``.
    """

    at: int
    n: int
    delta: float
    z: float
    threshold: float
    jitter: float
    material: float

    @property
    def mixing_error(self) -> float:
        """The level error a master of both sides would carry: the jump times the smaller side's share."""
        return abs(self.delta) * min(self.at, self.n - self.at) / self.n

    @property
    def significant(self) -> bool:
        """Whether the jump is both beyond the false-alarm threshold and large enough to matter."""
        return self.z > self.threshold and self.mixing_error > self.material

    def to_dict(self) -> dict[str, Any]:
        """The jump's numbers, rounded, for the set's notes."""
        return {
            k: round(float(getattr(self, k)), 4)
            for k in ("at", "n", "delta", "z", "threshold", "jitter", "material")
        }


def find_level_jump(
    levels: Sequence[float], frame_noise: float, *, false_alarm: float
) -> LevelJump | None:
    """The best single split of a level series and whether it is a real, material jump.

    Frame levels scatter by a jitter ``s`` (read-out electronics, not the pixel noise, which
    averages out over a frame): ``s`` is estimated from consecutive differences, the largest
    left out (it holds the step, if any): ``s² = mean(d²) / 2``, ``n - 2`` degrees of freedom.
    For each split ``k`` the two parts' means differ by ``delta_k`` with standard error
    ``s sqrt(1/k + 1/(n-k))``; the largest ``z`` is compared with the Student-t quantile of
    ``false_alarm / (n - 1)`` (two-sided, Bonferroni over the positions). A step is material
    when the error it leaves in a master of the whole set, for the frames of its larger part
    (``|delta| * n_smaller / n``), exceeds the per-pixel noise ``frame_noise / sqrt(n)`` of
    that master: below it, mixing the two levels changes no pixel more than the master's own
    noise does, and a split would leave each part with a noisier master (a single frame off by
    a few ADU in ten is no jump). ``None`` with fewer than 4 frames.
    """
    from darkflow.stats._dist import t_isf  # scipy.stats' t.isf, without its import

    y = np.asarray(levels, dtype=float)
    n = y.size
    if n < 4 or not np.all(np.isfinite(y)):
        return None
    d = np.diff(y)
    keep = np.ones(d.size, bool)
    keep[int(np.argmax(np.abs(d)))] = False
    jitter = math.sqrt(float(np.mean(np.square(d[keep]))) / 2.0) if keep.any() else 0.0
    jitter = max(jitter, 1e-6)
    best = None
    for k in range(1, n):
        delta = float(np.mean(y[k:]) - np.mean(y[:k]))
        z = abs(delta) / (jitter * math.sqrt(1.0 / k + 1.0 / (n - k)))
        if best is None or z > best[1]:
            best = (k, z, delta)
    k, z, delta = best
    threshold = t_isf(false_alarm / (2.0 * (n - 1)), n - 2)
    material = frame_noise / math.sqrt(n) if frame_noise > 0 else 0.0
    return LevelJump(k, n, delta, z, threshold, jitter, material)


def split_level_jumps(
    fset: FrameSet,
    levels: Sequence[float],
    frame_noise: float,
    *,
    false_alarm: float,
    min_part: int = 2,
    depth: int = 3,
) -> list[FrameSet]:
    """Split a bias set at significant, material level jumps (:func:`find_level_jump`).

    ``levels`` are the frames' levels in the order of ``fset.metas``; the series is taken in
    time order. Each part (at least ``min_part`` frames) becomes its own set with the note
    :data:`BIAS_LEVEL_JUMP`, and is searched again (``depth`` times at most); a jump that would
    leave a part smaller than ``min_part`` cannot be split: the set is kept whole, with the
    note.
    """
    order = sorted(range(len(fset.metas)), key=lambda i: (_time_key(fset.metas[i]), i))
    metas = [fset.metas[i] for i in order]
    ys = [float(levels[i]) for i in order]
    jump = find_level_jump(ys, frame_noise, false_alarm=false_alarm)
    if jump is None or not jump.significant:
        return [fset]
    note = tuple(dict.fromkeys((*fset.notes, BIAS_LEVEL_JUMP)))
    if min(jump.at, len(metas) - jump.at) < min_part or depth <= 0:
        return [replace(fset, notes=note)]
    out = []
    for part, part_levels in ((metas[: jump.at], ys[: jump.at]), (metas[jump.at :], ys[jump.at :])):
        sub = replace(fset, metas=tuple(sorted(part, key=lambda m: m.path)), notes=note)
        by_path = dict(zip((m.path for m in part), part_levels, strict=True))
        out.extend(
            split_level_jumps(
                sub,
                [by_path[m.path] for m in sub.metas],
                frame_noise,
                false_alarm=false_alarm,
                min_part=min_part,
                depth=depth - 1,
            )
        )
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


def provisional_meta(fset: FrameSet) -> MasterMeta:
    """The master's metadata as the combine will derive it, computed from headers alone.

    Used to plan matches before a master is built; replaced by the built master's own meta.
    """
    # the combine's own builder, so a plan and its master agree; imported here because the
    # master package loads numba, which planning from headers alone does not need
    from darkflow.master._frames import master_meta

    return master_meta(fset.metas, fset.kind)
