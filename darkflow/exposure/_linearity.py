"""The exposure law of each pixel population as a statistical test (``docs/matching.md``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from darkflow.config import ScalingConfig
from darkflow.exposure._reference import MIN_POPULATION_PIXELS, MasterSummary
from darkflow.stats import mad_std
from darkflow.stats.spread import mad_sigma_rel_sd, median_sd
from darkflow.thermal import DarkCurrentLaw


class LinearityStatus(StrEnum):
    PROPORTIONAL = "proportional"  # S = rate * t through the bias: scaling and interpolation
    AFFINE = "affine"  # S = offset + rate * t on >= 3 bins: interpolation only
    AFFINE_UNPROVEN = "affine_unproven"  # 2 bins, not proportional: interpolation unproven
    NONLINEAR = "nonlinear"  # neither law fits: scaling disabled, interpolation unproven
    UNPROVEN = "unproven"  # one exposure bin, or nothing to test against


# ----------------------------------------------------------------------------- linearity
@dataclass(frozen=True)
class PopulationLinearity:
    """Exposure law of one pixel population (levels temperature-corrected to ``temp_c``).

    ``levels_adu`` per exposure bin with their independent 1-sigma ``sigmas_adu`` (the level's
    own sampling spread, the temperature correction's uncertainty, the bias-level jitter);
    ``offset_sigma_adu`` the common offset the bias uncertainty allows. ``chi2``/``dof``/
    ``p_value`` test the proportional law (through the bias, that offset allowed),
    ``affine_*`` the affine law (a free offset, >= 3 bins). ``informative``: the population's
    signal stands out of its uncertainty (a population without signal proves nothing).
    ``role``: ``verdict`` (decides the status), ``level`` (the normal pixels when a population
    with signal exists: only a curvature counts, an offset is a level offset) or ``info``.
    """

    name: str  # hot | warm | glow | normal | raw
    exposures_s: tuple[float, ...]
    levels_adu: tuple[float, ...]
    status: LinearityStatus
    deviation: float | None  # largest relative deviation from the proportional law
    affine_deviation: float | None  # ... from the affine law (>= 3 bins)
    offset_adu: float | None  # intercept of the affine fit
    sigmas_adu: tuple[float, ...] = ()
    offset_sigma_adu: float = 0.0
    chi2: float | None = None
    dof: int = 0
    p_value: float | None = None
    affine_chi2: float | None = None
    affine_dof: int = 0
    affine_p_value: float | None = None
    offset_fit_sigma_adu: float | None = None  # 1-sigma of the fitted intercept
    informative: bool = False
    role: str = "info"

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None, nd: int = 6) -> float | None:
            return None if x is None or not math.isfinite(x) else round(float(x), nd)

        return {
            "name": self.name,
            "exposures_s": list(self.exposures_s),
            "levels_adu": [round(v, 4) for v in self.levels_adu],
            "sigmas_adu": [r(v, 5) for v in self.sigmas_adu],
            "status": str(self.status),
            "deviation": self.deviation,
            "affine_deviation": self.affine_deviation,
            "offset_adu": self.offset_adu,
            "offset_fit_sigma_adu": r(self.offset_fit_sigma_adu),
            "offset_sigma_adu": r(self.offset_sigma_adu),
            "chi2": r(self.chi2),
            "dof": self.dof,
            "p_value": r(self.p_value, 8),
            "affine_chi2": r(self.affine_chi2),
            "affine_dof": self.affine_dof,
            "affine_p_value": r(self.affine_p_value, 8),
            "informative": self.informative,
            "role": self.role,
        }


_ORDER = [
    LinearityStatus.PROPORTIONAL,
    LinearityStatus.AFFINE,
    LinearityStatus.UNPROVEN,
    LinearityStatus.AFFINE_UNPROVEN,
    LinearityStatus.NONLINEAR,
]
SIGNAL_POPULATIONS = ("hot", "warm", "glow")  # excess over a local level: no bias in them


@dataclass(frozen=True)
class LinearityReport:
    """What the exposure law of a configuration allows (see the module docs).

    ``offset_adu``/``offset_sigma_adu``: the normal pixels' level offset (the affine intercept
    over the bias, and its 1-sigma including the bias-level uncertainty) that exposure scaling
    carries as a uniform level error, ``|1 - f| * hypot(offset, sigma)``.
    """

    config_signature: str
    status: LinearityStatus
    exposures_s: tuple[float, ...]
    bias_available: bool
    populations: tuple[PopulationLinearity, ...] = ()
    deviation: float | None = None  # largest proportional deviation over verdict populations
    nonlinear_above_adu: float | None = None
    temp_c: float | None = None  # common temperature the levels were corrected to
    reasons: tuple[str, ...] = ()
    offset_adu: float | None = None
    offset_sigma_adu: float | None = None
    false_alarm: float | None = None

    @property
    def scaling_demonstrated(self) -> bool:
        return self.status == LinearityStatus.PROPORTIONAL

    @property
    def scaling_possible(self) -> bool:
        """Scaling is not contradicted by the data (proportional or merely unproven)."""
        return self.bias_available and self.status in (
            LinearityStatus.PROPORTIONAL,
            LinearityStatus.UNPROVEN,
        )

    @property
    def level_error_adu(self) -> float:
        """The normal pixels' level offset and its uncertainty (0 when not measured)."""
        if self.offset_adu is None:
            return 0.0
        return math.hypot(self.offset_adu, self.offset_sigma_adu or 0.0)

    def interpolation_demonstrated(self, t1: float, t2: float) -> bool:
        """Linear behaviour shown between the bins ``t1`` and ``t2`` (both measured)."""
        measured = all(
            any(abs(t - e) <= 0.01 * max(t, e) for e in self.exposures_s) for t in (t1, t2)
        )
        return measured and self.status in (LinearityStatus.PROPORTIONAL, LinearityStatus.AFFINE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config_signature": self.config_signature,
            "status": str(self.status),
            "exposures_s": list(self.exposures_s),
            "bias_available": self.bias_available,
            "deviation": self.deviation,
            "nonlinear_above_adu": self.nonlinear_above_adu,
            "temp_c": self.temp_c,
            "reasons": list(self.reasons),
            "offset_adu": self.offset_adu,
            "offset_sigma_adu": self.offset_sigma_adu,
            "false_alarm": self.false_alarm,
            "populations": [p.to_dict() for p in self.populations],
        }


