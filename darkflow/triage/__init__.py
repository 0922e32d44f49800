"""Triage: every reason code maps to likely causes and an operator checklist.

The mapping is data (:data:`TRIAGE_TABLE`, one :class:`TriageRule` per reason code of
ingestion, matching, the pipeline and verification). :func:`triage` turns the reason codes of a
light, a master or a whole night into :class:`Finding` s; :func:`rank_causes` weighs the
evidence: each rule gives its causes a weight (how strongly that symptom points to the cause),
and the weights of the *distinct* reasons add up, so a combination of symptoms singles out a
cause that no single symptom names unambiguously (over-subtracted hot pixels alone: warmer
darks or another gain; together with excess frame-to-frame variance in the darks: the gain).
:func:`rank_night_causes` ranks a night's: each light symptom weighed by the share of the lights
that carry it, the masters' findings in full.
:func:`render_markdown` and :func:`render_html` write the findings for reports.

Reason codes are matched by their string value, so a rule never imports the module that raises
the code; a code without a rule still gets a finding (cause ``unknown``).

The package's parts: ``_rules.py`` (the rule data), ``_texts.py`` (reason descriptions and
the generated ``_table.py``), ``_rank.py`` (findings and the ranking of causes), ``_render.py``
(Markdown and HTML); ``reasons.py`` the runner's own reason codes. Every name of the parts is
importable from here as before.
"""

from __future__ import annotations

from darkflow.triage._rank import (  # noqa: F401
    _codes,
    rank_causes,
    rank_night_causes,
    triage,
)
from darkflow.triage._render import (  # noqa: F401
    _md,
    markdown_table,
    render_html,
    render_markdown,
    triage_rows,
)
from darkflow.triage._rules import (  # noqa: F401
    _BIAS,
    _COSMIC,
    _FEW,
    _FILE,
    _GAIN,
    _HEADER,
    _IO,
    _LEAK,
    _MOVED,
    _NONE,
    _READOUT,
    _RULES,
    _SEVERITY_ORDER,
    _SYMPTOM_OF,
    _THERMAL,
    _UNKNOWN_RULE,
    BIAS,
    CFG,
    DONE,
    ERR,
    EXP,
    EXPOSURE_CHANGED,
    FEW,
    FILE,
    HDR,
    INFO,
    IO,
    JOINT_RULES,
    LEAK,
    LIT,
    MISS,
    MOVED,
    NEEDS,
    NOISE,
    ODD,
    OFFS,
    SENS,
    SYMPTOMS,
    TRIAGE_TABLE,
    UNST,
    WARN,
    C,
    Cause,
    Finding,
    G,
    JointRule,
    R,
    Severity,
    T,
    TriageRule,
    _codes_of,
    _r,
)
from darkflow.triage._texts import (  # noqa: F401
    _description,
    _imported_reason_texts,
    _reason_texts,
    _sources_fingerprint,
    _table_texts,
    reason_table_source,
    reason_texts,
    write_reason_table,
)

__all__ = [
    "JOINT_RULES",
    "SYMPTOMS",
    "TRIAGE_TABLE",
    "Cause",
    "Finding",
    "JointRule",
    "Severity",
    "TriageRule",
    "rank_causes",
    "rank_night_causes",
    "render_html",
    "render_markdown",
    "triage",
    "triage_rows",
]
