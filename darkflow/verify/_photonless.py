"""Over-subtraction with or without photons: stray light in the darks or a bias offset.

A light over-subtracted by a model whose hot pixels match it holds a smooth excess in its darks
that is not dark current (``smooth_oversubtraction``): stray light (photons) or a bias level
that moved between the darks and the light (an offset). Their levels look alike; their noise
does not. Without a master bias the model's read variance is the darks' own temporal variance,
``r + (D + L) / g`` with ``L`` the stray light's electrons in ADU, and the light's predicted
variance adds the shot noise of its calibrated level ``c = S - L`` (``S`` the sky), clipped at
zero. With stray light the prediction holds ``L / g`` that the light lacks once ``c < 0``: the
light's measured variance is *below* it by ``|c| / g``, its ratio to the prediction

    rho_leak = 1 - |c| / (g V)        (V the predicted variance of a background pixel)

at most. An offset ``delta`` carries no noise: the darks' variance is ``r + D / g`` and the
light's ratio is ``1 + S / (g V) >= 1``. The statistic is the variance gate's ratio over its
expected value (:func:`~darkflow.verify._lightgates.variance_gate`), against ``rho_leak``; its
spread is the gate's (on the ratio's scale) with the uncertainty of ``rho_leak`` (the gain's and
the level's). A deficit beyond the whole prediction (``rho_leak <= 0``) leaves stray light no
noise to have carried: the light's own noise refutes it. A
departure above ``z* x spread`` (one-sided at the gates' false-alarm probability) says the
deficit carried no photons: ``photonless_oversubtraction``, evidence of a bias offset. Not
evaluated with a master bias (the model's dark signal, offset included, is then counted as
shot noise for either cause) or without a gain.
"""

from __future__ import annotations

import math

from darkflow.verify._gate import combine_spread, z_threshold
from darkflow.verify._lightgates import NoiseBudget
from darkflow.verify._metrics import Metric, VerifyReason

__all__ = ["photonless_gate"]


def photonless_gate(
    variance: Metric,
    *,
    background_adu: float | None,
    pixel_sigma_adu: float | None,
    n_pixels: float | None,
    budget: NoiseBudget,
    false_alarm: float,
) -> Metric | None:
    """Does the over-subtraction's deficit carry shot noise? ``None`` when not evaluated.

    ``variance``: the light's variance gate (log ratio, expected value, spread);
    ``background_adu``: the calibrated background level; ``pixel_sigma_adu``: the predicted
    noise of a background pixel; ``n_pixels``: background pixels behind the level.
    """
    g = budget.gain
    if g is None or not g.value > 0:
        return None
    if variance.value is None or variance.expected is None or variance.spread is None:
        return None
    if background_adu is None or pixel_sigma_adu is None or not pixel_sigma_adu > 0:
        return None
    if not (math.isfinite(background_adu) and math.isfinite(pixel_sigma_adu)):
        return None
    deficit = max(-background_adu, 0.0)
    pred = pixel_sigma_adu**2
    x = deficit / (g.value * pred)
    level_sd = combine_spread(
        budget.level_sigma, pixel_sigma_adu / math.sqrt(max(n_pixels or 1.0, 1.0))
    )
    x_sd = combine_spread(x * g.rel_sigma, level_sd / (g.value * pred) if deficit > 0 else 0.0)
    # on the ratio's own scale: a deficit beyond the whole predicted variance (x >= 1) leaves
    # stray light no shot noise to have carried, and the light's positive noise refutes it
    ratio = math.exp(variance.value - variance.expected)
    expected = 1.0 - x
    spread = combine_spread(ratio * variance.spread, x_sd)
    if not spread > 0:
        return None
    z = (ratio - expected) / spread
    thr = z_threshold(false_alarm, sides=1)
    failed = z > thr
    return Metric(
        "photonless_excess_z",
        round(z, 6),
        f"z <= {thr:.3g}",
        None,
        VerifyReason.PHOTONLESS_OVERSUBTRACTION if failed else None,
        f"variance ratio {ratio:.3g} against {expected:.3g} if the "
        f"{deficit:.3g} ADU deficit were stray light (shot {deficit / g.value:.3g} ADU2 of "
        f"{pred:.3g})",
        expected=round(expected, 6),
        spread=round(spread, 6),
        z=round(z, 6),
        threshold=round(thr, 6),
        false_alarm=false_alarm,
    )
