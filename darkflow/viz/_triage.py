"""Triage in the reports: the checklist per group of lights, and the night's top causes.

Reason codes come from the frame report (``reasons``, ``;``-separated) and ``masters.csv``;
:mod:`darkflow.triage` turns them into findings, likely causes and operator checklists.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import pandas as pd

from darkflow.model import LightStatus, MasterStatus
from darkflow.viz._common import is_missing, light_name, reason_codes

PROBLEM_STATUSES = (LightStatus.QUARANTINED, LightStatus.DEGRADED)  # worst first
_STATUS_ORDER = {s: i for i, s in enumerate((*PROBLEM_STATUSES, LightStatus.CALIBRATED))}


def triage_groups(lights: pd.DataFrame, statuses: Sequence[str] = PROBLEM_STATUSES) -> pd.DataFrame:
    """Lights of the given statuses grouped by identical (status, set of reason codes).

    Returns one row per group: ``status``, ``codes`` (tuple, in first-seen order), ``reasons``
    (the codes joined by ``;``), ``n`` and ``lights`` (file names); quarantined groups first,
    then the largest.
    """
    columns = ["status", "codes", "reasons", "n", "lights"]
    if lights.empty or "status" not in lights:
        return pd.DataFrame(columns=columns)
    groups: dict[tuple[str, frozenset[str]], dict[str, Any]] = {}
    for _, row in lights[lights["status"].isin(statuses)].iterrows():
        codes = reason_codes(row.get("reasons"))
        key = (str(row["status"]), frozenset(codes))
        group = groups.setdefault(key, {"status": key[0], "codes": codes, "lights": []})
        group["lights"].append(light_name(row["path"]))
    rows = [{**g, "reasons": ";".join(g["codes"]), "n": len(g["lights"])} for g in groups.values()]
    rows.sort(key=lambda g: (_STATUS_ORDER.get(g["status"], 9), -g["n"], g["reasons"]))
    return pd.DataFrame(rows, columns=columns)


def triage_html(lights: pd.DataFrame, statuses: Sequence[str] = PROBLEM_STATUSES) -> str:
    """The triage checklist of every quarantined or degraded light, one section per group.

    Each group of lights with the same status and reason codes gets the findings of
    :func:`darkflow.triage.triage` rendered by :func:`darkflow.triage.render_html`: what each
    code means, its likely causes (the most likely first) and what to check. A self-contained
    HTML fragment (no scripts).
    """
    from darkflow.triage import render_html, triage

    groups = triage_groups(lights, statuses)
    if groups.empty:
        return "<p class='df-triage-none'><em>No quarantined or degraded light: nothing to triage."
    counts = groups.groupby("status")["n"].sum().to_dict()
    lead = ", ".join(f"{counts[s]} {s}" for s in statuses if s in counts)
    parts = [
        f"<div class='df-triage-list'><p>{lead} light(s) in {len(groups)} group(s) of identical "
        "reasons.</p>"
    ]
    for _, g in groups.iterrows():
        codes = ", ".join(f"<code>{html.escape(c)}</code>" for c in g["codes"]) or "<em>none</em>"
        names = ", ".join(html.escape(n) for n in g["lights"])
        parts.append(
            f"<details class='df-group df-status-{html.escape(g['status'])}' open>"
            f"<summary><b>{g['n']} {html.escape(g['status'])}</b> · {codes}</summary>"
            f"<p class='df-lights'><small>{names}</small></p>"
            # every light of the group carries each code: n counts lights, as the overview does
            f"<div class='df-triage'>{render_html(triage(list(g['codes']) * g['n']), title=None)}"
            "</div>"
            "</details>"
        )
    parts.append("</div>")
    return "".join(parts)


def triage_markdown(lights: pd.DataFrame, statuses: Sequence[str] = PROBLEM_STATUSES) -> str:
    """:func:`triage_html` as markdown (for text reports and terminals)."""
    from darkflow.triage import render_markdown, triage

    groups = triage_groups(lights, statuses)
    if groups.empty:
        return "_No quarantined or degraded light: nothing to triage._\n"
    out = []
    for _, g in groups.iterrows():
        title = f"{g['n']} {g['status']}: {', '.join(g['codes']) or 'no reason code'}"
        out.append(render_markdown(triage(list(g["codes"]) * g["n"]), title=title))
        out.append(f"Lights: {', '.join(g['lights'])}\n")
    return "\n".join(out)


def _top_cause(row: pd.Series) -> str | None:
    """The frame report's ``top_cause``, else the best-ranked cause of the row's reasons."""
    from darkflow.triage import Cause, rank_causes

    cause = row.get("top_cause")
    if not is_missing(cause):
        return str(cause)
    ranked = [c for c, _ in rank_causes(reason_codes(row.get("reasons"))) if c != Cause.UNKNOWN]
    return str(ranked[0]) if ranked else None


def night_causes(lights: pd.DataFrame, masters: pd.DataFrame | None = None) -> pd.DataFrame:
    """The night's likely causes, ranked by the night's evidence, with the lights they cost.

    ``evidence`` is :func:`darkflow.triage.rank_night_causes` over the reasons of the
    quarantined and degraded lights and of the masters not verified: each symptom's rule weight
    times the share of those lights that carry it (a master's findings in full), so a symptom
    of every problem light outweighs one of a single light. The counts say what each cause
    cost: ``quarantined``, ``degraded``, ``calibrated`` (calibrated lights that carry the
    symptom) count the lights whose own ``top_cause`` (or the best-ranked cause of their
    reasons) it is, ``masters`` the masters not verified whose top cause it is; ``example`` is
    one such light. A cause with evidence but no light of its own still has its row; causes of
    equal evidence keep the order of the lights they cost.
    """
    from darkflow.triage import Cause, rank_night_causes

    counts: dict[str, dict[str, Any]] = {}

    def entry(cause: str) -> dict[str, Any]:
        return counts.setdefault(
            cause,
            {
                "quarantined": 0,
                "degraded": 0,
                "calibrated": 0,
                "masters": 0,
                "example": "",
                "_rank": 9,
            },
        )

    for _, row in lights.iterrows():
        cause = _top_cause(row)
        if cause is None:
            continue
        e = entry(cause)
        status = str(row.get("status"))
        if status in (LightStatus.QUARANTINED, LightStatus.DEGRADED, LightStatus.CALIBRATED):
            e[status] += 1
        # prefer a light with a problem as example
        rank = 1 if status == LightStatus.CALIBRATED else 0
        if not e["example"] or rank < e["_rank"]:
            e["example"], e["_rank"] = light_name(row["path"]), rank
    if masters is not None and len(masters) and "status" in masters:
        for _, row in masters[masters["status"].astype(str) != MasterStatus.VERIFIED].iterrows():
            cause = _top_cause(row)
            if cause is not None:
                entry(cause)["masters"] += 1
    evidence = {
        str(c): round(w, 3)
        for c, w in rank_night_causes(*_night_rows(lights, masters))
        if c != Cause.UNKNOWN or str(c) in counts
    }
    for cause in evidence:
        entry(cause)
    descriptions = {str(c): c.description for c in Cause}
    rows = [
        {"cause": c, "description": descriptions.get(c, ""), "evidence": evidence.get(c, 0.0), **v}
        for c, v in counts.items()
    ]
    columns = [
        "cause",
        "description",
        "evidence",
        "quarantined",
        "degraded",
        "calibrated",
        "masters",
        "example",
    ]
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    table["_key"] = table["quarantined"] + table["degraded"]
    table = table.sort_values(
        ["evidence", "_key", "masters", "calibrated", "cause"],
        ascending=[False, False, False, False, True],
    )
    return table.drop(columns="_key").reset_index(drop=True)


def night_causes_table(lights: pd.DataFrame, masters: pd.DataFrame | None = None):
    """:func:`night_causes` as a sortable table (pandas Styler), problem causes highlighted."""
    from darkflow.viz._common import SEVERITY_COLORS, SORTABLE, wrap_text

    table = night_causes(lights, masters)

    def colour(row: pd.Series) -> list[str]:
        # by what the cause cost: lights lost (red), lights or masters degraded by it (yellow),
        # a symptom on calibrated lights only (yellow too: worth a look, never "all good")
        if row["quarantined"]:
            shade = SEVERITY_COLORS["error"]
        elif row["degraded"] or row["masters"] or row["calibrated"]:
            shade = SEVERITY_COLORS["warning"]
        else:
            shade = SEVERITY_COLORS["info"]
        return [f"background-color: {shade}"] * len(row)

    styler = (
        table.style.apply(colour, axis=1)
        .format(precision=2, subset=["evidence"])
        .hide(axis="index")
        .set_table_attributes(f'class="df-causes {SORTABLE}"')
    )
    return wrap_text(styler, ["description", "example"])


def _night_rows(
    lights: pd.DataFrame, masters: pd.DataFrame | None = None
) -> tuple[list[list[str]], list[list[str]]]:
    """Reason codes per quarantined/degraded light and per master not verified."""
    problem = lights[lights["status"].isin(PROBLEM_STATUSES)] if "status" in lights else lights
    light_rows = [reason_codes(value) for value in problem.get("reasons", [])]
    master_rows = []
    if masters is not None and len(masters) and "status" in masters:
        for value in masters.loc[masters["status"].astype(str) != MasterStatus.VERIFIED, "reasons"]:
            master_rows.append(reason_codes(value))
    return light_rows, master_rows


def night_reason_codes(lights: pd.DataFrame, masters: pd.DataFrame | None = None) -> list[str]:
    """Reason codes of the night's quarantined/degraded lights and unverified masters."""
    light_rows, master_rows = _night_rows(lights, masters)
    return [code for row in (*light_rows, *master_rows) for code in row]


def night_checklist_html(lights: pd.DataFrame, masters: pd.DataFrame | None = None) -> str:
    """One triage of every problem code of the night (counts per code), as an HTML fragment.

    Its most likely cause is the night's (:func:`darkflow.triage.rank_night_causes`), as in
    :func:`night_causes`.
    """
    from darkflow.triage import rank_night_causes, render_html, triage

    light_rows, master_rows = _night_rows(lights, masters)
    findings = triage(night_reason_codes(lights, masters))
    causes = rank_night_causes(light_rows, master_rows)
    html_ = render_html(findings, title="Checklist for the night", causes=causes)
    return f"<div class='df-triage'>{html_}</div>"
