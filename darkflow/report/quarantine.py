"""``darkflow quarantine W``: the queue of lights and masters that could not be calibrated well.

Reads what the runs wrote into a work directory (every night's ``frame_report.csv``,
``masters.csv`` and ``decisions.jsonl``, see :class:`darkflow.report.results.Workdir`) and gathers:

* the quarantined lights (optionally the degraded ones too) of every night, with their reasons
  and the most likely cause (:func:`darkflow.triage.rank_causes`);
* the top causes over the queue, and one triage checklist per reason code
  (:func:`darkflow.triage.triage`);
* the acquisition advisories of the unmatched lights (which darks to take), merged per
  configuration, exposure and temperature (:func:`darkflow.matching.merge_advisories`);
* the masters that are not verified (``low_confidence`` or ``quarantined``) with their reasons.

Nothing is modified; the queue is a view of the work directory.

``darkflow quarantine W`` (the table) runs on the text rows and imports neither pandas nor the
matching and scaling code: at a year of nights the imports were most of its time. The tables
``QuarantineQueue.lights`` and ``masters`` are built with pandas on first use (JSON and CSV).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkflow.model import LightStatus, MasterStatus, slug
from darkflow.triage import Cause, Finding, Severity, rank_causes, triage

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["QUEUE_COLUMNS", "QuarantineQueue", "format_queue", "quarantine_queue"]

#: Columns of ``darkflow quarantine W --format csv`` (one row per light in the queue).
QUEUE_COLUMNS = [
    "night",
    "session",
    "path",
    "status",
    "confidence",
    "reasons",
    "top_cause",
    "instrument",
    "config_signature",
    "exptime_s",
    "ccd_temp_c",
    "date_obs_utc",
    "advisory",
]
_MASTER_COLUMNS = [
    "night",
    "master_id",
    "kind",
    "status",
    "confidence",
    "reasons",
    "top_cause",
    "instrument",
    "config_signature",
    "exptime_s",
    "temp_c",
    "n_frames",
    "path",
]


@dataclass
class QuarantineQueue:
    """What a work directory could not calibrate well, and what to do about it.

    ``light_rows`` and ``master_rows`` hold the rows as the files' text (lights sorted by
    night, session and path; masters once each); ``lights`` and ``masters`` are the same rows as
    typed tables (as pandas reads the CSV files), built on first use.
    """

    workdir: Path
    light_rows: list[dict[str, str]]  # QUEUE_COLUMNS
    master_rows: list[dict[str, str]]  # masters not verified
    findings: list[Finding] = field(default_factory=list)
    causes: list[tuple[Cause, int]] = field(default_factory=list)  # cause -> lights
    advisories: list[dict[str, Any]] = field(default_factory=list)
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def lights(self) -> pd.DataFrame:
        """The lights of the queue (QUEUE_COLUMNS)."""
        if "lights" not in self._tables:
            table = _typed(self.light_rows, QUEUE_COLUMNS)
            self._tables["lights"] = table.sort_values(["night", "session", "path"]).reset_index(
                drop=True
            )
        return self._tables["lights"]

    @lights.setter
    def lights(self, table: pd.DataFrame) -> None:
        self._tables["lights"], self.light_rows = table, _text_rows(table)

    @property
    def masters(self) -> pd.DataFrame:
        """The masters that are not verified."""
        if "masters" not in self._tables:
            self._tables["masters"] = _typed(self.master_rows, _MASTER_COLUMNS)
        return self._tables["masters"]

    @masters.setter
    def masters(self, table: pd.DataFrame) -> None:
        self._tables["masters"], self.master_rows = table, _text_rows(table)

    @property
    def empty(self) -> bool:
        """Whether nothing is quarantined."""
        return not self.light_rows and not self.master_rows

    def to_dict(self) -> dict[str, Any]:
        """The quarantined lights and masters as JSON records (``darkflow quarantine --format json``)."""

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


# what pandas reads as a missing value (``pandas._libs.parsers.STR_NA_VALUES``): the table shows
# these cells as pandas did, "nan"
_NA_TEXT = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)


def _shown(text: str | None) -> str:
    """A text cell as the table printed it when read by pandas (a missing value is "nan")."""
    return "nan" if text is None or text in _NA_TEXT else text


def _sort_key(text: str | None) -> tuple[bool, str]:
    """Order of a text column as pandas sorts it: missing values last."""
    return (True, "") if text is None or text in _NA_TEXT else (False, text)


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

    Each night's files are read once with the ``csv`` module and only the rows in the queue are
    kept (and typed, by pandas, at the end), so the queue of a year of nights costs a few
    milliseconds a night; decisions are read only for nights with lights in the queue.

    Raises
    ------
    DarkflowError
        ``workdir`` is not a darkflow work directory, or ``night`` is not one of its nights.
    """
    from darkflow.exceptions import DarkflowError

    path = Path(workdir)
    if not (path / "frame_report.csv").is_file():  # what darkflow.report.results.Workdir checks
        raise DarkflowError(
            f"{path} is not a darkflow work directory (no frame_report.csv); "
            "run `darkflow run INPUT --workdir DIR` first"
        )
    tables = _night_tables(path)
    nights = sorted(tables)
    if night is not None:
        if night not in tables:
            raise DarkflowError(f"no night {night!r} in {path}; have {nights}")
        nights = [night]
    wanted = {str(LightStatus.QUARANTINED)}
    if include_degraded:
        wanted.add(str(LightStatus.DEGRADED))
    light_rows: list[dict[str, str]] = []
    master_rows: list[dict[str, str]] = []
    advisories = []
    for n in nights:
        where = tables[n]
        queued = [
            r
            for r in _rows(where / "frame_report.csv")
            if r.get("night") == n and r.get("status") in wanted
        ]
        if queued:
            by_light = _advisories(where / "decisions.jsonl", {r["path"] for r in queued})
            for r in queued:
                r["advisory"] = by_light.get(r["path"], {}).get("text", "")
                r["top_cause"] = _top_cause(r.get("reasons"))
            advisories += [by_light[r["path"]] for r in queued if r["path"] in by_light]
            light_rows += queued
        for m in _rows(where / "masters.csv"):
            if m.get("status") == str(MasterStatus.VERIFIED):
                continue
            m["night"] = m.get("night") or n
            m["top_cause"] = _top_cause(m.get("reasons"))
            if m.get("path"):  # stored relative to the work directory (it may move)
                m["path"] = str(path.absolute() / m["path"])
            master_rows.append(m)
    light_rows = [{c: r.get(c) or "" for c in QUEUE_COLUMNS} for r in light_rows]
    light_rows.sort(
        key=lambda r: (_sort_key(r["night"]), _sort_key(r["session"]), _sort_key(r["path"]))
    )
    seen: set[str | None] = set()
    unique = []
    for m in master_rows:  # once each, the first kept (a missing id counts as one id)
        mid = None if m.get("master_id") in _NA_TEXT else m.get("master_id")
        if mid not in seen:
            seen.add(mid)
            unique.append({c: m.get(c) or "" for c in _MASTER_COLUMNS})
    reasons = [_split(r["reasons"]) for r in (*light_rows, *unique)]
    findings = triage(code for rs in reasons for code in rs)
    causes = Counter(r["top_cause"] for r in light_rows if r["top_cause"])
    if advisories:  # the matching package is slow to import and only this needs it
        from darkflow.matching import merge_advisories

        advisories = merge_advisories(advisories)
    return QuarantineQueue(
        workdir=path,
        light_rows=light_rows,
        master_rows=unique,
        findings=findings,
        causes=[(Cause(c), k) for c, k in causes.most_common()],
        advisories=advisories,
    )


