"""Acceptance metrics of a master dark, as a pluggable registry (no plotting, no ipywidgets).

The explorer shows every registered metric for the original master and for a re-run with other
clipping settings. A metric is a function ``fn(master, context) -> float | None``; register more
with :func:`register_metric`::

    from darkflow_widgets.metrics import register_metric
    register_metric("p99_adu", lambda m, ctx: float(np.percentile(m.data, 99)),
                    description="99th percentile of the master", better=None)

:class:`MetricContext` gives metrics what they need beyond the master: the work directory and
the lights the master calibrated, with :meth:`MetricContext.residuals` re-calibrating (a few of)
those lights with a given master by the pipeline's own step
(:func:`darkflow.calibrate.calibrate_light`) and returning their residual statistics (cached
per master object).

The pipeline's *acceptance gates* (:func:`darkflow.verify.assess_master_set`, which the pipeline
calls too) are run for any clipping settings by :func:`acceptance` / :func:`assess_acceptance`:
the same hold-out split of the master's input darks, a master combined from the training frames
with the given settings, assessed against the held-out frames with the previous verified master
and the master bias the pipeline used. Their values are registered too (:data:`GATE_METRICS`, plus
``acceptance_confidence``), so :func:`compute_metrics` returns them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from darkflow.config import CombineConfig, Config, VerifyConfig
from darkflow.exceptions import CalibrationError, ConfigError, DarkflowError
from darkflow.io.fits import read_image
from darkflow.model import MasterDark, MasterStatus, ScaleMode

if TYPE_CHECKING:
    from darkflow.calibrate import LightCalibration
    from darkflow.matching import MatchDecision
from darkflow.registry import Registry
from darkflow.report.results import Workdir
from darkflow.triage.reasons import LightReason
from darkflow.verify import (
    MASTER_GATES,
    MasterAssessment,
    ResidualStats,
    VerifyReason,
    assess_master_set,
)

__all__ = [
    "ACCEPTANCE_COLUMNS",
    "ACCEPTANCE_TABLE_COLUMNS",
    "GATE_METRICS",
    "METRICS",
    "AcceptanceResult",
    "Metric",
    "MetricContext",
    "acceptance",
    "assess_acceptance",
    "clear_acceptance_cache",
    "compare_acceptance",
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
    _masters: dict[str, MasterDark] = field(default_factory=dict, repr=False)

    @classmethod
    def for_master(cls, workdir: Workdir, master_id: str, *, max_lights: int = 3) -> MetricContext:
        fr = workdir.frame_report
        lights = fr[fr["master_id"].astype(str) == master_id] if "master_id" in fr else fr.iloc[:0]
        return cls(workdir, master_id, lights.reset_index(drop=True), max_lights)

    def _load_bias(self, bias_id: Any) -> MasterDark | None:
        if self.workdir is None or not isinstance(bias_id, str) or not bias_id:
            return None
        return self._load_master(bias_id)

    def residuals(self, master: MasterDark) -> list[ResidualStats]:
        """Residual analysis of up to ``max_lights`` lights re-subtracted with ``master``.

        Each light is calibrated again by the pipeline's own step (:meth:`calibrate`, i.e.
        :func:`darkflow.calibrate.calibrate_light`) with ``master`` in place of its master; the
        residuals are those of its light checks (the frame report's ``noise_ratio`` and
        ``neg_tail_frac`` for the original master). Lights that cannot be read or were not
        subtracted are skipped (and logged); the list may be empty.
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
        result = self.calibrate(master, row)
        if result.check is None or result.check.residuals is None:
            raise CalibrationError(
                f"{row.get('path')}: not subtracted ({';'.join(result.reasons)})"
            )
        return result.check.residuals

    def calibrate(self, master: MasterDark, row: pd.Series | dict[str, Any]) -> LightCalibration:
        """One light of the frame report calibrated again, with ``master`` in place of its
        primary master: :func:`darkflow.calibrate.calibrate_light` with what the pipeline used.

        The light's match decision comes from ``decisions.jsonl``, its settings from its
        registry record (defaults without one; the photon-transfer gain clips as ``master``
        was combined), its master bias from the frame report. The calibration index is
        metadata-only: exact for unscaled recipes; scaled recipes lose the configuration's
        amp-glow model and linearity limit.

        Raises
        ------
        DarkflowError
            No work directory, or the light, its decision or its header cannot be found.
        """
        from darkflow.calibrate import calibrate_light
        from darkflow.matching import CalibrationIndex

        from .workdir import _catalog_metas, combine_config_of

        if self.workdir is None:
            raise DarkflowError("re-calibrating a light needs the work directory")
        path = str(row["path"])
        record = self.workdir.decision_for(path)
        if record is None or not record.get("master_id"):
            raise DarkflowError(f"{path}: no match decision in {self.workdir.path}")
        decision = decision_from_record(record)
        metas = _catalog_metas(self.workdir, [path])
        if not metas:
            raise DarkflowError(f"{path}: not in the catalog of {self.workdir.path}")
        meta = metas[path]
        config = dataclasses.replace(
            light_config(self.workdir, row.get("job_key")), combine=combine_config_of(master)
        )
        data, _ = read_image(path, hdu=meta.hdu_index, dtype="float32")

        def load(master_id: str) -> MasterDark:
            return master if master_id == decision.master_id else self._load_master(master_id)

        conservative = str(LightReason.CONSERVATIVE_FALLBACK) in decision.reasons
        return calibrate_light(
            data,
            meta,
            decision,
            load_master=load,
            bias=self._load_bias(row.get("bias_master_id")),
            index=CalibrationIndex(),
            config=config,
            master_status=_master_status(self.workdir, decision.master_id),
            amplitude_limit_sigma=(
                config.subtract.conservative_amplitude_sigma if conservative else None
            ),
        )

    def _load_master(self, master_id: str) -> MasterDark:
        if master_id not in self._masters:
            self._masters[master_id] = self.workdir.load_master(master_id)
        return self._masters[master_id]


