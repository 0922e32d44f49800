"""Is a work directory what its registry says? ``darkflow verify W`` and the run's repairs.

Every artifact (master, calibrated light) is registered with the content hash of its bytes as
written. Runs verify masters whenever they read them and re-hash a cached light when its size,
mtime or inode changed; :func:`verify_workdir` re-hashes everything, whatever the file metadata
says. A damaged artifact is moved to ``<workdir>/corrupt/`` (kept for inspection, never read
again) and its registry row dropped, so the next run rebuilds it from its inputs.

Exit status of ``darkflow verify``: 0 every artifact intact; 1 problems found (repaired, or only
reported with ``--dry-run``); 2 not a work directory, or its registry is damaged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from darkflow.exceptions import DarkflowError
from darkflow.io.atomic import write_bytes_atomic
from darkflow.io.hashing import file_hash
from darkflow.registry import Registry

__all__ = [
    "VerifyReport",
    "discard_corrupt",
    "format_verify",
    "mark_work_directory",
    "scan_exclusions",
    "set_aside",
    "verify_workdir",
]

log = logging.getLogger(__name__)

#: Folders of a work directory that hold registered artifacts.
ARTIFACT_DIRS = ("artifacts", "calibrated")
CORRUPT_DIR = "corrupt"
_MARKER_TEXT = (
    "darkflow work directory: scans skip this folder (its FITS files are outputs, not inputs).\n"
)


def _is_input(workdir: Path, inputs: Iterable[str | os.PathLike[str]]) -> bool:
    return any(os.path.abspath(os.fspath(p)) == os.path.abspath(workdir) for p in inputs)


def scan_exclusions(workdir: Path, inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """What a scan of ``inputs`` must not walk into: the work directory, or, when the work
    directory is itself an input folder (outputs written beside the frames), its output folders."""
    workdir = Path(workdir)
    if _is_input(workdir, inputs):
        return [workdir / sub for sub in (*ARTIFACT_DIRS, CORRUPT_DIR)]
    return [workdir]


def mark_work_directory(workdir: Path, inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Put the ``.darkflow-ignore`` marker in a work directory, so that a scan of an input tree
    holding it (``darkflow scan``, ``darkflow nightly``) never takes its outputs for inputs.
    A work directory that is itself an input folder is not marked (its frames are inputs)."""
    from darkflow.ingest.catalog import IGNORE_MARKER

    marker = Path(workdir) / IGNORE_MARKER
    if not marker.exists() and not _is_input(workdir, inputs):
        write_bytes_atomic(marker, _MARKER_TEXT)


