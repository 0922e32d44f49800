"""Read a finished work directory: the public API that notebooks, reports and widgets use.

Nothing here computes calibration; it reads what ``darkflow run`` wrote (frame report, masters,
decisions, QA files, master FITS) and returns pandas objects and model objects.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkflow.exceptions import DarkflowError
from darkflow.model import LightStatus, MasterDark, slug
from darkflow.registry.events import read_events
from darkflow.triage import reason_texts

__all__ = ["Workdir", "find_workdir", "reason_texts"]


# Columns holding paths of work-directory files (relative in the CSVs, absolute from here).
_WORKDIR_PATHS = {"frame_report.csv": ("output_path",), "masters.csv": ("path",)}


def find_workdir(path: str | Path, *, start: str | Path | None = None) -> Path:
    """Where a relative work directory is: from ``start`` (the current directory) or above it.

    A notebook's kernel runs in the notebook's folder (``notebooks/``), while the README's
    ``demo/work`` is relative to the project: a relative path that is not a work directory
    here is looked up in the parent directories, nearest first. Absolute paths, and paths
    found nowhere, come back as given (the caller says what is missing).
    """
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    if start is None and (path / "frame_report.csv").is_file():
        return path  # found where it was said to be: left as given
    here = Path(start).resolve() if start is not None else Path.cwd()
    for base in (here, *here.parents):
        if (base / path / "frame_report.csv").is_file():
            return base / path
    return path


class Workdir:
    """A darkflow work directory, read-only. Paths of its files come back absolute.

    >>> wd = Workdir("demo/work")                               # doctest: +SKIP
    >>> wd.sessions()                                           # doctest: +SKIP
    [('2026-11-23', 'zwo-asi2600mm-pro'), ...]
    """

    def __init__(self, path: str | Path):
        self.path = find_workdir(path)
        self._tables: dict[tuple[str, str], pd.DataFrame] = {}
        if not (self.path / "frame_report.csv").is_file():
            raise DarkflowError(
                f"{path} is not a darkflow work directory (no frame_report.csv); "
                "run `darkflow run INPUT --workdir DIR` first"
            )

    def __repr__(self) -> str:
        return f"Workdir({str(self.path)!r})"

    # ------------------------------------------------------------------ tables
    def _dir(self, night: str | None) -> Path:
        """Where a night's files are: ``nights/<night>/`` (kept across runs), else the top."""
        if night is not None:
            scoped = self.path / "nights" / slug(night)
            if (scoped / "frame_report.csv").is_file():
                return scoped
        return self.path

    def _table(self, night: str | None, name: str) -> pd.DataFrame:
        where = self._dir(night)
        key = (str(where), name)
        if key not in self._tables:
            table = pd.read_csv(
                where / name, dtype={"night": str, "session": str, "master_id": str}
            )
            for column in _WORKDIR_PATHS.get(name, ()):
                if column in table:  # stored relative to the work directory (it may move)
                    table[column] = [
                        p if pd.isna(p) else str(self.path.absolute() / str(p))
                        for p in table[column]
                    ]
            self._tables[key] = table
        return self._tables[key]

    @property
    def frame_report(self) -> pd.DataFrame:
        """The lights of the latest run (all its nights)."""
        return self._table(None, "frame_report.csv")

    @property
    def masters(self) -> pd.DataFrame:
        """The masters of the latest run (built, reused, or used by its lights)."""
        return self._table(None, "masters.csv")

    def masters_of(self, night: str | None = None) -> pd.DataFrame:
        """The ``masters.csv`` table of a night (of the work directory without ``night``)."""
        return self._table(night, "masters.csv")

    def nights(self) -> list[str]:
        """Every night this work directory has calibrated (not only the latest run's)."""
        found = set()
        nights_dir = self.path / "nights"
        if nights_dir.is_dir():
            for sub in nights_dir.iterdir():
                report = sub / "frame_report.csv"
                if report.is_file():
                    found.update(self._table(sub.name, "frame_report.csv")["night"].dropna())
        found.update(self.frame_report["night"].dropna())
        return sorted(str(n) for n in found)

    @property
    def catalog(self) -> pd.DataFrame:
        """Every file of the latest run with its eligibility and reasons."""
        return self._table(None, "catalog.csv")

    def sessions(self, night: str | None = None) -> list[tuple[str, str]]:
        """(night, session) pairs, of one night or of every night."""
        out = set()
        for n in [night] if night is not None else self.nights():
            fr = self.lights(night=n).dropna(subset=["session"])
            out.update((str(n), str(s)) for s in fr["session"])
        return sorted(out)

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
        """The ``frame_report.csv`` rows, of one night and one session when given."""
        fr = self._table(night, "frame_report.csv")
        if night is not None:
            fr = fr[fr["night"] == night]
        if session is not None:
            fr = fr[fr["session"] == session]
        return fr.reset_index(drop=True)

    def status_counts(
        self, *, night: str | None = None, session: str | None = None
    ) -> dict[str, int]:
        """The number of lights of each status, of one night and one session when given."""
        counts = self.lights(night=night, session=session)["status"].value_counts()
        return {str(s): int(counts.get(str(s), 0)) for s in LightStatus}

    # ------------------------------------------------------------------ QA
    def thermal(self, *, night: str | None = None, session: str | None = None) -> list[dict]:
        """The temperature traces of ``qa/thermal.json``, of one night and one session when given."""
        path = self._dir(night) / "qa" / "thermal.json"
        entries = json.loads(path.read_text()) if path.exists() else []
        return [
            e
            for e in entries
            if (night is None or e["night"] == night)
            and (session is None or e["session"] == session)
        ]

    def residual_hists(self, night: str | None = None) -> tuple[np.ndarray, dict[str, list[int]]]:
        """The bin edges and, per light, the histogram of normalised background residuals
        (``qa/residual_hists.json``)."""
        path = self._dir(night) / "qa" / "residual_hists.json"
        if not path.exists():
            return np.linspace(-6, 6, 61), {}
        data = json.loads(path.read_text())
        return np.asarray(data["edges"]), data["lights"]

    def decisions(self, night: str | None = None) -> list[dict[str, Any]]:
        """The match decisions of ``decisions.jsonl``, one dict per light."""
        return list(read_events(self._dir(night) / "decisions.jsonl"))

    def decision_for(self, light_path: str, night: str | None = None) -> dict[str, Any] | None:
        """The match decision of one light, or ``None``."""
        return next((d for d in self.decisions(night) if d.get("light_path") == light_path), None)

    # ------------------------------------------------------------------ artifacts
    def master_path(self, master_id: str, *, night: str | None = None) -> Path:
        """The file of a master; with ``night``, that night's table is looked at first (a
        report of one night then reads nothing of the other nights)."""
        for where in [night] if night is not None else []:
            table = self.masters_of(where)
            rows = table[table["master_id"] == master_id]
            if not rows.empty:
                return Path(rows.iloc[0]["path"])
        for where in [None, *self.nights()]:
            table = self.masters_of(where)
            rows = table[table["master_id"] == master_id]
            if not rows.empty:
                return Path(rows.iloc[0]["path"])
        raise DarkflowError(f"no master {master_id} in {self.path}")

    def load_master(self, master_id: str, *, night: str | None = None) -> MasterDark:
        """Read the master of id ``master_id``."""
        from darkflow.master import read_master

        return read_master(self.master_path(master_id, night=night))

    def masters_used(self, *, night: str | None = None, session: str | None = None) -> list[str]:
        """The ids of the masters the lights used, sorted."""
        ids = self.lights(night=night, session=session)["master_id"].dropna().astype(str)
        return sorted(set(ids))


def finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