def decision_from_record(record: dict[str, Any]) -> MatchDecision:
    """A :class:`~darkflow.matching.MatchDecision` from its ``decisions.jsonl`` record: what
    :func:`darkflow.calibrate.calibrate_light` needs (recipe, factors, uncertainties, reasons,
    confidence); candidates and advisories are left out."""
    from darkflow.matching import MatchDecision, ModelTerm

    mode = record.get("scale_mode")
    return MatchDecision(
        light_path=str(record["light_path"]),
        config_signature=str(record["config_signature"]),
        master_id=record.get("master_id"),
        scale_mode=ScaleMode(mode) if mode else None,
        scale_factor=float(record.get("scale_factor", 1.0)),
        confidence=float(record.get("confidence", 0.0)),
        reasons=tuple(str(r) for r in record.get("reasons") or ()),
        secondary_master_id=record.get("secondary_master_id"),
        exposure_factor=float(record.get("exposure_factor", 1.0)),
        temp_factor=float(record.get("temp_factor", 1.0)),
        terms=tuple(ModelTerm(**t) for t in record.get("terms") or ()),
        dark_rel_sigma=float(record.get("dark_rel_sigma") or 0.0),
        exposure_rel_sigma=float(record.get("exposure_rel_sigma") or 0.0),
        linearity_status=record.get("linearity_status"),
    )  # type: ignore[arg-type]


def light_config(wd: Workdir, job_key: Any) -> Config:
    """The settings a light was calibrated with (its registry record), else the defaults."""
    if isinstance(job_key, str) and job_key:
        try:
            row = Registry.read_artifact(wd.path, job_key)
        except DarkflowError as err:
            log.warning("cannot read the settings of light job %s: %s", job_key, err)
            row = None
        params = (row.provenance.get("parameters") if row else None) or {}
        if isinstance(params, dict) and params:
            try:
                return Config.from_dict(params)
            except (DarkflowError, TypeError, ValueError) as err:
                log.warning("light job %s: unusable recorded settings: %s", job_key, err)
    return Config()


