"""e-/ADU with an honest uncertainty: every estimator returns a :class:`GainEstimate`.

The conversion gain ``g`` (electrons per saved ADU) enters every noise model: a pixel holding
``S`` ADU of signal has a Poisson variance of ``S / g`` ADU². A header's ``EGAIN`` is one
source (trusted to :data:`HEADER_REL_SIGMA` unless configured otherwise); without it, or to
check it, the night offers several measurements, each with its own 1-sigma uncertainty:

``ptc_gain(level, variance, dof)``
    photon transfer over pixels: the per-pixel temporal variance across a stack of frames
    against the pixel's mean level. Pixels are binned by level (log-spaced over the hot tail,
    which gives the lever arm); in each bin a trimmed mean of the sample variances, corrected
    for the trimming of a chi-square distribution with ``dof`` degrees of freedom, is fitted
    by ``var = a + (level - lo) / g`` (a quadratic term is added when it is clearly needed: dark
    level drifting during the sequence). The uncertainty is the larger of the fit's covariance
    (weights from each bin's own scatter, inflated by the reduced chi-square when above 1) and
    a jackknife over the bins (model misfit, a few dominant bins).
:func:`gain_from_dark_stack`
    ``ptc_gain`` on a master's planes (mean, per-frame variance = ``uncertainty² × n_used``,
    corrected for the variance the combine's sigma clipping took away).
:func:`gain_from_pairs`
    Janesick's mean-variance method on frame pairs of one illumination (flats, or darks with
    enough signal) and a pair of biases: ``g = (mean(a + b)/2 - bias) / (var(a - b)/2 -
    var(b1 - b2)/2)``, summed over tiles (illumination gradients cancel in the differences);
    the uncertainty is a jackknife over the tiles.
:func:`gain_from_light`
    one calibrated light: per tile the variance of pixel differences two columns apart (same CFA
    colour; smooth sky cancels) against the tile's signal; the median of the tile gains, its
    uncertainty from their robust scatter.
:func:`combine_gains`
    the inverse-variance mean of consistent estimates (the uncertainty inflated by the reduced
    chi-square of their disagreement).

Validation (``tests/test_gain.py``, ``docs/verification.md``): on simulated cameras the pulls
``(estimate - truth) / sigma`` have unit width.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from darkflow.model import FrameMeta, GainEstimate, MasterDark
from darkflow.stats import mad_std

__all__ = [
    "HEADER_REL_SIGMA",
    "GainEstimate",
    "clip_variance_factor",
    "combine_gains",
    "dark_bias_level",
    "frame_level_variance",
    "gain_for_light",
    "gain_from_dark_stack",
    "gain_from_light",
    "gain_from_pairs",
    "header_gain",
    "ptc_gain",
    "source_mask",
    "trimmed_chi2_factor",
]

HEADER_REL_SIGMA = 0.05
"""Default trust of a header EGAIN (1 sigma, relative): a capture program writes the
manufacturer's per-model value for the gain setting, while the conversion gain of one unit
differs from its model's curve by a few percent (and drivers round it)."""

HEADER = "header"
DARKS = "darks"
PAIRS = "pairs"
FLATS = "flats"
LIGHT = "light"

# relative accuracy of a per-frame variance restored from a sigma-clipped stack (-3 % with 3
# frames, -1.4 % for Poisson-skewed pixels of a few electrons; docs/verification.md): a
# systematic part of a photon-transfer gain measured on a master's planes
CLIPPED_VARIANCE_REL_SD = 0.02

_MIN_BIN_PIXELS = 8
_TRIM = 0.05  # fraction trimmed at each end of a bin's sample variances (flickering, cosmics)


def clip_variance_factor(k: float | None) -> float:
    """Fraction of a Gaussian's variance kept by symmetric clipping at ``+-k`` sigma (1 for
    no clipping)."""
    if k is None or not math.isfinite(k) or k <= 0:
        return 1.0
    phi = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    return 1.0 - 2.0 * k * phi / math.erf(k / math.sqrt(2))


def trimmed_chi2_factor(dof: float, trim: float = _TRIM) -> float:
    """Mean of the ``trim``-trimmed (each end) distribution of ``chi2(dof) / dof``.

    The trimmed mean of sample variances with ``dof`` degrees of freedom is biased low by this
    factor (the chi-square distribution is skewed: its upper tail holds more of the mean);
    uses ``int_a^b x f_k(x) dx = k (F_{k+2}(b) - F_{k+2}(a))``.
    """
    # scipy.stats' chi2.ppf and chi2.cdf, without its import (~0.8 s in every night's driver)
    from darkflow.stats._dist import chi2_cdf, chi2_ppf

    if not trim:
        return 1.0
    a, b = chi2_ppf(trim, dof), chi2_ppf(1.0 - trim, dof)
    inside = chi2_cdf(b, dof + 2) - chi2_cdf(a, dof + 2)
    return float(inside / (1.0 - 2.0 * trim))


def header_gain(
    meta: FrameMeta | None, *, rel_sigma: float = HEADER_REL_SIGMA
) -> GainEstimate | None:
    """The header's EGAIN as an estimate (``None`` when absent or not a positive number)."""
    g = None if meta is None else meta.egain_e_per_adu
    if g is None or not math.isfinite(g) or g <= 0:
        return None
    return GainEstimate(float(g), float(g) * rel_sigma, HEADER, 1)


