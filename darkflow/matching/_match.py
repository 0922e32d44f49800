"""Choose the dark model for one light: enumerate options, gate them, score them, explain."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from darkflow.config import Config, MatchingConfig, ScalingConfig
from darkflow.exposure.laws import LinearityReport
from darkflow.matching._advisory import acquisition_advisory
from darkflow.matching._index import CalibrationIndex
from darkflow.matching._options import (
    _MODE_CONFIDENCE,
    _NOTE_REASON,
    _SOURCE_CONFIDENCE,
    _SOURCE_REASON,
    EXPOSURE_ERROR_FLOOR,
    LN2,
    R,
    _Master,
    _Option,
    _Step,
)
from darkflow.matching._pairs import PairOptions
from darkflow.matching._records import (
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
    MasterEntry,
    MatchDecision,
    MatchReason,
    ModelTerm,
    temperature_gate_c,
)
from darkflow.model import FrameMeta, MasterStatus, ScaleMode
from darkflow.thermal import DarkCurrentLaw, SessionContext, TempEstimate

__all__ = ["match_light"]


def _configs(config: MatchingConfig | Config | None) -> tuple[MatchingConfig, ScalingConfig]:
    if isinstance(config, Config):
        return config.matching, config.scaling
    return config or MatchingConfig(), ScalingConfig()


def _steps(cfg: MatchingConfig) -> list[_Step]:
    steps = [_Step(cfg.max_dark_mismatch, cfg.max_time_h, cfg.max_exptime_ratio, None)]
    pairs = list(zip(cfg.expansion_mismatch, cfg.expansion_time_h, strict=False))
    for i, (mm, th) in enumerate(pairs, start=1):
        ratio = (
            cfg.expansion_exptime_ratio[i - 1]
            if i <= len(cfg.expansion_exptime_ratio)
            else cfg.max_exptime_ratio
        )
        ratio = max(ratio, cfg.max_exptime_ratio)
        label = f"step{i}: max_dark_mismatch={mm:g}, max_time_h={th:g}"
        if ratio != cfg.max_exptime_ratio:
            label += f", max_exptime_ratio={ratio:g}"
        steps.append(_Step(mm, th, ratio, label))
    if not cfg.assume_dark_law:
        return steps
    last = steps[-1]
    steps.append(
        replace(
            last,
            assume_law=True,
            label=f"step{len(steps)}: the configured dark-current law assumed "
            f"(doubling {cfg.doubling_temp_c:g} +- {cfg.doubling_temp_sigma_c:g} °C)",
        )
    )
    return steps


def _hours(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return abs((a - b).total_seconds()) / 3600.0


class _Evaluator(PairOptions):
    """All options for one light at one expansion step."""

    def __init__(self, light, temp, index, sig, law, lin, mcfg, scfg, step):
        self.light: FrameMeta = light
        self.temp: TempEstimate = temp
        self.index: CalibrationIndex = index
        self.sig: str = sig
        self.law: DarkCurrentLaw = law
        self.lin: LinearityReport | None = lin
        self.mcfg: MatchingConfig = mcfg
        self.scfg: ScalingConfig = scfg
        self.step: _Step = step
        self.t_light = float(light.exptime_s)
        self.has_bias = index.has_bias(sig)
        self.bias_t = index.bias_exptime(sig)
        self.bias_noise = index.biases[sig].noise_adu if sig in index.biases else None
        self._rms_first: float | None = None  # the first master's RMS, scaled to the light
        self._rms_points: dict[str, tuple[float, float]] = {}  # without a bias: (t / f, rms)

    # ------------------------------------------------------------------ per master
    def master(self, entry: MasterEntry) -> _Master:
        m, cfg = entry.meta, self.mcfg
        lost: list[str] = []
        notes = list(self.index.notes.get(entry.master_id, ()))
        if entry.status in (MasterStatus.QUARANTINED, MasterStatus.SUPERSEDED) or (
            entry.master_id in self.index.unusable
        ):
            lost.append(LOST_STATUS)
        t_m = m.exptime_s
        valid_t = t_m is not None and math.isfinite(t_m) and t_m > 0
        if not valid_t:
            lost.append(LOST_INVALID)
        temp, sigma = m.temp_c, None
        if temp is not None and math.isfinite(temp):
            n = max(m.n_frames, 1)
            spread = (
                (m.temp_max_c - m.temp_min_c)
                if m.temp_max_c is not None and m.temp_min_c is not None
                else 0.0
            )
            sigma = cfg.temp_reading_sigma_c / math.sqrt(n) + LN2 * spread**2 / (
                24 * self.law.doubling_temp_c
            )
        elif m.set_temp_c is not None:
            temp, sigma = m.set_temp_c, cfg.setpoint_sigma_c
            notes.append("temperature_from_setpoint")
        else:
            temp = None
        d_temp = None
        if temp is not None and self.temp.known:
            d_temp = self.temp.temp_c - temp
        d_time = _hours(self.light.date_obs_utc, entry.mid_time)
        if d_time is not None and d_time > self.step.max_time_h:
            lost.append(LOST_TIME)
        same = valid_t and abs(self.t_light - t_m) <= cfg.exptime_rel_tol * max(self.t_light, t_m)
        summary = self.index.summaries.get(entry.master_id)
        if summary is not None and valid_t:
            factor = self.law.factor(d_temp or 0.0)
            if self._rms_first is None:
                self._rms_first = max(summary.signal_rms_adu * self.t_light / t_m * factor, 1e-9)
            if not summary.bias_removed:
                self._rms_points[entry.master_id] = (t_m / factor, summary.signal_rms_adu)
        return _Master(
            entry=entry,
            temp_c=temp,
            temp_sigma_c=sigma or 0.0,
            delta_temp_c=d_temp,
            delta_time_h=d_time,
            hard_lost=tuple(lost),
            same_exposure=bool(same),
            ratio=self.t_light / t_m if valid_t else math.nan,
            delta_exptime_s=self.t_light - t_m if valid_t else math.nan,
            noise_adu=math.hypot(summary.noise_adu, summary.transient_rms_adu)
            if summary is not None
            else None,
            notes=tuple(notes),
        )

    @property
    def signal_rms(self) -> float | None:
        """The light's RMS dark structure (ADU) that a model removes.

        With a bias removed it is the master's RMS dark signal scaled to the light's exposure
        and temperature. Without one, a master's RMS deviation from its flat level holds the
        bias's fixed pattern ``A`` too, which does not scale: over masters of at least two
        effective exposures ``x = t / f`` (``f`` the dark-current law's factor to the light's
        temperature), ``rms² = A + r² x²`` is fitted (both terms non-negative) and evaluated at
        the light's exposure; a single exposure falls back to scaling it all.
        """
        pts = list(self._rms_points.values())
        xs = [x for x, _ in pts]
        if len(pts) < 2 or max(xs) < 1.2 * min(xs):
            return self._rms_first
        x2 = np.square(np.asarray(xs, dtype=np.float64))
        y = np.square(np.asarray([r for _, r in pts], dtype=np.float64))
        design = np.column_stack([np.ones_like(x2), x2])
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        if b < 0:  # no exposure-dependent part at all: the pattern is fixed
            a, b = float(np.mean(y)), 0.0
        elif a < 0:  # no fixed pattern: the RMS is dark signal, proportional to exposure
            a, b = 0.0, float(np.sum(x2 * y) / np.sum(x2 * x2))
        return max(math.sqrt(a + b * self.t_light**2), 1e-9)

    def _harmful(self, e_n: float, uses_bias: bool) -> bool:
        """Would the model's dark part add more noise than the dark signal it removes?

        ``e_n`` is the whole model's noise over the light's dark signal. A model that subtracts
        the master bias anyway is judged by what its dark part adds beyond the bias's own noise
        (``e_n² - (bias noise / S)²``): the bias is subtracted from every light, with or without
        a dark, so its noise is no cost of the dark. A scaled model of a longer dark can even be
        quieter than the bias alone (it averages the bias through both masters).
        """
        if uses_bias and self.bias_noise is not None and self.signal_rms:
            e_bias = self.bias_noise / self.signal_rms
            return e_n * e_n - e_bias * e_bias >= 1.0
        return e_n >= 1.0

    def _raw_mismatch(self, mm: _Master) -> float | None:
        if mm.delta_temp_c is None:
            return None
        return abs(1.0 / self.law.factor(mm.delta_temp_c) - 1.0)

    def _noise(self, coefs: Sequence[tuple[float, float | None]], bias_coef: float) -> float:
        """Relative noise of a model sum(c * master) + bias_coef * bias."""
        if self.signal_rms is None or any(u is None for _, u in coefs):
            return 0.0
        var = sum((c * u) ** 2 for c, u in coefs)
        if bias_coef and self.bias_noise is not None:
            var += (bias_coef * self.bias_noise) ** 2
        return math.sqrt(var) / self.signal_rms

    def _time_error(self, *hours: float | None) -> float:
        known = [h for h in hours if h is not None]
        return self.mcfg.time_error_per_day * (max(known) / 24.0) if known else 0.0

    def _exposure_error(self, f: float) -> tuple[float, bool]:
        """(error, demonstrated) of scaling by ``f`` with this configuration's exposure law."""
        lin = self.lin
        demonstrated = lin is not None and lin.scaling_demonstrated
        dev = (lin.deviation or 0.0) if demonstrated else self.scfg.unproven_error
        return max(dev, EXPOSURE_ERROR_FLOOR) * min(1.0, abs(math.log(f)) / LN2), demonstrated

    def singles(self, mm: _Master) -> list[_Option]:
        """Every single-master treatment of ``mm`` (passing or not)."""
        if mm.hard_lost:
            return []
        cfg, scfg, law = self.mcfg, self.scfg, self.law
        e = mm.entry
        conf = e.confidence
        t_m = e.meta.exptime_s
        # exposure treatments: (mode_key, f_e, e_exposure, reasons, lost)
        exposures: list[tuple[str, float, float, tuple, tuple]] = []
        if mm.same_exposure:
            exposures.append(("same", 1.0, 0.0, (), ()))
        elif not 1.0 / self.step.max_ratio <= mm.ratio <= self.step.max_ratio:
            return [self._lost_option(mm, (LOST_EXPOSURE,))]
        else:
            t_b = self.bias_t if e.meta.includes_bias else float(e.meta.bias_exptime_s or 0.0)
            lin = self.lin
            forbidden = lin is not None and not lin.scaling_possible and lin.bias_available
            has_bias = self.sig in self.index.biases or e.scalable
            can_scale = scfg.allow_exposure_scaling and has_bias and not forbidden and t_m - t_b > 0
            if can_scale:
                f_e = (self.t_light - t_b) / (t_m - t_b)
                err, shown = self._exposure_error(f_e)
                reasons = (
                    (R.EXPOSURE_SCALED,)
                    if shown
                    else (R.EXPOSURE_SCALED, R.EXPOSURE_LINEARITY_UNPROVEN)
                )
                if shown or scfg.unproven_linearity == "degrade":
                    exposures.append(("scale", f_e, err, reasons, ()))
            if forbidden:
                exposures.append(("none", 1.0, 0.0, (), (LOST_LINEARITY,)))
                if (
                    scfg.allow_exposure_scaling
                    and has_bias
                    and t_m - t_b > 0
                    and scfg.unproven_linearity == "degrade"
                ):
                    # a usable model with its measured error beats no output: scaled, with
                    # the deviation from proportionality carried as the exposure error
                    f_e = (self.t_light - t_b) / (t_m - t_b)
                    dev = max(lin.deviation or 0.0, scfg.unproven_error)
                    err = dev * min(1.0, abs(math.log(f_e)) / LN2)
                    exposures.append(
                        ("scale", f_e, err, (R.EXPOSURE_SCALED, R.EXPOSURE_LAW_NONLINEAR), ())
                    )
            if scfg.allow_unscaled:
                err = abs(1.0 / mm.ratio - 1.0)
                lost = () if err <= self.step.max_mismatch else (LOST_NOT_SCALABLE,)
                exposures.append(("unscaled", 1.0, err, (R.EXPOSURE_UNSCALED,), lost))
            if not exposures:
                return [self._lost_option(mm, (LOST_NOT_SCALABLE,))]
        # temperature treatments: (scaled, f_T, e_thermal, e_sigma, reasons, lost)
        temps: list[tuple[bool, float, float, float, tuple, tuple]] = []
        sig_dt = math.hypot(self.temp.sigma_c or 0.0, mm.temp_sigma_c)
        if mm.delta_temp_c is None:
            why = R.MASTER_NO_TEMPERATURE if self.temp.known else R.LIGHT_NO_TEMPERATURE
            temps.append((False, 1.0, cfg.unknown_temp_error, 0.0, (why,), ()))
        else:
            dt = mm.delta_temp_c
            raw = self._raw_mismatch(mm)
            e_sig = law.factor_rel_sigma(dt, sig_dt)
            lost = () if raw <= self.step.max_mismatch else (LOST_TEMPERATURE,)
            temps.append((False, 1.0, raw, e_sig, (), lost))
            if (
                law.supports_scaling
                and scfg.allow_temperature_scaling
                and self.has_bias
                and abs(dt) >= 0.05
                and abs(dt) <= cfg.max_temp_scaling_c
                and law.covers(self.temp.temp_c, cfg.law_extrapolation_c)
            ):
                e_model = cfg.temp_model_error_per_c * abs(dt)
                lost = () if e_sig <= self.step.max_mismatch else (LOST_TEMPERATURE,)
                temps.append((True, law.factor(dt), e_model, e_sig, (R.TEMPERATURE_SCALED,), lost))
            elif (
                self.step.assume_law
                and raw > self.step.max_mismatch
                and not law.supports_scaling
                and scfg.allow_temperature_scaling
                and self.has_bias
                and 0.05 <= abs(dt) <= cfg.max_temp_scaling_c
            ):
                # the last resort before no output: the configured law (its doubling
                # temperature's prior uncertainty in the stated error) scales the master to the
                # light's temperature; a usable model with a stated error beats none, and the
                # light's own dark-scale check measures what the prior got wrong
                e_model = cfg.temp_model_error_per_c * abs(dt)
                lost = () if e_sig <= self.step.max_mismatch else (LOST_TEMPERATURE,)
                temps.append(
                    (
                        True,
                        law.factor(dt),
                        e_model,
                        e_sig,
                        (R.TEMPERATURE_SCALED, R.DARK_LAW_ASSUMED),
                        lost,
                    )
                )
        out = []
        for key, f_e, e_x, r_x, lost_x in exposures:
            for scaled, f_t, e_t, e_s, r_t, lost_t in temps:
                if key == "unscaled" and scaled:
                    continue
                if key == "unscaled":  # the combined mismatch must pass the gate too
                    combined = abs(
                        1.0 / (mm.ratio * (1.0 if scaled else law.factor(mm.delta_temp_c or 0.0)))
                        - 1.0
                    )
                    if combined > self.step.max_mismatch and not lost_x:
                        lost_x = (LOST_NOT_SCALABLE,)
                mode = {
                    ("same", False): ScaleMode.NONE,
                    ("same", True): ScaleMode.TEMPERATURE,
                    ("scale", False): ScaleMode.EXPOSURE,
                    ("scale", True): ScaleMode.EXPOSURE_TEMPERATURE,
                    ("unscaled", False): ScaleMode.UNSCALED,
                    ("none", False): ScaleMode.NONE,
                    ("none", True): ScaleMode.TEMPERATURE,
                }[(key, scaled)]
                a = f_e * f_t
                beta = 1.0 if e.meta.includes_bias else 0.0
                uses_bias = a != 1.0 or beta == 0.0
                e_n = self._noise([(a, mm.noise_adu)], (1.0 - a * beta) if uses_bias else 0.0)
                level = self._level_sigma(a) if key == "scale" or scaled else 0.0
                if level and self.signal_rms:
                    e_n = math.hypot(e_n, level / self.signal_rms)
                lost = lost_x + lost_t
                if key == "scale" and self._harmful(e_n, uses_bias):
                    lost += (LOST_HARM,)
                out.append(
                    _Option(
                        mode=mode,
                        terms=(ModelTerm(e.master_id, 1.0, f_e, f_t),),
                        e_thermal=e_t,
                        e_sigma=e_s,
                        e_exposure=e_x,
                        e_noise=e_n,
                        e_time=self._time_error(mm.delta_time_h),
                        penalty=0.5 * (1.0 - conf),
                        reasons=r_x + r_t,
                        confidence_factor=_MODE_CONFIDENCE[mode]
                        * (
                            0.85
                            if R.EXPOSURE_LINEARITY_UNPROVEN in r_x
                            or R.EXPOSURE_LAW_NONLINEAR in r_x
                            else 1.0
                        ),
                        scale_factor=a,
                        exposure_factor=f_e,
                        temp_factor=f_t,
                        passed=not lost,
                        lost=lost,
                        level_sigma_adu=level,
                    )
                )
        return out

    def _level_sigma(self, a: float) -> float:
        """Uniform level error (ADU) of scaling a master's dark signal by ``a``: the normal
        pixels' level offset over the bias (and its uncertainty) scales with it."""
        lin = self.lin
        if lin is None or not lin.bias_available:
            return 0.0
        return abs(a - 1.0) * lin.level_error_adu

    def _lost_option(self, mm: _Master, lost: tuple[str, ...]) -> _Option:
        return _Option(
            ScaleMode.NONE,
            (ModelTerm(mm.entry.master_id, 1.0),),
            math.inf,
            0,
            0,
            0,
            0,
            0,
            (),
            0.0,
            1.0,
            1.0,
            1.0,
            False,
            lost,
        )


