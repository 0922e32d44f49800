"""Nothing new since the last run: told from file metadata alone, answered from that run.

A run's results are a function of its inputs' bytes, the configuration, the algorithm and
what the work directory held when it started (the registry's artifacts, the thermal profiles,
the night files). Runs are idempotent: a second run over the same state recomputes nothing and
writes the same files. So when

* the input files are the same paths with the same (size, mtime_ns, inode), the identity the
  input hash cache trusts (:func:`input_fingerprint`; no header or pixel byte is read),
* the configuration, darkflow's versions and its source files (by stat) are the same, and
* the work directory is as the last run left it: no artifact row written since (the registry's
  generation counter) and every file under it (but the logs, locks and caches) with the size,
  mtime and inode it had when that run ended (:func:`workdir_state`),

the last run's results are this run's, and nothing needs to be read or written but the run's
record and its two log lines. Anything else (a new file, a touched one, another run into the
same work directory, a file deleted from it, a failure the last run would retry) runs the
pipeline, whose jobs are cached one by one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from darkflow._version import ALGORITHM_VERSION, ASSESSMENT_VERSION, __version__
from darkflow.io.paths import printable

__all__ = [
    "config_fingerprint",
    "input_fingerprint",
    "run_fingerprint",
    "stat_identity",
    "unchanged_run",
    "workdir_state",
]

#: Folders and files of a work directory that do not hold results (or are tracked otherwise).
_NOT_STATE_DIRS = frozenset({"logs", "locks", "cache", "corrupt"})
_NOT_STATE_FILES = ("registry.sqlite", ".darkflow-ignore")


def config_fingerprint(config: Any, *, release: bool = True) -> str:
    """Hash of the configuration and the algorithm version (and the darkflow release, with
    ``release``: a new release may write its files differently)."""
    blob = json.dumps(config.to_dict(), sort_keys=True, default=str)
    versions = [ALGORITHM_VERSION, ASSESSMENT_VERSION]
    if release:  # and the sources: an edited source tree never reuses the last run's results
        versions += [__version__, source_identity()]
    return hashlib.sha256(f"{blob}\0{versions}".encode()).hexdigest()[:32]


def source_identity() -> str:
    """Paths, sizes and mtimes of darkflow's own ``.py`` files (stat only, no byte read)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def stat_identity(path: str) -> tuple[int, int, int] | None:
    """(size, mtime_ns, inode) of a file, ``None`` when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def input_fingerprint(
    files: Iterable[str], stats: dict[str, tuple[int, int, int] | None] | None = None
) -> str:
    """Hash of the files' paths and (size, mtime_ns, inode): what the hash cache trusts."""
    h = hashlib.sha256()
    for path in sorted(files):
        ident = stats[path] if stats is not None and path in stats else stat_identity(path)
        h.update(f"{printable(path)}\0{ident}\n".encode())
    return h.hexdigest()[:32]


def workdir_state(workdir: Path, generation: int) -> str:
    """Hash of the registry's generation and of every result file under ``workdir`` (relative
    path, size, mtime_ns, inode); logs, locks, caches and the registry file are left out.

    Every run ends with it, so it is one ``os.scandir`` pass on strings: a year of nights is
    some ten thousand files, each one ``stat``, and no path object or ``relpath`` each."""
    h = hashlib.sha256(f"generation {generation}\n".encode())
    entries = []
    stack = [("", os.fspath(workdir))]  # (path relative to workdir with its separator, folder)
    while stack:
        prefix, folder = stack.pop()
        try:
            listing = os.scandir(folder)
        except OSError:
            continue
        with listing:
            for entry in listing:
                rel = prefix + entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if prefix or entry.name not in _NOT_STATE_DIRS:
                        stack.append((rel + os.sep, entry.path))
                    continue
                if not prefix and entry.name.startswith(_NOT_STATE_FILES):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                entries.append(f"{printable(rel)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n")
    entries.sort()
    h.update("".join(entries).encode())
    return h.hexdigest()[:32]


def run_fingerprint(paths: Sequence[Path], config: Any, workdir: Path) -> str | None:
    """The run's inputs (paths and stat identities) and configuration, or ``None`` when an
    input is missing (the scan then says so)."""
    from darkflow.ingest.catalog import find_fits_files
    from darkflow.registry.integrity import scan_exclusions

    if not all(p.exists() for p in paths):
        return None
    files = find_fits_files(paths, exclude=scan_exclusions(workdir, paths))
    return f"{input_fingerprint(files)}-{config_fingerprint(config)}"


def unchanged_run(paths, workdir, config, fingerprint, executor, t_start):
    """The last run's :class:`~darkflow.pipeline.result.RunResult` when nothing changed since it
    (recorded as a run of its own), else ``None``."""
    from darkflow.model import LightStatus
    from darkflow.pipeline.result import RunResult
    from darkflow.registry import Registry
    from darkflow.registry.events import EventLog

    if not (workdir / "registry.sqlite").is_file():
        return None
    with Registry(workdir) as registry:
        registry.mark_dead_runs()
        last = registry.last_finished_run()
        if last is None or last["outcome"] != "ok" or last.get("fingerprint") != fingerprint:
            return None
        before = json.loads(last["summary"] or "{}")
        if before.get("retry", 1) or "log" not in before:  # failures a run would try again
            return None
        state = workdir_state(workdir, registry.generation())
        if state != last.get("state"):
            return None
        run_id = registry.start_run(inputs=[str(p) for p in paths], config=config.to_dict())
        events = EventLog(workdir / "logs" / before["log"], run_id=run_id, darkflow=__version__)
        n_files = int(before.get("n_files", 0))
        events.emit(
            "run_start",
            inputs=[str(p) for p in paths],
            n_files=n_files,
            executor=getattr(executor, "name", "local"),
        )
        result = RunResult(
            workdir=workdir,
            n_files=n_files,
            n_rejected=0,
            n_isolated=0,
            run_id=run_id,
            executor=getattr(executor, "name", "local"),
            lights=Counter({LightStatus(k): v for k, v in before.get("lights", {}).items()}),
            masters_reused=sum(
                before.get(k, 0) for k in ("masters_built", "masters_judged", "masters_reused")
            ),
            lights_reused=before.get("lights_computed", 0) + before.get("lights_reused", 0),
            frame_report=workdir / "frame_report.csv",
            masters_csv=workdir / "masters.csv",
            sessions=tuple(before.get("sessions", ())),
            unchanged_since=last["run_id"],
        )
        result.seconds = time.monotonic() - t_start
        summary = {
            "seconds": round(result.seconds, 3),
            "unchanged_since": last["run_id"],
            "lights": before.get("lights", {}),
            "masters_built": 0,
            "masters_judged": 0,
            "masters_reused": result.masters_reused,
            "masters_failed": 0,
            "lights_computed": 0,
            "lights_reused": result.lights_reused,
            "artifacts_repaired": 0,
            "sessions": list(result.sessions),
            "n_files": n_files,
            "log": before["log"],
            "retry": 0,
        }
        registry.end_run(run_id, outcome="ok", summary=summary)
        events.emit("run_end", **summary)
        registry.set_run_memo(run_id, fingerprint=fingerprint, state=state)
    return result