def _master_status(wd: Workdir, master_id: str | None) -> str | None:
    masters = wd.masters
    if master_id is None or "status" not in masters:
        return None
    rows = masters[masters["master_id"].astype(str) == master_id]
    return None if rows.empty else str(rows.iloc[0]["status"])


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


def _stored(master: MasterDark, plane: str) -> bool:
    """The plane was written as a plane (full or compressed), not rebuilt from a header value
    (``[output] <plane> = "scalar"``, see docs/master.md)."""
    return (master.provenance.get("planes") or {}).get(plane) != "scalar"


def _clipped_low(master: MasterDark, ctx: MetricContext) -> float | None:
    if not _stored(master, "n_low"):
        return None
    return float(master.n_low.sum()) / _n_input(master)


def _clipped_high(master: MasterDark, ctx: MetricContext) -> float | None:
    if not _stored(master, "n_high"):
        return None
    return float(master.n_high.sum()) / _n_input(master)


def _hot_stable(master: MasterDark, ctx: MetricContext) -> float | None:
    if not _stored(master, "hot_persistence"):
        value = master.stats.get("n_hot_stable")
        return None if value is None else float(value)
    return float(np.count_nonzero(master.hot_persistence >= 0.9))


def _hot_transient(master: MasterDark, ctx: MetricContext) -> float | None:
    if not _stored(master, "hot_persistence"):
        value = master.stats.get("n_hot_transient")
        return None if value is None else float(value)
    hp = master.hot_persistence
    return float(np.count_nonzero((hp > 0) & (hp < 0.5)))


def _median_unc(master: MasterDark, ctx: MetricContext) -> float | None:
    if not _stored(master, "uncertainty"):
        value = master.stats.get("median_uncertainty")
        return None if value is None else float(value)
    return float(np.nanmedian(master.uncertainty))


def _min_used(master: MasterDark, ctx: MetricContext) -> float | None:
    if not _stored(master, "n_used"):
        return None
    return float(np.min(master.n_used))


def _noise_outliers(master: MasterDark, ctx: MetricContext) -> float | None:
    """Pixels whose frame-to-frame scatter is far above the sensor's noise model."""
    noise = master.provenance.get("noise") or {}
    sig0, level0 = noise.get("sig0_adu"), noise.get("level0_adu")
    gain = noise.get("egain_e_per_adu") or master.meta.egain_e_per_adu
    if sig0 is None or level0 is None or not _stored(master, "uncertainty"):
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


# ----------------------------------------------------------------------------- acceptance gates
# The gated metrics of darkflow.verify.assess_master (the names it gives them): verify's list.
GATE_METRICS: tuple[tuple[str, str | None, str], ...] = tuple(
    (g.metric, g.better, g.description) for g in MASTER_GATES
)
# Columns of AcceptanceResult.table (one row per gate); the gates' own list is verify's
# MASTER_VALUE_COLUMNS. ACCEPTANCE_COLUMNS is this table's old name.
ACCEPTANCE_TABLE_COLUMNS = [
    "metric",
    "value",
    "tolerance",
    "confidence",
    "result",
    "reason",
    "detail",
]
ACCEPTANCE_COLUMNS = ACCEPTANCE_TABLE_COLUMNS
_CACHE_SIZE = 64


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()  # previous/bias: the one the pipeline used (see assess_acceptance)


