"""Acceptance metrics of a master dark, as a pluggable registry (no plotting, no ipywidgets).

The explorer shows every registered metric for the original master and for a re-run with other
clipping settings. A metric is a function ``fn(master, context) -> float | None``; register more
with :func:`register_metric` (the acceptance metrics of the verification issue plug in here)::

    from widgets.metrics import register_metric
    register_metric("p99_adu", lambda m, ctx: float(np.percentile(m.data, 99)),
                    description="99th percentile of the master", better=None)

:class:`MetricContext` gives metrics what they need beyond the master: the work directory and
the lights the master calibrated, with :meth:`MetricContext.residuals` re-subtracting (a few of)
those lights with a given master exactly as the pipeline does and running
:func:`darkflow.verify.residual_analysis` on them (cached per master object).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from darkflow.exceptions import ConfigError, DarkflowError
from darkflow.io.fits import read_image
from darkflow.model import MasterDark, ScaleMode
from darkflow.results import Workdir
from darkflow.subtract import build_dark_model, noise_model_variance, subtract_dark
from darkflow.verify import ResidualStats, residual_analysis

__all__ = [
    "METRICS",
    "Metric",
    "MetricContext",
    "compute_metrics",
    "metric_names",
    "register_metric",
    "unregister_metric",
]

log = logging.getLogger(__name__)

MetricFn = Callable[[MasterDark, "MetricContext"], float | None]


@dataclass(frozen=True)
class Metric:
    """One acceptance metric: its function, a one-line description and which way is better."""

    name: str
    fn: MetricFn
    description: str = ""
    better: str | None = "lower"  # "lower", "higher", "unity" (closest to 1) or None


METRICS: dict[str, Metric] = {}
BETTER = ("lower", "higher", "unity", None)


def register_metric(
    name: str,
    fn: MetricFn,
    *,
    description: str = "",
    better: str | None = "lower",
    overwrite: bool = False,
) -> Metric:
    """Add a metric to the registry shown by the explorer (kept in registration order).

    Raises
    ------
    ConfigError
        ``name`` is taken (and not ``overwrite``), ``fn`` is not callable or ``better`` is not
        ``"lower"``, ``"higher"``, ``"unity"`` or ``None``.
    """
    if not callable(fn):
        raise ConfigError(f"metric {name!r}: fn must be callable, got {type(fn).__name__}")
    if better not in BETTER:
        raise ConfigError(f"metric {name!r}: better must be one of {BETTER}")
    if name in METRICS and not overwrite:
        raise ConfigError(f"a metric named {name!r} is already registered (pass overwrite=True)")
    metric = Metric(name, fn, description, better)
    METRICS[name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a metric (no error when it is not registered)."""
    METRICS.pop(name, None)


def metric_names() -> list[str]:
    return list(METRICS)


@dataclass(eq=False)
class MetricContext:
    """What a metric may use besides the master: the work directory and the master's lights.

    Parameters
    ----------
    workdir
        The work directory the master belongs to.
    master_id
        Its id (``masters.csv``).
    lights
        Rows of the frame report calibrated with this master (any may be empty).
    max_lights
        At most this many lights are re-subtracted by :meth:`residuals`.
    """

    workdir: Workdir | None = None
    master_id: str = ""
    lights: pd.DataFrame = field(default_factory=pd.DataFrame)
    max_lights: int = 3
    _cache: dict[int, tuple[MasterDark, list[ResidualStats]]] = field(
        default_factory=dict, repr=False
    )
    _bias: dict[str, MasterDark] = field(default_factory=dict, repr=False)

    @classmethod
    def for_master(cls, workdir: Workdir, master_id: str, *, max_lights: int = 3) -> MetricContext:
        fr = workdir.frame_report
        lights = fr[fr["master_id"].astype(str) == master_id] if "master_id" in fr else fr.iloc[:0]
        return cls(workdir, master_id, lights.reset_index(drop=True), max_lights)

    def _load_bias(self, bias_id: Any) -> MasterDark | None:
        if self.workdir is None or not isinstance(bias_id, str) or not bias_id:
            return None
        if bias_id not in self._bias:
            self._bias[bias_id] = self.workdir.load_master(bias_id)
        return self._bias[bias_id]

    def residuals(self, master: MasterDark) -> list[ResidualStats]:
        """Residual analysis of up to ``max_lights`` lights re-subtracted with ``master``.

        Each light is read raw, the dark model is built as the pipeline built it (the frame
        report's scale mode and factor, its master bias and e-/ADU), subtracted with
        :func:`darkflow.subtract.subtract_dark` and checked with
        :func:`darkflow.verify.residual_analysis`. Lights that cannot be read are skipped (and
        logged); the list may be empty.
        """
        key = id(master)
        if key in self._cache and self._cache[key][0] is master:
            return self._cache[key][1]
        out: list[ResidualStats] = []
        for _, row in self.lights.head(self.max_lights).iterrows():
            try:
                out.append(self._residual_of(master, row))
            except DarkflowError as err:
                log.warning("cannot re-subtract %s: %s", row.get("path"), err)
        self._cache[key] = (master, out)
        return out

    def _residual_of(self, master: MasterDark, row: pd.Series) -> ResidualStats:
        bias = self._load_bias(row.get("bias_master_id"))
        mode = ScaleMode(str(row.get("scale_mode") or "none"))
        factor = _num(row.get("scale_factor"), 1.0)
        if mode == ScaleMode.EXPOSURE and bias is None:
            mode = ScaleMode.UNSCALED
        if mode not in (ScaleMode.NONE, ScaleMode.UNSCALED, ScaleMode.EXPOSURE):
            mode, factor = ScaleMode.NONE, 1.0
        model = build_dark_model(master, scale_mode=mode, scale_factor=factor, bias=bias)
        data, _ = read_image(str(row["path"]), dtype="float32")
        egain = _num(row.get("egain_e_per_adu"), None) or master.meta.egain_e_per_adu
        read_var, shot_var = noise_model_variance(
            master, bias=bias, egain_e_per_adu=egain, scale_factor=model.scale_factor
        )
        cal = subtract_dark(
            data,
            model,
            egain_e_per_adu=egain,
            read_variance_adu2=read_var,
            dark_shot_variance_adu2=shot_var,
        )
        return residual_analysis(cal.data, cal.uncertainty)


