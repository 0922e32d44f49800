"""``darkflow nightly INPUT_ROOT --workdir W``: every night under a root, calibrated and reported.

Nights come from the frames' dates, not from folder names: each FITS file under the root belongs
to the observing night of its ``DATE-OBS`` (the catalog's ``night`` column), so ``nightly`` on a
camera folder, a night folder or an archive of nights gives the same result. A file's night is
read from its header once and recorded in the registry under its (size, mtime, inode); an
unchanged archive is grouped into nights without reading a header.

A night is calibrated when it is **new or changed**: its files (paths and stat identities), the
configuration or the algorithm version differ from those recorded when it was last calibrated,
its results are missing, a master its lights used is no longer current (superseded or gone), or
the masters of an earlier night of its configuration changed in this pass (its own masters are
judged against them).
The other nights are left as they are (``force`` or ``--force`` calibrates them anyway,
``nights`` / ``--night`` picks some). Each night is one ``run_night`` into the shared work
directory (the registry is a dark library across nights), earliest first, so a night is judged
after the nights it is judged against, as a night-by-night history would.

Reports are rebuilt only for nights whose results changed since their reports were built
(:func:`night_fingerprint` over ``nights/<night>/``), or whose reports are missing; the index of
nights is written on every pass. Output::

    <reports>/<night>/<session>.html     one per session
    <reports>/<night>/index.html         the night overview (sessions, masters, advisories)
    <reports>/index.html                 every night with its headline status

A night that fails to calibrate, or a session notebook that fails, is recorded (the HTML says what
failed) and the run goes on with the others; a failed night is tried again by the next pass.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkflow.config import Config
from darkflow.exceptions import DarkflowError, DiskFullError, ExecutorError
from darkflow.model import slug

__all__ = [
    "NightlyResult",
    "find_nights",
    "night_files",
    "night_fingerprint",
    "run_nightly",
]

log = logging.getLogger(__name__)

IGNORE_MARKER = ".darkflow-ignore"
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")
#: The group of files whose night cannot be told (no usable date, unreadable), when no file of
#: their folder has one either.
UNKNOWN_NIGHT = "unknown"
#: Files of a night's results that its reports are built from.
_RESULT_FILES = ("frame_report.csv", "masters.csv", "decisions.jsonl")


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
    """The subdirectories of ``root`` holding FITS files, or ``root`` (a folder view).

    Hidden directories and directories marked with ``.darkflow-ignore`` are skipped. When ``root``
    holds FITS files itself, or no subdirectory does, ``root`` is the one entry. ``nightly`` no
    longer goes by folders (see :func:`night_files`).
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


def night_files(
    root: str | Path, *, workdir: str | Path, config: Config, registry: Any
) -> tuple[dict[str, list[str]], dict[str, tuple[int, int, int]]]:
    """The FITS files under ``root`` by observing night, and their (size, mtime_ns, inode).

    The night of a file is the catalog's (from its ``DATE-OBS`` and the ``[ingest]`` rules),
    recorded in ``registry`` under the file's stat identity: only new or changed files have
    their header read. A file without a night joins the night most common in its folder (a
    broken frame stays with its night), else the :data:`UNKNOWN_NIGHT` group.
    """
    from darkflow.ingest.catalog import find_fits_files, scan
    from darkflow.pipeline.memo import stat_identity
    from darkflow.registry.integrity import scan_exclusions

    root = Path(root)
    if not root.exists():
        raise DarkflowError(f"input does not exist: {root}")
    files = find_fits_files([root], exclude=scan_exclusions(Path(workdir).absolute(), [root]))
    stats = {p: st for p in files if (st := stat_identity(p)) is not None}
    ingest = config.section_hash("ingest")
    nights = registry.file_nights(stats, ingest)
    todo = [p for p in stats if p not in nights]
    if todo:
        catalog = scan(todo, config=config.ingest)
        found = {
            path: night if isinstance(night, str) and night else None
            for path, night in zip(catalog["path"], catalog["night"], strict=True)
        }
        registry.record_file_nights({p: n for p, n in found.items() if p in stats}, stats, ingest)
        nights.update(found)
    by_folder: dict[str, Counter] = defaultdict(Counter)
    for path, night in nights.items():
        if night:
            by_folder[os.path.dirname(path)][night] += 1
    groups: dict[str, list[str]] = defaultdict(list)
    for path in stats:
        night = nights.get(path)
        if not night:
            near = by_folder.get(os.path.dirname(path))
            night = max(near, key=lambda n: (near[n], n)) if near else UNKNOWN_NIGHT
        groups[night].append(path)
    return {n: sorted(g) for n, g in sorted(groups.items())}, stats