@dataclass(frozen=True, eq=False)
class AcceptanceResult:
    """The pipeline's acceptance gates for one set of darks and combine settings.

    ``table`` has one row per gated metric (:data:`ACCEPTANCE_TABLE_COLUMNS`: ``result`` is ``pass``,
    ``fail``, ``advisory`` or ``unavailable``), a row ``n_frames`` (the pipeline's too-few-frames
    advisory) and a
    last row ``overall`` (``value``/``confidence``: the overall confidence, ``result``: the
    status, ``reason``: every reason code, ``;``-joined).
    """

    status: str
    confidence: float
    reasons: tuple[str, ...]
    table: pd.DataFrame
    assessment: MasterAssessment
    inputs: tuple[str, ...]
    train: tuple[str, ...]
    held: tuple[str, ...]
    combine_config: CombineConfig
    verify_config: VerifyConfig
    verify_source: str  # "given", "registry" (what the pipeline used) or "defaults"
    previous_id: str | None
    bias_id: str | None
    seconds: float

    def value(self, name: str) -> float | None:
        """A gated metric's value (else the measured value of that name, else ``None``)."""
        for m in self.assessment.metrics:
            if m.name == name and m.value is not None:
                return float(m.value)
        v = self.assessment.values.get(name)
        return None if v is None else float(v)

    def __repr__(self) -> str:
        return (
            f"<AcceptanceResult {self.status} conf={self.confidence:.4f} "
            f"{len(self.train)} train / {len(self.held)} held out>"
        )


_ACCEPTANCE: OrderedDict[tuple, AcceptanceResult | DarkflowError] = OrderedDict()
_VERIFY: dict[tuple[str, str], VerifyConfig | None] = {}
_INFO: dict[tuple[str, str], tuple[tuple[str, ...], CombineConfig]] = {}


def clear_acceptance_cache() -> None:
    """Forget every cached acceptance (e.g. after the work directory changed)."""
    _ACCEPTANCE.clear()
    _VERIFY.clear()
    _INFO.clear()


def _master_row(wd: Workdir, master_id: str) -> dict[str, Any] | None:
    """The ``masters.csv`` row of a master (latest run first, then each night's)."""
    for night in [None, *wd.nights()]:
        try:
            table = wd.masters_of(night)
        except FileNotFoundError:
            continue
        rows = table[table["master_id"].astype(str) == master_id]
        if not rows.empty:
            return {
                k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in rows.iloc[0].items()
            }
    return None


def _all_masters(wd: Workdir) -> pd.DataFrame:
    tables = []
    for night in [None, *wd.nights()]:
        try:
            tables.append(wd.masters_of(night))
        except FileNotFoundError:
            continue
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return out.drop_duplicates("master_id") if "master_id" in out else out


def _fallback_previous(wd: Workdir, row: dict[str, Any]) -> str | None:
    """The pipeline's rule on ``masters.csv``: a verified master of the same kind and
    configuration from the latest earlier night, closest in exposure."""
    masters = _all_masters(wd)
    need = {"master_id", "kind", "config_signature", "status", "night", "exptime_s"}
    if masters.empty or not need <= set(masters.columns) or not row.get("night"):
        return None
    sel = masters[
        (masters["kind"].astype(str) == str(row.get("kind", "dark")))
        & (masters["config_signature"] == row.get("config_signature"))
        & (masters["status"].astype(str) == str(MasterStatus.VERIFIED))
        & (masters["night"].astype(str) < str(row["night"]))
    ]
    if sel.empty:
        return None
    sel = sel[sel["night"].astype(str) == sel["night"].astype(str).max()]
    t = max(float(row.get("exptime_s") or 0.0), 1e-6)
    dist = [
        (abs(math.log(max(float(e or 0.0), 1e-6) / t)), str(m))
        for e, m in zip(sel["exptime_s"], sel["master_id"], strict=True)
    ]
    return min(dist)[1]


