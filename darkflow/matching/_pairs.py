"""Two-master options: interpolation between exposure bins and between temperatures."""

from __future__ import annotations

import math
from collections.abc import Sequence

from darkflow.matching._options import (
    _MODE_CONFIDENCE,
    EXPOSURE_ERROR_FLOOR,
    R,
    _Master,
    _Option,
)
from darkflow.matching._records import LOST_HARM, LOST_NOT_SCALABLE, LOST_TEMPERATURE, ModelTerm
from darkflow.model import ScaleMode


def fit_coefficients(
    exposures: Sequence[float], noise: Sequence[float], t: float
) -> tuple[float, ...]:
    """Weights ``c_k`` of the weighted least-squares line through ``(t_k, M_k)`` evaluated at
    ``t``: ``sum_k c_k M_k`` per pixel, with ``sum c_k = 1`` and ``sum c_k t_k = t``.

    Weights ``w_k = 1 / noise_k²``; ``c_k = w_k (S2 - S1 t_k + t (S0 t_k - S1)) / D`` with
    ``S_j = sum w t^j``, ``D = S0 S2 - S1²``. Two bins give the exact two-point line.
    """
    ts = [float(v) for v in exposures]
    w = [1.0 / max(float(u), 1e-12) ** 2 for u in noise]
    s0 = sum(w)
    s1 = sum(wk * tk for wk, tk in zip(w, ts, strict=True))
    s2 = sum(wk * tk * tk for wk, tk in zip(w, ts, strict=True))
    det = s0 * s2 - s1 * s1
    if not det > 0:
        raise ValueError("a per-pixel linear fit needs two distinct exposures")
    return tuple(
        wk * (s2 - s1 * tk + t * (s0 * tk - s1)) / det for wk, tk in zip(w, ts, strict=True)
    )