# ----------------------------------------------------------------------------- photon transfer
def _wls(x: np.ndarray, y: np.ndarray, w: np.ndarray, deg: int):
    """Weighted least squares ``y ~ poly(x, deg)`` (weights ``1 / sd``): coefficients (highest
    first), their covariance (from the weights) and the chi-square."""
    a = np.vander(x, deg + 1) * w[:, None]
    b = y * w
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    cov = np.linalg.pinv(a.T @ a)
    chi2 = float(np.sum((b - a @ coef) ** 2))
    return coef, cov, chi2


def _ptc_slope(x: np.ndarray, y: np.ndarray, w: np.ndarray, deg: int) -> float:
    coef, _, _ = _wls(x, y, w, deg)
    return float(coef[-2])


def ptc_gain(
    level: np.ndarray,
    variance: np.ndarray,
    dof: float,
    *,
    clip_factor: float = 1.0,
    n_bins: int = 24,
    n_frames: int = 0,
    source: str = DARKS,
) -> GainEstimate | None:
    """Photon transfer over pixels: e-/ADU from per-pixel variance against mean level.

    Parameters
    ----------
    level, variance
        Per-pixel mean level (ADU) and per-frame sample variance (ADU², ``dof`` degrees of
        freedom), any shape; non-finite values are ignored.
    dof
        Degrees of freedom of each sample variance (frames - 1).
    clip_factor
        Fraction of the variance the inputs' sigma clipping kept (1 for unclipped variances).
    n_frames
        Frames behind the variances (recorded as ``n``).

    Returns ``None`` when the levels span less than ~20 read sigmas above their median (no
    lever arm: a cold short dark) or too few bins are populated.
    """
    est, _ = _ptc_fit(
        level,
        variance,
        dof,
        clip_factor=clip_factor,
        n_bins=n_bins,
        n_frames=n_frames,
        source=source,
    )
    return est