def _fallback_bias(wd: Workdir, row: dict[str, Any]) -> str | None:
    """The pipeline's rule on ``masters.csv``: the master bias of the configuration from the
    same night, else the latest earlier one (verified or low confidence)."""
    masters = _all_masters(wd)
    need = {"master_id", "kind", "config_signature", "status", "night"}
    if str(row.get("kind", "dark")) == "bias" or masters.empty or not need <= set(masters.columns):
        return None
    usable = (str(MasterStatus.VERIFIED), str(MasterStatus.LOW_CONFIDENCE))
    sel = masters[
        (masters["kind"].astype(str) == "bias")
        & (masters["config_signature"] == row.get("config_signature"))
        & masters["status"].astype(str).isin(usable)
        & (masters["night"].astype(str) <= str(row.get("night") or ""))
    ]
    if sel.empty:
        return None
    best = sel.sort_values(["night", "master_id"]).iloc[-1]
    return str(best["master_id"])


def _recorded(wd: Workdir, row: dict[str, Any] | None, column: str, fallback) -> str | None:
    """What ``masters.csv`` records the pipeline assessed with (``None``: it had none); work
    directories without that column use the pipeline's rule on ``masters.csv`` instead."""
    if row is None:
        return None
    if column in row:
        value = row[column]
        return str(value) if isinstance(value, str) and value else None
    return fallback(wd, row)


def recorded_verify_config(wd: Workdir, master_id: str) -> VerifyConfig | None:
    """The ``[verify]`` settings the pipeline assessed a master with (its registry provenance).

    The registry is opened read-only (nothing is written to the work directory); ``None`` when
    it or the record is missing or unreadable.
    """
    key = (str(wd.path), master_id)
    if key in _VERIFY:
        return _VERIFY[key]
    found: VerifyConfig | None = None
    try:
        row = Registry.read_artifact(wd.path, master_id)
        verify = (row.provenance.get("assessed_with") or {}).get("verify") if row else None
        if isinstance(verify, dict):
            known = {f.name for f in dataclasses.fields(VerifyConfig)}
            found = Config.from_dict(
                {"verify": {k: v for k, v in verify.items() if k in known}}
            ).verify
    except (ValueError, TypeError, DarkflowError) as err:
        log.warning("cannot read the verify settings of %s from %s: %s", master_id, wd.path, err)
    _VERIFY[key] = found
    return found


def _config_key(cfg: CombineConfig) -> tuple:
    """What a combine's output depends on (the memory budget only sets the band height)."""
    return tuple(sorted((k, v) for k, v in dataclasses.asdict(cfg).items() if k != "memory_limit"))


def _load_optional(wd: Workdir, master_id: str | None) -> MasterDark | None:
    """A master for the gates (previous, bias); ``None`` when absent or unreadable (the gates
    leave out one of another shape, as in the pipeline)."""
    if master_id is None:
        return None
    try:
        return wd.load_master(master_id)
    except (DarkflowError, OSError) as err:
        log.warning("cannot load master %s for the acceptance gates: %s", master_id, err)
        return None


def _description(code: str | None) -> str:
    if not code:
        return ""
    try:
        return VerifyReason(code).description
    except ValueError:
        return ""


def _table(
    a: MasterAssessment,
    *,
    n_frames: int,
    min_frames: int,
    n_train: int,
    n_held: int,
    status: str,
    confidence: float,
    reasons: Sequence[str],
    note: str,
) -> pd.DataFrame:
    rows = []
    for m in a.metrics:
        if m.failed:
            result = "fail"
        elif m.advisory:
            result = "advisory"
        elif str(m.status) == "not_measured":
            result = "unavailable"
        else:
            result = "pass"
        reason = "" if m.reason is None else str(m.reason)
        detail = m.detail
        if result == "unavailable":
            detail = f"unavailable: {_description(reason)}" + (f" ({detail})" if detail else "")
        elif result == "fail" and not detail:
            detail = _description(reason)
        rows.append(
            {
                "metric": m.name,
                "value": math.nan if m.value is None else float(m.value),
                "tolerance": m.limit,
                "confidence": math.nan if m.confidence is None else float(m.confidence),
                "result": result,
                "reason": reason,
                "detail": detail,
            }
        )
    few = n_frames < min_frames
    rows.append(
        {
            "metric": "n_frames",
            "value": float(n_frames),
            "tolerance": f">= {min_frames}",
            "confidence": 1.0,
            "result": "advisory" if few else "pass",
            "reason": "too_few_frames" if few else "",
            "detail": f"{n_train} combined, {n_held} held out"
            + ("; no outlier rejection possible (an expected error, not a fault)" if few else ""),
        }
    )
    rows.append(
        {
            "metric": "overall",
            "value": confidence,
            "tolerance": "",
            "confidence": confidence,
            "result": status,
            "reason": ";".join(reasons),
            "detail": note,
        }
    )
    return pd.DataFrame(rows, columns=ACCEPTANCE_TABLE_COLUMNS)


