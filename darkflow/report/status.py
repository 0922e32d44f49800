"""``darkflow status W``: what the registry of a work directory holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from darkflow.exceptions import DarkflowError
from darkflow.model import ArtifactKind
from darkflow.registry import Registry

__all__ = ["format_status", "registry_status"]


def registry_status(workdir: str | Path) -> dict[str, Any]:
    """The registry's counts by kind and status and its latest runs; a work directory without a
    registry raises :class:`DarkflowError`."""
    workdir = Path(workdir)
    if not (workdir / "registry.sqlite").exists():
        raise DarkflowError(
            f"{workdir} has no registry (run `darkflow run INPUT --workdir {workdir}`)"
        )
    with Registry(workdir) as reg:
        reg.mark_dead_runs()  # a run killed (kill -9, power loss) is not running forever
        summary = reg.summary()
        last = summary["runs"][0] if summary["runs"] else None
        jobs = reg.jobs(last["run_id"]) if last else []
    masters: dict[str, int] = {}
    lights: dict[str, int] = {}
    for row in summary["artifacts"]:
        target = lights if row["kind"] == ArtifactKind.CALIBRATED_LIGHT else masters
        key = (
            row["status"]
            if row["kind"] == ArtifactKind.CALIBRATED_LIGHT
            else f"{row['kind']}:{row['status']}"
        )
        target[key] = target.get(key, 0) + row["n"]
    last_jobs = {
        "total": len(jobs),
        "cache_hits": sum(j["cache_hit"] for j in jobs),
        "seconds": round(sum(j["duration_s"] or 0 for j in jobs), 3),
        "failed": sum(j["failures"] for j in jobs),
        "by_outcome": {},
    }
    for j in jobs:
        key = f"{j['kind']}:{j['outcome']}"
        last_jobs["by_outcome"][key] = last_jobs["by_outcome"].get(key, 0) + 1
    return {
        "workdir": str(workdir),
        "masters": masters,
        "lights": lights,
        "last_run_lights": _frame_report_counts(workdir),
        "jobs_all_runs": summary["jobs"],
        "cache_hit_rate": summary["cache_hit_rate"],
        "last_run": last,
        "last_run_jobs": last_jobs,
        "runs": summary["runs"],
    }


def _frame_report_counts(workdir: Path) -> dict[str, int]:
    """Lights of the latest run by status, from its frame report: the registry holds only the
    lights that were calibrated (a light quarantined before subtraction has no artifact)."""
    import csv

    counts: dict[str, int] = {}
    try:
        with open(workdir / "frame_report.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                counts[row["status"]] = counts.get(row["status"], 0) + 1
    except (OSError, KeyError, csv.Error):
        return {}
    return counts


def _unchanged_since(run: dict[str, Any]) -> str | None:
    """The run whose results a run reused because nothing had changed (``None``: it ran)."""
    try:
        return json.loads(run.get("summary") or "{}").get("unchanged_since")
    except (TypeError, ValueError, AttributeError):
        return None


def format_status(workdir: str | Path, *, fmt: str = "table") -> str:
    """:func:`registry_status` as ``table`` text or ``json`` (``darkflow status``)."""
    status = registry_status(workdir)
    if fmt == "json":
        return json.dumps(status, indent=1, default=str) + "\n"
    lines = [f"darkflow status: {status['workdir']}"]
    lines.append(
        "  masters: "
        + (", ".join(f"{n} {k}" for k, n in sorted(status["masters"].items())) or "none")
    )
    lines.append(
        "  lights:  "
        + (", ".join(f"{n} {k}" for k, n in sorted(status["lights"].items())) or "none")
        + " (registered artifacts)"
    )
    if status["last_run_lights"]:
        lines.append(
            "  last run's lights (frame_report.csv): "
            + ", ".join(f"{n} {k}" for k, n in sorted(status["last_run_lights"].items()))
        )
    rate = status["cache_hit_rate"]
    lines.append(
        f"  jobs:    {status['jobs_all_runs']} recorded over all runs, cache hit rate "
        + ("n/a" if rate is None else f"{100 * rate:.0f}%")
    )
    last = status["last_run"]
    if last:
        lj = status["last_run_jobs"]
        since = _unchanged_since(last)
        lines.append(
            f"  last run {last['run_id']} ({last['outcome']}): nothing changed since run {since}"
            if since
            else f"  last run {last['run_id']} ({last['outcome']}): {lj['total']} jobs, "
            f"{lj['cache_hits']} cached, {lj['failed']} failed, {lj['seconds']:.1f}s in jobs"
        )
        for key, n in sorted(lj["by_outcome"].items()):
            lines.append(f"    {key:<34} {n}")
        lines.append("  recent runs:")
        for run in status["runs"]:
            lines.append(f"    {run['run_id']}  {run['outcome']:<8} started {run['started_at']}")
    return "\n".join(lines) + "\n"