def _bin_order(d: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Indices of the levels ``edges[0] <= d < edges[-1]`` by level, ties in index order:
    the stable sort of all levels cut to the bins. Only the levels inside the bins are sorted
    (above the median of a dark: a few percent of its pixels)."""
    inside = np.flatnonzero((d >= edges[0]) & (d < edges[-1]))
    return inside[np.argsort(d[inside], kind="stable")]


def _ptc_fit(
    level: np.ndarray,
    variance: np.ndarray,
    dof: float,
    *,
    clip_factor: float = 1.0,
    n_bins: int = 24,
    n_frames: int = 0,
    source: str = DARKS,
    max_deg: int = 2,
    level_error: np.ndarray | float = 0.0,
    origin: float | None = None,
) -> tuple[GainEstimate | None, float]:
    """:func:`ptc_gain` and the fit's chi-square (``(None, inf)`` without a fit).

    ``origin``: the level of zero dark signal (the bias level). The bins' levels are then the
    dark signal ``S`` itself and a positive quadratic term is always fitted (``var = a + S / g +
    c S²``, ``c`` the variance of a common per-frame factor on the dark signal: a sensor warming
    or cooling during the sequence), the gain read from the slope at ``S = 0``. Without it the
    levels count from the median and the quadratic term enters only when clearly needed.

    ``level_error``: variance (ADU², per pixel or one number) of each level beyond its own
    frames' noise ``variance / (dof + 1)`` (the noise of a subtracted bias pattern), for the
    errors-in-level shift of the bins (:func:`_level_shift`).
    """
    d = np.asarray(level, dtype=np.float64).ravel()
    var = np.asarray(variance, dtype=np.float64).ravel()
    extra = np.broadcast_to(np.asarray(level_error, dtype=np.float64), np.shape(level)).ravel()
    ok = np.isfinite(d) & np.isfinite(var) & np.isfinite(extra)
    d, var, extra = d[ok], var[ok], extra[ok]
    if d.size < 100 or dof < 1:
        return None, math.inf
    lo, hi = (float(q) for q in np.percentile(d, [50.0, 99.99]))  # one partition
    read_sigma = math.sqrt(max(float(np.median(var)), 1e-12))
    if not hi - lo > 20.0 * read_sigma:
        return None, math.inf
    correction = trimmed_chi2_factor(dof)
    # bins equally spaced in log(D - lo) so the sparse hot tail gets bins of its own
    edges = lo + np.geomspace(read_sigma, hi - lo, n_bins + 1)
    order = _bin_order(d, edges)
    d_sorted, v_sorted, e_sorted = d[order], var[order], extra[order]
    cuts = np.searchsorted(d_sorted, edges, side="left")
    xs, ys, sds, density, level_var = [], [], [], [], []
    for j, (a, b) in enumerate(itertools.pairwise(cuts)):
        if b - a < _MIN_BIN_PIXELS:
            continue
        v = np.sort(v_sorted[a:b])
        k = int(_TRIM * v.size)
        kept = v[k : v.size - k] if k else v
        wins = np.clip(v, kept[0], kept[-1])  # winsorised: the trimmed mean's standard error
        mean = float(np.mean(kept)) / correction
        sd = float(np.std(wins, ddof=1)) / ((1.0 - 2.0 * k / v.size) * math.sqrt(v.size))
        sd = max(sd / correction, mean * math.sqrt(2.0 / (dof * v.size)) * 0.5)
        if not (sd > 0 and math.isfinite(sd) and math.isfinite(mean)):
            continue  # no measured spread: the bin cannot weigh the fit
        density.append((b - a) / (edges[j + 1] - edges[j]))
        xs.append(float(np.mean(d_sorted[a:b])) - (lo if origin is None else origin))
        ys.append(mean)
        sds.append(sd)
        level_var.append(mean / (dof + 1.0) + float(np.mean(e_sorted[a:b])))
    if len(xs) < 4:
        return None, math.inf
    x, y, sd_y = np.array(xs), np.array(ys), np.array(sds)
    shift = _level_shift(x, np.array(density), np.array(level_var))
    x = x + shift
    w = 1.0 / sd_y
    for _ in range(2):  # the shift's own size, through the slope, as each bin's systematic
        slope0 = max(float(_wls(x, y, w, 1)[0][-2]), 0.0)
        w = 1.0 / np.hypot(sd_y, slope0 * shift)
    coef1, cov1, chi2_1 = _wls(x, y, w, 1)
    deg, coef, cov, chi2 = 1, coef1, cov1, chi2_1
    if len(x) >= 6 and max_deg >= 2:
        coef2, cov2, chi2_2 = _wls(x, y, w, 2)
        # a dark level drifting during the sequence adds variance proportional to the dark
        # signal squared (never less): measured from zero signal, the quadratic term whenever
        # it is positive, else only when clearly needed (BIC-like margin)
        if (origin is not None and coef2[0] > 0) or (
            chi2_1 - chi2_2 > 2.0 * math.log(len(x)) + 10.0
        ):
            deg, coef, cov, chi2 = 2, coef2, cov2, chi2_2
    slope = float(coef[-2])
    if not slope > 0:
        return None, math.inf
    dof_fit = len(x) - (deg + 1)
    red = chi2 / dof_fit if dof_fit > 0 else 1.0
    sd_cov = math.sqrt(max(float(cov[-2, -2]), 0.0) * max(red, 1.0))
    # jackknife over the bins: a few bins (the hot tail) can carry the whole lever arm
    jack = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        if np.count_nonzero(keep) >= deg + 2:
            jack.append(_ptc_slope(x[keep], y[keep], w[keep], deg))
    sd_jack = 0.0
    if len(jack) >= 3:
        j = np.array(jack)
        sd_jack = math.sqrt((len(j) - 1) / len(j) * float(np.sum((j - j.mean()) ** 2)))
    sd_slope = max(sd_cov, sd_jack)
    slope_c = slope / clip_factor
    g = 1.0 / slope_c
    rel = sd_slope / slope
    if clip_factor < 1.0:  # variances restored from a clipped stack: 1-3 % accurate
        rel = math.hypot(rel, CLIPPED_VARIANCE_REL_SD)
    return GainEstimate(g, g * rel, source, int(n_frames)), chi2


def _level_shift(x: np.ndarray, density: np.ndarray, level_var: np.ndarray) -> np.ndarray:
    """How far each bin's true mean level lies from its measured one (errors in the level).

    A pixel is binned by its measured level ``m``, the mean of its frames, whose own noise has
    the variance ``s² = variance / frames``. Where the density ``p`` of measured levels falls
    steeply (above the median of a short or cold dark, ``s`` comparable to the spread of true
    levels) a bin holds pixels scattered into it from the bulk: their true level is lower,
    and they are the noisier ones (a larger variance scatters farther). To first order in
    ``s²`` (Tweedie's formula) ``E[L | m] = m + s² d ln p / dm``; ``d ln p / dm`` from the bins'
    densities (count per ADU of level) between neighbouring bins. Without it the variance
    near the median rises with the measured level more slowly than with the true one and the
    gain comes out high (a 4-frame 60 s DSLR dark: 3.12 +- 0.19 against 2.42).
    """
    if x.size < 3:
        return np.zeros_like(x)
    with np.errstate(divide="ignore"):
        lnp = np.log(np.maximum(density, 1e-300))
    slope = np.gradient(lnp, x)
    return np.where(np.isfinite(slope), level_var * slope, 0.0)


def gain_from_dark_stack(
    master: MasterDark,
    *,
    clip_sigma: float | None = 3.0,
    n_bins: int = 24,
    bias_level: float | None = None,
    bias: MasterDark | None = None,
) -> GainEstimate | None:
    """Photon transfer on a dark master's planes (see :func:`ptc_gain`).

    Each pixel is binned by its level, which holds the bias's fixed pattern (column and pixel
    pattern, a few ADU) beside the dark signal: near the median of a short or cold dark that
    pattern, not the dark signal, sorts the pixels into bins, and their variances rise with
    the level more slowly than the shot noise does (the low bins then pin the line's intercept
    and tilt its slope). With a master ``bias`` of the same shape its pattern (the bias less
    its median) is taken out of the levels and its noise (the bias's uncertainty) joins the
    level's own in the errors-in-level shift of the bins (:func:`_level_shift`).

    Per pixel the master holds the mean dark level and the per-frame variance
    ``uncertainty² × n_used`` of the values the combine kept; only pixels with every frame kept
    enter (one number of degrees of freedom), and the variance the ``clip_sigma`` clipping took
    away is restored. Needs a dark-signal range of ~20x the read noise (hot pixels of a long or
    warm dark); no bias is involved. A master stored with a scalar uncertainty plane
    (``[output]``) has its uncertainty rebuilt from a noise model: photon transfer on it would
    be circular, so there is no estimate.

    A sensor warming or cooling during the dark sequence (an uncooled camera) scales every
    pixel's dark signal ``D`` by a common factor ``f_k`` per frame: its variance gains
    ``D² var(f)``, which steepens the photon-transfer slope and makes the gain too low. With the
    ``bias_level`` known, ``D`` is known and ``var(f)`` is the fit's
    quadratic term (kept when positive), the gain the slope at ``D = 0``: the frames' recorded
    levels, whole ADU, cannot measure ``var(f)`` over a short dark's few ADU of median signal
    (13 30 s DSLR darks warming 0.9 °C: 0.93 +- 0.035 against 1.15 with a straight line).
    Without a bias level, ``var(f)`` is read from the frames' recorded levels
    (:func:`frame_level_variance`: ``var(f) = var(levels) / D0²``, ``D0`` the master's median
    dark signal ``median - B``) and its share is removed before the fit, ``B`` the level at
    which that share fits the variances best (:func:`_profile_bias_level`). A drift of the
    *bias* moves the levels as well but adds to every pixel alike: the two readings (straight
    lines through the variances with and without the common factor's share) are told apart by
    their chi-square (the share kept only when it improves the fit beyond chance), and the
    estimate's uncertainty holds the difference the recorded levels' own uncertainty makes.
    Amp glow that does not follow the temperature sits in ``D0`` without varying: where it is a
    large part of the median dark signal the share removed is too small and the gain stays
    somewhat low (a 2 °C warming of a DSLR over 14 darks: within 2 sigma of
    the truth, against 15 sigma low uncorrected; ``tests/test_gain.py``).
    """
    if master.provenance.get("planes", {}).get("uncertainty") == "scalar":
        return None
    n = master.n_used
    full = int(np.max(n)) if n.size else 0
    if full < 2:
        return None
    valid = n == full
    if master.saturated is not None:
        valid &= ~master.saturated.astype(bool)
    if np.count_nonzero(valid) < 100:
        return None
    level = master.data[valid].astype(np.float64)
    var = np.square(master.uncertainty[valid].astype(np.float64)) * full
    # a pixel without any frame-to-frame variance far above the read noise is not a live
    # pixel: clipped at a white level the headers do not give (a 14-bit DSLR's 16383 in
    # 16-bit files) or stuck; its bin would otherwise weigh the fit without a spread
    floor = float(np.median(level)) + 5.0 * math.sqrt(max(float(np.median(var)), 1e-12))
    dead = (var == 0) & (level > floor)
    if dead.any():
        valid[valid] = ~dead
        level, var = level[~dead], var[~dead]
        if level.size < 100:
            return None
    cf = clip_variance_factor(clip_sigma)
    err: np.ndarray | float = 0.0
    pattern = _bias_pattern(master, bias)
    if pattern is not None:  # the level's fixed pattern out, its noise in
        level = level - pattern[0][valid]
        err = pattern[1][valid]

    def fit(
        v: np.ndarray, max_deg: int = 2, lv: np.ndarray | None = None, origin: float | None = None
    ) -> tuple[GainEstimate | None, float]:
        return _ptc_fit(
            level if lv is None else lv,
            v,
            full - 1,
            clip_factor=cf,
            n_bins=n_bins,
            n_frames=int(master.meta.n_frames),
            source=DARKS,
            max_deg=max_deg,
            level_error=err if lv is None or np.ndim(err) == 0 else err[sub],
            origin=origin,
        )

    if bias_level is not None and math.isfinite(bias_level):
        # the dark signal known: the common factor's share is the fit's quadratic term
        return fit(var, origin=float(bias_level))[0]
    plain, _ = fit(var)
    s2, n_levels = frame_level_variance(master)
    median = float(np.median(master.data))
    if n_levels < 3 or not s2 > 0:
        return plain
    # the choices (the bias level, which reading fits) on a subsample of a large master, the
    # estimate and its sensitivity to the recorded levels on every pixel
    sub = _profile_sample(level)
    lv_s, var_s = level[sub], var[sub]
    # a bias level read from the photon transfer itself is one more fitted number: the
    # common factor must then improve the fit beyond chance (chi-square, 1 dof, p = 1e-3)
    bias_level = _profile_bias_level(lv_s, var_s, median, s2, lambda lv, v: fit(v, 1, lv)[1], cf)
    common = _common_factor_variance(master, bias_level)
    if common is None:
        return plain
    c, c_sd = common
    b = float(bias_level)  # type: ignore[arg-type]
    # both readings as straight lines (chi-squares of the same bins' count, near enough): the
    # common factor's share is known, not fitted
    sig2_s = np.square(lv_s - b)
    _, additive_chi2 = fit(var_s, 1, lv_s)
    scaled_s, scaled_chi2 = fit(var_s - cf * c * sig2_s, 1, lv_s)
    if scaled_s is None or not scaled_chi2 + _PROFILE_MARGIN < additive_chi2:
        return plain
    signal2 = np.square(level - b)
    whole = isinstance(sub, slice)  # the sample is every pixel: the fit is already done
    scaled = scaled_s if whole else fit(var - cf * c * signal2, max_deg=1)[0]
    if scaled is None:
        return plain
    other, _ = fit(var - cf * (c + c_sd) * signal2, max_deg=1)
    if other is not None:  # the recorded levels' uncertainty, carried into the gain's
        scaled = GainEstimate(
            scaled.value,
            math.hypot(scaled.sigma, other.value - scaled.value),
            scaled.source,
            scaled.n,
        )
    return scaled


def _bias_pattern(
    master: MasterDark, bias: MasterDark | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """A raw dark master's bias pattern (the master bias less its median) and that pattern's
    noise variance per pixel; ``None`` without a usable bias of the master's shape or for a
    master stored bias-subtracted."""
    if bias is None or master.meta.bias_subtracted or bias.data.shape != master.data.shape:
        return None
    data = bias.data.astype(np.float64)
    err = np.square(bias.uncertainty.astype(np.float64))
    ok = np.isfinite(data) & np.isfinite(err)
    if np.count_nonzero(ok) < 100:
        return None
    pattern = np.where(ok, data - float(np.median(data[ok])), 0.0)
    return pattern, np.where(ok, err, 0.0)


def _profile_sample(level: np.ndarray) -> np.ndarray | slice:
    """Every pixel of a master up to :data:`_PROFILE_PIXELS`; of a larger one, every pixel above
    the 99th level percentile (the lever arm) and an even subsample of the rest."""
    if level.size <= _PROFILE_PIXELS:
        return slice(None)
    cut = float(np.percentile(level, 99.0))
    rest = np.flatnonzero(level <= cut)
    step = max(rest.size // _PROFILE_PIXELS, 1)
    return np.sort(np.concatenate([np.flatnonzero(level > cut), rest[::step]]))


_PROFILE_PIXELS = 200_000
_PROFILE_MARGIN = 10.83  # chi-square with 1 degree of freedom exceeded with probability 1e-3


def _profile_bias_level(
    level: np.ndarray,
    var: np.ndarray,
    median: float,
    s2: float,
    chi2_of: Callable[[np.ndarray, np.ndarray], float],
    cf: float,
) -> float | None:
    """The bias level under a dark without a master bias, from the curvature of its photon
    transfer: the common factor's share ``s² ((L - B) / (median - B))²`` fits the variances
    best at the true ``B``. ``B`` is searched on a log grid of the median's dark signal ``D0 =
    median - B`` (1 ADU to the median itself), then refined; ``None`` when no grid point fits.
    Large masters come as :func:`_profile_sample`."""

    def chi2(d0: float) -> float:
        b = median - d0
        with np.errstate(all="ignore"):  # a far-off ``B`` overflows; its fit is just bad
            return chi2_of(level, var - cf * s2 / d0**2 * np.square(level - b))

    top = max(median, 2.0)
    grid = np.geomspace(1.0, top, 24)
    scores = [chi2(float(d)) for d in grid]
    best = int(np.argmin(scores))
    if not math.isfinite(scores[best]):
        return None
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    fine = np.geomspace(lo, hi, 9)
    fine_scores = [chi2(float(d)) for d in fine]
    return median - float(fine[int(np.argmin(fine_scores))])


def dark_bias_level(master: MasterDark, bias: MasterDark | None) -> float | None:
    """The bias level under a raw dark master's signal: the master bias's median, ``None``
    without a bias of the master's shape or for a master stored bias-subtracted."""
    if bias is None or master.meta.bias_subtracted or bias.data.shape != master.data.shape:
        return None
    level = float(np.median(bias.data))
    return level if math.isfinite(level) else None


def frame_level_variance(master: MasterDark | None) -> tuple[float, int]:
    """Variance (ADU²) of a master's input frame levels beyond their sampling, and frame count.

    ``provenance["frame_levels"]`` holds each input frame's median over the sampled rows
    (``sample_rows``); their sampling variance (``pi/2 x spread² / pixels``) is subtracted.
    """
    if master is None:
        return 0.0, 0
    prov = master.provenance or {}
    levels = np.asarray([v for v in prov.get("frame_levels") or () if v is not None], float)
    levels = levels[np.isfinite(levels)]
    if levels.size < 2:
        return 0.0, int(levels.size)
    spreads = np.asarray([v for v in prov.get("frame_spreads") or () if v is not None], float)
    spreads = spreads[np.isfinite(spreads)]
    n_pix = max(len(prov.get("sample_rows") or ()), 1) * master.data.shape[1]
    sampling = float(np.mean(spreads**2)) * (math.pi / 2) / n_pix if spreads.size else 0.0
    return max(float(np.var(levels, ddof=1)) - sampling, 0.0), int(levels.size)


def _common_factor_variance(
    master: MasterDark, bias_level: float | None
) -> tuple[float, float] | None:
    """``var(f)`` of a common per-frame factor on the dark signal, and its 1-sigma uncertainty.

    ``None`` without a bias level, fewer than 3 recorded frame levels, no dark signal above the
    bias or no variance beyond the levels' sampling. The uncertainty is that of a sample
    variance of ``n`` values rounded to whole ADU (the recorded medians of integer data):
    ``2 sqrt(s² q / (n - 1)) + q``, ``q = 1/12``.
    """
    if bias_level is None or not math.isfinite(bias_level):
        return None
    s2, n = frame_level_variance(master)
    d0 = float(np.median(master.data)) - float(bias_level)
    if n < 3 or not s2 > 0 or not d0 > 0:
        return None
    q = 1.0 / 12.0
    return s2 / d0**2, (2.0 * math.sqrt(s2 * q / (n - 1)) + q) / d0**2


# ----------------------------------------------------------------------------- frame pairs
def _clipped_var(values: np.ndarray, k: float = 4.0) -> tuple[float, int]:
    """Variance after one ``k``-sigma clip around the median (robust scale), restored for the
    Gaussian variance the clip removed; and the number of values kept."""
    v = values[np.isfinite(values)]
    if v.size < 16:
        return math.nan, 0
    centre = float(np.median(v))
    s = mad_std(v, center=centre)
    if not s > 0:
        return float(np.var(v, ddof=1)), int(v.size)
    kept = v[np.abs(v - centre) <= k * s]
    return float(np.var(kept, ddof=1)) / clip_variance_factor(k), int(kept.size)


def gain_from_pairs(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    bias_pairs: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    *,
    bias_level: float | np.ndarray | None = None,
    read_variance: float | None = None,
    tile: int = 64,
    source: str = FLATS,
) -> GainEstimate | None:
    """Janesick's mean-variance gain from pairs of frames of one illumination each.

    ``pairs``: frames taken in pairs at the same exposure (flats; darks when their signal is
    well above the read noise). ``bias_pairs`` give the bias level and the read variance (the
    variance of their difference / 2); ``bias_level`` / ``read_variance`` stand in for them.
    Per tile and pair: signal ``S = mean((a + b) / 2) - bias``, variance ``V = var(a - b) / 2``
    (clipped at 4 sigma: cosmic rays, hot pixels), read variance ``R`` likewise from the
    biases; ``g = sum S / sum (V - R)`` over tiles and pairs. The fixed pattern (PRNU, DSNU,
    bias pattern, illumination gradients) cancels in the differences. The uncertainty is a
    jackknife over the tiles.
    """
    if not pairs:
        return None
    shape = np.shape(pairs[0][0])
    if len(shape) != 2:
        return None
    ny, nx = shape
    # at least ~36 tiles: the jackknife over tiles is the uncertainty
    t = max(8, min(tile, ny, nx, int(math.sqrt(ny * nx / 36.0))))
    ty, tx = ny // t, nx // t
    if ty * tx < 4:
        return None
    if bias_pairs:
        bias_mean = np.mean(
            [np.asarray(b, np.float64) for pair in bias_pairs for b in pair], axis=0
        )
    elif bias_level is not None:
        bias_mean = np.broadcast_to(np.asarray(bias_level, np.float64), shape)
    else:
        return None
    signal = np.zeros((ty, tx))
    excess = np.zeros((ty, tx))
    for a, b in pairs:
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        mean = 0.5 * (a64 + b64) - bias_mean
        diff = a64 - b64
        bdiffs = [np.asarray(p, np.float64) - np.asarray(q, np.float64) for p, q in bias_pairs]
        for iy, ix in itertools.product(range(ty), range(tx)):
            sl = np.s_[iy * t : (iy + 1) * t, ix * t : (ix + 1) * t]
            v, _ = _clipped_var(diff[sl].ravel())
            if bdiffs:
                r = float(np.mean([_clipped_var(bd[sl].ravel())[0] for bd in bdiffs])) / 2.0
            else:
                r = float(read_variance or 0.0)
            s = float(np.median(mean[sl])) if np.isfinite(mean[sl]).any() else math.nan
            signal[iy, ix] += s
            excess[iy, ix] += 0.5 * v - r
    s_flat, e_flat = signal.ravel(), excess.ravel()
    ok = np.isfinite(s_flat) & np.isfinite(e_flat)
    s_flat, e_flat = s_flat[ok], e_flat[ok]
    if s_flat.size < 4 or not np.sum(e_flat) > 0 or not np.sum(s_flat) > 0:
        return None
    g = float(np.sum(s_flat) / np.sum(e_flat))
    total_s, total_e = float(np.sum(s_flat)), float(np.sum(e_flat))
    jack = (total_s - s_flat) / (total_e - e_flat)
    jack = jack[np.isfinite(jack)]
    m = jack.size
    sd = math.sqrt((m - 1) / m * float(np.sum((jack - jack.mean()) ** 2))) if m >= 3 else math.inf
    return GainEstimate(g, sd, source, 2 * len(pairs))


# ----------------------------------------------------------------------------- one light
def gain_from_light(
    calibrated: np.ndarray,
    read_variance: float,
    *,
    tile: int = 16,
    min_tiles: int = 8,
    cfa: bool = False,
    read_variance_sigma: float = 0.0,
    model: np.ndarray | None = None,
    model_variance: float = 0.0,
) -> GainEstimate | None:
    """e-/ADU from one dark-subtracted frame (photon transfer within the frame).

    In each tile, the per-pixel variance comes from differences of pixels two rows apart
    (same colour on a Bayer sensor; smooth sky and nebulosity cancel; the row noise of the
    readout, in the darks' variance, is seen as there), robustly (MAD), and the
    signal from the tile median: ``gain = signal / (variance - read variance)``. Sources are
    left out first: pixels more than 4 sigma above their tile's level, grown by 2 pixels (a
    star's wings are steep gradients that the differences would count as noise, biasing the
    gain low). ``read_variance``: every variance of a pixel but the sky's shot noise (read
    noise, the dark current's shot noise at the light's exposure, the subtracted model's noise;
    a dark current left out of it would bias the gain low by ``D / (S + D)``). ``cfa``: a colour (Bayer) frame, measured per colour phase (a tile's
    median and MAD over four colours of different sky levels are not a level and its noise).
    The median of the tiles with enough signal is the estimate; its uncertainty ``1.2533 x``
    their robust scatter over ``sqrt(tiles)``, combined with what the floor's own uncertainty
    ``read_variance_sigma`` (ADU², e.g. the dark current's shot noise of a light of unknown
    temperature) does to every tile alike: ``d gain / d R = gain² / level``, at the tiles'
    median level. ``None`` when the frame holds too little signal.

    ``model`` (the subtracted dark model, ADU per pixel) and ``model_variance`` (its typical
    per-pixel noise variance, part of ``read_variance``): a light whose dark current differs
    from the model's by a factor ``k`` (a light of unknown temperature matched unscaled) keeps
    ``(k - 1)`` times the model's pixel pattern (dark-current non-uniformity, tens of ADU on a
    warm DSLR), which the differences would count as shot noise (the gain read 24-34 % low).
    Per colour plane that pattern's coefficient is measured from the light itself and taken
    out of the differences (:func:`_pattern_coefficient`); the model's noise is then in them
    ``(1 + c)²`` times (``read_variance`` changes by ``((1 + c)² - 1) model_variance``, and
    the coefficient's own uncertainty joins ``read_variance_sigma``).
    """
    data = np.asarray(calibrated, dtype=np.float64)
    dark = None if model is None else np.asarray(model, dtype=np.float64)
    levels: list[float] = []
    floor_sd2 = 0.0
    if cfa:
        planes = [(dy, dx) for dy in (0, 1) for dx in (0, 1)]
        step, size = 1, max(tile // 2, 4)
    else:
        planes, step, size = [(0, 0)], 2, tile
    gains = []
    for dy, dx in planes:
        plane = data[dy::2, dx::2] if cfa else data
        pattern = None if dark is None else dark[dy::2, dx::2] if cfa else dark
        coef, floor, floor_sd = 0.0, read_variance, 0.0
        if pattern is not None and model_variance > 0:
            coef, coef_sd = _pattern_coefficient(plane, pattern, step, size, model_variance)
            floor = read_variance + ((1.0 + coef) ** 2 - 1.0) * model_variance
            floor_sd = 2.0 * abs(1.0 + coef) * model_variance * coef_sd
        floor_sd2 += floor_sd**2 / len(planes)
        gains += _tile_gains(plane, step, size, floor, levels, pattern=pattern, coef=coef)
    if len(gains) < min_tiles:
        return None
    g = np.array(gains)
    value = float(np.median(g))
    sd = 1.2533 * mad_std(g, center=value) / math.sqrt(g.size)
    floor_sigma = math.hypot(read_variance_sigma, math.sqrt(floor_sd2))
    if floor_sigma > 0:
        sd = math.hypot(sd, value * value * floor_sigma / float(np.median(levels)))
    return GainEstimate(value, sd, LIGHT, 1)


def _pattern_coefficient(
    data: np.ndarray, model: np.ndarray, step: int, tile: int, model_variance: float
) -> tuple[float, float]:
    """How much of the subtracted model's pixel pattern one colour plane of a light still holds.

    With ``y`` the light's differences ``step`` rows apart and ``x`` the model's (sources and
    the model's hot tail beyond 5 robust sigmas left out), ``y = c p - n`` and ``x = p + n``
    (``p`` the model's true pattern, ``n`` its noise of variance ``2 model_variance`` per
    difference, subtracted in the light): errors in ``x`` tilt the plain regression, so
    ``c = (cov(x, y) + 2 m) / (var(x) - 2 m)``. Its standard error is
    ``sqrt(var(y - c x) / (N (var(x) - 2 m)))``. ``(0, 0)`` when the pattern is not measured
    above its noise (``var(x) - 2 m`` below 3 of its standard errors ``var(x) sqrt(2 / N)``):
    no pattern to remove.
    """
    if data.shape[0] <= step + 1:
        return 0.0, 0.0
    y = data[step:, :] - data[:-step, :]
    x = model[step:, :] - model[:-step, :]
    source = source_mask(data, step, tile)
    ok = np.isfinite(x) & np.isfinite(y) & ~(source[step:, :] | source[:-step, :])
    x, y = x[ok], y[ok]
    if x.size < 100:
        return 0.0, 0.0
    keep = np.abs(x - np.median(x)) <= 5.0 * mad_std(x)
    keep &= np.abs(y - np.median(y)) <= 5.0 * mad_std(y)
    x, y = x[keep], y[keep]
    n = x.size
    if n < 100:
        return 0.0, 0.0
    x = x - x.mean()
    y = y - y.mean()
    var_x = float(np.mean(x * x))
    pattern = var_x - 2.0 * model_variance
    if not pattern > 3.0 * var_x * math.sqrt(2.0 / n):
        return 0.0, 0.0
    coef = (float(np.mean(x * y)) + 2.0 * model_variance) / pattern
    resid = float(np.mean((y - coef * x) ** 2))
    return coef, math.sqrt(resid / (n * pattern))


def _tiles(ny: int, nx: int, step: int, tile: int) -> list[tuple[int, int]]:
    return [
        (y0, x0)
        for y0 in range(0, ny - step - tile + 1, tile)
        for x0 in range(0, nx - tile + 1, tile)
    ]


def source_mask(data: np.ndarray, step: int, tile: int) -> np.ndarray:
    """Sources of one colour plane: pixels more than 4 sigma above their tile's level, sigma
    from differences ``step`` rows apart (smooth sky and nebulosity cancel), grown by 2 pixels
    (a star's wings are steep gradients that differences would count as noise)."""
    from scipy.ndimage import binary_dilation

    ny, nx = data.shape
    source = np.zeros(data.shape, dtype=bool)
    if ny <= step + 1:
        return source
    # differences down the columns: the darks' per-pixel variance that a read variance
    # stands for holds the readout's row noise (a whole row offset per frame), which pixels of
    # one row share and differences along a row would cancel; rows apart see it as the darks do
    diff = data[step:, :] - data[:-step, :]
    for y0, x0 in _tiles(ny, nx, step, tile):
        block = data[y0 : y0 + tile, x0 : x0 + tile]
        dblock = diff[y0 : y0 + tile, x0 : x0 + tile]
        finite = np.isfinite(dblock)
        if finite.sum() < tile * tile // 2 or not np.isfinite(block).any():
            continue
        sigma = mad_std(dblock[finite]) / math.sqrt(2.0)
        with np.errstate(invalid="ignore"):
            source[y0 : y0 + tile, x0 : x0 + tile] = block > np.nanmedian(block) + 4.0 * sigma
    return binary_dilation(source, iterations=2)


def _tile_gains(
    data: np.ndarray,
    step: int,
    tile: int,
    read_variance: float,
    levels: list[float] | None = None,
    *,
    pattern: np.ndarray | None = None,
    coef: float = 0.0,
) -> list[float]:
    """Per tile ``level / (variance - read_variance)`` of one colour plane (differences
    ``step`` rows apart, less ``coef`` times the ``pattern``'s), sources left out
    (:func:`gain_from_light`); each used tile's level is appended to ``levels`` when given."""
    ny, nx = data.shape
    if ny <= step + 1:
        return []
    diff = data[step:, :] - data[:-step, :]
    if pattern is not None and coef:
        diff = diff - coef * (pattern[step:, :] - pattern[:-step, :])
    tiles = _tiles(ny, nx, step, tile)
    source = source_mask(data, step, tile)
    bad = source[step:, :] | source[:-step, :]
    gains = []
    floor = 5.0 * math.sqrt(max(read_variance, 1e-12))
    for y0, x0 in tiles:
        block = data[y0 : y0 + tile, x0 : x0 + tile]
        dblock = diff[y0 : y0 + tile, x0 : x0 + tile]
        use = np.isfinite(dblock) & ~bad[y0 : y0 + tile, x0 : x0 + tile]
        if use.sum() < tile * tile // 2:
            continue
        sky = np.where(source[y0 : y0 + tile, x0 : x0 + tile], np.nan, block)
        level = float(np.nanmedian(sky))
        var = mad_std(dblock[use]) ** 2 / 2.0
        excess = var - read_variance
        if level > floor and excess > 0.1 * var:
            gains.append(level / excess)
            if levels is not None:
                levels.append(level)
    return gains


# ----------------------------------------------------------------------------- choosing
def combine_gains(estimates: Iterable[GainEstimate | None]) -> GainEstimate | None:
    """Inverse-variance mean of the usable estimates (``None`` when there is none).

    When they disagree beyond their uncertainties (reduced chi-square above 1) the combined
    uncertainty is inflated by its square root: the estimates are not telling the same story.
    """
    good = [
        e
        for e in estimates
        if e is not None
        and math.isfinite(e.value)
        and e.value > 0
        and math.isfinite(e.sigma)
        and e.sigma > 0
    ]
    if not good:
        return None
    if len(good) == 1:
        return good[0]
    w = np.array([1.0 / e.sigma**2 for e in good])
    v = np.array([e.value for e in good])
    mean = float(np.sum(w * v) / np.sum(w))
    sd = 1.0 / math.sqrt(float(np.sum(w)))
    red = float(np.sum(w * (v - mean) ** 2)) / (len(good) - 1)
    sd *= math.sqrt(max(red, 1.0))
    return GainEstimate(mean, sd, "+".join(e.source for e in good), sum(e.n for e in good))


def gain_for_light(
    meta: FrameMeta | None,
    *,
    night: GainEstimate | None = None,
    darks: GainEstimate | None = None,
    light: GainEstimate | None = None,
    header_rel_sigma: float = HEADER_REL_SIGMA,
) -> GainEstimate | None:
    """The gain a light is calibrated with: the header's EGAIN when usable, else the combined
    measurements of the night (pairs, flats), the darks' photon transfer and the light itself.

    A header value is kept even where a measurement disagrees with it: the master's gates
    compare the two and say so (``gain_mismatch``); a light never silently changes its noise
    model behind the header's back.
    """
    head = header_gain(meta, rel_sigma=header_rel_sigma)
    if head is not None:
        return head
    return combine_gains([night, darks, light])