def _bins(values: Sequence[float], rel_tol: float) -> list[list[int]]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out: list[list[int]] = []
    for i in order:
        if out and values[i] - values[out[-1][0]] <= rel_tol * max(values[i], 1e-12):
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _window_coverage(
    use: Sequence[MasterSummary], window_c: float, rel_tol: float
) -> Callable[[float], tuple[int, int]]:
    """``tc -> (exposure bins, frames)`` of the masters within ``window_c`` of ``tc``.

    Computed for every temperature of ``use`` in one sweep over the masters sorted by
    temperature (each enters and leaves the window once; the bins of a window depend only on
    its distinct exposures, counted once per distinct set), so a library of a year of nights
    costs milliseconds: asking each temperature about every master was quadratic. The window
    is exactly the masters with ``abs(temp_c - tc) <= window_c``: a contiguous run of the
    sorted masters, since a rounded difference grows with its operands."""

    def direct(tc: float) -> tuple[int, int]:
        near = [s for s in use if abs(s.temp_c - tc) <= window_c]
        return len(_bins([s.exptime_s for s in near], rel_tol)), sum(s.n_frames for s in near)

    if not window_c >= 0 or any(math.isnan(s.temp_c) for s in use):
        return direct  # no window, or no order to sweep in
    ordered = sorted(use, key=lambda s: s.temp_c)
    out: dict[float, tuple[int, int]] = {}
    bins_of: dict[tuple[float, ...], int] = {}
    counts: dict[float, int] = {}
    lo = hi = frames = 0
    for tc in sorted({s.temp_c for s in use}):
        while hi < len(ordered) and (
            ordered[hi].temp_c <= tc or abs(ordered[hi].temp_c - tc) <= window_c
        ):
            counts[ordered[hi].exptime_s] = counts.get(ordered[hi].exptime_s, 0) + 1
            frames += ordered[hi].n_frames
            hi += 1
        while lo < hi and ordered[lo].temp_c < tc and abs(ordered[lo].temp_c - tc) > window_c:
            t = ordered[lo].exptime_s
            counts[t] -= 1
            if not counts[t]:
                del counts[t]
            frames -= ordered[lo].n_frames
            lo += 1
        distinct = tuple(sorted(counts))
        if distinct not in bins_of:
            bins_of[distinct] = len(_bins(distinct, rel_tol))
        out[tc] = (bins_of[distinct], frames)
    return lambda tc: out[tc] if tc in out else direct(tc)


