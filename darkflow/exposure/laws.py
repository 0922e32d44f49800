"""Exposure: scale, interpolate or reject — measured per pixel population.

A dark master holds three things that behave differently:

* the **bias** (offset and its fixed pattern): the same at every exposure and temperature;
* the **amp glow** (a smooth, bright region near the readout amplifiers): grows with exposure,
  hardly with temperature;
* the **dark current** of normal and hot pixels: grows with exposure and doubles every few °C.

This module measures those populations on masters (numpy only, no IO) and decides what the
exposure law of a configuration allows:

* :func:`block_grid` / :func:`upsample_grid` — the smooth level of an image (medians of
  ``block_px`` blocks, bilinear back to full size); hot pixels are the *excess* over it, the
  amp-glow region the blocks well above the flat dark-current level;
* :func:`choose_reference` — the configuration's hot- and warm-pixel sets (pixels standing out
  of their 5x5 neighbourhood) and glow cells, taken once from its strongest master so every
  master is measured on the same pixels;
* :func:`summarize_master` — per-master levels (:class:`MasterSummary`) with their standard
  errors;
* :func:`fit_glow_model` / :func:`glow_map` — the glow separated from the dark current, from
  masters at several temperatures (per block: ``level / t = glow + D * 2**(T / T_d)``) or, with
  one temperature, as the excess of the glow blocks over the flat level;
* :func:`measure_linearity` — the exposure law as a statistical test (:class:`LinearityReport`):
  each population's level per exposure bin with its uncertainty (sampling, temperature
  correction, bias level), the proportional law (an offset within the bias uncertainty
  allowed) and the affine law tested by a generalised chi-square at ``gate_false_alarm``. The
  populations with signal that hold no bias (hot and warm pixels, the amp glow) decide; the
  faint normal pixels only when none exists, otherwise only through a curvature (their offset
  is a level offset). The hot pixels are also binned by signal to find a level above which
  the response stops being linear (``nonlinear_above_adu``): pixels above it are flagged and
  never trusted when scaled. ``docs/matching.md`` derives it.

The module is the public face of the package's parts (every name, private ones included, is
importable from here as before): ``_grid.py`` (the generic image tools), ``_reference.py`` (the
reference pixel sets and the per-master summaries), ``_glow.py`` (the glow model) and
``_linearity.py`` (the exposure-law test).
"""

from __future__ import annotations

from darkflow.exposure._glow import (
    GlowModel,
    fit_glow_model,
    glow_map,
)
from darkflow.exposure._grid import (  # noqa: F401
    _axis_weights,
    _flat_level,
    _glow_cells,
    _mean,
    _robust_sigma,
    block_grid,
    dark_signal,
    glow_block,
    sample_grid,
    upsample_grid,
)
from darkflow.exposure._linearity import (  # noqa: F401
    _ORDER,
    SIGNAL_POPULATIONS,
    LinearityReport,
    LinearityStatus,
    PopulationLinearity,
    _bins,
    _chi2_sf,
    _gls,
    _nonlinear_onset,
    _ratio_levels,
    _Series,
    _test_series,
    _window_coverage,
    _z,
    measure_linearity,
)
from darkflow.exposure._reference import (  # noqa: F401
    MIN_POPULATION_PIXELS,
    WARM_MIN_SNR,
    WARM_SIGMA,
    MasterSummary,
    Reference,
    _unsaturated,
    choose_reference,
    local_median,
    summarize_master,
)

__all__ = [
    "GlowModel",
    "LinearityReport",
    "LinearityStatus",
    "MasterSummary",
    "PopulationLinearity",
    "Reference",
    "block_grid",
    "choose_reference",
    "dark_signal",
    "fit_glow_model",
    "glow_block",
    "glow_map",
    "local_median",
    "measure_linearity",
    "sample_grid",
    "summarize_master",
    "upsample_grid",
]
