"""Reason codes the pipeline itself attaches to lights and masters."""

from __future__ import annotations

from darkflow.model import ReasonCode

__all__ = ["LightReason", "MasterReason"]


class LightReason(ReasonCode):
    """Reasons the runner itself attaches to a light (beyond ingestion and matching)."""

    NOT_ELIGIBLE = ("not_eligible", "Ingestion rejected the frame (see its other reasons).")
    ISOLATED_UNUSED = (
        "isolated_unused",
        "Ingestion isolated the frame and the ingest.use_isolated policy left it out: its "
        "isolation reasons are not shared by its whole configuration group, or the group has no "
        "calibration frames (set use_isolated = 'all' to use it anyway).",
    )
    UNREADABLE = ("unreadable", "The light's pixels could not be read.")
    INPUT_VANISHED = (
        "input_vanished",
        "The light was deleted or moved after the scan, before it could be calibrated.",
    )
    INPUT_CHANGED = (
        "input_changed",
        "The light's file changed (size or modification time) after the scan: it is not "
        "calibrated from bytes its metadata and cache key do not describe. Run again.",
    )
    OUTPUT_FAILED = (
        "output_failed",
        "The calibrated light could not be written to the work directory (read-only, "
        "permissions, a name the file system refuses, I/O error).",
    )
    NO_FINITE_PIXELS = (
        "no_finite_pixels",
        "Every pixel of the light is NaN or infinite: there is nothing to calibrate.",
    )
    SHAPE_MISMATCH = ("shape_mismatch", "The light's image shape differs from the master's.")
    NONFINITE_PIXELS = ("nonfinite_pixels", "The light holds NaN/inf pixels; they stay NaN.")
    EXCESS_NOISE = (
        "excess_residual_noise",
        "Background residual noise is above the noise model's prediction (variance ratio gate).",
    )
    OVERSUBTRACTED = (
        "oversubtracted",
        "Too many background pixels far below the background: the dark model is too strong.",
    )
    NO_BIAS_FOR_SCALING = (
        "no_bias_for_scaling",
        "Exposure scaling needs a master bias of the same configuration; none was available.",
    )
    CALIBRATION_FAILED = ("calibration_failed", "An unexpected error stopped this light.")
    DARK_RESCALED = (
        "dark_rescaled",
        "The light's check measured a dark-signal scale error; the dark was rescaled once by the "
        "measured factor and the light checked again.",
    )
    PEDESTAL_ADDED = (
        "pedestal_added",
        "Over-subtracted values would go negative; a pedestal was added instead of clipping.",
    )
    CONSERVATIVE_FALLBACK = (
        "conservative_fallback",
        "No master passed the gates; the latest verified master of the configuration was "
        "subtracted with its dark signal amplitude-limited (subtract.conservative_fallback).",
    )
    FALLBACK_MASTER = (
        "fallback_previous_master",
        "This night's master for the light did not pass its acceptance gates; the prior "
        "verified master of the configuration was used instead.",
    )
    GAIN_ESTIMATED = (
        "egain_estimated",
        "The header gives no usable e-/ADU (EGAIN); it was measured (darkflow.gain: photon "
        "transfer on the dark stack, frame pairs, the light itself; egain_source says which, "
        "egain_sigma its 1-sigma uncertainty).",
    )
    MASTER_FAILED = (
        "master_failed",
        "Tonight's master of the light's configuration could not be built (masters.csv has its "
        "row with status failed and the reason); no other master would do.",
    )
    NO_GAIN = (
        "no_gain",
        "No e-/ADU in the header and too little signal to measure it: the uncertainty holds "
        "read noise and master uncertainty only.",
    )
    GAIN_NOT_NEEDED = (
        "gain_not_needed",
        "No e-/ADU in the header or measurable, and none needed: the light's background noise "
        "is within one standard deviation of its uncertainty without shot noise (the noise "
        "gate's own spread), or below it: no sign of a missing shot term.",
    )
    EGAIN_PAIR_MISMATCH = (
        "egain_pair_mismatch",
        "Photon transfer on the differences of consecutive lights of the session (the fixed "
        "pattern, nebulosity and response non-uniformity cancel) gives an e-/ADU that differs "
        "from the header's EGAIN beyond both uncertainties (pair_gain_e_per_adu, "
        "pair_gain_sigma, pair_gain_z in the frame report): the header's gain is wrong, so the "
        "calibrated light's shot-noise uncertainty is too.",
    )


class MasterReason(ReasonCode):
    """Reason codes of the master stage of a run (too few frames, a build that failed, ...)."""

    TOO_FEW_FRAMES = (
        "too_few_frames",
        "Fewer darks than combine.min_frames: no outlier rejection is possible.",
    )
    COMBINE_FAILED = ("combine_failed", "The combine failed; see the log for the error.")
    INCONSISTENT_SET = (
        "inconsistent_set",
        "The frames of the set cannot be combined: they differ in shape, settings or frame "
        "type (the error names the odd frames).",
    )
    UNREADABLE_FRAME = (
        "unreadable_frame",
        "A frame of the set could not be read (deleted, truncated or corrupt since the scan).",
    )
    OUTPUT_FAILED = (
        "output_failed",
        "The master could not be written to the work directory (read-only, permissions, I/O "
        "error).",
    )
    BIAS_LEVEL_JUMP = (
        "bias_level_jump",
        "The frames of this bias set jump in level by more than their jitter allows and more "
        "than the master's per-pixel noise: the set was split at the jump (each part its own "
        "master, each frame calibrated with the part nearest in time), or kept whole when a "
        "part would hold a single frame.",
    )
