"""Package version and the algorithm version that enters every job key.

Bump ``ALGORITHM_VERSION`` whenever a change alters the bytes of a master or calibrated frame, so
cached artifacts made by the old algorithm are recomputed.
"""

#: The package version: the only place it is written (pyproject.toml reads it from here).
__version__ = "0.1.0"

# 2: the gain of lights without EGAIN (darkflow.subtract.gain) enters their uncertainty;
# 3: calibrated lights' uncertainty follows fine structure and colour;
# 4: bias per night and set-point, per-pixel fitted models, colour-aware scalar uncertainty cards;
# 5: the combine's temporal noise selects typical pixels on a third frame (lattice data); a
# light's own gain from differences two rows apart (row noise seen as in the darks)
# 6: without a bias, a pixel's dark shot noise is its level less the read variance's mean level
# (signed; was the positive excess only, counted twice); the model's stated scale error kept
# apart from its noise in the light gates; a light of unknown temperature is rescaled when its
# hot pixels show a material dark-scale error (the assumed thermal mismatch is no longer a
# spread of the dark-scale gate)
# 7: a rescaled dark carries the hot-pixel fit's error in the light's uncertainty (not the stated
# scale term) and, without a bias, scales each column's level apart; the light record keeps its
# noise floor apart from the model's noise (the light-pair gain check reads it)
# 8: (verdicts, not bytes) a light over-subtracted without a bias is judged for the shot noise
# stray light would have taken away (photonless_oversubtraction); the light-pair gain on small
# colour frames halves its tiles
# 9: the darks' photon-transfer gain (lights without EGAIN: their uncertainty and checks) takes
# the master bias's pattern out of the levels and moves each bin to its true level
# 10: no_dark_signal's null spread is the hot-pixel fit's own (a light once quarantined without
# output now gets its calibrated frame)
# 11: the darks' photon transfer fits the quadratic term from zero signal with a bias, a light
# without EGAIN combines its configuration's masters' gains, and its own estimate takes out the
# model's fixed pattern left by an unscaled dark (lights' uncertainty and checks)
# 12: the darks' photon transfer leaves out pixels clipped at an unknown white level (zero
# variance far above the read noise): a DSLR master's gain, the lights' uncertainty with it
# 13: (verdicts, not bytes) the hole gate leaves out pixels whose clip count shows two levels
# (random telegraph pixels)
ALGORITHM_VERSION = "13"

#: Enters the key of a master's assessment only (acceptance gates, hold-out split): a change that
#: alters verdicts but not the bytes of a master reassesses cached masters without rebuilding.
# 4: the training master is judged over the analysed band only (derived in the combine's pass)
# 5: the master of every input is judged over the analysed band (no training master)
# 6: dark_level_above_bias (darks below their night's bias)
# 7: the hold-out noise curve's bins span the raw values' lattice (3 steps at least)
# 8: the exposure cross-check reads uncooled sets' scale on their common hot pixels and each
# tile's spread holds the column and row patterns' variance
# 9: the master's gain check on levels without the bias pattern, bins at their true level
# 10: the stability change removes the fitted hot-pixel scale on hot pixels only
# 11: the master's gain checks with the quadratic photon transfer; the exposure cross-check's
# dark-law bound from the smaller of the two masters' dark levels
# 12: a failing cross-check whose excess is a scale of the dark pattern: exposure_excess_scaled
# 13: flickering pixels are no transients; dark_gradient (one set's planar gradient, judged on its
# hot pixels); an uncooled pair's bracketed verdict; another gain told from a warmer sensor;
# a light's frame variance keeps the readout scatter at any scale (the hole gate)
# 14: dark_gradient's threshold allows for the estimated tile noise (Hotelling's T^2); a pair's
# gradient without a bias of the night; a change against the previous master refereed by a third
ASSESSMENT_VERSION = "14"  # 3: master gates as statistical tests (2: split by content hash)