def _advisories(path: Path, lights: set[str]) -> dict[str, Any]:
    """The advisories of these lights in a decisions file. A decision lists every candidate
    master (the whole dark library of its configuration): only the lines of the queued lights
    are parsed."""
    wanted = {json.dumps(p): p for p in lights}
    found: dict[str, Any] = {}
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        return found
    with fh:
        for line in fh:
            if '"advisory":null' in line or not any(key in line for key in wanted):
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:  # a torn last line
                continue
            if d.get("advisory") and d.get("light_path") in lights:
                found[d["light_path"]] = d["advisory"]
    return found


def _night_tables(workdir: Path) -> dict[str, Path]:
    """Every night of the work directory and the folder holding its files: ``nights/<night>/``
    (every run of the night), else the top level (an older work directory)."""
    tables: dict[str, Path] = {}
    folder = workdir / "nights"
    if folder.is_dir():
        for sub in sorted(folder.iterdir()):
            for row in _rows(sub / "frame_report.csv", columns=("night",)):
                if row["night"] and slug(row["night"]) == sub.name:
                    tables.setdefault(row["night"], sub)
    for row in _rows(workdir / "frame_report.csv", columns=("night",)):
        if row["night"] and row["night"] not in tables:
            tables[row["night"]] = workdir
    return tables