def assess_acceptance(
    master_id_or_inputs: str | Sequence[str],
    workdir: Workdir | str | Path,
    combine_config: CombineConfig | None = None,
    verify_config: VerifyConfig | None = None,
    *,
    previous: str | None = AUTO,
    bias: str | None = AUTO,
    master: MasterDark | None = None,
) -> AcceptanceResult:
    """The pipeline's acceptance gates of a master, for any combine (clipping) settings.

    Calls :func:`darkflow.verify.assess_master_set`, as the pipeline's master job does: the
    master's input darks (:func:`darkflow_widgets.workdir.master_inputs`, keyed by their content hashes)
    are split into training and hold-out frames; when frames are held out, a master is
    combined from the training frames with ``combine_config`` and judged against the held-out
    frames, else the master of all inputs is judged (no hold-out metrics: the row
    ``holdout_width_ratio`` says they are unavailable); fewer inputs than
    ``combine_config.min_frames`` add the advisory ``too_few_frames``.

    Parameters
    ----------
    master_id_or_inputs
        A master id of ``masters.csv`` or the paths of dark (or bias) frames.
    workdir
        The work directory (path or :class:`~darkflow.report.results.Workdir`).
    combine_config
        The combine settings (default: those the master was built with, from its provenance).
    verify_config
        Tolerance bands and hold-out settings. Default: what the pipeline assessed the master
        with (its registry provenance, read read-only), else ``VerifyConfig()``.
    previous, bias
        Ids of the previous verified master and of the master bias (``None``: none). By default
        (``AUTO``) the ones the pipeline used, as ``masters.csv`` records them
        (``previous_master_id``, ``bias_master_id``); for a work directory without those
        columns, the pipeline's rule applied to ``masters.csv`` (previous: a ``verified`` master
        of the same kind and configuration from the latest earlier night, closest in exposure;
        bias: the configuration's master bias of the same night, else the latest earlier one).
        For a list of paths, ``AUTO`` means none. A master whose shape differs is dropped, as
        in the pipeline.
    master
        The master of all inputs with ``combine_config`` when already at hand (used only when
        nothing is held out and its provenance lists exactly these inputs; saves a combine).

    Results are cached per (work directory, inputs, combine settings, verify settings,
    previous, bias); :func:`clear_acceptance_cache` forgets them. Errors are cached too.

    Raises
    ------
    DarkflowError
        The inputs cannot be found or combined (e.g. ``InsufficientFramesError``).
    """
    from .workdir import open_workdir

    wd = open_workdir(workdir)
    row: dict[str, Any] | None = None
    if isinstance(master_id_or_inputs, str):
        master_id = master_id_or_inputs
        row = _master_row(wd, master_id)
        inputs, own = _master_info(wd, master_id)
        cfg = combine_config or own
    else:
        master_id = ""
        inputs = tuple(str(p) for p in master_id_or_inputs)
        cfg = combine_config or CombineConfig()
        if not inputs:
            raise DarkflowError("acceptance: no input frames")
    if verify_config is not None:
        verify, source = verify_config, "given"
    else:
        recorded = recorded_verify_config(wd, master_id) if master_id else None
        verify, source = (recorded, "registry") if recorded else (VerifyConfig(), "defaults")
    prev_id = previous
    if previous is AUTO:
        prev_id = _recorded(wd, row, "previous_master_id", _fallback_previous)
    bias_id = bias
    if bias is AUTO:
        bias_id = _recorded(wd, row, "bias_master_id", _fallback_bias)
    key = (str(wd.path), inputs, _config_key(cfg), verify, prev_id, bias_id)
    if key in _ACCEPTANCE:
        _ACCEPTANCE.move_to_end(key)
        hit = _ACCEPTANCE[key]
        if isinstance(hit, DarkflowError):
            raise hit
        return hit
    try:
        result = _assess(wd, master_id, inputs, cfg, verify, source, prev_id, bias_id, master)
    except DarkflowError as err:
        _remember(key, err)
        raise
    _remember(key, result)
    return result


