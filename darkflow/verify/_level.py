"""The dark level against the bias of its night: no dark signal is negative.

A master dark holds the bias level plus dark current (and amp glow), and dark current is never
negative: the darks' typical pixels can sit below the master bias of their own night only when
the bias level moved between the two sets (a bias drift, a camera reset, another offset). The
noise-model gate sees such an offset only through the shot noise it predicts from the level
(``level_excess`` / ``variance_excess``), which a low dark current makes insensitive; this gate
reads the level itself.

Statistic: ``level``, the mean of ``master - bias`` over the typical pixels (hot-free). Its
spread when all is well: the two sets' frame-level jitter over their frame counts and the
sampling spread of the mean of the pixels (the same terms as the noise model's level). The null
is a set (any ``level >= 0``): ``z`` is the distance to its nearest point. It fails one-sided, ``level < -(z* x spread + materiality)``; the materiality is the master's own
per-pixel noise ``sigma_frame / sqrt(N)``: an offset below it hides inside the uncertainty every
calibrated light already carries for the master, above it the stated uncertainty is wrong for
every pixel at once. False-alarm probability ``gate_false_alarm`` (one-sided Gaussian tail).
"""

from __future__ import annotations

import math

import numpy as np

from darkflow.config import VerifyConfig
from darkflow.model import MasterDark
from darkflow.verify._gate import combine_spread, median_sd
from darkflow.verify._metrics import Metric, VerifyReason, not_measured, significance_gate
from darkflow.verify._stability import frame_jitter

__all__ = ["dark_level_gate"]


def dark_level_gate(
    master: MasterDark,
    bias: MasterDark,
    rows: slice,
    typical: np.ndarray,
    frame_var: float,
    config: VerifyConfig,
) -> tuple[Metric, dict[str, float | None]]:
    """Is the master dark's typical level below its night's master bias (``dark_below_bias``)?

    ``typical``: the hot-free pixels of ``rows``; ``frame_var``: one dark frame's pixel
    variance (ADU²) there. Not measured with fewer than 100 typical pixels or no frame noise.
    """
    diff = (master.data[rows] - bias.data[rows])[typical]
    diff = diff[np.isfinite(diff)].astype(np.float64)
    if diff.size < 100 or not (frame_var > 0):
        return not_measured("dark_level_above_bias", None, "fewer than 100 typical pixels"), {}
    level = float(np.mean(diff))
    n_d, n_b = max(master.meta.n_frames, 2), max(bias.meta.n_frames, 2)
    spread = combine_spread(
        frame_jitter(master) / math.sqrt(n_d),
        frame_jitter(bias) / math.sqrt(n_b),
        median_sd(float(np.std(diff)), diff.size),
    )
    materiality = math.sqrt(frame_var / n_d)
    metric = significance_gate(
        # the null is a set (any level >= 0): z is the distance to its nearest point
        "dark_level_above_bias",
        level,
        expected=max(level, 0.0),
        spread=spread,
        reason=VerifyReason.DARK_BELOW_BIAS,
        side="lower",
        materiality=materiality,
        false_alarm=config.gate_false_alarm,
        detail=f"master dark - bias {level:.3g} ADU +- {spread:.2g}, master noise "
        f"{materiality:.2g} ADU",
    )
    return metric, {"dark_level_above_bias_adu": level}