class PairOptions:
    """Mixin of the matching evaluator (``self``: light, temperature, index, law, configs)."""

    def pairs(self, masters: Sequence[_Master]) -> list[_Option]:
        if not self.index.multi_master:
            return []
        pool = [m for m in masters if not m.hard_lost]
        out = self._exposure_pairs(pool)
        out += self._fit_options(pool)
        out += self._thermal_pairs([m for m in pool if m.same_exposure])
        return out

    def _nearest_in_temp(self, group: Sequence[_Master], k: int = 2) -> list[_Master]:
        def key(m: _Master):
            dt = abs(m.delta_temp_c) if m.delta_temp_c is not None else math.inf
            return (
                dt,
                m.delta_time_h if m.delta_time_h is not None else math.inf,
                m.entry.master_id,
            )

        return sorted(group, key=key)[:k]

    def _exposure_pairs(self, pool: Sequence[_Master]) -> list[_Option]:
        scfg, law = self.scfg, self.law
        if not scfg.allow_interpolation:
            return []
        # The exposure ratio is a hard constraint for every master of a recipe, and the bins
        # may be at most max_interpolation_ratio apart: unless the linear law is demonstrated
        # on both bins (the statistical test, over exactly those exposures), which bounds the
        # interpolation's error by the measured deviation whatever their distance.
        lower_all = [
            m for m in pool if not m.same_exposure and m.entry.meta.exptime_s < self.t_light
        ]
        upper_all = [
            m for m in pool if not m.same_exposure and m.entry.meta.exptime_s > self.t_light
        ]
        if not lower_all or not upper_all:
            return []
        lin = self.lin
        t_a = max(m.entry.meta.exptime_s for m in lower_all)
        t_b = min(m.entry.meta.exptime_s for m in upper_all)
        shown = lin is not None and lin.interpolation_demonstrated(t_a, t_b)
        if not shown:
            pool = [m for m in pool if 1.0 / self.step.max_ratio <= m.ratio <= self.step.max_ratio]
            lower = [m for m in lower_all if m in pool]
            upper = [m for m in upper_all if m in pool]
            if not lower or not upper:
                return []
            t_a = max(m.entry.meta.exptime_s for m in lower)
            t_b = min(m.entry.meta.exptime_s for m in upper)
            if t_b / t_a > scfg.max_interpolation_ratio:
                return []
            shown = lin is not None and lin.interpolation_demonstrated(t_a, t_b)
        else:
            lower, upper = lower_all, upper_all
        tol = self.mcfg.exptime_rel_tol
        bin_a = [m for m in lower if m.entry.meta.exptime_s >= t_a * (1 - tol)]
        bin_b = [m for m in upper if m.entry.meta.exptime_s <= t_b * (1 + tol)]
        if not shown and scfg.unproven_linearity == "reject":
            return []
        # bracketed: an offset (affine law) cancels and the error is bounded by the bins
        dev = max(lin.deviation or 0.0, EXPOSURE_ERROR_FLOOR) if shown else scfg.unproven_error
        e_x = dev / 4
        r_x = (R.EXPOSURE_INTERPOLATED,) + (() if shown else (R.INTERPOLATION_UNPROVEN,))
        out = []
        for a in self._nearest_in_temp(bin_a):
            for b in self._nearest_in_temp(bin_b):
                ta, tb = a.entry.meta.exptime_s, b.entry.meta.exptime_s
                w = (self.t_light - ta) / (tb - ta)
                variants = []
                if a.delta_temp_c is not None and b.delta_temp_c is not None:
                    blend = (
                        (1 - w) * ta / law.factor(a.delta_temp_c)
                        + w * tb / law.factor(b.delta_temp_c)
                    ) / self.t_light
                    sig = math.hypot(self.temp.sigma_c or 0.0, max(a.temp_sigma_c, b.temp_sigma_c))
                    e_s = law.factor_rel_sigma((1 - w) * a.delta_temp_c + w * b.delta_temp_c, sig)
                    variants.append((ScaleMode.INTERPOLATE, 1.0, 1.0, abs(blend - 1.0), e_s, ()))
                    if (
                        law.supports_scaling
                        and scfg.allow_temperature_scaling
                        and self.has_bias
                        and max(abs(a.delta_temp_c), abs(b.delta_temp_c))
                        <= self.mcfg.max_temp_scaling_c
                        and max(abs(a.delta_temp_c), abs(b.delta_temp_c)) >= 0.05
                        and law.covers(self.temp.temp_c, self.mcfg.law_extrapolation_c)
                    ):
                        e_s2 = math.hypot(
                            law.factor_rel_sigma(a.delta_temp_c, sig) * (1 - w),
                            law.factor_rel_sigma(b.delta_temp_c, sig) * w,
                        )
                        e_m2 = self.mcfg.temp_model_error_per_c * (
                            (1 - w) * abs(a.delta_temp_c) + w * abs(b.delta_temp_c)
                        )
                        variants.append(
                            (
                                ScaleMode.INTERPOLATE_TEMPERATURE,
                                law.factor(a.delta_temp_c),
                                law.factor(b.delta_temp_c),
                                e_m2,
                                e_s2,
                                (R.TEMPERATURE_SCALED,),
                            )
                        )
                else:
                    why = R.MASTER_NO_TEMPERATURE if self.temp.known else R.LIGHT_NO_TEMPERATURE
                    variants.append(
                        (ScaleMode.INTERPOLATE, 1.0, 1.0, self.mcfg.unknown_temp_error, 0.0, (why,))
                    )
                for mode, fa, fb, e_t, e_s, r_t in variants:
                    lost = (
                        ()
                        if e_t <= self.step.max_mismatch and e_s <= self.step.max_mismatch
                        else (LOST_TEMPERATURE,)
                    )
                    ca, cb = (1 - w) * fa, w * fb
                    bias_coef = 1.0 - ca - cb
                    out.append(
                        self._pair_option(
                            mode,
                            a,
                            b,
                            w,
                            (fa, fb),
                            e_t,
                            e_s,
                            e_x,
                            self._noise([(ca, a.noise_adu), (cb, b.noise_adu)], bias_coef),
                            r_x + r_t,
                            lost,
                            scale=self.t_light
                            / ta
                            * (fa if mode == ScaleMode.INTERPOLATE_TEMPERATURE else 1.0),
                        )
                    )
        return out

    def _fit_options(self, pool: Sequence[_Master]) -> list[_Option]:
        """The per-pixel linear model: intercept and rate fitted on two or more exposure bins.

        Per pixel, ``M(t) = a + b t`` by weighted least squares over one master per bin
        (weights ``1 / noise_k²``), evaluated at the light's exposure: the model is the linear
        combination ``sum_k c_k M_k`` with ``sum c_k = 1`` (intercept: bias, offset and any
        per-readout signal, exact without a bias) and ``sum c_k t_k = t_L``. Offered when it
        extrapolates (the light outside the bins) or fits three or more bins (two bracketing
        bins are ``interpolate``). The exposure-law error grows with the extrapolation
        distance ``x`` (in units of the bins' span): ``dev * (1/4 + x)``; the option passes
        while that stays within the gate and the fit's noise stays below the dark signal it
        removes (beyond, subtraction would add more noise than it takes away).
        """
        scfg, law, cfg = self.scfg, self.law, self.mcfg
        if not scfg.allow_interpolation:
            return []
        pool = [
            m
            for m in pool
            if not m.same_exposure and 1.0 / self.step.max_ratio <= m.ratio <= self.step.max_ratio
        ]
        by_bin: dict[float, list[_Master]] = {}
        for m in sorted(pool, key=lambda m: m.entry.meta.exptime_s):
            t = m.entry.meta.exptime_s
            key = next((k for k in by_bin if abs(t - k) <= cfg.exptime_rel_tol * max(t, k)), t)
            by_bin.setdefault(key, []).append(m)
        if len(by_bin) < 2:
            return []
        bins = {k: self._nearest_in_temp(v, 1)[0] for k, v in by_bin.items()}
        times = sorted(bins)
        inside = times[0] < self.t_light < times[-1]
        sets = []
        if not inside:  # the two nearest bins, and all of them when there are more
            near = sorted(times, key=lambda t: (abs(math.log(t / self.t_light)), t))[:2]
            sets.append(sorted(near))
        if len(times) >= 3:
            sets.append(times)
        lin = self.lin
        out = []
        for chosen in sets:
            ms = [bins[t] for t in chosen]
            shown = lin is not None and all(
                lin.interpolation_demonstrated(chosen[0], t) for t in chosen[1:]
            )
            if not shown and scfg.unproven_linearity == "reject":
                continue
            coefs = fit_coefficients(
                [m.entry.meta.exptime_s for m in ms], [m.noise_adu or 1.0 for m in ms], self.t_light
            )
            lo, hi = min(chosen), max(chosen)
            x_out = max(lo - self.t_light, self.t_light - hi, 0.0) / (hi - lo)
            dev = max(lin.deviation or 0.0, EXPOSURE_ERROR_FLOOR) if shown else scfg.unproven_error
            e_x = dev * (0.25 + x_out)
            reasons = [R.EXPOSURE_FITTED]
            if x_out > 0:
                reasons.append(R.EXPOSURE_EXTRAPOLATED)
            if not shown:
                reasons.append(R.INTERPOLATION_UNPROVEN)
            if all(m.delta_temp_c is not None for m in ms):
                blend = (
                    sum(
                        c * m.entry.meta.exptime_s / law.factor(m.delta_temp_c)
                        for c, m in zip(coefs, ms, strict=True)
                    )
                    / self.t_light
                )
                e_t = abs(blend - 1.0)
                sig = math.hypot(self.temp.sigma_c or 0.0, max(m.temp_sigma_c for m in ms))
                dt = sum(c * m.delta_temp_c for c, m in zip(coefs, ms, strict=True))
                e_s = law.factor_rel_sigma(dt, sig)
            else:
                e_t, e_s = cfg.unknown_temp_error, 0.0
                reasons.append(
                    R.MASTER_NO_TEMPERATURE if self.temp.known else R.LIGHT_NO_TEMPERATURE
                )
            e_n = self._noise([(c, m.noise_adu) for c, m in zip(coefs, ms, strict=True)], 0.0)
            lost = []
            if e_t > self.step.max_mismatch or e_s > self.step.max_mismatch:
                lost.append(LOST_TEMPERATURE)
            if e_x > self.step.max_mismatch:
                lost.append(LOST_NOT_SCALABLE)
            if e_n >= 1.0:
                if self.has_bias:  # the bias alone is the alternative: judged beyond its noise
                    if self._harmful(e_n, True):
                        lost.append(LOST_HARM)
                else:
                    # without a bias the fit's intercept is the only estimate of the offset
                    # (hundreds of ADU) every light needs removed: no output is worse, so the
                    # model is used and its noise stated (degraded), never judged as harm
                    reasons.append(R.DARK_MODEL_NOISY)
            conf = min(m.entry.confidence for m in ms)
            out.append(
                _Option(
                    mode=ScaleMode.PIXEL_FIT,
                    terms=tuple(
                        ModelTerm(m.entry.master_id, c, 1.0, 1.0)
                        for c, m in zip(coefs, ms, strict=True)
                    ),
                    e_thermal=e_t,
                    e_sigma=e_s,
                    e_exposure=e_x,
                    e_noise=e_n,
                    e_time=self._time_error(*(m.delta_time_h for m in ms)),
                    penalty=0.5 * (1.0 - conf),
                    reasons=tuple(reasons),
                    confidence_factor=_MODE_CONFIDENCE[ScaleMode.PIXEL_FIT]
                    * (0.9 if x_out > 0 else 1.0)
                    * (1.0 if shown else 0.85),
                    scale_factor=self.t_light / ms[0].entry.meta.exptime_s,
                    exposure_factor=self.t_light / ms[0].entry.meta.exptime_s,
                    temp_factor=1.0,
                    passed=not lost,
                    lost=tuple(lost),
                )
            )
        return out

    def _thermal_pairs(self, same: Sequence[_Master]) -> list[_Option]:
        law, cfg = self.law, self.mcfg
        if len(same) < 2:
            return []
        out = []
        with_t = [m for m in same if m.delta_temp_c is not None]
        if len(with_t) >= 2:
            # per distinct temperature, the master nearest in time
            by_temp: dict[float, _Master] = {}
            for m in sorted(with_t, key=lambda m: (m.delta_time_h or 0.0, m.entry.master_id)):
                by_temp.setdefault(round(m.temp_c, 1), m)
            ms = sorted(by_temp.values(), key=lambda m: m.temp_c)
            below = [m for m in ms if m.temp_c <= self.temp.temp_c]
            above = [m for m in ms if m.temp_c > self.temp.temp_c]
            pairs = []
            if below and above:
                pairs.append((below[-1], above[0]))
            if len(below) >= 2:
                pairs.append((below[-2], below[-1]))
            if len(above) >= 2:
                pairs.append((above[0], above[1]))
            for a, b in pairs:
                if b.temp_c - a.temp_c < cfg.min_thermal_pair_span_c:
                    continue
                ra, rb = law.factor(-a.delta_temp_c), law.factor(-b.delta_temp_c)  # D_k / D_light
                w = (1.0 - ra) / (rb - ra)
                x = cfg.max_thermal_extrapolation
                if not -x <= w <= 1 + x:
                    continue
                # interpolation error if T_d is off by one sigma (central value is exact)
                e_t = 0.0
                for td in (
                    law.doubling_temp_c - law.sigma_doubling_c,
                    law.doubling_temp_c + law.sigma_doubling_c,
                ):
                    if td > 0:
                        model = (1 - w) * 2 ** (-a.delta_temp_c / td) + w * 2 ** (
                            -b.delta_temp_c / td
                        )
                        e_t = max(e_t, abs(model - 1.0))
                # model risk: curvature between the two (w (1 - w) span) and any extrapolation
                span = b.temp_c - a.temp_c
                outside = max(0.0, -w, w - 1.0) * span
                e_t = math.hypot(
                    e_t, cfg.temp_model_error_per_c * (max(w * (1 - w), 0.0) * span + outside)
                )
                sig_m = math.hypot((1 - w) * a.temp_sigma_c, w * b.temp_sigma_c)
                e_s = law.factor_rel_sigma(0.0, math.hypot(self.temp.sigma_c or 0.0, sig_m))
                extrap = not 0.0 <= w <= 1.0
                reasons = (R.THERMAL_EXTRAPOLATED,) if extrap else (R.THERMAL_INTERPOLATED,)
                lost = () if e_t <= self.step.max_mismatch else (LOST_TEMPERATURE,)
                out.append(
                    self._pair_option(
                        ScaleMode.THERMAL_INTERPOLATE,
                        a,
                        b,
                        w,
                        (1.0, 1.0),
                        e_t,
                        e_s,
                        0.0,
                        self._noise([(1 - w, a.noise_adu), (w, b.noise_adu)], 0.0),
                        reasons,
                        lost,
                        scale=1.0 / ra,
                        factor=0.9 if extrap else 1.0,
                    )
                )
        elif self.light.date_obs_utc is not None:  # temperatures unknown: acquisition timing
            when = self.light.date_obs_utc
            timed = [m for m in same if m.entry.mid_time is not None]
            before = sorted(
                (m for m in timed if m.entry.mid_time <= when),
                key=lambda m: (m.entry.mid_time, m.entry.master_id),
            )
            after = sorted(
                (m for m in timed if m.entry.mid_time > when),
                key=lambda m: (m.entry.mid_time, m.entry.master_id),
            )
            if before and after:
                a, b = before[-1], after[0]
                span = (b.entry.mid_time - a.entry.mid_time).total_seconds()
                w = (when - a.entry.mid_time).total_seconds() / span if span > 0 else 0.5
                out.append(
                    self._pair_option(
                        ScaleMode.THERMAL_INTERPOLATE,
                        a,
                        b,
                        w,
                        (1.0, 1.0),
                        cfg.unknown_temp_error / 2,
                        0.0,
                        0.0,
                        self._noise([(1 - w, a.noise_adu), (w, b.noise_adu)], 0.0),
                        (R.TIME_INTERPOLATED,),
                        (),
                        scale=1.0,
                        factor=0.9,
                    )
                )
        return out

    def _pair_option(
        self, mode, a, b, w, factors, e_t, e_s, e_x, e_n, reasons, lost, *, scale, factor=1.0
    ) -> _Option:
        conf = (
            (1 - w) * a.entry.confidence + w * b.entry.confidence
            if 0 <= w <= 1
            else min(a.entry.confidence, b.entry.confidence)
        )
        return _Option(
            mode=mode,
            terms=(
                ModelTerm(a.entry.master_id, 1.0 - w, 1.0, factors[0]),
                ModelTerm(b.entry.master_id, w, 1.0, factors[1]),
            ),
            e_thermal=e_t,
            e_sigma=e_s,
            e_exposure=e_x,
            e_noise=e_n,
            e_time=self._time_error(a.delta_time_h, b.delta_time_h),
            penalty=0.5 * (1.0 - conf),
            reasons=tuple(reasons),
            confidence_factor=_MODE_CONFIDENCE[mode]
            * factor
            * (0.85 if R.INTERPOLATION_UNPROVEN in reasons else 1.0),
            scale_factor=scale,
            exposure_factor=self.t_light / a.entry.meta.exptime_s,
            temp_factor=factors[0] if mode != ScaleMode.THERMAL_INTERPOLATE else 1.0,
            passed=not lost,
            lost=tuple(lost),
        )