def _remember(key: tuple, value: AcceptanceResult | DarkflowError) -> None:
    _ACCEPTANCE[key] = value
    while len(_ACCEPTANCE) > _CACHE_SIZE:
        _ACCEPTANCE.popitem(last=False)


def _inputs_of(m: MasterDark | None) -> set[str] | None:
    if m is None:
        return None
    items = (m.provenance or {}).get("inputs") or []
    return {str(i["path"]) for i in items if isinstance(i, dict) and i.get("path")}


def _master_info(wd: Workdir, master_id: str) -> tuple[tuple[str, ...], CombineConfig]:
    """A master's input darks and the combine settings it was built with (cached: reading a
    big master for every metric would be slow)."""
    from .workdir import combine_config_of, master_inputs

    key = (str(wd.path), master_id)
    if key not in _INFO:
        inputs = tuple(master_inputs(wd, master_id))
        _INFO[key] = (inputs, combine_config_of(wd.load_master(master_id)))
    return _INFO[key]


def _is_master_of(m: MasterDark | None, inputs: tuple[str, ...], cfg: CombineConfig) -> bool:
    from .workdir import combine_config_of

    return (
        m is not None
        and _inputs_of(m) == set(inputs)
        and _config_key(combine_config_of(m)) == _config_key(cfg)
    )


def _assess(
    wd: Workdir,
    master_id: str,
    inputs: tuple[str, ...],
    cfg: CombineConfig,
    verify: VerifyConfig,
    source: str,
    prev_id: str | None,
    bias_id: str | None,
    master: MasterDark | None,
) -> AcceptanceResult:
    from darkflow.io.hashing import file_hash

    from .workdir import _catalog_metas

    t0 = time.perf_counter()

    def full_master() -> MasterDark | None:
        """The master of all inputs with ``cfg``, when one is at hand (saves a combine)."""
        if _is_master_of(master, inputs, cfg):
            return master
        if master_id and _config_key(_master_info(wd, master_id)[1]) == _config_key(cfg):
            stored = wd.load_master(master_id)
            return stored if _is_master_of(stored, inputs, cfg) else None
        return None

    judged = assess_master_set(
        inputs,
        master=full_master,
        combine_config=cfg,
        config=verify,
        keys=[file_hash(p) for p in inputs],
        metas=_catalog_metas(wd, list(inputs)),
        previous=_load_optional(wd, prev_id),
        bias=_load_optional(wd, bias_id),
    )
    a, prev, bias_m = judged.assessment, judged.previous, judged.bias
    train, held = judged.train, judged.held
    status, confidence, reasons = str(judged.status), judged.confidence, list(judged.reasons)
    note = (
        f"previous master {prev_id if prev is not None else 'none'}, master bias "
        f"{bias_id if bias_m is not None else 'none'}, verify settings: {source}"
    )
    table = _table(
        a,
        n_frames=len(inputs),
        min_frames=cfg.min_frames,
        n_train=len(train),
        n_held=len(held),
        status=status,
        confidence=confidence,
        reasons=reasons,
        note=note,
    )
    return AcceptanceResult(
        status,
        confidence,
        tuple(reasons),
        table,
        a,
        inputs,
        tuple(train),
        tuple(held),
        cfg,
        verify,
        source,
        prev_id if prev is not None else None,
        bias_id if bias_m is not None else None,
        time.perf_counter() - t0,
    )


