"""Which dark model calibrates this light? Constrained matching, explained.

For each light the matcher looks at every master of the light's sensor configuration in the
calibration index and at the ways a dark model can be made from them:

* one master as is (``none``), scaled by exposure (``exposure``: dark current and amp glow
  scale with exposure, the bias does not), scaled to the light's temperature
  (``temperature``: only the dark current, with the configuration's fitted law), or both
  (``exposure+temperature``); subtracted as is at a different exposure (``unscaled``) only
  when the implied error stays inside the gate;
* two masters: interpolated between the bracketing exposure bins (``interpolate``, optionally
  ``interpolate+temperature``), or between two masters at the light's exposure whose
  temperatures bracket the light's (``thermal-interpolate``: weights from the dark-current
  law, per pixel exact for ``bias + glow + D * 2**(T/T_d)``; by acquisition time when the
  light's temperature is unknown).

**Hard constraints** (never relaxed): the same configuration signature (instrument/camera,
binning, gain, offset, readout mode, shape), a usable master status, a valid master exposure,
and the exposure ratio within ``max_exptime_ratio`` (``expansion_exptime_ratio`` may widen it).
**Gates** (widened step by step by ``expansion_mismatch``/``expansion_time_h``, each step
recorded and costing ``expansion_confidence_penalty``): the dark-current mismatch left by the
treatment ``<= max_dark_mismatch`` (for an untreated temperature difference
``|D_master / D_light - 1| = |2**(-ΔT / T_d) - 1|``), and the time window ``max_time_h``.

Among the options that pass, the lowest **score** wins — the predicted RMS error of the dark
model relative to the light's RMS dark signal, plus a penalty for unverified masters::

    score = sqrt(e_thermal² + e_sigma² + e_exposure² + e_noise² + e_time²) + 0.5 (1 - c_master)

``e_thermal`` the dark-current mismatch left by the treatment (``unknown_temp_error`` when a
temperature is unknown, half of it for a time interpolation), ``e_sigma`` the propagated
temperature and ``T_d`` uncertainties, ``e_exposure`` the exposure-law error (measured
deviation from proportionality times ``|ln f| / ln 2`` when scaling, ``unproven_error`` when
linearity is not demonstrated, ``|t_master / t_light - 1|`` when unscaled), ``e_noise`` the
model's noise (master and bias uncertainties through the recipe) over the light's RMS dark
signal, ``e_time`` ``time_error_per_day`` per day between master and light.

When nothing passes even at the widest step, the light is quarantined with an acquisition
advisory (:func:`acquisition_advisory`, merged per run by :func:`merge_advisories`).
See ``docs/matching.md`` for the whole story.
"""

from typing import TYPE_CHECKING

from darkflow._lazy import lazy_names
from darkflow.matching._advisory import acquisition_advisory, merge_advisories
from darkflow.matching._records import (
    DEGRADING_REASONS,
    LOST_CONFIG,
    LOST_EXPOSURE,
    LOST_HARM,
    LOST_INVALID,
    LOST_LINEARITY,
    LOST_NOT_SCALABLE,
    LOST_SCORE,
    LOST_STATUS,
    LOST_TEMPERATURE,
    LOST_TIME,
    Candidate,
    LostReason,
    MasterEntry,
    MatchDecision,
    MatchReason,
    ModelTerm,
    dark_current_ratio,
    mid_time,
    temperature_gate_c,
)

if TYPE_CHECKING:
    from darkflow.matching._index import (
        BiasInfo,
        CalibrationIndex,
        IndexMemo,
        LazyMaster,
        build_index,
    )
    from darkflow.matching._match import match_light

# The index and the matcher pull in scaling, verify and scipy: loaded on first use, so what
# needs only the records and advisories (``darkflow quarantine``) starts fast.
_HOMES = {
    "BiasInfo": "_index",
    "CalibrationIndex": "_index",
    "IndexMemo": "_index",
    "LazyMaster": "_index",
    "build_index": "_index",
    "match_light": "_match",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals(), ())
__all__ = [
    "DEGRADING_REASONS",
    "LOST_CONFIG",
    "LOST_EXPOSURE",
    "LOST_HARM",
    "LOST_INVALID",
    "LOST_LINEARITY",
    "LOST_NOT_SCALABLE",
    "LOST_SCORE",
    "LOST_STATUS",
    "LOST_TEMPERATURE",
    "LOST_TIME",
    "BiasInfo",
    "CalibrationIndex",
    "Candidate",
    "IndexMemo",
    "LazyMaster",
    "LostReason",
    "MasterEntry",
    "MatchDecision",
    "MatchReason",
    "ModelTerm",
    "acquisition_advisory",
    "build_index",
    "dark_current_ratio",
    "match_light",
    "merge_advisories",
    "mid_time",
    "temperature_gate_c",
]