def _gls(design: np.ndarray, y: np.ndarray, cov: np.ndarray):
    """Generalised least squares: (coefficients, chi-square, coefficient covariance)."""
    from scipy.linalg import solve_triangular

    chol = np.linalg.cholesky(cov)
    xw = solve_triangular(chol, design, lower=True)
    yw = solve_triangular(chol, y, lower=True)
    coef, *_ = np.linalg.lstsq(xw, yw, rcond=None)
    resid = yw - xw @ coef
    try:
        ccov = np.linalg.inv(xw.T @ xw)
    except np.linalg.LinAlgError:
        ccov = np.full((design.shape[1], design.shape[1]), np.inf)
    return coef, float(resid @ resid), ccov


def _chi2_sf(chi2: float, dof: int) -> float:
    from darkflow.stats._dist import chi2_sf as sf  # scipy.stats' chi2.sf, without its import

    return sf(chi2, dof)


@dataclass
class _Series:
    """One population's levels per exposure bin, before the test."""

    name: str
    x: np.ndarray  # effective exposures (s)
    y: np.ndarray  # levels (ADU)
    var: np.ndarray  # independent variance per bin (ADU²)
    offset_var: float  # variance of the offset the bias uncertainty allows (ADU²)
    proportional_possible: bool
    exposures: tuple[float, ...]

    def snr(self) -> float:
        sd = np.sqrt(self.var + self.offset_var)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.abs(self.y) / sd
        r = r[np.isfinite(r)]
        return float(r.max()) if r.size else math.inf


def _test_series(series: _Series, alpha: float, role: str, informative: bool):
    x, y = series.x, series.y
    n = len(x)
    # a numerical floor only (a zero variance would make any rounding a deviation)
    var = np.maximum(series.var, (1e-9 * np.maximum(np.abs(y), 1e-6)) ** 2)
    scale = np.maximum(np.abs(y), np.sqrt(var))
    sig = tuple(float(v) for v in np.sqrt(series.var))
    chi2 = p = aff_chi2 = aff_p = dev = aff = offset = off_sd = None
    dof = aff_dof = 0
    if n >= 2 and series.proportional_possible:
        cov = np.diag(var) + series.offset_var
        coef, chi2, _ = _gls(x[:, None], y, cov)
        dof = n - 1
        p = _chi2_sf(chi2, dof)
        dev = float(np.max(np.abs(y - coef[0] * x) / scale))
    if n >= 2:
        design = np.column_stack([x, np.ones(n)])
        coef, c2, ccov = _gls(design, y, np.diag(var))
        offset = float(coef[1])
        off_sd = float(math.sqrt(max(ccov[1, 1], 0.0))) if np.isfinite(ccov[1, 1]) else None
        if n >= 3:
            aff_chi2, aff_dof = c2, n - 2
            aff_p = _chi2_sf(c2, aff_dof)
            aff = float(np.max(np.abs(y - design @ coef) / scale))
    if p is not None and p >= alpha:
        status = LinearityStatus.PROPORTIONAL
    elif aff_p is not None:
        status = LinearityStatus.AFFINE if aff_p >= alpha else LinearityStatus.NONLINEAR
    elif p is not None:
        status = LinearityStatus.AFFINE_UNPROVEN
    else:
        status = LinearityStatus.UNPROVEN
    return PopulationLinearity(
        series.name,
        series.exposures,
        tuple(float(v) for v in y),
        status,
        dev,
        aff,
        offset,
        sigmas_adu=sig,
        offset_sigma_adu=math.sqrt(series.offset_var),
        chi2=chi2,
        dof=dof,
        p_value=p,
        affine_chi2=aff_chi2,
        affine_dof=aff_dof,
        affine_p_value=aff_p,
        offset_fit_sigma_adu=off_sd,
        informative=informative,
        role=role,
    )


