"""A change against the previous night's master, refereed by a third master.

A master's fixed-pattern stability is judged against the previous verified master of its
configuration (:func:`darkflow.verify._stability.previous_gates`). When the two differ, the
gates say *that* they differ, not *which* of them changed: a previous master taken in another
readout mode, or warmer, makes tonight's good master fail. The master flagged that way is
compared once more, after all masters of the run are built, with a third master of its
configuration and kind from another night (comparable: the same gates measure the pair) and
so is the previous one:

- tonight's master agrees with the third: it gets its verdict back without the gates it failed
  against the previous one (its other gates are unchanged). A change is a verdict on tonight's
  master only when it differs from the other nights' masters, not from one of them;
- and the previous master does not agree with the third: the previous master is the odd one
  out, marked ``low_confidence`` with the reasons it failed on against the third (when both
  agree with the third, the failing pair's comparison was neither master's fault: nothing is
  marked);
- tonight's master differs from the third too, or nothing is comparable: the verdict stays.

Each comparison is the stability gates' own, with their false-alarm probability ``p`` per gate;
a clean previous master is marked only when tonight's pair failed by chance and the third pair
fails by chance too (about ``p`` squared per gate). A faulty master keeps its verdict unless it
passes against the third, which the gates' power makes unlikely for the faults they were
failing on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from darkflow.model import MasterStatus
from darkflow.verify._set import TOO_FEW_FRAMES

__all__ = ["STABILITY_GATES", "referee_previous"]

#: The gates of :func:`darkflow.verify._stability.previous_gates` (the metrics' names).
STABILITY_GATES = frozenset(
    {
        "dark_scale_change",
        "level_shift_sigma",
        "low_freq_change_sigma",
        "column_change_ratio",
        "hot_overlap",
    }
)

log = logging.getLogger(__name__)


def _failing(metrics: list[dict[str, Any]]) -> list[str]:
    return [m["reason"] for m in metrics if m.get("status") == "fail" and m.get("reason")]


def _compare(master, other, bias, other_bias, config, level_known: bool):
    """The stability gates of ``master`` against ``other`` (dicts), or ``None`` when the pair
    is not comparable."""
    from darkflow.verify._fpn import row_window
    from darkflow.verify._stability import previous_gates

    rows = row_window(master.shape, config.verify.max_analysis_pixels)
    metrics, _ = previous_gates(
        master,
        other,
        bias,
        rows,
        config.verify,
        previous_bias=other_bias,
        level_known=level_known,
        dark_law=config.matching,
    )
    out = [m.to_dict() for m in metrics]
    scale = next((m for m in out if m["name"] == "dark_scale_change"), None)
    if scale is None or scale["status"] == "not_measured":
        return None
    return out


def referee_previous(jobs, registry, config, *, failed: Mapping[str, Any] = ()) -> int:
    """Referee each master that failed a stability gate against its previous master (module
    docstring). Returns how many verdicts moved."""
    from darkflow.pipeline.crosscheck import load_masters

    cache: dict[str, Any] = {}

    def get(key: str | None):
        """A master (or bias) by registry key; ``None`` when there is none or it is unreadable."""
        loaded = load_masters(registry, (key,), cache, f"referee: {key}") if key else None
        return loaded[0] if loaded else None

    by_key = {j.key: j for j in jobs}
    moved = 0
    done: set[str] = set()
    for job in sorted(jobs, key=lambda j: (j.fset.night or "", j.fset.exptime_s or 0.0, j.key)):
        if job.key in failed or not job.previous_key:
            continue
        row = registry.get(job.key)
        if row is None or row.status != MasterStatus.LOW_CONFIDENCE:
            continue
        record = dict(row.record or {})
        if record.get("cross_check"):  # marked against another master of tonight: it stays
            continue
        metrics = list((record.get("assessment") or {}).get("metrics") or [])
        # only a verdict of the stability gates alone: one of them failed, and every reason of
        # the master comes from its gates (a set's own note, a bias level jump, or a mark of
        # another check keeps the master as it is)
        if not _failing([m for m in metrics if m.get("name") in STABILITY_GATES]):
            continue
        from_gates = {m.get("reason") for m in metrics} | {TOO_FEW_FRAMES}
        if any(r not in from_gates for r in record.get("reasons", [])):
            continue
        prev_row = registry.get(job.previous_key)
        if prev_row is None or prev_row.status != MasterStatus.VERIFIED:
            continue
        thirds = [
            j
            for j in jobs
            if j.key not in (job.key, job.previous_key)
            and j.key not in failed
            and j.fset.kind == job.fset.kind
            and j.fset.config_signature == job.fset.config_signature
            and j.fset.night not in (job.fset.night, prev_row.night)
            and (r := registry.get(j.key)) is not None
            and r.status == MasterStatus.VERIFIED
        ]
        if not thirds:
            continue
        master, previous = get(job.key), get(job.previous_key)
        if master is None or previous is None:
            continue
        bias = get(job.bias_key)
        prev_bias = get(job.previous_bias_key) if job.previous_bias_key else None
        # the third closest in exposure, then in night, then by key: one referee, fixed
        t_m = max(job.fset.exptime_s or 0.0, 1e-6)
        thirds.sort(
            key=lambda j: (
                abs(math.log(max(j.fset.exptime_s or 0.0, 1e-6) / t_m)),
                j.fset.night,
                j.key,
            )
        )
        for third in thirds:
            other = get(third.key)
            if other is None or other.shape != master.shape or previous.shape != master.shape:
                continue
            t_bias = get(third.bias_key)
            known = bool(job.bias_own_night and third.bias_own_night and bias is not None)
            vs_third = _compare(master, other, bias, t_bias, config, known)
            if vs_third is None:
                continue  # not comparable: the next third
            names = {m["name"] for m in vs_third}
            own_fail = _failing([m for m in metrics if m.get("name") not in names])
            if _failing(vs_third) or own_fail:
                break  # the referee does not move the verdict
            prev_known = bool(third.bias_own_night and prev_bias is not None and t_bias is not None)
            prev_vs_third = _compare(previous, other, prev_bias, t_bias, config, prev_known)
            # tonight's master agrees with the third: its verdict back; the previous master is
            # marked when it differs from the third (once), else the pair's failure was neither's
            mark = (
                prev_vs_third is not None
                and bool(_failing(prev_vs_third))
                and job.previous_key not in done
            )
            _move(
                registry, job, row, record, metrics, vs_third, prev_row, prev_vs_third, third, mark
            )
            if mark:
                done.add(job.previous_key)
            moved += 1
            for j in (job, by_key.get(job.previous_key)):
                if j is not None:
                    j.row = registry.get(j.key)
            break
    return moved


def _move(
    registry, job, row, record, metrics, vs_third, prev_row, prev_vs_third, third, mark: bool
) -> None:
    """Tonight's master gets its verdict back; the previous one is marked when ``mark``."""
    names = {m["name"] for m in vs_third}
    moved_reasons = set(_failing([m for m in metrics if m.get("name") in names]))
    kept = [m for m in metrics if m.get("name") not in names] + vs_third
    reasons = [r for r in record.get("reasons", []) if r not in moved_reasons]
    record["reasons"] = reasons
    record["referee"] = {
        "previous": prev_row.id,
        "third": third.master_id,
        "previous_failed": _failing(prev_vs_third or []),
        "previous_comparable": prev_vs_third is not None,
        "against_previous": [m for m in metrics if m.get("name") in names],
    }
    assessment = dict(record.get("assessment") or {})
    assessment["metrics"] = kept
    confs = [m["confidence"] for m in kept if m.get("confidence") is not None]
    confidence = round(min(confs) if confs else 1.0, 4)
    assessment.update(status=str(MasterStatus.VERIFIED), confidence=confidence, reasons=reasons)
    record["assessment"] = assessment
    registry.refresh(job.key, record=record)
    why = "differs from" if mark else "agrees with"
    registry.set_status(
        job.key,
        str(MasterStatus.VERIFIED),
        reason=f"agrees with a third master ({third.master_id}); previous {prev_row.id} {why} it",
        confidence=confidence,
    )
    if not mark:
        return

    prev_record = dict(prev_row.record or {})
    codes = _failing(prev_vs_third)
    prev_record["reasons"] = list(dict.fromkeys([*codes, *prev_record.get("reasons", [])]))
    prev_record["referee"] = {"flagged_by": job.master_id, "third": third.master_id}
    confs = [m["confidence"] for m in prev_vs_third if m.get("status") == "fail"]
    prev_conf = min([prev_row.confidence or 1.0, *[c for c in confs if c is not None]])
    registry.refresh(prev_row.key, record=prev_record)
    registry.set_status(
        prev_row.key,
        str(MasterStatus.LOW_CONFIDENCE),
        reason=f"{codes[0]}: differs from {job.master_id} and {third.master_id}",
        confidence=round(prev_conf, 4),
    )