def night_fingerprint(workdir: str | Path, night: str) -> str | None:
    """Hash of a night's results (every file under ``<workdir>/nights/<night>/``: frame
    report, masters, decisions, QA), ``None`` when the night has none.

    One function decides whether a night's results changed: ``nightly`` rebuilds a night's
    reports when it differs from the one its reports were built from. The ``cached`` column of
    the CSV files says how a row was obtained, not what it is, and is left out: a night
    calibrated again from its cache has the same results.
    """
    folder = Path(workdir) / "nights" / slug(night)
    if not (folder / "frame_report.csv").is_file():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(folder).as_posix()}\0".encode())
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
                rows = list(csv.reader(fh))
            keep = [i for i, name in enumerate(rows[0] if rows else []) if name != "cached"]
            for row in rows:
                h.update(
                    "\x1f".join(row[i] for i in keep if i < len(row)).encode(
                        "utf-8", "surrogateescape"
                    )
                    + b"\n"
                )
        else:
            h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:32]


def _night_counts(workdir: Path, night: str) -> dict[str, int]:
    """Lights by status in a night's frame report (csv module: cheap for many nights)."""
    counts: dict[str, int] = {"calibrated": 0, "degraded": 0, "quarantined": 0}
    try:
        with open(
            Path(workdir) / "nights" / slug(night) / "frame_report.csv",
            newline="",
            encoding="utf-8",
        ) as fh:
            for row in csv.DictReader(fh):
                if row.get("night") == night:
                    counts[row["status"]] = counts.get(row["status"], 0) + 1
    except (OSError, KeyError, csv.Error):
        pass
    return counts


def _masters_used(workdir: Path, night: str) -> list[str]:
    ids: set[str] = set()
    try:
        with open(
            Path(workdir) / "nights" / slug(night) / "frame_report.csv",
            newline="",
            encoding="utf-8",
        ) as fh:
            for row in csv.DictReader(fh):
                for col in ("master_id", "bias_master_id", "secondary_master_id"):
                    if row.get(col):
                        ids.add(row[col])
    except (OSError, csv.Error):
        pass
    return sorted(ids)


@dataclass
class NightlyResult:
    """What ``darkflow nightly`` did: the runs of each night, their reports, and which nights were
    unchanged."""

    workdir: Path
    reports: Path
    runs: dict[str, Any] = field(default_factory=dict)  # night -> RunResult or error
    nights: dict[str, dict[str, Any]] = field(default_factory=dict)  # night -> report summary
    index: Path | None = None
    why: dict[str, str] = field(default_factory=dict)  # night calibrated -> why (new, changed)
    unchanged: list[str] = field(default_factory=list)  # nights left as they were

    @property
    def ok(self) -> bool:
        """Whether every run and every report succeeded."""
        runs_ok = all(not isinstance(r, str) for r in self.runs.values())
        return runs_ok and all(n["reports_ok"] for n in self.nights.values())

    def summary(self) -> str:
        """A few lines for the terminal: nights run or unchanged, lights by status, report pages."""
        n_new = sum(w == "new" for w in self.why.values())
        lines = [
            f"darkflow nightly: {len(self.runs) + len(self.unchanged)} night(s) -> {self.workdir}: "
            f"{n_new} new, {len(self.runs) - n_new} changed or forced, "
            f"{len(self.unchanged)} unchanged (left as they were)"
        ]
        for night, run in self.runs.items():
            why = self.why.get(night, "")
            if isinstance(run, str):
                lines.append(f"  {night} ({why}): FAILED: {run}")
            else:
                lines.append(f"  {night} ({why}):")
                lines.append("    " + run.summary().replace("\n", "\n    "))
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


def _why(night, fp, cfp, record, workdir, current) -> str | None:
    """Why a night must be calibrated again (``None``: it is as it was)."""
    if record is None:
        return "new"
    if record["inputs"] != fp:
        return "inputs changed"
    if record["config"] != cfp:
        return "configuration or algorithm changed"
    if not (Path(workdir) / "nights" / slug(night) / "frame_report.csv").is_file():
        return "results missing"
    if not all(current.get(m, False) for m in record.get("masters") or ()):
        return "a master it used changed"
    return None