# ----------------------------------------------------------------------------- the decision
def _candidate(mm: _Master, options: Sequence[_Option], law: DarkCurrentLaw) -> Candidate:
    passing = [o for o in options if o.passed]
    best = min(passing, key=lambda o: (o.score, str(o.mode))) if passing else None
    lost: tuple[str, ...] = mm.hard_lost
    if best is None and not lost:
        seen: list[str] = []
        for o in options:
            for why in o.lost:
                if why not in seen:
                    seen.append(why)
        lost = tuple(seen) or (LOST_NOT_SCALABLE,)
    e = mm.entry
    raw = None if mm.delta_temp_c is None else abs(1.0 / law.factor(mm.delta_temp_c) - 1.0)
    return Candidate(
        master_id=e.master_id,
        exptime_s=e.meta.exptime_s,
        temp_c=mm.temp_c,
        delta_exptime_s=mm.delta_exptime_s,
        delta_temp_c=mm.delta_temp_c,
        delta_time_h=mm.delta_time_h,
        dark_mismatch=raw,
        score=best.score if best else None,
        lost_because=lost,
        scale_mode=best.mode if best else None,
        exposure_factor=best.exposure_factor if best else None,
        temp_factor=best.temp_factor if best else None,
        predicted_error=best.error if best else None,
        notes=mm.notes,
    )