def set_aside(workdir: Path, path: str | os.PathLike[str]) -> Path | None:
    """Move a damaged artifact to ``<workdir>/corrupt/<its relative path>``; return where.

    An earlier damaged copy there is kept (the new one gets a time stamp). When the move fails
    the file is deleted: it must never be read as an artifact again.
    """
    workdir = Path(workdir)
    full = Path(path) if Path(path).is_absolute() else workdir / path
    rel = Path(os.path.relpath(full, workdir))
    dest = workdir / CORRUPT_DIR / rel
    if dest.exists():
        dest = dest.with_name(f"{dest.name}.{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(full, dest)
        return dest
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("cannot move %s aside (%s); deleting it", full, err)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(full)
        return None


def discard_corrupt(registry: Registry, paths: Iterable[str], events: Any) -> int:
    """Set aside the artifacts at ``paths`` that failed verification and drop their rows (the
    run plans again and rebuilds them); one ``artifact_mismatch`` event each. Returns how many."""
    n = 0
    for path in sorted(set(paths)):
        row = registry.artifact_at(path)
        full = Path(path) if Path(path).is_absolute() else registry.workdir / path
        found = file_hash(full) if full.is_file() else None
        set_aside(registry.workdir, full)
        if row is not None:
            registry.forget([row.key])
        events.emit(
            "artifact_mismatch",
            kind=row.kind if row else None,
            id=row.id if row else None,
            path=os.path.relpath(full, registry.workdir),
            expected=row.content_hash if row else None,
            found=found,
            action="rebuild",
        )
        n += 1
    return n


# ----------------------------------------------------------------------------- verify
@dataclass
class VerifyReport:
    """What ``darkflow verify`` found in a work directory and what it did."""

    workdir: Path
    dry_run: bool
    checked: int = 0  # registered artifact files re-hashed
    bytes_read: int = 0
    hashes_recorded: int = 0  # artifacts registered without a hash (older darkflow): recorded now
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    @property
    def exit_status(self) -> int:
        """The exit status of ``darkflow verify``: 0 when all is well, else 1."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON values (``darkflow verify --format json``)."""
        return {
            "workdir": str(self.workdir),
            "dry_run": self.dry_run,
            "checked": self.checked,
            "bytes_read": self.bytes_read,
            "hashes_recorded": self.hashes_recorded,
            "ok": self.ok,
            "problems": self.problems,
        }


def _problem(row, path: str, problem: str, action: str, **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "kind": row.kind if row else None,
        "id": row.id if row else None,
        "problem": problem,
        "action": action,
        **extra,
    }


def verify_workdir(workdir: str | Path, *, repair: bool = True) -> VerifyReport:
    """Re-hash every artifact of a work directory against its registry; repair what is wrong.

    Problems: ``content_mismatch`` (the bytes differ from those written: moved to
    ``corrupt/`` and the row dropped, so the next run rebuilds it), ``missing`` (the row is
    dropped), ``unregistered`` (a FITS file under ``artifacts/`` or ``calibrated/`` that no
    row claims, e.g. left by a killed run: reported only). With ``repair=False`` nothing is
    changed. Artifacts registered before hashes were recorded get their hash recorded.

    Raises
    ------
    DarkflowError
        ``workdir`` has no registry.
    RegistryError
        The registry is damaged (its message says what to do).
    """
    workdir = Path(workdir).absolute()
    if not (workdir / "registry.sqlite").is_file():
        raise DarkflowError(
            f"{workdir} has no registry: not a darkflow work directory "
            f"(run `darkflow run INPUT --workdir {workdir}` first)"
        )
    report = VerifyReport(workdir=workdir, dry_run=not repair)
    with Registry(workdir) as registry:
        registry.check_database()
        claimed: set[str] = set()
        forget: list[str] = []
        for row in registry.artifacts():
            if row.path is None:
                continue
            claimed.add(os.path.normpath(row.path))
            full = workdir / row.path
            if not full.is_file():
                report.problems.append(
                    _problem(row, row.path, "missing", "forgotten: rebuilt by the next run")
                )
                forget.append(row.key)
                continue
            found = file_hash(full)
            report.checked += 1
            report.bytes_read += full.stat().st_size
            if row.content_hash is None:
                report.hashes_recorded += 1
                if repair:
                    registry.refresh(row.key, content_hash=found)
            elif found != row.content_hash:
                report.problems.append(
                    _problem(
                        row,
                        row.path,
                        "content_mismatch",
                        f"moved to {CORRUPT_DIR}/ and forgotten: rebuilt by the next run",
                        expected=row.content_hash,
                        found=found,
                    )
                )
                if repair:
                    set_aside(workdir, full)
                forget.append(row.key)
        for sub in ARTIFACT_DIRS:
            for path in sorted((workdir / sub).rglob("*.fits")):
                rel = os.path.relpath(path, workdir)
                if rel not in claimed:
                    report.problems.append(
                        _problem(
                            None, rel, "unregistered", "left in place (not darkflow's to delete)"
                        )
                    )
        if repair and forget:
            registry.forget(forget)
    if report.dry_run:
        for p in report.problems:
            p["action"] = "none (dry run)"
    return report


def format_verify(report: VerifyReport, fmt: str = "table") -> str:
    """The report as ``table`` (for people) or ``json``."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=1) + "\n"
    mib = report.bytes_read / 2**20
    lines = [
        f"darkflow verify: {report.workdir}",
        f"  {report.checked} artifact file(s) re-hashed ({mib:.1f} MiB)",
    ]
    if report.hashes_recorded:
        verb = "would record" if report.dry_run else "recorded"
        lines.append(f"  {report.hashes_recorded} artifact(s) had no recorded hash: {verb} now")
    if report.ok:
        lines.append("  every artifact is intact")
        return "\n".join(lines) + "\n"
    lines.append(f"  {len(report.problems)} problem(s):")
    for p in report.problems:
        what = f"{p['kind']} {p['id']}" if p["kind"] else "file"
        lines.append(f"    {p['problem']:<16} {what}: {p['path']}")
        lines.append(f"    {'':<16} -> {p['action']}")
    if not report.dry_run and any(p["problem"] != "unregistered" for p in report.problems):
        lines.append(
            "  Run `darkflow run INPUT --workdir DIR` again to rebuild what was forgotten."
        )
    return "\n".join(lines) + "\n"
