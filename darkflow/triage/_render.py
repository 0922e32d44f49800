"""The findings written for reports: Markdown and HTML, and the table of every rule."""

from __future__ import annotations

import html

from darkflow.triage._rank import rank_causes
from darkflow.triage._rules import _RULES, TRIAGE_TABLE, Cause, Finding, Severity


def markdown_table() -> str:
    """The triage table as ``docs/verification.md`` shows it: code, severity, causes (weight)."""
    lines = ["| code | severity | likely causes (weight) |", "|---|---|---|"]
    for code, rule in TRIAGE_TABLE.items():
        ranked = sorted(rule.causes, key=lambda cw: -cw[1])
        causes = ", ".join(f"{c} ({w:g})" for c, w in ranked) or "-"
        lines.append(f"| `{code}` | {rule.severity} | {causes} |")
    return "\n".join(lines)


def triage_rows() -> list[dict[str, str]]:
    """The triage table as plain rows (code, severity, causes, checklist) for docs and reports."""
    rows = []
    for rule in _RULES:
        causes = ", ".join(f"{c} ({w:g})" for c, w in sorted(rule.causes, key=lambda cw: -cw[1]))
        rows.append(
            {
                "code": rule.code,
                "severity": str(rule.severity),
                "causes": causes,
                "checklist": " / ".join(rule.checklist),
            }
        )
    return rows


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _lead(
    findings: list[Finding], causes: list[tuple[Cause, float]] | None
) -> list[tuple[Cause, float]]:
    """The two most likely causes: ``causes`` as ranked by the caller (a night's ranking,
    :func:`~darkflow.triage.rank_night_causes`), else :func:`rank_causes` of the findings."""
    ranked = rank_causes(f.code for f in findings) if causes is None else causes
    return [(c, w) for c, w in ranked if c != Cause.UNKNOWN][:2]


def render_markdown(
    findings: list[Finding],
    *,
    title: str | None = "Triage",
    causes: list[tuple[Cause, float]] | None = None,
) -> str:
    """Findings as markdown: the most likely cause, then one section per finding.

    ``causes``: the ranking to lead with (default: :func:`rank_causes` of the findings' codes).
    """
    lines = [f"### {title}", ""] if title else []
    if not findings:
        return "\n".join([*lines, "No findings: every check passed."]) + "\n"
    top = _lead(findings, causes)
    if top:
        lead = "; ".join(f"**{c}** ({c.description})" for c, _ in top)
        lines += [f"Most likely cause: {lead}", ""]
    lines += ["| finding | severity | n | likely causes |", "|---|---|---|---|"]
    for f in findings:
        causes = ", ".join(str(c) for c in f.causes) or "-"
        lines.append(f"| `{f.code}` {_md(f.description)} | {f.severity} | {f.count} | {causes} |")
    lines.append("")
    for f in findings:
        if f.checklist and f.severity != Severity.INFO:
            lines.append(f"**{f.code}** checklist:")
            lines += [f"- [ ] {_md(item)}" for item in f.checklist]
            lines.append("")
    return "\n".join(lines)


def render_html(
    findings: list[Finding],
    *,
    title: str | None = "Triage",
    causes: list[tuple[Cause, float]] | None = None,
) -> str:
    """Findings as a self-contained HTML fragment (no scripts, no external resources).

    ``causes``: the ranking to lead with (default: :func:`rank_causes` of the findings' codes).
    """
    esc = html.escape
    parts = [f"<section class='df-triage'><h3>{esc(title)}</h3>" if title else "<section>"]
    if not findings:
        parts.append("<p>No findings: every check passed.</p></section>")
        return "".join(parts)
    top = _lead(findings, causes)
    if top:
        lead = "; ".join(f"<b>{esc(c)}</b> ({esc(c.description)})" for c, _ in top)
        parts.append(f"<p>Most likely cause: {lead}</p>")
    parts.append(
        "<table><tr><th>finding</th><th>severity</th><th>n</th><th>likely causes</th>"
        "<th>checklist</th></tr>"
    )
    for f in findings:
        items = "".join(f"<li>{esc(i)}</li>" for i in f.checklist)
        causes = ", ".join(esc(str(c)) for c in f.causes) or "-"
        parts.append(
            f"<tr class='df-{esc(f.severity)}'><td><code>{esc(f.code)}</code> "
            f"{esc(f.description)}</td><td>{esc(f.severity)}</td><td>{f.count}</td>"
            f"<td>{causes}</td><td><ul>{items}</ul></td></tr>"
        )
    parts.append("</table></section>")
    return "".join(parts)
