"""Dashboards in three layers: prepare data (pandas) → make holoviews elements → lay them out.

``prepare_*`` functions turn what :class:`darkflow.report.results.Workdir` returns into tidy DataFrames
(no plotting imports); ``make_*`` functions build holoviews elements (or, for the linked
hot-pixel threshold, a bokeh layout in a panel pane) from them; notebooks and widgets lay the
elements out; :func:`show` displays an element (or a bokeh model) as a static bokeh embed,
which is what the report pages use (a fraction of the CPU of panel's notebook display).
holoviews, bokeh and panel are imported lazily, so the core package works headless
and a missing plotting stack gives a clear error.

Everything shown in the static HTML reports works without a kernel: sliders are bokeh
``CustomJS`` callbacks over data embedded once (or holoviews ``HoloMap`` s, every frame embedded), and tables of class
``df-sortable`` are sorted by the report template's inline script. See ``docs/reports.md``.

Modules: :mod:`~darkflow.viz._thermal` (cooler drift), :mod:`~darkflow.viz._darklaw` (dark current
against temperature),
:mod:`~darkflow.viz._residuals` (residual histograms, per-light slider),
:mod:`~darkflow.viz._masters` (hot-pixel persistence, spectra, acceptance metrics),
:mod:`~darkflow.viz._tables` (match decisions, confidence table, night tables),
:mod:`~darkflow.viz._triage` (checklists per group of lights, top causes of the night).
"""

from darkflow.viz._common import (
    MASTER_STATUS_COLORS,
    SEVERITY_COLORS,
    SORTABLE,
    STATUS_COLORS,
    BokehView,
    block_max,
    bokeh_pane,
    message,
    offline_displays,
    padded_range,
    setup_notebook,
    short_path,
    show,
    wrap_text,
)
from darkflow.viz._darklaw import (
    describe_law,
    law_for,
    make_dark_law,
    master_dark_signals,
    prepare_dark_law,
    stored_laws,
)
from darkflow.viz._masters import (
    ACCEPTANCE_COLUMNS,
    make_hot_pixel_dashboard,
    make_hot_pixel_map,
    make_master_spectra,
    master_images,
    masters_acceptance_table,
    prepare_hot_pixels,
    prepare_master_spectra,
    spectra_summary,
)
from darkflow.viz._residuals import (
    light_order,
    make_residual_histograms,
    make_residual_holomap,
    make_residual_slider,
    prepare_residual_hists,
)
from darkflow.viz._tables import (
    DECISION_COLUMNS,
    TABLE_COLUMNS,
    advisories,
    confidence_table,
    decisions_table,
    make_confidence_timeline,
    make_decisions,
    prepare_decisions,
    quarantine_table,
    session_label,
    session_status,
    session_table,
    text_table,
)
from darkflow.viz._thermal import (
    describe_drift,
    make_drift_dashboard,
    make_drift_figures,
    make_night_thermal,
    prepare_drift,
)
from darkflow.viz._triage import (
    night_causes,
    night_causes_table,
    night_checklist_html,
    night_reason_codes,
    triage_groups,
    triage_html,
    triage_markdown,
)

__all__ = [
    "ACCEPTANCE_COLUMNS",
    "DECISION_COLUMNS",
    "MASTER_STATUS_COLORS",
    "SEVERITY_COLORS",
    "SORTABLE",
    "STATUS_COLORS",
    "TABLE_COLUMNS",
    "BokehView",
    "advisories",
    "block_max",
    "bokeh_pane",
    "confidence_table",
    "decisions_table",
    "describe_drift",
    "describe_law",
    "law_for",
    "light_order",
    "make_confidence_timeline",
    "make_dark_law",
    "make_decisions",
    "make_drift_dashboard",
    "make_drift_figures",
    "make_hot_pixel_dashboard",
    "make_hot_pixel_map",
    "make_master_spectra",
    "make_night_thermal",
    "make_residual_histograms",
    "make_residual_holomap",
    "make_residual_slider",
    "master_dark_signals",
    "master_images",
    "masters_acceptance_table",
    "message",
    "night_causes",
    "night_causes_table",
    "night_checklist_html",
    "night_reason_codes",
    "offline_displays",
    "padded_range",
    "prepare_dark_law",
    "prepare_decisions",
    "prepare_drift",
    "prepare_hot_pixels",
    "prepare_master_spectra",
    "prepare_residual_hists",
    "quarantine_table",
    "session_label",
    "session_status",
    "session_table",
    "setup_notebook",
    "short_path",
    "show",
    "spectra_summary",
    "stored_laws",
    "text_table",
    "triage_groups",
    "triage_html",
    "triage_markdown",
    "wrap_text",
]
