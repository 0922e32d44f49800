"""Verification: acceptance gates for masters, checks on calibrated lights, confidence.

Every master and every light leaves with measured confidence, and every failure with a reason
code (:class:`VerifyReason`) that :mod:`darkflow.triage` maps to likely causes and a checklist.

Masters
    :func:`holdout_split` (deterministic validation split) and :func:`assess_master`: held-out
    residual width, shift and outliers; combine rejection statistics; master noise inflation;
    variance against the noise model (with the master bias) and photon-transfer gain;
    fixed-pattern stability against the previous verified master by spatial-frequency band
    (hot-pixel scale, level, low-frequency structure, column banding, hot-pixel overlap).
    Result: :class:`MasterAssessment` (``verified`` or ``low_confidence``).
    :func:`assess_master_set` judges a master from its input files as the pipeline does
    (hold-out split, training combine, gates, :func:`master_verdict`).
Lights
    :func:`check_light`: background noise against the propagated uncertainty, dark-model scale
    from the hot pixels, banding left in the background, plausibility (negative background,
    negative clipping, ADC floor and range), photometric integrity (centroids, annulus
    background and fluxes before/after); a stacking :func:`frame_weight`, a corrective
    :class:`Response` (:func:`apply_response`) and :func:`light_status`.
Residuals
    :func:`residual_analysis` (neighbour-median residuals normalised by the predicted sigma),
    :func:`background_map`, :func:`robust_std`, :func:`neighbour_median`.

Metrics, formulas and tolerances: ``docs/verification.md``.
"""

from darkflow.verify._fpn import (
    BandEnergies,
    band_energies,
    hot_scale_fit,
    row_window,
    tile_medians,
)
from darkflow.verify._gate import (
    GateStatus,
    chi2_deviate,
    combine_spread,
    deviate_of_p,
    gate_confidence,
    log_variance_sd,
    mad_sigma_rel_sd,
    median_sd,
    poisson_deviate,
    t_inflation,
    z_threshold,
)
from darkflow.verify._light import (
    HARMFUL,
    AppliedResponse,
    LightAssessment,
    Response,
    ResponseAction,
    apply_response,
    check_light,
    config_differences,
    frame_weight,
    light_status,
)
from darkflow.verify._lightgates import NoiseBudget, noise_budget
from darkflow.verify._master import MasterAssessment, assess_master, holdout_split
from darkflow.verify._metrics import (
    INFORMATIONAL,
    LIGHT_VALUE_COLUMNS,
    MASTER_GATES,
    MASTER_VALUE_COLUMNS,
    MasterGate,
    Metric,
    VerifyReason,
    band_confidence,
    not_measured,
    significance_gate,
)
from darkflow.verify._residuals import (
    HIST_EDGES,
    NEIGHBOUR_VAR_FACTOR,
    VERTICAL_VAR_FACTOR,
    ResidualParts,
    ResidualStats,
    background_map,
    batch_log_variance,
    neighbour_median,
    residual_analysis,
    residual_parts,
    robust_std,
    vertical_residual,
)
from darkflow.verify._set import (
    MasterSetAssessment,
    analysis_rows,
    assess_master_set,
    band_master,
    master_verdict,
    split_set,
)

__all__ = [
    "HARMFUL",
    "HIST_EDGES",
    "INFORMATIONAL",
    "LIGHT_VALUE_COLUMNS",
    "MASTER_GATES",
    "MASTER_VALUE_COLUMNS",
    "NEIGHBOUR_VAR_FACTOR",
    "VERTICAL_VAR_FACTOR",
    "AppliedResponse",
    "BandEnergies",
    "GateStatus",
    "LightAssessment",
    "MasterAssessment",
    "MasterGate",
    "MasterSetAssessment",
    "Metric",
    "NoiseBudget",
    "ResidualParts",
    "ResidualStats",
    "Response",
    "ResponseAction",
    "VerifyReason",
    "analysis_rows",
    "apply_response",
    "assess_master",
    "assess_master_set",
    "background_map",
    "band_confidence",
    "band_energies",
    "band_master",
    "batch_log_variance",
    "check_light",
    "chi2_deviate",
    "combine_spread",
    "config_differences",
    "deviate_of_p",
    "frame_weight",
    "gate_confidence",
    "holdout_split",
    "hot_scale_fit",
    "light_status",
    "log_variance_sd",
    "mad_sigma_rel_sd",
    "master_verdict",
    "median_sd",
    "neighbour_median",
    "noise_budget",
    "not_measured",
    "poisson_deviate",
    "residual_analysis",
    "residual_parts",
    "robust_std",
    "row_window",
    "significance_gate",
    "split_set",
    "t_inflation",
    "tile_medians",
    "vertical_residual",
    "z_threshold",
]
