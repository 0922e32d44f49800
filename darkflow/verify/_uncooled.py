"""Two masters of an uncooled camera (no sensor temperature) against each other: a verdict.

An uncooled camera's dark sets are taken at whatever temperature the night had, so their dark
signal does not scale with the exposure alone. Each typical pixel of ``b`` (less its night's
bias) holds dark current ``D`` (which follows the sensor's temperature) and exposure-bound
signal ``G`` (amp glow, which follows the exposure only); when all is well ``a`` holds
``k D + r G`` with ``r = t_a / t_b`` and ``k`` the dark current's scale between the sets (read
on their common hot pixels). The two comparisons of :func:`~darkflow.verify._crossset.
exposure_pair_excess`

    E_k = d_a - k d_b = (r - k) G          (k: the hot pixels' scale, its spread carried)
    E_r = d_a - r d_b = (k - r) D          (r: the exposures' ratio)

then bracket the truth: with ``D, G >= 0`` their means never share a sign. Light that reached
the sensor while one set was taken (or a bias level that moved) adds the same level ``L`` to
both, and once it exceeds both brackets both means share its sign. The verdict is this
intersection of the two tests: both fail, in the same direction. Under "all is well" at least
one of the two has a true mean on the other side of zero (or at zero), so the probability
that both exceed the two-sided threshold in one direction is at most the one-sided
``false_alarm / 2`` of that one: the verdict's false-alarm probability is at most
``false_alarm`` (:func:`~darkflow.verify.z_threshold`, config ``verify.gate_false_alarm``),
however the dark signal splits between ``D`` and ``G``. Each test's spread is its own
(frame-level jitter of both sets and of their biases, the pixels' sampling spread; ``E_k``'s
also ``k``'s standard error times ``b``'s mean level), each with the materiality of ``a``'s
own per-pixel noise.

The master with the positive excess holds it (``level > 0``: ``a``). Structure (a pattern
across the frame: stray light; uniform: a bias level) is called only when both comparisons
show it (``G``'s own pattern, amp glow, is in ``E_k`` alone).

Not measured (the verdict unchanged) with too few common hot pixels, or when ``k``'s
uncertainty alone (times ``b``'s mean level) is larger than the materiality: the scale is
noisier than the excess the test looks for. Assumption: the hot pixels' dark current scales
with the temperature like the typical pixels' (one dark-current law per sensor).
"""

from __future__ import annotations

import dataclasses
import math

from darkflow.model import MasterDark
from darkflow.verify._crossset import PairExcess, exposure_pair_excess, pair_inputs
from darkflow.verify._gate import z_threshold

__all__ = ["uncooled_pair_excess"]


def uncooled_pair_excess(
    a: MasterDark,
    b: MasterDark,
    bias_a: MasterDark,
    bias_b: MasterDark,
    *,
    false_alarm: float,
    doubling_c: float = 6.3,
    blocks: int = 4,
) -> PairExcess:
    """The bracketed comparison of two uncooled masters (see the module docstring).

    Returns the hot-pixel comparison (``E_k``: ``failed``, ``level``, ``z``) with ``verdict``
    set when both comparisons fail in one direction (then ``structured`` and ``structure_z``
    are both comparisons'), and ``exposure_z`` the exposure-ratio comparison's deviate; ``why``
    says why the verdict was not measured. Masters with a temperature: the ordinary
    :func:`~darkflow.verify._crossset.exposure_pair_excess`.
    """
    # both comparisons start from the same typical pixels and dark signals: computed once
    inputs = pair_inputs(a, b, bias_a, bias_b, blocks=blocks)
    fit = exposure_pair_excess(
        a,
        b,
        bias_a,
        bias_b,
        false_alarm=false_alarm,
        doubling_c=doubling_c,
        blocks=blocks,
        inputs=inputs,
    )
    if not (fit.measured and fit.thermal_fitted):
        return fit
    k_level = fit.k_sd * abs(fit.mean_b)
    if k_level > fit.materiality:
        why = f"hot-pixel scale too uncertain ({k_level:.2g} ADU > {fit.materiality:.2g})"
        return dataclasses.replace(fit, why=f"verdict not measured: {why}")
    # its level, deviate and pattern only: the failure's scale and cause are the fit's
    exp = exposure_pair_excess(
        a,
        b,
        bias_a,
        bias_b,
        false_alarm=false_alarm,
        blocks=blocks,
        fit_scale=False,
        inputs=inputs,
        attribute=False,
    )
    if not exp.measured:
        return dataclasses.replace(fit, why=f"verdict not measured: {exp.why}")
    if not (fit.failed and exp.failed and fit.level * exp.level > 0):
        return dataclasses.replace(fit, exposure_z=exp.z)
    thr_1 = z_threshold(false_alarm, sides=1)  # a pattern: in both comparisons
    structure_z = min(fit.structure_z, exp.structure_z)
    return dataclasses.replace(
        fit,
        structured=bool(math.isfinite(structure_z) and structure_z > thr_1),
        structure_z=structure_z,
        exposure_z=exp.z,
        verdict=True,
    )