def _ratio_levels(use: Sequence[MasterSummary], attr: str):
    """Per master: (level, standard error) of a fixed pixel set, from per-pixel ratios.

    The median of per-pixel ratios to the strongest master times that master's median level
    (a ratio of medians would pick different pixels at different exposures); its standard
    error ``sqrt(pi/2) * sigma(ratio) / sqrt(N)`` with the ratio's robust sigma, widened by
    the relative uncertainty of that sigma (a t-like correction for small sets). ``None``
    without pixel vectors, ``{}`` with fewer than :data:`MIN_POPULATION_PIXELS` pixels.
    """
    vectors = [getattr(s, attr) for s in use]
    if not use or any(v is None for v in vectors) or len({v.size for v in vectors}) != 1:
        return None
    if vectors[0].size < MIN_POPULATION_PIXELS:
        return {}
    ref = max(use, key=lambda s: s.exptime_s)
    ref_vec = getattr(ref, attr)
    ref_level = float(np.median(ref_vec))
    out = {}
    with np.errstate(all="ignore"):
        for s, vec in zip(use, vectors, strict=True):
            ratio = vec / ref_vec
            ok = np.isfinite(ratio) & (ref_vec > 0)
            if ok.sum() < MIN_POPULATION_PIXELS:
                return {}
            r = ratio[ok]
            med = float(np.median(r))
            se = 0.0
            if s is not ref:
                se = median_sd(mad_std(r, center=med), r.size) * (1.0 + mad_sigma_rel_sd(r.size))
            out[id(s)] = (med * ref_level, se * abs(ref_level))
    return out


