"""The triage rules as data: causes, severities, one :class:`TriageRule` per reason code, the
symptom groups and the joint rules that weigh symptoms seen together.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Cause(StrEnum):
    """A likely root cause of failing checks, with a one-line description."""

    def __new__(cls, value: str, description: str = ""):
        """A member with its one-line ``description``."""
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        return obj

    THERMAL_MISMATCH = ("thermal_mismatch", "Darks and lights at different sensor temperatures.")
    GAIN_MISMATCH = ("gain_mismatch", "Darks taken at another gain (e-/ADU) than the lights.")
    READOUT_MODE = ("readout_mode", "Darks taken in another readout mode than the lights.")
    CONFIG_MISMATCH = (
        "config_mismatch",
        "Calibration frames exist only for other settings (offset, binning, image size).",
    )
    EXPOSURE_MISMATCH = ("exposure_mismatch", "Darks of another exposure time, not scalable.")
    LIGHT_LEAK = ("light_leak", "Stray light reached the sensor while the darks were taken.")
    BIAS_DRIFT = ("bias_drift", "The bias (offset) level differs between darks and lights.")
    COSMIC_RAYS = ("cosmic_rays", "Heavy cosmic-ray (or flickering-pixel) contamination.")
    TOO_FEW_DARKS = ("too_few_darks", "Too few darks for a low-noise, outlier-free master.")
    UNSTABLE_DARK_SET = (
        "unstable_dark_set",
        "Conditions changed during the dark sequence (temperature, light, electronics).",
    )
    NOISE_MODEL = (
        "noise_model",
        "The gain or read noise used for the uncertainty is wrong (EGAIN missing or wrong).",
    )
    SENSOR_CHANGE = ("sensor_change", "The sensor's hot-pixel population changed (ageing).")
    DARKS_CONTAIN_LIGHT = (
        "darks_contain_light",
        "Images of the sky among the darks (a light mislabelled as dark).",
    )
    OFFSET_TOO_LOW = ("offset_too_low", "The camera offset is too low: the ADC clips at zero.")
    MISSING_CALIBRATION = ("missing_calibration", "No usable calibration frames for the light.")
    FILE_PROBLEM = ("file_problem", "The file is damaged, truncated or not an image.")
    HEADER_PROBLEM = ("header_problem", "Header keywords are missing or inconsistent.")
    ALREADY_PROCESSED = ("already_processed", "The frame was already calibrated or stacked.")
    IO_FAILURE = (
        "io_failure",
        "The work directory could not be written (disk full, read-only, permissions, I/O error).",
    )
    INCONSISTENT_SET = (
        "inconsistent_set",
        "The calibration set mixes frames that cannot be combined (shape, settings, type).",
    )
    INPUT_MOVED = (
        "input_moved",
        "An input file was deleted, moved or rewritten while the night was being processed.",
    )
    UNKNOWN = ("unknown", "No rule for this reason code.")


class Severity(StrEnum):
    """How bad a cause is: missing evidence (info), a weaker result (warning), a wrong or missing one
    (error)."""

    INFO = "info"  # missing evidence or a normal event, nothing to fix
    WARNING = "warning"  # the result is usable but weaker than it should be
    ERROR = "error"  # the result is wrong or missing


@dataclass(frozen=True)
class TriageRule:
    """What one reason code suggests: weighted likely causes and what to check."""

    code: str
    severity: Severity
    causes: tuple[tuple[Cause, float], ...]
    checklist: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    """One reason code explained: description, severity, likely causes, checklist."""

    code: str
    description: str
    severity: Severity
    causes: tuple[Cause, ...]
    checklist: tuple[str, ...]
    count: int = 1  # how many times the code was seen (frames, masters)


T, G, R, C = Cause.THERMAL_MISMATCH, Cause.GAIN_MISMATCH, Cause.READOUT_MODE, Cause.COSMIC_RAYS
CFG, EXP, LEAK = Cause.CONFIG_MISMATCH, Cause.EXPOSURE_MISMATCH, Cause.LIGHT_LEAK
BIAS, FEW, UNST = Cause.BIAS_DRIFT, Cause.TOO_FEW_DARKS, Cause.UNSTABLE_DARK_SET
NOISE, SENS, LIT = Cause.NOISE_MODEL, Cause.SENSOR_CHANGE, Cause.DARKS_CONTAIN_LIGHT
MISS, FILE, HDR = Cause.MISSING_CALIBRATION, Cause.FILE_PROBLEM, Cause.HEADER_PROBLEM
DONE, OFFS = Cause.ALREADY_PROCESSED, Cause.OFFSET_TOO_LOW
IO, ODD, MOVED = Cause.IO_FAILURE, Cause.INCONSISTENT_SET, Cause.INPUT_MOVED
INFO, WARN, ERR = Severity.INFO, Severity.WARNING, Severity.ERROR

# Checklists shared by several rules
_THERMAL = (
    "Verify cooling stability: the cooler reached and held the set-point (CCD-TEMP vs SET-TEMP "
    "over the session, cooler power below ~80%).",
    "Check the temperature sensor calibration: the dark current should double every ~6 °C.",
    "Take darks at the lights' set-point and within a few hours of them (dark acquisition "
    "intervals); let the sensor settle 5-10 min after cool-down before the first dark.",
)
_GAIN = (
    "Compare GAIN/EGAIN of the darks and the lights, and the capture program's camera "
    "settings used for the dark sequence.",
    "Re-take the darks at the lights' gain and offset.",
)
_READOUT = (
    "Compare the readout mode (READOUTM, driver 'mode'/'high gain mode' setting, USB speed) "
    "of darks and lights.",
    "Re-take the darks (and biases) in the lights' readout mode.",
)
_FEW = (
    "Take more darks: 20 or more per exposure and temperature (the master's noise adds to "
    "every light as 1 + 1/N).",
    "Keep sigma clipping on (combine.sigma_high = 3) so cosmic rays are rejected.",
)
_COSMIC = (
    "Check the clipping settings: combine.sigma_high = 3, max_iters >= 3; more darks make "
    "rejection robust.",
    "Prefer several shorter darks (or a longer series) over few long ones; look for a "
    "radioactive source near the sensor (thoriated glass, some filters).",
)
_LEAK = (
    "Cover the telescope and the camera (cap on, no gaps at the filter wheel, adapters and "
    "off-axis guider); switch off dome and indicator lights.",
    "Take darks with the camera off the telescope or in the dark; compare a dark taken with "
    "an extra cover.",
    "Use the previous verified master until new darks are taken.",
)
_BIAS = (
    "Compare the bias level of recent bias frames with the darks' (OFFSET, BLKLEVEL, driver "
    "updates, electronics temperature).",
    "Take bias frames and darks in the same session as the lights, with the same offset.",
)
_FILE = (
    "Copy the file again from the capture computer; check for disk or transfer errors.",
    "Open it in a FITS viewer to see whether the data are complete.",
)
_HEADER = (
    "Check the capture program's FITS keyword settings (frame type, exposure, temperature, "
    "instrument, time).",
    "Fix the header in the source files or set the value in the capture profile.",
)
_MOVED = (
    "Do not move, delete or rewrite frames while darkflow runs (e.g. a sync or a capture "
    "program still writing into the folder); run again once the folder is complete.",
)
_IO = (
    "Free space on the work directory's disk (or raise the quota) and check it is writable "
    "by the user running darkflow; run again: finished work is kept.",
)
_NONE: tuple[str, ...] = ()


def _r(code: str, severity: Severity, causes: dict[Cause, float], *checklist: str) -> TriageRule:
    return TriageRule(code, severity, tuple(causes.items()), tuple(checklist))


_RULES = (
    # ------------------------------------------------------------------ ingestion
    _r("empty_file", ERR, {FILE: 3}, *_FILE),
    _r("unreadable", ERR, {FILE: 3}, *_FILE),
    _r(
        "not_regular_file",
        ERR,
        {FILE: 3},
        "A FIFO, device, socket or directory carries a FITS name: rename or remove it.",
    ),
    _r("not_fits", ERR, {FILE: 3}, *_FILE),
    _r("truncated", ERR, {FILE: 3}, *_FILE),
    _r("no_image", ERR, {FILE: 3}, *_FILE),
    _r(
        "not_2d",
        ERR,
        {DONE: 2, FILE: 1},
        "Calibrate the raw mono/Bayer frames, not debayered RGB cubes.",
    ),
    _r("duplicate", INFO, {FILE: 1}, "Remove the duplicate copy (same bytes, another path)."),
    _r("internal_error", ERR, {Cause.UNKNOWN: 1}, "See the log for the error and report it."),
    _r("missing_exposure", ERR, {HDR: 3}, *_HEADER),
    _r("invalid_exposure", ERR, {HDR: 3}, *_HEADER),
    _r("inconsistent_keys", ERR, {HDR: 3}, *_HEADER),
    _r("invalid_binning", ERR, {HDR: 3}, *_HEADER),
    _r(
        "frame_type_inferred",
        INFO,
        {HDR: 1},
        "Let the capture program write IMAGETYP, or keep darks in a folder named 'dark'.",
    ),
    _r("unknown_frame_type", WARN, {HDR: 2}, *_HEADER),
    _r(
        "missing_temperature",
        WARN,
        {HDR: 1, T: 1},
        "Cooled camera: check the capture program writes CCD-TEMP.",
        "Uncooled camera: take darks right after the lights, at the same ambient temperature.",
    ),
    _r("missing_instrument", WARN, {HDR: 2}, *_HEADER),
    _r("missing_date", WARN, {HDR: 2}, *_HEADER),
    _r("inconsistent_time", WARN, {HDR: 2}, "Check the capture computer's clock and time zone."),
    _r("invalid_value", WARN, {HDR: 2}, *_HEADER),
    _r(
        "egain_unusable",
        INFO,
        {NOISE: 1},
        "EGAIN holds a gain setting's name or no number: the gain is measured from the frames "
        "(egain_source, egain_sigma in the frame report); let the program write e-/ADU.",
    ),
    _r("already_calibrated", INFO, {DONE: 3}, "Use the raw frame instead; never calibrate twice."),
    _r("stacked", INFO, {DONE: 3}, "Calibrate the individual sub-frames, not the stack."),
    # ------------------------------------------------------------------ matching
    _r(
        "no_master_for_config",
        ERR,
        {CFG: 3, MISS: 2},
        "Take darks (and biases) at the lights' gain, offset, readout mode and binning.",
        "See the config_* findings for which setting differs.",
    ),
    _r(
        "no_candidate",
        ERR,
        {T: 2, EXP: 1, MISS: 1},
        "Follow the acquisition advisory in decisions.jsonl (exposure and temperature to take).",
        *_THERMAL,
    ),
    _r(
        "expanded_search",
        WARN,
        {T: 1, MISS: 1},
        "Add darks closer to the lights' temperature, exposure and date.",
        *_THERMAL[:1],
    ),
    # a temperature not recorded is a header finding; the thermal mismatch it leaves possible
    # is measured on the light itself (its hot pixels against the model, the unknown
    # temperature's assumed error as the gate's materiality), whose findings carry the thermal
    # weight: the missing keyword alone, present on every night of such a camera, is none
    _r("light_no_temperature", WARN, {HDR: 1}, *_THERMAL[:1], *_HEADER[:1]),
    _r("master_no_temperature", WARN, {HDR: 1}, *_THERMAL[:1], *_HEADER[:1]),
    _r("exposure_scaled", INFO, {}, "Nothing to do; darks at the lights' exposure avoid scaling."),
    _r(
        "exposure_unscaled",
        ERR,
        {EXP: 3},
        "Take darks at the lights' exposure, or bias frames so darks can be scaled.",
    ),
    _r(
        "low_confidence_master",
        WARN,
        {},
        "See the master's reasons in masters.csv; fix them and rebuild the master.",
    ),
    _r(
        "temperature_scaled",
        INFO,
        {},
        "Nothing to do; darks at the lights' temperature avoid scaling.",
    ),
    _r(
        "exposure_interpolated",
        INFO,
        {},
        "Nothing to do; darks at the lights' exposure avoid interpolation.",
    ),
    _r("thermal_interpolated", INFO, {}, "Nothing to do."),
    _r(
        "dark_law_assumed",
        WARN,
        {T: 1},
        "Take darks at the lights' temperature, or at two or more temperatures so the "
        "sensor's own dark-current law is fitted (the assumed doubling temperature's "
        "uncertainty is in the stated error).",
    ),
    _r(
        "thermal_extrapolated",
        WARN,
        {T: 1},
        "Take darks that bracket the lights' temperature.",
        *_THERMAL[:1],
    ),
    _r("timing_interpolated", WARN, {HDR: 1, T: 1}, *_THERMAL[:1], *_HEADER[:1]),
    _r("light_temperature_estimated", INFO, {HDR: 1}, *_THERMAL[1:2]),
    _r("light_temperature_from_profile", WARN, {HDR: 1, T: 1}, *_HEADER[:1]),
    _r("light_temperature_from_setpoint", WARN, {HDR: 1, T: 1}, *_THERMAL[:1], *_HEADER[:1]),
    _r("noisy_temperature_readings", WARN, {T: 1, HDR: 1}, *_THERMAL[:2]),
    _r("temperature_reading_outlier", INFO, {T: 1}, *_THERMAL[:2]),
    # a property the data cannot demonstrate (one exposure bin, no bias, no bin between) is no
    # deviation measured: weak evidence (1), as for an advisory; any measured symptom of another
    # cause outweighs it (every night scaled from darks of one exposure carries it, faulty or not)
    _r(
        "exposure_linearity_unproven",
        WARN,
        {EXP: 1, MISS: 1},
        "Take darks at two or more exposures (and biases) to demonstrate a linear dark signal, "
        "or darks at the lights' exposure.",
    ),
    _r(
        "interpolation_unproven",
        WARN,
        {EXP: 1},
        "Take darks at the lights' exposure, or at a third exposure between the bracketing ones.",
    ),
    # the dark signal of the exposure sets not proportional to exposure: the sensor (2), or one
    # set off by what it alone holds: an offset, stray light, a warmer sensor than its header
    # says or another gain (1 each: their own symptoms confirm them)
    _r(
        "nonlinear_dark",
        WARN,
        {EXP: 2, BIAS: 1, LEAK: 1, T: 1, G: 1},
        "Take darks at the lights' exposure: this configuration's dark signal is not "
        "proportional to exposure.",
        *_BIAS[:1],
    ),
    _r("setpoint_not_reached", WARN, {T: 2}, *_THERMAL),
    _r(
        "dark_model_noisy",
        WARN,
        {FEW: 2, MISS: 1},
        "Take more darks (or darks at the lights' exposure, or biases): the per-pixel model "
        "from few darks adds more noise than the dark structure it removes; it is used because "
        "without a bias it is the only estimate of the offset, its noise stated.",
    ),
    _r(
        "exposure_fitted",
        INFO,
        {},
        "Nothing to do; darks at the lights' exposure avoid the per-pixel fit.",
    ),
    _r(
        "exposure_extrapolated",
        WARN,
        {EXP: 1},
        "Take darks whose exposures bracket the lights' (or at the lights' exposure): the "
        "per-pixel model was extrapolated, its expected error is in predicted_dark_error.",
    ),
    _r(
        "exposure_law_nonlinear",
        WARN,
        {EXP: 2, BIAS: 1, LEAK: 1, T: 1, G: 1},
        "Take darks at the lights' exposure: this configuration's dark signal is not "
        "proportional to exposure, the scaled dark carries the measured deviation.",
    ),
    _r(
        "bias_other_night",
        INFO,
        {BIAS: 1},
        "Take biases in every session, at the lights' set-point: another night's bias level "
        "was used, its difference carried as an uncertainty.",
    ),
    _r(
        "bias_level_unknown",
        WARN,
        {BIAS: 1, MISS: 1},
        "Take biases (or darks) in the lights' session: the bias level difference to the night "
        "whose bias was used could not be measured.",
        *_BIAS[:1],
    ),
    # ------------------------------------------------------------------ pipeline
    _r("not_eligible", ERR, {}, "See the ingestion reasons of the frame."),
    _r(
        "isolated_unused",
        WARN,
        {HDR: 1},
        "See the isolation reasons; set ingest.use_isolated = 'all' to use the frame anyway.",
    ),
    _r(
        "shape_mismatch",
        ERR,
        {CFG: 2, HDR: 1},
        "Check binning and region of interest (ROI/subframe) of darks and lights.",
    ),
    _r("nonfinite_pixels", WARN, {FILE: 2}, "Check the file; NaN pixels stay NaN."),
    _r("excess_residual_noise", WARN, {NOISE: 1, C: 1, FEW: 1, G: 1}, *_FEW),
    _r("oversubtracted", WARN, {T: 2, G: 1, EXP: 1}, *_THERMAL[:2], *_GAIN[:1]),
    _r(
        "no_bias_for_scaling",
        WARN,
        {MISS: 2},
        "Take bias frames (or short darks) with the same settings so darks can be scaled.",
    ),
    _r("calibration_failed", ERR, {Cause.UNKNOWN: 1}, "See the log for the error and report it."),
    _r("input_vanished", ERR, {MOVED: 3}, *_MOVED),
    _r("output_failed", ERR, {IO: 4}, *_IO),
    _r("input_changed", ERR, {MOVED: 3}, *_MOVED),
    _r(
        "no_finite_pixels",
        ERR,
        {FILE: 3},
        "Every pixel is NaN: check the capture program's output and the transfer.",
        *_FILE,
    ),
    _r(
        "master_failed",
        ERR,
        {MISS: 1},
        "See the failed master's row in masters.csv (reasons, error) and its checklist.",
    ),
    _r("egain_estimated", INFO, {NOISE: 1}, "Let the capture program write EGAIN (e-/ADU)."),
    _r("no_gain", WARN, {NOISE: 2}, "Let the capture program write EGAIN (e-/ADU)."),
    _r("gain_not_needed", INFO, {NOISE: 1}, "Let the capture program write EGAIN (e-/ADU)."),
    # the lights' own photon transfer against their header: no dark frame is involved, so it
    # says nothing of the darks' gain; the header (or the capture profile) is wrong
    _r(
        "egain_pair_mismatch",
        ERR,
        {NOISE: 3},
        "Correct EGAIN (e-/ADU) in the capture profile for this gain setting: the frame report's "
        "pair_gain_e_per_adu is the measured value.",
        "Check that the camera's gain setting is the one the profile's EGAIN belongs to.",
    ),
    _r("too_few_frames", WARN, {FEW: 3}, *_FEW),
    _r(
        "bias_level_jump",
        WARN,
        {BIAS: 3},
        "Look for a camera reset, a driver or offset change, or an electronics warm-up between "
        "the bias frames; take biases before and after the lights.",
        *_BIAS,
    ),
    _r(
        "dark_rescaled",
        WARN,
        {T: 2, G: 1, BIAS: 1},
        "The dark model was rescaled to fit the light: check why its dark signal differed.",
        *_THERMAL[:2],
    ),
    _r(
        "pedestal_added",
        INFO,
        {T: 1, BIAS: 1},
        "Over-subtraction was kept above zero with a pedestal; check the dark's temperature "
        "and bias level.",
    ),
    _r(
        "conservative_fallback",
        WARN,
        {MISS: 2, T: 1},
        "Take darks matching these lights (see the acquisition advisory); the conservative "
        "subtraction leaves hot pixels partly uncorrected.",
    ),
    _r(
        "fallback_previous_master",
        INFO,
        {},
        "Tonight's master failed its acceptance gates (see its reasons in masters.csv); the "
        "previous verified master was used.",
    ),
    _r(
        "combine_failed",
        ERR,
        {FILE: 1, Cause.UNKNOWN: 1},
        "See the log; check the darks of the set can all be read.",
    ),
    _r(
        "inconsistent_set",
        ERR,
        {ODD: 4},
        "The error in masters.csv names the odd frames: remove them from the set or move "
        "them to their own folder; check the capture program's settings for that sequence.",
    ),
    _r("unreadable_frame", ERR, {FILE: 2, MOVED: 2}, *_MOVED, *_FILE),
    # ------------------------------------------------------------------ verification: masters
    _r(
        "holdout_residual_excess",
        WARN,
        {UNST: 2, T: 1, LEAK: 1},
        "Plot the darks' median level and CCD-TEMP against time: look for a drift.",
        *_THERMAL[:1],
        *_LEAK[:1],
    ),
    _r(
        "holdout_level_shift",
        WARN,
        {UNST: 2, BIAS: 1, T: 1},
        "Plot the darks' median level against time; drop frames taken before the sensor settled.",
        *_BIAS[:1],
    ),
    _r("holdout_outliers", WARN, {C: 2}, *_COSMIC),
    _r("holdout_unavailable", INFO, {FEW: 1}, *_FEW[:1]),
    _r("high_rejection_rate", WARN, {C: 3}, *_COSMIC),
    # an advisory (an expected error stated, lowering neither status nor confidence), yet the
    # one sign of a master of few darks (at min_frames no gate fails): weak evidence, weight 1,
    # that any measured symptom of another cause outweighs
    _r("master_noise_inflation", WARN, {FEW: 1}, *_FEW),
    _r(
        "frame_level_jitter",
        INFO,
        {BIAS: 2, LIT: 1},
        "The darks' levels differ between frames (values in masters.csv and the gate's "
        "detail): check that the camera's bias is stable (warm-up, power), that no light "
        "reaches the sensor during some darks, and that the sensor's temperature is steady.",
    ),
    _r("variance_excess", ERR, {G: 2, R: 1, NOISE: 1}, *_GAIN, *_READOUT[:1]),
    _r("level_excess", ERR, {BIAS: 2, R: 1}, *_BIAS, *_READOUT[:1]),
    # no dark current is negative: only the bias level moving between the two sets puts the
    # darks below their night's bias (another readout mode or offset would too, recorded or not)
    _r("dark_below_bias", ERR, {BIAS: 3, R: 1}, *_BIAS, *_READOUT[:1]),
    # two masters of one configuration, each less its night's bias, that do not scale with
    # exposure: the excess in one of them varies across the frame (light: a leak's gradient or
    # vignetting) or is uniform (an offset without photons: the bias level moved)
    _r("exposure_excess_patterned", ERR, {LEAK: 4}, *_LEAK),
    _r("exposure_excess_uniform", ERR, {BIAS: 3, R: 1}, *_BIAS, *_READOUT[:1]),
    # an excess proportional to the dark signal itself (hot pixels and glow scaled alike)
    # between two sets whose recorded temperatures agree: the darks' ADU per electron differs
    # (an unrecorded gain) or their sensor was warmer than its header says. The comparison
    # cannot tell the two (a temperature that was never read and a gain that was never written
    # are equally common): equal weights, the lights' and masters' other symptoms decide
    _r("exposure_excess_scaled", ERR, {G: 2, T: 2}, *_GAIN, *_THERMAL[:2]),
    # the same excess with its cause measured: the hot pixels' photon transfer (variance over
    # level, the ADU per electron) differs between the sets by the signal's scale (another
    # gain), or agrees (more electrons: a warmer sensor), each at the gates' false-alarm rate
    _r("exposure_excess_gain", ERR, {G: 4}, *_GAIN),
    _r("exposure_excess_thermal", ERR, {T: 4}, *_THERMAL[:2]),
    # the header's EGAIN against the darks' own photon transfer: it shows that the gain the
    # noise model was given does not describe the darks (noise_model); that the darks were taken
    # at another gain than the lights only the lights can add (their hot pixels off scale: the
    # joint rule below), the lights' noise off its model adds to the first
    _r(
        "gain_mismatch",
        ERR,
        {NOISE: 3, G: 1},
        *_GAIN,
        "If the darks are right, correct EGAIN in the header or the capture profile.",
    ),
    _r("dark_scale_changed", ERR, {T: 2, G: 1, EXP: 1}, *_THERMAL, *_GAIN[:1]),
    _r("dark_level_shift", ERR, {BIAS: 2, LEAK: 1, R: 0.5}, *_BIAS, *_LEAK[:1]),
    _r("low_frequency_changed", ERR, {LEAK: 3}, *_LEAK),
    _r("dark_gradient", ERR, {LEAK: 3}, *_LEAK),
    # a changed row/column pattern establishes a change of the readout electronics (3), not
    # the readout mode by definition: another gain changes it too (1), and so does a change of
    # the electronics' state within a bias set (with ``bias_level_jump``: the joint rule)
    _r("banding_changed", ERR, {R: 3, G: 1}, *_READOUT, *_GAIN[:1]),
    _r(
        "hot_pixels_changed",
        WARN,
        {SENS: 2, T: 1, G: 1},
        "Compare with older masters: a growing hot-pixel population is sensor ageing; "
        "rebuild the dark library.",
        *_THERMAL[:1],
    ),
    _r(
        "no_previous_master",
        INFO,
        {},
        "Nothing to do: the first verified master becomes the reference for the next ones.",
    ),
    _r(
        "previous_not_comparable",
        INFO,
        {},
        "Provide a master bias so masters of other exposures/temperatures can be compared.",
    ),
    # ------------------------------------------------------------------ verification: lights
    # the background's scatter against the propagated uncertainty (gain, read noise and the
    # master's own measured noise): a wrong noise model first; cosmic rays left in the master
    # or too few darks only where the master's noise is not what its uncertainty says
    _r(
        "light_variance_excess",
        WARN,
        {NOISE: 2, C: 1, FEW: 1},
        *_FEW,
        "Check EGAIN and the read noise of the master bias.",
    ),
    # the model's noise too high: its gain or read noise (noise_model 2); the darks' own noise
    # in the model (stray light's or extra dark current's shot noise, held by darks that also
    # over-subtract the background) is the joint rule with the background below zero
    _r(
        "light_variance_low",
        WARN,
        {NOISE: 2},
        "Check EGAIN: a too-small gain overstates the shot noise and misweights the frame.",
        "Check the darks were taken covered: stray light in them adds its noise to the model.",
    ),
    _r(
        "dark_overscaled",
        ERR,
        {T: 2, G: 1, EXP: 1},
        *_THERMAL,
        *_GAIN[:1],
        "Check the darks' exposure time equals the lights' (or was scaled correctly).",
    ),
    _r(
        "dark_underscaled",
        ERR,
        {T: 2, G: 1, EXP: 1},
        *_THERMAL,
        *_GAIN[:1],
        "Check the darks' exposure time equals the lights' (or was scaled correctly).",
    ),
    _r("hot_pixel_holes", WARN, {T: 1, G: 1, C: 1}, *_THERMAL[:1], *_COSMIC[:1]),
    # the light's column pattern against the model's: the measurement ``banding_changed``
    # makes between master and bias (or previous master), with its weights
    _r("light_banding", ERR, {R: 3, G: 1}, *_READOUT, *_GAIN[:1]),
    _r(
        "negative_background",
        ERR,
        {LEAK: 1, BIAS: 1, T: 1, R: 1},
        *_LEAK[:1],
        *_BIAS[:1],
        *_THERMAL[:1],
    ),
    _r(
        "negative_clipping",
        ERR,
        {LEAK: 1, BIAS: 1, T: 1, R: 1},
        "Never clip calibrated values at zero; add a pedestal (subtract.pedestal_adu).",
        *_LEAK[:1],
        *_BIAS[:1],
    ),
    _r(
        "smooth_oversubtraction",
        ERR,
        {LEAK: 3, BIAS: 2, R: 1},
        *_LEAK[:1],
        *_BIAS[:1],
        "Use the previous verified master until new darks are taken.",
    ),
    # the over-subtraction's deficit without the shot noise stray light would carry (the
    # light's noise against the darks' own, no bias): an offset, measured (3: establishes it)
    _r(
        "photonless_oversubtraction",
        ERR,
        {BIAS: 3, R: 1},
        *_BIAS,
        *_READOUT[:1],
    ),
    _r(
        "raw_at_floor",
        ERR,
        {OFFS: 3},
        "Raise the camera offset until no pixel of a bias frame reads 0.",
    ),
    _r(
        "implausible_values",
        ERR,
        {FILE: 1, CFG: 1},
        "Check the raw data type and BZERO/BSCALE; check the master matches the camera.",
    ),
    _r(
        "centroid_shift",
        WARN,
        {LIT: 1, T: 1},
        "Inspect the master dark for star-like structure; check darks were taken covered.",
    ),
    _r(
        "flux_change",
        ERR,
        {LIT: 3, LEAK: 1},
        "Inspect the darks one by one for sky images (a light saved as dark).",
        *_LEAK[:1],
    ),
    _r(
        "no_dark_signal",
        ERR,
        {DONE: 4},
        "Check whether the capture program subtracted a dark already (auto-dark, "
        "'dark-subtracted' options; a pedestal such as 100 ADU): such frames are calibrated.",
        "Use the frame as it is, or its raw copy (without the capture program's dark) here.",
    ),
    _r(
        "harmful_subtraction",
        ERR,
        {T: 2, G: 1, EXP: 1},
        "Do not use this light's calibrated frame: use the previous verified master, or take "
        "darks at the lights' temperature, gain and exposure.",
        *_THERMAL[:1],
    ),
    _r(
        "few_background_pixels",
        INFO,
        {},
        "Nothing to do: too few background pixels (a frame filled by sources) for that check.",
    ),
    _r("few_stars", INFO, {}, "Nothing to do: the photometric check needs isolated stars."),
    _r(
        "dark_level_unmeasured",
        INFO,
        {},
        "Take biases on the light's night: without them a level offset of the darks that "
        "leaves the sky positive cannot be told from sky.",
    ),
    _r(
        "dark_scale_unmeasured",
        INFO,
        {},
        "Nothing to do: too few hot pixels above the sky noise to measure the dark scale.",
    ),
    _r("config_gain_differs", ERR, {G: 4}, *_GAIN),
    _r("config_offset_differs", ERR, {CFG: 3}, "Re-take the darks at the lights' offset."),
    _r("config_readout_differs", ERR, {R: 4}, *_READOUT),
    _r(
        "config_other_differs",
        ERR,
        {CFG: 3},
        "Re-take the darks with the lights' binning and image size (no ROI).",
    ),
)

TRIAGE_TABLE: dict[str, TriageRule] = {rule.code: rule for rule in _RULES}
"""Reason code -> :class:`TriageRule`; ``docs/verification.md`` shows it as a table."""

SYMPTOMS: dict[str, tuple[str, ...]] = {
    # the light's hot pixels against the model's (one fit, its response and its verdicts)
    "hot_pixel_scale": (
        "dark_overscaled",
        "dark_underscaled",
        "dark_rescaled",
        "harmful_subtraction",
        "no_dark_signal",
        "oversubtracted",
    ),
    # the calibrated background below what any sky allows (``smooth_oversubtraction`` is not
    # in it: it adds a second measurement, the hot pixels matching the model)
    "background_below_zero": ("negative_background", "negative_clipping", "pedestal_added"),
    # the calibrated background's scatter against its propagated uncertainty, and the one
    # known reason it lacks a term (no gain: no shot noise in it)
    "light_noise": (
        "light_variance_excess",
        "light_variance_low",
        "excess_residual_noise",
        "no_gain",
    ),
    # the darks' variance against read + shot noise of their level (two sides of one gate)
    "dark_noise_model": ("variance_excess", "level_excess"),
    # the dark signal against exposure
    "exposure_law": (
        "nonlinear_dark",
        "exposure_law_nonlinear",
        "interpolation_unproven",
        "exposure_linearity_unproven",
        "exposure_unscaled",
    ),
    # no measured temperature for the light
    "light_temperature": (
        "light_no_temperature",
        "light_temperature_from_setpoint",
        "light_temperature_from_profile",
        "timing_interpolated",
    ),
}
"""Reason codes that report one measurement (or its direct consequences) form one *symptom*:
its evidence counts once, each cause with the largest weight any of its codes gives it, so a
symptom seen by three codes does not outweigh two independent symptoms."""

_SYMPTOM_OF = {code: name for name, codes in SYMPTOMS.items() for code in codes}

#: the codes saying a light's dark model spans another exposure than the light's (scaled,
#: interpolated, fitted, extrapolated, or subtracted unscaled)
EXPOSURE_CHANGED = frozenset(
    {
        "exposure_scaled",
        "exposure_interpolated",
        "exposure_fitted",
        "exposure_extrapolated",
        "exposure_unscaled",
    }
)

NEEDS: dict[tuple[str, Cause], frozenset[str]] = {
    # the light's hot pixels off the model's scale point at the exposure only where the model
    # crossed exposures: darks of the light's own exposure hold no exposure law (a sensor whose
    # dark signal is not proportional to exposure still calibrates lights of the darks' own
    # exposure exactly)
    ("hot_pixel_scale", EXP): EXPOSURE_CHANGED,
}
"""(symptom, cause) -> codes one of which the frame must carry (informational ones included)
for the symptom to count as evidence for that cause."""


@dataclass(frozen=True)
class JointRule:
    """Two independent symptoms that together name a cause neither names alone."""

    symptoms: tuple[frozenset[str], frozenset[str]]  # a code of each set must be present
    causes: tuple[tuple[Cause, float], ...]
    why: str


def _codes_of(*names: str) -> frozenset[str]:
    return frozenset(c for n in names for c in SYMPTOMS.get(n, (n,)))


JOINT_RULES = (
    JointRule(
        (frozenset({"gain_mismatch"}), frozenset({"dark_scale_changed"})),
        ((G, 2),),
        "the darks' photon transfer disagrees with the header's EGAIN and their hot pixels moved "
        "off the previous master's scale: a wrong EGAIN in the header changes no ADU, another "
        "gain setting changes both (the ADU per electron of every pixel); a warmer sensor "
        "moves the hot pixels but keeps the photon transfer",
    ),
    JointRule(
        (_codes_of("background_below_zero"), frozenset({"light_variance_low"})),
        ((LEAK, 2), (T, 1), (R, 1)),
        "the lights over-subtracted and their noise below the model, which holds the darks' "
        "noise: the darks carry a level with noise of its own that the lights lack, the shot "
        "noise of stray light (or of warmer darks' extra dark current, or another readout "
        "mode's higher read noise); a bias offset carries no noise. Warmer darks also put the "
        "hot pixels off scale and another readout mode leaves its banding, symptoms that add "
        "to those causes: without them, light",
    ),
    JointRule(
        (frozenset({"bias_level_jump"}), frozenset({"banding_changed"})),
        ((BIAS, 3),),
        "a bias set whose level jumped between its frames and whose banding differs from the "
        "previous master's: the camera's electronics changed state within the set (a reset, "
        "an offset or driver change, a warm-up), moving level and pattern together; a set "
        "taken in another readout mode holds one state throughout and shows no jump",
    ),
    JointRule(
        (
            frozenset(
                {
                    "exposure_excess_uniform",
                    "exposure_excess_patterned",
                    "level_excess",
                    "dark_below_bias",
                }
            ),
            frozenset({"banding_changed", "light_banding"}),
        ),
        ((R, 3),),
        "a master's level moved (uniform, or with a pattern, or above its shot noise, or below "
        "its bias) and its column pattern changed: another readout mode brings its own offset "
        "and its own pattern together (the changed pattern can itself make the excess "
        "patterned); a bias drift moves the level alone, stray light leaves the columns alone",
    ),
    JointRule(
        (frozenset({"level_excess"}), frozenset({"light_variance_low"})),
        ((BIAS, 2), (NOISE, 1), (R, 1)),
        "the darks' level above what their variance carries (the master) and the lights' noise "
        "below a model that gives the darks' level above the bias its shot noise: one level "
        "without noise in the darks, seen twice. A bias offset (2); a gain too small for both "
        "(1: the header's EGAIN against the photon transfer, gain_mismatch or "
        "egain_pair_mismatch, marks it); another readout mode's offset (1: its banding marks it)",
    ),
    JointRule(
        (_codes_of("gain_mismatch"), _codes_of("hot_pixel_scale")),
        ((G, 3),),
        "the darks' photon transfer disagrees with EGAIN and the lights' hot pixels are off "
        "the model's scale: the darks' ADU per electron differs from the lights'",
    ),
    JointRule(
        (_codes_of("hot_pixel_scale"), _codes_of("light_noise")),
        ((G, 3),),
        "the lights' hot pixels off scale and their noise off the model: a dark set at another "
        "gain (without EGAIN the lights' gain is measured on the darks, so both are off); warmer "
        "darks change the scale, not the gain",
    ),
    JointRule(
        (frozenset({"no_dark_signal"}), _codes_of("light_temperature")),
        ((T, 3),),
        "a light without a temperature holding too little of the model's dark signal to show "
        "it: darks warmer than the light (uncooled cameras) explain it as well as a hidden "
        "in-camera dark subtraction",
    ),
)
"""Combinations of symptoms with a weight of their own (3: together they establish the cause;
2 and 1: the one explanation no further symptom marks, and those that other symptoms confirm)."""

_UNKNOWN_RULE = TriageRule(
    "", WARN, ((Cause.UNKNOWN, 1.0),), ("No triage rule for this code: see its description.",)
)
_SEVERITY_ORDER = {ERR: 0, WARN: 1, INFO: 2}
