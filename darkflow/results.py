"""Read a finished work directory: the public API that notebooks, reports and widgets use.

Nothing here computes calibration; it reads what ``darkflow run`` wrote (frame report, masters,
decisions, QA files, master FITS) and returns pandas objects and model objects.
"""

from __future__ import annotations

import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkflow.events import read_events
from darkflow.exceptions import DarkflowError
from darkflow.model import LightStatus, MasterDark, ReasonCode

__all__ = ["Workdir", "reason_texts"]

# Modules that define reason enums; imported on demand so their codes can be explained.
_REASON_MODULES = ("darkflow.catalog", "darkflow.headers", "darkflow.matching", "darkflow.pipeline.reasons")


def reason_texts() -> dict[str, str]:
    """Every reason code darkflow can attach, with its one-line description."""
    import importlib

    for name in _REASON_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    out: dict[str, str] = {}
    pending = list(ReasonCode.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for member in cls:
            out.setdefault(str(member), member.description)
    return dict(sorted(out.items()))


class Workdir:
    """A darkflow work directory, read-only.

    >>> wd = Workdir("demo/work")                               # doctest: +SKIP
    >>> wd.sessions()                                           # doctest: +SKIP
    [('2026-11-23', 'zwo-asi2600mm-pro'), ...]
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "frame_report.csv").is_file():
            raise DarkflowError(
                f"{self.path} is not a darkflow work directory (no frame_report.csv); "
                "run `darkflow run INPUT --workdir DIR` first"
            )

    def __repr__(self) -> str:
        return f"Workdir({str(self.path)!r})"

    # ------------------------------------------------------------------ tables
    @cached_property
    def frame_report(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "frame_report.csv", dtype={"night": str, "session": str})

    @cached_property
    def masters(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "masters.csv", dtype={"night": str})

    @cached_property
    def catalog(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "catalog.csv")

    def sessions(self) -> list[tuple[str, str]]:
        fr = self.frame_report.dropna(subset=["night", "session"])
        return sorted({(str(n), str(s)) for n, s in zip(fr["night"], fr["session"], strict=True)})

    def resolve_session(self, night: str | None, session: str | None) -> tuple[str, str]:
        """Fill in a missing night/session (the first one), checking that it exists."""
        options = self.sessions()
        if not options:
            raise DarkflowError(f"{self.path} holds no light frames")
        for n, s in options:
            if (night is None or n == night) and (session is None or s == session):
                return n, s
        raise DarkflowError(f"no session {night}/{session} in {self.path}; have {options}")

    def lights(self, *, night: str | None = None, session: str | None = None) -> pd.DataFrame:
        fr = self.frame_report
        if night is not None:
            fr = fr[fr["night"] == night]
        if session is not None:
            fr = fr[fr["session"] == session]
        return fr.reset_index(drop=True)

    def status_counts(
        self, *, night: str | None = None, session: str | None = None
    ) -> dict[str, int]:
        counts = self.lights(night=night, session=session)["status"].value_counts()
        return {str(s): int(counts.get(str(s), 0)) for s in LightStatus}

    # ------------------------------------------------------------------ QA
    def thermal(self, *, night: str | None = None, session: str | None = None) -> list[dict]:
        path = self.path / "qa" / "thermal.json"
        entries = json.loads(path.read_text()) if path.exists() else []
        return [
            e
            for e in entries
            if (night is None or e["night"] == night)
            and (session is None or e["session"] == session)
        ]

    def residual_hists(self) -> tuple[np.ndarray, dict[str, list[int]]]:
        path = self.path / "qa" / "residual_hists.json"
        if not path.exists():
            return np.linspace(-6, 6, 61), {}
        data = json.loads(path.read_text())
        return np.asarray(data["edges"]), data["lights"]

    def decisions(self) -> list[dict[str, Any]]:
        return list(read_events(self.path / "decisions.jsonl"))

    def decision_for(self, light_path: str) -> dict[str, Any] | None:
        return next((d for d in self.decisions() if d.get("light_path") == light_path), None)

    # ------------------------------------------------------------------ artifacts
    def master_path(self, master_id: str) -> Path:
        rows = self.masters[self.masters["master_id"] == master_id]
        if rows.empty:
            raise DarkflowError(f"no master {master_id} in {self.path}")
        return Path(rows.iloc[0]["path"])

    def load_master(self, master_id: str) -> MasterDark:
        from darkflow.master import read_master

        return read_master(self.master_path(master_id))

    def masters_used(self, *, night: str | None = None, session: str | None = None) -> list[str]:
        ids = self.lights(night=night, session=session)["master_id"].dropna().astype(str)
        return sorted(set(ids))


def finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