def match_light(
    light: FrameMeta,
    index: CalibrationIndex,
    config: MatchingConfig | Config | None = None,
    *,
    session_context: SessionContext | None = None,
) -> MatchDecision:
    """Choose the dark model for ``light`` and explain the choice (never raises on bad metadata).

    Parameters
    ----------
    light
        Normalised header of the light.
    index
        From :func:`build_index` (every mode) or ``CalibrationIndex.from_entries``
        (metadata only: single-master modes with the configured law).
    config
        The full :class:`~darkflow.config.Config` (matching + scaling sections), or only its
        ``matching`` section (scaling defaults).
    session_context
        Thermal knowledge about the light's session (:func:`darkflow.thermal.session_context`):
        used when the light's reading is missing, noisy or an outlier.

    Returns
    -------
    MatchDecision
        ``master_id is None`` (with reasons and an acquisition advisory) when no dark model
        passes, even after the configured expansion steps.
    """
    mcfg, scfg = _configs(config)
    sig = light.config_signature
    law = index.law_for(sig, mcfg)
    lin = index.linearity.get(sig)
    gate = temperature_gate_c(mcfg.max_dark_mismatch, law.doubling_temp_c)
    base: dict[str, Any] = dict(
        light_path=light.path,
        config_signature=sig,
        temperature_gate_c=gate,
        dark_law=law,
        linearity_status=str(lin.status) if lin else None,
    )
    t = light.exptime_s
    if t is None or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
        return MatchDecision(
            **base,
            master_id=None,
            scale_mode=None,
            scale_factor=math.nan,
            confidence=0.0,
            reasons=(R.INVALID_EXPOSURE,),
        )
    context = session_context or SessionContext()
    temp = context.estimate(light, mcfg)
    base["temperature"] = temp
    entries = index.for_config(sig)
    if not entries:
        return MatchDecision(
            **base,
            master_id=None,
            scale_mode=None,
            scale_factor=math.nan,
            confidence=0.0,
            reasons=(R.NO_MASTER_FOR_CONFIG,),
            advisory=acquisition_advisory(
                light, mcfg, temp=temp, doubling_temp_c=law.doubling_temp_c
            ),
        )
    expansions: list[str] = []
    candidates: list[Candidate] = []
    options: list[_Option] = []
    for step in _steps(mcfg):
        if step.label:
            expansions.append(step.label)
        ev = _Evaluator(light, temp, index, sig, law, lin, mcfg, scfg, step)
        masters = [ev.master(e) for e in entries]
        singles = {m.entry.master_id: ev.singles(m) for m in masters}
        candidates = [_candidate(m, singles[m.entry.master_id], law) for m in masters]
        options = [o for opts in singles.values() for o in opts] + ev.pairs(masters)
        if any(o.passed for o in options):
            break
    else:
        return MatchDecision(
            **base,
            master_id=None,
            scale_mode=None,
            scale_factor=math.nan,
            confidence=0.0,
            candidates=tuple(candidates),
            reasons=(*_temp_reasons(light, temp), R.NO_CANDIDATE),
            expansions=tuple(expansions),
            advisory=acquisition_advisory(
                light, mcfg, temp=temp, doubling_temp_c=law.doubling_temp_c
            ),
            options=tuple(o.to_dict() for o in options if o.terms and math.isfinite(o.score)),
        )
    passing = [o for o in options if o.passed]
    best = min(passing, key=lambda o: (o.score, o.ids, str(o.mode)))
    used = set(best.ids)
    final = []
    for c in candidates:
        if c.master_id in used:
            final.append(replace(c, lost_because=()))
        elif c.passed:
            final.append(replace(c, lost_because=(LOST_SCORE,)))
        else:
            final.append(c)
    chosen = next(c for c in final if c.master_id == best.ids[0])
    entries_by_id = {e.master_id: e for e in entries}
    reasons = list(_temp_reasons(light, temp))
    for r in best.reasons:
        if r not in reasons:
            reasons.append(r)
    if (
        lin is not None
        and not lin.scaling_possible
        and lin.bias_available
        and best.mode in (ScaleMode.UNSCALED, ScaleMode.INTERPOLATE)
    ):
        reasons.append(R.NONLINEAR_DARK)
    if any("setpoint_not_reached" in index.notes.get(i, ()) for i in best.ids):
        reasons.append(R.SETPOINT_NOT_REACHED)
    if expansions:
        reasons.insert(0, R.EXPANDED_SEARCH)
    if any(entries_by_id[i].status == MasterStatus.LOW_CONFIDENCE for i in best.ids):
        reasons.append(R.LOW_CONFIDENCE_MASTER)
    weights = [abs(term.weight) for term in best.terms]
    conf_m = sum(
        w * entries_by_id[term.master_id].confidence
        for w, term in zip(weights, best.terms, strict=True)
    ) / sum(weights)
    source_factor = _SOURCE_CONFIDENCE.get(temp.source, 0.8)
    if temp.note in ("noisy_readings", "reading_outlier"):
        source_factor = 0.9
    confidence = (
        conf_m
        * source_factor
        * best.confidence_factor
        * (1.0 - 0.3 * min(best.systematic_error / mcfg.max_dark_mismatch, 1.0))
    )
    confidence -= mcfg.expansion_confidence_penalty * len(expansions)
    dark_rel_sigma = math.hypot(best.e_thermal, best.e_sigma)
    return MatchDecision(
        **base,
        master_id=best.ids[0],
        secondary_master_id=best.ids[1] if len(best.ids) > 1 else None,
        scale_mode=best.mode,
        scale_factor=best.scale_factor,
        exposure_factor=best.exposure_factor,
        temp_factor=best.temp_factor,
        confidence=max(0.0, min(1.0, confidence)),
        candidates=tuple(final),
        reasons=tuple(reasons),
        expansions=tuple(expansions),
        chosen=chosen,
        terms=best.terms,
        dark_rel_sigma=dark_rel_sigma,
        exposure_rel_sigma=best.e_exposure,
        level_sigma_adu=best.level_sigma_adu,
        predicted_error=best.error,
        options=tuple(
            o.to_dict()
            for o in sorted(
                (o for o in options if len(o.terms) > 1 or o.passed), key=lambda o: o.score
            )[:12]
        ),
    )


def _temp_reasons(light: FrameMeta, temp: TempEstimate) -> tuple[MatchReason, ...]:
    out: list[MatchReason] = []
    reading = light.ccd_temp_c
    if reading is None or not math.isfinite(reading):
        out.append(R.LIGHT_NO_TEMPERATURE)
    if temp.source in _SOURCE_REASON:
        out.append(_SOURCE_REASON[temp.source])
    if temp.note in _NOTE_REASON:
        out.append(_NOTE_REASON[temp.note])
    return tuple(out)