def _current_masters(registry, ids: Iterable[str]) -> dict[str, bool]:
    """Whether each master id is registered and not superseded."""
    from darkflow.model import MasterStatus

    return {
        mid: any(st != MasterStatus.SUPERSEDED for st in statuses)
        for mid, statuses in registry.statuses_by_id(ids).items()
    }


def run_nightly(
    root: str | Path,
    *,
    workdir: str | Path,
    reports: str | Path = "reports",
    config: Config | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    executor=None,
    workers: int = 2,
    force: bool = False,
    nights: Iterable[str] | None = None,
    write_reports: bool = True,
) -> NightlyResult:
    """Calibrate the new or changed nights under ``root`` and write their HTML reports.

    Parameters
    ----------
    force
        Calibrate the selected nights even when nothing changed (their jobs are still cached
        one by one: ``darkflow verify`` is the check for damaged artifacts).
    nights
        Only these nights (``YYYY-MM-DD``); default every night under ``root``.
    write_reports
        ``False``: calibrate and write the index only; a later pass with reports builds the
        reports of every night that has none yet.

    Raises
    ------
    DarkflowError
        ``root`` does not exist, or a night asked for has no frame under it.
    """
    from darkflow.pipeline.memo import config_fingerprint, input_fingerprint
    from darkflow.registry import Registry

    config = config or Config()
    workdir, reports = Path(workdir).absolute(), Path(reports)
    result = NightlyResult(workdir=workdir, reports=reports)
    workdir.mkdir(parents=True, exist_ok=True)
    with Registry(workdir) as registry:
        groups, stats = night_files(root, workdir=workdir, config=config, registry=registry)
        records = registry.night_records()
        if nights is not None:
            wanted = list(dict.fromkeys(nights))
            absent = [n for n in wanted if n not in groups]
            if absent:
                raise DarkflowError(
                    f"no frames of night(s) {', '.join(absent)} under {root}; "
                    f"nights there: {', '.join(groups) or 'none'}"
                )
            groups = {n: groups[n] for n in sorted(wanted)}
        cfp = config_fingerprint(config, release=False)
        fps = {n: input_fingerprint(files, stats) for n, files in groups.items()}
        done: set[str] = set()
        changed_sigs: set[str | None] = set()  # configurations whose masters changed, and
        changed_from: str | None = None  # the earliest night where they did
        progressed = True
        while progressed:  # earliest night first; again when a night changed a master that an
            progressed = False  # earlier night's lights used (the library serves every night)
            for night in groups:
                if night in done:
                    continue
                record = records.get(night)
                current = _current_masters(registry, (record or {}).get("masters") or ())
                why = "forced" if force else _why(night, fps[night], cfp, record, workdir, current)
                if why is None and changed_from is not None and night > changed_from:
                    sigs = {sig for _, sig in registry.masters_of_night(night).values()}
                    if sigs & changed_sigs:
                        why = "an earlier night's masters changed"
                if why is None:
                    continue
                done.add(night)
                progressed = True
                result.why[night] = why
                if write_reports:  # its pages follow: the report workers start up meanwhile
                    from darkflow.report import prestart_report_workers

                    prestart_report_workers(workers)
                before = registry.masters_of_night(night)
                _calibrate_night(
                    night,
                    groups[night],
                    fps[night],
                    cfp,
                    registry,
                    result,
                    workdir=workdir,
                    config=config,
                    progress=progress,
                    executor=executor,
                )
                after = registry.masters_of_night(night)
                if after != before:  # later nights' masters are judged against these
                    changed_sigs.update(sig for _, sig in {**before, **after}.values())
                    changed_from = min(changed_from or night, night)
            records = registry.night_records()
        result.unchanged = [n for n in groups if n not in done]
        _write_reports(
            result,
            registry,
            workdir=workdir,
            reports=reports,
            workers=workers,
            build=write_reports,
            progress=progress,
        )
    return result


