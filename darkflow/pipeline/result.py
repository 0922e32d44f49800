"""The outcome of one run of a night (:class:`RunResult`), below both the runner
(:mod:`darkflow.pipeline.run`) and the "nothing changed" shortcut (:mod:`darkflow.pipeline.memo`)
that returns the last run's."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from darkflow.model import LightStatus

__all__ = ["RunResult"]


@dataclass
class RunResult:
    """What a run did: files, light statuses, masters, timings and the work directory."""

    workdir: Path
    n_files: int
    n_rejected: int
    n_isolated: int
    lights: Counter = field(default_factory=Counter)
    masters_built: int = 0
    masters_reused: int = 0
    masters_judged: int = 0  # found on disk, assessed again (their assessment inputs changed)
    masters_failed: int = 0
    lights_computed: int = 0
    lights_reused: int = 0
    frame_report: Path | None = None
    masters_csv: Path | None = None
    seconds: float = 0.0
    sessions: tuple[str, ...] = ()
    run_id: str = ""
    executor: str = "local"
    artifacts_repaired: int = 0  # found damaged (content hash mismatch) and rebuilt
    unchanged_since: str | None = None  # nothing changed since this run: its results are ours
    # wall-clock seconds of each stage (scan, masters, lights, outputs), summed over repair passes
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def _timed(self, stage: str, t0: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.monotonic() - t0

    def summary(self) -> str:
        """A few lines for the terminal: files, lights by status, masters built or reused, the time
        taken."""
        total = sum(self.lights.values())
        head = (
            f"darkflow run: {self.n_files} files unchanged since run {self.unchanged_since} "
            f"(checked in {self.seconds:.1f}s): nothing to compute, its results stand"
            if self.unchanged_since
            else f"darkflow run: {self.n_files} files ({self.n_rejected} rejected, "
            f"{self.n_isolated} isolated)"
        )
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.stage_seconds.items())
        timing = (
            f"; {stages}; {self.seconds:.1f}s in all" if stages and not self.unchanged_since else ""
        )
        lines = [
            f"{head}, {len(self.sessions)} session(s){timing}",
            f"  masters: {self.masters_built} built, "
            + (f"{self.masters_judged} judged again, " if self.masters_judged else "")
            + f"{self.masters_reused} reused"
            + (f", {self.masters_failed} failed" if self.masters_failed else "")
            + f"  -> {self.masters_csv}",
            f"  lights:  {total} total: {self.lights[LightStatus.CALIBRATED]} calibrated, "
            f"{self.lights[LightStatus.DEGRADED]} degraded, "
            f"{self.lights[LightStatus.QUARANTINED]} quarantined "
            f"({self.lights_computed} computed, {self.lights_reused} reused)  -> {self.frame_report}",
            f"  calibrated frames: {self.workdir / 'calibrated'}",
        ]
        if self.artifacts_repaired:
            lines.append(
                f"  repaired: {self.artifacts_repaired} damaged artifact(s) rebuilt "
                f"(damaged files moved to {self.workdir / 'corrupt'})"
            )
        return "\n".join(lines)