def _rows(path: Path, columns: tuple[str, ...] | None = None) -> list[dict[str, str]]:
    """The rows of a CSV file as text (``columns``: only these), ``[]`` when it is missing."""
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
            reader = csv.DictReader(fh)
            if columns is None:
                return list(reader)
            return [{c: r.get(c) or "" for c in columns} for r in reader]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _typed(rows: list[dict[str, str]], columns: list[str]) -> pd.DataFrame:
    """The text rows as the table pandas reads from a CSV file (numbers typed, blanks NaN)."""
    import pandas as pd

    if not rows:
        return pd.DataFrame(columns=columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    buf.seek(0)
    text = {"night": str, "session": str, "master_id": str, "advisory": str, "top_cause": str}
    table = pd.read_csv(buf, dtype={c: t for c, t in text.items() if c in columns})
    for column in ("advisory", "top_cause"):
        if column in table:
            table[column] = table[column].fillna("")
    return table


def _text_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """A typed table back as text rows (as in the files)."""
    text = table.to_csv(index=False, lineterminator="\n")
    return list(csv.DictReader(io.StringIO(text))) if len(table) else []


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if value != value else value


def format_queue(queue: QuarantineQueue, *, fmt: str = "table") -> str:
    """The queue as ``table`` (for people), ``json`` (everything) or ``csv`` (the lights)."""
    if fmt == "json":
        return json.dumps(queue.to_dict(), indent=1, default=str) + "\n"
    if fmt == "csv":
        return queue.lights.to_csv(index=False, lineterminator="\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r} (table, json or csv)")
    lights, masters = queue.light_rows, queue.master_rows
    out = [f"darkflow quarantine: {queue.workdir}"]
    if queue.empty:
        out.append("  the queue is empty: every light was calibrated and every master verified")
        return "\n".join(out) + "\n"
    counts = Counter(r["status"] for r in lights)
    parts = [
        f"{counts[str(s)]} {s}"
        for s in (LightStatus.QUARANTINED, LightStatus.DEGRADED)
        if counts[str(s)]
    ]
    n_nights = len({r["night"] for r in lights if r["night"] not in _NA_TEXT})
    out.append(f"  lights:  {', '.join(parts) or 'none'} in {n_nights} night(s)")
    out.append(f"  masters: {len(masters)} not verified")
    if queue.causes:
        out += ["", "Top causes (lights):"]
        out += [f"  {n:>4}  {c}: {c.description}" for c, n in queue.causes]
    if lights:
        out += ["", "Lights:"]
        group = None
        for row in lights:  # sorted by night and session: groups are runs of rows
            key = (_shown(row["night"]), _shown(row["session"]))
            if key != group:
                group = key
                out.append(f"  {key[0]} / {key[1]}")
            name = Path(_shown(row["path"])).name
            cause = f"  [{row['top_cause']}]" if row["top_cause"] else ""
            out.append(f"    {_shown(row['status']):<11} {name}: {_shown(row['reasons'])}{cause}")
    if masters:
        out += ["", "Masters not verified:"]
        for row in masters:
            confidence = _number(row["confidence"])
            conf = "" if confidence is None else f" conf {confidence:.2f}"
            out.append(
                f"  {_shown(row['master_id'])} {_shown(row['kind'])} "
                f"{_shown(row['status'])}{conf}: {_shown(row['reasons'])}"
            )
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