def measure_linearity(
    config_signature: str,
    summaries: Sequence[MasterSummary],
    law: DarkCurrentLaw,
    config: ScalingConfig | None = None,
    *,
    bias_available: bool,
    bias_exptime_s: float = 0.0,
    exptime_rel_tol: float = 0.01,
    temp_window_c: float | None = None,
    false_alarm: float = 1e-4,
    temp_sigma_c: float = 0.2,
    unknown_temp_sigma_c: float = 1.5,
) -> LinearityReport:
    """The exposure law of one configuration from its master summaries: a statistical test.

    Each population's level per exposure bin carries its uncertainty: its own sampling spread
    (per-pixel ratios for the hot and warm sets, the master's noise over the pixels of a
    level), the temperature correction's (``temp_sigma_c / sqrt(n_frames)`` per master reading,
    ``unknown_temp_sigma_c`` without one, and the doubling temperature's uncertainty times the
    correction), and for the normal pixels the bias level's (``level_sigma_adu``), which also
    allows a common offset. The proportional law is tested with a generalised chi-square
    (``dof = bins - 1``), the affine law with a free offset (``bins - 2``); a law is rejected
    when its p-value is below ``false_alarm`` divided by the number of tests (Bonferroni).

    The status is decided by the populations *with signal* whose level is an excess over a
    local level (hot and warm pixels, the amp glow: bias drift cannot move them); the faint
    normal population decides only when none of them is measurable, and otherwise counts only
    through a curvature its affine law cannot absorb (>= 3 bins): its offset is a level offset,
    reported in ``offset_adu``, not a non-linearity.

    With ``temp_window_c``, only masters within that window of one common temperature are
    compared (the temperature covering the most exposure bins, then the most frames); small
    differences inside the window are corrected with ``law``.
    """
    cfg = config or ScalingConfig()
    tol = cfg.linearity_tolerance
    use = [s for s in summaries if s.exptime_s > 0 and math.isfinite(s.level_adu)]
    reasons: list[str] = []
    if not bias_available:
        reasons.append("no_bias")
    temps = [s.temp_c for s in use if s.temp_c is not None]
    t0 = None
    if temps and temp_window_c is not None:
        use = [s for s in use if s.temp_c is not None]
        cover = _window_coverage(use, temp_window_c, exptime_rel_tol)
        t0 = float(max(temps, key=lambda tc: (*cover(tc), -tc)))
        use = [s for s in use if abs(s.temp_c - t0) <= temp_window_c]
    elif temps:
        t0 = float(np.median(temps))

    def corr(s: MasterSummary) -> float:
        if t0 is None or s.temp_c is None:
            return 1.0
        return law.factor(t0 - s.temp_c)

    def corr_rel_sigma(s: MasterSummary) -> float:
        if s.temp_c is None or t0 is None:
            return law.factor_rel_sigma(0.0, unknown_temp_sigma_c)
        return law.factor_rel_sigma(t0 - s.temp_c, temp_sigma_c / math.sqrt(max(s.n_frames, 1)))

    groups = _bins([s.exptime_s for s in use], exptime_rel_tol)
    exposures = tuple(float(np.mean([use[i].exptime_s for i in g])) for g in groups)
    if len(groups) < 2:
        reasons.append("single_exposure" if groups else "no_exposure")
    removed = bias_available and bool(use) and all(s.bias_removed for s in use)
    x_eff = np.array([t - (bias_exptime_s if removed else 0.0) for t in exposures])

    def series(name, value, *, temp=True, offset_var=0.0, members=None, possible=True):
        """Bin the per-master (level, sigma) values; ``None`` when a master has none."""
        ys, vs = [], []
        for g in groups:
            idx = [i for i in g if members is None or i in members]
            vals = [value(use[i]) for i in idx]
            if not idx or any(v is None for v in vals):
                return None
            w = np.array([use[i].n_frames for i in idx], dtype=float)
            y = np.array(
                [v[0] * (corr(use[i]) if temp else 1.0) for v, i in zip(vals, idx, strict=True)]
            )
            sd2 = np.array(
                [
                    v[1] ** 2 + ((corr_rel_sigma(use[i]) * y_k) if temp else 0.0) ** 2
                    for v, i, y_k in zip(vals, idx, y, strict=True)
                ]
            )
            ys.append(float(np.sum(w * y) / np.sum(w)))
            vs.append(float(np.sum(w * w * sd2) / np.sum(w) ** 2))
        if not np.all(np.isfinite(vs)):
            return None
        return _Series(name, x_eff, np.array(ys), np.array(vs), offset_var, possible, exposures)

    candidates: list[tuple[_Series, bool]] = []
    for attr, name, excess in (
        ("hot_values", "hot", "hot_excess_adu"),
        ("warm_values", "warm", "warm_excess_adu"),
    ):
        ratio = _ratio_levels(use, attr)
        if ratio == {}:
            continue  # too few pixels to test
        if ratio is not None:
            s = series(name, lambda m, r=ratio: r[id(m)])
        else:
            s = series(
                name, lambda m, a=excess: None if getattr(m, a) is None else (getattr(m, a), 0.0)
            )
        if s is not None:
            candidates.append((s, True))
    noise = [max((use[i].noise_adu for i in g), default=0.0) for g in groups]
    if removed:

        def glow_value(m):
            if m.glow_adu is None:
                return None
            if m.glow_se_adu is not None:
                return m.glow_adu, m.glow_se_adu
            return m.glow_adu, m.noise_adu / math.sqrt(max(m.n_glow_pixels, m.n_glow_cells, 1))

        g = series("glow", glow_value, temp=False)
        if g is not None and groups and max(abs(v) for v in g.y) > 3 * max(noise):
            candidates.append((g, True))
        own = {
            i
            for i, m in enumerate(use)
            if m.level_sigma_adu is None or math.isfinite(m.level_sigma_adu)
        }  # masters with a bias of their night

        def normal_value(m):
            lev = m.level_sigma_adu or 0.0
            stat = m.noise_adu / math.sqrt(max(m.n_level_pixels, 1))
            return m.level_adu, math.hypot(stat, lev)

        common = max((use[i].level_sigma_adu or 0.0 for i in own), default=0.0)
        nrm = series("normal", normal_value, offset_var=common**2, members=own)
        if nrm is not None:
            candidates.append((nrm, True))
    else:
        raw = series("raw", lambda m: (m.level_adu, 0.0), temp=False, possible=False)
        if raw is not None:
            candidates.append((raw, False))

    z_signal = _z(false_alarm)
    informative = {c.name: c.snr() >= z_signal for c, _ in candidates}
    verdict = [c for c, _ in candidates if c.name in SIGNAL_POPULATIONS and informative[c.name]]
    normal = next((c for c, _ in candidates if c.name == "normal"), None)
    normal_role = "info"
    if normal is not None and informative["normal"]:
        normal_role = "verdict" if not verdict else "level"
    if normal_role == "verdict":
        verdict = [normal]
    n_tests = len(verdict) + (1 if normal_role == "level" and len(groups) >= 3 else 0)
    alpha = false_alarm / max(n_tests, 1)
    pops: list[PopulationLinearity] = []
    for c, _ in candidates:
        if c in verdict:
            role = "verdict"
        elif c is normal and normal_role == "level":
            role = "level"
        else:
            role = "info"
        pops.append(_test_series(c, alpha, role, informative[c.name]))
    status = LinearityStatus.UNPROVEN
    if len(groups) >= 2:
        judged = [p for p in pops if p.role == "verdict"]
        if judged:
            status = max((p.status for p in judged), key=_ORDER.index)
        else:
            reasons.append("no_population_with_signal")
        level = next((p for p in pops if p.role == "level"), None)
        if level is not None and level.status == LinearityStatus.NONLINEAR:
            status = LinearityStatus.NONLINEAR
            reasons.append("normal_pixels_curved")
    devs = [p.deviation for p in pops if p.role == "verdict" and p.deviation is not None]
    offset = offset_sd = None
    npop = next((p for p in pops if p.name == "normal"), None)
    if npop is not None and npop.offset_adu is not None and npop.informative:
        offset = npop.offset_adu
        offset_sd = math.hypot(npop.offset_fit_sigma_adu or 0.0, npop.offset_sigma_adu)
    return LinearityReport(
        config_signature=config_signature,
        status=status,
        exposures_s=exposures,
        bias_available=bias_available,
        populations=tuple(pops),
        deviation=max(devs) if devs else None,
        nonlinear_above_adu=_nonlinear_onset(use, groups, corr, tol, false_alarm),
        temp_c=t0,
        reasons=tuple(reasons),
        offset_adu=offset,
        offset_sigma_adu=offset_sd,
        false_alarm=false_alarm,
    )


