"""Build the dark model for a light and subtract it, propagating uncertainty.

Pure functions on arrays plus small result objects; the pipeline resolves masters first and passes
them in (no IO here).

A dark model is a linear recipe of masters ``M_k`` (each with weight ``w_k``, exposure factor
``e_k`` and temperature factor ``f_k``, see :class:`darkflow.matching.ModelTerm`), the master
bias ``B`` and the amp glow ``G_k`` contained in each master (bias removed)::

    model = B + sum_k w_k e_k [G_k + f_k (M_k - b_k B - G_k)]
          = c_B B + sum_k a_k M_k + sum_k g_k G_k
    a_k = w_k e_k f_k,   g_k = w_k e_k (1 - f_k),   c_B = 1 - sum_k a_k b_k

with ``b_k = 1`` when ``M_k`` still holds the bias (0 for a bias-subtracted master). The bias
is neither scaled nor interpolated, the glow scales with exposure only, the dark current
``C_k = M_k - b_k B - G_k`` with exposure and temperature. A recipe needs the bias only when
``c_B != 0`` or some ``g_k != 0``: a plain interpolation ``(1 - w) M_1 + w M_2`` does not.

Model variance (ADU², per pixel)::

    var = c_B² var_B + sum_k a_k² var_k                    (master and bias uncertainties)
        + (s_dark * C)²                                    (dark-current factor uncertainty)
        + (s_exp * (model - B))²                           (exposure-law uncertainty)
        + (0.1 * (model - B))²   on pixels flagged non-linear

with ``C = sum_k a_k C_k`` the dark current in the model, ``s_dark`` the decision's
``dark_rel_sigma`` (temperature and doubling-temperature uncertainties, the residual mismatch
of an untreated temperature difference) and ``s_exp`` its ``exposure_rel_sigma`` (measured
deviation from linearity, the mismatch of an unscaled exposure). The special cases of
:func:`build_dark_model`::

    master holds bias:     model = B + f * (D - B)        var = (1-f)^2 var_B + f^2 var_D
    master is bias-free:   model = B + f * D              var = var_B + f^2 var_D

Per-pixel uncertainty of the calibrated light (ADU)::

    var = read_var + dark_shot_var + max(light - model, 0) / egain + var_model

``read_var`` is the read noise of one frame (from the master bias's per-frame scatter, else the
dark master's), ``dark_shot_var`` the Poisson noise of the dark current the light itself
collected (the dark model scaled, bias removed, over the gain): see :func:`noise_model_variance`.

The package's parts: ``_model.py`` (the dark model of a recipe), ``_readnoise.py`` (read noise
and the noise model), ``_subtract.py`` (subtraction, the scalar uncertainty cards); ``gain.py``
the e-/ADU estimators. Every name of the parts is importable from here as before.
"""

from __future__ import annotations

from darkflow.stats.noise import rebuild_uncertainty
from darkflow.subtract._model import (  # noqa: F401
    _MASTER_LEVEL,
    FLAG_GLOW,
    FLAG_LIMITED,
    FLAG_NONLINEAR,
    FLAG_SATURATED,
    DarkModel,
    _linear_model,
    _master_level,
    _Term,
    build_dark_model,
    dark_model_for,
)
from darkflow.subtract._readnoise import (  # noqa: F401
    _DARK_SHOT_SIGNAL,
    _MEDIAN_FRAME_VARIANCE,
    _READ_VARIANCE,
    _dark_shot_signal,
    _median_frame_variance,
    _read_variance,
    dark_shot_variance,
    median_frame_variance,
    noise_model_variance,
    per_frame_sigma,
    read_variance,
)
from darkflow.subtract._subtract import (  # noqa: F401
    UNCERTAINTY_SAMPLES,
    CalibratedFrame,
    subtract_dark,
    uncertainty_cards,
)

__all__ = [
    "FLAG_GLOW",
    "FLAG_LIMITED",
    "FLAG_NONLINEAR",
    "FLAG_SATURATED",
    "CalibratedFrame",
    "DarkModel",
    "build_dark_model",
    "dark_model_for",
    "dark_shot_variance",
    "noise_model_variance",
    "rebuild_uncertainty",
    "subtract_dark",
    "uncertainty_cards",
]