def _num(value: Any, default: float | None) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def compute_metrics(
    master: MasterDark, context: MetricContext | None = None, names: Iterable[str] | None = None
) -> pd.DataFrame:
    """Every (or the named) registered metric of ``master``: ``metric, value, better, description``.

    A metric that fails with a darkflow error (or returns a non-number) gets ``NaN``; the error
    is logged, the other metrics are still computed.
    """
    context = context or MetricContext()
    rows = []
    for name in names if names is not None else METRICS:
        if name not in METRICS:
            raise ConfigError(f"unknown metric {name!r}; registered: {', '.join(METRICS)}")
        metric = METRICS[name]
        try:
            value = metric.fn(master, context)
        except (DarkflowError, ValueError, ZeroDivisionError) as err:
            log.warning("metric %s failed: %s", name, err)
            value = None
        rows.append(
            {
                "metric": name,
                "value": _num(value, math.nan),
                "better": metric.better or "",
                "description": metric.description,
            }
        )
    return pd.DataFrame(rows, columns=["metric", "value", "better", "description"])


# ----------------------------------------------------------------------------- built-ins
def _n_input(master: MasterDark) -> float:
    return float(max(master.meta.n_frames, 1) * master.data.size)


def _clipped_low(master: MasterDark, ctx: MetricContext) -> float:
    return float(master.n_low.sum()) / _n_input(master)


def _clipped_high(master: MasterDark, ctx: MetricContext) -> float:
    return float(master.n_high.sum()) / _n_input(master)


def _hot_stable(master: MasterDark, ctx: MetricContext) -> float:
    return float(np.count_nonzero(master.hot_persistence >= 0.9))


def _hot_transient(master: MasterDark, ctx: MetricContext) -> float:
    hp = master.hot_persistence
    return float(np.count_nonzero((hp > 0) & (hp < 0.5)))


def _median_unc(master: MasterDark, ctx: MetricContext) -> float:
    return float(np.nanmedian(master.uncertainty))


def _min_used(master: MasterDark, ctx: MetricContext) -> float:
    return float(np.min(master.n_used))


def _noise_outliers(master: MasterDark, ctx: MetricContext) -> float | None:
    """Pixels whose frame-to-frame scatter is far above the sensor's noise model."""
    noise = master.provenance.get("noise") or {}
    sig0, level0 = noise.get("sig0_adu"), noise.get("level0_adu")
    gain = noise.get("egain_e_per_adu") or master.meta.egain_e_per_adu
    if sig0 is None or level0 is None:
        return None
    signal = np.maximum(master.data.astype(np.float64) - level0, 0.0)
    predicted = np.sqrt(sig0**2 + (signal / gain if gain else 0.0))
    scatter = master.uncertainty.astype(np.float64) * np.sqrt(np.maximum(master.n_used, 1))
    return float(np.count_nonzero(scatter > 4.0 * predicted)) / master.data.size


def _residual_width(master: MasterDark, ctx: MetricContext) -> float | None:
    res = ctx.residuals(master)
    return float(np.median([r.noise_ratio for r in res])) if res else None


def _neg_tail(master: MasterDark, ctx: MetricContext) -> float | None:
    res = ctx.residuals(master)
    return float(np.median([r.neg_tail_frac for r in res])) if res else None


for _name, _fn, _desc, _better in (
    ("clipped_low_frac", _clipped_low, "fraction of input pixel values clipped low", "lower"),
    ("clipped_high_frac", _clipped_high, "fraction of input pixel values clipped high", "lower"),
    ("n_hot_stable", _hot_stable, "pixels high in ≥ 90% of the darks (real hot pixels)", None),
    (
        "n_hot_transient",
        _hot_transient,
        "pixels high in < 50% of the darks (cosmics, flicker)",
        None,
    ),
    ("median_uncertainty_adu", _median_unc, "median standard error of the master (ADU)", "lower"),
    ("min_n_used", _min_used, "fewest frames kept for any pixel", "higher"),
    (
        "noise_outlier_frac",
        _noise_outliers,
        "pixels whose frame-to-frame scatter is > 4x the noise model (leaked cosmics, flicker)",
        "lower",
    ),
    (
        "residual_width",
        _residual_width,
        "median noise ratio of the master's lights re-subtracted with it (1 is ideal)",
        "unity",
    ),
    (
        "neg_tail_frac",
        _neg_tail,
        "median fraction of background pixels below -6 sigma in those lights",
        "lower",
    ),
):
    register_metric(_name, _fn, description=_desc, better=_better)