def _z(false_alarm: float, sides: int = 1) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(1.0 - false_alarm / sides)


def _nonlinear_onset(
    use, groups, corr, tol: float, false_alarm: float, min_pixels: int = 20
) -> float | None:
    """Lowest hot-pixel signal (ADU) above which the exposure response departs from linear.

    Per pair of exposure bins, the hot pixels' exposure-normalised ratios ``q`` are binned by
    signal; from the top down, a signal bin counts when its median ``q`` departs from the
    median over all hot pixels (a common temperature or exposure error cancels) by more than
    its sampling spread allows (``false_alarm`` over the bins tested) *and* by more than
    ``linearity_tolerance`` (the materiality: a pixel flagged non-linear gets 10 % of its
    signal as extra uncertainty, more than a smaller deviation would justify).
    """
    if len(groups) < 2:
        return None
    best = None
    for gi in range(len(groups)):
        for gj in range(gi + 1, len(groups)):
            a, b = use[groups[gi][0]], use[groups[gj][0]]
            if a.hot_values is None or b.hot_values is None or a.hot_values.size < min_pixels:
                continue
            with np.errstate(all="ignore"):
                q = (
                    (b.hot_values * corr(b))
                    / (a.hot_values * corr(a))
                    / (b.exptime_s / a.exptime_s)
                )
            level = b.hot_values
            ok = np.isfinite(q) & (a.hot_values > 0) & (level > 0)
            if ok.sum() < 2 * min_pixels:
                continue
            q, level = q[ok], level[ok]
            q_all = float(np.median(q))
            n_bins = max(2, min(8, q.size // min_pixels))
            z = _z(false_alarm / n_bins, sides=2)
            edges = np.quantile(level, np.linspace(0, 1, n_bins + 1))
            onset = None
            for lo, hi in zip(edges[-2::-1], edges[:0:-1], strict=True):  # from the top down
                sel = (level >= lo) & (level <= hi)
                n = int(sel.sum())
                if n < min_pixels:
                    break
                qm = float(np.median(q[sel]))
                se = math.sqrt(math.pi / 2) * mad_std(q[sel], center=qm) / math.sqrt(n)
                if abs(qm - q_all) > z * se and abs(qm / q_all - 1.0) > tol:
                    onset = float(lo)
                else:
                    break
            if onset is not None and onset > float(np.min(level)):
                best = onset if best is None else min(best, onset)
    return best
