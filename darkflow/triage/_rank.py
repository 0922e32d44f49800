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
    NEEDS,
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


def _row_codes(row: object) -> list[str]:
    """The distinct codes of one frame's reasons: a ``;``-separated string, or codes."""
    if row is None or isinstance(row, float):  # no reasons (a missing CSV cell reads as NaN)
        return []
    if isinstance(row, str):
        return list(dict.fromkeys(_codes([row])))
    return list(dict.fromkeys(_codes(row)))  # type: ignore[arg-type]


def _evidence(codes: Iterable[str]) -> tuple[dict[str, dict[Cause, float]], set[str]]:
    """One frame's evidence: symptom (or lone code) -> cause -> weight, and the codes present.

    Codes of one symptom (:data:`SYMPTOMS`) count once, each cause with its largest weight among
    them; informational codes are no evidence. A cause that :data:`NEEDS` a code the frame
    lacks gets no weight from that symptom.
    """
    codes = list(codes)
    evidence: dict[str, dict[Cause, float]] = {}
    present = set()
    for code in codes:
        rule = TRIAGE_TABLE.get(code, _UNKNOWN_RULE)
        if rule.severity == INFO:  # a note (a check not measured, a normal event) is no evidence
            continue
        present.add(code)
        name = _SYMPTOM_OF.get(code, code)
        symptom = evidence.setdefault(name, {})
        for cause, weight in rule.causes:
            needs = NEEDS.get((name, cause))
            if needs is not None and needs.isdisjoint(codes):
                continue
            symptom[cause] = max(symptom.get(cause, 0.0), weight)
    return evidence, present


class _Scores:
    """Each cause's summed evidence and its strongest single contribution (a symptom's or a
    joint rule's weight, times its share of the lights on a night)."""

    def __init__(self) -> None:
        self.total: dict[Cause, float] = {}
        self.strongest: dict[Cause, float] = {}

    def add(self, cause: Cause, weight: float) -> None:
        self.total[cause] = self.total.get(cause, 0.0) + weight
        self.strongest[cause] = max(self.strongest.get(cause, 0.0), weight)

    def ranked(self) -> list[tuple[Cause, float]]:
        """Causes by total evidence; a tie goes to the cause with the stronger single piece of
        evidence (a 3, one measurement that establishes it, before 2 + 1 of weaker hints), then
        to the order of the :class:`Cause` enum."""
        order = list(Cause)
        return sorted(
            self.total.items(),
            key=lambda cw: (-round(cw[1], 9), -self.strongest[cw[0]], order.index(cw[0])),
        )


def rank_causes(reasons: Iterable[object]) -> list[tuple[Cause, float]]:
    """Likely causes ranked by evidence: rule weights summed over the distinct *symptoms*.

    Codes of one symptom (:data:`SYMPTOMS`) count once, with each cause's largest weight among
    them; a :class:`JointRule` whose symptoms are both present adds its weights.
    Informational codes carry no weight. A tie goes to the cause with the stronger single
    piece of evidence, then to the order of the :class:`Cause` enum.
    """
    evidence, present = _evidence(dict.fromkeys(_codes(reasons)))
    scores = _Scores()
    for symptom in evidence.values():
        for cause, weight in symptom.items():
            scores.add(cause, weight)
    for joint in JOINT_RULES:
        if all(present & codes for codes in joint.symptoms):
            for cause, weight in joint.causes:
                scores.add(cause, weight)
    return scores.ranked()


def rank_night_causes(
    lights: Iterable[object], masters: Iterable[object] = ()
) -> list[tuple[Cause, float]]:
    """A night's likely causes, each symptom weighed by the share of the lights that show it.

    ``lights`` and ``masters`` hold one entry per frame: its reasons (a ``;``-separated string
    or a list of codes; ``None`` for none). The lights are replicates of one calibration: a
    fault of the calibration shows on (nearly) every light it touched, so a symptom counts with
    its rule weight times the *fraction* of the lights carrying it (the mean of the per-light
    evidence), and a symptom of 1 light of 20 (a false alarm at the gates' stated rate, or
    something of that light alone) weighs 1/20 of one on every light. A master is no replicate
    but a finding about its own frames, measured on all of them: the masters' symptoms count
    in full, pooled as :func:`rank_causes` pools codes. A symptom seen both on the lights and
    on the masters counts once, with the larger of the two. A :class:`JointRule` counts on
    each light whose own codes, or the masters', hold both of its symptoms (the masters' codes
    apply to every light: one master calibrates many lights), again as a share of the lights;
    without lights, on the masters' codes alone.

    One light (or several with the same codes) and one master rank exactly as
    :func:`rank_causes` of their codes together. Ties are broken as there (the stronger single
    piece of evidence, then the order of the :class:`Cause` enum); informational codes carry
    no weight.
    """
    light_rows = [_evidence(_row_codes(row)) for row in lights]
    master_evidence: dict[str, dict[Cause, float]] = {}
    master_codes: set[str] = set()
    for row in masters:
        evidence, present = _evidence(_row_codes(row))
        master_codes |= present
        for name, weights in evidence.items():
            pooled = master_evidence.setdefault(name, {})
            for cause, weight in weights.items():
                pooled[cause] = max(pooled.get(cause, 0.0), weight)
    symptoms: dict[str, dict[Cause, float]] = {}
    for evidence, _present in light_rows:
        for name, weights in evidence.items():
            total = symptoms.setdefault(name, {})
            for cause, weight in weights.items():
                total[cause] = total.get(cause, 0.0) + weight
    for total in symptoms.values():  # the sums over the lights become means (exact when equal)
        for cause in total:
            total[cause] /= len(light_rows)
    for name, weights in master_evidence.items():
        merged = symptoms.setdefault(name, {})
        for cause, weight in weights.items():
            merged[cause] = max(merged.get(cause, 0.0), weight)
    scores = _Scores()
    for weights in symptoms.values():
        for cause, weight in weights.items():
            scores.add(cause, weight)
    frames = [present | master_codes for _e, present in light_rows] or [master_codes]
    for joint in JOINT_RULES:
        share = sum(all(p & codes for codes in joint.symptoms) for p in frames) / len(frames)
        if share:
            for cause, weight in joint.causes:
                scores.add(cause, weight * share)
    return scores.ranked()
