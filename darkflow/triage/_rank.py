"""Triage of reason codes: findings, and the ranking of likely causes by the weights of the
distinct symptoms.
"""

from __future__ import annotations

from collections.abc import Iterable

from darkflow.triage._rules import (
    _SEVERITY_ORDER,
    _SYMPTOM_OF,
    _UNKNOWN_RULE,
    INFO,
    JOINT_RULES,
    TRIAGE_TABLE,
    Cause,
    Finding,
)
from darkflow.triage._texts import _description


def _codes(reasons: Iterable[object]) -> list[str]:
    out = []
    for r in reasons:
        if r is None:
            continue
        # accept "a;b" strings as written in frame_report.csv
        out.extend(part.strip() for part in str(r).split(";") if part.strip())
    return out


def triage(reasons: Iterable[object]) -> list[Finding]:
    """Findings for reason codes (enum members or strings, ``;``-separated lists allowed).

    One finding per distinct code, with how often it occurred; errors first, then warnings,
    then informational findings, each in order of first appearance.
    """
    codes = _codes(reasons)
    counts: dict[str, int] = {}
    for code in codes:
        counts[code] = counts.get(code, 0) + 1
    findings = []
    for code, count in counts.items():
        rule = TRIAGE_TABLE.get(code, _UNKNOWN_RULE)
        ranked = sorted(rule.causes, key=lambda cw: -cw[1])
        findings.append(
            Finding(
                code=code,
                description=_description(code),
                severity=rule.severity,
                causes=tuple(c for c, _ in ranked),
                checklist=rule.checklist,
                count=count,
            )
        )
    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])  # stable: keeps first appearance
    return findings


def rank_causes(reasons: Iterable[object]) -> list[tuple[Cause, float]]:
    """Likely causes ranked by evidence: rule weights summed over the distinct *symptoms*.

    Codes of one symptom (:data:`SYMPTOMS`) count once, with each cause's largest weight among
    them; a :class:`JointRule` whose symptoms are both present adds its weights.
    Informational codes carry no weight. Ties keep the order of the :class:`Cause` enum.
    """
    evidence: dict[str, dict[Cause, float]] = {}  # symptom (or lone code) -> cause weights
    present = set()
    for code in dict.fromkeys(_codes(reasons)):
        rule = TRIAGE_TABLE.get(code, _UNKNOWN_RULE)
        if rule.severity == INFO:  # a note (a check not measured, a normal event) is no evidence
            continue
        present.add(code)
        symptom = evidence.setdefault(_SYMPTOM_OF.get(code, code), {})
        for cause, weight in rule.causes:
            symptom[cause] = max(symptom.get(cause, 0.0), weight)
    scores: dict[Cause, float] = {}
    for symptom in evidence.values():
        for cause, weight in symptom.items():
            scores[cause] = scores.get(cause, 0.0) + weight
    for joint in JOINT_RULES:
        if all(present & codes for codes in joint.symptoms):
            for cause, weight in joint.causes:
                scores[cause] = scores.get(cause, 0.0) + weight
    order = list(Cause)
    return sorted(scores.items(), key=lambda cw: (-cw[1], order.index(cw[0])))
