"""``darkflow nightly INPUT_ROOT --workdir W``: every night under a root, calibrated and reported.

For each night directory: ``run_night`` into the shared work directory (the registry then serves
as a dark library across nights), one papermill execution of the session notebook per session,
then the night's overview notebook. Output::

    <reports>/<night>/<session>.html     one per session
    <reports>/<night>/index.html         the night overview (sessions, masters, advisories)
    <reports>/index.html                 every night with its headline status

A night that fails to calibrate, or a session notebook that fails, is recorded (the HTML says what
failed) and the run goes on with the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkflow.config import Config
from darkflow.exceptions import DarkflowError, DiskFullError, ExecutorError
from darkflow.model import slug

__all__ = ["NightlyResult", "find_nights", "run_nightly"]

log = logging.getLogger(__name__)

IGNORE_MARKER = ".darkflow-ignore"
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")


def _has_fits(directory: Path) -> bool:
    for root, dirs, files in os.walk(directory):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and not (Path(root) / d / IGNORE_MARKER).exists()
        ]
        if any(f.lower().endswith(_FITS_SUFFIXES) for f in files):
            return True
    return False


def find_nights(root: str | Path) -> list[Path]:
    """The night directories under ``root`` (its subdirectories holding FITS files), or ``root``.

    Hidden directories and directories marked with ``.darkflow-ignore`` are skipped. When ``root``
    holds FITS files itself, or no subdirectory does, ``root`` is the one night.
    """
    root = Path(root)
    if not root.is_dir():
        raise DarkflowError(f"{root} is not a directory")
    direct = any(p.is_file() and p.name.lower().endswith(_FITS_SUFFIXES) for p in root.iterdir())
    subdirs = sorted(
        d
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and not (d / IGNORE_MARKER).exists()
    )
    nights = [d for d in subdirs if _has_fits(d)]
    return [root] if direct or not nights else nights


@dataclass
class NightlyResult:
    workdir: Path
    reports: Path
    runs: dict[str, Any] = field(default_factory=dict)  # input directory -> RunResult or error
    nights: dict[str, dict[str, Any]] = field(default_factory=dict)  # night -> report summary
    index: Path | None = None

    @property
    def ok(self) -> bool:
        runs_ok = all(not isinstance(r, str) for r in self.runs.values())
        return runs_ok and all(n["reports_ok"] for n in self.nights.values())

    def summary(self) -> str:
        lines = [f"darkflow nightly: {len(self.runs)} input night(s) -> {self.workdir}"]
        for path, run in self.runs.items():
            if isinstance(run, str):
                lines.append(f"  {path}: FAILED: {run}")
            else:
                lines.append("  " + run.summary().replace("\n", "\n  "))
        for night, info in self.nights.items():
            lines.append(
                f"  {night}: {info['headline']}; {info['n_sessions']} session report(s) + overview"
                f" -> {info['index']}"
            )
        lines.append(f"reports: {self.index}")
        return "\n".join(lines)


def headline(counts: dict[str, int]) -> str:
    """One phrase for a night: what an operator should look at first."""
    total = sum(counts.values())
    if not total:
        return "no lights"
    parts = [f"{counts.get('calibrated', 0)}/{total} calibrated"]
    if counts.get("degraded"):
        parts.append(f"{counts['degraded']} degraded")
    if counts.get("quarantined"):
        parts.append(f"{counts['quarantined']} quarantined")
    return ", ".join(parts)


def run_nightly(
    root: str | Path,
    *,
    workdir: str | Path,
    reports: str | Path = "reports",
    config: Config | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    executor=None,
    workers: int = 2,
) -> NightlyResult:
    """Calibrate every night under ``root`` and write the nightly HTML reports."""
    from darkflow.pipeline import run_night
    from darkflow.report import build_reports, notebook_path, run_report, write_index
    from darkflow.results import Workdir

    workdir, reports = Path(workdir), Path(reports)
    result = NightlyResult(workdir=workdir, reports=reports)
    nights_seen: set[str] = set()
    for night_dir in find_nights(root):
        try:
            run = run_night(night_dir, workdir=workdir, config=config, progress=progress,
                            executor=executor)  # fmt: skip
        except (DiskFullError, ExecutorError):
            raise  # every later night would fail the same way: stop with this one error
        except DarkflowError as err:
            log.error("night %s failed: %s", night_dir, err)
            result.runs[str(night_dir)] = f"{type(err).__name__}: {err}"
            continue
        result.runs[str(night_dir)] = run
        nights_seen.update(s.split("/", 1)[0] for s in run.sessions)

    wd = Workdir(workdir)
    overview = notebook_path("night_overview.ipynb")
    for night in sorted(nights_seen):
        sessions = build_reports(workdir, output=reports, nights=[night], workers=workers,
                                 index=False)  # fmt: skip
        html = reports / night / "index.html"
        over = run_report(
            overview,
            html,
            {"workdir": str(workdir.resolve()), "night": night, "output": str(html.resolve())},
            title=f"darkflow · {night}",
            keep_notebook=workdir / "reports" / night / "index.ipynb",
        )
        counts = wd.status_counts(night=night)
        result.nights[night] = {
            "headline": headline(counts),
            "counts": counts,
            "n_sessions": len(sessions.sessions),
            "index": html,
            "reports_ok": over.ok and all(s["ok"] for s in sessions.sessions),
            "failed": [s["session"] for s in sessions.sessions if not s["ok"]]
            + ([] if over.ok else ["overview"]),
        }

    rows = []
    for night in Workdir(workdir).nights():
        counts = wd.status_counts(night=night)
        info = result.nights.get(night)
        exists = (reports / night / "index.html").exists()
        rows.append({
            "night": night,
            "night_href": f"{slug(night)}/index.html" if exists else None,
            "status": headline(counts),
            **counts,
            "reports": "ok" if info is None or info["reports_ok"] else
            "failed: " + ", ".join(info["failed"]),
            "failed": bool(info and not info["reports_ok"]),
        })  # fmt: skip
    result.index = write_index(
        reports / "index.html",
        "darkflow nightly reports",
        rows[::-1],  # newest night first
        ["night", "status", "calibrated", "degraded", "quarantined", "reports"],
    )
    return result