def acceptance(
    master_id_or_inputs: str | Sequence[str],
    workdir: Workdir | str | Path,
    combine_config: CombineConfig | None = None,
    verify_config: VerifyConfig | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """The acceptance table of :func:`assess_acceptance` (a copy; ``attrs`` holds ``status``
    and ``confidence``): ``metric, value, tolerance, confidence, result, reason, detail``.

    >>> acceptance("c32ad690d19c0cae", "work", CombineConfig(max_iters=0))   # doctest: +SKIP
    """
    res = assess_acceptance(master_id_or_inputs, workdir, combine_config, verify_config, **kwargs)
    table = res.table.copy()
    table.attrs.update(status=res.status, confidence=res.confidence)
    return table


def compare_acceptance(original: AcceptanceResult, rerun: AcceptanceResult) -> pd.DataFrame:
    """Two acceptances side by side: ``metric, tolerance, original, rerun, change,
    confidence_original, confidence_rerun, status`` (``"pass → fail"``; the ``overall`` row
    compares the overall confidence and ``"low_confidence → verified"``)."""
    a = original.table.set_index("metric")
    b = rerun.table.set_index("metric")
    names = list(a.index) + [n for n in b.index if n not in a.index]
    names = [n for n in names if n != "overall"] + ["overall"]
    rows = []
    for name in names:
        ra = a.loc[name] if name in a.index else None
        rb = b.loc[name] if name in b.index else None
        va = math.nan if ra is None else float(ra["value"])
        vb = math.nan if rb is None else float(rb["value"])
        sa = "absent" if ra is None else str(ra["result"])
        sb = "absent" if rb is None else str(rb["result"])
        tol = (rb if rb is not None else ra)["tolerance"]
        rows.append(
            {
                "metric": name,
                "tolerance": tol,
                "original": va,
                "rerun": vb,
                "change": vb - va,
                "confidence_original": math.nan if ra is None else float(ra["confidence"]),
                "confidence_rerun": math.nan if rb is None else float(rb["confidence"]),
                "status": f"{sa} → {sb}",
            }
        )
    return pd.DataFrame(rows)


def _context_acceptance(master: MasterDark, ctx: MetricContext) -> AcceptanceResult | None:
    """The acceptance of ``master``'s settings for the master of ``ctx`` (None without one)."""
    if ctx.workdir is None or not ctx.master_id:
        return None
    from .workdir import combine_config_of

    return assess_acceptance(ctx.master_id, ctx.workdir, combine_config_of(master), master=master)


def _gate_metric(name: str) -> MetricFn:
    def fn(master: MasterDark, ctx: MetricContext) -> float | None:
        res = _context_acceptance(master, ctx)
        return None if res is None else res.value(name)

    fn.__name__ = f"gate_{name}"
    return fn


def _acceptance_confidence(master: MasterDark, ctx: MetricContext) -> float | None:
    res = _context_acceptance(master, ctx)
    return None if res is None else res.confidence


for _name, _better, _desc in GATE_METRICS:
    register_metric(_name, _gate_metric(_name), description=f"gate: {_desc}", better=_better)
register_metric(
    "acceptance_confidence",
    _acceptance_confidence,
    description="overall confidence of the acceptance gates (the pipeline's master confidence)",
    better="higher",
)
GATE_NAMES = frozenset([n for n, _, _ in GATE_METRICS] + ["acceptance_confidence"])