def _calibrate_night(
    night, files, fp, cfp, registry, result, *, workdir, config, progress, executor
) -> None:
    from darkflow.pipeline import run_night

    try:
        run = run_night(files, workdir=workdir, config=config, progress=progress, executor=executor)
    except (DiskFullError, ExecutorError):
        raise  # every later night would fail the same way: stop with this one error
    except DarkflowError as err:
        log.error("night %s failed: %s", night, err)
        result.runs[night] = f"{type(err).__name__}: {err}"
        return
    result.runs[night] = run
    registry.record_night(
        night,
        inputs=fp,
        config=cfp,
        results=night_fingerprint(workdir, night),
        counts=_night_counts(workdir, night),
        masters=_masters_used(workdir, night),
        n_files=len(files),
        run_id=run.run_id,
    )


def _write_reports(
    result: NightlyResult,
    registry,
    *,
    workdir: Path,
    reports: Path,
    workers: int,
    build: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> None:
    """Reports of the nights whose results changed since their reports were built (or whose
    reports are missing); the index of every night of the work directory. ``progress("reports",
    done, total)`` after each page of a night (its sessions, then its overview)."""
    from darkflow.report import write_index

    records = registry.night_records()
    for night in sorted(records):
        results = night_fingerprint(workdir, night)
        if results is None:
            continue
        if records[night]["results"] != results:  # written since by another run (darkflow run)
            registry.record_night(night, results=results, counts=_night_counts(workdir, night))
        built = records[night]["reports"] == results
        if not build or (built and (reports / slug(night) / "index.html").exists()):
            continue
        shown = {"progress": progress} if progress else {}  # quiet: the plain call
        info = _night_reports(night, workdir=workdir, reports=reports, workers=workers, **shown)
        result.nights[night] = info
        if info["reports_ok"]:
            registry.record_night(night, reports=results)

    records = registry.night_records()
    rows = []
    for night in _all_nights(workdir, records):
        counts = (records.get(night) or {}).get("counts") or _night_counts(workdir, night)
        info = result.nights.get(night)
        exists = (reports / slug(night) / "index.html").exists()
        rows.append(
            {
                "night": night,
                "night_href": f"{slug(night)}/index.html" if exists else None,
                "status": headline(counts),
                **counts,
                "reports": "ok"
                if info is None or info["reports_ok"]
                else "failed: " + ", ".join(info["failed"]),
                "failed": bool(info and not info["reports_ok"]),
            }
        )
    result.index = write_index(
        reports / "index.html",
        "darkflow nightly reports",
        rows[::-1],  # newest night first
        ["night", "status", "calibrated", "degraded", "quarantined", "reports"],
    )


def _all_nights(workdir: Path, records: dict[str, Any]) -> list[str]:
    """Every night with results in the work directory: recorded by nightly, or written by a
    ``darkflow run`` (its folder under ``nights/``)."""
    found = set(records)
    folder = workdir / "nights"
    if folder.is_dir():
        known = {slug(n) for n in found}
        for sub in folder.iterdir():
            if sub.name not in known and (sub / "frame_report.csv").is_file():
                with open(sub / "frame_report.csv", newline="", encoding="utf-8") as fh:
                    found.update(r["night"] for r in csv.DictReader(fh) if r.get("night"))
    return sorted(found)


def _night_reports(
    night: str,
    *,
    workdir: Path,
    reports: Path,
    workers: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    from darkflow.report import build_reports, notebook_path, run_report

    pages = {"total": 0}

    def sessions_done(stage: str, done: int, total: int) -> None:  # the overview comes last
        pages["total"] = total + 1
        if progress:
            progress(stage, done, total + 1)

    def overview_done(stage: str, done: int, total: int) -> None:
        if progress:
            progress(stage, pages["total"] or 1, pages["total"] or 1)

    sessions = build_reports(
        workdir,
        output=reports,
        nights=[night],
        workers=workers,
        index=False,
        progress=sessions_done,
    )
    html = reports / slug(night) / "index.html"
    over = run_report(
        notebook_path("night_overview.ipynb"),
        html,
        {"workdir": str(workdir.resolve()), "night": night, "output": str(html.resolve())},
        title=f"darkflow · {night}",
        keep_notebook=workdir / "reports" / night / "index.ipynb",
        progress=overview_done,
    )
    counts = _night_counts(workdir, night)
    return {
        "headline": headline(counts),
        "counts": counts,
        "n_sessions": len(sessions.sessions),
        "index": html,
        "reports_ok": over.ok and all(s["ok"] for s in sessions.sessions),
        "failed": [s["session"] for s in sessions.sessions if not s["ok"]]
        + ([] if over.ok else ["overview"]),
    }
