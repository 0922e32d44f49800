"""``darkflow quarantine W``: the queue of lights and masters that could not be calibrated well.

Reads what the runs wrote into a work directory (every night's ``frame_report.csv``,
``masters.csv`` and ``decisions.jsonl``, see :class:`darkflow.results.Workdir`) and gathers:

* the quarantined lights (optionally the degraded ones too) of every night, with their reasons
  and the most likely cause (:func:`darkflow.triage.rank_causes`);
* the top causes over the queue, and one triage checklist per reason code
  (:func:`darkflow.triage.triage`);
* the acquisition advisories of the unmatched lights (which darks to take), merged per
  configuration, exposure and temperature (:func:`darkflow.matching.merge_advisories`);
* the masters that are not verified (``low_confidence`` or ``quarantined``) with their reasons.

Nothing is modified; the queue is a view of the work directory.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from darkflow.matching import merge_advisories
from darkflow.model import LightStatus, MasterStatus
from darkflow.results import Workdir
from darkflow.triage import Cause, Finding, Severity, rank_causes, triage

__all__ = ["QUEUE_COLUMNS", "QuarantineQueue", "format_queue", "quarantine_queue"]

#: Columns of ``darkflow quarantine W --format csv`` (one row per light in the queue).
QUEUE_COLUMNS = [
    "night", "session", "path", "status", "confidence", "reasons", "top_cause",
    "instrument", "config_signature", "exptime_s", "ccd_temp_c", "date_obs_utc", "advisory",
]  # fmt: skip
_MASTER_COLUMNS = [
    "night", "master_id", "kind", "status", "confidence", "reasons", "top_cause",
    "instrument", "config_signature", "exptime_s", "temp_c", "n_frames", "path",
]  # fmt: skip


@dataclass
class QuarantineQueue:
    """What a work directory could not calibrate well, and what to do about it."""

    workdir: Path
    lights: pd.DataFrame  # QUEUE_COLUMNS
    masters: pd.DataFrame  # masters not verified
    findings: list[Finding] = field(default_factory=list)
    causes: list[tuple[Cause, int]] = field(default_factory=list)  # cause -> lights
    advisories: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.lights.empty and self.masters.empty

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return json.loads(df.to_json(orient="records"))

        return {
            "workdir": str(self.workdir),
            "lights": records(self.lights),
            "masters": records(self.masters),
            "top_causes": [
                {"cause": str(c), "description": c.description, "lights": n} for c, n in self.causes
            ],
            "checklist": [
                {
                    "code": f.code,
                    "severity": str(f.severity),
                    "description": f.description,
                    "count": f.count,
                    "likely_causes": [str(c) for c in f.causes],
                    "checklist": list(f.checklist),
                }
                for f in self.findings
            ],
            "advisories": self.advisories,
        }


def _split(reasons: Any) -> list[str]:
    if not isinstance(reasons, str):
        return []
    return [r for r in reasons.split(";") if r]


def _top_cause(reasons: Any) -> str:
    ranked = [c for c, _ in rank_causes(_split(reasons)) if c != Cause.UNKNOWN]
    return str(ranked[0]) if ranked else ""


def quarantine_queue(
    workdir: str | Path, *, night: str | None = None, include_degraded: bool = False
) -> QuarantineQueue:
    """Gather the queue of one night (or of every night the work directory has calibrated).

    Raises
    ------
    DarkflowError
        ``workdir`` is not a darkflow work directory, or ``night`` is not one of its nights.
    """
    from darkflow.exceptions import DarkflowError

    wd = Workdir(workdir)
    nights = wd.nights()
    if night is not None:
        if night not in nights:
            raise DarkflowError(f"no night {night!r} in {wd.path}; have {nights}")
        nights = [night]
    wanted = {str(LightStatus.QUARANTINED)}
    if include_degraded:
        wanted.add(str(LightStatus.DEGRADED))
    lights, masters, advisories = [], [], []
    for n in nights:
        fr = wd.lights(night=n)
        queued = fr[fr["status"].astype(str).isin(wanted)].copy()
        by_light = {}
        for d in wd.decisions(n):
            if d.get("advisory"):
                by_light[d.get("light_path")] = d["advisory"]
        queued["advisory"] = [by_light.get(p, {}).get("text", "") for p in queued["path"]]
        queued["top_cause"] = [_top_cause(r) for r in queued["reasons"]]
        advisories += [by_light[p] for p in queued["path"] if p in by_light]
        lights.append(queued.reindex(columns=QUEUE_COLUMNS))
        ms = wd.masters_of(n)
        bad = ms[ms["status"].astype(str) != str(MasterStatus.VERIFIED)].copy()
        if "night" not in bad or bad["night"].isna().all():
            bad["night"] = n
        bad["top_cause"] = [_top_cause(r) for r in bad.get("reasons", pd.Series(dtype=object))]
        masters.append(bad.reindex(columns=_MASTER_COLUMNS))
    light_df = _concat(lights, QUEUE_COLUMNS).sort_values(["night", "session", "path"])
    master_df = _concat(masters, _MASTER_COLUMNS).drop_duplicates("master_id")
    reasons = [*light_df["reasons"].map(_split), *master_df["reasons"].map(_split)]
    findings = triage(code for rs in reasons for code in rs)
    causes = Counter(light_df["top_cause"][light_df["top_cause"] != ""])
    return QuarantineQueue(
        workdir=wd.path,
        lights=light_df.reset_index(drop=True),
        masters=master_df.reset_index(drop=True),
        findings=findings,
        causes=[(Cause(c), k) for c, k in causes.most_common()],
        advisories=merge_advisories(advisories),
    )


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def format_queue(queue: QuarantineQueue, *, fmt: str = "table") -> str:
    """The queue as ``table`` (for people), ``json`` (everything) or ``csv`` (the lights)."""
    if fmt == "json":
        return json.dumps(queue.to_dict(), indent=1, default=str) + "\n"
    if fmt == "csv":
        return queue.lights.to_csv(index=False, lineterminator="\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r} (table, json or csv)")
    lights, masters = queue.lights, queue.masters
    out = [f"darkflow quarantine: {queue.workdir}"]
    if queue.empty:
        out.append("  the queue is empty: every light was calibrated and every master verified")
        return "\n".join(out) + "\n"
    counts = lights["status"].value_counts()
    parts = [f"{int(counts[s])} {s}" for s in (LightStatus.QUARANTINED, LightStatus.DEGRADED)
             if str(s) in counts]  # fmt: skip
    out.append(f"  lights:  {', '.join(parts) or 'none'} in {lights['night'].nunique()} night(s)")
    out.append(f"  masters: {len(masters)} not verified")
    if queue.causes:
        out += ["", "Top causes (lights):"]
        out += [f"  {n:>4}  {c}: {c.description}" for c, n in queue.causes]
    if len(lights):
        out += ["", "Lights:"]
        for (night, session), group in lights.groupby(["night", "session"], dropna=False):
            out.append(f"  {night} / {session}")
            for row in group.itertuples():
                name = Path(str(row.path)).name
                cause = f"  [{row.top_cause}]" if row.top_cause else ""
                out.append(f"    {row.status:<11} {name}: {row.reasons}{cause}")
    if len(masters):
        out += ["", "Masters not verified:"]
        for row in masters.itertuples():
            conf = "" if pd.isna(row.confidence) else f" conf {float(row.confidence):.2f}"
            out.append(f"  {row.master_id} {row.kind} {row.status}{conf}: {row.reasons}")
    if queue.advisories:
        out += ["", "Acquisition advisories (darks to take):"]
        out += [f"  - {a['text']} ({a['n_lights']} light(s))" for a in queue.advisories]
    actionable = [f for f in queue.findings if f.severity != Severity.INFO]
    if actionable:
        out += ["", "Triage checklist:"]
        for f in actionable:
            causes = ", ".join(str(c) for c in f.causes) or "-"
            out.append(f"  [{f.severity}] {f.code} x{f.count}: {f.description} (likely: {causes})")
            out += [f"      [ ] {item}" for item in f.checklist]
    return "\n".join(out) + "\n"
